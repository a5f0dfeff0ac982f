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

package zookeeper_test

import (
	"testing"

	"istio.io/istio/tests/util/leak"
)

// The tests run real watchers: every goroutine of Run (watch loops, their helpers, the
// ZooKeeper clients) must have ended once they stop.
func TestMain(m *testing.M) {
	leak.CheckMain(m)
}
