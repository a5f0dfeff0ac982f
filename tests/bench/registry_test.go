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

// Package bench measures dubbo-istiod against real components: a real ZooKeeper, the
// built pilot-discovery binary and real ADS clients. Run with `make bench`.
package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

func benchIface(i int) string { return fmt.Sprintf("com.example.bench.Service%05d", i) }

// seed registers interfaces x providers ephemeral nodes through one session, batched.
func seed(b *testing.B, c *zkt.Client, interfaces, providers int) {
	b.Helper()
	acl := zk.WorldACL(zk.PermAll)
	var ops []any
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := c.Conn.Multi(ops...); err != nil {
			b.Fatalf("seed: %v", err)
		}
		ops = ops[:0]
	}
	ops = append(ops, &zk.CreateRequest{Path: "/dubbo", Acl: acl})
	flush()
	for i := 0; i < interfaces; i++ {
		iface := benchIface(i)
		ops = append(ops,
			&zk.CreateRequest{Path: "/dubbo/" + iface, Acl: acl},
			&zk.CreateRequest{Path: "/dubbo/" + iface + "/providers", Acl: acl})
		for p := 0; p < providers; p++ {
			u := zkt.ProviderURL(fmt.Sprintf("10.%d.%d.%d", i/250, i%250, p+1), 20880+p, iface,
				map[string]string{"version": fmt.Sprintf("%d.0.0", p%2+1)})
			ops = append(ops, &zk.CreateRequest{Path: zkt.NodePath("/dubbo", iface, "providers", u), Acl: acl, Flags: zk.FlagEphemeral})
		}
		if len(ops) >= 200 {
			flush()
		}
	}
	flush()
}

func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb / 1024
}

// BenchmarkRegistryIngest: istiod starts against 1,000 interfaces x 10 providers
// (DUBBO_BENCH_INTERFACES overrides; 10,000 is the 100,000-provider case).
//
//	registry:      the providers in ZooKeeper, dubbo-istiod's registry
//	serviceentry:  the glue approach's end state: the same providers as ServiceEntries
//	               (10 endpoints each, own ports), read by istiod from files; the
//	               adapter's own cost is not counted
//
// Measured: start until /ready answers 200 with every endpoint known, RSS, and (registry)
// the requests istiod sent to ZooKeeper.
func BenchmarkRegistryIngest(b *testing.B) {
	interfaces, providers := 1000, 10
	if n, err := strconv.Atoi(os.Getenv("DUBBO_BENCH_INTERFACES")); err == nil && n > 0 {
		interfaces = n
	}
	b.Logf("%d interfaces x %d providers", interfaces, providers)
	b.Run("registry", func(b *testing.B) { zkIngest(b, interfaces, providers, "120s", "zk-requests") })
	b.Run("serviceentry", func(b *testing.B) {
		dir := b.TempDir()
		var y strings.Builder
		for i := 0; i < interfaces; i++ {
			fmt.Fprintf(&y, "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s%05d, namespace: dubbo}\n"+
				"spec:\n  hosts: [com.example.bench.service%05d]\n  location: MESH_INTERNAL\n"+
				"  ports: [{number: 20880, name: dubbo, protocol: DUBBO}]\n  resolution: STATIC\n  endpoints:\n", i, i)
			for p := 0; p < providers; p++ {
				fmt.Fprintf(&y, "  - {address: 10.%d.%d.%d, ports: {dubbo: %d}, labels: {version: %d.0.0}}\n", i/250, i%250, p+1, 20880+p, p%2+1)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "services.yaml"), []byte(y.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		ready, rss := ingest(b, interfaces*providers, pilot.Options{ConfigDir: dir})
		b.ReportMetric(ready, "s-to-ready")
		b.ReportMetric(rss, "MiB-rss")
		b.ReportMetric(float64(interfaces*providers), "providers")
		b.ReportMetric(0, "ns/op")
	})
}

// ingest starts istiod and returns seconds until it is ready with `want` endpoints
// known (/debug/endpointz), and its RSS then.
func ingest(b *testing.B, want int, o pilot.Options) (float64, float64) {
	return ingestWith(b, want, o, nil, nil)
}

// ingestWith is ingest, calling started (when set) right after istiod starts, and after
// (when set) once istiod is complete, before it stops.
func ingestWith(b *testing.B, want int, o pilot.Options, started, after func(*pilot.Instance)) (float64, float64) {
	o.Env = append(o.Env, "PILOT_DEBOUNCE_AFTER=100ms", "PILOT_DEBOUNCE_MAX=10s")
	start := time.Now()
	p := pilot.Start(b, o)
	if started != nil {
		started(p)
	}
	p.WaitReady(b, 300*time.Second)
	ready := time.Since(start).Seconds()
	time.Sleep(time.Second) // let the first push settle before reading RSS
	rss := rssMiB(p.PID())
	// Readiness must mean complete: check the endpoint index once (it is large, so RSS
	// is read before), and only if it is not complete yet keep checking, counting that time.
	for n := countEndpoints(b, p); n < want; n = countEndpoints(b, p) {
		if time.Since(start) > 300*time.Second {
			b.Fatalf("%d of %d endpoints 300s after start", n, want)
		}
		time.Sleep(time.Second)
		ready = time.Since(start).Seconds()
	}
	if after != nil {
		after(p)
	}
	p.Stop()
	return ready, rss
}

// countEndpoints counts the endpoints in istiod's endpoint index (/debug/endpointz).
func countEndpoints(b *testing.B, p *pilot.Instance) int {
	return bytes.Count(p.Debug(b, "/debug/endpointz"), []byte(`"EndpointPort"`))
}

// BenchmarkProviderChangeToEDS: a provider registers or leaves in ZooKeeper; measured:
// time until a connected ADS client receives the EDS update, with istiod's default
// debounce (PILOT_DEBOUNCE_AFTER=100ms).
func BenchmarkProviderChangeToEDS(b *testing.B) {
	zs := zkt.Start(b)
	c := zkt.Connect(b, zs.Addr, 30*time.Second)
	seed(b, c, 100, 10)
	p := pilot.Start(b, pilot.Options{
		Args: []string{"--dubboRegistry=zookeeper://" + zs.Addr + "?name=bench"},
		Env:  []string{"PILOT_DEBOUNCE_AFTER=100ms", "PILOT_DEBOUNCE_MAX=10s"},
	})
	p.WaitReady(b, 60*time.Second)
	const iface = "com.example.bench.Service00007"
	const cl = "outbound|20880||com.example.bench.service00007"
	ads, err := adsclient.Dial(p.GRPCAddr, adsclient.Node{IP: "10.200.0.1", Name: "consumer", Namespace: "default"})
	if err != nil {
		b.Fatal(err)
	}
	defer ads.Close()
	if err := ads.Watch(adsclient.ClusterType); err != nil {
		b.Fatal(err)
	}
	if err := ads.Watch(adsclient.EndpointType, cl); err != nil {
		b.Fatal(err)
	}
	count := func(n int) func(*discovery.DiscoveryResponse) error {
		return func(r *discovery.DiscoveryResponse) error {
			las, err := adsclient.Decode[endpoint.ClusterLoadAssignment](r)
			if err != nil {
				return err
			}
			for _, la := range las {
				if la.ClusterName == cl {
					got := 0
					for _, le := range la.Endpoints {
						got += len(le.LbEndpoints)
					}
					if got == n {
						return nil
					}
					return fmt.Errorf("%d endpoints, want %d", got, n)
				}
			}
			return fmt.Errorf("no %s", cl)
		}
	}
	if _, err := ads.AwaitTimeout(30*time.Second, adsclient.EndpointType, count(10)); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u := zkt.ProviderURL("10.250.0.1", 30000+i%1000, iface, nil)
		start := time.Now()
		path := c.Register(b, iface, u)
		if _, err := ads.AwaitTimeout(10*time.Second, adsclient.EndpointType, count(11)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		start = time.Now()
		c.Unregister(b, path)
		if _, err := ads.AwaitTimeout(10*time.Second, adsclient.EndpointType, count(10)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "ms-p50")
	b.ReportMetric(pct(0.99), "ms-p99")
	b.ReportMetric(pct(1), "ms-max")
}

// zkIngest measures dubbo-istiod reading interfaces x providers seeded in a real ZooKeeper:
// time to ready, RSS, and the requests ZooKeeper received (reported as requestsUnit).
func zkIngest(b *testing.B, interfaces, providers int, syncTimeout, requestsUnit string) {
	zs := zkt.Start(b)
	c := zkt.Connect(b, zs.Addr, 30*time.Second)
	seed(b, c, interfaces, providers)
	before := zs.Mntr("zk_packets_received")
	// DUBBO_BENCH_PPROF=<prefix>: a heap profile (after a GC) once every endpoint is in,
	// written to <prefix>.zk.heap; the Go heap in use then is reported beside RSS.
	prof := os.Getenv("DUBBO_BENCH_PPROF")
	var heap, stacks float64
	ready, rss := ingestWith(b, interfaces*providers, pilot.Options{
		Args: []string{"--dubboRegistry=zookeeper://" + zs.Addr + "?name=bench", "--dubboSyncTimeout=" + syncTimeout},
	}, nil, func(p *pilot.Instance) {
		if prof != "" {
			// Twice: the first GC only moves sync.Pool contents (e.g. the JSON buffers of
			// the endpoint count above) to the victim cache; the second frees them.
			p.Debug(b, "/debug/pprof/heap?gc=1")
			writeProfile(b, p, "/debug/pprof/heap?gc=1", prof+".zk.heap")
			heap = metricSum(b, p, `(?m)^go_memstats_heap_inuse_bytes (\S+)`) / (1 << 20)
			stacks = metricSum(b, p, `(?m)^go_memstats_stack_inuse_bytes (\S+)`) / (1 << 20)
		}
	})
	if prof != "" {
		b.ReportMetric(heap, "MiB-heap-inuse-after-gc")
		b.ReportMetric(stacks, "MiB-stacks")
	}
	b.ReportMetric(zs.Mntr("zk_packets_received")-before, requestsUnit)
	b.ReportMetric(ready, "s-to-ready")
	b.ReportMetric(rss, "MiB-rss")
	b.ReportMetric(float64(interfaces*providers), "providers")
	b.ReportMetric(0, "ns/op")
}
