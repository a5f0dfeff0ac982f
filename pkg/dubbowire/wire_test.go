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

package dubbowire

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRoundTripOverTCP(t *testing.T) {
	s, err := Listen("127.0.0.1:0", func(c Call) (any, error) {
		if c.Method == "fail" {
			return nil, errors.New("boom")
		}
		return fmt.Sprintf("%s.%s(%v) v=%s env=%s", c.Service, c.Method, c.Args, c.Version, c.Attachments["env"]), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := Invoke(s.Addr(), Call{Service: "com.example.DemoService", Version: "2.0.0", Method: "sayHello",
		Args: []any{"world"}, Attachments: map[string]string{"env": "gray"}}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := "com.example.DemoService.sayHello([world]) v=2.0.0 env=gray"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := Invoke(s.Addr(), Call{Service: "x", Method: "fail", Args: []any{}}, 3*time.Second); err == nil {
		t.Fatal("a provider error was not reported")
	}
}
