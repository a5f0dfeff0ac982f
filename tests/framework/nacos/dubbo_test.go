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
	local := dubbo3.StartProvider(t, dubbo3.ProviderOptions{Registry: s.URL(), App: "app-local", Mode: dubbo3.ModeAll})
	// The second application starts once the first is in the mapping, and 3 s more: two
	// applications that create the mapping within about a second of each other lose a name.
	// dubbo-go's first write of a mapping is not a compare-and-set (Nacos has no
	// create-if-absent), and Polaris's config reads lag its writes: seen here, the second
	// application started as soon as this client read "app-local", and the mapping ended
	// as "app-remote" (2 runs of 2); with the 3 s it held both (3 runs of 3).
	retry.UntilSuccessOrFail(t, func() error {
		if m, err := s.GetConfig(t, "", dubbo3.DefaultInterface, "mapping"); m != "app-local" {
			return fmt.Errorf("mapping %q %v", m, err)
		}
		return nil
	}, retry.Timeout(20*time.Second), retry.Delay(100*time.Millisecond))
	time.Sleep(3 * time.Second)
	remote := dubbo3.StartProvider(t, dubbo3.ProviderOptions{Registry: s.URL(), App: "app-remote", Mode: dubbo3.ModeService, Metadata: dubbo3.MetadataRemote})
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
	// The mapping names both applications; the remote metadata is a config per revision.
	retry.UntilSuccessOrFail(t, func() error {
		m, err := s.GetConfig(t, "", dubbo3.DefaultInterface, "mapping")
		apps := strings.Split(m, ",")
		if slices.Sort(apps); !slices.Equal(apps, []string{"app-local", "app-remote"}) {
			return fmt.Errorf("mapping %q %v", m, err)
		}
		return nil
	}, retry.Timeout(20*time.Second), retry.Delay(100*time.Millisecond))
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
	if svc := meta.Services[dubbo3.DefaultInterface+":tri"]; meta.App != "app-remote" || meta.Revision != rev || svc.Port != remote.Opts.TriPort {
		t.Fatalf("remote metadata %+v", meta)
	}

	// A real consumer resolves through Nacos and reaches both applications, both protocols.
	for _, proto := range []string{"dubbo", "tri"} {
		want := []string{local.Reply(proto, "world"), remote.Reply(proto, "world")}
		seen := map[string]bool{}
		retry.UntilSuccessOrFail(t, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := dubbo3.Call(ctx, dubbo3.CallOptions{Registry: s.URL(), NacosDir: t.TempDir(), Protocol: proto, N: 10})
			if err != nil {
				return err
			}
			for _, l := range strings.Split(out, "\n") {
				if !slices.Contains(want, l) {
					return fmt.Errorf("answer %q, want one of %v", l, want)
				}
				seen[l] = true
			}
			if len(seen) != 2 {
				return fmt.Errorf("%s: answers from %v only", proto, seen)
			}
			return nil
		}, retry.Timeout(2*time.Minute), retry.Delay(time.Second))
	}
}
