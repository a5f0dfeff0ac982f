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

package nacos

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"istio.io/istio/pkg/test/util/retry"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry/registrytest"
	nacosfw "github.com/dubbo-istiod/dubbo-istiod/tests/framework/nacos"
)

// TestReconnectBetweenHealthReadsIsANewSession: the client reconnects and re-subscribes
// faster than the health loop reads its state (here it reads once, at start). The lists
// the re-subscription delivers must still count as a new session, so providers that have
// not re-registered yet are held for the reconnect grace and never withdrawn at once.
// Polaris first tells a re-subscriber that the service is empty (tests/framework/nacos):
// without the generation check in apply the endpoints went to zero.
func TestReconnectBetweenHealthReadsIsANewSession(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	svc := "providers:com.example.GreetService::"
	md := map[string]string{"interface": "com.example.GreetService", "protocol": "dubbo", "application": "greet"}
	srv.RegisterInstance(t, "", svc, "", "10.0.9.1", 20880, md)
	// A provider that goes while the server is down (its client closed: a dead process).
	srv.RegisterInstance(t, "", svc, "", "10.0.9.2", 20880, md)

	rec := registrytest.NewRecorder()
	ctl, err := registry.NewController(registry.Options{Namespace: "dubbo", ServicePort: 20880, ReconnectGrace: 10 * time.Second}, rec)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseAddress(srv.URL() + "?name=n")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListInterval, cfg.Dir = 300*time.Millisecond, t.TempDir()
	if err := ctl.AddSource(cfg.Name, cfg.Address); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(cfg, ctl, cfg.Name)
	w.healthInterval = time.Hour
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range []interface{ Run(<-chan struct{}) }{w, ctl} {
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(stop) }()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })

	const host = "com.example.greetservice"
	retry.UntilSuccessOrFail(t, rec.WantAddrs(host, "10.0.9.1:20880", "10.0.9.2:20880"), retry.Timeout(30*time.Second))
	// SIGKILL: a graceful stop may push its clients' deregistrations to us before it
	// closes our connection (docs/registry.md, Nacos faults), which is not this case.
	srv.Kill()
	srv.Disconnect(t, "", svc, "", "10.0.9.2", 20880)
	srv.Start()
	// The helper's client registers 10.0.9.1 again; the closed one never comes back.
	retry.UntilSuccessOrFail(t, rec.WantAddrs(host, "10.0.9.1:20880"), retry.Timeout(30*time.Second))
	if m := rec.Min(host); m == 0 {
		t.Errorf("the endpoints went to zero after the reconnection: its lists were applied without the grace; calls %v", rec.Calls)
	}
	var sessions int
	for _, r := range ctl.Debug().Registries {
		if r.Name == "n" {
			sessions = r.Sessions
		}
	}
	if sessions < 2 {
		t.Errorf("%d sessions, want a new one after the reconnection", sessions)
	}
}

// TestNoUDPListener: the Nacos client must not listen on UDP (patches/nacos-sdk-go/0003):
// the stock client's push receiver applied any datagram to its instance cache. Read from
// this process's sockets in /proc, with a client connected to a real server.
func TestNoUDPListener(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	cfg, err := ParseAddress(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir = t.TempDir()
	before := udpSockets(t)
	naming, config, err := newClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer config.CloseClient()
	defer naming.CloseClient()
	retry.UntilSuccessOrFail(t, func() error {
		if _, up := connectionOf(naming)(); !up {
			return fmt.Errorf("not connected yet")
		}
		return nil
	}, retry.Timeout(30*time.Second))
	for inode, port := range udpSockets(t) {
		if _, had := before[inode]; !had {
			t.Errorf("the Nacos client opened a UDP socket on port %d", port)
		}
	}
}

// udpSockets maps the inodes of this process's UDP sockets to their local ports.
func udpSockets(t *testing.T) map[string]int {
	t.Helper()
	mine := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil {
			if in, ok := strings.CutPrefix(l, "socket:["); ok {
				mine[strings.TrimSuffix(in, "]")] = true
			}
		}
	}
	out := map[string]int{}
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || !mine[fields[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			p, _ := strconv.ParseInt(hexPort, 16, 32)
			out[fields[9]] = int(p)
		}
	}
	return out
}
