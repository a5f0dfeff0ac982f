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
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

// TestRuleTriple: Triple rules (path /<interface>/<method>) are shown with their
// interface and method, not as "* (any call)".
func TestRuleTriple(t *testing.T) {
	to := &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "outbound|50051|v1|a"}}}
	ver := []*route.HeaderMatcher{{Name: "tri-service-version", HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "2.0.0"}}}
	for _, tc := range []struct {
		m    *route.RouteMatch
		want string
	}{
		{&route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/com.a.B/sayHello"}}, "tri:com.a.B  method=sayHello  ->  outbound|50051|v1|a"},
		{&route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/com.a.B/"}, Headers: ver}, "tri:com.a.B  tri-service-version=2.0.0  ->  outbound|50051|v1|a"},
		{&route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/com.a.B/"}}, "tri:com.a.B  (any call)  ->  outbound|50051|v1|a"},
		{&route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: `^/com\.a\.B/(?:a|b)$`}}},
			`tri:com.a.B  path~^/com\.a\.B/(?:a|b)$  ->  outbound|50051|v1|a`},
		{&route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: ""}, Headers: []*route.HeaderMatcher{
			{Name: "service", HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "com.a.B"}}}}, "com.a.B  (any call)  ->  outbound|50051|v1|a"},
	} {
		if got := Rule(&route.Route{Match: tc.m, Action: to}); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.m, got, tc.want)
		}
	}
}

// TestRuleMirrorPercent: the mirror share is rendered as a percentage whatever the
// denominator (istiod sends MILLION: 25% is 250000).
func TestRuleMirrorPercent(t *testing.T) {
	for _, tc := range []struct {
		fp   *xdstype.FractionalPercent
		want string
	}{
		{&xdstype.FractionalPercent{Numerator: 250000, Denominator: xdstype.FractionalPercent_MILLION}, "mirror 25% to m"},
		{&xdstype.FractionalPercent{Numerator: 1000, Denominator: xdstype.FractionalPercent_MILLION}, "mirror 0.1% to m"},
		{&xdstype.FractionalPercent{Numerator: 100, Denominator: xdstype.FractionalPercent_HUNDRED}, "mirror 100% to m"},
	} {
		r := &route.Route{Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"},
			RequestMirrorPolicies: []*route.RouteAction_RequestMirrorPolicy{{
				Cluster: "m", RuntimeFraction: &core.RuntimeFractionalPercent{DefaultValue: tc.fp},
			}},
		}}}
		if got := Rule(r); !strings.Contains(got, tc.want) {
			t.Errorf("%v: %q, want it to contain %q", tc.fp, got, tc.want)
		}
	}
}

// TestDubboEndpointsTriple: endpoints of the clusters Triple rules use are marked Triple
// (dubbo-xds must not call them over the Dubbo wire protocol) with their interface.
func TestDubboEndpointsTriple(t *testing.T) {
	to := func(c string) *route.Route_Route {
		return &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: c}}}
	}
	assignment := func(name string, port uint32) *endpoint.ClusterLoadAssignment {
		return &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: &core.Address{Address: &core.Address_SocketAddress{
				SocketAddress: &core.SocketAddress{Address: "10.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: port}},
			}}}},
		}}}}}
	}
	s := conformance.Snapshot{
		Routes: []*route.RouteConfiguration{{Name: "dubbo-20881", VirtualHosts: []*route.VirtualHost{{Routes: []*route.Route{
			{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: ""}, Headers: []*route.HeaderMatcher{
				{Name: "service", HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "com.a.B"}}}}, Action: to("outbound|20880||a")},
			{Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/com.a.B/"}}, Action: to("outbound|50051||a")},
		}}}}},
		Endpoints: []*endpoint.ClusterLoadAssignment{assignment("outbound|20880||a", 20880), assignment("outbound|50051||a", 50052)},
	}
	got := DubboEndpoints(s)
	want := []Endpoint{{"outbound|20880||a", "com.a.B", "10.0.0.1:20880", false}, {"outbound|50051||a", "com.a.B", "10.0.0.1:50052", true}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("%+v, want %+v", got, want)
	}
}
