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
	"sync"

	"google.golang.org/protobuf/types/known/anypb"
)

// memo remembers the MOSN form of upstream resources. Upstream serves unchanged clusters
// and load assignments from its XDS cache as the same immutable *anypb.Any, so keying on
// that pointer turns the per-push unmarshal/adapt/marshal into a map lookup. Holding the
// key keeps the pointer from being reused. Two generations bound the memory: when the
// current one is full it becomes the previous one and the oldest is dropped.
type memo struct {
	mu        sync.Mutex
	cur, prev map[memoKey]*anypb.Any
	limit     int
}

type memoKey struct {
	in   *anypb.Any
	name string
}

func newMemo(limit int) *memo {
	return &memo{cur: map[memoKey]*anypb.Any{}, prev: map[memoKey]*anypb.Any{}, limit: limit}
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
	k := memoKey{in, name}
	m.mu.Lock()
	if out, ok := m.cur[k]; ok {
		m.mu.Unlock()
		return out, nil
	}
	if out, ok := m.prev[k]; ok {
		m.cur[k] = out
		m.mu.Unlock()
		return out, nil
	}
	m.mu.Unlock()
	out, err := compute()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if len(m.cur) >= m.limit {
		m.prev, m.cur = m.cur, map[memoKey]*anypb.Any{}
	}
	m.cur[k] = out
	m.mu.Unlock()
	return out, nil
}
