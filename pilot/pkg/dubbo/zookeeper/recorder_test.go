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
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/util/sets"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/zookeeper"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// recorder is a model.XDSUpdater that records what the registry tells istiod. It stands
// in for istiod's DiscoveryServer, which the end-to-end tests exercise for real.
type recorder struct {
	mu        sync.Mutex
	endpoints map[string][]*model.IstioEndpoint // hostname -> last list (EDSUpdate or EDSCacheUpdate)
	calls     []string                          // "eds host n", "edscache host n", "svc host event", "full host event"
	minSeen   map[string]int                    // smallest endpoint list pushed per host after it first had n>0
}

func newRecorder() *recorder {
	return &recorder{endpoints: map[string][]*model.IstioEndpoint{}, minSeen: map[string]int{}}
}

func (r *recorder) record(kind, h string, eps []*model.IstioEndpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endpoints[h] = eps
	r.calls = append(r.calls, fmt.Sprintf("%s %s %d", kind, h, len(eps)))
	if m, ok := r.minSeen[h]; !ok || len(eps) < m {
		if ok || len(eps) > 0 {
			r.minSeen[h] = len(eps)
		}
	}
}

func (r *recorder) EDSUpdate(_ model.ShardKey, h, _ string, eps []*model.IstioEndpoint) {
	r.record("eds", h, eps)
}

func (r *recorder) EDSCacheUpdate(_ model.ShardKey, h, _ string, eps []*model.IstioEndpoint) {
	r.record("edscache", h, eps)
}

func (r *recorder) SvcUpdate(_ model.ShardKey, h, _ string, ev model.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("svc %s %v", h, ev))
}
func (r *recorder) ConfigUpdate(*model.PushRequest)                   {}
func (r *recorder) ProxyUpdate(cluster.ID, string)                    {}
func (r *recorder) RemoveShard(model.ShardKey)                        {}
func (r *recorder) PruneShard(model.ShardKey, map[string]sets.String) {}

func (r *recorder) fullPush(prev, curr *model.Service, ev model.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("full %s %v", curr.Hostname, ev))
}

// addrs returns "ip:port" of the last endpoints of a host, sorted.
func (r *recorder) addrs(h string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ep := range r.endpoints[h] {
		out = append(out, fmt.Sprintf("%s:%d", ep.FirstAddressOrNil(), ep.EndpointPort))
	}
	sort.Strings(out)
	return out
}

func (r *recorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (r *recorder) min(h string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.minSeen[h]
}

// env is a registry controller and watchers on real ZooKeeper servers.
type env struct {
	ctl  *registry.Controller
	rec  *recorder
	stop chan struct{}
}

func newEnv(t *testing.T, opts registry.Options, addrs ...string) *env {
	t.Helper()
	rec := newRecorder()
	ctl, err := registry.NewController(opts, rec)
	if err != nil {
		t.Fatal(err)
	}
	ctl.AppendServiceHandler(rec.fullPush)
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

func wantAddrs(r *recorder, h string, want ...string) func() error {
	return func() error {
		got := r.addrs(h)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("%s endpoints %v, want %v", h, got, want)
		}
		return nil
	}
}

// zkAddr is the --dubboRegistry value for a test server.
func zkAddr(s *zkt.Server, params string) string {
	a := "zookeeper://" + s.Addr + "?session-timeout=4s"
	if params != "" {
		a += "&" + params
	}
	return a
}
