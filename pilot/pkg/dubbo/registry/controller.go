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
// The package is split by concern (docs/architecture.md):
//   - sources.go: the source side. Registries (one source each) report what they list
//     through SetProviders, RemoveInterface, ListError and the connection calls; nodes are
//     decoded once; removals are held during a reconnect grace.
//   - merge.go: a pure function from the ordered source states of one interface to its
//     endpoints.
//   - controller.go (this file): the controller, its sync state, and publish, which tells
//     istiod what changed: endpoint changes as incremental EDS updates (paced, pacer.go),
//     interfaces appearing or disappearing as service events (a full push).
//   - store.go: the read side (services, interfaces, proxy targets) and its lock, and the
//     model.ServiceDiscovery methods istiod's push path calls.
//
// Nothing is pushed before the initial lists are in (HasSynced).
package registry

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/serviceregistry"
	"istio.io/istio/pilot/pkg/serviceregistry/provider"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/labels"
	"istio.io/istio/pkg/config/protocol"
	"istio.io/istio/pkg/config/schema/kind"
	"istio.io/istio/pkg/config/visibility"
	"istio.io/istio/pkg/util/sets"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/dubbolog"
	dubboprovider "github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

// ProviderID is the Istio registry provider of Dubbo services.
const ProviderID provider.ID = "Dubbo"

var scope = dubbolog.Scope

var _ serviceregistry.Instance = &Controller{}

// Controller is the Dubbo serviceregistry.Instance.
type Controller struct {
	model.ControllerHandlers
	model.NetworkGatewaysHandler

	opts  Options
	xds   model.XDSUpdater
	shard model.ShardKey

	// updateMu serialises every state change and the xDS calls it makes, so istiod sees
	// changes in the order the registries reported them. Lock order: updateMu, then
	// store.mu.
	updateMu     sync.Mutex
	sources      []*source
	sourceByName map[string]*source
	ifaces       map[string]*ifaceState
	owners       map[host.Name]string // hostname -> interface that owns it

	store store // the read side used by istiod's push path

	endpointTotal int // guarded by updateMu

	pacer *pacer // nil: endpoint updates go through istiod's debounce

	synced       atomic.Bool
	syncDeadline atomic.Pointer[time.Time]
	logLimiter   *rate.Limiter
	suppressed   atomic.Int64

	// Injectable for tests.
	now        func() time.Time
	afterFunc  func(d time.Duration, f func()) *time.Timer
	renderHook func() // called by Debug between the snapshot and the rendering

	debugSections []debugSection // application levels and Nacos registries in /debug/dubboz

	gov governanceState // governance rules from the config centers (governance.go), guarded by updateMu

	routeStore model.ConfigStore        // where route rules' VirtualServices go (routes.go)
	userVS     func(host.Name) []string // VirtualServices of a host other than ours (dubboz)
}

// ifaceState is one Dubbo interface over every source.
type ifaceState struct {
	iface    string
	hostname host.Name
	present  map[string]bool             // sources that list the interface
	nodes    map[string]map[string]*node // source -> node name -> node; maps are never mutated once stored
	held     map[string]map[string]*node // source -> removals held during a reconnect grace; likewise
	svc      *model.Service
	eps      []*model.IstioEndpoint // last published
	conflict string                 // the interface owning our hostname, when not us
	rejected string                 // why the interface is not served (logged and counted once)
	// govSpecs are the endpoint specs override rules made of its nodes at the last
	// publish (nil: no rule applied), for rules generation govGen; replaced, never mutated.
	govSpecs map[*node]*endpointSpec
	govGen   uint64
	routes   *routeState // what route rules made of it (routes.go); nil: none
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
		store:        newStore(),
		logLimiter:   rate.NewLimiter(rate.Limit(20), 100),
		now:          time.Now,
		afterFunc:    time.AfterFunc,
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

// SetTrustDomain sets where the mesh's trust domain is read, for the identities
// providers declare (ServiceAccountParam). Call it before Run.
func (c *Controller) SetTrustDomain(f func() string) { c.opts.TrustDomain = f }

// Provider implements serviceregistry.Instance.
func (c *Controller) Provider() provider.ID { return ProviderID }

// Cluster implements serviceregistry.Instance: the primary cluster, so that proxies of
// that cluster see our workload labels.
func (c *Controller) Cluster() cluster.ID { return c.opts.ClusterID }

// Run implements model.Controller. Sources run on their own; Run arms the sync deadline
// and, on stop, cancels pending grace timers and the pacer.
func (c *Controller) Run(stop <-chan struct{}) {
	c.armSyncDeadline()
	<-stop
	c.updateMu.Lock()
	for _, s := range c.sources {
		s.stopGrace()
	}
	c.updateMu.Unlock()
	if c.pacer != nil {
		c.pacer.stop()
	}
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
	var waiting []string
	for _, s := range c.sources {
		if !s.synced {
			waiting = append(waiting, s.name)
		}
	}
	if len(waiting) > 0 {
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

// publish recomputes an interface from its sources and tells istiod what changed.
func (c *Controller) publish(st *ifaceState, observed time.Time) {
	present := len(st.present) > 0 || hasHeld(st)
	specs := c.specs(st)
	st.govSpecs, st.govGen = specs, c.gov.gen
	protected := false // empty protection holds the last endpoints: routes stay as they are
	defer func() {
		if !protected && (st.routes != nil || (st.svc != nil && c.ifaces[st.iface] == st)) {
			if c.ifaces[st.iface] != st {
				st.svc = nil // gone: its routes go too
			}
			c.updateRoutes(st, specs)
		}
	}()
	eps := mergeEndpoints(c.sourceStates(st), specs)
	if c.opts.EmptyProtection && len(eps) == 0 && len(st.eps) > 0 && len(st.present) > 0 &&
		// Providers an override rule disabled are gone on purpose, not a registry glitch.
		!ruleDisabledServed(st, specs) {
		scope.Warnf("interface %s: every provider is gone; keeping the last %d endpoints (empty protection)", st.iface, len(st.eps))
		recordEvent(firstSource(st), "empty_protected")
		eps = st.eps
		protected = true
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
			if st.conflict != owner {
				st.conflict = owner
				c.rejectInterface(st, fmt.Sprintf("hostname %s is already used by interface %s", hostname, owner))
			}
			return
		}
		st.conflict, st.rejected = "", ""
		c.owners[hostname] = st.iface
		st.svc = c.newService(st, eps)
		c.store.setService(st.hostname, st.iface, st.svc)
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
		c.store.setService(st.hostname, st.iface, nil)
		delete(c.owners, hostname)
		delete(c.ifaces, st.iface)
		c.xds.SvcUpdate(c.shard, string(hostname), ns, model.EventDelete)
		if synced {
			c.NotifyServiceHandlers(svc, svc, model.EventDelete)
			updateLatency.Record(time.Since(observed).Seconds())
		}
		scope.Infof("service %s removed: no registry lists interface %s", hostname, st.iface)
		// Its routes go before an interface that wanted the hostname makes its own.
		st.svc = nil
		c.updateRoutes(st, specs)
		// An interface that wanted the same hostname gets it now.
		for _, other := range sortedStates(c.ifaces) {
			if other.conflict == st.iface {
				other.conflict = ""
				c.publish(other, observed)
			}
		}
	case !sameEndpoints(st.eps, eps):
		prev := st.eps
		// An interface left without endpoints keeps its ports: during a rolling restart
		// the new instances may not be resolved yet when the old ones leave, and a port
		// dropped and restored would be two full pushes for one restart.
		if ports := c.servicePorts(eps); len(eps) > 0 && !samePorts(st.svc.Ports, ports) {
			// Triple providers came or went: the service gains or loses its grpc-tri port
			// (a service update, so a full push).
			old := st.svc
			st.svc = c.newService(st, eps)
			st.svc.CreationTime = old.CreationTime
			c.store.setService(st.hostname, st.iface, st.svc)
			c.setEndpoints(st, eps)
			c.updateTargets(st, prev, eps)
			c.xds.EDSCacheUpdate(c.shard, string(hostname), ns, eps)
			if synced {
				c.xds.SvcUpdate(c.shard, string(hostname), ns, model.EventUpdate)
				c.NotifyServiceHandlers(old, st.svc, model.EventUpdate)
				updateLatency.Record(time.Since(observed).Seconds())
			}
			scope.Infof("service %s: ports now %v (%d endpoints)", hostname, portNames(st.svc.Ports), len(eps))
			return
		}
		c.setEndpoints(st, eps)
		c.updateTargets(st, prev, eps)
		switch {
		case synced && identityChanged(prev, eps):
			// A provider declared or dropped its sidecar or identity (docs/security.md):
			// consumers' cluster TLS and SANs change, which only a full push carries, as
			// upstream does when a service's accounts change.
			c.xds.EDSCacheUpdate(c.shard, string(hostname), ns, eps)
			c.xds.ConfigUpdate(&model.PushRequest{
				ConfigsUpdated: sets.New(model.ConfigKey{Kind: kind.ServiceEntry, Name: string(hostname), Namespace: ns}),
				Reason:         model.NewReasonStats(model.EndpointUpdate),
			})
			updateLatency.Record(time.Since(observed).Seconds())
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
	default:
		// Equal endpoints, perhaps of other nodes (another source took over a provider):
		// nothing to push, but /debug/dubboz tells the published nodes by identity.
		st.eps = eps
	}
}

// ruleDisabledServed reports whether an endpoint served until now belongs to a provider
// an override rule now disables (then an empty list is the operator's doing).
func ruleDisabledServed(st *ifaceState, specs map[*node]*endpointSpec) bool {
	served := map[string]bool{}
	for _, ep := range st.eps {
		served[ep.WorkloadName] = true
	}
	for n, sp := range specs {
		if sp.disabled && !n.spec.disabled && served[sp.ep.WorkloadName] {
			return true
		}
	}
	return false
}

// identityChanged reports whether the sidecars or identities behind a service changed:
// the set of declared (service account, TLS mode) of its endpoints. Providers that
// declare nothing count as nothing, so providers coming and going (a rolling restart)
// stay paced EDS updates.
func identityChanged(prev, cur []*model.IstioEndpoint) bool {
	ids := func(eps []*model.IstioEndpoint) sets.String {
		s := sets.New[string]()
		for _, ep := range eps {
			if ep.ServiceAccount != "" || ep.TLSMode == model.IstioMutualTLSModeLabel {
				s.Insert(ep.ServiceAccount + "|" + ep.TLSMode)
			}
		}
		return s
	}
	return !ids(prev).Equals(ids(cur))
}

// sourceStates lists an interface's nodes per source, in configured order (merge input).
func (c *Controller) sourceStates(st *ifaceState) []sourceNodes {
	out := make([]sourceNodes, 0, len(c.sources))
	for _, s := range c.sources {
		if cur, held := st.nodes[s.name], st.held[s.name]; len(cur) > 0 || len(held) > 0 {
			out = append(out, sourceNodes{current: cur, held: held})
		}
	}
	return out
}

// rejectInterface logs and counts why an interface is not served, once per reason (it is
// published again at every provider change).
func (c *Controller) rejectInterface(st *ifaceState, msg string) {
	if st.rejected == msg {
		return
	}
	st.rejected = msg
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
	if len(st.present) == 0 {
		return ""
	}
	return slices.Sorted(maps.Keys(st.present))[0]
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

// servicePorts are the ports of a service with these endpoints: dubbo always, grpc-tri
// while some provider speaks Triple.
func (c *Controller) servicePorts(eps []*model.IstioEndpoint) model.PortList {
	ports := model.PortList{{Name: PortName, Port: int(c.opts.ServicePort), Protocol: protocol.Dubbo}}
	for _, ep := range eps {
		if ep.ServicePortName == TriplePortName {
			return append(ports, &model.Port{Name: TriplePortName, Port: int(c.opts.TriplePort), Protocol: protocol.GRPC})
		}
	}
	return ports
}

func samePorts(a, b model.PortList) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if *a[i] != *b[i] {
			return false
		}
	}
	return true
}

func portNames(ports model.PortList) []string {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		out = append(out, fmt.Sprintf("%s/%d", p.Name, p.Port))
	}
	return out
}

func (c *Controller) newService(st *ifaceState, eps []*model.IstioEndpoint) *model.Service {
	return &model.Service{
		Hostname:       st.hostname,
		Ports:          c.servicePorts(eps),
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

// updateTargets maintains the IP -> service targets index used for the providers' own
// proxies, and asks istiod to recompute the proxies whose served ports changed.
func (c *Controller) updateTargets(st *ifaceState, prev, cur []*model.IstioEndpoint) {
	changed := c.store.setTargets(st.hostname, st.svc, prev, cur)
	if !c.synced.Load() {
		return
	}
	for _, ip := range changed {
		c.xds.ProxyUpdate(c.opts.ClusterID, ip)
	}
}

// setEndpoints records an interface's published endpoints and keeps the total.
func (c *Controller) setEndpoints(st *ifaceState, eps []*model.IstioEndpoint) {
	c.endpointTotal += len(eps) - len(st.eps)
	st.eps = eps
	endpointsGauge.Record(float64(c.endpointTotal))
}
