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
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pilot/pkg/model"
	istioroute "istio.io/istio/pilot/pkg/networking/core/route"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/labels"
	"istio.io/istio/pkg/config/protocol"
)

// Dubbo request attributes MOSN exposes as headers (docs/reference/mosn-xds-facts.md); every other
// header name in a VirtualService match is a Dubbo attachment.
const (
	headerService = "service"
	headerMethod  = "method"
	headerVersion = "version"
	headerGroup   = "group"
)

// Triple (gRPC over HTTP/2) carries the version and group of the called service in these
// headers (Dubbo's TripleHeaderEnum); the method is the last path segment of
// /<interface>/<method>, and attachments travel as headers of their own name.
const (
	tripleHeaderVersion = "tri-service-version"
	tripleHeaderGroup   = "tri-service-group"
)

// buildRouteConfiguration builds the one outbound Dubbo route configuration: a single
// virtual host "*" (nothing sets MOSN's x-mosn-host for Dubbo), with header-only rules
// (prefix "" makes MOSN build RPC rules, where "method" is the Dubbo method). Every rule
// is guarded by the exact interface, so one service's rules never shadow another's.
//
// Services with a Triple port also get HTTP rules (a path condition makes MOSN build
// them) for the Triple calls MOSN's Auto codec detects on the same listener, guarded by
// the path /<interface>/. The two kinds cannot shadow each other, whatever their order:
// an HTTP rule matches MOSN's x-mosn-path, which only a dubbo_stream filter sets for Dubbo (to "/"; none is emitted), and every
// RPC rule requires a "service" header equal to the interface, which Triple requests do
// not carry (the interface is in the path). They are interleaved, each VirtualService
// rule's Dubbo rules followed by its Triple rules, so both follow the VirtualService order.
//
// labelKeys are the label keys the VirtualServices it translated match on (sourceLabels:
// the configuration then depends on those labels of the proxy, not only on its scope).
func (g *Generator) buildRouteConfiguration(proxy *model.Proxy, push *model.PushContext, k knobs) (rc *route.RouteConfiguration, labelKeys []string) {
	vh := &route.VirtualHost{Name: "dubbo", Domains: []string{"*"}}
	keys := map[string]bool{}
	indexes := map[*model.IstioEgressListenerWrapper]*vsIndex{}
	for _, ds := range g.dubboServices(proxy) {
		ilw := proxy.SidecarScope.GetEgressListenerForRDS(ds.port.Port, "")
		if ilw == nil {
			vh.Routes = append(vh.Routes, defaultRoutes(ds)...)
			continue
		}
		idx := indexes[ilw]
		if idx == nil {
			idx = newVSIndex(ilw.VirtualServices())
			indexes[ilw] = idx
		}
		vs := idx.lookup(ds.svc.Hostname)
		if vs == nil {
			vh.Routes = append(vh.Routes, defaultRoutes(ds)...)
			continue
		}
		if spec, ok := vs.Spec.(*networking.VirtualService); ok {
			sourceLabelKeys(spec, keys)
		}
		vh.Routes = append(vh.Routes, g.translate(proxy, ds, vs)...)
	}
	return &route.RouteConfiguration{
		Name:             RouteName(k.outbound),
		VirtualHosts:     []*route.VirtualHost{vh},
		ValidateClusters: wrapperspb.Bool(false),
	}, slices.Sorted(maps.Keys(keys))
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

// triplePrefix is the path prefix of every Triple call to the interface.
func triplePrefix(iface string) string { return "/" + iface + "/" }

// tripleName names the Triple rule translated from the same VirtualService rule as a
// Dubbo rule of that name.
func tripleName(name string) string { return "tri:" + name }

// defaultRoutes: the interface to all its providers, for Dubbo and, with a Triple port,
// for Triple.
func defaultRoutes(ds dubboService) []*route.Route {
	toAll := func(port int) *route.Route_Route {
		return &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{
				Cluster: model.BuildSubsetKey(model.TrafficDirectionOutbound, "", ds.svc.Hostname, port),
			},
		}}
	}
	name := "default:" + string(ds.svc.Hostname)
	out := []*route.Route{{Name: name, Match: rpcMatch([]*route.HeaderMatcher{serviceMatcher(ds.iface)}), Action: toAll(ds.port.Port)}}
	if ds.triple != nil {
		out = append(out, &route.Route{
			Name:   tripleName(name),
			Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: triplePrefix(ds.iface)}},
			Action: toAll(ds.triple.Port),
		})
	}
	return out
}

// translate turns a VirtualService's HTTP routes into MOSN rules for one service, in
// order: per HTTP route and match, the Dubbo rule, then (for a service with a Triple
// port) the Triple rule. A match MOSN cannot express is dropped (so calls fall through
// to later rules), never widened into something broader.
func (g *Generator) translate(proxy *model.Proxy, ds dubboService, vs *config.Config) []*route.Route {
	spec := vs.Spec.(*networking.VirtualService)
	ref := fmt.Sprintf("VirtualService %s/%s (host %s)", vs.Namespace, vs.Name, ds.svc.Hostname)
	var out []*route.Route
	for i, hr := range spec.Http {
		action, ok := g.routeAction(proxy, ds, ds.port, hr, ref)
		var triAction *route.Route_Route
		triOK := false
		if ds.triple != nil {
			triAction, triOK = g.routeAction(proxy, ds, ds.triple, hr, ref)
		}
		if !ok && !triOK {
			continue
		}
		name := hr.Name
		if name == "" {
			name = fmt.Sprintf("%s.%s.%d", vs.Namespace, vs.Name, i)
		}
		if len(hr.Match) == 0 {
			if ok {
				out = append(out, &route.Route{Name: name, Match: rpcMatch([]*route.HeaderMatcher{serviceMatcher(ds.iface)}), Action: action})
			}
			if triOK {
				out = append(out, &route.Route{Name: tripleName(name),
					Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: triplePrefix(ds.iface)}}, Action: triAction})
			}
			continue
		}
		var triMatches []*route.RouteMatch // two matches of one rule may give the same Triple match
		for _, m := range hr.Match {
			if !g.applies(proxy, m) {
				continue
			}
			if ok {
				if headers, ok := g.translateMatch(ds, m, ref); ok {
					out = append(out, &route.Route{Name: name, Match: rpcMatch(headers), Action: action})
				}
			}
			if triOK {
				tm, ok := g.tripleMatch(ds, m, ref)
				if ok && !slices.ContainsFunc(triMatches, func(o *route.RouteMatch) bool { return proto.Equal(o, tm) }) {
					triMatches = append(triMatches, tm)
					out = append(out, &route.Route{Name: tripleName(name), Match: tm, Action: triAction})
				}
			}
		}
	}
	return out
}

// applies evaluates the conditions upstream evaluates at generation time, against the
// proxy: sourceLabels, sourceNamespace, gateways.
func (g *Generator) applies(proxy *model.Proxy, m *networking.HTTPMatchRequest) bool {
	if len(m.SourceLabels) > 0 && !labels.Instance(m.SourceLabels).SubsetOf(proxy.Labels) {
		return false
	}
	if m.SourceNamespace != "" && m.SourceNamespace != proxy.ConfigNamespace {
		return false
	}
	if len(m.Gateways) > 0 && !slices.Contains(m.Gateways, constants.IstioMeshGateway) {
		return false
	}
	return true
}

// matchHeaders collects a match's conditions on Dubbo request attributes by name: the
// method and the headers (version, group, attachments), less a service condition on the
// interface itself (implied by every rule). ok=false: conflicting or impossible
// conditions (logged).
func (g *Generator) matchHeaders(ds dubboService, m *networking.HTTPMatchRequest, ref string) (map[string]*networking.StringMatch, bool) {
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
	return byName, true
}

// headerMatchers turns conditions into MOSN header matchers, sorted by (renamed) name.
func (g *Generator) headerMatchers(byName map[string]*networking.StringMatch, rename func(string) string, ref string) ([]*route.HeaderMatcher, bool) {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return rename(names[i]) < rename(names[j]) })
	out := make([]*route.HeaderMatcher, 0, len(names))
	for i, n := range names {
		if i > 0 && rename(names[i-1]) == rename(n) && byName[names[i-1]].String() != byName[n].String() {
			g.logOnce("%s: two different conditions on %q; that match is dropped", ref, rename(n))
			return nil, false
		}
		if i > 0 && rename(names[i-1]) == rename(n) {
			continue
		}
		hm, err := headerMatcher(rename(n), byName[n])
		if err != nil {
			g.logOnce("%s: %v; that match is dropped", ref, err)
			return nil, false
		}
		out = append(out, hm)
	}
	return out, true
}

// translateMatch maps one HTTPMatchRequest (that applies to the proxy) to the headers of
// a Dubbo RPC rule. ok=false: the match is for another port, or MOSN cannot express it
// for Dubbo calls (logged).
func (g *Generator) translateMatch(ds dubboService, m *networking.HTTPMatchRequest, ref string) ([]*route.HeaderMatcher, bool) {
	if m.Port != 0 && int(m.Port) != ds.port.Port {
		return nil, false
	}
	// What a Dubbo call does not carry, or MOSN's RPC rules cannot test.
	switch {
	case m.Uri != nil && ds.triple != nil && m.Scheme == nil && m.Authority == nil && len(m.QueryParams) == 0:
		return nil, false // a Triple path: tripleMatch translates it
	case m.Uri != nil, m.Scheme != nil, m.Authority != nil, len(m.QueryParams) > 0:
		g.logOnce("%s: a match on uri/scheme/authority/queryParams cannot apply to Dubbo calls; that match is dropped", ref)
		return nil, false
	case len(m.WithoutHeaders) > 0:
		g.logOnce("%s: withoutHeaders cannot be expressed for MOSN (no inverted matchers); that match is dropped", ref)
		return nil, false
	}
	byName, ok := g.matchHeaders(ds, m, ref)
	if !ok {
		return nil, false
	}
	hms, ok := g.headerMatchers(byName, func(n string) string { return n }, ref)
	if !ok {
		return nil, false
	}
	return append([]*route.HeaderMatcher{serviceMatcher(ds.iface)}, hms...), true
}

// tripleHeader is the Triple header of a Dubbo request attribute: version and group
// travel in tri-service-version and tri-service-group; attachments keep their names.
func tripleHeader(name string) string {
	switch name {
	case headerVersion:
		return tripleHeaderVersion
	case headerGroup:
		return tripleHeaderGroup
	}
	return name
}

// tripleMatch maps one HTTPMatchRequest (that applies to the proxy) to the match of a
// Triple HTTP rule: the method (or a uri, as written for Envoy) becomes the path under
// /<interface>/, version and group their Triple headers, attachments headers of their
// own name. Every path stays under /<interface>/: the virtual host is shared by every
// service. ok=false: the match is for another port, or cannot be expressed (logged).
func (g *Generator) tripleMatch(ds dubboService, m *networking.HTTPMatchRequest, ref string) (*route.RouteMatch, bool) {
	if m.Port != 0 && int(m.Port) != ds.triple.Port {
		return nil, false
	}
	switch {
	case m.Scheme != nil, m.Authority != nil, len(m.QueryParams) > 0:
		g.logOnce("%s: a match on scheme/authority/queryParams is not applied to Triple calls on MOSN; that match is dropped", ref)
		return nil, false
	case len(m.WithoutHeaders) > 0:
		g.logOnce("%s: withoutHeaders cannot be expressed for MOSN (no inverted matchers); that match is dropped", ref)
		return nil, false
	}
	byName, ok := g.matchHeaders(ds, m, ref)
	if !ok {
		return nil, false
	}
	prefix := triplePrefix(ds.iface)
	out := &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: prefix}}
	if sm := byName[headerMethod]; sm != nil {
		delete(byName, headerMethod)
		p, ok := g.methodPath(ds, sm, ref)
		if !ok {
			return nil, false
		}
		out.PathSpecifier = p.PathSpecifier
	}
	if m.Uri != nil {
		p, ok := g.uriPath(ds, m.Uri, ref)
		if !ok {
			return nil, false
		}
		if m.Method != nil || m.Headers[headerMethod] != nil {
			if !proto.Equal(p, out) {
				g.logOnce("%s: a match on both uri and method is dropped for Triple calls (write one of them)", ref)
				return nil, false
			}
		}
		out.PathSpecifier = p.PathSpecifier
	}
	if out.Headers, ok = g.headerMatchers(byName, tripleHeader, ref); !ok {
		return nil, false
	}
	return out, true
}

// methodPath: a Dubbo method condition as a path condition on /<interface>/<method>.
func (g *Generator) methodPath(ds dubboService, sm *networking.StringMatch, ref string) (*route.RouteMatch, bool) {
	q := "^" + regexp.QuoteMeta(triplePrefix(ds.iface))
	switch m := sm.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: triplePrefix(ds.iface) + m.Exact}}, true
	case *networking.StringMatch_Prefix:
		return &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: q + regexp.QuoteMeta(m.Prefix) + "[^/]*$"}}}, true
	case *networking.StringMatch_Regex:
		if err := checkRegex(m.Regex); err != nil {
			g.logOnce("%s: regex %q on the method: %v; that match is dropped", ref, m.Regex, err)
			return nil, false
		}
		// The method regex matches the whole method (RE2 full match, as the Dubbo rule
		// anchors it): a leading ^ or trailing $ the user wrote would otherwise sit in the
		// middle of the path regex and never match.
		re := strings.TrimPrefix(m.Regex, "^")
		if strings.HasSuffix(re, "$") && !strings.HasSuffix(re, `\$`) {
			re = strings.TrimSuffix(re, "$")
		}
		return &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: q + "(?:" + re + ")$"}}}, true
	}
	g.logOnce("%s: an empty (presence) match on the method cannot be expressed for MOSN; that match is dropped", ref)
	return nil, false
}

// uriPath: a uri condition, confined to /<interface>/ (MOSN's one virtual host serves
// every service, so a path outside it would catch other services' calls).
func (g *Generator) uriPath(ds dubboService, sm *networking.StringMatch, ref string) (*route.RouteMatch, bool) {
	prefix := triplePrefix(ds.iface)
	switch m := sm.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		if strings.HasPrefix(m.Exact, prefix) {
			return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: m.Exact}}, true
		}
	case *networking.StringMatch_Prefix:
		switch {
		case strings.HasPrefix(m.Prefix, prefix):
			return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: m.Prefix}}, true
		case strings.HasPrefix(prefix, m.Prefix):
			return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: prefix}}, true // all of this service's calls
		}
	case *networking.StringMatch_Regex:
		g.logOnce("%s: a uri regex cannot be confined to the interface's path /%s/ for MOSN; use a method regex; that match is dropped", ref, ds.iface)
		return nil, false
	default:
		g.logOnce("%s: an empty (presence) uri match cannot be expressed for MOSN; that match is dropped", ref)
		return nil, false
	}
	g.logOnce("%s: a uri outside %s can never match a Triple call to %s; that match is dropped", ref, prefix, ds.iface)
	return nil, false
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
		if err := checkRegex(m.Regex); err != nil {
			return nil, fmt.Errorf("regex %q on %q: %v", m.Regex, name, err)
		}
		return safeRegex(name, "^(?:"+m.Regex+")$"), nil
	default:
		return nil, fmt.Errorf("an empty (presence) match on %q cannot be expressed for MOSN", name)
	}
}

// routeAction maps destinations, timeout, retries and mirror. ok=false when the route
// has no destination MOSN can use (redirect, direct response, delegate).
//
// port is the service port the rule serves (the Dubbo port, or the Triple port): a
// destination without a port, or with a port of the other protocol of the same service,
// goes to the destination service's port of that protocol.
func (g *Generator) routeAction(proxy *model.Proxy, ds dubboService, port *model.Port, hr *networking.HTTPRoute, ref string) (*route.Route_Route, bool) {
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
		cl, ok := g.clusterFor(proxy, ds, port, d.Destination)
		if !ok {
			g.logOnce("%s: destination %s has no Triple (grpc-tri) port; the Triple rule is skipped", ref, d.Destination.Host)
			return nil, false
		}
		weighted = append(weighted, &route.WeightedCluster_ClusterWeight{
			Name:   cl,
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
		if cl, ok := g.clusterFor(proxy, ds, port, mirror); ok {
			a.RequestMirrorPolicies = []*route.RouteAction_RequestMirrorPolicy{{Cluster: cl, RuntimeFraction: fraction}}
		} else {
			g.logOnce("%s: mirror %s has no Triple (grpc-tri) port; Triple calls are not mirrored", ref, mirror.Host)
		}
	}
	return &route.Route_Route{Route: a}, true
}

// clusterFor names the cluster of a destination as upstream does (outbound|port|subset|host),
// for a rule serving the given port of ds: Dubbo rules go to Dubbo ports and Triple rules
// to Triple ports, whichever port of the service the destination names. false: a Triple
// rule whose destination service has no Triple port (no HTTP/2 call may reach a Dubbo
// port, or a cluster that does not exist).
func (g *Generator) clusterFor(proxy *model.Proxy, ds dubboService, port *model.Port, d *networking.Destination) (string, bool) {
	svc := proxy.SidecarScope.GetService(host.Name(d.Host))
	if svc == nil && host.Name(d.Host) == ds.svc.Hostname {
		svc = ds.svc
	}
	if svc != nil && isTriplePort(port) && triplePort(svc) == nil {
		return "", false
	}
	if svc != nil {
		if p := sameProtocolPort(svc, port, d.GetPort().GetNumber()); p != nil {
			d = &networking.Destination{Host: d.Host, Subset: d.Subset, Port: &networking.PortSelector{Number: uint32(p.Port)}}
		}
	}
	return istioroute.GetDestinationCluster(d, svc, port.Port), true
}

// sameProtocolPort: the port of svc a rule serving port goes to when its destination
// names the port number (0: none), if upstream's choice would be wrong; nil keeps
// upstream's choice. A Triple rule goes to the Triple port unless the destination names
// another port that is not Dubbo; a Dubbo rule whose destination names the Triple port
// goes to the first Dubbo port. Anything else is upstream's choice, as Envoy gets it.
func sameProtocolPort(svc *model.Service, port *model.Port, number uint32) *model.Port {
	triple := isTriplePort(port)
	if number != 0 {
		p, found := svc.Ports.GetByPort(int(number))
		if !found || (triple && p.Protocol != protocol.Dubbo) || (!triple && !isTriplePort(p)) {
			return nil
		}
	} else if !triple {
		return nil
	}
	if triple {
		return triplePort(svc)
	}
	for _, p := range svc.Ports {
		if p.Protocol == protocol.Dubbo {
			return p
		}
	}
	return nil
}

// regexChecks remembers whether a VirtualService regex compiles: the rules are rebuilt
// per proxy and push (a Dubbo and a Triple rule from each match), the regexes change only
// with the config. Bounded: forgotten wholesale past maxRegexChecks entries.
var (
	regexMu     sync.Mutex
	regexChecks = map[string]error{}
)

const maxRegexChecks = 4096

func checkRegex(re string) error {
	regexMu.Lock()
	defer regexMu.Unlock()
	if err, ok := regexChecks[re]; ok {
		return err
	}
	_, err := regexp.Compile(re)
	if len(regexChecks) >= maxRegexChecks {
		clear(regexChecks)
	}
	regexChecks[re] = err
	return err
}
