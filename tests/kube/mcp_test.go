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

package kube_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/fixtures"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// mcpServiceEntry is an ordinary (non-Dubbo) service the adapter's MCP server carries
// beside the rules for registry services: one HTTP and one TCP port.
const mcpServiceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: shop
  namespace: default
spec:
  hosts:
  - shop.example.com
  location: MESH_INTERNAL
  ports:
  - number: 8080
    name: http
    protocol: HTTP
  - number: 3306
    name: tcp-mysql
    protocol: TCP
  resolution: STATIC
  endpoints:
  - address: 10.2.0.1
  - address: 10.2.0.2
`

// TestMCPOverXDSConfigSource is the path of teams that already run an adapter: istiod
// reads its Istio config from an MCP server over xDS (mesh config
// `configSources: [{address: xds://...}]`), its ZooKeeper registry on beside it.
//
// The MCP server is stock upstream pilot-discovery serving a config directory through
// its "api" generator. It runs against the package's API server only because stock
// upstream cannot run without Kubernetes (its ServiceEntry controller dereferences the
// multicluster controller, which exists only with a kube client); --configDir still
// makes the files, not the CRDs, its config store. Upstream reads no `protocol: DUBBO`,
// so the source carries what an adapter sends for registry services: the
// DestinationRule and VirtualService of a ZooKeeper-registered interface. dubbo-istiod
// runs standalone (no Kubernetes): all its Istio config comes over xds://.
func TestMCPOverXDSConfigSource(t *testing.T) {
	zks := zk.Start(t)
	registerDemo(t, zks)

	// Both read a mesh config file: the MCP server's does not follow the shared API
	// server's "istio" ConfigMap (whose configSources would override --configDir), and
	// the two differ only in the config source.
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	srcDir := filepath.Join(dir, "source")
	if err := os.Mkdir(srcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write("source/dr.yaml", demoSubsets)
	write("source/vs.yaml", fixtures.GrayAndSplit(80, 20))
	write("source/se.yaml", mcpServiceEntry)
	const baseMesh = "ingressControllerMode: \"OFF\"\n"

	// The api generator serves only verified control-plane identities unless
	// ENABLE_XDS_API_GENERATOR_AUTH=false; this is plaintext xDS on loopback.
	start := time.Now()
	mcp := startIstiod(t, pilot.Options{
		PodName:   "istiod-mcp",
		Bin:       upstreamBin(t),
		ConfigDir: srcDir,
		Args:      []string{"--meshConfig=" + write("mcp-mesh.yaml", baseMesh)},
		Env:       []string{"ENABLE_XDS_API_GENERATOR_AUTH=false"},
	})
	t.Logf("stock upstream MCP server ready in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	p := pilot.Start(t, pilot.Options{Args: []string{
		"--meshConfig=" + write("mesh.yaml", baseMesh+"configSources:\n- address: xds://"+mcp.GRPCAddr+"\n"),
		"--dubboRegistry=zookeeper://" + zks.Addr + "?name=zk-mcp",
	}})
	// istiod is ready only once its config sources have synced: the MCP config is in.
	p.WaitReady(t, 60*time.Second)
	t.Logf("dubbo-istiod ready with the xds:// source in %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(p.Log(), "Started XDS configSource xds://"+mcp.GRPCAddr) {
		t.Fatalf("dubbo-istiod did not start the xds:// config source")
	}

	// A MOSN sidecar: the VirtualService and DestinationRule from the MCP server shape
	// the Dubbo routes and subset clusters of the interface from ZooKeeper.
	mainCluster, v1Cluster, v2Cluster := "outbound|20880||"+demoHost, "outbound|20880|v1|"+demoHost, "outbound|20880|v2|"+demoHost
	mosn := dial(t, p, xdsview.Node("10.1.0.20", "consumer-mcp", "default", nil))
	snap, err := xdsview.Sync(mosn, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v := conformance.Check(snap); len(v) > 0 {
		t.Fatalf("MOSN conformance violations:\n  %s", strings.Join(v, "\n  "))
	}
	split := func(v1, v2 int) string {
		return fmt.Sprintf("%s  method=sayHello  ->  %d%% %s, %d%% %s  [timeout 3s, 2 retries]", demoIface, v1, v1Cluster, v2, v2Cluster)
	}
	want := []string{
		demoIface + "  env=gray  ->  " + v2Cluster,
		split(80, 20),
		demoIface + "  (any call)  ->  " + mainCluster,
	}
	if got := demoRules(snap); !slices.Equal(got, want) {
		t.Fatalf("MOSN rules of %s:\n  %s\nwant:\n  %s", demoIface, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, n := range []string{mainCluster, v1Cluster, v2Cluster} {
		if cl := findCluster(snap, n); cl == nil || cl.GetType() != cluster.Cluster_EDS {
			t.Fatalf("MOSN has no EDS cluster %s", n)
		}
	}
	for c, w := range map[string]string{mainCluster: "10.0.0.1:20880,10.0.0.1:20890", v1Cluster: "10.0.0.1:20880", v2Cluster: "10.0.0.1:20890"} {
		if g := strings.Join(endpointsOf(snap, c), ","); g != w {
			t.Fatalf("MOSN EDS %s = %q, want %q", c, g, w)
		}
	}

	// An Envoy sidecar gets, for the ordinary ServiceEntry, what stock upstream gives an
	// Envoy from the same config: cluster for cluster, endpoints for endpoints.
	shopClusters := []string{"outbound|8080||shop.example.com", "outbound|3306||shop.example.com"}
	ours, theirs := envoyView(t, p, shopClusters), envoyView(t, mcp, shopClusters)
	for _, n := range shopClusters {
		if d := cmp.Diff(ours.clusters[n], theirs.clusters[n], protocmp.Transform()); d != "" {
			t.Errorf("cluster %s: dubbo-istiod (-) and stock upstream (+) differ:\n%s", n, d)
		}
		port := strings.Split(n, "|")[1]
		if w := "10.2.0.1:" + port + ",10.2.0.2:" + port; ours.endpoints[n] != w || theirs.endpoints[n] != w {
			t.Errorf("EDS %s: dubbo-istiod %q, stock upstream %q, want %q", n, ours.endpoints[n], theirs.endpoints[n], w)
		}
	}

	// A change at the source reaches the MOSN sidecar: the split goes 30/70 in the MCP
	// server's config directory; upstream's file watcher, its api generator, our xds://
	// config source and a push carry it to RDS. Written aside and renamed: the watcher
	// never sees a half-written file (a transient deletion of the VirtualService).
	changed := time.Now()
	write("source/.vs.yaml.tmp", fixtures.GrayAndSplit(30, 70))
	if err := os.Rename(filepath.Join(srcDir, ".vs.yaml.tmp"), filepath.Join(srcDir, "vs.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := mosn.AwaitTimeout(60*time.Second, adsclient.RouteType, func(r *discovery.DiscoveryResponse) error {
		rs, err := routeRules(r)
		if err != nil {
			return err
		}
		if !slices.Contains(rs, split(30, 70)) {
			return fmt.Errorf("RDS not updated yet: %q", rs)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the VirtualService change at the MCP server reached the MOSN sidecar in %v", time.Since(changed).Round(time.Millisecond))
}

// demoRules are the MOSN route rules of demoIface (the shared API server's other Dubbo
// services reach dubbo-istiod too, as ServiceEntries the MCP server synthesises).
func demoRules(s conformance.Snapshot) []string {
	var out []string
	for _, r := range rules(s) {
		if strings.HasPrefix(r, demoIface+" ") {
			out = append(out, r)
		}
	}
	return out
}

type envoyClusters struct {
	clusters  map[string]*cluster.Cluster
	endpoints map[string]string
}

// envoyView connects an Envoy sidecar to p and returns the given clusters and their
// endpoints, once every one of them is there.
func envoyView(t *testing.T, p *pilot.Instance, names []string) envoyClusters {
	t.Helper()
	v := envoyClusters{clusters: map[string]*cluster.Cluster{}, endpoints: map[string]string{}}
	c := dial(t, p, adsclient.Node{IP: "10.1.0.1", Name: "consumer-1", Namespace: "default",
		Metadata: map[string]any{"LABELS": map[string]any{"app": "consumer"}}})
	if err := c.Watch(adsclient.ClusterType); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.ClusterType, func(r *discovery.DiscoveryResponse) error {
		clusters, err := adsclient.Decode[cluster.Cluster](r)
		if err != nil {
			return err
		}
		for _, n := range names {
			i := slices.IndexFunc(clusters, func(c *cluster.Cluster) bool { return c.Name == n })
			if i < 0 {
				return fmt.Errorf("no cluster %s among %d", n, len(clusters))
			}
			v.clusters[n] = clusters[i]
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Watch(adsclient.EndpointType, names...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.EndpointType, func(r *discovery.DiscoveryResponse) error {
		las, err := adsclient.Decode[endpoint.ClusterLoadAssignment](r)
		if err != nil {
			return err
		}
		s := conformance.Snapshot{Endpoints: las}
		for _, n := range names {
			if !slices.ContainsFunc(las, func(la *endpoint.ClusterLoadAssignment) bool { return la.ClusterName == n }) {
				return fmt.Errorf("no load assignment for %s", n)
			}
			v.endpoints[n] = strings.Join(endpointsOf(s, n), ",")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}
