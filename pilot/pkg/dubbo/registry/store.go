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
	"slices"
	"sort"
	"strings"
	"sync"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/labels"
	"istio.io/istio/pkg/util/sets"
)

// store is the read side: what istiod's push path asks for, behind its own lock so that
// reads never wait for registry updates (which hold Controller.updateMu while they run).
type store struct {
	mu          sync.RWMutex
	services    map[host.Name]*model.Service
	serviceList []*model.Service // sorted; nil when it must be rebuilt
	interfaces  map[host.Name]string
	// targetsByIP: IP -> the targets of each service there, sorted by hostname. A slice,
	// not a map: nearly every IP serves one or two services, and a map per IP was ~400
	// bytes at 100,000 provider IPs.
	targetsByIP map[string][]hostTargets
}

// hostTargets are the targets of one service at one IP.
type hostTargets struct {
	hostname host.Name
	targets  []model.ServiceTarget
}

func newStore() store {
	return store{
		services:    map[host.Name]*model.Service{},
		interfaces:  map[host.Name]string{},
		targetsByIP: map[string][]hostTargets{},
	}
}

// setService swaps the service of a hostname (svc nil removes it).
func (s *store) setService(hostname host.Name, iface string, svc *model.Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if svc == nil {
		delete(s.services, hostname)
		delete(s.interfaces, hostname)
	} else {
		s.services[hostname] = svc
		s.interfaces[hostname] = iface
	}
	s.serviceList = nil // rebuilt on the next Services() call, not per change
	servicesGauge.Record(float64(len(s.services)))
}

// setTargets replaces the targets of a service in the IP index (svc nil removes them) and
// returns the IPs whose served ports changed, sorted.
func (s *store) setTargets(hostname host.Name, svc *model.Service, prev, cur []*model.IstioEndpoint) []string {
	before, after := portsByIP(prev), portsByIP(cur)
	s.mu.Lock()
	for ip := range before {
		if ts := s.targetsByIP[ip]; ts != nil {
			if i, found := findHost(ts, hostname); found {
				ts = slices.Delete(ts, i, i+1)
			}
			if len(ts) == 0 {
				delete(s.targetsByIP, ip)
			} else {
				s.targetsByIP[ip] = ts
			}
		}
	}
	if svc != nil {
		for _, ep := range cur {
			ip := ep.FirstAddressOrNil()
			sp, ok := svc.Ports.Get(ep.ServicePortName)
			if !ok {
				continue
			}
			ts := s.targetsByIP[ip]
			i, found := findHost(ts, hostname)
			if !found {
				ts = slices.Insert(ts, i, hostTargets{hostname: hostname})
				s.targetsByIP[ip] = ts
			}
			ts[i].targets = append(ts[i].targets, model.ServiceTarget{
				Service: svc,
				Port:    model.ServiceInstancePort{ServicePort: sp, TargetPort: ep.EndpointPort},
			})
		}
	}
	s.mu.Unlock()
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
	return sets.SortedList(changed)
}

// findHost finds a hostname's position in an IP's targets (or where it goes).
func findHost(ts []hostTargets, hostname host.Name) (int, bool) {
	return slices.BinarySearchFunc(ts, hostname, func(t hostTargets, h host.Name) int { return strings.Compare(string(t.hostname), string(h)) })
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

// The model.ServiceDiscovery methods (read side).

// Services implements model.ServiceDiscovery. The returned slice is shared: callers
// must not modify it (istiod does not).
func (c *Controller) Services() []*model.Service {
	s := &c.store
	s.mu.RLock()
	list, n := s.serviceList, len(s.services)
	s.mu.RUnlock()
	if list != nil || n == 0 {
		return list
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serviceList == nil {
		list := make([]*model.Service, 0, len(s.services))
		for _, svc := range s.services {
			list = append(list, svc)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Hostname < list[j].Hostname })
		s.serviceList = list
	}
	return s.serviceList
}

// GetService implements model.ServiceDiscovery.
func (c *Controller) GetService(hostname host.Name) *model.Service {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	return c.store.services[hostname]
}

// Interface returns the exact Dubbo interface behind a hostname ("" if none): MOSN and
// Envoy match on the exact, case-sensitive interface string.
func (c *Controller) Interface(hostname host.Name) string {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	return c.store.interfaces[hostname]
}

// GetProxyServiceTargets implements model.ServiceDiscovery: the Dubbo services a proxy
// serves, when it runs beside a provider.
func (c *Controller) GetProxyServiceTargets(proxy *model.Proxy) []model.ServiceTarget {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	var out []model.ServiceTarget
	for _, ip := range proxy.IPAddresses {
		for _, t := range c.store.targetsByIP[ip] {
			out = append(out, t.targets...)
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

func sortedStates(m map[string]*ifaceState) []*ifaceState {
	out := make([]*ifaceState, 0, len(m))
	for _, st := range m {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].iface < out[j].iface })
	return out
}
