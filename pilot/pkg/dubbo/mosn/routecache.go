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

package mosn

import (
	"maps"
	"slices"
	"strings"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	networking "istio.io/api/networking/v1alpha3"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/monitoring"
)

// The Dubbo route configuration is built once per scope: what it reads of a proxy is its
// SidecarScope (the services it sees and their VirtualServices), its config namespace
// (sourceNamespace matches), its outbound port (the name) and, only when a
// VirtualService it sees has sourceLabels matches, its labels. istiod builds a new
// SidecarScope exactly when a Service, VirtualService, DestinationRule or Sidecar
// changes (PushContext.updateContext), the same triggers upstream's route cache uses,
// so a scope's configuration is valid as long as the scope itself: the cache is keyed
// by the scope's identity. Two generations: scopes not asked for during a whole
// generation (a push context) are dropped with it, and the cache holds at most
// routeCacheBudget bytes (a mesh with very many scopes builds the rest per proxy, as
// without the cache).

var (
	routeCacheResult = monitoring.CreateLabel("result")
	routeCacheTotal  = monitoring.NewSum(
		"dubbo_mosn_route_cache_total",
		"Dubbo route configurations served to MOSN sidecars, by result: hit (built before for the proxy's scope) or miss (built for it).",
	)
	routeCacheHits   = routeCacheTotal.With(routeCacheResult.Value("hit"))
	routeCacheMisses = routeCacheTotal.With(routeCacheResult.Value("miss"))
)

// routeCacheBudget bounds the bytes of cached configurations (both generations).
const routeCacheBudget = 128 << 20

type routeKey struct {
	scope  *model.SidecarScope
	ns     string
	port   uint32
	labels string // the proxy's labels, when the scope's VirtualServices match on them
}

type routeCache struct {
	mu        sync.Mutex
	push      *model.PushContext // the push the current generation began with
	cur, prev map[routeKey]*discovery.Resource
	// sensitive: scopes whose configuration depends on the proxy's labels.
	sensitive, prevSensitive map[routeKey]bool
	curBytes, prevBytes      int
	budget                   int
}

func newRouteCache() *routeCache {
	return &routeCache{
		cur: map[routeKey]*discovery.Resource{}, prev: map[routeKey]*discovery.Resource{},
		sensitive: map[routeKey]bool{}, prevSensitive: map[routeKey]bool{},
		budget: routeCacheBudget,
	}
}

// get returns the route configuration of a proxy's scope, building it at the first
// proxy of the scope (build reports whether it read the proxy's labels).
func (c *routeCache) get(push *model.PushContext, proxy *model.Proxy, port uint32, build func() (*discovery.Resource, bool)) *discovery.Resource {
	base := routeKey{scope: proxy.SidecarScope, ns: proxy.ConfigNamespace, port: port}
	c.mu.Lock()
	if push != c.push {
		c.push = push
		c.prev, c.cur = c.cur, map[routeKey]*discovery.Resource{}
		c.prevSensitive, c.sensitive = c.sensitive, map[routeKey]bool{}
		c.prevBytes, c.curBytes = c.curBytes, 0
	}
	key := base
	sensitive, known := c.sensitive[base]
	if !known {
		if s, ok := c.prevSensitive[base]; ok {
			sensitive, known = s, true
			c.sensitive[base] = s
		}
	}
	if known && sensitive {
		key.labels = labelsKey(proxy.Labels)
	}
	if known {
		if r := c.cur[key]; r != nil {
			c.mu.Unlock()
			routeCacheHits.Increment()
			return r
		}
		if r := c.prev[key]; r != nil {
			c.cur[key] = r
			n := size(r)
			c.curBytes += n
			c.prevBytes -= n
			delete(c.prev, key)
			c.mu.Unlock()
			routeCacheHits.Increment()
			return r
		}
	}
	c.mu.Unlock()
	routeCacheMisses.Increment()
	r, usesLabels := build()
	c.mu.Lock()
	defer c.mu.Unlock()
	if push != c.push {
		return r // a newer push began meanwhile: do not file under its generation
	}
	c.sensitive[base] = usesLabels
	key = base
	if usesLabels {
		key.labels = labelsKey(proxy.Labels)
	}
	if n := size(r); c.curBytes+c.prevBytes+n <= c.budget {
		if old := c.cur[key]; old != nil {
			c.curBytes -= size(old)
		}
		c.cur[key] = r
		c.curBytes += n
	}
	return r
}

func size(r *discovery.Resource) int { return len(r.GetResource().GetValue()) }

func labelsKey(l map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(l)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return b.String()
}

// matchesOnLabels reports whether a VirtualService's HTTP matches read the proxy's labels.
func matchesOnLabels(vs *networking.VirtualService) bool {
	for _, hr := range vs.Http {
		for _, m := range hr.Match {
			if len(m.SourceLabels) > 0 {
				return true
			}
		}
	}
	return false
}
