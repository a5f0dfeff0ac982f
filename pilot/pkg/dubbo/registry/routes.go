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

package registry

import (
	"fmt"
	"hash/fnv"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/schema/gvk"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/governance"
)

// Condition and tag routes (docs/governance.md, "Routes"). For each interface whose
// providers a route rule concerns, the Java router chain is compiled against the
// providers (governance.Chain.Compile) into:
//   - one VirtualService for the interface's hostname, in a config store of ours that
//     istiod reads beside its own (MOSN and Envoy sidecars get it as any VirtualService);
//   - a generated service per provider selection the routes name,
//     <selection>-<hash>.<hostname>, whose endpoints are the selected providers'
//     (a provider coming or going is an endpoint update of these too).
// An explicit VirtualService for the hostname wins: ours is created as the newest, and
// Istio takes the oldest VirtualService of a host.

// routesCreated is the creation time of our VirtualServices: after any real one, so an
// operator's VirtualService for the same host wins everywhere Istio picks the oldest.
var routesCreated = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// VirtualServicePrefix names our VirtualServices: <prefix><hostname>.
const VirtualServicePrefix = "dubbo-governance-"

// SetRouteStore is where the VirtualServices of condition and tag routes go (a config
// store istiod reads; nil: route rules are read but not applied). Call it before Run.
func (c *Controller) SetRouteStore(s model.ConfigStore) { c.routeStore = s }

// SetVirtualServiceLister tells /debug/dubboz which VirtualServices exist for a host
// besides ours (an explicit one wins over route rules). Call it before Run.
func (c *Controller) SetVirtualServiceLister(f func(host.Name) []string) { c.userVS = f }

// routeState is what route rules made of an interface.
type routeState struct {
	vs *networking.VirtualService  // nil: none
	dr *networking.DestinationRule // the consumers' load balancer; nil: none
	// lbConflict: service keys of the interface ask for different load balancers (one
	// DestinationRule per host cannot say both; none is made).
	lbConflict bool
	derived    map[host.Name]*derivedService
	err        string   // why the interface's rules are left out
	rules      []string // the rule keys compiled
}

// derivedService is a generated service: the providers one route selects.
type derivedService struct {
	svc   *model.Service
	eps   []*model.IstioEndpoint
	steps string // the router decisions that select them
}

// routeRules reports whether any route rule, or a provider's own tag, concerns the
// interface's providers (nodes: the published providers).
func (c *Controller) routeRules(nodes []published, specs map[*node]*endpointSpec) bool {
	g := &c.gov
	if c.routeStore == nil {
		return false
	}
	for _, pn := range nodes {
		n := pn.n
		p := nodeParams(n, specs)
		app := p["application"]
		if g.tags[app] != nil || g.appCond[app] != nil || p[governance.TagKey] != "" {
			return true
		}
		sk := n.url.Interface() + ":" + p["version"] + ":" + p["group"]
		if g.svcCond[sk] != nil {
			return true
		}
		if r := g.svc[sk]; r != nil {
			if cs, _ := r.Consumer(); !cs.Empty() {
				return true
			}
		}
	}
	return false
}

func nodeParams(n *node, specs map[*node]*endpointSpec) map[string]string {
	if sp, ok := specs[n]; ok && sp.params != nil {
		return sp.params
	}
	return n.url.Params
}

// mayRoute is the cheap test before routes are computed at every publish: a route rule
// exists, a service rule of the interface, or one of its providers is tagged.
func (c *Controller) mayRoute(st *ifaceState) bool {
	g := &c.gov
	if c.routeStore == nil {
		return false
	}
	if len(g.tags) > 0 || len(g.appCond) > 0 || len(g.svcCond) > 0 || g.svcIfaces[st.iface] > 0 {
		return true
	}
	for _, ep := range st.eps {
		if ep.Labels[governance.TagKey] != "" {
			return true
		}
	}
	return false
}

// published is a provider instance routes choose among: its node and endpoint.
type published struct {
	n    *node
	ep   *model.IstioEndpoint
	zero bool // weight 0: picked only when every provider of its selection is at 0
}

// routedNodes are the enabled provider instances of an interface, weight 0 included:
// Java routes first and balances after, so a weight-0 provider is routed to (and picked
// only if its whole selection is at 0).
func (c *Controller) routedNodes(st *ifaceState, specs map[*node]*endpointSpec) []published {
	winners := mergeWinners(c.sourceStates(st), specs)
	out := make([]published, 0, len(winners))
	for _, w := range winners {
		if w.n.url != nil {
			out = append(out, published{n: w.n, ep: w.spec.ep, zero: w.spec.zero})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ep.WorkloadName < out[j].ep.WorkloadName })
	return out
}

// updateRoutes recomputes an interface's routes after its endpoints or rules changed
// (st.svc nil: the interface is gone, and so are its routes).
func (c *Controller) updateRoutes(st *ifaceState, specs map[*node]*endpointSpec) {
	var next *routeState
	prev := st.routes
	if st.svc != nil && c.mayRoute(st) {
		nodes := c.routedNodes(st, specs)
		if c.routeRules(nodes, specs) {
			next = c.compileRoutes(st, nodes, specs)
			if next.vs == nil && prev != nil && prev.vs != nil {
				// The rules cannot be compiled any more (e.g. too many classes of calls): the
				// last routes stay, never widened to every provider.
				kept := *prev
				kept.err = next.err
				next = &kept
			}
		}
	}
	if err := c.applyRoutes(st, prev, next); err != nil {
		// Nothing of the new routes is in effect: keep the previous state, try again at the
		// next change.
		routeErrorsTotal.Increment()
		scope.Errorf("interface %s: routes from governance rules not updated: %v", st.iface, err)
		if prev != nil {
			kept := *prev
			kept.err = err.Error()
			next = &kept
		} else {
			next = &routeState{err: err.Error()}
		}
	}
	st.routes = next
}

// compileRoutes runs the chain of each service key (version, group) the providers have,
// per protocol: a Dubbo consumer routes among dubbo:// providers, a Triple one among
// tri:// providers, so each port's routes come from its own providers.
func (c *Controller) compileRoutes(st *ifaceState, nodes []published, specs map[*node]*endpointSpec) *routeState {
	g := &c.gov
	type keyed struct {
		version, group string
		triple         bool
		ps             []governance.Provider
		nodes          []published
		apps           []string
	}
	byKey := map[string]*keyed{}
	keyOf := map[string]string{} // chain key -> its service key (version:group)
	for _, pn := range nodes {
		n := pn.n
		p := nodeParams(n, specs)
		sk := p["version"] + ":" + p["group"]
		triple := pn.ep.ServicePortName == TriplePortName
		k := sk
		if triple {
			k = "tri/" + sk
		}
		kd := byKey[k]
		if kd == nil {
			kd = &keyed{version: p["version"], group: p["group"], triple: triple}
			byKey[k] = kd
			keyOf[k] = sk
		}
		kd.ps = append(kd.ps, governance.Provider{Interface: n.url.Interface(), Protocol: n.url.Protocol,
			IP: n.url.IP, Port: int(n.url.Port), Params: p})
		kd.nodes = append(kd.nodes, pn)
		if app := p["application"]; app != "" && !slices.Contains(kd.apps, app) {
			kd.apps = append(kd.apps, app)
		}
	}
	keys := slices.Sorted(maps.Keys(byKey))
	// Service keys naming more (version and group, then one of them) first: their routes
	// are guarded by what they name, and the key naming neither (any call) comes last.
	set := func(k string) int {
		v, g, _ := strings.Cut(keyOf[k], ":")
		n := 0
		if v != "" {
			n++
		}
		if g != "" {
			n++
		}
		return n
	}
	sort.SliceStable(keys, func(i, j int) bool { return set(keys[i]) > set(keys[j]) })
	rs := &routeState{derived: map[host.Name]*derivedService{}}
	vs := &networking.VirtualService{Hosts: []string{string(st.hostname)}}
	serviceKeys := map[string]bool{}
	for _, sk := range keyOf {
		serviceKeys[sk] = true
	}
	multi := len(serviceKeys) > 1
	rules := map[string]bool{}
	lb := ""
	for _, k := range keys {
		kd := byKey[k]
		// Java takes the application of the first provider for the tag rule; the
		// provider-application condition rule likewise.
		app := ""
		if len(kd.apps) > 0 {
			sort.Strings(kd.apps)
			app = kd.apps[0]
		}
		svcKey := st.iface + ":" + kd.version + ":" + kd.group
		sk := keyOf[k]
		ch := &governance.Chain{Tag: g.tags[app]}
		if r := g.svcCond[svcKey]; r != nil {
			ch.Conditions, ch.Names = append(ch.Conditions, r), append(ch.Names, "service")
			rules[svcKey+"."+string(governance.KindConditionRoute)] = true
		}
		if r := g.appCond[app]; r != nil && app != "" {
			ch.Conditions, ch.Names = append(ch.Conditions, r), append(ch.Names, "app")
			rules[app+"."+string(governance.KindConditionRoute)] = true
		}
		if ch.Tag != nil {
			rules[app+"."+string(governance.KindTagRoute)] = true
		}
		chained := ch.Tag != nil || len(ch.Conditions) > 0
		for _, p := range kd.ps {
			if p.Params[governance.TagKey] != "" {
				chained = true
			}
		}
		var specs []governance.RouteSpec
		if chained {
			var err error
			if specs, err = ch.Compile(kd.ps); err != nil {
				rs.err = fmt.Sprintf("service key %s: %v", svcKey, err)
				scope.Warnf("interface %s: route rules left out: %s", st.iface, rs.err)
				return &routeState{err: rs.err}
			}
		} else {
			// Only consumer settings: every call to every provider of the key.
			all := make([]int, len(kd.ps))
			for i := range all {
				all[i] = i
			}
			specs = []governance.RouteSpec{{Dests: []governance.Dest{{Providers: all, Weight: 1}}}}
		}
		var cs governance.ConsumerSettings
		if r := g.svc[svcKey]; r != nil {
			cs, _ = r.Consumer()
			if !cs.Empty() {
				rules[svcKey+"."+string(governance.KindOverride)] = true
			}
		}
		if cs.LoadBalance != "" {
			if lb != "" && lb != cs.LoadBalance {
				rs.lbConflict = true
			}
			lb = cs.LoadBalance
		}
		all := !multi
		for i, spec := range specs {
			name := fmt.Sprintf("governance-%d", i)
			if sk != ":" {
				name = fmt.Sprintf("governance-%s-%d", sanitize(sk), i)
			}
			if kd.triple {
				name = "tri-" + name
			}
			hr := &networking.HTTPRoute{Name: name}
			hr.Match = c.routeMatches(st, spec, kd.version, kd.group, multi, kd.triple)
			total := 0
			for _, d := range spec.Dests {
				total += d.Weight
			}
			for _, d := range spec.Dests {
				h := st.hostname
				if !(all && len(d.Steps) == 0) {
					h = c.derive(st, rs, sk, multi, kd.triple, d, kd.nodes)
				}
				dest := &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: string(h)}}
				if len(spec.Dests) > 1 {
					dest.Weight = int32(max(1, d.Weight*100/max(total, 1)))
				}
				hr.Route = append(hr.Route, dest)
			}
			if cs.HasTimeout {
				hr.Timeout = durationpb.New(cs.Timeout)
			}
			if cs.HasRetries {
				// Dubbo's retries are the attempts after the first, as Istio's.
				hr.Retries = &networking.HTTPRetry{Attempts: int32(cs.Retries)}
			}
			vs.Http = append(vs.Http, hr)
		}
	}
	rs.vs = vs
	if lb != "" && !rs.lbConflict {
		rs.dr = &networking.DestinationRule{
			Host: string(st.hostname),
			TrafficPolicy: &networking.TrafficPolicy{LoadBalancer: &networking.LoadBalancerSettings{
				LbPolicy: &networking.LoadBalancerSettings_Simple{Simple: lbPolicy(lb)},
			}},
		}
	}
	rs.rules = slices.Sorted(maps.Keys(rules))
	return rs
}

// routeMatches is a route's match on its protocol's port: on the Dubbo port the method
// and attachments (and the service key's version and group when the interface has
// several); on the Triple port the path /<interface>/<method>, headers of the
// attachments' names, and Triple's tri-service-version/group.
func (c *Controller) routeMatches(st *ifaceState, spec governance.RouteSpec, version, group string, multi, triple bool) []*networking.HTTPMatchRequest {
	headers := map[string]*networking.StringMatch{}
	for k, a := range spec.Attachments {
		switch {
		case a.Present:
			headers[k] = &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: ".+"}}
		case a.Level:
			// a|b|c falls back to a|b, then a (TagStateRouter.selectAddressByTagLevel).
			headers[k] = &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: regexp.QuoteMeta(a.Value) + `\|.*`}}
		case k == governance.ForceTagKey && strings.EqualFold(a.Value, "true"):
			// Java's Boolean.parseBoolean: any case.
			headers[k] = &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: "[tT][rR][uU][eE]"}}
		default:
			headers[k] = &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: a.Value}}
		}
	}
	exact := func(v string) *networking.StringMatch {
		return &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: v}}
	}
	keyed := multi && (version != "" || group != "")
	if !triple {
		m := &networking.HTTPMatchRequest{Port: c.opts.ServicePort, Headers: headers}
		if spec.Method != "" {
			m.Method = exact(spec.Method)
		}
		// An empty version or group is not sent by every consumer: only what the key
		// names guards it.
		if keyed && version != "" {
			m.Headers["version"] = exact(version)
		}
		if keyed && group != "" {
			m.Headers["group"] = exact(group)
		}
		return []*networking.HTTPMatchRequest{m}
	}
	m := &networking.HTTPMatchRequest{Port: c.opts.TriplePort, Headers: headers}
	if spec.Method != "" {
		m.Uri = exact("/" + st.iface + "/" + spec.Method)
	}
	if keyed && version != "" {
		m.Headers["tri-service-version"] = exact(version)
	}
	if keyed && group != "" {
		m.Headers["tri-service-group"] = exact(group)
	}
	return []*networking.HTTPMatchRequest{m}
}

// derive returns the generated service of a destination, adding it to rs.
func (c *Controller) derive(st *ifaceState, rs *routeState, key string, multi, triple bool, d governance.Dest, nodes []published) host.Name {
	var steps []string
	if triple {
		steps = append(steps, "tri")
	}
	if multi {
		steps = append(steps, "key="+key)
	}
	for _, s := range d.Steps {
		// A tag no rule or provider names is shown as *.
		steps = append(steps, strings.ReplaceAll(string(s), governance.OtherValue, "*"))
	}
	desc := strings.Join(steps, " ")
	if desc == "" {
		desc = "all"
	}
	h := fnv.New32a()
	h.Write([]byte(desc))
	label := sanitize(desc)
	if len(label) > 40 {
		label = strings.Trim(label[:40], "-")
	}
	name := host.Name(fmt.Sprintf("%s-%06x.%s", label, h.Sum32()&0xffffff, st.hostname))
	if g, ok := rs.derived[name]; ok && g.steps != desc {
		// Another selection has this name (24-bit hash): the long hash tells them apart.
		h64 := fnv.New64a()
		h64.Write([]byte(desc))
		name = host.Name(fmt.Sprintf("%s-%016x.%s", label, h64.Sum64(), st.hostname))
	}
	if _, ok := rs.derived[name]; !ok {
		allZero := true
		for _, i := range d.Providers {
			if !nodes[i].zero {
				allZero = false
			}
		}
		sel := make([]*model.IstioEndpoint, 0, len(d.Providers))
		for _, i := range d.Providers {
			if allZero || !nodes[i].zero {
				sel = append(sel, nodes[i].ep)
			}
		}
		rs.derived[name] = &derivedService{eps: sel, steps: desc}
	}
	return name
}

// lbPolicy is Istio's equivalent of a Dubbo load balancer.
func lbPolicy(lb string) networking.LoadBalancerSettings_SimpleLB {
	switch lb {
	case "roundrobin":
		return networking.LoadBalancerSettings_ROUND_ROBIN
	case "leastactive", "shortestresponse":
		return networking.LoadBalancerSettings_LEAST_REQUEST
	}
	return networking.LoadBalancerSettings_RANDOM
}

// sanitize keeps [a-z0-9-] of s (lower-cased), other runs as one '-'.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}

// applyRoutes tells istiod what changed between two route states of an interface: the
// VirtualService and DestinationRules (config updates: full pushes), generated services
// added or removed (service events), their endpoints (endpoint updates). On an error
// storing the VirtualService nothing of next is left in effect (the services it added
// are removed again) and the error is returned.
func (c *Controller) applyRoutes(st *ifaceState, prev, next *routeState) error {
	ns := c.opts.Namespace
	prevDerived, nextDerived := map[host.Name]*derivedService{}, map[host.Name]*derivedService{}
	var prevVS, nextVS *networking.VirtualService
	if prev != nil {
		prevVS, prevDerived = prev.vs, prev.derived
	}
	if next != nil {
		nextVS, nextDerived = next.vs, next.derived
	}
	synced := c.synced.Load()
	// New generated services first: the VirtualService must never name a missing one.
	var added []host.Name
	for h, d := range nextDerived {
		if old := prevDerived[h]; old != nil {
			continue
		}
		d.svc = c.derivedService(st, h)
		c.addDerived(st, h, d, synced)
		added = append(added, h)
	}
	name := VirtualServicePrefix + string(st.hostname)
	if !proto.Equal(prevVS, nextVS) {
		if err := c.storeConfig(st, gvk.VirtualService, name, nextVS, next); err != nil {
			for _, h := range added {
				c.removeDerived(h, nextDerived[h], synced)
			}
			return err
		}
		routeUpdates.Increment()
		switch {
		case nextVS == nil:
			scope.Infof("interface %s: route rules no longer apply; VirtualService %s/%s removed", st.iface, ns, name)
		default:
			scope.Infof("interface %s: rules %v make VirtualService %s/%s (%d routes, %d generated services)",
				st.iface, next.rules, ns, name, len(nextVS.Http), len(nextDerived))
			if c.userVS != nil {
				if users := c.userVS(st.hostname); len(users) > 0 {
					scope.Infof("interface %s: VirtualService %v of the operator wins over the rules' routes", st.iface, users)
				}
			}
		}
	}
	// The consumers' load balancer, for the interface's host and its generated services.
	var prevDR, nextDR *networking.DestinationRule
	if prev != nil {
		prevDR = prev.dr
	}
	if next != nil {
		nextDR = next.dr
	}
	if !proto.Equal(prevDR, nextDR) {
		var sel *networking.DestinationRule
		if nextDR != nil {
			sel = proto.Clone(nextDR).(*networking.DestinationRule)
			sel.Host = "*." + string(st.hostname)
		}
		for _, dr := range []struct {
			name string
			spec *networking.DestinationRule
		}{{name, nextDR}, {name + "-selections", sel}} {
			if err := c.storeConfig(st, gvk.DestinationRule, dr.name, dr.spec, next); err != nil {
				scope.Errorf("interface %s: %v", st.iface, err)
			}
		}
	}
	// Generated services kept: their endpoints or ports; those gone: removed.
	for h, d := range nextDerived {
		old := prevDerived[h]
		if old == nil {
			continue
		}
		d.svc = old.svc
		switch {
		case !samePorts(old.svc.Ports, st.svc.Ports):
			d.svc = c.derivedService(st, h)
			d.svc.CreationTime = old.svc.CreationTime
			c.store.setService(h, st.iface, d.svc)
			c.xds.EDSCacheUpdate(c.shard, string(h), ns, d.eps)
			if synced {
				c.xds.SvcUpdate(c.shard, string(h), ns, model.EventUpdate)
				c.NotifyServiceHandlers(old.svc, d.svc, model.EventUpdate)
			}
		case !sameEndpoints(old.eps, d.eps):
			switch {
			case synced && c.pacer != nil:
				c.xds.EDSCacheUpdate(c.shard, string(h), ns, d.eps)
				c.pacer.mark(string(h), ns)
			case synced:
				c.xds.EDSUpdate(c.shard, string(h), ns, d.eps)
			default:
				c.xds.EDSCacheUpdate(c.shard, string(h), ns, d.eps)
			}
		}
	}
	for h, d := range prevDerived {
		if nextDerived[h] == nil {
			c.removeDerived(h, d, synced)
		}
	}
	return nil
}

func (c *Controller) addDerived(st *ifaceState, h host.Name, d *derivedService, synced bool) {
	ns := c.opts.Namespace
	c.store.setService(h, st.iface, d.svc)
	c.xds.EDSCacheUpdate(c.shard, string(h), ns, d.eps)
	if synced {
		c.xds.SvcUpdate(c.shard, string(h), ns, model.EventAdd)
		c.NotifyServiceHandlers(nil, d.svc, model.EventAdd)
	}
}

func (c *Controller) removeDerived(h host.Name, d *derivedService, synced bool) {
	ns := c.opts.Namespace
	c.store.setService(h, "", nil)
	c.xds.SvcUpdate(c.shard, string(h), ns, model.EventDelete)
	if synced {
		c.NotifyServiceHandlers(d.svc, d.svc, model.EventDelete)
	}
}

// storeConfig puts a config of ours in the route store (spec nil: deletes it).
func (c *Controller) storeConfig(st *ifaceState, kind config.GroupVersionKind, name string, spec proto.Message, rs *routeState) error {
	ns := c.opts.Namespace
	if spec == nil || reflect.ValueOf(spec).IsNil() {
		if c.routeStore.Get(kind, name, ns) == nil {
			return nil
		}
		if err := c.routeStore.Delete(kind, name, ns, nil); err != nil {
			return fmt.Errorf("cannot delete %s %s/%s: %v", kind.Kind, ns, name, err)
		}
		return nil
	}
	var rules []string
	if rs != nil {
		rules = rs.rules
	}
	cfg := config.Config{
		Meta: config.Meta{
			GroupVersionKind: kind, Name: name, Namespace: ns, CreationTimestamp: routesCreated,
			Labels:      map[string]string{governance.DerivedLabel: string(st.hostname)},
			Annotations: map[string]string{"dubbo.apache.org/rules": strings.Join(rules, ",")},
		},
		Spec: spec,
	}
	var err error
	if c.routeStore.Get(kind, name, ns) == nil {
		_, err = c.routeStore.Create(cfg)
	} else {
		_, err = c.routeStore.Update(cfg)
	}
	if err != nil {
		return fmt.Errorf("cannot store %s %s/%s: %v", kind.Kind, ns, name, err)
	}
	return nil
}

func (c *Controller) derivedService(st *ifaceState, h host.Name) *model.Service {
	svc := c.newService(st, nil)
	svc.Hostname = h
	svc.Ports = st.svc.Ports
	svc.Attributes.Name = string(h)
	svc.Attributes.Labels = map[string]string{governance.DerivedLabel: string(st.hostname)}
	return svc
}
