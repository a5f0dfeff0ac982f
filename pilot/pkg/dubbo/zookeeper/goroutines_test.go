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

package zookeeper_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// A watched interface costs one goroutine: at 10,000 interfaces, a second one per
// interface (joining the interface's stop and the watcher's) held ~20 MiB of stacks.
func TestOneGoroutinePerInterface(t *testing.T) {
	const n = 30
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 10*time.Second)
	for i := 0; i < n; i++ {
		iface := fmt.Sprintf("com.example.G%02d", i)
		app.Register(t, iface, zkt.ProviderURL("10.0.1.1", 20000+i, iface, nil))
	}
	e := newEnv(t, registry.Options{}, zkAddr(zs, "name=g"))
	e.waitSynced(t)
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	ours := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("pilot/pkg/dubbo/zookeeper.(*Watcher)")) {
			ours++
		}
	}
	// One per interface, plus the session loop and the root's.
	if ours > n+4 {
		t.Fatalf("%d watcher goroutines for %d interfaces, want at most %d", ours, n, n+4)
	}
	t.Logf("%d watcher goroutines for %d interfaces", ours, n)
}
