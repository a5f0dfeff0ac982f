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
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/protocol"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/appdiscovery"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/zookeeper"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/dubbowire"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// Application-level discovery (Dubbo 3) on a real ZooKeeper, with node bodies as
// dubbo-go v3.3.2 writes them. The end-to-end tests run real Dubbo 3 providers; these
// cover the cases a real provider cannot be made to produce (junk, a metadata report
// that lacks a revision, thousands of instances).

const (
	greetIface = "com.example.GreetService"
	greetHost  = "com.example.greetservice"
)

// appEnv is a registry controller reading one ZooKeeper at the given levels.
type appEnv struct {
	*env
	src     *appdiscovery.Source
	fetches *fetchCounter
}

// fetchCounter counts remote metadata reads per revision.
type fetchCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *fetchCounter) add(rev string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n[rev]++
}

func (f *fetchCounter) get(rev string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[rev]
}

func newAppEnv(t *testing.T, addr string, opts appdiscovery.Options) *appEnv {
	t.Helper()
	fc := &fetchCounter{n: map[string]int{}}
	e := newEnv(t, registry.Options{}, addr)
	// newEnvWith added the interface level of addr and runs its watcher; the application
	// level gets a watcher of its own here, as a registry read at both levels would have
	// one watcher for both (the levels are independent paths).
	cfg, err := zookeeper.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Levels = zookeeper.Levels{Application: true}
	name, err := e.ctl.AddApplicationSource(cfg.Name, addr)
	if err != nil {
		t.Fatal(err)
	}
	w := zookeeper.NewWatcher(cfg, e.sink)
	opts.Source = name
	opts.Remote = func(ctx context.Context, app, rev string) ([]byte, error) {
		fc.add(rev)
		return w.RemoteMetadata(ctx, app, rev)
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 100 * time.Millisecond
		opts.MaxBackoff = 500 * time.Millisecond
	}
	src := appdiscovery.NewSource(opts, e.ctl)
	w.SetAppSink(src, name)
	e.ctl.AddDebugSection(registry.SectionApplications, func() any { return src.Debug() })
	stop := make(chan struct{})
	var running sync.WaitGroup
	running.Add(2)
	go func() { defer running.Done(); w.Run(stop) }()
	go func() { defer running.Done(); src.Run(stop) }()
	t.Cleanup(func() { close(stop); running.Wait() })
	return &appEnv{env: e, src: src, fetches: fc}
}

// instance is a /services/<app>/<ip:port> body as dubbo-go v3.3.2 writes it.
func instance(app, ip string, port int, rev, storage, endpoints string) []byte {
	md := map[string]string{
		appdiscovery.KeyRevision:        rev,
		appdiscovery.KeyStorageType:     storage,
		appdiscovery.KeyMetadataService: `{"group":"` + app + `","port":"20990","protocol":"dubbo","version":"1.0.0"}`,
		"meta-v":                        "1.0.0",
	}
	if endpoints != "" {
		md[appdiscovery.KeyEndpoints] = endpoints
	}
	id := fmt.Sprintf("%s:%d", ip, port)
	b, _ := json.Marshal(map[string]any{"name": app, "id": id, "address": ip, "port": port,
		"payload": map[string]any{"@class": "org.apache.dubbo.registry.zookeeper.ZookeeperInstance", "id": id, "name": app, "metadata": md}})
	return b
}

const bothPorts = `[{"port":20880,"protocol":"dubbo"},{"port":50051,"protocol":"tri"}]`

// metadata is a remote metadata body: the interfaces on dubbo and tri.
func metadata(app, rev string, ifaces ...string) []byte {
	services := map[string]any{}
	for _, i := range ifaces {
		for _, p := range []string{"dubbo", "tri"} {
			port := 20880
			if p == "tri" {
				port = 50051
			}
			services[i+":"+p] = map[string]any{"name": i, "protocol": p, "port": port, "path": i,
				"params": map[string]string{"application": app, "methods": "SayHello", "weight": "0", "release": "3.3.2"}}
		}
	}
	b, _ := json.Marshal(map[string]any{"app": app, "revision": rev, "services": services})
	return b
}

func TestApplicationLevelRemoteMetadata(t *testing.T) {
	zs := zkt.Start(t)
	admin := zkt.Connect(t, zs.Addr, 10*time.Second)
	provider1 := zkt.Connect(t, zs.Addr, 4*time.Second)
	admin.Put(t, "/dubbo/greet/rev1", metadata("greet", "rev1", greetIface), false)
	admin.Put(t, "/dubbo/mapping/"+greetIface, []byte("greet"), false)
	// One process, one node per protocol port, the same body but its own port.
	provider1.Put(t, "/services/greet/10.0.0.1:20880", instance("greet", "10.0.0.1", 20880, "rev1", "remote", bothPorts), true)
	provider1.Put(t, "/services/greet/10.0.0.1:50051", instance("greet", "10.0.0.1", 50051, "rev1", "remote", bothPorts), true)

	start := time.Now()
	e := newAppEnv(t, zkAddr(zs, "name=zk1"), appdiscovery.Options{})
	e.waitSynced(t)
	t.Logf("synced after %v", time.Since(start))

	svc := e.ctl.GetService(greetHost)
	if svc == nil {
		t.Fatalf("no service %s at sync; have %v", greetHost, e.ctl.Services())
	}
	if len(svc.Ports) != 2 || svc.Ports[0].Name != "dubbo" || svc.Ports[0].Protocol != protocol.Dubbo ||
		svc.Ports[1].Name != "grpc-tri" || svc.Ports[1].Port != 50051 || svc.Ports[1].Protocol != protocol.GRPC {
		t.Fatalf("service ports %v, want dubbo/20880 and grpc-tri/50051", svc.Ports)
	}
	eventually(t, wantAddrs(e.rec, greetHost, "10.0.0.1:20880", "10.0.0.1:50051"))
	for _, ep := range e.rec.Last(greetHost) {
		wantPort := map[uint32]string{20880: "dubbo", 50051: "grpc-tri"}[ep.EndpointPort]
		if ep.ServicePortName != wantPort || ep.Labels["registry"] != "zk1" || ep.Labels["application"] != "greet" || ep.LbWeight != 100 {
			t.Fatalf("endpoint %d: port name %q labels %v weight %d", ep.EndpointPort, ep.ServicePortName, ep.Labels, ep.LbWeight)
		}
	}
	if n := e.fetches.get("rev1"); n != 1 {
		t.Fatalf("revision rev1 fetched %d times for two instance nodes, want once", n)
	}
	// /dubbo/greet (the remote metadata of application greet) is not an interface.
	for _, r := range e.ctl.Debug().Registries {
		if r.Name == "zk1" && r.Interfaces != 0 {
			t.Fatalf("the interface level counts %d interfaces; /dubbo/greet holds metadata, not providers", r.Interfaces)
		}
	}

	// Rolling restart: a new instance with a new revision that also adds an interface;
	// then the old one goes. Endpoints move by EDS; the new interface is a new service.
	pushesBefore := e.rec.Count("full " + greetHost)
	provider2 := zkt.Connect(t, zs.Addr, 4*time.Second)
	admin.Put(t, "/dubbo/greet/rev2", metadata("greet", "rev2", greetIface, "com.example.Farewell"), false)
	provider2.Put(t, "/services/greet/10.0.0.2:20880", instance("greet", "10.0.0.2", 20880, "rev2", "remote", bothPorts), true)
	eventually(t, wantAddrs(e.rec, greetHost, "10.0.0.1:20880", "10.0.0.1:50051", "10.0.0.2:20880", "10.0.0.2:50051"))
	eventually(t, wantAddrs(e.rec, "com.example.farewell", "10.0.0.2:20880", "10.0.0.2:50051"))
	provider1.Close()
	eventually(t, wantAddrs(e.rec, greetHost, "10.0.0.2:20880", "10.0.0.2:50051"))
	if n := e.rec.Count("full " + greetHost); n != pushesBefore {
		t.Fatalf("%d full pushes for %s during a rolling restart, want endpoint updates only", n-pushesBefore, greetHost)
	}
	// The old revision is no longer carried: forgotten.
	eventually(t, func() error {
		for _, r := range e.src.Debug().Revisions {
			if r.Revision == "rev1" {
				return fmt.Errorf("revision rev1 still cached")
			}
		}
		return nil
	})

	// Every instance gone: the services stay, without endpoints (as an interface-level
	// interface whose providers all left).
	provider2.Close()
	eventually(t, wantAddrs(e.rec, greetHost))
	if e.ctl.GetService(greetHost) == nil {
		t.Fatalf("service %s removed when its instances left", greetHost)
	}
	if n := e.fetches.get("rev2"); n != 1 {
		t.Fatalf("revision rev2 fetched %d times, want once", n)
	}

	// The application's node goes: so do its services.
	if err := admin.Conn.Delete("/services/greet", -1); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		for _, h := range []string{greetHost, "com.example.farewell"} {
			if e.ctl.GetService(host.Name(h)) != nil {
				return fmt.Errorf("service %s still there after its application was deleted", h)
			}
		}
		return nil
	})
}

// A revision whose metadata is missing or garbage keeps its instances out (never
// guessed), is reported with its reason, does not affect other applications, and
// resolves once its metadata is there.
func TestApplicationLevelUnresolvedAndJunk(t *testing.T) {
	zs := zkt.Start(t)
	admin := zkt.Connect(t, zs.Addr, 10*time.Second)
	admin.Put(t, "/dubbo/good/r1", metadata("good", "r1", "com.example.Good"), false)
	admin.Put(t, "/services/good/10.0.0.1:20880", instance("good", "10.0.0.1", 20880, "r1", "remote", bothPorts), true)
	// No metadata node for "late"'s revision yet.
	admin.Put(t, "/services/late/10.0.0.2:20880", instance("late", "10.0.0.2", 20880, "r9", "remote", bothPorts), true)
	// Garbage metadata.
	admin.Put(t, "/dubbo/garbage/r1", []byte("\x00\x01 not json"), false)
	admin.Put(t, "/services/garbage/10.0.0.3:20880", instance("garbage", "10.0.0.3", 20880, "r1", "remote", bothPorts), true)
	// Junk instance nodes beside a good one of the same application.
	admin.Put(t, "/services/good/junk", []byte("{not json"), true)
	admin.Put(t, "/services/good/10.0.0.9:1", instance("good", "10.0.0.9", 1, "r1", "remote", `{"port":1}`), true)
	admin.Put(t, "/services/good/10.0.0.8:1", []byte(`{"name":"good","address":"10.0.0.8","port":1,"payload":{"metadata":{}}}`), true)
	admin.Put(t, "/services/good/empty", nil, true)
	// A mapping naming an application that does not exist: harmless.
	admin.Put(t, "/dubbo/mapping/com.example.Ghost", []byte("nobody"), false)

	e := newAppEnv(t, zkAddr(zs, "name=zk1"), appdiscovery.Options{})
	e.waitSynced(t)
	eventually(t, wantAddrs(e.rec, "com.example.good", "10.0.0.1:20880", "10.0.0.1:50051"))

	reasons := func() map[string]string {
		out := map[string]string{}
		d := e.src.Debug()
		for _, r := range d.Revisions {
			if !r.Resolved {
				out[r.App+"/"+r.Revision] = r.Error
			}
		}
		for _, a := range d.Applications {
			for _, rj := range a.Rejected {
				out[a.Name+" "+rj.Node] = rj.Error
			}
		}
		return out
	}
	eventually(t, func() error {
		got := reasons()
		for k, want := range map[string]string{
			"late/r9":         "metadata_unreachable",
			"garbage/r1":      "bad_metadata",
			"good junk":       "bad_instance",
			"good 10.0.0.9:1": "bad_endpoints",
			"good 10.0.0.8:1": "no_revision",
			"good empty":      "bad_instance",
		} {
			if !strings.HasPrefix(got[k], want) {
				return fmt.Errorf("%s: reason %q, want %s... (all: %v)", k, got[k], want, got)
			}
		}
		return nil
	})
	if e.ctl.GetService("com.example.ghost") != nil {
		t.Fatalf("a mapping node alone made a service")
	}
	// The metadata arrives: the held-out revision resolves on its next retry.
	admin.Put(t, "/dubbo/late/r9", metadata("late", "r9", "com.example.Late"), false)
	eventually(t, wantAddrs(e.rec, "com.example.late", "10.0.0.2:20880", "10.0.0.2:50051"))
	// The good application never flickered.
	if m := e.rec.Min("com.example.good"); m != 2 {
		t.Fatalf("com.example.good dropped to %d endpoints while other applications failed", m)
	}
}

// A provider registered at both levels (registry-type=all, Dubbo's migration default)
// is one endpoint: the interface-level node, the first source of the registry.
func TestBothLevelsOneEndpoint(t *testing.T) {
	zs := zkt.Start(t)
	p := zkt.Connect(t, zs.Addr, 10*time.Second)
	p.Register(t, greetIface, zkt.ProviderURL("10.0.0.1", 20880, greetIface, map[string]string{"application": "greet"}))
	p.Put(t, "/dubbo/greet/r1", metadata("greet", "r1", greetIface), false)
	p.Put(t, "/services/greet/10.0.0.1:20880", instance("greet", "10.0.0.1", 20880, "r1", "remote", bothPorts), true)
	e := newAppEnv(t, zkAddr(zs, "name=zk1"), appdiscovery.Options{})
	e.waitSynced(t)
	eventually(t, wantAddrs(e.rec, greetHost, "10.0.0.1:20880", "10.0.0.1:50051"))
	d := e.ctl.Debug()
	for _, i := range d.Interfaces {
		if i.Interface != greetIface {
			continue
		}
		if len(i.Ignored) != 1 || i.Ignored[0].Reason != "duplicate" || i.Ignored[0].Registry != "zk1"+registry.AppSourceSuffix {
			t.Fatalf("the application-level copy of the interface-level provider: %+v", i.Ignored)
		}
	}
}

// Thousands of instances in one application; each revision is fetched once.
func TestApplicationLevelFetchesOncePerRevision(t *testing.T) {
	zs := zkt.Start(t)
	admin := zkt.Connect(t, zs.Addr, 10*time.Second)
	const apps, perApp = 20, 25
	for a := 0; a < apps; a++ {
		app := fmt.Sprintf("app%d", a)
		admin.Put(t, "/dubbo/"+app+"/r", metadata(app, "r", fmt.Sprintf("com.example.S%d", a)), false)
		for i := 0; i < perApp; i++ {
			ip := fmt.Sprintf("10.1.%d.%d", a, i+1)
			admin.Put(t, fmt.Sprintf("/services/%s/%s:20880", app, ip), instance(app, ip, 20880, "r", "remote", bothPorts), true)
		}
	}
	start := time.Now()
	e := newAppEnv(t, zkAddr(zs, "name=zk1"), appdiscovery.Options{})
	e.waitSynced(t)
	for a := 0; a < apps; a++ {
		h := fmt.Sprintf("com.example.s%d", a)
		eventually(t, func() error {
			if n := len(e.rec.Addrs(h)); n != 2*perApp {
				return fmt.Errorf("%s: %d endpoints, want %d", h, n, 2*perApp)
			}
			return nil
		})
	}
	t.Logf("%d applications x %d instances ready in %v", apps, perApp, time.Since(start))
	if n := e.fetches.get("r"); n != apps {
		t.Fatalf("%d metadata fetches for %d application revisions, want one each", n, apps)
	}
}

// Triple at the interface level (tri:// nodes beside dubbo:// ones): a second service
// port, grpc-tri, while Triple providers exist; each endpoint keeps its own port.
func TestTripleProvidersGetTheirOwnPort(t *testing.T) {
	zs := zkt.Start(t)
	p := zkt.Connect(t, zs.Addr, 10*time.Second)
	p.Register(t, greetIface, zkt.ProviderURL("10.0.0.1", 20880, greetIface, map[string]string{"application": "greet"}))
	tri := p.Register(t, greetIface, strings.Replace(zkt.ProviderURL("10.0.0.1", 50061, greetIface, map[string]string{"application": "greet"}), "dubbo://", "tri://", 1))
	e := newEnv(t, registry.Options{TriplePort: 50052}, zkAddr(zs, "name=zk1"))
	e.waitSynced(t)
	eventually(t, wantAddrs(e.rec, greetHost, "10.0.0.1:20880", "10.0.0.1:50061"))
	svc := e.ctl.GetService(greetHost)
	if svc == nil || len(svc.Ports) != 2 || svc.Ports[1].Name != "grpc-tri" || svc.Ports[1].Port != 50052 || svc.Ports[1].Protocol != protocol.GRPC {
		t.Fatalf("service %v, want ports dubbo/20880 and grpc-tri/50052", svc)
	}
	for _, ep := range e.rec.Last(greetHost) {
		if want := map[uint32]string{20880: "dubbo", 50061: "grpc-tri"}[ep.EndpointPort]; ep.ServicePortName != want {
			t.Fatalf("endpoint %d on port %q, want %q", ep.EndpointPort, ep.ServicePortName, want)
		}
	}
	// The Triple provider goes: the port goes with it (a service update).
	full := e.rec.Count("full " + greetHost)
	p.Unregister(t, tri)
	eventually(t, wantAddrs(e.rec, greetHost, "10.0.0.1:20880"))
	eventually(t, func() error {
		if svc := e.ctl.GetService(greetHost); len(svc.Ports) != 1 {
			return fmt.Errorf("ports %v after the Triple provider left", svc.Ports)
		}
		if e.rec.Count("full "+greetHost) == full {
			return fmt.Errorf("no service update for the port change")
		}
		return nil
	})
}

// Local metadata: the MetadataService of a revision is unreachable; its instances stay
// out and the revision is reported, until the MetadataService answers.
func TestApplicationLevelMetadataServiceUnreachable(t *testing.T) {
	zs := zkt.Start(t)
	admin := zkt.Connect(t, zs.Addr, 10*time.Second)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close() // nothing answers there yet
	body := strings.Replace(string(instance("local", "127.0.0.1", 20880, "r1", "local", bothPorts)), `\"port\":\"20990\"`, `\"port\":\"`+port+`\"`, 1)
	admin.Put(t, "/services/local/127.0.0.1:20880", []byte(body), true)

	e := newAppEnv(t, zkAddr(zs, "name=zk1"), appdiscovery.Options{Timeout: time.Second})
	e.waitSynced(t)
	eventually(t, func() error {
		for _, r := range e.src.Debug().Revisions {
			if r.App == "local" && !r.Resolved && strings.HasPrefix(r.Error, "metadata_unreachable") && r.Attempts >= 2 {
				return nil
			}
		}
		return fmt.Errorf("revision local/r1 not reported unreachable: %+v", e.src.Debug().Revisions)
	})
	if e.ctl.GetService(greetHost) != nil {
		t.Fatalf("an instance whose metadata is unknown was served")
	}
	// The MetadataService comes up (a Dubbo endpoint answering getMetadataInfo).
	var m appdiscovery.MetadataInfo
	if err := json.Unmarshal(metadata("local", "r1", greetIface), &m); err != nil {
		t.Fatal(err)
	}
	srv, err := dubbowire.Listen("127.0.0.1:"+port, func(c dubbowire.Call) (any, error) {
		if c.Method != "getMetadataInfo" || c.Attachments["group"] != "local" {
			return nil, fmt.Errorf("unexpected call %+v", c)
		}
		return &m, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	eventually(t, wantAddrs(e.rec, greetHost, "127.0.0.1:20880", "127.0.0.1:50051"))
}
