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

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func demoScript(t *testing.T) string {
	p, err := filepath.Abs("../../tools/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"pilot-discovery", "dubbo-provider", "dubbo-xds"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "..", "out", "bin", b)); err != nil {
			t.Fatalf("out/bin/%s missing: run `make build tools` (make test does)", b)
		}
	}
	return p
}

// TestDemoShowsAChangingPicture runs `make demo`'s script to its end (DEMO_EXIT=1).
func TestDemoShowsAChangingPicture(t *testing.T) {
	cmd := exec.Command("bash", demoScript(t))
	cmd.Env = append(os.Environ(), "DEMO_EXIT=1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	t.Logf("demo ran in %v", time.Since(start))
	for _, want := range []string{
		"egress_dubbo   127.0.0.1:20881  routes dubbo-20881",
		"com.example.DemoService  env=gray  ->  outbound|20880|v2|com.example.demoservice",
		"80% outbound|20880|v1|com.example.demoservice, 20% outbound|20880|v2|com.example.demoservice  [timeout 3s, 2 retries]",
		"MOSN CONFORMANCE: ok",
		"sayHello(dubbo-istiod) answered by demo-provider v1.0.0 on 127.0.0.1:20880",
		"sayHello(dubbo-istiod) answered by demo-provider v2.0.0 on 127.0.0.1:20890",
		"registry demo-zk: connected=True interfaces=1 providers=2",
		"127.0.0.1:20890 (weight 43)", // after v1's weight went to 300: 300:100 -> 128:43
		"(no endpoints)",              // after v2 stopped
		// Governance: dubbo-admin's weight node for v2 (600), then a disable rule for v1.
		"127.0.0.1:20880 (weight 64)", // v1 300 : v2 600 -> 64:128
		"ms after the rule was written (v1 is out of rotation, by EDS)",
		"/debug/dubboz governance: com.example.DemoService:1.0.0:.configurators from demo-zk/config: applied",
		"/debug/dubboz governance: com.example.DemoService:2.0.0:.configurators from demo-zk/config: applied",
		"ms after the rule was deleted",
		// A tag route on the Dubbo 3 GreetService: gray calls to the tagged provider.
		"com.example.GreetService  dubbo.tag=gray  ->  outbound|20880||tag-gray-",
		`(governance selection "tag-gray" of com.example.greetservice)`,
		`(governance selection "untagged" of com.example.greetservice)`,
		"demo: stopped everything it started",
		"application greet-dubbo3, 2 instance nodes, interfaces com.example.GreetService",
		"registry demo-nacos (Nacos 127.0.0.1:",
		"one service for both registries: com.example.GreetService -> com.example.greetservice",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// The Dubbo 3 apps (one in ZooKeeper, one in Nacos) answer real calls on both
	// protocols, at the endpoints MOSN is given.
	for _, re := range []string{
		`outbound\|20880\|\|com\.example\.greetservice\s+dubbo\s+127\.0\.0\.1:(\d+)\s+-> hello mesh from greet-dubbo3@127\.0\.0\.1:(\d+) via dubbo`,
		`outbound\|50051\|\|com\.example\.greetservice\s+tri\s+127\.0\.0\.1:(\d+)\s+-> hello mesh from greet-dubbo3@127\.0\.0\.1:(\d+) via tri`,
		`outbound\|20880\|\|com\.example\.greetservice\s+dubbo\s+127\.0\.0\.1:(\d+)\s+-> hello mesh from greet-nacos@127\.0\.0\.1:(\d+) via dubbo`,
		`outbound\|50051\|\|com\.example\.greetservice\s+tri\s+127\.0\.0\.1:(\d+)\s+-> hello mesh from greet-nacos@127\.0\.0\.1:(\d+) via tri`,
	} {
		m := regexp.MustCompile(re).FindSubmatch(out)
		if m == nil {
			t.Errorf("demo output lacks a line matching %s", re)
		} else if string(m[1]) != string(m[2]) {
			t.Errorf("the call to port %s was answered on port %s", m[1], m[2])
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
	checkStopped(t, out)
}

// TestDemoCtrlCLeavesNothingRunning runs the demo interactively and presses Ctrl-C.
func TestDemoCtrlCLeavesNothingRunning(t *testing.T) {
	cmd := exec.Command("bash", demoScript(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's foreground group
	// exec copies the output from its own goroutine: read it only through the lock.
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "Press Ctrl-C to stop everything.") {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatalf("the demo did not reach its interactive part:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // Ctrl-C goes to the whole group
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("the demo did not stop within 30s of Ctrl-C:\n%s", out.String())
	}
	checkStopped(t, out.Bytes())
}

// lockedBuffer is a bytes.Buffer that exec's copying goroutine writes while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Bytes returns a copy: the buffer's own slice changes under later writes.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// checkStopped: every process the demo recorded is gone.
func checkStopped(t *testing.T, out []byte) {
	t.Helper()
	m := regexp.MustCompile(`logs in (\S+)/logs`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no log directory in the demo output")
	}
	b, err := os.ReadFile(filepath.Join(string(m[1]), "pids"))
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(b))
	if len(pids) < 5 {
		t.Fatalf("the demo recorded %d processes, want at least 5 (zookeeper, 2 providers, istiod, watcher)", len(pids))
	}
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		if err := syscall.Kill(pid, 0); err == nil {
			if st, _ := os.ReadFile("/proc/" + p + "/stat"); !bytes.Contains(st, []byte(") Z ")) {
				t.Errorf("process %d started by the demo is still running", pid)
			}
		}
	}
}
