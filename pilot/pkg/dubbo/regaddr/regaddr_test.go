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

package regaddr

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"nacos://10.0.0.1:8848", "nacos://10.0.0.1:8848"},
		{"nacos://u:s3cret@10.0.0.1:8848?namespace=dev", "nacos://u:REDACTED@10.0.0.1:8848?namespace=dev"},
		{"nacos://u:s3c?ret@10.0.0.1:8848?namespace=dev", "nacos://u:REDACTED@10.0.0.1:8848?namespace=dev"},
		{"nacos://10.0.0.1:8848?username=u&password=s3cret&accessKey=AK&secretKey=SK",
			"nacos://10.0.0.1:8848?username=u&password=REDACTED&accessKey=REDACTED&secretKey=REDACTED"},
		{"u:s3cret@127.0.0.1:2181", "u:REDACTED@127.0.0.1:2181"},
		{"zookeeper://10.0.0.1:2181/org.apache.dubbo.registry.RegistryService?x=a@b", "zookeeper://10.0.0.1:2181/org.apache.dubbo.registry.RegistryService?x=a@b"},
	} {
		got := Redact(c.in)
		if got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
		for _, secret := range []string{"s3cret", "s3c?ret", "=AK", "=SK"} {
			if strings.Contains(got, secret) {
				t.Errorf("Redact(%q) keeps %q", c.in, secret)
			}
		}
	}
}

func TestParse(t *testing.T) {
	a, err := Parse("nacos://u:p%40ss@10.0.0.1,10.0.0.2:9000?backup=10.0.0.3&registry-type=service", "8848")
	if err != nil {
		t.Fatal(err)
	}
	if a.Scheme != "nacos" || a.User != "u" || a.Password != "p@ss" || strings.Join(a.Servers, ",") != "10.0.0.1:8848,10.0.0.2:9000,10.0.0.3:8848" || a.Levels.String() != "application" {
		t.Errorf("got %+v", a)
	}
	for _, bad := range []string{"nacos://", "10.0.0.1", "nacos://h:0", "nacos://h?registry-type=x", "nacos://h?%zz"} {
		if _, err := Parse(bad, "8848"); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
