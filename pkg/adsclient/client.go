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

// Package adsclient is a small state-of-the-world ADS client over a real gRPC stream.
// It subscribes to exactly the resource names it is told to (unlike istio's adsc, it
// never rewrites RDS subscriptions), ACKs every response, and keeps the latest
// response per type so callers can wait for a condition. Tests and the xDS dump tool
// present themselves through it as an Envoy or a MOSN sidecar.
package adsclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Type URLs of the xDS resources this client is used with.
const (
	ClusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	RouteType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
)

// Node describes the proxy the client presents itself as.
type Node struct {
	// Type is the node type: "sidecar" (Envoy and MOSN sidecars) or "router".
	Type string
	// IP is the proxy's workload IP.
	IP string
	// Name and Namespace build the node ID "<type>~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local".
	Name, Namespace string
	// Metadata is sent as node metadata, as pilot-agent sends ISTIO_META_* values.
	Metadata map[string]any
}

// ID is the node ID in Istio's "type~ip~id~domain" form.
func (n Node) ID() string {
	t := n.Type
	if t == "" {
		t = "sidecar"
	}
	return fmt.Sprintf("%s~%s~%s.%s~%s.svc.cluster.local", t, n.IP, n.Name, n.Namespace, n.Namespace)
}

func (n Node) proto() (*core.Node, error) {
	md := map[string]any{
		"NAMESPACE":     n.Namespace,
		"ISTIO_VERSION": "1.31.0",
		"CLUSTER_ID":    "Kubernetes",
		"INSTANCE_IPS":  n.IP,
	}
	for k, v := range n.Metadata {
		md[k] = v
	}
	st, err := structpb.NewStruct(md)
	if err != nil {
		return nil, fmt.Errorf("node metadata: %v", err)
	}
	return &core.Node{Id: n.ID(), Cluster: n.Name + "." + n.Namespace, Metadata: st}, nil
}

// Client is one ADS stream.
type Client struct {
	conn   *grpc.ClientConn
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *core.Node
	cancel context.CancelFunc

	sendMu sync.Mutex

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever a response arrives or the stream ends
	names   map[string][]string
	latest  map[string]*discovery.DiscoveryResponse
	merged  map[string]map[string]*anypb.Any // type -> name -> resource, as a proxy holds them
	counts  map[string]int
	err     error
}

// Dial opens an ADS stream to addr (host:port, plaintext, as istiod's 15010).
func Dial(addr string, node Node) (*Client, error) {
	n, err := node.proto()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
	if err != nil {
		cancel()
		_ = conn.Close()
		return nil, fmt.Errorf("open ADS stream to %s: %v", addr, err)
	}
	c := &Client{
		conn: conn, stream: stream, node: n, cancel: cancel,
		changed: make(chan struct{}),
		names:   map[string][]string{},
		latest:  map[string]*discovery.DiscoveryResponse{},
		merged:  map[string]map[string]*anypb.Any{},
		counts:  map[string]int{},
	}
	go c.receive()
	return c, nil
}

// Close ends the stream.
func (c *Client) Close() {
	c.cancel()
	_ = c.conn.Close()
}

// Watch subscribes to typeURL with the given resource names (nil: wildcard).
// A later Watch of the same type replaces the subscription.
func (c *Client) Watch(typeURL string, names ...string) error {
	c.mu.Lock()
	c.names[typeURL] = names
	var version, nonce string
	if r := c.latest[typeURL]; r != nil {
		version, nonce = r.VersionInfo, r.Nonce
	}
	c.mu.Unlock()
	return c.send(&discovery.DiscoveryRequest{
		Node: c.node, TypeUrl: typeURL, ResourceNames: names, VersionInfo: version, ResponseNonce: nonce,
	})
}

func (c *Client) send(r *discovery.DiscoveryRequest) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.stream.Send(r)
}

func (c *Client) receive() {
	for {
		resp, err := c.stream.Recv()
		c.mu.Lock()
		if err != nil {
			c.err = err
			close(c.changed)
			c.mu.Unlock()
			return
		}
		c.latest[resp.TypeUrl] = resp
		c.counts[resp.TypeUrl]++
		c.merge(resp)
		names := c.names[resp.TypeUrl]
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
		// ACK with the names we are subscribed to.
		_ = c.send(&discovery.DiscoveryRequest{
			Node: c.node, TypeUrl: resp.TypeUrl, ResourceNames: names,
			VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce,
		})
	}
}

// merge keeps what a proxy holds: listeners and clusters are replaced by every
// (state-of-the-world) response, routes and endpoints are updated by name.
func (c *Client) merge(resp *discovery.DiscoveryResponse) {
	m := c.merged[resp.TypeUrl]
	if m == nil || resp.TypeUrl == ListenerType || resp.TypeUrl == ClusterType {
		m = map[string]*anypb.Any{}
		c.merged[resp.TypeUrl] = m
	}
	for _, a := range resp.Resources {
		m[resourceName(a)] = a
	}
}

// resourceName reads the name of the xDS resource types this client is used with.
// Cluster.name, ClusterLoadAssignment.cluster_name, Listener.name and
// RouteConfiguration.name are all field 1: it is read from the wire without decoding
// the rest, so that a test process running a thousand clients beside istiod spends
// its CPU on what istiod sends, not on decoding every resource of every push.
func resourceName(a *anypb.Any) string {
	switch a.GetTypeUrl() {
	case ClusterType, EndpointType, ListenerType, RouteType:
		if n, ok := field1(a.GetValue()); ok {
			return n
		}
	}
	msg, err := a.UnmarshalNew()
	if err != nil {
		return ""
	}
	type named interface{ GetName() string }
	type clusterNamed interface{ GetClusterName() string }
	switch m := msg.(type) {
	case clusterNamed:
		return m.GetClusterName()
	case named:
		return m.GetName()
	}
	return ""
}

// field1 returns the last string value of field 1 of a serialized message (the last
// occurrence wins, as in proto decoding); ok is false when the bytes are malformed.
func field1(b []byte) (name string, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", false
			}
			name, b = string(v), b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
	}
	return name, true
}

// Held returns the resources of a type the client holds, by name.
func (c *Client) Held(typeURL string) map[string]*anypb.Any {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*anypb.Any, len(c.merged[typeURL]))
	for k, v := range c.merged[typeURL] {
		out[k] = v
	}
	return out
}

// Changed returns a channel closed at the next response (or when the stream ends).
func (c *Client) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Err is the stream error once it ended.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Latest returns the last response received for typeURL, or nil.
func (c *Client) Latest(typeURL string) *discovery.DiscoveryResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest[typeURL]
}

// Responses is how many responses of typeURL arrived so far.
func (c *Client) Responses(typeURL string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[typeURL]
}

// Await waits until the latest response of typeURL satisfies ok, and returns it.
// ok is evaluated on the current response first, then on each new one.
func (c *Client) Await(ctx context.Context, typeURL string, ok func(*discovery.DiscoveryResponse) error) (*discovery.DiscoveryResponse, error) {
	var last error = fmt.Errorf("no %s response yet", typeURL)
	for {
		c.mu.Lock()
		resp, changed, serr := c.latest[typeURL], c.changed, c.err
		c.mu.Unlock()
		if resp != nil {
			if last = ok(resp); last == nil {
				return resp, nil
			}
		}
		if serr != nil {
			return nil, fmt.Errorf("stream closed (%v); last mismatch: %v", serr, last)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%v; last mismatch: %v", ctx.Err(), last)
		case <-changed:
		}
	}
}

// AwaitTimeout is Await with a timeout.
func (c *Client) AwaitTimeout(d time.Duration, typeURL string, ok func(*discovery.DiscoveryResponse) error) (*discovery.DiscoveryResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Await(ctx, typeURL, ok)
}

// Decode unmarshals every resource of a response into a new T.
func Decode[T any, PT interface {
	*T
	proto.Message
}](resp *discovery.DiscoveryResponse) ([]PT, error) {
	out := make([]PT, 0, len(resp.GetResources()))
	for _, a := range resp.GetResources() {
		m := PT(new(T))
		if err := anypb.UnmarshalTo(a, m, proto.UnmarshalOptions{}); err != nil {
			return nil, fmt.Errorf("decode %s: %v", a.TypeUrl, err)
		}
		out = append(out, m)
	}
	return out, nil
}
