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

package mosn

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
	"weak"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"istio.io/istio/pilot/pkg/model"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/protocol"
	"istio.io/istio/pkg/config/schema/kind"
	"istio.io/istio/pkg/test/util/retry"
	"istio.io/istio/pkg/util/sets"
	"istio.io/istio/pkg/wellknown"
)

// TestPushMemo: entries live for one push context; an older push neither reads the newer
// one's entries nor replaces them; the limit bounds one push.
func TestPushMemo(t *testing.T) {
	p1 := &model.PushContext{PushVersion: "2026-12-01T00:00:00Z/1"}
	p2 := &model.PushContext{PushVersion: "2026-12-01T00:00:01Z/2"}
	in, out := &discovery.Resource{Name: "c", Resource: &anypb.Any{Value: []byte("in")}}, &discovery.Resource{Name: "c"}
	k := pushMemoKey{name: "c", variant: "sds"}
	var m pushMemo
	m.fit(1) // limit pushMemoScopes
	m.put(p1, in, k, out)
	if got, ok := m.get(p1, in, k); !ok || got != out {
		t.Fatal("an entry of the push was not found")
	}
	if _, ok := m.get(p1, in, pushMemoKey{name: "c", variant: "other"}); ok {
		t.Fatal("the variant is not part of the key")
	}
	other := &discovery.Resource{Name: "c", Resource: &anypb.Any{Value: []byte("in")}}
	if _, ok := m.get(p1, other, k); ok {
		t.Fatal("another object with the same bytes found the entry")
	}
	if _, ok := m.get(p2, in, k); ok {
		t.Fatal("an entry of the previous push was returned for a new push")
	}
	m.put(p2, in, k, in) // unchanged by adaptation: the index keeps no reference to it
	if v := m.scopes[scopeVariant{nil, "sds"}]["c"]; v.res != nil {
		t.Fatal("the index holds the upstream object as a value")
	}
	m.put(p1, in, k, out) // a proxy still generating from the older push
	if got, ok := m.get(p2, in, k); !ok || got != in {
		t.Fatal("an older push replaced the newer push's entries")
	}
	// Proxies of several scopes interleave: each keeps its entries while they fit.
	scopes := []*model.SidecarScope{{}, {}, {}}
	rs := map[*model.SidecarScope]*discovery.Resource{}
	for round := 0; round < 2; round++ {
		for _, sc := range scopes {
			if round == 0 {
				rs[sc] = &discovery.Resource{Name: "c", Resource: &anypb.Any{}}
				m.put(p2, rs[sc], pushMemoKey{name: "c", scope: sc}, rs[sc])
			} else if _, ok := m.get(p2, rs[sc], pushMemoKey{name: "c", scope: sc}); !ok {
				t.Fatal("interleaved scopes evicted each other")
			}
		}
	}
	for i := 0; i < 3*pushMemoScopes; i++ {
		m.put(p2, &discovery.Resource{Resource: &anypb.Any{}}, pushMemoKey{name: fmt.Sprint(i)}, out)
		total := 0
		for _, sm := range m.scopes {
			total += len(sm)
		}
		if total != m.n || m.n > m.limit {
			t.Fatalf("%d entries counted %d, limit %d", total, m.n, m.limit)
		}
	}
}

// TestMemoKeepsNoUpstreamObject: the by-object indexes must not keep upstream's objects
// alive: upstream builds new ones per proxy when its cache misses (connections racing to
// fill it), and holding them cost 25 KiB per connection in the 1,000-sidecar fan-out.
func TestMemoKeepsNoUpstreamObject(t *testing.T) {
	m := newMemo(16)
	var pm pushMemo
	pm.fit(4)
	push := &model.PushContext{PushVersion: "v/1"}
	adapted := &anypb.Any{Value: []byte("adapted")}
	in := &anypb.Any{Value: []byte("upstream")}
	w := weak.Make(in)
	if _, err := m.get(in, "c", func() (*anypb.Any, error) { return adapted, nil }); err != nil {
		t.Fatal(err)
	}
	r := &discovery.Resource{Name: "c", Resource: in}
	pm.put(push, r, pushMemoKey{name: "c"}, r) // unchanged by adaptation
	in, r = nil, nil
	runtime.GC()
	runtime.GC()
	if w.Value() != nil {
		t.Fatal("an index keeps the upstream object alive")
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(&pm)
}

// TestClusterTLSFollowsEndpointsAcrossPushes: upstream's CDS cache returns the same
// cluster object across pushes when only the endpoints changed (they are not in an EDS
// cluster), but the MOSN form reads the endpoints (auto mTLS becomes TLS when they have
// sidecars). The per-push memo (keyed by push context and scope besides the object) must
// not carry the old decision into the next push, and
// within a push it must hand out what it built.
func TestClusterTLSFollowsEndpointsAcrossPushes(t *testing.T) {
	f := newFakeMOSN(t, nil)
	// A push of the fake server's own (the endpoint update's) can still clear upstream's
	// cache between the two pushes; then the attempt cannot show the memo's key and is
	// made again on a new service.
	for attempt := 0; attempt < 5; attempt++ {
		if clusterTLSAcrossPushes(t, f, fmt.Sprintf("com.example.tlsservice%d", attempt)) {
			return
		}
		t.Logf("attempt %d: upstream rebuilt the cluster between the pushes; again", attempt)
	}
	t.Fatal("upstream never kept its cached cluster across the two pushes: the memo's push key is untested")
}

// clusterTLSAcrossPushes runs one attempt; false: upstream did not keep its cached
// cluster, so the attempt shows nothing.
func clusterTLSAcrossPushes(t *testing.T, f *fakeMOSN, h string) bool {
	t.Helper()
	f.s.MemRegistry.AddService(&model.Service{
		Hostname:   host.Name(h),
		Ports:      model.PortList{{Name: "dubbo", Port: 20880, Protocol: protocol.Dubbo}},
		Resolution: model.ClientSideLB,
		Attributes: model.ServiceAttributes{Name: "tlsservice", Namespace: "default"},
	})
	setEndpoints := func(tlsMode string) {
		f.s.MemRegistry.SetEndpoints(h, "default", []*model.IstioEndpoint{{
			Addresses: []string{"10.9.0.1"}, EndpointPort: 20880, ServicePortName: "dubbo",
			ServiceAccount: "spiffe://cluster.local/ns/default/sa/provider", TLSMode: tlsMode,
		}})
	}
	setEndpoints(model.DisabledTLSModeLabel)
	name := model.BuildSubsetKey(model.TrafficDirectionOutbound, "", host.Name(h), 20880)
	// gen generates CDS for the proxy in the current push context, as a push does (with a
	// start time, so upstream caches its clusters), and returns upstream's object and ours.
	gen := func(push *model.PushContext) (up, ours *anypb.Any) {
		t.Helper()
		req := &model.PushRequest{Push: push, Forced: true, Start: time.Now()}
		w := &model.WatchedResource{TypeUrl: v3.ClusterType, ResourceNames: sets.New[string]()}
		upRes, _, err := f.s.Discovery.Generators[v3.ClusterType].Generate(f.proxy, w, req)
		if err != nil {
			t.Fatal(err)
		}
		res, _, err := f.s.Discovery.Generators[GeneratorName+"/"+v3.ClusterType].Generate(f.proxy, w, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range upRes {
			if r.Name == name {
				up = r.Resource
			}
		}
		for _, r := range res {
			if r.Name == name {
				ours = r.Resource
			}
		}
		if up == nil || ours == nil {
			t.Fatalf("no cluster %s (upstream %v, ours %v)", name, up != nil, ours != nil)
		}
		return up, ours
	}
	tls := func(a *anypb.Any) bool {
		c := &cluster.Cluster{}
		if err := a.UnmarshalTo(c); err != nil {
			t.Fatal(err)
		}
		return c.GetTransportSocket().GetName() == wellknown.TransportSocketTLS
	}
	var push1 *model.PushContext
	retry.UntilSuccessOrFail(t, func() error {
		push1 = f.s.PushContext()
		f.proxy.SetSidecarScope(push1)
		if push1.ServiceForHostname(f.proxy, host.Name(h)) == nil {
			return errors.New("the service is not in the push context yet")
		}
		return nil
	}, retry.Timeout(20*time.Second))

	up1, ours1 := gen(push1)
	up1b, ours1b := gen(push1)
	if up1b != up1 {
		return false
	}
	if ours1b != ours1 {
		t.Fatal("the same push and scope rebuilt the MOSN cluster")
	}
	if tls(ours1) {
		t.Fatal("endpoints without a sidecar: the MOSN cluster has TLS")
	}

	// The provider gets a sidecar (an endpoint update); a change of another service makes
	// the next push, whose push context lists endpoints afresh and which keeps upstream's
	// cached cluster of this one.
	setEndpoints(model.IstioMutualTLSModeLabel)
	f.s.Discovery.ConfigUpdate(&model.PushRequest{
		ConfigsUpdated: sets.New(model.ConfigKey{Kind: kind.ServiceEntry, Name: "web.example.com", Namespace: "default"}),
		Reason:         model.NewReasonStats(model.ConfigUpdate),
	})
	var push2 *model.PushContext
	retry.UntilSuccessOrFail(t, func() error {
		if push2 = f.s.PushContext(); push2 == push1 {
			return errors.New("no new push context yet")
		}
		for _, ep := range push2.ServiceEndpointsByPort(push2.ServiceForHostname(f.proxy, host.Name(h)), 20880, nil) {
			if ep.TLSMode == model.IstioMutualTLSModeLabel {
				return nil
			}
		}
		return errors.New("the endpoint index does not show the sidecar yet")
	}, retry.Timeout(20*time.Second))
	f.proxy.SetSidecarScope(push2)
	up2, ours2 := gen(push2)
	if up2 != up1 {
		return false
	}
	if !tls(ours2) {
		t.Fatal("the provider has a sidecar now, but the MOSN cluster kept the previous push's plaintext")
	}
	return true
}
