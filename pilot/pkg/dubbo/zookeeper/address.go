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
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/regaddr"
)

// Config is one ZooKeeper registry, parsed from Dubbo's registry address syntax.
type Config struct {
	// Address is the address as given.
	Address string
	// Name labels the registry's endpoints ("registry" label) and metrics.
	Name string
	// Servers are host:port pairs (the address's hosts and its backup= list).
	Servers []string
	// Root is the Dubbo root path ("/dubbo"; Dubbo's group= parameter sets "/<group>").
	Root string
	// SessionTimeout is the ZooKeeper session timeout.
	SessionTimeout time.Duration
	// Levels are the registration levels read: interface level (Dubbo 2, and Dubbo 3's
	// registry-type=interface|all) under Root, application level (Dubbo 3's default)
	// under ServicesRoot. Zero: the address did not say (registry-type=).
	Levels Levels
	// ServicesRoot holds the application-level instances (/<ServicesRoot>/<app>/<ip:port>;
	// default /services, Dubbo's rootPath parameter).
	ServicesRoot string
	// ConfigOnly: a config center only (--dubboConfigCenter): no provider is read.
	ConfigOnly bool
	// ConfigRoot holds Dubbo's governance rules (/<namespace>/config/<group>/<key>;
	// default /dubbo/config/dubbo, the address's config-namespace= and config-group=
	// parameters); "" when config-center=false.
	ConfigRoot string
}

// Levels are the registration levels read (regaddr.Levels).
type Levels = regaddr.Levels

// ParseLevels parses Dubbo's registry-type values (interface, service or instance, all).
var ParseLevels = regaddr.ParseLevels

const (
	defaultPort           = "2181"
	defaultRoot           = "/dubbo"
	defaultSessionTimeout = 30 * time.Second
	defaultServicesRoot   = "/services"
)

// ParseAddress parses a registry address as Dubbo applications write it:
//
//	zookeeper://10.0.0.1:2181
//	zookeeper://10.0.0.1:2181?backup=10.0.0.2:2181,10.0.0.3:2181
//	zookeeper://10.0.0.1:2181,10.0.0.2:2181?root=/dubbo&name=zk-east&session-timeout=30s
//
// Parameters: backup (more servers), root (root path, default /dubbo) or Dubbo's group
// (root = /<group>), name (default: the first server), session-timeout (a duration, or
// milliseconds as Dubbo's session= parameter), registry-type (the levels read:
// interface, service (application level) or all; unset: Levels stays zero and the
// caller's default applies), rootPath (the application-level root, default /services),
// config-center (false: no governance rules are read from this ZooKeeper),
// config-namespace and config-group (where the rules are: /<namespace>/config/<group>,
// default /dubbo/config/dubbo, as Dubbo's config center has them). Other Dubbo
// parameters (timeout, ...) are accepted and ignored.
func ParseAddress(addr string) (Config, error) {
	c := Config{Address: regaddr.Redact(addr), Root: defaultRoot, SessionTimeout: defaultSessionTimeout,
		ServicesRoot: defaultServicesRoot}
	scheme, _, _ := strings.Cut(strings.TrimSpace(addr), "://")
	switch strings.ToLower(scheme) {
	case "zookeeper":
	case "nacos":
		return c, fmt.Errorf("registry address %q: not a zookeeper:// address", regaddr.Redact(addr))
	case "etcd", "etcd3", "consul", "multicast", "redis":
		return c, fmt.Errorf("registry address %q: %s registries are not supported (zookeeper:// and nacos:// are)", regaddr.Redact(addr), scheme)
	default:
		return c, fmt.Errorf("registry address %q: unknown registry scheme %q (want zookeeper:// or nacos://)", regaddr.Redact(addr), scheme)
	}
	a, err := regaddr.Parse(addr, defaultPort)
	if err != nil {
		return c, err
	}
	addr = regaddr.Redact(addr) // errors below show it
	if a.User != "" {
		return c, fmt.Errorf("registry address %q: credentials in a zookeeper:// address are not supported (ZooKeeper ACLs are not read)", addr)
	}
	c.Servers, c.Levels = a.Servers, a.Levels
	params := a.Params
	switch {
	case params.Get("root") != "":
		c.Root = params.Get("root")
	case params.Get("group") != "":
		c.Root = params.Get("group")
	}
	if !strings.HasPrefix(c.Root, "/") {
		c.Root = "/" + c.Root
	}
	c.Root = strings.TrimRight(c.Root, "/")
	if c.Root == "" || strings.Contains(c.Root, "//") {
		return c, fmt.Errorf("registry address %q: bad root path %q", addr, params.Get("root")+params.Get("group"))
	}
	if v := params.Get("rootPath"); v != "" {
		c.ServicesRoot = "/" + strings.Trim(v, "/")
		if c.ServicesRoot == "/" || strings.Contains(c.ServicesRoot, "//") {
			return c, fmt.Errorf("registry address %q: bad rootPath %q", addr, v)
		}
	}
	c.ConfigRoot = ""
	if cc := params.Get("config-center"); cc == "" || cc == "true" {
		ns, group := params.Get("config-namespace"), params.Get("config-group")
		if ns == "" {
			ns = "dubbo"
		}
		if group == "" {
			group = "dubbo"
		}
		if strings.Contains(ns, "/") || strings.Contains(group, "/") {
			return c, fmt.Errorf("registry address %q: config-namespace and config-group are single path segments", addr)
		}
		c.ConfigRoot = "/" + ns + "/config/" + group
	} else if cc != "false" {
		return c, fmt.Errorf("registry address %q: config-center=%q: want true or false", addr, cc)
	}
	c.Name = params.Get("name")
	if c.Name == "" {
		c.Name = c.Servers[0]
	}
	for _, k := range []string{"session-timeout", "session"} {
		v := params.Get(k)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			ms, merr := strconv.ParseUint(v, 10, 32)
			if merr != nil {
				return c, fmt.Errorf("registry address %q: %s=%q is neither a duration nor milliseconds", addr, k, v)
			}
			d = time.Duration(ms) * time.Millisecond
		}
		if d < time.Second || d > 10*time.Minute {
			return c, fmt.Errorf("registry address %q: %s=%v is outside 1s..10m", addr, k, d)
		}
		c.SessionTimeout = d
		break
	}
	return c, nil
}

// ParseConfigCenter parses a separate config center address as Dubbo's config-center
// configuration writes it: zookeeper://host:port[,host:port][?namespace=dubbo&group=dubbo&name=NAME]
// (rules under /<namespace>/config/<group>, both "dubbo" by default).
func ParseConfigCenter(addr string) (Config, error) {
	a, err := regaddr.Parse(addr, defaultPort)
	if err != nil {
		return Config{}, err
	}
	if a.Scheme != "zookeeper" {
		return Config{}, fmt.Errorf("config center %q: not a zookeeper:// address", regaddr.Redact(addr))
	}
	if a.User != "" {
		return Config{}, fmt.Errorf("config center %q: credentials in a zookeeper:// address are not supported", regaddr.Redact(addr))
	}
	c := Config{Address: regaddr.Redact(addr), Servers: a.Servers, SessionTimeout: defaultSessionTimeout, ConfigOnly: true}
	ns, group := a.Params.Get("namespace"), a.Params.Get("group")
	if ns == "" {
		ns = "dubbo"
	}
	if group == "" {
		group = "dubbo"
	}
	if strings.Contains(ns, "/") || strings.Contains(group, "/") {
		return Config{}, fmt.Errorf("config center %q: namespace and group are single path segments", c.Address)
	}
	c.ConfigRoot = "/" + ns + "/config/" + group
	c.Name = a.Params.Get("name")
	if c.Name == "" {
		c.Name = c.Servers[0]
	}
	return c, nil
}
