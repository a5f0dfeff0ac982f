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
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

// percent is a fractional percent as a percentage (the denominator is HUNDRED,
// TEN_THOUSAND or MILLION; istiod sends percentages per MILLION).
func percent(f *xdstype.FractionalPercent) float64 {
	n := float64(f.GetNumerator())
	switch f.GetDenominator() {
	case xdstype.FractionalPercent_TEN_THOUSAND:
		return n / 100
	case xdstype.FractionalPercent_MILLION:
		return n / 10000
	}
	return n
}

// tripleRule reads a Triple (HTTP) rule of a Dubbo route: its interface, from the path
// /<interface>/..., and its path condition beyond that ("" for the whole interface).
// ok=false for a Dubbo (RPC, path-less) rule.
func tripleRule(m *route.RouteMatch) (iface, cond string, ok bool) {
	split := func(p string) (string, string) {
		rest := strings.TrimPrefix(p, "/")
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return "?", p
		}
		return rest[:i], rest[i+1:]
	}
	switch {
	case m.GetPath() != "":
		iface, method := split(m.GetPath())
		return iface, "method=" + method, true
	case m.GetPrefix() != "":
		iface, rest := split(m.GetPrefix())
		if rest != "" {
			return iface, "method^=" + rest, true
		}
		return iface, "", true
	case m.GetSafeRegex() != nil:
		re := m.GetSafeRegex().GetRegex()
		iface, _ := split(strings.ReplaceAll(strings.TrimPrefix(re, "^"), `\.`, "."))
		return strings.ReplaceAll(iface, `\$`, "$"), "path~" + re, true
	}
	return "", "", false
}

// Rule renders a Dubbo route rule: "<interface> <conditions> -> <where>"; Triple rules
// (matched on the path /<interface>/<method>) as "tri:<interface> ...".
func Rule(r *route.Route) string {
	svc, conds := "*", []string{}
	if iface, cond, ok := tripleRule(r.GetMatch()); ok {
		svc = "tri:" + iface
		if cond != "" {
			conds = append(conds, cond)
		}
	}
	for _, h := range r.GetMatch().GetHeaders() {
		v := h.GetExactMatch()
		op := "="
		if re := h.GetSafeRegexMatch(); re != nil {
			v, op = re.Regex, "~"
		}
		if h.Name == "service" && op == "=" {
			svc = v
			continue
		}
		conds = append(conds, h.Name+op+v)
	}
	when := "(any call)"
	if len(conds) > 0 {
		when = strings.Join(conds, " & ")
	}
	a := r.GetRoute()
	var where string
	if wc := a.GetWeightedClusters(); wc != nil {
		total := uint32(0)
		for _, c := range wc.Clusters {
			total += c.Weight.GetValue()
		}
		var parts []string
		for _, c := range wc.Clusters {
			parts = append(parts, fmt.Sprintf("%d%% %s", c.Weight.GetValue()*100/max(total, 1), c.Name))
		}
		where = strings.Join(parts, ", ")
	} else {
		where = a.GetCluster()
	}
	var extra []string
	if t := a.GetTimeout(); t != nil {
		extra = append(extra, "timeout "+t.AsDuration().String())
	}
	if rp := a.GetRetryPolicy(); rp != nil {
		extra = append(extra, fmt.Sprintf("%d retries", rp.GetNumRetries().GetValue()))
	}
	for _, m := range a.GetRequestMirrorPolicies() {
		extra = append(extra, fmt.Sprintf("mirror %g%% to %s", percent(m.GetRuntimeFraction().GetDefaultValue()), m.Cluster))
	}
	out := fmt.Sprintf("%s  %s  ->  %s", svc, when, where)
	if len(extra) > 0 {
		out += "  [" + strings.Join(extra, ", ") + "]"
	}
	return out
}

// isDubboCluster: clusters a Dubbo route points at, plus the inbound one.
func dubboClusters(s conformance.Snapshot) map[string]bool {
	out := map[string]bool{}
	for _, rc := range s.Routes {
		if !strings.HasPrefix(rc.Name, "dubbo-") && rc.Name != "inbound_dubbo" {
			continue
		}
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				if c := r.GetRoute().GetCluster(); c != "" {
					out[c] = true
				}
				for _, w := range r.GetRoute().GetWeightedClusters().GetClusters() {
					out[w.Name] = true
				}
			}
		}
	}
	return out
}

// Summary writes the Dubbo view of a snapshot: listeners, which call goes where, the
// inbound ports' TLS and authorization, clusters (with their TLS) and their endpoints
// with ports and weights.
func Summary(w io.Writer, s conformance.Snapshot) {
	fmt.Fprintln(w, "LISTENERS (Dubbo)")
	for _, l := range s.Listeners {
		if !strings.HasSuffix(l.Name, "_dubbo") {
			continue
		}
		sa := l.GetAddress().GetSocketAddress()
		target := ""
		for _, fc := range l.FilterChains {
			for _, f := range fc.Filters {
				m := &hcm.HttpConnectionManager{}
				if f.GetTypedConfig().UnmarshalTo(m) != nil {
					continue
				}
				if r := m.GetRds(); r != nil {
					target = "routes " + r.RouteConfigName
				} else if rc := m.GetRouteConfig(); rc != nil && len(rc.VirtualHosts) > 0 && len(rc.VirtualHosts[0].Routes) > 0 {
					target = "-> " + rc.VirtualHosts[0].Routes[0].GetRoute().GetCluster()
				}
			}
		}
		fmt.Fprintf(w, "  %-14s %s:%d  %s\n", l.Name, sa.GetAddress(), sa.GetPortValue(), target)
	}
	for _, rc := range s.Routes {
		if !strings.HasPrefix(rc.Name, "dubbo-") {
			continue
		}
		fmt.Fprintf(w, "ROUTES %s (first match wins)\n", rc.Name)
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				fmt.Fprintf(w, "  %s\n", Rule(r))
			}
		}
	}
	inboundSection(w, s)
	used := dubboClusters(s)
	eps := map[string][]string{}
	for _, la := range s.Endpoints {
		for _, le := range la.Endpoints {
			for _, ep := range le.LbEndpoints {
				sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
				eps[la.ClusterName] = append(eps[la.ClusterName], fmt.Sprintf("%s:%d (weight %d)",
					sa.GetAddress(), sa.GetPortValue(), max(ep.GetLoadBalancingWeight().GetValue(), 1)))
			}
		}
	}
	fmt.Fprintln(w, "CLUSTERS AND ENDPOINTS (Dubbo)")
	var names []string
	for _, c := range s.Clusters {
		if used[c.Name] || strings.HasPrefix(c.Name, "inbound|") {
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	byName := map[string]*cluster.Cluster{}
	for _, c := range s.Clusters {
		byName[c.Name] = c
	}
	for _, n := range names {
		c := byName[n]
		list := eps[n]
		if la := c.GetLoadAssignment(); la != nil {
			for _, le := range la.Endpoints {
				for _, ep := range le.LbEndpoints {
					sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
					list = append(list, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
				}
			}
		}
		sort.Strings(list)
		fmt.Fprintf(w, "  %s  [%s %s]  %s%s\n", n, c.GetType(), c.LbPolicy, ClusterTLS(c), selectionOf(n, byName))
		if len(list) == 0 {
			fmt.Fprintln(w, "      (no endpoints)")
		}
		for _, e := range list {
			fmt.Fprintf(w, "      %s\n", e)
		}
	}
}

// generatedHost is a service dubbo-istiod generates for a provider selection of Dubbo's
// condition and tag routes: <selection>-<6 hex>.<interface hostname>.
var generatedHost = regexp.MustCompile(`^(outbound\|\d+\|\|)([a-z0-9-]+)-[0-9a-f]{6}\.(.+)$`)

// selectionOf labels the cluster of a generated service with the interface it selects
// providers of ("" for other clusters).
func selectionOf(name string, clusters map[string]*cluster.Cluster) string {
	m := generatedHost.FindStringSubmatch(name)
	if m == nil || clusters[m[1]+m[3]] == nil {
		return ""
	}
	return fmt.Sprintf("  (governance selection %q of %s)", m[2], m[3])
}

// Endpoint is a published Dubbo endpoint with the interface its cluster serves.
type Endpoint struct {
	Cluster, Interface, Addr string
	Triple                   bool // a Triple (gRPC over HTTP/2) endpoint, not a Dubbo one
}

// DubboEndpoints lists the endpoints of the clusters the Dubbo routes use, with the
// interface each cluster serves (from the rules' service condition, or a Triple rule's
// path).
func DubboEndpoints(s conformance.Snapshot) []Endpoint {
	type served struct {
		iface  string
		triple bool
	}
	iface := map[string]served{}
	for _, rc := range s.Routes {
		if !strings.HasPrefix(rc.Name, "dubbo-") {
			continue
		}
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				var svc served
				svc.iface, _, svc.triple = tripleRule(r.GetMatch())
				for _, h := range r.GetMatch().GetHeaders() {
					if h.Name == "service" {
						svc.iface = h.GetExactMatch()
					}
				}
				if c := r.GetRoute().GetCluster(); c != "" {
					iface[c] = svc
				}
				for _, w := range r.GetRoute().GetWeightedClusters().GetClusters() {
					iface[w.Name] = svc
				}
			}
		}
	}
	var out []Endpoint
	for _, la := range s.Endpoints {
		i, ok := iface[la.ClusterName]
		if !ok {
			continue
		}
		for _, le := range la.Endpoints {
			for _, ep := range le.LbEndpoints {
				sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
				out = append(out, Endpoint{la.ClusterName, i.iface, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()), i.triple})
			}
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Cluster != out[b].Cluster {
			return out[a].Cluster < out[b].Cluster
		}
		return out[a].Addr < out[b].Addr
	})
	return out
}
