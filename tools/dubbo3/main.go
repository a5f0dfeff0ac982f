// Copyright dubbo-istiod authors.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// Command dubbo3 is a real Dubbo 3 application on dubbo-go v3 (dubbo.apache.org/dubbo-go/v3),
// for tests, the demo and benchmarks:
//
//	dubbo3 provider -zk 127.0.0.1:2181 -app greet-provider -mode service -dubbo-port 20880 -tri-port 50051 -metadata-port 20990
//	dubbo3 provider -registry nacos://127.0.0.1:8848?namespace=dev -mode all -metadata remote
//	dubbo3 consumer -url dubbo://127.0.0.1:20880/com.example.GreetService -arg world
//
// It lives in its own Go module (tools/dubbo3/go.mod) so that dubbo-go's gRPC, x/net and
// friends never reach dubbo-istiod's module. See docs/testing.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"
)

// out is the process's original stdout: dubbo-go's loggers write to os.Stdout (some bind it
// at package init), so main points fd 1 at stderr and keeps stdout for the lines a caller
// parses (READY, answers).
var out = os.Stdout

func main() {
	if fd, err := syscall.Dup(1); err == nil {
		out = os.NewFile(uintptr(fd), "stdout")
		_ = syscall.Dup3(2, 1, 0)
	}
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "provider":
		err = runProvider(os.Args[2:])
	case "consumer":
		err = runConsumer(os.Args[2:])
	default:
		usage()
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dubbo3 %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dubbo3 provider|consumer [flags] (-h for the flags of each)")
	os.Exit(2)
}
