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
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3" // in Envoy's routes
	"google.golang.org/protobuf/proto"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// Route rules byte for byte as dubbo-admin writes them (its route/condition and
// route/tag pages; SnakeYAML's key order).
const (
	adminConditionRoute = `conditions:
- method=refund => host=10.0.0.1
enabled: true
force: false
key: com.example.DemoService
priority: 0
runtime: true
scope: service
`
	adminTagRoute = `enabled: true
force: false
key: demo-provider
priority: 0
runtime: true
tags:
- addresses: [10.0.0.3:20880]
  name: gray
`
	rulesDir = "/dubbo/config/dubbo/"
)

func governedProviders(t *testing.T, c *zk.Client) map[string]string {
	paths := map[string]string{}
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		paths[ip] = c.Register(t, demoIface, zk.ProviderURL(ip, 20880, demoIface, map[string]string{"methods": "pay,refund"}))
	}
	// A Triple provider: the service gets its grpc-tri port, and Envoy HTTP routes.
	c.Register(t, demoIface, "tri://10.0.0.1:50052/"+demoIface+"?interface="+demoIface+"&application=demo-provider&side=provider&methods=pay,refund")
	return paths
}

// mosnRoute is where MOSN's first matching RPC rule of a route configuration sends a
// Dubbo call with these headers (MOSN matches exact and RE2 full-match headers).
func mosnRoute(t *testing.T, rc *route.RouteConfiguration, headers map[string]string) string {
	t.Helper()
	for _, vh := range rc.VirtualHosts {
	rules:
		for _, r := range vh.Routes {
			if r.Match.GetPrefix() != "" || r.Match.GetPath() != "" || r.Match.GetSafeRegex() != nil {
				continue // an HTTP (Triple) rule
			}
			for _, h := range r.Match.Headers {
				v, ok := headers[h.Name]
				switch {
				case !ok:
					continue rules
				case h.GetExactMatch() != "" && h.GetExactMatch() != v:
					continue rules
				case h.GetSafeRegexMatch() != nil && !regexp.MustCompile(`^(?:`+h.GetSafeRegexMatch().Regex+`)$`).MatchString(v):
					continue rules
				}
			}
			if c := r.GetRoute().GetCluster(); c != "" {
				return c
			}
			return fmt.Sprint(r.GetRoute().GetWeightedClusters())
		}
	}
	t.Fatalf("no rule of %s matches %v", rc.Name, headers)
	return ""
}

func endpointsOf(s conformance.Snapshot, cluster string) string {
	for _, la := range s.Endpoints {
		if la.ClusterName != cluster {
			continue
		}
		var out []string
		for _, le := range la.Endpoints {
			for _, ep := range le.LbEndpoints {
				sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
				out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
			}
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	return "(no cluster " + cluster + ")"
}

// golden compares msgs (sorted JSON) with testdata/golden/<name>.json.
func golden(t *testing.T, name string, msgs ...proto.Message) {
	t.Helper()
	var parts []string
	for _, m := range msgs {
		parts = append(parts, string(stableJSON(t, m)))
	}
	sort.Strings(parts)
	got := []byte("[\n" + strings.Join(parts, ",\n") + "\n]\n")
	path := filepath.Join("testdata", "golden", name+".json")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (UPDATE_GOLDEN=1 rewrites it; review the diff):\n%s", name, path, got)
	}
}

// TestGovernanceRoutes: dubbo-admin's condition route (refund only to 10.0.0.1) and tag
// route (gray on 10.0.0.3) in a real ZooKeeper reach a MOSN sidecar and an Envoy
// sidecar of the real binary as routes and generated clusters, routing as Java Dubbo's
// consumers would; the tag falls back when its provider is gone; an explicit
// VirtualService wins.
func TestGovernanceRoutes(t *testing.T) {
	zs := zk.Start(t)
	app := zk.Connect(t, zs.Addr, 10*time.Second)
	paths := governedProviders(t, app)
	app.Put(t, rulesDir+demoIface+"::.condition-router", []byte(adminConditionRoute), false)
	app.Put(t, rulesDir+"demo-provider.tag-router", []byte(adminTagRoute), false)
	dir := writeConfig(t, nil)
	p := pilot.Start(t, pilot.Options{ConfigDir: dir, Args: []string{"--dubboRegistry=zookeeper://" + zs.Addr + "?name=zk"}})
	p.WaitReady(t, 60*time.Second)

	// What a call reaches: the providers of the cluster MOSN's first matching rule names.
	reach := func(s conformance.Snapshot, method string, att ...string) string {
		rc := findRoute(s, "dubbo-20881")
		if rc == nil {
			t.Fatal("no dubbo-20881 route configuration")
		}
		h := map[string]string{"service": demoIface, "method": method}
		for i := 0; i+1 < len(att); i += 2 {
			h[att[i]] = att[i+1]
		}
		return endpointsOf(s, mosnRoute(t, rc, h))
	}
	var s conformance.Snapshot
	start := time.Now()
	waitFor := func(what string, ok func(conformance.Snapshot) error) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, s = syncMOSN(t, p, xdsview.Node("10.1.0.9", "consumer-1", "default", nil))
			err := ok(s)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	want := func(cases map[string]string) func(conformance.Snapshot) error {
		return func(s conformance.Snapshot) error {
			for c, w := range cases {
				f := strings.Split(c, " ")
				if got := reach(s, f[0], f[1:]...); got != w {
					return fmt.Errorf("%s reaches %q, want %q", c, got, w)
				}
			}
			return nil
		}
	}
	waitFor("rules at start", want(map[string]string{
		"refund":                "10.0.0.1:20880",                // the condition route
		"pay":                   "10.0.0.1:20880,10.0.0.2:20880", // untagged: not the gray provider
		"pay dubbo.tag gray":    "10.0.0.3:20880",                // the tag route
		"refund dubbo.tag gray": "10.0.0.3:20880",                // tag first; refund's host is not gray: not forced, ignored
		"pay dubbo.tag blue":    "10.0.0.1:20880,10.0.0.2:20880", // unknown tag: untagged
		"pay dubbo.tag blue dubbo.force.tag true": "", // forced unknown tag: no provider, as in Java
		"pay dubbo.tag blue dubbo.force.tag TRUE": "", // Java's parseBoolean ignores case
	}))
	t.Logf("routes served %v after start", time.Since(start))
	rc := findRoute(s, "dubbo-20881")
	var demo []proto.Message
	for _, vh := range rc.VirtualHosts {
		r := proto.Clone(vh).(*route.VirtualHost)
		r.Routes = nil
		for _, rt := range vh.Routes {
			if strings.Contains(fmt.Sprint(rt), "demoservice") {
				r.Routes = append(r.Routes, rt)
			}
		}
		demo = append(demo, r)
	}
	golden(t, "mosn-governance-routes", demo...)

	// Envoy: the Triple port's HTTP routes (its Dubbo port stays TCP, upstream's).
	ec, err := adsclient.Dial(p.GRPCAddr, envoySidecar())
	if err != nil {
		t.Fatal(err)
	}
	es, err := xdsview.Sync(ec, 30*time.Second)
	ec.Close()
	if err != nil {
		t.Fatal(err)
	}
	var envoy []proto.Message
	for _, r := range es.Routes {
		for _, vh := range r.VirtualHosts {
			if slicesContainsPrefix(vh.Domains, "com.example.demoservice") {
				envoy = append(envoy, vh)
			}
		}
	}
	if len(envoy) == 0 {
		t.Fatal("the Envoy sidecar has no virtual host for com.example.demoservice")
	}
	golden(t, "envoy-governance-routes", envoy...)

	// The gray provider leaves: gray calls fall back to the untagged providers.
	app.Unregister(t, paths["10.0.0.3"])
	start = time.Now()
	waitFor("fallback", want(map[string]string{"pay dubbo.tag gray": "10.0.0.1:20880,10.0.0.2:20880", "refund": "10.0.0.1:20880"}))
	t.Logf("fallback served %v after the gray provider left", time.Since(start))

	// An explicit VirtualService for the host wins over the rules.
	vs := `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: demo, namespace: dubbo}
spec:
  hosts: [com.example.demoservice]
  http:
  - route: [{destination: {host: com.example.demoservice}}]
`
	if err := os.WriteFile(filepath.Join(dir, "vs.yaml"), []byte(vs), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("explicit VirtualService", want(map[string]string{"refund": "10.0.0.1:20880,10.0.0.2:20880"}))
	var dz struct {
		Interfaces []struct {
			Interface string `json:"interface"`
			Routes    *struct {
				OverriddenBy []string `json:"overriddenBy"`
			} `json:"routes"`
		} `json:"interfaces"`
	}
	if err := json.Unmarshal(p.Debug(t, "/debug/dubboz"), &dz); err != nil {
		t.Fatal(err)
	}
	overridden := ""
	for _, i := range dz.Interfaces {
		if i.Interface == demoIface && i.Routes != nil {
			overridden = strings.Join(i.Routes.OverriddenBy, ",")
		}
	}
	if overridden != "dubbo/demo" {
		t.Fatalf("dubboz: route rules overridden by %q, want dubbo/demo", overridden)
	}
}

func slicesContainsPrefix(s []string, prefix string) bool {
	for _, v := range s {
		if strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}
