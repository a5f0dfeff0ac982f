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
	"fmt"
	"sort"
	"strings"
	"testing"
)

func prov(ip string, tag string) Provider {
	p := map[string]string{"application": "demo-provider"}
	if tag != "" {
		p[TagKey] = tag
	}
	return Provider{Interface: "com.example.DemoService", Protocol: "dubbo", IP: ip, Port: 20880, Params: p}
}

// hosts renders destinations as "w:ip,ip|w:ip".
func hosts(ps []Provider, ds []Dest) string {
	var out []string
	for _, d := range ds {
		var h []string
		for _, i := range d.Providers {
			h = append(h, ps[i].IP)
		}
		sort.Strings(h)
		out = append(out, fmt.Sprintf("%d:%s", d.Weight, strings.Join(h, ",")))
	}
	return strings.Join(out, "|")
}

func mustTag(t *testing.T, body string) *TagRule {
	t.Helper()
	r, err := ParseTagRule([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustCond(t *testing.T, body string) *ConditionRule {
	t.Helper()
	r, err := ParseConditionRule([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// chainOf is a chain of a tag rule and a service condition rule (bodies; "": none).
func chainOf(t *testing.T, tag, cond string) *Chain {
	t.Helper()
	ch := &Chain{}
	if tag != "" {
		ch.Tag = mustTag(t, tag)
	}
	if cond != "" {
		ch.Conditions, ch.Names = []*ConditionRule{mustCond(t, cond)}, []string{"svc"}
	}
	return ch
}

func call(method string, att ...string) Call {
	c := Call{Method: method, Attachments: map[string]string{}}
	for i := 0; i+1 < len(att); i += 2 {
		c.Attachments[att[i]] = att[i+1]
	}
	return c
}

// TestRouteJavaSemantics: the chain routes as Java's TagStateRouter and condition
// routers do (docs/governance.md).
func TestRouteJavaSemantics(t *testing.T) {
	tagged := []Provider{prov("10.0.0.1", ""), prov("10.0.0.2", "gray"), prov("10.0.0.3", "")}
	plain := []Provider{prov("10.0.0.1", ""), prov("10.0.0.2", ""), prov("10.0.0.3", "")}
	gray3 := "force: false\ntags:\n- name: gray\n  addresses: ['10.0.0.3:20880']\n"
	grayGone := "tags:\n- name: gray\n  addresses: ['10.0.0.9:20880']\n"
	cases := []struct {
		name string
		tag  string
		cond string
		ps   []Provider
		call Call
		want string
	}{
		{name: "static: untagged calls skip tagged providers", ps: tagged, call: call("m"), want: "1:10.0.0.1,10.0.0.3"},
		{name: "static: tagged call", ps: tagged, call: call("m", TagKey, "gray"), want: "1:10.0.0.2"},
		{name: "static: unknown tag falls back to untagged", ps: tagged, call: call("m", TagKey, "blue"), want: "1:10.0.0.1,10.0.0.3"},
		{name: "static: unknown tag forced", ps: tagged, call: call("m", TagKey, "blue", ForceTagKey, "true"), want: "1:"},
		{name: "rule: tag addresses", tag: gray3, ps: tagged, call: call("m", TagKey, "gray"), want: "1:10.0.0.3"},
		{name: "rule: untagged skips claimed and own-tagged", tag: gray3, ps: tagged, call: call("m"), want: "1:10.0.0.1"},
		{name: "rule: tag's provider gone: failover to untagged", tag: grayGone, ps: tagged, call: call("m", TagKey, "gray"), want: "1:10.0.0.1,10.0.0.3"},
		{name: "rule: tag's provider gone, rule force", tag: "force: true\n" + grayGone, ps: tagged, call: call("m", TagKey, "gray"), want: "1:"},
		{name: "rule: tag's provider gone, dubbo.force.tag", tag: grayGone, ps: tagged, call: call("m", TagKey, "gray", ForceTagKey, "true"), want: "1:"},
		{name: "rule: a tag not in the rule uses providers' own tag", tag: gray3, ps: []Provider{prov("10.0.0.1", ""), prov("10.0.0.2", "blue")}, call: call("m", TagKey, "blue"), want: "1:10.0.0.2"},
		{name: "rule off: static only", tag: "enabled: false\n" + gray3, ps: tagged, call: call("m", TagKey, "gray"), want: "1:10.0.0.2"},
		{name: "v3.0 tag by match", tag: "configVersion: v3.0\ntags:\n- name: gray\n  match: [{key: region, value: {exact: hz}}]\n",
			ps: []Provider{prov("10.0.0.1", ""), {Interface: "x", IP: "10.0.0.2", Port: 20880, Params: map[string]string{"region": "hz"}}}, call: call("m", TagKey, "gray"), want: "1:10.0.0.2"},

		{name: "condition by method", cond: "conditions: ['method=refund => host=10.0.0.1']", ps: plain, call: call("refund"), want: "1:10.0.0.1"},
		{name: "condition: other method", cond: "conditions: ['method=refund => host=10.0.0.1']", ps: plain, call: call("pay"), want: "1:10.0.0.1,10.0.0.2,10.0.0.3"},
		{name: "condition: blacklist", cond: "force: true\nconditions: ['=> host != 10.0.0.1']", ps: plain, call: call("pay"), want: "1:10.0.0.2,10.0.0.3"},
		{name: "condition: empty result ignored", cond: "conditions: ['method=refund => host=10.9.9.9']", ps: plain, call: call("refund"), want: "1:10.0.0.1,10.0.0.2,10.0.0.3"},
		{name: "condition: empty result forced", cond: "force: true\nconditions: ['method=refund => host=10.9.9.9']", ps: plain, call: call("refund"), want: "1:"},
		{name: "condition: empty then blocks", cond: "conditions: ['method=refund =>']", ps: plain, call: call("refund"), want: "1:"},
		{name: "condition: mismatch", cond: "conditions: ['method!=refund => host=10.0.0.2']", ps: plain, call: call("pay"), want: "1:10.0.0.2"},
		{name: "condition: attachment", cond: "conditions: ['attachments[region]=hz => address=10.0.0.3:20880']", ps: plain, call: call("pay", "region", "hz"), want: "1:10.0.0.3"},
		{name: "condition: absent attachment never matches, even !=", cond: "conditions: ['attachments[region]!=hz => host=10.0.0.3']", ps: plain, call: call("pay"), want: "1:10.0.0.1,10.0.0.2,10.0.0.3"},
		{name: "condition: chained in order", cond: "conditions: ['=> host!=10.0.0.1', 'method=refund => host=10.0.0.1']", ps: plain, call: call("refund"), want: "1:10.0.0.2,10.0.0.3"},
		{name: "condition off", cond: "enabled: false\nconditions: ['=> host=10.0.0.1']", ps: plain, call: call("pay"), want: "1:10.0.0.1,10.0.0.2,10.0.0.3"},
		{name: "v3.1 weights", cond: "configVersion: v3.1\nconditions:\n- from: {match: method=get}\n  to:\n  - {match: host=10.0.0.1}\n  - {match: host=10.0.0.2, weight: 300}\n  - {match: host=10.9.9.9, weight: 50}\n",
			ps: plain, call: call("get"), want: "100:10.0.0.1|300:10.0.0.2"},
		{name: "v3.1 no destination present, not forced", cond: "configVersion: v3.1\nconditions:\n- from: {match: ''}\n  to:\n  - {match: host=10.9.9.9}\n", ps: plain, call: call("get"), want: "1:10.0.0.1,10.0.0.2,10.0.0.3"},
		{name: "v3.1 no to: blocked", cond: "configVersion: v3.1\nconditions:\n- from: {match: method=get}\n  to: []\n", ps: plain, call: call("get"), want: "1:"},
		{name: "tag then condition", tag: gray3, cond: "conditions: ['method=refund => host=10.0.0.1']", ps: tagged, call: call("refund", TagKey, "gray"), want: "1:10.0.0.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch := chainOf(t, tc.tag, tc.cond)
			if got := hosts(tc.ps, ch.Route(tc.call, tc.ps)); got != tc.want {
				t.Fatalf("routed to %q, want %q", got, tc.want)
			}
		})
	}
}

// render shows compiled routes as "match -> dest" lines.
func render(ps []Provider, rs []RouteSpec) string {
	var out []string
	for _, r := range rs {
		var m []string
		if r.Method != "" {
			m = append(m, "method="+r.Method)
		}
		var keys []string
		for k := range r.Attachments {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			a := r.Attachments[k]
			if a.Present {
				m = append(m, k+"=*")
			} else if a.Level {
				m = append(m, k+"="+a.Value+"|*")
			} else {
				m = append(m, k+"="+a.Value)
			}
		}
		out = append(out, strings.Join(m, "&")+" -> "+hosts(ps, r.Dests))
	}
	return strings.Join(out, "\n")
}

// TestCompile: every call reaches, through the compiled routes taken in order, what the
// Java chain gives it.
func TestCompile(t *testing.T) {
	tagged := []Provider{prov("10.0.0.1", ""), prov("10.0.0.2", "gray"), prov("10.0.0.3", "")}
	plain := []Provider{prov("10.0.0.1", ""), prov("10.0.0.2", ""), prov("10.0.0.3", "")}
	cases := []struct {
		name      string
		tag, cond string
		ps        []Provider
		want      string
	}{
		// A forced tag no provider has fails, as in Java, even without tags.
		{name: "no rules", ps: plain, want: "dubbo.force.tag=true&dubbo.tag=* -> 1:\n -> 1:10.0.0.1,10.0.0.2,10.0.0.3"},
		{name: "method", cond: "conditions: ['method=refund => host=10.0.0.1']", ps: plain,
			want: "dubbo.force.tag=true&dubbo.tag=* -> 1:\nmethod=refund -> 1:10.0.0.1\n -> 1:10.0.0.1,10.0.0.2,10.0.0.3"},
		{name: "mismatch", cond: "conditions: ['method!=refund => host=10.0.0.2']", ps: plain,
			want: "dubbo.force.tag=true&dubbo.tag=* -> 1:\nmethod=refund -> 1:10.0.0.1,10.0.0.2,10.0.0.3\n -> 1:10.0.0.2"},
		{name: "tag rule and method", tag: "tags:\n- name: gray\n  addresses: ['10.0.0.3:20880']\n", cond: "conditions: ['method=refund => host=10.0.0.1']", ps: tagged,
			// gray|canary falls back to gray (Java's tag levels), unless forced.
			want: "method=refund&dubbo.force.tag=true&dubbo.tag=gray|* -> 1:\nmethod=refund&dubbo.tag=gray -> 1:10.0.0.3\n" +
				"dubbo.force.tag=true&dubbo.tag=gray -> 1:10.0.0.3\nmethod=refund&dubbo.tag=gray|* -> 1:10.0.0.3\n" +
				"dubbo.force.tag=true&dubbo.tag=gray|* -> 1:\ndubbo.force.tag=true&dubbo.tag=* -> 1:\nmethod=refund -> 1:10.0.0.1\n" +
				"dubbo.tag=gray -> 1:10.0.0.3\ndubbo.tag=gray|* -> 1:10.0.0.3\n -> 1:10.0.0.1"},
		{name: "attachment present", cond: "conditions: ['attachments[canary]=* => host=10.0.0.3']", ps: plain,
			want: "dubbo.force.tag=true&dubbo.tag=* -> 1:\ncanary=* -> 1:10.0.0.3\n -> 1:10.0.0.1,10.0.0.2,10.0.0.3"},
		{name: "v3.1 weights", cond: "configVersion: v3.1\nconditions:\n- from: {match: method=get}\n  to:\n  - {match: host=10.0.0.1}\n  - {match: host=10.0.0.2, weight: 300}\n", ps: plain,
			want: "dubbo.force.tag=true&dubbo.tag=* -> 1:\nmethod=get -> 100:10.0.0.1|300:10.0.0.2\n -> 1:10.0.0.1,10.0.0.2,10.0.0.3"},
		// The forced gray route stays: without it a forced gray call would reach the
		// forced-unknown-tag route before the gray one.
		{name: "static tags", ps: tagged, want: "dubbo.force.tag=true&dubbo.tag=gray -> 1:10.0.0.2\ndubbo.force.tag=true&dubbo.tag=* -> 1:\ndubbo.tag=gray -> 1:10.0.0.2\n -> 1:10.0.0.1,10.0.0.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch := chainOf(t, tc.tag, tc.cond)
			rs, err := ch.Compile(tc.ps)
			if err != nil {
				t.Fatal(err)
			}
			if got := render(tc.ps, rs); got != tc.want {
				t.Fatalf("routes:\n%s\nwant:\n%s", got, tc.want)
			}
			// Every class of calls, through the routes in order, lands where the chain says.
			for _, c := range []Call{call("refund"), call("pay"), call("refund", TagKey, "gray"), call("pay", TagKey, "blue"),
				call("pay", TagKey, "blue", ForceTagKey, "true"), call("refund", TagKey, "gray", ForceTagKey, "true"),
				call("pay", TagKey, "blue", ForceTagKey, "TRUE"), call("pay", TagKey, "gray|canary"), call("refund", TagKey, "gray|canary"),
				call("pay", TagKey, "gray|canary", ForceTagKey, "true"), call("pay", "canary", "1")} {
				// (An empty attachment counts as absent: docs/governance.md, "Deliberate differences".)
				want := hosts(tc.ps, ch.Route(c, tc.ps))
				got := "(no route: all)"
				for _, r := range rs {
					if r.matches(c) {
						got = hosts(tc.ps, r.Dests)
						break
					}
				}
				if got != want {
					t.Errorf("call %+v: routes give %q, the chain %q", c, got, want)
				}
			}
		})
	}
}

func TestCheckCondition(t *testing.T) {
	for _, tc := range []struct{ cond, want string }{
		{"conditions: ['method=refund => host=10.0.0.1']", ""},
		{"conditions: ['application=shop => host=10.0.0.1']", "consumer's own"},
		{"conditions: ['arguments[0]=1 => host=10.0.0.1']", "consumer's own"},
		{"conditions: ['method=get* => host=10.0.0.1']", "only literal"},
		{"conditions: ['=> region=$region']", "consumer's own parameter"},
		{"configVersion: v3.1\nconditions:\n- from: {match: 'host=1.1.1.1'}\n  to: [{match: 'region=a'}]", "consumer's own"},
	} {
		err := CheckCondition(mustCond(t, tc.cond))
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: %v, want %q", tc.cond, err, tc.want)
		}
	}
}

// BenchmarkCompile: a tag rule and a condition rule with three methods over 100
// providers, compiled as the registry does at each change of a routed interface.
func BenchmarkCompile(b *testing.B) {
	var ps []Provider
	for i := 0; i < 100; i++ {
		tag := ""
		if i%10 == 0 {
			tag = "gray"
		}
		ps = append(ps, prov(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), tag))
	}
	tag, err := ParseTagRule([]byte("tags:\n- name: blue\n  addresses: ['10.0.0.5:20880']\n"))
	if err != nil {
		b.Fatal(err)
	}
	cond, err := ParseConditionRule([]byte("conditions: ['method=refund => host=10.0.0.1', 'method=pay,query => host!=10.0.0.2']"))
	if err != nil {
		b.Fatal(err)
	}
	ch := &Chain{Tag: tag, Conditions: []*ConditionRule{cond}, Names: []string{"service"}}
	b.ReportAllocs()
	var routes int
	for i := 0; i < b.N; i++ {
		rs, err := ch.Compile(ps)
		if err != nil {
			b.Fatal(err)
		}
		routes = len(rs)
	}
	b.ReportMetric(float64(routes), "routes")
}
