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
	"testing"
)

const (
	svcKey = "org.apache.dubbo.demo.DemoService:1.0.0:g1.configurators"
	appKey = "demo-provider.configurators"
)

// dubbo-admin's new weight node (spec §4): top-level enabled: false, no configVersion.
const adminWeightPort = `enabled: false
key: org.apache.dubbo.demo.DemoService:1.0.0:g1
scope: service
configs:
- type: weight
  enabled: true
  side: provider
  addresses:
  - 10.0.0.1:20880
  parameters:
    weight: 50
`

// dubbo-admin's override UI (disable an instance by IP).
const adminDisable = `configVersion: v2.7
scope: service
key: org.apache.dubbo.demo.DemoService
enabled: true
configs:
- side: provider
  addresses: [10.0.0.2]
  parameters:
    disabled: true
`

func provider(ip string, port int, extra ...string) Provider {
	p := map[string]string{"version": "1.0.0", "group": "g1", "application": "demo-provider"}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	return Provider{Interface: "org.apache.dubbo.demo.DemoService", IP: ip, Port: port, Params: p}
}

func mustRule(t *testing.T, key, body string) *Rule {
	t.Helper()
	k, err := ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOverride([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return NewRule(k, o)
}

func TestApplyProvider(t *testing.T) {
	cases := []struct {
		name     string
		app, svc string // rule bodies ("" none)
		p        Provider
		want     map[string]string // parameters that must be set ("" = absent); nil: unchanged
	}{
		{name: "admin weight node applies by ip:port", svc: adminWeightPort, p: provider("10.0.0.1", 20880), want: map[string]string{"weight": "50"}},
		{name: "admin weight node: another port", svc: adminWeightPort, p: provider("10.0.0.1", 20881)},
		{name: "admin weight node: another host", svc: adminWeightPort, p: provider("10.0.0.3", 20880)},
		{name: "admin weight node: another service", svc: adminWeightPort, p: provider("10.0.0.1", 20880, "version", "2.0.0")},
		{name: "disable by bare ip: any port", svc: adminDisable, p: provider("10.0.0.2", 20999), want: map[string]string{"disabled": "true"}},
		{name: "disable: other ip", svc: adminDisable, p: provider("10.0.0.1", 20880)},
		{name: "top-level enabled false turns general items off", svc: "enabled: false\nconfigs:\n- side: provider\n  parameters: {disabled: true}", p: provider("10.0.0.1", 1)},
		{name: "typed item without enabled is off", svc: "configs:\n- type: weight\n  side: provider\n  parameters: {weight: 5}", p: provider("10.0.0.1", 1)},
		{name: "no side: never applied (Java's v2.7 path)", svc: "configs:\n- parameters: {weight: 5}", p: provider("10.0.0.1", 1)},
		{name: "consumer side: not a provider's", svc: "configs:\n- side: consumer\n  parameters: {timeout: 5}", p: provider("10.0.0.1", 1)},
		{name: "condition keys are never copied", svc: "configs:\n- side: provider\n  parameters: {enabled: false, group: x, weight: 7}", p: provider("10.0.0.1", 1),
			want: map[string]string{"weight": "7", "group": "g1", "enabled": ""}},
		{name: "specific host beats 0.0.0.0 whatever the order", svc: "configs:\n- side: provider\n  addresses: [10.0.0.1]\n  parameters: {weight: 1}\n- side: provider\n  parameters: {weight: 2}",
			p: provider("10.0.0.1", 1), want: map[string]string{"weight": "1"}},
		{name: "higher priority wins on one host", svc: "configs:\n- side: provider\n  parameters: {weight: 1, priority: 9}\n- side: provider\n  parameters: {weight: 2}",
			p: provider("10.0.0.1", 1), want: map[string]string{"weight": "1"}},
		{name: "providerAddresses narrows by port", svc: "configs:\n- side: provider\n  providerAddresses: ['10.0.0.1:2']\n  parameters: {weight: 3}", p: provider("10.0.0.1", 1)},
		{name: "applications narrow", svc: "configs:\n- side: provider\n  applications: [other]\n  parameters: {weight: 3}", p: provider("10.0.0.1", 1)},
		{name: "tilde condition (v2.7)", svc: "configs:\n- side: provider\n  parameters: {'~dubbo.tag': gray, weight: 3}", p: provider("10.0.0.1", 1, "dubbo.tag", "gray"), want: map[string]string{"weight": "3", "~dubbo.tag": ""}},
		{name: "tilde condition fails", svc: "configs:\n- side: provider\n  parameters: {'~dubbo.tag': gray, weight: 3}", p: provider("10.0.0.1", 1)},
		{name: "app rule: every service of the app", app: "scope: application\nkey: demo-provider\nconfigs:\n- side: provider\n  addresses: [10.0.0.1]\n  parameters: {weight: 9}",
			p: provider("10.0.0.1", 1), want: map[string]string{"weight": "9"}},
		{name: "app rule: services narrow", app: "scope: application\nconfigs:\n- side: provider\n  services: ['g1/org.apache.dubbo.demo.DemoService:1.0.0']\n  parameters: {weight: 9}",
			p: provider("10.0.0.1", 1), want: map[string]string{"weight": "9"}},
		{name: "app rule: services entries read as group/iface:version", app: "scope: application\nconfigs:\n- side: provider\n  services: ['g1/org.apache.dubbo.demo.DemoService:1.0.0 ']\n  parameters: {weight: 9}",
			p: provider("10.0.0.1", 1), want: map[string]string{"weight": "9"}},
		{name: "v3.0 match by app: a provider without application only matches empty", svc: "configVersion: v3.0\nconfigs:\n- side: provider\n  match: {app: {oneof: [{prefix: ''}]}}\n  parameters: {weight: 4}",
			p: Provider{Interface: "org.apache.dubbo.demo.DemoService", IP: "10.0.0.1", Port: 1, Params: map[string]string{"version": "1.0.0", "group": "g1"}}},
		{name: "v3.0 match by param regex", svc: "configVersion: v3.0\nconfigs:\n- side: provider\n  match: {param: [{key: region, value: {regex: 'h.'}}]}\n  parameters: {weight: 4}",
			p: provider("10.0.0.1", 1, "region", "hz"), want: map[string]string{"weight": "4"}},
		{name: "v3.0 regex matches the whole value", svc: "configVersion: v3.0\nconfigs:\n- side: provider\n  match: {param: [{key: region, value: {regex: 'h'}}]}\n  parameters: {weight: 4}",
			p: provider("10.0.0.1", 1, "region", "hz")},
		{name: "app rule: another service", app: "scope: application\nconfigs:\n- side: provider\n  services: ['org.apache.dubbo.demo.DemoService']\n  parameters: {weight: 9}", p: provider("10.0.0.1", 1)},
		{name: "app rule: another app", app: "configs:\n- side: provider\n  parameters: {weight: 9}", p: provider("10.0.0.1", 1, "application", "x")},
		{name: "service rule applies after the app rule", app: "configs:\n- side: provider\n  parameters: {weight: 9, timeout: 1}", svc: "configs:\n- side: provider\n  parameters: {weight: 8}",
			p: provider("10.0.0.1", 1), want: map[string]string{"weight": "8", "timeout": "1"}},
		{name: "v3.0 match by param", svc: "configVersion: v3.0\nconfigs:\n- side: provider\n  match: {param: [{key: region, value: {exact: hz}}]}\n  parameters: {weight: 4}",
			p: provider("10.0.0.1", 1, "region", "hz"), want: map[string]string{"weight": "4"}},
		{name: "v3.0 match by param: other value", svc: "configVersion: v3.0\nconfigs:\n- side: provider\n  match: {param: [{key: region, value: {exact: hz}}]}\n  parameters: {weight: 4}",
			p: provider("10.0.0.1", 1, "region", "sh")},
		{name: "v3.0 match: absent param only matches empty", svc: "configVersion: v3.0\nconfigs:\n- side: provider\n  match: {param: [{key: region, value: {empty: true}}]}\n  parameters: {weight: 4}",
			p: provider("10.0.0.1", 1), want: map[string]string{"weight": "4"}},
		{name: "v3.0 match by provider address cidr", svc: "configVersion: v3.0\nconfigs:\n- side: provider\n  match: {providerAddress: {cird: 10.0.0.0/24}}\n  parameters: {weight: 4}",
			p: provider("10.0.0.1", 1), want: map[string]string{"weight": "4"}},
		{name: "v3.0 match by address wildcard", svc: "configVersion: v3.0\nconfigs:\n- side: provider\n  match: {address: {wildcard: '10.1.*'}}\n  parameters: {weight: 4}", p: provider("10.0.0.1", 1)},
		{name: "v3.0 match by service oneof", svc: "configVersion: v3.0\nconfigs:\n- side: provider\n  match: {service: {oneof: [{prefix: g1/org.apache}]}}\n  parameters: {weight: 4}",
			p: provider("10.0.0.1", 1), want: map[string]string{"weight": "4"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var app, svc *Rule
			if tc.app != "" {
				app = mustRule(t, appKey, tc.app)
			}
			if tc.svc != "" {
				svc = mustRule(t, svcKey, tc.svc)
			}
			got, changed := ApplyProvider(tc.p, app, svc)
			if tc.want == nil {
				if changed {
					t.Fatalf("applied %v, want no change", got)
				}
				return
			}
			if !changed {
				t.Fatalf("not applied, want %v", tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			if tc.p.Params["weight"] != "" {
				t.Fatalf("the provider's own parameters were modified")
			}
		})
	}
}

func TestMatchIPExpression(t *testing.T) {
	for _, tc := range []struct {
		pattern, addr string
		want          bool
	}{
		{"10.0.0.0/8", "10.1.2.3:20880", true},
		{"10.0.0.0/8", "11.1.2.3", false},
		{"*", "1.2.3.4:5", true},
		{"10.0.*.1-5", "10.0.9.3:1", true},
		{"10.0.*.1-5", "10.0.9.6:1", false},
		{"10.0.0.1:20880", "10.0.0.1:20880", true},
		{"10.0.0.1:20880", "10.0.0.1:20881", false},
		{"10.0.0.1", "10.0.0.1:20881", true},
		{"host-a", "host-a", true},
		{"bad/pattern", "10.0.0.1", false},
	} {
		if got := MatchIPExpression(tc.pattern, tc.addr); got != tc.want {
			t.Errorf("MatchIPExpression(%q, %q) = %v, want %v", tc.pattern, tc.addr, got, tc.want)
		}
	}
}
