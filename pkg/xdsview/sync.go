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

// Package xdsview connects to istiod as a MOSN (or Envoy) sidecar and shows the Dubbo
// view of what the proxy receives. Sync asks for resources in MOSN's order (see
// docs/reference/mosn-xds-facts.md): CDS, then EDS for every EDS cluster by Cluster.name,
// then LDS, then RDS for the route names of the listeners' HTTP connection managers. It
// is a real gRPC client (MOSN itself cannot run here); tests and tools/dubbo-xds use it.
package xdsview

import (
	"fmt"
	"sort"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
)

// Node is a MOSN sidecar node: GENERATOR=mosn plus extra metadata.
func Node(ip, name, ns string, meta map[string]any) adsclient.Node {
	md := map[string]any{"GENERATOR": "mosn", "INTERCEPTION_MODE": "NONE"}
	for k, v := range meta {
		md[k] = v
	}
	return adsclient.Node{IP: ip, Name: name, Namespace: ns, Metadata: md}
}

func anyResponse(*discovery.DiscoveryResponse) error { return nil }

// Sync runs MOSN's request sequence once and returns what the node holds.
func Sync(c *adsclient.Client, timeout time.Duration) (conformance.Snapshot, error) {
	var s conformance.Snapshot
	if err := c.Watch(adsclient.ClusterType); err != nil {
		return s, err
	}
	r, err := c.AwaitTimeout(timeout, adsclient.ClusterType, anyResponse)
	if err != nil {
		return s, err
	}
	if s.Clusters, err = adsclient.Decode[cluster.Cluster](r); err != nil {
		return s, err
	}
	var eds []string
	for _, cl := range s.Clusters {
		if cl.GetType() == cluster.Cluster_EDS {
			eds = append(eds, cl.Name)
		}
	}
	sort.Strings(eds)
	if len(eds) > 0 {
		if err := c.Watch(adsclient.EndpointType, eds...); err != nil {
			return s, err
		}
		// MOSN only moves on to LDS once every cluster it asked for is answered.
		r, err = c.AwaitTimeout(timeout, adsclient.EndpointType, func(r *discovery.DiscoveryResponse) error {
			got := map[string]bool{}
			las, err := adsclient.Decode[endpoint.ClusterLoadAssignment](r)
			if err != nil {
				return err
			}
			for _, la := range las {
				got[la.ClusterName] = true
			}
			for _, n := range eds {
				if !got[n] {
					return fmt.Errorf("EDS request for %s not answered", n)
				}
			}
			return nil
		})
		if err != nil {
			return s, err
		}
		if s.Endpoints, err = adsclient.Decode[endpoint.ClusterLoadAssignment](r); err != nil {
			return s, err
		}
	}
	if err := c.Watch(adsclient.ListenerType); err != nil {
		return s, err
	}
	if r, err = c.AwaitTimeout(timeout, adsclient.ListenerType, anyResponse); err != nil {
		return s, err
	}
	if s.Listeners, err = adsclient.Decode[listener.Listener](r); err != nil {
		return s, err
	}
	names := RouteNames(s.Listeners)
	if len(names) > 0 {
		if err := c.Watch(adsclient.RouteType, names...); err != nil {
			return s, err
		}
		if r, err = c.AwaitTimeout(timeout, adsclient.RouteType, anyResponse); err != nil {
			return s, err
		}
		if s.Routes, err = adsclient.Decode[route.RouteConfiguration](r); err != nil {
			return s, err
		}
	}
	return s, nil
}

// RouteNames are the RDS names the listeners' HTTP connection managers ask for.
func RouteNames(ls []*listener.Listener) []string {
	set := map[string]bool{}
	for _, l := range ls {
		for _, fc := range l.FilterChains {
			for _, f := range fc.Filters {
				m := &hcm.HttpConnectionManager{}
				if f.GetTypedConfig() == nil || f.GetTypedConfig().UnmarshalTo(m) != nil {
					continue
				}
				if r := m.GetRds(); r != nil {
					set[r.RouteConfigName] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Held decodes everything the client holds now (after Sync, updated by every push).
func Held(c *adsclient.Client) (conformance.Snapshot, error) {
	var s conformance.Snapshot
	for _, a := range sortedAnys(c.Held(adsclient.ListenerType)) {
		m := &listener.Listener{}
		if err := a.UnmarshalTo(m); err != nil {
			return s, err
		}
		s.Listeners = append(s.Listeners, m)
	}
	for _, a := range sortedAnys(c.Held(adsclient.RouteType)) {
		m := &route.RouteConfiguration{}
		if err := a.UnmarshalTo(m); err != nil {
			return s, err
		}
		s.Routes = append(s.Routes, m)
	}
	for _, a := range sortedAnys(c.Held(adsclient.ClusterType)) {
		m := &cluster.Cluster{}
		if err := a.UnmarshalTo(m); err != nil {
			return s, err
		}
		s.Clusters = append(s.Clusters, m)
	}
	for _, a := range sortedAnys(c.Held(adsclient.EndpointType)) {
		m := &endpoint.ClusterLoadAssignment{}
		if err := a.UnmarshalTo(m); err != nil {
			return s, err
		}
		s.Endpoints = append(s.Endpoints, m)
	}
	return s, nil
}

func sortedAnys(m map[string]*anypb.Any) []*anypb.Any {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*anypb.Any, 0, len(names))
	for _, n := range names {
		out = append(out, m[n])
	}
	return out
}
