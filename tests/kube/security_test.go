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

package kube_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkingapi "istio.io/api/networking/v1alpha3"
	securityapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	"istio.io/istio/pkg/test/util/retry"
	"istio.io/istio/pkg/wellknown"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/kube"
	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/pilot"
)

const (
	paymentIface = "com.example.Payment"
	paymentPort  = 20880
	tlsModeLabel = "security.istio.io/tlsMode"
)

// TestMOSNInboundFollowsPolicies: the MOSN sidecar of an intercepted provider pod gets
// its Dubbo port's virtualInbound chains from PeerAuthentication and their RBAC from
// AuthorizationPolicy, both created and deleted through the API server; each change
// reaches the connected node in the next LDS push. What MOSN would do with the RBAC is
// evaluated by its engine's mirror (conformance.Allowed) on Dubbo calls' headers, and
// every snapshot passes the conformance checker. An Envoy sidecar of the same pod keeps
// upstream's virtualInbound.
func TestMOSNInboundFollowsPolicies(t *testing.T) {
	ns := namespace(t, "dubbo-sec-inbound")
	provider := pod(t, kube.Workload{
		Name: "payment-0", Namespace: ns, IP: "10.10.2.11", ServiceAccount: "payment",
		Labels: map[string]string{"app": "payment", tlsModeLabel: "istio"},
	})
	svc := service(t, ns, "payment", map[string]string{"app": "payment"}, []kube.ServicePort{{Name: "dubbo-rpc", Port: paymentPort}}, provider)
	svc.Labels = map[string]string{"dubbo.apache.org/interface": paymentIface}
	if _, err := harness.Client.Kube().CoreV1().Services(ns).Update(t.Context(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := startIstiod(t, pilot.Options{})

	// The sidecar of the pod: matched to it (and so to the Service's port) by IP and
	// namespace; intercepted (INTERCEPTION_MODE unset means REDIRECT).
	node := sidecar(provider)
	node.Metadata["GENERATOR"] = "mosn"
	c := dial(t, p, node)
	start := time.Now()
	var snap conformance.Snapshot
	// The Service may reach istiod after the node connects: wait for its port to show.
	retry.UntilSuccessOrFail(t, func() error {
		var err error
		if snap, err = xdsview.Sync(c, 30*time.Second); err != nil {
			return err
		}
		return chainsAre(snap, "tls", "raw_buffer")
	}, retry.Timeout(60*time.Second), retry.Delay(200*time.Millisecond))
	checkConformance(t, snap)
	// An intercepted node's outbound listeners are reached through virtualOutbound: MOSN
	// must not bind them, and reads only deprecated_v1.bind_to_port.
	if l := findListener(snap, "10.96.0.1_443"); l == nil {
		t.Error("no outbound listener 10.96.0.1_443 (kubernetes.default)")
	} else if b := l.GetDeprecatedV1().GetBindToPort(); b == nil || b.GetValue() {
		t.Errorf("outbound listener %s: deprecated_v1 %v, want bind_to_port false", l.Name, l.GetDeprecatedV1())
	}
	t.Logf("(a) no PeerAuthentication (PERMISSIVE): a TLS and a plaintext chain on %d, %v after connecting", paymentPort, time.Since(start).Round(time.Millisecond))

	// Envoy sidecars keep upstream's inbound: tls_inspector tells TLS apart.
	envoy, err := xdsview.Sync(dial(t, p, sidecar(provider)), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	vi := findListener(envoy, "virtualInbound")
	if vi == nil {
		t.Fatal("Envoy sidecar: no virtualInbound")
	}
	if !slices.ContainsFunc(vi.ListenerFilters, func(f *listener.ListenerFilter) bool { return f.Name == wellknown.TLSInspector }) {
		t.Errorf("Envoy sidecar: virtualInbound has no %s (upstream's)", wellknown.TLSInspector)
	}
	for _, fc := range vi.FilterChains {
		if m := chainHCM(fc); m != nil && strings.HasPrefix(m.GetRouteConfig().GetName(), "inbound-dubbo-") {
			t.Errorf("Envoy sidecar: chain %s has MOSN's inbound route %s", fc.Name, m.GetRouteConfig().GetName())
		}
	}

	sec := harness.Client.Istio().SecurityV1()
	strict := &securityv1.PeerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
		Spec:       securityapi.PeerAuthentication{Mtls: &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}},
	}
	snap = awaitPush(t, c, adsclient.ListenerType, "(b) PeerAuthentication STRICT", func() {
		create(t, strict, sec.PeerAuthentications(ns).Create, sec.PeerAuthentications(ns).Delete)
	}, func(s conformance.Snapshot) error { return chainsAre(s, "tls") })

	order := "spiffe://cluster.local/ns/" + ns + "/sa/order"
	other := "spiffe://cluster.local/ns/" + ns + "/sa/web"
	allow := &securityv1.AuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "refund-from-order", Namespace: ns},
		Spec: securityapi.AuthorizationPolicy{
			Selector: &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "payment"}},
			Action:   securityapi.AuthorizationPolicy_ALLOW,
			Rules: []*securityapi.Rule{{
				From: []*securityapi.Rule_From{{Source: &securityapi.Source{Principals: []string{"cluster.local/ns/" + ns + "/sa/order"}}}},
				To:   []*securityapi.Rule_To{{Operation: &securityapi.Operation{Paths: []string{"/" + paymentIface + "/refund"}}}},
			}},
		},
	}
	awaitPush(t, c, adsclient.ListenerType, "(c) ALLOW refund from order", func() {
		create(t, allow, sec.AuthorizationPolicies(ns).Create, sec.AuthorizationPolicies(ns).Delete)
	}, behaves(
		dubboCall{"refund", order, true},
		dubboCall{"refund", other, false},
		dubboCall{"query", order, false},
	))

	deny := &securityv1.AuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "no-query", Namespace: ns},
		Spec: securityapi.AuthorizationPolicy{
			Action: securityapi.AuthorizationPolicy_DENY,
			Rules:  []*securityapi.Rule{{To: []*securityapi.Rule_To{{Operation: &securityapi.Operation{Paths: []string{"/" + paymentIface + "/query"}}}}}},
		},
	}
	denyPolicy := "ns[" + ns + "]-policy[no-query]-rule[0]"
	// With the ALLOW in place query is denied either way: the DENY's own filter is
	// evaluated alone as well.
	awaitPush(t, c, adsclient.ListenerType, "(d) DENY query", func() {
		create(t, deny, sec.AuthorizationPolicies(ns).Create, sec.AuthorizationPolicies(ns).Delete)
	}, all(hasDeny(denyPolicy, true), behaves(
		dubboCall{"refund", order, true},
		dubboCall{"query", order, false},
	)))
	// Without the ALLOW, the DENY alone decides: it must not vanish with the ALLOW.
	awaitPush(t, c, adsclient.ListenerType, "(d) ALLOW deleted, DENY stays", func() {
		del(t, allow.Name, sec.AuthorizationPolicies(ns).Delete)
	}, all(hasDeny(denyPolicy, true), behaves(
		dubboCall{"refund", other, true},
		dubboCall{"query", order, false},
		dubboCall{"query", other, false},
	)))
	awaitPush(t, c, adsclient.ListenerType, "(d) DENY deleted", func() {
		del(t, deny.Name, sec.AuthorizationPolicies(ns).Delete)
	}, all(hasDeny(denyPolicy, false), behaves(
		dubboCall{"query", order, true},
		dubboCall{"refund", other, true},
	)))
}

// TestMOSNConsumerTLSPerCluster: a MOSN consumer's cluster is all-TLS or all-plaintext:
// TLS (one SAN, SDS over google_grpc) when some endpoint's pod has an Istio sidecar,
// plaintext when none has, and DestinationRule tls.mode overrides both ways.
func TestMOSNConsumerTLSPerCluster(t *testing.T) {
	ns := namespace(t, "dubbo-sec-consumer")
	withSidecar := pod(t, kube.Workload{
		Name: "ledger-0", Namespace: ns, IP: "10.10.3.11", ServiceAccount: "ledger",
		Labels: map[string]string{"app": "ledger", tlsModeLabel: "istio"},
	})
	without := pod(t, kube.Workload{Name: "ledger-1", Namespace: ns, IP: "10.10.3.12", Labels: map[string]string{"app": "ledger"}})
	legacy := pod(t, kube.Workload{Name: "legacy-0", Namespace: ns, IP: "10.10.3.21", ServiceAccount: "legacy", Labels: map[string]string{"app": "legacy"}})
	shop := pod(t, kube.Workload{Name: "shop-0", Namespace: ns, IP: "10.10.3.31", Labels: map[string]string{"app": "shop"}})
	service(t, ns, "ledger", map[string]string{"app": "ledger"}, []kube.ServicePort{{Name: "dubbo-rpc", Port: 20880}}, withSidecar, without)
	service(t, ns, "legacy", map[string]string{"app": "legacy"}, []kube.ServicePort{{Name: "dubbo-rpc", Port: 20881}}, legacy)
	scope(t, ns)
	p := startIstiod(t, pilot.Options{})

	ledgerCluster := "outbound|20880||ledger." + ns + ".svc.cluster.local"
	legacyCluster := "outbound|20881||legacy." + ns + ".svc.cluster.local"
	ledgerSAN := "spiffe://cluster.local/ns/" + ns + "/sa/ledger"
	legacySAN := "spiffe://cluster.local/ns/" + ns + "/sa/legacy"

	node := sidecar(shop)
	node.Metadata["GENERATOR"] = "mosn"
	c := dial(t, p, node)
	start := time.Now()
	var snap conformance.Snapshot
	retry.UntilSuccessOrFail(t, func() error {
		var err error
		if snap, err = xdsview.Sync(c, 30*time.Second); err != nil {
			return err
		}
		if got := endpointsOf(snap, ledgerCluster); strings.Join(got, ",") != "10.10.3.11:20880,10.10.3.12:20880" {
			return fmt.Errorf("%s endpoints %v", ledgerCluster, got)
		}
		return all(clusterTLS(ledgerCluster, ledgerSAN), clusterTLS(legacyCluster, ""))(snap)
	}, retry.Timeout(60*time.Second), retry.Delay(200*time.Millisecond))
	checkConformance(t, snap)
	// The mixed cluster is reported: counted (and logged) as TLS-for-all.
	mixed := regexp.MustCompile(`(?m)^dubbo_mosn_tls_clusters_total\{[^}]*reason="mixed_endpoints"[^}]*\} ([0-9.e+]+)$`)
	retry.UntilSuccessOrFail(t, func() error {
		if m := mixed.FindSubmatch(p.Debug(t, "/metrics")); m == nil || string(m[1]) == "0" {
			return errors.New(`no dubbo_mosn_tls_clusters_total{reason="mixed_endpoints"} count`)
		}
		return nil
	}, retry.Timeout(30*time.Second), retry.Delay(200*time.Millisecond))
	t.Logf("mixed endpoints: TLS for all (SAN %s); no sidecar: plaintext; %v after connecting", ledgerSAN, time.Since(start).Round(time.Millisecond))

	net := harness.Client.Istio().NetworkingV1()
	dr := func(name string, mode networkingapi.ClientTLSSettings_TLSmode) *networkingv1.DestinationRule {
		return &networkingv1.DestinationRule{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: networkingapi.DestinationRule{
				Host:          name + "." + ns + ".svc.cluster.local",
				TrafficPolicy: &networkingapi.TrafficPolicy{Tls: &networkingapi.ClientTLSSettings{Mode: mode}},
			},
		}
	}
	awaitPush(t, c, adsclient.ClusterType, "DestinationRule DISABLE on ledger", func() {
		create(t, dr("ledger", networkingapi.ClientTLSSettings_DISABLE), net.DestinationRules(ns).Create, net.DestinationRules(ns).Delete)
	}, all(clusterTLS(ledgerCluster, ""), clusterTLS(legacyCluster, "")))
	awaitPush(t, c, adsclient.ClusterType, "DestinationRule ISTIO_MUTUAL on legacy", func() {
		create(t, dr("legacy", networkingapi.ClientTLSSettings_ISTIO_MUTUAL), net.DestinationRules(ns).Create, net.DestinationRules(ns).Delete)
	}, all(clusterTLS(ledgerCluster, ""), clusterTLS(legacyCluster, legacySAN)))
}

// scope limits the namespace's sidecars to its own services and kubernetes.default
// (the API server is shared by the package's tests, whose other services would otherwise
// reach these nodes too).
func scope(t *testing.T, ns string) {
	t.Helper()
	sc := harness.Client.Istio().NetworkingV1().Sidecars(ns)
	create(t, &networkingv1.Sidecar{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
		Spec: networkingapi.Sidecar{Egress: []*networkingapi.IstioEgressListener{{
			Hosts: []string{"./*", "default/kubernetes.default.svc.cluster.local"},
		}}},
	}, sc.Create, sc.Delete)
}

// create creates an object through the API server and deletes it when the test ends
// (unless the test deleted it first).
func create[T metav1.Object](t *testing.T, obj T,
	createFn func(ctx context.Context, obj T, o metav1.CreateOptions) (T, error),
	deleteFn func(ctx context.Context, name string, o metav1.DeleteOptions) error,
) {
	t.Helper()
	if _, err := createFn(t.Context(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s: %v", obj.GetName(), err)
	}
	t.Cleanup(func() { _ = deleteFn(t.Context(), obj.GetName(), metav1.DeleteOptions{}) })
}

func del(t *testing.T, name string, deleteFn func(ctx context.Context, name string, o metav1.DeleteOptions) error) {
	t.Helper()
	if err := deleteFn(t.Context(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete %s: %v", name, err)
	}
}

// awaitPush makes a change through the API server, waits until what the node holds
// satisfies ok, and checks that it came with the first response of typeURL after the
// change (one push), and that the snapshot passes the conformance checker. The time it
// took is logged, never asserted.
func awaitPush(t *testing.T, c *adsclient.Client, typeURL, what string, change func(), ok func(conformance.Snapshot) error) conformance.Snapshot {
	t.Helper()
	before := c.Responses(typeURL)
	start := time.Now()
	change()
	var snap conformance.Snapshot
	pushes := 0
	retry.UntilSuccessOrFail(t, func() error {
		n := c.Responses(typeURL)
		s, err := xdsview.Held(c)
		if err != nil {
			return err
		}
		if c.Responses(typeURL) != n {
			return errors.New("a response arrived while reading")
		}
		if err := ok(s); err != nil {
			return fmt.Errorf("%s: %v", what, err)
		}
		snap, pushes = s, n-before
		return nil
	}, retry.Timeout(60*time.Second), retry.Delay(10*time.Millisecond))
	kind := typeURL[strings.LastIndex(typeURL, ".")+1:]
	t.Logf("%s: in place %v after the change, with %s response #%d after it", what, time.Since(start).Round(time.Millisecond), kind, pushes)
	if pushes != 1 {
		t.Errorf("%s: arrived with %s response #%d after the change, want the first (one push)", what, kind, pushes)
	}
	checkConformance(t, snap)
	return snap
}

func checkConformance(t *testing.T, s conformance.Snapshot) {
	t.Helper()
	if v := conformance.Check(s); len(v) > 0 {
		t.Fatalf("MOSN conformance violations:\n  %s", strings.Join(v, "\n  "))
	}
}

func all(checks ...func(conformance.Snapshot) error) func(conformance.Snapshot) error {
	return func(s conformance.Snapshot) error {
		for _, c := range checks {
			if err := c(s); err != nil {
				return err
			}
		}
		return nil
	}
}

func findListener(s conformance.Snapshot, name string) *listener.Listener {
	for _, l := range s.Listeners {
		if l.Name == name {
			return l
		}
	}
	return nil
}

func chainHCM(fc *listener.FilterChain) *hcm.HttpConnectionManager {
	for _, f := range fc.Filters {
		m := &hcm.HttpConnectionManager{}
		if f.Name == wellknown.HTTPConnectionManager && f.GetTypedConfig().UnmarshalTo(m) == nil {
			return m
		}
	}
	return nil
}

// paymentChains are virtualInbound's chains on the Dubbo port, by transport protocol.
func paymentChains(s conformance.Snapshot) (map[string]*listener.FilterChain, error) {
	vi := findListener(s, "virtualInbound")
	if vi == nil {
		return nil, errors.New("no virtualInbound listener")
	}
	out := map[string]*listener.FilterChain{}
	for _, fc := range vi.FilterChains {
		m := fc.GetFilterChainMatch()
		if m.GetDestinationPort().GetValue() != paymentPort {
			continue
		}
		tp := m.GetTransportProtocol()
		if out[tp] != nil {
			return nil, fmt.Errorf("two chains on %d with transport protocol %q", paymentPort, tp)
		}
		out[tp] = fc
	}
	return out, nil
}

// chainsAre: the Dubbo port has exactly chains of these transport protocols, TLS ones
// with a TLS transport socket, each an HCM with MOSN's inbound route.
func chainsAre(s conformance.Snapshot, protocols ...string) error {
	chains, err := paymentChains(s)
	if err != nil {
		return err
	}
	var got []string
	for tp := range chains {
		got = append(got, tp)
	}
	sort.Strings(got)
	want := slices.Clone(protocols)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("chains on %d by transport protocol %q, want %q", paymentPort, got, want)
	}
	for tp, fc := range chains {
		if isTLS := fc.GetTransportSocket().GetName() == wellknown.TransportSocketTLS; isTLS != (tp == "tls") {
			return fmt.Errorf("chain %s (%q): transport socket %q", fc.Name, tp, fc.GetTransportSocket().GetName())
		}
		m := chainHCM(fc)
		if want := fmt.Sprintf("inbound-dubbo-%d", paymentPort); m.GetRouteConfig().GetName() != want {
			return fmt.Errorf("chain %s: route %q, want %q", fc.Name, m.GetRouteConfig().GetName(), want)
		}
	}
	return nil
}

// dubboCall is one Dubbo call to the provider over mTLS from principal.
type dubboCall struct {
	method, principal string
	allowed           bool
}

func (d dubboCall) call() conformance.Call {
	return conformance.Call{
		// As MOSN's Dubbo decoder sets them.
		Headers:   map[string]string{"service": paymentIface, "method": d.method, "dubbo": "2.0.2"},
		Principal: d.principal, SourceIP: "10.10.2.99", LocalPort: paymentPort,
	}
}

// behaves: the TLS chain of the Dubbo port decides each call as wanted, MOSN dropping
// nothing.
func behaves(calls ...dubboCall) func(conformance.Snapshot) error {
	return func(s conformance.Snapshot) error {
		chains, err := paymentChains(s)
		if err != nil {
			return err
		}
		fc := chains["tls"]
		if fc == nil {
			return fmt.Errorf("no TLS chain on %d", paymentPort)
		}
		filters := chainHCM(fc).GetHttpFilters()
		for _, c := range calls {
			got, dropped := conformance.Allowed(filters, c.call())
			if len(dropped) > 0 {
				return fmt.Errorf("MOSN drops policies: %v", dropped)
			}
			if got != c.allowed {
				return fmt.Errorf("%s from %s: allowed %t, want %t", c.method, c.principal, got, c.allowed)
			}
		}
		return nil
	}
}

// hasDeny: whether a DENY RBAC filter of the TLS chain holds policy; present, it must
// deny a query call from anyone by itself.
func hasDeny(policy string, present bool) func(conformance.Snapshot) error {
	return func(s conformance.Snapshot) error {
		chains, err := paymentChains(s)
		if err != nil {
			return err
		}
		fc := chains["tls"]
		if fc == nil {
			return fmt.Errorf("no TLS chain on %d", paymentPort)
		}
		var found *hcm.HttpFilter
		for _, f := range chainHCM(fc).GetHttpFilters() {
			r := &rbachttp.RBAC{}
			if f.Name != wellknown.HTTPRoleBasedAccessControl || f.GetTypedConfig().UnmarshalTo(r) != nil {
				continue
			}
			if r.GetRules().GetAction() == rbacpb.RBAC_DENY && r.GetRules().GetPolicies()[policy] != nil {
				found = f
			}
		}
		switch {
		case present && found == nil:
			return fmt.Errorf("no DENY filter with %s", policy)
		case !present && found != nil:
			return fmt.Errorf("DENY filter with %s still there", policy)
		case found != nil:
			if ok, _ := conformance.Allowed([]*hcm.HttpFilter{found}, dubboCall{method: "query"}.call()); ok {
				return errors.New("the DENY filter alone allows query")
			}
		}
		return nil
	}
}

// clusterTLS: the cluster exists, has no transport_socket_matches (MOSN applies a
// cluster's TLS to every endpoint), and has a TLS transport_socket with exactly san and
// SDS over google_grpc, or (san "") none at all.
func clusterTLS(name, san string) func(conformance.Snapshot) error {
	return func(s conformance.Snapshot) error {
		cl := findCluster(s, name)
		if cl == nil {
			return fmt.Errorf("no cluster %s", name)
		}
		if len(cl.TransportSocketMatches) > 0 {
			return fmt.Errorf("%s: %d transport_socket_matches", name, len(cl.TransportSocketMatches))
		}
		ts := cl.GetTransportSocket()
		if san == "" {
			if ts != nil {
				return fmt.Errorf("%s: transport_socket %q, want plaintext (none)", name, ts.Name)
			}
			return nil
		}
		return upstreamTLSIs(cl, ts, san)
	}
}

func upstreamTLSIs(cl *cluster.Cluster, ts *core.TransportSocket, san string) error {
	if ts.GetName() != wellknown.TransportSocketTLS {
		return fmt.Errorf("%s: transport_socket %q, want TLS", cl.Name, ts.GetName())
	}
	u := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(u); err != nil {
		return err
	}
	ctx := u.GetCommonTlsContext()
	v := ctx.GetCombinedValidationContext().GetDefaultValidationContext()
	if v == nil {
		v = ctx.GetValidationContext()
	}
	var sans []string
	for _, m := range v.GetMatchSubjectAltNames() {
		sans = append(sans, m.GetExact())
	}
	if len(sans) != 1 || sans[0] != san {
		return fmt.Errorf("%s: SANs %q, want exactly [%s]", cl.Name, sans, san)
	}
	sds := append([]*tlsv3.SdsSecretConfig{}, ctx.GetTlsCertificateSdsSecretConfigs()...)
	sds = append(sds, ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig())
	for _, sc := range sds {
		gs := sc.GetSdsConfig().GetApiConfigSource().GetGrpcServices()
		if len(gs) != 1 || gs[0].GetGoogleGrpc() == nil || !strings.HasPrefix(gs[0].GetGoogleGrpc().GetTargetUri(), "/") {
			return fmt.Errorf("%s: SDS %s not over google_grpc to a socket path: %v", cl.Name, sc.GetName(), gs)
		}
	}
	return nil
}
