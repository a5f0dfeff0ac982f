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

package nacos

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/governance"
)

// The config center: Dubbo's governance rules are configs of the registry's namespace,
// dataId = the rule key, group Config.ConfigGroup ("dubbo"), as dubbo-admin publishes
// them. Nacos has no portable way to list a group's configs (the gRPC API has none), so
// the keys watched are those a rule for a known service or application has: for every
// interface-level service listed (providers:<interface>:<version>:<group>, whatever the
// levels read) <interface>:<version>:<group>.configurators and .condition-router; for
// every Dubbo application (application-level services, and the application metadata of
// interface-level instances) <app>.configurators, .condition-router and .tag-router. A
// rule for a service nobody registers is not read: it would match nothing.
//
// New keys are listened to (gRPC config listen: a change or deletion arrives in
// about a second, Polaris v1.18.1 included) and then read. A notification triggers a read of the
// key rather than taking the content it carries: the SDK calls every listener in a
// goroutine of its own, so two quick changes may be delivered in either order, and the
// serialised reads leave the newest body. Keys are re-read after a failed read and after
// a new session (the SDK's listen also compares md5s when it reconnects). A failed read
// keeps the body read last: an outage never empties the rules.

// ConfigSink receives the governance rules (the Dubbo registry controller).
type ConfigSink = governance.ConfigSink

// Rule kinds watched per service key and per application.
var (
	serviceRuleKinds = []governance.Kind{governance.KindOverride, governance.KindConditionRoute}
	appRuleKinds     = []governance.Kind{governance.KindOverride, governance.KindConditionRoute, governance.KindTagRoute}
)

// ruleWatch is one watched rule key.
type ruleWatch struct {
	key  string
	body string // "" while absent
	read bool   // body is what the last read returned (false: read again at the next list)
	// missing counts consecutive lists that did not want the key (a paging glitch of one
	// list must not drop a rule that disables an instance).
	missing int
	// readMu serialises the reads of the key: the last read is the newest.
	readMu sync.Mutex
	// absent is when a read first found the key absent while it had a body: the deletion
	// is taken only when a read deleteConfirm later still finds it absent (Polaris answers
	// "" to a read while a publish of the key is under way).
	absent time.Time
}

// deleteConfirm is how long a rule must stay absent before its deletion is taken.
const deleteConfirm = time.Second

// configState is the watcher's config center, guarded by its mu.
type configState struct {
	sink   ConfigSink
	source string
	group  string

	mu      sync.Mutex
	watches map[string]*ruleWatch
	synced  bool
	gen     uint64 // the session whose state the bodies are (0: none yet)
}

// SetConfigSink reads the governance rules of Config.ConfigGroup into sink, reported as
// the source named source (before Run).
func (w *Watcher) SetConfigSink(sink ConfigSink, source string) {
	w.rules = &configState{sink: sink, source: source, group: w.cfg.ConfigGroup, watches: map[string]*ruleWatch{}}
}

// SetRuleKeys adds the rule keys of services and applications other registries know
// (a Nacos config center of its own, --dubboConfigCenter, lists no Dubbo service): read
// at every list (before Run).
func (w *Watcher) SetRuleKeys(keys func() []string) { w.ruleKeysOf = keys }

// appsOf are the applications of interface-level instances (their application metadata).
func appsOf(instances []model.Instance) []string {
	var out []string
	for i := range instances {
		if a := instances[i].Metadata["application"]; a != "" && !strings.Contains(a, ":") && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// ruleKeys are the rule keys of the listed services and the known applications.
func (w *Watcher) ruleKeys(names []string) map[string]bool {
	want := map[string]bool{}
	for _, n := range names {
		sn := ParseServiceName(n)
		if sn.Kind != KindInterface {
			continue
		}
		for _, k := range serviceRuleKinds {
			want[governance.Key{Kind: k, Interface: sn.Interface, Version: sn.Version, Group: sn.Group}.String()] = true
		}
	}
	addApp := func(app string) {
		for _, k := range appRuleKinds {
			want[governance.Key{Kind: k, Application: app}.String()] = true
		}
	}
	if w.ruleKeysOf != nil {
		for _, k := range w.ruleKeysOf() {
			want[k] = true
		}
	}
	w.mu.Lock()
	for app := range w.fed {
		if !strings.Contains(app, ":") {
			addApp(app)
		}
	}
	for _, s := range w.subs {
		for _, app := range s.apps {
			addApp(app)
		}
	}
	w.mu.Unlock()
	return want
}

// syncRules brings the watched keys in line with the services just listed: new keys are
// listened to and read, keys no longer wanted (two lists in a row) are dropped, failed
// reads are retried, and after a new session every key is read again. The first round
// whose reads all worked makes the config source synced.
func (w *Watcher) syncRules(config config_client.IConfigClient, names []string) {
	cs := w.rules
	if cs == nil {
		return
	}
	want := w.ruleKeys(names)
	w.mu.Lock()
	gen := w.gen
	w.mu.Unlock()

	cs.mu.Lock()
	reread := gen != cs.gen
	var added, read []*ruleWatch
	changed := false
	for k := range want {
		rw := cs.watches[k]
		if rw == nil {
			rw = &ruleWatch{key: k}
			cs.watches[k] = rw
			added = append(added, rw)
			read = append(read, rw)
			continue
		}
		rw.missing = 0
		if reread || !rw.read {
			read = append(read, rw)
		}
	}
	var gone []*ruleWatch
	for k, rw := range cs.watches {
		if want[k] {
			continue
		}
		if rw.missing++; rw.missing >= 2 {
			delete(cs.watches, k)
			gone = append(gone, rw)
			changed = changed || rw.body != ""
		}
	}
	cs.mu.Unlock()

	for _, rw := range gone {
		if err := config.CancelListenConfig(vo.ConfigParam{DataId: rw.key, Group: cs.group}); err != nil {
			w.fail("unlisten", rw.key, err)
		}
		w.ok("rule", rw.key) // a key gone takes its failure with it
	}
	// Listen before the first read: a change between the two is then delivered.
	for _, rw := range added {
		err := config.ListenConfig(vo.ConfigParam{DataId: rw.key, Group: cs.group, OnChange: func(_, _, _, _ string) {
			w.ruleChanged(config, rw)
		}})
		if err != nil {
			// Only a malformed request fails here: the key is tried again at the next list.
			cs.mu.Lock()
			if cs.watches[rw.key] == rw {
				delete(cs.watches, rw.key)
			}
			cs.mu.Unlock()
			w.fail("rule", rw.key, err)
		}
	}

	sem := make(chan struct{}, subscribeConcurrency)
	var wg sync.WaitGroup
	var failedMu sync.Mutex
	failed := 0
	for _, rw := range read {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, ok := w.readRule(config, rw)
			failedMu.Lock()
			defer failedMu.Unlock()
			if !ok {
				failed++
			}
			changed = changed || c
		}()
	}
	wg.Wait()

	cs.mu.Lock()
	if failed == 0 {
		cs.gen = gen
	}
	first := failed == 0 && !cs.synced
	if changed || first {
		w.reportRulesLocked(time.Now())
	}
	cs.synced = cs.synced || first
	cs.mu.Unlock()
	if first {
		cs.sink.SourceSynced(cs.source)
	}
}

// ruleChanged handles a change notification of a key: the key is read again.
func (w *Watcher) ruleChanged(config config_client.IConfigClient, rw *ruleWatch) {
	observed := time.Now()
	if changed, _ := w.readRule(config, rw); changed {
		cs := w.rules
		cs.mu.Lock()
		w.reportRulesLocked(observed)
		cs.mu.Unlock()
	}
}

// readRule reads a watched key; changed reports that its body changed, ok that the read
// worked (a failed read keeps the last body, and the key is read again at the next list).
func (w *Watcher) readRule(config config_client.IConfigClient, rw *ruleWatch) (changed, ok bool) {
	cs := w.rules
	rw.readMu.Lock()
	defer rw.readMu.Unlock()
	w.getConfigMu.Lock()
	body, err := config.GetConfig(vo.ConfigParam{DataId: rw.key, Group: cs.group})
	w.getConfigMu.Unlock()
	cs.mu.Lock()
	watched := cs.watches[rw.key] == rw
	if watched && err != nil {
		rw.read = false
	}
	confirm := false
	if watched && err == nil {
		rw.read = true
		switch {
		case body == "" && rw.body != "" && rw.absent.IsZero():
			rw.absent, confirm = time.Now(), true
		case body == "" && rw.body != "" && time.Since(rw.absent) < deleteConfirm:
			// not long enough yet: the scheduled read decides
		default:
			changed = rw.body != body
			rw.body, rw.absent = body, time.Time{}
		}
	}
	cs.mu.Unlock()
	if confirm {
		time.AfterFunc(deleteConfirm, func() {
			if !w.closing.Load() {
				w.ruleChanged(config, rw)
			}
		})
	}
	switch {
	case !watched:
		return false, true // dropped meanwhile
	case err != nil:
		w.fail("rule", rw.key, err)
		return false, false
	}
	w.ok("rule", rw.key)
	return changed, true
}

// reportRulesLocked hands every rule held to the sink. Called with the config state's mu
// held, which orders the reports.
func (w *Watcher) reportRulesLocked(observed time.Time) {
	cs := w.rules
	rules := make(map[string][]byte, len(cs.watches))
	for k, rw := range cs.watches {
		if rw.body != "" {
			rules[k] = []byte(rw.body)
		}
	}
	cs.sink.SetRules(cs.source, rules, observed)
}

// watchedRuleKeys counts the keys watched (for /debug/dubboz).
func (w *Watcher) watchedRuleKeys() int {
	if w.rules == nil {
		return 0
	}
	w.rules.mu.Lock()
	defer w.rules.mu.Unlock()
	return len(w.rules.watches)
}
