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
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/governance"
)

// Governance rules (docs/governance.md): config centers report the rules they hold
// (SetRules); override rules shape the endpoints of the providers they match, as each
// provider would re-register itself with them, and reach sidecars as endpoint updates.
//
// A config center is a source of its own, named <registry>/config: it has a session,
// an initial read istiod waits for (a disabled instance must not get traffic from the
// first push on), and list errors, as a registry has; it lists no providers.

// ConfigSourceSuffix names the config center of a registry: "<registry>/config".
const ConfigSourceSuffix = "/config"

// AddConfigCenter declares the config center read beside a registry (before Run). Rules
// read from several config centers are one set: a key held by several comes from the
// first declared, as Dubbo's composite configuration reads the first that has it.
func (c *Controller) AddConfigCenter(registry, description string) (string, error) {
	name := registry + ConfigSourceSuffix
	if err := c.addSource(name, registry, description); err != nil {
		return "", err
	}
	c.updateMu.Lock()
	c.sourceByName[name].config = true
	c.updateMu.Unlock()
	return name, nil
}

// Rule statuses, in /debug/dubboz and the dubbo_governance_rules metric.
const (
	RuleApplied    = "applied"     // in effect
	RuleInvalid    = "invalid"     // the body does not parse: the last valid body of the key stays in effect, if any
	RuleNotApplied = "not_applied" // understood, but routes cannot be made here (no route store)
	RuleNoEffect   = "no_effect"   // valid, but nothing in it applies to providers (e.g. consumer-side or disabled items)
	RuleIgnored    = "ignored"     // a key that names no rule dubbo-istiod reads
	RuleLeftOut    = "left_out"    // valid, but a sidecar cannot evaluate it (reported; not applied)
)

// ruleEntry is one rule key over every config center.
type ruleEntry struct {
	name    string
	key     governance.Key
	keyErr  string
	bodies  map[string][]byte // config source -> body as read
	from    string            // the config source whose body is in effect
	body    []byte            // the body in effect, as last taken
	status  string
	err     string // why the body in effect (or the last one read) was not taken
	since   time.Time
	applied *governance.Rule // the override in effect (the last valid one)
	// The route rule in effect (the last valid one), condition or tag.
	cond *governance.ConditionRule
	tag  *governance.TagRule
}

// governanceState is the controller's rule state, guarded by updateMu.
type governanceState struct {
	rules map[string]*ruleEntry
	// Overrides in effect, by service key (interface:version:group) and by application.
	svc map[string]*governance.Rule
	app map[string]*governance.Rule
	// svcIfaces counts the service rules per interface (an interface without one, while
	// no application rule exists, is published without looking at rules).
	svcIfaces map[string]int
	gen       uint64 // bumped at every change of the overrides in effect

	// Route rules in effect: condition rules by service key (interface:version:group)
	// and by application, tag rules by application.
	svcCond map[string]*governance.ConditionRule
	appCond map[string]*governance.ConditionRule
	tags    map[string]*governance.TagRule
}

func (g *governanceState) init() {
	if g.rules == nil {
		g.rules = map[string]*ruleEntry{}
		g.svc = map[string]*governance.Rule{}
		g.app = map[string]*governance.Rule{}
		g.svcIfaces = map[string]int{}
		g.svcCond = map[string]*governance.ConditionRule{}
		g.appCond = map[string]*governance.ConditionRule{}
		g.tags = map[string]*governance.TagRule{}
	}
}

// SetRules replaces the rules a config center holds: key -> body (ZooKeeper:
// /<namespace>/config/<group>/<key>; Nacos: dataId <key> in the group). Keys that are
// not rules may be left out by the caller or are shown as ignored. observed is when the
// change was noticed.
func (c *Controller) SetRules(src string, rules map[string][]byte, observed time.Time) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	s := c.sourceByName[src]
	if s == nil || !s.config {
		return
	}
	g := &c.gov
	g.init()
	s.lastEvent = c.now()
	recordEvent(src, "rules")
	affected := map[string]bool{} // interfaces to publish again; "*": all
	for name, e := range g.rules {
		if _, still := rules[name]; !still && e.bodies[src] != nil {
			delete(e.bodies, src)
			c.updateRule(e, affected)
		}
	}
	for name, body := range rules {
		if body == nil {
			body = []byte{}
		}
		e := g.rules[name]
		if e == nil {
			e = &ruleEntry{name: name, bodies: map[string][]byte{}}
			if k, err := governance.ParseKey(name); err != nil {
				e.keyErr = err.Error()
			} else {
				e.key = k
			}
			g.rules[name] = e
		} else if old, ok := e.bodies[src]; ok && bytes.Equal(old, body) {
			continue
		}
		e.bodies[src] = body
		c.updateRule(e, affected)
	}
	s.interfaceCnt = 0
	for _, e := range g.rules {
		if e.bodies[src] != nil {
			s.interfaceCnt++
		}
	}
	c.recordRuleGauges()
	if len(affected) == 0 {
		return
	}
	g.gen++
	for _, st := range sortedStates(c.ifaces) {
		if affected["*"] || affected[st.iface] {
			c.publish(st, observed)
		}
	}
}

// updateRule takes the body in effect for a key (the first config center holding it)
// and, for override rules, the rule it makes; affected gets the interfaces whose
// endpoints may change.
func (c *Controller) updateRule(e *ruleEntry, affected map[string]bool) {
	g := &c.gov
	prevFrom, prevBody := e.from, e.body
	e.from = ""
	for _, s := range c.sources {
		if _, ok := e.bodies[s.name]; ok {
			e.from = s.name
			break
		}
	}
	if e.from == "" {
		// Deleted everywhere: the rule is gone (Dubbo clears it on a DELETED event).
		c.setOverride(e, nil, affected)
		c.setRouteRule(e, nil, nil, affected)
		delete(g.rules, e.name)
		scope.Infof("governance rule %s removed", e.name)
		return
	}
	body := e.bodies[e.from]
	if e.status != "" && prevFrom == e.from && bytes.Equal(prevBody, body) {
		return // another config center's copy changed; the one in effect did not
	}
	e.body = body
	e.since = c.now()
	if e.keyErr != "" {
		e.status, e.err = RuleIgnored, e.keyErr
		return
	}
	switch e.key.Kind {
	case governance.KindOverride:
		o, err := governance.ParseOverride(body)
		if err == nil {
			err = checkOverride(o)
		}
		if err != nil {
			c.invalidRule(e, err)
			return
		}
		r := governance.NewRule(e.key, o)
		e.err = ""
		e.status = RuleApplied
		cs, problems := r.Consumer()
		problems = slices.Clone(problems)
		if !e.key.Service() && !cs.Empty() {
			// An application rule's consumer items are the consumer application's own.
			problems = append(problems, "consumer items of an application rule need the consumer's application: not applied")
			cs = governance.ConsumerSettings{}
		}
		if r.ProviderItems() == 0 && cs.Empty() {
			e.status = RuleNoEffect
		}
		if len(problems) > 0 {
			e.err = "left out: " + strings.Join(problems, "; ")
			scope.Warnf("governance rule %s (from %s): %s", e.name, e.from, e.err)
		}
		c.setOverride(e, r, affected)
		scope.Infof("governance rule %s (from %s): %s, %d provider-side configurators", e.name, e.from, e.status, r.ProviderItems())
	case governance.KindConditionRoute:
		r, err := governance.ParseConditionRule(body)
		if err != nil {
			c.invalidRule(e, err)
			return
		}
		e.status, e.err = RuleApplied, ""
		if err := governance.CheckCondition(r); err != nil {
			// Left out as Dubbo leaves out a rule it cannot use; never widened.
			e.status, e.err = RuleLeftOut, err.Error()
			ruleErrorsTotal.With(kindTag.Value(string(e.key.Kind))).Increment()
			scope.Warnf("governance rule %s (from %s) is left out: %v", e.name, e.from, err)
			r = nil
		}
		c.setRouteRule(e, r, nil, affected)
		c.noRouteStore(e)
	case governance.KindTagRoute:
		r, err := governance.ParseTagRule(body)
		if err != nil {
			c.invalidRule(e, err)
			return
		}
		e.status, e.err = RuleApplied, ""
		c.setRouteRule(e, nil, r, affected)
		c.noRouteStore(e)
	}
}

// noRouteStore marks a valid route rule not applied when there is nowhere to put routes.
func (c *Controller) noRouteStore(e *ruleEntry) {
	if c.routeStore == nil && e.status == RuleApplied {
		e.status, e.err = RuleNotApplied, "no route store: this istiod does not make routes of Dubbo rules"
	}
}

// RuleKeys are the rule keys of every service key and application the registries list:
// what a config center without listing (Nacos) watches.
func (c *Controller) RuleKeys() []string {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	keys := map[string]bool{}
	for iface, st := range c.ifaces {
		for _, set := range []map[string]map[string]*node{st.nodes, st.held} {
			for _, nodes := range set {
				for _, n := range nodes {
					if n.url == nil {
						continue
					}
					p := n.url.Params
					for _, k := range []governance.Kind{governance.KindOverride, governance.KindConditionRoute} {
						keys[governance.Key{Kind: k, Interface: iface, Version: p["version"], Group: p["group"]}.String()] = true
					}
					if app := p["application"]; app != "" && !strings.ContainsAny(app, ":/") {
						for _, k := range []governance.Kind{governance.KindOverride, governance.KindConditionRoute, governance.KindTagRoute} {
							keys[governance.Key{Kind: k, Application: app}.String()] = true
						}
					}
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(keys))
}

// setRouteRule puts a condition or tag rule (nil: none) in effect for e's key.
func (c *Controller) setRouteRule(e *ruleEntry, cond *governance.ConditionRule, tag *governance.TagRule, affected map[string]bool) {
	g := &c.gov
	k := e.key
	switch k.Kind {
	case governance.KindConditionRoute:
		if e.cond == cond {
			return
		}
		e.cond = cond
		m, name := g.appCond, k.Application
		if k.Service() {
			m, name = g.svcCond, k.Interface+":"+k.Version+":"+k.Group
		}
		if cond == nil {
			delete(m, name)
		} else {
			m[name] = cond
		}
	case governance.KindTagRoute:
		if e.tag == tag {
			return
		}
		e.tag = tag
		if tag == nil {
			delete(g.tags, k.Application)
		} else {
			g.tags[k.Application] = tag
		}
	default:
		return
	}
	if k.Service() {
		affected[k.Interface] = true
		return
	}
	for iface, st := range c.ifaces {
		if ifaceHasApp(st, k.Application) {
			affected[iface] = true
		}
	}
}

// invalidRule reports a body that does not parse. As Dubbo does, the last valid rule of
// the key stays in effect.
func (c *Controller) invalidRule(e *ruleEntry, err error) {
	e.status, e.err = RuleInvalid, err.Error()
	ruleErrorsTotal.With(kindTag.Value(string(e.key.Kind))).Increment()
	kept := ""
	if e.applied != nil {
		kept = "; the last valid rule stays in effect"
	}
	scope.Warnf("governance rule %s (from %s) is invalid: %v%s", e.name, e.from, err, kept)
}

// checkOverride rejects parameters whose value cannot mean what the rule intends
// (Dubbo would fail on them at call time): weights that are not integers, disabled
// flags that are not booleans.
func checkOverride(o *governance.Override) error {
	for i, item := range o.Configs {
		if w, ok := item.Parameters["weight"]; ok {
			if n, err := strconv.ParseInt(w, 10, 64); err != nil || n < 0 {
				return fmt.Errorf("item %d: weight %q is not a non-negative integer", i, w)
			}
		}
		if d, ok := item.Parameters["disabled"]; ok {
			if !strings.EqualFold(d, "true") && !strings.EqualFold(d, "false") {
				return fmt.Errorf("item %d: disabled %q is not a boolean", i, d)
			}
		}
	}
	return nil
}

// setOverride puts r (nil: none) in effect for e's key.
func (c *Controller) setOverride(e *ruleEntry, r *governance.Rule, affected map[string]bool) {
	g := &c.gov
	if e.key.Kind != governance.KindOverride || e.applied == r {
		return
	}
	had := e.applied != nil
	e.applied = r
	k := e.key
	if k.Service() {
		sk := k.Interface + ":" + k.Version + ":" + k.Group
		switch {
		case r == nil:
			delete(g.svc, sk)
			g.svcIfaces[k.Interface]--
			if g.svcIfaces[k.Interface] <= 0 {
				delete(g.svcIfaces, k.Interface)
			}
		default:
			g.svc[sk] = r
			if !had {
				g.svcIfaces[k.Interface]++
			}
		}
		affected[k.Interface] = true
		return
	}
	if r == nil {
		delete(g.app, k.Application)
	} else {
		g.app[k.Application] = r
	}
	// The application's providers may serve any interface.
	for iface, st := range c.ifaces {
		if ifaceHasApp(st, k.Application) {
			affected[iface] = true
		}
	}
}

func ifaceHasApp(st *ifaceState, app string) bool {
	for _, set := range []map[string]map[string]*node{st.nodes, st.held} {
		for _, nodes := range set {
			for _, n := range nodes {
				if n.url != nil && n.url.Params["application"] == app {
					return true
				}
			}
		}
	}
	return false
}

// governed reports whether override rules may apply to an interface's providers.
func (c *Controller) governed(iface string) bool {
	return len(c.gov.app) > 0 || c.gov.svcIfaces[iface] > 0
}

// specs returns the endpoint specs of an interface's nodes as the override rules in
// effect make them (nil: no rule applies; every node's own spec stands). The map is
// new at every call (Debug reads the published one without the lock); specs computed
// for the same rules are reused.
func (c *Controller) specs(st *ifaceState) map[*node]*endpointSpec {
	if !c.governed(st.iface) {
		return nil
	}
	prev := st.govSpecs
	if st.govGen != c.gov.gen {
		prev = nil
	}
	out := map[*node]*endpointSpec{}
	for _, set := range []map[string]map[string]*node{st.nodes, st.held} {
		for _, nodes := range set {
			for _, n := range nodes {
				if n.url == nil {
					continue
				}
				if sp, ok := prev[n]; ok {
					out[n] = sp
					continue
				}
				out[n] = c.configuredSpec(n)
			}
		}
	}
	return out
}

// configuredSpec applies the override rules in effect to a provider node: the
// application rule of its application, then the service rule of its service key.
func (c *Controller) configuredSpec(n *node) *endpointSpec {
	u := n.url
	p := governance.Provider{Interface: u.Interface(), IP: u.IP, Port: int(u.Port), Params: u.Params}
	sk := u.Interface() + ":" + u.Params["version"] + ":" + u.Params["group"]
	params, changed := governance.ApplyProvider(p, c.gov.app[u.Params["application"]], c.gov.svc[sk])
	if !changed {
		return &n.spec
	}
	// A rule sets weights and flags, never the provider's identity: whether it runs a
	// sidecar and as whom is what it registered (docs/security.md), and the timestamp
	// picks the newest of duplicate registrations.
	for _, k := range []string{TLSModeParam, ServiceAccountParam, "timestamp"} {
		if v, ok := u.Params[k]; ok {
			params[k] = v
		} else {
			delete(params, k)
		}
	}
	cu := *u
	cu.Params = params
	spec := c.opts.toEndpoint(&cu, n.label, n.spec.ep.ServicePortName)
	spec.governed = true
	spec.params = params
	return &spec
}

// recordRuleGauges sets dubbo_governance_rules.
func (c *Controller) recordRuleGauges() {
	counts := map[[2]string]int{}
	for _, kind := range []governance.Kind{governance.KindOverride, governance.KindConditionRoute, governance.KindTagRoute, ""} {
		for _, st := range []string{RuleApplied, RuleInvalid, RuleNotApplied, RuleNoEffect, RuleIgnored, RuleLeftOut} {
			counts[[2]string{string(kind), st}] = 0
		}
	}
	for _, e := range c.gov.rules {
		counts[[2]string{string(e.key.Kind), e.status}]++
	}
	for k, n := range counts {
		kind := k[0]
		if kind == "" {
			kind = "unknown"
		}
		rulesGauge.With(kindTag.Value(kind), statusTag.Value(k[1])).Record(float64(n))
	}
}

// DebugRule is one governance rule key in /debug/dubboz.
type DebugRule struct {
	Key    string `json:"key"`
	Kind   string `json:"kind,omitempty"`
	From   string `json:"from"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Interfaces served today that the rule names (service scope) or whose providers
	// belong to the application it names; empty: no known provider.
	Interfaces []string  `json:"interfaces"`
	Since      time.Time `json:"since"`
	Body       string    `json:"body"`
	app        string
}

// debugRules renders the rules (under updateMu).
func (c *Controller) debugRules() []DebugRule {
	out := []DebugRule{}
	for _, name := range slices.Sorted(maps.Keys(c.gov.rules)) {
		e := c.gov.rules[name]
		d := DebugRule{Key: name, Kind: string(e.key.Kind), From: e.from, Status: e.status, Error: e.err,
			Since: e.since, Body: clip(string(e.bodies[e.from])), Interfaces: []string{}}
		switch {
		case e.keyErr != "":
		case e.key.Service():
			if st := c.ifaces[e.key.Interface]; st != nil && st.svc != nil {
				d.Interfaces = append(d.Interfaces, e.key.Interface)
			}
		default:
			d.app = e.key.Application // filled in from the snapshots, after the lock
		}
		out = append(out, d)
	}
	return out
}
