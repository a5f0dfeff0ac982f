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
	"encoding/json"
	"fmt"
	"strconv"

	"sigs.k8s.io/yaml"
)

// maxRuleBytes bounds a rule body: dubbo-admin's rules are a few hundred bytes; a
// config node holding megabytes is junk, not a rule.
const maxRuleBytes = 256 << 10

// decode reads a rule body into v, strictly typed after YAML's scalars have been read
// leniently where Java's SnakeYAML is (numbers and booleans as parameter values).
func decode(body []byte, v any) error {
	if len(body) == 0 {
		return fmt.Errorf("empty rule")
	}
	if len(body) > maxRuleBytes {
		return fmt.Errorf("rule of %d bytes (at most %d)", len(body), maxRuleBytes)
	}
	j, err := yaml.YAMLToJSON(body)
	if err != nil {
		return fmt.Errorf("not YAML: %v", err)
	}
	if err := json.Unmarshal(j, v); err != nil {
		return fmt.Errorf("not a rule of this kind: %v", err)
	}
	return nil
}

// Params are parameter values as Java reads them from YAML: any scalar, as a string.
type Params map[string]string

func (p *Params) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Params, len(raw))
	for k, v := range raw {
		switch x := v.(type) {
		case string:
			out[k] = x
		case bool:
			out[k] = strconv.FormatBool(x)
		case float64:
			out[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case nil:
			out[k] = ""
		default:
			return fmt.Errorf("parameter %q is not a scalar", k)
		}
	}
	*p = out
	return nil
}

// Scalar is a YAML scalar read as Java's toString gives it.
type Scalar string

func (s *Scalar) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case string:
		*s = Scalar(x)
	case bool:
		*s = Scalar(strconv.FormatBool(x))
	case float64:
		*s = Scalar(strconv.FormatFloat(x, 'f', -1, 64))
	case nil:
		*s = ""
	default:
		return fmt.Errorf("%s is not a scalar", b)
	}
	return nil
}

// Bool is an optional boolean with Java's default when absent.
type Bool struct {
	Set, Value bool
}

func (b *Bool) UnmarshalJSON(d []byte) error {
	var v any
	if err := json.Unmarshal(d, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		*b = Bool{Set: true, Value: x}
	case string: // "true"/"false" quoted, as hand-written rules have them
		bv, err := strconv.ParseBool(x)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", x)
		}
		*b = Bool{Set: true, Value: bv}
	case nil:
		*b = Bool{}
	default:
		return fmt.Errorf("%v is not a boolean", v)
	}
	return nil
}

// Or returns the value, or def when absent.
func (b Bool) Or(def bool) bool {
	if b.Set {
		return b.Value
	}
	return def
}

// jsonRaw is one list element, read later by its expected shape.
type jsonRaw json.RawMessage

func (r *jsonRaw) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

func (r jsonRaw) string() (string, bool) {
	var s string
	if json.Unmarshal(r, &s) != nil {
		return "", false
	}
	return s, true
}

func (r jsonRaw) into(v any) error { return json.Unmarshal(r, v) }
