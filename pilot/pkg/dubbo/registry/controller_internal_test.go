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

package registry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"istio.io/istio/pkg/monitoring/monitortest"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry/registrytest"
)

// In-package tests of the controller's bookkeeping, with the clock and timers injected.

var providerNode = registrytest.ProviderNode

// fakeTimers records afterFunc calls; the test fires them when it chooses.
type fakeTimers struct {
	mu  sync.Mutex
	fns []func()
}

func (f *fakeTimers) afterFunc(_ time.Duration, fn func()) *time.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fns = append(f.fns, fn)
	return time.NewTimer(time.Hour) // stoppable, never fires within a test
}

func (f *fakeTimers) fire(i int) { f.fns[i]() }

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func testController(t *testing.T, opts Options) (*Controller, *registrytest.Recorder, *clock, *fakeTimers) {
	t.Helper()
	rec := registrytest.NewRecorder()
	c, err := NewController(opts, rec)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	timers := &fakeTimers{}
	c.now, c.afterFunc = clk.now, timers.afterFunc
	if err := c.AddSource("zk", "test"); err != nil {
		t.Fatal(err)
	}
	c.SourceConnected("zk", true, false)
	c.SourceSynced("zk")
	if !c.HasSynced() {
		t.Fatal("not synced")
	}
	return c, rec, clk, timers
}

const testIface = "com.example.DemoService"

// Fix 3: RemoveInterface during a grace, with removals already held, counted every held
// node (the held map was the stored one, mutated in place, so the delta was 0).
func TestHeldRemovalsCountedOnInterfaceRemoval(t *testing.T) {
	c, _, _, _ := testController(t, Options{ReconnectGrace: time.Minute})
	a, b, d := providerNode("10.0.0.1", 1, testIface), providerNode("10.0.0.2", 1, testIface), providerNode("10.0.0.3", 1, testIface)
	c.SetProviders("zk", testIface, []string{a, b, d}, time.Now())
	c.SourceConnected("zk", false, false)
	c.SourceConnected("zk", true, true) // new session: grace
	c.SetProviders("zk", testIface, []string{a}, time.Now())
	if got := c.Debug().Registries[0].Held; got != 2 {
		t.Fatalf("held removals %d after two providers left in the grace, want 2", got)
	}
	c.RemoveInterface("zk", testIface, time.Now())
	r := c.Debug().Registries[0]
	if r.Held != 3 || r.Providers != 0 {
		t.Fatalf("after the interface went in the grace: held %d providers %d, want 3 held, 0 listed", r.Held, r.Providers)
	}
}

// Fix 4: a grace timer that fired while a new session started a new grace must not end
// the new grace (Stop cannot recall a fired timer waiting for the lock).
func TestStaleGraceTimerDoesNotEndANewGrace(t *testing.T) {
	c, rec, _, timers := testController(t, Options{ReconnectGrace: time.Minute})
	a, b := providerNode("10.0.0.1", 1, testIface), providerNode("10.0.0.2", 1, testIface)
	c.SetProviders("zk", testIface, []string{a, b}, time.Now())
	c.SourceConnected("zk", true, true) // grace 1
	c.SourceConnected("zk", true, true) // grace 2 (grace 1's timer already fired, waiting)
	c.SetProviders("zk", testIface, []string{a}, time.Now())
	timers.fire(0) // grace 1's timer runs late
	if err := rec.WantAddrs("com.example.demoservice", "10.0.0.1:1", "10.0.0.2:1")(); err != nil {
		t.Fatalf("the stale timer of an earlier grace applied the held removal: %v", err)
	}
	if c.Debug().Registries[0].GraceUntil == nil {
		t.Fatal("the stale timer ended the current grace")
	}
	timers.fire(1) // grace 2 ends
	if err := rec.WantAddrs("com.example.demoservice", "10.0.0.1:1")(); err != nil {
		t.Fatalf("the current grace's timer did not apply the removal: %v", err)
	}
}

// Fix 5: the same provider instance in two nodes of one source (same timestamp, or none)
// always publishes the same endpoint, whatever the map order.
func TestMergeIsDeterministic(t *testing.T) {
	mk := func(c *Controller, params ...string) *node {
		return c.decode(&source{name: "zk", label: "zk"}, testIface, providerNode("10.0.0.1", 1, testIface, params...))
	}
	c, _, _, _ := testController(t, Options{})
	cases := []struct {
		name   string
		nodes  []*node
		held   []*node
		weight uint32
	}{
		{"no timestamps", []*node{mk(c, "weight=10"), mk(c, "weight=20"), mk(c, "weight=30")}, nil, 0},
		{"same timestamp", []*node{mk(c, "timestamp=5", "weight=10"), mk(c, "timestamp=5", "weight=20")}, nil, 0},
		{"newest wins", []*node{mk(c, "timestamp=5", "weight=10"), mk(c, "timestamp=6", "weight=20")}, nil, 20},
		{"current beats held", []*node{mk(c, "timestamp=1", "weight=10")}, []*node{mk(c, "timestamp=9", "weight=20")}, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := ""
			for i := 0; i < 50; i++ {
				cur, held := map[string]*node{}, map[string]*node{}
				for _, j := range rand.Perm(len(tc.nodes)) {
					cur[tc.nodes[j].name] = tc.nodes[j]
				}
				for _, n := range tc.held {
					held[n.name] = n
				}
				eps := mergeEndpoints([]sourceNodes{{current: cur, held: held}}, nil)
				if len(eps) != 1 {
					t.Fatalf("%d endpoints, want 1", len(eps))
				}
				got := fmt.Sprintf("%s:%d w=%d %v", eps[0].FirstAddressOrNil(), eps[0].EndpointPort, eps[0].LbWeight, eps[0].Labels)
				if first == "" {
					first = got
				} else if got != first {
					t.Fatalf("merge flipped between runs: %s then %s", first, got)
				}
				if tc.weight != 0 && eps[0].LbWeight != tc.weight {
					t.Fatalf("weight %d, want %d", eps[0].LbWeight, tc.weight)
				}
			}
		})
	}
}

func TestMergeAcrossSources(t *testing.T) {
	c, _, _, _ := testController(t, Options{})
	n1 := c.decode(&source{name: "zk", label: "zk"}, testIface, providerNode("10.0.0.1", 1, testIface, "weight=10", "timestamp=1"))
	n2 := c.decode(&source{name: "zk2", label: "zk2"}, testIface, providerNode("10.0.0.1", 1, testIface, "weight=20", "timestamp=9"))
	n3 := c.decode(&source{name: "zk2", label: "zk2"}, testIface, providerNode("10.0.0.2", 1, testIface, "weight=0"))
	n4 := c.decode(&source{name: "zk2", label: "zk2"}, testIface, providerNode("10.0.0.3", 1, testIface, "disabled=true"))
	bad := &node{name: "junk", err: errors.New("junk")}
	eps := mergeEndpoints([]sourceNodes{
		{current: map[string]*node{n1.name: n1, "junk": bad}},
		{current: map[string]*node{n2.name: n2, n3.name: n3, n4.name: n4}},
	}, nil)
	if len(eps) != 1 || eps[0].LbWeight != 10 {
		t.Fatalf("endpoints %v: want the first registry's 10.0.0.1 (weight 10) only", eps)
	}
	if eps := mergeEndpoints([]sourceNodes{{current: map[string]*node{n3.name: n3}}}, nil); len(eps) != 1 {
		t.Fatalf("all providers at weight 0 must all serve, got %d", len(eps))
	}
	if eps := mergeEndpoints(nil, nil); len(eps) != 0 {
		t.Fatalf("no sources: %d endpoints", len(eps))
	}
}

// Fix 9: an interface that cannot be served (empty hostname) is logged and counted once,
// not at every provider change.
func TestRejectedInterfaceCountedOnce(t *testing.T) {
	mt := monitortest.New(t)
	c, _, _, _ := testController(t, Options{})
	const bad = "_._" // maps to an empty hostname
	for i := 1; i <= 3; i++ {
		c.SetProviders("zk", bad, []string{providerNode("10.0.0.1", i, bad)}, time.Now())
	}
	mt.Assert("dubbo_registry_rejected_nodes_total", map[string]string{"registry": "zk", "reason": "hostname_conflict"}, monitortest.Exactly(1))
	d := c.Debug()
	if len(d.Interfaces) != 1 || d.Interfaces[0].NotServed == "" || d.Interfaces[0].Service {
		t.Fatalf("dubboz does not say why %s is not served: %+v", bad, d.Interfaces)
	}
}

// Fix 9: Debug renders providers after releasing the update lock.
func TestDebugRendersOutsideTheUpdateLock(t *testing.T) {
	c, rec, _, _ := testController(t, Options{})
	c.SetProviders("zk", testIface, []string{providerNode("10.0.0.1", 1, testIface)}, time.Now())
	updated := make(chan struct{})
	c.renderHook = func() {
		go func() {
			c.SetProviders("zk", testIface, []string{providerNode("10.0.0.2", 1, testIface)}, time.Now())
			close(updated)
		}()
		select {
		case <-updated:
		case <-time.After(30 * time.Second):
			t.Error("a registry update waited for Debug's rendering")
		}
	}
	v := c.Debug()
	if len(v.Interfaces) != 1 || len(v.Interfaces[0].Instances) != 1 || v.Interfaces[0].Instances[0].Address != "10.0.0.1" {
		t.Fatalf("Debug does not show the snapshot it took: %+v", v.Interfaces)
	}
	if err := rec.WantAddrs("com.example.demoservice", "10.0.0.2:1")(); err != nil {
		t.Fatal(err)
	}
}

// Fix 8 (registry side): a path that keeps failing to list shows in dubboz and is counted;
// it clears when the path lists again.
func TestListErrors(t *testing.T) {
	mt := monitortest.New(t)
	c, _, clk, _ := testController(t, Options{})
	for i := 0; i < 3; i++ {
		c.ListError("zk", testIface, errors.New("zk: not authenticated"))
		clk.add(time.Second)
	}
	mt.Assert("dubbo_registry_list_errors_total", map[string]string{"registry": "zk"}, monitortest.Exactly(3))
	le := c.Debug().Registries[0].ListErrors
	if len(le) != 1 || le[0].Interface != testIface || le[0].Attempts != 3 || le[0].Error != "zk: not authenticated" ||
		le[0].Last.Sub(le[0].Since) != 2*time.Second {
		t.Fatalf("dubboz list errors %+v", le)
	}
	c.ListError("zk", testIface, nil)
	if le := c.Debug().Registries[0].ListErrors; len(le) != 0 {
		t.Fatalf("list error not cleared: %+v", le)
	}
}

// The sync deadline on the injected clock (no wall-clock wait).
func TestSyncTimeout(t *testing.T) {
	rec := registrytest.NewRecorder()
	c, err := NewController(Options{SyncTimeout: 10 * time.Second}, rec)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	c.now = clk.now
	if err := c.AddSource("down", "zookeeper://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	c.armSyncDeadline()
	go c.Run(stop)
	if c.HasSynced() {
		t.Fatal("synced before any list and before the timeout")
	}
	clk.add(9 * time.Second)
	if c.HasSynced() {
		t.Fatal("synced before the timeout")
	}
	clk.add(2 * time.Second)
	if !c.HasSynced() {
		t.Fatal("not synced after the sync timeout")
	}
	if rec.Count("config") != 1 {
		t.Fatalf("calls %v: want exactly one config update at sync", rec.Calls)
	}
}
