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

package zookeeper

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

type listErrorSink struct {
	Sink
	calls []error
}

func (s *listErrorSink) ListError(_, _ string, err error) { s.calls = append(s.calls, err) }

func TestBackoffResetsAfterSuccess(t *testing.T) {
	s := &listErrorSink{}
	w := NewWatcher(Config{Name: "zk"}, s)
	f := &listFailures{iface: "com.example.S"}
	boom := errors.New("boom")
	var got []time.Duration
	for i := 0; i < 7; i++ {
		got = append(got, w.failed(f, "/p", boom))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("backoffs %v, want %v", got, want)
	}
	w.listed(f, "/p")
	w.listed(f, "/p") // a second success reports nothing more
	if d := w.failed(f, "/p", boom); d != time.Second {
		t.Fatalf("first backoff after a success %v, want 1s", d)
	}
	if fmt.Sprint(s.calls) != fmt.Sprint([]error{boom, boom, boom, boom, boom, boom, boom, nil, boom}) {
		t.Fatalf("ListError calls %v", s.calls)
	}
}
