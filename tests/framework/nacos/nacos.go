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

// Package nacos runs a real Nacos-protocol server for tests: the Nacos API server of
// Polaris v1.18.1 (github.com/polarismesh/polaris), NOT Alibaba's Java Nacos server (no Java
// server can be installed on these machines). tools/polaris/build.sh builds it from the Go
// module proxy with two small patches (tools/polaris/patches, each says why) and installs
// its config template (tools/polaris/polaris-server.yaml) next to it; `make polaris-bin`.
//
// Each Server runs its own polaris-server process on free loopback ports with its own data
// directory (embedded boltdb store, logs): the Nacos HTTP API (v1) on HTTPPort, the Nacos
// gRPC API (v2) on HTTPPort+1000 (the Nacos SDK derives the gRPC port that way, so both
// must be free), and Polaris's own HTTP API on AdminPort. Ready in well under a second.
//
// Facts observed against this server with nacos-sdk-go v2.3.5 (nacos_test.go shows each):
//   - Namespaces need no creation: the first registration or publish in "dev" creates it
//     (namespace.autoCreate); a client of "dev" sees only "dev"'s services, instances and
//     configs, and a client of "public" (or "") none of them. A subscriber of a namespace
//     nobody has written to yet sees the first registration in it. CreateNamespace exists
//     for completeness (Polaris's own API on AdminPort).
//   - Auth: the SDK cannot log in (it posts to /nacos/v1/auth/users/login, which Polaris
//     does not serve), so no credentials work and bad ones cannot be told from good ones.
//     With Options.Auth every write and config read is refused, whatever the credentials:
//     RegisterInstance returns ok=false with a nil error, PublishConfig "access is not
//     approved", GetConfig "invalid token"; the service list is still served.
//   - Stop/Start on the same ports: the SDK reconnects within ~0.3 s of the server being
//     ready, and registers its instances again (the SDK's redo, every ~3 s). Polaris drops
//     the instances of the connections that died with it, so a subscriber is first told
//     the service is empty (~1.3 s after the restart) and gets the instance back ~3 s
//     after. While the server is down the SDK keeps serving its cache, with no callback.
//     Stop (SIGTERM) takes ~5 s (Polaris's graceful shutdown).
//   - Deregistration and disconnection reach subscribers in ~0.5-1 s (patch 0001).
//   - A config publish is readable ~1 s later (Polaris's config cache); CAS publishes
//     work (patch 0002); a missing config reads as "" with or without an error.
//   - GetAllServicesInfo(PageNo, PageSize): Count is the number of services of the group,
//     Doms one page of them in name order (patch 0003).
//   - A Nacos 2 client holds one instance per service: the SDK's redo registers again only
//     the last instance a client registered in a service. RegisterInstance therefore uses
//     a client per instance, as separate provider processes do.
package nacos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"

	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/fixtures"
)

// BinEnv names the environment variable that points at the polaris-server binary (set by
// `make test-unit` and `make test-e2e` to out/polaris/bin/polaris-server). Its config
// template polaris-server.yaml is read from the same directory.
const BinEnv = "DUBBO_POLARIS_BIN"

// GRPCPortOffset is how far the Nacos gRPC port is above the HTTP port, in both Polaris
// and the Nacos SDK (which has no other way to find it without WithGrpcPort).
const GRPCPortOffset = 1000

// DefaultGroup is Nacos's default group.
const DefaultGroup = "DEFAULT_GROUP"

// PublicNamespace is Nacos's default namespace ("" works too); Polaris stores it as its
// namespace "default".
const PublicNamespace = "public"

func findBin() (string, error) {
	bin := fixtures.RepoBin(BinEnv, "out", "polaris", "bin", "polaris-server")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("polaris-server not found (%v): run `make polaris-bin`, or set %s", err, BinEnv)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "polaris-server.yaml")); err != nil {
		return "", fmt.Errorf("polaris-server config template missing (%v): run `make polaris-bin`", err)
	}
	return bin, nil
}

// Bin returns the polaris-server binary. A missing binary fails the test (it is never
// skipped): the make targets build it first.
func Bin(t testing.TB) string {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Options configure a Server. The zero value is a server without auth.
type Options struct {
	// Auth turns on Polaris's client and console auth in strict mode: every Nacos request
	// must carry a valid Polaris token. See AdminToken and TestAuth for what the SDK can
	// and cannot do against it.
	Auth bool
	// ReadyTimeout bounds each start: 30 s (a loaded 2-core machine).
	ReadyTimeout time.Duration
}

// AdminToken is the token of Polaris's built-in owner account "polaris" in a fresh boltdb
// store (store/boltdb/default.go), with the salt of the config template.
const AdminToken = "nu/0WRA4EqSR1FagrjRj0fZwPXuGlMpX+zCuWu4uMqy8xr1vRjisSbA25aAC3mtU8MeeRsKhQiDAynUR09I="

// Server is a running (or stopped) polaris-server.
type Server struct {
	Opts      Options
	HTTPPort  int    // Nacos HTTP API (v1); gRPC (v2) is HTTPPort+GRPCPortOffset
	AdminPort int    // Polaris's own HTTP API
	DataDir   string // boltdb store and logs; kept across Stop/Start
	LogPath   string // stdout and stderr of the process
	// StartToReady is how long the last start took from exec to ready.
	StartToReady time.Duration

	t      testing.TB
	bin    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	sdkDir string
	// The helpers' own SDK clients, closed at cleanup: config clients per namespace,
	// naming clients per registered instance.
	configs   map[string]config_client.IConfigClient
	instances map[string]naming_client.INamingClient
	starts    int
}

// Start starts a polaris-server on free loopback ports with its own data directory, waits
// until its Nacos HTTP API answers and its gRPC port accepts connections, and stops it when
// the test ends. On failure the log tail is shown.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	s := &Server{
		Opts:      opts,
		t:         t,
		bin:       Bin(t),
		DataDir:   t.TempDir(),
		sdkDir:    t.TempDir(),
		configs:   map[string]config_client.IConfigClient{},
		instances: map[string]naming_client.INamingClient{},
	}
	s.LogPath = filepath.Join(s.DataDir, "polaris-server.out")
	t.Cleanup(func() {
		s.mu.Lock()
		var closers []func()
		for _, c := range s.configs {
			closers = append(closers, c.CloseClient)
		}
		for _, c := range s.instances {
			closers = append(closers, c.CloseClient)
		}
		s.configs, s.instances = nil, nil
		s.mu.Unlock()
		for _, c := range closers {
			c()
		}
		s.Kill()
	})
	// A free port can be taken between the probe and the bind: retry with new ports.
	for attempt := 1; ; attempt++ {
		s.HTTPPort, s.AdminPort = freePorts(t)
		err := s.start()
		if err == nil {
			return s
		}
		s.Kill()
		if attempt < 3 && strings.Contains(s.logTail(), "address already in use") {
			t.Logf("polaris-server: port taken, retrying: %v", err)
			continue
		}
		t.Fatalf("polaris-server: %v\nlog (%s), last lines:\n%s", err, s.LogPath, s.logTail())
	}
}

// freePorts returns a free loopback port p whose p+GRPCPortOffset is free too, and another
// free port.
func freePorts(t testing.TB) (int, int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l1.Addr().(*net.TCPAddr).Port
		if p+GRPCPortOffset > 65535 {
			l1.Close()
			continue
		}
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+GRPCPortOffset)))
		if err != nil {
			l1.Close()
			continue
		}
		l3, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		admin := l3.Addr().(*net.TCPAddr).Port
		l1.Close()
		l2.Close()
		l3.Close()
		if admin != p+GRPCPortOffset {
			return p, admin
		}
	}
	t.Fatal("no free port p with p+1000 free on 127.0.0.1")
	return 0, 0
}

// Address is the Nacos server address, "127.0.0.1:<HTTPPort>".
func (s *Server) Address() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.HTTPPort))
}

// URL is the Dubbo registry URL of the server, "nacos://127.0.0.1:<HTTPPort>".
func (s *Server) URL() string { return "nacos://" + s.Address() }

// GRPCPort is the Nacos gRPC API's port.
func (s *Server) GRPCPort() int { return s.HTTPPort + GRPCPortOffset }

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	s.starts++
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	conf := filepath.Join(filepath.Dir(s.bin), "polaris-server.yaml")
	fmt.Fprintf(logf, "=== start %d: %s start -c %s (http %d, grpc %d, admin %d)\n",
		s.starts, s.bin, conf, s.HTTPPort, s.GRPCPort(), s.AdminPort)
	cmd := exec.Command(s.bin, "start", "-c", conf)
	// Polaris writes a few relative paths (./data) in its working directory.
	cmd.Dir = s.DataDir
	cmd.Env = append(os.Environ(),
		"POLARIS_DATA_DIR="+s.DataDir,
		"POLARIS_NACOS_PORT="+strconv.Itoa(s.HTTPPort),
		"POLARIS_ADMIN_PORT="+strconv.Itoa(s.AdminPort),
		"POLARIS_CLIENT_AUTH="+strconv.FormatBool(s.Opts.Auth),
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// The server dies with the test process even if cleanup does not run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	ctx, cancel := context.WithTimeout(context.Background(), s.Opts.ReadyTimeout)
	defer cancel()
	for {
		err := s.probe(ctx)
		if err == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("exited before ready (%v): %v", cmd.ProcessState, err)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v", s.Opts.ReadyTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.StartToReady = time.Since(begin)
	return nil
}

// probe: the Nacos HTTP API answers a service list (any status but a connection error:
// with auth on it answers 403) and the gRPC port accepts connections.
func (s *Server) probe(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/nacos/v1/ns/service/list?pageNo=1&pageSize=1", s.Address()), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("service list: %s", resp.Status)
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.GRPCPort())), time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// Running tells whether the process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Stop stops the server (SIGTERM, SIGKILL after 10 s) and keeps its data: Start brings
// it back on the same ports.
func (s *Server) Stop() { s.stop(syscall.SIGTERM) }

// Kill kills the server (SIGKILL) and keeps its data.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Start starts a stopped server again on the same ports with the same data.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.Kill()
		s.t.Fatalf("polaris-server restart: %v\nlog (%s), last lines:\n%s", err, s.LogPath, s.logTail())
	}
}

// Restart stops the server and starts it again on the same ports with the same data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
