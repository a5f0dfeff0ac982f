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

package governance

import (
	"fmt"
	"strconv"
	"strings"
)

// The router chain of a Java Dubbo consumer (TagStateRouter, then the condition routers
// of the service and of the provider application), evaluated for one call against a
// known list of providers. Sidecars cannot run it per call; routes.go evaluates it for
// every class of calls the rules tell apart and turns the results into routes.

// Call is what routers read of a call: its method and attachments (absent: not in the
// map).
type Call struct {
	Method      string
	Attachments map[string]string
}

// Attachment keys of the tag router.
const (
	TagKey      = "dubbo.tag"
	ForceTagKey = "dubbo.force.tag"
)

// Step is one router decision on the way to a call's providers. Two calls with the same
// steps reach the same providers, whatever the provider list: steps name a selection.
type Step string

// Dest is where the chain sends a class of calls: the providers (indexes into the list
// routed), picked with Weight among the destinations of the same call (v3.1 rules).
type Dest struct {
	Providers []int
	Weight    int
	Steps     []Step
}

// Chain is the routers of one service, in Java's order.
type Chain struct {
	// Tag is the provider application's tag rule (nil or off: only providers' own
	// dubbo.tag parameters route, as Java's filterUsingStaticTag).
	Tag *TagRule
	// Conditions are the service's condition rule, then the provider application's
	// (nil entries are skipped). Names label the steps.
	Conditions []*ConditionRule
	Names      []string
}

// Route evaluates the chain for a call. An empty destination (no providers) means the
// call fails, as Java's fail-fast chain does.
func (ch *Chain) Route(c Call, ps []Provider) []Dest {
	all := make([]int, len(ps))
	for i := range all {
		all[i] = i
	}
	dests := []Dest{{Providers: all, Weight: 1}}
	dests = ch.step(dests, func(in []int) []Dest { return ch.tagRoute(c, ps, in) })
	for i, r := range ch.Conditions {
		if r == nil || !r.On() {
			continue
		}
		name := ch.Names[i]
		dests = ch.step(dests, func(in []int) []Dest { return conditionRoute(name, r, c, ps, in) })
	}
	return dests
}

// step applies one router to every destination so far (weights multiply); an empty
// destination stays as it is (fail-fast).
func (ch *Chain) step(dests []Dest, router func([]int) []Dest) []Dest {
	var out []Dest
	for _, d := range dests {
		if len(d.Providers) == 0 {
			out = append(out, d)
			continue
		}
		for _, n := range router(d.Providers) {
			n.Weight *= d.Weight
			n.Steps = append(append([]Step(nil), d.Steps...), n.Steps...)
			out = append(out, n)
		}
	}
	return out
}

func one(set []int, steps ...Step) []Dest { return []Dest{{Providers: set, Weight: 1, Steps: steps}} }

func filter(in []int, keep func(int) bool) []int {
	out := []int{}
	for _, i := range in {
		if keep(i) {
			out = append(out, i)
		}
	}
	return out
}

// tagRoute is Java's TagStateRouter.doRoute.
func (ch *Chain) tagRoute(c Call, ps []Provider, in []int) []Dest {
	tag := c.Attachments[TagKey]
	force := strings.EqualFold(c.Attachments[ForceTagKey], "true")
	ownTag := func(i int) string { return ps[i].Params[TagKey] }
	rule := ch.Tag
	if rule == nil || !rule.On() || len(rule.Tags) == 0 {
		if tag != "" {
			res := filter(in, func(i int) bool { return ownTag(i) == tag })
			if len(res) > 0 || force {
				return one(res, Step("static-tag="+tag))
			}
		}
		res := filter(in, func(i int) bool { return ownTag(i) == "" })
		if len(res) == len(in) {
			return one(in) // nothing filtered: no step
		}
		return one(res, "untagged")
	}
	byTag := rule.addresses(ps, in)
	claimed := func(i int) bool {
		for _, addrs := range byTag {
			if matchAnyAddress(addrs, ps[i]) {
				return true
			}
		}
		return false
	}
	if tag != "" {
		if addrs, ok := selectByTagLevel(byTag, tag, force); ok {
			res := filter(in, func(i int) bool { return matchAnyAddress(addrs, ps[i]) })
			if len(res) > 0 || rule.Force.Or(false) {
				return one(res, Step("tag="+tag))
			}
		} else {
			res := filter(in, func(i int) bool { return ownTag(i) == tag })
			if len(res) > 0 || force {
				return one(res, Step("static-tag="+tag))
			}
		}
		if force {
			return one([]int{}, Step("tag="+tag), "forced")
		}
		return one(filter(in, func(i int) bool { return !claimed(i) && ownTag(i) == "" }), "untagged")
	}
	return one(filter(in, func(i int) bool { return !claimed(i) && ownTag(i) == "" }), "untagged")
}

// addresses is Java's TagRouterRule.init: each tag's addresses, or (v3.0) the addresses
// of the providers its match selects; a tag with neither selects nothing and is left out.
func (t *TagRule) addresses(ps []Provider, in []int) map[string][]string {
	out := map[string][]string{}
	for _, tag := range t.Tags {
		if len(tag.Addresses) > 0 {
			out[tag.Name] = tag.Addresses
			continue
		}
		if t.ConfigVersion != V30 || len(tag.Match) == 0 {
			continue
		}
		var addrs []string
		for _, i := range in {
			ok := true
			for _, m := range tag.Match {
				v, present := ps[i].Params[m.Key]
				if !m.Value.matches(v, present) {
					ok = false
					break
				}
			}
			if ok {
				addrs = append(addrs, ps[i].Address())
			}
		}
		if len(addrs) > 0 {
			out[tag.Name] = addrs
		}
	}
	return out
}

// selectByTagLevel is Java's selectAddressByTagLevel: a|b|c falls back to a|b, then a,
// unless forced.
func selectByTagLevel(byTag map[string][]string, tag string, force bool) ([]string, bool) {
	if force || !strings.Contains(tag, "|") {
		a, ok := byTag[tag]
		return a, ok
	}
	for t := tag; t != ""; {
		if a, ok := byTag[t]; ok && len(a) > 0 {
			return a, true
		}
		i := strings.LastIndexByte(t, '|')
		if i < 0 {
			break
		}
		t = t[:i]
	}
	return nil, false
}

// matchAnyAddress is Java's TagStateRouter.checkAddressMatch.
func matchAnyAddress(addrs []string, p Provider) bool {
	addr, port := p.Address(), strconv.Itoa(p.Port)
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if !strings.ContainsAny(a, "*-/") {
			// A literal (what dubbo-admin writes): ip:port, or an ip for any port.
			if a == addr || a == p.IP || a == anyHost+":"+port {
				return true
			}
			continue
		}
		if matchIP(a, p.IP, p.Port) {
			return true
		}
	}
	return false
}

// conditionRoute applies one condition rule (Java's ListenableStateRouter: its
// conditions in order, each on the previous output).
func conditionRoute(name string, r *ConditionRule, c Call, ps []Provider, in []int) []Dest {
	force := r.Force.Or(false)
	if r.ConfigVersion == V31 {
		dests := one(in)
		for i, mc := range r.Routes {
			i, mc := i, mc
			var next []Dest
			for _, d := range dests {
				if len(d.Providers) == 0 {
					next = append(next, d)
					continue
				}
				for _, n := range multiDest(fmt.Sprintf("%s#%d", name, i), mc, force, c, ps, d.Providers) {
					n.Weight *= d.Weight
					n.Steps = append(append([]Step(nil), d.Steps...), n.Steps...)
					next = append(next, n)
				}
			}
			dests = next
		}
		return dests
	}
	set := in
	var steps []Step
	for i, e := range r.exprs {
		if len(set) == 0 {
			break
		}
		if !e.When.matchCall(c) {
			continue
		}
		id := Step(fmt.Sprintf("%s#%d", name, i))
		if e.Then == nil {
			set, steps = []int{}, append(steps, id+":blocked")
			continue
		}
		res := filter(set, func(j int) bool { return e.Then.matchProvider(ps[j]) })
		switch {
		case len(res) > 0:
			set, steps = res, append(steps, id)
		case force:
			set, steps = res, append(steps, id+":forced")
		}
	}
	return one(set, steps...)
}

// multiDest is Java's MultiDestConditionRouter.doRoute for one condition.
func multiDest(id string, mc MultiDestCondition, force bool, c Call, ps []Provider, in []int) []Dest {
	if !mc.from.matchCall(c) {
		return one(in)
	}
	if len(mc.To) == 0 {
		return one([]int{}, Step(id+":blocked"))
	}
	var out []Dest
	for j, to := range mc.To {
		then := mc.to[j]
		res := filter(in, func(k int) bool { return then.matchProvider(ps[k]) })
		if len(res) == 0 {
			continue // dropped before weighting: its weight goes to the others
		}
		w := to.Weight
		if w == 0 {
			w = 100
		}
		out = append(out, Dest{Providers: res, Weight: w, Steps: []Step{Step(fmt.Sprintf("%s>%d", id, j))}})
	}
	if len(out) == 0 {
		if force {
			return one([]int{}, Step(id+":forced"))
		}
		return one(in)
	}
	return out
}

// matchCall is the when-side: every key must match the call (empty: every call). Keys
// other than method and attachments are rejected before (CallKeys).
func (c Condition) matchCall(call Call) bool {
	for k, p := range c {
		v, ok := callValue(call, k)
		if !ok || !p.Match(v, nil) {
			return false
		}
	}
	return true
}

func callValue(call Call, key string) (string, bool) {
	if key == "method" || key == "methods" {
		return call.Method, true
	}
	if a, ok := AttachmentKey(key); ok {
		v, present := call.Attachments[a]
		return v, present
	}
	return "", false
}

// AttachmentKey is the attachment a when-side key "attachments[k]" names.
func AttachmentKey(key string) (string, bool) {
	if !strings.HasPrefix(key, "attachments[") || !strings.HasSuffix(key, "]") {
		return "", false
	}
	k := key[len("attachments[") : len(key)-1]
	return k, k != ""
}

// matchProvider is the then-side: every key must match the provider's URL (host, port,
// address, protocol, path/interface, or a parameter); a missing value never matches.
func (c Condition) matchProvider(p Provider) bool {
	for k, pair := range c {
		v, ok := p.value(k)
		if !ok || !pair.Match(v, nil) {
			return false
		}
	}
	return true
}

// value is a provider URL's value of a then-side key (Java's URL.toOriginalMap with its
// special keys).
func (p Provider) value(key string) (string, bool) {
	switch key {
	case "host":
		return p.IP, true
	case "port":
		return strconv.Itoa(p.Port), p.Port > 0
	case "address":
		return p.Address(), true
	case "protocol":
		return p.Protocol, p.Protocol != ""
	case "path", "interface":
		return p.Interface, true
	}
	v, ok := p.Params[key]
	return v, ok
}
