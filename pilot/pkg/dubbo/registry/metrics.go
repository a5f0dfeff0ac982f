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
	"istio.io/istio/pkg/monitoring"
)

// Metrics are served on istiod's monitoring port (15014 /metrics) with the other pilot metrics.
var (
	registryTag = monitoring.CreateLabel("registry")
	reasonTag   = monitoring.CreateLabel("reason")
	eventTag    = monitoring.CreateLabel("event")
	kindTag     = monitoring.CreateLabel("kind")
	statusTag   = monitoring.CreateLabel("status")

	rulesGauge = monitoring.NewGauge(
		"dubbo_governance_rules",
		"Governance rules read from the config centers, by kind (configurators, condition-router, tag-router, unknown) and status (applied, invalid, left_out, not_applied, no_effect, ignored).",
	)
	routeUpdates = monitoring.NewSum(
		"dubbo_governance_route_updates_total",
		"VirtualServices made or changed from Dubbo condition and tag routes (each one is a config update, a full push).",
	)
	routeErrorsTotal = monitoring.NewSum(
		"dubbo_governance_route_errors_total",
		"Routes from governance rules that could not be stored; the previous routes stay (see the log and /debug/dubboz).",
	)
	ruleErrorsTotal = monitoring.NewSum(
		"dubbo_governance_rule_errors_total",
		"Governance rule bodies that did not parse, by kind; the last valid rule of the key stays in effect.",
	)

	connectedGauge = monitoring.NewGauge(
		"dubbo_registry_connected",
		"1 while dubbo-istiod holds a session with the Dubbo registry, else 0.",
	)
	syncedGauge = monitoring.NewGauge(
		"dubbo_registry_synced",
		"1 once the registry's initial provider lists were read, else 0.",
	)
	interfacesGauge = monitoring.NewGauge(
		"dubbo_registry_interfaces",
		"Dubbo interfaces the registry lists.",
	)
	providersGauge = monitoring.NewGauge(
		"dubbo_registry_providers",
		"Provider nodes the registry lists (valid or not).",
	)
	servicesGauge = monitoring.NewGauge(
		"dubbo_services",
		"Istio services created from Dubbo interfaces, over all registries.",
	)
	endpointsGauge = monitoring.NewGauge(
		"dubbo_endpoints",
		"Endpoints published for Dubbo services, over all registries.",
	)
	heldGauge = monitoring.NewGauge(
		"dubbo_registry_held_removals",
		"Provider removals held back after a registry reconnect (see the reconnect grace).",
	)
	rejectedTotal = monitoring.NewSum(
		"dubbo_registry_rejected_nodes_total",
		"Provider nodes that did not become endpoints, by reason.",
	)
	eventsTotal = monitoring.NewSum(
		"dubbo_registry_events_total",
		"Registry events by kind: providers, interface_added, interface_removed, connected, disconnected, new_session, grace_expired, empty_protected.",
	)
	listErrorsTotal = monitoring.NewSum(
		"dubbo_registry_list_errors_total",
		"Failed attempts to list a registry path (e.g. no read permission); the last list stays served, see /debug/dubboz.",
	)
	pacedPushes = monitoring.NewSum(
		"dubbo_eds_paced_pushes_total",
		"Endpoint-only pushes of Dubbo services made by the EDS pacer (--dubboEDSPushInterval).",
	)
	updateLatency = monitoring.NewDistribution(
		"dubbo_registry_update_seconds",
		"Time from a registry change notification to the xDS update handed to istiod's push queue.",
		[]float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	)
)

func recordEvent(registry, event string) {
	eventsTotal.With(registryTag.Value(registry), eventTag.Value(event)).Increment()
}
