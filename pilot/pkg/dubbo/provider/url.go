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

// Package provider decodes Dubbo provider URLs exactly as Dubbo writes them into a
// registry: in ZooKeeper, the node name under /<root>/<interface>/providers is
// URLEncoder.encode(url.toFullString()), e.g.
//
//	dubbo%3A%2F%2F10.0.0.12%3A20880%2Fcom.example.DemoService%3Fapplication%3Ddemo%26version%3D1.0.0
//
// Decoding is strict: anything that is not a well-formed provider URL is rejected with
// a Reason (used as a metric label) and a message, never guessed at.
package provider

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// MaxNodeNameLength bounds the encoded node name we are willing to decode. Real provider
// URLs with hundreds of methods stay well below it; ZooKeeper itself allows ~1 MiB.
const MaxNodeNameLength = 16 << 10

// Reason classifies a rejected node; it is the "reason" label of the rejection metric.
type Reason string

const (
	ReasonTooLong      Reason = "too_long"
	ReasonEncoding     Reason = "bad_encoding"
	ReasonNotURL       Reason = "not_a_url"
	ReasonProtocol     Reason = "unsupported_protocol"
	ReasonConsumer     Reason = "not_a_provider"
	ReasonHost         Reason = "bad_host"
	ReasonPort         Reason = "bad_port"
	ReasonInterface    Reason = "bad_interface"
	ReasonParameter    Reason = "bad_parameter"
	ReasonHostnameUsed Reason = "hostname_conflict"
)

// Error is a rejected node.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Msg }

func reject(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// URL is a decoded provider URL.
type URL struct {
	// Protocol is the URL scheme: "dubbo", "tri", "rest", ...
	Protocol string
	// IP is the provider's address as registered (an IP literal; hostnames are rejected,
	// since endpoints must be addresses).
	IP string
	// Port is the provider's own port.
	Port uint32
	// Path is the URL path, normally the interface name.
	Path string
	// Params are the URL parameters, decoded.
	Params map[string]string
}

// Interface is the service interface: the "interface" parameter, else the path.
func (u *URL) Interface() string {
	if i := u.Params["interface"]; i != "" {
		return i
	}
	return u.Path
}

// Equal is true when both URLs are the same provider with the same parameters.
func (u *URL) Equal(o *URL) bool {
	return u.Protocol == o.Protocol && u.IP == o.IP && u.Port == o.Port && u.Path == o.Path && maps.Equal(u.Params, o.Params)
}

// Parse decodes a provider node name (URL-encoded, as Dubbo writes it) and validates it.
// It accepts every protocol; callers decide which ones become endpoints.
func Parse(node string) (*URL, error) {
	if len(node) > MaxNodeNameLength {
		return nil, reject(ReasonTooLong, "node name is %d bytes, more than %d", len(node), MaxNodeNameLength)
	}
	// Java's URLEncoder: '+' is a space, %XX are UTF-8 bytes; decoded once, as Slime and
	// Dubbo's own registry do.
	raw, err := url.QueryUnescape(node)
	if err != nil {
		return nil, reject(ReasonEncoding, "cannot URL-decode node name: %v", err)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < 0x20 || c == 0x7f {
			return nil, reject(ReasonEncoding, "control character 0x%02x in decoded URL", c)
		}
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return nil, reject(ReasonNotURL, "no scheme://")
	}
	if !isToken(scheme) {
		return nil, reject(ReasonNotURL, "invalid scheme %q", truncate(scheme))
	}
	u := &URL{}

	hostport, pathQuery := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hostport, pathQuery = rest[:i], rest[i:]
	}
	// Dubbo may put credentials before the host: user:password@host:port.
	if i := strings.LastIndexByte(hostport, '@'); i >= 0 {
		hostport = hostport[i+1:]
	}
	path, query, _ := strings.Cut(pathQuery, "?")
	// Every string kept is a copy (interned), not a substring of raw: a substring would
	// keep the whole decoded URL alive beside the node name and the parameters.
	params.mu.Lock()
	u.Protocol = params.intern(strings.ToLower(scheme))
	u.Path = params.intern(strings.TrimPrefix(path, "/"))
	if query == "" {
		u.Params = map[string]string{}
	} else {
		u.Params = make(map[string]string, strings.Count(query, "&")+1)
		for kv := range strings.SplitSeq(query, "&") {
			if kv == "" {
				continue
			}
			k, v, _ := strings.Cut(kv, "=")
			if k == "" {
				params.mu.Unlock()
				return nil, reject(ReasonParameter, "parameter with an empty name")
			}
			u.Params[params.intern(k)] = params.intern(v)
		}
	}
	params.mu.Unlock()
	switch side := u.Params["side"]; side {
	case "", "provider":
	default:
		return nil, reject(ReasonConsumer, "side=%s under providers", truncate(side))
	}
	if c := u.Params["category"]; c != "" && c != "providers" {
		return nil, reject(ReasonConsumer, "category=%s under providers", truncate(c))
	}
	if u.Protocol == "consumer" {
		return nil, reject(ReasonConsumer, "consumer:// URL under providers")
	}
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		if !strings.Contains(hostport, ":") {
			return nil, reject(ReasonPort, "no port in %q", truncate(hostport))
		}
		return nil, reject(ReasonHost, "bad host:port %q: %v", truncate(hostport), err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, reject(ReasonHost, "host %q is not an IP address", truncate(host))
	}
	if ip.IsUnspecified() || ip.IsMulticast() {
		return nil, reject(ReasonHost, "host %s cannot be an endpoint", host)
	}
	u.IP = ip.String()
	port, err := strconv.ParseUint(portStr, 10, 32)
	if err != nil || port == 0 || port > 65535 {
		return nil, reject(ReasonPort, "port %q is not in 1..65535", truncate(portStr))
	}
	u.Port = uint32(port)

	iface := u.Interface()
	if iface == "" {
		return nil, reject(ReasonInterface, "no interface (neither path nor interface parameter)")
	}
	if !ValidInterface(iface) {
		return nil, reject(ReasonInterface, "interface %q is not a service name", truncate(iface))
	}
	return u, nil
}

// params interns the parameter names and values of parsed URLs: providers of one
// interface repeat most of them (application, versions, the methods list), and all
// providers repeat the names. The table is dropped whenever it reaches maxInterned
// strings (values unique to a provider, such as its pid, come and go with churn), so it
// stays bounded; a dropped table only means later copies are not shared with earlier ones.
var params = interner{}

const maxInterned = 1 << 16

type interner struct {
	mu sync.Mutex
	m  map[string]string
}

// intern returns s as a string of its own, shared with equal strings interned before.
// Callers hold mu.
func (t *interner) intern(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := t.m[s]; ok {
		return c
	}
	if len(t.m) >= maxInterned || t.m == nil {
		t.m = make(map[string]string, 1024)
	}
	c := strings.Clone(s)
	t.m[c] = c
	return c
}

// ValidInterface accepts Java type names (letters, digits, '_', '$', '.', '-') of at
// most 1024 bytes; it rejects empty segments, spaces and anything else.
func ValidInterface(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for _, seg := range strings.Split(s, ".") {
		if seg == "" {
			return false
		}
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '_', r == '$', r == '-':
		default:
			return false
		}
	}
	return true
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return len(s) <= 32
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
