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
	"sync"
	"testing"
	"time"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/schema/kind"
	"istio.io/istio/pkg/test/util/retry"
	"istio.io/istio/pkg/util/sets"
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

// The pacer's contract, without wall-clock thresholds: every marked service is pushed,
// endpoints only, and pushes are at most one per interval (so a stream of changes faster
// than the interval is batched), whatever the machine's speed.
func TestPacerBatchesAStream(t *testing.T) {
	const interval = 50 * time.Millisecond
	rec := &pushes{}
	p := newPacer(interval, rec)
	defer p.stop()
	start := time.Now()
	var marked []string
	for i := 0; i < 40; i++ { // a stream faster than the interval
		h := fmt.Sprintf("s%d.example", i%7)
		p.mark(h, "dubbo")
		marked = append(marked, h)
		time.Sleep(time.Millisecond)
	}
	pushedAll := func() error {
		seen := sets.New[string]()
		for _, r := range rec.get() {
			if r.Forced || !model.OnlyHasConfigsOfKind(r.ConfigsUpdated, kind.Endpoints) {
				return fmt.Errorf("a push is not endpoints-only: %+v", r)
			}
			for k := range r.ConfigsUpdated {
				if k.Namespace != "dubbo" {
					return fmt.Errorf("push key %v", k)
				}
				seen.Insert(k.Name)
			}
		}
		for _, h := range marked {
			if !seen.Contains(h) {
				return fmt.Errorf("%s marked, never pushed", h)
			}
		}
		return nil
	}
	retry.UntilSuccessOrFail(t, pushedAll, retry.Timeout(30*time.Second), retry.Delay(5*time.Millisecond))
	elapsed := time.Since(start)
	got := rec.get()
	t.Logf("%d marks over %v became %d pushes", len(marked), elapsed, len(got))
	if max := int(elapsed/interval) + 1; len(got) > max {
		t.Fatalf("%d pushes in %v: more than one per %v interval (at most %d)", len(got), elapsed, interval, max)
	}
	// A later change is pushed too.
	before := len(got)
	p.mark("later.example", "dubbo")
	retry.UntilSuccessOrFail(t, func() error {
		if n := len(rec.get()); n != before+1 {
			return fmt.Errorf("%d pushes, want %d", n, before+1)
		}
		return nil
	}, retry.Timeout(30*time.Second), retry.Delay(5*time.Millisecond))
}

// A stopped pacer pushes nothing more (istiod shutting down).
func TestPacerStop(t *testing.T) {
	rec := &pushes{}
	p := newPacer(time.Hour, rec)
	p.mark("a.example", "dubbo")
	p.stop()
	p.mark("b.example", "dubbo")
	p.mu.Lock()
	armed := p.timer != nil
	p.mu.Unlock()
	if armed {
		t.Fatal("a stopped pacer armed a timer")
	}
}
