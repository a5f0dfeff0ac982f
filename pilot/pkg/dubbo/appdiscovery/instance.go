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

// Package appdiscovery resolves Dubbo 3 application-level registrations into the
// provider URLs of each interface, the way a Dubbo 3 consumer does (docs/registry.md,
// "Application-level discovery"):
//
//  1. a registry lists the instances of each application (ZooKeeper:
//     /services/<app>/<ip:port>, a Curator ServiceInstance JSON body; Nacos: the
//     instances of service <app>), each carrying its metadata revision and its
//     protocol ports (dubbo.endpoints);
//  2. the metadata of each (application, revision) says which interfaces the instance
//     serves, with their version, group, protocol and parameters. It is fetched once
//     and cached: from the registry's metadata report when the instance says
//     dubbo.metadata.storage-type=remote, else by a Dubbo call to the instance's
//     MetadataService;
//  3. every service of the metadata, on every instance port of its protocol, is one
//     provider URL, handed to the Dubbo registry like an interface-level node.
//
// The package knows no registry: a registry feeds it instance bodies and gives it a way
// to read remote metadata (Fetcher). ZooKeeper does today; Nacos reuses it as is.
package appdiscovery

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

// Metadata keys of a Dubbo 3 service instance.
const (
	KeyEndpoints       = "dubbo.endpoints"
	KeyRevision        = "dubbo.metadata.revision"
	KeyStorageType     = "dubbo.metadata.storage-type"
	KeyMetadataService = "dubbo.metadata-service.url-params"
	KeyMetadataVersion = "meta-v"

	StorageLocal  = "local"
	StorageRemote = "remote"

	// EmptyRevision is what an instance that exports nothing carries (Dubbo skips it).
	EmptyRevision = "0"

	// MaxInstanceBody bounds an instance node we decode.
	MaxInstanceBody = 64 << 10
)

// Reason classifies a rejected instance or revision: the "reason" label of metrics. An
// Error is a rejected instance or an unresolvable revision. Both are the provider URL
// decoder's types, with reasons of their own.
type (
	Reason = provider.Reason
	Error  = provider.Error
)

const (
	ReasonInstanceJSON    Reason = "bad_instance"
	ReasonInstanceAddress Reason = "bad_address"
	ReasonEndpoints       Reason = "bad_endpoints"
	ReasonNoRevision      Reason = "no_revision"
	ReasonMetadataFetch   Reason = "metadata_unreachable"
	ReasonMetadataBody    Reason = "bad_metadata"
	ReasonMetadataService Reason = "bad_metadata_service"
)

func errorf(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf is the reason of err, "invalid" when it has none.
func ReasonOf(err error) string {
	if e, ok := err.(*Error); ok {
		return string(e.Reason)
	}
	return "invalid"
}

// Endpoint is one protocol port of an instance (dubbo.endpoints).
type Endpoint struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

// Instance is one application instance as registered, decoded.
type Instance struct {
	App         string
	Address     string // IP literal
	Port        uint32 // the instance node's own port
	Revision    string
	StorageType string // StorageLocal or StorageRemote
	// Endpoints are the protocol ports; nil when the instance lists none (then every
	// service is served on Port, as Dubbo consumers do).
	Endpoints []Endpoint
	// MetadataService are the parameters of the instance's MetadataService
	// (protocol, port, version, group, ...), for local metadata.
	MetadataService map[string]string
	Metadata        map[string]string
}

// curatorInstance is Curator's ServiceInstance JSON, as Dubbo 3 writes it in ZooKeeper.
type curatorInstance struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Address string `json:"address"`
	Port    *int   `json:"port"`
	Payload *struct {
		Metadata map[string]string `json:"metadata"`
	} `json:"payload"`
}

// ParseCuratorInstance decodes a ZooKeeper instance node body (/services/<app>/<ip:port>).
func ParseCuratorInstance(app string, body []byte) (*Instance, error) {
	if len(body) > MaxInstanceBody {
		return nil, errorf(ReasonInstanceJSON, "instance body is %d bytes, more than %d", len(body), MaxInstanceBody)
	}
	var ci curatorInstance
	if err := json.Unmarshal(body, &ci); err != nil {
		return nil, errorf(ReasonInstanceJSON, "instance body is not Curator JSON: %v", err)
	}
	if ci.Port == nil {
		return nil, errorf(ReasonInstanceJSON, "instance body has no port")
	}
	var md map[string]string
	if ci.Payload != nil {
		md = ci.Payload.Metadata
	}
	if ci.Name != "" && ci.Name != app {
		return nil, errorf(ReasonInstanceJSON, "instance of application %q listed under %q", trunc(ci.Name), app)
	}
	return NewInstance(app, ci.Address, *ci.Port, md)
}

// NewInstance validates an instance from its parts (any registry).
func NewInstance(app, address string, port int, md map[string]string) (*Instance, error) {
	ip := net.ParseIP(address)
	if ip == nil || ip.IsUnspecified() || ip.IsMulticast() {
		return nil, errorf(ReasonInstanceAddress, "address %q is not a usable IP address", trunc(address))
	}
	if port <= 0 || port > 65535 {
		return nil, errorf(ReasonInstanceAddress, "port %d is not in 1..65535", port)
	}
	in := &Instance{App: app, Address: ip.String(), Port: uint32(port), Metadata: md}
	in.Revision = md[KeyRevision]
	if in.Revision == "" {
		return nil, errorf(ReasonNoRevision, "no %s in the instance metadata", KeyRevision)
	}
	if !validRevision(in.Revision) {
		// It names a metadata node (/<root>/<app>/<revision>): a plain token only.
		return nil, errorf(ReasonNoRevision, "%s %q is not a revision token", KeyRevision, trunc(in.Revision))
	}
	in.StorageType = StorageLocal
	if strings.EqualFold(md[KeyStorageType], StorageRemote) {
		in.StorageType = StorageRemote
	}
	if raw := md[KeyEndpoints]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &in.Endpoints); err != nil {
			return nil, errorf(ReasonEndpoints, "%s is not a JSON list of {port, protocol}: %v", KeyEndpoints, err)
		}
		for _, e := range in.Endpoints {
			if e.Port <= 0 || e.Port > 65535 || e.Protocol == "" {
				return nil, errorf(ReasonEndpoints, "%s entry {port: %d, protocol: %q} is not a protocol port", KeyEndpoints, e.Port, trunc(e.Protocol))
			}
		}
		if len(in.Endpoints) == 0 {
			return nil, errorf(ReasonEndpoints, "%s lists no port", KeyEndpoints)
		}
	}
	if raw := md[KeyMetadataService]; raw != "" {
		// Dubbo writes string values; older releases nest them per protocol
		// ({"dubbo": {"port": "20880", ...}}).
		var flat map[string]any
		if err := json.Unmarshal([]byte(raw), &flat); err != nil {
			return nil, errorf(ReasonMetadataService, "%s is not a JSON object: %v", KeyMetadataService, err)
		}
		in.MetadataService = map[string]string{}
		for k, v := range flat {
			switch v := v.(type) {
			case string:
				in.MetadataService[k] = v
			case float64:
				in.MetadataService[k] = strconv.FormatFloat(v, 'f', -1, 64)
			case map[string]any:
				in.MetadataService["protocol"] = k
				for k2, v2 := range v {
					if s, ok := v2.(string); ok {
						in.MetadataService[k2] = s
					}
				}
			}
		}
	}
	return in, nil
}

// ports returns the instance ports serving protocol, given the port the metadata
// gives the service (0: unknown).
func (in *Instance) ports(protocol string, metaPort int) []uint32 {
	if in.Endpoints == nil {
		// No dubbo.endpoints: the node's own port serves the services the metadata puts
		// on it (or every service, when the metadata has no ports, as Dubbo consumers do).
		if metaPort == 0 || uint32(metaPort) == in.Port {
			return []uint32{in.Port}
		}
		return nil
	}
	var out []uint32
	for _, e := range in.Endpoints {
		if e.Protocol == protocol {
			out = append(out, uint32(e.Port))
		}
	}
	return out
}

// validRevision accepts what Dubbo writes (a hex digest) and other plain tokens of at
// most 256 characters of [A-Za-z0-9._-], not "." or "..".
func validRevision(r string) bool {
	if len(r) > 256 || r == "." || r == ".." {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
