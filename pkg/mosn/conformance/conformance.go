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
	"sort"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

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
					isDubbo := l.Name == "egress_dubbo" || l.Name == "ingress_dubbo"
					if r := m.GetRds(); r != nil && isDubbo {
						dubboRoutes[r.RouteConfigName] = true
					}
					if rc := m.GetRouteConfig(); rc != nil {
						if isDubbo {
							dubboRoutes[rc.Name] = true
						}
						v = append(v, checkRoute(rc, isDubbo)...)
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
	for _, rc := range s.Routes {
		v = append(v, checkRoute(rc, dubboRoutes[rc.Name])...)
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

// checkRoute applies MOSN's route rules; dubbo marks the routes Dubbo listeners use.
func checkRoute(rc *route.RouteConfiguration, dubbo bool) []string {
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
		for i, r := range vh.Routes {
			m := r.GetMatch()
			if dubbo && (m.GetPrefix() != "" || m.GetPath() != "" || m.GetSafeRegex() != nil || m.GetPathSeparatedPrefix() != "") {
				add("route %s rule %d: Dubbo rules must be header-only (prefix \"\"): path rules never match without dubbo_stream", rc.Name, i)
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
