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

// Package zk runs a real ZooKeeper server (Debian's zookeeper package, as installed by
// .ci/run) on loopback for tests, and registers Dubbo providers in it the way Dubbo's
// ZookeeperRegistry does.
package zk

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// JarEnv overrides the ZooKeeper server jar (default /usr/share/java/zookeeper.jar).
const JarEnv = "ZOOKEEPER_JAR"

// Server is a ZooKeeper server process.
type Server struct {
	Addr    string // 127.0.0.1:port
	dir     string
	dataDir string
	logPath string
	jar     string
	cmd     *exec.Cmd
	done    chan struct{}
}

func jar(t testing.TB) string {
	j := os.Getenv(JarEnv)
	if j == "" {
		j = "/usr/share/java/zookeeper.jar"
	}
	if _, err := os.Stat(j); err != nil {
		t.Fatalf("ZooKeeper server jar not found (%v): install Debian's zookeeper package (.ci/run does) or set %s", err, JarEnv)
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Fatalf("java not found: install Debian's zookeeper package (it depends on a JRE)")
	}
	return j
}

// Start starts a standalone ZooKeeper on a free loopback port with its own data
// directory; it is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	s := &Server{Addr: addr, dir: dir, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "zookeeper.log"), jar: jar(t)}
	s.start(t)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(s.logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("zookeeper log tail:\n%s", b)
		}
	})
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(s.dir, "zoo.cfg")
	conf := strings.Join([]string{
		"tickTime=500",
		"dataDir=" + s.dataDir,
		"clientPort=" + port,
		"clientPortAddress=127.0.0.1",
		"admin.enableServer=false",
		"4lw.commands.whitelist=ruok,srvr,stat,cons,mntr",
		"minSessionTimeout=1000",
		"maxSessionTimeout=60000",
		"maxClientCnxns=0",
		"jute.maxbuffer=16777216",
		"",
	}, "\n")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command("java", "-Xmx512m", "-Djute.maxbuffer=16777216", "-Dzookeeper.jmx.log4j.disable=true",
		"-cp", s.jar, "org.apache.zookeeper.server.ZooKeeperServerMain", cfg)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start zookeeper: %v", err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// ruok answers while the server still loads its data; srvr only once it serves
		// clients (a client connecting earlier may hang in its handshake).
		if s.ruok() && strings.Contains(s.fourLetter("srvr"), "Mode:") {
			return
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.logPath)
			t.Fatalf("zookeeper exited at start:\n%s", b)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("zookeeper did not answer ruok on %s within 30s", s.Addr)
}

func (s *Server) ruok() bool {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return false
	}
	b := make([]byte, 4)
	n, _ := c.Read(b)
	return bytes.Equal(b[:n], []byte("imok"))
}

// Stop kills the server (as a crash would); data on disk is kept.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart starts the stopped server again on the same port with the same data: sessions
// whose timeout has not passed survive.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// RestartEmpty restarts the server with its data wiped: every session and node is gone,
// as after losing a ZooKeeper ensemble's disks. Clients get "session expired".
func (s *Server) RestartEmpty(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := os.RemoveAll(s.dataDir); err != nil {
		t.Fatal(err)
	}
	s.start(t)
}

func (s *Server) fourLetter(cmd string) string {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = fmt.Fprint(c, cmd)
	var b bytes.Buffer
	_, _ = b.ReadFrom(c)
	return b.String()
}

// Stat returns the output of the "srvr" four-letter word (version, connections, nodes...).
func (s *Server) Stat() string {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = fmt.Fprint(c, "mntr")
	var b bytes.Buffer
	_, _ = b.ReadFrom(c)
	return b.String()
}

// Mntr returns one numeric value of the "mntr" output (e.g. zk_num_alive_connections),
// or -1 when the server does not report it.
func (s *Server) Mntr(key string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `\s+(\d+)`).FindStringSubmatch(s.Stat())
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

var consLine = regexp.MustCompile(`/([0-9.]+:[0-9]+)\[[0-9]+\]\(([^)]*)\)`)

// Sessions maps each client connection ("ip:port" as the server sees it) to the
// session it has established ("0x..."), from the "cons" four-letter word; connections
// without a session yet are left out.
func (s *Server) Sessions() map[string]string {
	out := map[string]string{}
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return out
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = fmt.Fprint(c, "cons")
	var b bytes.Buffer
	_, _ = b.ReadFrom(c)
	for _, m := range consLine.FindAllStringSubmatch(b.String(), -1) {
		for _, kv := range strings.Split(m[2], ",") {
			if sid, ok := strings.CutPrefix(kv, "sid="); ok && sid != "0x0" {
				out[m[1]] = sid
			}
		}
	}
	return out
}
