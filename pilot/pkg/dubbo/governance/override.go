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
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Provider is what override rules match on a provider instance: its registered URL.
type Provider struct {
	Interface string
	Protocol  string // dubbo, tri
	IP        string
	Port      int
	Params    map[string]string // the provider URL's parameters (version, group, application, ...)
}

// Address is ip:port, as Java's URL.getAddress gives it.
func (p Provider) Address() string {
	if strings.Contains(p.IP, ":") {
		return "[" + p.IP + "]:" + strconv.Itoa(p.Port)
	}
	return p.IP + ":" + strconv.Itoa(p.Port)
}

// ServiceKey is Java's URL.getServiceKey: [group/]interface[:version].
func (p Provider) ServiceKey() string {
	return serviceKey(p.Params["group"], p.Interface, p.Params["version"])
}

func serviceKey(group, iface, version string) string {
	k := iface
	if group != "" {
		k = group + "/" + k
	}
	if version != "" {
		k += ":" + version
	}
	return k
}

// conditionKeys are never copied by a configurator onto the provider
// (AbstractConfigurator.genConditionKeys), and the security keys Dubbo strips from every
// configurator (AbstractConfiguratorListener).
var conditionKeys = map[string]bool{
	"category": true, "check": true, "dynamic": true, "enabled": true, "group": true, "version": true,
	"application": true, "side": true, "configVersion": true, "compatible_config": true, "interfaces": true,
	"accesslog.fixed.path": true, "router": true, "rule": true, "runtime": true, "type": true,
}

// configurator is one override URL of Java's ConfigParser: one item, for one address
// (and one service or application).
type configurator struct {
	host              string   // the address's host; 0.0.0.0 for any
	providerAddresses []string // nil: no providerAddresses parameter
	application       string   // "" or *: any
	service           string   // [group/]iface[:version], or * (application scope)
	tildes            map[string]string
	match             *ConditionMatch
	params            map[string]string // what it sets
	priority          int
}

// configurators expands the provider-side items that are on into Java's override URLs,
// sorted as Configurator.compareTo sorts them (host string, then priority): applied in
// this order, the last one that matches wins. key is where the rule was read: a service
// rule applies to the service its node is named after (dubbo-admin writes the YAML key
// as iface:ver:grp, which Java's parser would read as a version; the node's name is
// what every Dubbo reader subscribes to).
func (o *Override) configurators(key Key) []configurator {
	var out []configurator
	for i, item := range o.Configs {
		if item.Side != "provider" || !o.ItemOn(i) {
			// Consumer-side items (and items without a side, which Java's v2.7 path never
			// applies) shape no provider endpoint.
			continue
		}
		params := map[string]string{}
		tildes := map[string]string{}
		priority := 0
		for k, v := range item.Parameters {
			switch {
			case o.ConfigVersion != V30 && strings.HasPrefix(k, "~"):
				tildes[k[1:]] = v
			case k == "priority":
				priority, _ = strconv.Atoi(v)
				params[k] = v
			case !conditionKeys[k]:
				params[k] = v
			}
		}
		pa := item.ProviderAddresses
		if len(pa) == 0 {
			pa = item.Addresses
			if len(pa) == 0 {
				pa = []string{anyHost}
			}
		}
		hosts := item.Addresses
		if len(hosts) == 0 {
			hosts = []string{anyHost}
		}
		var match *ConditionMatch
		if o.ConfigVersion == V30 {
			match = item.Match
		}
		base := configurator{providerAddresses: pa, tildes: tildes, match: match, params: params, priority: priority}
		var scoped []configurator
		if key.Service() {
			base.service = serviceKey(key.Group, key.Interface, key.Version)
			if len(item.Applications) == 0 {
				scoped = append(scoped, base)
			}
			for _, app := range item.Applications {
				c := base
				c.application = app
				scoped = append(scoped, c)
			}
		} else {
			base.application = key.Application
			services := item.Services
			if len(services) == 0 {
				services = []string{"*"}
			}
			for _, s := range services {
				c := base
				c.service = normalizeService(s)
				scoped = append(scoped, c)
			}
		}
		for _, h := range hosts {
			for _, c := range scoped {
				c.host = addressHost(h)
				out = append(out, c)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].host != out[j].host {
			return out[i].host < out[j].host
		}
		return out[i].priority < out[j].priority
	})
	return out
}

const anyHost = "0.0.0.0"

// normalizeService is a services entry as Java's appendService reads it: group/iface:version.
func normalizeService(s string) string {
	s = strings.TrimSpace(s)
	if s == "*" {
		return s
	}
	group, rest, ok := strings.Cut(s, "/")
	if !ok {
		group, rest = "", s
	}
	iface, version, _ := strings.Cut(rest, ":")
	return serviceKey(group, iface, version)
}

// addressHost is the host of an address entry (ip, ip:port, [v6]:port).
func addressHost(a string) string {
	a = strings.TrimSpace(a)
	if strings.HasPrefix(a, "[") {
		if i := strings.Index(a, "]"); i > 0 {
			return a[1:i]
		}
	}
	if strings.Count(a, ":") == 1 {
		h, _, _ := strings.Cut(a, ":")
		return h
	}
	return a
}

// applies is Java's AbstractConfigurator.configureIfMatch for a provider URL (side
// provider, v2.7 or later).
func (c *configurator) applies(p Provider) bool {
	if c.host != anyHost && c.host != p.IP {
		return false
	}
	if len(c.providerAddresses) > 0 {
		addr, port := p.Address(), strconv.Itoa(p.Port)
		ok := false
		for _, a := range c.providerAddresses {
			a = strings.TrimSpace(a)
			if a == addr || a == anyHost || a == anyHost+":*" || a == anyHost+":"+port || a == p.IP {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if c.application != "" && c.application != "*" && c.application != p.Params["application"] {
		return false
	}
	if c.service != "*" && c.service != p.ServiceKey() {
		return false
	}
	for k, v := range c.tildes {
		if v != "" && v != "*" && v != p.Params[k] {
			return false
		}
	}
	return c.match == nil || c.match.matches(p)
}

// ApplyProvider returns the provider's parameters as its own override rules make them,
// as the provider would re-register them: the application rule's configurators, then
// the service rule's (either may be nil), each matching one overwriting what it sets.
// It returns p.Params itself, unchanged, when no configurator matches.
func ApplyProvider(p Provider, app, service *Rule) (map[string]string, bool) {
	out := p.Params
	changed := false
	for _, r := range []*Rule{app, service} {
		if r == nil || r.override == nil {
			continue
		}
		for i := range r.override {
			c := &r.override[i]
			if !c.applies(p) {
				continue
			}
			if !changed {
				out, changed = maps.Clone(p.Params), true
			}
			maps.Copy(out, c.params)
		}
	}
	return out, changed
}

// Rule is a parsed override rule with its configurators expanded, ready to apply.
type Rule struct {
	Key      Key
	Override *Override
	override []configurator

	consumer         ConsumerSettings
	consumerProblems []string
}

// NewRule expands an override rule read at key.
func NewRule(key Key, o *Override) *Rule {
	r := &Rule{Key: key, Override: o, override: o.configurators(key)}
	r.consumer, r.consumerProblems = r.consumerSettings()
	return r
}

// ProviderItems is how many provider-side configurators the rule has (the rest are
// consumer-side or off).
func (r *Rule) ProviderItems() int { return len(r.override) }

// matches is Java's ConditionMatch.isMatch for a provider URL: address against the
// provider's host, providerAddress against ip:port, service against its service key,
// app against its application, every param against its parameters.
func (m *ConditionMatch) matches(p Provider) bool {
	if m.Address != nil && !m.Address.matches(p.IP) {
		return false
	}
	if m.ProviderAddress != nil && !m.ProviderAddress.matches(p.Address()) {
		return false
	}
	if m.Service != nil && !m.Service.matches(p.ServiceKey(), true) {
		return false
	}
	if app, ok := p.Params["application"]; m.Application != nil && !m.Application.matches(app, ok) {
		return false
	}
	for _, pm := range m.Param {
		v, ok := p.Params[pm.Key]
		if pm.Key == "" || !pm.Value.matches(v, ok) {
			return false
		}
	}
	return true
}

func (l *ListStringMatch) matches(v string, present bool) bool {
	for i := range l.Oneof {
		if l.Oneof[i].matches(v, present) {
			return true
		}
	}
	return false
}

// matches is Java's StringMatch.isMatch: the first matcher set decides; a missing value
// only matches empty.
func (s *StringMatch) matches(v string, present bool) bool {
	switch {
	case s.Exact != nil && present:
		return v == string(*s.Exact)
	case s.Prefix != nil && present:
		return strings.HasPrefix(v, string(*s.Prefix))
	case s.Regex != nil && present:
		re, err := compileWhole(string(*s.Regex))
		return err == nil && re.MatchString(v)
	case s.Wildcard != nil && present:
		return string(*s.Wildcard) == "*" || v == string(*s.Wildcard)
	case s.Empty != nil:
		return v == ""
	case s.NoEmpty != nil:
		return v != ""
	}
	return false
}

// matches is Java's AddressMatch.isMatch.
func (a *AddressMatch) matches(v string) bool {
	switch {
	case v == "":
		return false
	case a.Cird != "":
		return v == a.Cird || MatchIPExpression(a.Cird, v)
	case a.Wildcard != "":
		return a.Wildcard == anyHost || a.Wildcard == "*" || globMatch(a.Wildcard, v, nil)
	case a.Exact != "":
		return v == a.Exact
	}
	return false
}

// ConsumerSettings are what a service's consumer-side override items set for every
// consumer: the call timeout, the retries, the load balancer (Dubbo's names).
type ConsumerSettings struct {
	Timeout     time.Duration
	HasTimeout  bool
	Retries     int
	HasRetries  bool
	LoadBalance string // random, roundrobin, leastactive, shortestresponse
}

// Empty reports whether nothing is set.
func (s ConsumerSettings) Empty() bool { return !s.HasTimeout && !s.HasRetries && s.LoadBalance == "" }

// Consumer returns the consumer-side settings a service rule gives every consumer, and
// why items were left out (computed once, when the rule is read).
func (r *Rule) Consumer() (ConsumerSettings, []string) { return r.consumer, r.consumerProblems }

// consumerSettings computes Consumer: the consumer-side settings, and
// why items were left out: items for particular consumers (addresses other than
// 0.0.0.0, applications, a v3.0 match) or particular providers (providerAddresses)
// cannot be expressed in routes shared by every sidecar; values that are not numbers,
// and load balancers sidecars do not have, are left out too. Items apply in Java's
// order (host, then priority): the last one setting a value wins.
func (r *Rule) consumerSettings() (ConsumerSettings, []string) {
	var out ConsumerSettings
	var problems []string
	type item struct {
		i        int
		priority int
		params   Params
	}
	var items []item
	o := r.Override
	for i, c := range o.Configs {
		if c.Side != "consumer" || !o.ItemOn(i) {
			continue
		}
		all := true
		for _, a := range c.Addresses {
			if h := addressHost(a); h != anyHost {
				all = false
			}
		}
		switch {
		case !all || len(c.Applications) > 0 || (o.ConfigVersion == V30 && c.Match != nil):
			problems = append(problems, fmt.Sprintf("consumer item %d applies to particular consumers: not expressible in routes every sidecar shares", i))
			continue
		case len(c.ProviderAddresses) > 0:
			problems = append(problems, fmt.Sprintf("consumer item %d applies to particular providers (providerAddresses): not expressible per route", i))
			continue
		}
		p, _ := strconv.Atoi(c.Parameters["priority"])
		items = append(items, item{i: i, priority: p, params: c.Parameters})
	}
	sort.SliceStable(items, func(a, b int) bool { return items[a].priority < items[b].priority })
	for _, it := range items {
		for k, v := range it.params {
			switch k {
			case "timeout":
				ms, err := strconv.Atoi(v)
				if err != nil || ms < 1 || ms > 24*3600*1000 {
					problems = append(problems, fmt.Sprintf("consumer item %d: timeout %q is not 1ms..24h in milliseconds", it.i, v))
					continue
				}
				out.Timeout, out.HasTimeout = time.Duration(ms)*time.Millisecond, true
			case "retries":
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > 100 {
					problems = append(problems, fmt.Sprintf("consumer item %d: retries %q is not a count of 0..100", it.i, v))
					continue
				}
				out.Retries, out.HasRetries = n, true
			case "loadbalance":
				switch v {
				case "random", "roundrobin", "leastactive", "shortestresponse":
					out.LoadBalance = v
				default:
					problems = append(problems, fmt.Sprintf("consumer item %d: loadbalance %q has no sidecar equivalent", it.i, v))
				}
			default:
				if strings.HasSuffix(k, ".timeout") || strings.HasSuffix(k, ".retries") || strings.HasSuffix(k, ".loadbalance") {
					problems = append(problems, fmt.Sprintf("consumer item %d: per-method %s is not applied", it.i, k))
				}
			}
		}
	}
	sort.Strings(problems)
	return out, problems
}
