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

package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/dubbo3"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/nacos"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// Real Dubbo 3 providers (dubbo-go v3.3.2, tools/dubbo3, exporting dubbo and tri) in
// every registration mode and metadata storage, the real binary, real ADS clients, and
// a real Dubbo 3 consumer calling every endpoint dubbo-istiod publishes.

// dubbo3Case is one provider: its mode, storage and the interface only it exports. tp
// serves tri when another process does (else p serves both).
type dubbo3Case struct {
	mode, storage, iface string
	p, tp                *dubbo3.Provider
}

// of is the provider serving a protocol.
func (c *dubbo3Case) of(proto string) *dubbo3.Provider {
	if proto == "tri" && c.tp != nil {
		return c.tp
	}
	return c.p
}

func (c *dubbo3Case) host() string     { return strings.ToLower(c.iface) }
func (c *dubbo3Case) dubboCl() string  { return "outbound|20880||" + c.host() }
func (c *dubbo3Case) tripleCl() string { return "outbound|50051||" + c.host() }

// dubbo3Registry is where the providers register: a ZooKeeper or a Nacos-protocol server.
type dubbo3Registry struct {
	kind string
	// register points a provider at the registry.
	register func(o *dubbo3.ProviderOptions)
	// istiodArg is dubbo-istiod's --dubboRegistry for it.
	istiodArg string
	// oneProtocolPerInterfaceProcess: an interface-level provider exports one protocol per
	// process. A Nacos 2 client holds one instance per service (the server keys a client's
	// instances by service, and the client re-registers only the last one after a
	// reconnection), and dubbo-go v3.3.2 registers its dubbo and tri instances of an
	// interface with one client: one of the two is lost (docs/nacos-data.md).
	oneProtocolPerInterfaceProcess bool
}

func zkRegistry(t *testing.T) dubbo3Registry {
	zs := zk.Start(t)
	return dubbo3Registry{kind: "zookeeper", register: func(o *dubbo3.ProviderOptions) { o.ZK = zs.Addr },
		istiodArg: "--dubboRegistry=zookeeper://" + zs.Addr + "?name=zk"}
}

// nacosRegistry is Polaris's Nacos-compatible API (tests/framework/nacos), not Alibaba's
// Nacos server: no Java server can be installed here.
func nacosRegistry(t *testing.T) dubbo3Registry {
	srv := nacos.Start(t, nacos.Options{})
	return dubbo3Registry{kind: "nacos", register: func(o *dubbo3.ProviderOptions) { o.Registry = srv.URL() },
		istiodArg: "--dubboRegistry=" + srv.URL() + "?name=nacos", oneProtocolPerInterfaceProcess: true}
}

func startDubbo3Cases(t *testing.T, reg dubbo3Registry) []*dubbo3Case {
	t.Helper()
	var cases []*dubbo3Case
	for _, mode := range []string{dubbo3.ModeInterface, dubbo3.ModeService, dubbo3.ModeAll} {
		for _, storage := range []string{dubbo3.MetadataLocal, dubbo3.MetadataRemote} {
			c := &dubbo3Case{mode: mode, storage: storage,
				iface: fmt.Sprintf("com.example.Greet%s%s", strings.ToUpper(mode[:1])+mode[1:], strings.ToUpper(storage[:1])+storage[1:])}
			o := dubbo3.ProviderOptions{
				App: "greet-" + mode + "-" + storage, Mode: mode, Metadata: storage,
				Interfaces: []string{c.iface}, Version: "1.0.0",
			}
			reg.register(&o)
			if mode == dubbo3.ModeInterface && reg.oneProtocolPerInterfaceProcess {
				tri := o
				o.NoTri, tri.NoDubbo = true, true
				c.tp = dubbo3.StartProvider(t, tri)
			}
			c.p = dubbo3.StartProvider(t, o)
			t.Logf("%s/%s: provider ready in %v (dubbo %s, tri %s)", mode, storage, c.p.StartToReady, c.of("dubbo").Addr("dubbo"), c.of("tri").Addr("tri"))
			cases = append(cases, c)
		}
	}
	return cases
}

func TestDubbo3ProvidersServedAndCallable(t *testing.T) {
	testDubbo3Served(t, zkRegistry(t))
}

// TestDubbo3NacosProvidersServedAndCallable: the same providers registered in Nacos
// (services providers:<interface>:<version>:<group> and <app>, configs for the mapping
// and the remote metadata), served and called the same way.
func TestDubbo3NacosProvidersServedAndCallable(t *testing.T) {
	testDubbo3Served(t, nacosRegistry(t))
}

func testDubbo3Served(t *testing.T, reg dubbo3Registry) {
	cases := startDubbo3Cases(t, reg)
	p := pilot.Start(t, pilot.Options{
		ConfigDir: writeConfig(t, map[string]string{}),
		Args:      []string{reg.istiodArg, "--dubboNacosDir=" + t.TempDir(), "--dubboNacosListInterval=1s"},
	})
	start := time.Now()
	p.WaitReady(t, 60*time.Second)

	// Envoy: a cluster per port of each service (dubbo and grpc-tri), EDS with each
	// provider's own ports: one endpoint per protocol, whatever the mode (the two
	// instance nodes of one process, or a provider at both levels, count once).
	c := envoyAwaitClusters(t, p, func(cs map[string]*cluster.Cluster) error {
		for _, tc := range cases {
			for _, n := range []string{tc.dubboCl(), tc.tripleCl()} {
				if cs[n].GetType() != cluster.Cluster_EDS {
					return fmt.Errorf("no EDS cluster %s", n)
				}
			}
		}
		return nil
	})
	want := map[string]string{}
	for _, tc := range cases {
		want[tc.dubboCl()] = tc.of("dubbo").Addr("dubbo")
		want[tc.tripleCl()] = tc.of("tri").Addr("tri")
	}
	if err := c.Watch(adsclient.EndpointType, slices.Sorted(maps.Keys(want))...); err != nil {
		t.Fatal(err)
	}
	r, err := c.AwaitTimeout(60*time.Second, adsclient.EndpointType, wantEndpoints(want))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("every mode x storage served over EDS %v after istiod started", time.Since(start))

	// A real Dubbo 3 consumer calls every endpoint the assignment lists, on its protocol.
	got, err := loadAssignments(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		for proto, cl := range map[string]string{"dubbo": tc.dubboCl(), "tri": tc.tripleCl()} {
			for _, addr := range got[cl] {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				answer, err := dubbo3.Call(ctx, dubbo3.CallOptions{
					URL: dubbo3.DirectURL(proto, addr, tc.iface, "1.0.0", ""), Interface: tc.iface, Version: "1.0.0",
					Method: "SayHello", Arg: "mesh",
				})
				cancel()
				if err != nil {
					t.Fatalf("%s/%s: calling %s endpoint %s of %s: %v", tc.mode, tc.storage, proto, addr, cl, err)
				}
				if answer != tc.of(proto).Reply(proto, "mesh") {
					t.Fatalf("%s/%s: %s endpoint %s answered %q, want %q", tc.mode, tc.storage, proto, addr, answer, tc.of(proto).Reply(proto, "mesh"))
				}
			}
		}
	}

	// MOSN: the same services' Dubbo clusters and endpoints (conformance-checked; MOSN
	// itself cannot run here).
	_, s := syncMOSN(t, p, xdsview.Node("10.1.0.7", "consumer-1", "default", nil))
	eds := map[string]string{}
	for _, cla := range s.Endpoints {
		eds[cla.ClusterName] = strings.Join(endpointAddrs(cla), ",")
	}
	rc := findRoute(s, "dubbo-20881")
	if rc == nil {
		t.Fatalf("MOSN got no dubbo-20881 route configuration")
	}
	triRoute := map[string]string{} // prefix -> cluster of the Triple default rules
	for _, vh := range rc.VirtualHosts {
		for _, r := range vh.Routes {
			if p := r.GetMatch().GetPrefix(); p != "" {
				triRoute[p] = r.GetRoute().GetCluster()
			}
		}
	}
	for _, tc := range cases {
		if eds[tc.dubboCl()] != tc.of("dubbo").Addr("dubbo") {
			t.Errorf("MOSN %s: endpoints %q, want %s", tc.dubboCl(), eds[tc.dubboCl()], tc.of("dubbo").Addr("dubbo"))
		}
		if eds[tc.tripleCl()] != tc.of("tri").Addr("tri") {
			t.Errorf("MOSN %s: endpoints %q, want %s", tc.tripleCl(), eds[tc.tripleCl()], tc.of("tri").Addr("tri"))
		}
		// Triple calls on egress_dubbo are routed by path to the grpc-tri port's cluster.
		if got := triRoute["/"+tc.iface+"/"]; got != tc.tripleCl() {
			t.Errorf("MOSN Triple route for /%s/: cluster %q, want %s", tc.iface, got, tc.tripleCl())
		}
	}

	// Rolling restart of an application-level provider: a new process, a new revision
	// and new ports, then the old one stops. Endpoints move by EDS only.
	tc := cases[2] // service mode, local metadata: dubbo-go 3.3's default
	before, fullBefore := countsOf(c), fullPushRequests(t, p)
	o := dubbo3.ProviderOptions{
		App: tc.p.Opts.App, Mode: tc.mode, Metadata: tc.storage, Interfaces: []string{tc.iface}, Version: "1.0.0",
	}
	reg.register(&o)
	next := dubbo3.StartProvider(t, o)
	restart := time.Now()
	tc.p.Stop()
	want[tc.dubboCl()], want[tc.tripleCl()] = next.Addr("dubbo"), next.Addr("tri")
	if _, err := c.AwaitTimeout(60*time.Second, adsclient.EndpointType, wantEndpoints(map[string]string{
		tc.dubboCl(): want[tc.dubboCl()], tc.tripleCl(): want[tc.tripleCl()],
	})); err != nil {
		t.Fatal(err)
	}
	t.Logf("rolling restart reached the ADS client %v after the old provider was stopped", time.Since(restart))
	noFullPushFor(t, p, c, "a rolling restart", before, fullBefore)
	tc.p = next

	// kill -9: the instance goes when its ZooKeeper session expires, or when the Nacos
	// server sees its connection die.
	victim := cases[4] // all mode, local metadata
	kill := time.Now()
	victim.p.Kill()
	if _, err := c.AwaitTimeout(90*time.Second, adsclient.EndpointType, wantEndpoints(map[string]string{
		victim.dubboCl(): "", victim.tripleCl(): "",
	})); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: kill -9: endpoints removed %v later", reg.kind, time.Since(kill))
}
