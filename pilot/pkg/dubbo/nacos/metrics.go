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

package nacos

import "istio.io/istio/pkg/monitoring"

// Metrics of Nacos registries (docs/reference/metrics.md); the registry-wide ones
// (dubbo_registry_connected, _synced, _interfaces, _providers, _list_errors_total)
// come from the Dubbo registry, as for ZooKeeper.
var (
	registryTag = monitoring.CreateLabel("registry")
	reasonTag   = monitoring.CreateLabel("reason")
	kindTag     = monitoring.CreateLabel("kind")

	subscribedGauge = monitoring.NewGauge(
		"dubbo_nacos_services_subscribed",
		"Nacos services dubbo-istiod subscribes to, by kind (interface: providers:<interface>:<version>:<group>; application: other services, Dubbo 3 applications among them).",
	)
	instancesGauge = monitoring.NewGauge(
		"dubbo_nacos_instances",
		"Instances listed in the subscribed Nacos services that are Dubbo's, in rotation or not.",
	)
	outOfRotationGauge = monitoring.NewGauge(
		"dubbo_nacos_instances_out_of_rotation",
		"Listed Dubbo instances not served because Nacos marks them disabled or unhealthy.",
	)
	pushesTotal = monitoring.NewSum(
		"dubbo_nacos_pushes_total",
		"Instance lists received for subscribed Nacos services (server pushes and re-reads) that changed something.",
	)
	errorsTotal = monitoring.NewSum(
		"dubbo_nacos_errors_total",
		"Failed Nacos requests by reason: auth (the login with the registry's credentials was refused), client (creating the client), list (the service list), subscribe, unsubscribe, metadata (a metadata config read), rule (a governance rule read or listen), unlisten.",
	)
	rejectedTotal = monitoring.NewSum(
		"dubbo_nacos_rejected_instances_total",
		"Interface-level Nacos instances that did not become provider URLs, by reason.",
	)
)
