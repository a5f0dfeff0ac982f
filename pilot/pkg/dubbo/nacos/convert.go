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

package nacos

import (
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/nacos-group/nacos-sdk-go/v2/model"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/appdiscovery"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

// Kind is what a Nacos service is to Dubbo.
type Kind int

const (
	// KindOther is not Dubbo's, or a Dubbo category that has no providers (consumers,
	// configurators, routers): never subscribed.
	KindOther Kind = iota
	// KindInterface is an interface-level service: providers:<interface>:<version>:<group>.
	KindInterface
	// KindApplication may be a Dubbo 3 application: its instances say (dubbo.metadata.revision).
	KindApplication
)

// ServiceName is a Nacos service name, classified.
type ServiceName struct {
	Kind Kind
	// Interface, Version and Group of an interface-level service.
	Interface, Version, Group string
}

// Dubbo's categories in Nacos service names (category:interface:version:group).
var otherCategories = []string{"consumers:", "configurators:", "routers:"}

// ParseServiceName classifies a Nacos service name. Dubbo 2.7.3+ and 3 write
// providers:<interface>:<version>:<group> (empty version and group kept:
// providers:com.example.GreetService::); older releases omit the empty parts.
func ParseServiceName(s string) ServiceName {
	if rest, ok := strings.CutPrefix(s, "providers:"); ok {
		parts := strings.SplitN(rest, ":", 3)
		sn := ServiceName{Kind: KindInterface, Interface: parts[0]}
		if len(parts) > 1 {
			sn.Version = parts[1]
		}
		if len(parts) > 2 {
			sn.Group = parts[2]
		}
		if !provider.ValidInterface(sn.Interface) {
			return ServiceName{Kind: KindOther}
		}
		return sn
	}
	for _, p := range otherCategories {
		if strings.HasPrefix(s, p) {
			return ServiceName{Kind: KindOther}
		}
	}
	if s == "" || strings.ContainsAny(s, ":/ ") {
		return ServiceName{Kind: KindOther}
	}
	return ServiceName{Kind: KindApplication}
}

// internalPrefixes are metadata keys servers add that are not Dubbo's (Polaris's
// Nacos-compatible API adds internal-nacos-*): never URL parameters, never labels.
var internalPrefixes = []string{"internal-nacos-"}

// MaxMetadata bounds the metadata of one instance we decode (bytes of keys and values).
const MaxMetadata = 64 << 10

// outReason is why a listed instance is out of rotation (the reason label of
// dubbo_nacos_instances_out_of_rotation).
type outReason string

const (
	outDisabled  outReason = "disabled"
	outUnhealthy outReason = "unhealthy"
	outWeight    outReason = "nacos_weight_zero"
)

// inRotation says whether Nacos serves the instance to its own clients: enabled and
// healthy. Dubbo's Nacos registry lists only those too.
func inRotation(in *model.Instance) (bool, outReason) {
	switch {
	case !in.Enable:
		return false, outDisabled
	case !in.Healthy:
		return false, outUnhealthy
	}
	return true, ""
}

func metadataSize(md map[string]string) int {
	n := 0
	for k, v := range md {
		n += len(k) + len(v)
	}
	return n
}

// ProviderURL makes the provider URL of an interface-level instance. The instance
// metadata carries the provider URL's parameters plus protocol and path, as Dubbo's
// Nacos registry writes them.
//
// Weight: the URL's weight parameter wins (Dubbo's own consumers balance on it); an
// instance without one takes its Nacos weight scaled to Dubbo's (Nacos 1.0 = Dubbo's
// default 100), so a weight an operator sets in the Nacos console still counts. A Nacos
// weight of 0 is weight=0 (out of rotation unless every provider is at 0).
func ProviderURL(sn ServiceName, in *model.Instance) (*provider.URL, error) {
	if n := metadataSize(in.Metadata); n > MaxMetadata {
		return nil, &provider.Error{Reason: provider.ReasonTooLong, Msg: fmt.Sprintf("instance metadata is %d bytes, more than %d", n, MaxMetadata)}
	}
	ip := net.ParseIP(in.Ip)
	if ip == nil || ip.IsUnspecified() || ip.IsMulticast() {
		return nil, &provider.Error{Reason: provider.ReasonHost, Msg: fmt.Sprintf("instance ip %q is not a usable IP address", clip(in.Ip))}
	}
	if in.Port == 0 || in.Port > 65535 {
		return nil, &provider.Error{Reason: provider.ReasonPort, Msg: fmt.Sprintf("instance port %d is not in 1..65535", in.Port)}
	}
	params := make(map[string]string, len(in.Metadata)+2)
	for k, v := range in.Metadata {
		if !internal(k) {
			params[k] = v
		}
	}
	protocol := params["protocol"]
	if protocol == "" {
		protocol = "dubbo"
	}
	// dubbo-go writes the path with a leading slash (/com.example.GreetService).
	path := strings.TrimPrefix(params["path"], "/")
	if path == "" {
		path = sn.Interface
	}
	if params["interface"] == "" {
		params["interface"] = sn.Interface
	}
	// The service name's version and group are what Dubbo's consumers subscribe by.
	if params["version"] == "" && sn.Version != "" {
		params["version"] = sn.Version
	}
	if params["group"] == "" && sn.Group != "" {
		params["group"] = sn.Group
	}
	if _, ok := params["weight"]; !ok && in.Weight != 1 {
		params["weight"] = strconv.FormatInt(nacosWeight(in.Weight), 10)
	}
	if params["side"] == "consumer" || params["category"] == "consumers" {
		return nil, &provider.Error{Reason: provider.ReasonConsumer, Msg: "a consumer instance in a providers: service"}
	}
	return &provider.URL{Protocol: protocol, IP: ip.String(), Port: uint32(in.Port), Path: path, Params: params}, nil
}

// nacosWeight scales a Nacos weight (float, 1.0 by default) to Dubbo's (int, 100).
func nacosWeight(w float64) int64 {
	if math.IsNaN(w) || w <= 0 {
		return 0
	}
	if w > 1e6 {
		w = 1e6
	}
	return int64(math.Round(w * 100))
}

func internal(k string) bool {
	for _, p := range internalPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// isDubboInstance says whether an instance of a candidate application service is a
// Dubbo 3 application instance: Dubbo writes its metadata revision into every one.
// Other services in the namespace (Spring Cloud, gRPC apps) are not Dubbo's and are
// left alone, without a rejection.
func isDubboInstance(in *model.Instance) bool {
	_, ok := in.Metadata[appdiscovery.KeyRevision]
	return ok
}

// AppInstance decodes an application-level instance for the shared resolution.
func AppInstance(app string, in *model.Instance) appdiscovery.Decoded {
	d := appdiscovery.Decoded{Key: instanceKey(in)}
	if n := metadataSize(in.Metadata); n > MaxMetadata {
		d.Err = &appdiscovery.Error{Reason: appdiscovery.ReasonInstanceJSON, Msg: fmt.Sprintf("instance metadata is %d bytes, more than %d", n, MaxMetadata)}
		return d
	}
	md := make(map[string]string, len(in.Metadata))
	for k, v := range in.Metadata {
		if !internal(k) {
			md[k] = v
		}
	}
	port := int(in.Port)
	if in.Port > 65535 {
		port = -1
	}
	d.Instance, d.Err = appdiscovery.NewInstance(app, in.Ip, port, md)
	return d
}

// instanceKey identifies an instance's content (what the application level decodes).
func instanceKey(in *model.Instance) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%d|%t|%t|%g", in.Ip, in.Port, in.Enable, in.Healthy, in.Weight)
	for _, k := range slices.Sorted(maps.Keys(in.Metadata)) {
		b.WriteString("|")
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(in.Metadata[k])
	}
	return b.String()
}

// instanceName names an instance within its Nacos service.
func instanceName(in *model.Instance) string {
	return net.JoinHostPort(in.Ip, strconv.FormatUint(in.Port, 10))
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
