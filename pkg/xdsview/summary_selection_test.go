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

package xdsview

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

func TestSelectionOf(t *testing.T) {
	clusters := map[string]*cluster.Cluster{
		"outbound|20880||com.example.demoservice":                          {},
		"outbound|20880||tag-gray-35ec59.com.example.demoservice":          {},
		"outbound|20880||v1-abcdef.com.example.other":                      {}, // no parent cluster
		"outbound|20880||com.example.demoservice.gray-35ec59.example.test": {},
	}
	for name, want := range map[string]string{
		"outbound|20880||tag-gray-35ec59.com.example.demoservice":          `  (governance selection "tag-gray" of com.example.demoservice)`,
		"outbound|20880||com.example.demoservice":                          "",
		"outbound|20880||v1-abcdef.com.example.other":                      "",
		"outbound|20880||com.example.demoservice.gray-35ec59.example.test": "",
	} {
		if got := selectionOf(name, clusters); got != want {
			t.Errorf("selectionOf(%s) = %q, want %q", name, got, want)
		}
	}
}
