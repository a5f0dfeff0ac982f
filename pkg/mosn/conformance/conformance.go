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
	"sort"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

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
			}
		}
		if !origDst && len(l.FilterChains) != 1 {
			add("listener %s: %d filter chains; MOSN supports exactly one (or the original-dst split)", l.Name, len(l.FilterChains))
		}
		if l.BindToPort != nil && l.DeprecatedV1 == nil {
			add("listener %s: top-level bind_to_port is ignored by MOSN; use deprecated_v1.bind_to_port", l.Name)
		}
		for i, fc := range l.FilterChains {
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
