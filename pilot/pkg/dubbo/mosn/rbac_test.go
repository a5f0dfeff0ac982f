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
	"regexp"
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"istio.io/istio/pilot/pkg/util/protoconv"
	"istio.io/istio/pkg/wellknown"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

// envoyMatch is Envoy's meaning of a string matcher (regexes match the whole value).
func envoyMatch(t *testing.T, sm *matcher.StringMatcher, v string) bool {
	switch m := sm.MatchPattern.(type) {
	case *matcher.StringMatcher_Exact:
		return v == m.Exact
	case *matcher.StringMatcher_Prefix:
		return strings.HasPrefix(v, m.Prefix)
	case *matcher.StringMatcher_Suffix:
		return strings.HasSuffix(v, m.Suffix)
	case *matcher.StringMatcher_SafeRegex:
		return regexp.MustCompile("^(?:" + m.SafeRegex.Regex + ")$").MatchString(v)
	}
	t.Fatalf("matcher %v", sm)
	return false
}

func smExact(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}}
}

func smPrefix(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: s}}
}

func smSuffix(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: s}}
}

func smRegex(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: s}}}
}

// translated runs one policy through the translator as a one-filter RBAC.
func translated(t *testing.T, action rbacpb.RBAC_Action, p *rbacpb.Policy, kind portKind) ([]*hcm.HttpFilter, []string) {
	t.Helper()
	tr := rbacTranslator{port: 20880, kind: kind}
	rules := tr.rules(&rbacpb.RBAC{Action: action, Policies: map[string]*rbacpb.Policy{"ns[default]-policy[p]-rule[0]": p}}, true)
	filters := []*hcm.HttpFilter{{
		Name:       wellknown.HTTPRoleBasedAccessControl,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: protoconv.MessageToAny(&rbachttp.RBAC{Rules: rules})},
	}}
	// The checker reads RBAC in listeners' connection managers.
	l := boundListener("t", "127.0.0.1", 20880, core.TrafficDirection_INBOUND, &hcm.HttpConnectionManager{
		StatPrefix: "t",
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
			Name: "t", VirtualHosts: []*route.VirtualHost{{Name: "t", Domains: []string{"*"}}},
		}},
		HttpFilters: filters,
	})
	if v := conformance.Check(conformance.Snapshot{Listeners: []*listener.Listener{l}}); len(v) > 0 {
		t.Fatal(v)
	}
	return filters, tr.problems
}

var anyPrincipal = []*rbacpb.Principal{{Identifier: &rbacpb.Principal_Any{Any: true}}}

// TestDubboPathTranslation: to.operation.paths on a Dubbo port become conditions on the
// frame's service and method that match exactly the calls whose path /<service>/<method>
// the original matcher matches; what cannot be made exact fails closed (an ALLOW allows
// no more, a DENY denies no less) and is reported.
func TestDubboPathTranslation(t *testing.T) {
	calls := [][2]string{
		{"com.example.Pay", "refund"}, {"com.example.Pay", "query"}, {"com.example.PayAdmin", "refund"},
		{"org.other.Pay", "refund"}, {"com.example.Pay", "refundAll"}, {"x.Pay", "re"},
	}
	matchers := []*matcher.StringMatcher{
		smExact("/com.example.Pay/refund"), smExact("/com.example.Pay"), smExact("com.example.Pay/refund"),
		smPrefix("/com.example.Pay/"), smPrefix("/com.example.Pay"), smPrefix("/com.example."), smPrefix("/com.example.Pay/ref"),
		smPrefix("/"), smPrefix(""), smPrefix("/com.example.Pay/refund/x"),
		smSuffix("/refund"), smSuffix("refund"), smSuffix("Pay/refund"), smSuffix("/com.example.Pay/refund"), smSuffix("/"), smSuffix("a/b/c"),
		smRegex(".*"), smRegex(".+"),
		smRegex("/com\\.example\\.Pay/(refund|query)"), // not exact on Dubbo: fails closed
	}
	for _, sm := range matchers {
		for _, action := range []rbacpb.RBAC_Action{rbacpb.RBAC_ALLOW, rbacpb.RBAC_DENY} {
			t.Run(fmt.Sprintf("%s %v", action, sm), func(t *testing.T) {
				p := &rbacpb.Policy{
					Permissions: []*rbacpb.Permission{{Rule: &rbacpb.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: sm}}}}},
					Principals:  anyPrincipal,
				}
				filters, problems := translated(t, action, p, dubboPortKind)
				for _, c := range calls {
					want := envoyMatch(t, sm, "/"+c[0]+"/"+c[1]) // the policy governs the call
					allowed, dropped := conformance.Allowed(filters, conformance.Call{Headers: map[string]string{"service": c[0], "method": c[1], "dubbo": "2.0.2"}})
					if len(dropped) > 0 {
						t.Fatalf("MOSN drops %v", dropped)
					}
					matched := allowed == (action == rbacpb.RBAC_ALLOW)
					switch {
					case len(problems) == 0 && matched != want:
						t.Errorf("/%s/%s: matched %v, want %v (exact translation)", c[0], c[1], matched, want)
					case len(problems) > 0 && action == rbacpb.RBAC_ALLOW && matched && !want:
						t.Errorf("/%s/%s: an untranslatable ALLOW allows a call it would not", c[0], c[1])
					case len(problems) > 0 && action == rbacpb.RBAC_DENY && want && !matched:
						t.Errorf("/%s/%s: an untranslatable DENY lets through a call it would deny", c[0], c[1])
					}
				}
			})
		}
	}
}

// TestPrincipalTranslation: Istio's principal matchers are on the full SPIFFE URI; MOSN
// compares the URI without spiffe:// (metadata source.principal). Each is rewritten to
// accept exactly the same identities, under MOSN's unanchored Go regexes.
func TestPrincipalTranslation(t *testing.T) {
	ids := []string{
		"spiffe://cluster.local/ns/default/sa/order", "spiffe://cluster.local/ns/default/sa/order2",
		"spiffe://cluster.local/ns/shop/sa/order", "spiffe://other/ns/default/sa/order", "",
	}
	matchers := []*matcher.StringMatcher{
		smExact("spiffe://cluster.local/ns/default/sa/order"),
		smPrefix("spiffe://cluster.local/ns/default/"),
		smSuffix("/sa/order"),
		smRegex(".*/ns/default/.*"),                            // source.namespaces
		smRegex("spiffe://.+/ns/default/(.+/|)sa/order(/.+)?"), // serviceAccounts
		smRegex(".+"), // presence
		smRegex("cluster.local/ns/default/sa/order"), // without spiffe://: matches nothing in Istio; fails closed here
	}
	for _, sm := range matchers {
		for _, action := range []rbacpb.RBAC_Action{rbacpb.RBAC_ALLOW, rbacpb.RBAC_DENY} {
			t.Run(fmt.Sprintf("%s %v", action, sm), func(t *testing.T) {
				p := &rbacpb.Policy{
					Permissions: []*rbacpb.Permission{{Rule: &rbacpb.Permission_Any{Any: true}}},
					Principals:  []*rbacpb.Principal{{Identifier: &rbacpb.Principal_Authenticated_{Authenticated: &rbacpb.Principal_Authenticated{PrincipalName: sm}}}},
				}
				filters, problems := translated(t, action, p, dubboPortKind)
				for _, id := range ids {
					want := id != "" && envoyMatch(t, sm, id)
					allowed, dropped := conformance.Allowed(filters, conformance.Call{Headers: map[string]string{"service": "a", "method": "b"}, Principal: id})
					if len(dropped) > 0 {
						t.Fatalf("MOSN drops %v", dropped)
					}
					matched := allowed == (action == rbacpb.RBAC_ALLOW)
					switch {
					case len(problems) == 0 && matched != want:
						t.Errorf("%q: matched %v, want %v", id, matched, want)
					case len(problems) > 0 && action == rbacpb.RBAC_ALLOW && matched && !want:
						t.Errorf("%q: an untranslatable ALLOW allows an identity it would not", id)
					case len(problems) > 0 && action == rbacpb.RBAC_DENY && want && !matched:
						t.Errorf("%q: an untranslatable DENY lets through an identity it would deny", id)
					}
				}
			})
		}
	}
}

// TestFailClosedPolarity: an unreadable condition under not_rule flips the bound: a
// DENY of "everything but <unreadable>" must still deny at least what it denied.
func TestFailClosedPolarity(t *testing.T) {
	attachment := &rbacpb.Permission{Rule: &rbacpb.Permission_Header{Header: &route.HeaderMatcher{
		Name: "env", HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "gray"},
	}}}
	for _, tc := range []struct {
		name   string
		action rbacpb.RBAC_Action
		perm   *rbacpb.Permission
		// for a call with and without env=gray: the policy's true verdict
		want map[bool]bool // env=gray -> allowed
	}{
		{"DENY env=gray", rbacpb.RBAC_DENY, attachment, map[bool]bool{true: false, false: true}},
		{"DENY not env=gray", rbacpb.RBAC_DENY, &rbacpb.Permission{Rule: &rbacpb.Permission_NotRule{NotRule: attachment}}, map[bool]bool{true: true, false: false}},
		{"ALLOW env=gray", rbacpb.RBAC_ALLOW, attachment, map[bool]bool{true: true, false: false}},
		{"ALLOW not env=gray", rbacpb.RBAC_ALLOW, &rbacpb.Permission{Rule: &rbacpb.Permission_NotRule{NotRule: attachment}}, map[bool]bool{true: false, false: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			filters, problems := translated(t, tc.action, &rbacpb.Policy{Permissions: []*rbacpb.Permission{tc.perm}, Principals: anyPrincipal}, dubboPortKind)
			if len(problems) != 1 {
				t.Fatalf("problems %v, want the attachment reported", problems)
			}
			for gray, trueVerdict := range tc.want {
				h := map[string]string{"service": "a", "method": "b"}
				if gray {
					h["env"] = "gray" // a header MOSN would not even decode on this listener
				}
				allowed, _ := conformance.Allowed(filters, conformance.Call{Headers: h})
				if allowed && !trueVerdict {
					t.Errorf("env=gray %v: allowed, Istio would deny: fail-open", gray)
				}
			}
		})
	}
}

// TestDenyNotPathSpoofed: a DENY of every call but /X/m ("notPaths") must still deny Z.m
// sent as if it were X.m (the provider runs the service its path attachment names, which
// MOSN does not see): the interface condition under the not cannot hold.
func TestDenyNotPathSpoofed(t *testing.T) {
	path := &rbacpb.Permission{Rule: &rbacpb.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: smExact("/com.example.X/m")}}}}
	p := &rbacpb.Policy{Permissions: []*rbacpb.Permission{{Rule: &rbacpb.Permission_NotRule{NotRule: path}}}, Principals: anyPrincipal}
	filters, problems := translated(t, rbacpb.RBAC_DENY, p, dubboPortKind)
	if len(problems) != 1 {
		t.Fatalf("problems %v, want the interface reported", problems)
	}
	// The frame says X.m; the app may run Z.m: denied.
	allowed, _ := conformance.Allowed(filters, conformance.Call{Headers: map[string]string{"service": "com.example.X", "method": "m"}})
	if allowed {
		t.Error("a call presenting X.m is allowed: a caller naming another service in its path attachment gets through")
	}
}

// TestAllowNotPathSpoofed: an ALLOW of every call but /X/m must not allow X.m sent as if
// it were another service's m (the path attachment names X): under the not the interface
// is dropped, so every m is excepted; and a generic call ($invoke) is excepted too.
func TestAllowNotPathSpoofed(t *testing.T) {
	path := &rbacpb.Permission{Rule: &rbacpb.Permission_UrlPath{UrlPath: &matcher.PathMatcher{Rule: &matcher.PathMatcher_Path{Path: smExact("/com.example.X/m")}}}}
	p := &rbacpb.Policy{Permissions: []*rbacpb.Permission{{Rule: &rbacpb.Permission_NotRule{NotRule: path}}}, Principals: anyPrincipal}
	filters, _ := translated(t, rbacpb.RBAC_ALLOW, p, dubboPortKind)
	for _, c := range []struct {
		service, method string
		allowed         bool
	}{
		{"com.example.Y", "m", false},       // may run X.m
		{"com.example.Y", "$invoke", false}, // may run X.m
		{"com.example.Y", "other", true},
	} {
		allowed, _ := conformance.Allowed(filters, conformance.Call{Headers: map[string]string{"service": c.service, "method": c.method}})
		if allowed != c.allowed {
			t.Errorf("%s.%s: allowed=%v, want %v", c.service, c.method, allowed, c.allowed)
		}
	}
}
