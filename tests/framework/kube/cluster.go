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

// Package kube runs a real Kubernetes control plane on loopback for end-to-end tests:
// etcd and kube-apiserver, built from the Go module proxy by tools/kube/build.sh, with
// token authentication, Istio's CRDs from the pinned Istio module and the istio-system
// namespace. There is no kubelet and there are no controllers: tests create Services,
// EndpointSlices, Pods, ServiceAccounts and Istio resources themselves through the API.
package kube

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	istiokube "istio.io/istio/pkg/kube"
)

// BinDirEnv overrides the directory holding kube-apiserver and etcd
// (default <repo>/out/kube/bin, filled by `make kube-bins`).
const BinDirEnv = "DUBBO_KUBE_BIN"

// Cluster is a running etcd + kube-apiserver pair.
type Cluster struct {
	// Dir holds the data, certificates, tokens, kubeconfig and logs.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig (token authentication).
	Kubeconfig string
	// Server is the API server URL (https://127.0.0.1:port).
	Server string
	// Client is an Istio kube client (Kubernetes, CRD and Istio clientsets) for the admin.
	Client istiokube.CLIClient
	// Version is what the API server reports (e.g. v1.37.2).
	Version string

	token     string
	etcd      *process
	apiserver *process
}

// RepoRoot finds the repository root (the directory with go.mod) from the working
// directory.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "tools", "kube", "build.sh")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("repository root not found above %s", wd)
}

func binDir() (string, error) {
	dir := os.Getenv(BinDirEnv)
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "out", "kube", "bin")
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s not found in %s (%v): run `make kube-bins` (tools/kube/build.sh) or set %s", b, dir, err, BinDirEnv)
		}
	}
	return dir, nil
}

// CRDFile is Istio's CRD bundle in the patched copy of the pinned module.
func CRDFile() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	f := filepath.Join(root, "out", "istio", "manifests", "charts", "base", "files", "crd-all.gen.yaml")
	if _, err := os.Stat(f); err != nil {
		return "", fmt.Errorf("istio CRDs not found (%v): run `make prepare`", err)
	}
	return f, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts etcd and kube-apiserver under dir, waits until the API server is ready,
// installs Istio's CRDs and creates istio-system. Stop tears everything down. It takes
// no *testing.T so a package's TestMain can share one cluster between its tests.
func Start(ctx context.Context, dir string) (c *Cluster, err error) {
	bins, err := binDir()
	if err != nil {
		return nil, err
	}
	crds, err := CRDFile()
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, c.logTails())
			c.Stop()
		}
	}()

	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return c, err
		}
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", ports[2])

	c.etcd, err = startProcess(filepath.Join(bins, "etcd"), filepath.Join(dir, "etcd.log"),
		"--name=harness",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=harness="+peerURL,
		"--unsafe-no-fsync", // test data: speed over durability
		"--log-level=warn",
	)
	if err != nil {
		return c, err
	}
	if err := waitHTTP(ctx, c.etcd, 30*time.Second, func() (bool, error) {
		resp, err := http.Get(etcdURL + "/health")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		return c, fmt.Errorf("etcd not healthy: %w", err)
	}

	if err := c.writeCredentials(); err != nil {
		return c, err
	}
	c.apiserver, err = startProcess(filepath.Join(bins, "kube-apiserver"), filepath.Join(dir, "kube-apiserver.log"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports[2]),
		"--cert-dir="+filepath.Join(dir, "pki"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		// No node runs here: the "kubernetes" Service would point at a loopback address,
		// which Endpoints validation rejects.
		"--endpoint-reconciler-type=none",
		// Admission webhooks and aggregated APIs are called at a Service's endpoint
		// addresses (no kube-proxy runs here to route its cluster IP).
		"--enable-aggregator-routing=true",
		"--profiling=false",
	)
	if err != nil {
		return c, err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		// Only the readiness probe skips verification: the serving certificate is
		// generated by the API server at start, the kubeconfig trusts it afterwards.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	if err := waitHTTP(ctx, c.apiserver, 90*time.Second, func() (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		return c, fmt.Errorf("kube-apiserver not ready: %w", err)
	}

	if err := c.writeKubeconfig(); err != nil {
		return c, err
	}
	rc, err := istiokube.DefaultRestConfig(c.Kubeconfig, "", func(rc *rest.Config) { rc.QPS, rc.Burst = 200, 400 })
	if err != nil {
		return c, fmt.Errorf("kubeconfig: %w", err)
	}
	c.Client, err = istiokube.NewCLIClient(istiokube.NewClientConfigForRestConfig(rc))
	if err != nil {
		return c, fmt.Errorf("kube client: %w", err)
	}
	v, err := c.Client.Kube().Discovery().ServerVersion()
	if err != nil {
		return c, fmt.Errorf("server version: %w", err)
	}
	c.Version = v.GitVersion
	if strings.HasPrefix(c.Version, "v0.0.0") {
		return c, fmt.Errorf("kube-apiserver reports version %q: it was built without version ldflags", c.Version)
	}

	if err := c.Client.ApplyYAMLFiles("", crds); err != nil {
		return c, fmt.Errorf("apply Istio CRDs: %w", err)
	}
	if err := c.waitCRDsEstablished(ctx); err != nil {
		return c, err
	}
	if err := c.CreateNamespace(ctx, "istio-system", nil); err != nil {
		return c, err
	}
	return c, nil
}

// writeCredentials writes the admin token file and the service-account signing key.
func (c *Cluster) writeCredentials() error {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	c.token = hex.EncodeToString(b)
	tokens := fmt.Sprintf("%s,harness-admin,harness-admin,\"system:masters\"\n", c.token)
	if err := os.WriteFile(filepath.Join(c.Dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	return os.WriteFile(filepath.Join(c.Dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600)
}

// writeKubeconfig writes the admin kubeconfig.
func (c *Cluster) writeKubeconfig() error {
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	return c.WriteKubeconfig(c.Kubeconfig, c.token)
}

// WriteKubeconfig writes a kubeconfig for this API server that authenticates with token
// (e.g. a ServiceAccount's, from the TokenRequest API) and trusts the serving
// certificate the API server generated in --cert-dir.
func (c *Cluster) WriteKubeconfig(path, token string) error {
	ca := filepath.Join(c.Dir, "pki", "apiserver.crt")
	if _, err := os.Stat(ca); err != nil {
		return fmt.Errorf("API server certificate: %w", err)
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: harness
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: user
  user:
    token: %s
contexts:
- name: harness
  context:
    cluster: harness
    user: user
current-context: harness
`, c.Server, ca, token)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

func (c *Cluster) waitCRDsEstablished(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	var pending []string
	for time.Now().Before(deadline) {
		list, err := c.Client.Ext().ApiextensionsV1().CustomResourceDefinitions().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		pending = pending[:0]
		for _, crd := range list.Items {
			if strings.HasSuffix(crd.Spec.Group, "istio.io") && !established(crd) {
				pending = append(pending, crd.Name)
			}
		}
		if len(list.Items) > 0 && len(pending) == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("CRDs not established after 60s: %v", pending)
}

func established(crd apiextensionsv1.CustomResourceDefinition) bool {
	for _, cond := range crd.Status.Conditions {
		if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

// HostIP is a non-loopback IPv4 address of this machine. Endpoints may not be loopback
// addresses, so a process the API server must call through a Service (istiod's webhooks)
// listens on this one.
func HostIP() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("no non-loopback IPv4 address on this machine: the API server cannot reach a webhook")
}

// CreateNamespace creates a namespace with labels and, as the service-account controller
// would, its "default" ServiceAccount (Pods are admitted only with their account).
func (c *Cluster) CreateNamespace(ctx context.Context, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := c.Client.Kube().CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !kerrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return c.CreateServiceAccount(ctx, name, "default")
}

// CreateServiceAccount creates a ServiceAccount (idempotent).
func (c *Cluster) CreateServiceAccount(ctx context.Context, ns, name string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := c.Client.Kube().CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !kerrors.IsAlreadyExists(err) {
		return fmt.Errorf("create service account %s/%s: %w", ns, name, err)
	}
	return nil
}

// Stop stops kube-apiserver, then etcd.
func (c *Cluster) Stop() {
	if c.Client != nil {
		c.Client.Shutdown()
	}
	c.apiserver.stop()
	c.etcd.stop()
}

// Alive reports an error when etcd or the API server has exited.
func (c *Cluster) Alive() error {
	for _, p := range []*process{c.etcd, c.apiserver} {
		if exited, err := p.exited(); exited {
			return fmt.Errorf("%s exited: %v\n%s", filepath.Base(p.cmd.Path), err, p.tail(30))
		}
	}
	return nil
}

func (c *Cluster) logTails() string {
	var b strings.Builder
	for _, p := range []*process{c.etcd, c.apiserver} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s (%s), last lines:\n%s\n", filepath.Base(p.cmd.Path), p.logPath, p.tail(25))
		}
	}
	return b.String()
}

func waitHTTP(ctx context.Context, p *process, timeout time.Duration, ok func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if exited, err := p.exited(); exited {
			return fmt.Errorf("%s exited: %v", filepath.Base(p.cmd.Path), err)
		}
		done, err := ok()
		if done {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if last == nil {
		last = errors.New("not ready")
	}
	return fmt.Errorf("after %v: %w", timeout, last)
}
