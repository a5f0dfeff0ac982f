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

// Package nacos reads Dubbo providers from Nacos registries: interface-level services
// (providers:<interface>:<version>:<group>) become provider URLs of the Dubbo registry,
// application-level services (Dubbo 3) go through the shared application-level
// resolution (pilot/pkg/dubbo/appdiscovery). Instance changes arrive by subscription
// (gRPC server push); the list of services is paged through at an interval, since Nacos
// has no watch on it. docs/registry.md, "Nacos".
package nacos

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/regaddr"
)

// Config is one Nacos registry, parsed from Dubbo's registry address syntax.
type Config struct {
	// Address is the address as given, its secrets redacted.
	Address string
	// Name labels the registry's endpoints ("registry" label) and metrics.
	Name string
	// Servers are host:port pairs (the address's hosts and its backup= list). The
	// client reaches each server's gRPC API on port+1000, as every Nacos 2 client does.
	Servers []string
	// Namespace is the Nacos namespace id ("" is Nacos's "public").
	Namespace string
	// Group is the Nacos group Dubbo registers in (DEFAULT_GROUP).
	Group string
	// Username and Password log in to a Nacos server with authentication on; AccessKey
	// and SecretKey sign requests (Alibaba Cloud MSE/ACM).
	Username, Password, AccessKey, SecretKey string
	// Levels are the registration levels read; zero when the address does not say.
	Levels regaddr.Levels
	// ListInterval is how often the list of services is read (no watch exists on it).
	ListInterval time.Duration
	// Dir holds the client's cache and logs (never the working directory).
	Dir string
	// Timeout bounds one request to the server.
	Timeout time.Duration
	// ConfigGroup is the Nacos group of Dubbo's governance rules (dataId = the rule key,
	// in the registry's namespace; default "dubbo", the address's config-group=); ""
	// when config-center=false.
	ConfigGroup string
}

const (
	defaultPort  = "8848"
	DefaultGroup = "DEFAULT_GROUP"
	// DefaultConfigGroup is the group of Java Dubbo's config center (and dubbo-admin's rules).
	DefaultConfigGroup = "dubbo"
	// PublicNamespace is Nacos's default namespace: its id is empty.
	PublicNamespace = "public"
)

// ParseAddress parses a Nacos registry address as Dubbo applications write it:
//
//	nacos://10.0.0.1:8848
//	nacos://10.0.0.1:8848?backup=10.0.0.2:8848,10.0.0.3:8848&namespace=dev&group=DEFAULT_GROUP
//	nacos://user:secret@10.0.0.1:8848?name=nacos-east
//
// Parameters: backup (more servers), namespace (namespace id; "public" or unset: the
// default namespace), group (the Nacos group, default DEFAULT_GROUP), username and
// password (or user:password@), accessKey and secretKey, name (default: the first
// server), registry-type (interface, service or all). Other Dubbo parameters are
// accepted and ignored.
func ParseAddress(addr string) (Config, error) {
	c := Config{Address: regaddr.Redact(addr), Group: DefaultGroup}
	scheme, _, _ := strings.Cut(strings.TrimSpace(addr), "://")
	if !strings.EqualFold(scheme, "nacos") {
		return c, fmt.Errorf("registry address %q: not a nacos:// address", c.Address)
	}
	a, err := regaddr.Parse(addr, defaultPort)
	if err != nil {
		return c, err
	}
	for _, s := range a.Servers {
		_, port, _ := net.SplitHostPort(s)
		if p, _ := strconv.Atoi(port); p+1000 > 65535 {
			return c, fmt.Errorf("registry address %q: server %s: its gRPC port (port+1000) is above 65535", c.Address, s)
		}
	}
	c.Servers, c.Levels = a.Servers, a.Levels
	p := a.Params
	c.Namespace = p.Get("namespace")
	if strings.EqualFold(c.Namespace, PublicNamespace) {
		c.Namespace = ""
	}
	if g := p.Get("group"); g != "" {
		c.Group = g
	}
	c.Username, c.Password = a.User, a.Password
	if v := p.Get("username"); v != "" {
		c.Username = v
	}
	if v := p.Get("password"); v != "" {
		c.Password = v
	}
	c.AccessKey, c.SecretKey = p.Get("accessKey"), p.Get("secretKey")
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return c, fmt.Errorf("registry address %q: accessKey and secretKey go together", c.Address)
	}
	if c.Password != "" && c.Username == "" {
		return c, fmt.Errorf("registry address %q: a password without a username", c.Address)
	}
	switch cc := p.Get("config-center"); cc {
	case "", "true":
		c.ConfigGroup = DefaultConfigGroup
		if g := p.Get("config-group"); g != "" {
			c.ConfigGroup = g
		}
	case "false":
	default:
		return c, fmt.Errorf("registry address %q: config-center=%q: want true or false", c.Address, cc)
	}
	c.Name = p.Get("name")
	if c.Name == "" {
		c.Name = c.Servers[0]
	}
	return c, nil
}

// NamespaceName is the namespace as shown to operators.
func (c Config) NamespaceName() string {
	if c.Namespace == "" {
		return PublicNamespace
	}
	return c.Namespace
}
