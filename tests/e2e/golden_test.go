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
	"encoding/json"
	"strings"
	"testing"
	"time"

	// Types that appear inside upstream's cluster metadata and filters.
	_ "github.com/cncf/xds/go/udpa/type/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// goldenConfig: realistic VirtualService/DestinationRule combinations over four
// interfaces from ZooKeeper.
const goldenConfig = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: demo, namespace: dubbo}
spec:
  host: com.example.demoservice
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 2s}
      http: {http2MaxRequests: 500, http1MaxPendingRequests: 50, maxRetries: 3}
  subsets:
  - {name: v1, labels: {version: 1.0.0}}
  - {name: v2, labels: {version: 2.0.0}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: users, namespace: dubbo}
spec:
  host: com.example.userservice
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: uid}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: orders, namespace: dubbo}
spec:
  host: com.example.orderservice
  subsets:
  - {name: stable, labels: {group: stable}}
  - {name: canary, labels: {group: canary}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: demo, namespace: dubbo}
spec:
  hosts: [com.example.demoservice]
  http:
  - name: gray
    match: [{headers: {env: {exact: gray}}}]
    route: [{destination: {host: com.example.demoservice, subset: v2}}]
  - name: say-hello-split
    match: [{method: {exact: sayHello}}]
    route:
    - {destination: {host: com.example.demoservice, subset: v1}, weight: 80}
    - {destination: {host: com.example.demoservice, subset: v2}, weight: 20}
    timeout: 3s
    retries: {attempts: 2, perTryTimeout: 1s}
  - name: everything-else
    route: [{destination: {host: com.example.demoservice}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: orders, namespace: dubbo}
spec:
  hosts: [com.example.orderservice]
  http:
  - name: getters-to-canary-for-consumers
    match:
    - {method: {prefix: get}, sourceLabels: {app: consumer}}
    - {method: {prefix: get}, sourceLabels: {app: someone-else}}
    - {uri: {prefix: /orders}}
    route: [{destination: {host: com.example.orderservice, subset: canary}}]
  - name: versioned
    match: [{headers: {version: {regex: "2\\..*"}, tenant: {exact: acme}}}]
    route: [{destination: {host: com.example.orderservice, subset: canary}}]
    mirror: {host: com.example.orderservice, subset: stable}
    mirrorPercentage: {value: 25}
  - name: rest
    route: [{destination: {host: com.example.orderservice, subset: stable}}]
`

func goldenProviders(t *testing.T, c *zk.Client) {
	reg := func(iface, ip string, port int, params map[string]string) {
		c.Register(t, iface, zk.ProviderURL(ip, port, iface, params))
	}
	reg("com.example.DemoService", "10.0.0.1", 20880, map[string]string{"version": "1.0.0"})
	reg("com.example.DemoService", "10.0.0.1", 20890, map[string]string{"version": "2.0.0", "weight": "200"})
	reg("com.example.OrderService", "10.0.1.1", 20880, map[string]string{"group": "stable", "version": "2.1.0"})
	reg("com.example.OrderService", "10.0.1.2", 20881, map[string]string{"group": "canary", "version": "2.2.0", "weight": "1000"})
	reg("com.example.UserService", "10.0.2.1", 20880, nil)
	reg("com.example.UserService", "10.0.2.2", 20880, map[string]string{"disabled": "true"})
	reg("org.apache.dubbo.samples.Greeter$Inner", "10.0.3.1", 20883, map[string]string{"dubbo.tag": "gray"})
}

// stableJSON renders a proto deterministically (protojson output is not stable by design).
func stableJSON(t *testing.T, m proto.Message) []byte {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMOSNGolden(t *testing.T) {
	zs := zk.Start(t)
	app := zk.Connect(t, zs.Addr, 10*time.Second)
	goldenProviders(t, app)
	p := pilot.Start(t, pilot.Options{
		ConfigDir: writeConfig(t, map[string]string{"config.yaml": goldenConfig}),
		Args:      []string{"--dubboRegistry=zookeeper://" + zs.Addr + "?name=zk"},
	})
	p.WaitReady(t, 60*time.Second)
	_, s := syncMOSN(t, p, xdsview.Node("10.1.0.9", "consumer-1", "default",
		map[string]any{"LABELS": map[string]any{"app": "consumer"}}))

	dubboHosts := []string{"com.example.demoservice", "com.example.orderservice", "com.example.userservice", "org.apache.dubbo.samples.greeter-inner"}
	isDubbo := func(name string) bool {
		for _, h := range dubboHosts {
			if strings.HasSuffix(name, "|"+h) {
				return true
			}
		}
		return false
	}
	files := map[string][]proto.Message{}
	for _, l := range s.Listeners {
		if strings.HasSuffix(l.Name, "_dubbo") {
			files["listeners"] = append(files["listeners"], l)
		}
	}
	for _, r := range s.Routes {
		if strings.HasPrefix(r.Name, "dubbo-") {
			files["routes"] = append(files["routes"], r)
		}
	}
	for _, cl := range s.Clusters {
		if isDubbo(cl.Name) {
			files["clusters"] = append(files["clusters"], cl)
		}
	}
	for _, la := range s.Endpoints {
		if isDubbo(la.ClusterName) {
			files["endpoints"] = append(files["endpoints"], la)
		}
	}
	for kind, msgs := range files {
		golden(t, "mosn-"+kind, msgs...)
	}
	for _, kind := range []string{"listeners", "routes", "clusters", "endpoints"} {
		if len(files[kind]) == 0 {
			t.Errorf("no Dubbo %s in the MOSN snapshot", kind)
		}
	}
}
