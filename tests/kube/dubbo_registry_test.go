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
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/fixtures"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/kube"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

const (
	demoIface   = fixtures.DemoIface
	demoHost    = fixtures.DemoHost
	demoSubsets = fixtures.VersionSubsets
)

// demoRoutes sends env=<env> calls to v2 and splits the rest 80/20 between v1 and v2.
func demoRoutes(env string, v1, v2 int) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: demo
  namespace: dubbo
spec:
  hosts:
  - com.example.demoservice
  http:
  - name: gray
    match:
    - headers:
        env:
          exact: %s
    route:
    - destination:
        host: com.example.demoservice
        subset: v2
  - name: split
    route:
    - destination:
        host: com.example.demoservice
        subset: v1
      weight: %d
    - destination:
        host: com.example.demoservice
        subset: v2
      weight: %d
`, env, v1, v2)
}

// backendRoutes: an ordinary HTTP rule on a Kubernetes Service, also seen by MOSN
// sidecars (upstream's string_match header matchers never match in MOSN).
const backendRoutes = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: backend
  namespace: mixed
spec:
  hosts:
  - backend.mixed.svc.cluster.local
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: backend.mixed.svc.cluster.local
      headers:
        request:
          set:
            x-canary: "true"
  - route:
    - destination:
        host: backend.mixed.svc.cluster.local
`

// registerDemo registers two providers of demoIface on one IP with different ports and
// versions, as two Dubbo processes would.
func registerDemo(t *testing.T, s *zk.Server) (v1, v2 *zk.Client) {
	t.Helper()
	v1 = zk.Connect(t, s.Addr, 10*time.Second)
	v1.Register(t, demoIface, zk.ProviderURL("10.0.0.1", 20880, demoIface, map[string]string{"version": "1.0.0"}))
	v2 = zk.Connect(t, s.Addr, 10*time.Second)
	v2.Register(t, demoIface, zk.ProviderURL("10.0.0.1", 20890, demoIface, map[string]string{"version": "2.0.0"}))
	return v1, v2
}

func rules(s conformance.Snapshot) []string {
	var out []string
	for _, rc := range s.Routes {
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				out = append(out, xdsview.Rule(r))
			}
		}
	}
	return out
}

func routeRules(r *discovery.DiscoveryResponse) ([]string, error) {
	rcs, err := adsclient.Decode[route.RouteConfiguration](r)
	if err != nil {
		return nil, err
	}
	return rules(conformance.Snapshot{Routes: rcs}), nil
}

func hasHTTPHeaderRule(s conformance.Snapshot, routeName, header, value string) bool {
	for _, rc := range s.Routes {
		if rc.Name != routeName {
			continue
		}
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				for _, h := range r.GetMatch().GetHeaders() {
					if h.Name == header && h.GetExactMatch() == value {
						return true
					}
				}
			}
		}
	}
	return false
}

func hasRule(rs []string, parts ...string) bool {
	for _, r := range rs {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(r, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestKubernetesAndZooKeeperTogether: the Kubernetes registry and --dubboRegistry (a real
// ZooKeeper) in one istiod. VirtualService and DestinationRule created through the API
// server drive the MOSN routes of the ZooKeeper services, and API changes reach a
// connected MOSN ADS client.
func TestKubernetesAndZooKeeperTogether(t *testing.T) {
	zks := zk.Start(t)
	registerDemo(t, zks)
	ns := namespace(t, "mixed")
	namespace(t, "dubbo") // where the Dubbo services and their routing rules live
	backend := pod(t, kube.Workload{Name: "backend-0", Namespace: ns, IP: "10.11.0.5", Labels: map[string]string{"app": "backend"}})
	service(t, ns, "backend", map[string]string{"app": "backend"}, []kube.ServicePort{{Name: "http", Port: 8080}}, backend)
	apply(t, demoSubsets, demoRoutes("gray", 80, 20), backendRoutes)

	p := startIstiod(t, pilot.Options{Args: []string{"--dubboRegistry=zookeeper://" + zks.Addr + "?name=zk"}})
	awaitRegistry(t, p, 30*time.Second, func(byHost map[string]registryService) error {
		for _, h := range []string{demoHost, "backend." + ns + ".svc.cluster.local"} {
			if _, ok := byHost[h]; !ok {
				return fmt.Errorf("%s not in the registry", h)
			}
		}
		if s := byHost[demoHost]; len(s.Ports) != 1 || s.Ports[0].Protocol != "Dubbo" {
			return fmt.Errorf("%s ports %s, want one Dubbo port", demoHost, portString(s.Ports))
		}
		return nil
	})

	consumer := pod(t, kube.Workload{Name: "consumer-0", Namespace: ns, IP: "10.11.0.9", Labels: map[string]string{"app": "consumer"}})
	mosn := sidecar(consumer)
	mosn.Metadata["GENERATOR"] = "mosn"
	mosn.Metadata["INTERCEPTION_MODE"] = "NONE"
	c := dial(t, p, mosn)
	snap, err := xdsview.Sync(c, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v := conformance.Check(snap); len(v) > 0 {
		t.Fatalf("MOSN conformance violations:\n  %s", strings.Join(v, "\n  "))
	}
	rs := rules(snap)
	for _, want := range [][]string{
		{demoIface, "env=gray", "outbound|20880|v2|" + demoHost},
		{demoIface, "80% outbound|20880|v1|" + demoHost, "20% outbound|20880|v2|" + demoHost},
	} {
		if !hasRule(rs, want...) {
			t.Fatalf("MOSN routes lack %q; have:\n  %s", want, strings.Join(rs, "\n  "))
		}
	}
	// The Kubernetes HTTP Service's rule, in the form MOSN reads (conformance checked above).
	if !hasHTTPHeaderRule(snap, "8080", "end-user", "jason") {
		t.Fatalf("MOSN's route 8080 lacks the end-user=jason rule as exact_match")
	}
	if got := endpointsOf(snap, "outbound|20880|v2|"+demoHost); strings.Join(got, ",") != "10.0.0.1:20890" {
		t.Fatalf("v2 endpoints %v, want the v2 provider's own port [10.0.0.1:20890]", got)
	}

	// A change through the API server reaches the connected client.
	start := time.Now()
	apply(t, demoRoutes("blue", 50, 50))
	if _, err := c.AwaitTimeout(20*time.Second, adsclient.RouteType, func(r *discovery.DiscoveryResponse) error {
		rs, err := routeRules(r)
		if err != nil {
			return err
		}
		if !hasRule(rs, demoIface, "env=blue") || !hasRule(rs, "50% outbound|20880|v1|"+demoHost) || hasRule(rs, "env=gray") {
			return fmt.Errorf("RDS not updated yet: %v", rs)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("VirtualService update through the API server reached MOSN in %v", time.Since(start).Round(time.Millisecond))

	// Deleting the DestinationRule removes the subset clusters (CDS follows the API).
	if err := harness.Client.Istio().NetworkingV1().DestinationRules("dubbo").Delete(t.Context(), "demo", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AwaitTimeout(20*time.Second, adsclient.ClusterType, func(r *discovery.DiscoveryResponse) error {
		clusters, err := adsclient.Decode[cluster.Cluster](r)
		if err != nil {
			return err
		}
		names := map[string]bool{}
		for _, cl := range clusters {
			names[cl.Name] = true
		}
		if names["outbound|20880|v2|"+demoHost] {
			return fmt.Errorf("subset cluster still served")
		}
		if !names["outbound|20880||"+demoHost] {
			return fmt.Errorf("the service cluster disappeared too")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
