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
	"regexp"
	"slices"
	"sort"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pilot/pkg/model"
	istioroute "istio.io/istio/pilot/pkg/networking/core/route"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/labels"
)

// Dubbo request attributes MOSN exposes as headers (docs/reference/mosn-xds-facts.md); every other
// header name in a VirtualService match is a Dubbo attachment.
const (
	headerService = "service"
	headerMethod  = "method"
)

// buildRouteConfiguration builds the one outbound Dubbo route configuration: a single
// virtual host "*" (nothing sets MOSN's x-mosn-host for Dubbo), with header-only rules
// (prefix "" makes MOSN build RPC rules, where "method" is the Dubbo method). Every rule
// is guarded by the exact interface, so one service's rules never shadow another's.
func (g *Generator) buildRouteConfiguration(proxy *model.Proxy, push *model.PushContext, k knobs) *route.RouteConfiguration {
	vh := &route.VirtualHost{Name: "dubbo", Domains: []string{"*"}}
	indexes := map[*model.IstioEgressListenerWrapper]*vsIndex{}
	for _, ds := range g.dubboServices(proxy) {
		ilw := proxy.SidecarScope.GetEgressListenerForRDS(ds.port.Port, "")
		if ilw == nil {
			vh.Routes = append(vh.Routes, defaultRoute(ds))
			continue
		}
		idx := indexes[ilw]
		if idx == nil {
			idx = newVSIndex(ilw.VirtualServices())
			indexes[ilw] = idx
		}
		vs := idx.lookup(ds.svc.Hostname)
		if vs == nil {
			vh.Routes = append(vh.Routes, defaultRoute(ds))
			continue
		}
		vh.Routes = append(vh.Routes, g.translate(proxy, ds, vs)...)
	}
	return &route.RouteConfiguration{
		Name:             RouteName(k.outbound),
		VirtualHosts:     []*route.VirtualHost{vh},
		ValidateClusters: wrapperspb.Bool(false),
	}
}

// vsIndex finds the VirtualService a sidecar sees for a host, as sidecars do: an exact
// host before the most specific wildcard. Built once per egress listener and
// generation, so a lookup costs a map access, not a scan of every VirtualService.
type vsIndex struct {
	exact     map[host.Name]*config.Config
	wildcards []wildcardVS // longest host first
}

type wildcardVS struct {
	host host.Name
	vs   *config.Config
}

func newVSIndex(vss []*config.Config) *vsIndex {
	idx := &vsIndex{exact: map[host.Name]*config.Config{}}
	for _, vs := range vss {
		spec, ok := vs.Spec.(*networking.VirtualService)
		if !ok || len(spec.Http) == 0 {
			continue
		}
		for _, h := range spec.Hosts {
			hn := host.Name(h)
			if hn.IsWildCarded() {
				idx.wildcards = append(idx.wildcards, wildcardVS{hn, vs})
			} else if _, taken := idx.exact[hn]; !taken {
				idx.exact[hn] = vs // the first, in the egress listener's order
			}
		}
	}
	sort.SliceStable(idx.wildcards, func(i, j int) bool { return len(idx.wildcards[i].host) > len(idx.wildcards[j].host) })
	return idx
}

func (idx *vsIndex) lookup(h host.Name) *config.Config {
	if vs := idx.exact[h]; vs != nil {
		return vs
	}
	for _, w := range idx.wildcards {
		if h.SubsetOf(w.host) {
			return w.vs
		}
	}
	return nil
}

func serviceMatcher(iface string) *route.HeaderMatcher {
	return exact(headerService, iface)
}

func exact(name, v string) *route.HeaderMatcher {
	return &route.HeaderMatcher{Name: name, HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: v}}
}

func safeRegex(name, re string) *route.HeaderMatcher {
	return &route.HeaderMatcher{Name: name, HeaderMatchSpecifier: &route.HeaderMatcher_SafeRegexMatch{
		SafeRegexMatch: &matcher.RegexMatcher{Regex: re},
	}}
}

func rpcMatch(headers []*route.HeaderMatcher) *route.RouteMatch {
	return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: ""}, Headers: headers}
}

func defaultRoute(ds dubboService) *route.Route {
	return &route.Route{
		Name:  "default:" + string(ds.svc.Hostname),
		Match: rpcMatch([]*route.HeaderMatcher{serviceMatcher(ds.iface)}),
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{
				Cluster: model.BuildSubsetKey(model.TrafficDirectionOutbound, "", ds.svc.Hostname, ds.port.Port),
			},
		}},
	}
}

// translate turns a VirtualService's HTTP routes into MOSN rules for one service, in
// order. A match MOSN cannot express is dropped (so calls fall through to later rules),
// never widened into something broader.
func (g *Generator) translate(proxy *model.Proxy, ds dubboService, vs *config.Config) []*route.Route {
	spec := vs.Spec.(*networking.VirtualService)
	ref := fmt.Sprintf("VirtualService %s/%s (host %s)", vs.Namespace, vs.Name, ds.svc.Hostname)
	var out []*route.Route
	for i, hr := range spec.Http {
		action, ok := g.routeAction(proxy, ds, hr, ref)
		if !ok {
			continue
		}
		name := hr.Name
		if name == "" {
			name = fmt.Sprintf("%s.%s.%d", vs.Namespace, vs.Name, i)
		}
		if len(hr.Match) == 0 {
			out = append(out, &route.Route{Name: name, Match: rpcMatch([]*route.HeaderMatcher{serviceMatcher(ds.iface)}), Action: action})
			continue
		}
		for _, m := range hr.Match {
			headers, ok := g.translateMatch(proxy, ds, m, ref)
			if !ok {
				continue
			}
			out = append(out, &route.Route{Name: name, Match: rpcMatch(headers), Action: action})
		}
	}
	return out
}

// translateMatch maps one HTTPMatchRequest. ok=false: the match does not apply to this
// proxy (sourceLabels, sourceNamespace, gateways, port, as upstream evaluates them) or
// MOSN cannot express it (logged).
func (g *Generator) translateMatch(proxy *model.Proxy, ds dubboService, m *networking.HTTPMatchRequest, ref string) ([]*route.HeaderMatcher, bool) {
	// Conditions upstream evaluates at generation time, against the proxy.
	if len(m.SourceLabels) > 0 && !labels.Instance(m.SourceLabels).SubsetOf(proxy.Labels) {
		return nil, false
	}
	if m.SourceNamespace != "" && m.SourceNamespace != proxy.ConfigNamespace {
		return nil, false
	}
	if len(m.Gateways) > 0 && !slices.Contains(m.Gateways, constants.IstioMeshGateway) {
		return nil, false
	}
	if m.Port != 0 && int(m.Port) != ds.port.Port {
		return nil, false
	}
	// What a Dubbo call does not carry, or MOSN's RPC rules cannot test.
	switch {
	case m.Uri != nil, m.Scheme != nil, m.Authority != nil, len(m.QueryParams) > 0:
		g.logOnce("%s: a match on uri/scheme/authority/queryParams cannot apply to Dubbo calls; that match is dropped", ref)
		return nil, false
	case len(m.WithoutHeaders) > 0:
		g.logOnce("%s: withoutHeaders cannot be expressed for MOSN (no inverted matchers); that match is dropped", ref)
		return nil, false
	}
	byName := map[string]*networking.StringMatch{}
	if m.Method != nil {
		byName[headerMethod] = m.Method
	}
	for name, sm := range m.Headers {
		if prev, dup := byName[name]; dup && prev.String() != sm.String() {
			g.logOnce("%s: two different conditions on %q; that match is dropped", ref, name)
			return nil, false
		}
		byName[name] = sm
	}
	if sm, ok := byName[headerService]; ok {
		if e, isExact := sm.GetMatchType().(*networking.StringMatch_Exact); !isExact || e.Exact != ds.iface {
			g.logOnce("%s: a service header other than the host's own interface %q can never match; that match is dropped", ref, ds.iface)
			return nil, false
		}
		delete(byName, headerService)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	headers := []*route.HeaderMatcher{serviceMatcher(ds.iface)}
	for _, n := range names {
		hm, err := headerMatcher(n, byName[n])
		if err != nil {
			g.logOnce("%s: %v; that match is dropped", ref, err)
			return nil, false
		}
		headers = append(headers, hm)
	}
	return headers, true
}

// headerMatcher uses only exact_match and safe_regex_match: MOSN reads every other
// specifier as "equals the empty string" (docs/reference/mosn-xds-facts.md).
func headerMatcher(name string, sm *networking.StringMatch) (*route.HeaderMatcher, error) {
	switch m := sm.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return exact(name, m.Exact), nil
	case *networking.StringMatch_Prefix:
		return safeRegex(name, "^"+regexp.QuoteMeta(m.Prefix)+".*$"), nil
	case *networking.StringMatch_Regex:
		if _, err := regexp.Compile(m.Regex); err != nil {
			return nil, fmt.Errorf("regex %q on %q: %v", m.Regex, name, err)
		}
		return safeRegex(name, "^(?:"+m.Regex+")$"), nil
	default:
		return nil, fmt.Errorf("an empty (presence) match on %q cannot be expressed for MOSN", name)
	}
}

// routeAction maps destinations, timeout, retries and mirror. ok=false when the route
// has no destination MOSN can use (redirect, direct response, delegate).
func (g *Generator) routeAction(proxy *model.Proxy, ds dubboService, hr *networking.HTTPRoute, ref string) (*route.Route_Route, bool) {
	switch {
	case hr.Delegate != nil:
		g.logOnce("%s: delegate VirtualServices are not supported for Dubbo; the route is skipped", ref)
		return nil, false
	case hr.Redirect != nil || hr.DirectResponse != nil:
		g.logOnce("%s: redirect/directResponse do not apply to Dubbo calls; the route is skipped", ref)
		return nil, false
	case len(hr.Route) == 0:
		return nil, false
	}
	if hr.Fault != nil || hr.Rewrite != nil || hr.CorsPolicy != nil || hr.Headers != nil {
		g.logOnce("%s: fault, rewrite, corsPolicy and headers are not applied to Dubbo calls", ref)
	}
	a := &route.RouteAction{}
	var weighted []*route.WeightedCluster_ClusterWeight
	for _, d := range hr.Route {
		if d.Destination == nil || (len(hr.Route) > 1 && d.Weight == 0) {
			continue
		}
		weighted = append(weighted, &route.WeightedCluster_ClusterWeight{
			Name:   g.clusterFor(proxy, ds, d.Destination),
			Weight: wrapperspb.UInt32(uint32(d.Weight)),
		})
	}
	switch len(weighted) {
	case 0:
		return nil, false
	case 1:
		a.ClusterSpecifier = &route.RouteAction_Cluster{Cluster: weighted[0].Name}
	default:
		a.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: &route.WeightedCluster{Clusters: weighted}}
	}
	if hr.Timeout != nil {
		a.Timeout = durationpb.New(hr.Timeout.AsDuration())
	}
	if r := hr.Retries; r != nil && r.Attempts > 0 {
		retryOn := r.RetryOn
		if retryOn == "" {
			retryOn = "connect-failure,reset"
		}
		a.RetryPolicy = &route.RetryPolicy{RetryOn: retryOn, NumRetries: wrapperspb.UInt32(uint32(r.Attempts))}
		if r.PerTryTimeout != nil {
			a.RetryPolicy.PerTryTimeout = durationpb.New(r.PerTryTimeout.AsDuration())
		}
	}
	// The fraction is upstream's (MirrorPercent, MirrorPercentByPolicy): a percentage
	// goes out per MILLION, so 0.1% stays 0.1% in the xDS, and an explicit 0% means no
	// mirror. (MOSN's own converter divides per-million numerators by 10,000 into whole
	// percents, so MOSN itself mirrors floor(percent)%.)
	var mirror *networking.Destination
	var fraction *core.RuntimeFractionalPercent
	switch {
	case hr.Mirror != nil:
		mirror, fraction = hr.Mirror, istioroute.MirrorPercent(hr)
	case len(hr.Mirrors) > 0:
		mirror, fraction = hr.Mirrors[0].Destination, istioroute.MirrorPercentByPolicy(hr.Mirrors[0])
		if len(hr.Mirrors) > 1 {
			g.logOnce("%s: MOSN mirrors to one cluster; only the first of %d mirrors is used", ref, len(hr.Mirrors))
		}
	}
	if mirror != nil && fraction != nil {
		a.RequestMirrorPolicies = []*route.RouteAction_RequestMirrorPolicy{{
			Cluster:         g.clusterFor(proxy, ds, mirror),
			RuntimeFraction: fraction,
		}}
	}
	return &route.Route_Route{Route: a}, true
}

// clusterFor names the cluster of a destination as upstream does (outbound|port|subset|host).
func (g *Generator) clusterFor(proxy *model.Proxy, ds dubboService, d *networking.Destination) string {
	svc := proxy.SidecarScope.GetService(host.Name(d.Host))
	if svc == nil && host.Name(d.Host) == ds.svc.Hostname {
		svc = ds.svc
	}
	return istioroute.GetDestinationCluster(d, svc, ds.port.Port)
}
