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

// Package regaddr parses what every Dubbo registry address shares, whatever its
// registry: Dubbo's URL syntax (scheme://host:port,host:port/path?backup=...&k=v), the
// server list, and the registration levels read.
package regaddr

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Levels are the registration levels read from a registry: interface level (Dubbo 2,
// and Dubbo 3's registry-type=interface|all) and application level (Dubbo 3's default).
type Levels struct {
	Interface, Application bool
}

// ParseLevels parses --dubboDiscoveryLevels and Dubbo's registry-type= parameter.
func ParseLevels(s string) (Levels, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "interface":
		return Levels{Interface: true}, nil
	case "service", "instance", "application":
		return Levels{Application: true}, nil
	case "all", "both", "":
		return Levels{Interface: true, Application: true}, nil
	}
	return Levels{}, fmt.Errorf("registry level %q: want interface, application (service) or all", s)
}

func (l Levels) String() string {
	switch {
	case l.Interface && l.Application:
		return "all"
	case l.Interface:
		return "interface"
	default:
		return "application"
	}
}

// Address is a registry address split into its parts.
type Address struct {
	Scheme string // lower case
	// Servers are host:port pairs: the address's hosts, then its backup= list, without
	// duplicates; a server without a port gets the registry's default port.
	Servers []string
	// User and Password come from user:password@ before the hosts, if any.
	User, Password string
	Params         url.Values
	// Levels are registry-type='s levels; zero when the address does not say.
	Levels Levels
}

// Parse splits a registry address as Dubbo applications write it. defaultPort is the
// registry's port when a server has none.
func Parse(addr, defaultPort string) (Address, error) {
	var a Address
	scheme, rest, ok := strings.Cut(strings.TrimSpace(addr), "://")
	if !ok {
		return a, fmt.Errorf("registry address %q: want scheme://host:port[?params]", addr)
	}
	a.Scheme = strings.ToLower(scheme)
	hosts, query, _ := strings.Cut(rest, "?")
	if i := strings.IndexByte(hosts, '/'); i >= 0 {
		hosts = hosts[:i] // Dubbo puts the RegistryService path here; it carries no meaning for us
	}
	if i := strings.LastIndexByte(hosts, '@'); i >= 0 {
		user, pass, _ := strings.Cut(hosts[:i], ":")
		var err error
		if a.User, err = url.PathUnescape(user); err == nil {
			a.Password, err = url.PathUnescape(pass)
		}
		if err != nil {
			return a, fmt.Errorf("registry address: bad user information: %v", err)
		}
		hosts = hosts[i+1:]
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return a, fmt.Errorf("registry address %q: bad parameters: %v", redact(addr), err)
	}
	a.Params = params
	all := splitList(hosts)
	all = append(all, splitList(params.Get("backup"))...)
	if len(all) == 0 {
		return a, fmt.Errorf("registry address %q: no server", redact(addr))
	}
	seen := map[string]bool{}
	for _, h := range all {
		hp, err := hostPort(h, defaultPort)
		if err != nil {
			return a, fmt.Errorf("registry address %q: %v", redact(addr), err)
		}
		if !seen[hp] {
			seen[hp] = true
			a.Servers = append(a.Servers, hp)
		}
	}
	if v := params.Get("registry-type"); v != "" {
		if a.Levels, err = ParseLevels(v); err != nil {
			return a, fmt.Errorf("registry address %q: %v", redact(addr), err)
		}
	}
	return a, nil
}

// Redact hides the secrets of a registry address (user information, password=,
// secretKey=) for logs, errors and /debug/dubboz.
func Redact(addr string) string { return redact(addr) }

func redact(addr string) string {
	scheme, rest, ok := strings.Cut(addr, "://")
	if !ok {
		scheme, rest = "", addr
	}
	// User information ends at the last '@' before the path; a password may hold '?'.
	end := len(rest)
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		end = i
	}
	if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
		user, _, _ := strings.Cut(rest[:at], ":")
		rest = user + ":REDACTED@" + rest[at+1:]
	}
	hosts, query, hasQuery := strings.Cut(rest, "?")
	out := hosts
	if ok {
		out = scheme + "://" + hosts
	}
	if !hasQuery {
		return out
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		switch strings.ToLower(k) {
		case "password", "secretkey", "secret-key", "accesskey", "access-key":
			parts[i] = k + "=REDACTED"
		}
	}
	return out + "?" + strings.Join(parts, "&")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func hostPort(h, defaultPort string) (string, error) {
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			host, port = strings.Trim(h, "[]"), defaultPort
		} else {
			return "", fmt.Errorf("bad server %q: %v", h, err)
		}
	}
	if host == "" {
		return "", fmt.Errorf("bad server %q: empty host", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad server %q: port %q is not in 1..65535", h, port)
	}
	return net.JoinHostPort(host, port), nil
}
