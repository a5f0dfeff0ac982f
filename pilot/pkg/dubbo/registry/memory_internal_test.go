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
	"fmt"
	"reflect"
	"testing"
	"time"

	"istio.io/istio/pilot/pkg/model"
)

// Endpoints with the same labels share one labels map (istiod never writes an endpoint's
// labels): a map per endpoint was ~300 bytes of every provider.
func TestEndpointsShareLabels(t *testing.T) {
	c, rec, _, _ := testController(t, Options{})
	const other = "com.example.OtherService"
	c.SetProviders("zk", testIface, []string{
		providerNode("10.0.0.1", 20880, testIface, "application=demo", "version=1.0.0"),
		providerNode("10.0.0.2", 20880, testIface, "application=demo", "version=1.0.0"),
		providerNode("10.0.0.3", 20880, testIface, "application=demo", "version=2.0.0"),
	}, time.Now())
	c.SetProviders("zk", other, []string{providerNode("10.0.0.4", 20880, other, "application=demo", "version=1.0.0")}, time.Now())
	eps := rec.Endpoints[Hostname(testIface, "")]
	eps = append(eps, rec.Endpoints[Hostname(other, "")]...)
	if len(eps) != 4 {
		t.Fatalf("%d endpoints, want 4", len(eps))
	}
	byVersion := map[string][]*model.IstioEndpoint{}
	for _, ep := range eps {
		byVersion[ep.Labels["version"]] = append(byVersion[ep.Labels["version"]], ep)
	}
	ptr := func(ep *model.IstioEndpoint) uintptr { return reflect.ValueOf(ep.Labels).Pointer() }
	v1 := byVersion["1.0.0"]
	if len(v1) != 3 || ptr(v1[0]) != ptr(v1[1]) || ptr(v1[0]) != ptr(v1[2]) {
		t.Errorf("version 1.0.0 endpoints (3 expected) do not share their labels map: %v", v1)
	}
	v2 := byVersion["2.0.0"]
	if len(v2) != 1 || ptr(v2[0]) == ptr(v1[0]) {
		t.Errorf("version 2.0.0 endpoint shares the map of other labels")
	}
	if want := map[string]string{"registry": "zk", "application": "demo", "version": "2.0.0"}; !reflect.DeepEqual(map[string]string(v2[0].Labels), want) {
		t.Errorf("labels %v, want %v", v2[0].Labels, want)
	}
}

// The proxy targets index (IP -> targets per service) keeps services at one IP sorted by
// hostname, and drops only the service that left.
func TestProxyTargetsOfSharedIP(t *testing.T) {
	c, _, _, _ := testController(t, Options{})
	ifaces := []string{"com.example.C", "com.example.A", "com.example.B"}
	for i, iface := range ifaces {
		c.SetProviders("zk", iface, []string{
			providerNode("10.0.0.1", 20880+i, iface),
			providerNode("10.0.0.1", 30880+i, iface),
			providerNode("10.0.0.2", 20880, iface),
		}, time.Now())
	}
	targets := func() []string {
		var out []string
		for _, st := range c.GetProxyServiceTargets(&model.Proxy{IPAddresses: []string{"10.0.0.1"}}) {
			out = append(out, fmt.Sprintf("%s:%d", st.Service.Hostname, st.Port.TargetPort))
		}
		return out
	}
	want := []string{"com.example.a:20881", "com.example.a:30881", "com.example.b:20882", "com.example.b:30882", "com.example.c:20880", "com.example.c:30880"}
	if got := targets(); !reflect.DeepEqual(got, want) {
		t.Fatalf("targets %v, want %v", got, want)
	}
	c.SetProviders("zk", "com.example.B", []string{providerNode("10.0.0.2", 20880, "com.example.B")}, time.Now())
	want = []string{"com.example.a:20881", "com.example.a:30881", "com.example.c:20880", "com.example.c:30880"}
	if got := targets(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after B left 10.0.0.1: targets %v, want %v", got, want)
	}
	for _, iface := range ifaces {
		c.RemoveInterface("zk", iface, time.Now())
	}
	if got := targets(); len(got) != 0 {
		t.Fatalf("targets %v after every interface left", got)
	}
	if n := len(c.store.targetsByIP); n != 0 {
		t.Fatalf("%d IPs left in the targets index", n)
	}
}
