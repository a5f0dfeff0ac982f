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
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
)

const dubboServiceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: demo
  namespace: dubbo
spec:
  hosts:
  - com.example.demoservice
  location: MESH_INTERNAL
  ports:
  - number: 20880
    name: dubbo
    protocol: DUBBO
  resolution: STATIC
  endpoints:
  - address: 10.0.0.1
    ports:
      dubbo: 20880
    labels:
      version: v1
  - address: 10.0.0.1
    ports:
      dubbo: 20890
    labels:
      version: v2
`

func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func envoySidecar() adsclient.Node {
	return adsclient.Node{IP: "10.1.0.1", Name: "consumer-1", Namespace: "default",
		Metadata: map[string]any{"LABELS": map[string]any{"app": "consumer"}}}
}

// TestStandaloneServesDubboServiceEntry runs the built binary with no Kubernetes and a
// config directory holding a ServiceEntry with a DUBBO port.
func TestStandaloneServesDubboServiceEntry(t *testing.T) {
	p := pilot.Start(t, pilot.Options{ConfigDir: writeConfig(t, map[string]string{"se.yaml": dubboServiceEntry})})
	p.WaitReady(t, 60*time.Second)

	// The registry knows the port as Dubbo (not "UnsupportedProtocol").
	var services []struct {
		Hostname string `json:"hostname"`
		Ports    []struct {
			Port     int    `json:"port"`
			Protocol string `json:"protocol"`
		} `json:"ports"`
	}
	if err := json.Unmarshal(p.Debug(t, "/debug/registryz"), &services); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range services {
		if s.Hostname == "com.example.demoservice" {
			found = true
			if len(s.Ports) != 1 || s.Ports[0].Protocol != "Dubbo" || s.Ports[0].Port != 20880 {
				t.Fatalf("registryz ports for com.example.demoservice: %+v, want one Dubbo port 20880", s.Ports)
			}
		}
	}
	if !found {
		t.Fatalf("com.example.demoservice not in /debug/registryz")
	}

	const clusterName = "outbound|20880||com.example.demoservice"
	c := envoyAwaitClusters(t, p, func(cs map[string]*cluster.Cluster) error {
		if cl := cs[clusterName]; cl == nil || cl.GetType() != cluster.Cluster_EDS {
			return fmt.Errorf("no EDS cluster %s among %d", clusterName, len(cs))
		}
		return nil
	})

	if err := c.Watch(adsclient.EndpointType, clusterName); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.EndpointType, func(r *discovery.DiscoveryResponse) error {
		las, err := adsclient.Decode[endpoint.ClusterLoadAssignment](r)
		if err != nil {
			return err
		}
		for _, la := range las {
			if la.ClusterName != clusterName {
				continue
			}
			got := endpointAddrs(la)
			want := []string{"10.0.0.1:20880", "10.0.0.1:20890"} // one IP, each endpoint its own port
			if strings.Join(got, ",") != strings.Join(want, ",") {
				return fmt.Errorf("endpoints %v, want %v", got, want)
			}
			return nil
		}
		return fmt.Errorf("no load assignment for %s", clusterName)
	}); err != nil {
		t.Fatal(err)
	}

	// Plain Envoy sidecars keep the opaque TCP path for the Dubbo port.
	if err := c.Watch(adsclient.ListenerType); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.ListenerType, func(r *discovery.DiscoveryResponse) error {
		listeners, err := adsclient.Decode[listener.Listener](r)
		if err != nil {
			return err
		}
		for _, l := range listeners {
			if l.Name != "0.0.0.0_20880" {
				continue
			}
			for _, fc := range l.FilterChains {
				for _, f := range fc.Filters {
					if f.Name == "envoy.filters.network.tcp_proxy" {
						return nil
					}
				}
			}
			return fmt.Errorf("listener 0.0.0.0_20880 has no tcp_proxy filter")
		}
		return fmt.Errorf("no listener 0.0.0.0_20880 among %d", len(listeners))
	}); err != nil {
		t.Fatal(err)
	}
}

// envoyAwaitClusters connects an Envoy sidecar and waits until its CDS satisfies ok.
func envoyAwaitClusters(t *testing.T, p *pilot.Instance, ok func(map[string]*cluster.Cluster) error) *adsclient.Client {
	t.Helper()
	c, err := adsclient.Dial(p.GRPCAddr, envoySidecar())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Watch(adsclient.ClusterType); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitTimeout(30*time.Second, adsclient.ClusterType, func(r *discovery.DiscoveryResponse) error {
		clusters, err := adsclient.Decode[cluster.Cluster](r)
		if err != nil {
			return err
		}
		byName := map[string]*cluster.Cluster{}
		for _, cl := range clusters {
			byName[cl.Name] = cl
		}
		return ok(byName)
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

func endpointAddrs(la *endpoint.ClusterLoadAssignment) []string {
	var out []string
	for _, le := range la.Endpoints {
		for _, lb := range le.LbEndpoints {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
		}
	}
	sort.Strings(out)
	return out
}

// TestStandaloneWithoutAnyConfigSource: no Kubernetes and no config source at all (a VM
// that only reads a Dubbo registry). Upstream panicked on the nil config store.
func TestStandaloneWithoutAnyConfigSource(t *testing.T) {
	p := pilot.Start(t, pilot.Options{})
	p.WaitReady(t, 60*time.Second)
	envoyAwaitClusters(t, p, func(cs map[string]*cluster.Cluster) error {
		if cs["PassthroughCluster"] == nil {
			return fmt.Errorf("no PassthroughCluster among %d clusters", len(cs))
		}
		return nil
	})
	if !strings.Contains(p.Log(), "no Kubernetes and no config source") {
		t.Errorf("no warning about the missing config source in the log")
	}
}
