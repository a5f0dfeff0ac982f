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

package zookeeper

import (
	"strings"
	"testing"
	"time"
)

func TestParseAddress(t *testing.T) {
	cases := []struct {
		addr    string
		name    string
		servers string
		root    string
		session time.Duration
		err     string
	}{
		{addr: "zookeeper://127.0.0.1:2181", name: "127.0.0.1:2181", servers: "127.0.0.1:2181", root: "/dubbo", session: 30 * time.Second},
		{addr: "zookeeper://10.0.0.1:2181?backup=10.0.0.2:2181,10.0.0.3:2181", name: "10.0.0.1:2181",
			servers: "10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181", root: "/dubbo", session: 30 * time.Second},
		{addr: "zookeeper://10.0.0.1:2181,10.0.0.2?root=/mesh/dubbo/&name=east&session-timeout=45s", name: "east",
			servers: "10.0.0.1:2181,10.0.0.2:2181", root: "/mesh/dubbo", session: 45 * time.Second},
		{addr: "ZOOKEEPER://zk.example.com/org.apache.dubbo.registry.RegistryService?group=prod&session=60000&timeout=5000",
			name: "zk.example.com:2181", servers: "zk.example.com:2181", root: "/prod", session: time.Minute},
		{addr: "zookeeper://[fd00::1]:2181?backup=10.0.0.1:2181,10.0.0.1:2181", name: "[fd00::1]:2181",
			servers: "[fd00::1]:2181,10.0.0.1:2181", root: "/dubbo", session: 30 * time.Second},
		{addr: "nacos://10.0.0.1:8848", err: "not a zookeeper:// address"},
		{addr: "10.0.0.1:2181", err: "want zookeeper://"},
		{addr: "http://10.0.0.1", err: "unknown registry scheme"},
		{addr: "zookeeper://", err: "no server"},
		{addr: "zookeeper://u:secret@10.0.0.1:2181", err: "credentials in a zookeeper:// address"},
		{addr: "zookeeper://10.0.0.1:99999", err: "not in 1..65535"},
		{addr: "zookeeper://10.0.0.1:2181?session-timeout=abc", err: "neither a duration"},
		{addr: "zookeeper://10.0.0.1:2181?session-timeout=100ms", err: "outside 1s..10m"},
		{addr: "zookeeper://10.0.0.1:2181?root=//x", err: "bad root"},
	}
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			got, err := ParseAddress(c.addr)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != c.name || strings.Join(got.Servers, ",") != c.servers || got.Root != c.root || got.SessionTimeout != c.session {
				t.Fatalf("got %+v", got)
			}
		})
	}
}
