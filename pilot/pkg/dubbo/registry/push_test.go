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

package registry_test

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	networking "istio.io/api/networking/v1alpha3"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/serviceregistry/aggregate"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	xdsfake "istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/test/util/retry"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/zookeeper"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// TestPacedPushesInterleavedWithFullPushes is the stress test of the EDS pacer against
// istiod's own push path (patch 0006): a real ZooKeeper with a provider change every
// 10 ms (each one a ZooKeeper round trip: ~40/s measured under -race), the registry
// paced into upstream's DiscoveryServer (the fake one of pilot/test/xds: the real push
// path, in process), and VirtualService changes causing
// full pushes at the same time. The global push context must never lose a config it
// already had (a paced push that started before a full push must not install older
// state), and at the end an ADS client's endpoints equal ZooKeeper's providers.
func TestPacedPushesInterleavedWithFullPushes(t *testing.T) {
	const (
		ifaces      = 4
		perIface    = 5
		duration    = 5 * time.Second
		changeEvery = 10 * time.Millisecond // plus a ZooKeeper round trip per change; the count is logged
		configEvery = 40 * time.Millisecond
	)
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 10*time.Second)

	fake := xdsfake.NewFakeDiscoveryServer(t, xdsfake.FakeOptions{
		DebounceTime: 10 * time.Millisecond,
		// A real TCP listener for pkg/adsclient, which keeps every cluster's last assignment
		// across incremental EDS responses (upstream's adsc keeps only the last response).
		ListenerBuilder: func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
	})
	ctl, err := registry.NewController(registry.Options{EDSPushInterval: 50 * time.Millisecond}, fake.Discovery)
	if err != nil {
		t.Fatal(err)
	}
	ctl.SetPusher(fake.Discovery)
	// The service handler istiod's bootstrap registers for every registry: a full push.
	ctl.AppendServiceHandler(func(_, cur *model.Service, _ model.Event) {
		fake.Discovery.ConfigUpdate(&model.PushRequest{
			Forced: true, Reason: model.NewReasonStats(model.ServiceUpdate),
		})
	})
	fake.Env().ServiceDiscovery.(*aggregate.Controller).AddRegistry(ctl)
	addr := "zookeeper://" + zs.Addr + "?session-timeout=10s&name=zk"
	cfg, err := zookeeper.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.AddSource(cfg.Name, addr); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); zookeeper.NewWatcher(cfg, ctl).Run(stop) }()
	go func() { defer wg.Done(); ctl.Run(stop) }()
	t.Cleanup(func() { close(stop); wg.Wait() })

	// Every interface starts with its providers; the changes then toggle one provider
	// at a time, so every interface keeps a service.
	iface := func(i int) string { return fmt.Sprintf("com.example.stress.Service%d", i) }
	nodes := map[string]string{} // "i/j" -> registered path ("" while unregistered)
	for i := 0; i < ifaces; i++ {
		for j := 0; j < perIface; j++ {
			nodes[fmt.Sprintf("%d/%d", i, j)] = app.Register(t, iface(i), zkt.ProviderURL("10.1.0.1", 20000+j, iface(i), nil))
		}
	}
	retry.UntilSuccessOrFail(t, func() error {
		if !ctl.HasSynced() {
			return fmt.Errorf("registry not synced")
		}
		for i := 0; i < ifaces; i++ {
			h := strings.ToLower(iface(i))
			if len(fake.Discovery.Env.PushContext().ServiceIndex.HostnameAndNamespace[host.Name(h)]) == 0 {
				return fmt.Errorf("%s not in the push context yet", h)
			}
		}
		return nil
	}, retry.Timeout(60*time.Second), retry.Delay(20*time.Millisecond))

	ads, err := adsclient.Dial(fake.Listener.Addr().String(), adsclient.Node{IP: "10.9.0.1", Name: "consumer", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ads.Close)
	var clusters []string
	for i := 0; i < ifaces; i++ {
		clusters = append(clusters, fmt.Sprintf("outbound|20880||%s", strings.ToLower(iface(i))))
	}
	if err := ads.Watch(v3.EndpointType, clusters...); err != nil {
		t.Fatal(err)
	}

	// The monitor: the number of VirtualServices in the global push context only grows.
	vsCount := func() int {
		return len(fake.Discovery.Env.PushContext().VirtualServicesForGateway("default", constants.IstioMeshGateway))
	}
	var regressions atomic.Int64
	var regressionMsg atomic.Value
	monitorDone := make(chan struct{})
	stopMonitor := make(chan struct{})
	go func() {
		defer close(monitorDone)
		last := 0
		for {
			select {
			case <-stopMonitor:
				return
			default:
			}
			if n := vsCount(); n < last {
				regressions.Add(1)
				regressionMsg.Store(fmt.Sprintf("the global push context went from %d to %d VirtualServices", last, n))
			} else {
				last = n
			}
			time.Sleep(time.Millisecond)
		}
	}()

	start := time.Now()
	var changes, configs int
	var wgLoad sync.WaitGroup
	wgLoad.Add(2)
	go func() { // provider churn
		defer wgLoad.Done()
		k := 0
		for time.Since(start) < duration {
			key := fmt.Sprintf("%d/%d", k%ifaces, (k/ifaces)%(perIface-1)+1) // provider 0 always stays
			if p := nodes[key]; p != "" {
				app.Unregister(t, p)
				nodes[key] = ""
			} else {
				i, j := k%ifaces, (k/ifaces)%(perIface-1)+1
				nodes[key] = app.Register(t, iface(i), zkt.ProviderURL("10.1.0.1", 20000+j, iface(i), nil))
			}
			changes++
			k++
			time.Sleep(changeEvery)
		}
	}()
	go func() { // config changes: full pushes
		defer wgLoad.Done()
		for time.Since(start) < duration {
			_, err := fake.Store().Create(config.Config{
				Meta: config.Meta{
					GroupVersionKind: gvk.VirtualService, Name: fmt.Sprintf("vs-%d", configs), Namespace: "default",
				},
				Spec: &networking.VirtualService{
					Hosts: []string{fmt.Sprintf("vs-%d.example.com", configs)},
					Http:  []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "vs.example.com"}}}}},
				},
			})
			if err != nil {
				t.Error(err)
				return
			}
			configs++
			time.Sleep(configEvery)
		}
	}()
	wgLoad.Wait()
	t.Logf("%d provider changes and %d VirtualServices in %v", changes, configs, time.Since(start))

	// Final state: every config in the push context, the client's endpoints = ZooKeeper's.
	want := map[string][]string{}
	for key, p := range nodes {
		if p == "" {
			continue
		}
		var i, j int
		fmt.Sscanf(key, "%d/%d", &i, &j)
		c := fmt.Sprintf("outbound|20880||%s", strings.ToLower(iface(i)))
		want[c] = append(want[c], fmt.Sprintf("10.1.0.1:%d", 20000+j))
	}
	settle := time.Now()
	retry.UntilSuccessOrFail(t, func() error {
		if n := vsCount(); n != configs {
			return fmt.Errorf("push context has %d VirtualServices, want %d", n, configs)
		}
		got := ads.Held(v3.EndpointType)
		for c, addrs := range want {
			a, ok := got[c]
			if !ok {
				return fmt.Errorf("no endpoints for %s at the client (it has %v)", c, slices.Sorted(maps.Keys(got)))
			}
			cla := &endpoint.ClusterLoadAssignment{}
			if err := a.UnmarshalTo(cla); err != nil {
				return err
			}
			var have []string
			for _, l := range cla.Endpoints {
				for _, ep := range l.LbEndpoints {
					sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
					have = append(have, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
				}
			}
			sort.Strings(have)
			sort.Strings(addrs)
			if strings.Join(have, ",") != strings.Join(addrs, ",") {
				return fmt.Errorf("%s: client has %v, ZooKeeper %v", c, have, addrs)
			}
		}
		return nil
	}, retry.Timeout(60*time.Second), retry.Delay(50*time.Millisecond))
	t.Logf("converged %v after the load stopped", time.Since(settle))
	close(stopMonitor)
	<-monitorDone
	if n := regressions.Load(); n > 0 {
		t.Fatalf("%d times an older push context replaced a newer one; last: %v", n, regressionMsg.Load())
	}
}
