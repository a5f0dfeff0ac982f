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
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/util/protoconv"
	pkgmodel "istio.io/istio/pkg/model"
	"istio.io/istio/pkg/wellknown"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

// istioTLS is an UpstreamTlsContext as upstream builds it for ISTIO_MUTUAL: SDS over
// envoy_grpc (cluster sds-grpc), the given SANs.
func istioTLS(sans ...string) *core.TransportSocket {
	var m []*matcher.StringMatcher
	for _, s := range sans {
		m = append(m, &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}})
	}
	u := &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{pkgmodel.ConstructSdsSecretConfig(pkgmodel.SDSDefaultResourceName)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchSubjectAltNames: m},
			ValidationContextSdsSecretConfig: pkgmodel.ConstructSdsSecretConfig(pkgmodel.SDSRootResourceName),
		}},
		AlpnProtocols: []string{"istio-peer-exchange", "istio"},
	}}
	return &core.TransportSocket{Name: wellknown.TransportSocketTLS, ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: protoconv.MessageToAny(u)}}
}

func autoMTLS(sans ...string) []*cluster.Cluster_TransportSocketMatch {
	return []*cluster.Cluster_TransportSocketMatch{
		{Name: "tlsMode-istio", TransportSocket: istioTLS(sans...)},
		{Name: "tlsMode-disabled", TransportSocket: &core.TransportSocket{Name: wellknown.TransportSocketRawBuffer}},
	}
}

func ep(tlsMode, sa string) *model.IstioEndpoint {
	return &model.IstioEndpoint{TLSMode: tlsMode, ServiceAccount: sa}
}

const (
	saA = "spiffe://cluster.local/ns/default/sa/a"
	saB = "spiffe://cluster.local/ns/default/sa/b"
)

// TestClusterTLSForMOSN: MOSN applies a cluster's TLS to every endpoint, checks exactly
// one SAN and reaches SDS only over google_grpc: each upstream form becomes the one MOSN
// reads, and the conformance checker passes every result.
func TestClusterTLSForMOSN(t *testing.T) {
	istio, disabled := model.IstioMutualTLSModeLabel, model.DisabledTLSModeLabel
	cases := []struct {
		name       string
		in         *cluster.Cluster
		eps        []*model.IstioEndpoint
		wantTLS    bool
		wantSAN    string
		wantReason string
		wantChange bool
	}{
		{"plain cluster untouched", &cluster.Cluster{Name: "p"}, nil, false, "", "", false},
		{"auto mTLS, no sidecar: plaintext", &cluster.Cluster{Name: "a", TransportSocketMatches: autoMTLS(saA)},
			[]*model.IstioEndpoint{ep(disabled, ""), ep("", "")}, false, "", "", true},
		{"auto mTLS, every endpoint with a sidecar: TLS", &cluster.Cluster{Name: "a", TransportSocketMatches: autoMTLS(saA)},
			[]*model.IstioEndpoint{ep(istio, saA), ep(istio, saA)}, true, saA, "", true},
		{"auto mTLS, mixed: TLS for all, reported", &cluster.Cluster{Name: "a", TransportSocketMatches: autoMTLS(saA)},
			[]*model.IstioEndpoint{ep(istio, saA), ep(disabled, "")}, true, saA, tlsMixedEndpoints, true},
		// Upstream lists every endpoint's account, a Kubernetes pod without a sidecar
		// too: the one checked must be the sidecar's (it alone presents a certificate).
		{"auto mTLS, mixed, the plain endpoint's account listed: the sidecar's", &cluster.Cluster{Name: "a", TransportSocketMatches: autoMTLS(saA, saB)},
			[]*model.IstioEndpoint{ep(disabled, saA), ep(istio, saB)}, true, saB, tlsMixedEndpoints, true},
		{"auto mTLS, two service accounts: the first, reported", &cluster.Cluster{Name: "a", TransportSocketMatches: autoMTLS(saB, saA)},
			[]*model.IstioEndpoint{ep(istio, saA), ep(istio, saB)}, true, saA, tlsManySANs, true},
		{"several accounts: the most common (one rogue registration does not win)", &cluster.Cluster{Name: "a", TransportSocketMatches: autoMTLS(saA, saB)},
			[]*model.IstioEndpoint{ep(istio, saA), ep(istio, saB), ep(istio, saB)}, true, saB, tlsManySANs, true},
		{"ISTIO_MUTUAL without SANs: the endpoints' account", &cluster.Cluster{Name: "e", TransportSocket: istioTLS()},
			[]*model.IstioEndpoint{ep(istio, saB)}, true, saB, "", true},
		{"ISTIO_MUTUAL, nothing known: TLS that fails closed, reported", &cluster.Cluster{Name: "e", TransportSocket: istioTLS()},
			[]*model.IstioEndpoint{ep(disabled, "")}, true, "", tlsNoServiceAccount, true},
		{"ISTIO_MUTUAL kept over plaintext endpoints (DestinationRule wins)", &cluster.Cluster{Name: "e", TransportSocket: istioTLS(saA)},
			[]*model.IstioEndpoint{ep(disabled, "")}, true, saA, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, changed, err := adaptClusterTLS(tc.in, tc.eps, "/sds.sock")
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.wantChange || d.reason != tc.wantReason || d.san != tc.wantSAN {
				t.Fatalf("changed %v reason %q san %q, want %v %q %q", changed, d.reason, d.san, tc.wantChange, tc.wantReason, tc.wantSAN)
			}
			c := tc.in
			if len(c.TransportSocketMatches) != 0 {
				t.Fatalf("MOSN would apply the first TLS match to every endpoint: %v", c.TransportSocketMatches)
			}
			if (c.TransportSocket != nil) != tc.wantTLS {
				t.Fatalf("transport_socket %v, want TLS=%v", c.TransportSocket, tc.wantTLS)
			}
			if !tc.wantTLS {
				return
			}
			u, err := upstreamTLS(c.TransportSocket)
			if err != nil || u == nil {
				t.Fatalf("not TLS: %v", err)
			}
			for _, s := range append(u.CommonTlsContext.TlsCertificateSdsSecretConfigs, u.CommonTlsContext.GetCombinedValidationContext().GetValidationContextSdsSecretConfig()) {
				g := s.GetSdsConfig().GetApiConfigSource().GetGrpcServices()
				if len(g) != 1 || g[0].GetGoogleGrpc().GetTargetUri() != "/sds.sock" {
					t.Fatalf("SDS %s not over google_grpc to /sds.sock: %v", s.GetName(), g)
				}
			}
			if got := subjectAltNames(u.CommonTlsContext); tc.wantSAN != "" && (len(got) != 1 || got[0] != tc.wantSAN) {
				t.Fatalf("SANs %v, want exactly %s", got, tc.wantSAN)
			}
			if tc.wantReason == tlsNoServiceAccount {
				return // the checker rightly flags a TLS cluster without its one SAN
			}
			if v := conformance.Check(conformance.Snapshot{Clusters: []*cluster.Cluster{c}}); len(v) > 0 {
				t.Fatalf("conformance: %v", v)
			}
		})
	}
}
