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

package governance

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	cases := []struct {
		in      string
		want    Key
		wantErr string
	}{
		{"com.foo.DemoService::.configurators", Key{Kind: KindOverride, Interface: "com.foo.DemoService"}, ""},
		{"com.foo.DemoService:1.0.0:g1.condition-router", Key{Kind: KindConditionRoute, Interface: "com.foo.DemoService", Version: "1.0.0", Group: "g1"}, ""},
		{"demo-provider.tag-router", Key{Kind: KindTagRoute, Application: "demo-provider"}, ""},
		{"shop.condition-router", Key{Kind: KindConditionRoute, Application: "shop"}, ""},
		{"shop.configurators", Key{Kind: KindOverride, Application: "shop"}, ""},
		{"com.foo.DemoService:1.0.0.configurators", Key{}, "both colons"},
		{":1.0.0:.configurators", Key{}, "both colons"},
		{"com.foo.DemoService::.tag-router", Key{}, "per application"},
		{"demo.script-router", Key{}, "not an override"},
		{"demo.MESHAPPRULE", Key{}, "not an override"},
		{".configurators", Key{}, "names no service"},
	}
	for _, tc := range cases {
		got, err := ParseKey(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("%s: String() = %s", tc.in, got.String())
		}
	}
}

// The bodies have the shapes Java dubbo-admin writes (SnakeYAML quotes a key ending in
// ':'), and Dubbo's own test resources.
const (
	adminWeight = `configs:
- addresses: [10.0.0.1]
  enabled: true
  parameters: {weight: 200}
  side: provider
  type: weight
enabled: false
key: 'org.apache.dubbo.demo.DemoService::'
scope: service
`
	overrideV27 = `configVersion: v2.7
scope: service
key: testgroup/servicekey:1.0.0
enabled: true
configs:
- side: provider
  addresses: ['127.0.0.1:20880']
  providerAddresses: ['127.0.0.1:20880']
  parameters: {weight: 222, disabled: true, timeout: 6666, loadbalance: random, retries: 0}
`
	overrideV30 = `configVersion: v3.0
scope: application
key: demo-provider
enabled: true
configs:
- side: provider
  match:
    address: {wildcard: "10.0.0.1:20880"}
    param: [{key: version, value: {exact: v1}}]
  parameters: {weight: 50}
`
)

func TestParseOverride(t *testing.T) {
	o, err := ParseOverride([]byte(adminWeight))
	if err != nil {
		t.Fatal(err)
	}
	// Top-level enabled: false, but a typed item follows its own enabled (Java's
	// ConfigParser.parseEnabled): the weight applies.
	if len(o.Configs) != 1 || o.Configs[0].Parameters["weight"] != "200" || !o.ItemOn(0) {
		t.Fatalf("dubbo-admin's new weight node: %+v (item on=%v)", o, o.ItemOn(0))
	}
	for _, tc := range []struct {
		body string
		on   bool
	}{
		{"enabled: false\nconfigs:\n- parameters: {weight: 1}", false},                // general: the top level
		{"configs:\n- parameters: {weight: 1}", true},                                 // default on
		{"enabled: true\nconfigs:\n- type: weight\n  parameters: {weight: 1}", false}, // typed without enabled: off
		{"enabled: false\nconfigs:\n- type: general\n  enabled: true\n  parameters: {weight: 1}", false},
	} {
		o, err := ParseOverride([]byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if o.ItemOn(0) != tc.on {
			t.Errorf("%q: item on %v, want %v", tc.body, o.ItemOn(0), tc.on)
		}
	}
	o, err = ParseOverride([]byte(overrideV27))
	if err != nil {
		t.Fatal(err)
	}
	want := Params{"weight": "222", "disabled": "true", "timeout": "6666", "loadbalance": "random", "retries": "0"}
	if !o.ItemOn(0) || !reflect.DeepEqual(o.Configs[0].Parameters, want) || o.Configs[0].Addresses[0] != "127.0.0.1:20880" {
		t.Fatalf("v2.7: %+v", o)
	}
	o, err = ParseOverride([]byte(overrideV30))
	if err != nil {
		t.Fatal(err)
	}
	if m := o.Configs[0].Match; m == nil || m.Address.Wildcard != "10.0.0.1:20880" || m.Param[0].Value.Exact == nil || *m.Param[0].Value.Exact != "v1" {
		t.Fatalf("v3.0 match: %+v", o.Configs[0].Match)
	}
	for _, bad := range []struct{ body, want string }{
		{"", "empty"},
		{"configs: [", "not YAML"},
		{"configVersion: v9\nconfigs: []", "configVersion"},
		{"scope: cluster\nconfigs: []", "scope"},
		{"configs:\n- side: both\n  parameters: {weight: 1}", "side"},
		{"configVersion: v2.7\nconfigs:\n- match: {param: []}\n  parameters: {weight: 1}", "match needs"},
		{"configs:\n- side: provider", "no parameters"},
		{"configs:\n- parameters: {weight: [1, 2]}", "not a scalar"},
		{"enabled: maybe\nconfigs: []", "not a boolean"},
		{"- a\n- b", "not a rule"},
		{strings.Repeat("#", maxRuleBytes+1), "bytes"},
	} {
		if _, err := ParseOverride([]byte(bad.body)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%.30q: error %v, want %q", bad.body, err, bad.want)
		}
	}
}

func TestParseTagRule(t *testing.T) {
	tr, err := ParseTagRule([]byte(`configVersion: v3.0
force: false
enabled: true
key: demo-provider
tags:
- name: tag1
  match: [{key: match_key1, value: {exact: value1}}]
- name: tag2
  addresses: ["10.20.3.3:20880"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if !tr.On() || tr.Force.Or(false) || len(tr.Tags) != 2 || tr.Tags[0].Match[0].Key != "match_key1" || tr.Tags[1].Addresses[0] != "10.20.3.3:20880" {
		t.Fatalf("%+v", tr)
	}
	for _, bad := range []struct{ body, want string }{
		{"tags:\n- addresses: [1.2.3.4]", "no name"},
		{"tags:\n- name: gray\n  match: [{key: k, value: {exact: v}}]", "match needs"},
		{"configVersion: v3.1\ntags: []", "configVersion"},
	} {
		if _, err := ParseTagRule([]byte(bad.body)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want %q", bad.body, err, bad.want)
		}
	}
}

func TestParseConditionRule(t *testing.T) {
	c, err := ParseConditionRule([]byte(`scope: service
key: org.apache.dubbo.demo.DemoService
force: true
runtime: false
enabled: true
priority: 1
conditions:
- method!=sayHello =>
- method=routeMethod1 => address=30.5.120.16:20880
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Force.Or(false) || c.Priority != 1 || len(c.Conditions) != 2 {
		t.Fatalf("%+v", c)
	}
	c, err = ParseConditionRule([]byte(`configVersion: v3.1
scope: service
key: shop
force: false
runtime: true
enabled: true
conditions:
- from: {match: ""}
  to:
  - {match: "region=$region & version=v1"}
  - {match: "region=$region & version=v2", weight: 200}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 1 || len(c.Routes[0].To) != 2 || c.Routes[0].To[1].Weight != 200 {
		t.Fatalf("v3.1: %+v", c)
	}
	for _, bad := range []struct{ body, want string }{
		{"conditions: []", "without conditions"},
		{"conditions:\n- from: {match: a=b}", "v3.1 rules need"},
		{"configVersion: v4\nconditions: [a=b]", "configVersion"},
		{"conditions:\n- '=b => host=1'", "before any key"},
		{"conditions:\n- 'method => host=1'", "has no value"},
		{"configVersion: v3.1\nconditions:\n- to: [{match: a=b, weight: -1}]", "negative"},
	} {
		if _, err := ParseConditionRule([]byte(bad.body)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want %q", bad.body, err, bad.want)
		}
	}
}

// TestConditionExpr: Java's parse (ConditionStateRouter.parseRule) and MatchPair.isMatch.
func TestConditionExpr(t *testing.T) {
	e, err := ParseConditionExpr("method=find*,list & application!=shop => host=10.0.0.1,10.0.0.2 & version!=1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.When.Keys(); !reflect.DeepEqual(got, []string{"application", "method"}) {
		t.Fatalf("when keys %v", got)
	}
	if m := e.When["method"]; !reflect.DeepEqual(m.Matches, []string{"find*", "list"}) || len(m.Mismatches) != 0 {
		t.Fatalf("method pair %+v", m)
	}
	if m := e.Then["host"]; !reflect.DeepEqual(m.Matches, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Fatalf("host pair %+v", m)
	}
	for _, tc := range []struct {
		pair  MatchPair
		value string
		want  bool
	}{
		{MatchPair{Matches: []string{"find*"}}, "findAll", true},
		{MatchPair{Matches: []string{"*All"}}, "findAll", true},
		{MatchPair{Matches: []string{"f*l"}}, "findAll", true},
		{MatchPair{Matches: []string{"f*x"}}, "findAll", false},
		{MatchPair{Mismatches: []string{"sayHello"}}, "sayHello", false},
		{MatchPair{Mismatches: []string{"sayHello"}}, "other", true},
		{MatchPair{Matches: []string{"a*"}, Mismatches: []string{"ab"}}, "ab", false},
		{MatchPair{Matches: []string{"a*"}, Mismatches: []string{"ab"}}, "ac", true},
		{MatchPair{Matches: []string{"$region"}}, "hz", true}, // the consumer's region=hz
		{MatchPair{Matches: []string{"*"}}, "", true},
		{MatchPair{}, "x", false},
	} {
		param := func(k string) string { return map[string]string{"region": "hz"}[k] }
		if got := tc.pair.Match(tc.value, param); got != tc.want {
			t.Errorf("%+v on %q: %v, want %v", tc.pair, tc.value, got, tc.want)
		}
	}
	// An empty or "false" then blocks every provider; an empty or "true" when matches
	// every call (dubbo-admin's default template is "=> host != 172.22.3.91").
	for _, tc := range []struct {
		rule              string
		whenAll, blockAll bool
	}{
		{"method!=sayHello =>", false, true},
		{"=> host != 172.22.3.91", true, false},
		{"true => false", true, true},
		{"host = 10.0.0.1", true, false}, // no "=>": a then-only rule
	} {
		e, err := ParseConditionExpr(tc.rule)
		if err != nil {
			t.Fatalf("%q: %v", tc.rule, err)
		}
		if (e.When == nil) != tc.whenAll || (e.Then == nil) != tc.blockAll {
			t.Errorf("%q: when %v then %v", tc.rule, e.When, e.Then)
		}
	}
	if e, _ := ParseConditionExpr("=> host != 172.22.3.91"); e.Then["host"].Mismatches[0] != "172.22.3.91" {
		t.Errorf("spaces around != : %+v", e.Then["host"])
	}
}
