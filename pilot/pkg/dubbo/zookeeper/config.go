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

package zookeeper

import (
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/governance"
)

// The config center: Dubbo's governance rules, one node per key under Config.ConfigRoot
// (/dubbo/config/dubbo/<key>, the YAML as its data), as dubbo-admin writes them. The
// children and every rule body are watched as application instances are; every change
// reports all the rules the node holds.

// ConfigSink receives the governance rules (the Dubbo registry controller).
type ConfigSink = governance.ConfigSink

// SetConfigSink reads the governance rules under Config.ConfigRoot into sink, reported as
// the source named source (before Run).
func (w *Watcher) SetConfigSink(sink ConfigSink, source string) {
	w.rules, w.configSource = sink, source
}

func (w *Watcher) watchConfig(stop <-chan struct{}) {
	synced := false
	never := make(chan struct{})
	w.watchBodies(w.cfg.ConfigRoot, w.configSource, governance.IsRuleKey, never, stop,
		func(nodes map[string]*instanceNode, observed time.Time) bool {
			rules := make(map[string][]byte, len(nodes))
			for n, in := range nodes {
				if in.body != nil || in.watch != nil {
					rules[n] = in.body
				}
			}
			w.rules.SetRules(w.configSource, rules, observed)
			if !synced {
				synced = true
				w.rules.SourceSynced(w.configSource)
			}
			return true
		})
}
