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
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"istio.io/istio/pkg/wellknown"
)

// Call is what MOSN's RBAC stream filter sees of one request.
type Call struct {
	// Headers as MOSN's decoder sets them: for Dubbo frames service, method, version,
	// dubbo; for HTTP/2 the lower-case header names and X-Mosn-Path / X-Mosn-Method.
	Headers map[string]string
	// Principal is the peer certificate's URI SAN (spiffe://...), "" over plaintext.
	Principal string
	SourceIP  string
	LocalPort uint32
}

// Allowed evaluates the RBAC filters of an HTTP connection manager as MOSN's
// istio1106 rbac filter does (istio/istio1106/filter/stream/rbac): every rbac filter
// runs; a filter denies when its engine does. Like MOSN, a policy it cannot read is
// dropped (listed in dropped), so the result is what MOSN would do, not what the policy
// meant: tests compare it with the intent.
func Allowed(filters []*hcm.HttpFilter, c Call) (allowed bool, dropped []string) {
	allowed = true
	for _, f := range filters {
		if f.Name != wellknown.HTTPRoleBasedAccessControl {
			continue
		}
		r := &rbachttp.RBAC{}
		if err := f.GetTypedConfig().UnmarshalTo(r); err != nil {
			dropped = append(dropped, fmt.Sprintf("filter: %v", err))
			continue // MOSN does not register the filter
		}
		if r.Rules == nil {
			continue
		}
		ok, d := engineAllows(r.Rules, c)
		dropped = append(dropped, d...)
		allowed = allowed && ok
	}
	return allowed, dropped
}

func engineAllows(rules *rbacpb.RBAC, c Call) (bool, []string) {
	var dropped []string
	matched := false
	for name, p := range rules.Policies {
		m, err := policyMatches(p, c)
		if err != nil {
			dropped = append(dropped, name+": "+err.Error())
			continue
		}
		matched = matched || m
	}
	switch rules.Action {
	case rbacpb.RBAC_ALLOW:
		return matched, dropped
	case rbacpb.RBAC_DENY:
		return !matched, dropped
	}
	return true, dropped // LOG
}

// policyMatches reads the whole policy first (MOSN builds it at config time and drops
// it on any unreadable part), then matches.
func policyMatches(p *rbacpb.Policy, c Call) (bool, error) {
	var perms []func() bool
	for _, x := range p.Permissions {
		f, err := permission(x, c)
		if err != nil {
			return false, err
		}
		perms = append(perms, f)
	}
	var prins []func() bool
	for _, x := range p.Principals {
		f, err := principal(x, c)
		if err != nil {
			return false, err
		}
		prins = append(prins, f)
	}
	anyOf := func(fs []func() bool) bool {
		for _, f := range fs {
			if f() {
				return true
			}
		}
		return false
	}
	return anyOf(perms) && anyOf(prins), nil
}

func permission(p *rbacpb.Permission, c Call) (func() bool, error) {
	switch r := p.Rule.(type) {
	case *rbacpb.Permission_Any:
		return func() bool { return r.Any }, nil
	case *rbacpb.Permission_DestinationPort:
		return func() bool { return c.LocalPort == r.DestinationPort }, nil
	case *rbacpb.Permission_Header:
		return header(r.Header, c)
	case *rbacpb.Permission_UrlPath:
		sm, err := stringMatcher(r.UrlPath.GetPath())
		if err != nil {
			return nil, err
		}
		return func() bool {
			v, ok := c.Headers["X-Mosn-Path"]
			return ok && sm(v)
		}, nil
	case *rbacpb.Permission_AndRules, *rbacpb.Permission_OrRules:
		set, and := p.GetAndRules(), true
		if set == nil {
			set, and = p.GetOrRules(), false
		}
		var fs []func() bool
		for _, x := range set.Rules {
			f, err := permission(x, c)
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
		}
		return combine(fs, and), nil
	case *rbacpb.Permission_NotRule:
		f, err := permission(r.NotRule, c)
		if err != nil {
			return nil, err
		}
		return func() bool { return !f() }, nil
	}
	return nil, fmt.Errorf("permission %T is not supported by MOSN", p.Rule)
}

func principal(p *rbacpb.Principal, c Call) (func() bool, error) {
	switch r := p.Identifier.(type) {
	case *rbacpb.Principal_Any:
		return func() bool { return r.Any }, nil
	case *rbacpb.Principal_SourceIp:
		return cidr(r.SourceIp, c)
	case *rbacpb.Principal_DirectRemoteIp:
		return cidr(r.DirectRemoteIp, c)
	case *rbacpb.Principal_RemoteIp:
		return cidr(r.RemoteIp, c)
	case *rbacpb.Principal_Header:
		return header(r.Header, c)
	case *rbacpb.Principal_Metadata:
		m := r.Metadata
		if m.GetFilter() != "istio_authn" || len(m.GetPath()) == 0 || m.GetPath()[0].GetKey() != "source.principal" {
			return nil, fmt.Errorf("metadata matcher %v is not supported by MOSN", m)
		}
		sm, err := stringMatcher(m.GetValue().GetStringMatch())
		if err != nil {
			return nil, err
		}
		return func() bool {
			rest, ok := strings.CutPrefix(c.Principal, "spiffe://")
			return ok && sm(rest)
		}, nil
	case *rbacpb.Principal_AndIds, *rbacpb.Principal_OrIds:
		set, and := p.GetAndIds(), true
		if set == nil {
			set, and = p.GetOrIds(), false
		}
		var fs []func() bool
		for _, x := range set.Ids {
			f, err := principal(x, c)
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
		}
		return combine(fs, and), nil
	case *rbacpb.Principal_NotId:
		f, err := principal(r.NotId, c)
		if err != nil {
			return nil, err
		}
		return func() bool { return !f() }, nil
	}
	return nil, fmt.Errorf("principal %T is not supported by MOSN", p.Identifier)
}

func combine(fs []func() bool, and bool) func() bool {
	return func() bool {
		for _, f := range fs {
			if f() != and {
				return !and
			}
		}
		return and
	}
}

// header mirrors MOSN's PermissionHeader/PrincipalHeader (pseudo-headers mapped as its
// headerMapper does).
func header(h *route.HeaderMatcher, c Call) (func() bool, error) {
	name := h.GetName()
	switch strings.ToLower(name) {
	case ":method":
		name = "X-Mosn-Method"
	case ":path":
		name = "X-Mosn-Path"
	case ":authority":
		name = "Authority"
	}
	var m func(string) bool
	present := false
	switch s := h.HeaderMatchSpecifier.(type) {
	case *route.HeaderMatcher_ExactMatch:
		m = func(v string) bool { return v == s.ExactMatch }
	case *route.HeaderMatcher_PrefixMatch:
		m = func(v string) bool { return strings.HasPrefix(v, s.PrefixMatch) }
	case *route.HeaderMatcher_SuffixMatch:
		m = func(v string) bool { return strings.HasSuffix(v, s.SuffixMatch) }
	case *route.HeaderMatcher_SafeRegexMatch:
		re, err := compileRE2(s.SafeRegexMatch)
		if err != nil {
			return nil, err
		}
		m = re.MatchString
	case *route.HeaderMatcher_PresentMatch:
		present = true
		m = func(string) bool { return s.PresentMatch }
	case *route.HeaderMatcher_RangeMatch:
		m = func(v string) bool {
			n, err := strconv.ParseInt(v, 10, 64)
			return err == nil && n >= s.RangeMatch.Start && n < s.RangeMatch.End
		}
	default:
		return nil, fmt.Errorf("header matcher %T is not supported by MOSN", h.HeaderMatchSpecifier)
	}
	return func() bool {
		v, found := c.Headers[name]
		if present {
			return h.InvertMatch != (found && m(v))
		}
		if !found {
			return false
		}
		return h.InvertMatch != m(v)
	}, nil
}

func stringMatcher(sm *matcher.StringMatcher) (func(string) bool, error) {
	if sm == nil {
		return nil, fmt.Errorf("empty string matcher")
	}
	if sm.IgnoreCase {
		return nil, fmt.Errorf("ignore_case is not supported by MOSN")
	}
	switch s := sm.MatchPattern.(type) {
	case *matcher.StringMatcher_Exact:
		return func(v string) bool { return v == s.Exact }, nil
	case *matcher.StringMatcher_Prefix:
		return func(v string) bool { return strings.HasPrefix(v, s.Prefix) }, nil
	case *matcher.StringMatcher_Suffix:
		return func(v string) bool { return strings.HasSuffix(v, s.Suffix) }, nil
	case *matcher.StringMatcher_SafeRegex:
		re, err := compileRE2(s.SafeRegex)
		if err != nil {
			return nil, err
		}
		return re.MatchString, nil
	}
	return nil, fmt.Errorf("string matcher %T is not supported by MOSN", sm.MatchPattern)
}

// re2 compiles as MOSN does: the google_re2 engine is required, and Go's MatchString is
// a substring match.
func compileRE2(r *matcher.RegexMatcher) (*regexp.Regexp, error) {
	if r.GetGoogleRe2() == nil {
		return nil, fmt.Errorf("regex without google_re2 is not supported by MOSN")
	}
	return regexp.Compile(r.GetRegex())
}

func cidr(r *core.CidrRange, c Call) (func() bool, error) {
	_, n, err := net.ParseCIDR(r.GetAddressPrefix() + "/" + strconv.Itoa(int(r.GetPrefixLen().GetValue())))
	if err != nil {
		return nil, err
	}
	return func() bool { return n.Contains(net.ParseIP(c.SourceIP)) }, nil
}
