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
	"maps"
	"slices"
	"sort"
	"strings"
)

// Compiling a chain into routes. The rules tell calls apart only by the literal values
// they name (a method, an attachment's value, a tag) and by an attachment's presence.
// Every combination of those ("call classes") is routed once through the Java chain,
// attributes that never change the result are dropped, and each remaining class becomes
// one route: its match names the class's values, most specific routes first, so a call
// whose value no rule names falls through to the route that leaves that attribute out.

// MaxCallClasses bounds the classes of one service's rules: rules telling more calls
// apart are reported and left out.
const MaxCallClasses = 512

// AttachmentMatch is a route's condition on an attachment: a value, Present (any
// non-empty value), or (Level) a value under the tag level Value: "Value|...".
type AttachmentMatch struct {
	Value   string
	Present bool
	Level   bool
}

// RouteSpec is one route of a service: calls matching Method (if set) and Attachments go
// to Dests.
type RouteSpec struct {
	Method      string
	Attachments map[string]AttachmentMatch
	Dests       []Dest
}

// Unsupported is why a rule cannot be expressed per sidecar; the rule is left out.
type Unsupported struct{ Reason string }

func (u *Unsupported) Error() string { return u.Reason }

// CheckCondition reports what of a condition rule a sidecar cannot evaluate: when-side
// keys other than method and attachments (the consumer's own parameters, arguments),
// patterns in when-side values (only literals and * split calls into classes), $param
// references and call attributes on the then-side.
func CheckCondition(r *ConditionRule) error {
	var sides [][2]string // when, then
	for _, s := range r.Conditions {
		when, then := "", s
		if i := strings.Index(s, "=>"); i >= 0 {
			when, then = s[:i], s[i+2:]
		}
		sides = append(sides, [2]string{when, then})
	}
	for _, m := range r.Routes {
		from := m.From.Match
		if strings.TrimSpace(from) == "true" {
			from = ""
		}
		sides = append(sides, [2]string{from, ""})
		for _, to := range m.To {
			sides = append(sides, [2]string{"", to.Match})
		}
	}
	for _, side := range sides {
		w := strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(side[0], "consumer.", ""), "provider.", ""))
		if w != "" && w != "true" {
			c, err := parseCondition(w)
			if err != nil {
				return err
			}
			for k, p := range c {
				if _, att := AttachmentKey(k); !att && k != "method" && k != "methods" {
					return &Unsupported{fmt.Sprintf("when-side key %q is the consumer's own (or a call argument): a sidecar cannot evaluate it", k)}
				}
				for _, v := range append(append([]string{}, p.Matches...), p.Mismatches...) {
					if v != "*" && strings.ContainsAny(v, "*~") {
						return &Unsupported{fmt.Sprintf("when-side pattern %s=%s: only literal values (and *) can be routed", k, v)}
					}
				}
			}
		}
		t := strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(side[1], "consumer.", ""), "provider.", ""))
		if t != "" && t != "false" {
			c, err := parseCondition(t)
			if err != nil {
				return err
			}
			for k, p := range c {
				if strings.HasPrefix(k, "arguments") || strings.HasPrefix(k, "attachments") || k == "method" || k == "methods" {
					return &Unsupported{fmt.Sprintf("then-side key %q is a call attribute, not a provider's", k)}
				}
				for _, v := range append(append([]string{}, p.Matches...), p.Mismatches...) {
					if strings.HasPrefix(v, "$") {
						return &Unsupported{fmt.Sprintf("then-side %s=%s refers to the consumer's own parameter", k, v)}
					}
					if strings.Contains(v, "~") {
						return &Unsupported{fmt.Sprintf("then-side range %s=%s is not supported", k, v)}
					}
				}
			}
		}
	}
	return nil
}

// attr is one thing the rules tell calls apart by.
type attr struct {
	method bool
	key    string   // attachment key
	values []string // literal values named by the rules
	// levels are tag names a|b|c calls fall back from (the tag attribute only).
	levels []string
	// presence: an attachment with a value no rule names routes otherwise than an absent
	// one (a != or * condition on it, or the tag).
	presence bool
}

// options of an attribute: its literals, then (if it matters) any other present value,
// then the rest (another method, the attachment absent or with another value).
func (a attr) options() []option {
	out := make([]option, 0, len(a.values)+2)
	for _, v := range a.values {
		out = append(out, option{value: v})
	}
	for _, l := range a.levels {
		out = append(out, option{value: l, level: true})
	}
	if a.presence {
		out = append(out, option{present: true})
	}
	return append(out, option{other: true})
}

type option struct {
	value   string
	level   bool // a value under the tag level value: "value|<another>"
	present bool // an attachment with a value no rule names
	other   bool // no condition: another method, the attachment absent
}

// OtherValue is a value no rule names: the method or attachment value of the "other"
// classes (it shows in the steps of a tag no rule names).
const OtherValue = "\x00other"

const sentinel = OtherValue

// Compile turns the chain into routes for the providers ps, the last one matching every
// call.
func (ch *Chain) Compile(ps []Provider) ([]RouteSpec, error) {
	attrs := ch.attrs(ps)
	n := 1
	for _, a := range attrs {
		n *= len(a.options())
		if n > MaxCallClasses {
			return nil, &Unsupported{fmt.Sprintf("the rules tell more than %d classes of calls apart", MaxCallClasses)}
		}
	}
	// Evaluate every class.
	type class struct {
		opts []option
		key  string
		dest []Dest
		call Call
	}
	var classes []class
	var walk func(i int, cur []option)
	walk = func(i int, cur []option) {
		if i == len(attrs) {
			call := Call{Method: sentinel, Attachments: map[string]string{}}
			for j, a := range attrs {
				o := cur[j]
				switch {
				case a.method && !o.other:
					call.Method = o.value
				case o.present:
					call.Attachments[a.key] = sentinel
				case o.level:
					call.Attachments[a.key] = o.value + "|" + sentinel
				case !a.method && !o.other:
					call.Attachments[a.key] = o.value
				}
			}
			d := ch.Route(call, ps)
			classes = append(classes, class{opts: append([]option(nil), cur...), key: destKey(d), dest: d, call: call})
			return
		}
		for _, o := range attrs[i].options() {
			walk(i+1, append(cur, o))
		}
	}
	walk(0, nil)
	// Drop the attributes the result never depends on.
	relevant := make([]bool, len(attrs))
	for i := range attrs {
		byRest := map[string]string{}
		for _, c := range classes {
			rest := restKey(c.opts, i)
			if prev, ok := byRest[rest]; ok && prev != c.key {
				relevant[i] = true
				break
			}
			byRest[rest] = c.key
		}
	}
	seen := map[string]bool{}
	var out []RouteSpec
	type ranked struct {
		spec              RouteSpec
		specified, unsure int
		depth             int // the longest tag level named: a|b before a
		key               string
		call              Call // the class's representative call
	}
	var rs []ranked
	for _, c := range classes {
		r := ranked{spec: RouteSpec{Dests: c.dest}, key: c.key, call: c.call}
		id := ""
		skip := false
		for i, a := range attrs {
			o := c.opts[i]
			if !relevant[i] {
				// One representative: the "other" option of a dropped attribute.
				if !o.other {
					skip = true
				}
				continue
			}
			id += fmt.Sprintf("%d:%v|", i, o)
			switch {
			case o.other:
			case a.method:
				r.spec.Method = o.value
				r.specified++
			default:
				if r.spec.Attachments == nil {
					r.spec.Attachments = map[string]AttachmentMatch{}
				}
				r.spec.Attachments[a.key] = AttachmentMatch{Value: o.value, Present: o.present, Level: o.level}
				r.specified++
				if o.present || o.level {
					r.unsure++
				}
				if o.level {
					r.depth = max(r.depth, len(o.value)+1)
				}
			}
		}
		if skip || seen[id] {
			continue
		}
		seen[id] = true
		rs = append(rs, r)
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].specified != rs[j].specified {
			return rs[i].specified > rs[j].specified
		}
		if rs[i].unsure != rs[j].unsure {
			return rs[i].unsure < rs[j].unsure
		}
		return rs[i].depth > rs[j].depth
	})
	// A route whose class the next matching route sends to the same providers is not
	// needed (only its own class reaches it: more specific routes come first). From the
	// least specific up, against the routes kept after it.
	var kept []ranked // reversed
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		redundant := false
		for j := len(kept) - 1; j >= 0; j-- {
			if kept[j].spec.matches(r.call) {
				redundant = kept[j].key == r.key
				break
			}
		}
		if !redundant {
			kept = append(kept, r)
		}
	}
	slices.Reverse(kept)
	for _, r := range kept {
		out = append(out, r.spec)
	}
	return out, nil
}

// matches reports whether a call satisfies the route's conditions (as a sidecar tests
// them: a present attachment is a non-empty one).
func (r RouteSpec) matches(c Call) bool {
	if r.Method != "" && r.Method != c.Method {
		return false
	}
	for k, a := range r.Attachments {
		v, ok := c.Attachments[k]
		switch {
		case !ok || v == "":
			return false
		case a.Present:
		case a.Level:
			if !strings.HasPrefix(v, a.Value+"|") {
				return false
			}
		case k == ForceTagKey && strings.EqualFold(a.Value, "true"):
			if !strings.EqualFold(v, "true") {
				return false
			}
		case v != a.Value:
			return false
		}
	}
	return true
}

func restKey(opts []option, skip int) string {
	var b strings.Builder
	for i, o := range opts {
		if i != skip {
			fmt.Fprintf(&b, "%v|", o)
		}
	}
	return b.String()
}

// destKey identifies a result by its steps and weights (the providers follow from them).
func destKey(ds []Dest) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%d:%v;", d.Weight, d.Steps)
	}
	return b.String()
}

// attrs lists what the chain's rules tell calls apart by, in a fixed order: the method,
// then attachments by key, then the tag and the force-tag flag.
func (ch *Chain) attrs(ps []Provider) []attr {
	methods := map[string]bool{}
	atts := map[string]map[string]bool{}
	negated := map[string]bool{}
	add := func(c Condition) {
		for k, p := range c {
			vals := append(append([]string{}, p.Matches...), p.Mismatches...)
			if k == "method" || k == "methods" {
				for _, v := range vals {
					if v != "*" {
						methods[v] = true
					}
				}
			} else if a, ok := AttachmentKey(k); ok {
				if atts[a] == nil {
					atts[a] = map[string]bool{}
				}
				if len(p.Mismatches) > 0 || slices.Contains(p.Matches, "*") {
					negated[a] = true
				}
				for _, v := range vals {
					if v != "*" {
						atts[a][v] = true
					}
				}
			}
		}
	}
	for _, r := range ch.Conditions {
		if r == nil || !r.On() {
			continue
		}
		for _, e := range r.exprs {
			add(e.When)
		}
		for _, m := range r.Routes {
			add(m.from)
		}
	}
	tags := map[string]bool{}
	var levels []string
	if ch.Tag != nil && ch.Tag.On() {
		for _, t := range ch.Tag.Tags {
			tags[t.Name] = true
			levels = append(levels, t.Name)
		}
	}
	for _, p := range ps {
		if t := p.Params[TagKey]; t != "" {
			tags[t] = true
		}
	}
	var out []attr
	if len(methods) > 0 {
		out = append(out, attr{method: true, values: slices.Sorted(maps.Keys(methods))})
	}
	for _, k := range slices.Sorted(maps.Keys(atts)) {
		if k == TagKey || k == ForceTagKey {
			continue
		}
		out = append(out, attr{key: k, values: slices.Sorted(maps.Keys(atts[k])), presence: negated[k]})
	}
	// The tag router runs on every call: a tagged call, forced or not, routes otherwise
	// than an untagged one even when no provider is tagged.
	for v := range atts[TagKey] {
		tags[v] = true
	}
	sort.Strings(levels)
	force := map[string]bool{"true": true}
	for v := range atts[ForceTagKey] {
		force[v] = true
	}
	return append(out, attr{key: TagKey, values: slices.Sorted(maps.Keys(tags)), levels: levels, presence: true},
		attr{key: ForceTagKey, values: slices.Sorted(maps.Keys(force)), presence: negated[ForceTagKey]})
}
