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

package xdsview

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

const sdsSocket = "/var/run/secrets/workload-spiffe-uds/socket"

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func hdr(name string, m *route.HeaderMatcher) *route.HeaderMatcher {
	m.Name = name
	return m
}

func exactHdr(name, v string) *route.HeaderMatcher {
	return hdr(name, &route.HeaderMatcher{HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: v}})
}

func permHdr(h *route.HeaderMatcher) *rbacpb.Permission {
	return &rbacpb.Permission{Rule: &rbacpb.Permission_Header{Header: h}}
}

func permAnd(ps ...*rbacpb.Permission) *rbacpb.Permission {
	return &rbacpb.Permission{Rule: &rbacpb.Permission_AndRules{AndRules: &rbacpb.Permission_Set{Rules: ps}}}
}

func permOr(ps ...*rbacpb.Permission) *rbacpb.Permission {
	return &rbacpb.Permission{Rule: &rbacpb.Permission_OrRules{OrRules: &rbacpb.Permission_Set{Rules: ps}}}
}

func permNot(p *rbacpb.Permission) *rbacpb.Permission {
	return &rbacpb.Permission{Rule: &rbacpb.Permission_NotRule{NotRule: p}}
}

var (
	permAny = &rbacpb.Permission{Rule: &rbacpb.Permission_Any{Any: true}}
	prinAny = &rbacpb.Principal{Identifier: &rbacpb.Principal_Any{Any: true}}
)

// dubboCall is the generator's form of the path /<iface>/<method> on a Dubbo port:
// and(or(and(service, method))), as upstream nests it.
func dubboCall(iface, method string) *rbacpb.Permission {
	return permAnd(permOr(permAnd(permHdr(exactHdr("service", iface)), permHdr(exactHdr("method", method)))))
}

// sourcePrincipal is the generator's form of source.principals for MOSN.
func sourcePrincipal(sm *matcher.StringMatcher) *rbacpb.Principal {
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_Metadata{Metadata: &matcher.MetadataMatcher{
		Filter: "istio_authn",
		Path:   []*matcher.MetadataMatcher_PathSegment{{Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: "source.principal"}}},
		Value:  &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: sm}},
	}}}
}

func exactStr(v string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: v}}
}

func prinAnd(ps ...*rbacpb.Principal) *rbacpb.Principal {
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_AndIds{AndIds: &rbacpb.Principal_Set{Ids: ps}}}
}

func prinOr(ps ...*rbacpb.Principal) *rbacpb.Principal {
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_OrIds{OrIds: &rbacpb.Principal_Set{Ids: ps}}}
}

func cidrRange(ip string, n uint32) *core.CidrRange {
	return &core.CidrRange{AddressPrefix: ip, PrefixLen: wrapperspb.UInt32(n)}
}

// TestPolicy: each policy renders as one line of permissions and one of principals,
// readable enough to tell what is allowed (or denied).
func TestPolicy(t *testing.T) {
	order := sourcePrincipal(exactStr("cluster.local/ns/default/sa/order"))
	for _, tc := range []struct {
		name     string
		p        *rbacpb.Policy
		to, from string
	}{
		{
			name: "method from a principal (the generator's nesting)",
			p:    &rbacpb.Policy{Permissions: []*rbacpb.Permission{dubboCall("com.x.Pay", "refund")}, Principals: []*rbacpb.Principal{prinAnd(prinOr(order))}},
			to:   "service=com.x.Pay & method=refund", from: "principal=cluster.local/ns/default/sa/order",
		},
		{
			name: "two methods, two principals",
			p: &rbacpb.Policy{
				Permissions: []*rbacpb.Permission{permAnd(permOr(
					permAnd(permHdr(exactHdr("service", "com.x.Pay")), permHdr(exactHdr("method", "refund"))),
					permAnd(permHdr(exactHdr("service", "com.x.Pay")), permHdr(exactHdr("method", "query")))))},
				Principals: []*rbacpb.Principal{prinAnd(prinOr(order, sourcePrincipal(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "^(?:.*/ns/shop/.*)$"}}})))},
			},
			to:   "(service=com.x.Pay & method=refund) | (service=com.x.Pay & method=query)",
			from: "principal=cluster.local/ns/default/sa/order | principal~^(?:.*/ns/shop/.*)$",
		},
		{
			name: "an or inside an and; rules of a list are alternatives",
			p: &rbacpb.Policy{
				Permissions: []*rbacpb.Permission{
					permAnd(permOr(permHdr(exactHdr("version", "1.0")), permHdr(exactHdr("version", "2.0"))), permHdr(exactHdr("service", "com.x.Pay"))),
					&rbacpb.Permission{Rule: &rbacpb.Permission_DestinationPort{DestinationPort: 20880}},
				},
				Principals: []*rbacpb.Principal{prinAny},
			},
			to: "((version=1.0 | version=2.0) & service=com.x.Pay) | port=20880", from: "any",
		},
		{
			name: "negations: notPaths, notPrincipals, inverted header; fail-closed never",
			p: &rbacpb.Policy{
				Permissions: []*rbacpb.Permission{permAnd(permNot(permOr(dubboCall("com.x.Pay", "refund"))), permNot(permAny),
					permHdr(hdr("version", &route.HeaderMatcher{InvertMatch: true, HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "1.0"}})))},
				Principals: []*rbacpb.Principal{prinAnd(&rbacpb.Principal{Identifier: &rbacpb.Principal_NotId{NotId: prinOr(order)}})},
			},
			to:   "not(service=com.x.Pay & method=refund) & not(any) & not(version=1.0)",
			from: "not(principal=cluster.local/ns/default/sa/order)",
		},
		{
			name: "Triple paths and header forms",
			p: &rbacpb.Policy{
				Permissions: []*rbacpb.Permission{permOr(
					&rbacpb.Permission{Rule: &rbacpb.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: exactStr("/com.x.Pay/refund")}}}},
					&rbacpb.Permission{Rule: &rbacpb.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "/com.x.Order/"}}}}}},
					permHdr(hdr("method", &route.HeaderMatcher{HeaderMatchSpecifier: &route.HeaderMatcher_SuffixMatch{SuffixMatch: "Async"}})),
					permHdr(hdr("tri-service-group", &route.HeaderMatcher{HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}})),
				)},
				Principals: []*rbacpb.Principal{prinAnd(
					&rbacpb.Principal{Identifier: &rbacpb.Principal_Header{Header: hdr("tri-service-version", &route.HeaderMatcher{HeaderMatchSpecifier: &route.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: &matcher.RegexMatcher{Regex: "^(?:2\\..*)$"}}})}},
					&rbacpb.Principal{Identifier: &rbacpb.Principal_RemoteIp{RemoteIp: cidrRange("10.0.0.0", 8)}},
				)},
			},
			to:   "path=/com.x.Pay/refund | path^=/com.x.Order/ | method$=Async | tri-service-group present",
			from: `tri-service-version~^(?:2\..*)$ & remote.ip=10.0.0.0/8`,
		},
		{
			name: "empty sets: and matches all, or nothing; no principals: the policy never matches",
			p:    &rbacpb.Policy{Permissions: []*rbacpb.Permission{permAnd(), permOr()}},
			to:   "any | none", from: "none",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to, from := Policy(tc.p)
			if to != tc.to || from != tc.from {
				t.Errorf("to: %s\nfrom: %s\nwant\nto: %s\nfrom: %s", to, from, tc.to, tc.from)
			}
		})
	}
}

func downstreamTLS(t *testing.T, requireClientCert bool) *core.TransportSocket {
	return &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(requireClientCert),
		CommonTlsContext:         &tlsv3.CommonTlsContext{TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret("default", sdsSocket)}},
	})}}
}

func sdsSecret(name, path string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_ApiConfigSource{ApiConfigSource: &core.ApiConfigSource{
		ApiType: core.ApiConfigSource_GRPC,
		GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_GoogleGrpc_{GoogleGrpc: &core.GrpcService_GoogleGrpc{
			TargetUri: path, StatPrefix: "sds",
		}}}},
	}}}}
}

func rbacFilter(t *testing.T, action rbacpb.RBAC_Action, policies map[string]*rbacpb.Policy) *hcm.HttpFilter {
	return &hcm.HttpFilter{Name: "envoy.filters.http.rbac", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &rbachttp.RBAC{
		Rules: &rbacpb.RBAC{Action: action, Policies: policies},
	})}}
}

// inboundHCM is the generator's connection manager of an inbound port: an inline route
// sending every call to one cluster, behind the RBAC filters.
func inboundHCM(t *testing.T, routeName, to string, filters ...*hcm.HttpFilter) *listener.Filter {
	var routes []*route.Route
	if to != "" {
		routes = []*route.Route{{
			Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: ""}},
			Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: to}}},
		}}
	}
	return &listener.Filter{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(t, &hcm.HttpConnectionManager{
		StatPrefix: routeName,
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
			Name: routeName, VirtualHosts: []*route.VirtualHost{{Name: routeName, Domains: []string{"*"}, Routes: routes}},
		}},
		HttpFilters: filters,
	})}}
}

func onPort(port uint32, ts *core.TransportSocket, f ...*listener.Filter) *listener.FilterChain {
	transport := "raw_buffer"
	if ts != nil {
		transport = "tls"
	}
	return &listener.FilterChain{
		FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(port), TransportProtocol: transport},
		TransportSocket:  ts,
		Filters:          f,
	}
}

func virtualInboundOf(chains ...*listener.FilterChain) *listener.Listener {
	return &listener.Listener{Name: "virtualInbound", Address: addrOf("0.0.0.0", 15006), FilterChains: chains}
}

func addrOf(ip string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Address: ip, PortSpecifier: &core.SocketAddress_PortValue{PortValue: port}}}}
}

// inboundOf returns the INBOUND section of the summary.
func inboundOf(t *testing.T, s conformance.Snapshot) string {
	t.Helper()
	var b bytes.Buffer
	Summary(&b, s)
	out := b.String()
	i := strings.Index(out, "INBOUND")
	if i < 0 {
		t.Fatalf("no INBOUND section in\n%s", out)
	}
	out = out[i:]
	if j := strings.Index(out, "CLUSTERS AND ENDPOINTS"); j >= 0 {
		out = out[:j]
	}
	return out
}

// TestInboundPorts: per inbound port, the TLS mode its chains give (STRICT: TLS only,
// PERMISSIVE: TLS and plaintext, plaintext), its route and cluster, and its RBAC filters
// in order, for intercepted (virtualInbound) and explicit (inbound_dubbo) providers.
func TestInboundPorts(t *testing.T) {
	const head = "INBOUND (Dubbo and Triple ports: TLS, route, RBAC filters in order; a call must pass each)\n"
	order := sourcePrincipal(exactStr("cluster.local/ns/default/sa/order"))
	allowRefund := func() *hcm.HttpFilter {
		return rbacFilter(t, rbacpb.RBAC_ALLOW, map[string]*rbacpb.Policy{"ns[default]-policy[refund-from-order]-rule[0]": {
			Permissions: []*rbacpb.Permission{dubboCall("com.x.Pay", "refund")}, Principals: []*rbacpb.Principal{prinAnd(prinOr(order))},
		}})
	}
	denyRefund := func() *hcm.HttpFilter {
		return rbacFilter(t, rbacpb.RBAC_DENY, map[string]*rbacpb.Policy{"ns[default]-policy[no-refund]-rule[0]": {
			Permissions: []*rbacpb.Permission{dubboCall("com.x.Pay", "refund")}, Principals: []*rbacpb.Principal{prinAnd(prinAny)},
		}})
	}
	dubbo := func(port string, fs ...*hcm.HttpFilter) *listener.Filter {
		return inboundHCM(t, "inbound-dubbo-"+port, "inbound|"+port+"||", fs...)
	}
	for _, tc := range []struct {
		name string
		s    conformance.Snapshot
		want string
	}{
		{
			name: "STRICT with an ALLOW",
			s:    conformance.Snapshot{Listeners: []*listener.Listener{virtualInboundOf(onPort(20880, downstreamTLS(t, true), dubbo("20880", allowRefund())))}},
			want: head + `  20880  mTLS STRICT  virtualInbound  route inbound-dubbo-20880  ->  inbound|20880||
      tls: sds /var/run/secrets/workload-spiffe-uds/socket
      RBAC ALLOW
        ns[default]-policy[refund-from-order]-rule[0]  to: service=com.x.Pay & method=refund  from: principal=cluster.local/ns/default/sa/order
`,
		},
		{
			name: "PERMISSIVE with a DENY, then an ALLOW, in order; ports sorted; other chains left out",
			s: conformance.Snapshot{Listeners: []*listener.Listener{virtualInboundOf(
				onPort(50051, nil, inboundHCM(t, "inbound-dubbo-50051", "inbound|50051||")),
				onPort(20880, downstreamTLS(t, true), dubbo("20880", denyRefund(), allowRefund())),
				onPort(20880, nil, dubbo("20880", denyRefund(), allowRefund())),
				onPort(8080, nil, &listener.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(t, &tcp.TcpProxy{
					StatPrefix: "x", ClusterSpecifier: &tcp.TcpProxy_Cluster{Cluster: "inbound|8080||"},
				})}}),
			)}},
			want: head + `  20880  mTLS PERMISSIVE (TLS + plaintext)  virtualInbound  route inbound-dubbo-20880  ->  inbound|20880||
      tls: sds /var/run/secrets/workload-spiffe-uds/socket
      RBAC DENY
        ns[default]-policy[no-refund]-rule[0]  to: service=com.x.Pay & method=refund  from: any
      RBAC ALLOW
        ns[default]-policy[refund-from-order]-rule[0]  to: service=com.x.Pay & method=refund  from: principal=cluster.local/ns/default/sa/order
  50051  plaintext  virtualInbound  route inbound-dubbo-50051  ->  inbound|50051||
      no RBAC: every call is allowed
`,
		},
		{
			name: "PERMISSIVE chains that authorize differently are shown apart",
			s: conformance.Snapshot{Listeners: []*listener.Listener{virtualInboundOf(
				onPort(20880, downstreamTLS(t, true), dubbo("20880", allowRefund())),
				onPort(20880, nil, dubbo("20880")),
			)}},
			want: head + `  20880  mTLS PERMISSIVE (TLS + plaintext)  virtualInbound
      tls: sds /var/run/secrets/workload-spiffe-uds/socket
      TLS chain: route inbound-dubbo-20880  ->  inbound|20880||
        RBAC ALLOW
          ns[default]-policy[refund-from-order]-rule[0]  to: service=com.x.Pay & method=refund  from: principal=cluster.local/ns/default/sa/order
      plaintext chain: route inbound-dubbo-20880  ->  inbound|20880||
        no RBAC: every call is allowed
`,
		},
		{
			name: "TLS without client certificates; an ALLOW without policies denies all",
			s: conformance.Snapshot{Listeners: []*listener.Listener{virtualInboundOf(
				onPort(20880, downstreamTLS(t, false), dubbo("20880", rbacFilter(t, rbacpb.RBAC_ALLOW, nil))),
			)}},
			want: head + `  20880  TLS (client certificate not required) STRICT  virtualInbound  route inbound-dubbo-20880  ->  inbound|20880||
      tls: sds /var/run/secrets/workload-spiffe-uds/socket
      RBAC ALLOW, no policy: denies every call
`,
		},
		{
			name: "explicit provider: inbound_dubbo on the sidecar's port, to the app's",
			s: conformance.Snapshot{Listeners: []*listener.Listener{{
				Name: "inbound_dubbo", Address: addrOf("0.0.0.0", 20881),
				FilterChains: []*listener.FilterChain{{TransportSocket: downstreamTLS(t, true), Filters: []*listener.Filter{
					inboundHCM(t, "inbound_dubbo", "inbound|20880|dubbo-inbound|", allowRefund()),
				}}},
			}}},
			want: head + `  20881  mTLS STRICT  inbound_dubbo  route inbound_dubbo  ->  inbound|20880|dubbo-inbound|
      tls: sds /var/run/secrets/workload-spiffe-uds/socket
      RBAC ALLOW
        ns[default]-policy[refund-from-order]-rule[0]  to: service=com.x.Pay & method=refund  from: principal=cluster.local/ns/default/sa/order
`,
		},
		{
			name: "explicit plaintext, dry-run rules, a port without routes",
			s: conformance.Snapshot{Listeners: []*listener.Listener{{
				Name: "inbound_dubbo", Address: addrOf("0.0.0.0", 20881),
				FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{inboundHCM(t, "inbound_dubbo", "",
					&hcm.HttpFilter{Name: "envoy.filters.http.rbac", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &rbachttp.RBAC{
						ShadowRules: &rbacpb.RBAC{Action: rbacpb.RBAC_DENY, Policies: map[string]*rbacpb.Policy{"p": {Permissions: []*rbacpb.Permission{permAny}, Principals: []*rbacpb.Principal{prinAny}}}},
					})}})}}},
			}}},
			want: head + `  20881  plaintext  inbound_dubbo  route inbound_dubbo  ->  (no route: every call fails)
      RBAC dry-run (not enforced) DENY
        p  to: any  from: any
`,
		},
		{
			name: "a consumer: no inbound port",
			s:    conformance.Snapshot{},
			want: head + "  (none: no virtualInbound Dubbo chain, no inbound_dubbo)\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := inboundOf(t, tc.s); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestInboundGenerated: the MOSN generator's own output (its golden files, one per
// security case of pilot/pkg/dubbo/mosn) reads as what its policies say.
func TestInboundGenerated(t *testing.T) {
	const golden = "../../pilot/pkg/dubbo/mosn/testdata/"
	for _, tc := range []struct {
		file     string
		explicit bool
		want     []string
	}{
		{file: "inbound-strict-allow-principal-method.json", want: []string{
			"  20880  mTLS STRICT  virtualInbound  route inbound-dubbo-20880  ->  inbound|20880||\n" +
				"      tls: sds /var/run/secrets/workload-spiffe-uds/socket\n" +
				"      RBAC ALLOW\n" +
				"        ns[default]-policy[refund-from-order]-rule[0]  to: service=com.example.PaymentService & method=refund  from: principal=cluster.local/ns/default/sa/order\n",
			"  50051  mTLS STRICT  virtualInbound  route inbound-dubbo-50051  ->  inbound|50051||\n",
			// A Triple path fails closed in MOSN (X-Mosn-Path is the caller's): allows nothing.
			"to: not(any)  from: principal=cluster.local/ns/default/sa/order\n",
		}},
		{file: "inbound-permissive-deny-method.json", want: []string{
			"  20880  mTLS PERMISSIVE (TLS + plaintext)  virtualInbound  route inbound-dubbo-20880  ->  inbound|20880||\n" +
				"      tls: sds /var/run/secrets/workload-spiffe-uds/socket\n" +
				"      RBAC DENY\n" +
				// A DENY does not hinge on the interface (the provider dispatches on the
				// caller's path attachment): the method on every interface, generic calls too.
				"        ns[default]-policy[no-refund]-rule[0]  to: method=refund | method=$invoke | method=$invokeAsync  from: any\n",
		}},
		{file: "inbound-strict-allow-namespace-port.json", want: []string{
			"ns[default]-policy[shop-on-dubbo]-rule[0]  to: any  from: principal~^(?:.*/ns/shop/.*)$\n",
			// The policy names port 20880 only: on 50051 it allows nothing.
			"ns[default]-policy[shop-on-dubbo]-rule[0]  to: not(any)  from: principal~^(?:.*/ns/shop/.*)$\n",
		}},
		{file: "inbound-disable-allow-version-header.json", want: []string{
			"  20880  plaintext  virtualInbound  route inbound-dubbo-20880  ->  inbound|20880||\n",
			"to: service=com.example.PaymentService  from: version=2.0.0\n",
			"to: not(any)  from: tri-service-version=2.0.0\n",
		}},
		{file: "inbound-explicit-strict-allow.json", explicit: true, want: []string{
			"  20881  mTLS STRICT  inbound_dubbo  route inbound_dubbo  ->  inbound|20880|",
			"to: service=com.example.PaymentService & method=refund  from: principal=cluster.local/ns/default/sa/order\n",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(golden, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			l := &listener.Listener{}
			if err := protojson.Unmarshal(b, l); err != nil {
				t.Fatal(err)
			}
			l.Name = "virtualInbound"
			if tc.explicit {
				l.Name, l.Address = "inbound_dubbo", addrOf("0.0.0.0", 20881)
			}
			got := inboundOf(t, conformance.Snapshot{Listeners: []*listener.Listener{l}})
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("want\n%s\nin\n%s", w, got)
				}
			}
		})
	}
}

func upstreamTLSCluster(t *testing.T, name string, c *tlsv3.CommonTlsContext) *cluster.Cluster {
	return &cluster.Cluster{Name: name, TransportSocket: &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{
		TypedConfig: mustAny(t, &tlsv3.UpstreamTlsContext{CommonTlsContext: c}),
	}}}
}

// TestClusterTLS: a cluster shows the one SAN MOSN checks and the SDS socket its
// certificate comes from, or plaintext.
func TestClusterTLS(t *testing.T) {
	const san = "spiffe://cluster.local/ns/default/sa/payment"
	withSANs := func(sans ...string) *tlsv3.CommonTlsContext {
		v := &tlsv3.CertificateValidationContext{}
		for _, s := range sans {
			v.MatchSubjectAltNames = append(v.MatchSubjectAltNames, exactStr(s))
		}
		return &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret("default", sdsSocket)},
			ValidationContextType:          &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: v},
		}
	}
	combined := withSANs()
	combined.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
		DefaultValidationContext: &tlsv3.CertificateValidationContext{MatchSubjectAltNames: []*matcher.StringMatcher{exactStr(san)}},
	}}
	envoyGrpc := withSANs(san)
	envoyGrpc.TlsCertificateSdsSecretConfigs[0].SdsConfig.GetApiConfigSource().GrpcServices[0].TargetSpecifier = &core.GrpcService_EnvoyGrpc_{
		EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: "sds-grpc"},
	}
	for _, tc := range []struct {
		name string
		c    *cluster.Cluster
		want string
	}{
		{"plaintext", &cluster.Cluster{Name: "outbound|20880||a"}, "plaintext"},
		{"one SAN over google_grpc", upstreamTLSCluster(t, "c", withSANs(san)), "tls: SAN " + san + " (sds " + sdsSocket + ")"},
		{"SAN in the combined context", upstreamTLSCluster(t, "c", combined), "tls: SAN " + san + " (sds " + sdsSocket + ")"},
		{"several SANs", upstreamTLSCluster(t, "c", withSANs(san, "spiffe://cluster.local/ns/default/sa/other")),
			"tls: SANs " + san + ", spiffe://cluster.local/ns/default/sa/other (sds " + sdsSocket + ")"},
		{"no SAN", upstreamTLSCluster(t, "c", withSANs()), "tls: no SAN (sds " + sdsSocket + ")"},
		{"envoy_grpc SDS", upstreamTLSCluster(t, "c", envoyGrpc), "tls: SAN " + san + " (sds envoy_grpc sds-grpc)"},
		{"auto mTLS", &cluster.Cluster{TransportSocketMatches: []*cluster.Cluster_TransportSocketMatch{{Name: "tlsMode-istio"}}}, "auto mTLS (transport_socket_matches)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClusterTLS(tc.c); got != tc.want {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}

// TestSummaryClusterTLS: the summary's cluster lines carry their TLS.
func TestSummaryClusterTLS(t *testing.T) {
	const san = "spiffe://cluster.local/ns/default/sa/payment"
	c := upstreamTLSCluster(t, "outbound|20880||payment", &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret("default", sdsSocket)},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			MatchSubjectAltNames: []*matcher.StringMatcher{exactStr(san)},
		}},
	})
	c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_EDS}
	s := conformance.Snapshot{
		Clusters: []*cluster.Cluster{c, {Name: "inbound|20880||", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}}},
		Routes: []*route.RouteConfiguration{{Name: "dubbo-20881", VirtualHosts: []*route.VirtualHost{{Routes: []*route.Route{{
			Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: ""}, Headers: []*route.HeaderMatcher{exactHdr("service", "com.x.Pay")}},
			Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: c.Name}}},
		}}}}}},
	}
	var b bytes.Buffer
	Summary(&b, s)
	for _, want := range []string{
		"  outbound|20880||payment  [EDS ROUND_ROBIN]  tls: SAN " + san + " (sds " + sdsSocket + ")\n",
		"  inbound|20880||  [STATIC ROUND_ROBIN]  plaintext\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("want %q in\n%s", want, b.String())
		}
	}
}
