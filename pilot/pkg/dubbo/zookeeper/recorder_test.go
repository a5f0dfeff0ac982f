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
	"fmt"
	"testing"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry/registrytest"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/zookeeper"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// env is a registry controller and watchers on real ZooKeeper servers.
type env struct {
	ctl  *registry.Controller
	rec  *registrytest.Recorder
	stop chan struct{}
}

func newEnv(t *testing.T, opts registry.Options, addrs ...string) *env {
	t.Helper()
	rec := registrytest.NewRecorder()
	ctl, err := registry.NewController(opts, rec)
	if err != nil {
		t.Fatal(err)
	}
	ctl.AppendServiceHandler(rec.FullPush)
	e := &env{ctl: ctl, rec: rec, stop: make(chan struct{})}
	for _, a := range addrs {
		cfg, err := zookeeper.ParseAddress(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := ctl.AddSource(cfg.Name, a); err != nil {
			t.Fatal(err)
		}
		go zookeeper.NewWatcher(cfg, ctl).Run(e.stop)
	}
	go ctl.Run(e.stop)
	t.Cleanup(func() { close(e.stop) })
	return e
}

func (e *env) waitSynced(t *testing.T, d time.Duration) {
	t.Helper()
	eventually(t, d, func() error {
		if !e.ctl.HasSynced() {
			return fmt.Errorf("registry not synced")
		}
		return nil
	})
}

func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not within %v: %v", d, err)
}

func wantAddrs(r *registrytest.Recorder, h string, want ...string) func() error {
	return r.WantAddrs(h, want...)
}

// zkAddr is the --dubboRegistry value for a test server.
func zkAddr(s *zkt.Server, params string) string {
	a := "zookeeper://" + s.Addr + "?session-timeout=4s"
	if params != "" {
		a += "&" + params
	}
	return a
}
