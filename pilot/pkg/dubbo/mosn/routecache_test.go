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
	"strings"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"
	networking "istio.io/api/networking/v1alpha3"

	"istio.io/istio/pilot/pkg/model"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/monitoring/monitortest"
	"istio.io/istio/pkg/test/util/retry"
	"istio.io/istio/pkg/util/sets"
)

// second sets up another MOSN sidecar in namespace default, with its own labels.
func (f *fakeMOSN) second(t *testing.T, app string) *model.Proxy {
	t.Helper()
	md := *f.proxy.Metadata
	md.Labels = map[string]string{"app": app}
	return f.s.SetupProxy(&model.Proxy{
		Type: model.SidecarProxy, ID: app + ".default", IPAddresses: []string{"10.200.0.2"},
		ConfigNamespace: "default", Labels: md.Labels, Metadata: &md,
	})
}

// dubboRC generates the Dubbo route configuration for p, as a push would.
func (f *fakeMOSN) dubboRC(t *testing.T, p *model.Proxy) (*route.RouteConfiguration, any) {
	t.Helper()
	return f.dubboRCIn(t, p, f.s.PushContext())
}

// dubboRCIn is dubboRC in a given push context.
func (f *fakeMOSN) dubboRCIn(t *testing.T, p *model.Proxy, push *model.PushContext) (*route.RouteConfiguration, any) {
	t.Helper()
	gen := f.s.Discovery.Generators[GeneratorName+"/"+v3.RouteType]
	w := &model.WatchedResource{TypeUrl: v3.RouteType, ResourceNames: sets.New(dubboRoutes)}
	res, _, err := gen.Generate(p, w, &model.PushRequest{Forced: true, Push: push})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Name == dubboRoutes {
			rc := &route.RouteConfiguration{}
			if err := r.Resource.UnmarshalTo(rc); err != nil {
				t.Fatal(err)
			}
			return rc, r
		}
	}
	t.Fatalf("no %s", dubboRoutes)
	return nil, nil
}

// change applies a config change and waits until a push context shows it (visible
// says whether it does, for a proxy whose scope comes from that push); the proxies then
// get their scopes from it, as a push gives them.
func (f *fakeMOSN) change(t *testing.T, apply func(model.ConfigStore) error, visible func(*model.Proxy) bool, proxies ...*model.Proxy) {
	t.Helper()
	if err := apply(f.s.Store()); err != nil {
		t.Fatal(err)
	}
	probe := f.second(t, "probe")
	retry.UntilSuccessOrFail(t, func() error {
		probe.SetSidecarScope(f.s.PushContext())
		if !visible(probe) {
			return errors.New("the change is not in the push context yet")
		}
		return nil
	}, retry.Timeout(20*time.Second))
	for _, p := range proxies {
		p.SetSidecarScope(f.s.PushContext())
	}
}

// demoVS is the demo VirtualService a proxy's scope holds.
func demoVS(p *model.Proxy) *networking.VirtualService {
	for _, vs := range p.SidecarScope.EgressListeners[0].VirtualServices() {
		if vs.Name == "demo" {
			return vs.Spec.(*networking.VirtualService)
		}
	}
	return nil
}

func rules(rc *route.RouteConfiguration) string {
	var out []string
	for _, r := range rc.VirtualHosts[0].Routes {
		out = append(out, r.Name+"->"+r.GetRoute().GetCluster())
	}
	return strings.Join(out, " ")
}

// TestRouteCacheSharedPerScope: proxies of one scope share one built configuration, and
// every change that must show (VirtualService, DestinationRule, Sidecar, service) does at
// the next push, for every proxy of the scope.
func TestRouteCacheSharedPerScope(t *testing.T) {
	mt := monitortest.New(t)
	f := newFakeMOSN(t, nil)
	a, b := f.proxy, f.second(t, "other")
	rcA, resA := f.dubboRC(t, a)
	_, resB := f.dubboRC(t, b)
	if resA != resB {
		t.Fatalf("two proxies of one scope got two builds")
	}
	mt.Assert("dubbo_mosn_route_cache_total", map[string]string{"result": "miss"}, monitortest.Exactly(1))
	mt.Assert("dubbo_mosn_route_cache_total", map[string]string{"result": "hit"}, monitortest.Exactly(1))
	before := rules(rcA)

	// VirtualService: the method rule goes.
	f.change(t, func(s model.ConfigStore) error {
		vs := s.Get(gvk.VirtualService, "demo", "default").DeepCopy()
		spec := vs.Spec.(*networking.VirtualService)
		spec.Http = spec.Http[1:]
		_, err := s.Update(vs)
		return err
	}, func(p *model.Proxy) bool { return len(demoVS(p).Http) == 1 }, a, b)
	rcA, resA = f.dubboRC(t, a)
	rcB, resB := f.dubboRC(t, b)
	if rules(rcA) == before || rules(rcA) != rules(rcB) || resA != resB || strings.Contains(rules(rcA), "say-hello") {
		t.Fatalf("after the VirtualService change: %q / %q (was %q)", rules(rcA), rules(rcB), before)
	}

	// DestinationRule: its traffic policy goes; the scope is renewed, so the configuration
	// is built again.
	f.change(t, func(s model.ConfigStore) error {
		dr := s.Get(gvk.DestinationRule, "demo", "default").DeepCopy()
		dr.Spec.(*networking.DestinationRule).TrafficPolicy = nil
		_, err := s.Update(dr)
		return err
	}, func(p *model.Proxy) bool {
		cdr := p.SidecarScope.DestinationRule(model.TrafficDirectionOutbound, p, demoHost)
		return cdr != nil && cdr.GetRule().Spec.(*networking.DestinationRule).TrafficPolicy == nil
	}, a, b)
	f.dubboRC(t, a)
	// Misses: the first build, after the VirtualService change, after this one.
	mt.Assert("dubbo_mosn_route_cache_total", map[string]string{"result": "miss"}, monitortest.Exactly(3))

	// A Dubbo service appears: its default rule shows for both.
	f.change(t, func(s model.ConfigStore) error {
		_, err := s.Create(config.Config{
			Meta: config.Meta{GroupVersionKind: gvk.ServiceEntry, Name: "orders", Namespace: "default"},
			Spec: &networking.ServiceEntry{
				Hosts: []string{"com.example.orderservice"}, Location: networking.ServiceEntry_MESH_INTERNAL,
				Resolution: networking.ServiceEntry_STATIC,
				Ports:      []*networking.ServicePort{{Number: 8080, Name: "dubbo", Protocol: "DUBBO"}},
				Endpoints:  []*networking.WorkloadEntry{{Address: "10.0.3.1"}},
			},
		})
		return err
	}, func(p *model.Proxy) bool { return p.SidecarScope.GetService("com.example.orderservice") != nil }, a, b)
	rcA, _ = f.dubboRC(t, a)
	rcB, _ = f.dubboRC(t, b)
	if !strings.Contains(rules(rcA), "orderservice") || rules(rcA) != rules(rcB) {
		t.Fatalf("after the new service: %q / %q", rules(rcA), rules(rcB))
	}

	// A Sidecar limiting egress to the order service: the demo service's rules go.
	f.change(t, func(s model.ConfigStore) error {
		_, err := s.Create(config.Config{
			Meta: config.Meta{GroupVersionKind: gvk.Sidecar, Name: "default", Namespace: "default"},
			Spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{{Hosts: []string{"default/com.example.orderservice"}}}},
		})
		return err
	}, func(p *model.Proxy) bool { return p.SidecarScope.Sidecar != nil }, a, b)
	rcA, _ = f.dubboRC(t, a)
	rcB, _ = f.dubboRC(t, b)
	if strings.Contains(rules(rcA), "demoservice") || !strings.Contains(rules(rcA), "orderservice") || rules(rcA) != rules(rcB) {
		t.Fatalf("after the Sidecar: %q / %q", rules(rcA), rules(rcB))
	}
}

// TestRouteCacheBySourceLabels: a VirtualService matching on sourceLabels makes the
// configuration depend on the proxy's labels: proxies of one scope with other labels get
// their own.
func TestRouteCacheBySourceLabels(t *testing.T) {
	f := newFakeMOSN(t, nil)
	a, b := f.proxy, f.second(t, "other")
	f.change(t, func(s model.ConfigStore) error {
		vs := s.Get(gvk.VirtualService, "demo", "default").DeepCopy()
		spec := vs.Spec.(*networking.VirtualService)
		spec.Http[0].Match[0].SourceLabels = map[string]string{"app": "consumer"}
		_, err := s.Update(vs)
		return err
	}, func(p *model.Proxy) bool { return len(demoVS(p).Http[0].Match[0].SourceLabels) > 0 }, a, b)
	rcA, _ := f.dubboRC(t, a)
	rcB, _ := f.dubboRC(t, b)
	if !strings.Contains(rules(rcA), "say-hello") || strings.Contains(rules(rcB), "say-hello") {
		t.Fatalf("sourceLabels: consumer %q, other %q", rules(rcA), rules(rcB))
	}
	// Asked again (cache hits: one build per label value), each keeps its own.
	mt := monitortest.New(t)
	rcA2, _ := f.dubboRC(t, a)
	rcB2, _ := f.dubboRC(t, b)
	if rules(rcA2) != rules(rcA) || rules(rcB2) != rules(rcB) {
		t.Fatalf("cached: consumer %q, other %q", rules(rcA2), rules(rcB2))
	}
	mt.Assert("dubbo_mosn_route_cache_total", map[string]string{"result": "hit"}, monitortest.Exactly(2))
	// A proxy with the same app but other labels (a pod template hash) shares the build:
	// only the labels sourceLabels names count.
	// Both scopes come from one push context: a push landing in between (the fake
	// server's debounce can still be settling) would rightly make a new build.
	c := f.second(t, "consumer")
	c.Labels["pod-template-hash"] = "abc"
	push := f.s.PushContext()
	a.SetSidecarScope(push)
	c.SetSidecarScope(push)
	rcA3, resA3 := f.dubboRCIn(t, a, push)
	rcC, resC := f.dubboRCIn(t, c, push)
	if rules(rcC) != rules(rcA) || rules(rcA3) != rules(rcA) {
		t.Fatalf("same app, another pod: %q, want %q", rules(rcC), rules(rcA))
	}
	if resC != resA3 {
		t.Fatal("a proxy whose other labels differ got its own build")
	}
}

// TestRouteCacheEquivalence: what proxies of several namespaces and labels get through
// the cache equals what they get built one by one (NoRouteCache).
func TestRouteCacheEquivalence(t *testing.T) {
	f := newFakeMOSN(t, nil)
	a, b := f.proxy, f.second(t, "other")
	md := *f.proxy.Metadata
	md.Namespace, md.Labels = "shop", map[string]string{"app": "consumer"}
	c := f.s.SetupProxy(&model.Proxy{Type: model.SidecarProxy, ID: "c.shop", IPAddresses: []string{"10.200.0.3"},
		ConfigNamespace: "shop", Labels: md.Labels, Metadata: &md})
	f.change(t, func(s model.ConfigStore) error {
		vs := s.Get(gvk.VirtualService, "demo", "default").DeepCopy()
		spec := vs.Spec.(*networking.VirtualService)
		spec.Http[0].Match = append(spec.Http[0].Match,
			&networking.HTTPMatchRequest{Method: spec.Http[0].Match[0].Method, SourceNamespace: "shop"},
			&networking.HTTPMatchRequest{Method: spec.Http[0].Match[0].Method, SourceLabels: map[string]string{"app": "other"}})
		_, err := s.Update(vs)
		return err
	}, func(p *model.Proxy) bool { return len(demoVS(p).Http[0].Match) == 3 }, a, b, c)
	cached := map[string]string{}
	for range 2 {
		for _, p := range []*model.Proxy{a, b, c} {
			rc, _ := f.dubboRC(t, p)
			cached[p.ID] = rules(rc)
		}
	}
	if _, err := Register(f.s.Discovery, Options{NoRouteCache: true}, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*model.Proxy{a, b, c} {
		if rc, _ := f.dubboRC(t, p); rules(rc) != cached[p.ID] {
			t.Errorf("%s: cached %q, built %q", p.ID, cached[p.ID], rules(rc))
		}
	}
}

// TestRouteCacheGenerations: only a newer push starts a generation; a request served from
// an older push context reads without rotating; a scope kept across pushes is promoted;
// the previous generation gives way when the budget is short.
func TestRouteCacheGenerations(t *testing.T) {
	c := newRouteCache()
	push := func(n int) *model.PushContext {
		return &model.PushContext{PushVersion: fmt.Sprintf("2026-12-01T00:00:00Z/%d", n)}
	}
	res := func(n int) *discovery.Resource {
		return &discovery.Resource{Name: "r", Resource: &anypb.Any{Value: make([]byte, n)}}
	}
	s1, s2 := &model.SidecarScope{}, &model.SidecarScope{}
	p1 := &model.Proxy{SidecarScope: s1, ConfigNamespace: "default"}
	p2 := &model.Proxy{SidecarScope: s2, ConfigNamespace: "default"}
	builds := 0
	build := func(n int) func() (*discovery.Resource, []string) {
		return func() (*discovery.Resource, []string) { builds++; return res(n), nil }
	}
	P1, P2, P3 := push(1), push(2), push(3)
	r := c.get(P2, p1, 20881, build(10))
	if c.get(P1, p1, 20881, build(10)) != r || c.get(P2, p1, 20881, build(10)) != r || builds != 1 {
		t.Fatalf("an older push rotated the cache (%d builds)", builds)
	}
	if c.get(P3, p1, 20881, build(10)) != r || builds != 1 || c.cur[routeKey{scope: s1, ns: "default", port: 20881}] == nil {
		t.Fatalf("a scope kept across pushes was not promoted (%d builds)", builds)
	}
	c.budget = 25
	P4 := push(4)
	c.generation(P4) // s1's entry (10 bytes) is in prev now
	c.get(P4, p2, 20881, build(20))
	if c.cur[routeKey{scope: s2, ns: "default", port: 20881}] == nil || c.prevBytes != 0 || c.curBytes != 20 {
		t.Fatalf("the previous generation did not give way: cur %d bytes, prev %d", c.curBytes, c.prevBytes)
	}
}

// TestRouteCacheBudget: beyond its byte budget the cache stores nothing more (every
// proxy still gets its configuration).
func TestRouteCacheBudget(t *testing.T) {
	f := newFakeMOSN(t, nil)
	g, err := Register(f.s.Discovery, Options{}, nil) // a generator of our own, to set its budget
	if err != nil {
		t.Fatal(err)
	}
	g.dubboRoutes.budget = 1
	a, b := f.proxy, f.second(t, "other")
	_, resA := f.dubboRC(t, a)
	_, resB := f.dubboRC(t, b)
	if resA == resB || len(g.dubboRoutes.cur) != 0 {
		t.Fatalf("the cache stored beyond its budget (%d entries)", len(g.dubboRoutes.cur))
	}
}
