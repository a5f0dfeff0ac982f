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
	"bytes"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbac "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
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

const sdsSocket = "/var/run/secrets/workload-spiffe-uds/socket"

// sds: an SDS secret the way MOSN fetches it: google_grpc to pilot-agent's socket.
func sds(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &core.ConfigSource{
		ConfigSourceSpecifier: &core.ConfigSource_ApiConfigSource{ApiConfigSource: &core.ApiConfigSource{
			ApiType: core.ApiConfigSource_GRPC,
			GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_GoogleGrpc_{GoogleGrpc: &core.GrpcService_GoogleGrpc{
				TargetUri: sdsSocket, StatPrefix: "sds",
			}}}},
		}},
	}}
}

// sdsSource returns an SDS secret's API config source, for cases to break.
func sdsSource(s *tlsv3.SdsSecretConfig) *core.ApiConfigSource {
	return s.GetSdsConfig().GetApiConfigSource()
}

func exactSAN(san string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: san}}
}

// commonTLS: Istio certificates over SDS, the CA in a combined validation context with the given SANs.
func commonTLS(sans ...*matcher.StringMatcher) *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds("default")},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchSubjectAltNames: sans},
			ValidationContextSdsSecretConfig: sds("ROOTCA"),
		}},
	}
}

func upstreamTLS(c *tlsv3.CommonTlsContext) *core.TransportSocket {
	return &core.TransportSocket{Name: wellknown.TransportSocketTLS, ConfigType: &core.TransportSocket_TypedConfig{
		TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{CommonTlsContext: c, Sni: "outbound_.20880_._.a"}),
	}}
}

func downstreamTLS(c *tlsv3.CommonTlsContext) *core.TransportSocket {
	return &core.TransportSocket{Name: wellknown.TransportSocketTLS, ConfigType: &core.TransportSocket_TypedConfig{
		TypedConfig: mustAny(&tlsv3.DownstreamTlsContext{CommonTlsContext: c, RequireClientCertificate: wrapperspb.Bool(true)}),
	}}
}

func headerExact(name, value string) *route.HeaderMatcher {
	return &route.HeaderMatcher{Name: name, HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: value}}
}

func re2(re string) *matcher.RegexMatcher {
	return &matcher.RegexMatcher{Regex: re, EngineType: &matcher.RegexMatcher_GoogleRe2{GoogleRe2: &matcher.RegexMatcher_GoogleRE2{}}}
}

// sourcePrincipal is how MOSN reads the caller's identity: metadata istio_authn source.principal.
func sourcePrincipal(s *matcher.StringMatcher) *rbac.Principal {
	return &rbac.Principal{Identifier: &rbac.Principal_Metadata{Metadata: &matcher.MetadataMatcher{
		Filter: "istio_authn",
		Path:   []*matcher.MetadataMatcher_PathSegment{{Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: "source.principal"}}},
		Value:  &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: s}},
	}}}
}

func permHeader(h *route.HeaderMatcher) *rbac.Permission {
	return &rbac.Permission{Rule: &rbac.Permission_Header{Header: h}}
}

func princHeader(h *route.HeaderMatcher) *rbac.Principal {
	return &rbac.Principal{Identifier: &rbac.Principal_Header{Header: h}}
}

// allowPolicy uses every principal and permission form MOSN reads.
func allowPolicy() *rbac.Policy {
	cidr := &core.CidrRange{AddressPrefix: "10.0.0.0", PrefixLen: wrapperspb.UInt32(8)}
	return &rbac.Policy{
		Principals: []*rbac.Principal{{Identifier: &rbac.Principal_AndIds{AndIds: &rbac.Principal_Set{Ids: []*rbac.Principal{
			sourcePrincipal(exactSAN("cluster.local/ns/default/sa/order")),
			{Identifier: &rbac.Principal_OrIds{OrIds: &rbac.Principal_Set{Ids: []*rbac.Principal{
				{Identifier: &rbac.Principal_RemoteIp{RemoteIp: cidr}},
				{Identifier: &rbac.Principal_DirectRemoteIp{DirectRemoteIp: cidr}},
				{Identifier: &rbac.Principal_SourceIp{SourceIp: cidr}},
				sourcePrincipal(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "cluster.local/ns/default/"}}),
				sourcePrincipal(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: "/sa/order"}}),
				sourcePrincipal(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: re2(`^cluster\.local/ns/[^/]+/sa/order$`)}}),
			}}}},
			{Identifier: &rbac.Principal_NotId{NotId: princHeader(&route.HeaderMatcher{Name: "x-test", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}})}},
			{Identifier: &rbac.Principal_Any{Any: true}},
		}}}}},
		Permissions: []*rbac.Permission{{Rule: &rbac.Permission_AndRules{AndRules: &rbac.Permission_Set{Rules: []*rbac.Permission{
			permHeader(headerExact("service", "com.a.PaymentService")),
			permHeader(&route.HeaderMatcher{Name: "method", HeaderMatchSpecifier: &route.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: re2("^(refund|pay)$")}}),
			{Rule: &rbac.Permission_OrRules{OrRules: &rbac.Permission_Set{Rules: []*rbac.Permission{
				permHeader(&route.HeaderMatcher{Name: "version", HeaderMatchSpecifier: &route.HeaderMatcher_PrefixMatch{PrefixMatch: "1."}}),
				permHeader(&route.HeaderMatcher{Name: "group", HeaderMatchSpecifier: &route.HeaderMatcher_SuffixMatch{SuffixMatch: "-blue"}}),
				permHeader(&route.HeaderMatcher{Name: "x-n", HeaderMatchSpecifier: &route.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 1, End: 9}}}),
			}}}},
			{Rule: &rbac.Permission_NotRule{NotRule: &rbac.Permission{Rule: &rbac.Permission_DestinationIp{DestinationIp: cidr}}}},
			{Rule: &rbac.Permission_DestinationPort{DestinationPort: 20880}},
			{Rule: &rbac.Permission_Any{Any: true}},
		}}}}},
	}
}

func denyPolicy() *rbac.Policy {
	return &rbac.Policy{
		Principals:  []*rbac.Principal{{Identifier: &rbac.Principal_Any{Any: true}}},
		Permissions: []*rbac.Permission{permHeader(headerExact("method", "refund"))},
	}
}

func rbacFilter(action rbac.RBAC_Action, policies map[string]*rbac.Policy) *hcm.HttpFilter {
	return &hcm.HttpFilter{Name: wellknown.HTTPRoleBasedAccessControl, ConfigType: &hcm.HttpFilter_TypedConfig{
		TypedConfig: mustAny(&rbachttp.RBAC{Rules: &rbac.RBAC{Action: action, Policies: policies}}),
	}}
}

// inboundHCM: an inbound chain's HCM, DENY before ALLOW as Istio orders them.
func inboundHCM(rds string, filters ...*hcm.HttpFilter) *listener.Filter {
	if filters == nil {
		filters = []*hcm.HttpFilter{
			rbacFilter(rbac.RBAC_DENY, map[string]*rbac.Policy{"ns[default]-policy[deny-refund]-rule[0]": denyPolicy()}),
			rbacFilter(rbac.RBAC_ALLOW, map[string]*rbac.Policy{"ns[default]-policy[allow-order]-rule[0]": allowPolicy()}),
			{Name: wellknown.Router},
		}
	}
	return &listener.Filter{Name: wellknown.HTTPConnectionManager, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(&hcm.HttpConnectionManager{
		StatPrefix: "inbound", RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: rds}}, HttpFilters: filters,
	})}}
}

func tcpProxy(cluster string) *listener.Filter {
	return &listener.Filter{Name: wellknown.TCPProxy, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(&tcp.TcpProxy{
		StatPrefix: cluster, ClusterSpecifier: &tcp.TcpProxy_Cluster{Cluster: cluster},
	})}}
}

func onPort(port uint32, ts *core.TransportSocket, filters ...*listener.Filter) *listener.FilterChain {
	return &listener.FilterChain{
		FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(port)},
		TransportSocket:  ts, Filters: filters,
	}
}

// virtualInbound: PERMISSIVE on the Dubbo port (a TLS and a plaintext chain, filters built
// separately but equal), STRICT on the Triple port, a plaintext TCP port.
func virtualInbound() *listener.Listener {
	return &listener.Listener{
		Name: "virtualInbound", Address: addr(15006),
		DeprecatedV1:    &listener.Listener_DeprecatedV1{BindToPort: wrapperspb.Bool(true)},
		ListenerFilters: []*listener.ListenerFilter{{Name: wellknown.OriginalDestination}},
		FilterChains: []*listener.FilterChain{
			onPort(20880, downstreamTLS(commonTLS()), inboundHCM("inbound|20880||")),
			onPort(20880, nil, inboundHCM("inbound|20880||")),
			onPort(50051, downstreamTLS(commonTLS()), inboundHCM("inbound|50051||")),
			onPort(9000, nil, tcpProxy("inbound|9000||")),
		},
	}
}

// secure: good() plus a TLS cluster and a virtualInbound listener, in forms MOSN reads.
func secure() Snapshot {
	s := good()
	s.Listeners = append(s.Listeners, virtualInbound())
	s.Clusters = append(s.Clusters, &cluster.Cluster{
		Name: "outbound|20880||secure", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		TransportSocket: upstreamTLS(commonTLS(exactSAN("spiffe://cluster.local/ns/default/sa/provider"))),
	})
	s.Endpoints = append(s.Endpoints, cla("outbound|20880||secure", 20880))
	return s
}

// Indices into secure().
const (
	vin       = 1 // virtualInbound in Listeners
	tlsClu    = 2 // the TLS cluster in Clusters
	dubboTLS  = 0 // virtualInbound's chains
	dubboText = 1
	triple    = 2
	tcpChain  = 3
)

func clusterTLS(s *Snapshot) *tlsv3.UpstreamTlsContext {
	t := &tlsv3.UpstreamTlsContext{}
	if err := s.Clusters[tlsClu].TransportSocket.GetTypedConfig().UnmarshalTo(t); err != nil {
		panic(err)
	}
	return t
}

func setClusterTLS(s *Snapshot, c *tlsv3.CommonTlsContext) {
	s.Clusters[tlsClu].TransportSocket = upstreamTLS(c)
}

// setPolicy replaces chain i's HCM with one whose only RBAC filter holds the policy p.
func setPolicy(s *Snapshot, i int, action rbac.RBAC_Action, p *rbac.Policy) {
	s.Listeners[vin].FilterChains[i].Filters = []*listener.Filter{inboundHCM(virtualNameOf(s, i),
		rbacFilter(action, map[string]*rbac.Policy{"p": p}), &hcm.HttpFilter{Name: wellknown.Router})}
}

func virtualNameOf(s *Snapshot, i int) string { return virtualName(s.Listeners[vin].FilterChains[i]) }

func allowWith(pr *rbac.Principal, pe *rbac.Permission) *rbac.Policy {
	if pr == nil {
		pr = &rbac.Principal{Identifier: &rbac.Principal_Any{Any: true}}
	}
	if pe == nil {
		pe = &rbac.Permission{Rule: &rbac.Permission_Any{Any: true}}
	}
	return &rbac.Policy{Principals: []*rbac.Principal{pr}, Permissions: []*rbac.Permission{pe}}
}

func urlPath(s *matcher.StringMatcher) *rbac.Permission {
	return &rbac.Permission{Rule: &rbac.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: s}}}}
}

// TestSecurePasses: configurations MOSN reads as written pass every security rule.
func TestSecurePasses(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Snapshot)
	}{
		{"as built", func(*Snapshot) {}},
		{"SAN in validation_context", func(s *Snapshot) {
			c := commonTLS()
			c.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				MatchSubjectAltNames: []*matcher.StringMatcher{exactSAN("spiffe://cluster.local/ns/default/sa/provider")},
			}}
			setClusterTLS(s, c)
		}},
		{"CA over validation_context_sds_secret_config", func(s *Snapshot) {
			c := commonTLS()
			c.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: sds("ROOTCA")}
			s.Listeners[vin].FilterChains[triple].TransportSocket = downstreamTLS(c)
		}},
		{"use_original_dst instead of the listener filter", func(s *Snapshot) {
			s.Listeners[vin].ListenerFilters = nil
			s.Listeners[vin].UseOriginalDst = wrapperspb.Bool(true)
		}},
		{"STRICT only", func(s *Snapshot) {
			fcs := s.Listeners[vin].FilterChains
			s.Listeners[vin].FilterChains = append(fcs[:dubboText:dubboText], fcs[dubboText+1:]...)
		}},
		{"telemetry filters differ between a port's chains", func(s *Snapshot) {
			fc := s.Listeners[vin].FilterChains[dubboText]
			fc.Filters = append([]*listener.Filter{{Name: "istio.metadata_exchange"}}, fc.Filters...)
		}},
		{"one name on one port in two listeners' chains", func(s *Snapshot) {
			l := virtualInbound()
			l.Name, l.Address = "virtualInbound2", addr(15007)
			s.Listeners = append(s.Listeners, l)
		}},
		{"a port's equal HCMs marshalled with maps in different orders", func(s *Snapshot) {
			a, b := mapHCM(t)
			s.Listeners[vin].FilterChains[dubboTLS].Filters = []*listener.Filter{a}
			s.Listeners[vin].FilterChains[dubboText].Filters = []*listener.Filter{b}
		}},
		{"RBAC on a plain listener", func(s *Snapshot) {
			s.Listeners[0].FilterChains[0].Filters = []*listener.Filter{inboundHCM("dubbo-20881")}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := secure()
			c.mutate(&s)
			if v := Check(s); len(v) != 0 {
				t.Fatalf("violations on a conforming snapshot: %v", v)
			}
		})
	}
}

// mapHCM returns two filters holding the same HCM whose Any bytes differ, because the inline
// route configuration's typed_per_filter_config map was marshalled in different orders.
func mapHCM(t *testing.T) (*listener.Filter, *listener.Filter) {
	per := map[string]*anypb.Any{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		per["envoy.filters.http."+k] = mustAny(wrapperspb.String(k))
	}
	m := &hcm.HttpConnectionManager{StatPrefix: "inbound", RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
		Name: "inbound|20880||", VirtualHosts: []*route.VirtualHost{{Name: "inbound", Domains: []string{"*"}, TypedPerFilterConfig: per}},
	}}}
	a := mustAny(m)
	for range 1000 {
		if b := mustAny(m); !bytes.Equal(a.Value, b.Value) {
			f := func(x *anypb.Any) *listener.Filter {
				return &listener.Filter{Name: wellknown.HTTPConnectionManager, ConfigType: &listener.Filter_TypedConfig{TypedConfig: x}}
			}
			return f(a), f(b)
		}
	}
	t.Fatal("marshalling a map never gave two byte orders")
	return nil, nil
}

func TestSecurityViolations(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Snapshot)
		want   string
	}{
		// SDS
		{"SDS over envoy_grpc (Istio's sds-grpc)", func(s *Snapshot) {
			c := commonTLS(exactSAN("spiffe://cluster.local/ns/default/sa/provider"))
			sdsSource(c.TlsCertificateSdsSecretConfigs[0]).GrpcServices[0].TargetSpecifier = &core.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: "sds-grpc"}}
			setClusterTLS(s, c)
		}, `cluster outbound|20880||secure: SDS secret "default": not google_grpc (MOSN dials "unix:"+target_uri`},
		{"SDS target_uri with unix:", func(s *Snapshot) {
			c := commonTLS(exactSAN("spiffe://cluster.local/ns/default/sa/provider"))
			sdsSource(c.GetCombinedValidationContext().ValidationContextSdsSecretConfig).GrpcServices[0].GetGoogleGrpc().TargetUri = "unix://" + sdsSocket
			setClusterTLS(s, c)
		}, `cluster outbound|20880||secure: SDS secret "ROOTCA": google_grpc target_uri "unix:///var/run/secrets/workload-spiffe-uds/socket" is not a bare absolute path`},
		{"SDS over ADS", func(s *Snapshot) {
			c := commonTLS()
			c.TlsCertificateSdsSecretConfigs[0].SdsConfig = &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}
			s.Listeners[vin].FilterChains[dubboTLS].TransportSocket = downstreamTLS(c)
		}, `listener virtualInbound chain 0: SDS secret "default": sds_config has no api_config_source (` + sdsReason},
		{"SDS over REST", func(s *Snapshot) {
			c := commonTLS()
			sdsSource(c.TlsCertificateSdsSecretConfigs[0]).ApiType = core.ApiConfigSource_REST
			s.Listeners[vin].FilterChains[triple].TransportSocket = downstreamTLS(c)
		}, `listener virtualInbound chain 2: SDS secret "default": api_type REST, not GRPC`},
		{"SDS with two gRPC services", func(s *Snapshot) {
			c := commonTLS()
			src := sdsSource(c.TlsCertificateSdsSecretConfigs[0])
			src.GrpcServices = append(src.GrpcServices, src.GrpcServices[0])
			s.Listeners[vin].FilterChains[triple].TransportSocket = downstreamTLS(c)
		}, `SDS secret "default": 2 grpc_services, not exactly one`},
		{"SDS CA in validation_context_sds_secret_config over envoy_grpc", func(s *Snapshot) {
			c := commonTLS()
			ca := sds("ROOTCA")
			sdsSource(ca).GrpcServices[0].TargetSpecifier = &core.GrpcService_EnvoyGrpc_{EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: "sds-grpc"}}
			c.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: ca}
			s.Listeners[vin].FilterChains[triple].TransportSocket = downstreamTLS(c)
		}, `listener virtualInbound chain 2: SDS secret "ROOTCA": not google_grpc`},
		{"SDS in a transport_socket_match", func(s *Snapshot) {
			c := commonTLS(exactSAN("spiffe://cluster.local/ns/default/sa/provider"))
			sdsSource(c.TlsCertificateSdsSecretConfigs[0]).GrpcServices[0].GetGoogleGrpc().TargetUri = "./etc/istio/proxy/SDS"
			s.Clusters[tlsClu].TransportSocketMatches = []*cluster.Cluster_TransportSocketMatch{{Name: "tlsMode-istio", TransportSocket: upstreamTLS(c)}}
		}, `cluster outbound|20880||secure transport_socket_match tlsMode-istio: SDS secret "default": google_grpc target_uri "./etc/istio/proxy/SDS" is not a bare absolute path`},
		{"TLS socket of an unknown type", func(s *Snapshot) {
			s.Listeners[vin].FilterChains[triple].TransportSocket = &core.TransportSocket{Name: wellknown.TransportSocketTLS,
				ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(wrapperspb.String("x"))}}
		}, "neither UpstreamTlsContext nor DownstreamTlsContext"},
		// SANs
		{"TLS cluster without SAN", func(s *Snapshot) { setClusterTLS(s, commonTLS()) },
			"cluster outbound|20880||secure: 0 match_subject_alt_names entries (" + sanReason},
		{"TLS cluster with two SANs", func(s *Snapshot) {
			setClusterTLS(s, commonTLS(exactSAN("spiffe://cluster.local/ns/default/sa/a"), exactSAN("spiffe://cluster.local/ns/default/sa/b")))
		}, "cluster outbound|20880||secure: 2 match_subject_alt_names entries"},
		{"TLS cluster with two SANs in validation_context", func(s *Snapshot) {
			c := commonTLS()
			c.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				MatchSubjectAltNames: []*matcher.StringMatcher{exactSAN("spiffe://a"), exactSAN("spiffe://b")},
			}}
			setClusterTLS(s, c)
		}, "cluster outbound|20880||secure: 2 match_subject_alt_names entries"},
		{"TLS cluster with a prefix SAN", func(s *Snapshot) {
			setClusterTLS(s, commonTLS(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "spiffe://cluster.local/"}}))
		}, "cluster outbound|20880||secure: the match_subject_alt_names entry does not use exact"},
		{"TLS cluster with only typed SANs", func(s *Snapshot) {
			t := clusterTLS(s)
			vc := t.CommonTlsContext.GetCombinedValidationContext().DefaultValidationContext
			vc.MatchTypedSubjectAltNames = []*tlsv3.SubjectAltNameMatcher{{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: vc.MatchSubjectAltNames[0]}}
			vc.MatchSubjectAltNames = nil
			setClusterTLS(s, t.CommonTlsContext)
		}, "cluster outbound|20880||secure: only match_typed_subject_alt_names, which MOSN ignores"},
		// listener filters
		{"tls_inspector", func(s *Snapshot) {
			s.Listeners[vin].ListenerFilters = append(s.Listeners[vin].ListenerFilters, &listener.ListenerFilter{Name: wellknown.TLSInspector})
		}, "listener virtualInbound: listener filter envoy.filters.listener.tls_inspector is rejected by MOSN (only original_dst converts"},
		{"http_inspector on a plain listener", func(s *Snapshot) {
			s.Listeners[0].ListenerFilters = []*listener.ListenerFilter{{Name: wellknown.HTTPInspector}}
		}, "listener egress_dubbo: listener filter envoy.filters.listener.http_inspector is rejected by MOSN"},
		// original-dst virtual listeners
		{"one RDS name on two ports", func(s *Snapshot) {
			s.Listeners[vin].FilterChains[triple].Filters = []*listener.Filter{inboundHCM("inbound|20880||")}
		}, "virtual listener inbound|20880||: named by the chains of 2 destination ports [20880 50051] (MOSN listener names must be unique"},
		{"a tcp_proxy cluster named like another port's route", func(s *Snapshot) {
			s.Listeners[vin].FilterChains[tcpChain].Filters = []*listener.Filter{tcpProxy("inbound|50051||")}
		}, "virtual listener inbound|50051||: named by the chains of 2 destination ports [9000 50051]"},
		{"an inline route configuration named like another port's route", func(s *Snapshot) {
			a, _ := mapHCM(t)
			s.Listeners[vin].FilterChains[tcpChain].Filters = []*listener.Filter{a}
		}, "virtual listener inbound|20880||: named by the chains of 2 destination ports [9000 20880]"},
		{"one name on two ports of two listeners (use_original_dst)", func(s *Snapshot) {
			s.Listeners = append(s.Listeners, &listener.Listener{Name: "other", Address: addr(15008), UseOriginalDst: wrapperspb.Bool(true),
				FilterChains: []*listener.FilterChain{onPort(20990, nil, inboundHCM("inbound|20880||"))}})
		}, "virtual listener inbound|20880||: named by the chains of 2 destination ports [20880 20990]"},
		{"a port's chains differ in RBAC", func(s *Snapshot) {
			setPolicy(s, dubboText, rbac.RBAC_ALLOW, allowPolicy())
		}, "listener virtualInbound chain 1: destination port 20880: filters differ from chain 0's (MOSN keeps the first chain's filters"},
		{"a port's chains differ in filter count", func(s *Snapshot) {
			fc := s.Listeners[vin].FilterChains[dubboText]
			fc.Filters = append(fc.Filters, tcpProxy("inbound|20880||"))
		}, "listener virtualInbound chain 1: destination port 20880: filters differ from chain 0's"},
		{"two TLS chains on a port", func(s *Snapshot) {
			l := s.Listeners[vin]
			l.FilterChains = append(l.FilterChains, onPort(50051, downstreamTLS(commonTLS()), inboundHCM("inbound|50051||")))
		}, "listener virtualInbound: destination port 50051: 2 TLS chains (MOSN merges one TLS and one plaintext chain per port; the later ones are ignored)"},
		{"two plaintext chains on a port", func(s *Snapshot) {
			l := s.Listeners[vin]
			l.FilterChains = append(l.FilterChains, onPort(20880, nil, inboundHCM("inbound|20880||")))
		}, "listener virtualInbound: destination port 20880: 2 plaintext chains"},
		// RBAC
		{"a per-route RBAC config as the filter's", func(s *Snapshot) {
			s.Listeners[vin].FilterChains[triple].Filters = []*listener.Filter{inboundHCM("inbound|50051||", &hcm.HttpFilter{
				Name: wellknown.HTTPRoleBasedAccessControl, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&rbachttp.RBACPerRoute{})}})}
		}, `listener virtualInbound chain 2: RBAC filter with typed_config "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"`},
		{"authenticated principal in DENY", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(&rbac.Principal{Identifier: &rbac.Principal_Authenticated_{Authenticated: &rbac.Principal_Authenticated{
				PrincipalName: exactSAN("spiffe://cluster.local/ns/default/sa/order")}}}, nil))
		}, `listener virtualInbound chain 2: RBAC rules policy "p" (DENY): an authenticated principal (MOSN reads source.principal only through metadata istio_authn): ` +
			`MOSN drops a policy it cannot read, silently (the deny disappears: fail-open)`},
		{"header string_match in ALLOW", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_ALLOW, allowWith(nil, permHeader(&route.HeaderMatcher{Name: "method",
				HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: exactSAN("refund")}})))
		}, `RBAC rules policy "p" (ALLOW): header "method" uses string_match (MOSN reads exact_match, prefix_match, suffix_match, safe_regex_match, present_match, range_match): ` +
			`MOSN drops a policy it cannot read, silently (an ALLOW policy dropped narrows what is allowed)`},
		{"header contains_match in a principal", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(princHeader(&route.HeaderMatcher{Name: "x-id",
				HeaderMatchSpecifier: &route.HeaderMatcher_ContainsMatch{ContainsMatch: "a"}}), nil))
		}, `RBAC rules policy "p" (DENY): header "x-id" uses contains_match`},
		{"header string_match nested in or_rules and not_rule", func(s *Snapshot) {
			bad := permHeader(&route.HeaderMatcher{Name: "service", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: exactSAN("a")}})
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(nil, &rbac.Permission{Rule: &rbac.Permission_OrRules{OrRules: &rbac.Permission_Set{Rules: []*rbac.Permission{
				{Rule: &rbac.Permission_Any{Any: true}}, {Rule: &rbac.Permission_NotRule{NotRule: bad}},
			}}}}))
		}, `RBAC rules policy "p" (DENY): header "service" uses string_match`},
		{"metadata principal of another filter", func(s *Snapshot) {
			p := sourcePrincipal(exactSAN("a"))
			p.GetMetadata().Filter = "envoy.filters.http.jwt_authn"
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(p, nil))
		}, `RBAC rules policy "p" (DENY): a metadata principal other than istio_authn source.principal`},
		{"metadata principal on source.namespace", func(s *Snapshot) {
			p := sourcePrincipal(exactSAN("default"))
			p.GetMetadata().Path[0].Segment = &matcher.MetadataMatcher_PathSegment_Key{Key: "source.namespace"}
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(p, nil))
		}, `RBAC rules policy "p" (DENY): a metadata principal other than istio_authn source.principal`},
		{"metadata principal without string_match", func(s *Snapshot) {
			p := sourcePrincipal(nil)
			p.GetMetadata().Value = &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_PresentMatch{PresentMatch: true}}
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(p, nil))
		}, `RBAC rules policy "p" (DENY): a metadata source.principal whose value is not a string_match`},
		{"metadata principal with ignore_case", func(s *Snapshot) {
			m := exactSAN("cluster.local/ns/default/sa/order")
			m.IgnoreCase = true
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(sourcePrincipal(m), nil))
		}, `RBAC rules policy "p" (DENY): metadata source.principal sets ignore_case`},
		{"url_path contains", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(nil, urlPath(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Contains{Contains: "refund"}})))
		}, `RBAC rules policy "p" (DENY): url_path uses contains (MOSN reads exact, prefix, suffix, safe_regex)`},
		{"url_path with ignore_case", func(s *Snapshot) {
			m := &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "/com.a.B/"}, IgnoreCase: true}
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(nil, urlPath(m)))
		}, `RBAC rules policy "p" (DENY): url_path sets ignore_case`},
		{"url_path without path", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(nil, &rbac.Permission{Rule: &rbac.Permission_UrlPath{UrlPath: &matcher.PathMatcher{}}}))
		}, `RBAC rules policy "p" (DENY): a url_path without path`},
		{"safe_regex_match without google_re2", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(nil, permHeader(&route.HeaderMatcher{Name: "method",
				HeaderMatchSpecifier: &route.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: &matcher.RegexMatcher{Regex: "^refund$"}}})))
		}, `RBAC rules policy "p" (DENY): header "method": safe_regex without google_re2 engine`},
		{"url_path safe_regex without google_re2", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(nil, urlPath(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{
				SafeRegex: &matcher.RegexMatcher{Regex: "^/a/b$"}}})))
		}, `RBAC rules policy "p" (DENY): url_path: safe_regex without google_re2 engine`},
		{"unanchored header regex", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_ALLOW, allowWith(nil, permHeader(&route.HeaderMatcher{Name: "method",
				HeaderMatchSpecifier: &route.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: re2("refund")}})))
		}, `RBAC rules policy "p" (ALLOW): header "method": regex "refund" is not anchored with ^ and $ (MOSN matches regexes unanchored`},
		{"url_path regex anchored only at the start", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_ALLOW, allowWith(nil, urlPath(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: re2("^/a/")}})))
		}, `RBAC rules policy "p" (ALLOW): url_path: regex "^/a/" is not anchored with ^ and $`},
		{"source.principal regex anchored only at the end", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_ALLOW, allowWith(sourcePrincipal(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: re2("sa/order$")}}), nil))
		}, `RBAC rules policy "p" (ALLOW): metadata source.principal: regex "sa/order$" is not anchored`},
		{"url_path: the caller's X-Mosn-Path", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(nil, urlPath(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "/com.a.B/"}})))
		}, `RBAC rules policy "p" (DENY): url_path is read from X-Mosn-Path/X-Mosn-Method/Authority, headers the caller sets`},
		{":method header: the caller's X-Mosn-Method", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(nil, permHeader(headerExact(":method", "POST"))))
		}, `RBAC rules policy "p" (DENY): header ":method" is read from X-Mosn-Path/X-Mosn-Method/Authority, headers the caller sets`},
		{"url_path principal", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(&rbac.Principal{Identifier: &rbac.Principal_UrlPath{UrlPath: &matcher.PathMatcher{}}}, nil))
		}, `RBAC rules policy "p" (DENY): a url_path principal`},
		{"requested_server_name permission", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(nil, &rbac.Permission{Rule: &rbac.Permission_RequestedServerName{RequestedServerName: exactSAN("a")}}))
		}, `RBAC rules policy "p" (DENY): a requested_server_name permission`},
		{"destination_port_range permission", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, allowWith(nil, &rbac.Permission{Rule: &rbac.Permission_DestinationPortRange{
				DestinationPortRange: &typev3.Int32Range{Start: 1, End: 2}}}))
		}, `RBAC rules policy "p" (DENY): a destination_port_range permission`},
		{"empty permission", func(s *Snapshot) {
			setPolicy(s, triple, rbac.RBAC_DENY, &rbac.Policy{Principals: []*rbac.Principal{{Identifier: &rbac.Principal_Any{Any: true}}},
				Permissions: []*rbac.Permission{{}}})
		}, `RBAC rules policy "p" (DENY): an empty permission`},
		{"unreadable shadow rules", func(s *Snapshot) {
			r := &rbachttp.RBAC{ShadowRules: &rbac.RBAC{Action: rbac.RBAC_DENY, Policies: map[string]*rbac.Policy{"shadow": allowWith(nil,
				permHeader(&route.HeaderMatcher{Name: "method", HeaderMatchSpecifier: &route.HeaderMatcher_ContainsMatch{ContainsMatch: "r"}}))}}}
			s.Listeners[vin].FilterChains[triple].Filters = []*listener.Filter{inboundHCM("inbound|50051||", &hcm.HttpFilter{
				Name: wellknown.HTTPRoleBasedAccessControl, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(r)}})}
		}, `listener virtualInbound chain 2: RBAC shadow_rules policy "shadow" (DENY): header "method" uses contains_match`},
		{"unreadable RBAC on a plain listener", func(s *Snapshot) {
			s.Listeners[0].FilterChains[0].Filters = []*listener.Filter{inboundHCM("dubbo-20881",
				rbacFilter(rbac.RBAC_DENY, map[string]*rbac.Policy{"deny-all-but": allowWith(&rbac.Principal{Identifier: &rbac.Principal_NotId{
					NotId: &rbac.Principal{Identifier: &rbac.Principal_Authenticated_{Authenticated: &rbac.Principal_Authenticated{}}}}}, nil)}))}
		}, `listener egress_dubbo chain 0: RBAC rules policy "deny-all-but" (DENY): an authenticated principal`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := secure()
			c.mutate(&s)
			v := Check(s)
			if !strings.Contains(strings.Join(v, "\n"), c.want) {
				t.Fatalf("no violation containing %q; got %v", c.want, v)
			}
		})
	}
}
