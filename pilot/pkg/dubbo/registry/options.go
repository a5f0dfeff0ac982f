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

package registry

import (
	"fmt"
	"time"

	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/labels"
)

// Options configure how Dubbo interfaces become Istio services.
type Options struct {
	// Namespace holds every Dubbo registry service (default "dubbo"); they are exported to all.
	Namespace string
	// ServicePort is the stable service port of the dubbo protocol (default 20880);
	// endpoints keep their own ports.
	ServicePort uint32
	// TriplePort is the stable service port of Triple (tri://, gRPC-compatible HTTP/2;
	// default 50051), present on services with Triple providers.
	TriplePort uint32
	// HostSuffix is appended to hostnames ("" means the lower-cased interface only).
	HostSuffix string
	// ExtraLabelKeys are URL parameters kept as endpoint labels besides DefaultLabelKeys.
	ExtraLabelKeys []string
	// EmptyProtection keeps the last non-empty provider list of an interface when a
	// connected registry reports it empty (as Dubbo consumers' empty protection does).
	EmptyProtection bool
	// ClusterID is the Istio cluster the registry belongs to (the primary cluster's ID).
	ClusterID cluster.ID
	// SyncTimeout bounds how long istiod waits for the initial lists before it reports
	// synced anyway (a registry that is down must not keep istiod unready).
	SyncTimeout time.Duration
	// ReconnectGrace holds removals after a registry regains a session: ephemeral nodes
	// of providers vanish with a lost or restarted ZooKeeper and come back when the
	// providers re-register. Removals still standing after the grace are applied.
	ReconnectGrace time.Duration
	// EDSPushInterval paces endpoint pushes of Dubbo services when a Pusher is set (see
	// pacer.go); 0 sends them through istiod's debounced queue like other registries.
	EDSPushInterval time.Duration
	// TrustDomain returns the mesh's trust domain, for the SPIFFE identity of providers
	// that declare a service account (docs/security.md); nil means cluster.local.
	TrustDomain func() string
}

// PortName is the name of the service port of the dubbo protocol.
const PortName = "dubbo"

// TriplePortName is the name of the service port of Triple: a gRPC port to Istio.
const TriplePortName = "grpc-tri"

// Provider protocols that become endpoints, and the service port each one is served on.
const (
	ProtocolDubbo  = "dubbo"
	ProtocolTriple = "tri"
)

func (o *Options) labelKeys() []string {
	return append(append([]string{}, DefaultLabelKeys...), o.ExtraLabelKeys...)
}

// Validate checks the options and fills defaults.
func (o *Options) Validate() error {
	if o.Namespace == "" {
		o.Namespace = "dubbo"
	}
	if o.ServicePort == 0 {
		o.ServicePort = 20880
	}
	if o.ServicePort > 65535 {
		return fmt.Errorf("dubbo service port %d is not in 1..65535", o.ServicePort)
	}
	if o.TriplePort == 0 {
		o.TriplePort = 50051
	}
	if o.TriplePort > 65535 || o.TriplePort == o.ServicePort {
		return fmt.Errorf("triple service port %d must be in 1..65535 and differ from the dubbo service port %d", o.TriplePort, o.ServicePort)
	}
	if o.ClusterID == "" {
		o.ClusterID = "Kubernetes"
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = 10 * time.Second
	}
	if o.EDSPushInterval < 0 {
		return fmt.Errorf("dubbo EDS push interval %v is negative", o.EDSPushInterval)
	}
	if o.ReconnectGrace < 0 {
		return fmt.Errorf("dubbo reconnect grace %v is negative", o.ReconnectGrace)
	}
	for _, k := range o.ExtraLabelKeys {
		if err := (labels.Instance{k: "x"}).Validate(); err != nil {
			return fmt.Errorf("label key %q: %v", k, err)
		}
	}
	return nil
}
