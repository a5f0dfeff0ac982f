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
	"strconv"
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
	labels string // the proxy's labels that sourceLabels matches name, when any do
}

type routeCache struct {
	mu sync.Mutex
	// The current generation began with push (sequence seq, from its PushVersion);
	// prev is the one before. Only a newer push starts a generation: requests still
	// served from an older push context (a client's request, a new connection) read
	// both without rotating or storing.
	push      *model.PushContext
	seq       uint64
	cur, prev map[routeKey]*discovery.Resource
	// labelKeys: per scope, the label keys the VirtualServices it translates match on
	// (sourceLabels); nil: the configuration does not depend on the proxy's labels.
	labelKeys, prevLabelKeys map[routeKey][]string
	curBytes, prevBytes      int
	budget                   int
}

func newRouteCache() *routeCache {
	return &routeCache{
		cur: map[routeKey]*discovery.Resource{}, prev: map[routeKey]*discovery.Resource{},
		labelKeys: map[routeKey][]string{}, prevLabelKeys: map[routeKey][]string{},
		budget: routeCacheBudget,
	}
}

// pushSeq is the sequence number of a push context (NextVersion's "<time>/<n>"); 0 when
// it has none.
func pushSeq(push *model.PushContext) uint64 {
	if push == nil {
		return 0
	}
	_, n, ok := strings.Cut(push.PushVersion, "/")
	if !ok {
		return 0
	}
	v, _ := strconv.ParseUint(n, 10, 64)
	return v
}

// generation reports whether push is the current generation's, rotating when it is
// newer; false for an older push (its requests neither rotate nor store).
func (c *routeCache) generation(push *model.PushContext) bool {
	if push == c.push {
		return true
	}
	seq := pushSeq(push)
	if seq != 0 && c.seq != 0 && seq <= c.seq {
		return seq == c.seq // the same push, another context object: read only
	}
	c.push, c.seq = push, seq
	c.prev, c.cur = c.cur, map[routeKey]*discovery.Resource{}
	c.prevLabelKeys, c.labelKeys = c.labelKeys, map[routeKey][]string{}
	c.prevBytes, c.curBytes = c.curBytes, 0
	return true
}

// get returns the route configuration of a proxy's scope, building it at the first
// proxy of the scope (build reports the label keys it matched on).
func (c *routeCache) get(push *model.PushContext, proxy *model.Proxy, port uint32, build func() (*discovery.Resource, []string)) *discovery.Resource {
	base := routeKey{scope: proxy.SidecarScope, ns: proxy.ConfigNamespace, port: port}
	c.mu.Lock()
	current := c.generation(push)
	keys, known := c.labelKeys[base]
	if !known {
		if k, ok := c.prevLabelKeys[base]; ok {
			keys, known = k, true
			if current {
				c.labelKeys[base] = k
			}
		}
	}
	if known {
		key := base
		key.labels = labelsKey(proxy.Labels, keys)
		if r := c.cur[key]; r != nil {
			c.mu.Unlock()
			routeCacheHits.Increment()
			return r
		}
		if r := c.prev[key]; r != nil {
			if current {
				c.cur[key] = r
				n := size(r)
				c.curBytes += n
				c.prevBytes -= n
				delete(c.prev, key)
			}
			c.mu.Unlock()
			routeCacheHits.Increment()
			return r
		}
	}
	c.mu.Unlock()
	routeCacheMisses.Increment()
	r, keys := build()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !current || push != c.push {
		return r // an older push, or a newer one began meanwhile: not filed
	}
	c.labelKeys[base] = keys
	key := base
	key.labels = labelsKey(proxy.Labels, keys)
	n := size(r)
	if c.curBytes+c.prevBytes+n > c.budget && c.prevBytes > 0 {
		// What the previous generation holds goes first: a push that renews the scopes
		// leaves it dead.
		c.prev, c.prevLabelKeys, c.prevBytes = map[routeKey]*discovery.Resource{}, map[routeKey][]string{}, 0
	}
	if old := c.cur[key]; old != nil {
		c.curBytes -= size(old)
		delete(c.cur, key)
	}
	if c.curBytes+n <= c.budget {
		c.cur[key] = r
		c.curBytes += n
	}
	return r
}

func size(r *discovery.Resource) int { return len(r.GetResource().GetValue()) }

// labelsKey is the proxy's labels of the given keys (sorted), as one string.
func labelsKey(l map[string]string, keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	var b strings.Builder
	for _, k := range keys {
		v, ok := l[k]
		b.WriteString(k)
		if ok {
			b.WriteByte('=')
			b.WriteString(v)
		}
		b.WriteByte(0)
	}
	return b.String()
}

// sourceLabelKeys adds to keys the label keys a VirtualService's HTTP matches read of
// the proxy (sourceLabels).
func sourceLabelKeys(vs *networking.VirtualService, keys map[string]bool) {
	for _, hr := range vs.Http {
		for _, m := range hr.Match {
			for k := range m.SourceLabels {
				keys[k] = true
			}
		}
	}
}
