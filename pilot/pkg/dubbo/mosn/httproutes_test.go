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
	"regexp"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"istio.io/istio/pilot/pkg/util/protoconv"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

func stringMatch(sm *matcher.StringMatcher) *route.HeaderMatcher {
	return &route.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: sm}}
}

func TestAdaptRouteMatch(t *testing.T) {
	cases := []struct {
		name    string
		header  *route.HeaderMatcher
		exact   string   // want exact_match
		match   []string // else want a regex matching these
		noMatch []string // and not these
		drop    bool
	}{
		{name: "exact", header: stringMatch(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "jason"}}), exact: "jason"},
		{name: "exact ignoring case", header: stringMatch(&matcher.StringMatcher{IgnoreCase: true, MatchPattern: &matcher.StringMatcher_Exact{Exact: "a.b"}}),
			match: []string{"a.b", "A.B"}, noMatch: []string{"axb", "a.bc"}},
		{name: "prefix", header: stringMatch(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "j+"}}),
			match: []string{"j+", "j+son"}, noMatch: []string{"jjson", "xj+"}},
		{name: "suffix", header: stringMatch(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: "son"}}),
			match: []string{"jason"}, noMatch: []string{"sonja"}},
		{name: "contains", header: stringMatch(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Contains{Contains: "as"}}),
			match: []string{"jason", "as"}, noMatch: []string{"jsn"}},
		{name: "regex is anchored", header: stringMatch(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "ja|bo"}}}),
			match: []string{"ja", "bo"}, noMatch: []string{"jab", "xbo"}},
		{name: "present", header: &route.HeaderMatcher{Name: "x", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}},
			match: []string{"", "anything"}},
		{name: "absent", header: &route.HeaderMatcher{Name: "x", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: false}}, drop: true},
		{name: "inverted", header: &route.HeaderMatcher{Name: "x", InvertMatch: true, HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "v"}}, drop: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}, Headers: []*route.HeaderMatcher{tc.header}}
			_, err := adaptRouteMatch(m)
			if tc.drop {
				if err == nil {
					t.Fatal("a condition MOSN would ignore was kept (the rule would match more calls)")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := m.Headers[0]
			if tc.exact != "" {
				if h.GetExactMatch() != tc.exact {
					t.Fatalf("got %v, want exact_match %q", h, tc.exact)
				}
				return
			}
			re := regexp.MustCompile(h.GetSafeRegexMatch().GetRegex())
			for _, s := range tc.match {
				if !re.MatchString(s) {
					t.Errorf("%q does not match %q", re, s)
				}
			}
			for _, s := range tc.noMatch {
				if re.MatchString(s) {
					t.Errorf("%q matches %q", re, s)
				}
			}
		})
	}
}

func TestAdaptHTTPRoutes(t *testing.T) {
	rc := &route.RouteConfiguration{Name: "9080", VirtualHosts: []*route.VirtualHost{{Name: "reviews:9080", Routes: []*route.Route{
		{Name: "jason", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"},
			Headers: []*route.HeaderMatcher{stringMatch(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "jason"}})}}},
		{Name: "query", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"},
			QueryParameters: []*route.QueryParameterMatcher{{Name: "debug"}}}},
		{Name: "api", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/api"}}},
		{Name: "default", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}},
	}}}}
	in := protoconv.MessageToAny(rc)
	before := conformance.Check(conformance.Snapshot{Routes: []*route.RouteConfiguration{rc}})
	if len(before) == 0 {
		t.Fatal("the conformance checker accepts upstream's string_match: this test proves nothing")
	}
	g := &Generator{}
	out, err := g.adaptHTTPRoutes(in)
	if err != nil {
		t.Fatal(err)
	}
	got := &route.RouteConfiguration{}
	if err := out.UnmarshalTo(got); err != nil {
		t.Fatal(err)
	}
	if v := conformance.Check(conformance.Snapshot{Routes: []*route.RouteConfiguration{got}}); len(v) > 0 {
		t.Fatalf("still violates MOSN's rules: %v", v)
	}
	var names []string
	for _, r := range got.VirtualHosts[0].Routes {
		names = append(names, r.Name)
	}
	if len(names) != 3 || names[0] != "jason" || names[1] != "api" || names[2] != "default" {
		t.Fatalf("rules %v, want [jason api default] (the query-parameter rule dropped, order kept)", names)
	}
	re := regexp.MustCompile(got.VirtualHosts[0].Routes[1].Match.GetSafeRegex().GetRegex())
	for s, want := range map[string]bool{"/api": true, "/api/v1": true, "/apiv1": false} {
		if re.MatchString(s) != want {
			t.Errorf("path_separated_prefix /api as %q on %q: %v", re, s, !want)
		}
	}

	plain := protoconv.MessageToAny(&route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{{Name: "a", Routes: []*route.Route{rc.VirtualHosts[0].Routes[3]}}}})
	if same, _ := g.adaptHTTPRoutes(plain); same != plain {
		t.Fatal("a configuration MOSN reads as is was re-encoded")
	}
}
