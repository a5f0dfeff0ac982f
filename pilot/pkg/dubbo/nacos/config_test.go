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

package nacos_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/vo"
	"istio.io/istio/pkg/test/util/retry"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/extension"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	nacosfw "github.com/dubbo-istiod/dubbo-istiod/tests/framework/nacos"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// Rule bodies byte for byte as dubbo-admin writes them (docs/governance.md), published
// in group "dubbo" with dataId = the rule key, as Dubbo's Nacos config center has them:
// dubbo-admin's new weight node (top-level enabled: false, no configVersion, the item's
// own enabled: true), and its override UI's disable.
const (
	rulesGroup      = "dubbo"
	greetRuleKey    = greet + "::.configurators"
	adminWeightNode = `configs:
- addresses: [10.0.0.1:20880]
  enabled: true
  parameters: {weight: 50}
  side: provider
  type: weight
enabled: false
key: 'com.example.GreetService::'
scope: service
`
	adminDisable = `configVersion: v2.7
scope: service
key: com.example.GreetService
enabled: true
configs:
- addresses: [10.0.0.2]
  side: provider
  parameters:
    disabled: true
`
)

// governanceFlags are istiod's flags with the governance rules read.
func governanceFlags(t *testing.T, registries ...string) extension.Flags {
	f := flags(t, registries...)
	f.Governance = true
	return f
}

// TestOverrideRulesFromNacos: override rules in a real Nacos-protocol server's config
// center, published as dubbo-admin publishes them, shape the providers' endpoints; each
// change is one endpoint update (no full push); junk is reported and changes nothing;
// a deleted rule no longer applies.
func TestOverrideRulesFromNacos(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	for _, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		srv.RegisterInstance(t, "", greetService, "", ip, 20880, providerMetadata("greet"))
	}
	// A provider on another port of 10.0.0.1: the weight rule names ip:port, so it keeps 100.
	srv.RegisterInstance(t, "", greetService, "", "10.0.0.1", 20881, providerMetadata("greet"))
	// The weight rule exists before istiod starts: the first endpoints already carry it.
	srv.PublishConfig(t, "", greetRuleKey, rulesGroup, adminWeightNode)
	// Not a rule: never read.
	srv.PublishConfig(t, "", "dubbo.properties", rulesGroup, "dubbo.registry.address=nacos://x")

	e := start(t, governanceFlags(t, srv.URL()))
	retry.UntilSuccessOrFail(t, func() error {
		if !e.ctl.HasSynced() {
			return fmt.Errorf("not synced")
		}
		return nil
	}, retry.Timeout(wait))
	want := func(w string) func() error {
		return func() error {
			if got := e.rec.Weights(greetHost); got != w {
				return fmt.Errorf("endpoints %q, want %q", got, w)
			}
			return nil
		}
	}
	retry.UntilSuccessOrFail(t, want("10.0.0.1:20880=50 10.0.0.1:20881=100 10.0.0.2:20880=100"), retry.Timeout(wait))
	full := e.rec.Count("full ")

	// dubbo-admin disables 10.0.0.2 (any port): out of the endpoints, by an EDS update.
	start := time.Now()
	srv.PublishConfig(t, "", greetRuleKey, rulesGroup, adminWeightNode+"\n") // same rule, other bytes
	srv.PublishConfig(t, "", greetRuleKey, rulesGroup, adminDisable)
	retry.UntilSuccessOrFail(t, want("10.0.0.1:20880=100 10.0.0.1:20881=100"), retry.Timeout(wait))
	t.Logf("disable rule reached the endpoints %v after its publish", time.Since(start))
	ruleStatus(t, e, greetRuleKey, registry.RuleApplied)

	// Junk on the same key: reported, the last valid rule stays in effect.
	start = time.Now()
	srv.PublishConfig(t, "", greetRuleKey, rulesGroup, "configs: [\n")
	ruleStatus(t, e, greetRuleKey, registry.RuleInvalid)
	t.Logf("junk reported %v after its publish", time.Since(start))
	if err := want("10.0.0.1:20880=100 10.0.0.1:20881=100")(); err != nil {
		t.Fatalf("junk changed the endpoints: %v", err)
	}

	// An application-scope rule on the application the instances name (metadata
	// application=greet): its key is watched too, and it weighs every provider; the
	// disable still applies.
	start = time.Now()
	srv.PublishConfig(t, "", "greet.configurators", rulesGroup, `configVersion: v3.0
scope: application
key: greet
enabled: true
configs:
- side: provider
  parameters:
    weight: 7
`)
	retry.UntilSuccessOrFail(t, want("10.0.0.1:20880=7 10.0.0.1:20881=7"), retry.Timeout(wait))
	t.Logf("application rule reached the endpoints %v after its publish", time.Since(start))

	// dubbo-admin deletes the disable rule: 10.0.0.2 is back.
	start = time.Now()
	c := srv.ConfigClient(t, "")
	if ok, err := c.DeleteConfig(vo.ConfigParam{DataId: greetRuleKey, Group: rulesGroup}); !ok || err != nil {
		t.Fatalf("delete %s: ok=%v err=%v", greetRuleKey, ok, err)
	}
	retry.UntilSuccessOrFail(t, want("10.0.0.1:20880=7 10.0.0.1:20881=7 10.0.0.2:20880=7"), retry.Timeout(wait))
	t.Logf("deleted rule left the endpoints %v after the delete", time.Since(start))
	if n := e.rec.Count("full "); n != full {
		t.Fatalf("%d full pushes for rule changes, want 0 (endpoint updates only)", n-full)
	}
	if n := e.rec.Count("eds " + greetHost); n == 0 {
		t.Fatalf("no EDS update")
	}
	for _, d := range e.ctl.Debug().Governance {
		if d.Key == "dubbo.properties" || d.Key == greetRuleKey {
			t.Errorf("rule %s shown, want it never read or deleted: %+v", d.Key, d)
		}
	}
	// The keys of the interface (2) and of its application (3) are watched.
	n := e.nacosView(t)
	if n["rulesGroup"] != rulesGroup || n["ruleKeys"] != float64(5) {
		t.Errorf("dubboz nacos: rulesGroup %v ruleKeys %v, want %s and 5", n["rulesGroup"], n["ruleKeys"], rulesGroup)
	}
}

// TestRulesReadBeforeReady: istiod is not ready before the config center was read, so
// the first push never sends an instance a rule disabled.
func TestRulesReadBeforeReady(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	srv.RegisterInstance(t, "", greetService, "", "10.0.0.1", 20880, providerMetadata("greet"))
	srv.RegisterInstance(t, "", greetService, "", "10.0.0.2", 20880, providerMetadata("greet"))
	srv.PublishConfig(t, "", greetRuleKey, rulesGroup, adminDisable)
	// A release reaches readers within about a second (Polaris's config cache). Read at
	// most ~3 times a second: the SDK limits reads of a key to 5 a second per process.
	retry.UntilSuccessOrFail(t, func() error {
		if got, err := srv.GetConfig(t, "", greetRuleKey, rulesGroup); got != adminDisable {
			return fmt.Errorf("rule not readable yet: %q %v", got, err)
		}
		return nil
	}, retry.Timeout(wait), retry.Delay(300*time.Millisecond))
	e := start(t, governanceFlags(t, srv.URL()))
	retry.UntilSuccessOrFail(t, func() error {
		if !e.ctl.HasSynced() {
			return fmt.Errorf("not synced")
		}
		return nil
	}, retry.Timeout(wait), retry.Delay(10*time.Millisecond))
	if got := e.rec.Weights(greetHost); got != "10.0.0.1:20880=100" {
		t.Fatalf("endpoints at ready: %q, want the disabled 10.0.0.2 out", got)
	}
}

// TestRulesKeptWhileServerDown: a Nacos outage keeps the rules read last, and the
// re-reads after the reconnection do not lose them: the disabled instance never comes
// back.
func TestRulesKeptWhileServerDown(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	srv.RegisterInstance(t, "", greetService, "", "10.0.0.1", 20880, providerMetadata("greet"))
	srv.RegisterInstance(t, "", greetService, "", "10.0.0.2", 20880, providerMetadata("greet"))
	srv.PublishConfig(t, "", greetRuleKey, rulesGroup, adminDisable)
	e := start(t, governanceFlags(t, srv.URL()))
	retry.UntilSuccessOrFail(t, e.rec.WantAddrs(greetHost, "10.0.0.1:20880"), retry.Timeout(wait))
	ruleStatus(t, e, greetRuleKey, registry.RuleApplied)
	// Updates that put 10.0.0.2 back (two endpoints), before and after the outage.
	back := func() int { return e.rec.Count("eds "+greetHost+" 2") + e.rec.Count("edscache "+greetHost+" 2") }
	before := back()

	srv.Kill()
	retry.UntilSuccessOrFail(t, func() error {
		if e.nacosView(t)["connected"] != false {
			return errorf("still connected")
		}
		return nil
	}, retry.Timeout(wait))
	// The lists fail meanwhile (the config source reports it), the rule stays.
	retry.UntilSuccessOrFail(t, func() error {
		for _, r := range e.dubboz(t).Registries {
			if r.Name != srv.Address()+registry.ConfigSourceSuffix {
				continue
			}
			if r.Connected || len(r.ListErrors) == 0 {
				return fmt.Errorf("config source %s: connected %v, list errors %v, want disconnected and failing", r.Name, r.Connected, r.ListErrors)
			}
			return nil
		}
		return fmt.Errorf("no config source in /debug/dubboz")
	}, retry.Timeout(wait))
	ruleStatus(t, e, greetRuleKey, registry.RuleApplied)
	srv.Start()
	up := time.Now()
	// After the reconnection every key is read again (a new session), then the list
	// completes: wait for a list after the restart.
	retry.UntilSuccessOrFail(t, func() error {
		n := e.nacosView(t)
		last, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(n["lastList"]))
		if n["connected"] != true || !last.After(up) {
			return fmt.Errorf("no list since the restart yet (connected %v, last list %v)", n["connected"], n["lastList"])
		}
		return nil
	}, retry.Timeout(wait))
	t.Logf("listed again %v after the server started", time.Since(up))
	ruleStatus(t, e, greetRuleKey, registry.RuleApplied)
	// Changes are delivered again once the client listens on the new connection.
	published := time.Now()
	srv.PublishConfig(t, "", "greet.configurators", rulesGroup, "configs:\n- side: provider\n  parameters: {weight: 7}\n")
	retry.UntilSuccessOrFail(t, func() error {
		if got := e.rec.Weights(greetHost); got != "10.0.0.1:20880=7" {
			return fmt.Errorf("endpoints %q, want 10.0.0.1:20880=7", got)
		}
		return nil
	}, retry.Timeout(wait))
	t.Logf("a rule published after the restart reached the endpoints in %v", time.Since(published))
	if n := back() - before; n != 0 {
		t.Errorf("%d endpoint updates with the disabled instance back during the outage or after it", n)
	}
}

func ruleStatus(t *testing.T, e *env, key, status string) registry.DebugRule {
	t.Helper()
	var out registry.DebugRule
	retry.UntilSuccessOrFail(t, func() error {
		for _, r := range e.ctl.Debug().Governance {
			if r.Key == key {
				out = r
				if r.Status != status {
					return fmt.Errorf("rule %s: status %s (%s), want %s", key, r.Status, r.Error, status)
				}
				return nil
			}
		}
		return fmt.Errorf("rule %s not seen", key)
	}, retry.Timeout(wait))
	return out
}

// TestSeparateConfigCenters: with --dubboConfigCenter, rules come from the config centers
// named (a Nacos one, watching the keys of the services the ZooKeeper registry lists,
// and a ZooKeeper one), not from the registry's own; the first center holding a key wins.
func TestSeparateConfigCenters(t *testing.T) {
	srv := nacosfw.Start(t, nacosfw.Options{})
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 10*time.Second)
	for _, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		app.Register(t, greet, zkt.ProviderURL(ip, 20880, greet, map[string]string{"application": "greet"}))
	}
	// The registry's own config center is not read when config centers are named.
	app.Put(t, "/dubbo/config/dubbo/"+greetRuleKey, []byte(adminWeightNode), false)
	cc := zkt.Start(t)
	ccClient := zkt.Connect(t, cc.Addr, 10*time.Second)
	ccClient.Put(t, "/dubbo/config/dubbo/greet.configurators", []byte("configs:\n- side: provider\n  parameters: {weight: 7}\n"), false)
	// Both centers hold the service key: the first named (Nacos) wins.
	ccClient.Put(t, "/dubbo/config/dubbo/"+greetRuleKey, []byte("configs:\n- side: provider\n  parameters: {weight: 3}\n"), false)
	srv.PublishConfig(t, "", greetRuleKey, rulesGroup, adminDisable)

	f := governanceFlags(t, "zookeeper://"+zs.Addr+"?name=zk")
	f.ConfigCenters = []string{srv.URL() + "?name=nacos-cc", "zookeeper://" + cc.Addr + "?name=zk-cc"}
	began := time.Now()
	e := start(t, f)
	retry.UntilSuccessOrFail(t, func() error {
		if got := e.rec.Weights(greetHost); got != "10.0.0.1:20880=7" {
			return fmt.Errorf("endpoints %q", got)
		}
		return nil
	}, retry.Timeout(wait))
	t.Logf("rules of both config centers applied %v after start", time.Since(began))
	var sources []string
	for _, r := range e.dubboz(t).Registries {
		sources = append(sources, r.Name)
	}
	if fmt.Sprint(sources) != "[zk zk/app nacos-cc/config zk-cc/config]" {
		t.Fatalf("sources %v", sources)
	}
}
