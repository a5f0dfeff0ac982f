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

package registry_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	networking "istio.io/api/networking/v1alpha3"

	"istio.io/istio/pilot/pkg/config/memory"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/schema/collection"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/monitoring/monitortest"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry/registrytest"
)

// These drive the controller as config centers do (the real ZooKeeper and Nacos tests
// are in their packages).

const (
	svcRule = iface + "::.configurators"
	disable = "configs:\n- side: provider\n  addresses: [10.0.0.2]\n  parameters: {disabled: true}\n"
	weight7 = "configs:\n- side: provider\n  parameters: {weight: 7}\n"
)

// governed is a synced controller with registry zk and the config centers given, each
// delivered once with rules.
func governed(t *testing.T, opts registry.Options, centers map[string]map[string]string, order ...string) (*registry.Controller, *registrytest.Recorder) {
	t.Helper()
	rec := registrytest.NewRecorder()
	opts.SyncTimeout = time.Hour
	c, err := registry.NewController(opts, rec)
	if err != nil {
		t.Fatal(err)
	}
	c.AppendServiceHandler(rec.FullPush)
	all := append([]string{"zk"}, order...)
	for _, s := range all {
		if err := c.AddSource(s, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range all {
		if _, err := c.AddConfigCenter(s, "test"); err != nil {
			t.Fatal(err)
		}
	}
	c.SourceConnected("zk", true, false)
	c.SetProviders("zk", iface, []string{node("10.0.0.1", 1, iface, "application=a"), node("10.0.0.2", 1, iface, "application=a")}, time.Now())
	c.SourceSynced("zk")
	for _, s := range order {
		c.SourceSynced(s)
	}
	if c.HasSynced() {
		t.Fatal("synced before the config centers were read")
	}
	for _, s := range all {
		c.SetRules(s+registry.ConfigSourceSuffix, bodies(centers[s]), time.Now())
		c.SourceSynced(s + registry.ConfigSourceSuffix)
	}
	if !c.HasSynced() {
		t.Fatal("not synced")
	}
	return c, rec
}

func bodies(m map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

func TestOverrideRulesInTheController(t *testing.T) {
	mt := monitortest.New(t)
	c, rec := governed(t, registry.Options{}, map[string]map[string]string{"zk": {svcRule: disable}})
	if got := rec.Weights(hostname); got != "10.0.0.1:1=100" {
		t.Fatalf("at sync: %q, want 10.0.0.2 disabled", got)
	}
	full := rec.Count("full ")
	set := func(rules map[string]string) { c.SetRules("zk/config", bodies(rules), time.Now()) }
	step := func(name, want string) {
		t.Helper()
		if got := rec.Weights(hostname); got != want {
			t.Fatalf("%s: endpoints %q, want %q", name, got, want)
		}
	}

	set(map[string]string{svcRule: "configs: [\n"})
	step("junk keeps the last valid rule", "10.0.0.1:1=100")
	mt.Assert("dubbo_governance_rule_errors_total", map[string]string{"kind": "configurators"}, monitortest.Exactly(1))
	mt.Assert("dubbo_governance_rules", map[string]string{"kind": "configurators", "status": "invalid"}, monitortest.Exactly(1))

	set(map[string]string{svcRule: weight7})
	step("a valid body replaces it", "10.0.0.1:1=7 10.0.0.2:1=7")

	set(map[string]string{svcRule: weight7, "a.configurators": "configs:\n- side: provider\n  addresses: [10.0.0.1]\n  parameters: {weight: 3, timeout: 9}\n"})
	step("the service rule is applied after the application rule", "10.0.0.1:1=7 10.0.0.2:1=7")
	set(map[string]string{"a.configurators": "configs:\n- side: provider\n  addresses: [10.0.0.1]\n  parameters: {weight: 3}\n"})
	step("the application rule alone", "10.0.0.1:1=3 10.0.0.2:1=100")

	set(map[string]string{"b.configurators": weight7})
	step("another application's rule", "10.0.0.1:1=100 10.0.0.2:1=100")

	// A provider re-registers (new node) while a rule is in effect: the rule applies to it.
	set(map[string]string{svcRule: disable})
	c.SetProviders("zk", iface, []string{node("10.0.0.1", 1, iface, "application=a"), node("10.0.0.2", 1, iface, "application=a", "timestamp=2")}, time.Now())
	step("a re-registered provider stays disabled", "10.0.0.1:1=100")

	set(nil)
	step("all deleted", "10.0.0.1:1=100 10.0.0.2:1=100")
	if n := rec.Count("full "); n != full {
		t.Fatalf("%d full pushes for rule changes, want none", n-full)
	}
	mt.Assert("dubbo_governance_rules", map[string]string{"kind": "configurators", "status": "applied"}, monitortest.Exactly(0))
}

// TestRuleDisablingEveryProviderIsNotEmptyProtected: empty protection keeps providers a
// registry glitch lost, not those an operator disabled.
func TestRuleDisablingEveryProviderIsNotEmptyProtected(t *testing.T) {
	c, rec := governed(t, registry.Options{EmptyProtection: true}, nil)
	c.SetRules("zk/config", bodies(map[string]string{svcRule: "configs:\n- side: provider\n  parameters: {disabled: true}\n"}), time.Now())
	if got := rec.Weights(hostname); got != "" {
		t.Fatalf("endpoints %q, want none: every provider is disabled", got)
	}
	var reasons []string
	for _, i := range c.Debug().Interfaces {
		for _, ig := range i.Ignored {
			reasons = append(reasons, ig.Reason)
		}
	}
	if len(reasons) != 2 || reasons[0] != "disabled by an override rule" {
		t.Fatalf("dubboz ignored reasons %v", reasons)
	}
}

// TestFirstConfigCenterWins: a key held by two config centers comes from the first
// registry configured; when it leaves that one, the other's applies.
func TestFirstConfigCenterWins(t *testing.T) {
	c, rec := governed(t, registry.Options{}, map[string]map[string]string{
		"zk":  {svcRule: weight7},
		"zk2": {svcRule: disable},
	}, "zk2")
	if got := rec.Weights(hostname); got != "10.0.0.1:1=7 10.0.0.2:1=7" {
		t.Fatalf("endpoints %q, want the first config center's rule", got)
	}
	var from string
	for _, r := range c.Debug().Governance {
		if r.Key == svcRule {
			from = r.From
		}
	}
	if from != "zk/config" {
		t.Fatalf("rule from %q", from)
	}
	c.SetRules("zk/config", nil, time.Now())
	if got := rec.Weights(hostname); got != "10.0.0.1:1=100" {
		t.Fatalf("endpoints %q, want the second config center's rule", got)
	}
}

// TestRulesNeverChangeIdentity: a rule sets weights and flags, never whether a provider
// runs a sidecar or as whom (consumers' TLS and SANs follow those).
func TestRulesNeverChangeIdentity(t *testing.T) {
	c, rec := governed(t, registry.Options{}, nil)
	c.SetRules("zk/config", bodies(map[string]string{svcRule: "configs:\n- side: provider\n  parameters: {weight: 5, security.istio.io/tlsMode: istio, serviceAccount: default/evil}\n"}), time.Now())
	eps := rec.Last(hostname)
	if len(eps) != 2 || eps[0].LbWeight != 5 {
		t.Fatalf("endpoints %v: want both at weight 5", eps)
	}
	for _, ep := range eps {
		if ep.TLSMode == "istio" || ep.ServiceAccount != "" {
			t.Fatalf("a rule changed a provider's identity: tls %q, account %q", ep.TLSMode, ep.ServiceAccount)
		}
	}
}

// TestIgnoredKeysLeave: keys dubbo-istiod does not read are shown while they exist, and
// leave when deleted.
func TestIgnoredKeysLeave(t *testing.T) {
	c, _ := governed(t, registry.Options{}, map[string]map[string]string{"zk": {"a.script-router": "x"}})
	status := func() string {
		for _, r := range c.Debug().Governance {
			if r.Key == "a.script-router" {
				return r.Status
			}
		}
		return ""
	}
	if s := status(); s != registry.RuleIgnored {
		t.Fatalf("script route: status %q, want ignored", s)
	}
	c.SetRules("zk/config", nil, time.Now())
	if s := status(); s != "" {
		t.Fatalf("a deleted key is still listed (%s)", s)
	}
}

// TestEmptyProtectionWithAPartialRule: a rule disabling one provider does not turn off
// empty protection for a registry glitch that loses the others.
func TestEmptyProtectionWithAPartialRule(t *testing.T) {
	c, rec := governed(t, registry.Options{EmptyProtection: true}, map[string]map[string]string{"zk": {svcRule: disable}})
	if got := rec.Weights(hostname); got != "10.0.0.1:1=100" {
		t.Fatalf("endpoints %q", got)
	}
	// The registry lists only the disabled provider (10.0.0.1 lost in a glitch).
	c.SetProviders("zk", iface, []string{node("10.0.0.2", 1, iface, "application=a")}, time.Now())
	if got := rec.Weights(hostname); got != "10.0.0.1:1=100" {
		t.Fatalf("endpoints %q: empty protection must keep 10.0.0.1", got)
	}
}

// TestRouteRulesMakeVirtualServices: a condition route by method and a tag route become
// one VirtualService of the interface's hostname and generated services of the selected
// providers; provider changes are endpoint updates of those.
func TestRouteRulesMakeVirtualServices(t *testing.T) {
	store := newRouteStore()
	c, rec := routed(t, registry.Options{}, store)
	c.SetProviders("zk", iface, []string{
		node("10.0.0.1", 20880, iface, "application=a"),
		node("10.0.0.2", 20880, iface, "application=a"),
		node("10.0.0.3", 20880, iface, "application=a"),
	}, time.Now())
	c.SetRules("zk/config", bodies(map[string]string{
		iface + "::.condition-router": "force: true\nconditions: ['method=refund => host=10.0.0.1']\n",
		"a.tag-router":                "tags:\n- name: gray\n  addresses: ['10.0.0.3:20880']\n",
	}), time.Now())
	vs := store.Get(gvk.VirtualService, registry.VirtualServicePrefix+hostname, "dubbo")
	if vs == nil {
		t.Fatalf("no VirtualService; have %v", store.List(gvk.VirtualService, ""))
	}
	spec := vs.Spec.(*networking.VirtualService)
	var lines []string
	for _, hr := range spec.Http {
		var m []string
		for _, mr := range hr.Match {
			s := fmt.Sprintf("port=%d", mr.Port)
			if mr.Method != nil {
				s += " method=" + mr.Method.GetExact()
			}
			for _, k := range slices.Sorted(maps.Keys(mr.Headers)) {
				s += " " + k + "=" + mr.Headers[k].GetExact() + mr.Headers[k].GetRegex()
			}
			m = append(m, s)
		}
		var d []string
		for _, r := range hr.Route {
			d = append(d, r.Destination.Host)
		}
		lines = append(lines, strings.Join(m, " | ")+" -> "+strings.Join(d, ","))
	}
	t.Logf("VirtualService:\n%s", strings.Join(lines, "\n"))
	dv := c.Debug()
	var routes *registry.DebugRoutes
	for _, i := range dv.Interfaces {
		if i.Interface == iface {
			routes = i.Routes
		}
	}
	if routes == nil || routes.Error != "" {
		t.Fatalf("dubboz routes %+v", routes)
	}
	sel := map[string]string{}
	for _, g := range routes.Generated {
		sel[g.Selection] = strings.Join(g.Endpoints, ",")
		if c.GetService(host.Name(g.Host)) == nil {
			t.Fatalf("generated service %s not served", g.Host)
		}
		if got := strings.Join(rec.Addrs(g.Host), ","); got != strings.Join(g.Endpoints, ",") {
			t.Fatalf("generated service %s endpoints %q, dubboz %q", g.Host, got, strings.Join(g.Endpoints, ","))
		}
	}
	t.Logf("generated: %v", sel)
	for want, eps := range map[string]string{"tag=gray": "10.0.0.3:20880", "untagged service#0": "10.0.0.1:20880", "untagged": "10.0.0.1:20880,10.0.0.2:20880"} {
		if sel[want] != eps {
			t.Errorf("selection %q: endpoints %q, want %q", want, sel[want], eps)
		}
	}
	// A new untagged provider: an endpoint update of the generated services, no new VirtualService.
	full := rec.Count("full ")
	c.SetProviders("zk", iface, []string{
		node("10.0.0.1", 20880, iface, "application=a"),
		node("10.0.0.2", 20880, iface, "application=a"),
		node("10.0.0.3", 20880, iface, "application=a"),
		node("10.0.0.4", 20880, iface, "application=a"),
	}, time.Now())
	if rec.Count("full ") != full {
		t.Fatalf("a provider joining made %d full pushes", rec.Count("full ")-full)
	}
	for _, g := range routes.Generated {
		if g.Selection == "untagged" {
			if got := strings.Join(rec.Addrs(g.Host), ","); got != "10.0.0.1:20880,10.0.0.2:20880,10.0.0.4:20880" {
				t.Fatalf("untagged selection: %q", got)
			}
		}
	}
	// Rules deleted: the VirtualService and the generated services go.
	c.SetRules("zk/config", nil, time.Now())
	if store.Get(gvk.VirtualService, registry.VirtualServicePrefix+hostname, "dubbo") != nil {
		t.Fatal("the VirtualService outlived its rules")
	}
	for _, g := range routes.Generated {
		if c.GetService(host.Name(g.Host)) != nil {
			t.Fatalf("generated service %s outlived its rules", g.Host)
		}
	}
}

// TestConsumerSettings: a service rule's consumer-side timeout, retries and load
// balancer become the route's and the DestinationRule's, for every consumer; items for
// particular consumers are reported and left out.
func TestConsumerSettings(t *testing.T) {
	store := newRouteStore()
	c, _ := routed(t, registry.Options{}, store)
	c.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface, "application=a")}, time.Now())
	c.SetRules("zk/config", bodies(map[string]string{svcRule: `configVersion: v2.7
scope: service
key: com.example.DemoService
configs:
- side: consumer
  parameters: {timeout: 1500, retries: 0, loadbalance: roundrobin}
- side: consumer
  addresses: [10.9.9.9]
  parameters: {timeout: 9}
`}), time.Now())
	vs := store.Get(gvk.VirtualService, registry.VirtualServicePrefix+hostname, "dubbo")
	dr := store.Get(gvk.DestinationRule, registry.VirtualServicePrefix+hostname, "dubbo")
	if vs == nil || dr == nil {
		t.Fatalf("VirtualService %v, DestinationRule %v", vs, dr)
	}
	hr := vs.Spec.(*networking.VirtualService).Http
	if len(hr) != 1 || hr[0].Timeout.AsDuration() != 1500*time.Millisecond || hr[0].Retries.GetAttempts() != 0 || hr[0].Retries == nil ||
		hr[0].Route[0].Destination.Host != hostname {
		t.Fatalf("routes %v", hr)
	}
	if lb := dr.Spec.(*networking.DestinationRule).TrafficPolicy.LoadBalancer.GetSimple(); lb != networking.LoadBalancerSettings_ROUND_ROBIN {
		t.Fatalf("load balancer %v", lb)
	}
	var rule registry.DebugRule
	for _, r := range c.Debug().Governance {
		if r.Key == svcRule {
			rule = r
		}
	}
	if rule.Status != registry.RuleApplied || !strings.Contains(rule.Error, "particular consumers") {
		t.Fatalf("rule %+v: want applied, with the item for one consumer reported", rule)
	}
}

// routed is a synced controller with a route store, registry zk and its config center.
func routed(t *testing.T, opts registry.Options, store model.ConfigStore) (*registry.Controller, *registrytest.Recorder) {
	t.Helper()
	rec := registrytest.NewRecorder()
	opts.SyncTimeout, opts.ServicePort, opts.Namespace = time.Hour, 20880, "dubbo"
	c, err := registry.NewController(opts, rec)
	if err != nil {
		t.Fatal(err)
	}
	c.AppendServiceHandler(rec.FullPush)
	c.SetRouteStore(store)
	if err := c.AddSource("zk", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddConfigCenter("zk", "test"); err != nil {
		t.Fatal(err)
	}
	c.SourceConnected("zk", true, false)
	c.SourceSynced("zk")
	c.SetRules("zk/config", nil, time.Now())
	c.SourceSynced("zk/config")
	if !c.HasSynced() {
		t.Fatal("not synced")
	}
	return c, rec
}

func newRouteStore() *memory.Controller {
	return memory.NewController(memory.Make(collection.SchemasFor(collections.VirtualService, collections.DestinationRule)))
}

func generated(c *registry.Controller, ifc string) map[string]string {
	out := map[string]string{}
	for _, i := range c.Debug().Interfaces {
		if i.Interface == ifc && i.Routes != nil {
			for _, g := range i.Routes.Generated {
				out[g.Selection] = strings.Join(g.Endpoints, ",")
			}
		}
	}
	return out
}

const grayRule = "tags:\n- name: gray\n  addresses: ['10.0.0.1:20880']\n"

// TestRoutesRouteWeightZeroProviders: Java routes first and balances after, so an
// untagged call reaches untagged providers at weight 0 when they are all there is.
func TestRoutesRouteWeightZeroProviders(t *testing.T) {
	c, _ := routed(t, registry.Options{}, newRouteStore())
	c.SetRules("zk/config", bodies(map[string]string{"a.tag-router": grayRule}), time.Now())
	c.SetProviders("zk", iface, []string{
		node("10.0.0.1", 20880, iface, "application=a"),
		node("10.0.0.2", 20880, iface, "application=a", "weight=0"),
		node("10.0.0.3", 20880, iface, "application=a", "weight=0"),
	}, time.Now())
	if got := generated(c, iface)["untagged"]; got != "10.0.0.2:20880,10.0.0.3:20880" {
		t.Fatalf("untagged selection %q, want the weight-0 untagged providers", got)
	}
}

// TestRoutesSurviveEmptyProtection: while empty protection holds the last endpoints,
// the routes stay (gray calls keep out of untagged providers).
func TestRoutesSurviveEmptyProtection(t *testing.T) {
	store := newRouteStore()
	c, _ := routed(t, registry.Options{EmptyProtection: true}, store)
	c.SetRules("zk/config", bodies(map[string]string{"a.tag-router": grayRule}), time.Now())
	c.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface, "application=a"), node("10.0.0.2", 20880, iface, "application=a")}, time.Now())
	before := generated(c, iface)
	c.SetProviders("zk", iface, nil, time.Now())
	if got := generated(c, iface); fmt.Sprint(got) != fmt.Sprint(before) || store.Get(gvk.VirtualService, registry.VirtualServicePrefix+hostname, "dubbo") == nil {
		t.Fatalf("routes under empty protection: %v, want %v and the VirtualService kept", got, before)
	}
}

// TestRoutesFollowTheHostname: when an interface leaves, another one mapping to the same
// hostname takes it over with its own routes.
func TestRoutesFollowTheHostname(t *testing.T) {
	store := newRouteStore()
	c, _ := routed(t, registry.Options{}, store)
	other := "com.example.demoService" // the same hostname
	c.SetRules("zk/config", bodies(map[string]string{"a.tag-router": grayRule, "b.tag-router": "tags:\n- name: blue\n  addresses: ['10.0.0.9:20880']\n"}), time.Now())
	c.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface, "application=a")}, time.Now())
	c.SetProviders("zk", other, []string{node("10.0.0.9", 20880, other, "application=b")}, time.Now())
	c.RemoveInterface("zk", iface, time.Now())
	if got := generated(c, other)["tag=blue"]; got != "10.0.0.9:20880" {
		t.Fatalf("the new owner's routes: %v", generated(c, other))
	}
	vs := store.Get(gvk.VirtualService, registry.VirtualServicePrefix+hostname, "dubbo")
	if vs == nil || !strings.Contains(vs.Annotations["dubbo.apache.org/rules"], "b.tag-router") {
		t.Fatalf("VirtualService after the handover: %v", vs)
	}
}

// failingStore refuses writes while fail is set.
type failingStore struct {
	model.ConfigStore
	fail bool
}

func (f *failingStore) Create(cfg config.Config) (string, error) {
	if f.fail {
		return "", fmt.Errorf("refused")
	}
	return f.ConfigStore.Create(cfg)
}

func (f *failingStore) Update(cfg config.Config) (string, error) {
	if f.fail {
		return "", fmt.Errorf("refused")
	}
	return f.ConfigStore.Update(cfg)
}

// TestRoutesKeptWhenTheStoreFails: a VirtualService that cannot be stored leaves the
// previous routes and generated services in effect, and is tried again at the next change.
func TestRoutesKeptWhenTheStoreFails(t *testing.T) {
	store := &failingStore{ConfigStore: newRouteStore()}
	c, _ := routed(t, registry.Options{}, store)
	c.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface, "application=a"), node("10.0.0.2", 20880, iface, "application=a")}, time.Now())
	c.SetRules("zk/config", bodies(map[string]string{"a.tag-router": grayRule}), time.Now())
	before := generated(c, iface)
	store.fail = true
	c.SetRules("zk/config", bodies(map[string]string{"a.tag-router": strings.Replace(grayRule, "gray", "blue", 1)}), time.Now())
	if got := generated(c, iface); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("generated services after a failed store: %v, want %v", got, before)
	}
	for _, svc := range c.Services() {
		if strings.HasPrefix(string(svc.Hostname), "tag-blue-") {
			t.Fatalf("a generated service of the refused routes stayed: %s", svc.Hostname)
		}
	}
	store.fail = false
	c.SetProviders("zk", iface, []string{node("10.0.0.1", 20880, iface, "application=a"), node("10.0.0.3", 20880, iface, "application=a")}, time.Now())
	if _, ok := generated(c, iface)["tag=blue"]; !ok {
		t.Fatalf("not tried again: %v", generated(c, iface))
	}
}
