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

// Package conformance checks xDS resources sent to a MOSN sidecar against what MOSN
// (v1.x, istio1106 xDS client) accepts, as docs/reference/mosn-xds-facts.md records it: anything
// MOSN rejects, silently ignores or mishandles is a violation.
package conformance

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

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
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"istio.io/istio/pkg/wellknown"
)

// Snapshot is what a MOSN node received.
type Snapshot struct {
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
}

const (
	hcmType        = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	httpOptions    = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	tcpType        = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
	minW, maxW     = 1, 128
	istioTLSMode   = "tlsMode"
	istioTLSModeOn = "istio"
)

// droppedHarmlessly are network filters MOSN drops that carry no routing or policy:
// Istio's telemetry filters. Anything else MOSN would drop silently changes behaviour.
var droppedHarmlessly = map[string]bool{
	"istio.stats":             true,
	"istio.metadata_exchange": true,
}

// Check returns every violation, sorted.
func Check(s Snapshot) []string {
	var v []string
	add := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	dubboRoutes := map[string]bool{}
	virtualNames := map[string]map[uint32]bool{} // original-dst virtual listener name -> destination ports

	names := map[string]bool{}
	for _, l := range s.Listeners {
		if names[l.Name] {
			add("listener %s: sent twice", l.Name)
		}
		names[l.Name] = true
		sa := l.GetAddress().GetSocketAddress()
		if sa == nil || sa.GetNamedPort() != "" {
			add("listener %s: MOSN needs a socket address with port_value", l.Name)
		}
		origDst := l.GetUseOriginalDst().GetValue()
		for _, lf := range l.ListenerFilters {
			if lf.Name == wellknown.OriginalDestination {
				origDst = true
			} else {
				add("listener %s: listener filter %s is rejected by MOSN (only original_dst converts; MOSN tells TLS from plaintext itself)", l.Name, lf.Name)
			}
		}
		if origDst {
			v = append(v, checkOriginalDst(l, virtualNames)...)
		}
		if !origDst && len(l.FilterChains) != 1 {
			add("listener %s: %d filter chains; MOSN supports exactly one (or the original-dst split)", l.Name, len(l.FilterChains))
		}
		if l.BindToPort != nil && l.DeprecatedV1 == nil {
			add("listener %s: top-level bind_to_port is ignored by MOSN; use deprecated_v1.bind_to_port", l.Name)
		}
		for i, fc := range l.FilterChains {
			where := fmt.Sprintf("listener %s chain %d", l.Name, i)
			if ctx, err := tlsContext(fc.TransportSocket); err != nil {
				add("%s: %v", where, err)
			} else {
				v = append(v, checkSDS(where, ctx)...)
			}
			usable := false
			for _, f := range fc.Filters {
				switch f.Name {
				case wellknown.HTTPConnectionManager:
					if f.GetTypedConfig().GetTypeUrl() != hcmType {
						add("listener %s chain %d: HCM without typed_config %s is dropped", l.Name, i, hcmType)
						continue
					}
					usable = true
					m := &hcm.HttpConnectionManager{}
					if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
						add("listener %s: bad HCM: %v", l.Name, err)
						continue
					}
					isDubbo := l.Name == "egress_dubbo" || l.Name == "inbound_dubbo"
					if r := m.GetRds(); r != nil && isDubbo {
						dubboRoutes[r.RouteConfigName] = true
					}
					if rc := m.GetRouteConfig(); rc != nil {
						if isDubbo {
							dubboRoutes[rc.Name] = true
						}
						v = append(v, checkRoute(rc, isDubbo, nil)...)
					}
					v = append(v, checkRBAC(where, m)...)
				case wellknown.TCPProxy:
					if f.GetTypedConfig().GetTypeUrl() != tcpType {
						add("listener %s chain %d: tcp_proxy without typed_config %s is dropped", l.Name, i, tcpType)
						continue
					}
					t := &tcp.TcpProxy{}
					if err := f.GetTypedConfig().UnmarshalTo(t); err == nil && t.GetWeightedClusters() != nil {
						add("listener %s chain %d: tcp_proxy weighted_clusters are ignored by MOSN", l.Name, i)
					}
					usable = true
				default:
					if !droppedHarmlessly[f.Name] {
						add("listener %s chain %d: network filter %s is dropped by MOSN (only HCM and tcp_proxy are converted)", l.Name, i, f.Name)
					}
				}
			}
			if !usable {
				add("listener %s chain %d: no HCM or tcp_proxy: MOSN rejects the listener", l.Name, i)
			}
		}
	}

	for name, ports := range virtualNames {
		if len(ports) > 1 {
			add("virtual listener %s: named by the chains of %d destination ports %v (MOSN listener names must be unique: one replaces the other)", name, len(ports), sortedPorts(ports))
		}
	}
	for name := range dubboRoutes {
		if _, err := strconv.Atoi(name); err == nil || strings.Contains(name, ":") || strings.HasPrefix(name, "unix://") {
			add("route %s: a Dubbo route name must not parse as a port, host:port or unix path", name)
		}
	}
	var h2 map[string]bool // nil: the snapshot has no clusters to tell
	if len(s.Clusters) > 0 {
		h2 = map[string]bool{}
		for _, c := range s.Clusters {
			h2[c.Name] = isHTTP2(c)
		}
	}
	for _, rc := range s.Routes {
		v = append(v, checkRoute(rc, dubboRoutes[rc.Name], h2)...)
	}

	plaintext := map[string]bool{} // cluster -> has an endpoint without Istio mTLS
	for _, cla := range s.Endpoints {
		if len(cla.Endpoints) > 1 {
			add("endpoints %s: %d locality groups; MOSN keeps only the last", cla.ClusterName, len(cla.Endpoints))
		}
		for _, le := range cla.Endpoints {
			for _, ep := range le.LbEndpoints {
				if ep.GetEndpoint().GetAddress() == nil {
					add("endpoints %s: an endpoint without address crashes MOSN's converter", cla.ClusterName)
				}
				if w := ep.GetLoadBalancingWeight(); w != nil && (w.Value < minW || w.Value > maxW) {
					add("endpoints %s: weight %d outside MOSN's %d..%d (clamped: ratios lost)", cla.ClusterName, w.Value, minW, maxW)
				}
				md := ep.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]
				if md.GetFields()[istioTLSMode].GetStringValue() != istioTLSModeOn {
					plaintext[cla.ClusterName] = true
				}
			}
		}
	}
	eds := map[string]bool{}
	for _, cla := range s.Endpoints {
		eds[cla.ClusterName] = true
	}
	for _, c := range s.Clusters {
		for _, m := range c.TransportSocketMatches {
			if m.GetTransportSocket().GetName() == wellknown.TransportSocketTLS && plaintext[c.Name] {
				add("cluster %s: TLS transport_socket_match toward plaintext endpoints (MOSN applies the first TLS match to every endpoint)", c.Name)
				break
			}
		}
		if ctx, err := tlsContext(c.TransportSocket); err == nil { // checkClusterTLS reports err
			v = append(v, checkSDS("cluster "+c.Name, ctx)...)
		}
		for _, m := range c.TransportSocketMatches {
			where := fmt.Sprintf("cluster %s transport_socket_match %s", c.Name, m.Name)
			if ctx, err := tlsContext(m.TransportSocket); err != nil {
				add("%s: %v", where, err)
			} else {
				v = append(v, checkSDS(where, ctx)...)
			}
		}
		v = append(v, checkClusterTLS(c)...)
		if c.GetType() == cluster.Cluster_EDS && len(s.Endpoints) > 0 && !eds[c.Name] {
			add("cluster %s: no ClusterLoadAssignment named after the cluster (MOSN asks EDS by Cluster.name)", c.Name)
		}
		if la := c.GetLoadAssignment(); la != nil && la.ClusterName != "" && la.ClusterName != c.Name {
			add("cluster %s: load_assignment.cluster_name %s differs", c.Name, la.ClusterName)
		}
	}
	sort.Strings(v)
	return v
}

// isHTTP2 reports whether upstream built the cluster for an HTTP/2 (gRPC, Triple) port.
// MOSN itself ignores the option (its Auto proxy speaks the downstream's protocol
// upstream); it tells which service port the cluster is for.
func isHTTP2(c *cluster.Cluster) bool {
	if c.GetHttp2ProtocolOptions() != nil {
		return true
	}
	a := c.GetTypedExtensionProtocolOptions()[httpOptions]
	if a == nil {
		return false
	}
	o := &httpv3.HttpProtocolOptions{}
	if err := a.UnmarshalTo(o); err != nil {
		return false
	}
	return o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
}

// ruleClusters lists the clusters a rule sends calls to (not its mirror).
func ruleClusters(r *route.Route) []string {
	a := r.GetRoute()
	if c := a.GetCluster(); c != "" {
		return []string{c}
	}
	var out []string
	for _, c := range a.GetWeightedClusters().GetClusters() {
		out = append(out, c.Name)
	}
	return out
}

// triplePathPrefix matches the start of a Triple rule's path regex: ^/<interface>/, the
// interface a literal (dots escaped).
var triplePathPrefix = regexp.MustCompile(`^\^/(?:[A-Za-z0-9_-]|\\[.$])+/`)

// tripleConfined reports whether a Triple (HTTP) rule's path stays under /<interface>/:
// every service shares the Dubbo routes' one virtual host, so a broader path would catch
// other services' Triple calls.
func tripleConfined(m *route.RouteMatch) bool {
	under := func(p string) bool {
		rest, ok := strings.CutPrefix(p, "/")
		i := strings.IndexByte(rest, '/')
		return ok && i > 0
	}
	switch {
	case m.GetPrefix() != "":
		return under(m.GetPrefix())
	case m.GetPath() != "":
		return under(m.GetPath())
	case m.GetSafeRegex() != nil:
		return triplePathPrefix.MatchString(m.GetSafeRegex().GetRegex())
	}
	return false
}

// checkRoute applies MOSN's route rules; dubbo marks the routes Dubbo listeners use; h2
// (nil if unknown) tells which clusters are for HTTP/2 ports.
//
// A Dubbo route configuration holds two kinds of rules. RPC rules (no path: prefix "")
// route Dubbo calls on the decoder's headers; each must require the exact interface in
// "service", or it matches every request, Triple ones included, and shadows every later
// rule. HTTP rules (a prefix, path or safe_regex) route Triple calls on their path
// /<interface>/<method>: never Dubbo ones, whose path MOSN leaves unset. A Triple rule
// must stay under /<interface>/, must not test "service" (not a Triple header) or
// "method" (the HTTP method on HTTP rules), and sends calls only to HTTP/2 (Triple
// port) clusters, as RPC rules send them only to others.
func checkRoute(rc *route.RouteConfiguration, dubbo bool, h2 map[string]bool) []string {
	var v []string
	add := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	if dubbo {
		if len(rc.VirtualHosts) != 1 || len(rc.VirtualHosts[0].Domains) != 1 || rc.VirtualHosts[0].Domains[0] != "*" {
			add("route %s: Dubbo routes need a single virtual host with domain \"*\" (nothing sets x-mosn-host)", rc.Name)
		}
	}
	seen := map[string]bool{}
	for _, vh := range rc.VirtualHosts {
		for _, d := range vh.Domains {
			if strings.Contains(strings.TrimPrefix(d, "*"), "*") {
				add("route %s vhost %s: domain %q has a wildcard MOSN rejects (the whole configuration fails)", rc.Name, vh.Name, d)
			}
			if seen[d] {
				add("route %s: domain %q appears twice (the whole configuration fails)", rc.Name, d)
			}
			seen[d] = true
		}
		rpcClusters := map[string]bool{}
		for _, r := range vh.Routes {
			if isRPCRule(r.GetMatch()) {
				for _, c := range ruleClusters(r) {
					rpcClusters[c] = true
				}
			}
		}
		for i, r := range vh.Routes {
			m := r.GetMatch()
			if dubbo {
				v = append(v, checkDubboRule(rc.Name, i, r, i == len(vh.Routes)-1, rpcClusters, h2)...)
			}
			for _, h := range m.GetHeaders() {
				switch h.HeaderMatchSpecifier.(type) {
				case *route.HeaderMatcher_ExactMatch, *route.HeaderMatcher_SafeRegexMatch:
				default:
					add("route %s rule %d: header %q uses a matcher MOSN reads as \"equals empty\" (only exact_match and safe_regex_match work)", rc.Name, i, h.Name)
				}
				if h.InvertMatch {
					add("route %s rule %d: header %q invert_match is ignored by MOSN", rc.Name, i, h.Name)
				}
			}
			if dubbo && r.GetRoute() == nil {
				add("route %s rule %d: Dubbo rules need a route action", rc.Name, i)
			}
		}
	}
	return v
}

// isRPCRule: MOSN builds an RPC rule when prefix, path and regex are all empty.
func isRPCRule(m *route.RouteMatch) bool {
	return m.GetPrefix() == "" && m.GetPath() == "" && m.GetSafeRegex() == nil &&
		m.GetPathSeparatedPrefix() == "" && m.GetConnectMatcher() == nil
}

// checkDubboRule checks one rule of a Dubbo route configuration (see checkRoute).
func checkDubboRule(rc string, i int, r *route.Route, last bool, rpcClusters, h2 map[string]bool) []string {
	var v []string
	add := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	m := r.GetMatch()
	header := func(name string) *route.HeaderMatcher {
		for _, h := range m.GetHeaders() {
			if strings.TrimPrefix(h.Name, ":") == name {
				return h
			}
		}
		return nil
	}
	switch {
	case m.GetPathSeparatedPrefix() != "" || m.GetConnectMatcher() != nil:
		add("route %s rule %d: MOSN reads only prefix, path and safe_regex: the rule's path condition is lost", rc, i)
	case isRPCRule(m): // a Dubbo rule
		if header("service").GetExactMatch() == "" && !last {
			add("route %s rule %d: a Dubbo rule without an exact \"service\" header matches every call, Triple ones included, and shadows the rules after it", rc, i)
		}
		for _, c := range ruleClusters(r) {
			if h2[c] {
				add("route %s rule %d: a Dubbo rule sends Dubbo calls to %s, a cluster of an HTTP/2 (Triple) port", rc, i, c)
			}
		}
	default: // an HTTP (Triple) rule
		if !tripleConfined(m) {
			add("route %s rule %d: a Triple rule's path must stay under /<interface>/ (the virtual host is shared by every service)", rc, i)
		}
		for _, name := range []string{"service", "method"} {
			if header(name) != nil {
				add("route %s rule %d: a Triple (path) rule tests %q, which on HTTP rules is never the Dubbo attribute: it never matches a Triple call", rc, i, name)
			}
		}
		for _, c := range ruleClusters(r) {
			if rpcClusters[c] {
				add("route %s rule %d: a Triple rule sends calls to %s, which Dubbo rules use (a Dubbo port)", rc, i, c)
			} else if isH2, known := h2[c]; known && !isH2 {
				add("route %s rule %d: a Triple rule sends HTTP/2 calls to %s, a cluster of a non-HTTP/2 port", rc, i, c)
			}
		}
	}
	return v
}

const (
	upstreamTLSType   = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
	downstreamTLSType = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
	rbacType          = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	sdsReason         = "MOSN dials \"unix:\"+target_uri of a google_grpc service and hard-codes ./etc/istio/proxy/SDS for envoy_grpc: " +
		"SDS never arrives and TLS silently stays plaintext"
	sanReason = "MOSN checks the peer's URI SAN only against exactly one exact match_subject_alt_names entry; " +
		"otherwise it verifies the hostname against sni, which fails on Istio certificates"
	regexReason = "MOSN matches regexes unanchored (Go's regexp.MatchString finds a substring), so it matches more than Envoy's full match"
)

// isTLS reports whether MOSN reads a transport socket as TLS: it tries the typed config as an
// UpstreamTlsContext, then as a DownstreamTlsContext.
func isTLS(ts *core.TransportSocket) bool {
	u := ts.GetTypedConfig().GetTypeUrl()
	return ts != nil && (ts.Name == wellknown.TransportSocketTLS || u == upstreamTLSType || u == downstreamTLSType)
}

// tlsContext returns the common TLS context of a TLS transport socket (nil for none or plaintext).
func tlsContext(ts *core.TransportSocket) (*tlsv3.CommonTlsContext, error) {
	if !isTLS(ts) || ts.GetTypedConfig() == nil {
		return nil, nil
	}
	switch u := ts.GetTypedConfig().GetTypeUrl(); u {
	case upstreamTLSType:
		t := &tlsv3.UpstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(t); err != nil {
			return nil, fmt.Errorf("bad UpstreamTlsContext: %v", err)
		}
		return t.GetCommonTlsContext(), nil
	case downstreamTLSType:
		t := &tlsv3.DownstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(t); err != nil {
			return nil, fmt.Errorf("bad DownstreamTlsContext: %v", err)
		}
		return t.GetCommonTlsContext(), nil
	default:
		return nil, fmt.Errorf("TLS transport_socket with typed_config %s, neither UpstreamTlsContext nor DownstreamTlsContext: MOSN cannot read it", u)
	}
}

// checkSDS checks every SDS secret of a TLS context: MOSN fetches them only over google_grpc
// from a Unix socket named by a bare path.
func checkSDS(where string, c *tlsv3.CommonTlsContext) []string {
	var v []string
	add := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	secrets := append([]*tlsv3.SdsSecretConfig{}, c.GetTlsCertificateSdsSecretConfigs()...)
	if s := c.GetValidationContextSdsSecretConfig(); s != nil {
		secrets = append(secrets, s)
	}
	if s := c.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); s != nil {
		secrets = append(secrets, s)
	}
	for _, s := range secrets {
		src := s.GetSdsConfig().GetApiConfigSource()
		switch {
		case src == nil:
			add("%s: SDS secret %q: sds_config has no api_config_source (%s)", where, s.Name, sdsReason)
		case src.ApiType != core.ApiConfigSource_GRPC:
			add("%s: SDS secret %q: api_type %s, not GRPC (%s)", where, s.Name, src.ApiType, sdsReason)
		case len(src.GrpcServices) != 1:
			add("%s: SDS secret %q: %d grpc_services, not exactly one (%s)", where, s.Name, len(src.GrpcServices), sdsReason)
		case src.GrpcServices[0].GetGoogleGrpc() == nil:
			add("%s: SDS secret %q: not google_grpc (%s)", where, s.Name, sdsReason)
		case !strings.HasPrefix(src.GrpcServices[0].GetGoogleGrpc().GetTargetUri(), "/"):
			add("%s: SDS secret %q: google_grpc target_uri %q is not a bare absolute path (%s)", where, s.Name,
				src.GrpcServices[0].GetGoogleGrpc().GetTargetUri(), sdsReason)
		}
	}
	return v
}

// checkClusterTLS checks the SANs of a cluster's TLS transport_socket.
func checkClusterTLS(c *cluster.Cluster) []string {
	if !isTLS(c.GetTransportSocket()) {
		return nil
	}
	ctx, err := tlsContext(c.GetTransportSocket())
	if err != nil {
		return []string{fmt.Sprintf("cluster %s: %v", c.Name, err)}
	}
	vc := ctx.GetValidationContext()
	if cvc := ctx.GetCombinedValidationContext(); cvc != nil {
		vc = cvc.GetDefaultValidationContext()
	}
	sans := vc.GetMatchSubjectAltNames()
	switch {
	case len(sans) == 0 && len(vc.GetMatchTypedSubjectAltNames()) > 0:
		return []string{fmt.Sprintf("cluster %s: only match_typed_subject_alt_names, which MOSN ignores (%s)", c.Name, sanReason)}
	case len(sans) != 1:
		return []string{fmt.Sprintf("cluster %s: %d match_subject_alt_names entries (%s)", c.Name, len(sans), sanReason)}
	case sans[0].GetExact() == "":
		return []string{fmt.Sprintf("cluster %s: the match_subject_alt_names entry does not use exact (%s)", c.Name, sanReason)}
	}
	return nil
}

// virtualName is the name MOSN gives the virtual listener of an original-dst filter chain:
// its HCM's route configuration name or its tcp_proxy's cluster.
func virtualName(fc *listener.FilterChain) string {
	for _, f := range fc.Filters {
		switch f.Name {
		case wellknown.HTTPConnectionManager:
			m := &hcm.HttpConnectionManager{}
			if f.GetTypedConfig().UnmarshalTo(m) != nil {
				continue
			}
			if m.GetRds() != nil {
				return m.GetRds().GetRouteConfigName()
			}
			return m.GetRouteConfig().GetName()
		case wellknown.TCPProxy:
			t := &tcp.TcpProxy{}
			if f.GetTypedConfig().UnmarshalTo(t) != nil {
				continue
			}
			return t.GetCluster()
		}
	}
	return ""
}

// checkOriginalDst checks the virtual listeners MOSN makes of an original-dst listener's
// chains, one per destination_port; it records their names in names (name -> ports) for the
// uniqueness check across listeners. For a port MOSN keeps the filters of the first chain and
// merges only TLS: one TLS and one plaintext chain (told apart by its inspector).
func checkOriginalDst(l *listener.Listener, names map[string]map[uint32]bool) []string {
	var v []string
	add := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	first := map[uint32]int{}
	tlsChains, plainChains := map[uint32]int{}, map[uint32]int{}
	for i, fc := range l.FilterChains {
		dp := fc.GetFilterChainMatch().GetDestinationPort()
		if dp == nil {
			continue
		}
		port := dp.Value
		if name := virtualName(fc); name != "" {
			if names[name] == nil {
				names[name] = map[uint32]bool{}
			}
			names[name][port] = true
		}
		if isTLS(fc.TransportSocket) {
			tlsChains[port]++
		} else {
			plainChains[port]++
		}
		j, seen := first[port]
		if !seen {
			first[port] = i
			continue
		}
		if !sameFilters(l.FilterChains[j].Filters, fc.Filters) {
			add("listener %s chain %d: destination port %d: filters differ from chain %d's (MOSN keeps the first chain's filters for a port and merges only TLS)", l.Name, i, port, j)
		}
	}
	for _, port := range sortedPorts(first) {
		if n := tlsChains[port]; n > 1 {
			add("listener %s: destination port %d: %d TLS chains (MOSN merges one TLS and one plaintext chain per port; the later ones are ignored)", l.Name, port, n)
		}
		if n := plainChains[port]; n > 1 {
			add("listener %s: destination port %d: %d plaintext chains (MOSN merges one TLS and one plaintext chain per port; the later ones are ignored)", l.Name, port, n)
		}
	}
	return v
}

func sortedPorts[V any](m map[uint32]V) []uint32 {
	out := make([]uint32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// sameFilters compares the network filters MOSN converts (Istio's telemetry filters, which it
// drops, do not count). It compares their JSON, which expands every Any (nested HTTP filters
// included) and orders map keys, so two equal configurations marshalled in different map orders
// still compare equal; if some type is not linked in it falls back to proto.Equal.
func sameFilters(a, b []*listener.Filter) bool {
	a, b = convertedFilters(a), convertedFilters(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ja, errA := protojson.Marshal(a[i])
		jb, errB := protojson.Marshal(b[i])
		if errA != nil || errB != nil {
			if !proto.Equal(a[i], b[i]) {
				return false
			}
		} else if string(ja) != string(jb) {
			return false
		}
	}
	return true
}

func convertedFilters(fs []*listener.Filter) []*listener.Filter {
	var out []*listener.Filter
	for _, f := range fs {
		if !droppedHarmlessly[f.Name] {
			out = append(out, f)
		}
	}
	return out
}

// checkRBAC checks the RBAC filters of an HCM: MOSN's NewRoleBasedAccessControlEngine drops,
// silently, every policy it cannot read.
func checkRBAC(where string, m *hcm.HttpConnectionManager) []string {
	var v []string
	add := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	for _, hf := range m.HttpFilters {
		if hf.Name != wellknown.HTTPRoleBasedAccessControl {
			continue
		}
		if u := hf.GetTypedConfig().GetTypeUrl(); u != rbacType {
			add("%s: RBAC filter with typed_config %q, not %s: MOSN cannot read it and authorization is lost", where, u, rbacType)
			continue
		}
		r := &rbachttp.RBAC{}
		if err := hf.GetTypedConfig().UnmarshalTo(r); err != nil {
			add("%s: bad RBAC filter: %v", where, err)
			continue
		}
		for _, set := range []struct {
			field string
			rules *rbac.RBAC
		}{{"rules", r.GetRules()}, {"shadow_rules", r.GetShadowRules()}} {
			action := set.rules.GetAction()
			effect := "an ALLOW policy dropped narrows what is allowed"
			if action == rbac.RBAC_DENY {
				effect = "the deny disappears: fail-open"
			}
			names := make([]string, 0, len(set.rules.GetPolicies()))
			for name := range set.rules.GetPolicies() {
				names = append(names, name)
			}
			slices.Sort(names)
			for _, name := range names {
				p := set.rules.GetPolicies()[name]
				w := &rbacWalk{}
				for _, pr := range p.GetPrincipals() {
					w.principal(pr)
				}
				for _, pe := range p.GetPermissions() {
					w.permission(pe)
				}
				for _, u := range w.unreadable {
					add("%s: RBAC %s policy %q (%s): %s: MOSN drops a policy it cannot read, silently (%s)", where, set.field, name, action, u, effect)
				}
				for _, u := range w.unanchored {
					add("%s: RBAC %s policy %q (%s): %s (%s)", where, set.field, name, action, u, regexReason)
				}
				for _, u := range w.spoofable {
					add("%s: RBAC %s policy %q (%s): %s is read from X-Mosn-Path/X-Mosn-Method/Authority, headers the caller sets (MOSN no longer sets them)", where, set.field, name, action, u)
				}
			}
		}
	}
	return v
}

// rbacWalk collects what MOSN cannot read in one RBAC policy, and the regexes it would match
// more broadly than Envoy.
type rbacWalk struct {
	unreadable, unanchored, spoofable []string
}

// callerControlled are the names MOSN's RBAC maps url_path, :path, :method and
// :authority to (headerMapper): ordinary headers nothing in MOSN sets, so the caller
// chooses them, and a DENY on them is skipped by simply not sending them.
var callerControlled = map[string]bool{":path": true, ":method": true, ":authority": true, "x-mosn-path": true, "x-mosn-method": true, "authority": true}

// oneofName names the field set in a message's only oneof ("" if none).
func oneofName(m proto.Message) string {
	r := m.ProtoReflect()
	if r.Descriptor().Oneofs().Len() == 0 {
		return ""
	}
	if fd := r.WhichOneof(r.Descriptor().Oneofs().Get(0)); fd != nil {
		return string(fd.Name())
	}
	return ""
}

func (w *rbacWalk) bad(format string, args ...any) {
	w.unreadable = append(w.unreadable, fmt.Sprintf(format, args...))
}

func (w *rbacWalk) principal(p *rbac.Principal) {
	switch id := p.GetIdentifier().(type) {
	case *rbac.Principal_Any, *rbac.Principal_SourceIp, *rbac.Principal_DirectRemoteIp, *rbac.Principal_RemoteIp:
	case *rbac.Principal_Header:
		w.header(id.Header)
	case *rbac.Principal_AndIds:
		for _, q := range id.AndIds.GetIds() {
			w.principal(q)
		}
	case *rbac.Principal_OrIds:
		for _, q := range id.OrIds.GetIds() {
			w.principal(q)
		}
	case *rbac.Principal_NotId:
		w.principal(id.NotId)
	case *rbac.Principal_Authenticated_:
		w.bad("an authenticated principal (MOSN reads source.principal only through metadata istio_authn)")
	case *rbac.Principal_Metadata:
		md := id.Metadata
		switch {
		case md.GetFilter() != "istio_authn" || len(md.GetPath()) == 0 || md.GetPath()[0].GetKey() != "source.principal":
			w.bad("a metadata principal other than istio_authn source.principal")
		case md.GetValue().GetStringMatch() == nil:
			w.bad("a metadata source.principal whose value is not a string_match")
		default:
			w.str("metadata source.principal", md.GetValue().GetStringMatch())
		}
	case nil:
		w.bad("an empty principal")
	default:
		w.bad("a %s principal", oneofName(p))
	}
}

func (w *rbacWalk) permission(p *rbac.Permission) {
	switch r := p.GetRule().(type) {
	case *rbac.Permission_Any, *rbac.Permission_DestinationIp, *rbac.Permission_DestinationPort:
	case *rbac.Permission_Header:
		w.header(r.Header)
	case *rbac.Permission_AndRules:
		for _, q := range r.AndRules.GetRules() {
			w.permission(q)
		}
	case *rbac.Permission_OrRules:
		for _, q := range r.OrRules.GetRules() {
			w.permission(q)
		}
	case *rbac.Permission_NotRule:
		w.permission(r.NotRule)
	case *rbac.Permission_UrlPath:
		if r.UrlPath.GetPath() == nil {
			w.bad("a url_path without path")
		} else {
			w.str("url_path", r.UrlPath.GetPath())
		}
		w.spoofable = append(w.spoofable, "url_path")
	case nil:
		w.bad("an empty permission")
	default:
		w.bad("a %s permission", oneofName(p))
	}
}

func (w *rbacWalk) header(h *route.HeaderMatcher) {
	if callerControlled[strings.ToLower(h.GetName())] {
		w.spoofable = append(w.spoofable, fmt.Sprintf("header %q", h.GetName()))
	}
	switch m := h.GetHeaderMatchSpecifier().(type) {
	case *route.HeaderMatcher_ExactMatch, *route.HeaderMatcher_PrefixMatch, *route.HeaderMatcher_SuffixMatch,
		*route.HeaderMatcher_PresentMatch, *route.HeaderMatcher_RangeMatch:
	case *route.HeaderMatcher_SafeRegexMatch:
		w.regex(fmt.Sprintf("header %q", h.GetName()), m.SafeRegexMatch)
	case nil:
		w.bad("header %q without a matcher", h.GetName())
	default:
		w.bad("header %q uses %s (MOSN reads exact_match, prefix_match, suffix_match, safe_regex_match, present_match, range_match)", h.GetName(), oneofName(h))
	}
}

func (w *rbacWalk) str(what string, s *matcher.StringMatcher) {
	if s.GetIgnoreCase() {
		w.bad("%s sets ignore_case", what)
	}
	switch m := s.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact, *matcher.StringMatcher_Prefix, *matcher.StringMatcher_Suffix:
	case *matcher.StringMatcher_SafeRegex:
		w.regex(what, m.SafeRegex)
	case nil:
		w.bad("%s without a match pattern", what)
	default:
		w.bad("%s uses %s (MOSN reads exact, prefix, suffix, safe_regex)", what, oneofName(s))
	}
}

func (w *rbacWalk) regex(what string, r *matcher.RegexMatcher) {
	if r.GetGoogleRe2() == nil {
		w.bad("%s: safe_regex without google_re2 engine", what)
	}
	if re := r.GetRegex(); !strings.HasPrefix(re, "^") || !strings.HasSuffix(re, "$") {
		w.unanchored = append(w.unanchored, fmt.Sprintf("%s: regex %q is not anchored with ^ and $", what, re))
	}
}
