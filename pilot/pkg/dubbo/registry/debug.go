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
	"encoding/json"
	"net/http"
	"sort"
	"time"
)

// DebugView is the JSON served at /debug/dubboz.
type DebugView struct {
	Namespace   string          `json:"namespace"`
	ServicePort uint32          `json:"servicePort"`
	HostSuffix  string          `json:"hostSuffix,omitempty"`
	Synced      bool            `json:"synced"`
	Registries  []DebugRegistry `json:"registries"`
	Interfaces  []DebugIface    `json:"interfaces"`
}

// DebugRegistry is one configured registry.
type DebugRegistry struct {
	Name        string     `json:"name"`
	Address     string     `json:"address"`
	Connected   bool       `json:"connected"`
	Synced      bool       `json:"synced"`
	Sessions    int        `json:"sessions"`
	Disconnects int        `json:"disconnects"`
	Interfaces  int        `json:"interfaces"`
	Providers   int        `json:"providers"`
	Held        int        `json:"heldRemovals"`
	GraceUntil  *time.Time `json:"graceUntil,omitempty"`
	LastEvent   *time.Time `json:"lastEvent,omitempty"`
}

// DebugIface is one Dubbo interface.
type DebugIface struct {
	Interface  string          `json:"interface"`
	Hostname   string          `json:"hostname"`
	Service    bool            `json:"service"`
	Conflict   string          `json:"hostnameOwnedBy,omitempty"`
	Registries []string        `json:"registries"`
	Instances  []DebugInstance `json:"instances"`
	Rejected   []DebugRejected `json:"rejected,omitempty"`
	Ignored    []DebugInstance `json:"ignored,omitempty"`
}

// DebugInstance is one provider instance.
type DebugInstance struct {
	Address  string            `json:"address"`
	Port     uint32            `json:"port"`
	Weight   uint32            `json:"weight"`
	Labels   map[string]string `json:"labels"`
	Workload string            `json:"workload"`
	Registry string            `json:"registry,omitempty"`
	Reason   string            `json:"reason,omitempty"`
}

// DebugRejected is a provider node that did not become an endpoint.
type DebugRejected struct {
	Registry string `json:"registry"`
	Node     string `json:"node"`
	Error    string `json:"error"`
}

// Debug returns the current view.
func (c *Controller) Debug() DebugView {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	v := DebugView{
		Namespace: c.opts.Namespace, ServicePort: c.opts.ServicePort, HostSuffix: c.opts.HostSuffix,
		Synced: c.synced.Load(), Registries: []DebugRegistry{}, Interfaces: []DebugIface{},
	}
	for _, s := range c.sources {
		r := DebugRegistry{
			Name: s.name, Address: s.description, Connected: s.connected, Synced: s.synced,
			Sessions: s.sessions, Disconnects: s.disconnects, Interfaces: s.interfaceCnt,
		}
		if c.now().Before(s.graceUntil) {
			g := s.graceUntil
			r.GraceUntil = &g
		}
		if !s.lastEvent.IsZero() {
			t := s.lastEvent
			r.LastEvent = &t
		}
		r.Providers, r.Held = s.nodeCnt, s.heldCnt
		v.Registries = append(v.Registries, r)
	}
	for _, st := range sortedStates(c.ifaces) {
		d := DebugIface{Interface: st.iface, Hostname: string(st.hostname), Service: st.svc != nil,
			Conflict: st.conflict, Registries: []string{}, Instances: []DebugInstance{}}
		for src := range st.present {
			d.Registries = append(d.Registries, src)
		}
		sort.Strings(d.Registries)
		published := map[string]bool{}
		for _, ep := range st.eps {
			published[ep.WorkloadName] = true
			d.Instances = append(d.Instances, DebugInstance{
				Address: ep.FirstAddressOrNil(), Port: ep.EndpointPort, Weight: ep.LbWeight,
				Labels: ep.Labels, Workload: ep.WorkloadName, Registry: ep.Labels[RegistryLabel],
			})
		}
		for _, s := range c.sources {
			for _, set := range []map[string]*node{st.nodes[s.name], st.held[s.name]} {
				for _, n := range set {
					switch {
					case n.err != nil:
						d.Rejected = append(d.Rejected, DebugRejected{Registry: s.name, Node: clip(n.name), Error: n.err.Error()})
					case !published[n.spec.ep.WorkloadName]:
						reason := "duplicate"
						switch {
						case n.spec.disabled:
							reason = "disabled"
						case n.spec.zero:
							reason = "weight=0"
						}
						ep := n.spec.ep
						d.Ignored = append(d.Ignored, DebugInstance{
							Address: ep.FirstAddressOrNil(), Port: ep.EndpointPort, Weight: ep.LbWeight,
							Labels: ep.Labels, Workload: ep.WorkloadName, Registry: s.name, Reason: reason,
						})
					}
				}
			}
		}
		sort.Slice(d.Rejected, func(i, j int) bool { return d.Rejected[i].Node < d.Rejected[j].Node })
		v.Interfaces = append(v.Interfaces, d)
	}
	return v
}

func clip(s string) string {
	if len(s) > 512 {
		return s[:512] + "..."
	}
	return s
}

// DebugHandler serves /debug/dubboz. ?interface=<exact interface> narrows the view.
func (c *Controller) DebugHandler(w http.ResponseWriter, r *http.Request) {
	v := c.Debug()
	if want := r.URL.Query().Get("interface"); want != "" {
		kept := v.Interfaces[:0]
		for _, i := range v.Interfaces {
			if i.Interface == want || i.Hostname == want {
				kept = append(kept, i)
			}
		}
		v.Interfaces = kept
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
