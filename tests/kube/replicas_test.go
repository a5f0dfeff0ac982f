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
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/kube"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// leaderOf reads the holder of one of istiod's leader elections (a ConfigMap lock in
// istio-system, as upstream's pilot/pkg/leaderelection writes it).
func leaderOf(ctx context.Context, election string) (string, error) {
	cm, err := harness.Client.Kube().CoreV1().ConfigMaps("istio-system").Get(ctx, election, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	var rec struct {
		HolderIdentity string `json:"holderIdentity"`
	}
	if err := json.Unmarshal([]byte(cm.Annotations["control-plane.alpha.kubernetes.io/leader"]), &rec); err != nil {
		return "", fmt.Errorf("%s: leader record: %v", election, err)
	}
	return rec.HolderIdentity, nil
}

func awaitLeader(t *testing.T, election string, ok func(string) bool, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var holder string
	var err error
	for time.Now().Before(deadline) {
		if holder, err = leaderOf(t.Context(), election); err == nil && ok(holder) {
			return holder
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("leader of %s after %v: %q (%v)", election, timeout, holder, err)
	return ""
}

func awaitValue(t *testing.T, what string, get func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	got := get()
	for got != want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got = get()
	}
	if got != want {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

// gauge reads one unlabelled-or-summed gauge from a replica's /metrics.
func gauge(t *testing.T, p *pilot.Instance, name string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + name + `(\{[^}]*\})? ([0-9.e+-]+)$`)
	var sum float64
	for _, m := range re.FindAllStringSubmatch(string(p.Debug(t, "/metrics")), -1) {
		var v float64
		fmt.Sscan(m[2], &v)
		sum += v
	}
	return sum
}

// TestTwoReplicas: two dubbo-istiod replicas against one API server and one ZooKeeper.
// Both serve the same config; the Dubbo registry is read-only (nothing is written to
// ZooKeeper, nothing counted twice); upstream's leader-elected work has one leader and
// moves to the survivor when it stops; the survivor keeps serving registry changes.
func TestTwoReplicas(t *testing.T) {
	zks := zk.Start(t)
	v1, v2 := registerDemo(t, zks)
	namespace(t, "dubbo")
	apply(t, demoSubsets, demoRoutes("gray", 80, 20))
	tree := v1.Tree(t, "/dubbo")
	sessions := zks.Mntr("zk_num_alive_connections")

	dubbo := []string{"--dubboRegistry=zookeeper://" + zks.Addr + "?name=zk"}
	a := startIstiod(t, pilot.Options{PodName: "istiod-a", Args: dubbo})
	b := startIstiod(t, pilot.Options{PodName: "istiod-b", Args: dubbo})
	replicas := map[string]*pilot.Instance{"istiod-a": a, "istiod-b": b}

	// Both serve the same MOSN config (resource for resource) with each provider once.
	consumer := pod(t, kube.Workload{Name: "consumer-r", Namespace: namespace(t, "replicas"), IP: "10.13.0.9", Labels: map[string]string{"app": "consumer"}})
	node := sidecar(consumer)
	node.Metadata["GENERATOR"], node.Metadata["INTERCEPTION_MODE"] = "mosn", "NONE"
	snaps := map[string]conformance.Snapshot{}
	for name, p := range replicas {
		s, err := xdsview.Sync(dial(t, p, node), 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := endpointsOf(s, "outbound|20880||"+demoHost); strings.Join(got, ",") != "10.0.0.1:20880,10.0.0.1:20890" {
			t.Fatalf("%s: endpoints %v, want each provider once", name, got)
		}
		if n := gauge(t, p, "dubbo_endpoints"); n != 2 {
			t.Fatalf("%s: dubbo_endpoints = %v, want 2", name, n)
		}
		snaps[name] = s
	}
	if d := snapshotDiff(snaps["istiod-a"], snaps["istiod-b"]); d != "" {
		t.Fatalf("the replicas serve different config:\n%s", d)
	}
	// One ZooKeeper session per replica, no more (nothing fights over or leaks sessions).
	awaitValue(t, "ZooKeeper sessions with both replicas", func() float64 { return zks.Mntr("zk_num_alive_connections") }, sessions+2)
	if after := v1.Tree(t, "/dubbo"); strings.Join(after, "\n") != strings.Join(tree, "\n") {
		t.Fatalf("dubbo-istiod wrote to ZooKeeper:\nbefore:\n%s\nafter:\n%s", strings.Join(tree, "\n"), strings.Join(after, "\n"))
	}

	// Upstream's leader-elected controllers: one leader, a replica of ours.
	const election = "istio-namespace-controller-election"
	leader := awaitLeader(t, election, func(h string) bool { return replicas[h] != nil }, 60*time.Second)
	survivorName := "istiod-a"
	if leader == "istiod-a" {
		survivorName = "istiod-b"
	}
	survivor := replicas[survivorName]
	watcher := dial(t, survivor, node)
	if _, err := xdsview.Sync(watcher, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	// Stop the leader: the survivor takes the election over (upstream releases the lock
	// on a graceful stop) and does the leader's work: the root certificate ConfigMap in
	// a namespace created afterwards.
	replicas[leader].Stop()
	start := time.Now()
	awaitValue(t, "ZooKeeper sessions after the leader stopped", func() float64 { return zks.Mntr("zk_num_alive_connections") }, sessions+1)
	awaitLeader(t, election, func(h string) bool { return h == survivorName }, 60*time.Second)
	t.Logf("%s stopped; %s leads %s after %v", leader, survivorName, election, time.Since(start).Round(time.Millisecond))
	late := namespace(t, "created-after-failover")
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := harness.Client.Kube().CoreV1().ConfigMaps(late).Get(t.Context(), "istio-ca-root-cert", metav1.GetOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no istio-ca-root-cert in %s: the surviving leader does not do the leader's work: %v", late, err)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// The survivor keeps serving: a provider leaving ZooKeeper reaches its clients.
	v2.Close()
	if _, err := watcher.AwaitTimeout(10*time.Second, adsclient.EndpointType, func(r *discovery.DiscoveryResponse) error {
		s := conformance.Snapshot{}
		var err error
		if s.Endpoints, err = adsclient.Decode[endpoint.ClusterLoadAssignment](r); err != nil {
			return err
		}
		if got := endpointsOf(s, "outbound|20880||"+demoHost); strings.Join(got, ",") != "10.0.0.1:20880" {
			return fmt.Errorf("endpoints %v", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := gauge(t, survivor, "dubbo_endpoints"); n != 1 {
		t.Fatalf("%s: dubbo_endpoints = %v after the provider left, want 1", survivorName, n)
	}
}
