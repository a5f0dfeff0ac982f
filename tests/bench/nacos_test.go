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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	nacosfw "github.com/dubbo-istiod/dubbo-istiod/tests/framework/nacos"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
)

// nacosMetadata is an interface-level instance's metadata as dubbo-go v3.3.2 writes it
// into Nacos (the URL parameters of the provider).
func nacosMetadata(app, iface, version string, pid int) map[string]string {
	return map[string]string{
		"anyhost": "true", "application": app, "interface": iface, "path": iface,
		"methods": "SayHello,SayHelloStream,Greet", "protocol": "dubbo", "side": "provider",
		"release": "3.3.2", "serialization": "hessian2", "category": "providers",
		"nacos.category": "providers", "version": version, "group": "", "dubbo": "2.0.2",
		"generic": "false", "deprecated": "false", "dynamic": "true", "loadbalance": "random",
		"timeout": "3000", "retries": "2", "pid": strconv.Itoa(pid), "timestamp": "1764500000000",
	}
}

func nacosBenchService(i int) string { return fmt.Sprintf("providers:%s:1.0.0:", benchIface(i)) }

// seedNacos registers interfaces x providers ephemeral instances: one
// providers:<interface>:1.0.0: service per interface, several SDK clients with several
// requests each in flight (each client
// keeps its instances while it is connected, until the benchmark ends). Endpoints are
// those of the ZooKeeper seed.
//
// One registration per instance, not BatchRegisterInstance: Polaris v1.18.1
// acknowledges every batch (its asynchronous batch path does not report failures) but
// keeps only part of the instances under concurrent batches (16% lost at 500 x 10 with
// 8 in flight, 88% of the services incomplete with 32). The server's own lists are
// read back over the Nacos HTTP API, and incomplete services registered again, so
// istiod starts against a complete registry.
func seedNacos(b *testing.B, srv *nacosfw.Server, interfaces, providers int) {
	b.Helper()
	clients := make([]naming_client.INamingClient, 8)
	for w := range clients {
		clients[w] = srv.NamingClient(b, "")
	}
	todo := make([]int, interfaces)
	for i := range todo {
		todo[i] = i
	}
	for round := 1; len(todo) > 0; round++ {
		if round > 10 {
			b.Fatalf("nacos seed: %d services still incomplete after 10 rounds", len(todo))
		}
		start := time.Now()
		registerNacos(b, clients, todo, providers)
		// What the server acknowledged reaches its cache within about a second.
		time.Sleep(2 * time.Second)
		before := len(todo)
		todo = incompleteNacos(b, srv, todo, providers)
		b.Logf("nacos seed round %d: %d services registered in %v, %d incomplete on the server", round, before,
			time.Since(start).Round(time.Millisecond), len(todo))
	}
}

func registerNacos(b *testing.B, clients []naming_client.INamingClient, services []int, providers int) {
	b.Helper()
	var refused atomic.Int64
	defer func() {
		if n := refused.Load(); n > 0 {
			b.Logf("nacos seed: %d registrations refused by the server and retried", n)
		}
	}()
	next := make(chan int)
	errs := make(chan error, 4*len(clients))
	var wg sync.WaitGroup
	for w := 0; w < 4*len(clients); w++ {
		c := clients[w%len(clients)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				iface := benchIface(i)
				for p := 0; p < providers; p++ {
					in := vo.RegisterInstanceParam{
						ServiceName: nacosBenchService(i),
						Ip:          fmt.Sprintf("10.%d.%d.%d", i/250, i%250, p+1), Port: uint64(20880 + p),
						Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
						Metadata: nacosMetadata(fmt.Sprintf("bench-app-%04d", i/10), iface, "1.0.0", 1000+p),
					}
					// Polaris refuses a registration now and then under concurrent writes
					// (ok=false, no reason given to the SDK): retried, and counted.
					ok, err := c.RegisterInstance(in)
					for try := 1; err == nil && !ok && try < 5; try++ {
						refused.Add(1)
						time.Sleep(time.Duration(try) * 50 * time.Millisecond)
						ok, err = c.RegisterInstance(in)
					}
					if err != nil || !ok {
						errs <- fmt.Errorf("register %s %s:%d: ok=%v err=%v", in.ServiceName, in.Ip, in.Port, ok, err)
						return
					}
				}
			}
		}()
	}
	var err error
feed:
	for _, i := range services {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		b.Fatal(err)
	}
}

// incompleteNacos returns the services of which the server lists fewer than want
// instances (the Nacos HTTP API, 8 requests in flight).
func incompleteNacos(b *testing.B, srv *nacosfw.Server, services []int, want int) []int {
	b.Helper()
	var mu sync.Mutex
	var out []int
	var firstErr error
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, i := range services {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n, err := nacosInstanceCount(srv, nacosBenchService(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if n < want {
				out = append(out, i)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(out)
	return out
}

func nacosInstanceCount(srv *nacosfw.Server, service string) (int, error) {
	resp, err := http.Get("http://" + srv.Address() + "/nacos/v1/ns/instance/list?serviceName=" + url.QueryEscape(service))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var v struct {
		Hosts []json.RawMessage `json:"hosts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, fmt.Errorf("instance list of %s: %s: %v", service, resp.Status, err)
	}
	return len(v.Hosts), nil
}

// BenchmarkNacosIngest: istiod starts against 1,000 interface-level services x 10
// instances in a real Nacos-protocol server (Polaris v1.18.1's Nacos API,
// tests/framework/nacos; DUBBO_BENCH_NACOS_INTERFACES, else DUBBO_BENCH_INTERFACES,
// overrides, as for BenchmarkRegistryIngest, whose ZooKeeper figures these sit beside).
// make bench runs 2,000 (20,000 instances): the server's registrations slow down as its
// store grows (~370/s up to 5,000 instances, ~170/s to 20,000, ~50/s near 24,000,
// where one timed out), so 100,000 cannot be set up (BENCHMARKS.md notes).
//
// Measured as for ZooKeeper: start until /ready answers 200 with every endpoint known,
// RSS, and the requests istiod's Nacos client sent (the SDK's own request histogram in
// istiod's /metrics: the service list pages and the subscriptions). Registering the
// instances is setup, reported apart (s-seed).
func BenchmarkNacosIngest(b *testing.B) {
	interfaces, providers := 1000, 10
	for _, e := range []string{"DUBBO_BENCH_NACOS_INTERFACES", "DUBBO_BENCH_INTERFACES"} {
		if n, err := strconv.Atoi(os.Getenv(e)); err == nil && n > 0 {
			interfaces = n
			break
		}
	}
	b.Logf("%d interface-level services x %d instances", interfaces, providers)
	b.Run("nacos", func(b *testing.B) { nacosIngest(b, interfaces, providers) })
	// The same providers from ZooKeeper in the same run (BenchmarkRegistryIngest's
	// registry case at this size), for the comparison.
	b.Run("zookeeper", func(b *testing.B) { zkIngest(b, interfaces, providers, "300s", "requests") })
}

func nacosIngest(b *testing.B, interfaces, providers int) {
	srv := nacosfw.Start(b, nacosfw.Options{})
	start := time.Now()
	seedNacos(b, srv, interfaces, providers)
	seeded := time.Since(start).Seconds()
	b.Logf("nacos seed: %d instances registered in %.1f s", interfaces*providers, seeded)
	var requests float64
	// DUBBO_BENCH_PPROF=<prefix>: a CPU profile of istiod's first 30 s and a heap profile
	// once every endpoint is in, written to <prefix>.cpu and <prefix>.heap.
	prof := os.Getenv("DUBBO_BENCH_PPROF")
	var cpu sync.WaitGroup
	var started func(*pilot.Instance)
	if prof != "" {
		started = func(p *pilot.Instance) {
			cpu.Add(1)
			go func() {
				defer cpu.Done()
				// The monitoring port opens a moment after the start.
				for i := 0; i < 50; i++ {
					// Not p.Get: its 5 s timeout is shorter than the profile.
					resp, err := http.Get("http://" + p.MonitoringAddr + "/debug/pprof/profile?seconds=30")
					if err == nil {
						body, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						if err == nil && resp.StatusCode == http.StatusOK {
							_ = os.WriteFile(prof+".cpu", body, 0o644)
							return
						}
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}
	}
	ready, rss := ingestWith(b, interfaces*providers, pilot.Options{
		Args: []string{"--dubboRegistry=" + srv.URL() + "?name=bench", "--dubboSyncTimeout=300s", "--dubboNacosDir=" + b.TempDir()},
	}, started, func(p *pilot.Instance) {
		requests = metricSum(b, p, `nacos_client_request_count\{[^}]*module="naming"[^}]*\} (\S+)`)
		if prof != "" {
			cpu.Wait()
			writeProfile(b, p, "/debug/pprof/heap?gc=1", prof+".heap")
		}
	})
	b.ReportMetric(requests, "requests")
	b.ReportMetric(ready, "s-to-ready")
	b.ReportMetric(rss, "MiB-rss")
	b.ReportMetric(float64(interfaces*providers), "providers")
	b.ReportMetric(seeded, "s-seed")
	b.ReportMetric(0, "ns/op")
}

// writeProfile saves a pprof profile of istiod (its monitoring port) to path.
func writeProfile(b *testing.B, p *pilot.Instance, path, file string) {
	if err := os.WriteFile(file, p.Debug(b, path), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %s", file)
}

func nacosChurnService(i int) string { return "providers:" + churnIface(i) + "::" }

// BenchmarkNacosChurn is BenchmarkChurn's registry case with the providers in a real
// Nacos-protocol server: 100 instance registrations/deregistrations per second
// (DUBBO_BENCH_CHURN, default 1m) over 10 services, a MOSN sidecar watching. Reported
// as for ZooKeeper (change -> EDS at the client, CDS/LDS pushes caused), and beside it
// the same changes as a plain SDK subscriber sees them (server-ms-*): the part of the
// latency that is the server's own push path.
func BenchmarkNacosChurn(b *testing.B) {
	d := envDuration("DUBBO_BENCH_CHURN", time.Minute)
	const rate = 100
	srv := nacosfw.Start(b, nacosfw.Options{})
	md := func(svc int) map[string]string { return nacosMetadata("churn-app", churnIface(svc), "", 1) }
	for i := 0; i < churnServices; i++ {
		srv.RegisterInstance(b, "", nacosChurnService(i), "", "10.0.0.1", 20880, md(i))
	}
	// Setup is complete when the server lists them (its service list lags registrations
	// by about a second, and istiod lists services every 10 s).
	for i := 0; i < churnServices; i++ {
		for n, err := nacosInstanceCount(srv, nacosChurnService(i)); n < 1; n, err = nacosInstanceCount(srv, nacosChurnService(i)) {
			if err != nil {
				b.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The reference subscriber: a client of its own, as a Dubbo consumer is.
	sdk := newObserver()
	watcher := srv.NamingClient(b, "")
	for i := 0; i < churnServices; i++ {
		cl := churnCluster(i)
		err := watcher.Subscribe(&vo.SubscribeParam{
			ServiceName: nacosChurnService(i),
			SubscribeCallback: func(instances []model.Instance, err error) {
				if err != nil {
					return
				}
				ports := map[uint32]bool{}
				for _, in := range instances {
					ports[uint32(in.Port)] = true
				}
				sdk.see(cl, ports, time.Now())
			},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	p := pilot.Start(b, pilot.Options{
		Args: []string{"--dubboRegistry=" + srv.URL(), "--dubboNacosDir=" + b.TempDir()},
		Env:  []string{"PILOT_DEBOUNCE_AFTER=100ms", "PILOT_DEBOUNCE_MAX=10s"},
	})
	p.WaitReady(b, 60*time.Second)
	// A registration is a synchronous round trip of ~35 ms here (Polaris writes its store
	// before answering): each service's changes go through a worker and a client of its
	// own, in order, so the 10 services together keep up with 100 changes/s. A change's
	// time is when it is requested, so waiting in a worker's queue counts as latency.
	queues := make([]chan func() error, churnServices)
	errs := make(chan error, churnServices)
	var workers sync.WaitGroup
	for svc := range queues {
		queues[svc] = make(chan func() error, 1000)
		workers.Add(1)
		go func() {
			defer workers.Done()
			for f := range queues[svc] {
				if err := f(); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	clients := make([]naming_client.INamingClient, churnServices)
	for svc := range clients {
		clients[svc] = srv.NamingClient(b, "")
	}
	changes := runChurn(b, p, xdsview.Node("10.9.0.1", "watcher", "default", nil), d, rate,
		func(svc int, port uint32) {
			queues[svc] <- func() error {
				ok, err := clients[svc].RegisterInstance(vo.RegisterInstanceParam{
					ServiceName: nacosChurnService(svc), Ip: "10.0.1.1", Port: uint64(port),
					Weight: 1, Enable: true, Healthy: true, Ephemeral: true, Metadata: md(svc),
				})
				if err != nil || !ok {
					return fmt.Errorf("register %s port %d: ok=%v err=%v", nacosChurnService(svc), port, ok, err)
				}
				return nil
			}
		},
		func(svc int, port uint32) {
			queues[svc] <- func() error {
				ok, err := clients[svc].DeregisterInstance(vo.DeregisterInstanceParam{
					ServiceName: nacosChurnService(svc), Ip: "10.0.1.1", Port: uint64(port), Ephemeral: true,
				})
				if err != nil || !ok {
					return fmt.Errorf("deregister %s port %d: ok=%v err=%v", nacosChurnService(svc), port, ok, err)
				}
				return nil
			}
		})
	for _, q := range queues {
		close(q)
	}
	workers.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	// DUBBO_BENCH_LOG=<file> keeps istiod's log (e.g. to find what caused a full push).
	if f := os.Getenv("DUBBO_BENCH_LOG"); f != "" {
		_ = os.WriteFile(f, []byte(p.Log()), 0o644)
	}
	lat, missed := sdk.latencies(changes)
	if len(lat) == 0 {
		b.Fatalf("no change reached the SDK subscriber (%d missed)", missed)
	}
	b.ReportMetric(percentile(lat, 0.5), "server-ms-p50")
	b.ReportMetric(percentile(lat, 0.99), "server-ms-p99")
	b.ReportMetric(float64(missed), "server-unseen")
}
