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

	"google.golang.org/protobuf/types/known/anypb"
)

// memo remembers the MOSN form of upstream resources by content: upstream re-encodes
// unchanged clusters and load assignments on every push, so the same bytes come back
// again and again. Hashing them (and comparing on a hit) is far cheaper than
// unmarshalling, adapting and re-marshalling each one per push. Two generations bound the
// memory: when the current one is full it becomes the previous one and the oldest goes.
type memo struct {
	mu        sync.Mutex
	seed      maphash.Seed
	cur, prev map[memoKey]memoEntry
	limit     int
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
	return &memo{seed: maphash.MakeSeed(), cur: map[memoKey]memoEntry{}, prev: map[memoKey]memoEntry{}, limit: limit}
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
	k := memoKey{name: name, variant: variant, variant2: variant2, sum: maphash.Bytes(m.seed, in.GetValue())}
	m.mu.Lock()
	if e, ok := m.cur[k]; ok && bytes.Equal(e.in, in.GetValue()) {
		m.mu.Unlock()
		return e.out, nil
	}
	if e, ok := m.prev[k]; ok && bytes.Equal(e.in, in.GetValue()) {
		m.put(k, e) // promoted: it counts against the cap like a new entry
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
	m.mu.Unlock()
	return out, nil
}

// put adds an entry to the current generation, rotating first when it is full, so that
// neither generation ever holds more than limit entries. Called with mu held.
func (m *memo) put(k memoKey, e memoEntry) {
	if len(m.cur) >= m.limit {
		m.prev, m.cur = m.cur, make(map[memoKey]memoEntry, m.limit)
	}
	m.cur[k] = e
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
