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

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnet "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/plugin/authn"
	"istio.io/istio/pilot/pkg/networking/util"
	authzmodel "istio.io/istio/pilot/pkg/security/authz/model"
	"istio.io/istio/pilot/pkg/util/protoconv"
	"istio.io/istio/pkg/config/protocol"
	"istio.io/istio/pkg/monitoring"
	"istio.io/istio/pkg/wellknown"
)

// The provider side (docs/security.md, "Providers").
//
// Intercepted pods (iptables/CNI redirect to 15006): upstream's virtualInbound is kept
// and, per Dubbo or Triple port the workload serves, its chains are replaced by MOSN's
// own: an HTTP connection manager (MOSN's Auto proxy detects Dubbo and HTTP/2) with a
// unique inline route name (MOSN names each original-dst virtual listener after it),
// the translated RBAC filters first, routing to upstream's inbound cluster for the port;
// TLS per the effective PeerAuthentication (STRICT: a TLS chain; PERMISSIVE: a TLS and a
// plaintext chain on the same port, which MOSN's inspector tells apart; DISABLE:
// plaintext). Listener filters other than original_dst are removed (MOSN rejects
// tls_inspector), and every other chain gets the same repairs as outbound: SDS over
// google_grpc, RBAC in MOSN's forms, and a port whose network RBAC MOSN cannot run is
// closed instead of left open.
//
// Explicit mode (no redirect): the bound listener inbound_dubbo, TLS when the port is
// STRICT (one chain: MOSN has no inspector there), the same RBAC.

var (
	authzTranslated = monitoring.NewSum(
		"dubbo_mosn_authz_policies_translated_total",
		"Authorization policies (per action) translated into MOSN RBAC on Dubbo and Triple inbound ports, counted per inbound listener generated.",
	)
	authzFailedClosed = monitoring.NewSum(
		"dubbo_mosn_authz_rules_failed_closed_total",
		"Authorization rules MOSN cannot express, made to fail closed instead (counted once per distinct rule and port).",
	)
	tlsReason   = monitoring.CreateLabel("reason")
	tlsClusters = monitoring.NewSum(
		"dubbo_mosn_tls_clusters_total",
		"MOSN clusters whose mutual TLS could not follow every endpoint exactly, by reason (counted when a changed cluster is adapted).",
	)
)

// VirtualInboundName is upstream's inbound listener of intercepted sidecars.
const VirtualInboundName = "virtualInbound"

// InboundRouteName names the inline route (and so MOSN's virtual listener) of one inbound
// Dubbo or Triple port. It must not be ingress_dubbo/egress_dubbo: under those names MOSN
// lets a caller's attachments overwrite the service and method headers authorization
// reads (docs/security.md).
func InboundRouteName(port uint32) string { return fmt.Sprintf("inbound-dubbo-%d", port) }

// inboundPort is a Dubbo or Triple port the workload serves.
type inboundPort struct {
	port uint32
	kind portKind
}

// inboundPorts lists the Dubbo and Triple ports of the proxy's own services (Kubernetes
// Services selecting the pod, and the registry's providers at its IP), by port.
//
// A port that serves both (Dubbo 3's port unification: a dubbo and a tri provider on one
// port) is unifiedPortKind: a Triple call on it can carry any service/method header.
func inboundPorts(proxy *model.Proxy) []inboundPort {
	kinds := map[uint32]portKind{}
	for _, t := range proxy.ServiceTargets {
		sp, port := t.Port.ServicePort, t.Port.TargetPort
		if sp == nil || port == 0 {
			continue
		}
		var k portKind
		switch {
		case sp.Protocol == protocol.Dubbo:
			k = dubboPortKind
		case isTriplePort(sp):
			k = triplePortKind
		default:
			continue
		}
		if prev, ok := kinds[port]; ok && prev != k {
			k = unifiedPortKind
		}
		kinds[port] = k
	}
	out := make([]inboundPort, 0, len(kinds))
	for port, k := range kinds {
		out = append(out, inboundPort{port: port, kind: k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].port < out[j].port })
	return out
}

// inboundHCM is the connection manager of one inbound port: RBAC, then every call to the
// cluster.
func (g *Generator) inboundHCM(proxy *model.Proxy, az workloadAuthz, p inboundPort, routeName, cluster string) *hcm.HttpConnectionManager {
	rb := az.forPort(p.port, p.kind)
	if rb.policies > 0 {
		authzTranslated.Record(float64(rb.policies))
	}
	g.reportFailedClosed(proxy, rb.failedClosed)
	return &hcm.HttpConnectionManager{
		StatPrefix: routeName,
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
			Name: routeName,
			VirtualHosts: []*route.VirtualHost{{
				Name:    routeName,
				Domains: []string{"*"},
				Routes: []*route.Route{{
					Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: ""}},
					Action: &route.Route_Route{Route: &route.RouteAction{
						ClusterSpecifier: &route.RouteAction_Cluster{Cluster: cluster},
					}},
				}},
			}},
		}},
		HttpFilters: rb.filters,
	}
}

// inboundTLS is the port's server TLS per PeerAuthentication: the context (nil: none)
// and whether plaintext is accepted beside it. A mode that needs TLS without a context
// to serve it accepts nothing (never plaintext in its place).
func inboundTLS(an *authn.Builder, port uint32, sds string) (*core.TransportSocket, bool) {
	s := an.ForPort(port)
	if s.Mode == model.MTLSDisable {
		return nil, true
	}
	if s.HTTP == nil {
		return nil, false
	}
	ctx := proto.Clone(s.HTTP).(*tlsv3.DownstreamTlsContext)
	commonForMOSN(ctx.CommonTlsContext, sds)
	ts := &core.TransportSocket{Name: wellknown.TransportSocketTLS, ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: protoconv.MessageToAny(ctx)}}
	return ts, s.Mode == model.MTLSPermissive
}

// dubboInboundChains are the chains of one port in virtualInbound.
func (g *Generator) dubboInboundChains(proxy *model.Proxy, an *authn.Builder, az workloadAuthz, p inboundPort, sds string) []*listener.FilterChain {
	name := InboundRouteName(p.port)
	filters := []*listener.Filter{{
		Name: wellknown.HTTPConnectionManager,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: protoconv.MessageToAny(
			g.inboundHCM(proxy, az, p, name, model.BuildInboundSubsetKey(int(p.port)))),
		},
	}}
	ts, plaintext := inboundTLS(an, p.port, sds)
	var out []*listener.FilterChain
	if ts != nil {
		out = append(out, &listener.FilterChain{
			Name:             name + "-tls",
			FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(p.port), TransportProtocol: "tls"},
			TransportSocket:  ts,
			Filters:          filters,
		})
	}
	if plaintext {
		out = append(out, &listener.FilterChain{
			Name:             name,
			FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(p.port), TransportProtocol: "raw_buffer"},
			Filters:          filters,
		})
	}
	if len(out) == 0 {
		g.reportFailedClosed(proxy, []string{fmt.Sprintf("port %d: no TLS context for its mutual TLS mode: the port is closed", p.port)})
		out = append(out, &listener.FilterChain{
			Name:             name,
			FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(p.port)},
			Filters:          closedFilters(name),
		})
	}
	return out
}

// reportFailedClosed logs and counts each problem once (per distinct policy, rule and
// port, whichever proxy showed it first: every proxy of a workload shares them).
func (g *Generator) reportFailedClosed(proxy *model.Proxy, problems []string) {
	for _, msg := range problems {
		if g.logged.first("failed closed: " + msg) {
			scope.Warnf("MOSN authorization: %s; it fails closed (first seen for proxy %s; docs/security.md)", msg, proxy.ID)
			authzFailedClosed.Increment()
		}
	}
}

// adaptVirtualInbound rewrites upstream's virtualInbound for a MOSN node (see above).
func (g *Generator) adaptVirtualInbound(l *listener.Listener, proxy *model.Proxy, push *model.PushContext) (*listener.Listener, error) {
	sds := g.sdsPath(proxy)
	ports := inboundPorts(proxy)
	ours := map[uint32]bool{}
	var chains []*listener.FilterChain
	if len(ports) > 0 {
		// Built once per proxy and push, as upstream's listener builder does.
		az, an := newWorkloadAuthz(push, proxy), authn.NewBuilder(push, proxy)
		for _, p := range ports {
			ours[p.port] = true
			chains = append(chains, g.dubboInboundChains(proxy, an, az, p, sds)...)
		}
	}
	for _, fc := range l.FilterChains {
		if ours[fc.GetFilterChainMatch().GetDestinationPort().GetValue()] {
			continue
		}
		fc, err := g.adaptOtherInboundChain(fc, proxy, push, sds)
		if err != nil {
			return nil, err
		}
		chains = append(chains, fc)
	}
	out := proto.Clone(l).(*listener.Listener)
	out.FilterChains = chains
	out.ListenerFilters = nil
	for _, lf := range l.ListenerFilters {
		if lf.Name == wellknown.OriginalDestination {
			out.ListenerFilters = append(out.ListenerFilters, lf)
		}
	}
	return out, nil
}

// adaptOtherInboundChain gives a chain of a non-Dubbo port MOSN's readable forms: SDS
// over google_grpc, RBAC rewritten; a network RBAC filter (MOSN has none: it would drop
// it and leave the port open) closes the port instead.
func (g *Generator) adaptOtherInboundChain(in *listener.FilterChain, proxy *model.Proxy, push *model.PushContext, sds string) (*listener.FilterChain, error) {
	fc := proto.Clone(in).(*listener.FilterChain)
	ts, err := downstreamTLSForMOSN(fc.TransportSocket, sds)
	if err != nil {
		return nil, err
	}
	fc.TransportSocket = ts
	port := fc.GetFilterChainMatch().GetDestinationPort().GetValue()
	kept := fc.Filters[:0]
	closed := false
	for _, f := range fc.Filters {
		switch f.Name {
		case wellknown.RoleBasedAccessControl:
			closed = closed || networkRBACEnforces(f)
			continue
		case networkExtAuthz:
			closed = true // CUSTOM on a TCP port: MOSN has no ext_authz
			continue
		case wellknown.HTTPConnectionManager:
			m := &hcm.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
				return nil, err
			}
			for i, hf := range m.HttpFilters {
				if hf.Name != wellknown.HTTPRoleBasedAccessControl {
					continue
				}
				m.HttpFilters[i] = g.translateHTTPRBAC(hf, proxy, port)
			}
			f = &listener.Filter{Name: f.Name, ConfigType: &listener.Filter_TypedConfig{TypedConfig: protoconv.MessageToAny(m)}}
		}
		kept = append(kept, f)
	}
	fc.Filters = kept
	if closed {
		g.reportFailedClosed(proxy, []string{fmt.Sprintf("port %d: TCP authorization (network RBAC) cannot run in MOSN: the port is closed", port)})
		fc.Filters = closedFilters(fmt.Sprintf("inbound-closed-%d", port))
	} else if isBlackHole(fc) {
		// MOSN names an original-dst chain's virtual listener after its tcp_proxy
		// cluster: virtualOutbound's guard already is "BlackHoleCluster", and a second
		// listener of that name would replace it.
		fc.Filters = closedFilters(fmt.Sprintf("inbound-blackhole-%d", port))
	}
	return fc, nil
}

// closedFilters answer nothing: an HTTP connection manager without routes behind an
// RBAC filter that denies everything (a Dubbo or HTTP call gets a denial, anything else
// MOSN's protocol detection drops), under a name of its own.
func closedFilters(name string) []*listener.Filter {
	return []*listener.Filter{{
		Name: wellknown.HTTPConnectionManager,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: protoconv.MessageToAny(&hcm.HttpConnectionManager{
			StatPrefix: name,
			RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
				Name:         name,
				VirtualHosts: []*route.VirtualHost{{Name: name, Domains: []string{"*"}}},
			}},
			HttpFilters: []*hcm.HttpFilter{denyAllFilter()},
		})},
	}}
}

// isBlackHole: a chain whose tcp_proxy goes to upstream's BlackHoleCluster.
func isBlackHole(fc *listener.FilterChain) bool {
	for _, f := range fc.Filters {
		if f.Name != wellknown.TCPProxy {
			continue
		}
		t := &tcp.TcpProxy{}
		if f.GetTypedConfig().UnmarshalTo(t) == nil && t.GetCluster() == util.BlackHoleCluster {
			return true
		}
	}
	return false
}

// networkExtAuthz is Envoy's network ext_authz filter (CUSTOM authorization on TCP ports).
const networkExtAuthz = "envoy.filters.network.ext_authz"

// networkRBACEnforces: a network RBAC filter with enforced rules (shadow-only ones
// change nothing).
func networkRBACEnforces(f *listener.Filter) bool {
	r := &rbacnet.RBAC{}
	if err := f.GetTypedConfig().UnmarshalTo(r); err != nil {
		return true
	}
	return r.GetRules() != nil
}

// translateHTTPRBAC rewrites an RBAC filter of a non-Dubbo HTTP chain (as on a Triple
// port, without Dubbo's header aliases).
func (g *Generator) translateHTTPRBAC(hf *hcm.HttpFilter, proxy *model.Proxy, port uint32) *hcm.HttpFilter {
	r := &rbachttp.RBAC{}
	if err := hf.GetTypedConfig().UnmarshalTo(r); err != nil {
		return denyAllFilter()
	}
	t := rbacTranslator{port: port, kind: httpPortKind}
	out := &rbachttp.RBAC{}
	if r.ShadowRulesStatPrefix == authzmodel.RBACExtAuthzShadowRulesStatPrefix {
		// CUSTOM: the shadow rules mark the requests ext_authz must decide; MOSN has no
		// ext_authz (it drops the filter), so they are denied. Its rules are dry-run
		// CUSTOM policies: left out.
		governed := r.GetShadowRules()
		if governed == nil || len(governed.Policies) == 0 {
			return &hcm.HttpFilter{Name: hf.Name, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: protoconv.MessageToAny(out)}}
		}
		deny := &rbacpb.RBAC{Action: rbacpb.RBAC_DENY, Policies: governed.Policies}
		var problems []string
		for name := range governed.Policies {
			problems = append(problems, fmt.Sprintf("port %d: policy %s: CUSTOM (ext_authz) is not available in MOSN: the calls it governs are denied", port, policyName(name)))
		}
		sort.Strings(problems)
		out.Rules = t.rules(deny, true)
		g.reportFailedClosed(proxy, append(problems, t.problems...))
		return &hcm.HttpFilter{Name: hf.Name, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: protoconv.MessageToAny(out)}}
	}
	if r.Rules != nil {
		out.Rules = t.rules(r.Rules, true)
	}
	if r.ShadowRules != nil {
		shadow := rbacTranslator{port: port, kind: httpPortKind}
		out.ShadowRules = shadow.rules(r.ShadowRules, false)
	}
	g.reportFailedClosed(proxy, t.problems)
	return &hcm.HttpFilter{Name: hf.Name, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: protoconv.MessageToAny(out)}}
}
