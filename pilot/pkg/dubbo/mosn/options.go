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

// Package mosn generates the xDS that MOSN sidecars need to route Dubbo calls, from
// ordinary Istio services, VirtualServices and DestinationRules, with no EnvoyFilter.
//
// A proxy whose node metadata has GENERATOR=mosn (ISTIO_META_GENERATOR=mosn) is served
// by generators registered as Generators["mosn/<type>"], which wrap upstream's: they
// keep every upstream resource the node gets, drop what would collide with the Dubbo
// listeners, and add the Dubbo listeners, route configuration and inbound cluster. The
// shapes follow docs/reference/mosn-xds-facts.md (verified against MOSN v1.6 with the
// istio1106 xDS client). Every other node gets upstream's output, untouched.
package mosn

import (
	"fmt"
	"strconv"

	"istio.io/istio/pilot/pkg/model"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/dubbolog"
)

var scope = dubbolog.Scope

// GeneratorName is the node metadata GENERATOR value of MOSN sidecars.
const GeneratorName = "mosn"

// Node metadata keys (ISTIO_META_<KEY> on the pod) for per-proxy knobs.
const (
	MetaOutboundPort = "DUBBO_OUTBOUND_PORT" // the consumer app calls 127.0.0.1:<port>
	MetaInboundPort  = "DUBBO_INBOUND_PORT"  // explicit mode: MOSN receives provider traffic on 0.0.0.0:<port>
	MetaAppPort      = "DUBBO_APP_PORT"      // explicit mode: the provider app listens on 127.0.0.1:<port>
	MetaInbound      = "DUBBO_INBOUND"       // "true"/"false": force the explicit inbound listener on/off
)

// Names of the resources MOSN needs. MOSN decodes attachments and group only under
// listeners named egress_dubbo and ingress_dubbo (docs/reference/mosn-xds-facts.md), and
// there a caller's attachments also overwrite the service and method headers: the
// consumer side needs them (routing by attachment), the provider side must not have
// them (authorization reads service and method), so its listener has another name.
const (
	EgressListenerName  = "egress_dubbo"
	IngressListenerName = "inbound_dubbo"
	IngressRouteName    = "inbound_dubbo"
)

// Options are the istiod-wide defaults of the per-proxy knobs.
type Options struct {
	OutboundPort uint32 // default 20881
	InboundPort  uint32 // default 20882
	AppPort      uint32 // default 20880
	// NoRouteCache builds the Dubbo route configuration for every proxy instead of once
	// per scope (routecache.go): a switch for operators, and the miss case of benchmarks.
	NoRouteCache bool
}

// Defaults fills zero values.
func (o *Options) Defaults() {
	if o.OutboundPort == 0 {
		o.OutboundPort = 20881
	}
	if o.InboundPort == 0 {
		o.InboundPort = 20882
	}
	if o.AppPort == 0 {
		o.AppPort = 20880
	}
}

// knobs are one proxy's effective settings.
type knobs struct {
	outbound, inbound, app uint32
	inboundMode            string // "", "true" or "false" (DUBBO_INBOUND)
}

// RouteName is the name of the outbound Dubbo route configuration for a port. It must
// not parse as a port number, contain ':' or start with unix:// (upstream RDS would
// claim it), and it never does.
func RouteName(outboundPort uint32) string { return fmt.Sprintf("dubbo-%d", outboundPort) }

// InboundClusterName is the STATIC cluster behind inbound_dubbo (explicit mode).
func InboundClusterName(appPort uint32) string { return fmt.Sprintf("inbound|%d||", appPort) }

// IsMOSN reports whether a proxy is a MOSN sidecar.
func IsMOSN(p *model.Proxy) bool {
	return p != nil && p.Metadata != nil && p.Metadata.Generator == GeneratorName
}

// knobs returns the proxy's effective settings. A bad value is logged once per proxy
// and value (generation runs per proxy per push), not on every push.
func (g *Generator) knobs(p *model.Proxy) knobs {
	o := g.opts
	k := knobs{outbound: o.OutboundPort, inbound: o.InboundPort, app: o.AppPort}
	if p.Metadata == nil {
		return k
	}
	port := func(key string, def uint32) uint32 {
		v, ok := p.Metadata.Raw[key]
		if !ok {
			return def
		}
		s := fmt.Sprint(v)
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 || n > 65535 {
			g.logOnce("proxy %s: node metadata %s=%q is not a port; using %d", p.ID, key, s, def)
			return def
		}
		return uint32(n)
	}
	k.outbound = port(MetaOutboundPort, k.outbound)
	k.inbound = port(MetaInboundPort, k.inbound)
	k.app = port(MetaAppPort, k.app)
	if v, ok := p.Metadata.Raw[MetaInbound]; ok {
		k.inboundMode = fmt.Sprint(v)
	}
	return k
}
