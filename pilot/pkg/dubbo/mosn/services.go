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
	"sort"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/protocol"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/governance"
)

// InterfaceLabel names the exact Dubbo interface of a ServiceEntry or Kubernetes Service
// with a Dubbo port (the Dubbo registry knows it for its own services).
const InterfaceLabel = "dubbo.apache.org/interface"

// InterfaceResolver returns the exact interface behind a registry hostname, or "".
type InterfaceResolver func(hostname host.Name) string

// TriplePortName names the Triple (tri://, gRPC over HTTP/2) port of a Dubbo service,
// as the Dubbo registry names it (registry.TriplePortName; a ServiceEntry or Kubernetes
// Service gets Triple routes on MOSN by naming its GRPC port the same).
const TriplePortName = "grpc-tri"

// dubboService is one Dubbo port of a service the proxy can see.
type dubboService struct {
	svc   *model.Service
	port  *model.Port
	iface string
	// triple is the service's grpc-tri port, set on its first Dubbo port only (so a
	// service with several Dubbo ports gets its Triple rules once); nil otherwise.
	triple *model.Port
}

// triplePort returns the service's Triple port, or nil.
func triplePort(svc *model.Service) *model.Port {
	for _, p := range svc.Ports {
		if isTriplePort(p) {
			return p
		}
	}
	return nil
}

// isTriplePort: a GRPC port named grpc-tri.
func isTriplePort(p *model.Port) bool { return p.Name == TriplePortName && p.Protocol == protocol.GRPC }

func (g *Generator) interfaceOf(svc *model.Service) string {
	if g.resolve != nil {
		if i := g.resolve(svc.Hostname); i != "" {
			return i
		}
	}
	if i := svc.Attributes.Labels[InterfaceLabel]; i != "" {
		return i
	}
	return string(svc.Hostname)
}

// dubboServices lists the Dubbo ports of the services visible to the proxy (its
// SidecarScope: Sidecar egress and exportTo honoured), sorted by hostname then port.
func (g *Generator) dubboServices(proxy *model.Proxy) []dubboService {
	if proxy.SidecarScope == nil {
		return nil
	}
	var out []dubboService
	for _, svc := range proxy.SidecarScope.Services() {
		if svc.Attributes.Labels[governance.DerivedLabel] != "" {
			// A provider selection of governance routes: reached through its interface's
			// routes only (its cluster is served like any other).
			continue
		}
		for _, p := range svc.Ports {
			if p.Protocol == protocol.Dubbo {
				out = append(out, dubboService{svc: svc, port: p, iface: g.interfaceOf(svc)})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].svc.Hostname != out[j].svc.Hostname {
			return out[i].svc.Hostname < out[j].svc.Hostname
		}
		return out[i].port.Port < out[j].port.Port
	})
	for i := range out {
		if i == 0 || out[i-1].svc.Hostname != out[i].svc.Hostname {
			out[i].triple = triplePort(out[i].svc)
		}
	}
	return out
}

// dubboHostnames is what CDS needs per push: the hostnames of the Dubbo services the
// proxy can see, without resolving interfaces or sorting.
func dubboHostnames(proxy *model.Proxy) map[host.Name]bool {
	hosts := map[host.Name]bool{}
	if proxy.SidecarScope == nil {
		return hosts
	}
	for _, svc := range proxy.SidecarScope.Services() {
		for _, p := range svc.Ports {
			if p.Protocol == protocol.Dubbo {
				hosts[svc.Hostname] = true
				break
			}
		}
	}
	return hosts
}

// servesDubbo reports whether the proxy runs beside a Dubbo provider.
func servesDubbo(proxy *model.Proxy) bool {
	for _, t := range proxy.ServiceTargets {
		if t.Port.ServicePort != nil && t.Port.ServicePort.Protocol == protocol.Dubbo {
			return true
		}
	}
	return false
}
