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

package conformance

import (
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"istio.io/istio/pkg/wellknown"
)

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

func addr(port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

func hcmFilter(rds string) *listener.Filter {
	return &listener.Filter{Name: wellknown.HTTPConnectionManager, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(&hcm.HttpConnectionManager{
		StatPrefix: "x", RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: rds}},
	})}}
}

func egress(rds string) *listener.Listener {
	return &listener.Listener{
		Name: "egress_dubbo", Address: addr(20881),
		DeprecatedV1: &listener.Listener_DeprecatedV1{BindToPort: wrapperspb.Bool(true)},
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{hcmFilter(rds)}}},
	}
}

func dubboRoute(name string, vhosts []*route.VirtualHost) *route.RouteConfiguration {
	return &route.RouteConfiguration{Name: name, VirtualHosts: vhosts}
}

func rule(match *route.RouteMatch) *route.Route {
	return &route.Route{Match: match, Action: &route.Route_Route{Route: &route.RouteAction{
		ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "outbound|20880||a"},
	}}}
}

func exactSvc() *route.HeaderMatcher {
	return &route.HeaderMatcher{Name: "service", HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "com.a.B"}}
}

func good() Snapshot {
	return Snapshot{
		Listeners: []*listener.Listener{egress("dubbo-20881")},
		Routes: []*route.RouteConfiguration{dubboRoute("dubbo-20881", []*route.VirtualHost{{
			Name: "dubbo", Domains: []string{"*"},
			Routes: []*route.Route{rule(&route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: ""}, Headers: []*route.HeaderMatcher{exactSvc(),
				{Name: "method", HeaderMatchSpecifier: &route.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: &matcher.RegexMatcher{Regex: "^get.*$"}}}}}),
				tripleRule(&route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: `^/com\.a\.B/get[^/]*$`}},
					Headers: []*route.HeaderMatcher{{Name: "tri-service-version", HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "1.0"}}}}),
				tripleRule(&route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/com.a.B/"}}),
			},
		}})},
		Clusters: []*cluster.Cluster{
			{Name: "outbound|20880||a", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS}, LbPolicy: cluster.Cluster_LEAST_REQUEST},
			{Name: "outbound|50051||a", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS}, LbPolicy: cluster.Cluster_LEAST_REQUEST,
				TypedExtensionProtocolOptions: map[string]*anypb.Any{httpOptions: mustAny(&httpv3.HttpProtocolOptions{
					UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
						ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &core.Http2ProtocolOptions{}},
					}},
				})}},
		},
		Endpoints: []*endpoint.ClusterLoadAssignment{cla("outbound|20880||a", 20880), cla("outbound|50051||a", 50052)},
	}
}

func cla(name string, port uint32) *endpoint.ClusterLoadAssignment {
	return &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{
		LbEndpoints: []*endpoint.LbEndpoint{{
			HostIdentifier:      &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: addr(port)}},
			LoadBalancingWeight: wrapperspb.UInt32(128),
		}},
	}}}
}

// tripleRule: an HTTP rule for Triple calls, to the Triple port's cluster.
func tripleRule(match *route.RouteMatch) *route.Route {
	return &route.Route{Match: match, Action: &route.Route_Route{Route: &route.RouteAction{
		ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "outbound|50051||a"},
	}}}
}

func TestGoodSnapshotPasses(t *testing.T) {
	if v := Check(good()); len(v) != 0 {
		t.Fatalf("violations on a conforming snapshot: %v", v)
	}
}

func TestViolations(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Snapshot)
		want   string
	}{
		{"two filter chains", func(s *Snapshot) {
			s.Listeners[0].FilterChains = append(s.Listeners[0].FilterChains, s.Listeners[0].FilterChains[0])
		}, "2 filter chains"},
		{"dubbo_proxy filter", func(s *Snapshot) {
			s.Listeners[0].FilterChains[0].Filters = []*listener.Filter{{Name: "envoy.filters.network.dubbo_proxy"}}
		}, "dropped by MOSN"},
		{"top-level bind_to_port", func(s *Snapshot) {
			s.Listeners[0].DeprecatedV1 = nil
			s.Listeners[0].BindToPort = wrapperspb.Bool(false)
		}, "deprecated_v1"},
		{"string_match header", func(s *Snapshot) {
			s.Routes[0].VirtualHosts[0].Routes[0].Match.Headers[0] = &route.HeaderMatcher{Name: "service",
				HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "x"}}}}
		}, "equals empty"},
		{"a path rule for every service", func(s *Snapshot) {
			s.Routes[0].VirtualHosts[0].Routes[2].Match.PathSpecifier = &route.RouteMatch_Prefix{Prefix: "/"}
		}, "stay under /<interface>/"},
		{"a Triple path regex for every service", func(s *Snapshot) {
			s.Routes[0].VirtualHosts[0].Routes[1].Match.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "^/.*/get$"}}
		}, "stay under /<interface>/"},
		{"a Triple rule on the Dubbo method", func(s *Snapshot) {
			m := s.Routes[0].VirtualHosts[0].Routes[1].Match
			m.Headers = append(m.Headers, &route.HeaderMatcher{Name: "method", HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "get"}})
		}, "never the Dubbo attribute"},
		{"a Triple rule on the Dubbo service header", func(s *Snapshot) {
			m := s.Routes[0].VirtualHosts[0].Routes[2].Match
			m.Headers = append(m.Headers, exactSvc())
		}, "never the Dubbo attribute"},
		{"a Triple rule to the Dubbo port", func(s *Snapshot) {
			s.Routes[0].VirtualHosts[0].Routes[2].GetRoute().ClusterSpecifier = &route.RouteAction_Cluster{Cluster: "outbound|20880||a"}
		}, "which Dubbo rules use"},
		{"a Triple rule to a non-HTTP/2 cluster", func(s *Snapshot) {
			s.Routes[0].VirtualHosts[0].Routes[2].GetRoute().ClusterSpecifier = &route.RouteAction_Cluster{Cluster: "outbound|9000||b"}
			s.Clusters = append(s.Clusters, &cluster.Cluster{Name: "outbound|9000||b"})
		}, "non-HTTP/2 port"},
		{"a Dubbo rule to the Triple port", func(s *Snapshot) {
			s.Routes[0].VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &route.RouteAction_Cluster{Cluster: "outbound|50051||a"}
		}, "HTTP/2 (Triple) port"},
		{"an unguarded Dubbo rule shadows Triple rules", func(s *Snapshot) {
			s.Routes[0].VirtualHosts[0].Routes[0].Match.Headers = s.Routes[0].VirtualHosts[0].Routes[0].Match.Headers[1:]
		}, "shadows the rules after it"},
		{"path_separated_prefix", func(s *Snapshot) {
			s.Routes[0].VirtualHosts[0].Routes[2].Match.PathSpecifier = &route.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/com.a.B"}
		}, "only prefix, path and safe_regex"},
		{"several virtual hosts without *", func(s *Snapshot) {
			vh := s.Routes[0].VirtualHosts[0]
			s.Routes[0].VirtualHosts = []*route.VirtualHost{{Name: "a", Domains: []string{"com.a.b"}, Routes: vh.Routes}, {Name: "b", Domains: []string{"com.c.d"}}}
		}, "single virtual host"},
		{"bad wildcard domain", func(s *Snapshot) { s.Routes[0].VirtualHosts[0].Domains = []string{"com.foo.*"} }, "wildcard"},
		{"two locality groups", func(s *Snapshot) {
			s.Endpoints[0].Endpoints = append(s.Endpoints[0].Endpoints, s.Endpoints[0].Endpoints[0])
		}, "locality groups"},
		{"weight above 128", func(s *Snapshot) {
			s.Endpoints[0].Endpoints[0].LbEndpoints[0].LoadBalancingWeight = wrapperspb.UInt32(200)
		}, "outside MOSN's 1..128"},
		{"cluster_name mismatch", func(s *Snapshot) { s.Endpoints[0].ClusterName = "outbound|20880||other" }, "no ClusterLoadAssignment named after"},
		{"route name parses as a port", func(s *Snapshot) {
			s.Listeners[0] = egress("20881")
			s.Routes[0].Name = "20881"
		}, "must not parse as a port"},
		{"TLS match toward plaintext endpoints", func(s *Snapshot) {
			s.Clusters[0].TransportSocketMatches = []*cluster.Cluster_TransportSocketMatch{{Name: "tlsMode-istio",
				TransportSocket: &core.TransportSocket{Name: wellknown.TransportSocketTLS}}}
		}, "TLS transport_socket_match"},
		{"endpoint without address", func(s *Snapshot) {
			s.Endpoints[0].Endpoints[0].LbEndpoints[0].HostIdentifier = &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{}}
		}, "without address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := good()
			c.mutate(&s)
			v := Check(s)
			if !strings.Contains(strings.Join(v, "\n"), c.want) {
				t.Fatalf("no violation containing %q; got %v", c.want, v)
			}
		})
	}
}
