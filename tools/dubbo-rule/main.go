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

// Command dubbo-rule writes Dubbo governance rules to a ZooKeeper config center where
// dubbo-admin writes them (/dubbo/config/dubbo/<key>, the YAML as the node's data), so
// an operator without dubbo-admin (and the demo) can govern providers:
//
//	dubbo-rule --zk 127.0.0.1:2181 put 'com.example.DemoService:1.0.0:.configurators' rule.yaml
//	dubbo-rule --zk 127.0.0.1:2181 put 'com.example.DemoService:1.0.0:.configurators' - <rule.yaml
//	dubbo-rule --zk 127.0.0.1:2181 get 'com.example.DemoService:1.0.0:.configurators'
//	dubbo-rule --zk 127.0.0.1:2181 delete 'com.example.DemoService:1.0.0:.configurators'
//	dubbo-rule --zk 127.0.0.1:2181 list
//
// The key is checked as dubbo-istiod reads it (docs/governance.md); the body is written
// as given, byte for byte.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/governance"
)

func main() {
	zkAddr := flag.String("zk", "127.0.0.1:2181", "ZooKeeper address (host:port[,host:port])")
	root := flag.String("root", "/dubbo/config/dubbo", "config center path: /<namespace>/config/<group>")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: dubbo-rule [--zk host:port] [--root /dubbo/config/dubbo] put KEY FILE|- | get KEY | delete KEY | list\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(strings.Split(*zkAddr, ","), *root, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "dubbo-rule:", err)
		os.Exit(1)
	}
}

func run(servers []string, root string, args []string) error {
	if len(args) == 0 {
		flag.Usage()
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	want, ok := map[string]int{"put": 2, "get": 1, "delete": 1, "list": 0}[cmd]
	if !ok || len(args) != want {
		flag.Usage()
		return fmt.Errorf("bad command %q", strings.Join(append([]string{cmd}, args...), " "))
	}
	if len(args) > 0 {
		if strings.Contains(args[0], "/") {
			return fmt.Errorf("key %q: a key is one node name, without '/'", args[0])
		}
		if _, err := governance.ParseKey(args[0]); err != nil {
			return err
		}
	}
	conn, _, err := zk.Connect(servers, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		return err
	}
	defer conn.Close()
	switch cmd {
	case "list":
		children, _, err := conn.Children(root)
		if err != nil {
			return fmt.Errorf("list %s: %v", root, err)
		}
		for _, c := range children {
			if governance.IsRuleKey(c) {
				fmt.Println(c)
			}
		}
		return nil
	case "get":
		body, _, err := conn.Get(path.Join(root, args[0]))
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(body)
		return err
	case "delete":
		err := conn.Delete(path.Join(root, args[0]), -1)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	}
	var body []byte
	if args[1] == "-" {
		body, err = io.ReadAll(os.Stdin)
	} else {
		body, err = os.ReadFile(args[1])
	}
	if err != nil {
		return err
	}
	p := path.Join(root, args[0])
	cur := ""
	for _, part := range strings.Split(strings.Trim(root, "/"), "/") {
		cur += "/" + part
		if _, err := conn.Create(cur, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %v", cur, err)
		}
	}
	_, err = conn.Create(p, body, 0, zk.WorldACL(zk.PermAll))
	if errors.Is(err, zk.ErrNodeExists) {
		_, err = conn.Set(p, body, -1)
	}
	return err
}
