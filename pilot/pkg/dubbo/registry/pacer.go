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
	"time"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/schema/kind"
	"istio.io/istio/pkg/util/sets"
)

// Pusher pushes a request to the connected proxies at once (istiod's
// DiscoveryServer.Push, which istiod itself uses for endpoint updates when
// PILOT_ENABLE_EDS_DEBOUNCE=false). Patch 0006 serialises it with istiod's debounced full
// pushes, so a paced push never installs a push context older than a full push's.
type Pusher interface {
	Push(req *model.PushRequest)
}

// pacer pushes Dubbo endpoint changes on a steady beat. Provider churn arrives as a
// continuous stream: through istiod's debounce, which waits for a quiet period, a stream
// never goes quiet and pushes wait for PILOT_DEBOUNCE_MAX. The pacer gathers the changed
// services and pushes them, endpoints only, at most once per interval.
type pacer struct {
	interval time.Duration
	push     Pusher

	mu      sync.Mutex
	pending sets.Set[model.ConfigKey]
	timer   *time.Timer // armed while changes are pending
	stopped bool
	pushing sync.Mutex // one push at a time, in order
}

func newPacer(interval time.Duration, p Pusher) *pacer {
	return &pacer{interval: interval, push: p, pending: sets.New[model.ConfigKey]()}
}

// mark schedules an endpoint push for a service.
func (p *pacer) mark(hostname, namespace string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending.Insert(model.ConfigKey{Kind: kind.Endpoints, Name: hostname, Namespace: namespace})
	if p.timer == nil && !p.stopped {
		p.timer = time.AfterFunc(p.interval, p.flush)
	}
}

// stop cancels a pending push (istiod is shutting down).
func (p *pacer) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

func (p *pacer) flush() {
	p.pushing.Lock()
	defer p.pushing.Unlock()
	p.mu.Lock()
	keys := p.pending
	p.pending = sets.New[model.ConfigKey]()
	p.timer = nil
	p.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	pacedPushes.Increment()
	p.push.Push(&model.PushRequest{
		ConfigsUpdated: keys,
		Reason:         model.NewReasonStats(model.EndpointUpdate),
		Start:          time.Now(),
	})
}
