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

package appdiscovery

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	hessian "github.com/apache/dubbo-go-hessian2"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

const (
	// MaxMetadataBody bounds a metadata document we decode (remote metadata node or
	// the MetadataService's answer).
	MaxMetadataBody = 4 << 20
	// MaxServices bounds the services of one revision.
	MaxServices = 10_000
)

// MetadataInfo is org.apache.dubbo.metadata.MetadataInfo: what an application revision
// serves. The JSON form is the remote metadata node; the Hessian2 form is the answer of
// MetadataService.getMetadataInfo (field names as Dubbo's Java and Go classes).
type MetadataInfo struct {
	App      string                  `json:"app" hessian:"app"`
	Revision string                  `json:"revision" hessian:"revision"`
	Tag      string                  `json:"tag,omitempty" hessian:"tag"`
	Services map[string]*ServiceInfo `json:"services" hessian:"services"`
}

// JavaClassName implements hessian.POJO.
func (*MetadataInfo) JavaClassName() string { return "org.apache.dubbo.metadata.MetadataInfo" }

// ServiceInfo is one exported service of a revision (MetadataInfo$ServiceInfo).
type ServiceInfo struct {
	Name     string            `json:"name" hessian:"name"`
	Group    string            `json:"group,omitempty" hessian:"group"`
	Version  string            `json:"version,omitempty" hessian:"version"`
	Protocol string            `json:"protocol" hessian:"protocol"`
	Port     int               `json:"port,omitempty" hessian:"port"`
	Path     string            `json:"path,omitempty" hessian:"path"`
	Params   map[string]string `json:"params,omitempty" hessian:"params"`
}

// JavaClassName implements hessian.POJO.
func (*ServiceInfo) JavaClassName() string {
	return "org.apache.dubbo.metadata.MetadataInfo$ServiceInfo"
}

func init() {
	hessian.RegisterPOJO(&MetadataInfo{})
	hessian.RegisterPOJO(&ServiceInfo{})
}

// ParseMetadataJSON decodes a metadata document (remote metadata, or the JSON string old
// Java providers answer getMetadataInfo with) of the given application revision.
func ParseMetadataJSON(app, revision string, body []byte) (*MetadataInfo, error) {
	if len(body) > MaxMetadataBody {
		return nil, errorf(ReasonMetadataBody, "metadata is %d bytes, more than %d", len(body), MaxMetadataBody)
	}
	m := &MetadataInfo{}
	if err := json.Unmarshal(body, m); err != nil {
		return nil, errorf(ReasonMetadataBody, "metadata is not MetadataInfo JSON: %v", err)
	}
	return m, m.validate(app, revision)
}

// validate checks a decoded document against what was asked for.
func (m *MetadataInfo) validate(app, revision string) error {
	if m.App == "" && m.Revision == "" {
		return errorf(ReasonMetadataBody, "not a MetadataInfo: no app and no revision")
	}
	if m.App != "" && m.App != app {
		return errorf(ReasonMetadataBody, "metadata of application %q, not %q", trunc(m.App), app)
	}
	if m.Revision != "" && m.Revision != revision {
		return errorf(ReasonMetadataBody, "metadata of revision %q, not %q", trunc(m.Revision), trunc(revision))
	}
	if len(m.Services) > MaxServices {
		return errorf(ReasonMetadataBody, "metadata lists %d services, more than %d", len(m.Services), MaxServices)
	}
	for k, s := range m.Services {
		if s == nil {
			return errorf(ReasonMetadataBody, "service %q is null", trunc(k))
		}
	}
	return nil
}

// Resolved is one instance with its revision's metadata: the provider URLs it serves.
type Resolved struct {
	// URLs are keyed by a stable name: one provider instance of one interface on one
	// protocol port. The instance nodes Dubbo writes per protocol port of one process
	// give the same names, so they count once.
	URLs map[string]*provider.URL
	// Skipped lists the services of the metadata that are not served and why.
	Skipped []string
}

// URLs lists what an instance serves according to its revision's metadata, as Dubbo's
// consumers build them (one URL per service and instance port of its protocol).
func URLs(in *Instance, m *MetadataInfo) Resolved {
	out := Resolved{URLs: map[string]*provider.URL{}}
	keys := make([]string, 0, len(m.Services))
	for k := range m.Services {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s := m.Services[k]
		name := s.Name
		if name == "" {
			name = s.Params["interface"]
		}
		if !provider.ValidInterface(name) {
			out.Skipped = append(out.Skipped, fmt.Sprintf("service %q: %q is not an interface name", trunc(k), trunc(name)))
			continue
		}
		proto := strings.ToLower(s.Protocol)
		if proto == "" {
			proto = strings.ToLower(s.Params["protocol"])
		}
		ports := in.ports(proto, s.Port)
		if len(ports) == 0 {
			out.Skipped = append(out.Skipped, fmt.Sprintf("service %q: the instance lists no %q port", trunc(k), trunc(proto)))
			continue
		}
		params := maps.Clone(s.Params)
		if params == nil {
			params = map[string]string{}
		}
		params["interface"] = name
		setIf(params, "version", s.Version)
		setIf(params, "group", s.Group)
		if params["application"] == "" {
			params["application"] = in.App
		}
		// Dubbo 3 writes weight=0 as "not set" in metadata; its consumers use the
		// default weight then.
		if w, err := strconv.Atoi(params["weight"]); err == nil && w <= 0 {
			delete(params, "weight")
		}
		for _, p := range ports {
			u := &provider.URL{Protocol: proto, IP: in.Address, Port: p, Path: name, Params: params}
			out.URLs[nodeName(in.App, u)] = u
		}
	}
	return out
}

func setIf(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// nodeName names one provider of the application level: the instance, the protocol
// port and the service key.
func nodeName(app string, u *provider.URL) string {
	return fmt.Sprintf("%s://%s/%s/%s?group=%s&version=%s", u.Protocol,
		joinHostPort(u.IP, u.Port), app, u.Path, u.Params["group"], u.Params["version"])
}

func joinHostPort(ip string, port uint32) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + strconv.Itoa(int(port))
	}
	return ip + ":" + strconv.Itoa(int(port))
}
