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
	"sync"
	"testing"
	"time"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/schema/kind"
)

type pushes struct {
	mu   sync.Mutex
	reqs []*model.PushRequest
}

func (p *pushes) Push(r *model.PushRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, r)
}

func (p *pushes) get() []*model.PushRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*model.PushRequest(nil), p.reqs...)
}

func TestPacerBatchesAStream(t *testing.T) {
	rec := &pushes{}
	p := newPacer(50*time.Millisecond, rec)
	for i := 0; i < 20; i++ { // a stream faster than the interval
		p.mark("a.example", "dubbo")
		p.mark("b.example", "dubbo")
		time.Sleep(time.Millisecond)
	}
	time.Sleep(120 * time.Millisecond)
	got := rec.get()
	if len(got) == 0 || len(got) > 2 {
		t.Fatalf("%d pushes for a 20ms stream, want 1 (or 2 at an interval edge)", len(got))
	}
	keys := got[0].ConfigsUpdated
	if !keys.Contains(model.ConfigKey{Kind: kind.Endpoints, Name: "a.example", Namespace: "dubbo"}) ||
		!keys.Contains(model.ConfigKey{Kind: kind.Endpoints, Name: "b.example", Namespace: "dubbo"}) {
		t.Fatalf("push keys %v", keys)
	}
	if got[0].Forced || !model.OnlyHasConfigsOfKind(keys, kind.Endpoints) {
		t.Fatalf("the push is not endpoints-only: %+v", got[0])
	}
	p.mark("c.example", "dubbo")
	time.Sleep(120 * time.Millisecond)
	if n := len(rec.get()); n != len(got)+1 {
		t.Fatalf("a later change was not pushed (%d pushes)", n)
	}
}
