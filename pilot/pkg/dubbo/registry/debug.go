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
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"time"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/host"
)

// DebugView is the JSON served at /debug/dubboz.
type DebugView struct {
	Namespace   string          `json:"namespace"`
	ServicePort uint32          `json:"servicePort"`
	HostSuffix  string          `json:"hostSuffix,omitempty"`
	Synced      bool            `json:"synced"`
	Registries  []DebugRegistry `json:"registries"`
	// Applications are the application levels (Dubbo 3) of the registries: applications,
	// their metadata revisions, and why a revision does not resolve.
	Applications []any `json:"applications,omitempty"`
	// Nacos are the Nacos registries' own state: connection, subscriptions, errors.
	Nacos []any `json:"nacos,omitempty"`
	// Governance are the rules read from the config centers (docs/governance.md): which
	// are applied, which are left out and why.
	Governance []DebugRule  `json:"governance"`
	Interfaces []DebugIface `json:"interfaces"`
}

// Sections of /debug/dubboz that registry kinds add to (AddDebugSection).
const (
	SectionApplications = "applications"
	SectionNacos        = "nacos"
)

// AddDebugSection adds a view to a section of /debug/dubboz (before Run).
func (c *Controller) AddDebugSection(section string, f func() any) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	c.debugSections = append(c.debugSections, debugSection{section, f})
}

type debugSection struct {
	section string
	view    func() any
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
	// ListErrors are paths that keep failing to list (e.g. no read permission): what was
	// listed last stays served.
	ListErrors []DebugListError `json:"listErrors,omitempty"`
}

// DebugListError is a registry path that fails to list.
type DebugListError struct {
	Interface string    `json:"interface"` // "" is the registry root
	Error     string    `json:"error"`
	Since     time.Time `json:"since"`
	Last      time.Time `json:"last"`
	Attempts  int       `json:"attempts"`
}

// DebugIface is one Dubbo interface.
type DebugIface struct {
	Interface  string          `json:"interface"`
	Hostname   string          `json:"hostname"`
	Service    bool            `json:"service"`
	Conflict   string          `json:"hostnameOwnedBy,omitempty"`
	NotServed  string          `json:"notServed,omitempty"` // why the interface is not served
	Registries []string        `json:"registries"`
	Instances  []DebugInstance `json:"instances"`
	Rejected   []DebugRejected `json:"rejected,omitempty"`
	Ignored    []DebugInstance `json:"ignored,omitempty"`
	// Routes are what condition and tag routes make of the interface (docs/governance.md).
	Routes *DebugRoutes `json:"routes,omitempty"`
}

// DebugRoutes is an interface's routes from governance rules.
type DebugRoutes struct {
	VirtualService string   `json:"virtualService,omitempty"`
	Rules          []string `json:"rules,omitempty"`
	Routes         int      `json:"routes"`
	// Error is why the interface's route rules are left out.
	Error string `json:"error,omitempty"`
	// OverriddenBy are explicit VirtualServices of the hostname: they win over the rules.
	OverriddenBy []string         `json:"overriddenBy,omitempty"`
	Generated    []DebugGenerated `json:"generated,omitempty"`
}

// DebugGenerated is a generated service: the providers one route selects.
type DebugGenerated struct {
	Host      string   `json:"host"`
	Selection string   `json:"selection"`
	Endpoints []string `json:"endpoints"`
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
	// Governed is set when override rules changed the provider's weight or flags.
	Governed bool `json:"governed,omitempty"`
}

// DebugRejected is a provider node that did not become an endpoint.
type DebugRejected struct {
	Registry string `json:"registry"`
	Node     string `json:"node"`
	Error    string `json:"error"`
}

// ifaceSnapshot is what Debug copies of an interface under updateMu: references to maps
// and slices that are replaced, never mutated, once stored.
type ifaceSnapshot struct {
	iface, hostname, conflict, rejected string
	service                             bool
	registries                          []string
	eps                                 []*model.IstioEndpoint
	sources                             []string // configured order
	nodes, held                         []map[string]*node
	specs                               map[*node]*endpointSpec
	routes                              *routeState
}

// Debug returns the current view. It copies references under the update lock (cheap:
// per interface, not per provider) and renders the providers after releasing it, so a
// look at 100k providers does not stall ingestion.
func (c *Controller) Debug() DebugView {
	c.updateMu.Lock()
	v := DebugView{
		Namespace: c.opts.Namespace, ServicePort: c.opts.ServicePort, HostSuffix: c.opts.HostSuffix,
		Synced: c.synced.Load(), Registries: []DebugRegistry{}, Interfaces: []DebugIface{},
	}
	now := c.now()
	for _, s := range c.sources {
		r := DebugRegistry{
			Name: s.name, Address: s.description, Connected: s.connected, Synced: s.synced,
			Sessions: s.sessions, Disconnects: s.disconnects, Interfaces: s.interfaceCnt,
			Providers: s.nodeCnt, Held: s.heldCnt,
		}
		if now.Before(s.graceUntil) {
			g := s.graceUntil
			r.GraceUntil = &g
		}
		if !s.lastEvent.IsZero() {
			t := s.lastEvent
			r.LastEvent = &t
		}
		for _, k := range slices.Sorted(maps.Keys(s.listErrors)) {
			le := s.listErrors[k]
			r.ListErrors = append(r.ListErrors, DebugListError{
				Interface: k, Error: le.err, Since: le.since, Last: le.last, Attempts: le.attempts,
			})
		}
		v.Registries = append(v.Registries, r)
	}
	snaps := make([]ifaceSnapshot, 0, len(c.ifaces))
	for _, st := range sortedStates(c.ifaces) {
		sn := ifaceSnapshot{
			iface: st.iface, hostname: string(st.hostname), conflict: st.conflict, rejected: st.rejected,
			service: st.svc != nil, registries: slices.Sorted(maps.Keys(st.present)), eps: st.eps,
			specs: st.govSpecs, routes: st.routes,
		}
		for _, s := range c.sources {
			sn.sources = append(sn.sources, s.name)
			sn.nodes = append(sn.nodes, st.nodes[s.name])
			sn.held = append(sn.held, st.held[s.name])
		}
		snaps = append(snaps, sn)
	}
	sections := c.debugSections
	v.Governance = c.debugRules()
	c.updateMu.Unlock()

	for _, d := range sections {
		switch d.section {
		case SectionNacos:
			v.Nacos = append(v.Nacos, d.view())
		default:
			v.Applications = append(v.Applications, d.view())
		}
	}
	if c.renderHook != nil {
		c.renderHook()
	}
	for _, sn := range snaps {
		v.Interfaces = append(v.Interfaces, sn.render())
	}
	for i, sn := range snaps {
		if sn.routes == nil {
			continue
		}
		d := &DebugRoutes{Rules: sn.routes.rules, Error: sn.routes.err, Generated: []DebugGenerated{}}
		if sn.routes.vs != nil {
			d.VirtualService = c.opts.Namespace + "/" + VirtualServicePrefix + sn.hostname
			d.Routes = len(sn.routes.vs.Http)
		}
		if c.userVS != nil {
			d.OverriddenBy = c.userVS(host.Name(sn.hostname))
		}
		for _, h := range slices.Sorted(maps.Keys(sn.routes.derived)) {
			g := sn.routes.derived[h]
			eps := []string{}
			for _, ep := range g.eps {
				eps = append(eps, fmt.Sprintf("%s:%d", ep.FirstAddressOrNil(), ep.EndpointPort))
			}
			d.Generated = append(d.Generated, DebugGenerated{Host: string(h), Selection: g.steps, Endpoints: eps})
		}
		v.Interfaces[i].Routes = d
	}
	for i := range v.Governance {
		r := &v.Governance[i]
		if r.app == "" {
			continue
		}
		for _, sn := range snaps {
			if sn.service && sn.hasApp(r.app) {
				r.Interfaces = append(r.Interfaces, sn.iface)
			}
		}
	}
	return v
}

func (sn *ifaceSnapshot) render() DebugIface {
	d := DebugIface{Interface: sn.iface, Hostname: sn.hostname, Service: sn.service,
		Conflict: sn.conflict, NotServed: sn.rejected, Registries: sn.registries, Instances: []DebugInstance{}}
	if d.Registries == nil {
		d.Registries = []string{}
	}
	// By identity: merge publishes the winning node's own endpoint, so a duplicate of it
	// (same workload, another node or source) shows as ignored.
	published := map[*model.IstioEndpoint]bool{}
	governed := map[*model.IstioEndpoint]bool{}
	for _, sp := range sn.specs {
		if sp.governed {
			governed[sp.ep] = true
		}
	}
	for _, ep := range sn.eps {
		published[ep] = true
		d.Instances = append(d.Instances, DebugInstance{
			Address: ep.FirstAddressOrNil(), Port: ep.EndpointPort, Weight: ep.LbWeight,
			Labels: ep.Labels, Workload: ep.WorkloadName, Registry: ep.Labels[RegistryLabel], Governed: governed[ep],
		})
	}
	for i, src := range sn.sources {
		for _, set := range []map[string]*node{sn.nodes[i], sn.held[i]} {
			for _, n := range set {
				switch {
				case n.err != nil:
					d.Rejected = append(d.Rejected, DebugRejected{Registry: src, Node: clip(n.name), Error: n.err.Error()})
				default:
					sp := &n.spec
					if g, ok := sn.specs[n]; ok {
						sp = g
					}
					if published[sp.ep] {
						continue
					}
					reason := "duplicate"
					switch {
					case sp.disabled && sp.governed && !n.spec.disabled:
						reason = "disabled by an override rule"
					case sp.disabled:
						reason = "disabled"
					case sp.zero:
						reason = "weight=0"
					}
					ep := sp.ep
					d.Ignored = append(d.Ignored, DebugInstance{
						Address: ep.FirstAddressOrNil(), Port: ep.EndpointPort, Weight: ep.LbWeight,
						Labels: ep.Labels, Workload: ep.WorkloadName, Registry: src, Reason: reason, Governed: sp.governed,
					})
				}
			}
		}
	}
	sort.Slice(d.Rejected, func(i, j int) bool { return d.Rejected[i].Node < d.Rejected[j].Node })
	sort.Slice(d.Ignored, func(i, j int) bool {
		if d.Ignored[i].Workload != d.Ignored[j].Workload {
			return d.Ignored[i].Workload < d.Ignored[j].Workload
		}
		return d.Ignored[i].Registry < d.Ignored[j].Registry
	})
	return d
}

func (sn *ifaceSnapshot) hasApp(app string) bool {
	for _, set := range [][]map[string]*node{sn.nodes, sn.held} {
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
