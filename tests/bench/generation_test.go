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

package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"istio.io/istio/pilot/pkg/model"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	xdsfake "istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/spiffe"
	"istio.io/istio/pkg/util/sets"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/mosn"
)

// The three shapes of the same N Dubbo services, each with two providers on different
// ports (version labels), a DestinationRule with two subsets and a VirtualService with an
// attachment rule, a weighted method split and a default (performance-anchors.md):
//
//	mosn:        ServiceEntries with protocol DUBBO, a MOSN node, our generators
//	http:        the same with protocol HTTP, an Envoy node, upstream's generators (upstream's best case)
//	envoyfilter: protocol TCP, plus one EnvoyFilter per service replacing tcp_proxy with
//	             dubbo_proxy (what Aeraki-style set-ups generate), upstream's generators
const (
	shapeMOSN        = "mosn"
	shapeHTTP        = "http"
	shapeEnvoyFilter = "envoyfilter"
)

func svcHost(i int) string { return fmt.Sprintf("svc%05d.dubbo.example", i) }

func shapeConfig(shape string, n int) string {
	var b strings.Builder
	proto := map[string]string{shapeMOSN: "DUBBO", shapeHTTP: "HTTP", shapeEnvoyFilter: "TCP"}[shape]
	for i := 0; i < n; i++ {
		h := svcHost(i)
		// Only the EnvoyFilter shape needs VIPs (its filters match <VIP>_20880 listeners);
		// Dubbo registry services have none.
		addresses := ""
		if shape == shapeEnvoyFilter {
			addresses = fmt.Sprintf("\n  addresses: [240.%d.%d.%d]", i/65536, (i/256)%256, i%256)
		}
		fmt.Fprintf(&b, `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se%[1]d, namespace: dubbo}
spec:
  hosts: [%[2]s]%[3]s
  location: MESH_INTERNAL
  ports: [{number: 20880, name: dubbo, protocol: %[4]s}]
  resolution: STATIC
  endpoints:
  - {address: 10.%[5]d.%[6]d.1, ports: {dubbo: 20880}, labels: {version: v1}}
  - {address: 10.%[5]d.%[6]d.1, ports: {dubbo: 20890}, labels: {version: v2}, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr%[1]d, namespace: dubbo}
spec:
  host: %[2]s
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`, i, h, addresses, proto, i/250, i%250)
		if shape == shapeEnvoyFilter {
			fmt.Fprintf(&b, `---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef%[1]d, namespace: istio-system} # the root namespace: applies to every proxy, as Aeraki does
spec:
  configPatches:
  - applyTo: NETWORK_FILTER
    match:
      context: SIDECAR_OUTBOUND
      listener:
        name: %[3]s_20880
        filterChain:
          filter: {name: envoy.filters.network.tcp_proxy}
    patch:
      operation: REPLACE
      value:
        name: envoy.filters.network.dubbo_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy
          stat_prefix: outbound|20880||%[2]s
          protocol_type: Dubbo
          serialization_type: Hessian2
          route_config:
          - name: outbound|20880||%[2]s
            interface: %[2]s
            routes:
            - match:
                method: {name: {exact: sayHello}}
                headers: [{name: env, exact_match: gray}]
              route: {cluster: outbound|20880|v2|%[2]s}
            - match:
                method: {name: {exact: sayHello}}
              route:
                weighted_clusters:
                  clusters:
                  - {name: outbound|20880|v1|%[2]s, weight: 80}
                  - {name: outbound|20880|v2|%[2]s, weight: 20}
            - match:
                method: {name: {safe_regex: {regex: ".*"}}}
              route: {cluster: outbound|20880||%[2]s}
          dubbo_filters: [{name: envoy.filters.dubbo.router}]
`, i, h, fmt.Sprintf("240.%d.%d.%d", i/65536, (i/256)%256, i%256))
			continue
		}
		fmt.Fprintf(&b, `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs%[1]d, namespace: dubbo}
spec:
  hosts: [%[2]s]
  http:
  - match: [{headers: {env: {exact: gray}}}]
    route: [{destination: {host: %[2]s, subset: v2}}]
  - match: [{headers: {method: {exact: sayHello}}}]
    route:
    - {destination: {host: %[2]s, subset: v1}, weight: 80}
    - {destination: {host: %[2]s, subset: v2}, weight: 20}
    timeout: 3s
    retries: {attempts: 2}
  - route: [{destination: {host: %[2]s}}]
`, i, h)
	}
	return b.String()
}

type genSetup struct {
	s      *xdsfake.FakeDiscoveryServer
	proxy  *model.Proxy
	prefix string // "mosn/" or ""
}

func setup(b *testing.B, shape string, n int) *genSetup {
	b.Helper()
	s := xdsfake.NewFakeDiscoveryServer(b, xdsfake.FakeOptions{ConfigString: shapeConfig(shape, n), DebounceTime: 10 * time.Millisecond})
	md := &model.NodeMetadata{Namespace: "default", ClusterID: constants.DefaultClusterName, IstioVersion: "1.31.0",
		Labels: map[string]string{"app": "consumer"}}
	prefix := ""
	if shape == shapeMOSN {
		if _, err := mosn.Register(s.Discovery, mosn.Options{}, nil); err != nil {
			b.Fatal(err)
		}
		md.Generator = mosn.GeneratorName
		md.InterceptionMode = model.InterceptionNone // explicit mode, as MOSN sidecars run (docs/mosn.md)
		prefix = mosn.GeneratorName + "/"
	}
	p := &model.Proxy{
		Type: model.SidecarProxy, IPAddresses: []string{"10.200.0.1"}, ID: "consumer.default", DNSDomain: "default.svc.cluster.local",
		Labels: md.Labels, Metadata: md, ConfigNamespace: "default", VerifiedIdentity: &spiffe.Identity{Namespace: "default"},
	}
	p.IstioVersion = model.ParseIstioVersion(md.IstioVersion)
	p.DiscoverIPMode()
	return &genSetup{s: s, proxy: s.SetupProxy(p), prefix: prefix}
}

func (g *genSetup) generate(b *testing.B, typeURL string, names []string) model.Resources {
	gen := g.s.Discovery.Generators[g.prefix+typeURL]
	if gen == nil {
		gen = g.s.Discovery.Generators[typeURL]
	}
	w := &model.WatchedResource{TypeUrl: typeURL, ResourceNames: sets.New(names...)}
	// Start is set as on every real push: upstream's xDS caches keep only what a request
	// with a start time built, so without it upstream's CDS, RDS and EDS would rebuild
	// every resource on every push, which a real istiod does not.
	res, _, err := gen.Generate(g.proxy, w, &model.PushRequest{Push: g.s.PushContext(), Forced: true, Start: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	if len(res) == 0 {
		b.Fatalf("no %s resources", typeURL)
	}
	return res
}

func size(r model.Resources) int {
	n := 0
	for _, x := range r {
		n += len(x.Resource.GetValue())
	}
	return n
}

// routeNames are the RDS names the node's listeners ask for.
func (g *genSetup) routeNames(b *testing.B) []string {
	if g.prefix != "" {
		return []string{mosn.RouteName(20881)}
	}
	return []string{"20880"}
}

func (g *genSetup) clusterNames(b *testing.B) []string {
	var out []string
	for _, r := range g.generate(b, v3.ClusterType, nil) {
		if strings.HasPrefix(r.Name, "outbound|") {
			out = append(out, r.Name)
		}
	}
	return out
}

// Sizes per shape: the targets compare at 1,000 and 3,000 (EnvoyFilter) and 1,000 to
// 10,000 (HTTP); the EnvoyFilter shape is not run beyond 3,000, where one push already
// takes most of a second (its LDS grows with the square of N).
var genSizes = map[string][]int{
	shapeMOSN:        {100, 1000, 3000, 5000, 10000},
	shapeHTTP:        {100, 1000, 3000, 5000, 10000},
	shapeEnvoyFilter: {100, 1000, 3000},
}

// BenchmarkGeneration measures one push to one sidecar per type and shape.
// Sub-benchmark names: <shape>/<type>/N=<n>.
func BenchmarkGeneration(b *testing.B) {
	for _, shape := range []string{shapeMOSN, shapeHTTP, shapeEnvoyFilter} {
		for _, n := range genSizes[shape] {
			b.Run(fmt.Sprintf("%s/N=%d", shape, n), func(b *testing.B) {
				g := setup(b, shape, n)
				types := []struct {
					name  string
					url   string
					names []string
				}{
					{"LDS", v3.ListenerType, nil},
					{"RDS", v3.RouteType, g.routeNames(b)},
					{"CDS", v3.ClusterType, nil},
					{"EDS", v3.EndpointType, g.clusterNames(b)},
				}
				if shape == shapeMOSN {
					// RDS above is a proxy whose scope's configuration is built already (a
					// cache hit); RDS-miss builds it, as for the first proxy of a scope.
					types = append(types, struct {
						name  string
						url   string
						names []string
					}{"RDS-miss", v3.RouteType, g.routeNames(b)})
				}
				for _, tp := range types {
					if shape == shapeEnvoyFilter && tp.name != "LDS" {
						continue // the EnvoyFilter tax is on LDS; the rest is the TCP shape
					}
					if tp.name == "RDS-miss" {
						if _, err := mosn.Register(g.s.Discovery, mosn.Options{NoRouteCache: true}, nil); err != nil {
							b.Fatal(err)
						}
					}
					b.Run(tp.name, func(b *testing.B) {
						res := g.generate(b, tp.url, tp.names) // warm caches, as a steady-state push
						b.ReportAllocs()
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							res = g.generate(b, tp.url, tp.names)
						}
						b.StopTimer()
						b.ReportMetric(float64(size(res))/1024, "KiB/push")
						b.ReportMetric(float64(len(res)), "resources")
					})
				}
			})
		}
	}
}
