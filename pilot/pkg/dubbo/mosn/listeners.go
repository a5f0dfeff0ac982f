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

package mosn

import (
	"fmt"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/plugin/authn"
	"istio.io/istio/pilot/pkg/networking/util"
	"istio.io/istio/pilot/pkg/util/protoconv"
	"istio.io/istio/pkg/wellknown"
)

const connectTimeout = 10 * time.Second

// boundListener is a listener MOSN binds itself: deprecated_v1.bind_to_port is the only
// bind flag MOSN reads (docs/reference/mosn-xds-facts.md), with exactly one filter chain holding an HTTP
// connection manager, which MOSN turns into its Auto proxy (Dubbo detected by its magic).
func boundListener(name, ip string, port uint32, dir core.TrafficDirection, m *hcm.HttpConnectionManager) *listener.Listener {
	return &listener.Listener{
		Name:             name,
		Address:          util.BuildAddress(ip, port),
		DeprecatedV1:     &listener.Listener_DeprecatedV1{BindToPort: wrapperspb.Bool(true)},
		TrafficDirection: dir,
		FilterChains: []*listener.FilterChain{{
			Filters: []*listener.Filter{{
				Name:       wellknown.HTTPConnectionManager,
				ConfigType: &listener.Filter_TypedConfig{TypedConfig: protoconv.MessageToAny(m)},
			}},
		}},
	}
}

// egressListener: the consumer app calls 127.0.0.1:<outbound port>; routes come over RDS.
func egressListener(k knobs) *listener.Listener {
	return boundListener(EgressListenerName, "127.0.0.1", k.outbound, core.TrafficDirection_OUTBOUND, &hcm.HttpConnectionManager{
		StatPrefix: fmt.Sprintf("dubbo_outbound_%d", k.outbound),
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			RouteConfigName: RouteName(k.outbound),
			ConfigSource: &core.ConfigSource{
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
				ResourceApiVersion:    core.ApiVersion_V3,
			},
		}},
	})
}

// ingressListener (explicit mode): consumers' sidecars reach the provider on
// 0.0.0.0:<inbound port>; every call the RBAC filters let through goes to the app on
// 127.0.0.1:<app port>. TLS when the app port is STRICT: a bound listener keeps one
// filter chain (docs/reference/mosn-xds-facts.md §9.4), so PERMISSIVE is plaintext here
// (the intercepted virtualInbound accepts both).
func (g *Generator) ingressListener(proxy *model.Proxy, push *model.PushContext, k knobs) *listener.Listener {
	p := inboundPort{port: k.app, kind: dubboPortKind}
	l := boundListener(IngressListenerName, "0.0.0.0", k.inbound, core.TrafficDirection_INBOUND,
		g.inboundHCM(proxy, newWorkloadAuthz(push, proxy), p, IngressRouteName, InboundClusterName(k.app)))
	switch ts, plaintext := inboundTLS(authn.NewBuilder(push, proxy), k.app, g.sdsPath(proxy)); {
	case ts != nil && !plaintext:
		l.FilterChains[0].TransportSocket = ts
	case ts == nil && !plaintext: // TLS required, no context to serve it: nothing accepted
		g.reportFailedClosed(proxy, []string{fmt.Sprintf("port %d: no TLS context for its mutual TLS mode: %s is closed", k.app, IngressListenerName)})
		l.FilterChains[0].Filters = closedFilters(IngressRouteName)
	}
	return l
}
