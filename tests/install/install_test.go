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

// Package install renders the install manifests with the istioctl of the pinned Istio
// (built from the patched module by `make tools`) and checks what a cluster would run.
// No cluster is needed.
package install

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

var root = func() string { p, _ := filepath.Abs("../.."); return p }()

func bin(t *testing.T, name string) string {
	p := filepath.Join(root, "out", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s missing: run `make tools` (make test does)", p)
	}
	return p
}

func version(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return out
}

type object = map[string]any

func docs(t *testing.T, b []byte) []object {
	var out []object
	for _, d := range strings.Split(string(b), "\n---") {
		var o object
		if err := yaml.Unmarshal([]byte(d), &o); err != nil {
			t.Fatalf("bad YAML document: %v\n%s", err, d)
		}
		if o != nil {
			out = append(out, o)
		}
	}
	return out
}

func get(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := o.(map[string]any)
			o = m[k]
		case int:
			l, _ := o.([]any)
			if k >= len(l) {
				return nil
			}
			o = l[k]
		}
	}
	return o
}

func find(objs []object, kind, name string) object {
	for _, o := range objs {
		if o["kind"] == kind && get(o, "metadata", "name") == name {
			return o
		}
	}
	return nil
}

func container(pod any, name string) map[string]any {
	cs, _ := get(pod, "spec", "containers").([]any)
	for _, c := range cs {
		if m, _ := c.(map[string]any); m["name"] == name {
			return m
		}
	}
	return nil
}

func env(c map[string]any) map[string]string {
	out := map[string]string{}
	l, _ := c["env"].([]any)
	for _, e := range l {
		m, _ := e.(map[string]any)
		if v, ok := m["value"].(string); ok {
			out[m["name"].(string)] = v
		}
	}
	return out
}

func render(t *testing.T) []object {
	return docs(t, run(t, bin(t, "istioctl"), "manifest", "generate", "-f", filepath.Join(root, "manifests/istioctl/dubbo-istiod.yaml")))
}

// TestIstioctlRendersDubboIstiod: istioctl (pinned version) with our overlay renders an
// istiod Deployment that runs our image with the Dubbo registry configured.
func TestIstioctlRendersDubboIstiod(t *testing.T) {
	objs := render(t)
	d := find(objs, "Deployment", "istiod")
	if d == nil {
		t.Fatalf("no istiod Deployment among %d objects", len(objs))
	}
	c := container(get(d, "spec", "template"), "discovery")
	if c == nil {
		t.Fatal("no discovery container")
	}
	if want := "ghcr.io/dubbo-istiod/pilot:" + version(t); c["image"] != want {
		t.Fatalf("istiod image %v, want %s (keep the overlay in step with VERSION)", c["image"], want)
	}
	e := env(c)
	for k, want := range map[string]string{
		"PILOT_DUBBO_REGISTRIES":    "zookeeper://zookeeper.dubbo.svc.cluster.local:2181",
		"PILOT_DUBBO_NAMESPACE":     "dubbo",
		"PILOT_DUBBO_OUTBOUND_PORT": "20881",
	} {
		if e[k] != want {
			t.Errorf("istiod env %s=%q, want %q", k, e[k], want)
		}
	}
	// Upstream's own settings are untouched (drop-in).
	if args, _ := c["args"].([]any); len(args) == 0 || args[0] != "discovery" {
		t.Errorf("istiod args %v, want upstream's", c["args"])
	}
}

// TestHelmValuesMatchOverlay: the Helm values are exactly the overlay's spec.values.
func TestHelmValuesMatchOverlay(t *testing.T) {
	read := func(p string) object {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	overlay := read("manifests/istioctl/dubbo-istiod.yaml")
	values := read("manifests/helm/values-dubbo-istiod.yaml")
	if !reflect.DeepEqual(get(overlay, "spec", "values"), any(values)) {
		t.Fatalf("manifests/helm/values-dubbo-istiod.yaml differs from spec.values of the istioctl overlay")
	}
}

// TestMOSNInjection: the rendered injector config injects the example consumer with a
// MOSN sidecar carrying GENERATOR=mosn and the Dubbo ports.
func TestMOSNInjection(t *testing.T) {
	objs := render(t)
	inj := find(objs, "ConfigMap", "istio-sidecar-injector")
	mesh := find(objs, "ConfigMap", "istio")
	if inj == nil || mesh == nil {
		t.Fatal("no injector or mesh ConfigMap in the rendered manifest")
	}
	dir := t.TempDir()
	write := func(name string, v any) string {
		p := filepath.Join(dir, name)
		s, _ := v.(string)
		if s == "" {
			t.Fatalf("%s is empty", name)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if !strings.Contains(get(inj, "data", "config").(string), "mosn:") {
		t.Fatal("the injector config has no mosn template")
	}
	// --revision default: without it istioctl looks for a cluster's default revision.
	out := run(t, bin(t, "istioctl"), "kube-inject", "--revision", "default",
		"--injectConfigFile", write("inject.yaml", get(inj, "data", "config")),
		"--valuesFile", write("values.json", get(inj, "data", "values")),
		"--meshConfigFile", write("mesh.yaml", get(mesh, "data", "mesh")),
		"-f", filepath.Join(root, "manifests/examples/dubbo/consumer-mosn.yaml"))
	dep := find(docs(t, out), "Deployment", "demo-consumer")
	if dep == nil {
		t.Fatalf("kube-inject returned no Deployment:\n%s", out)
	}
	proxy := container(get(dep, "spec", "template"), "istio-proxy")
	if proxy == nil {
		t.Fatalf("no istio-proxy container injected:\n%s", out)
	}
	if proxy["image"] != "mosnio/proxyv2:v1.0.0-1.10.6" {
		t.Errorf("sidecar image %v, want the MOSN proxy", proxy["image"])
	}
	e := env(proxy)
	for k, want := range map[string]string{
		"ISTIO_META_GENERATOR": "mosn", "ISTIO_META_DUBBO_OUTBOUND_PORT": "20881",
		"ISTIO_META_DUBBO_INBOUND_PORT": "20882", "ISTIO_META_DUBBO_APP_PORT": "20880",
	} {
		if e[k] != want {
			t.Errorf("sidecar env %s=%q, want %q", k, e[k], want)
		}
	}
	if container(get(dep, "spec", "template"), "app") == nil {
		t.Error("the app container was lost")
	}
}

// TestImageLayout: `make image` leaves the Dockerfile and the binary where the Dockerfile
// copies it from; the binary is static (it runs on distroless) and starts.
func TestImageLayout(t *testing.T) {
	ctx := filepath.Join(root, "out", "docker", "pilot")
	df, err := os.ReadFile(filepath.Join(ctx, "Dockerfile"))
	if err != nil {
		t.Fatalf("%v: run `make image` (make test does)", err)
	}
	for _, want := range []string{
		"COPY ${TARGETARCH:-amd64}/pilot-discovery /usr/local/bin/pilot-discovery",
		`ENTRYPOINT ["/usr/local/bin/pilot-discovery"]`,
		"USER 1337:1337",
		"FROM ${ISTIO_BASE_REGISTRY}/distroless:${BASE_VERSION} AS distroless",
	} {
		if !bytes.Contains(df, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	b := filepath.Join(ctx, "amd64", "pilot-discovery")
	f, err := elf.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("pilot-discovery is dynamically linked; the distroless base has no libc")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("pilot-discovery needs %v", libs)
	}
	out := run(t, b, "version", "--short")
	if !strings.Contains(string(out), version(t)) {
		t.Fatalf("version %q, want %s", out, version(t))
	}
}
