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

// Command dubbo-xds connects to an istiod as a chosen proxy (a MOSN or an Envoy sidecar)
// and prints what that proxy receives, the Dubbo way: which listeners, which call goes
// where, each inbound port's TLS and RBAC, which clusters (with their TLS) and endpoints
// with their ports and weights. Think
// `istioctl proxy-config`, Dubbo-aware, for any istiod reachable on its plaintext xDS
// port.
//
//	dubbo-xds --istiod 127.0.0.1:15010                         # a MOSN consumer's view
//	dubbo-xds --ip 10.0.0.1 --meta DUBBO_APP_PORT=20880        # a provider's sidecar
//	dubbo-xds --ip 10.0.0.1 --meta INTERCEPTION_MODE=REDIRECT  # an intercepted provider's (virtualInbound)
//	dubbo-xds --kind envoy --json                              # raw JSON of everything
//	dubbo-xds --watch                                          # print again as each push arrives
//	dubbo-xds --check                                          # exit 1 on MOSN conformance violations
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	// Types that appear inside upstream's resources, for --json: every Envoy extension
	// istiod may emit (upstream's own list), e.g. grpc_stats on a Triple (gRPC) port.
	_ "github.com/cncf/xds/go/udpa/type/v1"
	_ "istio.io/istio/pkg/config/xds"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/adsclient"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/dubbowire"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/mosn/conformance"
	"github.com/dubbo-istiod/dubbo-istiod/pkg/xdsview"
)

type metaFlags map[string]any

func (m metaFlags) String() string { return fmt.Sprint(map[string]any(m)) }
func (m metaFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	m[k] = val
	return nil
}

func main() {
	meta := metaFlags{}
	istiod := flag.String("istiod", "127.0.0.1:15010", "istiod plaintext xDS address")
	kind := flag.String("kind", "mosn", "proxy to present as: mosn (GENERATOR=mosn) or envoy")
	ip := flag.String("ip", "10.255.0.1", "the proxy's IP (a provider's IP gets the provider view)")
	name := flag.String("name", "dubbo-xds", "pod name")
	ns := flag.String("namespace", "default", "pod namespace")
	flag.Var(meta, "meta", "extra node metadata KEY=VALUE (repeatable), e.g. DUBBO_OUTBOUND_PORT=20881")
	asJSON := flag.Bool("json", false, "print every resource as JSON instead of the Dubbo summary")
	watch := flag.Bool("watch", false, "keep the stream open and print the view again as each response arrives")
	check := flag.Bool("check", false, "check the resources against what MOSN accepts; exit 1 on violations")
	timeout := flag.Duration("timeout", 30*time.Second, "how long to wait for each response")
	call := flag.String("call", "", "make a real Dubbo call of this method to every endpoint of the main Dubbo clusters")
	flag.Parse()

	var node adsclient.Node
	switch *kind {
	case "mosn":
		node = xdsview.Node(*ip, *name, *ns, meta)
	case "envoy":
		node = adsclient.Node{IP: *ip, Name: *name, Namespace: *ns, Metadata: meta}
	default:
		fail("--kind must be mosn or envoy")
	}
	c, err := adsclient.Dial(*istiod, node)
	if err != nil {
		fail("%v", err)
	}
	defer c.Close()
	s, err := xdsview.Sync(c, *timeout)
	if err != nil {
		fail("%s: %v", *istiod, err)
	}
	seen := responseCounts(c) // what the first view shows (a later push prints again)
	code := show(os.Stdout, s, *asJSON, *check)
	if *call != "" {
		callEndpoints(s, *call)
	}
	if *watch {
		watchLoop(c, s, seen, *asJSON, *check)
	}
	os.Exit(code)
}

// watchTypes are the xDS types a watching sidecar follows, in the order a push sends them.
var watchTypes = []struct{ url, short string }{
	{adsclient.ClusterType, "CDS"},
	{adsclient.EndpointType, "EDS"},
	{adsclient.ListenerType, "LDS"},
	{adsclient.RouteType, "RDS"},
}

// watchLoop prints the view again as each response arrives: no poll interval, so the
// header's time is when the proxy got the push. A push of several types (a full push:
// CDS, EDS, LDS, RDS) prints once per response, each showing what the proxy holds at
// that moment, as MOSN holds it. Like MOSN (and Envoy), it asks for the endpoints of the
// EDS clusters each CDS response names and for the routes each LDS response names, so
// the view follows new clusters and route configurations.
func watchLoop(c *adsclient.Client, s conformance.Snapshot, seen map[string]int, asJSON, check bool) {
	eds, rds := edsNames(s.Clusters), xdsview.RouteNames(s.Listeners)
	for {
		changed := c.Changed() // before reading the counts: a response after this closes it
		now := responseCounts(c)
		var arrived []string
		for _, t := range watchTypes {
			if now[t.url] != seen[t.url] {
				arrived = append(arrived, t.short)
			}
		}
		if len(arrived) == 0 {
			<-changed
			if err := c.Err(); err != nil {
				fail("stream ended: %v", err)
			}
			continue
		}
		seen = now
		at := time.Now()
		var err error
		if s, err = xdsview.Held(c); err != nil {
			fail("%v", err)
		}
		if names := edsNames(s.Clusters); !slices.Equal(names, eds) && len(names) > 0 {
			eds = names
			if err := c.Watch(adsclient.EndpointType, eds...); err != nil {
				fail("%v", err)
			}
		}
		if names := xdsview.RouteNames(s.Listeners); !slices.Equal(names, rds) && len(names) > 0 {
			rds = names
			if err := c.Watch(adsclient.RouteType, rds...); err != nil {
				fail("%v", err)
			}
		}
		// One write per update, so a reader of the log never sees half an update.
		var b bytes.Buffer
		fmt.Fprintf(&b, "\n--- update at %s (%s) ---\n", at.Format("15:04:05.000"), strings.Join(arrived, ", "))
		show(&b, s, asJSON, check)
		_, _ = os.Stdout.Write(b.Bytes())
	}
}

func responseCounts(c *adsclient.Client) map[string]int {
	out := map[string]int{}
	for _, t := range watchTypes {
		out[t.url] = c.Responses(t.url)
	}
	return out
}

// edsNames are the names MOSN asks EDS for after a CDS response: every EDS cluster's.
func edsNames(cs []*cluster.Cluster) []string {
	var out []string
	for _, cl := range cs {
		if cl.GetType() == cluster.Cluster_EDS {
			out = append(out, cl.Name)
		}
	}
	sort.Strings(out)
	return out
}

func show(w io.Writer, s conformance.Snapshot, asJSON, check bool) int {
	if asJSON {
		var msgs []proto.Message
		for _, m := range s.Listeners {
			msgs = append(msgs, m)
		}
		for _, m := range s.Routes {
			msgs = append(msgs, m)
		}
		for _, m := range s.Clusters {
			msgs = append(msgs, m)
		}
		for _, m := range s.Endpoints {
			msgs = append(msgs, m)
		}
		for _, m := range msgs {
			b, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(m)
			if err != nil {
				fail("%v", err)
			}
			fmt.Fprintln(w, string(b))
		}
	} else {
		xdsview.Summary(w, s)
	}
	if !check {
		return 0
	}
	if v := conformance.Check(s); len(v) > 0 {
		fmt.Fprintf(w, "MOSN CONFORMANCE: %d violations\n  %s\n", len(v), strings.Join(v, "\n  "))
		return 1
	}
	fmt.Fprintln(w, "MOSN CONFORMANCE: ok")
	return 0
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "dubbo-xds: "+format+"\n", args...)
	os.Exit(2)
}

// callEndpoints proves the published endpoints are real Dubbo providers on their own ports.
func callEndpoints(s conformance.Snapshot, method string) {
	fmt.Printf("REAL DUBBO CALLS (%s) to every endpoint istiod published\n", method)
	for _, ep := range xdsview.DubboEndpoints(s) {
		if !strings.Contains(ep.Cluster, "||") || ep.Triple { // main clusters only (subsets repeat them); Dubbo ones
			continue
		}
		got, err := dubbowire.Invoke(ep.Addr, dubbowire.Call{Service: ep.Interface, Method: method, Args: []any{"dubbo-istiod"}}, 3*time.Second)
		if err != nil {
			got = "ERROR: " + err.Error()
		}
		fmt.Printf("  %-22s %s\n", ep.Addr, got)
	}
}
