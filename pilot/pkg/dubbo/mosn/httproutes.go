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

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"istio.io/istio/pilot/pkg/util/protoconv"
	"istio.io/istio/pkg/monitoring"
)

var droppedHTTPRules = monitoring.NewSum(
	"dubbo_mosn_http_rules_dropped_total",
	"HTTP route rules left out of MOSN sidecars' routes because MOSN would ignore their conditions "+
		"(counted when a changed route configuration is adapted).",
)

// adaptHTTPRoutes rewrites upstream's HTTP route configurations (non-Dubbo services
// seen by a MOSN sidecar, e.g. Kubernetes HTTP Services) into what MOSN reads
// (docs/reference/mosn-xds-facts.md): header matchers only as exact_match or safe_regex_match (MOSN
// reads upstream's string_match as "equals the empty string", so a rule on end-user
// silently never matches), and path_separated_prefix as a path regex. A rule whose
// conditions MOSN would ignore (inverted or absent-header matchers, query parameters)
// is dropped and reported, never widened into a rule that matches more calls.
// Configurations that need no change are returned as they are.
func (g *Generator) adaptHTTPRoutes(a *anypb.Any) (*anypb.Any, error) {
	rc := &route.RouteConfiguration{}
	if err := a.UnmarshalTo(rc); err != nil {
		return nil, err
	}
	changed := false
	for _, vh := range rc.VirtualHosts {
		kept := vh.Routes[:0]
		for _, r := range vh.Routes {
			c, err := adaptRouteMatch(r.GetMatch())
			if err != nil {
				g.logOnce("route %s, virtual host %s, rule %q: %v; the rule is dropped for MOSN sidecars", rc.Name, vh.Name, r.Name, err)
				droppedHTTPRules.Increment()
				changed = true
				continue
			}
			changed = changed || c
			kept = append(kept, r)
		}
		vh.Routes = kept
	}
	if !changed {
		return a, nil
	}
	return protoconv.MessageToAny(rc), nil
}

// adaptRouteMatch rewrites m in place; it reports whether anything changed, or why MOSN
// cannot apply the match faithfully.
func adaptRouteMatch(m *route.RouteMatch) (bool, error) {
	changed := false
	if len(m.GetQueryParameters()) > 0 {
		return false, fmt.Errorf("MOSN ignores query parameter matches")
	}
	if p := m.GetPathSeparatedPrefix(); p != "" {
		// Envoy: the path equals p or continues with "/" (query and fragment excluded).
		m.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "^" + regexp.QuoteMeta(p) + "(/.*)?$"}}
		changed = true
	}
	for _, h := range m.GetHeaders() {
		if h.InvertMatch {
			return false, fmt.Errorf("MOSN ignores inverted header matches (header %q)", h.Name)
		}
		if h.TreatMissingHeaderAsEmpty {
			return false, fmt.Errorf("MOSN cannot treat a missing header as empty (header %q)", h.Name)
		}
		var re string
		switch s := h.HeaderMatchSpecifier.(type) {
		case *route.HeaderMatcher_ExactMatch, *route.HeaderMatcher_SafeRegexMatch:
			continue
		case *route.HeaderMatcher_PresentMatch:
			if !s.PresentMatch {
				return false, fmt.Errorf("MOSN cannot match an absent header (%q)", h.Name)
			}
			re = ".*"
		case *route.HeaderMatcher_StringMatch:
			sm := s.StringMatch
			if sm.GetIgnoreCase() {
				re = "(?i)"
			}
			switch p := sm.GetMatchPattern().(type) {
			case *matcher.StringMatcher_Exact:
				if !sm.GetIgnoreCase() {
					h.HeaderMatchSpecifier = &route.HeaderMatcher_ExactMatch{ExactMatch: p.Exact}
					changed = true
					continue
				}
				re += "^" + regexp.QuoteMeta(p.Exact) + "$"
			case *matcher.StringMatcher_Prefix:
				re += "^" + regexp.QuoteMeta(p.Prefix) + ".*$"
			case *matcher.StringMatcher_Suffix:
				re += "^.*" + regexp.QuoteMeta(p.Suffix) + "$"
			case *matcher.StringMatcher_Contains:
				re += "^.*" + regexp.QuoteMeta(p.Contains) + ".*$"
			case *matcher.StringMatcher_SafeRegex:
				re += "^(?:" + p.SafeRegex.GetRegex() + ")$"
			default:
				return false, fmt.Errorf("MOSN cannot express the string match on header %q", h.Name)
			}
		default:
			return false, fmt.Errorf("MOSN reads only exact and regex header matches (header %q)", h.Name)
		}
		h.HeaderMatchSpecifier = &route.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: &matcher.RegexMatcher{Regex: re}}
		changed = true
	}
	return changed, nil
}
