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
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

// ClientParam returns nacos-sdk-go client parameters for this server and namespace ns
// ("" or PublicNamespace: Nacos's public namespace). The SDK's cache and log directories
// go under the server's temporary directory (the SDK writes cache/ and log/ in the working
// directory otherwise); it does not load a cache at start, and it delivers 0-instance
// updates (WithUpdateCacheWhenEmpty: without it a subscriber never sees a service empty).
// opts are applied last.
func (s *Server) ClientParam(ns string, opts ...constant.ClientOption) vo.NacosClientParam {
	dir := filepath.Join(s.sdkDir, "ns-"+nsName(ns))
	cc := constant.NewClientConfig(append([]constant.ClientOption{
		constant.WithNamespaceId(nsID(ns)),
		constant.WithTimeoutMs(5000),
		constant.WithCacheDir(filepath.Join(dir, "cache")),
		constant.WithLogDir(filepath.Join(dir, "log")),
		constant.WithLogLevel("warn"),
		constant.WithNotLoadCacheAtStart(true),
		constant.WithUpdateCacheWhenEmpty(true),
	}, opts...)...)
	return vo.NacosClientParam{
		ClientConfig:  cc,
		ServerConfigs: []constant.ServerConfig{*constant.NewServerConfig("127.0.0.1", uint64(s.HTTPPort))},
	}
}

func nsID(ns string) string {
	if ns == PublicNamespace {
		return ""
	}
	return ns
}

func nsName(ns string) string {
	if ns == "" {
		return PublicNamespace
	}
	return ns
}

// NamingClient returns a new naming client of namespace ns, closed when the test ends.
func (s *Server) NamingClient(t testing.TB, ns string, opts ...constant.ClientOption) naming_client.INamingClient {
	t.Helper()
	c, err := clients.NewNamingClient(s.ClientParam(ns, opts...))
	if err != nil {
		t.Fatalf("nacos naming client (namespace %q): %v", ns, err)
	}
	t.Cleanup(c.CloseClient)
	return c
}

// ConfigClient returns a new config client of namespace ns, closed when the test ends.
func (s *Server) ConfigClient(t testing.TB, ns string, opts ...constant.ClientOption) config_client.IConfigClient {
	t.Helper()
	c, err := clients.NewConfigClient(s.ClientParam(ns, opts...))
	if err != nil {
		t.Fatalf("nacos config client (namespace %q): %v", ns, err)
	}
	t.Cleanup(c.CloseClient)
	return c
}

// helperClientSet holds the server's own clients of one namespace, used by the helpers below and
// kept for the server's lifetime: a Nacos v2 (gRPC) ephemeral instance lives as long as the
// connection of the client that registered it.
type helperClientSet struct {
	once   sync.Once
	err    error
	naming naming_client.INamingClient
	config config_client.IConfigClient
}

func (c *helperClientSet) close() {
	if c.naming != nil {
		c.naming.CloseClient()
	}
	if c.config != nil {
		c.config.CloseClient()
	}
}

func (s *Server) helperClients(t testing.TB, ns string) *helperClientSet {
	t.Helper()
	s.mu.Lock()
	c := s.clients[nsName(ns)]
	if c == nil {
		c = &helperClientSet{}
		s.clients[nsName(ns)] = c
	}
	s.mu.Unlock()
	c.once.Do(func() {
		p := s.ClientParam(ns, constant.WithUsername("polaris"), constant.WithPassword(AdminToken))
		if c.naming, c.err = clients.NewNamingClient(p); c.err != nil {
			return
		}
		c.config, c.err = clients.NewConfigClient(p)
	})
	if c.err != nil {
		t.Fatalf("nacos clients (namespace %q): %v", ns, c.err)
	}
	return c
}

// InstanceOption changes an instance that RegisterInstance registers.
type InstanceOption func(*vo.RegisterInstanceParam)

// WithWeight sets the Nacos instance weight (default 1).
func WithWeight(w float64) InstanceOption {
	return func(p *vo.RegisterInstanceParam) { p.Weight = w }
}

// Disabled registers the instance with enabled=false.
func Disabled() InstanceOption {
	return func(p *vo.RegisterInstanceParam) { p.Enable = false }
}

// WithCluster sets the instance's cluster (default DEFAULT).
func WithCluster(c string) InstanceOption {
	return func(p *vo.RegisterInstanceParam) { p.ClusterName = c }
}

// RegisterInstance registers an ephemeral instance ip:port of service in group ("":
// DEFAULT_GROUP) of namespace ns, as the server's own client, which stays connected until
// Deregister or the end of the test; the instance goes when that client goes, and the
// client registers it again after a server restart, as a Dubbo provider's client does.
func (s *Server) RegisterInstance(t testing.TB, ns, service, group, ip string, port uint64, metadata map[string]string, opts ...InstanceOption) {
	t.Helper()
	p := vo.RegisterInstanceParam{
		Ip: ip, Port: port, Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
		Metadata: metadata, ServiceName: service, GroupName: group,
	}
	for _, o := range opts {
		o(&p)
	}
	ok, err := s.helperClients(t, ns).naming.RegisterInstance(p)
	if err != nil || !ok {
		t.Fatalf("nacos register %s:%d in %s/%s/%s: ok=%v err=%v", ip, port, nsName(ns), group, service, ok, err)
	}
}

// Deregister deregisters the instance ip:port of service that RegisterInstance registered.
func (s *Server) Deregister(t testing.TB, ns, service, group, ip string, port uint64) {
	t.Helper()
	ok, err := s.helperClients(t, ns).naming.DeregisterInstance(vo.DeregisterInstanceParam{
		Ip: ip, Port: port, ServiceName: service, GroupName: group, Ephemeral: true,
	})
	if err != nil || !ok {
		t.Fatalf("nacos deregister %s:%d in %s/%s/%s: ok=%v err=%v", ip, port, nsName(ns), group, service, ok, err)
	}
}

// PublishConfig publishes a config (as Dubbo's mapping and remote metadata are) in namespace ns.
func (s *Server) PublishConfig(t testing.TB, ns, dataID, group, content string) {
	t.Helper()
	ok, err := s.helperClients(t, ns).config.PublishConfig(vo.ConfigParam{DataId: dataID, Group: group, Content: content})
	if err != nil || !ok {
		t.Fatalf("nacos publish config %s/%s/%s: ok=%v err=%v", nsName(ns), group, dataID, ok, err)
	}
}

// GetConfig reads a config of namespace ns. A config that does not exist, or whose
// release has not reached Polaris's config cache yet (within about a second of the
// publish), is an error.
func (s *Server) GetConfig(t testing.TB, ns, dataID, group string) (string, error) {
	t.Helper()
	return s.helperClients(t, ns).config.GetConfig(vo.ConfigParam{DataId: dataID, Group: group})
}

// CreateNamespace creates namespace ns through Polaris's own HTTP API (the Nacos API
// has no namespace creation).
func (s *Server) CreateNamespace(t testing.TB, ns string) {
	t.Helper()
	body, _ := json.Marshal([]map[string]string{{"name": ns}})
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/naming/v1/namespaces", s.AdminPort), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Polaris-Token", AdminToken)
	// Polaris's own HTTP API may come up a moment after the Nacos API the start waits for.
	var resp *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; {
		req.Body = io.NopCloser(bytes.NewReader(body))
		if resp, err = http.DefaultClient.Do(req); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("create namespace %q: %v", ns, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// 200000: created; 400201: exists already.
	if resp.StatusCode != http.StatusOK && !strings.Contains(string(b), "400201") {
		t.Fatalf("create namespace %q: %s %s", ns, resp.Status, b)
	}
}
