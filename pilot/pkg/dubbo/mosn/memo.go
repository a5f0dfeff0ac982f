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

	"google.golang.org/protobuf/types/known/anypb"

	"istio.io/istio/pilot/pkg/model"
)

// memo remembers the MOSN form of upstream resources, first by object and then by
// content. Upstream's xDS caches hand out the same *anypb.Any for an unchanged cluster or
// load assignment on every push and to every proxy, so most lookups are one map access
// by object (a weak pointer: an index entry never keeps upstream's object alive, and a
// weak pointer never equals one made from another object, even at a reused address;
// cached objects are never modified). What upstream rebuilds (a cache miss, an
// EnvoyFilter-patched cluster, connections racing to fill its cache) comes back as new
// objects with the same bytes: hashing them (and comparing on a hit) is still far cheaper
// than unmarshalling, adapting and re-marshalling each one per push. Two generations
// bound the memory: when the current one is full it becomes the previous one and the
// oldest goes.
type memo struct {
	mu        sync.Mutex
	seed      maphash.Seed
	cur, prev map[memoKey]memoEntry
	// The same entries by upstream object, in the same two generations; a nil value
	// stands for the object itself (adapting it changed nothing), so that no value keeps
	// an upstream object alive either.
	curPtr, prevPtr map[ptrKey]*anypb.Any
	limit           int
	// ptrLimit bounds each generation of the index by object: the working set (twice a
	// response) only, not limit's floor, since objects upstream built anew for every
	// connection (its caches keep nothing for a new connection's first push) are never
	// asked for again.
	ptrLimit int
}

type ptrKey struct {
	in                      weak.Pointer[anypb.Any]
	name, variant, variant2 string
}

// sameAs is what an index stores for out computed from in: nil when it is in itself.
func sameAs(in, out *anypb.Any) *anypb.Any {
	if out == in {
		return nil
	}
	return out
}

// orInput resolves an index value stored by sameAs.
func orInput(in, v *anypb.Any) *anypb.Any {
	if v == nil {
		return in
	}
	return v
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
		curPtr: map[ptrKey]*anypb.Any{}, prevPtr: map[ptrKey]*anypb.Any{}, limit: limit,
	}
}

// fit grows the generation size to the working set (twice the resources of a response),
// so a large mesh does not thrash and a small one stays small.
func (m *memo) fit(n int) {
	m.mu.Lock()
	if 2*n > m.limit {
		m.limit = 2 * n
	}
	if 2*n > m.ptrLimit {
		m.ptrLimit = 2 * n
	}
	m.mu.Unlock()
}

func (m *memo) get(in *anypb.Any, name string, compute func() (*anypb.Any, error)) (*anypb.Any, error) {
	return m.getVariant(in, name, "", "", compute)
}

// getVariant is get for one of several forms of the same upstream resource.
func (m *memo) getVariant(in *anypb.Any, name, variant, variant2 string, compute func() (*anypb.Any, error)) (*anypb.Any, error) {
	pk := ptrKey{in: weak.Make(in), name: name, variant: variant, variant2: variant2}
	m.mu.Lock()
	if v, ok := m.curPtr[pk]; ok {
		m.mu.Unlock()
		return orInput(in, v), nil
	}
	if v, ok := m.prevPtr[pk]; ok {
		m.putPtr(pk, v) // promoted: it counts against the cap like a new entry
		m.mu.Unlock()
		return orInput(in, v), nil
	}
	m.mu.Unlock()
	k := memoKey{name: name, variant: variant, variant2: variant2, sum: maphash.Bytes(m.seed, in.GetValue())}
	m.mu.Lock()
	if e, ok := m.cur[k]; ok && bytes.Equal(e.in, in.GetValue()) {
		m.putPtr(pk, e.out)
		m.mu.Unlock()
		return e.out, nil
	}
	if e, ok := m.prev[k]; ok && bytes.Equal(e.in, in.GetValue()) {
		m.put(k, e)
		m.putPtr(pk, e.out)
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
	m.putPtr(pk, sameAs(in, out))
	m.mu.Unlock()
	return out, nil
}

// minPtrLimit: the by-object index of a memo never fitted to a response (routes,
// listeners) still holds this many per generation.
const minPtrLimit = 64

// put adds an entry to the current generation, rotating first when it is full, so that
// neither generation ever holds more than limit entries. Called with mu held.
func (m *memo) put(k memoKey, e memoEntry) {
	if len(m.cur) >= m.limit {
		m.prev, m.cur = m.cur, make(map[memoKey]memoEntry, m.limit)
	}
	m.cur[k] = e
}

// putPtr is put for the by-object index. Called with mu held.
func (m *memo) putPtr(k ptrKey, out *anypb.Any) {
	if len(m.curPtr) >= max(m.ptrLimit, minPtrLimit) {
		m.prevPtr, m.curPtr = m.curPtr, make(map[ptrKey]*anypb.Any, len(m.curPtr))
	}
	m.curPtr[k] = out
}

// pushMemo remembers, for the current push context only, what a generator made of each
// upstream object for proxies of one Sidecar scope: upstream's xDS cache gives every
// such proxy the same cluster objects, and what the MOSN form reads beside a cluster
// (its service, DestinationRule and endpoints' TLS inputs, all fixed within a push and
// decided by the object's cache key and the scope) need not be looked up again per proxy
// and push. A new push context starts it afresh; the limit bounds what upstream objects
// that were never cached (new per proxy) can add within one push.
type pushMemo struct {
	mu    sync.Mutex
	push  *model.PushContext
	m     map[pushMemoKey]*anypb.Any
	limit int
}

// pushMemoKey: the upstream object (weak, as in memo), the scope and a variant.
type pushMemoKey struct {
	in      weak.Pointer[anypb.Any]
	scope   *model.SidecarScope
	variant string
}

func newPushMemoKey(in *anypb.Any, scope *model.SidecarScope, variant string) pushMemoKey {
	return pushMemoKey{in: weak.Make(in), scope: scope, variant: variant}
}

// get returns the remembered form of in for push and scope, if any.
func (p *pushMemo) get(push *model.PushContext, in *anypb.Any, k pushMemoKey) (*anypb.Any, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.push != push {
		return nil, false
	}
	v, ok := p.m[k]
	return orInput(in, v), ok
}

func (p *pushMemo) put(push *model.PushContext, in *anypb.Any, k pushMemoKey, out *anypb.Any) {
	out = sameAs(in, out)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.push != push {
		if seq, cur := pushSeq(push), pushSeq(p.push); seq != 0 && cur != 0 && seq < cur {
			return // an older push still generating: leave the newer one's entries alone
		}
		p.push, p.m = push, nil
	}
	if p.m == nil || len(p.m) >= p.limit {
		p.m = make(map[pushMemoKey]*anypb.Any, p.limit/2)
	}
	p.m[k] = out
}

// fit grows the limit to the working set (four responses), as memo.fit does.
func (p *pushMemo) fit(n int) {
	p.mu.Lock()
	if 4*n > p.limit {
		p.limit = 4 * n
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
