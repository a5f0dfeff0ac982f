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
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/kube"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
)

// startIstiod runs the binary as istiod runs in a cluster, against the shared API server.
func startIstiod(t *testing.T, o pilot.Options) *pilot.Instance {
	t.Helper()
	o.Kubeconfig = harness.Kubeconfig
	p := pilot.Start(t, o)
	p.WaitReady(t, 120*time.Second)
	return p
}

// namespace creates a namespace (with its default ServiceAccount) for one test.
func namespace(t *testing.T, name string) string {
	t.Helper()
	if err := harness.CreateNamespace(context.Background(), name, nil); err != nil {
		t.Fatal(err)
	}
	return name
}

func pod(t *testing.T, w kube.Workload) *corev1.Pod {
	t.Helper()
	p, err := harness.CreatePod(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func service(t *testing.T, ns, name string, selector map[string]string, ports []kube.ServicePort, pods ...*corev1.Pod) *corev1.Service {
	t.Helper()
	s, err := harness.CreateService(context.Background(), ns, name, selector, ports, pods...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apply creates or updates Istio (or any) resources through the API server; they are
// deleted when the test ends (the API server is shared by the package's tests).
func apply(t *testing.T, yamls ...string) {
	t.Helper()
	if err := harness.Client.ApplyYAMLContents("", yamls...); err != nil {
		t.Fatalf("apply: %v", err)
	}
	dir := t.TempDir()
	var files []string
	for i, y := range yamls {
		f := filepath.Join(dir, fmt.Sprintf("%d.yaml", i))
		if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	t.Cleanup(func() {
		if err := harness.Client.DeleteYAMLFiles("", files...); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
}

// sidecar is the node of an Envoy sidecar running in pod p.
func sidecar(p *corev1.Pod) adsclient.Node {
	labels := map[string]any{}
	for k, v := range p.Labels {
		labels[k] = v
	}
	return adsclient.Node{IP: p.Status.PodIP, Name: p.Name, Namespace: p.Namespace,
		Metadata: map[string]any{"LABELS": labels, "NAMESPACE": p.Namespace, "SERVICE_ACCOUNT": p.Spec.ServiceAccountName}}
}

type registryPort struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

type registryService struct {
	Hostname string         `json:"hostname"`
	Ports    []registryPort `json:"ports"`
}

// awaitRegistry polls /debug/registryz until ok accepts the services by hostname.
func awaitRegistry(t *testing.T, p *pilot.Instance, timeout time.Duration, ok func(map[string]registryService) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		var services []registryService
		if err := json.Unmarshal(p.Debug(t, "/debug/registryz"), &services); err != nil {
			t.Fatal(err)
		}
		byHost := map[string]registryService{}
		for _, s := range services {
			byHost[s.Hostname] = s
		}
		if last = ok(byHost); last == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("/debug/registryz after %v: %v", timeout, last)
}

func dial(t *testing.T, p *pilot.Instance, n adsclient.Node) *adsclient.Client {
	t.Helper()
	c, err := adsclient.Dial(p.GRPCAddr, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func portString(ps []registryPort) string {
	return fmt.Sprintf("%+v", ps)
}
