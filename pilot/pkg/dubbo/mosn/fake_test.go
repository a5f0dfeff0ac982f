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
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"

	meshconfig "istio.io/api/mesh/v1alpha1"

	"istio.io/istio/pilot/pkg/model"
	istiocore "istio.io/istio/pilot/pkg/networking/core"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	xdsfake "istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/schema/kind"
	"istio.io/istio/pkg/log"
	"istio.io/istio/pkg/util/sets"
	"istio.io/istio/pkg/wellknown"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

// fakeConfig: a Dubbo service (ServiceEntry, protocol DUBBO, port 8080, two providers in
// two localities with weights 1000 and 1), its DestinationRule (ROUND_ROBIN, which MOSN
// would apply without weights, and two subsets) and VirtualService (a method rule with a
// 0.1% mirror, and a default), an HTTP service on the same port 8080 (its listener must
// survive for MOSN nodes: fix 6) and an HTTP service on the port egress_dubbo binds
// (its listener must go).
const fakeConfig = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: demo, namespace: default}
spec:
  hosts: [com.example.demoservice]
  ports: [{number: 8080, name: dubbo, protocol: DUBBO}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}, locality: region/zone-a, weight: 1000}
  - {address: 10.0.0.2, labels: {version: v2}, locality: region/zone-b, weight: 1}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.com]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.0.1.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: on-egress-port, namespace: default}
spec:
  hosts: [clash.example.com]
  ports: [{number: 20881, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.0.2.1}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: demo, namespace: default}
spec:
  host: com.example.demoservice
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: demo, namespace: default}
spec:
  hosts: [com.example.demoservice]
  http:
  - name: say-hello
    match: [{method: {exact: sayHello}}]
    route: [{destination: {host: com.example.demoservice, subset: v2}}]
    mirror: {host: com.example.demoservice, subset: v1}
    mirrorPercentage: {value: 0.1}
  - name: rest
    route: [{destination: {host: com.example.demoservice, subset: v1}}]
`

const (
	demoHost    = "com.example.demoservice"
	dubboRoutes = "dubbo-20881" // RouteName of the default outbound port
)

type fakeMOSN struct {
	s     *xdsfake.FakeDiscoveryServer
	proxy *model.Proxy
}

// newFakeMOSN starts upstream's fake discovery server, registers our generators on it as
// extension.go does, and sets up a MOSN sidecar (GENERATOR=mosn) in namespace default.
func newFakeMOSN(t *testing.T, raw map[string]any) *fakeMOSN {
	t.Helper()
	return newFakeMOSNWith(t, fakeConfig, raw)
}

// newFakeMOSNWith is newFakeMOSN on other configuration.
func newFakeMOSNWith(t *testing.T, configString string, raw map[string]any) *fakeMOSN {
	t.Helper()
	return newFakeNode(t, fakeNode{
		config: configString, id: "consumer.default", ip: "10.200.0.1", app: "consumer",
		mode: model.InterceptionNone, // explicit mode, as MOSN sidecars run
		raw:  raw,
	})
}

// fakeNode is the MOSN sidecar a fake test sets up, in namespace default.
type fakeNode struct {
	config      string
	mesh        *meshconfig.MeshConfig // nil: upstream's default
	id, ip, app string
	mode        model.TrafficInterceptionMode
	raw         map[string]any
}

// newFakeNode starts upstream's fake discovery server on the node's configuration,
// registers our generators on it as extension.go does, and sets up the node.
func newFakeNode(t *testing.T, n fakeNode) *fakeMOSN {
	t.Helper()
	s := xdsfake.NewFakeDiscoveryServer(t, xdsfake.FakeOptions{ConfigString: n.config, MeshConfig: n.mesh})
	hook := istiocore.SkipOutboundListener
	t.Cleanup(func() { istiocore.SkipOutboundListener = hook }) // a package-level hook Register sets
	if _, err := Register(s.Discovery, Options{}, nil); err != nil {
		t.Fatal(err)
	}
	md := &model.NodeMetadata{
		Namespace: "default", ClusterID: constants.DefaultClusterName, IstioVersion: "1.31.0",
		Generator: GeneratorName, Labels: map[string]string{"app": n.app},
		InterceptionMode: n.mode,
		Raw:              n.raw,
	}
	p := &model.Proxy{
		Type: model.SidecarProxy, ID: n.id, IPAddresses: []string{n.ip},
		ConfigNamespace: "default", Labels: md.Labels, Metadata: md,
	}
	return &fakeMOSN{s: s, proxy: s.SetupProxy(p)}
}

// generate runs the MOSN generator of a type as a push would. req nil: a full push of
// everything (Forced), as on connect.
func (f *fakeMOSN) generate(t *testing.T, typeURL string, names []string, req *model.PushRequest) model.Resources {
	t.Helper()
	gen := f.s.Discovery.Generators[GeneratorName+"/"+typeURL]
	if gen == nil {
		t.Fatalf("no MOSN generator for %s", typeURL)
	}
	if req == nil {
		req = &model.PushRequest{Forced: true}
	}
	req.Push = f.s.PushContext()
	w := &model.WatchedResource{TypeUrl: typeURL, ResourceNames: sets.New(names...)}
	res, _, err := gen.Generate(f.proxy, w, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func decode[T proto.Message](t *testing.T, res model.Resources, newT func() T) map[string]T {
	t.Helper()
	out := map[string]T{}
	for _, r := range res {
		m := newT()
		if err := r.Resource.UnmarshalTo(m); err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		out[r.Name] = m
	}
	return out
}

func values[T any](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, k := range keys(m) {
		out = append(out, m[k])
	}
	return out
}

func keys[T any](m map[string]T) []string { return slices.Sorted(maps.Keys(m)) }

// TestFakeServerMOSN runs the four MOSN generators on upstream's fake discovery server
// and checks what each adds or adapts, then the whole snapshot with the conformance
// checker.
func TestFakeServerMOSN(t *testing.T) {
	f := newFakeMOSN(t, nil)

	// LDS
	listeners := decode(t, f.generate(t, v3.ListenerType, nil, nil), func() *listener.Listener { return &listener.Listener{} })
	if _, ok := listeners[EgressListenerName]; !ok {
		t.Errorf("LDS: no %s in %v", EgressListenerName, keys(listeners))
	}
	// Fix 6: the HTTP service on the Dubbo service's port keeps its listener; the one on
	// egress_dubbo's port does not.
	httpRoutes := "" // the RDS name of the HTTP listener on 8080
	for name, l := range listeners {
		switch listenerPort(name) {
		case 20881:
			t.Errorf("LDS: %s collides with %s", name, EgressListenerName)
		case 8080:
			m := &hcm.HttpConnectionManager{}
			for _, fc := range l.FilterChains {
				for _, fl := range fc.Filters {
					if fl.Name == wellknown.HTTPConnectionManager && fl.GetTypedConfig().UnmarshalTo(m) == nil {
						httpRoutes = m.GetRds().GetRouteConfigName()
					}
				}
			}
		}
	}
	if httpRoutes == "" {
		t.Fatalf("LDS: no HTTP listener on port 8080 (shared with a Dubbo service): %v", keys(listeners))
	}

	// RDS
	routes := decode(t, f.generate(t, v3.RouteType, []string{dubboRoutes, httpRoutes}, nil), func() *route.RouteConfiguration { return &route.RouteConfiguration{} })
	rc, ok := routes[dubboRoutes]
	if !ok {
		t.Fatalf("RDS: no %s in %v", dubboRoutes, keys(routes))
	}
	if !slices.ContainsFunc(routes[httpRoutes].GetVirtualHosts(), func(vh *route.VirtualHost) bool { return slices.Contains(vh.Domains, "web.example.com") }) {
		t.Errorf("RDS: upstream's route %s has no virtual host for the HTTP service: %v", httpRoutes, routes[httpRoutes])
	}
	var sayHello *route.Route
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		if r.GetRoute().GetCluster() == "outbound|8080|v2|"+demoHost {
			sayHello = r
		}
	}
	if sayHello == nil {
		t.Fatalf("RDS: no route to subset v2 from the VirtualService: %v", rc)
	}
	if !slices.ContainsFunc(sayHello.GetMatch().GetHeaders(), func(h *route.HeaderMatcher) bool {
		return h.Name == headerMethod && h.GetExactMatch() == "sayHello"
	}) {
		t.Errorf("RDS: the sayHello rule does not match the method: %v", sayHello.GetMatch())
	}
	// Fix 9: 0.1% is 1000 per million (it was 0 per hundred).
	mp := sayHello.GetRoute().GetRequestMirrorPolicies()
	if len(mp) != 1 || mp[0].GetCluster() != "outbound|8080|v1|"+demoHost {
		t.Fatalf("RDS: mirror policies %v", mp)
	}
	if d := mp[0].GetRuntimeFraction().GetDefaultValue(); d.GetNumerator() != 1000 || d.GetDenominator() != xdstype.FractionalPercent_MILLION {
		t.Errorf("RDS: a 0.1%% mirror is sent as %v, want 1000/MILLION", d)
	}

	// CDS
	clusters := decode(t, f.generate(t, v3.ClusterType, nil, nil), func() *cluster.Cluster { return &cluster.Cluster{} })
	var dubboClusters []string
	for name, c := range clusters {
		if _, _, h, _ := model.ParseSubsetKey(name); h != demoHost {
			continue
		}
		dubboClusters = append(dubboClusters, name)
		if c.LbPolicy != cluster.Cluster_LEAST_REQUEST {
			t.Errorf("CDS: %s has %v; MOSN needs LEAST_REQUEST for weights to count", name, c.LbPolicy)
		}
		if len(c.TransportSocketMatches) != 0 {
			t.Errorf("CDS: %s keeps transport_socket_matches %v", name, c.TransportSocketMatches)
		}
	}
	slices.Sort(dubboClusters)
	want := []string{"outbound|8080||" + demoHost, "outbound|8080|v1|" + demoHost, "outbound|8080|v2|" + demoHost}
	if slices.Sort(want); !slices.Equal(dubboClusters, want) {
		t.Fatalf("CDS: Dubbo clusters %v, want %v", dubboClusters, want)
	}

	// EDS: every outbound EDS cluster, as MOSN asks.
	var edsNames []string
	for name, c := range clusters {
		if c.GetType() == cluster.Cluster_EDS {
			edsNames = append(edsNames, name)
		}
	}
	cla := decode(t, f.generate(t, v3.EndpointType, edsNames, &model.PushRequest{Forced: true, Reason: model.NewReasonStats(model.ProxyRequest)}),
		func() *endpoint.ClusterLoadAssignment { return &endpoint.ClusterLoadAssignment{} })
	all, ok := cla["outbound|8080||"+demoHost]
	if !ok {
		t.Fatalf("EDS: no assignment for the Dubbo service: %v", keys(cla))
	}
	if len(all.Endpoints) != 1 {
		t.Fatalf("EDS: %d locality groups, want 1 (MOSN keeps only the last)", len(all.Endpoints))
	}
	weights := map[string]uint32{}
	for _, ep := range all.Endpoints[0].LbEndpoints {
		weights[ep.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()] = ep.GetLoadBalancingWeight().GetValue()
	}
	if weights["10.0.0.1"] != MaxWeight || weights["10.0.0.2"] != MinWeight {
		t.Errorf("EDS: weights %v, want 10.0.0.1=%d (1000 scaled) and 10.0.0.2=%d", weights, MaxWeight, MinWeight)
	}

	snap := conformance.Snapshot{Listeners: values(listeners), Routes: values(routes), Clusters: values(clusters), Endpoints: values(cla)}
	if v := conformance.Check(snap); len(v) > 0 {
		t.Errorf("conformance:\n%s", strings.Join(v, "\n"))
	}
}

// TestFakeServerRoutePushes: the Dubbo route configuration is rebuilt on a config kind
// our routes do not read directly but upstream RDS pushes on (fix 7: a Gateway API
// HTTPRoute; an allow-list left dubbo-<port> stale), and not on kinds upstream skips.
func TestFakeServerRoutePushes(t *testing.T) {
	f := newFakeMOSN(t, nil)
	push := func(k kind.Kind) bool {
		req := &model.PushRequest{ConfigsUpdated: sets.New(model.ConfigKey{Kind: k, Name: "x", Namespace: "default"}),
			Reason: model.NewReasonStats(model.ConfigUpdate)}
		res := f.generate(t, v3.RouteType, []string{dubboRoutes}, req)
		return slices.ContainsFunc(res, func(r *discovery.Resource) bool { return r.Name == dubboRoutes })
	}
	for _, k := range []kind.Kind{kind.HTTPRoute, kind.GRPCRoute, kind.DestinationRule, kind.VirtualService, kind.ServiceEntry, kind.Sidecar} {
		if !push(k) {
			t.Errorf("a %v change left %s unpushed", k, dubboRoutes)
		}
	}
	for _, k := range []kind.Kind{kind.WorkloadEntry, kind.AuthorizationPolicy, kind.PeerAuthentication, kind.Telemetry} {
		if push(k) {
			t.Errorf("a %v change pushed %s (upstream RDS skips it)", k, dubboRoutes)
		}
	}
}

// TestFakeServerBadKnobLoggedOnce: a bad node knob is warned about once per proxy, not
// on every generation (fix 9).
func TestFakeServerBadKnobLoggedOnce(t *testing.T) {
	f := newFakeMOSN(t, map[string]any{MetaOutboundPort: "not-a-port"})
	out := filepath.Join(t.TempDir(), "log")
	opts := log.DefaultOptions()
	opts.OutputPaths = []string{out}
	if err := log.Configure(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = log.Configure(log.DefaultOptions()) })
	for i := 0; i < 3; i++ {
		if res := f.generate(t, v3.RouteType, []string{dubboRoutes}, nil); len(res) != 1 {
			t.Fatalf("RDS with a bad knob: %d resources, want %s on the default port", len(res), dubboRoutes)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "is not a port"); n != 1 {
		t.Errorf("the bad knob was warned about %d times in 3 generations, want 1:\n%s", n, b)
	}
}
