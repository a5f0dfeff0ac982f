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

package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/fixtures"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

const versionSubsets = fixtures.VersionSubsets

const (
	demoIface   = fixtures.DemoIface
	mainCluster = "outbound|20880||com.example.demoservice"
	v1Cluster   = "outbound|20880|v1|com.example.demoservice"
	v2Cluster   = "outbound|20880|v2|com.example.demoservice"
)

func loadAssignments(r *discovery.DiscoveryResponse) (map[string][]string, error) {
	las, err := adsclient.Decode[endpoint.ClusterLoadAssignment](r)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, la := range las {
		out[la.ClusterName] = endpointAddrs(la)
	}
	return out, nil
}

// wantEndpoints matches an EDS response that carries an assignment for every cluster of
// want, with exactly those endpoints ("" is an assignment that was sent, with none). A
// cluster missing from the response is a mismatch, never "".
func wantEndpoints(want map[string]string) func(*discovery.DiscoveryResponse) error {
	return func(r *discovery.DiscoveryResponse) error {
		got, err := loadAssignments(r)
		if err != nil {
			return err
		}
		for _, c := range slices.Sorted(maps.Keys(want)) {
			eps, sent := got[c]
			if !sent {
				return fmt.Errorf("%s: no load assignment in the response (it has %v)", c, slices.Sorted(maps.Keys(got)))
			}
			if g := strings.Join(eps, ","); g != want[c] {
				return fmt.Errorf("%s: endpoints %q, want %q", c, g, want[c])
			}
		}
		return nil
	}
}

// fullPushRequests reads how many full-push requests istiod has received
// (pilot_inbound_updates{type="config"}: every DiscoveryServer.ConfigUpdate, the only way
// in for a registry or config change that rebuilds CDS/LDS/RDS).
func fullPushRequests(t *testing.T, p *pilot.Instance) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^pilot_inbound_updates\{type="config"\} (\S+)$`).FindStringSubmatch(string(p.Debug(t, "/metrics")))
	if m == nil {
		// istiod has had at least one by the time it is ready (its first push context).
		t.Fatalf("no pilot_inbound_updates{type=\"config\"} in /metrics")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("pilot_inbound_updates: %v", err)
	}
	return v
}

// noFullPushFor checks that the change behind an EDS update the client c has just
// received caused no full push. The ADS stream is ordered, and a full push sends CDS
// before EDS: a CDS/LDS/RDS response caused by the change has arrived by now. And
// the registry handles a provider change (asking istiod for any full push it
// needs) before it pushes its endpoints, so a full-push request would be counted by
// now. No window to wait out.
func noFullPushFor(t *testing.T, p *pilot.Instance, c *adsclient.Client, change string, before xdsCounts, fullBefore float64) {
	t.Helper()
	if after := countsOf(c); after != before {
		t.Errorf("%s pushed more than EDS: LDS/RDS/CDS responses %v before, %v after", change, before, after)
	}
	if n := fullPushRequests(t, p); n != fullBefore {
		t.Errorf("%s made %v full-push requests to istiod, want none (EDS only)", change, n-fullBefore)
	}
}

// xdsCounts is how many LDS, RDS and CDS responses a client has received.
type xdsCounts struct{ lds, rds, cds int }

func countsOf(c *adsclient.Client) xdsCounts {
	return xdsCounts{c.Responses(adsclient.ListenerType), c.Responses(adsclient.RouteType), c.Responses(adsclient.ClusterType)}
}

// TestZooKeeperProvidersServedOverXDS is the registry issue's "done when": two providers
// of one interface on one IP with their own ports, version subsets, and a provider that
// stops reaching a connected ADS client as an EDS update.
func TestZooKeeperProvidersServedOverXDS(t *testing.T) {
	zs := zk.Start(t)
	v1 := zk.Connect(t, zs.Addr, 10*time.Second)
	v1.Register(t, demoIface, zk.ProviderURL("10.0.0.1", 20880, demoIface, map[string]string{"version": "1.0.0"}))
	v2 := zk.Connect(t, zs.Addr, 10*time.Second)
	v2.Register(t, demoIface, zk.ProviderURL("10.0.0.1", 20890, demoIface, map[string]string{"version": "2.0.0"}))

	p := pilot.Start(t, pilot.Options{
		ConfigDir: writeConfig(t, map[string]string{"dr.yaml": versionSubsets}),
		Args:      []string{"--dubboRegistry=zookeeper://" + zs.Addr + "?name=zk-e2e"},
	})
	p.WaitReady(t, 60*time.Second)

	c := envoyAwaitClusters(t, p, func(cs map[string]*cluster.Cluster) error {
		for _, n := range []string{mainCluster, v1Cluster, v2Cluster} {
			if cs[n].GetType() != cluster.Cluster_EDS {
				return fmt.Errorf("no EDS cluster %s", n)
			}
		}
		return nil
	})
	if err := c.Watch(adsclient.EndpointType, mainCluster, v1Cluster, v2Cluster); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.EndpointType, wantEndpoints(map[string]string{
		mainCluster: "10.0.0.1:20880,10.0.0.1:20890",
		v1Cluster:   "10.0.0.1:20880",
		v2Cluster:   "10.0.0.1:20890",
	})); err != nil {
		t.Fatal(err)
	}

	// /debug/dubboz shows both instances with their ports and labels.
	var view struct {
		Registries []struct {
			Name      string `json:"name"`
			Connected bool   `json:"connected"`
		} `json:"registries"`
		Interfaces []struct {
			Interface string `json:"interface"`
			Hostname  string `json:"hostname"`
			Instances []struct {
				Port   int               `json:"port"`
				Labels map[string]string `json:"labels"`
			} `json:"instances"`
		} `json:"interfaces"`
	}
	if err := json.Unmarshal(p.Debug(t, "/debug/dubboz"), &view); err != nil {
		t.Fatal(err)
	}
	// One registry read at both levels (the default), and its config center: three sources.
	if len(view.Registries) != 3 || view.Registries[0].Name != "zk-e2e" || view.Registries[1].Name != "zk-e2e/app" ||
		view.Registries[2].Name != "zk-e2e/config" ||
		!view.Registries[0].Connected || !view.Registries[1].Connected || !view.Registries[2].Connected {
		t.Fatalf("dubboz registries %+v, want zk-e2e, zk-e2e/app and zk-e2e/config, connected", view.Registries)
	}
	if len(view.Interfaces) != 1 || view.Interfaces[0].Interface != demoIface || len(view.Interfaces[0].Instances) != 2 {
		t.Fatalf("dubboz interfaces %+v", view.Interfaces)
	}
	// ... on the HTTP port too, as istiod's other debug endpoints.
	if code, _, err := p.Get("http://" + p.HTTPAddr + "/debug/dubboz"); err != nil || code != 200 {
		t.Fatalf("/debug/dubboz on the HTTP port: %d %v", code, err)
	}
	// Metrics on the monitoring port.
	metrics := string(p.Debug(t, "/metrics"))
	for _, re := range []string{
		`dubbo_registry_connected\{registry="zk-e2e"\} 1`,
		`dubbo_registry_providers\{registry="zk-e2e"\} 2`,
		`dubbo_endpoints 2`,
	} {
		if !regexp.MustCompile(re).MatchString(metrics) {
			t.Errorf("/metrics has no %s", re)
		}
	}

	// The v2 provider stops (its session closes, its ephemeral node goes): only its
	// endpoint leaves, as an incremental EDS update; no CDS push. The v2 subset's
	// assignment is sent, empty.
	before, fullBefore := countsOf(c), fullPushRequests(t, p)
	start := time.Now()
	v2.Close()
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.EndpointType, wantEndpoints(map[string]string{
		mainCluster: "10.0.0.1:20880",
		v1Cluster:   "10.0.0.1:20880",
		v2Cluster:   "",
	})); err != nil {
		t.Fatal(err)
	}
	// Reported, not asserted: a busy machine decides the wall-clock time.
	t.Logf("provider removal reached the ADS client in %v", time.Since(start))
	noFullPushFor(t, p, c, "provider churn", before, fullBefore)
}
