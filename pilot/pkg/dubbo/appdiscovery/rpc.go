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
	"context"
	"strings"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/dubbowire"
)

// The MetadataService every Dubbo 3 instance exports for local metadata (v1, Hessian2).
const (
	MetadataServiceName    = "org.apache.dubbo.metadata.MetadataService"
	MetadataServiceVersion = "1.0.0"
	getMetadataInfo        = "getMetadataInfo"
)

// FetchMetadataRPC calls getMetadataInfo(revision) on the instance's MetadataService over
// the dubbo protocol (group: the application), as Dubbo's consumers do. The answer is a
// MetadataInfo object, or its JSON as a string from older Java providers.
func FetchMetadataRPC(ctx context.Context, in *Instance) (*MetadataInfo, error) {
	ps := in.MetadataService
	proto := strings.ToLower(ps["protocol"])
	if proto == "" {
		proto = "dubbo"
	}
	if proto != "dubbo" {
		return nil, errorf(ReasonMetadataService, "MetadataService over %q: only dubbo is supported (use remote metadata)", trunc(proto))
	}
	port := ps["port"]
	if port == "" {
		return nil, errorf(ReasonMetadataService, "MetadataService parameters have no port")
	}
	group := ps["group"]
	if group == "" {
		group = in.App
	}
	version := ps["version"]
	if version == "" {
		version = MetadataServiceVersion
	}
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	v, err := dubbowire.InvokeValue(ctx, joinHostPortString(in.Address, port), dubbowire.Call{
		Service: MetadataServiceName, Version: version, Group: group, Method: getMetadataInfo,
		Args: []any{in.Revision},
	}, timeout)
	if err != nil {
		return nil, errorf(ReasonMetadataFetch, "MetadataService at %s:%s: %v", in.Address, port, err)
	}
	switch m := v.(type) {
	case MetadataInfo: // Hessian2 decodes a registered class into an interface by value
		return &m, m.validate(in.App, in.Revision)
	case *MetadataInfo:
		if m == nil {
			return nil, errorf(ReasonMetadataBody, "MetadataService answered null for revision %s", short(in.Revision))
		}
		return m, m.validate(in.App, in.Revision)
	case string:
		return ParseMetadataJSON(in.App, in.Revision, []byte(m))
	case nil:
		return nil, errorf(ReasonMetadataBody, "MetadataService answered null for revision %s", short(in.Revision))
	default:
		return nil, errorf(ReasonMetadataBody, "MetadataService answered a %T, not a MetadataInfo", v)
	}
}

func joinHostPortString(ip, port string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + port
	}
	return ip + ":" + port
}
