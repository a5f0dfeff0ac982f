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

package provider

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// A real provider node name, as Dubbo 2.7.15 registers it under /dubbo/<interface>/providers.
const realNode = "dubbo%3A%2F%2F10.0.0.12%3A20880%2Fcom.example.DemoService%3Fanyhost%3Dtrue%26application%3Ddemo-provider" +
	"%26cluster%3Dfailover%26deprecated%3Dfalse%26dubbo%3D2.0.2%26dynamic%3Dtrue%26generic%3Dfalse%26group%3Dg1" +
	"%26interface%3Dcom.example.DemoService%26loadbalance%3Drandom%26methods%3DsayHello%2CsayHelloAsync%26pid%3D30886" +
	"%26release%3D2.7.15%26retries%3D2%26side%3Dprovider%26timeout%3D3000%26timestamp%3D1655626721084%26version%3D1.0.0%26weight%3D100"

func TestParseRealNode(t *testing.T) {
	u, err := Parse(realNode)
	if err != nil {
		t.Fatal(err)
	}
	if u.Protocol != "dubbo" || u.IP != "10.0.0.12" || u.Port != 20880 || u.Path != "com.example.DemoService" {
		t.Fatalf("got %+v", u)
	}
	if u.Interface() != "com.example.DemoService" {
		t.Fatalf("interface %q", u.Interface())
	}
	for k, v := range map[string]string{"group": "g1", "version": "1.0.0", "weight": "100", "methods": "sayHello,sayHelloAsync", "side": "provider"} {
		if u.Params[k] != v {
			t.Errorf("param %s = %q, want %q", k, u.Params[k], v)
		}
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		name   string
		node   string
		reason Reason // "" means accepted
		check  func(*URL) string
	}{
		{"slime minimal form", "dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.example.service.ServiceA%3Fapplication%3Dservice-a%26group%3Dg" +
			"%26interface%3Dcom.example.service.ServiceA%26methods%3DsayHelllo%26side%3Dprovider%26version%3D0.0.1", "", nil},
		{"interface from path only", "dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.a.B", "", func(u *URL) string {
			if u.Interface() != "com.a.B" {
				return "interface " + u.Interface()
			}
			return ""
		}},
		{"plus is a space, in values", "dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.a.B%3Fk%3Da+b", "", func(u *URL) string {
			if u.Params["k"] != "a b" {
				return "k=" + u.Params["k"]
			}
			return ""
		}},
		{"value holding '='", "dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.a.B%3Frule%3Da%3Db", "", func(u *URL) string {
			if u.Params["rule"] != "a=b" {
				return "rule=" + u.Params["rule"]
			}
			return ""
		}},
		{"ipv6", "dubbo%3A%2F%2F%5Bfd00%3A%3A1%5D%3A20880%2Fcom.a.B", "", func(u *URL) string {
			if u.IP != "fd00::1" || u.Port != 20880 {
				return u.IP
			}
			return ""
		}},
		{"credentials before host", "dubbo%3A%2F%2Fu%3Ap%4010.0.0.1%3A20880%2Fcom.a.B", "", nil},
		{"uppercase scheme", "DUBBO%3A%2F%2F10.0.0.1%3A20880%2Fcom.a.B", "", func(u *URL) string {
			if u.Protocol != "dubbo" {
				return u.Protocol
			}
			return ""
		}},
		{"other protocols parse (callers filter)", "tri%3A%2F%2F10.0.0.1%3A50051%2Fcom.a.B", "", nil},
		{"not a url", "hello", ReasonNotURL, nil},
		{"empty", "", ReasonNotURL, nil},
		{"bad scheme chars", "du%20bo%3A%2F%2F10.0.0.1%3A1%2Fcom.a.B", ReasonNotURL, nil},
		{"missing port", "dubbo%3A%2F%2F10.0.0.1%2Fcom.a.B", ReasonPort, nil},
		{"non-numeric port", "dubbo%3A%2F%2F10.0.0.1%3Axx%2Fcom.a.B", ReasonPort, nil},
		{"port 0", "dubbo%3A%2F%2F10.0.0.1%3A0%2Fcom.a.B", ReasonPort, nil},
		{"port 65536", "dubbo%3A%2F%2F10.0.0.1%3A65536%2Fcom.a.B", ReasonPort, nil},
		{"negative port", "dubbo%3A%2F%2F10.0.0.1%3A-1%2Fcom.a.B", ReasonPort, nil},
		{"hostname", "dubbo%3A%2F%2Fprovider.local%3A20880%2Fcom.a.B", ReasonHost, nil},
		{"unspecified address", "dubbo%3A%2F%2F0.0.0.0%3A20880%2Fcom.a.B", ReasonHost, nil},
		{"no interface", "dubbo%3A%2F%2F10.0.0.1%3A20880%2F", ReasonInterface, nil},
		{"interface with space", "dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.a+B", ReasonInterface, nil},
		{"interface with empty segment", "dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom..B", ReasonInterface, nil},
		{"bad escape", "dubbo%3A%2F%2F10.0.0.1%3A2%zz", ReasonEncoding, nil},
		{"control character", "dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.a.B%3Fa%3D%01", ReasonEncoding, nil},
		{"consumer side", "dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.a.B%3Fside%3Dconsumer", ReasonConsumer, nil},
		{"consumers category", "consumer%3A%2F%2F10.0.0.1%3A1%2Fcom.a.B%3Fcategory%3Dconsumers", ReasonConsumer, nil},
		{"empty parameter name", "dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.a.B%3F%3Dv", ReasonParameter, nil},
		{"too long", strings.Repeat("a", MaxNodeNameLength+1), ReasonTooLong, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := Parse(c.node)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if c.check != nil {
					if msg := c.check(u); msg != "" {
						t.Fatal(msg)
					}
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %+v, %v; want rejection %s", u, err, c.reason)
			}
			if e.Reason != c.reason {
				t.Fatalf("reason %s (%v), want %s", e.Reason, err, c.reason)
			}
		})
	}
}

// FuzzParse: the decoder never panics, and what it accepts is a usable endpoint.
func FuzzParse(f *testing.F) {
	f.Add(realNode)
	f.Add("dubbo%3A%2F%2F%5Bfd00%3A%3A1%5D%3A20880%2Fcom.a.B")
	f.Add("dubbo://10.0.0.1:20880/com.a.B?x=%")
	f.Add("%%%%")
	f.Add("tri%3A%2F%2F10.0.0.1%3A50051%2Fcom.a.B%3Fside%3Dprovider")
	f.Fuzz(func(t *testing.T, node string) {
		u, err := Parse(node)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if u.Port == 0 || u.Port > 65535 || u.IP == "" || !ValidInterface(u.Interface()) {
			t.Fatalf("accepted an unusable provider: %+v", u)
		}
		if !utf8.ValidString(u.Protocol) || u.Protocol == "" {
			t.Fatalf("bad protocol %q", u.Protocol)
		}
	})
}

// Parsed URLs keep copies of their strings shared between providers, never substrings
// of the decoded node name: a substring keeps the whole decoded URL alive (at 100,000
// providers, ~30 MiB beside the node names and the parameter maps).
func TestParseSharesStrings(t *testing.T) {
	const methods = "sayHello%2CsayHelloAsync%2CsayGoodbye"
	a, err := Parse("dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.a.B%3Fapplication%3Ddemo%26methods%3D" + methods + "%26pid%3D1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("dubbo%3A%2F%2F10.0.0.2%3A20881%2Fcom.a.B%3Fapplication%3Ddemo%26methods%3D" + methods + "%26pid%3D2")
	if err != nil {
		t.Fatal(err)
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	for _, k := range []string{"application", "methods"} {
		if !same(a.Params[k], b.Params[k]) {
			t.Errorf("param %s: two copies of %q", k, a.Params[k])
		}
	}
	if !same(a.Path, b.Path) || !same(a.Protocol, b.Protocol) {
		t.Errorf("path or protocol not shared")
	}
	for k := range a.Params {
		var bk string
		for k2 := range b.Params {
			if k2 == k {
				bk = k2
			}
		}
		if !same(k, bk) {
			t.Errorf("parameter name %s: two copies", k)
		}
	}
}
