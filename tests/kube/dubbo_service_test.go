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
	"sort"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/kube"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
)

// TestKubernetesDubboService: a Kubernetes Service whose port is named dubbo-* or has
// appProtocol dubbo is a Dubbo service, and plain Envoy sidecars keep an opaque TCP
// path (tcp_proxy to an EDS cluster with the pod endpoints) for it.
func TestKubernetesDubboService(t *testing.T) {
	ns := namespace(t, "dubbo-k8s")
	greeter := pod(t, kube.Workload{Name: "greeter-0", Namespace: ns, IP: "10.10.0.11", Labels: map[string]string{"app": "greeter"}})
	echo := pod(t, kube.Workload{Name: "echo-0", Namespace: ns, IP: "10.10.0.12", Labels: map[string]string{"app": "echo"}})
	web := pod(t, kube.Workload{Name: "web-0", Namespace: ns, IP: "10.10.0.13", Labels: map[string]string{"app": "web"}})
	sleep := pod(t, kube.Workload{Name: "sleep-0", Namespace: ns, IP: "10.10.0.20", Labels: map[string]string{"app": "sleep"}})
	svc := service(t, ns, "greeter", map[string]string{"app": "greeter"}, []kube.ServicePort{{Name: "dubbo-rpc", Port: 20880}}, greeter)
	// The exact interface behind the Service, for MOSN's case-sensitive service match.
	svc.Labels = map[string]string{"dubbo.apache.org/interface": "com.example.Greeter"}
	if _, err := harness.Client.Kube().CoreV1().Services(ns).Update(t.Context(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	service(t, ns, "echo", map[string]string{"app": "echo"}, []kube.ServicePort{{Name: "rpc", Port: 20881, TargetPort: 20990, AppProtocol: "dubbo"}}, echo)
	service(t, ns, "web", map[string]string{"app": "web"}, []kube.ServicePort{{Name: "http", Port: 8080}}, web)

	p := startIstiod(t, pilot.Options{})
	want := map[string]registryPort{
		"greeter." + ns + ".svc.cluster.local": {Name: "dubbo-rpc", Port: 20880, Protocol: "Dubbo"},
		"echo." + ns + ".svc.cluster.local":    {Name: "rpc", Port: 20881, Protocol: "Dubbo"},
		"web." + ns + ".svc.cluster.local":     {Name: "http", Port: 8080, Protocol: "HTTP"}, // control: not Dubbo
	}
	awaitRegistry(t, p, 30*time.Second, func(byHost map[string]registryService) error {
		for host, port := range want {
			s, ok := byHost[host]
			if !ok {
				return fmt.Errorf("%s not in the registry", host)
			}
			if len(s.Ports) != 1 || s.Ports[0] != port {
				return fmt.Errorf("%s ports %s, want [%+v]", host, portString(s.Ports), port)
			}
		}
		return nil
	})

	c := dial(t, p, sidecar(sleep))
	snap, err := xdsview.Sync(c, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cluster  string
		endpoint string
	}{
		{"outbound|20880||greeter." + ns + ".svc.cluster.local", "10.10.0.11:20880"},
		{"outbound|20881||echo." + ns + ".svc.cluster.local", "10.10.0.12:20990"}, // the target port
	} {
		cl := findCluster(snap, tc.cluster)
		if cl == nil || cl.GetType() != cluster.Cluster_EDS {
			t.Fatalf("no EDS cluster %s (have %d clusters)", tc.cluster, len(snap.Clusters))
		}
		if got := endpointsOf(snap, tc.cluster); strings.Join(got, ",") != tc.endpoint {
			t.Errorf("%s endpoints %v, want [%s]", tc.cluster, got, tc.endpoint)
		}
		if l := tcpListenerFor(snap, tc.cluster); l == "" {
			t.Errorf("no listener routes TCP (tcp_proxy) to %s", tc.cluster)
		} else {
			t.Logf("%s: tcp_proxy in listener %s", tc.cluster, l)
		}
	}

	// A MOSN sidecar gets Dubbo routes for the Kubernetes Dubbo Services: by the labelled
	// interface, else by hostname (docs/mosn.md), to the same clusters and pod endpoints.
	mosn := sidecar(sleep)
	mosn.Metadata["GENERATOR"], mosn.Metadata["INTERCEPTION_MODE"] = "mosn", "NONE"
	ms, err := xdsview.Sync(dial(t, p, mosn), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v := conformance.Check(ms); len(v) > 0 {
		t.Fatalf("MOSN conformance violations:\n  %s", strings.Join(v, "\n  "))
	}
	rs := rules(ms)
	for _, want := range [][]string{
		{"com.example.Greeter ", "outbound|20880||greeter." + ns + ".svc.cluster.local"},
		{"echo." + ns + ".svc.cluster.local ", "outbound|20881||echo." + ns + ".svc.cluster.local"},
	} {
		if !hasRule(rs, want...) {
			t.Fatalf("MOSN routes lack %q; have:\n  %s", want, strings.Join(rs, "\n  "))
		}
	}
	if got := endpointsOf(ms, "outbound|20880||greeter."+ns+".svc.cluster.local"); strings.Join(got, ",") != "10.10.0.11:20880" {
		t.Fatalf("MOSN endpoints of greeter %v, want [10.10.0.11:20880]", got)
	}
}

func findCluster(s conformance.Snapshot, name string) *cluster.Cluster {
	for _, c := range s.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func endpointsOf(s conformance.Snapshot, clusterName string) []string {
	var out []string
	for _, la := range s.Endpoints {
		if la.ClusterName != clusterName {
			continue
		}
		for _, le := range la.Endpoints {
			for _, lb := range le.LbEndpoints {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
			}
		}
	}
	sort.Strings(out)
	return out
}

// tcpListenerFor names the listener with a tcp_proxy filter to clusterName.
func tcpListenerFor(s conformance.Snapshot, clusterName string) string {
	for _, l := range s.Listeners {
		for _, fc := range l.FilterChains {
			for _, f := range fc.Filters {
				tp := &tcp.TcpProxy{}
				if f.GetTypedConfig() == nil || f.GetTypedConfig().UnmarshalTo(tp) != nil {
					continue
				}
				if tp.GetCluster() == clusterName {
					return l.Name
				}
			}
		}
	}
	return ""
}
