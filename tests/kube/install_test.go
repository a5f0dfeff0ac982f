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
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/kube"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// renderInstall renders manifests/istioctl/dubbo-istiod.yaml with the pinned istioctl
// (built by `make tools`), with extra --set flags, and splits the documents.
func renderInstall(t *testing.T, sets ...string) []string {
	t.Helper()
	root, err := kube.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	istioctl := filepath.Join(root, "out", "bin", "istioctl")
	if _, err := os.Stat(istioctl); err != nil {
		t.Fatalf("%s missing: run `make tools` (make test does)", istioctl)
	}
	args := []string{"manifest", "generate", "-f", filepath.Join(root, "manifests", "istioctl", "dubbo-istiod.yaml")}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, istioctl, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("istioctl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var docs []string
	for _, d := range strings.Split(string(out), "\n---") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func kindAndName(t *testing.T, doc string) (string, string) {
	t.Helper()
	var m metav1.PartialObjectMetadata
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("rendered document: %v\n%s", err, doc)
	}
	return m.Kind, m.Name
}

// podEnv resolves a container's env as the kubelet would for a pod named podName.
func podEnv(t *testing.T, spec corev1.PodSpec, c corev1.Container, podName string) []string {
	t.Helper()
	var out []string
	for _, e := range c.Env {
		v := e.Value
		switch src := e.ValueFrom; {
		case src == nil:
		case src.FieldRef != nil:
			switch src.FieldRef.FieldPath {
			case "metadata.name":
				v = podName
			case "metadata.namespace":
				v = "istio-system"
			case "spec.serviceAccountName":
				v = spec.ServiceAccountName
			case "status.podIP":
				v = "127.0.0.1"
			default:
				t.Fatalf("env %s: field %s not resolved by this test: teach it", e.Name, src.FieldRef.FieldPath)
			}
		case src.ResourceFieldRef != nil && src.ResourceFieldRef.Resource == "limits.cpu":
			// No limit set: the kubelet passes the node's allocatable CPUs.
			v = fmt.Sprint(runtime.NumCPU())
			if l, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
				v = fmt.Sprint(l.Value())
			}
		default:
			t.Fatalf("env %s: source %v not resolved by this test: teach it", e.Name, src)
		}
		out = append(out, e.Name+"="+v)
	}
	return out
}

// TestRenderedInstallStartsIstiod: the istioctl overlay (and the Helm values it must
// equal, tests/install) rendered by the pinned istioctl; its ServiceAccount, RBAC,
// ConfigMaps and Services applied to the API server; the istiod Deployment's args and env,
// resolved as the kubelet would, fed to the real binary running with the istiod
// ServiceAccount's own token (so the chart's RBAC is what it gets). It becomes ready,
// reads the mesh config from the ConfigMap, ZooKeeper from PILOT_DUBBO_REGISTRIES, and
// serves MOSN. Not applied: the webhook configurations (the API server here has no route
// to a Service's pods) and the Deployments (no controllers or kubelet run here).
func TestRenderedInstallStartsIstiod(t *testing.T) {
	zks := zk.Start(t)
	registerDemo(t, zks)
	namespace(t, "dubbo")
	docs := renderInstall(t, "values.pilot.env.PILOT_DUBBO_REGISTRIES=zookeeper://"+zks.Addr)

	var deploy *appsv1.Deployment
	var apply, webhooks []string
	for _, d := range docs {
		kind, name := kindAndName(t, d)
		switch kind {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap", "Service":
			apply = append(apply, d)
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
			webhooks = append(webhooks, d)
		case "Deployment":
			if name == "istiod" {
				deploy = &appsv1.Deployment{}
				if err := yaml.Unmarshal([]byte(d), deploy); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if deploy == nil {
		t.Fatal("no istiod Deployment rendered")
	}
	if err := harness.Client.ApplyYAMLContents("", apply...); err != nil {
		t.Fatalf("apply the rendered install: %v", err)
	}
	t.Cleanup(func() {
		// Later tests start istiods with the harness defaults.
		_ = harness.Client.Kube().CoreV1().ConfigMaps("istio-system").Delete(context.Background(), "istio", metav1.DeleteOptions{})
	})

	spec := deploy.Spec.Template.Spec
	var discovery *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == "discovery" {
			discovery = &spec.Containers[i]
		}
	}
	if discovery == nil || len(discovery.Args) == 0 || discovery.Args[0] != "discovery" {
		t.Fatalf("rendered istiod container: %+v", discovery)
	}
	env := podEnv(t, spec, *discovery, "istiod-rendered-0")

	// The pod's identity: a token of the chart's ServiceAccount, as the projected volume
	// gives istiod in a cluster.
	tok, err := harness.Client.Kube().CoreV1().ServiceAccounts("istio-system").CreateToken(t.Context(), spec.ServiceAccountName,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", spec.ServiceAccountName, err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := harness.WriteKubeconfig(kubeconfig, tok.Status.Token); err != nil {
		t.Fatal(err)
	}

	// The webhook server listens where the API server can call it (see webhookPhase).
	hostIP, err := kube.HostIP()
	if err != nil {
		t.Fatal(err)
	}
	webhookAddr := freeAddr(t, hostIP)
	p := startIstiod(t, pilot.Options{Raw: true, Args: discovery.Args[1:], Env: env, WorkDir: t.TempDir(), Kubeconfig: kubeconfig, HTTPSAddr: webhookAddr})
	mesh := string(p.Debug(t, "/debug/mesh"))
	if !strings.Contains(mesh, "enablePrometheusMerge") || !strings.Contains(mesh, "prometheus") {
		t.Fatalf("the mesh config of the rendered ConfigMap is not in use:\n%s", mesh)
	}
	awaitRegistry(t, p, 30*time.Second, func(byHost map[string]registryService) error {
		if s, ok := byHost[demoHost]; !ok || len(s.Ports) != 1 || s.Ports[0].Protocol != "Dubbo" {
			return fmt.Errorf("%s from PILOT_DUBBO_REGISTRIES: %+v", demoHost, s)
		}
		if _, ok := byHost["istiod.istio-system.svc.cluster.local"]; !ok {
			return fmt.Errorf("the rendered istiod Service is not in the Kubernetes registry")
		}
		return nil
	})

	consumer := pod(t, kube.Workload{Name: "consumer-0", Namespace: namespace(t, "installed"), IP: "10.14.0.9", Labels: map[string]string{"app": "consumer"}})
	node := sidecar(consumer)
	node.Metadata["GENERATOR"], node.Metadata["INTERCEPTION_MODE"] = "mosn", "NONE"
	snap, err := xdsview.Sync(dial(t, p, node), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v := conformance.Check(snap); len(v) > 0 {
		t.Fatalf("MOSN conformance violations:\n  %s", strings.Join(v, "\n  "))
	}
	if !hasRule(rules(snap), demoIface, "outbound|20880||"+demoHost) {
		t.Fatalf("no MOSN route for %s; have %v", demoIface, rules(snap))
	}
	webhookPhase(t, webhooks, webhookAddr)

	// The chart's RBAC is enough for everything dubbo-istiod does.
	if log := p.Log(); strings.Contains(log, "forbidden") {
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "forbidden") {
				t.Fatalf("istiod hit RBAC limits of the chart's ServiceAccount: %s", l)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func freeAddr(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// webhookPhase applies the rendered webhook configurations and routes the istiod Service
// to the process (the Endpoints a controller would write), then checks that the API
// server really calls istiod: istiod patches its CA into both configurations, rejects an
// invalid VirtualService, and injects sidecars, the MOSN template included.
func webhookPhase(t *testing.T, webhooks []string, webhookAddr string) {
	t.Helper()
	ctx := t.Context()
	if len(webhooks) != 2 {
		t.Fatalf("rendered %d webhook configurations, want the validator and the injector", len(webhooks))
	}
	if err := harness.Client.ApplyYAMLContents("", webhooks...); err != nil {
		t.Fatalf("apply the webhook configurations: %v", err)
	}
	admission := harness.Client.Kube().AdmissionregistrationV1()
	t.Cleanup(func() {
		// The injector fails closed: it must not outlive its istiod (the API server is
		// shared by the package's tests).
		_ = admission.MutatingWebhookConfigurations().Delete(context.Background(), "istio-sidecar-injector", metav1.DeleteOptions{})
		_ = admission.ValidatingWebhookConfigurations().Delete(context.Background(), "istio-validator-istio-system", metav1.DeleteOptions{})
	})
	host, portStr, _ := net.SplitHostPort(webhookAddr)
	port, _ := strconv.Atoi(portStr)
	if err := routeService(ctx, "istio-system", "istiod", "https-webhook", host, int32(port)); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err1 := admission.ValidatingWebhookConfigurations().Get(ctx, "istio-validator-istio-system", metav1.GetOptions{})
		m, err2 := admission.MutatingWebhookConfigurations().Get(ctx, "istio-sidecar-injector", metav1.GetOptions{})
		if err1 == nil && err2 == nil && len(v.Webhooks) > 0 && len(v.Webhooks[0].ClientConfig.CABundle) > 0 &&
			len(m.Webhooks) > 0 && len(m.Webhooks[0].ClientConfig.CABundle) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("istiod did not patch its CA bundle into the webhook configurations (%v, %v)", err1, err2)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Validation: the rendered validator has failurePolicy Ignore, so only a rejection
	// proves that the API server reached istiod. It selects resources labelled with the
	// revision (istioctl's default-revision tag adds a validator for unlabelled ones).
	ns := "webhooks"
	if err := harness.CreateNamespace(ctx, ns, map[string]string{"istio-injection": "enabled"}); err != nil {
		t.Fatal(err)
	}
	invalid := `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: invalid
  namespace: webhooks
  labels:
    istio.io/rev: default
spec:
  hosts:
  - com.example.demoservice
  http:
  - route:
    - destination:
        host: com.example.demoservice
        subset: v1
      weight: 50
    - destination:
        host: com.example.demoservice
        subset: v2
      weight: 50
    mirrorPercentage:
      value: 150
`
	var err error
	for time.Now().Before(deadline.Add(30 * time.Second)) {
		if err = harness.Client.ApplyYAMLContents("", invalid); err != nil && strings.Contains(err.Error(), "denied the request") {
			break
		}
		if err == nil {
			_ = harness.Client.Istio().NetworkingV1().VirtualServices(ns).Delete(ctx, "invalid", metav1.DeleteOptions{})
		}
		time.Sleep(500 * time.Millisecond) // the Endpoints may not be seen yet
	}
	if err == nil || !strings.Contains(err.Error(), "denied the request") {
		t.Fatalf("an invalid VirtualService was not rejected by istiod's validation webhook: %v", err)
	}
	t.Logf("validation webhook: %v", err)
	apply(t, demoSubsets) // a valid resource still goes through

	// Injection: a pod in a namespace labelled istio-injection=enabled gets Envoy; one
	// asking for the MOSN template gets MOSN with GENERATOR=mosn.
	// Both sidecar layouts: native sidecars (istiod's choice against this API server) and
	// classic containers (the pod annotation turns them off).
	for _, tc := range []struct {
		name      string
		annotate  map[string]string
		generator string
	}{
		{"envoy-0", nil, ""},
		{"mosn-0", map[string]string{"inject.istio.io/templates": "sidecar,mosn"}, "mosn"},
		{"mosn-classic-0", map[string]string{"inject.istio.io/templates": "sidecar,mosn", "sidecar.istio.io/nativeSidecar": "false"}, "mosn"},
	} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: ns, Labels: map[string]string{"app": "consumer"}, Annotations: tc.annotate},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:test"}}},
		}
		created, err := harness.Client.Kube().CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create %s: %v", tc.name, err)
		}
		// The proxy is a container, or a native sidecar (an init container that keeps
		// running) where istiod detects the Kubernetes support for them.
		var proxy *corev1.Container
		found := 0
		for _, cs := range [][]corev1.Container{created.Spec.Containers, created.Spec.InitContainers} {
			for i := range cs {
				if cs[i].Name == "istio-proxy" {
					proxy = &cs[i]
					found++
				}
			}
		}
		if found > 1 {
			t.Fatalf("%s: istio-proxy injected %d times", tc.name, found)
		}
		if proxy == nil {
			t.Fatalf("%s: no istio-proxy injected (%d containers, %d init containers)", tc.name, len(created.Spec.Containers), len(created.Spec.InitContainers))
		}
		generator := ""
		for _, e := range proxy.Env {
			if e.Name == "ISTIO_META_GENERATOR" {
				generator = e.Value
			}
		}
		if generator != tc.generator {
			t.Fatalf("%s: injected ISTIO_META_GENERATOR=%q, want %q", tc.name, generator, tc.generator)
		}
		if tc.generator == "mosn" && !strings.HasPrefix(proxy.Image, "mosnio/") {
			t.Fatalf("%s: injected image %s, want the MOSN image", tc.name, proxy.Image)
		}
		native := proxy.RestartPolicy != nil && *proxy.RestartPolicy == corev1.ContainerRestartPolicyAlways
		t.Logf("%s: injected %s (GENERATOR=%q, native sidecar %v)", tc.name, proxy.Image, generator, native)
	}
}

// routeService writes what the EndpointSlice controller would for a Service whose pod is
// this process (the API server resolves webhook Services through EndpointSlices).
func routeService(ctx context.Context, ns, name, portName, ip string, port int32) error {
	svc, err := harness.Client.Kube().CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	var ports []kube.ServicePort
	for _, p := range svc.Spec.Ports {
		if p.Name == portName {
			ports = append(ports, kube.ServicePort{Name: p.Name, Port: p.Port, TargetPort: port})
		}
	}
	if len(ports) == 0 {
		return fmt.Errorf("service %s/%s has no port %q", ns, name, portName)
	}
	self := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "istiod-rendered-0", Namespace: ns}, Status: corev1.PodStatus{PodIP: ip}}
	return harness.SetEndpoints(ctx, svc, ports, self)
}
