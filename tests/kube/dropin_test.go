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
	"sort"
	"strings"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/wrapperspb"
	corev1 "k8s.io/api/core/v1"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/kube"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// UpstreamBinEnv points at stock upstream pilot-discovery built from the same pinned
// module without our patches (`make upstream-bin`: out/bin/pilot-discovery-upstream).
const UpstreamBinEnv = "UPSTREAM_PILOT_DISCOVERY_BIN"

func upstreamBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(UpstreamBinEnv)
	if bin == "" {
		root, err := kube.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(root, "out", "bin", "pilot-discovery-upstream")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("stock upstream pilot-discovery not found (%v): run `make upstream-bin`, or set %s", err, UpstreamBinEnv)
	}
	return bin
}

// The ordinary workloads of the drop-in comparison: Bookinfo-shaped HTTP services, a TCP
// database, version subsets with a weighted, header-matched VirtualService. The Sidecar
// scopes the proxies to this namespace (the shared API server holds other tests' Dubbo
// services, which stock upstream does not know as Dubbo by design).
const dropinConfig = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: dropin
spec:
  host: reviews.dropin.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
    connectionPool:
      tcp:
        maxConnections: 100
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: dropin
spec:
  hosts:
  - reviews.dropin.svc.cluster.local
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews.dropin.svc.cluster.local
        subset: v2
  - route:
    - destination:
        host: reviews.dropin.svc.cluster.local
        subset: v1
      weight: 90
    - destination:
        host: reviews.dropin.svc.cluster.local
        subset: v2
      weight: 10
    timeout: 2s
    retries:
      attempts: 3
      perTryTimeout: 500ms
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: dropin
spec:
  egress:
  - hosts:
    - ./*
`

// TestDropInParity: for ordinary Kubernetes workloads, an Envoy sidecar gets the same
// CDS, EDS, LDS and RDS from dubbo-istiod (its ZooKeeper registry on) as from stock
// upstream pilot-discovery of the same pin, both against the same API server at once.
func TestDropInParity(t *testing.T) {
	upstream := upstreamBin(t)
	ns := namespace(t, "dropin")
	w := func(name, ip string, labels map[string]string) *corev1.Pod {
		return pod(t, kube.Workload{Name: name, Namespace: ns, IP: ip, Labels: labels, ServiceAccount: "bookinfo-" + labels["app"]})
	}
	productpage := w("productpage-v1-0", "10.12.0.10", map[string]string{"app": "productpage", "version": "v1"})
	r1 := w("reviews-v1-0", "10.12.0.11", map[string]string{"app": "reviews", "version": "v1"})
	r2 := w("reviews-v2-0", "10.12.0.12", map[string]string{"app": "reviews", "version": "v2"})
	r2b := w("reviews-v2-1", "10.12.0.14", map[string]string{"app": "reviews", "version": "v2"})
	db := w("mysql-0", "10.12.0.13", map[string]string{"app": "mysql", "version": "v1"})
	service(t, ns, "productpage", map[string]string{"app": "productpage"}, []kube.ServicePort{{Name: "http", Port: 9080}}, productpage)
	service(t, ns, "reviews", map[string]string{"app": "reviews"}, []kube.ServicePort{{Name: "http", Port: 9080}}, r1, r2, r2b)
	service(t, ns, "mysql", map[string]string{"app": "mysql"}, []kube.ServicePort{{Name: "tcp-mysql", Port: 3306}}, db)
	apply(t, dropinConfig)

	// Ours runs with its Dubbo registry on (a real ZooKeeper with providers): the Dubbo
	// services must change nothing for workloads that do not use them.
	zks := zk.Start(t)
	registerDemo(t, zks)
	ours := startIstiod(t, pilot.Options{PodName: "istiod-dubbo", Args: []string{"--dubboRegistry=zookeeper://" + zks.Addr}})
	awaitRegistry(t, ours, 30*time.Second, func(byHost map[string]registryService) error {
		if _, ok := byHost[demoHost]; !ok {
			return fmt.Errorf("%s not in the registry yet", demoHost)
		}
		return nil
	})
	stock := startIstiod(t, pilot.Options{PodName: "istiod-upstream", Bin: upstream})

	for _, p := range []*corev1.Pod{productpage, r1} {
		node := sidecar(p)
		var diff string
		deadline := time.Now().Add(60 * time.Second)
		for {
			a, b := envoySnapshot(t, ours, node), envoySnapshot(t, stock, node)
			if diff = snapshotDiff(a, b); diff == "" {
				t.Logf("%s: identical from both: %d clusters, %d load assignments, %d listeners, %d route configurations",
					p.Name, len(a.Clusters), len(a.Endpoints), len(a.Listeners), len(a.Routes))
				if findCluster(a, "outbound|9080|v2|reviews.dropin.svc.cluster.local") == nil || len(a.Routes) == 0 {
					t.Fatalf("%s: the compared config lacks the subset cluster or routes: the comparison proves nothing", p.Name)
				}
				// The comparison sees a one-field change in one resource.
				changed := a
				changed.Routes = append([]*route.RouteConfiguration{}, a.Routes...)
				changed.Routes[0] = proto.Clone(a.Routes[0]).(*route.RouteConfiguration)
				changed.Routes[0].ValidateClusters = wrapperspb.Bool(!changed.Routes[0].GetValidateClusters().GetValue())
				if snapshotDiff(changed, b) == "" {
					t.Fatal("snapshotDiff misses a changed field")
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: dubbo-istiod (-) and stock upstream (+) differ:\n%s", p.Name, diff)
			}
			time.Sleep(time.Second)
		}
	}
}

func envoySnapshot(t *testing.T, p *pilot.Instance, n adsclient.Node) conformance.Snapshot {
	t.Helper()
	c, err := adsclient.Dial(p.GRPCAddr, n)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := xdsview.Sync(c, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshotDiff compares two snapshots resource by resource (by name, any order).
func snapshotDiff(a, b conformance.Snapshot) string {
	var out []string
	add := func(kind string, am, bm map[string]proto.Message) {
		names := map[string]bool{}
		for n := range am {
			names[n] = true
		}
		for n := range bm {
			names[n] = true
		}
		sorted := make([]string, 0, len(names))
		for n := range names {
			sorted = append(sorted, n)
		}
		sort.Strings(sorted)
		for _, n := range sorted {
			x, y := am[n], bm[n]
			switch {
			case x == nil:
				out = append(out, fmt.Sprintf("%s %s: only from stock upstream", kind, n))
			case y == nil:
				out = append(out, fmt.Sprintf("%s %s: only from dubbo-istiod", kind, n))
			default:
				if d := cmp.Diff(x, y, protocmp.Transform()); d != "" {
					out = append(out, fmt.Sprintf("%s %s:\n%s", kind, n, d))
				}
			}
		}
	}
	add("cluster", byName(a.Clusters), byName(b.Clusters))
	add("endpoints", byName(a.Endpoints), byName(b.Endpoints))
	add("listener", byName(a.Listeners), byName(b.Listeners))
	add("route", byName(a.Routes), byName(b.Routes))
	return strings.Join(out, "\n")
}

type named interface {
	proto.Message
	GetName() string
}

func byName[T proto.Message](in []T) map[string]proto.Message {
	out := map[string]proto.Message{}
	for _, m := range in {
		var n string
		switch v := any(m).(type) {
		case named:
			n = v.GetName()
		case interface{ GetClusterName() string }:
			n = v.GetClusterName()
		}
		out[n] = m
	}
	return out
}
