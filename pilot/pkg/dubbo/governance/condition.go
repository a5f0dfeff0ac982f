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
	"regexp"
	"sort"
	"strings"
)

// ConditionRule is a condition route: v2.7/v3.0 "when => then" strings, or v3.1 from/to
// with weights.
type ConditionRule struct {
	ConfigVersion string `json:"configVersion,omitempty"`
	Scope         string `json:"scope,omitempty"`
	Key           string `json:"key,omitempty"`
	Enabled       Bool   `json:"enabled"`
	Force         Bool   `json:"force"`
	Runtime       Bool   `json:"runtime"`
	Priority      int    `json:"priority,omitempty"`
	// Conditions are v2.7/v3.0 rules ("when => then"), in order.
	Conditions []string `json:"-"`
	// Routes are v3.1 rules.
	Routes []MultiDestCondition `json:"-"`

	exprs []*ConditionExpr // Conditions, parsed
}

// MultiDestCondition is one v3.1 condition: calls matching From go to one of To, picked
// by weight; no To blocks them.
type MultiDestCondition struct {
	From struct {
		Match string `json:"match"`
	} `json:"from"`
	To []struct {
		Match  string `json:"match"`
		Weight int    `json:"weight,omitempty"` // 0: Dubbo's default of 100
	} `json:"to"`

	from Condition   // From.Match, parsed
	to   []Condition // To's matches, parsed
}

// On reports whether the rule applies (Java's default: enabled).
func (c *ConditionRule) On() bool { return c.Enabled.Or(true) }

// ParseConditionRule reads a condition route and parses each of its expressions.
func ParseConditionRule(body []byte) (*ConditionRule, error) {
	var head struct {
		ConditionRule
		Conditions []jsonRaw `json:"conditions"`
	}
	if err := decode(body, &head); err != nil {
		return nil, err
	}
	c := head.ConditionRule
	switch c.ConfigVersion {
	case "", V27, V30:
		for i, raw := range head.Conditions {
			s, ok := raw.string()
			if !ok {
				return nil, fmt.Errorf("condition %d is not a \"when => then\" string (v3.1 rules need configVersion: v3.1)", i)
			}
			e, err := ParseConditionExpr(s)
			if err != nil {
				return nil, fmt.Errorf("condition %d: %v", i, err)
			}
			c.Conditions = append(c.Conditions, s)
			c.exprs = append(c.exprs, e)
		}
	case V31:
		for i, raw := range head.Conditions {
			var m MultiDestCondition
			if err := raw.into(&m); err != nil {
				return nil, fmt.Errorf("condition %d: %v", i, err)
			}
			from, err := parseSide(m.From.Match, "true")
			if err != nil {
				return nil, fmt.Errorf("condition %d from: %v", i, err)
			}
			m.from = from
			for j, to := range m.To {
				then, err := parseSide(to.Match, "false")
				if err != nil {
					return nil, fmt.Errorf("condition %d to %d: %v", i, j, err)
				}
				m.to = append(m.to, then)
				if to.Weight < 0 {
					return nil, fmt.Errorf("condition %d to %d: weight %d is negative", i, j, to.Weight)
				}
			}
			c.Routes = append(c.Routes, m)
		}
	default:
		return nil, fmt.Errorf("condition route configVersion %q is not v2.7, v3.0 or v3.1", c.ConfigVersion)
	}
	if len(c.Conditions) == 0 && len(c.Routes) == 0 {
		return nil, fmt.Errorf("condition route without conditions")
	}
	return &c, nil
}

// MatchPair is one key's values in a condition: it matches when a value is among
// Matches (if any) and none among Mismatches (Java's ConditionStateRouter.MatchPair).
// Values are globs (prefix*, *suffix, a*b, *) or $param references to the consumer's
// own parameter.
type MatchPair struct {
	Matches, Mismatches []string
}

// Match applies Java's MatchPair.isMatch to one value; param resolves $references.
func (p *MatchPair) Match(value string, param func(string) string) bool {
	in := func(patterns []string) bool {
		for _, pat := range patterns {
			if globMatch(pat, value, param) {
				return true
			}
		}
		return false
	}
	switch {
	case len(p.Matches) > 0 && len(p.Mismatches) == 0:
		return in(p.Matches)
	case len(p.Mismatches) > 0 && len(p.Matches) == 0:
		return !in(p.Mismatches)
	case len(p.Matches) > 0:
		return !in(p.Mismatches) && in(p.Matches)
	}
	return false
}

// globMatch is Java's UrlUtils.isMatchGlobPattern.
func globMatch(pattern, value string, param func(string) string) bool {
	if param != nil && strings.HasPrefix(pattern, "$") {
		pattern = param(pattern[1:])
	}
	switch {
	case pattern == "*":
		return true
	case pattern == "" && value == "":
		return true
	case pattern == "" || value == "":
		return false
	}
	i := strings.LastIndexByte(pattern, '*')
	switch {
	case i < 0:
		return value == pattern
	case i == len(pattern)-1:
		return strings.HasPrefix(value, pattern[:i])
	case i == 0:
		return strings.HasSuffix(value, pattern[1:])
	}
	return strings.HasPrefix(value, pattern[:i]) && strings.HasSuffix(value, pattern[i+1:])
}

// Condition is one side of a rule: every key's pair must match.
type Condition map[string]*MatchPair

// Keys lists the keys, sorted.
func (c Condition) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ConditionExpr is a parsed "when => then": When nil matches every call; Then nil
// blocks every provider (Java: an empty or "false" then).
type ConditionExpr struct {
	When, Then Condition
}

// ParseConditionExpr parses a v2.7/v3.0 condition as Java's ConditionStateRouter does.
func ParseConditionExpr(rule string) (*ConditionExpr, error) {
	// Java removes these prefixes from the whole rule before parsing it.
	rule = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(rule, "consumer.", ""), "provider.", ""))
	when, then := "", rule
	if i := strings.Index(rule, "=>"); i >= 0 {
		when, then = strings.TrimSpace(rule[:i]), strings.TrimSpace(rule[i+2:])
	}
	e := &ConditionExpr{}
	if when != "" && when != "true" {
		c, err := parseCondition(when)
		if err != nil {
			return nil, fmt.Errorf("when %q: %v", when, err)
		}
		e.When = c
	}
	if then != "" && then != "false" {
		c, err := parseCondition(then)
		if err != nil {
			return nil, fmt.Errorf("then %q: %v", then, err)
		}
		e.Then = c
	}
	return e, nil
}

// parseSide parses a v3.1 from/to match: blank, "true" (from) or "false" (to) select
// everything (MultiDestConditionRouter).
func parseSide(s string, all string) (Condition, error) {
	s = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, "consumer.", ""), "provider.", ""))
	if s == "" || s == all {
		return Condition{}, nil
	}
	return parseCondition(s)
}

// routePattern is Java's ROUTE_PATTERN: a separator run, then a token.
var routePattern = regexp.MustCompile(`([&!=,]*)\s*([^&!=,\s]+)`)

// parseCondition parses "k1=v1,v2 & k2!=v3" (Java's parseRule). "" is no condition.
func parseCondition(s string) (Condition, error) {
	c := Condition{}
	var pair *MatchPair
	var values *[]string
	for _, m := range routePattern.FindAllStringSubmatch(s, -1) {
		sep, content := m[1], m[2]
		switch sep {
		case "":
			pair = &MatchPair{}
			c[content] = pair
			values = nil
		case "&":
			if c[content] == nil {
				c[content] = &MatchPair{}
			}
			pair, values = c[content], nil
		case "=":
			if pair == nil {
				return nil, fmt.Errorf("a value (%q) before any key", content)
			}
			values = &pair.Matches
			*values = append(*values, content)
		case "!=":
			if pair == nil {
				return nil, fmt.Errorf("a value (%q) before any key", content)
			}
			values = &pair.Mismatches
			*values = append(*values, content)
		case ",":
			if values == nil || len(*values) == 0 {
				return nil, fmt.Errorf("%q after ',' belongs to no key", content)
			}
			*values = append(*values, content)
		default:
			return nil, fmt.Errorf("unexpected %q before %q", sep, content)
		}
	}
	for k, p := range c {
		if len(p.Matches) == 0 && len(p.Mismatches) == 0 {
			return nil, fmt.Errorf("key %q has no value", k)
		}
	}
	return c, nil
}
