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

// Package parity checks, through upstream's own APIs, that the patched tree treats
// Dubbo ports the way dubbo-istiod promises: recognised, valid, and opaque TCP.
package parity

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	networking "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/istio/pilot/pkg/networking"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/kube"
	"istio.io/istio/pkg/config/protocol"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/config/validation"
)

func TestParseDubbo(t *testing.T) {
	for _, in := range []string{"dubbo", "DUBBO", "Dubbo", "dUbBo"} {
		if got := protocol.Parse(in); got != protocol.Dubbo {
			t.Errorf("Parse(%q) = %v, want Dubbo", in, got)
		}
	}
	if !protocol.Dubbo.IsTCP() || protocol.Dubbo.IsHTTP() || protocol.Dubbo.IsUnsupported() || protocol.Dubbo.IsHTTPOrSniffed() {
		t.Errorf("Dubbo must be opaque TCP: IsTCP=%v IsHTTP=%v IsUnsupported=%v",
			protocol.Dubbo.IsTCP(), protocol.Dubbo.IsHTTP(), protocol.Dubbo.IsUnsupported())
	}
	if got := istionetworking.ModelProtocolToListenerProtocol(protocol.Dubbo); got != istionetworking.ListenerProtocolTCP {
		t.Errorf("listener protocol for Dubbo = %v, want TCP", got)
	}
	// Neighbours are untouched.
	if protocol.Parse("dubbox") != protocol.Unsupported || protocol.Parse("tcp") != protocol.TCP {
		t.Errorf("Parse changed for non-Dubbo names")
	}
}

func TestKubernetesPortNames(t *testing.T) {
	dubbo := "dubbo"
	grpc := "grpc"
	cases := []struct {
		name        string
		portName    string
		appProtocol *string
		want        protocol.Instance
	}{
		{"bare name", "dubbo", nil, protocol.Dubbo},
		{"prefixed name", "dubbo-provider", nil, protocol.Dubbo},
		{"upper-case name", "DUBBO-x", nil, protocol.Dubbo},
		{"appProtocol wins over name", "tcp-x", &dubbo, protocol.Dubbo},
		{"appProtocol grpc over dubbo name", "dubbo-x", &grpc, protocol.GRPC},
		{"unrelated name stays sniffed", "provider", nil, protocol.Unsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := kube.ConvertProtocol(20880, c.portName, corev1.ProtocolTCP, c.appProtocol); got != c.want {
				t.Errorf("ConvertProtocol(%q, %v) = %v, want %v", c.portName, c.appProtocol, got, c.want)
			}
		})
	}
}

func TestServiceEntryDubboPortValidates(t *testing.T) {
	se := func(proto string) config.Config {
		return config.Config{
			Meta: config.Meta{GroupVersionKind: gvk.ServiceEntry, Name: "demo", Namespace: "dubbo"},
			Spec: &networking.ServiceEntry{
				Hosts:      []string{"com.example.demoservice"},
				Ports:      []*networking.ServicePort{{Number: 20880, Name: "dubbo", Protocol: proto}},
				Resolution: networking.ServiceEntry_STATIC,
				Endpoints:  []*networking.WorkloadEntry{{Address: "10.0.0.1", Ports: map[string]uint32{"dubbo": 20890}}},
			},
		}
	}
	for _, p := range []string{"DUBBO", "dubbo", "Dubbo"} {
		if _, err := validation.ValidateServiceEntry(se(p)); err != nil {
			t.Errorf("ServiceEntry with protocol %q rejected: %v", p, err)
		}
	}
	if _, err := validation.ValidateServiceEntry(se("DUBBOX")); err == nil {
		t.Errorf("ServiceEntry with an unknown protocol was accepted: validation is not exercised")
	}
}
