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

// Package dubbo3_test checks the real Dubbo 3 application (tools/dubbo3, dubbo-go v3.3.2)
// against a real ZooKeeper: what each registration mode and metadata storage writes, the
// MetadataService's wire format, and calls over dubbo and tri. With
// DUBBO3_UPDATE_TESTDATA=1 it saves the observed node bodies and the decoded
// MetadataService answer under pilot/pkg/dubbo/appdiscovery/testdata for the decoders'
// tests.
package dubbo3_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
	"github.com/go-zookeeper/zk"
	"istio.io/istio/pkg/test/util/retry"

	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/dubbo3"
	zkh "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

const (
	greet    = dubbo3.DefaultInterface
	echo     = "com.example.EchoService"
	version  = "1.0.0"
	group    = "blue"
	weight   = 50
	nodeWait = 30 * time.Second
)

// testdata is where the observed bodies go with DUBBO3_UPDATE_TESTDATA=1.
func testdata(t *testing.T) string {
	t.Helper()
	if os.Getenv("DUBBO3_UPDATE_TESTDATA") == "" {
		return ""
	}
	wd, _ := os.Getwd()
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(d, "pilot", "pkg", "dubbo", "appdiscovery", "testdata")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			return dir
		}
	}
	t.Fatal("repository root not found")
	return ""
}

func save(t *testing.T, dir, name string, body []byte) {
	t.Helper()
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote testdata %s", name)
}

func indentJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return append(out, '\n')
}

// TestMetadataServiceWire calls a real provider's MetadataService as a Dubbo 3 consumer
// does for local metadata, and records what comes back. It runs first in this package:
// it shows how dubbo-go-hessian2 treats the answer's classes before anything registers
// them (RegisterMetadataPOJOs is process-wide).
func TestMetadataServiceWire(t *testing.T) {
	server := zkh.Start(t)
	conn := zkh.Connect(t, server.Addr, 10*time.Second).Conn
	p := dubbo3.StartProvider(t, dubbo3.ProviderOptions{
		ZK: server.Addr, App: "greet-provider", Mode: dubbo3.ModeService,
		Interfaces: []string{greet, echo}, Version: version, Group: group, Weight: weight,
	})
	inst := waitInstances(t, conn, "greet-provider", 2)[0]
	rev := inst.Metadata()[dubbo3.KeyRevision]
	params, err := inst.MetadataServiceParams()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s = %v", dubbo3.KeyMetadataURLParam, params)
	if params["port"] != strconv.Itoa(p.Port("metadata")) || params["protocol"] != "dubbo" ||
		params["group"] != "greet-provider" || params["version"] != dubbo3.MetadataServiceVersion {
		t.Fatalf("url-params %v: want protocol dubbo, port %d, group greet-provider, version %s",
			params, p.Port("metadata"), dubbo3.MetadataServiceVersion)
	}

	start := time.Now()
	call, err := dubbo3.CallMetadataService(p.Addr("metadata"), "greet-provider", rev, 5*time.Second)
	if err != nil {
		t.Fatalf("getMetadataInfo: %v", err)
	}
	t.Logf("getMetadataInfo round trip %v, response %d bytes, status %d", time.Since(start), len(call.Response), call.Header.ResponseStatus)
	if call.Header.ResponseStatus != hessian.Response_OK {
		t.Fatalf("response status %d", call.Header.ResponseStatus)
	}

	var report strings.Builder
	fmt.Fprintf(&report, "# getMetadataInfo(revision) on a dubbo-go v3.3.2 provider's MetadataService (tests/e2e/dubbo3)\n")
	fmt.Fprintf(&report, "request: dubbo protocol, Hessian2 (serialization id 2), two-way\n")
	fmt.Fprintf(&report, "  body: dubbo version 2.0.2, path %s, version %s, method %s, parameter types \"Ljava/lang/String;\", args [revision]\n",
		dubbo3.MetadataServiceInterface, dubbo3.MetadataServiceVersion, dubbo3.MetadataServiceMethod)
	fmt.Fprintf(&report, "  attachments: path, interface=%s, version=%s, group=<app> (greet-provider), timeout\n",
		dubbo3.MetadataServiceInterface, dubbo3.MetadataServiceVersion)
	fmt.Fprintf(&report, "instance: %s\nrevision: %s\nurl-params: %s\n", inst.Path, rev, inst.Metadata()[dubbo3.KeyMetadataURLParam])
	fmt.Fprintf(&report, "response: status %d, %d bytes (header 16)\n", call.Header.ResponseStatus, len(call.Response))

	// Unregistered classes: hessian.NewDecoder (what HessianCodec.ReadBody uses for
	// responses) refuses them; it never builds a map.
	var raw any
	errUnregistered := call.Decode(&raw)
	t.Logf("decode with the classes unregistered: value %T, err %v", raw, errUnregistered)
	fmt.Fprintf(&report, "\n## decode with %s unregistered (HessianCodec.ReadBody)\nvalue: %T %v\nerr: %v\n",
		dubbo3.MetadataInfoClass, raw, raw, errUnregistered)
	if errUnregistered == nil {
		t.Logf("note: unregistered MetadataInfo decoded to %T", raw)
	}
	// The skipping decoder drops unknown objects instead: nil, no error.
	skipped, errSkip := hessian.NewDecoderWithSkip(call.Response[16:]).Decode()
	fmt.Fprintf(&report, "NewDecoderWithSkip on the body: first value (response type) %v, err %v\n", skipped, errSkip)

	dubbo3.RegisterMetadataPOJOs()
	var v any
	if err := call.Decode(&v); err != nil {
		t.Fatalf("decode with POJOs registered: %v", err)
	}
	// The answer decodes to the registered struct by value.
	t.Logf("decoded with POJOs registered: %T", v)
	mv, ok := v.(dubbo3.MetadataInfoPOJO)
	if !ok {
		t.Fatalf("decoded %T, want MetadataInfoPOJO", v)
	}
	m := &mv
	if m.App != "greet-provider" || m.Revision != rev {
		t.Fatalf("MetadataInfo app=%q revision=%q, want greet-provider %s", m.App, m.Revision, rev)
	}
	checkServices(t, "MetadataService answer", toServiceInfos(m), p, []string{greet, echo})
	js, _ := json.MarshalIndent(m, "", "  ")
	fmt.Fprintf(&report, "\nnote: decodes to the Go value %T (not a pointer); ServiceInfo.port arrives as a Hessian long "+
		"(dubbo-go encodes its Go int as int64; Java's field is an int, inferred): decode it into int64 or int\n", v)
	fmt.Fprintf(&report, "\n## decoded with POJOs registered (%s{app,revision,tag,services}, %s{name,group,version,protocol,port,path,params})\n%s\n",
		dubbo3.MetadataInfoClass, dubbo3.ServiceInfoClass, js)
	t.Logf("%s", report.String())

	// A revision the instance does not have.
	bad, err := dubbo3.CallMetadataService(p.Addr("metadata"), "greet-provider", "0123", 5*time.Second)
	if err != nil {
		t.Fatalf("getMetadataInfo(unknown revision): %v", err)
	}
	var badV any
	badErr := bad.Decode(&badV)
	t.Logf("unknown revision: status %d, value %T %v, err %v", bad.Header.ResponseStatus, badV, badV, badErr)
	fmt.Fprintf(&report, "\n## unknown revision \"0123\"\nstatus %d, value %T %+v, err %v\n", bad.Header.ResponseStatus, badV, badV, badErr)

	// A wrong group: no such exporter.
	wrong, err := dubbo3.CallMetadataService(p.Addr("metadata"), "other-app", rev, 5*time.Second)
	if err == nil {
		var wv any
		werr := wrong.Decode(&wv)
		t.Logf("wrong group: status %d, value %T, err %v", wrong.Header.ResponseStatus, wv, werr)
		fmt.Fprintf(&report, "\n## group \"other-app\" (not the app)\nstatus %d, value %T, err %v\n", wrong.Header.ResponseStatus, wv, werr)
	} else {
		fmt.Fprintf(&report, "\n## group \"other-app\" (not the app)\ncall error: %v\n", err)
	}

	dir := testdata(t)
	save(t, dir, "metadata-rpc.txt", []byte(report.String()))
	save(t, dir, "metadata-rpc-response.bin", call.Response)
	save(t, dir, "metadata-rpc-request.bin", call.Request)
}

// TestRegistrationModes runs a provider in every registration mode with both metadata
// storages and checks the nodes it writes and calls over both protocols.
func TestRegistrationModes(t *testing.T) {
	server := zkh.Start(t)
	conn := zkh.Connect(t, server.Addr, 10*time.Second).Conn
	dir := testdata(t)
	for _, mode := range []string{dubbo3.ModeInterface, dubbo3.ModeService, dubbo3.ModeAll} {
		for _, storage := range []string{dubbo3.MetadataLocal, dubbo3.MetadataRemote} {
			t.Run(mode+"-"+storage, func(t *testing.T) {
				app := "greet-" + mode + "-" + storage
				p := dubbo3.StartProvider(t, dubbo3.ProviderOptions{
					ZK: server.Addr, App: app, Mode: mode, Metadata: storage,
					Interfaces: []string{greet, echo}, Version: version, Group: group, Weight: weight,
					ReplyPrefix: app,
				})
				appLevel := mode != dubbo3.ModeInterface
				ifaceLevel := mode != dubbo3.ModeService

				if appLevel {
					insts := waitInstances(t, conn, app, 2)
					rev := checkInstances(t, insts, p, storage)
					for _, iface := range []string{greet, echo} {
						waitMapping(t, conn, iface, app)
					}
					var m *dubbo3.MetadataInfo
					if storage == dubbo3.MetadataRemote {
						var body []byte
						retry.UntilSuccessOrFail(t, func() error {
							var err error
							m, body, err = dubbo3.ReadRemoteMetadata(conn, app, rev)
							return err
						}, retry.Timeout(nodeWait))
						if m.App != app || m.Revision != rev {
							t.Fatalf("remote metadata app=%q revision=%q, want %s %s", m.App, m.Revision, app, rev)
						}
						if mode == dubbo3.ModeService {
							save(t, dir, "metadata-remote.json", indentJSON(t, body))
						}
					} else {
						pojo, err := dubbo3.GetMetadataInfo(p.Addr("metadata"), app, rev, 5*time.Second)
						if err != nil {
							t.Fatalf("getMetadataInfo: %v", err)
						}
						m = &dubbo3.MetadataInfo{App: pojo.App, Revision: pojo.Revision, Services: toServiceInfos(pojo)}
					}
					checkServices(t, storage+" metadata", m.Services, p, []string{greet, echo})
					if mode == dubbo3.ModeService {
						// instance-<storage>.json: the node of the dubbo port;
						// instance-<storage>-tri.json: the node of the tri port.
						for _, in := range insts {
							name := "instance-" + storage + ".json"
							if in.Port == p.Port("tri") {
								name = "instance-" + storage + "-tri.json"
							}
							save(t, dir, name, indentJSON(t, in.Raw))
						}
						if storage == dubbo3.MetadataLocal {
							b, _, _ := conn.Get("/dubbo/mapping/" + greet)
							save(t, dir, "mapping.txt", b)
						}
					}
				} else {
					if ok, _, _ := conn.Exists("/services/" + app); ok {
						t.Errorf("interface mode wrote /services/%s", app)
					}
					for _, iface := range []string{greet, echo} {
						if apps, err := dubbo3.ReadMapping(conn, iface); err == nil && slices.Contains(apps, app) {
							t.Errorf("interface mode mapped %s to %s", iface, app)
						}
					}
				}

				for _, iface := range []string{greet, echo} {
					urls := waitProviders(t, conn, iface, p, ifaceLevel)
					if ifaceLevel {
						checkProviderURLs(t, urls, p, iface)
						if mode == dubbo3.ModeInterface && storage == dubbo3.MetadataLocal && iface == greet {
							for _, u := range urls {
								save(t, dir, "provider-"+u.Scheme+".url", []byte(u.String()+"\n"))
							}
						}
					}
				}

				for _, iface := range []string{greet, echo} {
					for _, proto := range []string{"dubbo", "tri"} {
						start := time.Now()
						got, err := dubbo3.Call(context.Background(), dubbo3.CallOptions{
							URL: p.URL(proto, iface), Version: version, Group: group, Arg: "world",
						})
						if err != nil {
							t.Fatalf("call %s over %s: %v", iface, proto, err)
						}
						t.Logf("call %s over %s: %v (consumer process included): %q", iface, proto, time.Since(start).Round(time.Millisecond), got)
						if want := p.Reply(proto, "world"); got != want {
							t.Fatalf("call %s over %s: got %q, want %q", iface, proto, got, want)
						}
					}
				}
				if mode == dubbo3.ModeService {
					// Application-level discovery by a real Dubbo 3 consumer: mapping,
					// instances, metadata (RPC or remote), then the call.
					for _, proto := range []string{"dubbo", "tri"} {
						start := time.Now()
						got, err := dubbo3.Call(context.Background(), dubbo3.CallOptions{
							ZK: server.Addr, Protocol: proto, Interface: greet, Version: version, Group: group, N: 3,
						})
						if err != nil {
							t.Fatalf("call through ZooKeeper over %s: %v", proto, err)
						}
						t.Logf("call through ZooKeeper over %s: %v for 3 calls", proto, time.Since(start).Round(time.Millisecond))
						want := p.Reply(proto, "world")
						for _, line := range strings.Split(got, "\n") {
							if line != want {
								t.Fatalf("call through ZooKeeper over %s: got %q, want %q", proto, line, want)
							}
						}
					}
				}

				// SIGTERM: dubbo-go unregisters before it exits.
				start := time.Now()
				p.Stop()
				t.Logf("SIGTERM to exit: %v", time.Since(start).Round(time.Millisecond))
				if exited, err := p.Exited(); !exited || err != nil {
					t.Fatalf("after SIGTERM: exited=%v err=%v", exited, err)
				}
				// The nodes go: unregistered, or at the latest when the session expires.
				retry.UntilSuccessOrFail(t, func() error {
					if appLevel {
						if insts, err := dubbo3.ReadInstances(conn, app); err == nil && len(insts) != 0 {
							return fmt.Errorf("%d instance nodes remain", len(insts))
						}
					}
					if ifaceLevel {
						for _, iface := range []string{greet, echo} {
							if urls, _ := readProviders(conn, iface, p); len(urls) != 0 {
								return fmt.Errorf("provider nodes remain: %v", urls)
							}
						}
					}
					return nil
				}, retry.Timeout(nodeWait))
				t.Logf("SIGTERM to nodes gone: %v", time.Since(start).Round(time.Millisecond))
			})
		}
	}
}

func waitInstances(t *testing.T, conn *zk.Conn, app string, n int) []dubbo3.Instance {
	t.Helper()
	var insts []dubbo3.Instance
	retry.UntilSuccessOrFail(t, func() error {
		var err error
		insts, err = dubbo3.ReadInstances(conn, app)
		if err != nil {
			return err
		}
		if len(insts) != n {
			return fmt.Errorf("%d instance nodes under /services/%s, want %d", len(insts), app, n)
		}
		return nil
	}, retry.Timeout(nodeWait))
	return insts
}

// checkInstances checks one instance node per protocol port, all alike but for the port,
// and returns their revision.
func checkInstances(t *testing.T, insts []dubbo3.Instance, p *dubbo3.Provider, storage string) string {
	t.Helper()
	app, ip := p.Opts.App, p.Opts.IP
	wantPorts := []int{p.Port("dubbo"), p.Port("tri")}
	var gotPorts []int
	rev := insts[0].Metadata()[dubbo3.KeyRevision]
	if len(rev) < 16 || rev == "0" {
		t.Fatalf("%s: revision %q", insts[0].Path, rev)
	}
	for _, in := range insts {
		gotPorts = append(gotPorts, in.Port)
		if want := "/services/" + app + "/" + ip + ":" + strconv.Itoa(in.Port); in.Path != want {
			t.Errorf("node %s, want %s", in.Path, want)
		}
		if in.Name != app || in.Address != ip || in.ID != ip+":"+strconv.Itoa(in.Port) || in.Payload.Name != app || in.Payload.ID != in.ID {
			t.Errorf("%s: name=%q address=%q id=%q payload %q/%q", in.Path, in.Name, in.Address, in.ID, in.Payload.Name, in.Payload.ID)
		}
		if in.Payload.Class != "org.apache.dubbo.registry.zookeeper.ZookeeperInstance" {
			t.Errorf("%s: @class %q", in.Path, in.Payload.Class)
		}
		md := in.Metadata()
		if md[dubbo3.KeyRevision] != rev {
			t.Errorf("%s: revision %q, other nodes %q", in.Path, md[dubbo3.KeyRevision], rev)
		}
		if md[dubbo3.KeyStorageType] != storage {
			t.Errorf("%s: storage-type %q, want %q", in.Path, md[dubbo3.KeyStorageType], storage)
		}
		eps, err := in.Endpoints()
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(eps, func(i, j int) bool { return eps[i].Protocol < eps[j].Protocol })
		want := []dubbo3.Endpoint{{Port: p.Port("dubbo"), Protocol: "dubbo"}, {Port: p.Port("tri"), Protocol: "tri"}}
		if !slices.Equal(eps, want) {
			t.Errorf("%s: endpoints %v, want %v", in.Path, eps, want)
		}
		if storage == dubbo3.MetadataRemote {
			// No MetadataService with remote metadata.
			if v, ok := md[dubbo3.KeyMetadataURLParam]; ok {
				t.Logf("%s: remote metadata, yet %s = %s", in.Path, dubbo3.KeyMetadataURLParam, v)
			}
			continue
		}
		params, err := in.MetadataServiceParams()
		if err != nil {
			t.Fatal(err)
		}
		if params["port"] != strconv.Itoa(p.Port("metadata")) || params["group"] != app || params["protocol"] != "dubbo" {
			t.Errorf("%s: metadata-service url-params %v: want protocol dubbo, port %d, group %s", in.Path, params, p.Port("metadata"), app)
		}
	}
	slices.Sort(gotPorts)
	slices.Sort(wantPorts)
	if !slices.Equal(gotPorts, wantPorts) {
		t.Fatalf("instance node ports %v, want %v (one per protocol port)", gotPorts, wantPorts)
	}
	t.Logf("%s: %d instance nodes, revision %s…, metadata %v", app, len(insts), rev[:16], insts[0].Metadata())
	return rev
}

func waitMapping(t *testing.T, conn *zk.Conn, iface, app string) {
	t.Helper()
	retry.UntilSuccessOrFail(t, func() error {
		apps, err := dubbo3.ReadMapping(conn, iface)
		if err != nil {
			return err
		}
		if !slices.Contains(apps, app) {
			return fmt.Errorf("/dubbo/mapping/%s = %v, want %s in it", iface, apps, app)
		}
		return nil
	}, retry.Timeout(nodeWait))
}

func toServiceInfos(m *dubbo3.MetadataInfoPOJO) map[string]dubbo3.ServiceInfo {
	out := map[string]dubbo3.ServiceInfo{}
	for k, s := range m.Services {
		out[k] = dubbo3.ServiceInfo{Name: s.Name, Group: s.Group, Version: s.Version, Protocol: s.Protocol,
			Port: int(s.Port), Path: s.Path, Params: s.Params}
	}
	return out
}

// checkServices checks that metadata lists every interface on both protocols with the
// provider's ports, version, group and weight.
func checkServices(t *testing.T, what string, services map[string]dubbo3.ServiceInfo, p *dubbo3.Provider, ifaces []string) {
	t.Helper()
	var keys []string
	for k := range services {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%s: service keys %v", what, keys)
	if len(services) != 2*len(ifaces) {
		t.Errorf("%s: %d services, want %d (each interface on dubbo and tri)", what, len(services), 2*len(ifaces))
	}
	for _, iface := range ifaces {
		for _, proto := range []string{"dubbo", "tri"} {
			var found *dubbo3.ServiceInfo
			for _, s := range services {
				if s.Name == iface && s.Protocol == proto {
					found = &s
				}
			}
			if found == nil {
				t.Errorf("%s: no service %s over %s in %v", what, iface, proto, keys)
				continue
			}
			if found.Port != p.Port(proto) || found.Version != p.Opts.Version || found.Group != p.Opts.Group || found.Path != iface {
				t.Errorf("%s: %s/%s = %+v, want port %d version %q group %q path %s", what, iface, proto, *found,
					p.Port(proto), p.Opts.Version, p.Opts.Group, iface)
			}
			if found.Params["weight"] != strconv.FormatInt(p.Opts.Weight, 10) || found.Params["serialization"] != "hessian2" {
				t.Errorf("%s: %s/%s params %v: want weight %d serialization hessian2", what, iface, proto, found.Params, p.Opts.Weight)
			}
		}
	}
}

// readProviders returns this provider's interface-level URLs of iface (others may be
// there from earlier subtests' apps).
func readProviders(conn *zk.Conn, iface string, p *dubbo3.Provider) ([]*url.URL, error) {
	raw, err := dubbo3.ReadProviders(conn, iface)
	if err != nil {
		return nil, err
	}
	var out []*url.URL
	for _, r := range raw {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", r, err)
		}
		if u.Query().Get("application") == p.Opts.App {
			out = append(out, u)
		}
	}
	return out, nil
}

func waitProviders(t *testing.T, conn *zk.Conn, iface string, p *dubbo3.Provider, want bool) []*url.URL {
	t.Helper()
	if !want {
		urls, _ := readProviders(conn, iface, p)
		if len(urls) != 0 {
			t.Errorf("service mode wrote interface-level providers of %s: %v", iface, urls)
		}
		return nil
	}
	var urls []*url.URL
	retry.UntilSuccessOrFail(t, func() error {
		var err error
		urls, err = readProviders(conn, iface, p)
		if err != nil {
			return err
		}
		if len(urls) != 2 {
			return fmt.Errorf("%d provider URLs of %s for %s, want 2 (dubbo and tri)", len(urls), iface, p.Opts.App)
		}
		return nil
	}, retry.Timeout(nodeWait))
	return urls
}

func checkProviderURLs(t *testing.T, urls []*url.URL, p *dubbo3.Provider, iface string) {
	t.Helper()
	seen := map[string]bool{}
	for _, u := range urls {
		q := u.Query()
		seen[u.Scheme] = true
		if u.Host != p.Addr(u.Scheme) || u.Path != "/"+iface {
			t.Errorf("provider URL %s: want host %s path /%s", u, p.Addr(u.Scheme), iface)
		}
		if q.Get("version") != p.Opts.Version || q.Get("group") != p.Opts.Group || q.Get("serialization") != "hessian2" ||
			q.Get("weight") != strconv.FormatInt(p.Opts.Weight, 10) || q.Get("registry.type") != p.Opts.Mode ||
			q.Get("interface") != iface || q.Get("side") != "provider" {
			t.Errorf("provider URL %s: unexpected parameters", u)
		}
	}
	if !seen["dubbo"] || !seen["tri"] {
		t.Errorf("provider URLs of %s: %v, want dubbo:// and tri://", iface, urls)
	}
	t.Logf("interface-level %s: %v", iface, urls)
}

// TestCallErrors: the consumer fails with a clear message and a non-zero exit when nothing
// answers, over both protocols.
func TestCallErrors(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(dubbo3.FreePort(t))
	for _, proto := range []string{"dubbo", "tri"} {
		start := time.Now()
		got, err := dubbo3.Call(context.Background(), dubbo3.CallOptions{
			URL: dubbo3.DirectURL(proto, addr, greet, "", ""), Timeout: time.Second,
		})
		t.Logf("%s to a closed port: %v after %v", proto, err, time.Since(start).Round(time.Millisecond))
		if err == nil || got != "" {
			t.Fatalf("%s to a closed port: answer %q, err %v: want an error and no answer", proto, got, err)
		}
		if !strings.Contains(err.Error(), "dubbo3 consumer:") {
			t.Errorf("%s: error %q lacks the consumer's message", proto, err)
		}
	}
}
