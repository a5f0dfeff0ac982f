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

package dubbo3

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/go-zookeeper/zk"
)

// What a Dubbo 3 provider writes in ZooKeeper, read back for assertions. These are test
// readers of the observed format (docs: ../shared/specs/dubbo3-nacos.md §2), not the
// registry's decoders.

// Instance is an application-level instance node, /services/<app>/<ip:port>
// (Curator's ServiceInstance JSON).
type Instance struct {
	Path    string `json:"-"`
	Raw     []byte `json:"-"`
	Name    string `json:"name"`
	ID      string `json:"id"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	Payload struct {
		Class    string            `json:"@class"`
		ID       string            `json:"id"`
		Name     string            `json:"name"`
		Metadata map[string]string `json:"metadata"`
	} `json:"payload"`
}

// Well-known instance metadata keys.
const (
	KeyEndpoints        = "dubbo.endpoints"
	KeyRevision         = "dubbo.metadata.revision"
	KeyStorageType      = "dubbo.metadata.storage-type"
	KeyMetadataURLParam = "dubbo.metadata-service.url-params"
)

// Metadata returns payload.metadata.
func (i Instance) Metadata() map[string]string { return i.Payload.Metadata }

// Endpoint is one entry of dubbo.endpoints.
type Endpoint struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

// Endpoints decodes dubbo.endpoints.
func (i Instance) Endpoints() ([]Endpoint, error) {
	var eps []Endpoint
	if err := json.Unmarshal([]byte(i.Payload.Metadata[KeyEndpoints]), &eps); err != nil {
		return nil, fmt.Errorf("%s %s: %v", i.Path, KeyEndpoints, err)
	}
	return eps, nil
}

// MetadataServiceParams decodes dubbo.metadata-service.url-params (protocol, port, group,
// version, serialization, release).
func (i Instance) MetadataServiceParams() (map[string]string, error) {
	m := map[string]string{}
	if err := json.Unmarshal([]byte(i.Payload.Metadata[KeyMetadataURLParam]), &m); err != nil {
		return nil, fmt.Errorf("%s %s: %v", i.Path, KeyMetadataURLParam, err)
	}
	return m, nil
}

// ReadInstances reads /services/<app>/*, sorted by node name.
func ReadInstances(conn *zk.Conn, app string) ([]Instance, error) {
	dir := "/services/" + app
	children, _, err := conn.Children(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", dir, err)
	}
	sort.Strings(children)
	out := make([]Instance, 0, len(children))
	for _, c := range children {
		p := path.Join(dir, c)
		b, _, err := conn.Get(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		in := Instance{Path: p, Raw: b}
		if err := json.Unmarshal(b, &in); err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		out = append(out, in)
	}
	return out, nil
}

// ReadMapping reads /dubbo/mapping/<iface>: the apps exporting the interface.
func ReadMapping(conn *zk.Conn, iface string) ([]string, error) {
	p := "/dubbo/mapping/" + iface
	b, _, err := conn.Get(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	var apps []string
	for _, a := range strings.Split(string(b), ",") {
		if a = strings.TrimSpace(a); a != "" {
			apps = append(apps, a)
		}
	}
	return apps, nil
}

// MetadataInfo is an application's metadata for one revision: the remote metadata JSON
// (/dubbo/<app>/<revision>), or MetadataService.getMetadataInfo's answer
// (org.apache.dubbo.metadata.MetadataInfo).
type MetadataInfo struct {
	App      string                 `json:"app"`
	Revision string                 `json:"revision"`
	Tag      string                 `json:"tag,omitempty"`
	Services map[string]ServiceInfo `json:"services"`
}

// ServiceInfo is one exported service of MetadataInfo
// (org.apache.dubbo.metadata.MetadataInfo$ServiceInfo), keyed in MetadataInfo.Services by
// <iface>[:<group>][:<version>]:<protocol>... as the provider writes it.
type ServiceInfo struct {
	Name     string            `json:"name"`
	Group    string            `json:"group,omitempty"`
	Version  string            `json:"version,omitempty"`
	Protocol string            `json:"protocol"`
	Port     int               `json:"port"`
	Path     string            `json:"path"`
	Params   map[string]string `json:"params"`
}

// ReadRemoteMetadata reads /dubbo/<app>/<revision> (remote metadata storage).
func ReadRemoteMetadata(conn *zk.Conn, app, revision string) (*MetadataInfo, []byte, error) {
	p := "/dubbo/" + app + "/" + revision
	b, _, err := conn.Get(p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", p, err)
	}
	var m MetadataInfo
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, b, fmt.Errorf("%s: %v", p, err)
	}
	return &m, b, nil
}

// ReadProviders reads /dubbo/<iface>/providers (interface level) and returns the decoded
// provider URLs, sorted.
func ReadProviders(conn *zk.Conn, iface string) ([]string, error) {
	dir := "/dubbo/" + iface + "/providers"
	children, _, err := conn.Children(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", dir, err)
	}
	out := make([]string, 0, len(children))
	for _, c := range children {
		u, err := url.QueryUnescape(c)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %v", dir, c, err)
		}
		out = append(out, u)
	}
	sort.Strings(out)
	return out, nil
}
