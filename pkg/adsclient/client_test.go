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

package adsclient

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The names read from the wire are the names a full decode gives, for every type the
// client is used with, whatever other fields come before or after the name.
func TestResourceName(t *testing.T) {
	cases := []struct {
		msg  proto.Message
		want string
	}{
		{&cluster.Cluster{
			Name:                 "outbound|20880|v1|svc00001.dubbo.example",
			AltStatName:          "alt",
			ConnectTimeout:       durationpb.New(1),
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			Metadata:             &core.Metadata{},
		}, "outbound|20880|v1|svc00001.dubbo.example"},
		{&endpoint.ClusterLoadAssignment{
			ClusterName: "outbound|20880||svc00001.dubbo.example",
			Endpoints:   []*endpoint.LocalityLbEndpoints{{Locality: &core.Locality{Region: "r"}}},
		}, "outbound|20880||svc00001.dubbo.example"},
		{&listener.Listener{Name: "egress_dubbo", Address: &core.Address{}}, "egress_dubbo"},
		{&route.RouteConfiguration{Name: "dubbo-20880", VirtualHosts: []*route.VirtualHost{{Name: "vh", Domains: []string{"*"}}}}, "dubbo-20880"},
		{&cluster.Cluster{}, ""},
		// Not one of the four: decoded in full.
		{&tls.Secret{Name: "default"}, "default"},
	}
	for _, c := range cases {
		a, err := anypb.New(c.msg)
		if err != nil {
			t.Fatal(err)
		}
		if got := resourceName(a); got != c.want {
			t.Errorf("resourceName(%T) = %q, want %q", c.msg, got, c.want)
		}
	}

	// A repeated field 1 (as a merge of two serialized messages): the last one wins, as in decoding.
	a1, _ := anypb.New(&cluster.Cluster{Name: "first", AltStatName: "x"})
	a2, _ := anypb.New(&cluster.Cluster{Name: "second"})
	merged := &anypb.Any{TypeUrl: a1.TypeUrl, Value: append(append([]byte{}, a1.Value...), a2.Value...)}
	if got := resourceName(merged); got != "second" {
		t.Errorf("resourceName(two names) = %q, want second", got)
	}
	// Malformed bytes: no name rather than a wrong one.
	bad := &anypb.Any{TypeUrl: ClusterType, Value: []byte{0x0a, 0x7f, 'x'}}
	if got := resourceName(bad); got != "" {
		t.Errorf("resourceName(malformed) = %q, want \"\"", got)
	}
}
