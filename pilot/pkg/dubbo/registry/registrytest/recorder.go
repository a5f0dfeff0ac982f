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

// Package registrytest has test helpers for the Dubbo registry.
package registrytest

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/util/sets"
)

// Recorder is a model.XDSUpdater that records what the registry tells istiod. It stands
// in for istiod's DiscoveryServer, which the end-to-end tests exercise for real.
type Recorder struct {
	mu        sync.Mutex
	Endpoints map[string][]*model.IstioEndpoint // hostname -> last list (EDSUpdate or EDSCacheUpdate)
	Calls     []string                          // "eds host n", "edscache host n", "svc host event", "full host event"
	minSeen   map[string]int                    // smallest endpoint list pushed per host after it first had n>0
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{Endpoints: map[string][]*model.IstioEndpoint{}, minSeen: map[string]int{}}
}

func (r *Recorder) record(kind, h string, eps []*model.IstioEndpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Endpoints[h] = eps
	r.Calls = append(r.Calls, fmt.Sprintf("%s %s %d", kind, h, len(eps)))
	if m, ok := r.minSeen[h]; !ok || len(eps) < m {
		if ok || len(eps) > 0 {
			r.minSeen[h] = len(eps)
		}
	}
}

func (r *Recorder) EDSUpdate(_ model.ShardKey, h, _ string, eps []*model.IstioEndpoint) {
	r.record("eds", h, eps)
}

func (r *Recorder) EDSCacheUpdate(_ model.ShardKey, h, _ string, eps []*model.IstioEndpoint) {
	r.record("edscache", h, eps)
}

func (r *Recorder) SvcUpdate(_ model.ShardKey, h, _ string, ev model.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Calls = append(r.Calls, fmt.Sprintf("svc %s %v", h, ev))
}

// ConfigUpdate records "config" (the registry's one update when it becomes synced).
func (r *Recorder) ConfigUpdate(*model.PushRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Calls = append(r.Calls, "config")
}
func (r *Recorder) ProxyUpdate(cluster.ID, string)                    {}
func (r *Recorder) RemoveShard(model.ShardKey)                        {}
func (r *Recorder) PruneShard(model.ShardKey, map[string]sets.String) {}

// FullPush is a service handler recording full pushes.
func (r *Recorder) FullPush(prev, curr *model.Service, ev model.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Calls = append(r.Calls, fmt.Sprintf("full %s %v", curr.Hostname, ev))
}

// Addrs returns "ip:port" of the last endpoints of a host, sorted.
func (r *Recorder) Addrs(h string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ep := range r.Endpoints[h] {
		out = append(out, fmt.Sprintf("%s:%d", ep.FirstAddressOrNil(), ep.EndpointPort))
	}
	sort.Strings(out)
	return out
}

// Count counts recorded calls starting with prefix ("eds host", "full host", "svc ").
func (r *Recorder) Count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.Calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// Min is the smallest non-initial endpoint count pushed for a host.
func (r *Recorder) Min(h string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.minSeen[h]
}

// Last returns the last endpoints recorded for a host.
func (r *Recorder) Last(h string) []*model.IstioEndpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Endpoints[h]
}

// Weights renders a host's last endpoints as "ip:port=weight", sorted, space-separated.
func (r *Recorder) Weights(h string) string {
	var out []string
	for _, ep := range r.Last(h) {
		out = append(out, fmt.Sprintf("%s:%d=%d", ep.FirstAddressOrNil(), ep.EndpointPort, ep.LbWeight))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// WantAddrs is a condition: the host's last endpoints are exactly want ("ip:port").
func (r *Recorder) WantAddrs(h string, want ...string) func() error {
	return func() error {
		got := r.Addrs(h)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("%s endpoints %v, want %v", h, got, want)
		}
		return nil
	}
}

// ProviderNode is a provider node name as Dubbo writes it under
// /dubbo/<iface>/providers: the URL-encoded provider URL, with extra "k=v" params.
func ProviderNode(ip string, port int, iface string, params ...string) string {
	raw := fmt.Sprintf("dubbo://%s:%d/%s?interface=%s&side=provider", ip, port, iface, iface)
	for _, p := range params {
		raw += "&" + p
	}
	return url.QueryEscape(raw)
}
