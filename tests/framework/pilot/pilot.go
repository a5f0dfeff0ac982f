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

// Package pilot starts the built pilot-discovery binary as a real process on free
// loopback ports for end-to-end tests: as on a VM (no Kubernetes), or with
// Options.Kubeconfig as istiod runs in a cluster.
package pilot

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/fixtures"
)

// BinEnv names the environment variable that points at the binary under test
// (set by `make test-e2e` to out/bin/pilot-discovery).
const BinEnv = "PILOT_DISCOVERY_BIN"

// Options for one pilot-discovery process.
type Options struct {
	// ConfigDir is passed as --configDir (Istio YAML read from files).
	ConfigDir string
	// Args are extra command-line arguments.
	Args []string
	// Env are extra environment variables (KEY=VALUE).
	Env []string
	// Kubeconfig, when set, runs pilot-discovery as istiod runs in a cluster: the
	// Kubernetes registry and config store from this API server, the istiod CA, its
	// secure gRPC and webhook ports. Empty: as on a VM (no Kubernetes at all).
	Kubeconfig string
	// PodName is POD_NAME (the leader-election identity in a cluster).
	PodName string
	// Bin overrides the binary (e.g. stock upstream pilot-discovery for parity tests).
	Bin string
	// HTTPSAddr, with Kubeconfig, overrides the webhook listen address (default a free
	// loopback port), e.g. for the API server to call istiod's webhooks.
	HTTPSAddr string
	// WorkDir is the working directory (istiod's relative default paths, such as
	// ./var/lib/istio/inject, resolve against it as against / in its container).
	WorkDir string
	// Raw, with Kubeconfig, passes Args (without "discovery") and Env as given (e.g.
	// rendered from the Helm chart) and adds only the listen addresses and the kubeconfig.
	Raw bool
}

// Instance is a running pilot-discovery.
type Instance struct {
	GRPCAddr       string // plaintext xDS (15010)
	HTTPAddr       string // /ready and debug (8080)
	MonitoringAddr string // metrics and debug (15014)
	SecureGRPCAddr string // TLS xDS and CA (15012), with Kubeconfig only
	HTTPSAddr      string // webhooks (15017), with Kubeconfig only
	LogPath        string

	cmd  *exec.Cmd
	done chan error
}

// Bin returns the binary under test. A missing binary fails the test (it is never
// skipped): `make test` builds it first.
func Bin(t testing.TB) string {
	t.Helper()
	bin := fixtures.RepoBin(BinEnv, "out", "bin", "pilot-discovery")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("pilot-discovery binary not found (%v): run `make build`, or set %s", err, BinEnv)
	}
	return bin
}

// FreePort returns a loopback address with a currently free TCP port.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start starts pilot-discovery, as istiod runs on a VM (no Kubernetes, plaintext xDS, no
// CA) or, with o.Kubeconfig, in a cluster, and stops it when the test ends. On failure
// the log tail is printed.
func Start(t testing.TB, o Options) *Instance {
	t.Helper()
	i := &Instance{
		GRPCAddr:       FreePort(t),
		HTTPAddr:       FreePort(t),
		MonitoringAddr: FreePort(t),
		LogPath:        filepath.Join(t.TempDir(), "pilot-discovery.log"),
		done:           make(chan error, 1),
	}
	var args, env []string
	if o.Kubeconfig == "" {
		args = []string{
			"discovery",
			"--registries=",
			"--grpcAddr=" + i.GRPCAddr,
			"--secureGRPCAddr=",
			"--httpsAddr=",
			"--httpAddr=" + i.HTTPAddr,
			"--monitoringAddr=" + i.MonitoringAddr,
			"--ctrlz_port=0",
			"--meshConfig=/nonexistent/mesh.yaml",
			"--networksConfig=/nonexistent/networks.yaml",
		}
		env = []string{
			"ENABLE_CA_SERVER=false",
			"PILOT_CERT_PROVIDER=none",
			"POD_NAMESPACE=istio-system",
			"PILOT_DEBOUNCE_AFTER=10ms",
			"PILOT_DEBOUNCE_MAX=100ms",
		}
	} else {
		i.SecureGRPCAddr, i.HTTPSAddr = FreePort(t), o.HTTPSAddr
		if i.HTTPSAddr == "" {
			i.HTTPSAddr = FreePort(t)
		}
		podName := o.PodName
		if podName == "" {
			podName = "istiod-" + filepath.Base(filepath.Dir(i.LogPath))
		}
		args = []string{"discovery"}
		if !o.Raw {
			// As the istiod Deployment of the Helm chart: the mesh config comes from the
			// "istio" ConfigMap when the mounted file is absent.
			args = append(args, "--monitoringAddr=:15014", "--log_output_level=default:info",
				"--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m",
				"--meshConfig=/nonexistent/mesh.yaml", "--networksConfig=/nonexistent/networks.yaml")
			env = []string{
				"POD_NAME=" + podName,
				"POD_NAMESPACE=istio-system",
				"REVISION=default",
				"PILOT_DEBOUNCE_AFTER=10ms",
				"PILOT_DEBOUNCE_MAX=100ms",
			}
		}
		// Last flag wins: the listen addresses are moved to free loopback ports.
		args = append(append(args, o.Args...),
			"--kubeconfig="+o.Kubeconfig,
			"--grpcAddr="+i.GRPCAddr,
			"--secureGRPCAddr="+i.SecureGRPCAddr,
			"--httpsAddr="+i.HTTPSAddr,
			"--httpAddr="+i.HTTPAddr,
			"--monitoringAddr="+i.MonitoringAddr,
			"--ctrlz_port=0",
		)
	}
	if o.ConfigDir != "" {
		args = append(args, "--configDir="+o.ConfigDir)
	}
	if o.Kubeconfig == "" {
		args = append(args, o.Args...)
	}
	logf, err := os.Create(i.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := o.Bin
	if bin == "" {
		bin = Bin(t)
	}
	i.cmd = exec.Command(bin, args...)
	i.cmd.Stdout, i.cmd.Stderr = logf, logf
	i.cmd.Dir = o.WorkDir
	i.cmd.Env = append(append(os.Environ(), env...), o.Env...)
	i.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := i.cmd.Start(); err != nil {
		t.Fatalf("start pilot-discovery: %v", err)
	}
	go func() { i.done <- i.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		i.Stop()
		if t.Failed() {
			t.Logf("pilot-discovery log (%s), last lines:\n%s", i.LogPath, tailFrom(i.LogPath, 60))
		}
	})
	return i
}

// Stop sends SIGTERM and waits (SIGKILL after 10s).
func (i *Instance) Stop() {
	if i.cmd.ProcessState != nil {
		return
	}
	_ = i.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-i.done:
	case <-time.After(10 * time.Second):
		_ = i.cmd.Process.Kill()
		<-i.done
	}
}

// PID is the process ID.
func (i *Instance) PID() int { return i.cmd.Process.Pid }

// Exited reports whether the process has exited, with its error.
func (i *Instance) Exited() (bool, error) {
	select {
	case err := <-i.done:
		i.done <- err
		return true, err
	default:
		return false, nil
	}
}

// WaitReady polls /ready on the HTTP port until it answers 200.
func (i *Instance) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if exited, err := i.Exited(); exited {
			t.Fatalf("pilot-discovery exited before it was ready: %v", err)
		}
		code, body, err := i.Get("http://" + i.HTTPAddr + "/ready")
		if err == nil && code == http.StatusOK {
			return
		}
		last = fmt.Sprintf("code=%d err=%v body=%q", code, err, body)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pilot-discovery /ready did not answer 200 within %v: %s", timeout, last)
}

// Get fetches a URL and returns status code and body.
func (i *Instance) Get(url string) (int, []byte, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Debug fetches a debug path (e.g. "/debug/registryz") from the monitoring port.
func (i *Instance) Debug(t testing.TB, path string) []byte {
	t.Helper()
	code, body, err := i.Get("http://" + i.MonitoringAddr + path)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: code=%d err=%v body=%s", path, code, err, body)
	}
	return body
}

// Log returns the process output so far.
func (i *Instance) Log() string {
	b, _ := os.ReadFile(i.LogPath)
	return string(b)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(string(bytes.Join(lines, []byte("\n"))))
}

// tailFrom returns the last n lines, or from the first panic when there is one.
func tailFrom(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if i := bytes.Index(b, []byte("\npanic: ")); i >= 0 {
		b = b[i:]
		if len(b) > 8000 {
			b = b[:8000]
		}
		return string(b)
	}
	return tail(path, n)
}

// UpstreamBinEnv names the environment variable that points at stock upstream
// pilot-discovery built from the same pinned module without our patches (`make
// upstream-bin`: out/bin/pilot-discovery-upstream).
const UpstreamBinEnv = "UPSTREAM_PILOT_DISCOVERY_BIN"

// UpstreamBin returns stock upstream pilot-discovery. A missing binary fails the test
// (it is never skipped): `make test` builds it first.
func UpstreamBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(UpstreamBinEnv)
	if bin == "" {
		bin = filepath.Join(filepath.Dir(Bin(t)), "pilot-discovery-upstream")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("stock upstream pilot-discovery not found (%v): run `make upstream-bin`, or set %s", err, UpstreamBinEnv)
	}
	return bin
}
