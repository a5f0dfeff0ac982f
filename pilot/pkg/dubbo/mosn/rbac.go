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
	"fmt"
	"sort"
	"strings"

	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking"
	"istio.io/istio/pilot/pkg/networking/plugin/authz"
	"istio.io/istio/pilot/pkg/util/protoconv"
	"istio.io/istio/pkg/spiffe"
	"istio.io/istio/pkg/wellknown"
)

// Authorization for MOSN (docs/security.md, "Authorization").
//
// Istio's own authorization builder turns the AuthorizationPolicies of the workload into
// HTTP RBAC filters, exactly as for an Envoy sidecar; this file rewrites their rules into
// the only forms MOSN's RBAC stream filter reads (docs/reference/mosn-xds-facts.md, §9.5), and
// for a Dubbo port into the attributes its decoder exposes. MOSN drops a policy it cannot
// read without a word (an ALLOW then allows less, a DENY disappears), so nothing is left
// to it: whatever cannot be expressed exactly is replaced by the nearest form that fails
// closed for that policy's action — a DENY denies at least what it would have denied, an
// ALLOW allows at most what it would have allowed — and reported.

// Port kinds an inbound chain serves: Dubbo frames (the decoder's headers), Triple (gRPC
// over HTTP/2), both on one port (Dubbo 3's port unification), or other HTTP.
type portKind int

const (
	dubboPortKind portKind = iota
	triplePortKind
	unifiedPortKind // dubbo and tri on one port
	httpPortKind    // any other HTTP port (upstream's own inbound chains)
)

// MOSN's RBAC filter reads the request path (url_path, :path), method (:method) and
// authority (:authority) from the headers X-Mosn-Path, X-Mosn-Method and Authority
// (istio1106/filter/stream/rbac/common utils.go headerMapper): nothing in MOSN sets them
// any more (the protocols keep these in variables), and on HTTP they are ordinary
// headers the caller sends. A condition on them can never be trusted: on Triple and HTTP
// ports paths, HTTP methods and hosts fail closed.
var callerControlled = map[string]bool{":path": true, ":method": true, ":authority": true, "x-mosn-path": true, "x-mosn-method": true, "authority": true}

// Headers MOSN's Dubbo decoder always sets from the frame itself, under any listener name
// (pkg/protocol/xprotocol/dubbo/decoder.go getServiceAwareMeta). Attachments (group and
// any other) are decoded only under listeners named ingress_dubbo/egress_dubbo, where an
// attachment also overwrites these headers, so a caller could name another method than
// it calls: inbound Dubbo chains are never given those names, and a condition on an
// attachment cannot be evaluated safely.
const (
	dubboServiceHeader = "service"
	dubboMethodHeader  = "method"
	dubboVersionHeader = "version"
)

var dubboFrameHeaders = map[string]bool{dubboServiceHeader: true, dubboMethodHeader: true, dubboVersionHeader: true, "dubbo": true}

// Triple carries Dubbo's version and group as these HTTP/2 headers.
var tripleHeaderAliases = map[string]string{"version": "tri-service-version", "group": "tri-service-group"}

// rbacResult is the authorization of one inbound port for MOSN.
type rbacResult struct {
	filters []*hcm.HttpFilter
	// failedClosed lists, per policy, what could not be expressed and was made to fail
	// closed instead (empty when everything translated exactly).
	failedClosed []string
	policies     int // policies translated (enforced ones, per action filter)
}

// workloadAuthz is what Istio's authorization builder makes of the workload's policies,
// built once per proxy and push, translated per port.
type workloadAuthz struct {
	local, custom []*hcm.HttpFilter
}

func newWorkloadAuthz(push *model.PushContext, proxy *model.Proxy) workloadAuthz {
	return workloadAuthz{
		local:  authz.NewBuilder(authz.Local, push, proxy, false).BuildHTTP(networking.ListenerClassSidecarInbound),
		custom: authz.NewBuilder(authz.Custom, push, proxy, false).BuildHTTP(networking.ListenerClassSidecarInbound),
	}
}

// buildInboundRBAC builds the MOSN RBAC filters of one inbound port of the proxy.
func buildInboundRBAC(push *model.PushContext, proxy *model.Proxy, port uint32, kind portKind) rbacResult {
	return newWorkloadAuthz(push, proxy).forPort(port, kind)
}

// forPort translates the workload's policies for one inbound port: Istio's
// ALLOW/DENY/AUDIT policies in MOSN's forms, and any CUSTOM policy (ext_authz, which MOSN
// does not have) turned into a deny of the requests it governs.
func (w workloadAuthz) forPort(port uint32, kind portKind) rbacResult {
	var res rbacResult
	local := w.local
	for _, f := range w.custom {
		if f.Name != wellknown.HTTPRoleBasedAccessControl {
			continue // ext_authz: MOSN has none; its RBAC companion below says what it governs
		}
		r := &rbachttp.RBAC{}
		if err := f.GetTypedConfig().UnmarshalTo(r); err != nil {
			res.failedClosed = append(res.failedClosed, fmt.Sprintf("CUSTOM policies: %v: denying every call", err))
			res.filters = append(res.filters, denyAllFilter())
			continue
		}
		// The enforced CUSTOM rules are upstream's shadow rules (they only mark requests
		// for ext_authz); dry-run ones are its rules. Without ext_authz, the requests the
		// enforced ones govern are denied.
		governed := r.GetShadowRules()
		if r.GetRules().GetAction() == rbacpb.RBAC_DENY && r.GetShadowRules() == nil {
			governed = r.GetRules() // upstream's own deny rules for a bad CUSTOM config
		}
		if governed == nil || len(governed.Policies) == 0 {
			continue
		}
		deny := &rbacpb.RBAC{Action: rbacpb.RBAC_DENY, Policies: map[string]*rbacpb.Policy{}}
		for name, p := range governed.Policies {
			deny.Policies[name] = p
			res.failedClosed = append(res.failedClosed, fmt.Sprintf("policy %s: CUSTOM (ext_authz) is not available in MOSN: the calls it governs are denied", policyName(name)))
		}
		local = append([]*hcm.HttpFilter{{
			Name:       wellknown.HTTPRoleBasedAccessControl,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: protoconv.MessageToAny(&rbachttp.RBAC{Rules: deny})},
		}}, local...)
	}
	for _, f := range local {
		r := &rbachttp.RBAC{}
		if f.Name != wellknown.HTTPRoleBasedAccessControl || f.GetTypedConfig().UnmarshalTo(r) != nil {
			res.failedClosed = append(res.failedClosed, fmt.Sprintf("filter %s: not an RBAC filter MOSN reads: denying every call", f.Name))
			res.filters = append(res.filters, denyAllFilter())
			continue
		}
		t := rbacTranslator{port: port, kind: kind}
		out := &rbachttp.RBAC{}
		if r.Rules != nil {
			out.Rules = t.rules(r.Rules, true)
			res.policies += len(out.Rules.Policies)
		}
		if r.ShadowRules != nil {
			// Dry-run rules only count in MOSN's stats: a policy that does not translate
			// exactly is left out of them rather than reported as failing closed.
			shadow := rbacTranslator{port: port, kind: kind}
			out.ShadowRules = shadow.rules(r.ShadowRules, false)
		}
		res.failedClosed = append(res.failedClosed, t.problems...)
		res.filters = append(res.filters, &hcm.HttpFilter{
			Name:       wellknown.HTTPRoleBasedAccessControl,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: protoconv.MessageToAny(out)},
		})
	}
	sort.Strings(res.failedClosed)
	return res
}

// denyAllFilter is an ALLOW filter without policies: MOSN denies every request.
func denyAllFilter() *hcm.HttpFilter {
	return &hcm.HttpFilter{
		Name: wellknown.HTTPRoleBasedAccessControl,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: protoconv.MessageToAny(&rbachttp.RBAC{
			Rules: &rbacpb.RBAC{Action: rbacpb.RBAC_ALLOW, Policies: map[string]*rbacpb.Policy{}},
		})},
	}
}

// policyName turns upstream's "ns[<ns>]-policy[<name>]-rule[<i>]" into ns/name rule i.
func policyName(n string) string {
	var ns, name, rule string
	if _, err := fmt.Sscanf(strings.NewReplacer("[", " ", "]", " ").Replace(n), "ns %s -policy %s -rule %s", &ns, &name, &rule); err == nil {
		return fmt.Sprintf("%s/%s rule %s", ns, name, rule)
	}
	return n
}

// rbacTranslator rewrites one RBAC rule set. Each leaf that MOSN cannot read exactly is
// replaced by a bound on the side that fails closed: for a DENY policy the policy must
// match at least what it matched (an unreadable condition becomes "always" where it
// counts positively, "never" under a not), for ALLOW (and AUDIT) at most.
type rbacTranslator struct {
	port     uint32
	kind     portKind
	policy   string
	deny     bool // the policy being translated is a DENY
	problems []string
}

func (t *rbacTranslator) rules(in *rbacpb.RBAC, enforce bool) *rbacpb.RBAC {
	out := &rbacpb.RBAC{Action: in.Action, Policies: make(map[string]*rbacpb.Policy, len(in.Policies))}
	names := make([]string, 0, len(in.Policies))
	for n := range in.Policies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := in.Policies[n]
		t.policy = policyName(n)
		t.deny = in.Action == rbacpb.RBAC_DENY
		before := len(t.problems)
		// A DENY must match at least as much; ALLOW and LOG at most.
		broader := in.Action == rbacpb.RBAC_DENY
		np := &rbacpb.Policy{}
		for _, perm := range p.Permissions {
			np.Permissions = append(np.Permissions, t.permission(perm, broader))
		}
		for _, pr := range p.Principals {
			np.Principals = append(np.Principals, t.principal(pr, broader))
		}
		if p.Condition != nil || p.CheckedCondition != nil {
			t.fail("a CEL condition")
			if !broader {
				continue // the policy can only match less: left out
			}
		}
		if !enforce && len(t.problems) > before {
			t.problems = t.problems[:before]
			continue
		}
		out.Policies[n] = np
	}
	return out
}

func (t *rbacTranslator) fail(what string) {
	t.problems = append(t.problems, fmt.Sprintf("policy %s: %s cannot be expressed for MOSN on port %d", t.policy, what, t.port))
}

var (
	permAny   = &rbacpb.Permission{Rule: &rbacpb.Permission_Any{Any: true}}
	permNever = &rbacpb.Permission{Rule: &rbacpb.Permission_NotRule{NotRule: permAny}}
	prinAny   = &rbacpb.Principal{Identifier: &rbacpb.Principal_Any{Any: true}}
	prinNever = &rbacpb.Principal{Identifier: &rbacpb.Principal_NotId{NotId: prinAny}}
)

// bound returns the fail-closed replacement of an unreadable permission leaf.
func permBound(broader bool) *rbacpb.Permission {
	if broader {
		return proto.Clone(permAny).(*rbacpb.Permission)
	}
	return proto.Clone(permNever).(*rbacpb.Permission)
}

func prinBound(broader bool) *rbacpb.Principal {
	if broader {
		return proto.Clone(prinAny).(*rbacpb.Principal)
	}
	return proto.Clone(prinNever).(*rbacpb.Principal)
}

func andPerms(ps ...*rbacpb.Permission) *rbacpb.Permission {
	if len(ps) == 1 {
		return ps[0]
	}
	return &rbacpb.Permission{Rule: &rbacpb.Permission_AndRules{AndRules: &rbacpb.Permission_Set{Rules: ps}}}
}

func headerPerm(name string, m *route.HeaderMatcher) *rbacpb.Permission {
	m.Name = name
	return &rbacpb.Permission{Rule: &rbacpb.Permission_Header{Header: m}}
}

func (t *rbacTranslator) permission(p *rbacpb.Permission, broader bool) *rbacpb.Permission {
	switch r := p.Rule.(type) {
	case *rbacpb.Permission_Any:
		return p
	case *rbacpb.Permission_AndRules:
		out := &rbacpb.Permission_Set{}
		for _, c := range r.AndRules.Rules {
			out.Rules = append(out.Rules, t.permission(c, broader))
		}
		return &rbacpb.Permission{Rule: &rbacpb.Permission_AndRules{AndRules: out}}
	case *rbacpb.Permission_OrRules:
		out := &rbacpb.Permission_Set{}
		for _, c := range r.OrRules.Rules {
			out.Rules = append(out.Rules, t.permission(c, broader))
		}
		return &rbacpb.Permission{Rule: &rbacpb.Permission_OrRules{OrRules: out}}
	case *rbacpb.Permission_NotRule:
		return &rbacpb.Permission{Rule: &rbacpb.Permission_NotRule{NotRule: t.permission(r.NotRule, !broader)}}
	case *rbacpb.Permission_DestinationPort:
		// Decided here: the chain serves one port, and which local address MOSN reports
		// behind its original-dst redirect is not something to bet a policy on.
		if r.DestinationPort == t.port {
			return proto.Clone(permAny).(*rbacpb.Permission)
		}
		return proto.Clone(permNever).(*rbacpb.Permission)
	case *rbacpb.Permission_DestinationIp:
		return p
	case *rbacpb.Permission_Header:
		if h, ok := t.header(r.Header, "header "+r.Header.GetName(), broader); ok {
			return &rbacpb.Permission{Rule: &rbacpb.Permission_Header{Header: h}}
		}
		return permBound(broader)
	case *rbacpb.Permission_UrlPath:
		if out, ok := t.path(r.UrlPath, broader); ok {
			return out
		}
		return permBound(broader)
	}
	t.fail(fmt.Sprintf("a %T condition", p.Rule))
	return permBound(broader)
}

// path translates a to.operation.paths condition. A Dubbo frame's path is its interface
// and method, so the condition is written on the decoder's service and method headers,
// exactly (interfaces contain no '/'). Triple and HTTP calls have a real path, but MOSN's
// url_path reads it from a header the caller sets (callerControlled): it fails closed.
func (t *rbacTranslator) path(pm *matcher.PathMatcher, broader bool) (*rbacpb.Permission, bool) {
	sm := pm.GetPath()
	if sm == nil {
		t.fail("a path matcher without a path")
		return nil, false
	}
	switch t.kind {
	case triplePortKind, httpPortKind:
		t.fail(fmt.Sprintf("path %v (MOSN reads an HTTP path from X-Mosn-Path, a header the caller sets)", sm))
		return nil, false
	case unifiedPortKind:
		t.fail(fmt.Sprintf("path %v on a port serving dubbo and Triple (a Triple caller sets the service and method headers)", sm))
		return nil, false
	}
	if sm.IgnoreCase {
		t.fail("a case-insensitive path")
		return nil, false
	}
	svc, method, never, ok := dubboPath(sm)
	switch {
	case !ok:
		t.fail(fmt.Sprintf("path %v on a Dubbo port", sm))
		return nil, false
	case never:
		return proto.Clone(permNever).(*rbacpb.Permission), true
	}
	if svc != nil && (broader || t.deny) {
		// A Dubbo Java provider dispatches on the path (and version) attachment, which
		// the caller sets apart from the frame's path and MOSN does not decode here. Where
		// the rule must match more (a DENY, or under a not in an ALLOW), the interface is
		// dropped: the method, which the provider runs from the frame, stays. Where a
		// DENY's condition must match less (under a not), it never holds. A plain ALLOW
		// by interface keeps it (docs/security.md: what that leaves open).
		t.fail(fmt.Sprintf("the interface in path %v (the provider dispatches on the caller's path attachment, which MOSN does not see)", sm))
		if !broader {
			return proto.Clone(permNever).(*rbacpb.Permission), true
		}
		svc = nil
	}
	var perms []*rbacpb.Permission
	if svc != nil {
		perms = append(perms, headerPerm(dubboServiceHeader, svc))
	}
	if method != nil {
		m := headerPerm(dubboMethodHeader, method)
		if broader {
			// Generic invocation ($invoke, on by default in Dubbo providers) runs the
			// method named in its first argument, which MOSN cannot read: where the rule
			// must match more, it matches generic calls too.
			m = &rbacpb.Permission{Rule: &rbacpb.Permission_OrRules{OrRules: &rbacpb.Permission_Set{Rules: []*rbacpb.Permission{
				m,
				headerPerm(dubboMethodHeader, &route.HeaderMatcher{HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "$invoke"}}),
				headerPerm(dubboMethodHeader, &route.HeaderMatcher{HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "$invokeAsync"}}),
			}}}}
		}
		perms = append(perms, m)
	}
	if len(perms) == 0 {
		return proto.Clone(permAny).(*rbacpb.Permission), true
	}
	return andPerms(perms...), true
}

// dubboPath splits a path condition into the conditions on a Dubbo call's interface and
// method it is exactly equivalent to (nil: none), for paths /<interface>/<method>
// (interfaces and methods contain no '/'); never: no Dubbo call has such a path; !ok: no
// exact equivalent.
func dubboPath(sm *matcher.StringMatcher) (svc, method *route.HeaderMatcher, never, ok bool) {
	exact := func(v string) *route.HeaderMatcher {
		return &route.HeaderMatcher{HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: v}}
	}
	prefix := func(v string) *route.HeaderMatcher {
		return &route.HeaderMatcher{HeaderMatchSpecifier: &route.HeaderMatcher_PrefixMatch{PrefixMatch: v}}
	}
	suffix := func(v string) *route.HeaderMatcher {
		return &route.HeaderMatcher{HeaderMatchSpecifier: &route.HeaderMatcher_SuffixMatch{SuffixMatch: v}}
	}
	switch m := sm.MatchPattern.(type) {
	case *matcher.StringMatcher_Exact:
		iface, meth, found := strings.Cut(strings.TrimPrefix(m.Exact, "/"), "/")
		if !strings.HasPrefix(m.Exact, "/") || !found || iface == "" || meth == "" || strings.Contains(meth, "/") {
			return nil, nil, true, true
		}
		return exact(iface), exact(meth), false, true
	case *matcher.StringMatcher_Prefix:
		rest, found := strings.CutPrefix(m.Prefix, "/")
		if !found {
			return nil, nil, m.Prefix != "", true // "" matches every path
		}
		iface, methodPrefix, hasSlash := strings.Cut(rest, "/")
		switch {
		case !hasSlash:
			return prefix(iface), nil, false, true
		case strings.Contains(methodPrefix, "/"):
			return nil, nil, true, true
		case methodPrefix == "":
			return exact(iface), nil, false, true
		}
		return exact(iface), prefix(methodPrefix), false, true
	case *matcher.StringMatcher_Suffix:
		i := strings.LastIndexByte(m.Suffix, '/')
		if i < 0 {
			return nil, suffix(m.Suffix), false, true
		}
		before, meth := m.Suffix[:i], m.Suffix[i+1:]
		switch {
		case meth == "":
			return nil, nil, true, true
		case before == "":
			return nil, exact(meth), false, true
		case strings.HasPrefix(before, "/"): // the whole path: /<interface>/<method>
			if iface := before[1:]; iface != "" && !strings.Contains(iface, "/") {
				return exact(iface), exact(meth), false, true
			}
			return nil, nil, true, true
		case strings.Contains(before, "/"):
			return nil, nil, true, true
		}
		return suffix(before), exact(meth), false, true
	case *matcher.StringMatcher_SafeRegex:
		if r := m.SafeRegex.GetRegex(); r == ".*" || r == ".+" {
			return nil, nil, false, true // every Dubbo call has a path
		}
	}
	return nil, nil, false, false
}

// header translates a header condition. On a Dubbo port only the headers the decoder
// takes from the frame exist; on a Triple port Dubbo's version and group are the
// tri-service-* headers.
func (t *rbacTranslator) header(h *route.HeaderMatcher, what string, broader bool) (*route.HeaderMatcher, bool) {
	name := strings.ToLower(h.GetName())
	switch t.kind {
	case dubboPortKind:
		if !dubboFrameHeaders[name] {
			t.fail(what + " (a Dubbo frame has no such header; attachments cannot be trusted, see docs/security.md)")
			return nil, false
		}
		if (broader || t.deny) && (name == dubboVersionHeader || name == dubboServiceHeader) {
			t.fail(what + " (the provider dispatches on the caller's path and version attachments, which MOSN does not see)")
			return nil, false
		}
	case unifiedPortKind:
		t.fail(what + " (on a port serving dubbo and Triple, a Triple caller sets any header)")
		return nil, false
	case triplePortKind, httpPortKind:
		if callerControlled[name] {
			t.fail(what + " (MOSN reads it from a header the caller sets)")
			return nil, false
		}
		if alias, ok := tripleHeaderAliases[name]; ok && t.kind == triplePortKind {
			name = alias
		}
	}
	out := &route.HeaderMatcher{Name: name, InvertMatch: h.InvertMatch}
	switch m := h.HeaderMatchSpecifier.(type) {
	case *route.HeaderMatcher_ExactMatch, *route.HeaderMatcher_PrefixMatch, *route.HeaderMatcher_SuffixMatch,
		*route.HeaderMatcher_PresentMatch, *route.HeaderMatcher_RangeMatch:
		out.HeaderMatchSpecifier = h.HeaderMatchSpecifier
	case *route.HeaderMatcher_SafeRegexMatch:
		out.HeaderMatchSpecifier = &route.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: anchoredRE2(m.SafeRegexMatch.GetRegex())}
	case *route.HeaderMatcher_StringMatch:
		sm, ok := t.stringMatcher(m.StringMatch, what)
		if !ok {
			return nil, false
		}
		switch s := sm.MatchPattern.(type) {
		case *matcher.StringMatcher_Exact:
			out.HeaderMatchSpecifier = &route.HeaderMatcher_ExactMatch{ExactMatch: s.Exact}
		case *matcher.StringMatcher_Prefix:
			out.HeaderMatchSpecifier = &route.HeaderMatcher_PrefixMatch{PrefixMatch: s.Prefix}
		case *matcher.StringMatcher_Suffix:
			out.HeaderMatchSpecifier = &route.HeaderMatcher_SuffixMatch{SuffixMatch: s.Suffix}
		case *matcher.StringMatcher_SafeRegex:
			out.HeaderMatchSpecifier = &route.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: s.SafeRegex}
		}
	default:
		t.fail(fmt.Sprintf("%s (%T)", what, h.HeaderMatchSpecifier))
		return nil, false
	}
	return out, true
}

// stringMatcher keeps exact, prefix, suffix and regexes (anchored, with the RE2 engine
// MOSN requires: it matches with Go's unanchored MatchString); case-insensitive and
// contains matchers do not translate.
func (t *rbacTranslator) stringMatcher(sm *matcher.StringMatcher, what string) (*matcher.StringMatcher, bool) {
	if sm.GetIgnoreCase() {
		t.fail(what + " (case-insensitive)")
		return nil, false
	}
	switch m := sm.MatchPattern.(type) {
	case *matcher.StringMatcher_Exact, *matcher.StringMatcher_Prefix, *matcher.StringMatcher_Suffix:
		return &matcher.StringMatcher{MatchPattern: sm.MatchPattern}, true
	case *matcher.StringMatcher_SafeRegex:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: anchoredRE2(m.SafeRegex.GetRegex())}}, true
	}
	t.fail(fmt.Sprintf("%s (%T)", what, sm.MatchPattern))
	return nil, false
}

// anchoredRE2 gives an Envoy (full-match) regex the same meaning under Go's MatchString.
func anchoredRE2(re string) *matcher.RegexMatcher {
	return &matcher.RegexMatcher{
		EngineType: &matcher.RegexMatcher_GoogleRe2{GoogleRe2: &matcher.RegexMatcher_GoogleRE2{}},
		Regex:      "^(?:" + re + ")$",
	}
}

func (t *rbacTranslator) principal(p *rbacpb.Principal, broader bool) *rbacpb.Principal {
	switch r := p.Identifier.(type) {
	case *rbacpb.Principal_Any, *rbacpb.Principal_SourceIp, *rbacpb.Principal_DirectRemoteIp:
		return p
	case *rbacpb.Principal_RemoteIp:
		// MOSN's remote_ip also matches the first X-Forwarded-For address, which the caller
		// sets; a sidecar's Envoy (no trusted hops) uses the connection's peer: exactly
		// MOSN's direct_remote_ip.
		return &rbacpb.Principal{Identifier: &rbacpb.Principal_DirectRemoteIp{DirectRemoteIp: r.RemoteIp}}
	case *rbacpb.Principal_AndIds:
		out := &rbacpb.Principal_Set{}
		for _, c := range r.AndIds.Ids {
			out.Ids = append(out.Ids, t.principal(c, broader))
		}
		return &rbacpb.Principal{Identifier: &rbacpb.Principal_AndIds{AndIds: out}}
	case *rbacpb.Principal_OrIds:
		out := &rbacpb.Principal_Set{}
		for _, c := range r.OrIds.Ids {
			out.Ids = append(out.Ids, t.principal(c, broader))
		}
		return &rbacpb.Principal{Identifier: &rbacpb.Principal_OrIds{OrIds: out}}
	case *rbacpb.Principal_NotId:
		return &rbacpb.Principal{Identifier: &rbacpb.Principal_NotId{NotId: t.principal(r.NotId, !broader)}}
	case *rbacpb.Principal_Header:
		if h, ok := t.header(r.Header, "request.headers["+r.Header.GetName()+"]", broader); ok {
			return &rbacpb.Principal{Identifier: &rbacpb.Principal_Header{Header: h}}
		}
		return prinBound(broader)
	case *rbacpb.Principal_Authenticated_:
		if m, ok := t.peerPrincipal(r.Authenticated.GetPrincipalName()); ok {
			return m
		}
		return prinBound(broader)
	case *rbacpb.Principal_FilterState:
		if r.FilterState.GetKey() == "io.istio.peer_principal" {
			if m, ok := t.peerPrincipal(r.FilterState.GetStringMatch()); ok {
				return m
			}
			return prinBound(broader)
		}
	}
	t.fail(fmt.Sprintf("a %T condition", p.Identifier))
	return prinBound(broader)
}

// peerPrincipal: MOSN compares source.principal (metadata istio_authn) with the peer
// certificate's URI SAN without "spiffe://" (docs/reference/mosn-xds-facts.md §9.5). Istio's matchers
// are on the full URI; each is rewritten to match exactly the same identities.
func (t *rbacTranslator) peerPrincipal(sm *matcher.StringMatcher) (*rbacpb.Principal, bool) {
	if sm == nil || sm.IgnoreCase {
		t.fail("a case-insensitive or empty principal")
		return nil, false
	}
	var out *matcher.StringMatcher
	switch m := sm.MatchPattern.(type) {
	case *matcher.StringMatcher_Exact:
		if rest, ok := strings.CutPrefix(m.Exact, spiffe.URIPrefix); ok {
			out = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: rest}}
		}
	case *matcher.StringMatcher_Prefix:
		if rest, ok := strings.CutPrefix(m.Prefix, spiffe.URIPrefix); ok {
			out = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: rest}}
		}
	case *matcher.StringMatcher_Suffix:
		if !strings.Contains(m.Suffix, ":/") {
			out = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: m.Suffix}}
		}
	case *matcher.StringMatcher_SafeRegex:
		re := m.SafeRegex.GetRegex()
		if rest, ok := strings.CutPrefix(re, spiffe.URIPrefix); ok {
			out = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: anchoredRE2(rest)}}
		} else if strings.HasPrefix(re, ".*") || strings.HasPrefix(re, ".+") {
			// A leading wildcard spans "spiffe://" either way (Istio's namespace and
			// presence matchers: .*/ns/<ns>/.* and .+).
			out = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: anchoredRE2(re)}}
		}
	}
	if out == nil {
		t.fail(fmt.Sprintf("principal matcher %v", sm))
		return nil, false
	}
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_Metadata{Metadata: &matcher.MetadataMatcher{
		Filter: "istio_authn",
		Path:   []*matcher.MetadataMatcher_PathSegment{{Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: "source.principal"}}},
		Value:  &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: out}},
	}}}, true
}
