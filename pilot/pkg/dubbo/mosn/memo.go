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
	"bytes"
	"hash/maphash"
	"sync"
	"weak"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"istio.io/istio/pilot/pkg/model"
)

// memo remembers the MOSN form of upstream resources, first by object and then by
// content. Upstream's xDS caches hand out the same *anypb.Any for an unchanged cluster or
// load assignment on every push and to every proxy, so most lookups are one map access
// by name that finds the very object served last under it (objEntry; cached objects are
// never modified). What upstream rebuilds (a cache miss, an EnvoyFilter-patched cluster,
// a new connection's first push, which upstream never caches) comes back as new objects,
// often with the same bytes (not always: upstream marshals the map fields of metadata in
// no fixed order): hashing them (and comparing on a hit) is still far cheaper than
// unmarshalling, adapting and re-marshalling each one per push. Two generations bound
// the memory: when the current one is full it becomes the previous one and the oldest
// goes.
type memo struct {
	mu        sync.Mutex
	seed      maphash.Seed
	cur, prev map[memoKey]memoEntry
	// The last object seen per name and variant, in two generations of their own (each
	// of at most limit entries too).
	curObj, prevObj map[objKey]objEntry
	limit           int
}

type objKey struct{ name, variant, variant2 string }

// objEntry is the MOSN form made of one upstream object. It holds the object weakly
// (an index never keeps upstream's objects alive: 1,000 connecting sidecars each get new
// ones) and, as the form, nil when adapting changed nothing, for the same reason.
type objEntry struct {
	in  weak.Pointer[anypb.Any]
	out *anypb.Any
}

func newObjEntry(in, out *anypb.Any) objEntry {
	if out == in {
		out = nil
	}
	return objEntry{in: weak.Make(in), out: out}
}

// of returns the form if the entry was made of in itself (a weak pointer's value is the
// object it was made of, or nil once that is collected, never another object).
func (e objEntry) of(in *anypb.Any) (*anypb.Any, bool) {
	if in == nil || e.in.Value() != in { // nil: an absent entry's value too
		return nil, false
	}
	if e.out == nil {
		return in, true
	}
	return e.out, true
}

type memoKey struct {
	name string
	// variant tells apart forms of one upstream resource that differ by what the
	// adaptation reads beside it (a cluster's TLS inputs, the node's SDS path).
	variant, variant2 string
	sum               uint64
}

type memoEntry struct {
	in  []byte // the upstream bytes, compared on a hit (a hash alone could collide)
	out *anypb.Any
}

func newMemo(limit int) *memo {
	return &memo{
		seed: maphash.MakeSeed(), cur: map[memoKey]memoEntry{}, prev: map[memoKey]memoEntry{},
		curObj: map[objKey]objEntry{}, prevObj: map[objKey]objEntry{}, limit: limit,
	}
}

// fit grows the generation size to the working set (twice the resources of a response),
// so a large mesh does not thrash and a small one stays small.
func (m *memo) fit(n int) {
	m.mu.Lock()
	if 2*n > m.limit {
		m.limit = 2 * n
	}
	m.mu.Unlock()
}

func (m *memo) get(in *anypb.Any, name string, compute func() (*anypb.Any, error)) (*anypb.Any, error) {
	return m.getVariant(in, name, "", "", compute)
}

// getVariant is get for one of several forms of the same upstream resource.
func (m *memo) getVariant(in *anypb.Any, name, variant, variant2 string, compute func() (*anypb.Any, error)) (*anypb.Any, error) {
	ik := objKey{name: name, variant: variant, variant2: variant2}
	m.mu.Lock()
	if out, hit := m.curObj[ik].of(in); hit {
		m.mu.Unlock()
		return out, nil
	}
	if e, found := m.prevObj[ik]; found {
		if out, hit := e.of(in); hit {
			m.putObj(ik, e) // promoted: it counts against the cap like a new entry
			m.mu.Unlock()
			return out, nil
		}
	}
	m.mu.Unlock()
	k := memoKey{name: name, variant: variant, variant2: variant2, sum: maphash.Bytes(m.seed, in.GetValue())}
	m.mu.Lock()
	if e, found := m.cur[k]; found && bytes.Equal(e.in, in.GetValue()) {
		m.putObj(ik, newObjEntry(in, e.out))
		m.mu.Unlock()
		return e.out, nil
	}
	if e, found := m.prev[k]; found && bytes.Equal(e.in, in.GetValue()) {
		m.put(k, e)
		m.putObj(ik, newObjEntry(in, e.out))
		m.mu.Unlock()
		return e.out, nil
	}
	m.mu.Unlock()
	out, err := compute()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.put(k, memoEntry{in: in.GetValue(), out: out})
	m.putObj(ik, newObjEntry(in, out))
	m.mu.Unlock()
	return out, nil
}

// minObjLimit: a memo (and its by-object index) holds at least this many entries per
// generation, before fit sizes it to the responses it serves.
const minObjLimit = 64

// put adds an entry to the current generation, rotating first when it is full, so that
// neither generation ever holds more than limit entries. Called with mu held.
func (m *memo) put(k memoKey, e memoEntry) {
	if len(m.cur) >= m.limit {
		m.prev, m.cur = m.cur, make(map[memoKey]memoEntry, m.limit)
	}
	m.cur[k] = e
}

// putObj is put for the by-object index. Called with mu held.
func (m *memo) putObj(k objKey, e objEntry) {
	if _, replace := m.curObj[k]; !replace && len(m.curObj) >= m.limit {
		m.prevObj, m.curObj = m.curObj, make(map[objKey]objEntry, len(m.curObj))
	}
	m.curObj[k] = e
}

// pushMemo remembers, for the current push context only, what a generator made of the
// upstream object served under a name to proxies of one Sidecar scope: upstream's xDS
// cache gives every such proxy the same cluster objects, and what the MOSN form reads
// beside a cluster (its service, DestinationRule and endpoints' TLS inputs, all fixed
// within a push and decided by the object's cache key and the scope) need not be looked
// up again per proxy and push. A lookup hits only for the very object the entry was made
// of (objEntry). A new push context starts it afresh; the limit bounds one push.
type pushMemo struct {
	mu   sync.Mutex
	push *model.PushContext
	// One map per scope and variant: proxies of many namespaces (each its own scope)
	// interleave in a push, and one flat map dropped when full would be dropped every
	// few proxies.
	scopes map[scopeVariant]map[string]resEntry
	n      int // entries in all scopes
	limit  int
}

type scopeVariant struct {
	scope   *model.SidecarScope
	variant string
}

// resEntry is objEntry for whole resources: the response entry itself is kept, so a hit
// allocates nothing (at 30,000 clusters a new entry per cluster and push was a third of
// the bytes MOSN CDS allocated).
type resEntry struct {
	in  weak.Pointer[anypb.Any]
	res *discovery.Resource // nil: upstream's resource itself
}

// pushMemoKey: the resource name, the scope and a variant.
type pushMemoKey struct {
	name    string
	scope   *model.SidecarScope
	variant string
}

// get returns the remembered form of upstream's resource r for push and scope, if any.
func (p *pushMemo) get(push *model.PushContext, r *discovery.Resource, k pushMemoKey) (*discovery.Resource, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.push != push {
		return nil, false
	}
	e := p.scopes[scopeVariant{k.scope, k.variant}][k.name]
	if r.Resource == nil || e.in.Value() != r.Resource { // nil: an absent entry's value too
		return nil, false
	}
	if e.res == nil {
		return r, true
	}
	return e.res, true
}

// put remembers res as the form of upstream's resource r.
func (p *pushMemo) put(push *model.PushContext, r *discovery.Resource, k pushMemoKey, res *discovery.Resource) {
	e := resEntry{in: weak.Make(r.Resource), res: res}
	if res == r {
		e.res = nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.push != push {
		if seq, cur := pushSeq(push), pushSeq(p.push); seq != 0 && cur != 0 && seq < cur {
			return // an older push still generating: leave the newer one's entries alone
		}
		p.push, p.scopes, p.n = push, nil, 0
	}
	sv := scopeVariant{k.scope, k.variant}
	m := p.scopes[sv]
	if _, replace := m[k.name]; !replace {
		if p.n >= p.limit {
			// Over the bound: keep this scope's entries only; when they alone fill it,
			// start afresh.
			for o, om := range p.scopes {
				if o != sv {
					p.n -= len(om)
					delete(p.scopes, o)
				}
			}
			if p.n >= p.limit {
				delete(p.scopes, sv)
				m, p.n = nil, 0
			}
		}
		if m == nil {
			if p.scopes == nil {
				p.scopes = map[scopeVariant]map[string]resEntry{}
			}
			m = map[string]resEntry{}
			p.scopes[sv] = m
		}
		p.n++
	}
	m[k.name] = e
}

// pushMemoScopes: how many responses of different scopes a push keeps at once.
const pushMemoScopes = 8

// fit grows the limit to the working set: pushMemoScopes responses.
func (p *pushMemo) fit(n int) {
	p.mu.Lock()
	if pushMemoScopes*n > p.limit {
		p.limit = pushMemoScopes * n
	}
	p.mu.Unlock()
}

// onceSet remembers which messages were already logged, in two generations like memo:
// a message seen recently is not logged again, and the set never holds more than
// 2*limit messages however many distinct ones (proxy IDs, config names) come and go.
// The zero value is ready to use, with limit loggedLimit.
type onceSet struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
	limit     int
}

// first reports whether msg is new (and remembers it).
func (o *onceSet) first(msg string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.limit <= 0 {
		o.limit = loggedLimit
	}
	if _, ok := o.cur[msg]; ok {
		return false
	}
	_, seen := o.prev[msg]
	if o.cur == nil || len(o.cur) >= o.limit {
		o.prev, o.cur = o.cur, make(map[string]struct{}, min(o.limit, 64))
	}
	o.cur[msg] = struct{}{}
	return !seen
}
