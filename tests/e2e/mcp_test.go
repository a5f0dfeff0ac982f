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
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// mcpServiceEntry is an ordinary (non-Dubbo) service an adapter's MCP server carries
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
// `configSources: [{address: xds://...}]`). The MCP server is stock upstream
// pilot-discovery serving a config directory through its "api" generator (upstream
// reads no `protocol: DUBBO`, so the source carries what an adapter sends for registry
// services: the DestinationRule and VirtualService of a ZooKeeper-registered interface),
// and dubbo-istiod runs its ZooKeeper registry beside that config source.
func TestMCPOverXDSConfigSource(t *testing.T) {
	zs := zk.Start(t)
	v1 := zk.Connect(t, zs.Addr, 10*time.Second)
	v1.Register(t, demoIface, zk.ProviderURL("10.0.0.1", 20880, demoIface, map[string]string{"version": "1.0.0"}))
	v2 := zk.Connect(t, zs.Addr, 10*time.Second)
	v2.Register(t, demoIface, zk.ProviderURL("10.0.0.1", 20890, demoIface, map[string]string{"version": "2.0.0"}))

	// The MCP server: stock upstream, no Kubernetes, its config from files. Its api
	// generator serves only verified control-plane identities unless
	// ENABLE_XDS_API_GENERATOR_AUTH=false; this is plaintext xDS on loopback.
	srcDir := writeConfig(t, map[string]string{"dr.yaml": versionSubsets, "vs.yaml": grayAndSplit, "se.yaml": mcpServiceEntry})
	start := time.Now()
	mcp := pilot.Start(t, pilot.Options{
		Bin:       pilot.UpstreamBin(t),
		ConfigDir: srcDir,
		Env:       []string{"ENABLE_XDS_API_GENERATOR_AUTH=false"},
	})

	meshFile := filepath.Join(t.TempDir(), "mesh.yaml")
	if err := os.WriteFile(meshFile, []byte("configSources:\n- address: xds://"+mcp.GRPCAddr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mcp.WaitReady(t, 60*time.Second)
	p := pilot.Start(t, pilot.Options{
		Args: []string{"--meshConfig=" + meshFile, "--dubboRegistry=zookeeper://" + zs.Addr + "?name=zk-mcp"},
	})
	// istiod is ready only once its config sources have synced: the MCP config is in.
	p.WaitReady(t, 60*time.Second)
	t.Logf("MCP server and dubbo-istiod ready in %v", time.Since(start))
	if !strings.Contains(p.Log(), "Started XDS configSource xds://"+mcp.GRPCAddr) {
		t.Fatalf("dubbo-istiod did not start the xds:// config source")
	}

	// A MOSN sidecar: the VirtualService and DestinationRule from the MCP server shape
	// the Dubbo routes and subset clusters of the interface from ZooKeeper.
	mosn, s := syncMOSN(t, p, xdsview.Node("10.1.0.20", "consumer-mcp", "default", nil))
	want := []string{
		"service=com.example.DemoService&env=gray -> " + v2Cluster,
		"service=com.example.DemoService&method=sayHello -> " + v1Cluster + ":80," + v2Cluster + ":20 timeout=3s retries=2",
		"service=com.example.DemoService -> " + mainCluster,
	}
	rc := findRoute(s, "dubbo-20881")
	if rc == nil {
		t.Fatalf("no route configuration dubbo-20881 among %d", len(s.Routes))
	}
	if got := ruleStrings(rc); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("dubbo-20881 rules:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, n := range []string{mainCluster, v1Cluster, v2Cluster} {
		if cl := findCluster(s, n); cl == nil || cl.GetType() != cluster.Cluster_EDS {
			t.Fatalf("MOSN has no EDS cluster %s", n)
		}
	}
	eps := map[string]string{}
	for _, la := range s.Endpoints {
		eps[la.ClusterName] = strings.Join(endpointAddrs(la), ",")
	}
	for c, w := range map[string]string{mainCluster: "10.0.0.1:20880,10.0.0.1:20890", v1Cluster: "10.0.0.1:20880", v2Cluster: "10.0.0.1:20890"} {
		if g, ok := eps[c]; !ok || g != w {
			t.Fatalf("MOSN EDS %s = %q (sent: %v), want %q", c, g, ok, w)
		}
	}

	// An Envoy sidecar gets, for the ordinary ServiceEntry, what stock upstream gives an
	// Envoy from the same config: cluster for cluster, endpoints for endpoints.
	shopClusters := []string{"outbound|8080||shop.example.com", "outbound|3306||shop.example.com"}
	ours, theirs := envoyShop(t, p, shopClusters), envoyShop(t, mcp, shopClusters)
	for _, n := range shopClusters {
		if !proto.Equal(ours.clusters[n], theirs.clusters[n]) {
			t.Errorf("cluster %s differs from stock upstream's:\n%s\nvs\n%s", n, protojson.Format(ours.clusters[n]), protojson.Format(theirs.clusters[n]))
		}
		if ours.endpoints[n] != "10.2.0.1:"+strings.Split(n, "|")[1]+",10.2.0.2:"+strings.Split(n, "|")[1] || ours.endpoints[n] != theirs.endpoints[n] {
			t.Errorf("EDS %s: %q, stock upstream %q", n, ours.endpoints[n], theirs.endpoints[n])
		}
	}

	// A change at the source reaches the MOSN sidecar: the split goes 30/70 in the MCP
	// server's config directory; upstream's file watcher, its api generator, our xds://
	// config source and a push carry it to RDS.
	vs := strings.Replace(strings.Replace(grayAndSplit, "weight: 80", "weight: 30", 1), "weight: 20", "weight: 70", 1)
	changed := time.Now()
	// Written aside and renamed: the watcher never sees a half-written file (a transient
	// deletion of the VirtualService).
	tmp := filepath.Join(srcDir, ".vs.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(vs), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(srcDir, "vs.yaml")); err != nil {
		t.Fatal(err)
	}
	wantSplit := "service=com.example.DemoService&method=sayHello -> " + v1Cluster + ":30," + v2Cluster + ":70 timeout=3s retries=2"
	if _, err := mosn.AwaitTimeout(60*time.Second, adsclient.RouteType, func(r *discovery.DiscoveryResponse) error {
		rcs, err := adsclient.Decode[route.RouteConfiguration](r)
		if err != nil {
			return err
		}
		for _, rc := range rcs {
			if rc.Name != "dubbo-20881" {
				continue
			}
			got := ruleStrings(rc)
			for _, rule := range got {
				if rule == wantSplit {
					return nil
				}
			}
			return fmt.Errorf("dubbo-20881 rules %q", got)
		}
		return fmt.Errorf("no dubbo-20881 in the response")
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the VirtualService change at the MCP server reached the MOSN sidecar in %v", time.Since(changed))
}

type envoyView struct {
	clusters  map[string]*cluster.Cluster
	endpoints map[string]string
}

// envoyShop connects an Envoy sidecar to p and returns the given clusters and their
// endpoints, once every one of them is there.
func envoyShop(t *testing.T, p *pilot.Instance, names []string) envoyView {
	t.Helper()
	v := envoyView{clusters: map[string]*cluster.Cluster{}, endpoints: map[string]string{}}
	c := envoyAwaitClusters(t, p, func(cs map[string]*cluster.Cluster) error {
		for _, n := range names {
			if cs[n] == nil {
				return fmt.Errorf("no cluster %s among %d", n, len(cs))
			}
			v.clusters[n] = cs[n]
		}
		return nil
	})
	if err := c.Watch(adsclient.EndpointType, names...); err != nil {
		t.Fatal(err)
	}
	r, err := c.AwaitTimeout(30*time.Second, adsclient.EndpointType, func(r *discovery.DiscoveryResponse) error {
		got, err := loadAssignments(r)
		if err != nil {
			return err
		}
		for _, n := range names {
			if _, ok := got[n]; !ok {
				return fmt.Errorf("no load assignment for %s", n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := loadAssignments(r)
	for _, n := range names {
		v.endpoints[n] = strings.Join(got[n], ",")
	}
	return v
}
