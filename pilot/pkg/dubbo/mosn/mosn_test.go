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
	"strconv"
	"strings"
	"testing"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	networking "istio.io/api/networking/v1alpha3"

	"istio.io/istio/pilot/pkg/networking/util"
)

func cla(groups ...[]uint32) *endpoint.ClusterLoadAssignment {
	c := &endpoint.ClusterLoadAssignment{ClusterName: "whatever"}
	port := uint32(1)
	for _, g := range groups {
		l := &endpoint.LocalityLbEndpoints{}
		for _, w := range g {
			ep := &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: util.BuildAddress("10.0.0.1", port)}}}
			if w > 0 {
				ep.LoadBalancingWeight = wrapperspb.UInt32(w)
			}
			l.LbEndpoints = append(l.LbEndpoints, ep)
			port++
		}
		c.Endpoints = append(c.Endpoints, l)
	}
	return c
}

func TestNormalizeLoadAssignment(t *testing.T) {
	cases := []struct {
		in   [][]uint32
		want string
	}{
		{[][]uint32{{100, 200}}, "64,128"},
		{[][]uint32{{100}, {300}}, "43,128"}, // two localities merged into one group
		{[][]uint32{{1, 1000000}}, "1,128"},
		{[][]uint32{{10, 20, 128}}, "10,20,128"},
		{[][]uint32{{0, 0}}, "0,0"}, // unset stays unset (MOSN and Envoy treat it as 1)
		{nil, ""},
	}
	for _, c := range cases {
		out := normalizeLoadAssignment("outbound|20880||a", cla(c.in...))
		if out.ClusterName != "outbound|20880||a" {
			t.Fatalf("cluster_name %s", out.ClusterName)
		}
		if len(out.Endpoints) > 1 {
			t.Fatalf("%v: %d locality groups", c.in, len(out.Endpoints))
		}
		var ws []string
		for _, l := range out.Endpoints {
			for _, ep := range l.LbEndpoints {
				ws = append(ws, strconv.Itoa(int(ep.GetLoadBalancingWeight().GetValue())))
			}
		}
		if got := strings.Join(ws, ","); got != c.want {
			t.Errorf("%v: weights %s, want %s", c.in, got, c.want)
		}
	}
}

func TestHeaderMatcher(t *testing.T) {
	cases := []struct {
		sm   *networking.StringMatch
		want string
	}{
		{&networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: "sayHello"}}, "exact:sayHello"},
		{&networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "get.x"}}, `regex:^get\.x.*$`},
		{&networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: "a|b"}}, "regex:^(?:a|b)$"},
		{&networking.StringMatch{}, "error"},
		{&networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: "("}}, "error"},
	}
	for _, c := range cases {
		hm, err := headerMatcher("method", c.sm)
		got := "error"
		if err == nil {
			if e := hm.GetExactMatch(); e != "" {
				got = "exact:" + e
			} else {
				got = "regex:" + hm.GetSafeRegexMatch().GetRegex()
			}
		}
		if got != c.want {
			t.Errorf("%v -> %s, want %s", c.sm, got, c.want)
		}
	}
}

func TestListenerPortAndNames(t *testing.T) {
	for name, want := range map[string]int{"0.0.0.0_20880": 20880, "10.96.0.1_8080": 8080, "virtualOutbound": 0, "egress_dubbo": 0, "a_b_c": 0} {
		if got := listenerPort(name); got != want {
			t.Errorf("listenerPort(%q) = %d, want %d", name, got, want)
		}
	}
	for _, p := range []uint32{1, 20881, 65535} {
		n := RouteName(p)
		if _, err := strconv.Atoi(n); err == nil || strings.Contains(n, ":") {
			t.Errorf("route name %q would be claimed by upstream RDS", n)
		}
	}
	if InboundClusterName(20880) != fmt.Sprintf("inbound|%d||", 20880) {
		t.Errorf("inbound cluster name %s", InboundClusterName(20880))
	}
}

func TestMemo(t *testing.T) {
	m := newMemo(2)
	calls := 0
	compute := func() (*anypb.Any, error) { calls++; return &anypb.Any{TypeUrl: fmt.Sprint(calls)}, nil }
	a := &anypb.Any{Value: []byte("a")}
	x, _ := m.get(a, "a", compute)
	y, _ := m.get(&anypb.Any{Value: []byte("a")}, "a", compute) // same bytes, another Any
	if x != y || calls != 1 {
		t.Fatalf("the same upstream bytes were adapted %d times", calls)
	}
	if z, _ := m.get(a, "other-name", compute); z == x {
		t.Fatal("the name is part of the key")
	}
	if z, _ := m.get(&anypb.Any{Value: []byte("b")}, "a", compute); z == x {
		t.Fatal("changed bytes returned the old result")
	}
	m.get(&anypb.Any{Value: []byte("c")}, "c", compute) // rotates generations
	before := calls
	if z, _ := m.get(a, "a", compute); z != x || calls != before {
		t.Fatal("an entry of the previous generation was recomputed")
	}
}

// TestMemoPromotionRespectsLimit: entries promoted from the previous generation count
// against the cap like new ones (they used to be added past it).
func TestMemoPromotionRespectsLimit(t *testing.T) {
	m := newMemo(2)
	compute := func() (*anypb.Any, error) { return &anypb.Any{}, nil }
	get := func(s string) {
		if _, err := m.get(&anypb.Any{Value: []byte(s)}, s, compute); err != nil {
			t.Fatal(err)
		}
		if len(m.cur) > m.limit || len(m.prev) > m.limit {
			t.Fatalf("after %s: generations of %d and %d entries, limit %d", s, len(m.cur), len(m.prev), m.limit)
		}
	}
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		get(s) // cur {e}, prev {c d}
	}
	get("c") // promoted
	get("d") // promoted into a full generation
}

// TestOnceSetBounded: the set of logged messages stays bounded however many distinct
// messages come, and a recent message is still reported only once.
func TestOnceSetBounded(t *testing.T) {
	o := &onceSet{limit: 4}
	if !o.first("a") || o.first("a") {
		t.Fatal("a message was not reported exactly once")
	}
	for i := 0; i < 1000; i++ {
		o.first(fmt.Sprint(i))
		if n := len(o.cur) + len(o.prev); n > 2*o.limit {
			t.Fatalf("%d messages remembered, limit 2*%d", n, o.limit)
		}
	}
	if o.first("999") || o.first("998") {
		t.Fatal("a recent message was reported again")
	}
}

// TestListenerForMOSNBindToPort: the top-level bind_to_port is carried into
// deprecated_v1 (the flag MOSN reads) by appending to the encoding; decoding the result
// gives exactly the listener with deprecated_v1 set.
func TestListenerForMOSNBindToPort(t *testing.T) {
	for _, bind := range []bool{false, true} {
		l := &listener.Listener{Name: "x", Address: util.BuildAddress("10.0.0.1", 443), BindToPort: wrapperspb.Bool(bind)}
		r, err := listenerForMOSN(resource(l.Name, l))
		if err != nil {
			t.Fatal(err)
		}
		got := &listener.Listener{}
		if err := r.Resource.UnmarshalTo(got); err != nil {
			t.Fatal(err)
		}
		want := proto.Clone(l).(*listener.Listener)
		want.DeprecatedV1 = &listener.Listener_DeprecatedV1{BindToPort: wrapperspb.Bool(bind)}
		if !proto.Equal(got, want) || got.GetDeprecatedV1().GetBindToPort() == nil {
			t.Errorf("bind %v: got %v, want %v", bind, got, want)
		}
		if again, _ := listenerForMOSN(r); again != r {
			t.Errorf("bind %v: a repaired listener was repaired again", bind)
		}
	}
}
