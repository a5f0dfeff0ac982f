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
	"fmt"
	"maps"
	"time"

	"istio.io/istio/pkg/config/host"

	dubboprovider "github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

// The source side: what each configured registry reports. A source kind (ZooKeeper
// interface level today) calls these methods; each one ends in replaceNodes, which is
// where a new kind of source (Dubbo 3 application level, Nacos) plugs in: it builds the
// provider nodes of an interface its own way and hands them over, and merging, empty
// protection, the reconnect grace and serving stay as they are.

// source is one configured registry, or the application level of one (the same
// registry read another way: its own provider nodes, connection state and grace).
type source struct {
	name         string
	label        string // the "registry" label of its endpoints: the registry's name
	description  string
	connected    bool
	synced       bool
	graceUntil   time.Time
	graceTimer   *time.Timer
	graceGen     uint64 // bumped at every new grace: a timer of an older grace is a no-op
	lastEvent    time.Time
	sessions     int
	disconnects  int
	interfaceCnt int
	nodeCnt      int // provider nodes listed, over all interfaces
	heldCnt      int // removals held during a reconnect grace
	listErrors   map[string]*listError
	config       bool // a config center (governance rules), not a registry level
}

// listError is a path of the registry that keeps failing to list.
type listError struct {
	err      string
	since    time.Time
	last     time.Time
	attempts int
}

func (s *source) stopGrace() {
	if s.graceTimer != nil {
		s.graceTimer.Stop()
		s.graceTimer = nil
	}
}

// node is one provider node as listed, decoded once.
type node struct {
	name  string
	label string             // the "registry" label of its endpoint
	url   *dubboprovider.URL // nil when rejected
	from  *dubboprovider.URL // the URL a source handed over (SetURLs), rejected or not
	spec  endpointSpec
	err   error
}

// AddSource declares a registry (before Run). Its name labels endpoints and metrics.
func (c *Controller) AddSource(name, description string) error {
	return c.addSource(name, name, description)
}

// AppSourceSuffix names the application level of a registry: "<registry>/app".
const AppSourceSuffix = "/app"

// AddApplicationSource declares the application level (Dubbo 3) of a registry, a source
// of its own named <registry>/app whose endpoints carry the registry's name as their
// "registry" label. It comes after the registry's interface level in the merge order:
// a provider registered at both levels is served from its interface-level node.
func (c *Controller) AddApplicationSource(registry, description string) (string, error) {
	name := registry + AppSourceSuffix
	return name, c.addSource(name, registry, description)
}

func (c *Controller) addSource(name, label, description string) error {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	if _, ok := c.sourceByName[name]; ok {
		return fmt.Errorf("two Dubbo registries are named %q; give each a distinct name= parameter", name)
	}
	s := &source{name: name, label: label, description: description, listErrors: map[string]*listError{}}
	c.sources = append(c.sources, s)
	c.sourceByName[name] = s
	connectedGauge.With(registryTag.Value(name)).Record(0)
	syncedGauge.With(registryTag.Value(name)).Record(0)
	return nil
}

// SourceConnected reports a registry session state. newSession is true when the
// registry came back with a new session (ZooKeeper session expiry or a restarted
// server): removals are then held for the reconnect grace.
func (c *Controller) SourceConnected(name string, connected, newSession bool) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	s := c.sourceByName[name]
	if s == nil {
		return
	}
	s.lastEvent = c.now()
	if !connected {
		connectedGauge.With(registryTag.Value(name)).Record(0)
		recordEvent(name, "disconnected")
		s.disconnects++
		s.connected = false
		return
	}
	connectedGauge.With(registryTag.Value(name)).Record(1)
	recordEvent(name, "connected")
	s.sessions++
	s.connected = true
	if !newSession {
		return
	}
	recordEvent(name, "new_session")
	if s.synced && c.opts.ReconnectGrace > 0 {
		s.stopGrace()
		s.graceGen++
		gen := s.graceGen
		s.graceUntil = c.now().Add(c.opts.ReconnectGrace)
		// Stop cannot recall a timer that already fired and waits for updateMu: the
		// generation makes that one a no-op instead of ending this grace early.
		s.graceTimer = c.afterFunc(c.opts.ReconnectGrace, func() { c.endGrace(name, gen) })
		scope.Infof("registry %s: new session; provider removals are held for %v while providers re-register",
			name, c.opts.ReconnectGrace)
	}
}

// SourceSynced reports that a registry delivered its initial lists.
func (c *Controller) SourceSynced(name string) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	if s := c.sourceByName[name]; s != nil && !s.synced {
		s.synced = true
		syncedGauge.With(registryTag.Value(name)).Record(1)
		scope.Infof("registry %s: initial lists read (%d interfaces)", name, s.interfaceCnt)
		c.checkSyncedLocked()
	}
}

// ListError reports a failed list of an interface's providers (iface "" = the registry
// root); called on every failed attempt, and once with err == nil when the path lists
// again. The source keeps serving what it listed last; /debug/dubboz shows the error.
func (c *Controller) ListError(src, iface string, err error) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	s := c.sourceByName[src]
	if s == nil {
		return
	}
	if err == nil {
		delete(s.listErrors, iface)
		return
	}
	now := c.now()
	listErrorsTotal.With(registryTag.Value(src)).Increment()
	le := s.listErrors[iface]
	if le == nil {
		le = &listError{since: now}
		s.listErrors[iface] = le
	}
	le.err, le.last = err.Error(), now
	le.attempts++
}

// SetProviders replaces the provider nodes a registry lists for an interface (ZooKeeper:
// the children of /<root>/<interface>/providers). observed is when the registry change
// was noticed (for the latency metric).
func (c *Controller) SetProviders(src, iface string, names []string, observed time.Time) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	s := c.sourceByName[src]
	if s == nil {
		return
	}
	st := c.interfaceState(s, iface)
	old, oldHeld := st.nodes[src], st.held[src]
	cur := make(map[string]*node, len(names))
	for _, n := range names {
		switch {
		case old[n] != nil:
			cur[n] = old[n]
		case oldHeld[n] != nil:
			cur[n] = oldHeld[n]
		default:
			cur[n] = c.decode(s, iface, n)
		}
	}
	c.replaceNodes(s, st, cur, observed)
}

// SetURLs replaces the providers a source resolved for an interface, as URLs keyed by a
// stable name (the application level: one per instance, protocol port and service).
func (c *Controller) SetURLs(src, iface string, urls map[string]*dubboprovider.URL, observed time.Time) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	s := c.sourceByName[src]
	if s == nil {
		return
	}
	st := c.interfaceState(s, iface)
	old := st.nodes[src]
	cur := make(map[string]*node, len(urls))
	for name, u := range urls {
		if o := old[name]; o != nil && o.from != nil && o.from.Equal(u) {
			cur[name] = o
			continue
		}
		n := c.nodeFromURL(s, iface, name, u)
		n.from = u
		cur[name] = n
	}
	c.replaceNodes(s, st, cur, observed)
}

// interfaceState returns the state of an interface a source lists, creating it.
func (c *Controller) interfaceState(s *source, iface string) *ifaceState {
	s.lastEvent = c.now()
	recordEvent(s.name, "providers")
	st := c.ifaces[iface]
	if st == nil {
		st = &ifaceState{
			iface:    iface,
			hostname: host.Name(Hostname(iface, c.opts.HostSuffix)),
			present:  map[string]bool{},
			nodes:    map[string]map[string]*node{},
			held:     map[string]map[string]*node{},
		}
		c.ifaces[iface] = st
	}
	if !st.present[s.name] {
		st.present[s.name] = true
		s.interfaceCnt++
		interfacesGauge.With(registryTag.Value(s.name)).Record(float64(s.interfaceCnt))
		recordEvent(s.name, "interface_added")
	}
	return st
}

// replaceNodes installs a source's current nodes for an interface (cur is not mutated
// afterwards) and publishes. During a reconnect grace, nodes that went away are held.
func (c *Controller) replaceNodes(s *source, st *ifaceState, cur map[string]*node, observed time.Time) {
	var held map[string]*node
	if c.now().Before(s.graceUntil) {
		for _, prev := range []map[string]*node{st.nodes[s.name], st.held[s.name]} {
			for n, o := range prev {
				if cur[n] == nil {
					held = setNode(held, n, o)
				}
			}
		}
	}
	c.setNodes(s, st, cur, held)
	c.publish(st, observed)
}

// RemoveInterface reports that a registry no longer lists an interface at all.
func (c *Controller) RemoveInterface(src, iface string, observed time.Time) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	s, st := c.sourceByName[src], c.ifaces[iface]
	if s == nil || st == nil || !st.present[src] {
		return
	}
	s.lastEvent = c.now()
	recordEvent(src, "interface_removed")
	delete(st.present, src)
	s.interfaceCnt--
	interfacesGauge.With(registryTag.Value(src)).Record(float64(s.interfaceCnt))
	// A copy: stored maps are never mutated (setNodes counts by their old length).
	held := maps.Clone(st.held[src])
	if c.now().Before(s.graceUntil) {
		for n, o := range st.nodes[src] {
			held = setNode(held, n, o)
		}
	}
	c.setNodes(s, st, nil, held)
	c.publish(st, observed)
}

func setNode(m map[string]*node, k string, v *node) map[string]*node {
	if m == nil {
		m = map[string]*node{}
	}
	m[k] = v
	return m
}

// endGrace applies the removals held since a registry's new session, unless a newer
// grace replaced the one the timer was armed for.
func (c *Controller) endGrace(src string, gen uint64) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	s := c.sourceByName[src]
	if s == nil || s.graceGen != gen {
		return
	}
	s.graceUntil = time.Time{}
	s.graceTimer = nil
	n := 0
	for _, st := range sortedStates(c.ifaces) {
		if len(st.held[src]) == 0 {
			continue
		}
		n += len(st.held[src])
		c.setNodes(s, st, st.nodes[src], nil)
		c.publish(st, c.now())
	}
	recordEvent(src, "grace_expired")
	if n > 0 {
		scope.Infof("registry %s: reconnect grace over; applied %d provider removals that did not come back", src, n)
	}
}

// setNodes replaces a source's nodes and held removals for an interface, keeping the
// source's counters (no walk over every interface per change). The maps it stores are
// never mutated afterwards.
func (c *Controller) setNodes(s *source, st *ifaceState, nodes, held map[string]*node) {
	s.nodeCnt += len(nodes) - len(st.nodes[s.name])
	s.heldCnt += len(held) - len(st.held[s.name])
	if nodes == nil {
		delete(st.nodes, s.name)
	} else {
		st.nodes[s.name] = nodes
	}
	if len(held) == 0 {
		delete(st.held, s.name)
	} else {
		st.held[s.name] = held
	}
	providersGauge.With(registryTag.Value(s.name)).Record(float64(s.nodeCnt))
	heldGauge.With(registryTag.Value(s.name)).Record(float64(s.heldCnt))
}

// decode parses a node once; rejections are logged (rate-limited) and counted here,
// once per node appearance, never at every re-list.
func (c *Controller) decode(s *source, iface, name string) *node {
	u, err := dubboprovider.Parse(name)
	if err != nil {
		return c.rejectNode(s.name, iface, &node{name: name, err: err})
	}
	return c.nodeFromURL(s, iface, name, u)
}

// nodeFromURL makes a node of a provider URL: dubbo:// providers are served on the dubbo
// service port, tri:// (Triple) ones on the grpc-tri port.
func (c *Controller) nodeFromURL(s *source, iface, name string, u *dubboprovider.URL) *node {
	n := &node{name: name, label: s.label}
	portName := PortName
	switch {
	case u.Interface() != iface:
		n.err = &dubboprovider.Error{Reason: dubboprovider.ReasonInterface,
			Msg: fmt.Sprintf("interface %q listed under %q", u.Interface(), iface)}
		return c.rejectNode(s.name, iface, n)
	case u.Protocol == ProtocolTriple:
		portName = TriplePortName
	case u.Protocol != ProtocolDubbo:
		n.err = &dubboprovider.Error{Reason: dubboprovider.ReasonProtocol,
			Msg: fmt.Sprintf("protocol %s: only dubbo:// and tri:// providers become endpoints", u.Protocol)}
		return c.rejectNode(s.name, iface, n)
	}
	n.url = u
	n.spec = c.opts.toEndpoint(u, s.label, portName)
	if n.spec.warning != "" {
		rejectedTotal.With(registryTag.Value(s.name), reasonTag.Value(string(dubboprovider.ReasonParameter))).Increment()
		c.logRejection(s.name, iface, name, n.spec.warning+" (provider kept)")
	}
	return n
}

// rejectNode counts and logs a node that does not become an endpoint.
func (c *Controller) rejectNode(src, iface string, n *node) *node {
	name := n.name
	reason := "invalid"
	if e, ok := n.err.(*dubboprovider.Error); ok {
		reason = string(e.Reason)
	}
	rejectedTotal.With(registryTag.Value(src), reasonTag.Value(reason)).Increment()
	c.logRejection(src, iface, name, n.err.Error())
	return n
}

func (c *Controller) logRejection(src, iface, name, msg string) {
	if !c.logLimiter.Allow() {
		c.suppressed.Add(1)
		return
	}
	if s := c.suppressed.Swap(0); s > 0 {
		scope.Warnf("%d more rejected Dubbo provider nodes were not logged (rate limit); see dubbo_registry_rejected_nodes_total and /debug/dubboz", s)
	}
	if len(name) > 200 {
		name = name[:200] + fmt.Sprintf("...(%d bytes)", len(name))
	}
	scope.Warnf("registry %s: interface %s: provider node rejected: %s: %s", src, iface, msg, name)
}
