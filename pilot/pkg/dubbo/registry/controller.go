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

// Package registry is the Dubbo service registry of dubbo-istiod: a
// serviceregistry.Instance in istiod's aggregate controller that turns Dubbo
// interfaces, as one or more registries (ZooKeeper, ...) list their providers, into
// Istio services with per-instance-port endpoints.
//
// Sources (one per configured registry) report what they list through SetProviders,
// RemoveInterface and the connection calls; the controller decodes each provider node
// once, merges the registries per interface, and tells istiod: endpoint changes as
// incremental EDS updates, interfaces appearing or disappearing as service events (a
// full push). Nothing is pushed before the initial lists are in (HasSynced).
package registry

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/serviceregistry/provider"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/labels"
	"istio.io/istio/pkg/config/protocol"
	"istio.io/istio/pkg/config/visibility"
	"istio.io/istio/pkg/util/sets"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/dubbolog"
	dubboprovider "github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

// ProviderID is the Istio registry provider of Dubbo services.
const ProviderID provider.ID = "Dubbo"

var scope = dubbolog.Scope

// Controller is the Dubbo serviceregistry.Instance.
type Controller struct {
	model.ControllerHandlers
	model.NetworkGatewaysHandler

	opts  Options
	xds   model.XDSUpdater
	shard model.ShardKey

	// updateMu serialises every state change and the xDS calls it makes, so istiod sees
	// changes in the order the registries reported them.
	updateMu     sync.Mutex
	sources      []*source
	sourceByName map[string]*source
	ifaces       map[string]*ifaceState
	owners       map[host.Name]string // hostname -> interface that owns it

	// mu guards the read side used by istiod's push path.
	mu          sync.RWMutex
	services    map[host.Name]*model.Service
	serviceList []*model.Service // sorted; nil when it must be rebuilt
	interfaces  map[host.Name]string
	targetsByIP map[string]map[host.Name][]model.ServiceTarget

	endpointTotal int // guarded by updateMu

	pacer *pacer // nil: endpoint updates go through istiod's debounce

	synced       atomic.Bool
	syncDeadline atomic.Pointer[time.Time]
	logLimiter   *rate.Limiter
	suppressed   atomic.Int64
	now          func() time.Time
}

// source is one configured registry.
type source struct {
	name         string
	connected    bool
	synced       bool
	graceUntil   time.Time
	graceTimer   *time.Timer
	lastEvent    time.Time
	sessions     int
	disconnects  int
	description  string
	interfaceCnt int
	nodeCnt      int // provider nodes listed, over all interfaces
	heldCnt      int // removals held during a reconnect grace
}

// node is one provider node as listed, decoded once.
type node struct {
	name string
	url  *dubboprovider.URL
	spec endpointSpec
	err  error
}

type ifaceState struct {
	iface    string
	hostname host.Name
	present  map[string]bool             // sources that list the interface
	nodes    map[string]map[string]*node // source -> node name -> node
	held     map[string]map[string]*node // source -> removals held during a reconnect grace
	svc      *model.Service
	eps      []*model.IstioEndpoint // last published
	conflict string                 // the interface owning our hostname, when not us
}

// NewController builds the registry. Sources must be added before Run.
func NewController(opts Options, xds model.XDSUpdater) (*Controller, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Controller{
		opts:         opts,
		xds:          xds,
		shard:        model.ShardKey{Cluster: opts.ClusterID, Provider: ProviderID},
		sourceByName: map[string]*source{},
		ifaces:       map[string]*ifaceState{},
		owners:       map[host.Name]string{},
		services:     map[host.Name]*model.Service{},
		interfaces:   map[host.Name]string{},
		targetsByIP:  map[string]map[host.Name][]model.ServiceTarget{},
		logLimiter:   rate.NewLimiter(rate.Limit(20), 100),
		now:          time.Now,
	}, nil
}

// SetPusher paces the endpoint pushes of Dubbo services through p (istiod's
// DiscoveryServer) every Options.EDSPushInterval, instead of istiod's debounce. Call it
// before Run.
func (c *Controller) SetPusher(p Pusher) {
	if c.opts.EDSPushInterval > 0 && p != nil {
		c.pacer = newPacer(c.opts.EDSPushInterval, p)
	}
}

// Options returns the options in effect.
func (c *Controller) Options() Options { return c.opts }

// AddSource declares a registry (before Run). Its name labels endpoints and metrics.
func (c *Controller) AddSource(name, description string) error {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	if _, ok := c.sourceByName[name]; ok {
		return fmt.Errorf("two Dubbo registries are named %q; give each a distinct name= parameter", name)
	}
	s := &source{name: name, description: description}
	c.sources = append(c.sources, s)
	c.sourceByName[name] = s
	connectedGauge.With(registryTag.Value(name)).Record(0)
	syncedGauge.With(registryTag.Value(name)).Record(0)
	return nil
}

// Provider implements serviceregistry.Instance.
func (c *Controller) Provider() provider.ID { return ProviderID }

// Cluster implements serviceregistry.Instance: the primary cluster, so that proxies of
// that cluster see our workload labels.
func (c *Controller) Cluster() cluster.ID { return c.opts.ClusterID }

// Run implements model.Controller. Sources run on their own; Run arms the sync deadline.
func (c *Controller) Run(stop <-chan struct{}) {
	c.armSyncDeadline()
	<-stop
	c.updateMu.Lock()
	for _, s := range c.sources {
		if s.graceTimer != nil {
			s.graceTimer.Stop()
		}
	}
	c.updateMu.Unlock()
}

func (c *Controller) armSyncDeadline() {
	d := c.now().Add(c.opts.SyncTimeout)
	c.syncDeadline.CompareAndSwap(nil, &d)
}

// HasSynced is true once every source delivered its initial lists, or once the sync
// timeout passed (a registry that is down must not keep istiod unready; it keeps
// retrying and its providers arrive as ordinary updates).
func (c *Controller) HasSynced() bool {
	if c.synced.Load() {
		return true
	}
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	return c.checkSyncedLocked()
}

func (c *Controller) checkSyncedLocked() bool {
	if c.synced.Load() {
		return true
	}
	all := true
	var waiting []string
	for _, s := range c.sources {
		if !s.synced {
			all = false
			waiting = append(waiting, s.name)
		}
	}
	if !all {
		d := c.syncDeadline.Load()
		if d == nil || c.now().Before(*d) {
			return false
		}
		scope.Warnf("Dubbo registries %v have not delivered their providers within %v; istiod becomes ready without them and keeps trying",
			waiting, c.opts.SyncTimeout)
	}
	// The initial lists went to the caches only. One update for all of them, queued
	// before istiod sees us synced: istiod waits until every update queued by then is in
	// its push context before it becomes ready, so the first push has every service.
	c.xds.ConfigUpdate(&model.PushRequest{Forced: true, Reason: model.NewReasonStats(model.ServiceUpdate)})
	c.synced.Store(true)
	return true
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
	if connected {
		connectedGauge.With(registryTag.Value(name)).Record(1)
		recordEvent(name, "connected")
		s.sessions++
		if newSession && s.synced && c.opts.ReconnectGrace > 0 {
			s.graceUntil = c.now().Add(c.opts.ReconnectGrace)
			if s.graceTimer != nil {
				s.graceTimer.Stop()
			}
			s.graceTimer = time.AfterFunc(c.opts.ReconnectGrace, func() { c.endGrace(name) })
			scope.Infof("registry %s: new session; provider removals are held for %v while providers re-register",
				name, c.opts.ReconnectGrace)
		}
	} else {
		connectedGauge.With(registryTag.Value(name)).Record(0)
		recordEvent(name, "disconnected")
		s.disconnects++
	}
	s.connected = connected
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

// SetProviders replaces the provider nodes a registry lists for an interface.
// observed is when the registry change was noticed (for the latency metric).
func (c *Controller) SetProviders(src, iface string, names []string, observed time.Time) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	s := c.sourceByName[src]
	if s == nil {
		return
	}
	s.lastEvent = c.now()
	recordEvent(src, "providers")
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
	if !st.present[src] {
		st.present[src] = true
		s.interfaceCnt++
		interfacesGauge.With(registryTag.Value(src)).Record(float64(s.interfaceCnt))
		recordEvent(src, "interface_added")
	}
	old, oldHeld := st.nodes[src], st.held[src]
	cur := make(map[string]*node, len(names))
	for _, n := range names {
		switch {
		case old[n] != nil:
			cur[n] = old[n]
		case oldHeld[n] != nil:
			cur[n] = oldHeld[n]
		default:
			cur[n] = c.decode(src, iface, n)
		}
	}
	var held map[string]*node
	if c.now().Before(s.graceUntil) {
		for n, o := range old {
			if cur[n] == nil {
				held = setNode(held, n, o)
			}
		}
		for n, o := range oldHeld {
			if cur[n] == nil {
				held = setNode(held, n, o)
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
	held := st.held[src]
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

// endGrace applies the removals held since a registry's new session.
func (c *Controller) endGrace(src string) {
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	s := c.sourceByName[src]
	if s == nil {
		return
	}
	s.graceUntil = time.Time{}
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
// source's counters (no walk over every interface per change).
func (c *Controller) setNodes(s *source, st *ifaceState, nodes, held map[string]*node) {
	s.nodeCnt += len(nodes) - len(st.nodes[s.name])
	s.heldCnt += len(held) - len(st.held[s.name])
	if nodes == nil {
		delete(st.nodes, s.name)
	} else {
		st.nodes[s.name] = nodes
	}
	if held == nil {
		delete(st.held, s.name)
	} else {
		st.held[s.name] = held
	}
	providersGauge.With(registryTag.Value(s.name)).Record(float64(s.nodeCnt))
	heldGauge.With(registryTag.Value(s.name)).Record(float64(s.heldCnt))
}

// decode parses a node once; rejections are logged (rate-limited) and counted here,
// once per node appearance, never at every re-list.
func (c *Controller) decode(src, iface, name string) *node {
	n := &node{name: name}
	u, err := dubboprovider.Parse(name)
	switch {
	case err != nil:
		n.err = err
	case u.Interface() != iface:
		n.err = &dubboprovider.Error{Reason: dubboprovider.ReasonInterface,
			Msg: fmt.Sprintf("interface %q listed under %q", u.Interface(), iface)}
	case u.Protocol != "dubbo":
		n.err = &dubboprovider.Error{Reason: dubboprovider.ReasonProtocol,
			Msg: fmt.Sprintf("protocol %s: only dubbo:// providers become endpoints", u.Protocol)}
	default:
		n.url = u
		n.spec = c.opts.toEndpoint(u, src)
		if n.spec.warning != "" {
			rejectedTotal.With(registryTag.Value(src), reasonTag.Value(string(dubboprovider.ReasonParameter))).Increment()
			c.logRejection(src, iface, name, n.spec.warning+" (provider kept)")
		}
		return n
	}
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

// merge computes the endpoints of an interface over every registry, in configured order.
func (c *Controller) merge(st *ifaceState) []*model.IstioEndpoint {
	type cand struct {
		spec endpointSpec
		src  int
	}
	byKey := map[string]cand{}
	var keys []string
	for i, s := range c.sources {
		for _, set := range []map[string]*node{st.nodes[s.name], st.held[s.name]} {
			for _, n := range set {
				if n.err != nil || n.spec.disabled {
					continue
				}
				k := n.spec.ep.WorkloadName
				prev, ok := byKey[k]
				switch {
				case !ok:
					keys = append(keys, k)
				case prev.src < i:
					continue // an earlier registry already lists this provider
				case prev.spec.stamp > n.spec.stamp,
					prev.spec.stamp == n.spec.stamp && prev.spec.ep.EndpointPort <= n.spec.ep.EndpointPort:
					continue // keep the newest registration of a duplicate
				}
				byKey[k] = cand{n.spec, i}
			}
		}
	}
	allZero := len(keys) > 0
	for _, k := range keys {
		if !byKey[k].spec.zero {
			allZero = false
		}
	}
	eps := make([]*model.IstioEndpoint, 0, len(keys))
	for _, k := range keys {
		if cd := byKey[k]; allZero || !cd.spec.zero {
			eps = append(eps, cd.spec.ep)
		}
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].WorkloadName < eps[j].WorkloadName })
	return eps
}

// publish recomputes an interface and tells istiod what changed.
func (c *Controller) publish(st *ifaceState, observed time.Time) {
	present := len(st.present) > 0 || hasHeld(st)
	eps := c.merge(st)
	if c.opts.EmptyProtection && len(eps) == 0 && len(st.eps) > 0 && len(st.present) > 0 {
		scope.Warnf("interface %s: every provider is gone; keeping the last %d endpoints (empty protection)", st.iface, len(st.eps))
		recordEvent(firstSource(st), "empty_protected")
		eps = st.eps
	}
	synced := c.synced.Load()
	hostname := st.hostname
	ns := c.opts.Namespace

	switch {
	case st.svc == nil && (len(eps) == 0 || !present):
		// Never had a provider: no service (consumer-only interfaces, config nodes).
		if !present {
			delete(c.ifaces, st.iface)
		}
		return
	case st.svc == nil:
		if hostname == "" {
			c.rejectInterface(st, "interface maps to an empty hostname")
			return
		}
		if owner, taken := c.owners[hostname]; taken && owner != st.iface {
			if st.conflict == "" {
				st.conflict = owner
				c.rejectInterface(st, fmt.Sprintf("hostname %s is already used by interface %s", hostname, owner))
			}
			return
		}
		st.conflict = ""
		c.owners[hostname] = st.iface
		st.svc = c.newService(st)
		c.setService(st, st.svc)
		c.setEndpoints(st, eps)
		c.updateTargets(st, nil, eps)
		c.xds.EDSCacheUpdate(c.shard, string(hostname), ns, eps)
		if synced {
			c.xds.SvcUpdate(c.shard, string(hostname), ns, model.EventAdd)
			c.NotifyServiceHandlers(nil, st.svc, model.EventAdd)
			updateLatency.Record(time.Since(observed).Seconds())
		}
		scope.Infof("service %s added for interface %s (%d endpoints)", hostname, st.iface, len(eps))
	case !present:
		// No registry lists the interface any more: the service goes.
		svc := st.svc
		c.updateTargets(st, st.eps, nil)
		c.setEndpoints(st, nil)
		c.setService(st, nil)
		delete(c.owners, hostname)
		delete(c.ifaces, st.iface)
		c.xds.SvcUpdate(c.shard, string(hostname), ns, model.EventDelete)
		if synced {
			c.NotifyServiceHandlers(svc, svc, model.EventDelete)
			updateLatency.Record(time.Since(observed).Seconds())
		}
		scope.Infof("service %s removed: no registry lists interface %s", hostname, st.iface)
		// An interface that wanted the same hostname gets it now.
		for _, other := range sortedStates(c.ifaces) {
			if other.conflict == st.iface {
				other.conflict = ""
				c.publish(other, observed)
			}
		}
	case !sameEndpoints(st.eps, eps):
		prev := st.eps
		c.setEndpoints(st, eps)
		c.updateTargets(st, prev, eps)
		switch {
		case synced && c.pacer != nil:
			c.xds.EDSCacheUpdate(c.shard, string(hostname), ns, eps)
			c.pacer.mark(string(hostname), ns)
			updateLatency.Record(time.Since(observed).Seconds())
		case synced:
			c.xds.EDSUpdate(c.shard, string(hostname), ns, eps)
			updateLatency.Record(time.Since(observed).Seconds())
		default:
			c.xds.EDSCacheUpdate(c.shard, string(hostname), ns, eps)
		}
		scope.Debugf("service %s: %d endpoints", hostname, len(eps))
	}
}

func (c *Controller) rejectInterface(st *ifaceState, msg string) {
	for src, set := range st.nodes {
		rejectedTotal.With(registryTag.Value(src), reasonTag.Value(string(dubboprovider.ReasonHostnameUsed))).Record(float64(len(set)))
	}
	scope.Errorf("interface %s is not served: %s", st.iface, msg)
}

func hasHeld(st *ifaceState) bool {
	for _, h := range st.held {
		if len(h) > 0 {
			return true
		}
	}
	return false
}

func firstSource(st *ifaceState) string {
	for s := range st.present {
		return s
	}
	return ""
}

func sameEndpoints(a, b []*model.IstioEndpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !a[i].Equals(b[i]) {
			return false
		}
	}
	return true
}

func (c *Controller) newService(st *ifaceState) *model.Service {
	return &model.Service{
		Hostname: st.hostname,
		Ports: model.PortList{{
			Name:     PortName,
			Port:     int(c.opts.ServicePort),
			Protocol: protocol.Dubbo,
		}},
		Resolution:     model.ClientSideLB,
		DefaultAddress: "0.0.0.0",
		CreationTime:   c.now(),
		Attributes: model.ServiceAttributes{
			ServiceRegistry: ProviderID,
			Name:            string(st.hostname),
			Namespace:       c.opts.Namespace,
			ExportTo:        sets.New(visibility.Public),
			Labels:          labels.Instance{},
		},
	}
}

// setService swaps the read-side view (svc nil removes it).
func (c *Controller) setService(st *ifaceState, svc *model.Service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if svc == nil {
		delete(c.services, st.hostname)
		delete(c.interfaces, st.hostname)
	} else {
		c.services[st.hostname] = svc
		c.interfaces[st.hostname] = st.iface
	}
	c.serviceList = nil // rebuilt on the next Services() call, not per change
	servicesGauge.Record(float64(len(c.services)))
}

// updateTargets maintains the IP -> service targets index used for the providers' own
// proxies, and asks istiod to recompute the proxies whose served ports changed.
func (c *Controller) updateTargets(st *ifaceState, prev, cur []*model.IstioEndpoint) {
	before, after := portsByIP(prev), portsByIP(cur)
	c.mu.Lock()
	for ip := range before {
		if m := c.targetsByIP[ip]; m != nil {
			delete(m, st.hostname)
			if len(m) == 0 {
				delete(c.targetsByIP, ip)
			}
		}
	}
	if st.svc != nil {
		for _, ep := range cur {
			ip := ep.FirstAddressOrNil()
			m := c.targetsByIP[ip]
			if m == nil {
				m = map[host.Name][]model.ServiceTarget{}
				c.targetsByIP[ip] = m
			}
			m[st.hostname] = append(m[st.hostname], model.ServiceTarget{
				Service: st.svc,
				Port:    model.ServiceInstancePort{ServicePort: st.svc.Ports[0], TargetPort: ep.EndpointPort},
			})
		}
	}
	c.mu.Unlock()
	if !c.synced.Load() {
		return
	}
	changed := sets.New[string]()
	for ip, ports := range before {
		if after[ip] != ports {
			changed.Insert(ip)
		}
	}
	for ip, ports := range after {
		if before[ip] != ports {
			changed.Insert(ip)
		}
	}
	for _, ip := range sets.SortedList(changed) {
		c.xds.ProxyUpdate(c.opts.ClusterID, ip)
	}
}

// portsByIP summarises endpoints as IP -> its sorted ports.
func portsByIP(eps []*model.IstioEndpoint) map[string]string {
	ports := map[string][]int{}
	for _, ep := range eps {
		ip := ep.FirstAddressOrNil()
		ports[ip] = append(ports[ip], int(ep.EndpointPort))
	}
	out := make(map[string]string, len(ports))
	for ip, p := range ports {
		sort.Ints(p)
		out[ip] = fmt.Sprint(p)
	}
	return out
}

// setEndpoints records an interface's published endpoints and keeps the total.
func (c *Controller) setEndpoints(st *ifaceState, eps []*model.IstioEndpoint) {
	c.endpointTotal += len(eps) - len(st.eps)
	st.eps = eps
	endpointsGauge.Record(float64(c.endpointTotal))
}

func sortedStates(m map[string]*ifaceState) []*ifaceState {
	out := make([]*ifaceState, 0, len(m))
	for _, st := range m {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].iface < out[j].iface })
	return out
}

// Services implements model.ServiceDiscovery. The returned slice is shared: callers
// must not modify it (istiod does not).
func (c *Controller) Services() []*model.Service {
	c.mu.RLock()
	list := c.serviceList
	c.mu.RUnlock()
	if list != nil || c.serviceCount() == 0 {
		return list
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.serviceList == nil {
		list := make([]*model.Service, 0, len(c.services))
		for _, s := range c.services {
			list = append(list, s)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Hostname < list[j].Hostname })
		c.serviceList = list
	}
	return c.serviceList
}

func (c *Controller) serviceCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.services)
}

// GetService implements model.ServiceDiscovery.
func (c *Controller) GetService(hostname host.Name) *model.Service {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.services[hostname]
}

// Interface returns the exact Dubbo interface behind a hostname ("" if none): MOSN and
// Envoy match on the exact, case-sensitive interface string.
func (c *Controller) Interface(hostname host.Name) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.interfaces[hostname]
}

// GetProxyServiceTargets implements model.ServiceDiscovery: the Dubbo services a proxy
// serves, when it runs beside a provider.
func (c *Controller) GetProxyServiceTargets(proxy *model.Proxy) []model.ServiceTarget {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []model.ServiceTarget
	for _, ip := range proxy.IPAddresses {
		m := c.targetsByIP[ip]
		if len(m) == 0 {
			continue
		}
		hosts := make([]host.Name, 0, len(m))
		for h := range m {
			hosts = append(hosts, h)
		}
		sort.Slice(hosts, func(i, j int) bool { return hosts[i] < hosts[j] })
		for _, h := range hosts {
			out = append(out, m[h]...)
		}
	}
	return out
}

// GetProxyWorkloadLabels implements model.ServiceDiscovery. Dubbo registries carry no
// workload labels for proxies; Kubernetes or WorkloadEntries provide them.
func (c *Controller) GetProxyWorkloadLabels(*model.Proxy) labels.Instance { return nil }

// MCSServices implements model.ServiceDiscovery.
func (c *Controller) MCSServices() []model.MCSServiceInfo { return nil }

// NetworkGateways implements model.NetworkGatewaysWatcher.
func (c *Controller) NetworkGateways() []model.NetworkGateway { return nil }
