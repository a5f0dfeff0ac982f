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

// Package dubbo3 runs real Dubbo 3 applications (dubbo-go v3, tools/dubbo3) as processes
// for tests: providers registered in ZooKeeper or Nacos (ProviderOptions.Registry) at
// interface level, application level or both, exporting dubbo (Hessian2) and tri at once,
// and a consumer that calls them.
//
// dubbo-go is never imported here: its gRPC and x/net versions stay in tools/dubbo3's own
// module; this package execs the binary that tools/dubbo3/build.sh builds
// (`make dubbo3-bin`).
package dubbo3

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/fixtures"
)

// BinEnv names the environment variable that points at the dubbo3 binary (set by `make
// test-e2e` to out/dubbo3/bin/dubbo3).
const BinEnv = "DUBBO3_BIN"

// DefaultInterface is the interface a provider exports when none is given.
const DefaultInterface = "com.example.GreetService"

// Registration modes (dubbo-go's registry-type).
const (
	ModeInterface = "interface" // /dubbo/<iface>/providers only, as Dubbo 2
	ModeService   = "service"   // application level only: dubbo-go 3.3's default
	ModeAll       = "all"       // both: Dubbo Java 3's migration default
)

// Metadata storages.
const (
	MetadataLocal  = "local"  // served by the instance's MetadataService (RPC)
	MetadataRemote = "remote" // written to ZooKeeper at /dubbo/<app>/<revision>
)

func findBin() (string, error) {
	bin := fixtures.RepoBin(BinEnv, "out", "dubbo3", "bin", "dubbo3")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("dubbo3 binary not found (%v): run `make dubbo3-bin`, or set %s", err, BinEnv)
	}
	return bin, nil
}

// Bin returns the dubbo3 binary. A missing binary fails the test (it is never skipped):
// `make test-e2e` builds it first.
func Bin(t testing.TB) string {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// FreePort returns a currently free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ProviderOptions configure one provider process. Zero values take the defaults shown.
type ProviderOptions struct {
	ZK string // ZooKeeper address: shorthand of Registry zookeeper://<ZK>
	// Registry is the registry URL, zookeeper://host:port or nacos://host:port[?namespace=ns]
	// (tests/framework/nacos Server.URL); it also holds the mapping and the remote metadata.
	// One of ZK or Registry is required.
	Registry    string
	App         string   // application name: "greet-provider"
	Mode        string   // ModeInterface, ModeService (default) or ModeAll
	Metadata    string   // MetadataLocal (default) or MetadataRemote
	Interfaces  []string // exported interfaces: [DefaultInterface]
	Version     string   // service version
	Group       string   // service group
	Weight      int64    // service weight (0: dubbo-go writes weight=0)
	NoDubbo     bool     // do not export the dubbo protocol
	NoTri       bool     // do not export the tri protocol
	IP          string   // bind and registered IP: 127.0.0.1
	ReplyPrefix string   // prefix of every answer
	// DubboPort, TriPort and MetadataPort: 0 picks a free port.
	DubboPort, TriPort, MetadataPort int
	// Args are extra flags of `dubbo3 provider` (e.g. "-param", "k=v").
	Args []string
	// ReadyTimeout bounds the wait for READY: 2 minutes (a loaded 2-core machine).
	ReadyTimeout time.Duration
}

// Provider is a running `dubbo3 provider`.
type Provider struct {
	Opts    ProviderOptions // with the defaults and ports filled in
	LogPath string          // stdout and stderr of the process
	// StartToReady is how long the process took from exec to its READY line.
	StartToReady time.Duration

	t    testing.TB
	cmd  *exec.Cmd
	done chan error
}

func (o *ProviderOptions) defaults(t testing.TB) {
	if (o.ZK == "") == (o.Registry == "") {
		t.Fatal("dubbo3.ProviderOptions: one of ZK or Registry is required")
	}
	if o.App == "" {
		o.App = "greet-provider"
	}
	if o.Mode == "" {
		o.Mode = ModeService
	}
	if o.Metadata == "" {
		o.Metadata = MetadataLocal
	}
	if len(o.Interfaces) == 0 {
		o.Interfaces = []string{DefaultInterface}
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
}

// StartProvider starts a provider on free ports, waits for its READY line and stops it
// (SIGTERM) when the test ends. On failure the log tail is shown.
func StartProvider(t testing.TB, o ProviderOptions) *Provider {
	t.Helper()
	o.defaults(t)
	bin := Bin(t)
	// Retried on two causes only, each logged: a free port taken between the probe and the
	// bind, and a registry that refused or timed out an export (dubbo-go exits: its
	// requests time out after 3 s, which Polaris on a loaded 2-core machine can exceed,
	// and Polaris answers some registrations right after its start with a bare refusal; a
	// real provider's supervisor would restart it).
	freshPorts := false
	for attempt := 1; ; attempt++ {
		p, err := startProvider(t, bin, o, attempt, freshPorts)
		if err == nil {
			return p
		}
		log := p.Log()
		if attempt < 3 && strings.Contains(log, "address already in use") {
			t.Logf("dubbo3 provider %s: port taken, retrying: %v", o.App, err)
			freshPorts = true
			continue
		}
		// Up to five attempts: on a machine loaded to the full (CI beside stress-ng), Polaris
		// timed out three exports of one provider in a row once.
		if attempt < 5 && strings.Contains(log, "Registry protocol new exporter error") {
			// The same ports again: what the dead attempt did register may outlive it in
			// the registry (Polaris sometimes fails to drop a dead connection's instances:
			// "deregister all instance fail"), and must then be this provider's own address.
			t.Logf("dubbo3 provider %s: the registry refused or timed out its export, retrying on the same ports: %v", o.App, err)
			o, freshPorts = p.Opts, false
			continue
		}
		t.Fatalf("dubbo3 provider %s: %v\nlog (%s), last lines:\n%s", o.App, err, p.LogPath, tail(p.LogPath, 40))
	}
}

func startProvider(t testing.TB, bin string, o ProviderOptions, attempt int, freshPorts bool) (*Provider, error) {
	pick := func(port int, off bool) int {
		switch {
		case off:
			return 0
		case port == 0 || freshPorts:
			return FreePort(t)
		default:
			return port
		}
	}
	o.DubboPort = pick(o.DubboPort, o.NoDubbo)
	o.TriPort = pick(o.TriPort, o.NoTri)
	o.MetadataPort = pick(o.MetadataPort, false)
	args := []string{"provider",
		"-app", o.App, "-mode", o.Mode, "-metadata", o.Metadata,
		"-interface", strings.Join(o.Interfaces, ","),
		"-ip", o.IP,
		"-dubbo-port", strconv.Itoa(o.DubboPort), "-tri-port", strconv.Itoa(o.TriPort),
		"-metadata-port", strconv.Itoa(o.MetadataPort),
		"-ready-timeout", o.ReadyTimeout.String(),
	}
	if o.Registry != "" {
		// The Nacos SDK's cache and logs go to the test's directory, not the working one.
		args = append(args, "-registry", o.Registry, "-nacos-dir", t.TempDir())
	} else {
		args = append(args, "-zk", o.ZK)
	}
	if o.Version != "" {
		args = append(args, "-version", o.Version)
	}
	if o.Group != "" {
		args = append(args, "-group", o.Group)
	}
	if o.Weight != 0 {
		args = append(args, "-weight", strconv.FormatInt(o.Weight, 10))
	}
	if o.ReplyPrefix != "" {
		args = append(args, "-reply-prefix", o.ReplyPrefix)
	}
	args = append(args, o.Args...)

	p := &Provider{
		Opts:    o,
		LogPath: filepath.Join(t.TempDir(), fmt.Sprintf("dubbo3-%s-%d.log", o.App, attempt)),
		t:       t,
		done:    make(chan error, 1),
	}
	logf, err := os.Create(p.LogPath)
	if err != nil {
		return p, err
	}
	fmt.Fprintf(logf, "$ %s %s\n", bin, strings.Join(args, " "))
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = logf
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return p, err
	}
	// The provider dies with the test process even if cleanup does not run.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return p, err
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if strings.HasPrefix(line, "READY ") {
				select {
				case ready <- line:
				default:
				}
			}
		}
		p.done <- p.cmd.Wait()
		logf.Close()
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("dubbo3 provider %s log (%s), last lines:\n%s", o.App, p.LogPath, tail(p.LogPath, 30))
		}
	})
	select {
	case line := <-ready:
		p.StartToReady = time.Since(start)
		t.Logf("dubbo3 provider %s ready in %v: %s", o.App, p.StartToReady.Round(time.Millisecond), line)
		return p, nil
	case err := <-p.done:
		p.done <- err
		return p, fmt.Errorf("exited before READY: %v", err)
	case <-time.After(o.ReadyTimeout + 10*time.Second):
		p.Kill()
		return p, fmt.Errorf("no READY line within %v", o.ReadyTimeout)
	}
}

// Stop sends SIGTERM and waits for the process to exit: dubbo-go's own handler
// unregisters, waits ~3 s and exits (SIGKILL after 30 s).
func (p *Provider) Stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(30 * time.Second):
		p.Kill()
	}
}

// Kill sends SIGKILL and waits: nothing is unregistered; the ephemeral nodes go when the
// ZooKeeper session expires.
func (p *Provider) Kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err
}

func (p *Provider) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// Exited reports whether the process has exited, with its error.
func (p *Provider) Exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// PID is the process ID.
func (p *Provider) PID() int { return p.cmd.Process.Pid }

// Log returns the process output so far.
func (p *Provider) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Addr returns ip:port of a protocol ("dubbo", "tri" or "metadata"), "" if not exported.
func (p *Provider) Addr(protocol string) string {
	port := p.Port(protocol)
	if port == 0 {
		return ""
	}
	return net.JoinHostPort(p.Opts.IP, strconv.Itoa(port))
}

// Port returns the port of a protocol ("dubbo", "tri" or "metadata"), 0 if not exported.
func (p *Provider) Port(protocol string) int {
	switch protocol {
	case "dubbo":
		return p.Opts.DubboPort
	case "tri":
		return p.Opts.TriPort
	case "metadata":
		return p.Opts.MetadataPort
	}
	return 0
}

// URL is a direct URL of an interface over a protocol ("dubbo" or "tri"), with the
// provider's version and group, for CallOptions.URL.
func (p *Provider) URL(protocol, iface string) string {
	return DirectURL(protocol, p.Addr(protocol), iface, p.Opts.Version, p.Opts.Group)
}

// Reply is the answer the provider gives to SayHello(name) over a protocol.
func (p *Provider) Reply(protocol, name string) string {
	s := fmt.Sprintf("hello %s from %s@%s via %s", name, p.Opts.App, p.Addr(protocol), protocol)
	if p.Opts.ReplyPrefix != "" {
		s = p.Opts.ReplyPrefix + " " + s
	}
	return s
}

// DirectURL builds protocol://addr/iface[?version=..&group=..].
func DirectURL(protocol, addr, iface, version, group string) string {
	u := url.URL{Scheme: protocol, Host: addr, Path: "/" + iface}
	q := url.Values{}
	if version != "" {
		q.Set("version", version)
	}
	if group != "" {
		q.Set("group", group)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// CallOptions configure one `dubbo3 consumer` run.
type CallOptions struct {
	// URL is a direct provider URL (dubbo://ip:port/<iface> or tri://...); or ZK
	// resolves through ZooKeeper (application-level discovery) over Protocol.
	URL string
	ZK  string
	// Registry resolves through a registry URL as ProviderOptions.Registry; NacosDir holds
	// the Nacos SDK's cache and logs (default: a new directory under $TMPDIR).
	Registry, NacosDir string
	Protocol           string // with ZK or Registry: "dubbo" (default) or "tri"
	// Interface defaults to the URL's path, else DefaultInterface.
	Interface, Version, Group string
	Method                    string        // "SayHello"
	Arg                       string        // "world"
	N                         int           // calls: 1
	Timeout                   time.Duration // per call: 3s
}

// Call runs the consumer and returns its answers, one per line (trimmed). A failed call
// returns the consumer's error output.
func Call(ctx context.Context, o CallOptions) (string, error) {
	bin, err := findBin()
	if err != nil {
		return "", err
	}
	args := []string{"consumer"}
	add := func(flag, v string) {
		if v != "" {
			args = append(args, flag, v)
		}
	}
	add("-url", o.URL)
	add("-zk", o.ZK)
	add("-registry", o.Registry)
	add("-nacos-dir", o.NacosDir)
	add("-protocol", o.Protocol)
	add("-interface", o.Interface)
	add("-version", o.Version)
	add("-group", o.Group)
	add("-method", o.Method)
	add("-arg", o.Arg)
	if o.N > 0 {
		add("-n", strconv.Itoa(o.N))
	}
	if o.Timeout > 0 {
		add("-timeout", o.Timeout.String())
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		// The consumer's own message is its last line; dubbo-go's logs come before it.
		if i := strings.LastIndex(msg, "\ndubbo3 consumer: "); i >= 0 {
			msg = msg[i+1:]
		}
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return strings.TrimSpace(stdout.String()), errors.New(err.Error() + ": " + msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
