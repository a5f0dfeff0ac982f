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
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// MatchIPExpression is Java's NetUtils.matchIpExpression(pattern, address): address is
// ip or ip:port. A pattern with / is a CIDR (the port is ignored); * and *.*.*.* match
// everything; otherwise an IPv4 pattern of four segments, each a number, * or a range
// a-b, optionally with :port (then the port must be equal). Unlike Java, a host name is
// never resolved: it matches only itself.
func MatchIPExpression(pattern, address string) bool {
	host, port := address, -1
	if ap, err := netip.ParseAddrPort(address); err == nil {
		host, port = ap.Addr().String(), int(ap.Port())
	}
	return matchIP(strings.TrimSpace(pattern), host, port)
}

func matchIP(pattern, host string, port int) bool {
	if strings.Contains(pattern, "/") {
		pfx, err := netip.ParsePrefix(pattern)
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(host)
		return err == nil && pfx.Contains(a.Unmap())
	}
	if pattern == "*" || pattern == "*.*.*.*" {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Unmap().Is4() {
		// A host name or IPv6: only the exact address (with the pattern's port, if any).
		if ap, err := netip.ParseAddrPort(pattern); err == nil {
			return ap.Addr().String() == host && int(ap.Port()) == port
		}
		return pattern == host
	}
	if h, p, ok := strings.Cut(pattern, ":"); ok {
		if p != strconv.Itoa(port) {
			return false
		}
		pattern = h
	}
	if pattern == host {
		return true
	}
	mask := strings.Split(pattern, ".")
	ip := strings.Split(a.Unmap().String(), ".")
	if len(mask) != 4 {
		return false
	}
	for i, m := range mask {
		switch {
		case m == "*" || m == ip[i]:
		case strings.Contains(m, "-"):
			lo, hi, _ := strings.Cut(m, "-")
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			v, _ := strconv.Atoi(ip[i])
			if err1 != nil || err2 != nil || v < l || v > h {
				return false
			}
		default:
			mv, err := strconv.Atoi(m)
			if err != nil || strconv.Itoa(mv) != ip[i] {
				return false
			}
		}
	}
	return true
}

// regexCache holds the compiled patterns of the rules (bounded: rules rewritten with ever
// new patterns compile each time once it is full).
var (
	regexCache     sync.Map // pattern -> *regexp.Regexp or error
	regexCacheSize atomic.Int64
)

const maxCachedRegexes = 4096

// compileWhole compiles a Java String.matches pattern: the whole value must match.
func compileWhole(pattern string) (*regexp.Regexp, error) {
	if v, ok := regexCache.Load(pattern); ok {
		if re, ok := v.(*regexp.Regexp); ok {
			return re, nil
		}
		return nil, v.(error)
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if regexCacheSize.Load() < maxCachedRegexes {
		regexCacheSize.Add(1)
		if err != nil {
			regexCache.Store(pattern, err)
		} else {
			regexCache.Store(pattern, re)
		}
	}
	return re, err
}
