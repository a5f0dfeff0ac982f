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

package mosn

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	meshconfig "istio.io/api/mesh/v1alpha1"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking"
	"istio.io/istio/pilot/pkg/networking/plugin/authz"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/wellknown"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

// paymentConfig: a Dubbo provider workload at 10.200.0.2 (app=payment, service account
// payment) serving com.example.PaymentService over dubbo (20880) and Triple (50051), and
// an HTTP port (8080) that is not Dubbo.
const paymentConfig = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payment, namespace: default}
spec:
  hosts: [com.example.paymentservice]
  ports:
  - {number: 20880, name: dubbo, protocol: DUBBO}
  - {number: 50051, name: grpc-tri, protocol: GRPC}
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - {address: 10.200.0.2, labels: {app: payment}, serviceAccount: payment}
  - {address: 10.200.0.3, labels: {app: payment}, serviceAccount: payment}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payment-web, namespace: default}
spec:
  hosts: [payment-web.example.com]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.200.0.2, labels: {app: payment}, serviceAccount: payment}]
`

// newFakeProvider: the MOSN sidecar of the payment workload at 10.200.0.2, with a mesh
// whose CUSTOM provider ext-authz is declared.
func newFakeProvider(t *testing.T, config string, mode model.TrafficInterceptionMode) *fakeMOSN {
	t.Helper()
	m := mesh.DefaultMeshConfig()
	m.ExtensionProviders = append(m.ExtensionProviders, &meshconfig.MeshConfig_ExtensionProvider{
		Name: "ext-authz",
		Provider: &meshconfig.MeshConfig_ExtensionProvider_EnvoyExtAuthzHttp{EnvoyExtAuthzHttp: &meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationHttpProvider{
			Service: "ext-authz.default.svc.cluster.local", Port: 8000,
		}},
	})
	return newFakeNode(t, fakeNode{
		config: paymentConfig + "---\n" + config, mesh: m,
		id: "payment-1.default", ip: "10.200.0.2", app: "payment", mode: mode,
	})
}

const (
	paymentIface = "com.example.PaymentService"
	orderSA      = "spiffe://cluster.local/ns/default/sa/order"
	shopSA       = "spiffe://cluster.local/ns/shop/sa/web"
)

// call is one request a test sends through the RBAC filters of an inbound port.
type call struct {
	port      uint32
	method    string // Dubbo method, or the last path segment of a Triple call
	principal string // "" over plaintext
	headers   map[string]string
	allowed   bool
}

func (c call) String() string {
	return fmt.Sprintf("%d %s from %q %v", c.port, c.method, c.principal, c.headers)
}

// mosnCall is what MOSN's RBAC filter sees: the Dubbo decoder's headers, or HTTP/2's.
func (c call) mosnCall() conformance.Call {
	h := map[string]string{}
	if c.port == 20880 {
		h["service"], h["method"], h["dubbo"] = paymentIface, c.method, "2.0.2"
	} else {
		// MOSN keeps an HTTP/2 call's path in a variable, not in X-Mosn-Path (which its
		// RBAC reads): the real path is invisible to RBAC.
		h["content-type"] = "application/grpc"
	}
	for k, v := range c.headers {
		h[k] = v
	}
	return conformance.Call{Headers: h, Principal: c.principal, SourceIP: "10.200.0.9", LocalPort: c.port}
}

const strictPA = `
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
---
`

// TestInboundSecurity: the provider's MOSN sidecar gets per-port TLS from
// PeerAuthentication and RBAC from AuthorizationPolicy, in forms MOSN reads (the
// conformance checker), with the behaviour Istio gives them (MOSN's RBAC engine
// evaluated on real calls' headers: conformance.Allowed), a golden file per case. No MOSN
// runs here: the checker and the engine's mirror stand in for it (docs/testing.md).
func TestInboundSecurity(t *testing.T) {
	cases := []struct {
		name   string
		config string
		mode   model.TrafficInterceptionMode
		tls    map[uint32]string // port -> "tls", "both", "plain"
		calls  []call
		failed int // rules reported as failing closed
	}{
		{
			name: "strict-allow-principal-method",
			config: strictPA + `
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: refund-from-order, namespace: default}
spec:
  selector: {matchLabels: {app: payment}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/order]}}]
    to: [{operation: {paths: [/com.example.PaymentService/refund]}}]
`,
			mode: model.InterceptionRedirect,
			tls:  map[uint32]string{20880: "tls", 50051: "tls"},
			calls: []call{
				{port: 20880, method: "refund", principal: orderSA, allowed: true},
				{port: 20880, method: "refund", principal: shopSA},
				{port: 20880, method: "query", principal: orderSA},
				// MOSN reads a Triple call's path from X-Mosn-Path, a header the caller
				// sets: a path condition fails closed there (docs/security.md).
				{port: 50051, method: "refund", principal: orderSA},
				{port: 50051, method: "refund", principal: orderSA, headers: map[string]string{"X-Mosn-Path": "/" + paymentIface + "/refund"}},
				{port: 50051, method: "query", principal: orderSA},
			},
			failed: 1,
		},
		{
			name: "permissive-deny-method",
			config: `
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: no-refund, namespace: default}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: [/com.example.PaymentService/refund]}}]
`,
			mode: model.InterceptionRedirect,
			tls:  map[uint32]string{20880: "both", 50051: "both"},
			calls: []call{
				{port: 20880, method: "refund"},
				{port: 20880, method: "refund", principal: orderSA},
				{port: 20880, method: "$invoke"}, // generic invocation may run refund: denied
				{port: 20880, method: "query", allowed: true},
				{port: 50051, method: "refund"},
				{port: 50051, method: "query"}, // the path fails closed: the DENY covers every Triple call
			},
			failed: 2, // the path on 50051; the interface on 20880 (the DENY covers refund on every interface)
		},
		{
			name: "disable-allow-version-header",
			config: `
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: v2-only, namespace: default}
spec:
  selector: {matchLabels: {app: payment}}
  rules:
  - to: [{operation: {paths: ["/com.example.PaymentService/*"]}}]
    when: [{key: "request.headers[version]", values: ["2.0.0"]}]
`,
			mode: model.InterceptionRedirect,
			tls:  map[uint32]string{20880: "plain", 50051: "plain"},
			calls: []call{
				{port: 20880, method: "query", headers: map[string]string{"version": "2.0.0"}, allowed: true},
				{port: 20880, method: "query", headers: map[string]string{"version": "1.0.0"}},
				{port: 20880, method: "query"},
				{port: 50051, method: "query", headers: map[string]string{"tri-service-version": "2.0.0"}}, // the path fails closed
				{port: 50051, method: "query", headers: map[string]string{"tri-service-version": "1.0.0"}},
			},
			failed: 1,
		},
		{
			name: "strict-allow-namespace-port",
			config: strictPA + `
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: shop-on-dubbo, namespace: default}
spec:
  selector: {matchLabels: {app: payment}}
  rules:
  - from: [{source: {namespaces: [shop]}}]
    to: [{operation: {ports: ["20880"]}}]
`,
			mode: model.InterceptionRedirect,
			tls:  map[uint32]string{20880: "tls", 50051: "tls"},
			calls: []call{
				{port: 20880, method: "refund", principal: shopSA, allowed: true},
				{port: 20880, method: "refund", principal: orderSA},
				{port: 50051, method: "refund", principal: shopSA},
			},
		},
		{
			// An attachment (env) cannot be read safely on a Dubbo port: the DENY
			// governs every call to refund, whatever the attachment. On Triple it is a
			// real header. A CUSTOM policy (ext_authz, not in MOSN) denies what it
			// governs.
			name: "fail-closed",
			config: `
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: no-gray-refund, namespace: default}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: [/com.example.PaymentService/refund]}}]
    when: [{key: "request.headers[env]", values: [gray]}]
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: audit-by-ext, namespace: default}
spec:
  action: CUSTOM
  provider: {name: ext-authz}
  rules:
  - to: [{operation: {paths: [/com.example.PaymentService/close]}}]
`,
			mode: model.InterceptionRedirect,
			tls:  map[uint32]string{20880: "both", 50051: "both"},
			calls: []call{
				{port: 20880, method: "refund", headers: map[string]string{"env": "gray"}},
				{port: 20880, method: "refund"},
				{port: 20880, method: "query", allowed: true},
				{port: 20880, method: "close"},
				{port: 50051, method: "refund", headers: map[string]string{"env": "gray"}},
				{port: 50051, method: "query"}, // CUSTOM's path fails closed: it denies every Triple call
				{port: 50051, method: "close"},
			},
			// 20880: the attachment, CUSTOM, the interfaces of both DENY paths; 50051:
			// CUSTOM and the two paths
			failed: 7,
		},
		{
			// Triple: by principal, port and version (a real HTTP/2 header).
			name: "strict-allow-triple-version",
			config: strictPA + `
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: triple-v2-from-order, namespace: default}
spec:
  selector: {matchLabels: {app: payment}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/order]}}]
    to: [{operation: {ports: ["50051"]}}]
    when: [{key: "request.headers[version]", values: ["2.0.0"]}]
`,
			mode: model.InterceptionRedirect,
			tls:  map[uint32]string{20880: "tls", 50051: "tls"},
			calls: []call{
				{port: 50051, method: "refund", principal: orderSA, headers: map[string]string{"tri-service-version": "2.0.0"}, allowed: true},
				{port: 50051, method: "refund", principal: orderSA, headers: map[string]string{"tri-service-version": "1.0.0"}},
				{port: 50051, method: "refund", principal: shopSA, headers: map[string]string{"tri-service-version": "2.0.0"}},
				{port: 20880, method: "refund", principal: orderSA, headers: map[string]string{"version": "2.0.0"}},
			},
		},
		{
			name: "explicit-strict-allow",
			config: strictPA + `
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: refund-from-order, namespace: default}
spec:
  selector: {matchLabels: {app: payment}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/order]}}]
    to: [{operation: {paths: [/com.example.PaymentService/refund]}}]
`,
			mode: model.InterceptionNone,
			tls:  map[uint32]string{20880: "tls"},
			calls: []call{
				{port: 20880, method: "refund", principal: orderSA, allowed: true},
				{port: 20880, method: "query", principal: orderSA},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeProvider(t, tc.config, tc.mode)
			ls := decode(t, f.generate(t, v3.ListenerType, nil, nil), func() *listener.Listener { return &listener.Listener{} })
			cs := decode(t, f.generate(t, v3.ClusterType, nil, nil), func() *cluster.Cluster { return &cluster.Cluster{} })
			if v := conformance.Check(conformance.Snapshot{Listeners: values(ls), Clusters: values(cs)}); len(v) > 0 {
				t.Errorf("conformance:\n%s", strings.Join(v, "\n"))
			}
			chains := inboundChains(t, ls, tc.mode)
			for port, want := range tc.tls {
				if got := tlsModes(chains[port]); got != want {
					t.Errorf("port %d: chains %s, want %s", port, got, want)
				}
				for _, fc := range chains[port] {
					// Under these names MOSN lets attachments overwrite service and method.
					if n := hcmOf(t, fc).GetRouteConfig().GetName(); n == "ingress_dubbo" || n == EgressListenerName {
						t.Errorf("port %d: inbound route named %s", port, n)
					}
					if c := inboundClusterOf(t, fc); cs[c] == nil {
						t.Errorf("port %d: its route's cluster %s is not in CDS", port, c)
					}
				}
			}
			for _, c := range tc.calls {
				fcs := chains[c.port]
				if len(fcs) == 0 {
					t.Fatalf("no inbound chain for port %d", c.port)
				}
				filters := hcmOf(t, fcs[0]).HttpFilters
				got, dropped := conformance.Allowed(filters, c.mosnCall())
				if len(dropped) > 0 {
					t.Errorf("MOSN would drop policies: %v", dropped)
				}
				if got != c.allowed {
					t.Errorf("%v: allowed=%v, want %v", c, got, c.allowed)
				}
			}
			denyPoliciesKept(t, f, chains)
			var failed []string
			for port := range chains {
				kind := dubboPortKind
				if port == 50051 {
					kind = triplePortKind
				}
				failed = append(failed, buildInboundRBAC(f.s.PushContext(), f.proxy, port, kind).failedClosed...)
			}
			if len(failed) != tc.failed {
				t.Errorf("%d rules reported failing closed, want %d: %v", len(failed), tc.failed, failed)
			}
			var ports []uint32
			for p := range chains {
				ports = append(ports, p)
			}
			sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
			out := &listener.Listener{Name: "inbound chains of " + tc.name}
			for _, p := range ports {
				out.FilterChains = append(out.FilterChains, chains[p]...)
			}
			golden(t, "inbound-"+tc.name+".json", stableJSON(t, out))
		})
	}
}

// inboundChains returns the Dubbo and Triple chains per port: virtualInbound's
// (intercepted) or inbound_dubbo's (explicit, the app port).
func inboundChains(t *testing.T, ls map[string]*listener.Listener, mode model.TrafficInterceptionMode) map[uint32][]*listener.FilterChain {
	t.Helper()
	out := map[uint32][]*listener.FilterChain{}
	if mode == model.InterceptionNone {
		l := ls[IngressListenerName]
		if l == nil {
			t.Fatalf("no %s in %v", IngressListenerName, keys(ls))
		}
		out[20880] = l.FilterChains
		return out
	}
	l := ls[VirtualInboundName]
	if l == nil {
		t.Fatalf("no %s in %v", VirtualInboundName, keys(ls))
	}
	for _, lf := range l.ListenerFilters {
		if lf.Name != wellknown.OriginalDestination {
			t.Errorf("listener filter %s left in virtualInbound", lf.Name)
		}
	}
	for _, fc := range l.FilterChains {
		p := fc.GetFilterChainMatch().GetDestinationPort().GetValue()
		if p == 20880 || p == 50051 {
			out[p] = append(out[p], fc)
		}
	}
	return out
}

func tlsModes(fcs []*listener.FilterChain) string {
	tls, plain := 0, 0
	for _, fc := range fcs {
		if fc.TransportSocket != nil {
			tls++
		} else {
			plain++
		}
	}
	switch {
	case tls == 1 && plain == 0:
		return "tls"
	case tls == 1 && plain == 1:
		return "both"
	case tls == 0 && plain == 1:
		return "plain"
	}
	return fmt.Sprintf("%d TLS and %d plaintext", tls, plain)
}

func hcmOf(t *testing.T, fc *listener.FilterChain) *hcm.HttpConnectionManager {
	t.Helper()
	for _, f := range fc.Filters {
		if f.Name == wellknown.HTTPConnectionManager {
			m := &hcm.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("chain %s has no HTTP connection manager", fc.Name)
	return nil
}

func inboundClusterOf(t *testing.T, fc *listener.FilterChain) string {
	t.Helper()
	rc := hcmOf(t, fc).GetRouteConfig()
	if rc == nil || len(rc.VirtualHosts) != 1 || len(rc.VirtualHosts[0].Routes) != 1 {
		t.Fatalf("chain %s: want one inline route, got %v", fc.Name, rc)
	}
	return rc.VirtualHosts[0].Routes[0].GetRoute().GetCluster()
}

// denyPoliciesKept: every DENY policy Istio builds for the workload is in every inbound
// port's MOSN RBAC, as a DENY (a DENY never disappears).
func denyPoliciesKept(t *testing.T, f *fakeMOSN, chains map[uint32][]*listener.FilterChain) {
	t.Helper()
	want := map[string]bool{}
	for _, hf := range authz.NewBuilder(authz.Local, f.s.PushContext(), f.proxy, false).BuildHTTP(networking.ListenerClassSidecarInbound) {
		r := &rbachttp.RBAC{}
		if err := hf.GetTypedConfig().UnmarshalTo(r); err != nil {
			t.Fatal(err)
		}
		if r.GetRules().GetAction() == rbacpb.RBAC_DENY {
			for n := range r.GetRules().GetPolicies() {
				want[n] = true
			}
		}
	}
	for port, fcs := range chains {
		for _, fc := range fcs {
			got := map[string]bool{}
			for _, hf := range hcmOf(t, fc).HttpFilters {
				r := &rbachttp.RBAC{}
				if hf.GetTypedConfig().UnmarshalTo(r) == nil && r.GetRules().GetAction() == rbacpb.RBAC_DENY {
					for n := range r.GetRules().GetPolicies() {
						got[n] = true
					}
				}
			}
			for n := range want {
				if !got[n] {
					t.Errorf("port %d chain %s: DENY policy %s is missing", port, fc.Name, n)
				}
			}
		}
	}
}

// TestInterceptedOutboundUnbound: upstream marks an intercepted sidecar's outbound
// listeners unbound with the top-level bind_to_port, which MOSN ignores (it would bind
// 240.0.0.5:3306 and fail); a MOSN node gets deprecated_v1.bind_to_port, which it reads.
func TestInterceptedOutboundUnbound(t *testing.T) {
	f := newFakeProvider(t, `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example.com]
  addresses: [240.0.0.5]
  ports: [{number: 3306, name: tcp, protocol: TCP}]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{address: 10.200.0.50}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.com]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.200.0.60}]
`, model.InterceptionRedirect)
	ls := decode(t, f.generate(t, v3.ListenerType, nil, nil), func() *listener.Listener { return &listener.Listener{} })
	// Upstream gives an intercepted sidecar's HTTP outbound listener http_inspector, which
	// MOSN does not convert: removed.
	web := ls["0.0.0.0_9080"]
	if web == nil {
		t.Fatalf("no listener 0.0.0.0_9080 in %v", keys(ls))
	}
	for _, lf := range web.ListenerFilters {
		t.Errorf("0.0.0.0_9080: listener filter %s left", lf.Name)
	}
	l := ls["240.0.0.5_3306"]
	if l == nil {
		t.Fatalf("no listener 240.0.0.5_3306 (have %d)", len(ls))
	}
	if l.GetDeprecatedV1().GetBindToPort() == nil || l.GetDeprecatedV1().GetBindToPort().GetValue() {
		t.Fatalf("240.0.0.5_3306: deprecated_v1 %v, want bind_to_port false", l.GetDeprecatedV1())
	}
	if v := conformance.Check(conformance.Snapshot{Listeners: values(ls)}); len(v) > 0 {
		t.Errorf("conformance:\n%s", strings.Join(v, "\n"))
	}
}

// extAuthzConfig: a CUSTOM provider that resolves (a ServiceEntry for it), so upstream
// builds its real ext_authz filters and shadow rules, not its bad-provider deny.
const extAuthzConfig = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext-authz, namespace: default}
spec:
  hosts: [ext-authz.default.svc.cluster.local]
  ports: [{number: 8000, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.200.0.99}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: close-by-ext, namespace: default}
spec:
  action: CUSTOM
  provider: {name: ext-authz}
  rules:
  - to: [{operation: {paths: [/com.example.PaymentService/close]}}]
`

// TestCustomFailsClosed: CUSTOM (ext_authz, which MOSN drops) denies the calls it
// governs on the Dubbo port and on the workload's other HTTP port, where upstream's
// companion RBAC only marks them in shadow rules.
func TestCustomFailsClosed(t *testing.T) {
	f := newFakeProvider(t, extAuthzConfig, model.InterceptionRedirect)
	ls := decode(t, f.generate(t, v3.ListenerType, nil, nil), func() *listener.Listener { return &listener.Listener{} })
	if v := conformance.Check(conformance.Snapshot{Listeners: values(ls)}); len(v) > 0 {
		t.Errorf("conformance:\n%s", strings.Join(v, "\n"))
	}
	chains := map[uint32]*listener.FilterChain{}
	for _, fc := range ls[VirtualInboundName].GetFilterChains() {
		if p := fc.GetFilterChainMatch().GetDestinationPort().GetValue(); p != 0 && chains[p] == nil {
			chains[p] = fc
		}
	}
	for _, tc := range []struct {
		port    uint32
		headers map[string]string
		allowed bool
	}{
		{20880, map[string]string{"service": paymentIface, "method": "close"}, false},
		{20880, map[string]string{"service": paymentIface, "method": "query"}, true},
		{8080, map[string]string{":method": "GET"}, false}, // the path is unreadable on HTTP: every call
	} {
		fc := chains[tc.port]
		if fc == nil {
			t.Fatalf("no virtualInbound chain for port %d", tc.port)
		}
		got, dropped := conformance.Allowed(hcmOf(t, fc).HttpFilters, conformance.Call{Headers: tc.headers, LocalPort: tc.port})
		if len(dropped) > 0 {
			t.Errorf("port %d: MOSN drops %v", tc.port, dropped)
		}
		if got != tc.allowed {
			t.Errorf("port %d %v: allowed=%v, want %v", tc.port, tc.headers, got, tc.allowed)
		}
	}
}
