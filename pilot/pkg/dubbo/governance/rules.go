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

package governance

import (
	"fmt"
	"strings"
)

// Config versions of the rule formats (docs/governance.md). dubbo-admin writes none on
// new weight and balancing nodes: Java reads those as v2.7.
const (
	V27 = "v2.7"
	V30 = "v3.0"
	V31 = "v3.1"
)

// StringMatch is Dubbo's v3.0 string matcher (exact, prefix, regex, wildcard, empty,
// noempty); a field is set when present in the rule, whatever its value.
type StringMatch struct {
	Exact    *Scalar `json:"exact,omitempty"`
	Prefix   *Scalar `json:"prefix,omitempty"`
	Regex    *Scalar `json:"regex,omitempty"`
	Wildcard *Scalar `json:"wildcard,omitempty"`
	Empty    *Scalar `json:"empty,omitempty"`
	NoEmpty  *Scalar `json:"noempty,omitempty"`
}

// ParamMatch matches one URL parameter.
type ParamMatch struct {
	Key   string      `json:"key"`
	Value StringMatch `json:"value"`
}

// AddressMatch is Dubbo's v3.0 address matcher: cird (sic: Java's field name; a CIDR or
// an IP pattern with * and a-b segments), wildcard (a glob; 0.0.0.0 and * match all),
// exact.
type AddressMatch struct {
	Wildcard string `json:"wildcard,omitempty"`
	Cird     string `json:"cird,omitempty"`
	Exact    string `json:"exact,omitempty"`
}

// ListStringMatch matches when one of its matchers does.
type ListStringMatch struct {
	Oneof []StringMatch `json:"oneof,omitempty"`
}

// ConditionMatch is the v3.0 "match" of override items (which providers an item applies
// to); every field that is set must match.
type ConditionMatch struct {
	Address         *AddressMatch    `json:"address,omitempty"`
	ProviderAddress *AddressMatch    `json:"providerAddress,omitempty"`
	Service         *ListStringMatch `json:"service,omitempty"`
	Application     *ListStringMatch `json:"app,omitempty"`
	Param           []ParamMatch     `json:"param,omitempty"`
}

// OverrideItem is one item of an override rule (Java's ConfigItem).
type OverrideItem struct {
	Type              string          `json:"type,omitempty"` // dubbo-admin: weight, balancing
	Enabled           Bool            `json:"enabled"`
	Side              string          `json:"side,omitempty"` // provider | consumer
	Addresses         []string        `json:"addresses,omitempty"`
	ProviderAddresses []string        `json:"providerAddresses,omitempty"`
	Services          []string        `json:"services,omitempty"`
	Applications      []string        `json:"applications,omitempty"`
	Parameters        Params          `json:"parameters,omitempty"`
	Match             *ConditionMatch `json:"match,omitempty"`
}

// Override is an override rule (configurators): provider weights and disabled flags,
// consumer timeouts, retries and load balancing.
type Override struct {
	ConfigVersion string         `json:"configVersion,omitempty"`
	Scope         string         `json:"scope,omitempty"` // service | application
	Key           string         `json:"key,omitempty"`
	Enabled       Bool           `json:"enabled"`
	Configs       []OverrideItem `json:"configs"`
}

// ItemOn reports whether item i applies, as Java's ConfigParser.parseEnabled decides: an
// item without a type (or "general") follows the rule's top-level enabled (default
// true); a typed item (dubbo-admin's weight, balancing) follows its own enabled, and is
// off without one. So dubbo-admin's new weight node (top-level enabled: false, its item
// enabled: true) applies.
func (o *Override) ItemOn(i int) bool {
	c := o.Configs[i]
	if c.Type == "" || c.Type == "general" {
		return o.Enabled.Or(true)
	}
	return c.Enabled.Or(false)
}

// ParseOverride reads an override rule.
func ParseOverride(body []byte) (*Override, error) {
	o := &Override{}
	if err := decode(body, o); err != nil {
		return nil, err
	}
	switch o.ConfigVersion {
	case "", V27, V30:
	default:
		return nil, fmt.Errorf("override configVersion %q is not v2.7 or v3.0", o.ConfigVersion)
	}
	switch o.Scope {
	case "", "service", "application":
	default:
		return nil, fmt.Errorf("override scope %q is not service or application", o.Scope)
	}
	for i, c := range o.Configs {
		switch c.Side {
		case "", "provider", "consumer":
		default:
			return nil, fmt.Errorf("override item %d: side %q is not provider or consumer", i, c.Side)
		}
		if c.Match != nil && o.ConfigVersion != V30 {
			return nil, fmt.Errorf("override item %d: match needs configVersion v3.0", i)
		}
		if len(c.Parameters) == 0 {
			// Java's ConfigParser rejects the whole rule ("Invalid configurator rule").
			return nil, fmt.Errorf("override item %d has no parameters", i)
		}
	}
	return o, nil
}

// Tag is one tag of a tag rule: its providers by address, or (v3.0) by parameters.
type Tag struct {
	Name      string       `json:"name"`
	Addresses []string     `json:"addresses,omitempty"`
	Match     []ParamMatch `json:"match,omitempty"`
}

// TagRule is an application's tag route.
type TagRule struct {
	ConfigVersion string `json:"configVersion,omitempty"`
	Key           string `json:"key,omitempty"`
	Enabled       Bool   `json:"enabled"`
	Force         Bool   `json:"force"`
	Runtime       Bool   `json:"runtime"`
	Priority      int    `json:"priority,omitempty"`
	Tags          []Tag  `json:"tags"`
}

// On reports whether the rule applies.
func (t *TagRule) On() bool { return t.Enabled.Or(true) }

// ParseTagRule reads a tag route.
func ParseTagRule(body []byte) (*TagRule, error) {
	t := &TagRule{}
	if err := decode(body, t); err != nil {
		return nil, err
	}
	switch t.ConfigVersion {
	case "", V27, V30:
	default:
		return nil, fmt.Errorf("tag route configVersion %q is not v2.7 or v3.0", t.ConfigVersion)
	}
	for i, tag := range t.Tags {
		if strings.TrimSpace(tag.Name) == "" {
			return nil, fmt.Errorf("tag %d has no name", i)
		}
		if len(tag.Match) > 0 && t.ConfigVersion != V30 {
			return nil, fmt.Errorf("tag %s: match needs configVersion v3.0", tag.Name)
		}
	}
	return t, nil
}
