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
	"maps"
	"slices"
	"time"
)

// maxDebugServices bounds the services listed one by one in /debug/dubboz.
const maxDebugServices = 500

// DebugRegistry is a Nacos registry in /debug/dubboz ("nacos").
type DebugRegistry struct {
	Registry  string   `json:"registry"`
	Address   string   `json:"address"` // secrets redacted
	Servers   []string `json:"servers"`
	Namespace string   `json:"namespace"`
	Group     string   `json:"group"`
	Levels    string   `json:"levels"`
	Connected bool     `json:"connected"`
	Synced    bool     `json:"synced"`
	// LastList is the last successful read of the service list; ServicesListed what it held.
	LastList       *time.Time `json:"lastList,omitempty"`
	ServicesListed int        `json:"servicesListed"`
	// Subscribed are the subscribed services by kind (interface, application).
	Subscribed map[string]int `json:"subscribed"`
	// NonDubboServices are candidate application services with no Dubbo instance.
	NonDubboServices int        `json:"nonDubboServices"`
	Instances        int        `json:"instances"`
	OutOfRotation    int        `json:"outOfRotation"`
	Rejected         int        `json:"rejected"`
	Pushes           int        `json:"pushes"`
	LastPush         *time.Time `json:"lastPush,omitempty"`
	// RulesGroup is the group of the governance rules read ("" when none are); RuleKeys
	// counts the rule keys watched (those of the services and applications known).
	RulesGroup string `json:"rulesGroup,omitempty"`
	RuleKeys   int    `json:"ruleKeys,omitempty"`
	// Errors are the failing requests (list, client, subscribe <service>, ...).
	Errors   map[string]debugError `json:"errors,omitempty"`
	Services []DebugService        `json:"services"`
	// ServicesOmitted counts services beyond the first maxDebugServices.
	ServicesOmitted int `json:"servicesOmitted,omitempty"`
}

// DebugService is one subscribed Nacos service.
type DebugService struct {
	Service       string     `json:"service"`
	Kind          string     `json:"kind"`
	Interface     string     `json:"interface,omitempty"`
	Instances     int        `json:"instances"`
	OutOfRotation int        `json:"outOfRotation,omitempty"`
	Rejected      int        `json:"rejected,omitempty"`
	NonDubbo      int        `json:"nonDubboInstances,omitempty"`
	Pushes        int        `json:"pushes"`
	LastPush      *time.Time `json:"lastPush,omitempty"`
}

// Debug is the registry's state for /debug/dubboz.
func (w *Watcher) Debug() DebugRegistry {
	ruleKeys := w.watchedRuleKeys()
	w.mu.Lock()
	defer w.mu.Unlock()
	d := DebugRegistry{
		Registry: w.cfg.Name, Address: w.cfg.Address, Servers: w.cfg.Servers,
		Namespace: w.cfg.NamespaceName(), Group: w.cfg.Group, Levels: w.levels(),
		Connected: w.connected, Synced: w.synced, ServicesListed: w.listed,
		Subscribed: map[string]int{"interface": 0, "application": 0},
		Services:   []DebugService{},
		RuleKeys:   ruleKeys,
	}
	if w.rules != nil {
		d.RulesGroup = w.rules.group
	}
	if !w.lastList.IsZero() {
		t := w.lastList
		d.LastList = &t
	}
	if len(w.lastErr) > 0 {
		d.Errors = maps.Clone(w.lastErr)
	}
	for _, name := range slices.Sorted(maps.Keys(w.subs)) {
		s := w.subs[name]
		kind := "application"
		if s.name.Kind == KindInterface {
			kind = "interface"
		}
		d.Subscribed[kind]++
		notDubbo := kind == "application" && !w.fed[name]
		if notDubbo {
			d.NonDubboServices++
		}
		d.Instances += s.dubbo
		d.OutOfRotation += s.out
		d.Rejected += s.rejected
		d.Pushes += s.pushes
		if s.lastPush.After(ptrTime(d.LastPush)) {
			t := s.lastPush
			d.LastPush = &t
		}
		if notDubbo {
			continue // not Dubbo's: counted, not listed
		}
		if len(d.Services) == maxDebugServices {
			d.ServicesOmitted++
			continue
		}
		ds := DebugService{Service: name, Kind: kind, Interface: s.name.Interface, Instances: s.dubbo,
			OutOfRotation: s.out, Rejected: s.rejected, NonDubbo: s.nonDubbo, Pushes: s.pushes}
		if !s.lastPush.IsZero() {
			t := s.lastPush
			ds.LastPush = &t
		}
		d.Services = append(d.Services, ds)
	}
	return d
}

func ptrTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
