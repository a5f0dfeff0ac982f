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

package dubbowire

import (
	"fmt"
	"sort"
	"strings"
)

// JavaURLEncode is java.net.URLEncoder.encode(s, "UTF-8"), which Dubbo's
// ZookeeperRegistry applies to url.toFullString() to make the node name:
// [A-Za-z0-9.-*_] kept, space as '+', every other byte as %XX (upper case).
func JavaURLEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '*', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// ProviderURL builds a provider URL as Dubbo 2.7/3 writes it, parameters sorted by
// name. params override the defaults; an empty value removes a parameter.
func ProviderURL(ip string, port int, iface string, params map[string]string) string {
	p := map[string]string{
		"anyhost": "true", "application": "demo-provider", "deprecated": "false", "dubbo": "2.0.2",
		"dynamic": "true", "generic": "false", "interface": iface, "methods": "sayHello,sayHelloAsync",
		"pid": "4242", "release": "3.2.10", "side": "provider", "timestamp": "1700000000000",
	}
	for k, v := range params {
		if v == "" {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kv := make([]string, 0, len(keys))
	for _, k := range keys {
		kv = append(kv, k+"="+p[k])
	}
	return fmt.Sprintf("dubbo://%s:%d/%s?%s", ip, port, iface, strings.Join(kv, "&"))
}

// NodePath is where Dubbo registers a URL: <root>/<encoded iface>/<category>/<encoded URL>.
func NodePath(root, iface, category, rawURL string) string {
	return fmt.Sprintf("%s/%s/%s/%s", root, JavaURLEncode(iface), category, JavaURLEncode(rawURL))
}
