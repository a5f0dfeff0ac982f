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
	"bytes"
	"fmt"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	meshconfig "istio.io/api/mesh/v1alpha1"

	"istio.io/istio/pilot/pkg/model"
	istiocore "istio.io/istio/pilot/pkg/networking/core"
	"istio.io/istio/pilot/pkg/networking/util"
	"istio.io/istio/pilot/pkg/util/protoconv"
	"istio.io/istio/pilot/pkg/xds"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/protocol"
	dnsProto "istio.io/istio/pkg/dns/proto"
	"istio.io/istio/pkg/util/sets"
	"istio.io/istio/pkg/wellknown"
)

// Generator holds the upstream generators it wraps.
type Generator struct {
	opts    Options
	resolve InterfaceResolver

	lds, rds, cds, eds model.XdsResourceGenerator

	// MOSN forms of upstream's cached resources: Dubbo clusters, other outbound clusters,
	// endpoints, route configurations.
	clusters, otherClusters, endpoints, routes, listeners *memo

	logged onceSet // messages already logged (generation runs per proxy per push)

	tlsInputs tlsInputCache // what TLS decisions read of endpoints, per push

	clustersOfPush pushMemo // MOSN clusters by upstream object and scope, per push

	dubboRoutes *routeCache // the Dubbo route configuration, per scope (routecache.go)
}

// loggedLimit bounds the remembered log messages (per generation of onceSet): enough for
// every distinct problem of a large mesh, small enough that churn of proxies and
// configs cannot grow it without bound.
const loggedLimit = 4096

// Register wraps the upstream LDS/RDS/CDS/EDS generators of ds for MOSN nodes
// (Generators["mosn/<type>"]). Call it before the server starts.
func Register(ds *xds.DiscoveryServer, opts Options, resolve InterfaceResolver) (*Generator, error) {
	opts.Defaults()
	g := &Generator{
		opts:    opts,
		resolve: resolve,
		lds:     ds.Generators[v3.ListenerType],
		rds:     ds.Generators[v3.RouteType],
		cds:     ds.Generators[v3.ClusterType],
		eds:     ds.Generators[v3.EndpointType],

		// Sized by fit to the working set (twice a response): upstream marshals the map
		// fields of its metadata in no fixed order, so an object it builds anew (a new
		// connection's first push) rarely has the bytes of an earlier one, and a larger
		// memo would only keep those variants alive (4 KiB per connection at 1,000
		// sidecars with a floor of 4,096 entries).
		clusters:      newMemo(minObjLimit),
		otherClusters: newMemo(minObjLimit),
		endpoints:     newMemo(minObjLimit),
		routes:        newMemo(minObjLimit),
		dubboRoutes:   newRouteCache(),
		listeners:     newMemo(minObjLimit),
	}
	if g.lds == nil || g.rds == nil || g.cds == nil || g.eds == nil {
		return nil, fmt.Errorf("mosn: upstream xDS generators are not initialised")
	}
	// Upstream need not build the outbound listeners of Dubbo ports for MOSN sidecars:
	// generateListeners leaves them out (patches/istio/0005). Nor of Triple (grpc-tri)
	// ports: MOSN routes Triple calls on egress_dubbo, and a 0.0.0.0:<triple port>
	// listener would be bound in every MOSN pod, clashing with a Triple provider there.
	istiocore.SkipOutboundListener = func(p *model.Proxy, port *model.Port) bool {
		return (port.Protocol == protocol.Dubbo || isTriplePort(port)) && IsMOSN(p)
	}
	ds.Generators[GeneratorName+"/"+v3.ListenerType] = genFunc(g.generateListeners)
	ds.Generators[GeneratorName+"/"+v3.RouteType] = genFunc(g.generateRoutes)
	ds.Generators[GeneratorName+"/"+v3.ClusterType] = genFunc(g.generateClusters)
	ds.Generators[GeneratorName+"/"+v3.EndpointType] = genFunc(g.generateEndpoints)
	return g, nil
}

// genFunc adapts a function to model.XdsResourceGenerator.
type genFunc func(*model.Proxy, *model.WatchedResource, *model.PushRequest) (model.Resources, model.XdsLogDetails, error)

func (f genFunc) Generate(p *model.Proxy, w *model.WatchedResource, r *model.PushRequest) (model.Resources, model.XdsLogDetails, error) {
	return f(p, w, r)
}

// logOnce logs a configuration problem once per distinct message (as long as it is
// among the most recent loggedLimit..2*loggedLimit distinct messages).
func (g *Generator) logOnce(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if g.logged.first(msg) {
		scope.Warn(msg)
	}
}

// ----- LDS -----

// generateListeners returns upstream's listeners for the node, less anything colliding
// with the Dubbo listeners, plus egress_dubbo, and for providers the secured inbound:
// virtualInbound rewritten (intercepted pods) or inbound_dubbo (explicit mode).
//
// Upstream builds no outbound listener for a Dubbo service port of a MOSN node
// (SkipOutboundListener, set by Register, decides by the port's protocol), so a port
// number alone says nothing here: an HTTP or TCP service on a port some Dubbo service
// also uses keeps its listener. Only listeners on the ports egress_dubbo and
// inbound_dubbo bind are dropped.
func (g *Generator) generateListeners(proxy *model.Proxy, w *model.WatchedResource, req *model.PushRequest) (model.Resources, model.XdsLogDetails, error) {
	up, details, err := g.lds.Generate(proxy, w, req)
	if err != nil || up == nil {
		return up, details, err // nil: upstream decided this push changes no listener
	}
	k := g.knobs(proxy)
	withInbound := g.explicitInbound(proxy, k)
	collides := func(name string) bool {
		if name == EgressListenerName || name == IngressListenerName {
			return true
		}
		p := listenerPort(name)
		return p == int(k.outbound) || (withInbound && p == int(k.inbound))
	}
	intercepted := proxy.GetInterceptionMode() != model.InterceptionNone
	g.listeners.fit(len(up))
	out := make(model.Resources, 0, len(up)+2)
	for _, r := range up {
		if collides(r.Name) {
			continue
		}
		if r.Name == VirtualInboundName {
			l := &listener.Listener{}
			if err := r.Resource.UnmarshalTo(l); err != nil {
				return nil, details, fmt.Errorf("mosn: listener %s: %v", r.Name, err)
			}
			adapted, err := g.adaptVirtualInbound(l, proxy, req.Push)
			if err != nil {
				return nil, details, fmt.Errorf("mosn: listener %s: %v", r.Name, err)
			}
			r = resource(r.Name, adapted)
		} else if intercepted || bytes.Contains(r.Resource.GetValue(), listenerFilterPrefix) {
			// Memoized by content: upstream re-encodes the same listeners on every push.
			in := r
			a, err := g.listeners.get(in.Resource, in.Name, func() (*anypb.Any, error) {
				repaired, err := listenerForMOSN(in)
				if err != nil {
					return nil, err
				}
				return repaired.Resource, nil
			})
			if err != nil {
				return nil, details, err
			}
			if a != in.Resource {
				r = &discovery.Resource{Name: in.Name, Resource: a}
			}
		}
		out = append(out, r)
	}
	out = append(out, resource(EgressListenerName, egressListener(k)))
	if withInbound {
		out = append(out, resource(IngressListenerName, g.ingressListener(proxy, req.Push, k)))
	}
	return out, details, nil
}

// listenerFilterPrefix marks, in a listener's bytes, that it may have listener filters.
var listenerFilterPrefix = []byte("envoy.filters.listener.")

// Field numbers of the Listener fields listenerForMOSN reads in the encoding.
var (
	listenerFields   = (&listener.Listener{}).ProtoReflect().Descriptor().Fields()
	bindToPortNum    = listenerFields.ByName("bind_to_port").Number()
	deprecatedV1Num  = listenerFields.ByName("deprecated_v1").Number()
	deprecatedV1Bind = (&listener.Listener_DeprecatedV1{}).ProtoReflect().Descriptor().Fields().ByName("bind_to_port").Number()
)

// listenerForMOSN repairs one of upstream's other listeners for MOSN:
//   - upstream marks the outbound listeners of an intercepted sidecar unbound (reached
//     through virtualOutbound's original-dst split) with the top-level bind_to_port,
//     which MOSN ignores: it would bind each one (e.g. 10.96.0.1:443) and fail.
//     deprecated_v1.bind_to_port is the flag MOSN reads (docs/reference/mosn-xds-facts.md).
//     It is appended to the encoding (a message field given twice merges), so the
//     listener is not decoded for it;
//   - listener filters other than original_dst (tls_inspector, http_inspector) are
//     removed: MOSN converts none of them (it logs and drops them), and its chains do
//     not depend on them.
func listenerForMOSN(r *discovery.Resource) (*discovery.Resource, error) {
	b := r.Resource.GetValue()
	if bytes.Contains(b, listenerFilterPrefix) {
		return decodedListenerForMOSN(r)
	}
	bind, hasBind, hasV1, err := scanBindToPort(b)
	if err != nil {
		return nil, fmt.Errorf("mosn: listener %s: %v", r.Name, err)
	}
	if !hasBind || hasV1 {
		return r, nil
	}
	var v []byte // google.protobuf.BoolValue{value: bind}
	if bind {
		v = protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1)
	}
	v1 := protowire.AppendBytes(protowire.AppendTag(nil, deprecatedV1Bind, protowire.BytesType), v)
	out := append(append(make([]byte, 0, len(b)+len(v1)+4), b...), protowire.AppendBytes(protowire.AppendTag(nil, deprecatedV1Num, protowire.BytesType), v1)...)
	return &discovery.Resource{Name: r.Name, Resource: &anypb.Any{TypeUrl: r.Resource.GetTypeUrl(), Value: out}}, nil
}

// scanBindToPort reads a Listener encoding's top-level bind_to_port (and whether it has
// deprecated_v1) without decoding the rest.
func scanBindToPort(b []byte) (bind, hasBind, hasV1 bool, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false, false, false, protowire.ParseError(n)
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false, false, false, protowire.ParseError(m)
		}
		switch num {
		case deprecatedV1Num:
			hasV1 = true
		case bindToPortNum:
			hasBind = true
			v, vn := protowire.ConsumeBytes(b[:m])
			if vn < 0 {
				return false, false, false, protowire.ParseError(vn)
			}
			bind = false
			for len(v) > 0 { // BoolValue: field 1, varint; the last one wins
				fn, ft, tn := protowire.ConsumeTag(v)
				if tn < 0 {
					return false, false, false, protowire.ParseError(tn)
				}
				v = v[tn:]
				fm := protowire.ConsumeFieldValue(fn, ft, v)
				if fm < 0 {
					return false, false, false, protowire.ParseError(fm)
				}
				if fn == 1 && ft == protowire.VarintType {
					x, _ := protowire.ConsumeVarint(v)
					bind = x != 0
				}
				v = v[fm:]
			}
		}
		b = b[m:]
	}
	return bind, hasBind, hasV1, nil
}

// decodedListenerForMOSN is listenerForMOSN on the decoded listener (when it has
// listener filters to remove).
func decodedListenerForMOSN(r *discovery.Resource) (*discovery.Resource, error) {
	l := &listener.Listener{}
	if err := r.Resource.UnmarshalTo(l); err != nil {
		return nil, fmt.Errorf("mosn: listener %s: %v", r.Name, err)
	}
	changed := false
	if l.BindToPort != nil && l.DeprecatedV1 == nil {
		l.DeprecatedV1 = &listener.Listener_DeprecatedV1{BindToPort: wrapperspb.Bool(l.BindToPort.GetValue())}
		changed = true
	}
	kept := l.ListenerFilters[:0]
	for _, lf := range l.ListenerFilters {
		if lf.Name == wellknown.OriginalDestination {
			kept = append(kept, lf)
		}
	}
	if len(kept) != len(l.ListenerFilters) {
		l.ListenerFilters = kept
		changed = true
	}
	if !changed {
		return r, nil
	}
	return resource(r.Name, l), nil
}

// explicitInbound: the bound inbound_dubbo listener, for providers whose traffic is not
// redirected (no iptables: VMs, explicit sidecars); DUBBO_INBOUND forces it on or off.
func (g *Generator) explicitInbound(proxy *model.Proxy, k knobs) bool {
	switch k.inboundMode {
	case "true":
		return true
	case "false":
		return false
	}
	return proxy.GetInterceptionMode() == model.InterceptionNone && servesDubbo(proxy)
}

// listenerPort parses upstream's "<bind>_<port>" listener names; 0 for others
// (virtualOutbound, virtualInbound, ...).
func listenerPort(name string) int {
	i := strings.LastIndexByte(name, '_')
	if i < 0 {
		return 0
	}
	p, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return 0
	}
	return p
}

func resource(name string, m proto.Message) *discovery.Resource {
	return &discovery.Resource{Name: name, Resource: protoconv.MessageToAny(m)}
}

// ----- RDS -----

// generateRoutes serves the Dubbo route configuration itself and passes every other
// requested name to upstream (which would answer an empty configuration for ours).
func (g *Generator) generateRoutes(proxy *model.Proxy, w *model.WatchedResource, req *model.PushRequest) (model.Resources, model.XdsLogDetails, error) {
	k := g.knobs(proxy)
	ours := RouteName(k.outbound)
	if w == nil || !w.ResourceNames.Contains(ours) {
		up, details, err := g.rds.Generate(proxy, w, req)
		if err != nil {
			return nil, details, err
		}
		up, err = g.adaptUpstreamRoutes(up)
		return up, details, err
	}
	var up model.Resources
	details := model.DefaultXdsLogDetails
	if w.ResourceNames.Len() > 1 {
		rest := *w
		rest.ResourceNames = w.ResourceNames.Copy().Delete(ours)
		var err error
		if up, details, err = g.rds.Generate(proxy, &rest, req); err != nil {
			return nil, details, err
		}
		if up, err = g.adaptUpstreamRoutes(up); err != nil {
			return nil, details, err
		}
	}
	if !dubboRoutesNeedPush(proxy, req) {
		return up, details, nil // nil when upstream has nothing either: skip the push
	}
	out := make(model.Resources, 0, len(up)+1)
	out = append(out, up...)
	build := func() (*discovery.Resource, []string) {
		rc, labelKeys := g.buildRouteConfiguration(proxy, req.Push, k)
		return resource(ours, rc), labelKeys
	}
	if g.opts.NoRouteCache {
		r, _ := build()
		out = append(out, r)
	} else {
		out = append(out, g.dubboRoutes.get(req.Push, proxy, k.outbound, build))
	}
	return out, details, nil
}

// adaptUpstreamRoutes gives upstream's (HTTP) route configurations MOSN's matcher
// forms (adaptHTTPRoutes), memoized by content. nil stays nil (no push).
func (g *Generator) adaptUpstreamRoutes(up model.Resources) (model.Resources, error) {
	if up == nil {
		return nil, nil
	}
	g.routes.fit(len(up))
	out := make(model.Resources, 0, len(up))
	for _, r := range up {
		adapted, err := g.routes.get(r.Resource, r.Name, func() (*anypb.Any, error) { return g.adaptHTTPRoutes(r.Resource) })
		if err != nil {
			return nil, fmt.Errorf("mosn: route %s: %v", r.Name, err)
		}
		if adapted == r.Resource {
			out = append(out, r)
			continue
		}
		out = append(out, &discovery.Resource{Name: r.Name, Resource: adapted})
	}
	return out, nil
}

// dubboRoutesNeedPush decides as upstream RDS does for its own route configurations:
// every config kind pushes except those upstream knows never affect routes (endpoint
// churn, security policy, telemetry...). An allow-list of the kinds our routes read
// would leave dubbo-<port> stale on any kind it forgot (Gateway API routes, kinds added
// by later Istio versions).
//
// Upstream's decision (rdsNeedsPush and its skip-list) is unexported; its exported
// RdsGenerator applies it before asking its ConfigGenerator for routes, so a
// ConfigGenerator that only reports being asked gives the decision itself, with no copy
// of the list to drift from upstream's.
func dubboRoutesNeedPush(proxy *model.Proxy, req *model.PushRequest) bool {
	res, _, _ := xds.RdsGenerator{ConfigGenerator: rdsProbe{}}.Generate(proxy, &model.WatchedResource{}, req)
	return res != nil
}

// rdsProbe is a ConfigGenerator whose BuildHTTPRoutes answers a non-nil, empty list and
// builds nothing: RdsGenerator returns nil exactly when it decided not to push.
type rdsProbe struct{}

var _ istiocore.ConfigGenerator = rdsProbe{}

func (rdsProbe) BuildHTTPRoutes(*model.Proxy, *model.PushRequest, []string) ([]*discovery.Resource, model.XdsLogDetails) {
	return model.Resources{}, model.DefaultXdsLogDetails
}

func (rdsProbe) BuildListeners(*model.Proxy, *model.PushContext) []*listener.Listener { return nil }

func (rdsProbe) BuildClusters(*model.Proxy, *model.PushRequest) ([]*discovery.Resource, model.XdsLogDetails) {
	return nil, model.DefaultXdsLogDetails
}

func (rdsProbe) BuildDeltaClusters(*model.Proxy, *model.PushRequest, *model.WatchedResource) ([]*discovery.Resource, []string, model.XdsLogDetails, bool) {
	return nil, nil, model.DefaultXdsLogDetails, false
}

func (rdsProbe) BuildNameTable(*model.Proxy, *model.PushContext) *dnsProto.NameTable { return nil }

func (rdsProbe) BuildExtensionConfiguration(*model.Proxy, *model.PushContext, []string, map[string][]byte) []*core.TypedExtensionConfig {
	return nil
}

func (rdsProbe) MeshConfigChanged(*meshconfig.MeshConfig) {}

// ----- CDS -----

// tlsSocketName marks, in a cluster's bytes, that it may carry TLS: only those need the
// endpoint lookup of a TLS decision.
var tlsSocketName = []byte(wellknown.TransportSocketTLS)

// generateClusters adapts upstream's outbound clusters for MOSN (Dubbo services':
// adaptDubboCluster; every outbound cluster: adaptClusterTLS) and, in explicit mode,
// adds the STATIC cluster behind inbound_dubbo.
func (g *Generator) generateClusters(proxy *model.Proxy, w *model.WatchedResource, req *model.PushRequest) (model.Resources, model.XdsLogDetails, error) {
	up, details, err := g.cds.Generate(proxy, w, req)
	if err != nil || up == nil {
		return up, details, err
	}
	k := g.knobs(proxy)
	var dubboHosts map[host.Name]bool
	inbound := ""
	if g.explicitInbound(proxy, k) {
		inbound = InboundClusterName(k.app)
	}
	sds := g.sdsPath(proxy)
	g.clusters.fit(len(up))
	g.otherClusters.fit(len(up))
	g.clustersOfPush.fit(len(up))
	out := make(model.Resources, 0, len(up)+1)
	for _, r := range up {
		if r.Name == inbound {
			continue // ours replaces it
		}
		// Upstream's cached cluster, already adapted for this scope in this push: the
		// cost of a MOSN cluster is then upstream's cached cluster plus this lookup.
		pk := pushMemoKey{name: r.Name, scope: proxy.SidecarScope, variant: sds}
		if res, ok := g.clustersOfPush.get(req.Push, r, pk); ok {
			out = append(out, res)
			continue
		}
		dir, subset, h, port := model.ParseSubsetKey(r.Name)
		if dir != model.TrafficDirectionOutbound {
			out = append(out, r)
			g.clustersOfPush.put(req.Push, r, pk, r)
			continue
		}
		if dubboHosts == nil {
			dubboHosts = dubboHostnames(proxy)
		}
		// One memo per adaptation: a host that stops being Dubbo may keep its bytes.
		m, dubbo := g.otherClusters, dubboHosts[h]
		if dubbo {
			m = g.clusters
		}
		var ce clusterEndpoints
		inputs := ""
		if bytes.Contains(r.Resource.GetValue(), tlsSocketName) {
			ce = endpointsOf(req.Push, proxy, subset, h, port)
			inputs = g.tlsInputs.get(ce)
		}
		adapted, err := m.getVariant(r.Resource, r.Name, inputs, sds, func() (*anypb.Any, error) {
			c := &cluster.Cluster{}
			if err := r.Resource.UnmarshalTo(c); err != nil {
				return nil, err
			}
			changed := false
			if dubbo {
				changed = adaptDubboCluster(c)
			}
			d, tlsChanged, err := adaptClusterTLS(c, ce.list(), sds)
			if err != nil {
				return nil, err
			}
			if d.reason != "" {
				tlsClusters.With(tlsReason.Value(d.reason)).Increment()
				g.logOnce("cluster %s for MOSN sidecars: %s", r.Name, d.detail)
			}
			if !changed && !tlsChanged {
				return r.Resource, nil
			}
			return protoconv.MessageToAny(c), nil
		})
		if err != nil {
			return nil, details, fmt.Errorf("mosn: cluster %s: %v", r.Name, err)
		}
		res := r
		if adapted != r.Resource {
			res = &discovery.Resource{Name: r.Name, Resource: adapted}
		}
		g.clustersOfPush.put(req.Push, r, pk, res)
		out = append(out, res)
	}
	if inbound != "" {
		out = append(out, resource(inbound, inboundCluster(inbound, k.app)))
	}
	return out, details, nil
}

// adaptDubboCluster makes Dubbo weights count: MOSN's round robin and random ignore
// them; LEAST_REQUEST is weight-aware. It reports whether it changed the cluster.
func adaptDubboCluster(c *cluster.Cluster) bool {
	switch c.LbPolicy {
	case cluster.Cluster_ROUND_ROBIN, cluster.Cluster_RANDOM:
		c.LbPolicy = cluster.Cluster_LEAST_REQUEST
		c.LbConfig = nil
		return true
	}
	return false
}

func inboundCluster(name string, appPort uint32) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LbPolicy:             cluster.Cluster_ROUND_ROBIN,
		LoadAssignment: &endpoint.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpoint.LocalityLbEndpoints{{
				LbEndpoints: []*endpoint.LbEndpoint{{
					HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
						Address: util.BuildAddress("127.0.0.1", appPort),
					}},
				}},
			}},
		},
	}
}

// ----- EDS -----

// generateEndpoints puts every cluster's endpoints in one locality group (MOSN keeps
// only the last group), scales weights into MOSN's 1..128 preserving their ratios, and
// answers every requested cluster (MOSN asks for LDS only after an EDS answer).
func (g *Generator) generateEndpoints(proxy *model.Proxy, w *model.WatchedResource, req *model.PushRequest) (model.Resources, model.XdsLogDetails, error) {
	up, details, err := g.eds.Generate(proxy, w, req)
	if err != nil {
		return nil, details, err
	}
	fromProxy := req == nil || req.Reason.Has(model.ProxyRequest)
	if up == nil && !fromProxy {
		return nil, details, nil
	}
	g.endpoints.fit(len(up))
	out := make(model.Resources, 0, len(up))
	var seen sets.String // only a proxy's request needs the names answered
	if fromProxy && w != nil {
		seen = sets.NewWithLength[string](len(up))
	}
	for _, r := range up {
		a, err := g.endpoints.get(r.Resource, r.Name, func() (*anypb.Any, error) {
			cla := &endpoint.ClusterLoadAssignment{}
			if err := r.Resource.UnmarshalTo(cla); err != nil {
				return nil, fmt.Errorf("mosn: endpoints of %s: %v", r.Name, err)
			}
			return protoconv.MessageToAny(normalizeLoadAssignment(r.Name, cla)), nil
		})
		if err != nil {
			return nil, details, err
		}
		out = append(out, &discovery.Resource{Name: r.Name, Resource: a})
		if seen != nil {
			seen.Insert(r.Name)
		}
	}
	if fromProxy && w != nil {
		for _, name := range sets.SortedList(w.ResourceNames) {
			if !seen.Contains(name) {
				out = append(out, resource(name, &endpoint.ClusterLoadAssignment{ClusterName: name}))
			}
		}
	}
	return out, details, nil
}

// MaxWeight and MinWeight are MOSN's endpoint weight bounds (pkg/config/v2/constants.go).
const (
	MinWeight = 1
	MaxWeight = 128
)

func normalizeLoadAssignment(name string, cla *endpoint.ClusterLoadAssignment) *endpoint.ClusterLoadAssignment {
	var eps []*endpoint.LbEndpoint
	maxW := uint32(0)
	for _, l := range cla.Endpoints {
		for _, ep := range l.LbEndpoints {
			eps = append(eps, ep)
			if w := ep.GetLoadBalancingWeight().GetValue(); w > maxW {
				maxW = w
			}
		}
	}
	for _, ep := range eps {
		w := ep.GetLoadBalancingWeight().GetValue()
		if w == 0 {
			continue // unset: MOSN treats it as 1, as Envoy does
		}
		scaled := w
		if maxW > MaxWeight {
			scaled = uint32((uint64(w)*MaxWeight + uint64(maxW)/2) / uint64(maxW))
		}
		if scaled < MinWeight {
			scaled = MinWeight
		}
		ep.LoadBalancingWeight = wrapperspb.UInt32(scaled)
	}
	out := &endpoint.ClusterLoadAssignment{ClusterName: name, Policy: cla.Policy}
	if len(eps) > 0 {
		out.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: eps}}
		if len(cla.Endpoints) > 0 {
			out.Endpoints[0].Locality = cla.Endpoints[0].Locality
		}
	}
	return out
}
