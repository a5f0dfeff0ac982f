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
	"slices"
	"sort"
	"strings"
	"sync"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	networking "istio.io/api/networking/v1alpha3"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/util/protoconv"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/labels"
	"istio.io/istio/pkg/util/sets"
	"istio.io/istio/pkg/wellknown"
)

// Mutual TLS for MOSN (docs/security.md). MOSN applies a cluster's TLS to every host of
// the cluster and never reads transport_socket_matches' match, checks the server
// against exactly one match_subject_alt_names entry, and reaches SDS only over
// google_grpc with a bare socket path (envoy_grpc's path is hard-coded to
// ./etc/istio/proxy/SDS): docs/reference/mosn-xds-facts.md §9.1-9.3.

// DefaultSDSPath is where pilot-agent serves SDS to the proxy beside it.
const DefaultSDSPath = "/var/run/secrets/workload-spiffe-uds/socket"

// MetaSDSPath (ISTIO_META_DUBBO_SDS_PATH) overrides the SDS socket path of one MOSN node.
const MetaSDSPath = "DUBBO_SDS_PATH"

// sdsPath is the node's SDS socket: a bare absolute path (MOSN dials "unix:"+path).
func (g *Generator) sdsPath(p *model.Proxy) string {
	if p.Metadata != nil {
		if v, ok := p.Metadata.Raw[MetaSDSPath]; ok {
			s := strings.TrimPrefix(fmt.Sprint(v), "unix://")
			s = strings.TrimPrefix(s, "unix:")
			if strings.HasPrefix(s, "/") {
				return s
			}
			g.logOnce("proxy %s: node metadata %s=%q is not an absolute path; using %s", p.ID, MetaSDSPath, fmt.Sprint(v), DefaultSDSPath)
		}
	}
	return DefaultSDSPath
}

// sdsForMOSN points an SDS secret config at pilot-agent's socket over google_grpc.
func sdsForMOSN(c *tlsv3.SdsSecretConfig, path string) {
	if c == nil {
		return
	}
	c.SdsConfig = &core.ConfigSource{
		ResourceApiVersion: core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_ApiConfigSource{ApiConfigSource: &core.ApiConfigSource{
			ApiType:             core.ApiConfigSource_GRPC,
			TransportApiVersion: core.ApiVersion_V3,
			GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_GoogleGrpc_{GoogleGrpc: &core.GrpcService_GoogleGrpc{
				TargetUri:  path,
				StatPrefix: "sds",
			}}}},
		}},
	}
}

// commonForMOSN rewrites every SDS config of a TLS context.
func commonForMOSN(c *tlsv3.CommonTlsContext, path string) {
	if c == nil {
		return
	}
	for _, s := range c.TlsCertificateSdsSecretConfigs {
		sdsForMOSN(s, path)
	}
	switch v := c.ValidationContextType.(type) {
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		sdsForMOSN(v.ValidationContextSdsSecretConfig, path)
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		sdsForMOSN(v.CombinedValidationContext.GetValidationContextSdsSecretConfig(), path)
	}
}

// downstreamTLSForMOSN returns a listener chain's TLS transport socket with SDS over
// google_grpc; other transport sockets are returned as they are.
func downstreamTLSForMOSN(ts *core.TransportSocket, path string) (*core.TransportSocket, error) {
	if ts == nil || ts.Name != wellknown.TransportSocketTLS {
		return ts, nil
	}
	d := &tlsv3.DownstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(d); err != nil {
		return nil, err
	}
	commonForMOSN(d.CommonTlsContext, path)
	return &core.TransportSocket{Name: ts.Name, ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: protoconv.MessageToAny(d)}}, nil
}

// upstreamTLS reads a cluster transport socket's UpstreamTlsContext (nil if not TLS).
func upstreamTLS(ts *core.TransportSocket) (*tlsv3.UpstreamTlsContext, error) {
	if ts == nil || ts.Name != wellknown.TransportSocketTLS {
		return nil, nil
	}
	u := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(u); err != nil {
		return nil, err
	}
	return u, nil
}

// clusterTLS is how a MOSN cluster speaks to its endpoints.
type clusterTLS struct {
	san    string // the one SAN checked ("" with plaintext, or when none is known)
	reason string // why the decision is not the plain one (metric label), or ""
	detail string // for the log line
}

// Reasons reported for TLS decisions that are not exact (dubbo_mosn_tls_clusters_total).
const (
	tlsMixedEndpoints   = "mixed_endpoints"
	tlsManySANs         = "multiple_service_accounts"
	tlsNoServiceAccount = "no_service_account"
)

// clusterEndpoints names the endpoint list of an outbound cluster in the push context
// (service, port, subset labels); list returns it. Listing a subset filters the service's
// endpoints, so it is done only when a TLS decision has to be made.
type clusterEndpoints struct {
	key    tlsInputKey
	push   *model.PushContext
	svc    *model.Service
	port   int
	labels labels.Instance
}

func (c clusterEndpoints) list() []*model.IstioEndpoint {
	if c.svc == nil {
		return nil
	}
	return c.push.ServiceEndpointsByPort(c.svc, c.port, c.labels)
}

func endpointsOf(push *model.PushContext, proxy *model.Proxy, subset string, h host.Name, port int) clusterEndpoints {
	svc := push.ServiceForHostname(proxy, h)
	if svc == nil {
		return clusterEndpoints{}
	}
	var l labels.Instance
	if subset != "" && proxy.SidecarScope != nil {
		if dr := proxy.SidecarScope.DestinationRule(model.TrafficDirectionOutbound, proxy, h); dr != nil {
			if spec, ok := dr.GetRule().Spec.(*networking.DestinationRule); ok {
				for _, s := range spec.Subsets {
					if s.Name == subset {
						l = s.Labels
					}
				}
			}
		}
	}
	k := tlsInputKey{host: svc.Hostname, ns: svc.Attributes.Namespace, port: port}
	if len(l) > 0 {
		k.labels = l.String()
	}
	return clusterEndpoints{key: k, push: push, svc: svc, port: port, labels: l}
}

// tlsInputKey names one endpoint list of a push context.
type tlsInputKey struct {
	host   host.Name
	ns     string
	port   int
	labels string
}

// tlsInputCache remembers tlsInputs per endpoint list for the current push context: every
// proxy of a push asks for the same lists, and walking a large service's endpoints per
// proxy would cost CDS more than the cluster itself.
type tlsInputCache struct {
	mu   sync.Mutex
	push *model.PushContext
	m    map[tlsInputKey]string
}

func (c *tlsInputCache) get(ce clusterEndpoints) string {
	if ce.svc == nil {
		return tlsInputs(nil)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.push != ce.push {
		c.push, c.m = ce.push, map[tlsInputKey]string{}
	}
	v, ok := c.m[ce.key]
	if !ok {
		v = tlsInputs(ce.list())
		c.m[ce.key] = v
	}
	return v
}

// tlsInputs is what a TLS decision reads from the endpoints, as a memo key: whether
// some have a sidecar, whether some have none, and their service accounts.
func tlsInputs(eps []*model.IstioEndpoint) string {
	with, without := false, false
	for _, ep := range eps {
		if ep.TLSMode != model.IstioMutualTLSModeLabel {
			without = true
		} else {
			with = true
		}
	}
	// The accounts in the order the decision uses (by count): a change of majority is a
	// change of key.
	return fmt.Sprintf("|%t|%t|%s", with, without, strings.Join(endpointServiceAccounts(eps), ","))
}

// adaptClusterTLS decides a MOSN cluster's TLS (docs/security.md, "Consumers"):
//   - an explicit TLS transport_socket (DestinationRule ISTIO_MUTUAL, MUTUAL, SIMPLE) is
//     kept; DISABLE leaves none, as upstream does;
//   - auto mTLS (upstream's transport_socket_matches on tlsMode=istio) becomes an explicit
//     TLS transport_socket when the cluster's endpoints have an Istio sidecar, plaintext
//     when none has; when they mix, TLS for all: plaintext is never sent to a workload
//     whose sidecar terminates Istio mTLS, and the endpoints without one fail the
//     handshake (reported);
//   - SDS goes over google_grpc to the node's socket; exactly one SAN is checked: the
//     one upstream put, else the endpoints' service account; of several, those of
//     endpoints with a sidecar, the most common first, then in order (reported: the
//     endpoints under the others fail the handshake).
//
// It reports whether it changed the cluster.
func adaptClusterTLS(c *cluster.Cluster, eps []*model.IstioEndpoint, sdsPath string) (clusterTLS, bool, error) {
	var d clusterTLS
	ts := c.TransportSocket
	if ts == nil {
		var tlsMatch *core.TransportSocket
		for _, m := range c.TransportSocketMatches {
			if m.GetTransportSocket().GetName() == wellknown.TransportSocketTLS {
				tlsMatch = m.TransportSocket
			}
		}
		if len(c.TransportSocketMatches) == 0 {
			return d, false, nil
		}
		c.TransportSocketMatches = nil
		if tlsMatch == nil {
			return d, true, nil
		}
		withSidecar, without := 0, 0
		for _, ep := range eps {
			if ep.TLSMode == model.IstioMutualTLSModeLabel {
				withSidecar++
			} else {
				without++
			}
		}
		if withSidecar == 0 {
			return d, true, nil // plaintext: nothing there terminates Istio mTLS
		}
		if without > 0 {
			d.reason = tlsMixedEndpoints
			d.detail = fmt.Sprintf("%d of %d endpoints have no Istio sidecar and will fail the TLS handshake", without, withSidecar+without)
		}
		ts = tlsMatch
	}
	u, err := upstreamTLS(ts)
	if err != nil || u == nil {
		return d, false, err
	}
	commonForMOSN(u.CommonTlsContext, sdsPath)
	sans := subjectAltNames(u.CommonTlsContext)
	if len(sans) > 1 {
		// Upstream lists the service accounts of every endpoint, those without a sidecar
		// too (Kubernetes pods run as "default"): only a sidecar presents a certificate.
		// Of those, the most common first.
		withSidecar := endpointServiceAccounts(eps)
		if both := slices.DeleteFunc(withSidecar, func(s string) bool { return !slices.Contains(sans, s) }); len(both) > 0 {
			sans = both
		}
	}
	if len(sans) != 1 {
		if len(sans) == 0 {
			sans = endpointServiceAccounts(eps)
		}
		switch {
		case len(sans) == 0:
			d.reason, d.detail = tlsNoServiceAccount, "no service account is known for its endpoints: every handshake fails"
		case len(sans) > 1:
			d.reason = tlsManySANs
			d.detail = fmt.Sprintf("its endpoints run as %s; MOSN checks one: %s (the others fail the handshake)", strings.Join(sans, ", "), sans[0])
		}
	}
	if len(sans) > 0 {
		d.san = sans[0]
		setSubjectAltName(u.CommonTlsContext, d.san)
	}
	c.TransportSocket = &core.TransportSocket{Name: wellknown.TransportSocketTLS, ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: protoconv.MessageToAny(u)}}
	return d, true, nil
}

// subjectAltNames lists the exact SANs of a TLS context, sorted, without duplicates.
func subjectAltNames(c *tlsv3.CommonTlsContext) []string {
	v := validationContext(c, false)
	if v == nil {
		return nil
	}
	s := sets.New[string]()
	for _, m := range v.MatchSubjectAltNames {
		if e := m.GetExact(); e != "" {
			s.Insert(e)
		}
	}
	for _, m := range v.MatchTypedSubjectAltNames {
		if e := m.GetMatcher().GetExact(); e != "" {
			s.Insert(e)
		}
	}
	return sets.SortedList(s)
}

func setSubjectAltName(c *tlsv3.CommonTlsContext, san string) {
	v := validationContext(c, true)
	v.MatchSubjectAltNames = []*matcher.StringMatcher{{MatchPattern: &matcher.StringMatcher_Exact{Exact: san}}}
	v.MatchTypedSubjectAltNames = nil // MOSN ignores them
}

// validationContext returns the context holding SAN matchers, creating it if asked.
func validationContext(c *tlsv3.CommonTlsContext, create bool) *tlsv3.CertificateValidationContext {
	if c == nil {
		return nil
	}
	switch v := c.ValidationContextType.(type) {
	case *tlsv3.CommonTlsContext_ValidationContext:
		return v.ValidationContext
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		if v.CombinedValidationContext.DefaultValidationContext == nil && create {
			v.CombinedValidationContext.DefaultValidationContext = &tlsv3.CertificateValidationContext{}
		}
		return v.CombinedValidationContext.DefaultValidationContext
	}
	if !create {
		return nil
	}
	vc := &tlsv3.CertificateValidationContext{}
	c.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	return vc
}

// endpointServiceAccounts lists the accounts of the endpoints with a sidecar, the most
// common first (then in order): one rogue registration declaring an account cannot make
// the majority's fail the handshake.
func endpointServiceAccounts(eps []*model.IstioEndpoint) []string {
	n := map[string]int{}
	for _, ep := range eps {
		if ep.TLSMode == model.IstioMutualTLSModeLabel && ep.ServiceAccount != "" {
			n[ep.ServiceAccount]++
		}
	}
	out := make([]string, 0, len(n))
	for sa := range n {
		out = append(out, sa)
	}
	sort.Slice(out, func(i, j int) bool {
		if n[out[i]] != n[out[j]] {
			return n[out[i]] > n[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}
