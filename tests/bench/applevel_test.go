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
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// BenchmarkAppLevelIngest: istiod starts against Dubbo 3 application-level registrations,
// 1,000 applications x 10 instances x 5 interfaces (remote metadata, one revision per
// application, nodes as dubbo-go v3.3.2 writes them; DUBBO_BENCH_APPS overrides), beside
// the same 50,000 providers registered at interface level.
//
// Measured: start until /ready answers 200 with every endpoint known, RSS, the requests
// istiod sent to ZooKeeper, and (application level) the metadata fetches: one per
// (application, revision) is the target, not one per instance.
func BenchmarkAppLevelIngest(b *testing.B) {
	apps, instances, ifaces := 1000, 10, 5
	if n, err := strconv.Atoi(os.Getenv("DUBBO_BENCH_APPS")); err == nil && n > 0 {
		apps = n
	}
	providers := apps * instances * ifaces
	b.Logf("%d applications x %d instances x %d interfaces = %d providers", apps, instances, ifaces, providers)
	b.Run("application", func(b *testing.B) {
		zs := zkt.Start(b)
		c := zkt.Connect(b, zs.Addr, 30*time.Second)
		seedApps(b, c, apps, instances, ifaces)
		before := zs.Mntr("zk_packets_received")
		var fetches float64
		ready, rss := ingestWith(b, providers, pilot.Options{
			Args: []string{"--dubboRegistry=zookeeper://" + zs.Addr + "?name=bench&registry-type=service", "--dubboSyncTimeout=120s"},
		}, nil, func(p *pilot.Instance) {
			fetches = metricSum(b, p, `dubbo_metadata_fetches_total\{[^}]*result="ok"[^}]*\} (\S+)`)
		})
		b.ReportMetric(zs.Mntr("zk_packets_received")-before, "zk-requests")
		b.ReportMetric(fetches, "metadata-fetches")
		b.ReportMetric(ready, "s-to-ready")
		b.ReportMetric(rss, "MiB-rss")
		b.ReportMetric(float64(providers), "providers")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("interface", func(b *testing.B) {
		zs := zkt.Start(b)
		c := zkt.Connect(b, zs.Addr, 30*time.Second)
		seedAppsAsInterfaces(b, c, apps, instances, ifaces)
		before := zs.Mntr("zk_packets_received")
		ready, rss := ingest(b, providers, pilot.Options{
			Args: []string{"--dubboRegistry=zookeeper://" + zs.Addr + "?name=bench&registry-type=interface", "--dubboSyncTimeout=120s"},
		})
		b.ReportMetric(zs.Mntr("zk_packets_received")-before, "zk-requests")
		b.ReportMetric(ready, "s-to-ready")
		b.ReportMetric(rss, "MiB-rss")
		b.ReportMetric(float64(providers), "providers")
		b.ReportMetric(0, "ns/op")
	})
}

func appIP(a, i int) string { return fmt.Sprintf("10.%d.%d.%d", a/200, a%200, i+1) }

func appIface(a, k int) string { return fmt.Sprintf("com.example.bench.App%04dService%d", a, k) }

// seedApps writes what dubbo-go v3.3.2 writes with registry-type=service and remote
// metadata: /dubbo/<app>/<revision> and one /services/<app>/<ip:port> per instance.
func seedApps(b *testing.B, c *zkt.Client, apps, instances, ifaces int) {
	b.Helper()
	acl := zk.WorldACL(zk.PermAll)
	var ops []any
	flush := func() { ops = multi(b, c, ops) }
	for _, p := range []string{"/dubbo", "/services"} {
		ops = append(ops, &zk.CreateRequest{Path: p, Acl: acl})
	}
	flush()
	endpoints := `[{"port":20880,"protocol":"dubbo"}]`
	for a := 0; a < apps; a++ {
		app, rev := fmt.Sprintf("bench-app-%04d", a), fmt.Sprintf("rev%04d", a)
		services := map[string]any{}
		for k := 0; k < ifaces; k++ {
			i := appIface(a, k)
			services[i+":1.0.0:dubbo"] = map[string]any{"name": i, "version": "1.0.0", "protocol": "dubbo", "port": 20880, "path": i,
				"params": map[string]string{"application": app, "version": "1.0.0", "methods": "sayHello", "release": "3.3.2", "weight": "0"}}
		}
		md, _ := json.Marshal(map[string]any{"app": app, "revision": rev, "services": services})
		ops = append(ops, &zk.CreateRequest{Path: "/dubbo/" + app, Acl: acl},
			&zk.CreateRequest{Path: "/dubbo/" + app + "/" + rev, Data: md, Acl: acl},
			&zk.CreateRequest{Path: "/services/" + app, Acl: acl})
		for i := 0; i < instances; i++ {
			ip := appIP(a, i)
			body, _ := json.Marshal(map[string]any{"name": app, "id": ip + ":20880", "address": ip, "port": 20880,
				"payload": map[string]any{"@class": "org.apache.dubbo.registry.zookeeper.ZookeeperInstance", "name": app, "id": ip + ":20880",
					"metadata": map[string]string{"dubbo.endpoints": endpoints, "dubbo.metadata.revision": rev,
						"dubbo.metadata.storage-type": "remote", "dubbo.subscribed-services.revision": "0", "registry.id": "bench"}}})
			ops = append(ops, &zk.CreateRequest{Path: "/services/" + app + "/" + ip + ":20880", Data: body, Acl: acl, Flags: zk.FlagEphemeral})
		}
		if len(ops) >= 100 {
			flush()
		}
	}
	flush()
}

// seedAppsAsInterfaces registers the same providers at interface level.
func seedAppsAsInterfaces(b *testing.B, c *zkt.Client, apps, instances, ifaces int) {
	b.Helper()
	acl := zk.WorldACL(zk.PermAll)
	var ops []any
	flush := func() { ops = multi(b, c, ops) }
	ops = append(ops, &zk.CreateRequest{Path: "/dubbo", Acl: acl})
	flush()
	for a := 0; a < apps; a++ {
		for k := 0; k < ifaces; k++ {
			iface := appIface(a, k)
			ops = append(ops, &zk.CreateRequest{Path: "/dubbo/" + iface, Acl: acl},
				&zk.CreateRequest{Path: "/dubbo/" + iface + "/providers", Acl: acl})
			for i := 0; i < instances; i++ {
				u := zkt.ProviderURL(appIP(a, i), 20880, iface, map[string]string{"version": "1.0.0", "application": fmt.Sprintf("bench-app-%04d", a)})
				ops = append(ops, &zk.CreateRequest{Path: zkt.NodePath("/dubbo", iface, "providers", u), Acl: acl, Flags: zk.FlagEphemeral})
			}
			if len(ops) >= 200 {
				flush()
			}
		}
	}
	flush()
}

// multi applies ops in one ZooKeeper transaction and returns ops emptied.
func multi(b *testing.B, c *zkt.Client, ops []any) []any {
	b.Helper()
	if len(ops) > 0 {
		if _, err := c.Conn.Multi(ops...); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	return ops[:0]
}

// metricSum adds the values of every /metrics line matching re (one capture: the value).
func metricSum(b *testing.B, p *pilot.Instance, re string) float64 {
	b.Helper()
	sum := 0.0
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(string(p.Debug(b, "/metrics")), -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			b.Fatalf("metric %q: %v", m[0], err)
		}
		sum += v
	}
	return sum
}
