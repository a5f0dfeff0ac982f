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

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

const churnServices = 10

func churnCluster(i int) string {
	return fmt.Sprintf("outbound|20880||com.example.churn.service%02d", i)
}

// observer records when each endpoint (port) appears in or leaves a cluster at the client.
type observer struct {
	mu      sync.Mutex
	present map[string]map[uint32]time.Time // cluster -> port -> first seen present
	gone    map[string]map[uint32]time.Time // cluster -> port -> first seen absent
}

func newObserver() *observer {
	return &observer{present: map[string]map[uint32]time.Time{}, gone: map[string]map[uint32]time.Time{}}
}

func (o *observer) run(c *adsclient.Client, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-c.Changed():
		}
		now := time.Now()
		// What the sidecar holds: EDS responses may carry only the clusters that changed.
		for _, a := range c.Held(adsclient.EndpointType) {
			la := &endpoint.ClusterLoadAssignment{}
			if a.UnmarshalTo(la) != nil {
				continue
			}
			seen := map[uint32]bool{}
			for _, le := range la.Endpoints {
				for _, ep := range le.LbEndpoints {
					seen[ep.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()] = true
				}
			}
			o.see(la.ClusterName, seen, now)
		}
	}
}

// see records the endpoints (ports) of a cluster held at now.
func (o *observer) see(cluster string, seen map[uint32]bool, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.present[cluster] == nil {
		o.present[cluster], o.gone[cluster] = map[uint32]time.Time{}, map[uint32]time.Time{}
	}
	for p := range seen {
		if _, ok := o.present[cluster][p]; !ok {
			o.present[cluster][p] = now
		}
	}
	for p := range o.present[cluster] {
		if _, ok := o.gone[cluster][p]; !ok && !seen[p] {
			o.gone[cluster][p] = now
		}
	}
}

type change struct {
	cluster string
	port    uint32
	add     bool
	at      time.Time
}

// latencies matches every change with its first sighting at the client.
func (o *observer) latencies(changes []change) (lat []time.Duration, missed int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ch := range changes {
		m := o.gone[ch.cluster]
		if ch.add {
			m = o.present[ch.cluster]
		}
		if t, ok := m[ch.port]; ok && !t.Before(ch.at) {
			lat = append(lat, t.Sub(ch.at))
		} else {
			missed++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, missed
}

// percentile is the q-quantile of sorted latencies, in milliseconds.
func percentile(lat []time.Duration, q float64) float64 {
	return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000
}

func report(b *testing.B, lat []time.Duration, missed int) {
	if len(lat) == 0 {
		b.Fatalf("no change reached the client (%d missed)", missed)
	}
	b.ReportMetric(percentile(lat, 0.5), "ms-p50")
	b.ReportMetric(percentile(lat, 0.99), "ms-p99")
	b.ReportMetric(percentile(lat, 1), "ms-max")
	b.ReportMetric(float64(len(lat)), "changes")
	b.ReportMetric(float64(missed), "unseen")
}

// churnDriver adds a provider with a fresh port, then removes the oldest churn provider,
// round-robin over the services, `rate` changes per second for `d`.
// Each service starts with `base` churn providers (registered before measuring), so a
// removal hits a provider that has been live for about a second, never one the debounce
// would legitimately fold into its own registration.
func churnDriver(rate int, d time.Duration, live [][]uint32, next uint32, add func(svc int, port uint32), remove func(svc int, port uint32)) []change {
	var changes []change
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		svc := i % churnServices
		if (i/churnServices)%2 == 0 || len(live[svc]) == 0 {
			next++
			t := time.Now()
			add(svc, next)
			live[svc] = append(live[svc], next)
			changes = append(changes, change{churnCluster(svc), next, true, t})
		} else {
			p := live[svc][0]
			live[svc] = live[svc][1:]
			t := time.Now()
			remove(svc, p)
			changes = append(changes, change{churnCluster(svc), p, false, t})
		}
	}
	return changes
}

func churnIface(i int) string { return fmt.Sprintf("com.example.churn.Service%02d", i) }

// BenchmarkChurn: 100 provider changes per second (DUBBO_BENCH_CHURN, default 1m).
//
//	registry:        providers in ZooKeeper, dubbo-istiod's registry, a MOSN sidecar watching
//	serviceentry:    the adapter approach: the same endpoints rewritten into ServiceEntry
//	                 files istiod watches (upstream's path), an Envoy sidecar watching
//
// Reported: change -> EDS at the client p50/p99/max, and pushes of CDS/LDS caused.
func BenchmarkChurn(b *testing.B) {
	d := envDuration("DUBBO_BENCH_CHURN", time.Minute)
	const rate = 100
	b.Run("registry", func(b *testing.B) {
		zs := zkt.Start(b)
		app := zkt.Connect(b, zs.Addr, 30*time.Second)
		for i := 0; i < churnServices; i++ {
			app.Register(b, churnIface(i), zkt.ProviderURL("10.0.0.1", 20880, churnIface(i), nil))
		}
		p := pilot.Start(b, pilot.Options{
			Args: []string{"--dubboRegistry=zookeeper://" + zs.Addr},
			Env:  []string{"PILOT_DEBOUNCE_AFTER=100ms", "PILOT_DEBOUNCE_MAX=10s"},
		})
		p.WaitReady(b, 60*time.Second)
		runChurn(b, p, xdsview.Node("10.9.0.1", "watcher", "default", nil), d, rate,
			func(svc int, port uint32) {
				app.Register(b, churnIface(svc), zkt.ProviderURL("10.0.1.1", int(port), churnIface(svc), nil))
			},
			func(svc int, port uint32) {
				app.Unregister(b, zkt.NodePath("/dubbo", churnIface(svc), "providers", zkt.ProviderURL("10.0.1.1", int(port), churnIface(svc), nil)))
			})
	})
	b.Run("serviceentry", func(b *testing.B) {
		dir := b.TempDir()
		ports := make([][]uint32, churnServices)
		write := func(svc int) {
			var eps strings.Builder
			fmt.Fprintf(&eps, "  - {address: 10.0.0.1, ports: {dubbo: 20880}}\n")
			for _, p := range ports[svc] {
				fmt.Fprintf(&eps, "  - {address: 10.0.1.1, ports: {dubbo: %d}}\n", p)
			}
			y := fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: churn%02d, namespace: dubbo}
spec:
  hosts: [com.example.churn.service%02d]
  location: MESH_INTERNAL
  ports: [{number: 20880, name: dubbo, protocol: DUBBO}]
  resolution: STATIC
  endpoints:
%s`, svc, svc, eps.String())
			tmp := filepath.Join(dir, fmt.Sprintf(".se%02d.tmp", svc))
			if err := os.WriteFile(tmp, []byte(y), 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("se%02d.yaml", svc))); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < churnServices; i++ {
			write(i)
		}
		p := pilot.Start(b, pilot.Options{ConfigDir: dir, Env: []string{"PILOT_DEBOUNCE_AFTER=100ms", "PILOT_DEBOUNCE_MAX=10s"}})
		p.WaitReady(b, 60*time.Second)
		runChurn(b, p, adsclient.Node{IP: "10.9.0.2", Name: "watcher", Namespace: "default"}, d, rate,
			func(svc int, port uint32) { ports[svc] = append(ports[svc], port); write(svc) },
			func(svc int, port uint32) {
				for i, q := range ports[svc] {
					if q == port {
						ports[svc] = append(ports[svc][:i], ports[svc][i+1:]...)
						break
					}
				}
				write(svc)
			})
	})
}

// runChurn drives the churn against istiod p as node sees it, reports, and returns the
// changes made.
func runChurn(b *testing.B, p *pilot.Instance, node adsclient.Node, d time.Duration, rate int,
	add func(int, uint32), remove func(int, uint32),
) []change {
	c, err := adsclient.Dial(p.GRPCAddr, node)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := xdsview.Sync(c, 30*time.Second); err != nil {
		b.Fatal(err)
	}
	var names []string
	for i := 0; i < churnServices; i++ {
		names = append(names, churnCluster(i))
	}
	if err := c.Watch(adsclient.EndpointType, names...); err != nil {
		b.Fatal(err)
	}
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.EndpointType, func(r *discovery.DiscoveryResponse) error {
		las, err := adsclient.Decode[endpoint.ClusterLoadAssignment](r)
		if err != nil {
			return err
		}
		// istiod answers for clusters it does not know yet too, without endpoints.
		n := 0
		for _, la := range las {
			if len(la.Endpoints) > 0 {
				n++
			}
		}
		if n < churnServices {
			return fmt.Errorf("waiting for %d clusters with endpoints, have %d", churnServices, n)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	const base = 5
	live := make([][]uint32, churnServices)
	next := uint32(30000)
	for svc := 0; svc < churnServices; svc++ {
		for k := 0; k < base; k++ {
			next++
			add(svc, next)
			live[svc] = append(live[svc], next)
		}
	}
	time.Sleep(3 * time.Second)
	o := newObserver()
	stop := make(chan struct{})
	go o.run(c, stop)
	cds, lds := c.Responses(adsclient.ClusterType), c.Responses(adsclient.ListenerType)
	b.ResetTimer()
	changes := churnDriver(rate, d, live, next, add, remove)
	time.Sleep(2 * time.Second) // let the last changes arrive
	b.StopTimer()
	close(stop)
	lat, missed := o.latencies(changes)
	report(b, lat, missed)
	b.ReportMetric(float64(c.Responses(adsclient.ClusterType)-cds), "cds-pushes")
	b.ReportMetric(float64(c.Responses(adsclient.ListenerType)-lds), "lds-pushes")
	b.ReportMetric(0, "ns/op")
	return changes
}
