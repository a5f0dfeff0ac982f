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
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/protocol"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/zookeeper"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

const (
	demoIface = "com.example.DemoService"
	demoHost  = "com.example.demoservice"
)

func TestProvidersBecomeServicesWithTheirOwnPorts(t *testing.T) {
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 10*time.Second)
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.1", 20880, demoIface, map[string]string{"version": "1.0.0"}))
	v2 := app.Register(t, demoIface, zkt.ProviderURL("10.0.0.1", 20890, demoIface, map[string]string{"version": "2.0.0", "weight": "200"}))
	// A consumer-only interface must not become a service.
	app.CreateRaw(t, zkt.NodePath("/dubbo", "com.example.OnlyConsumed", "consumers",
		"consumer://10.0.0.9/com.example.OnlyConsumed?category=consumers&side=consumer"))

	e := newEnv(t, registry.Options{}, zkAddr(zs, "name=zk1"))
	e.waitSynced(t)

	// Initial list: caches filled, nothing pushed.
	if n := e.rec.Count("eds "); n != 0 {
		t.Fatalf("%d EDS pushes before sync, want 0 (cache only)", n)
	}
	if n := e.rec.Count("full "); n != 0 {
		t.Fatalf("%d full pushes before sync, want 0", n)
	}
	if n := e.rec.Count("config"); n != 1 {
		t.Fatalf("%d config updates at sync, want exactly 1 (so istiod's first push context has every service)", n)
	}
	svc := e.ctl.GetService(demoHost)
	if svc == nil {
		t.Fatalf("no service %s; have %v", demoHost, e.ctl.Services())
	}
	if len(svc.Ports) != 1 || svc.Ports[0].Port != 20880 || svc.Ports[0].Protocol != protocol.Dubbo || svc.Ports[0].Name != "dubbo" {
		t.Fatalf("service ports %v, want one Dubbo port 20880 named dubbo", svc.Ports)
	}
	if svc.Attributes.Namespace != "dubbo" || svc.Attributes.ServiceRegistry != registry.ProviderID {
		t.Fatalf("service attributes %+v", svc.Attributes)
	}
	if got := e.ctl.Interface(demoHost); got != demoIface {
		t.Fatalf("Interface(%s) = %q, want the exact %q", demoHost, got, demoIface)
	}
	if e.ctl.GetService("com.example.onlyconsumed") != nil {
		t.Fatalf("a consumer-only interface became a service")
	}
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880", "10.0.0.1:20890"))
	eps := e.rec.Last(demoHost)
	byPort := map[uint32]*model.IstioEndpoint{}
	for _, ep := range eps {
		byPort[ep.EndpointPort] = ep
	}
	if byPort[20880].Labels["version"] != "1.0.0" || byPort[20890].Labels["version"] != "2.0.0" {
		t.Fatalf("version labels: %v / %v", byPort[20880].Labels, byPort[20890].Labels)
	}
	if byPort[20890].LbWeight != 200 || byPort[20880].LbWeight != 100 {
		t.Fatalf("weights %d/%d, want 100/200", byPort[20880].LbWeight, byPort[20890].LbWeight)
	}
	if byPort[20880].Labels["registry"] != "zk1" || byPort[20880].Labels["application"] != "demo-provider" {
		t.Fatalf("labels %v", byPort[20880].Labels)
	}
	for _, k := range []string{"timestamp", "pid", "methods"} {
		if _, ok := byPort[20880].Labels[k]; ok {
			t.Fatalf("volatile parameter %s became a label: %v", k, byPort[20880].Labels)
		}
	}
	if byPort[20880].WorkloadName == byPort[20890].WorkloadName {
		t.Fatalf("two providers on one IP share the workload name %s", byPort[20880].WorkloadName)
	}
	// The provider's own proxy sees the services it serves.
	targets := e.ctl.GetProxyServiceTargets(&model.Proxy{IPAddresses: []string{"10.0.0.1"}})
	if len(targets) != 2 {
		t.Fatalf("service targets for 10.0.0.1: %v, want 2", targets)
	}

	// A provider leaves: one incremental EDS update with the complete remaining list.
	start := time.Now()
	app.Unregister(t, v2)
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880"))
	t.Logf("removal reached the registry in %v", time.Since(start))
	if n := e.rec.Count("eds " + demoHost); n != 1 {
		t.Fatalf("%d EDS updates for the removal, want 1", n)
	}
	if n := e.rec.Count("full "); n != 0 {
		t.Fatalf("provider churn caused %d full pushes", n)
	}

	// A new interface appears without restart: service event (full push), then its EDS.
	other := "org.apache.dubbo.samples.Greeter$Inner"
	app.Register(t, other, zkt.ProviderURL("10.0.0.2", 20881, other, nil))
	eventually(t, wantAddrs(e.rec, "org.apache.dubbo.samples.greeter-inner", "10.0.0.2:20881"))
	if n := e.rec.Count("full org.apache.dubbo.samples.greeter-inner"); n != 1 {
		t.Fatalf("new interface caused %d full pushes, want 1", n)
	}

	// disabled=true takes an endpoint out; the node comes back enabled: in again.
	dis := app.Register(t, other, zkt.ProviderURL("10.0.0.3", 20881, other, map[string]string{"disabled": "true"}))
	eventually(t, func() error {
		for _, i := range e.ctl.Debug().Interfaces {
			for _, ig := range i.Ignored {
				if i.Interface == other && ig.Address == "10.0.0.3" && ig.Reason == "disabled" {
					return nil
				}
			}
		}
		return fmt.Errorf("the disabled provider 10.0.0.3 is not listed as ignored")
	})
	if err := wantAddrs(e.rec, "org.apache.dubbo.samples.greeter-inner", "10.0.0.2:20881")(); err != nil {
		t.Fatal(err)
	}
	app.Unregister(t, dis)
	app.Register(t, other, zkt.ProviderURL("10.0.0.3", 20881, other, nil))
	eventually(t, wantAddrs(e.rec, "org.apache.dubbo.samples.greeter-inner", "10.0.0.2:20881", "10.0.0.3:20881"))
}

func TestBadInputNeverPoisons(t *testing.T) {
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 10*time.Second)
	good := zkt.ProviderURL("10.0.0.1", 20880, demoIface, nil)
	app.Register(t, demoIface, good)
	dir := "/dubbo/" + demoIface + "/providers/"
	junk := map[string]string{
		"not a url":           "hello-world",
		"wrong scheme":        zkt.JavaURLEncode("http//10.0.0.1:20880/" + demoIface),
		"missing port":        zkt.JavaURLEncode("dubbo://10.0.0.1/" + demoIface + "?interface=" + demoIface),
		"non-numeric port":    zkt.JavaURLEncode("dubbo://10.0.0.1:abc/" + demoIface),
		"port 0":              zkt.JavaURLEncode("dubbo://10.0.0.1:0/" + demoIface),
		"port 70000":          zkt.JavaURLEncode("dubbo://10.0.0.1:70000/" + demoIface),
		"missing interface":   zkt.JavaURLEncode("dubbo://10.0.0.1:20880/?side=provider"),
		"garbage encoding":    "dubbo%3A%2F%2F10.0.0.1%3A2%zz",
		"10000 chars":         strings.Repeat("x", 10000),
		"20000 chars":         "dubbo%3A%2F%2F" + strings.Repeat("x", 20000),
		"consumer url":        zkt.JavaURLEncode("consumer://10.0.0.7/" + demoIface + "?side=consumer&category=consumers"),
		"other interface":     zkt.JavaURLEncode(zkt.ProviderURL("10.0.0.8", 20880, "com.evil.Other", nil)),
		"rest protocol":       zkt.JavaURLEncode(strings.Replace(zkt.ProviderURL("10.0.0.9", 8080, demoIface, nil), "dubbo://", "rest://", 1)),
		"hostname not ip":     zkt.JavaURLEncode(zkt.ProviderURL("provider.local", 20880, demoIface, nil)),
		"bad weight (kept)":   zkt.JavaURLEncode(zkt.ProviderURL("10.0.0.10", 20880, demoIface, map[string]string{"weight": "-5"})),
		"control char":        zkt.JavaURLEncode("dubbo://10.0.0.1:20880/" + demoIface + "?a=\x01"),
		"empty parameter key": zkt.JavaURLEncode("dubbo://10.0.0.1:20880/" + demoIface + "?=x"),
	}
	for _, node := range junk {
		app.CreateRaw(t, dir+node)
	}
	// Junk at the interface level too.
	app.CreateRaw(t, "/dubbo/"+strings.Repeat("%zz", 10))
	app.CreateRaw(t, "/dubbo/has space/providers")

	e := newEnv(t, registry.Options{}, zkAddr(zs, ""))
	e.waitSynced(t)
	// The good provider and the one with a bad weight (default weight) are served.
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880", "10.0.0.10:20880"))
	for _, ep := range e.rec.Last(demoHost) {
		if ep.LbWeight != 100 {
			t.Fatalf("endpoint %s weight %d, want the default 100", ep.FirstAddressOrNil(), ep.LbWeight)
		}
	}
	v := e.ctl.Debug()
	var rejected []string
	for _, i := range v.Interfaces {
		for _, r := range i.Rejected {
			rejected = append(rejected, r.Error)
		}
	}
	if len(rejected) != len(junk)-1 {
		t.Fatalf("%d rejected nodes, want %d:\n%s", len(rejected), len(junk)-1, strings.Join(rejected, "\n"))
	}
	for _, reason := range []string{"not_a_url", "bad_port", "bad_interface", "bad_encoding", "too_long", "not_a_provider", "unsupported_protocol", "bad_host", "bad_parameter"} {
		if !strings.Contains(strings.Join(rejected, "\n"), reason) {
			t.Errorf("no rejection with reason %s:\n%s", reason, strings.Join(rejected, "\n"))
		}
	}
}

func TestThousandsOfProvidersInOneDirectory(t *testing.T) {
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 30*time.Second)
	const n = 3000
	want := make([]string, 0, n)
	for i := 0; i < n; i++ {
		ip := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
		app.Register(t, demoIface, zkt.ProviderURL(ip, 20880, demoIface, map[string]string{"methods": strings.Repeat("someLongMethodName,", 20)}))
		want = append(want, ip+":20880")
	}
	e := newEnv(t, registry.Options{}, zkAddr(zs, ""))
	e.waitSynced(t)
	eventually(t, wantAddrs(e.rec, demoHost, want...))
}

func TestZooKeeperDownKeepsEndpoints(t *testing.T) {
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 20*time.Second)
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.1", 20880, demoIface, nil))
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.2", 20880, demoIface, nil))
	e := newEnv(t, registry.Options{ReconnectGrace: 5 * time.Second}, zkAddr(zs, ""))
	e.waitSynced(t)
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880", "10.0.0.2:20880"))

	zs.Stop()
	eventually(t, func() error {
		if r := e.ctl.Debug().Registries[0]; r.Connected {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	// The window is the point: an outage longer than the registry's session timeout (4s)
	// must not change the endpoints.
	time.Sleep(5 * time.Second)
	if err := wantAddrs(e.rec, demoHost, "10.0.0.1:20880", "10.0.0.2:20880")(); err != nil {
		t.Fatalf("ZooKeeper down changed the endpoints: %v", err)
	}

	// Back with the same data: the providers' sessions (20s) survived. Changes flow again
	// (Register waits for the provider client's session to come back).
	zs.Restart(t)
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.3", 20880, demoIface, nil))
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.3:20880"))
	if m := e.rec.Min(demoHost); m < 2 {
		t.Fatalf("endpoints dropped to %d during the outage", m)
	}
}

func TestLostSessionNeverWipesEndpoints(t *testing.T) {
	zs := zkt.Start(t)
	// istiod and the providers reach ZooKeeper through partitionable links.
	istiodLink, providerLink := zkt.StartProxy(t, zs.Addr), zkt.StartProxy(t, zs.Addr)
	stays := zkt.Connect(t, providerLink.Addr, 3*time.Second) // re-registers on its new session, as Dubbo does
	stays.Register(t, demoIface, zkt.ProviderURL("10.0.0.1", 20880, demoIface, nil))
	leaves := zkt.Connect(t, providerLink.Addr, 3*time.Second)
	leaves.Register(t, demoIface, zkt.ProviderURL("10.0.0.2", 20880, demoIface, nil))
	persistent := zkt.Connect(t, zs.Addr, 3*time.Second)
	persistent.Register(t, demoIface, zkt.ProviderURL("10.0.0.3", 20880, demoIface, map[string]string{"dynamic": "false"}))

	e := newEnv(t, registry.Options{ReconnectGrace: 4 * time.Second},
		"zookeeper://"+istiodLink.Addr+"?session-timeout=2s")
	e.waitSynced(t)
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.3:20880"))

	// A partition longer than every session timeout: the server expires istiod's session
	// and the providers' (their ephemeral nodes vanish). One provider stops meanwhile.
	istiodLink.Cut()
	providerLink.Cut()
	leaves.Close()
	// The window is the point: a partition longer than every session timeout must not
	// change the endpoints while istiod cannot see ZooKeeper.
	time.Sleep(5 * time.Second)
	if err := wantAddrs(e.rec, demoHost, "10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.3:20880")(); err != nil {
		t.Fatalf("endpoints changed while the registry was partitioned: %v", err)
	}
	// istiod comes back first and re-lists: only the persistent provider is there.
	istiodLink.Heal()
	eventually(t, func() error {
		if r := e.ctl.Debug().Registries[0]; !r.Connected || r.Sessions < 2 {
			return fmt.Errorf("no new session yet: %+v", r)
		}
		return nil
	})
	// The new session re-lists: the two providers whose sessions expired are missing and
	// their removals are held.
	eventually(t, func() error {
		if r := e.ctl.Debug().Registries[0]; r.Held == 0 {
			return fmt.Errorf("no removals held after the re-list: %+v", r)
		}
		return nil
	})
	if m := e.rec.Min(demoHost); m < 3 {
		t.Fatalf("endpoints dropped to %d after the session loss, within the grace", m)
	}
	// The providers' link heals: "stays" re-registers on its new session.
	providerLink.Heal()
	// After the grace, only the provider that did not come back is removed.
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880", "10.0.0.3:20880"))
	if m := e.rec.Min(demoHost); m < 2 {
		t.Fatalf("endpoints dropped to %d", m)
	}
}

func TestUnreachableRegistryDoesNotBlockReadiness(t *testing.T) {
	// Nothing listens on this port yet.
	zs := zkt.Start(t)
	zs.Stop()
	e := newEnv(t, registry.Options{SyncTimeout: 2 * time.Second}, zkAddr(zs, ""))
	start := time.Now()
	e.waitSynced(t)
	t.Logf("synced after %v without any registry data (sync timeout 2s)", time.Since(start))
	if r := e.ctl.Debug().Registries[0]; r.Synced || r.Connected {
		t.Fatalf("the registry claims to be synced/connected without a server: %+v", r)
	}
	// ZooKeeper appears later: its providers arrive as ordinary updates.
	zs.Restart(t)
	app := zkt.Connect(t, zs.Addr, 10*time.Second)
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.1", 20880, demoIface, nil))
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880"))
	if n := e.rec.Count("full " + demoHost); n != 1 {
		t.Fatalf("%d full pushes for the late service, want 1", n)
	}
}

func TestRegistriesMergePerInterface(t *testing.T) {
	east, west := zkt.Start(t), zkt.Start(t)
	ea := zkt.Connect(t, east.Addr, 10*time.Second)
	wa := zkt.Connect(t, west.Addr, 10*time.Second)
	ea.Register(t, demoIface, zkt.ProviderURL("10.0.0.1", 20880, demoIface, nil))
	shared := zkt.ProviderURL("10.0.0.2", 20880, demoIface, nil)
	ea.Register(t, demoIface, shared)
	wa.Register(t, demoIface, shared) // dual-registered during a migration: served once
	wa.Register(t, demoIface, zkt.ProviderURL("10.0.0.3", 20890, demoIface, nil))

	e := newEnv(t, registry.Options{}, zkAddr(east, "name=east"), zkAddr(west, "name=west"))
	e.waitSynced(t)
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.3:20890"))
	if n := len(e.ctl.Services()); n != 1 {
		t.Fatalf("%d services, want 1 merged", n)
	}
	reg := map[string]string{}
	for _, ep := range e.rec.Last(demoHost) {
		reg[ep.FirstAddressOrNil()] = ep.Labels["registry"]
	}
	if reg["10.0.0.1"] != "east" || reg["10.0.0.2"] != "east" || reg["10.0.0.3"] != "west" {
		t.Fatalf("registry labels %v", reg)
	}
}

// go-zookeeper drops events once its 6-slot event channel is full. While the watcher's
// session handling is held up (the registry busy under its lock), a partition makes
// the client emit a burst of session events (three per failed reconnect) and, once
// healed, the session comes back and every watch fires at once. The watcher must still
// end up connected and re-listing: it must not depend on receiving StateHasSession.
func TestSessionEventFloodIsNotLost(t *testing.T) {
	zs := zkt.Start(t)
	link := zkt.StartProxy(t, zs.Addr)
	app := zkt.Connect(t, zs.Addr, 30*time.Second)
	const n = 20
	iface := func(i int) string { return fmt.Sprintf("com.example.Flood%02d", i) }
	host := func(i int) string { return fmt.Sprintf("com.example.flood%02d", i) }
	for i := 0; i < n; i++ {
		app.Register(t, iface(i), zkt.ProviderURL("10.0.1.1", 20880, iface(i), nil))
	}
	e := newEnv(t, registry.Options{}, "zookeeper://"+link.Addr+"?session-timeout=20s")
	e.waitSynced(t)
	for i := 0; i < n; i++ {
		eventually(t, wantAddrs(e.rec, host(i), "10.0.1.1:20880"))
	}

	release := e.sink.Hold()
	link.Cut()
	// The watcher is reporting the disconnect and waits in the sink.
	eventually(t, func() error {
		if e.sink.Held() == 0 {
			return fmt.Errorf("the disconnect was not reported yet")
		}
		return nil
	})
	// Three failed reconnects: nine more session events than go-zookeeper buffers (6).
	eventually(t, func() error {
		if r := link.Refused(); r < 3 {
			return fmt.Errorf("%d reconnect attempts refused, want 3", r)
		}
		return nil
	})
	// Every watched interface changes meanwhile: all watches fire on reconnection.
	for i := 0; i < n; i++ {
		app.Register(t, iface(i), zkt.ProviderURL("10.0.1.2", 20880, iface(i), nil))
	}
	link.Heal()
	// The server has the watcher's session back on the healed link (the client got its
	// StateHasSession while its session handling was still held up).
	eventually(t, func() error {
		sessions := zs.Sessions()
		for _, a := range link.Upstreams() {
			if sessions[a] != "" {
				return nil
			}
		}
		return fmt.Errorf("no session through the healed link yet (sessions %v)", sessions)
	})
	release()

	eventually(t, func() error {
		if r := e.ctl.Debug().Registries[0]; !r.Connected {
			return fmt.Errorf("registry not connected after the partition healed: %+v", r)
		}
		return nil
	})
	for i := 0; i < n; i++ {
		eventually(t, wantAddrs(e.rec, host(i), "10.0.1.1:20880", "10.0.1.2:20880"))
	}
	// The watches are armed again: a later change arrives too.
	app.Register(t, iface(0), zkt.ProviderURL("10.0.1.3", 20880, iface(0), nil))
	eventually(t, wantAddrs(e.rec, host(0), "10.0.1.1:20880", "10.0.1.2:20880", "10.0.1.3:20880"))
}

// A providers node the watcher may not read (its ACL leaves istiod out) is reported to
// the sink on every attempt, retried with exponential backoff (reset once it lists
// again), and never holds up the other interfaces.
func TestUnreadableProvidersBackOffAndRecover(t *testing.T) {
	const (
		locked     = "com.example.LockedService"
		lockedHost = "com.example.lockedservice"
	)
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 30*time.Second)
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.1", 20880, demoIface, nil))
	lockedDir := "/dubbo/" + locked + "/providers"
	app.CreateProtected(t, lockedDir)
	app.Register(t, locked, zkt.ProviderURL("10.0.2.1", 20880, locked, nil))

	// The backoff each retry of the locked path asked for; the test waits 1/100 of it.
	var mu sync.Mutex
	var backoffs []time.Duration
	recorded := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), backoffs...)
	}
	e := newEnvWith(t, registry.Options{SyncTimeout: time.Second}, func(w *zookeeper.Watcher) {
		zookeeper.SetRetrySleep(w, func(p string, d time.Duration, stop <-chan struct{}) bool {
			if p == lockedDir {
				mu.Lock()
				backoffs = append(backoffs, d)
				mu.Unlock()
			}
			select {
			case <-time.After(d / 100):
				return true
			case <-stop:
				return false
			}
		})
	}, zkAddr(zs, ""))
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880"))

	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	eventually(t, func() error {
		if got := recorded(); len(got) < len(want) {
			return fmt.Errorf("%d retries of %s so far, want %d", len(got), lockedDir, len(want))
		}
		return nil
	})
	if got := recorded()[:len(want)]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("backoffs %v, want %v", got, want)
	}
	errs := e.sink.ListErrors(locked)
	if len(errs) < len(want) {
		t.Fatalf("%d ListError calls for %s, want one per failed attempt (>= %d)", len(errs), locked, len(want))
	}
	for _, err := range errs {
		if !errors.Is(err, zk.ErrNoAuth) {
			t.Fatalf("ListError(%s) = %v, want %v", locked, err, zk.ErrNoAuth)
		}
	}
	if e.ctl.GetService(lockedHost) != nil {
		t.Fatalf("a service for the unreadable interface")
	}
	// The other interfaces keep working meanwhile.
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.2", 20880, demoIface, nil))
	eventually(t, wantAddrs(e.rec, demoHost, "10.0.0.1:20880", "10.0.0.2:20880"))
	if errs := e.sink.ListErrors(demoIface); len(errs) != 0 {
		t.Fatalf("ListError for a readable interface: %v", errs)
	}

	// The ACL is fixed: the next retry lists, reports the recovery once, and delivers.
	app.SetWorldACL(t, lockedDir)
	eventually(t, wantAddrs(e.rec, lockedHost, "10.0.2.1:20880"))
	errs = e.sink.ListErrors(locked)
	if errs[len(errs)-1] != nil {
		t.Fatalf("no ListError(nil) after the path listed again: %v", errs)
	}
	nils := 0
	for _, err := range errs {
		if err == nil {
			nils++
		}
	}
	if nils != 1 {
		t.Fatalf("%d ListError(nil) calls, want exactly 1: %v", nils, errs)
	}
	// (The reset of the backoff after a success is TestBackoffResetsAfterSuccess: a
	// node that becomes unreadable again cannot be observed by its watcher, since
	// ZooKeeper does not send watch events to a client that may not read the node.)
}

// The watcher remembers the bad root children it warned about only while they exist.
func TestBadChildrenFollowTheTree(t *testing.T) {
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 30*time.Second)
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.1", 20880, demoIface, nil))
	for i := 0; i < 3; i++ {
		app.CreateRaw(t, fmt.Sprintf("/dubbo/not an interface %d", i))
	}
	e := newEnv(t, registry.Options{}, zkAddr(zs, ""))
	e.waitSynced(t)
	w := e.watchers[0]
	eventually(t, func() error {
		if n := zookeeper.BadChildren(w); n != 3 {
			return fmt.Errorf("%d bad children remembered, want 3", n)
		}
		return nil
	})
	for i := 0; i < 3; i++ {
		app.Unregister(t, fmt.Sprintf("/dubbo/not an interface %d", i))
	}
	eventually(t, func() error {
		if n := zookeeper.BadChildren(w); n != 0 {
			return fmt.Errorf("%d bad children remembered after they were deleted, want 0", n)
		}
		return nil
	})
	// The good interface is untouched.
	if err := wantAddrs(e.rec, demoHost, "10.0.0.1:20880")(); err != nil {
		t.Fatal(err)
	}
}
