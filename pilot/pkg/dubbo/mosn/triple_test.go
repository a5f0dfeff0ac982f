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

package mosn

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pilot/pkg/model"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/protocol"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

// tripleConfig: a Dubbo service with a Triple port (as the registry models it: dubbo
// 20880 and grpc-tri 50051, each provider on its own ports), its subsets, and one
// VirtualService for Dubbo and Triple calls alike: a sayHello split (method for Dubbo,
// and uri for Envoy), a version match to v2 whose destination names the Dubbo port, and
// a default. Beside it a Dubbo-only service without a VirtualService, which must get no
// Triple rule.
const tripleConfig = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greet, namespace: default, labels: {dubbo.apache.org/interface: com.example.GreetService}}
spec:
  hosts: [com.example.greetservice]
  ports:
  - {number: 20880, name: dubbo, protocol: DUBBO}
  - {number: 50051, name: grpc-tri, protocol: GRPC}
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, ports: {dubbo: 20880, grpc-tri: 50052}, labels: {version: v1}}
  - {address: 10.0.0.2, ports: {dubbo: 20890, grpc-tri: 50053}, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: demo, namespace: default, labels: {dubbo.apache.org/interface: com.example.DemoService}}
spec:
  hosts: [com.example.demoservice]
  ports: [{number: 20880, name: dubbo, protocol: DUBBO}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.0.0.3}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: greet, namespace: default}
spec:
  host: com.example.greetservice
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greet, namespace: default}
spec:
  hosts: [com.example.greetservice]
  http:
  - name: say-hello-split
    match:
    - method: {exact: sayHello}
    - uri: {exact: /com.example.GreetService/sayHello}
    route:
    - {destination: {host: com.example.greetservice, subset: v1}, weight: 80}
    - {destination: {host: com.example.greetservice, subset: v2}, weight: 20}
    timeout: 3s
    retries: {attempts: 2}
  - name: version-2
    match: [{headers: {version: {exact: 2.0.0}}}]
    route: [{destination: {host: com.example.greetservice, subset: v2, port: {number: 20880}}}]
  - name: default
    route: [{destination: {host: com.example.greetservice}}]
`

const (
	greetHost  = "com.example.greetservice"
	greetIface = "com.example.GreetService"
)

func stableJSON(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// golden compares got with testdata/<name>; UPDATE_GOLDEN=1 rewrites it (as tests/e2e).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (UPDATE_GOLDEN=1 rewrites it; review the diff):\n%s", path, got)
	}
}

func ruleNamed(rc *route.RouteConfiguration, name string) *route.Route {
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func weights(a *route.RouteAction) map[string]uint32 {
	out := map[string]uint32{}
	if c := a.GetCluster(); c != "" {
		out[c] = 0
	}
	for _, c := range a.GetWeightedClusters().GetClusters() {
		out[c.Name] = c.GetWeight().GetValue()
	}
	return out
}

// TestFakeServerTriple: one VirtualService routes Dubbo and Triple calls of the same
// interface alike on MOSN's egress_dubbo (Dubbo RPC rules and Triple HTTP rules in
// dubbo-<port>, golden file), MOSN gets usable clusters and endpoints for the Triple
// port, the whole snapshot conforms, and an Envoy sidecar gets upstream's HTTP/2 route
// for the Triple port from the same VirtualService.
func TestFakeServerTriple(t *testing.T) {
	f := newFakeMOSNWith(t, tripleConfig, nil)

	listeners := decode(t, f.generate(t, v3.ListenerType, nil, nil), func() *listener.Listener { return &listener.Listener{} })
	// Triple goes through egress_dubbo: no upstream listener on the grpc-tri port for MOSN.
	for name := range listeners {
		if strings.HasSuffix(name, "_50051") {
			t.Fatalf("MOSN got upstream's listener %s on the Triple port", name)
		}
	}
	routes := decode(t, f.generate(t, v3.RouteType, []string{dubboRoutes}, nil), func() *route.RouteConfiguration { return &route.RouteConfiguration{} })
	rc := routes[dubboRoutes]
	if rc == nil {
		t.Fatalf("RDS: no %s", dubboRoutes)
	}
	golden(t, "triple-routes.json", stableJSON(t, rc))

	var names []string
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		names = append(names, r.Name)
	}
	wantNames := []string{
		"default:com.example.demoservice", // Dubbo only: no Triple rule
		"say-hello-split", "tri:say-hello-split", "version-2", "tri:version-2", "default", "tri:default",
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("rules %v, want %v", names, wantNames)
	}
	split := map[string]uint32{"outbound|50051|v1|" + greetHost: 80, "outbound|50051|v2|" + greetHost: 20}
	tri := ruleNamed(rc, "tri:say-hello-split")
	if got := tri.GetMatch().GetPath(); got != "/"+greetIface+"/sayHello" {
		t.Errorf("Triple sayHello rule path %q (match %v)", got, tri.GetMatch())
	}
	if w := weights(tri.GetRoute()); !mapsEqual(w, split) {
		t.Errorf("Triple sayHello rule clusters %v, want %v", w, split)
	}
	if tri.GetRoute().GetTimeout().AsDuration() != 3*time.Second || tri.GetRoute().GetRetryPolicy().GetNumRetries().GetValue() != 2 {
		t.Errorf("Triple sayHello rule: timeout %v, retries %v", tri.GetRoute().GetTimeout(), tri.GetRoute().GetRetryPolicy())
	}
	dub := ruleNamed(rc, "say-hello-split")
	if w := weights(dub.GetRoute()); w["outbound|20880|v1|"+greetHost] != 80 || w["outbound|20880|v2|"+greetHost] != 20 {
		t.Errorf("Dubbo sayHello rule clusters %v", w)
	}
	v2 := ruleNamed(rc, "tri:version-2")
	if v2.GetMatch().GetPrefix() != "/"+greetIface+"/" || len(v2.GetMatch().GetHeaders()) != 1 ||
		v2.GetMatch().GetHeaders()[0].GetName() != tripleHeaderVersion || v2.GetMatch().GetHeaders()[0].GetExactMatch() != "2.0.0" {
		t.Errorf("Triple version rule match %v, want prefix /%s/ and %s=2.0.0", v2.GetMatch(), greetIface, tripleHeaderVersion)
	}
	if c := v2.GetRoute().GetCluster(); c != "outbound|50051|v2|"+greetHost {
		t.Errorf("Triple version rule (destination names the Dubbo port) goes to %s, want the Triple port's v2", c)
	}
	if c := ruleNamed(rc, "version-2").GetRoute().GetCluster(); c != "outbound|20880|v2|"+greetHost {
		t.Errorf("Dubbo version rule goes to %s", c)
	}
	if c := ruleNamed(rc, "tri:default").GetRoute().GetCluster(); c != "outbound|50051||"+greetHost {
		t.Errorf("Triple default goes to %s", c)
	}

	// CDS/EDS: the Triple port's clusters, adapted like the Dubbo ones; MOSN's Auto proxy
	// speaks the downstream's protocol (h2) upstream, so no protocol option is needed.
	clusters := decode(t, f.generate(t, v3.ClusterType, nil, nil), func() *cluster.Cluster { return &cluster.Cluster{} })
	for _, subset := range []string{"", "v1", "v2"} {
		name := model.BuildSubsetKey(model.TrafficDirectionOutbound, subset, greetHost, 50051)
		c, ok := clusters[name]
		if !ok {
			t.Fatalf("CDS: no %s in %v", name, keys(clusters))
		}
		if c.GetType() != cluster.Cluster_EDS || c.LbPolicy != cluster.Cluster_LEAST_REQUEST || len(c.TransportSocketMatches) != 0 {
			t.Errorf("CDS: %s: type %v, lb %v, %d TLS matches; want EDS, LEAST_REQUEST, none", name, c.GetType(), c.LbPolicy, len(c.TransportSocketMatches))
		}
	}
	var edsNames []string
	for name, c := range clusters {
		if c.GetType() == cluster.Cluster_EDS {
			edsNames = append(edsNames, name)
		}
	}
	cla := decode(t, f.generate(t, v3.EndpointType, edsNames, &model.PushRequest{Forced: true, Reason: model.NewReasonStats(model.ProxyRequest)}),
		func() *endpoint.ClusterLoadAssignment { return &endpoint.ClusterLoadAssignment{} })
	got := map[string]uint32{}
	for _, le := range cla["outbound|50051|v2|"+greetHost].GetEndpoints() {
		for _, ep := range le.LbEndpoints {
			sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
			got[sa.GetAddress()] = sa.GetPortValue()
		}
	}
	if len(got) != 1 || got["10.0.0.2"] != 50053 {
		t.Errorf("EDS outbound|50051|v2|%s: %v, want 10.0.0.2:50053 (the provider's own Triple port)", greetHost, got)
	}

	snap := conformance.Snapshot{Listeners: values(listeners), Routes: values(routes), Clusters: values(clusters), Endpoints: values(cla)}
	if v := conformance.Check(snap); len(v) > 0 {
		t.Errorf("conformance:\n%s", strings.Join(v, "\n"))
	}

	// Envoy: upstream's routes for the Triple port from the same VirtualService, untouched.
	envoy := f.s.SetupProxy(&model.Proxy{
		Type: model.SidecarProxy, ID: "envoy.default", IPAddresses: []string{"10.200.0.2"}, ConfigNamespace: "default",
		Metadata: &model.NodeMetadata{Namespace: "default", ClusterID: constants.DefaultClusterName, IstioVersion: "1.31.0"},
	})
	var found bool
	for _, erc := range f.s.Routes(envoy) {
		if erc.Name != "50051" {
			continue
		}
		for _, vh := range erc.VirtualHosts {
			if !slices.Contains(vh.Domains, greetHost) {
				continue
			}
			for _, r := range vh.Routes {
				if r.GetMatch().GetPath() == "/"+greetIface+"/sayHello" && mapsEqual(weights(r.GetRoute()), split) {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("Envoy: no route in 50051 for %s matching path /%s/sayHello to %v", greetHost, greetIface, split)
	}
}

func mapsEqual(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestTripleMatch: how single VirtualService matches become Triple rule matches, or are
// dropped (never widened).
func TestTripleMatch(t *testing.T) {
	ds := dubboService{
		svc:    &model.Service{Hostname: greetHost},
		port:   &model.Port{Name: "dubbo", Port: 20880, Protocol: protocol.Dubbo},
		triple: &model.Port{Name: TriplePortName, Port: 50051, Protocol: protocol.GRPC},
		iface:  greetIface,
	}
	exact := func(s string) *networking.StringMatch {
		return &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: s}}
	}
	prefix := func(s string) *networking.StringMatch {
		return &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: s}}
	}
	regex := func(s string) *networking.StringMatch {
		return &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: s}}
	}
	p := "/" + greetIface + "/"
	cases := []struct {
		name string
		m    *networking.HTTPMatchRequest
		want string // the RouteMatch in protojson, "" for dropped
	}{
		{"nothing", &networking.HTTPMatchRequest{}, `{"prefix":"` + p + `"}`},
		{"method exact", &networking.HTTPMatchRequest{Method: exact("sayHello")}, `{"path":"` + p + `sayHello"}`},
		{"method prefix", &networking.HTTPMatchRequest{Method: prefix("say")}, `{"safe_regex":{"regex":"^/com\\.example\\.GreetService/say[^/]*$"}}`},
		{"method regex", &networking.HTTPMatchRequest{Method: regex("a|b")}, `{"safe_regex":{"regex":"^/com\\.example\\.GreetService/(?:a|b)$"}}`},
		{"method regex anchored", &networking.HTTPMatchRequest{Method: regex("^say.*$")}, `{"safe_regex":{"regex":"^/com\\.example\\.GreetService/(?:say.*)$"}}`},
		{"method as header", &networking.HTTPMatchRequest{Headers: map[string]*networking.StringMatch{"method": exact("sayHello")}}, `{"path":"` + p + `sayHello"}`},
		{"group and attachment", &networking.HTTPMatchRequest{Headers: map[string]*networking.StringMatch{"group": exact("g1"), "env": prefix("gr")}},
			`{"prefix":"` + p + `","headers":[{"name":"env","safe_regex_match":{"regex":"^gr.*$"}},{"name":"tri-service-group","exact_match":"g1"}]}`},
		{"own service", &networking.HTTPMatchRequest{Headers: map[string]*networking.StringMatch{"service": exact(greetIface)}}, `{"prefix":"` + p + `"}`},
		{"other service", &networking.HTTPMatchRequest{Headers: map[string]*networking.StringMatch{"service": exact("x.Y")}}, ""},
		{"uri exact", &networking.HTTPMatchRequest{Uri: exact(p + "sayHello")}, `{"path":"` + p + `sayHello"}`},
		{"uri and same method", &networking.HTTPMatchRequest{Uri: exact(p + "sayHello"), Method: exact("sayHello")}, `{"path":"` + p + `sayHello"}`},
		{"uri and other method", &networking.HTTPMatchRequest{Uri: exact(p + "sayHello"), Method: exact("bye")}, ""},
		{"uri prefix /", &networking.HTTPMatchRequest{Uri: prefix("/")}, `{"prefix":"` + p + `"}`},
		{"uri prefix inside", &networking.HTTPMatchRequest{Uri: prefix(p + "say")}, `{"prefix":"` + p + `say"}`},
		{"uri of another service", &networking.HTTPMatchRequest{Uri: exact("/x.Y/sayHello")}, ""},
		{"uri regex", &networking.HTTPMatchRequest{Uri: regex(".*")}, ""},
		{"version twice, differently", &networking.HTTPMatchRequest{Headers: map[string]*networking.StringMatch{"version": exact("1"), "tri-service-version": exact("2")}}, ""},
		{"version twice, alike", &networking.HTTPMatchRequest{Headers: map[string]*networking.StringMatch{"version": exact("1"), "tri-service-version": exact("1")}},
			`{"prefix":"` + p + `","headers":[{"name":"tri-service-version","exact_match":"1"}]}`},
		{"Dubbo port only", &networking.HTTPMatchRequest{Port: 20880, Method: exact("sayHello")}, ""},
		{"Triple port only", &networking.HTTPMatchRequest{Port: 50051, Method: exact("sayHello")}, `{"path":"` + p + `sayHello"}`},
		{"presence", &networking.HTTPMatchRequest{Headers: map[string]*networking.StringMatch{"env": {}}}, ""},
		{"withoutHeaders", &networking.HTTPMatchRequest{WithoutHeaders: map[string]*networking.StringMatch{"env": exact("x")}}, ""},
	}
	g := &Generator{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, ok := g.tripleMatch(ds, c.m, "test")
			got := ""
			if ok {
				b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				var v any
				_ = json.Unmarshal(b, &v)
				b, _ = json.Marshal(v)
				got = string(b)
				var w any
				if err := json.Unmarshal([]byte(c.want), &w); err == nil {
					wb, _ := json.Marshal(w)
					c.want = string(wb)
				}
			}
			if got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
			if ok {
				if v := conformance.Check(conformance.Snapshot{Listeners: []*listener.Listener{egressListener(knobs{outbound: 20881})}, Routes: []*route.RouteConfiguration{{Name: "dubbo-20881",
					VirtualHosts: []*route.VirtualHost{{Name: "dubbo", Domains: []string{"*"}, Routes: []*route.Route{{Match: m,
						Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "outbound|50051||" + greetHost}}}}}}}}}}); len(v) > 0 {
					t.Errorf("a Triple match violates MOSN's rules: %v", v)
				}
			}
		})
	}
}

// A Triple rule whose destination has no Triple port is dropped (logged), never sent to
// a Dubbo port or to a cluster that does not exist; its Dubbo rule stays.
func TestTripleRuleToServiceWithoutTriplePort(t *testing.T) {
	cfg := strings.SplitN(tripleConfig, "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule", 2)[0] + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greet, namespace: default}
spec:
  hosts: [com.example.greetservice]
  http:
  - name: to-demo
    match: [{method: {exact: legacy}}]
    route: [{destination: {host: com.example.demoservice}}]
  - name: default
    route: [{destination: {host: com.example.greetservice}}]
`
	f := newFakeMOSNWith(t, cfg, nil)
	routes := decode(t, f.generate(t, v3.RouteType, []string{dubboRoutes}, nil), func() *route.RouteConfiguration { return &route.RouteConfiguration{} })
	rc := routes[dubboRoutes]
	if rc == nil {
		t.Fatalf("RDS: no %s", dubboRoutes)
	}
	var names []string
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		names = append(names, r.Name)
	}
	if want := []string{"default:com.example.demoservice", "to-demo", "default", "tri:default"}; !slices.Equal(names, want) {
		t.Fatalf("rules %v, want %v", names, want)
	}
	if got := ruleNamed(rc, "to-demo").GetRoute().GetCluster(); got != "outbound|20880||com.example.demoservice" {
		t.Fatalf("the Dubbo rule goes to %q", got)
	}
}
