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
// where, which clusters and endpoints with their ports and weights. Think
// `istioctl proxy-config`, Dubbo-aware, for any istiod reachable on its plaintext xDS
// port.
//
//	dubbo-xds --istiod 127.0.0.1:15010                         # a MOSN consumer's view
//	dubbo-xds --ip 10.0.0.1 --meta DUBBO_APP_PORT=20880        # a provider's sidecar
//	dubbo-xds --kind envoy --json                              # raw JSON of everything
//	dubbo-xds --watch                                          # print again on every push
//	dubbo-xds --check                                          # exit 1 on MOSN conformance violations
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	// Types that appear inside upstream's resources, for --json.
	_ "github.com/cncf/xds/go/udpa/type/v1"

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
	watch := flag.Bool("watch", false, "keep the stream open and print again after every push")
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
	code := show(s, *asJSON, *check)
	if *call != "" {
		callEndpoints(s, *call)
	}
	for *watch {
		<-c.Changed()
		if err := c.Err(); err != nil {
			fail("stream ended: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // let the rest of one push arrive
		if s, err = xdsview.Held(c); err != nil {
			fail("%v", err)
		}
		fmt.Printf("\n--- update at %s ---\n", time.Now().Format("15:04:05.000"))
		show(s, *asJSON, *check)
	}
	os.Exit(code)
}

func show(s conformance.Snapshot, asJSON, check bool) int {
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
			fmt.Println(string(b))
		}
	} else {
		xdsview.Summary(os.Stdout, s)
	}
	if !check {
		return 0
	}
	if v := conformance.Check(s); len(v) > 0 {
		fmt.Printf("MOSN CONFORMANCE: %d violations\n  %s\n", len(v), strings.Join(v, "\n  "))
		return 1
	}
	fmt.Println("MOSN CONFORMANCE: ok")
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
		if !strings.Contains(ep.Cluster, "||") { // main clusters only; subsets repeat them
			continue
		}
		got, err := dubbowire.Invoke(ep.Addr, dubbowire.Call{Service: ep.Interface, Method: method, Args: []any{"dubbo-istiod"}}, 3*time.Second)
		if err != nil {
			got = "ERROR: " + err.Error()
		}
		fmt.Printf("  %-22s %s\n", ep.Addr, got)
	}
}
