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

package registry

import (
	"net/url"
	"strings"
	"testing"

	"istio.io/istio/pkg/config/labels"
	"istio.io/istio/pkg/config/validation/agent"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

func TestHostname(t *testing.T) {
	cases := []struct{ iface, suffix, want string }{
		{"com.example.DemoService", "", "com.example.demoservice"},
		{"com.example.DemoService", "dubbo", "com.example.demoservice.dubbo"},
		{"com.example.DemoService", ".svc.dubbo.", "com.example.demoservice.svc.dubbo"},
		{"org.apache.dubbo.samples.Greeter$Inner", "", "org.apache.dubbo.samples.greeter-inner"},
		{"com.example._Hidden", "", "com.example.hidden"},
		{"com.example.Under_score_", "", "com.example.under-score"},
		{"a.__.b", "", "a.b"},
		{"$$$", "", ""},
		{strings.Repeat("a", 70) + ".B", "", strings.Repeat("a", 63) + ".b"},
	}
	for _, c := range cases {
		if got := Hostname(c.iface, c.suffix); got != c.want {
			t.Errorf("Hostname(%q, %q) = %q, want %q", c.iface, c.suffix, got, c.want)
		}
		if c.want != "" {
			if err := agent.ValidateFQDN(c.want); err != nil {
				t.Errorf("Hostname(%q) = %q is not a valid hostname: %v", c.iface, c.want, err)
			}
		}
	}
}

func TestLabelValue(t *testing.T) {
	cases := map[string]string{
		"1.0.0":                 "1.0.0",
		"g1":                    "g1",
		"a b/c":                 "a-b-c",
		"-lead.trail_":          "lead.trail",
		strings.Repeat("x", 80): strings.Repeat("x", 63),
		"中文":                    "",
		"":                      "",
	}
	for in, want := range cases {
		got := labelValue(in)
		if got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
		if got != "" {
			if err := (labels.Instance{"k": got}).Validate(); err != nil {
				t.Errorf("labelValue(%q) = %q is not a valid label value: %v", in, got, err)
			}
		}
	}
}

// TestSidecarParams: a provider declares its Istio sidecar and identity with URL
// parameters; without them it is plaintext with no identity (docs/security.md).
func TestSidecarParams(t *testing.T) {
	o := &Options{Namespace: "dubbo", TrustDomain: func() string { return "example.org" }}
	cases := []struct {
		params  string
		tlsMode string
		sa      string
	}{
		{"", "disabled", ""},
		{"&security.istio.io/tlsMode=istio&serviceAccount=payment", "istio", "spiffe://example.org/ns/dubbo/sa/payment"},
		{"&security.istio.io/tlsMode=istio&serviceAccount=shop/web", "istio", "spiffe://example.org/ns/shop/sa/web"},
		{"&serviceAccount=spiffe://other.td/ns/a/sa/b", "disabled", "spiffe://other.td/ns/a/sa/b"},
		{"&security.istio.io/tlsMode=disabled&serviceAccount=a/b/c", "disabled", ""}, // not an identity
		{"&security.istio.io/tlsMode=ISTIO", "disabled", ""},                         // the value is Istio's, exactly
	}
	for _, tc := range cases {
		u, err := provider.Parse("dubbo%3A//10.0.0.1%3A20880/com.example.Pay%3Finterface%3Dcom.example.Pay" + url.QueryEscape(tc.params))
		if err != nil {
			t.Fatal(err)
		}
		ep := o.toEndpoint(u, "zk", PortName).ep
		if ep.TLSMode != tc.tlsMode || ep.ServiceAccount != tc.sa {
			t.Errorf("%q: tlsMode %q account %q, want %q %q", tc.params, ep.TLSMode, ep.ServiceAccount, tc.tlsMode, tc.sa)
		}
	}
}
