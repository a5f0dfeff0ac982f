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
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/fixtures"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// grayAndSplit: env=gray to v2, sayHello 80/20 v1/v2 (3s timeout, 2 retries), the rest to all.
var grayAndSplit = fixtures.GrayAndSplit(80, 20)

type dubboEnv struct {
	zk     *zk.Server
	pilot  *pilot.Instance
	v1, v2 *zk.Client
	dir    string // the --configDir
}

func startDubbo(t *testing.T, config map[string]string, env ...string) *dubboEnv {
	t.Helper()
	e := &dubboEnv{zk: zk.Start(t)}
	e.v1 = zk.Connect(t, e.zk.Addr, 10*time.Second)
	e.v1.Register(t, demoIface, zk.ProviderURL("10.0.0.1", 20880, demoIface, map[string]string{"version": "1.0.0", "weight": "100"}))
	e.v2 = zk.Connect(t, e.zk.Addr, 10*time.Second)
	e.v2.Register(t, demoIface, zk.ProviderURL("10.0.0.1", 20890, demoIface, map[string]string{"version": "2.0.0", "weight": "300"}))
	e.dir = writeConfig(t, config)
	e.pilot = pilot.Start(t, pilot.Options{
		ConfigDir: e.dir,
		Args:      []string{"--dubboRegistry=zookeeper://" + e.zk.Addr + "?name=zk"},
		Env:       env,
	})
	e.pilot.WaitReady(t, 60*time.Second)
	return e
}

// syncMOSN connects a MOSN node, runs MOSN's request sequence and checks conformance.
func syncMOSN(t *testing.T, p *pilot.Instance, node adsclient.Node) (*adsclient.Client, conformance.Snapshot) {
	t.Helper()
	c, err := adsclient.Dial(p.GRPCAddr, node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s, err := xdsview.Sync(c, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkConformance(t, s)
	return c, s
}

// checkConformance fails the test on anything MOSN would reject, ignore or mishandle.
func checkConformance(t *testing.T, s conformance.Snapshot) {
	t.Helper()
	if v := conformance.Check(s); len(v) > 0 {
		t.Fatalf("MOSN conformance violations:\n  %s", strings.Join(v, "\n  "))
	}
}

func findListener(s conformance.Snapshot, name string) *listener.Listener {
	for _, l := range s.Listeners {
		if l.Name == name {
			return l
		}
	}
	return nil
}

func findRoute(s conformance.Snapshot, name string) *route.RouteConfiguration {
	for _, r := range s.Routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func findCluster(s conformance.Snapshot, name string) *cluster.Cluster {
	for _, c := range s.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func dump(t *testing.T, name string, msgs ...proto.Message) {
	if os.Getenv("DUMP_XDS") == "" {
		return
	}
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(protojson.Format(m))
		b.WriteString("\n")
	}
	_ = os.WriteFile(filepath.Join(os.TempDir(), name), []byte(b.String()), 0o644)
}

// wantRules compares the Dubbo rules of a route configuration with a compact form:
// "<headers> -> <action>", header "name=value" (exact) or "name~regex".
func ruleStrings(rc *route.RouteConfiguration) []string {
	var out []string
	for _, vh := range rc.VirtualHosts {
		for _, r := range vh.Routes {
			var hs []string
			for _, h := range r.Match.Headers {
				switch m := h.HeaderMatchSpecifier.(type) {
				case *route.HeaderMatcher_ExactMatch:
					hs = append(hs, h.Name+"="+m.ExactMatch)
				case *route.HeaderMatcher_SafeRegexMatch:
					hs = append(hs, h.Name+"~"+m.SafeRegexMatch.Regex)
				default:
					hs = append(hs, h.Name+"?")
				}
			}
			a := r.GetRoute()
			var act string
			if wc := a.GetWeightedClusters(); wc != nil {
				var ws []string
				for _, c := range wc.Clusters {
					ws = append(ws, fmt.Sprintf("%s:%d", c.Name, c.Weight.GetValue()))
				}
				act = strings.Join(ws, ",")
			} else {
				act = a.GetCluster()
			}
			if a.GetTimeout() != nil {
				act += " timeout=" + a.GetTimeout().AsDuration().String()
			}
			if rp := a.GetRetryPolicy(); rp != nil {
				act += fmt.Sprintf(" retries=%d", rp.GetNumRetries().GetValue())
			}
			out = append(out, strings.Join(hs, "&")+" -> "+act)
		}
	}
	return out
}

// TestMOSNReceivesDubboRecipe is the MOSN issue's "done when", end to end: real
// ZooKeeper, the real binary, a real gRPC ADS client presenting GENERATOR=mosn.
func TestMOSNReceivesDubboRecipe(t *testing.T) {
	e := startDubbo(t, map[string]string{"dr.yaml": versionSubsets, "vs.yaml": grayAndSplit})

	_, s := syncMOSN(t, e.pilot, xdsview.Node("10.1.0.7", "consumer-1", "default", nil))
	dump(t, "mosn-consumer.json", append(append(append([]proto.Message{}, protoList(s.Listeners)...), protoList(s.Routes)...), protoList(s.Clusters)...)...)

	// LDS: egress_dubbo bound to 127.0.0.1:20881 through deprecated_v1, one chain, HCM with RDS.
	eg := findListener(s, "egress_dubbo")
	if eg == nil {
		t.Fatalf("no egress_dubbo listener among %d", len(s.Listeners))
	}
	sa := eg.GetAddress().GetSocketAddress()
	if sa.GetAddress() != "127.0.0.1" || sa.GetPortValue() != 20881 || !eg.GetDeprecatedV1().GetBindToPort().GetValue() {
		t.Fatalf("egress_dubbo at %s:%d bind=%v", sa.GetAddress(), sa.GetPortValue(), eg.GetDeprecatedV1().GetBindToPort())
	}
	if got := xdsview.RouteNames([]*listener.Listener{eg}); strings.Join(got, ",") != "dubbo-20881" {
		t.Fatalf("egress_dubbo route names %v", got)
	}
	if findListener(s, "inbound_dubbo") != nil {
		t.Fatalf("a consumer-only proxy got inbound_dubbo")
	}
	for _, l := range s.Listeners {
		if strings.HasSuffix(l.Name, "_20880") || strings.HasSuffix(l.Name, "_20881") {
			t.Fatalf("upstream listener %s on a Dubbo port was not left out", l.Name)
		}
	}

	// RDS: the recipe's rules, in VirtualService order, all guarded by the exact interface.
	rc := findRoute(s, "dubbo-20881")
	if rc == nil {
		t.Fatalf("no route configuration dubbo-20881")
	}
	want := []string{
		"service=com.example.DemoService&env=gray -> outbound|20880|v2|com.example.demoservice",
		"service=com.example.DemoService&method=sayHello -> outbound|20880|v1|com.example.demoservice:80,outbound|20880|v2|com.example.demoservice:20 timeout=3s retries=2",
		"service=com.example.DemoService -> outbound|20880||com.example.demoservice",
	}
	if got := ruleStrings(rc); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("dubbo-20881 rules:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, r := range rc.VirtualHosts[0].Routes {
		if r.Match.GetPrefix() != "" || r.Match.PathSpecifier == nil {
			t.Fatalf("rule %s is not header-only with prefix \"\"", r.Name)
		}
	}

	// CDS: weight-aware LB, no TLS matches, for every Dubbo cluster.
	for _, n := range []string{mainCluster, v1Cluster, v2Cluster} {
		cl := findCluster(s, n)
		if cl == nil {
			t.Fatalf("no cluster %s", n)
		}
		if cl.LbPolicy != cluster.Cluster_LEAST_REQUEST || len(cl.TransportSocketMatches) > 0 || cl.GetType() != cluster.Cluster_EDS {
			t.Fatalf("cluster %s: lb=%v tlsMatches=%d type=%v", n, cl.LbPolicy, len(cl.TransportSocketMatches), cl.GetType())
		}
	}
	// EDS: one locality group, own ports, weights 100:300 scaled into 1..128 as 43:128
	// (a weight already in range, alone, is kept).
	got := map[string]string{}
	for _, la := range s.Endpoints {
		var parts []string
		for _, le := range la.Endpoints {
			for _, ep := range le.LbEndpoints {
				sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
				parts = append(parts, fmt.Sprintf("%s:%d/%d", sa.GetAddress(), sa.GetPortValue(), ep.GetLoadBalancingWeight().GetValue()))
			}
		}
		got[la.ClusterName] = strings.Join(parts, ",")
	}
	if g := got[mainCluster]; g != "10.0.0.1:20880/43,10.0.0.1:20890/128" && g != "10.0.0.1:20890/128,10.0.0.1:20880/43" {
		t.Fatalf("EDS %s = %q", mainCluster, g)
	}
	if got[v1Cluster] != "10.0.0.1:20880/100" || got[v2Cluster] != "10.0.0.1:20890/128" {
		t.Fatalf("subset EDS: v1=%q v2=%q", got[v1Cluster], got[v2Cluster])
	}
}

func protoList[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, 0, len(in))
	for _, m := range in {
		out = append(out, m)
	}
	return out
}

// TestMOSNProviderGetsIngress: a MOSN sidecar beside a provider (its IP is a provider's)
// gets inbound_dubbo on 0.0.0.0:20882 to a STATIC cluster at 127.0.0.1:20880; knobs from
// node metadata move the ports.
func TestMOSNProviderGetsIngress(t *testing.T) {
	e := startDubbo(t, map[string]string{"dr.yaml": versionSubsets})
	cases := []struct {
		name         string
		ip           string
		meta         map[string]any
		in, app, out uint32
		wantIngress  bool
	}{
		{"provider", "10.0.0.1", nil, 20882, 20880, 20881, true},
		{"provider with knobs", "10.0.0.1", map[string]any{"DUBBO_INBOUND_PORT": "30882", "DUBBO_APP_PORT": "30880", "DUBBO_OUTBOUND_PORT": "30881"}, 30882, 30880, 30881, true},
		{"consumer asking for ingress", "10.9.9.9", map[string]any{"DUBBO_INBOUND": "true"}, 20882, 20880, 20881, true},
		{"provider refusing ingress", "10.0.0.1", map[string]any{"DUBBO_INBOUND": "false"}, 0, 0, 20881, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, s := syncMOSN(t, e.pilot, xdsview.Node(tc.ip, "pod-"+strings.ReplaceAll(tc.name, " ", "-"), "dubbo", tc.meta))
			eg := findListener(s, "egress_dubbo")
			if eg == nil || eg.GetAddress().GetSocketAddress().GetPortValue() != tc.out {
				t.Fatalf("egress_dubbo %v, want port %d", eg.GetAddress(), tc.out)
			}
			in := findListener(s, "inbound_dubbo")
			if !tc.wantIngress {
				if in != nil {
					t.Fatalf("unexpected inbound_dubbo")
				}
				return
			}
			if in == nil {
				t.Fatalf("no inbound_dubbo among %d listeners", len(s.Listeners))
			}
			sa := in.GetAddress().GetSocketAddress()
			if sa.GetAddress() != "0.0.0.0" || sa.GetPortValue() != tc.in || in.TrafficDirection.String() != "INBOUND" {
				t.Fatalf("inbound_dubbo at %s:%d %v", sa.GetAddress(), sa.GetPortValue(), in.TrafficDirection)
			}
			name := fmt.Sprintf("inbound|%d||", tc.app)
			cl := findCluster(s, name)
			if cl == nil || cl.GetType() != cluster.Cluster_STATIC {
				t.Fatalf("no STATIC cluster %s", name)
			}
			ep := cl.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			if ep.GetAddress() != "127.0.0.1" || ep.GetPortValue() != tc.app {
				t.Fatalf("%s -> %s:%d", name, ep.GetAddress(), ep.GetPortValue())
			}
		})
	}
}

// TestMOSNDynamicUpdates: provider churn reaches MOSN as EDS only; a VirtualService
// change pushes RDS; a new interface appears in RDS with no restart.
func TestMOSNDynamicUpdates(t *testing.T) {
	e := startDubbo(t, map[string]string{"dr.yaml": versionSubsets, "vs.yaml": grayAndSplit})
	c, _ := syncMOSN(t, e.pilot, xdsview.Node("10.1.0.8", "consumer-2", "default", nil))
	before, fullBefore := countsOf(c), fullPushRequests(t, e.pilot)

	// Provider churn: EDS only.
	e.v2.Close()
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.EndpointType, wantEndpoints(map[string]string{
		mainCluster: "10.0.0.1:20880", v1Cluster: "10.0.0.1:20880", v2Cluster: "",
	})); err != nil {
		t.Fatal(err)
	}
	noFullPushFor(t, e.pilot, c, "provider churn", before, fullBefore)
	if t.Failed() {
		t.FailNow()
	}

	// A new interface: it appears in RDS, with no restart.
	other := "com.example.GreeterService"
	e.v1.Register(t, other, zk.ProviderURL("10.0.0.5", 20880, other, nil))
	if _, err := c.AwaitTimeout(10*time.Second, adsclient.RouteType, func(r *discovery.DiscoveryResponse) error {
		rcs, err := adsclient.Decode[route.RouteConfiguration](r)
		if err != nil {
			return err
		}
		for _, rc := range rcs {
			for _, rule := range ruleStrings(rc) {
				if rule == "service=com.example.GreeterService -> outbound|20880||com.example.greeterservice" {
					return nil
				}
			}
		}
		return fmt.Errorf("no default rule for com.example.GreeterService yet")
	}); err != nil {
		t.Fatal(err)
	}

	// A VirtualService change (the config directory is watched): RDS follows.
	vs := strings.Replace(grayAndSplit, "exact: gray", "exact: blue", 1)
	if err := os.WriteFile(filepath.Join(e.dir, "vs.yaml"), []byte(vs), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitTimeout(20*time.Second, adsclient.RouteType, func(r *discovery.DiscoveryResponse) error {
		rcs, err := adsclient.Decode[route.RouteConfiguration](r)
		if err != nil {
			return err
		}
		for _, rc := range rcs {
			for _, rule := range ruleStrings(rc) {
				if strings.HasPrefix(rule, "service=com.example.DemoService&env=blue ->") {
					return nil
				}
			}
		}
		return fmt.Errorf("the VirtualService change has not reached RDS")
	}); err != nil {
		t.Fatal(err)
	}
}

const httpServiceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: web
  namespace: default
spec:
  hosts:
  - web.example.com
  location: MESH_INTERNAL
  ports:
  - number: 8080
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
  - address: 10.2.0.1
`

// TestEnvoyNodesGetUpstreamOutput: with the MOSN generators registered, an Envoy sidecar
// gets exactly what it gets without them (same binary, PILOT_ENABLE_DUBBO_MOSN=false),
// resource for resource, for all four types.
func TestEnvoyNodesGetUpstreamOutput(t *testing.T) {
	cfg := map[string]string{"dr.yaml": versionSubsets, "vs.yaml": grayAndSplit, "se.yaml": dubboServiceEntry, "web.yaml": httpServiceEntry}
	on := startDubbo(t, cfg)
	off := pilot.Start(t, pilot.Options{
		ConfigDir: on.dir,
		Args:      []string{"--dubboRegistry=zookeeper://" + on.zk.Addr + "?name=zk"},
		Env:       []string{"PILOT_ENABLE_DUBBO_MOSN=false"},
	})
	off.WaitReady(t, 60*time.Second)

	fetch := func(p *pilot.Instance) map[string]map[string]proto.Message {
		c, err := adsclient.Dial(p.GRPCAddr, envoySidecar())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// An Envoy asks in the same order as MOSN does; reuse the sequencing.
		s, err := xdsview.Sync(c, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]proto.Message{"lds": {}, "rds": {}, "cds": {}, "eds": {}}
		for _, m := range s.Listeners {
			out["lds"][m.Name] = m
		}
		for _, m := range s.Routes {
			out["rds"][m.Name] = m
		}
		for _, m := range s.Clusters {
			out["cds"][m.Name] = m
		}
		for _, m := range s.Endpoints {
			out["eds"][m.ClusterName] = m
		}
		return out
	}
	a, b := fetch(on.pilot), fetch(off)
	for typ := range a {
		if len(a[typ]) == 0 {
			t.Fatalf("no %s resources: the comparison would be empty", typ)
		}
		if len(a[typ]) != len(b[typ]) {
			t.Fatalf("%s: %d resources with MOSN generators, %d without", typ, len(a[typ]), len(b[typ]))
		}
		for name, m := range a[typ] {
			if !proto.Equal(m, b[typ][name]) {
				t.Fatalf("%s %s differs for an Envoy node:\n%s\nvs\n%s", typ, name, protojson.Format(m), protojson.Format(b[typ][name]))
			}
		}
	}
	if _, ok := a["lds"]["egress_dubbo"]; ok {
		t.Fatal("an Envoy node got egress_dubbo")
	}
	if _, ok := a["lds"]["0.0.0.0_20880"]; !ok {
		t.Fatal("an Envoy node lost the upstream TCP listener of the Dubbo port")
	}
}

// TestMOSNEdgeCases: every EDS request is answered (MOSN asks for LDS only after one),
// a Sidecar's egress hosts limit the Dubbo routes, and a match MOSN cannot express is
// dropped with a log line instead of being widened.
func TestMOSNEdgeCases(t *testing.T) {
	const sidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: only-demo
  namespace: restricted
spec:
  egress:
  - hosts: ["dubbo/com.example.demoservice"]
`
	const uriMatch = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: dubbo}
spec:
  hosts: [com.example.greeterservice]
  http:
  - match: [{uri: {prefix: /x}}]
    route: [{destination: {host: com.example.greeterservice}}]
`
	e := startDubbo(t, map[string]string{"dr.yaml": versionSubsets, "sidecar.yaml": sidecar, "vs.yaml": uriMatch})
	e.v1.Register(t, "com.example.GreeterService", zk.ProviderURL("10.0.0.5", 20880, "com.example.GreeterService", nil))

	// EDS for a cluster nobody has: still answered, with an empty assignment.
	c, err := adsclient.Dial(e.pilot.GRPCAddr, xdsview.Node("10.1.0.10", "c", "default", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Watch(adsclient.EndpointType, "outbound|20880||no.such.service"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.EndpointType, wantEndpoints(map[string]string{"outbound|20880||no.such.service": ""})); err != nil {
		t.Fatalf("an EDS request went unanswered: %v", err)
	}

	// The checks below are about the greeter service: wait until istiod's push context
	// has it (its cluster reaches a proxy), or they would hold vacuously.
	const greeterCluster = "outbound|20880||com.example.greeterservice"
	if err := c.Watch(adsclient.ClusterType); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.ClusterType, func(r *discovery.DiscoveryResponse) error {
		cls, err := adsclient.Decode[cluster.Cluster](r)
		if err != nil {
			return err
		}
		for _, cl := range cls {
			if cl.Name == greeterCluster {
				return nil
			}
		}
		return fmt.Errorf("no cluster %s among %d", greeterCluster, len(cls))
	}); err != nil {
		t.Fatal(err)
	}

	// The greeter VirtualService's only match is on uri: dropped, and logged.
	s, err := xdsview.Sync(c, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkConformance(t, s)
	for _, rule := range ruleStrings(findRoute(s, "dubbo-20881")) {
		if strings.HasPrefix(rule, "service=com.example.GreeterService") {
			t.Fatalf("an inexpressible match was widened into %q", rule)
		}
	}
	if !strings.Contains(e.pilot.Log(), "a match on uri/scheme/authority/queryParams cannot apply to Dubbo calls") {
		t.Errorf("no log line about the dropped match")
	}

	// A proxy in the namespace with the Sidecar sees only the demo service.
	_, rs := syncMOSN(t, e.pilot, xdsview.Node("10.1.0.11", "r", "restricted", nil))
	got := ruleStrings(findRoute(rs, "dubbo-20881"))
	if len(got) != 1 || !strings.HasPrefix(got[0], "service=com.example.DemoService ->") {
		t.Fatalf("Sidecar egress not honoured: %v", got)
	}
}
