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

package nacos

import (
	"strings"
	"testing"

	"github.com/nacos-group/nacos-sdk-go/v2/model"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/appdiscovery"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

func TestParseServiceName(t *testing.T) {
	cases := []struct {
		in   string
		want ServiceName
	}{
		{"providers:com.example.GreetService::", ServiceName{Kind: KindInterface, Interface: "com.example.GreetService"}},
		{"providers:com.example.GreetService:1.0.0:blue", ServiceName{Kind: KindInterface, Interface: "com.example.GreetService", Version: "1.0.0", Group: "blue"}},
		{"providers:com.example.GreetService", ServiceName{Kind: KindInterface, Interface: "com.example.GreetService"}},
		{"providers:com.example.GreetService:1.0", ServiceName{Kind: KindInterface, Interface: "com.example.GreetService", Version: "1.0"}},
		{"providers:", ServiceName{Kind: KindOther}},
		{"providers:not an interface::", ServiceName{Kind: KindOther}},
		{"consumers:com.example.GreetService::", ServiceName{Kind: KindOther}},
		{"configurators:com.example.GreetService::", ServiceName{Kind: KindOther}},
		{"routers:com.example.GreetService::", ServiceName{Kind: KindOther}},
		{"greet-provider", ServiceName{Kind: KindApplication}},
		{"", ServiceName{Kind: KindOther}},
		{"a:b", ServiceName{Kind: KindOther}},
	}
	for _, c := range cases {
		if got := ParseServiceName(c.in); got != c.want {
			t.Errorf("ParseServiceName(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

// greetMetadata is what dubbo-go v3.3.2 writes into an interface-level instance
// (tests/framework/nacos/testdata), with Polaris's internal key.
func greetMetadata() map[string]string {
	return map[string]string{
		"anyhost": "true", "application": "greet-provider", "interface": "com.example.GreetService",
		"methods": "SayHello", "protocol": "dubbo", "path": "/com.example.GreetService", "side": "provider",
		"release": "3.3.2", "serialization": "hessian2", "timestamp": "1764520000000", "weight": "0",
		"internal-nacos-service": "providers:com.example.GreetService::",
	}
}

func TestProviderURL(t *testing.T) {
	sn := ParseServiceName("providers:com.example.GreetService:1.0.0:blue")
	cases := []struct {
		name   string
		in     model.Instance
		check  func(t *testing.T, u *provider.URL)
		reason provider.Reason
	}{
		{
			name: "dubbo-go instance",
			in:   model.Instance{Ip: "10.0.0.7", Port: 20880, Weight: 1, Enable: true, Healthy: true, Metadata: greetMetadata()},
			check: func(t *testing.T, u *provider.URL) {
				if u.Protocol != "dubbo" || u.IP != "10.0.0.7" || u.Port != 20880 || u.Interface() != "com.example.GreetService" || u.Path != "com.example.GreetService" {
					t.Errorf("got %+v", u)
				}
				if u.Params["version"] != "1.0.0" || u.Params["group"] != "blue" {
					t.Errorf("version/group from the service name: got %q/%q", u.Params["version"], u.Params["group"])
				}
				if u.Params["weight"] != "0" {
					t.Errorf("the URL's weight parameter must win, got %q", u.Params["weight"])
				}
				for k := range u.Params {
					if strings.HasPrefix(k, "internal-nacos-") {
						t.Errorf("internal key %s kept as a parameter", k)
					}
				}
			},
		},
		{
			name: "triple, no weight parameter: the Nacos weight scaled",
			in: model.Instance{Ip: "10.0.0.7", Port: 50051, Weight: 2.5, Enable: true, Healthy: true,
				Metadata: map[string]string{"protocol": "tri", "interface": "com.example.GreetService"}},
			check: func(t *testing.T, u *provider.URL) {
				if u.Protocol != "tri" || u.Params["weight"] != "250" {
					t.Errorf("got protocol %s weight %q, want tri 250", u.Protocol, u.Params["weight"])
				}
			},
		},
		{
			name: "default Nacos weight adds nothing",
			in:   model.Instance{Ip: "10.0.0.7", Port: 20880, Weight: 1, Metadata: map[string]string{}},
			check: func(t *testing.T, u *provider.URL) {
				if _, ok := u.Params["weight"]; ok || u.Path != "com.example.GreetService" || u.Protocol != "dubbo" {
					t.Errorf("got %+v", u)
				}
			},
		},
		{name: "Nacos weight 0", in: model.Instance{Ip: "10.0.0.7", Port: 20880, Weight: 0, Metadata: map[string]string{}},
			check: func(t *testing.T, u *provider.URL) {
				if u.Params["weight"] != "0" {
					t.Errorf("weight %q, want 0", u.Params["weight"])
				}
			}},
		{name: "hostname", in: model.Instance{Ip: "provider.example.com", Port: 20880, Weight: 1}, reason: provider.ReasonHost},
		{name: "unspecified address", in: model.Instance{Ip: "0.0.0.0", Port: 20880, Weight: 1}, reason: provider.ReasonHost},
		{name: "port 0", in: model.Instance{Ip: "10.0.0.7", Port: 0, Weight: 1}, reason: provider.ReasonPort},
		{name: "port too big", in: model.Instance{Ip: "10.0.0.7", Port: 70000, Weight: 1}, reason: provider.ReasonPort},
		{name: "consumer", in: model.Instance{Ip: "10.0.0.7", Port: 20880, Weight: 1, Metadata: map[string]string{"side": "consumer"}}, reason: provider.ReasonConsumer},
		{name: "huge metadata", in: model.Instance{Ip: "10.0.0.7", Port: 20880, Weight: 1,
			Metadata: map[string]string{"methods": strings.Repeat("m", MaxMetadata)}}, reason: provider.ReasonTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := ProviderURL(sn, &c.in)
			if c.reason != "" {
				pe, ok := err.(*provider.Error)
				if !ok || pe.Reason != c.reason {
					t.Fatalf("got %v, %v; want a %s rejection", u, err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, u)
		})
	}
}

func TestInRotation(t *testing.T) {
	for _, c := range []struct {
		in   model.Instance
		want bool
		why  outReason
	}{
		{model.Instance{Enable: true, Healthy: true}, true, ""},
		{model.Instance{Enable: false, Healthy: true}, false, outDisabled},
		{model.Instance{Enable: true, Healthy: false}, false, outUnhealthy},
	} {
		if ok, why := inRotation(&c.in); ok != c.want || why != c.why {
			t.Errorf("inRotation(%+v) = %v %q, want %v %q", c.in, ok, why, c.want, c.why)
		}
	}
}

func TestAppInstance(t *testing.T) {
	md := map[string]string{
		appdiscovery.KeyRevision:            "2a9b4e1f",
		appdiscovery.KeyStorageType:         "remote",
		appdiscovery.KeyEndpoints:           `[{"port":20880,"protocol":"dubbo"},{"port":50051,"protocol":"tri"}]`,
		"internal-nacos-cluster":            "DEFAULT",
		"dubbo.metadata-service.url-params": `{"port":"20990","protocol":"dubbo"}`,
	}
	in := model.Instance{Ip: "10.0.0.8", Port: 20880, Weight: 1, Enable: true, Healthy: true, Metadata: md}
	if !isDubboInstance(&in) {
		t.Fatal("an instance with a metadata revision is Dubbo's")
	}
	d := AppInstance("greet-provider", &in)
	if d.Err != nil {
		t.Fatal(d.Err)
	}
	if d.Instance.Revision != "2a9b4e1f" || d.Instance.StorageType != appdiscovery.StorageRemote || len(d.Instance.Endpoints) != 2 {
		t.Errorf("got %+v", d.Instance)
	}
	if _, ok := d.Instance.Metadata["internal-nacos-cluster"]; ok {
		t.Error("internal key kept")
	}
	other := AppInstance("greet-provider", &model.Instance{Ip: "10.0.0.8", Port: 20880, Metadata: map[string]string{appdiscovery.KeyRevision: "../x"}})
	if other.Err == nil {
		t.Error("a revision that is not a token must be rejected")
	}
	if isDubboInstance(&model.Instance{Metadata: map[string]string{"preserved.register.source": "SPRING_CLOUD"}}) {
		t.Error("a Spring Cloud instance is not Dubbo's")
	}
	if AppInstance("a", &in).Key != d.Key || listKey([]model.Instance{in, {Ip: "10.0.0.9"}}) != listKey([]model.Instance{{Ip: "10.0.0.9"}, in}) {
		t.Error("keys must not depend on order")
	}
}

func TestParseAddress(t *testing.T) {
	cases := []struct {
		addr                           string
		name, servers, ns, group, user string
		pass, ak                       string
		levels                         string
		rules                          string // the config group; "-": none
		err                            string
	}{
		{addr: "nacos://127.0.0.1:8848", name: "127.0.0.1:8848", servers: "127.0.0.1:8848", ns: "", group: "DEFAULT_GROUP"},
		{addr: "nacos://10.0.0.1?backup=10.0.0.2:8848,10.0.0.3&namespace=dev&group=dubbo&name=east&registry-type=service",
			name: "east", servers: "10.0.0.1:8848,10.0.0.2:8848,10.0.0.3:8848", ns: "dev", group: "dubbo", levels: "application"},
		{addr: "nacos://nacos:s3cret@10.0.0.1:8848?namespace=public", name: "10.0.0.1:8848", servers: "10.0.0.1:8848",
			group: "DEFAULT_GROUP", user: "nacos", pass: "s3cret"},
		{addr: "nacos://10.0.0.1:8848?username=u&password=p&accessKey=AK&secretKey=SK", name: "10.0.0.1:8848",
			servers: "10.0.0.1:8848", group: "DEFAULT_GROUP", user: "u", pass: "p", ak: "AK"},
		{addr: "NACOS://10.0.0.1:8848/org.apache.dubbo.registry.RegistryService?timeout=5000", name: "10.0.0.1:8848",
			servers: "10.0.0.1:8848", group: "DEFAULT_GROUP"},
		{addr: "nacos://10.0.0.1:8848?config-group=governance&config-center=true", name: "10.0.0.1:8848",
			servers: "10.0.0.1:8848", group: "DEFAULT_GROUP", rules: "governance"},
		{addr: "nacos://10.0.0.1:8848?config-center=false&config-group=governance", name: "10.0.0.1:8848",
			servers: "10.0.0.1:8848", group: "DEFAULT_GROUP", rules: "-"},
		{addr: "nacos://10.0.0.1:8848?config-center=no", err: "config-center"},
		{addr: "zookeeper://10.0.0.1:2181", err: "not a nacos:// address"},
		{addr: "nacos://", err: "no server"},
		{addr: "nacos://10.0.0.1:65000", err: "gRPC port"},
		{addr: "nacos://10.0.0.1:8848?accessKey=AK", err: "go together"},
		{addr: "nacos://10.0.0.1:8848?password=p", err: "without a username"},
		{addr: "nacos://10.0.0.1:8848?registry-type=both2", err: "registry level"},
	}
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			cfg, err := ParseAddress(c.addr)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{cfg.Name, strings.Join(cfg.Servers, ","), cfg.Namespace, cfg.Group, cfg.Username, cfg.Password, cfg.AccessKey}
			want := []string{c.name, c.servers, c.ns, c.group, c.user, c.pass, c.ak}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("field %d: got %q, want %q (%+v)", i, got[i], want[i], cfg)
				}
			}
			switch want := c.rules; {
			case want == "" && cfg.ConfigGroup != DefaultConfigGroup:
				t.Errorf("config group %q, want the default %q", cfg.ConfigGroup, DefaultConfigGroup)
			case want == "-" && cfg.ConfigGroup != "":
				t.Errorf("config group %q with config-center=false", cfg.ConfigGroup)
			case want != "" && want != "-" && cfg.ConfigGroup != want:
				t.Errorf("config group %q, want %q", cfg.ConfigGroup, want)
			}
			if c.levels != "" && cfg.Levels.String() != c.levels {
				t.Errorf("levels %v, want %s", cfg.Levels, c.levels)
			}
			if strings.Contains(cfg.Address, "s3cret") || (c.pass != "" && strings.Contains(cfg.Address, "="+c.pass)) {
				t.Errorf("the address shown keeps a secret: %s", cfg.Address)
			}
		})
	}
}
