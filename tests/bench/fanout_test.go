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
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
)

const fanoutServices = 100

// BenchmarkFanout: 1,000 sidecars (DUBBO_BENCH_FANOUT_CLIENTS) connected at once to one
// istiod serving 100 Dubbo services with VirtualServices and DestinationRules; one
// VirtualService changes.
//
//	mosn:  MOSN sidecars, the services with protocol DUBBO (dubbo-istiod's generators)
//	http:  Envoy sidecars, the same services as HTTP (upstream's generators, best case)
//
// Reported: time until all hold the new rule, istiod memory per connection (beyond a
// first sidecar's: KiB-heap-first, what istiod builds once for all plus one
// connection), and the time to connect and sync all.
//
// DUBBO_BENCH_PPROF=<prefix> writes istiod's heap after GC before and after the
// connections (<prefix>-<shape>-before.heap, -after.heap: `go tool pprof -diff_base
// before after` is what the connections hold) and a CPU profile of the VirtualService
// change (<prefix>-<shape>-change.cpu, DUBBO_BENCH_PPROF_SECONDS long, default 10 s).
func BenchmarkFanout(b *testing.B) {
	fanoutClients := envInt("DUBBO_BENCH_FANOUT_CLIENTS", 1000)
	prof := os.Getenv("DUBBO_BENCH_PPROF")
	for _, shape := range []string{shapeMOSN, shapeHTTP} {
		b.Run(shape, func(b *testing.B) {
			dir := b.TempDir()
			cfg := shapeConfig(shape, fanoutServices)
			path := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				b.Fatal(err)
			}
			// All connections at once: istiod throttles new streams to 25/s by default, and
			// a stream that waits more than a second for its turn is refused.
			p := pilot.Start(b, pilot.Options{ConfigDir: dir, Env: []string{"PILOT_DEBOUNCE_AFTER=100ms", "PILOT_DEBOUNCE_MAX=10s",
				fmt.Sprintf("PILOT_MAX_REQUESTS_PER_SECOND=%d", max(1000, 2*fanoutClients))}})
			p.WaitReady(b, 60*time.Second)
			time.Sleep(time.Second)
			heapStart := heapAfterGC(b, p)
			node := func(ip, name string) adsclient.Node {
				if shape == shapeMOSN {
					return xdsview.Node(ip, name, "default", nil)
				}
				return adsclient.Node{IP: ip, Name: name, Namespace: "default"}
			}
			// A first sidecar fills what istiod builds once for all (upstream's cluster and
			// route caches, our memos and route cache): the baseline of the per-connection
			// figures is taken with it connected, and its cost is reported apart.
			first, err := adsclient.Dial(p.GRPCAddr, node("10.211.0.1", "first"))
			if err != nil {
				b.Fatal(err)
			}
			defer first.Close()
			if _, err := xdsview.Sync(first, 60*time.Second); err != nil {
				b.Fatal(err)
			}
			time.Sleep(time.Second)
			before, heapBefore := rssMiB(p.PID()), heapAfterGC(b, p)
			if prof != "" {
				writeProfile(b, p, "/debug/pprof/heap?gc=1", fmt.Sprintf("%s-%s-before.heap", prof, shape))
			}

			clients := make([]*adsclient.Client, fanoutClients)
			var wg sync.WaitGroup
			errs := make(chan error, fanoutClients)
			start := time.Now()
			for i := range clients {
				c, err := adsclient.Dial(p.GRPCAddr, node(fmt.Sprintf("10.210.%d.%d", i/250, i%250+1), fmt.Sprintf("c%d", i)))
				if err != nil {
					b.Fatal(err)
				}
				clients[i] = c
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := xdsview.Sync(c, 300*time.Second); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			connect := time.Since(start)
			defer func() {
				for _, c := range clients {
					c.Close()
				}
			}()
			time.Sleep(2 * time.Second)
			after, heapAfter := rssMiB(p.PID()), heapAfterGC(b, p)
			var cpu sync.WaitGroup
			defer cpu.Wait() // also on a failure: the profile's goroutine logs to b
			if prof != "" {
				writeProfile(b, p, "/debug/pprof/heap?gc=1", fmt.Sprintf("%s-%s-after.heap", prof, shape))
				cpu.Add(1)
				go func() {
					defer cpu.Done()
					cpuProfile(b, p, envDuration("DUBBO_BENCH_PPROF_SECONDS", 10*time.Second), fmt.Sprintf("%s-%s-change.cpu", prof, shape))
				}()
				time.Sleep(200 * time.Millisecond) // the profile has started
			}

			// One VirtualService changes.
			b.ResetTimer()
			start = time.Now()
			changed := strings.Replace(cfg, "exact: gray", "exact: blue", 1)
			tmp := path + ".tmp"
			if err := os.WriteFile(tmp, []byte(changed), 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				b.Fatal(err)
			}
			deadline := time.Now().Add(120 * time.Second)
			for _, c := range clients {
				for !holdsRule(c, "blue") {
					if time.Now().After(deadline) {
						b.Fatalf("not every sidecar got the VirtualService change within 120s")
					}
					select {
					case <-c.Changed():
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
			b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms-to-all")
			b.StopTimer()
			b.ReportMetric((after-before)*1024/float64(fanoutClients), "KiB-rss/conn")
			b.ReportMetric((heapAfter-heapBefore)*1024/float64(fanoutClients), "KiB-heap/conn")
			b.ReportMetric(float64(connect.Milliseconds()), "ms-connect-all")
			b.ReportMetric(float64(fanoutClients), "sidecars")
			b.ReportMetric((heapBefore-heapStart)*1024, "KiB-heap-first")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// cpuProfile saves a CPU profile of istiod over the next d to file.
func cpuProfile(b *testing.B, p *pilot.Instance, d time.Duration, file string) {
	// Not p.Debug: its 5 s timeout is shorter than the profile.
	c := http.Client{Timeout: d + 30*time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.MonitoringAddr, int(d.Seconds())))
	if err != nil {
		b.Errorf("CPU profile: %v", err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Errorf("CPU profile: code=%d err=%v", resp.StatusCode, err)
		return
	}
	if err := os.WriteFile(file, body, 0o644); err != nil {
		b.Error(err)
		return
	}
	b.Logf("wrote %s", file)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func holdsRule(c *adsclient.Client, marker string) bool {
	for _, a := range c.Held(adsclient.RouteType) {
		if bytes.Contains(a.GetValue(), []byte(marker)) {
			return true
		}
	}
	return false
}

// heapAfterGC makes istiod collect garbage (the pprof heap endpoint does, with gc=1) and
// returns the Go heap in use, in MiB.
func heapAfterGC(b *testing.B, p *pilot.Instance) float64 {
	p.Debug(b, "/debug/pprof/heap?gc=1")
	m := regexp.MustCompile(`(?m)^go_memstats_heap_inuse_bytes (\S+)`).FindSubmatch(p.Debug(b, "/metrics"))
	if m == nil {
		b.Fatal("no go_memstats_heap_inuse_bytes in /metrics")
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		b.Fatal(err)
	}
	return v / (1 << 20)
}
