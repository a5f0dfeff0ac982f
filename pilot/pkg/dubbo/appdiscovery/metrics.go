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

package appdiscovery

import "istio.io/istio/pkg/monitoring"

// Metrics of the application level (docs/reference/metrics.md).
var (
	registryTag = monitoring.CreateLabel("registry")
	reasonTag   = monitoring.CreateLabel("reason")
	storageTag  = monitoring.CreateLabel("storage")
	resultTag   = monitoring.CreateLabel("result")

	rejectedInstances = monitoring.NewSum(
		"dubbo_registry_rejected_instances_total",
		"Application instance nodes (Dubbo 3 application level) that were not decoded, by reason.",
	)
	metadataFetches = monitoring.NewSum(
		"dubbo_metadata_fetches_total",
		"Metadata fetches of application revisions, by storage (local: MetadataService call; remote: metadata report) and result (ok or a reason).",
	)
	metadataFetchSeconds = monitoring.NewDistribution(
		"dubbo_metadata_fetch_seconds",
		"Time to fetch one application revision's metadata.",
		[]float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
	)
	unresolvedGauge = monitoring.NewGauge(
		"dubbo_metadata_unresolved_revisions",
		"Application revisions whose metadata is not resolved yet or cannot be; their instances are not served (see /debug/dubboz).",
	)
	revisionsGauge = monitoring.NewGauge(
		"dubbo_metadata_revisions",
		"Application revisions carried by registered instances (metadata cached per revision).",
	)
)
