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

package registry_test

import (
	"testing"
	"time"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/host"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry/registrytest"
)

// These tests drive the controller through the same calls a registry watcher makes
// (the ZooKeeper integration tests in pilot/pkg/dubbo/zookeeper drive it from a real
// server); istiod is the recording XDSUpdater.

var node = registrytest.ProviderNode

func synced(t *testing.T, opts registry.Options, sources ...string) (*registry.Controller, *registrytest.Recorder) {
	t.Helper()
	rec := registrytest.NewRecorder()
	c, err := registry.NewController(opts, rec)
	if err != nil {
		t.Fatal(err)
	}
	c.AppendServiceHandler(rec.FullPush)
	if len(sources) == 0 {
		sources = []string{"zk"}
	}
	for _, s := range sources {
		if err := c.AddSource(s, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sources {
		c.SourceConnected(s, true, false)
		c.SourceSynced(s)
	}
	if !c.HasSynced() {
		t.Fatal("not synced")
	}
	return c, rec
}

const iface, hostname = "com.example.DemoService", "com.example.demoservice"

func TestWeightsAndDisabled(t *testing.T) {
	cases := []struct {
		name  string
		nodes []string
		want  string
	}{
		{"default weight", []string{node("10.0.0.1", 1, iface)}, "10.0.0.1:1=100"},
		{"explicit weights", []string{node("10.0.0.1", 1, iface, "weight=50"), node("10.0.0.2", 1, iface, "weight=300")},
			"10.0.0.1:1=50 10.0.0.2:1=300"},
		{"weight=0 drains", []string{node("10.0.0.1", 1, iface, "weight=0"), node("10.0.0.2", 1, iface)}, "10.0.0.2:1=100"},
		{"all zero: all serve, as Dubbo's balancers do", []string{node("10.0.0.1", 1, iface, "weight=0"), node("10.0.0.2", 1, iface, "weight=0")},
			"10.0.0.1:1=1 10.0.0.2:1=1"},
		{"huge weight is capped", []string{node("10.0.0.1", 1, iface, "weight=99999999999")}, "10.0.0.1:1=1000000"},
		{"bad weight keeps the provider at the default", []string{node("10.0.0.1", 1, iface, "weight=abc")}, "10.0.0.1:1=100"},
		{"disabled", []string{node("10.0.0.1", 1, iface, "disabled=true"), node("10.0.0.2", 1, iface)}, "10.0.0.2:1=100"},
		{"enabled=false", []string{node("10.0.0.1", 1, iface, "enabled=false"), node("10.0.0.2", 1, iface)}, "10.0.0.2:1=100"},
		{"duplicate registration: the newest wins", []string{
			node("10.0.0.1", 1, iface, "timestamp=100", "weight=10"), node("10.0.0.1", 1, iface, "timestamp=200", "weight=20"),
		}, "10.0.0.1:1=20"},
		{"two groups on one port are two endpoints", []string{node("10.0.0.1", 1, iface, "group=a"), node("10.0.0.1", 1, iface, "group=b")},
			"10.0.0.1:1=100 10.0.0.1:1=100"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl, rec := synced(t, registry.Options{})
			ctl.SetProviders("zk", iface, c.nodes, time.Now())
			if got := rec.Weights(hostname); got != c.want {
				t.Fatalf("endpoints %q, want %q", got, c.want)
			}
		})
	}
}

func TestServiceLifecycle(t *testing.T) {
	ctl, rec := synced(t, registry.Options{Namespace: "dubbo-system", ServicePort: 20000, HostSuffix: "dubbo"})
	h := hostname + ".dubbo"
	ctl.SetProviders("zk", iface, nil, time.Now())
	if ctl.GetService(host.Name(h)) != nil || rec.Count("full ") != 0 {
		t.Fatal("an interface without providers became a service")
	}
	ctl.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface)}, time.Now())
	svc := ctl.GetService(host.Name(h))
	if svc == nil || svc.Attributes.Namespace != "dubbo-system" || svc.Ports[0].Port != 20000 {
		t.Fatalf("service %+v", svc)
	}
	if rec.Count("full "+h) != 1 || rec.Count("eds ") != 0 {
		t.Fatalf("calls %v: want one full push and EDS in cache only", rec.Calls)
	}
	// Last provider gone: the service stays with no endpoints (no full push per restart).
	ctl.SetProviders("zk", iface, nil, time.Now())
	if ctl.GetService(host.Name(h)) == nil || len(rec.Last(h)) != 0 || rec.Count("full ") != 1 {
		t.Fatalf("calls %v", rec.Calls)
	}
	// The interface disappears from the registry: the service goes (a full push).
	ctl.RemoveInterface("zk", iface, time.Now())
	if ctl.GetService(host.Name(h)) != nil || rec.Count("full "+h) != 2 || len(ctl.Services()) != 0 {
		t.Fatalf("calls %v", rec.Calls)
	}
}

func TestEmptyProtection(t *testing.T) {
	ctl, rec := synced(t, registry.Options{EmptyProtection: true})
	ctl.SetProviders("zk", iface, []string{node("10.0.0.1", 1, iface), node("10.0.0.2", 1, iface)}, time.Now())
	ctl.SetProviders("zk", iface, []string{node("10.0.0.2", 1, iface)}, time.Now())
	if err := rec.WantAddrs(hostname, "10.0.0.2:1")(); err != nil {
		t.Fatal(err)
	}
	ctl.SetProviders("zk", iface, nil, time.Now())
	if err := rec.WantAddrs(hostname, "10.0.0.2:1")(); err != nil {
		t.Fatalf("empty protection dropped the last provider: %v", err)
	}
	ctl.SetProviders("zk", iface, []string{node("10.0.0.3", 1, iface)}, time.Now())
	if err := rec.WantAddrs(hostname, "10.0.0.3:1")(); err != nil {
		t.Fatal(err)
	}
}

func TestHostnameConflict(t *testing.T) {
	ctl, rec := synced(t, registry.Options{})
	a, b := "com.example.Foo_Bar", "com.example.Foo$Bar" // both map to com.example.foo-bar
	ctl.SetProviders("zk", a, []string{node("10.0.0.1", 1, a)}, time.Now())
	ctl.SetProviders("zk", b, []string{node("10.0.0.2", 1, b)}, time.Now())
	if got := ctl.Interface("com.example.foo-bar"); got != a {
		t.Fatalf("hostname owned by %q, want the first interface %q", got, a)
	}
	if err := rec.WantAddrs("com.example.foo-bar", "10.0.0.1:1")(); err != nil {
		t.Fatalf("the second interface poisoned the first: %v", err)
	}
	// The owner leaves: the other interface takes the hostname over.
	ctl.RemoveInterface("zk", a, time.Now())
	if got := ctl.Interface("com.example.foo-bar"); got != b {
		t.Fatalf("hostname owned by %q after the owner left, want %q", got, b)
	}
	if err := rec.WantAddrs("com.example.foo-bar", "10.0.0.2:1")(); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []registry.Options{{ServicePort: 70000}, {ReconnectGrace: -time.Second}, {ExtraLabelKeys: []string{"bad key!"}}} {
		if _, err := registry.NewController(o, registrytest.NewRecorder()); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	c, _ := synced(t, registry.Options{}, "a")
	if err := c.AddSource("a", "again"); err == nil {
		t.Error("two registries with one name accepted")
	}
}

// TestDeclaredIdentityIsAFullPush: a provider that declares (or drops) its sidecar or
// service account changes consumers' cluster TLS and SANs, which only CDS carries: a full
// push, not the paced EDS-only update (docs/security.md).
func TestDeclaredIdentityIsAFullPush(t *testing.T) {
	ctl, rec := synced(t, registry.Options{EDSPushInterval: time.Hour}) // paced: EDS alone never pushes here
	ctl.SetPusher(noPush{})
	ctl.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface)}, time.Now())
	before := rec.Count("config") // the one update of becoming synced
	ctl.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface, "weight=50")}, time.Now())
	ctl.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface, "weight=50"), node("10.0.0.2", 20880, iface)}, time.Now())
	ctl.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface, "weight=50")}, time.Now())
	if n := rec.Count("config") - before; n != 0 {
		t.Fatalf("a weight change and a provider coming and going made %d full pushes: %v", n, rec.Calls)
	}
	ctl.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface, "weight=50", "security.istio.io/tlsMode=istio", "serviceAccount=payment")}, time.Now())
	if n := rec.Count("config") - before; n != 1 {
		t.Fatalf("declaring a sidecar made %d full pushes, want 1: %v", n, rec.Calls)
	}
	ep := rec.Last(hostname)
	if len(ep) != 1 || ep[0].TLSMode != "istio" || ep[0].ServiceAccount != "spiffe://cluster.local/ns/dubbo/sa/payment" {
		t.Fatalf("endpoints %v", ep)
	}
}

type noPush struct{}

func (noPush) Push(*model.PushRequest) {}
