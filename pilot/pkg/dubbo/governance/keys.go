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

// Package governance reads Dubbo's governance rules, as dubbo-admin writes them to the
// config center (ZooKeeper /dubbo/config/dubbo/<key>, Nacos group "dubbo"): override
// rules (configurators), condition routes and tag routes, with Java Dubbo's semantics
// (docs/governance.md). This package parses and validates them; what they become in the
// mesh (EDS weights, routes) is built on top of it.
package governance

import (
	"fmt"
	"strings"
	"time"
)

// Kind is the kind of a governance rule, named by its key's suffix.
type Kind string

const (
	KindOverride       Kind = "configurators"
	KindConditionRoute Kind = "condition-router"
	KindTagRoute       Kind = "tag-router"
)

// ConfigSink receives the rules a config center holds (the Dubbo registry controller):
// every change reports the full set of its rule bodies by key.
type ConfigSink interface {
	SetRules(source string, rules map[string][]byte, observed time.Time)
	SourceConnected(source string, connected, newSession bool)
	SourceSynced(source string)
	ListError(source, path string, err error)
}

// DerivedLabel marks what route rules generate (services of provider selections, and
// VirtualServices): its value is the hostname of the interface they route.
const DerivedLabel = "dubbo.apache.org/governance-of"

// Key is a rule's config-center key, parsed: <service key>.<kind> with a service key of
// exactly three colon-separated parts (interface:version:group, both colons always
// present, as Java's URL.getColonSeparatedKey writes them), or <application>.<kind>.
type Key struct {
	Kind Kind
	// Application is set for application-scope rules.
	Application string
	// Interface, Version and Group are set for service-scope rules.
	Interface, Version, Group string
}

// Service reports whether the rule is service-scoped.
func (k Key) Service() bool { return k.Interface != "" }

// String is the key as the config center names it.
func (k Key) String() string {
	if k.Service() {
		return k.Interface + ":" + k.Version + ":" + k.Group + "." + string(k.Kind)
	}
	return k.Application + "." + string(k.Kind)
}

// IsRuleKey reports whether a config-center key names a governance rule, of a kind
// dubbo-istiod reads or not (script routes, mesh rules, dubbo-go's affinity routes are
// reported as not read): other keys of the group (dubbo.properties, ...) are not rules.
func IsRuleKey(s string) bool {
	for _, suffix := range []Kind{KindOverride, KindConditionRoute, KindTagRoute, "script-router", "MESHAPPRULE", "affinity-router"} {
		if strings.HasSuffix(s, "."+string(suffix)) {
			return true
		}
	}
	return false
}

// ParseKey parses a config-center key. Keys of other kinds (script routes, mesh rules,
// dubbo-go's affinity routes) and malformed ones are errors: the caller reports and skips
// them.
func ParseKey(s string) (Key, error) {
	for _, kind := range []Kind{KindOverride, KindConditionRoute, KindTagRoute} {
		name, ok := strings.CutSuffix(s, "."+string(kind))
		if !ok {
			continue
		}
		if name == "" {
			return Key{}, fmt.Errorf("rule key %q names no service or application", s)
		}
		k := Key{Kind: kind}
		if !strings.Contains(name, ":") {
			k.Application = name
			return k, nil
		}
		parts := strings.Split(name, ":")
		if len(parts) != 3 || parts[0] == "" {
			return Key{}, fmt.Errorf("rule key %q: a service key is interface:version:group (both colons, even when empty)", s)
		}
		if kind == KindTagRoute {
			return Key{}, fmt.Errorf("rule key %q: tag routes are per application", s)
		}
		k.Interface, k.Version, k.Group = parts[0], parts[1], parts[2]
		return k, nil
	}
	return Key{}, fmt.Errorf("rule key %q: not an override, condition or tag rule", s)
}
