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
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// instanceBody is a ZooKeeper instance node as dubbo-go v3.3.2 writes it
// (docs/registry.md), with the given metadata overrides ("" deletes a key).
func instanceBody(app, ip string, port int, md map[string]string) []byte {
	meta := map[string]string{
		KeyEndpoints:                         `[{"port":20880,"protocol":"dubbo"},{"port":50051,"protocol":"tri"}]`,
		KeyMetadataService:                   `{"group":"` + app + `","port":"20990","protocol":"dubbo","release":"3.3.2","serialization":"hessian2","version":"1.0.0"}`,
		KeyRevision:                          "bed905b6",
		KeyStorageType:                       "local",
		"dubbo.subscribed-services.revision": "0",
		"meta-v":                             "1.0.0",
		"registry.id":                        "reg",
	}
	for k, v := range md {
		if v == "" {
			delete(meta, k)
		} else {
			meta[k] = v
		}
	}
	id := ip + ":" + itoa(port)
	b, _ := json.Marshal(map[string]any{
		"name": app, "id": id, "address": ip, "port": port,
		"payload": map[string]any{
			"@class": "org.apache.dubbo.registry.zookeeper.ZookeeperInstance", "id": id, "name": app, "metadata": meta,
		},
	})
	return b
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestParseCuratorInstance(t *testing.T) {
	cases := []struct {
		name   string
		body   []byte
		reason Reason
		check  func(*testing.T, *Instance)
	}{
		{name: "dubbo-go v3.3.2 body", body: instanceBody("greet", "127.0.0.1", 20880, nil), check: func(t *testing.T, in *Instance) {
			if in.App != "greet" || in.Address != "127.0.0.1" || in.Port != 20880 || in.Revision != "bed905b6" || in.StorageType != StorageLocal {
				t.Fatalf("decoded %+v", in)
			}
			if len(in.Endpoints) != 2 || in.Endpoints[1] != (Endpoint{Port: 50051, Protocol: "tri"}) {
				t.Fatalf("endpoints %+v", in.Endpoints)
			}
			if in.MetadataService["port"] != "20990" || in.MetadataService["group"] != "greet" {
				t.Fatalf("metadata service %+v", in.MetadataService)
			}
		}},
		{name: "remote storage", body: instanceBody("greet", "127.0.0.1", 20880, map[string]string{KeyStorageType: "remote"}), check: func(t *testing.T, in *Instance) {
			if in.StorageType != StorageRemote {
				t.Fatalf("storage %q", in.StorageType)
			}
		}},
		{name: "old nested metadata-service params", body: instanceBody("greet", "10.0.0.1", 20880, map[string]string{
			KeyMetadataService: `{"dubbo":{"version":"1.0.0","port":"20881"}}`}), check: func(t *testing.T, in *Instance) {
			if in.MetadataService["protocol"] != "dubbo" || in.MetadataService["port"] != "20881" {
				t.Fatalf("metadata service %+v", in.MetadataService)
			}
		}},
		{name: "no endpoints", body: instanceBody("greet", "10.0.0.1", 20880, map[string]string{KeyEndpoints: ""}), check: func(t *testing.T, in *Instance) {
			if in.Endpoints != nil {
				t.Fatalf("endpoints %+v", in.Endpoints)
			}
		}},
		{name: "not JSON", body: []byte("{junk"), reason: ReasonInstanceJSON},
		{name: "JSON array", body: []byte(`[1,2]`), reason: ReasonInstanceJSON},
		{name: "no port", body: []byte(`{"name":"greet","address":"10.0.0.1","payload":{"metadata":{}}}`), reason: ReasonInstanceJSON},
		{name: "other app", body: instanceBody("other", "10.0.0.1", 20880, nil), reason: ReasonInstanceJSON},
		{name: "hostname address", body: instanceBody("greet", "provider.local", 20880, nil), reason: ReasonInstanceAddress},
		{name: "unspecified address", body: instanceBody("greet", "0.0.0.0", 20880, nil), reason: ReasonInstanceAddress},
		{name: "port 0", body: instanceBody("greet", "10.0.0.1", 0, nil), reason: ReasonInstanceAddress},
		{name: "port 70000", body: instanceBody("greet", "10.0.0.1", 70000, nil), reason: ReasonInstanceAddress},
		{name: "no revision", body: instanceBody("greet", "10.0.0.1", 20880, map[string]string{KeyRevision: ""}), reason: ReasonNoRevision},
		{name: "revision with a path", body: instanceBody("greet", "10.0.0.1", 20880, map[string]string{KeyRevision: "../../secret"}), reason: ReasonNoRevision},
		{name: "revision ..", body: instanceBody("greet", "10.0.0.1", 20880, map[string]string{KeyRevision: ".."}), reason: ReasonNoRevision},
		{name: "endpoints not JSON", body: instanceBody("greet", "10.0.0.1", 20880, map[string]string{KeyEndpoints: "20880"}), reason: ReasonEndpoints},
		{name: "endpoints bad port", body: instanceBody("greet", "10.0.0.1", 20880, map[string]string{KeyEndpoints: `[{"port":0,"protocol":"dubbo"}]`}), reason: ReasonEndpoints},
		{name: "endpoints no protocol", body: instanceBody("greet", "10.0.0.1", 20880, map[string]string{KeyEndpoints: `[{"port":1}]`}), reason: ReasonEndpoints},
		{name: "endpoints empty", body: instanceBody("greet", "10.0.0.1", 20880, map[string]string{KeyEndpoints: `[]`}), reason: ReasonEndpoints},
		{name: "metadata service not JSON", body: instanceBody("greet", "10.0.0.1", 20880, map[string]string{KeyMetadataService: "x"}), reason: ReasonMetadataService},
		{name: "huge", body: []byte(`{"name":"greet","pad":"` + strings.Repeat("x", MaxInstanceBody) + `"}`), reason: ReasonInstanceJSON},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := ParseCuratorInstance("greet", tc.body)
			if tc.reason != "" {
				if err == nil {
					t.Fatalf("accepted: %+v", in)
				}
				if got := ReasonOf(err); got != string(tc.reason) {
					t.Fatalf("reason %s, want %s (%v)", got, tc.reason, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, in)
		})
	}
}

// metadataJSON is remote metadata as dubbo-go v3.3.2 writes it at /dubbo/<app>/<revision>.
const metadataJSON = `{"app":"greet","revision":"bed905b6","services":{
 "com.example.GreetService:dubbo":{"name":"com.example.GreetService","protocol":"dubbo","port":20880,"path":"com.example.GreetService",
   "params":{"application":"greet","methods":"SayHello,sayHello","serialization":"hessian2","weight":"0","release":"3.3.2"}},
 "com.example.GreetService:tri":{"name":"com.example.GreetService","protocol":"tri","port":50051,"path":"com.example.GreetService",
   "params":{"application":"greet","methods":"SayHello,sayHello","serialization":"hessian2","weight":"0"}},
 "com.example.Other:1.0:g1:dubbo":{"name":"com.example.Other","group":"g1","version":"1.0","protocol":"dubbo","port":20880,
   "params":{"weight":"30"}},
 "com.example.Rest:rest":{"name":"com.example.Rest","protocol":"rest","port":8080},
 "bad:dubbo":{"name":"not an interface","protocol":"dubbo"}}}`

func TestURLs(t *testing.T) {
	m, err := ParseMetadataJSON("greet", "bed905b6", []byte(metadataJSON))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ParseCuratorInstance("greet", instanceBody("greet", "10.0.0.1", 20880, nil))
	b, _ := ParseCuratorInstance("greet", instanceBody("greet", "10.0.0.1", 50051, nil))
	ra, rb := URLs(a, m), URLs(b, m)
	// The two nodes of one process (one per protocol port) are one provider.
	if !slices.Equal(slices.Sorted(maps.Keys(ra.URLs)), slices.Sorted(maps.Keys(rb.URLs))) {
		t.Fatalf("the instance's two nodes give different providers:\n%v\n%v", slices.Sorted(maps.Keys(ra.URLs)), slices.Sorted(maps.Keys(rb.URLs)))
	}
	got := map[string]string{}
	for _, u := range ra.URLs {
		got[u.Protocol+" "+u.Params["interface"]] = u.IP + ":" + itoa(int(u.Port)) + " v=" + u.Params["version"] + " g=" + u.Params["group"] +
			" w=" + u.Params["weight"] + " app=" + u.Params["application"]
	}
	want := map[string]string{
		"dubbo com.example.GreetService": "10.0.0.1:20880 v= g= w= app=greet",
		"tri com.example.GreetService":   "10.0.0.1:50051 v= g= w= app=greet",
		"dubbo com.example.Other":        "10.0.0.1:20880 v=1.0 g=g1 w=30 app=greet",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("URLs\n got %v\nwant %v", got, want)
	}
	// rest: no port of that protocol; a bad name: skipped with a reason.
	if len(ra.Skipped) != 2 {
		t.Fatalf("skipped %v, want the rest service and the bad name", ra.Skipped)
	}

	// Without dubbo.endpoints, the node's own port serves the services the metadata
	// puts on it, never a guessed one.
	c, _ := ParseCuratorInstance("greet", instanceBody("greet", "10.0.0.2", 50051, map[string]string{KeyEndpoints: ""}))
	for _, u := range URLs(c, m).URLs {
		if u.Protocol != "tri" || u.Port != 50051 {
			t.Fatalf("instance without endpoints on 50051 serves %s:%d", u.Protocol, u.Port)
		}
	}
}

func TestParseMetadataJSON(t *testing.T) {
	cases := []struct {
		name, app, rev, body string
		ok                   bool
	}{
		{"real", "greet", "bed905b6", metadataJSON, true},
		{"garbage", "greet", "r", "\x00\x01garbage", false},
		{"array", "greet", "r", "[]", false},
		{"other app", "other", "bed905b6", metadataJSON, false},
		{"other revision", "greet", "r2", metadataJSON, false},
		{"null service", "greet", "r", `{"services":{"a":null}}`, false},
		{"huge", "greet", "r", `{"app":"` + strings.Repeat("x", MaxMetadataBody) + `"}`, false},
		{"no services", "greet", "r", `{"app":"greet"}`, true},
		{"empty object", "greet", "r", `{}`, false},
		{"unrelated object", "greet", "r", `{"x":1}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMetadataJSON(tc.app, tc.rev, []byte(tc.body))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && ReasonOf(err) != string(ReasonMetadataBody) {
				t.Fatalf("reason %s", ReasonOf(err))
			}
		})
	}
}

func FuzzParseCuratorInstance(f *testing.F) {
	f.Add(instanceBody("greet", "127.0.0.1", 20880, nil))
	f.Add([]byte(`{"port":1,"address":"::1","payload":{"metadata":{"dubbo.metadata.revision":"x","dubbo.endpoints":"[{}]"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := ParseCuratorInstance("greet", body)
		if err == nil && (in.Port == 0 || in.Address == "" || in.Revision == "") {
			t.Fatalf("accepted an incomplete instance: %+v", in)
		}
	})
}

func FuzzParseMetadataJSON(f *testing.F) {
	f.Add([]byte(metadataJSON))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseMetadataJSON("greet", "bed905b6", body)
		if err != nil {
			return
		}
		in, _ := ParseCuratorInstance("greet", instanceBody("greet", "127.0.0.1", 20880, nil))
		for _, u := range URLs(in, m).URLs {
			if u.Port == 0 || u.IP != "127.0.0.1" || u.Path == "" {
				t.Fatalf("bad URL %+v", u)
			}
		}
	})
}
