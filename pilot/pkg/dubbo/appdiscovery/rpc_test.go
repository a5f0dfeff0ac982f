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

package appdiscovery

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/dubbowire"
)

// metadataServer is a Dubbo (Hessian2) endpoint answering getMetadataInfo with answer;
// it records the calls. The end-to-end tests call real dubbo-go MetadataServices; this
// one gives the answers a real provider cannot be made to give.
func metadataServer(t *testing.T, answer func(dubbowire.Call) (any, error)) (*Instance, *[]dubbowire.Call) {
	t.Helper()
	var calls []dubbowire.Call
	s, err := dubbowire.Listen("127.0.0.1:0", func(c dubbowire.Call) (any, error) {
		calls = append(calls, c)
		return answer(c)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	_, port, _ := net.SplitHostPort(s.Addr())
	in, err := ParseCuratorInstance("greet", instanceBody("greet", "127.0.0.1", 20880, map[string]string{
		KeyMetadataService: `{"group":"greet","port":"` + port + `","protocol":"dubbo","version":"1.0.0"}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	return in, &calls
}

func TestFetchMetadataRPC(t *testing.T) {
	info := &MetadataInfo{App: "greet", Revision: "bed905b6", Services: map[string]*ServiceInfo{
		"com.example.GreetService:dubbo": {Name: "com.example.GreetService", Protocol: "dubbo", Port: 20880,
			Path: "com.example.GreetService", Params: map[string]string{"application": "greet", "methods": "SayHello"}},
	}}
	cases := []struct {
		name   string
		answer func(dubbowire.Call) (any, error)
		reason Reason
	}{
		{name: "MetadataInfo object", answer: func(dubbowire.Call) (any, error) { return info, nil }},
		{name: "JSON string (older Java providers)", answer: func(dubbowire.Call) (any, error) { return metadataJSON, nil }},
		{name: "null", answer: func(dubbowire.Call) (any, error) { return nil, nil }, reason: ReasonMetadataBody},
		{name: "a number", answer: func(dubbowire.Call) (any, error) { return int64(42), nil }, reason: ReasonMetadataBody},
		{name: "garbage string", answer: func(dubbowire.Call) (any, error) { return "garbage", nil }, reason: ReasonMetadataBody},
		{name: "service error", answer: func(dubbowire.Call) (any, error) { return nil, fmt.Errorf("no such revision") }, reason: ReasonMetadataFetch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, calls := metadataServer(t, tc.answer)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			m, err := FetchMetadataRPC(ctx, in)
			if len(*calls) != 1 {
				t.Fatalf("%d calls, want 1", len(*calls))
			}
			c := (*calls)[0]
			if c.Service != MetadataServiceName || c.Method != "getMetadataInfo" || c.Version != "1.0.0" ||
				len(c.Args) != 1 || c.Args[0] != "bed905b6" || c.Attachments["group"] != "greet" {
				t.Fatalf("call %+v", c)
			}
			if tc.reason != "" {
				if ReasonOf(err) != string(tc.reason) {
					t.Fatalf("err %v, want reason %s", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Services["com.example.GreetService:dubbo"] == nil || m.Services["com.example.GreetService:dubbo"].Port != 20880 {
				t.Fatalf("decoded %+v", m)
			}
		})
	}
}

func TestFetchMetadataRPCUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close() // nothing listens there now
	in, _ := ParseCuratorInstance("greet", instanceBody("greet", "127.0.0.1", 20880, map[string]string{
		KeyMetadataService: `{"port":"` + port + `","protocol":"dubbo"}`}))
	_, err = FetchMetadataRPC(context.Background(), in)
	if ReasonOf(err) != string(ReasonMetadataFetch) || !strings.Contains(err.Error(), "127.0.0.1:"+port) {
		t.Fatalf("err %v, want %s naming the address", err, ReasonMetadataFetch)
	}
	in.MetadataService["protocol"] = "tri"
	if _, err := FetchMetadataRPC(context.Background(), in); ReasonOf(err) != string(ReasonMetadataService) {
		t.Fatalf("MetadataService over tri: %v", err)
	}
}
