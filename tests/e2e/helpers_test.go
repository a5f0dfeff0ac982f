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

package e2e

import (
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestWantEndpointsRequiresPresence: an expectation of no endpoints ("") is met only by
// an assignment that was sent, empty; a cluster missing from the response never meets it.
func TestWantEndpointsRequiresPresence(t *testing.T) {
	la := func(name string, addrs ...string) *anypb.Any {
		cla := &endpoint.ClusterLoadAssignment{ClusterName: name}
		if len(addrs) > 0 {
			var lbs []*endpoint.LbEndpoint
			for _, a := range addrs {
				lbs = append(lbs, &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
					Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
						Address: a, PortSpecifier: &core.SocketAddress_PortValue{PortValue: 20880},
					}}},
				}}})
			}
			cla.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}}
		}
		a, err := anypb.New(cla)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	resp := &discovery.DiscoveryResponse{Resources: []*anypb.Any{la("a", "10.0.0.1"), la("empty")}}
	for _, tc := range []struct {
		want map[string]string
		ok   bool
	}{
		{map[string]string{"a": "10.0.0.1:20880", "empty": ""}, true},
		{map[string]string{"empty": ""}, true},
		{map[string]string{"missing": ""}, false},
		{map[string]string{"a": ""}, false},
		{map[string]string{"empty": "10.0.0.1:20880"}, false},
	} {
		if err := wantEndpoints(tc.want)(resp); (err == nil) != tc.ok {
			t.Errorf("wantEndpoints(%v) = %v, want ok=%v", tc.want, err, tc.ok)
		}
	}
}
