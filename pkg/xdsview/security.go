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
	"slices"
	"sort"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"istio.io/istio/pkg/wellknown"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

// What the MOSN generator emits for a provider's sidecar (pilot/pkg/dubbo/mosn, inbound.go
// and listeners.go; not imported: this package must not pull in istiod): intercepted
// pods get virtualInbound with, per Dubbo or Triple port, chains on destination_port
// whose HTTP connection manager has the inline route inbound-dubbo-<port>; explicit
// providers get the bound listener inbound_dubbo, one chain.
const (
	virtualInbound     = "virtualInbound"
	inboundDubbo       = "inbound_dubbo"
	inboundRoutePrefix = "inbound-dubbo-"
)

// inboundSection writes, per inbound Dubbo or Triple port, what an operator verifies
// security with: the TLS mode (from the chains' transport sockets), where calls go, and
// the RBAC filters in order.
func inboundSection(w io.Writer, s conformance.Snapshot) {
	fmt.Fprintln(w, "INBOUND (Dubbo and Triple ports: TLS, route, RBAC filters in order; a call must pass each)")
	n := 0
	for _, l := range s.Listeners {
		if l.Name != virtualInbound {
			continue
		}
		byPort := map[uint32][]*listener.FilterChain{}
		for _, fc := range l.FilterChains {
			if strings.HasPrefix(inlineRoute(fc).GetName(), inboundRoutePrefix) {
				p := fc.GetFilterChainMatch().GetDestinationPort().GetValue()
				byPort[p] = append(byPort[p], fc)
			}
		}
		ports := make([]uint32, 0, len(byPort))
		for p := range byPort {
			ports = append(ports, p)
		}
		slices.Sort(ports)
		for _, p := range ports {
			inboundPort(w, p, l.Name, byPort[p])
			n++
		}
	}
	for _, l := range s.Listeners {
		if l.Name == inboundDubbo {
			inboundPort(w, l.GetAddress().GetSocketAddress().GetPortValue(), l.Name, l.FilterChains)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "  (none: no virtualInbound Dubbo chain, no inbound_dubbo)")
	}
}

// inboundPort writes one port: "<port>  <mode>  <listener>  route <name>  ->  <cluster>",
// then the SDS socket of its TLS and its RBAC filters. When the chains of a PERMISSIVE
// port do not route and authorize alike, each chain is written on its own.
func inboundPort(w io.Writer, port uint32, listenerName string, fcs []*listener.FilterChain) {
	tlsChains, plain := 0, 0
	mtls := true
	var sds, other []string
	type chain struct {
		label string
		lines []string
	}
	var chains []chain
	for _, fc := range fcs {
		label := "plaintext chain"
		switch ts := fc.GetTransportSocket(); {
		case ts == nil:
			plain++
		case ts.Name == wellknown.TransportSocketTLS:
			tlsChains++
			label = "TLS chain"
			d := &tlsv3.DownstreamTlsContext{}
			if err := ts.GetTypedConfig().UnmarshalTo(d); err != nil {
				other = append(other, "unreadable TLS context: "+err.Error())
				continue
			}
			mtls = mtls && d.GetRequireClientCertificate().GetValue()
			if p := sdsSource(d.GetCommonTlsContext()); !slices.Contains(sds, p) {
				sds = append(sds, p)
			}
		default:
			other = append(other, "transport socket "+ts.Name)
			label = ts.Name + " chain"
		}
		chains = append(chains, chain{label, chainLines(fc)})
	}
	mode := "plaintext"
	if tlsChains > 0 {
		mode = "mTLS"
		if !mtls {
			mode = "TLS (client certificate not required)"
		}
		if plain > 0 {
			mode += " PERMISSIVE (TLS + plaintext)"
		} else {
			mode += " STRICT"
		}
	}
	same := true
	for _, c := range chains[min(1, len(chains)):] {
		same = same && slices.Equal(c.lines, chains[0].lines)
	}
	head := fmt.Sprintf("  %-5d  %s  %s", port, mode, listenerName)
	if same && len(chains) > 0 {
		head += "  " + chains[0].lines[0]
	}
	fmt.Fprintln(w, head)
	for _, o := range other {
		fmt.Fprintf(w, "      %s\n", o)
	}
	if len(sds) > 0 {
		fmt.Fprintf(w, "      tls: sds %s\n", strings.Join(sds, ", "))
	}
	if same && len(chains) > 0 {
		for _, l := range chains[0].lines[1:] {
			fmt.Fprintf(w, "      %s\n", l)
		}
		return
	}
	for _, c := range chains {
		fmt.Fprintf(w, "      %s: %s\n", c.label, c.lines[0])
		for _, l := range c.lines[1:] {
			fmt.Fprintf(w, "        %s\n", l)
		}
	}
}

// connectionManager returns the chain's HTTP connection manager (nil if none).
func connectionManager(fc *listener.FilterChain) *hcm.HttpConnectionManager {
	for _, f := range fc.GetFilters() {
		m := &hcm.HttpConnectionManager{}
		if f.GetTypedConfig().UnmarshalTo(m) == nil {
			return m
		}
	}
	return nil
}

func inlineRoute(fc *listener.FilterChain) *route.RouteConfiguration {
	return connectionManager(fc).GetRouteConfig()
}

// chainLines renders a chain's route ("route <name>  ->  <clusters>") and RBAC filters.
func chainLines(fc *listener.FilterChain) []string {
	m := connectionManager(fc)
	if m == nil {
		return []string{"(no HTTP connection manager)"}
	}
	var target string
	if r := m.GetRds(); r != nil {
		target = "rds " + r.RouteConfigName
	} else {
		rc := m.GetRouteConfig()
		var clusters []string
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.Routes {
				for _, c := range append([]string{r.GetRoute().GetCluster()}, weightedNames(r)...) {
					if c != "" && !slices.Contains(clusters, c) {
						clusters = append(clusters, c)
					}
				}
			}
		}
		to := strings.Join(clusters, ", ")
		if to == "" {
			to = "(no route: every call fails)"
		}
		target = fmt.Sprintf("route %s  ->  %s", rc.GetName(), to)
	}
	return append([]string{target}, RBACFilters(m.HttpFilters)...)
}

func weightedNames(r *route.Route) []string {
	var out []string
	for _, c := range r.GetRoute().GetWeightedClusters().GetClusters() {
		out = append(out, c.Name)
	}
	return out
}

// RBACFilters renders the RBAC filters of a connection manager in order: per filter its
// action, then one line per policy "<name>  to: <permissions>  from: <principals>"
// (a policy matches a call when one of its permissions and one of its principals do).
func RBACFilters(fs []*hcm.HttpFilter) []string {
	var out []string
	for _, f := range fs {
		if f.Name != wellknown.HTTPRoleBasedAccessControl {
			continue
		}
		r := &rbachttp.RBAC{}
		if err := f.GetTypedConfig().UnmarshalTo(r); err != nil {
			out = append(out, fmt.Sprintf("RBAC unreadable (%v): MOSN drops it", err))
			continue
		}
		if r.Rules == nil && r.ShadowRules == nil {
			out = append(out, "RBAC without rules: allows every call")
		}
		if r.Rules != nil {
			out = append(out, rbacLines("RBAC", r.Rules)...)
		}
		if r.ShadowRules != nil {
			out = append(out, rbacLines("RBAC dry-run (not enforced)", r.ShadowRules)...)
		}
	}
	if len(out) == 0 {
		out = append(out, "no RBAC: every call is allowed")
	}
	return out
}

func rbacLines(what string, r *rbacpb.RBAC) []string {
	head := what + " " + r.Action.String()
	if len(r.Policies) == 0 {
		switch r.Action {
		case rbacpb.RBAC_ALLOW:
			return []string{head + ", no policy: denies every call"}
		case rbacpb.RBAC_DENY:
			return []string{head + ", no policy: denies nothing"}
		}
		return []string{head + ", no policy"}
	}
	out := []string{head}
	names := make([]string, 0, len(r.Policies))
	for n := range r.Policies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		to, from := Policy(r.Policies[n])
		line := fmt.Sprintf("  %s  to: %s  from: %s", n, to, from)
		if p := r.Policies[n]; p.Condition != nil || p.CheckedCondition != nil {
			line += "  when: (a CEL condition)"
		}
		out = append(out, line)
	}
	return out
}

// Policy renders a policy's permissions and principals on one line each: a list is
// joined with " | " (any of them), a set with " & " or " | ", a nested set in
// parentheses, a negation as not(...).
func Policy(p *rbacpb.Policy) (to, from string) {
	var perms, prins []expr
	for _, x := range p.Permissions {
		perms = append(perms, permission(x))
	}
	for _, x := range p.Principals {
		prins = append(prins, principal(x))
	}
	return combine("|", perms).s, combine("|", prins).s
}

// expr is a rendered condition; op is "&" or "|" for a set of several, "" otherwise.
type expr struct{ s, op string }

// combine joins conditions with op, flattening nested sets of the same op; an empty
// "&" matches everything (any), an empty "|" nothing (none), as in MOSN's engine.
func combine(op string, xs []expr) expr {
	var parts []string
	for _, x := range xs {
		switch x.op {
		case "", op:
			parts = append(parts, x.s)
		default:
			parts = append(parts, "("+x.s+")")
		}
	}
	switch len(parts) {
	case 0:
		if op == "&" {
			return expr{s: "any"}
		}
		return expr{s: "none"}
	case 1:
		return xs[0]
	}
	return expr{s: strings.Join(parts, " "+op+" "), op: op}
}

func anyExpr(b bool) expr {
	if b {
		return expr{s: "any"}
	}
	return expr{s: "none"}
}

func permission(p *rbacpb.Permission) expr {
	switch r := p.GetRule().(type) {
	case *rbacpb.Permission_Any:
		return anyExpr(r.Any)
	case *rbacpb.Permission_AndRules:
		return combine("&", permissions(r.AndRules.GetRules()))
	case *rbacpb.Permission_OrRules:
		return combine("|", permissions(r.OrRules.GetRules()))
	case *rbacpb.Permission_NotRule:
		return expr{s: "not(" + permission(r.NotRule).s + ")"}
	case *rbacpb.Permission_Header:
		return headerCond(r.Header)
	case *rbacpb.Permission_UrlPath:
		return expr{s: "path" + stringCond(r.UrlPath.GetPath())}
	case *rbacpb.Permission_DestinationPort:
		return expr{s: fmt.Sprintf("port=%d", r.DestinationPort)}
	case *rbacpb.Permission_DestinationPortRange:
		return expr{s: fmt.Sprintf("port in [%d,%d)", r.DestinationPortRange.GetStart(), r.DestinationPortRange.GetEnd())}
	case *rbacpb.Permission_DestinationIp:
		return expr{s: "destination.ip=" + cidr(r.DestinationIp)}
	case *rbacpb.Permission_RequestedServerName:
		return expr{s: "sni" + stringCond(r.RequestedServerName)}
	case *rbacpb.Permission_Metadata:
		return metadataCond(r.Metadata)
	}
	return expr{s: fmt.Sprintf("(%T)", p.GetRule())}
}

func permissions(ps []*rbacpb.Permission) []expr {
	out := make([]expr, 0, len(ps))
	for _, p := range ps {
		out = append(out, permission(p))
	}
	return out
}

func principal(p *rbacpb.Principal) expr {
	switch r := p.GetIdentifier().(type) {
	case *rbacpb.Principal_Any:
		return anyExpr(r.Any)
	case *rbacpb.Principal_AndIds:
		return combine("&", principals(r.AndIds.GetIds()))
	case *rbacpb.Principal_OrIds:
		return combine("|", principals(r.OrIds.GetIds()))
	case *rbacpb.Principal_NotId:
		return expr{s: "not(" + principal(r.NotId).s + ")"}
	case *rbacpb.Principal_Header:
		return headerCond(r.Header)
	case *rbacpb.Principal_UrlPath:
		return expr{s: "path" + stringCond(r.UrlPath.GetPath())}
	case *rbacpb.Principal_Metadata:
		return metadataCond(r.Metadata)
	case *rbacpb.Principal_Authenticated_:
		return expr{s: "authenticated" + stringCond(r.Authenticated.GetPrincipalName())}
	case *rbacpb.Principal_SourceIp:
		return expr{s: "source.ip=" + cidr(r.SourceIp)}
	case *rbacpb.Principal_DirectRemoteIp:
		return expr{s: "direct_remote.ip=" + cidr(r.DirectRemoteIp)}
	case *rbacpb.Principal_RemoteIp:
		return expr{s: "remote.ip=" + cidr(r.RemoteIp)}
	case *rbacpb.Principal_FilterState:
		return expr{s: fmt.Sprintf("filter_state[%s]%s", r.FilterState.GetKey(), stringCond(r.FilterState.GetStringMatch()))}
	}
	return expr{s: fmt.Sprintf("(%T)", p.GetIdentifier())}
}

func principals(ps []*rbacpb.Principal) []expr {
	out := make([]expr, 0, len(ps))
	for _, p := range ps {
		out = append(out, principal(p))
	}
	return out
}

func cidr(c *core.CidrRange) string {
	return fmt.Sprintf("%s/%d", c.GetAddressPrefix(), c.GetPrefixLen().GetValue())
}

// stringCond renders a string matcher as an operator and value: "=v" exact, "^=v"
// prefix, "$=v" suffix, "*=v" contains, "~re" regex (as sent: MOSN's are anchored).
func stringCond(m *matcher.StringMatcher) string {
	var s string
	switch p := m.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact:
		s = "=" + p.Exact
	case *matcher.StringMatcher_Prefix:
		s = "^=" + p.Prefix
	case *matcher.StringMatcher_Suffix:
		s = "$=" + p.Suffix
	case *matcher.StringMatcher_Contains:
		s = "*=" + p.Contains
	case *matcher.StringMatcher_SafeRegex:
		s = "~" + p.SafeRegex.GetRegex()
	default:
		s = fmt.Sprintf(" (%T)", m.GetMatchPattern())
	}
	if m.GetIgnoreCase() {
		s += " (ignoring case)"
	}
	return s
}

func headerCond(h *route.HeaderMatcher) expr {
	var s string
	switch m := h.GetHeaderMatchSpecifier().(type) {
	case *route.HeaderMatcher_ExactMatch:
		s = "=" + m.ExactMatch
	case *route.HeaderMatcher_PrefixMatch:
		s = "^=" + m.PrefixMatch
	case *route.HeaderMatcher_SuffixMatch:
		s = "$=" + m.SuffixMatch
	case *route.HeaderMatcher_ContainsMatch:
		s = "*=" + m.ContainsMatch
	case *route.HeaderMatcher_SafeRegexMatch:
		s = "~" + m.SafeRegexMatch.GetRegex()
	case *route.HeaderMatcher_StringMatch:
		s = stringCond(m.StringMatch)
	case *route.HeaderMatcher_PresentMatch:
		s = " present"
		if !m.PresentMatch {
			s = " absent"
		}
	case *route.HeaderMatcher_RangeMatch:
		s = fmt.Sprintf(" in [%d,%d)", m.RangeMatch.GetStart(), m.RangeMatch.GetEnd())
	default:
		s = fmt.Sprintf(" (%T)", h.GetHeaderMatchSpecifier())
	}
	e := expr{s: h.GetName() + s}
	if h.GetInvertMatch() {
		e.s = "not(" + e.s + ")"
	}
	return e
}

// metadataCond: Istio's source.principal (istio_authn, the peer certificate's URI SAN
// without spiffe://, as MOSN compares it) is "principal"; other metadata shows its path.
func metadataCond(m *matcher.MetadataMatcher) expr {
	var path []string
	for _, seg := range m.GetPath() {
		path = append(path, seg.GetKey())
	}
	name := "principal"
	if m.GetFilter() != "istio_authn" || strings.Join(path, ".") != "source.principal" {
		name = fmt.Sprintf("metadata[%s:%s]", m.GetFilter(), strings.Join(path, "."))
	}
	var s string
	if sm := m.GetValue().GetStringMatch(); sm != nil {
		s = name + stringCond(sm)
	} else {
		s = fmt.Sprintf("%s (%T)", name, m.GetValue().GetMatchPattern())
	}
	if m.GetInvert() {
		s = "not(" + s + ")"
	}
	return expr{s: s}
}

// sdsSource names where a TLS context's certificate comes from: the SDS socket for
// google_grpc (what MOSN dials), "envoy_grpc <cluster>", "ads", or "static".
func sdsSource(c *tlsv3.CommonTlsContext) string {
	cfgs := c.GetTlsCertificateSdsSecretConfigs()
	if len(cfgs) == 0 {
		if len(c.GetTlsCertificates()) > 0 {
			return "(static certificate)"
		}
		return "(no certificate)"
	}
	src := cfgs[0].GetSdsConfig()
	if src.GetAds() != nil {
		return "ads"
	}
	for _, g := range src.GetApiConfigSource().GetGrpcServices() {
		if gg := g.GetGoogleGrpc(); gg != nil {
			return gg.TargetUri
		}
		if eg := g.GetEnvoyGrpc(); eg != nil {
			return "envoy_grpc " + eg.ClusterName
		}
	}
	return "(no SDS source)"
}

// ClusterTLS renders how a cluster speaks to its endpoints: "tls: SAN <san> (sds <path>)"
// with the server names it checks (MOSN checks exactly one), "plaintext", or upstream's
// auto mTLS (transport_socket_matches, which MOSN does not read).
func ClusterTLS(c *cluster.Cluster) string {
	ts := c.GetTransportSocket()
	switch {
	case ts == nil && len(c.GetTransportSocketMatches()) > 0:
		return "auto mTLS (transport_socket_matches)"
	case ts == nil:
		return "plaintext"
	case ts.Name != wellknown.TransportSocketTLS:
		return "transport socket " + ts.Name
	}
	u := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(u); err != nil {
		return "tls: unreadable (" + err.Error() + ")"
	}
	common := u.GetCommonTlsContext()
	v := common.GetValidationContext()
	if v == nil {
		v = common.GetCombinedValidationContext().GetDefaultValidationContext()
	}
	var sans []string
	for _, m := range v.GetMatchSubjectAltNames() {
		if e := m.GetExact(); e != "" {
			sans = append(sans, e)
		} else {
			sans = append(sans, stringCond(m)) // "^=...", "~..."
		}
	}
	san := "no SAN"
	switch len(sans) {
	case 0:
	case 1:
		san = "SAN " + sans[0]
	default:
		san = "SANs " + strings.Join(sans, ", ")
	}
	return fmt.Sprintf("tls: %s (sds %s)", san, sdsSource(common))
}
