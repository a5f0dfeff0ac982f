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

package zookeeper_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry/registrytest"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/zookeeper"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// Rule bodies byte for byte as dubbo-admin writes them (docs/governance.md): its new
// weight node (top-level enabled: false, no configVersion, the item's own enabled:
// true; SnakeYAML quotes the key ending in ':'), and its override UI's disable.
const (
	adminWeightNode = `configs:
- addresses: [10.0.0.1:20880]
  enabled: true
  parameters: {weight: 50}
  side: provider
  type: weight
enabled: false
key: 'com.example.DemoService::'
scope: service
`
	adminDisable = `configVersion: v2.7
scope: service
key: com.example.DemoService
enabled: true
configs:
- addresses: [10.0.0.2]
  side: provider
  parameters:
    disabled: true
`
	demoRules   = "/dubbo/config/dubbo/"
	demoRuleKey = demoIface + "::.configurators"
)

// TestOverrideRulesFromZooKeeper: override rules in a real ZooKeeper's config center,
// written as dubbo-admin writes them, shape the providers' endpoints; each change is
// one endpoint update (no full push); junk and rules for unknown services are reported
// and change nothing.
func TestOverrideRulesFromZooKeeper(t *testing.T) {
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 10*time.Second)
	for _, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		app.Register(t, demoIface, zkt.ProviderURL(ip, 20880, demoIface, nil))
	}
	// A provider on another port of 10.0.0.1: the weight rule names ip:port, so it keeps 100.
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.1", 20881, demoIface, nil))
	// The weight rule exists before istiod starts: the first endpoints already carry it.
	app.Put(t, demoRules+demoRuleKey, []byte(adminWeightNode), false)
	// Not a rule: never read, never shown.
	app.Put(t, demoRules+"dubbo.properties", []byte("dubbo.registry.address=zookeeper://x"), false)

	e := newConfigEnv(t, zkAddr(zs, "name=zk1"))
	eventually(t, func() error {
		if !e.ctl.HasSynced() {
			return fmt.Errorf("not synced")
		}
		return nil
	})
	want := func(w string) func() error {
		return func() error {
			if got := e.rec.Weights(demoHost); got != w {
				return fmt.Errorf("endpoints %q, want %q", got, w)
			}
			return nil
		}
	}
	eventually(t, want("10.0.0.1:20880=50 10.0.0.1:20881=100 10.0.0.2:20880=100"))
	full := e.rec.Count("full ")

	// dubbo-admin disables 10.0.0.2 (any port): out of the endpoints, by an EDS update.
	start := time.Now()
	app.Put(t, demoRules+demoRuleKey, []byte(adminDisable), false)
	eventually(t, want("10.0.0.1:20880=100 10.0.0.1:20881=100"))
	t.Logf("disable rule reached the endpoints in %v", time.Since(start))
	ruleStatus(t, e, demoRuleKey, registry.RuleApplied)

	// Junk on the same key: reported, the last valid rule stays in effect.
	app.Put(t, demoRules+demoRuleKey, []byte("configs: [\n"), false)
	ruleStatus(t, e, demoRuleKey, registry.RuleInvalid)
	if err := want("10.0.0.1:20880=100 10.0.0.1:20881=100")(); err != nil {
		t.Fatalf("junk changed the endpoints: %v", err)
	}
	// A rule for an interface nobody provides, and an unknown configVersion: reported.
	app.Put(t, demoRules+"com.example.Nobody::.configurators", []byte("configs:\n- side: provider\n  parameters: {disabled: true}\n"), false)
	app.Put(t, demoRules+"demo-provider.configurators", []byte("configVersion: v9.9\nconfigs: []\n"), false)
	ruleStatus(t, e, "demo-provider.configurators", registry.RuleInvalid)
	r := ruleStatus(t, e, "com.example.Nobody::.configurators", registry.RuleApplied)
	if len(r.Interfaces) != 0 {
		t.Fatalf("a rule for an unknown interface names %v", r.Interfaces)
	}
	for _, d := range e.ctl.Debug().Governance {
		if d.Key == "dubbo.properties" {
			t.Fatalf("a config that is not a rule was read: %+v", d)
		}
	}

	// An application-scope rule (dubbo-go admin's flow weight: v3.0 match on a
	// parameter) weighs every provider of the application; the service rule, applied
	// after it, still disables 10.0.0.2.
	app.Put(t, demoRules+"demo-provider.configurators", []byte(`configVersion: v3.0
scope: application
key: demo-provider
enabled: true
configs:
- side: provider
  match:
    param:
    - key: application
      value: {exact: demo-provider}
  parameters:
    weight: 7
`), false)
	eventually(t, want("10.0.0.1:20880=7 10.0.0.1:20881=7"))

	// dubbo-admin deletes the disable rule: 10.0.0.2 is back.
	app.Unregister(t, demoRules+demoRuleKey)
	eventually(t, want("10.0.0.1:20880=7 10.0.0.1:20881=7 10.0.0.2:20880=7"))
	if n := e.rec.Count("full "); n != full {
		t.Fatalf("%d full pushes for rule changes, want 0 (endpoint updates only)", n-full)
	}
	if n := e.rec.Count("eds " + demoHost); n == 0 {
		t.Fatalf("no EDS update")
	}
}

// TestRulesReadBeforeReady: istiod is not ready before the config center was read, so
// the first push never sends an instance a rule disabled.
func TestRulesReadBeforeReady(t *testing.T) {
	zs := zkt.Start(t)
	app := zkt.Connect(t, zs.Addr, 10*time.Second)
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.1", 20880, demoIface, nil))
	app.Register(t, demoIface, zkt.ProviderURL("10.0.0.2", 20880, demoIface, nil))
	app.Put(t, demoRules+demoRuleKey, []byte(adminDisable), false)
	e := newConfigEnv(t, zkAddr(zs, "name=zk1"))
	eventually(t, func() error {
		if !e.ctl.HasSynced() {
			return fmt.Errorf("not synced")
		}
		return nil
	})
	if got := e.rec.Weights(demoHost); got != "10.0.0.1:20880=100" {
		t.Fatalf("endpoints at ready: %q, want the disabled 10.0.0.2 out", got)
	}
}

type configEnv struct {
	ctl *registry.Controller
	rec *registrytest.Recorder
}

func newConfigEnv(t *testing.T, addr string) *configEnv {
	t.Helper()
	cfg, err := zookeeper.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConfigRoot != "/dubbo/config/dubbo" {
		t.Fatalf("config root %q", cfg.ConfigRoot)
	}
	rec := registrytest.NewRecorder()
	ctl, err := registry.NewController(registry.Options{SyncTimeout: time.Hour}, rec)
	if err != nil {
		t.Fatal(err)
	}
	ctl.AppendServiceHandler(rec.FullPush)
	if err := ctl.AddSource(cfg.Name, addr); err != nil {
		t.Fatal(err)
	}
	name, err := ctl.AddConfigCenter(cfg.Name, addr)
	if err != nil {
		t.Fatal(err)
	}
	w := zookeeper.NewWatcher(cfg, ctl)
	w.SetConfigSink(ctl, name)
	stop := make(chan struct{})
	var running sync.WaitGroup
	running.Add(2)
	go func() { defer running.Done(); w.Run(stop) }()
	go func() { defer running.Done(); ctl.Run(stop) }()
	t.Cleanup(func() { close(stop); running.Wait() })
	return &configEnv{ctl: ctl, rec: rec}
}

func ruleStatus(t *testing.T, e *configEnv, key, status string) registry.DebugRule {
	t.Helper()
	var out registry.DebugRule
	eventually(t, func() error {
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
	})
	return out
}
