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

package appdiscovery

import (
	"maps"
	"os"
	"slices"
	"testing"
)

// Real nodes written by dubbo-go v3.3.2 providers (testdata/README.md).
func TestRealDubbo3Registrations(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dubboNode, err := ParseCuratorInstance("greet-service-remote", read("instance-remote.json"))
	if err != nil {
		t.Fatal(err)
	}
	triNode, err := ParseCuratorInstance("greet-service-remote", read("instance-remote-tri.json"))
	if err != nil {
		t.Fatal(err)
	}
	if dubboNode.StorageType != StorageRemote || dubboNode.Revision != triNode.Revision || dubboNode.Port == triNode.Port {
		t.Fatalf("instance nodes: %+v / %+v", dubboNode, triNode)
	}
	m, err := ParseMetadataJSON("greet-service-remote", dubboNode.Revision, read("metadata-remote.json"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := URLs(dubboNode, m), URLs(triNode, m)
	if len(a.Skipped) > 0 || !slices.Equal(slices.Sorted(maps.Keys(a.URLs)), slices.Sorted(maps.Keys(b.URLs))) {
		t.Fatalf("the two nodes of one process differ: %v (skipped %v) / %v", slices.Sorted(maps.Keys(a.URLs)), a.Skipped, slices.Sorted(maps.Keys(b.URLs)))
	}
	got := map[string]int{}
	for _, u := range a.URLs {
		if u.Params["version"] != "1.0.0" || u.Params["group"] != "blue" || u.Params["weight"] != "50" || u.IP != "127.0.0.1" {
			t.Fatalf("URL %+v", u)
		}
		got[u.Protocol+" "+u.Params["interface"]]++
	}
	want := map[string]int{"dubbo com.example.GreetService": 1, "tri com.example.GreetService": 1,
		"dubbo com.example.EchoService": 1, "tri com.example.EchoService": 1}
	if !maps.Equal(got, want) {
		t.Fatalf("URLs %v, want %v", got, want)
	}
	// Local metadata: the node names its MetadataService.
	local, err := ParseCuratorInstance("greet-service-local", read("instance-local.json"))
	if err != nil {
		t.Fatal(err)
	}
	if local.StorageType != StorageLocal || local.MetadataService["port"] == "" || local.MetadataService["group"] != "greet-service-local" {
		t.Fatalf("local instance %+v", local)
	}
}
