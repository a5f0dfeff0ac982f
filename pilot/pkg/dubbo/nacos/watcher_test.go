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

package nacos_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"istio.io/istio/pkg/test/util/retry"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/appdiscovery"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/extension"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry/registrytest"
	nacosfw "github.com/dubbo-istiod/dubbo-istiod/tests/framework/nacos"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// These tests run the Nacos registry as istiod wires it (extension.NewRegistry) against a
// real Nacos-protocol server: Polaris's Nacos-compatible API (tests/framework/nacos).

const (
	greet     = "com.example.GreetService"
	greetHost = "com.example.greetservice"
	wait      = 30 * time.Second
)

var greetService = "providers:" + greet + "::"

// env is a Dubbo registry reading registries through istiod's wiring.
type env struct {
	ctl *registry.Controller
	rec *registrytest.Recorder
}

// flags are istiod's, for tests. The reconnect grace covers a restarted server's first
// (empty) lists until the providers' clients registered again: ~3 s after the restart on
// an idle machine (tests/framework/nacos), more under load.
func flags(t *testing.T, registries ...string) extension.Flags {
	return extension.Flags{
		Registries: registries, Namespace: "dubbo", ServicePort: 20880, TriplePort: 50051,
		SyncTimeout: 20 * time.Second, ReconnectGrace: 10 * time.Second, Levels: "all",
		MetadataTimeout: 2 * time.Second, MetadataConcurrency: 4,
		NacosListInterval: 300 * time.Millisecond, NacosDir: t.TempDir(),
	}
}

func start(t *testing.T, f extension.Flags) *env {
	t.Helper()
	rec := registrytest.NewRecorder()
	ctl, runners, err := extension.NewRegistry(f, "Kubernetes", rec)
	if err != nil {
		t.Fatal(err)
	}
	ctl.AppendServiceHandler(rec.FullPush)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range append(runners, ctl) {
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(stop) }()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	return &env{ctl: ctl, rec: rec}
}

func (e *env) dubboz(t *testing.T) registry.DebugView {
	t.Helper()
	w := httptest.NewRecorder()
	e.ctl.DebugHandler(w, httptest.NewRequest("GET", "/debug/dubboz", nil))
	var v registry.DebugView
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("dubboz: %v\n%s", err, w.Body.String())
	}
	return v
}

// nacosView is the first Nacos registry of /debug/dubboz.
func (e *env) nacosView(t *testing.T) map[string]any {
	t.Helper()
	v := e.dubboz(t)
	if len(v.Nacos) == 0 {
		t.Fatal("/debug/dubboz has no nacos section")
	}
	return v.Nacos[0].(map[string]any)
}

// providerMetadata is an interface-level instance's metadata as dubbo-go v3.3.2 writes it.
func providerMetadata(app string, extra ...string) map[string]string {
	md := map[string]string{
		"anyhost": "true", "application": app, "interface": greet, "methods": "SayHello",
		"protocol": "dubbo", "path": greet, "side": "provider", "release": "3.3.2",
		"serialization": "hessian2", "category": "providers", "nacos.category": "providers",
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		md[k] = v
	}
	return md
}

func TestInterfaceLevelProviders(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	srv.RegisterInstance(t, "", greetService, "", "10.0.0.1", 20880, providerMetadata("greet"))
	srv.RegisterInstance(t, "", greetService, "", "10.0.0.2", 20881, providerMetadata("greet"))
	srv.RegisterInstance(t, "", greetService, "", "10.0.0.3", 20882, providerMetadata("greet"), nacosfw.Disabled())
	// Another version of the interface is another Nacos service: same Istio service.
	srv.RegisterInstance(t, "", "providers:"+greet+":2.0.0:", "", "10.0.0.4", 20883, providerMetadata("greet", "version=2.0.0"))
	// Consumers and non-Dubbo services are never served.
	srv.RegisterInstance(t, "", "consumers:"+greet+"::", "", "10.0.0.9", 1, map[string]string{"side": "consumer"})
	srv.RegisterInstance(t, "", "spring-cloud-orders", "", "10.0.0.10", 8080, map[string]string{"preserved.register.source": "SPRING_CLOUD"})

	e := start(t, flags(t, srv.URL()))
	retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.0.1:20880", "10.0.0.2:20881", "10.0.0.4:20883"), retry.Timeout(wait))
	for _, ep := range e.rec.Last(greetHost) {
		// The registry name (the first server) made a valid label value.
		if l := ep.Labels[registry.RegistryLabel]; !strings.HasPrefix(l, "127.0.0.1") {
			t.Errorf("endpoint %s: registry label %q, want the registry name %s", ep.FirstAddressOrNil(), l, srv.Address())
		}
	}

	// A provider leaves: pushed by subscription.
	srv.Deregister(t, "", greetService, "", "10.0.0.2", 20881)
	retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.0.1:20880", "10.0.0.4:20883"), retry.Timeout(wait))

	// The service list lags registrations by about a second: wait for the registry to
	// have listed all four services (two providers:, a consumers:, a non-Dubbo one).
	retry.UntilSuccessOrFail(t, func() error {
		n := e.nacosView(t)
		sub := n["subscribed"].(map[string]any)
		switch {
		case n["connected"] != true || n["synced"] != true:
			return fmt.Errorf("dubboz nacos: connected %v synced %v, want true", n["connected"], n["synced"])
		case n["servicesListed"].(float64) != 4:
			return fmt.Errorf("dubboz nacos: %v services listed, want 4", n["servicesListed"])
		case sub["interface"].(float64) != 2:
			// The consumers: service is never subscribed.
			return fmt.Errorf("dubboz nacos: %v interface services subscribed, want 2", sub["interface"])
		case n["nonDubboServices"].(float64) != 1:
			return fmt.Errorf("dubboz nacos: nonDubboServices %v, want 1 (spring-cloud-orders)", n["nonDubboServices"])
		}
		return nil
	}, retry.Timeout(wait))
	// The disabled instance is not served (above). Polaris leaves disabled instances out
	// of the lists it pushes; Alibaba's Nacos sends them with enabled=false, and the
	// registry counts them out of rotation (TestInRotation, TestApplyInterfaceLevel).
}

func TestWeightAndHealth(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	// No weight parameter: the Nacos weight counts (2.0 -> 200).
	srv.RegisterInstance(t, "", greetService, "", "10.0.1.1", 20880, providerMetadata("greet"), nacosfw.WithWeight(2))
	// A weight parameter wins over the Nacos weight.
	srv.RegisterInstance(t, "", greetService, "", "10.0.1.2", 20880, providerMetadata("greet", "weight=30"), nacosfw.WithWeight(5))
	e := start(t, flags(t, srv.URL()))
	retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.1.1:20880", "10.0.1.2:20880"), retry.Timeout(wait))
	got := map[string]uint32{}
	for _, ep := range e.rec.Last(greetHost) {
		got[ep.FirstAddressOrNil()] = ep.LbWeight
	}
	if got["10.0.1.1"] != 200 || got["10.0.1.2"] != 30 {
		t.Errorf("weights %v, want 10.0.1.1=200 (Nacos weight 2) and 10.0.1.2=30 (URL weight)", got)
	}
}

// TestMergeWithZooKeeper: a provider registered in ZooKeeper and in Nacos is one
// endpoint; providers in either are served under one Istio service, labelled by registry.
func TestMergeWithZooKeeper(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	z := zk.Start(t)
	both := providerMetadata("greet")
	srv.RegisterInstance(t, "", greetService, "", "10.0.2.1", 20880, both)
	srv.RegisterInstance(t, "", greetService, "", "10.0.2.2", 20880, providerMetadata("greet"))
	zc := zk.Connect(t, z.Addr, 10*time.Second)
	zc.Register(t, greet, "dubbo://10.0.2.1:20880/"+greet+"?interface="+greet+"&application=greet&side=provider&methods=SayHello")
	zc.Register(t, greet, "dubbo://10.0.2.3:20880/"+greet+"?interface="+greet+"&application=greet&side=provider&methods=SayHello")

	e := start(t, flags(t, "zookeeper://"+z.Addr+"?name=zk", srv.URL()+"?name=nacos&registry-type=interface"))
	retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.2.1:20880", "10.0.2.2:20880", "10.0.2.3:20880"), retry.Timeout(wait))
	labels := map[string]string{}
	for _, ep := range e.rec.Last(greetHost) {
		labels[ep.FirstAddressOrNil()] = ep.Labels[registry.RegistryLabel]
	}
	// The first registry configured wins a provider both list.
	want := map[string]string{"10.0.2.1": "zk", "10.0.2.2": "nacos", "10.0.2.3": "zk"}
	for ip, l := range want {
		if labels[ip] != l {
			t.Errorf("endpoint %s: registry label %q, want %q (all: %v)", ip, labels[ip], l, labels)
		}
	}
}

// TestApplicationLevelRemoteMetadata: a Dubbo 3 application instance whose metadata is
// in the Nacos config center (dataId=<app>, group=<revision>).
func TestApplicationLevelRemoteMetadata(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	const app, rev = "greet-provider", "5d2b0a8e1c"
	md := map[string]any{"app": app, "revision": rev, "services": map[string]any{
		greet + ":dubbo": map[string]any{"name": greet, "protocol": "dubbo", "port": 20880, "path": greet,
			"params": map[string]string{"application": app, "methods": "SayHello", "release": "3.3.2"}},
		greet + ":tri": map[string]any{"name": greet, "protocol": "tri", "port": 50051, "path": greet,
			"params": map[string]string{"application": app, "methods": "SayHello", "release": "3.3.2"}},
	}}
	body, _ := json.Marshal(md)
	srv.PublishConfig(t, "", app, rev, string(body))
	srv.RegisterInstance(t, "", app, "", "10.0.3.1", 20880, map[string]string{
		appdiscovery.KeyRevision:    rev,
		appdiscovery.KeyStorageType: "remote",
		appdiscovery.KeyEndpoints:   `[{"port":20880,"protocol":"dubbo"},{"port":50051,"protocol":"tri"}]`,
	})
	e := start(t, flags(t, srv.URL()))
	retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.3.1:20880", "10.0.3.1:50051"), retry.Timeout(wait))
}

// TestNamespaceIsolation: a registry reads its own namespace only.
func TestNamespaceIsolation(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	srv.CreateNamespace(t, "dev")
	srv.RegisterInstance(t, "dev", greetService, "", "10.0.4.1", 20880, providerMetadata("greet"))
	srv.RegisterInstance(t, "", greetService, "", "10.0.4.2", 20880, providerMetadata("greet"))
	dev := start(t, flags(t, srv.URL()+"?namespace=dev"))
	pub := start(t, flags(t, srv.URL()))
	retry.UntilSuccessOrFail(t, dev.rec.WantAddrs(greetHost, "10.0.4.1:20880"), retry.Timeout(wait))
	retry.UntilSuccessOrFail(t, pub.rec.WantAddrs(greetHost, "10.0.4.2:20880"), retry.Timeout(wait))
	// Still isolated after both lists settled.
	for _, c := range []struct {
		e    *env
		want string
	}{{dev, "10.0.4.1:20880"}, {pub, "10.0.4.2:20880"}} {
		retry.UntilSuccessOrFail(t, func() error {
			if n := c.e.nacosView(t); n["synced"] != true {
				return errorf("not synced")
			}
			return c.e.rec.WantAddrs(greetHost, c.want)()
		}, retry.Timeout(wait))
	}
}

// TestEmptyPushProtection: a push with no instance for a service that had providers
// follows the registry's empty protection, as for ZooKeeper.
func TestEmptyPushProtection(t *testing.T) {
	for _, protect := range []bool{true, false} {
		t.Run(map[bool]string{true: "protected", false: "unprotected"}[protect], func(t *testing.T) {
			srv := nacosfw.Start(t, nacosfw.Options{})
			srv.RegisterInstance(t, "", greetService, "", "10.0.5.1", 20880, providerMetadata("greet"))
			srv.RegisterInstance(t, "", greetService, "", "10.0.5.2", 20880, providerMetadata("greet"))
			f := flags(t, srv.URL())
			f.EmptyProtection = protect
			e := start(t, f)
			retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.5.1:20880", "10.0.5.2:20880"), retry.Timeout(wait))
			srv.Deregister(t, "", greetService, "", "10.0.5.1", 20880)
			retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.5.2:20880"), retry.Timeout(wait))
			pushes := pushCount(t, e)
			srv.Deregister(t, "", greetService, "", "10.0.5.2", 20880)
			// Observable: the empty list reached the registry (one more push counted).
			retry.UntilSuccessOrFail(t, func() error {
				if pushCount(t, e) <= pushes {
					return errorf("the empty list did not arrive yet")
				}
				return nil
			}, retry.Timeout(wait))
			if protect {
				if err := e.rec.WantAddrs(greetHost, "10.0.5.2:20880")(); err != nil {
					t.Errorf("empty protection: %v", err)
				}
			} else {
				retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost), retry.Timeout(wait))
			}
		})
	}
}

func pushCount(t *testing.T, e *env) float64 {
	return e.nacosView(t)["pushes"].(float64)
}

// TestServerDownAndBack: endpoints stay while the server is down; after it is back, a
// provider that left meanwhile is removed once the reconnect grace is over, and one
// that registered meanwhile is added.
func TestServerDownAndBack(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	srv.RegisterInstance(t, "", greetService, "", "10.0.6.1", 20880, providerMetadata("greet"))
	// A provider that goes while the server is down (its client closed: a dead process).
	srv.RegisterInstance(t, "", greetService, "", "10.0.6.2", 20880, providerMetadata("greet"))
	f := flags(t, srv.URL())
	e := start(t, f)
	retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.6.1:20880", "10.0.6.2:20880"), retry.Timeout(wait))

	// SIGKILL: a graceful stop may push its clients' deregistrations to us before it
	// closes our connection (docs/registry.md, Nacos faults).
	srv.Kill()
	retry.UntilSuccessOrFail(t, func() error {
		if e.nacosView(t)["connected"] != false {
			return errorf("still connected")
		}
		return nil
	}, retry.Timeout(wait))
	if err := e.rec.WantAddrs(greetHost, "10.0.6.1:20880", "10.0.6.2:20880")(); err != nil {
		t.Errorf("while the server is down: %v", err)
	}
	srv.Disconnect(t, "", greetService, "", "10.0.6.2", 20880)
	down := time.Now()
	srv.Start()
	retry.UntilSuccessOrFail(t, func() error {
		if e.nacosView(t)["connected"] != true {
			return errorf("not connected again")
		}
		return nil
	}, retry.Timeout(wait))
	t.Logf("reconnected %v after the server started", time.Since(down))
	// The helper client registers its instance again; the closed one does not.
	retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.6.1:20880"), retry.Timeout(wait))
	if e.rec.Min(greetHost) == 0 {
		t.Errorf("the endpoints went empty at some point during the outage")
	}
	v := e.dubboz(t)
	for _, r := range v.Registries {
		if r.Name == srv.Address() && r.Sessions < 2 {
			t.Errorf("registry %s: %d sessions, want a new one after the server came back", r.Name, r.Sessions)
		}
	}
}

// TestServerDownAtStart: istiod becomes ready after the sync timeout without the server,
// keeps trying, and serves the providers once it is up.
func TestServerDownAtStart(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	srv.RegisterInstance(t, "", greetService, "", "10.0.7.1", 20880, providerMetadata("greet"))
	srv.Stop()
	f := flags(t, srv.URL())
	f.SyncTimeout = 2 * time.Second
	e := start(t, f)
	retry.UntilSuccessOrFail(t, func() error {
		if !e.ctl.HasSynced() {
			return errorf("not synced")
		}
		return nil
	}, retry.Timeout(wait))
	n := e.nacosView(t)
	if n["connected"] != false || n["errors"] == nil {
		t.Errorf("dubboz nacos while the server is down: connected %v errors %v; want false and the list error", n["connected"], n["errors"])
	}
	srv.Start()
	retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.7.1:20880"), retry.Timeout(wait))
}

type errString string

func (e errString) Error() string { return string(e) }

func errorf(s string) error { return errString(s) }

// TestLoginRefusedIsReported: a login that does not succeed is a clear error in
// /debug/dubboz and the metric, retried at every interval, and nothing else stops.
// Polaris's Nacos API has no login endpoint (tests/framework/nacos), so every login fails
// there (HTTP 404); against Alibaba's Nacos a bad password is a 403 "unknown user!". Polaris serves reads without a
// login, so the providers are still served.
func TestLoginRefusedIsReported(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	srv.RegisterInstance(t, "", greetService, "", "10.0.8.1", 20880, providerMetadata("greet"))
	e := start(t, flags(t, "nacos://dubbo:wrong-password@"+srv.Address()))
	retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.8.1:20880"), retry.Timeout(wait))
	n := e.nacosView(t)
	errs, _ := n["errors"].(map[string]any)
	auth, _ := errs["auth"].(map[string]any)
	if msg, _ := auth["error"].(string); !strings.Contains(msg, `login as "dubbo"`) || !strings.Contains(msg, "HTTP 404") {
		t.Errorf("dubboz nacos errors[auth] = %v, want the failed login", errs["auth"])
	}
	if strings.Contains(n["address"].(string), "wrong-password") {
		t.Errorf("dubboz shows the password: %s", n["address"])
	}
}
