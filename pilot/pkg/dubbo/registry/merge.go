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
	"sort"

	"istio.io/istio/pilot/pkg/model"
)

// sourceNodes is what one source lists for an interface: its current nodes and the
// removals it holds during a reconnect grace.
type sourceNodes struct {
	current map[string]*node
	held    map[string]*node
}

// mergeEndpoints computes an interface's endpoints from its sources, given in configured
// order. It is a pure function of its input, whatever the map order:
//   - a node that failed to decode, or is disabled, is out;
//   - one provider instance (its workload name: app, IP, port, group, version) listed by
//     several sources comes from the first source that lists it;
//   - listed several times by one source, a current node beats a held one, then the
//     newest registration (timestamp) wins, then the smaller node name, so re-lists of
//     the same state always publish the same endpoints;
//   - weight=0 providers are out unless every provider is at 0 (as Dubbo's balancers do).
//
// specs, when not nil, are the nodes' specs as override rules make them (a node it does
// not hold keeps its own).
func mergeEndpoints(sources []sourceNodes, specs map[*node]*endpointSpec) []*model.IstioEndpoint {
	byKey := mergeWinners(sources, specs)
	allZero := len(byKey) > 0
	for _, c := range byKey {
		if !c.spec.zero {
			allZero = false
			break
		}
	}
	eps := make([]*model.IstioEndpoint, 0, len(byKey))
	for _, c := range byKey {
		if allZero || !c.spec.zero {
			eps = append(eps, c.spec.ep)
		}
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].WorkloadName < eps[j].WorkloadName })
	return eps
}

// cand is the node chosen for a provider instance, and its spec.
type cand struct {
	n    *node
	spec *endpointSpec
	src  int
	held bool
}

// mergeWinners is the node of every enabled provider instance (weight 0 included), by
// workload name.
func mergeWinners(sources []sourceNodes, specs map[*node]*endpointSpec) map[string]cand {
	better := func(a, b cand) bool { // a beats b
		switch {
		case a.src != b.src:
			return a.src < b.src
		case a.held != b.held:
			return !a.held
		case a.n.spec.stamp != b.n.spec.stamp:
			return a.n.spec.stamp > b.n.spec.stamp
		default:
			return a.n.name < b.n.name
		}
	}
	byKey := map[string]cand{}
	for i, s := range sources {
		for _, set := range []struct {
			nodes map[string]*node
			held  bool
		}{{s.current, false}, {s.held, true}} {
			for _, n := range set.nodes {
				if n.err != nil {
					continue
				}
				sp := &n.spec
				if g, ok := specs[n]; ok {
					sp = g
				}
				if sp.disabled {
					continue
				}
				c := cand{n: n, spec: sp, src: i, held: set.held}
				k := sp.ep.WorkloadName
				if prev, ok := byKey[k]; !ok || better(c, prev) {
					byKey[k] = c
				}
			}
		}
	}
	return byKey
}
