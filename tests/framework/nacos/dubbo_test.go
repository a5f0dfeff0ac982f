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
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"istio.io/istio/pkg/test/util/retry"

	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/dubbo3"
)

// Real dubbo-go v3 providers on this server write what docs/nacos-data.md describes, and a
// real consumer calls them through it (application-level discovery: mapping, instances,
// local and remote metadata).
func TestDubboGoProviders(t *testing.T) {
	s := Start(t, Options{})
	// Two applications, each the only one of its interface: dubbo-go's first write of a
	// mapping is not a compare-and-set (Nacos has no create-if-absent) and Polaris's config
	// reads lag its writes, so two applications creating one interface's mapping close
	// together can lose a name (docs/nacos-data.md; seen even 5 s apart on a loaded
	// machine). That is dubbo-go's, and dubbo-istiod does not read mappings.
	const remoteIface = "com.example.GreetRemoteService"
	local := dubbo3.StartProvider(t, dubbo3.ProviderOptions{Registry: s.URL(), App: "app-local", Mode: dubbo3.ModeAll})
	remote := dubbo3.StartProvider(t, dubbo3.ProviderOptions{Registry: s.URL(), App: "app-remote", Mode: dubbo3.ModeService,
		Metadata: dubbo3.MetadataRemote, Interfaces: []string{remoteIface}})
	t.Logf("providers ready in %v and %v", local.StartToReady, remote.StartToReady)

	c := s.NamingClient(t, "")
	instances := func(service string, want int) []map[string]string {
		t.Helper()
		var mds []map[string]string
		retry.UntilSuccessOrFail(t, func() error {
			ins, err := c.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: service})
			if err != nil || len(addrs(ins)) != want {
				return fmt.Errorf("%s: %v %v, want %d instances", service, addrs(ins), err, want)
			}
			mds = nil
			for _, i := range ins {
				mds = append(mds, i.Metadata)
			}
			return nil
		}, retry.Timeout(20*time.Second), retry.Delay(100*time.Millisecond))
		return mds
	}
	// Interface level (mode all only): one instance per protocol port.
	var protocols []string
	for _, md := range instances("providers:"+dubbo3.DefaultInterface+"::", 2) {
		protocols = append(protocols, md["protocol"])
		if md["application"] != "app-local" || md["path"] != "/"+dubbo3.DefaultInterface ||
			md["nacos.category"] != "providers" || !strings.Contains(md["methods"], "SayHello") {
			t.Fatalf("interface-level metadata %v", md)
		}
	}
	if slices.Sort(protocols); !slices.Equal(protocols, []string{"dubbo", "tri"}) {
		t.Fatalf("interface-level protocols %v, want dubbo and tri", protocols)
	}
	// Application level: one instance per protocol port; the storage type says where the
	// metadata of the revision is.
	for _, p := range []*dubbo3.Provider{local, remote} {
		for _, md := range instances(p.Opts.App, 2) {
			if md["dubbo.metadata.storage-type"] != p.Opts.Metadata || len(md["dubbo.metadata.revision"]) != 128 ||
				!strings.Contains(md["dubbo.endpoints"], fmt.Sprintf(`{"port":%d,"protocol":"tri"}`, p.Opts.TriPort)) {
				t.Fatalf("%s: application-level metadata %v", p.Opts.App, md)
			}
		}
	}
	// Each interface's mapping names its application; the remote metadata is a config per
	// revision.
	for iface, app := range map[string]string{dubbo3.DefaultInterface: "app-local", remoteIface: "app-remote"} {
		retry.UntilSuccessOrFail(t, func() error {
			if m, err := s.GetConfig(t, "", iface, "mapping"); m != app {
				return fmt.Errorf("mapping of %s: %q %v, want %s", iface, m, err, app)
			}
			return nil
		}, retry.Timeout(20*time.Second), retry.Delay(100*time.Millisecond))
	}
	rev := instances("app-remote", 2)[0]["dubbo.metadata.revision"]
	var meta struct {
		App      string
		Revision string
		Services map[string]struct {
			Name     string
			Protocol string
			Port     int
		}
	}
	retry.UntilSuccessOrFail(t, func() error {
		v, err := s.GetConfig(t, "", "app-remote", rev)
		if err != nil || v == "" {
			return fmt.Errorf("metadata config app-remote/%s: %q %v", rev, v, err)
		}
		return json.Unmarshal([]byte(v), &meta)
	}, retry.Timeout(20*time.Second), retry.Delay(100*time.Millisecond))
	if svc := meta.Services[remoteIface+":tri"]; meta.App != "app-remote" || meta.Revision != rev || svc.Port != remote.Opts.TriPort {
		t.Fatalf("remote metadata %+v", meta)
	}

	// A real consumer resolves each interface through Nacos (mapping, instances, metadata)
	// and reaches its application, over both protocols.
	for _, c := range []struct {
		iface string
		p     *dubbo3.Provider
	}{{dubbo3.DefaultInterface, local}, {remoteIface, remote}} {
		for _, proto := range []string{"dubbo", "tri"} {
			want := c.p.Reply(proto, "world")
			retry.UntilSuccessOrFail(t, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				out, err := dubbo3.Call(ctx, dubbo3.CallOptions{Registry: s.URL(), NacosDir: t.TempDir(), Protocol: proto,
					Interface: c.iface, N: 3})
				if err != nil {
					return err
				}
				for _, l := range strings.Split(out, "\n") {
					if l != want {
						return fmt.Errorf("%s over %s: answer %q, want %q", c.iface, proto, l, want)
					}
				}
				return nil
			}, retry.Timeout(2*time.Minute), retry.Delay(time.Second))
		}
	}
}
