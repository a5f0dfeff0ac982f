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

package zookeeper_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"istio.io/istio/pkg/test/util/retry"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry/registrytest"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/zookeeper"
	zkt "github.com/dubbo-istiod/dubbo-istiod/tests/framework/zk"
)

// zkWait bounds waits on real ZooKeeper state: generous, as CI runs on a loaded 2-core
// machine; a passing test returns as soon as the state is there.
const zkWait = 60 * time.Second

// env is a registry controller and watchers on real ZooKeeper servers.
type env struct {
	ctl      *registry.Controller
	sink     *sink
	rec      *registrytest.Recorder
	watchers []*zookeeper.Watcher
	stop     chan struct{}
}

// sink is the controller as the watchers' Sink, recording ListError calls and able to
// hold SourceConnected calls (as a controller busy under its lock would).
type sink struct {
	*registry.Controller
	stop <-chan struct{}

	mu         sync.Mutex
	listErrors map[string][]error // iface -> every ListError reported, in order
	hold       chan struct{}      // non-nil: SourceConnected waits until it closes
	held       int                // SourceConnected calls that waited
}

func (s *sink) ListError(registry, iface string, err error) {
	s.mu.Lock()
	s.listErrors[iface] = append(s.listErrors[iface], err)
	s.mu.Unlock()
	s.Controller.ListError(registry, iface, err)
}

// ListErrors returns the ListError calls for an interface so far.
func (s *sink) ListErrors(iface string) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.listErrors[iface]...)
}

func (s *sink) SourceConnected(registry string, connected, newSession bool) {
	s.mu.Lock()
	hold := s.hold
	if hold != nil {
		s.held++
	}
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-s.stop:
		}
	}
	s.Controller.SourceConnected(registry, connected, newSession)
}

// Hold makes SourceConnected calls wait until the returned release is called.
func (s *sink) Hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.hold = nil
		s.mu.Unlock()
		close(ch)
	}
}

// Held counts the SourceConnected calls that waited in Hold.
func (s *sink) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

func newEnv(t *testing.T, opts registry.Options, addrs ...string) *env {
	t.Helper()
	return newEnvWith(t, opts, nil, addrs...)
}

// newEnvWith is newEnv with setup applied to each watcher before it runs. The env
// stops when the test ends, and waits until every Run returned.
func newEnvWith(t *testing.T, opts registry.Options, setup func(*zookeeper.Watcher), addrs ...string) *env {
	t.Helper()
	rec := registrytest.NewRecorder()
	ctl, err := registry.NewController(opts, rec)
	if err != nil {
		t.Fatal(err)
	}
	ctl.AppendServiceHandler(rec.FullPush)
	e := &env{ctl: ctl, rec: rec, stop: make(chan struct{})}
	e.sink = &sink{Controller: ctl, stop: e.stop, listErrors: map[string][]error{}}
	var running sync.WaitGroup
	for _, a := range addrs {
		cfg, err := zookeeper.ParseAddress(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := ctl.AddSource(cfg.Name, a); err != nil {
			t.Fatal(err)
		}
		w := zookeeper.NewWatcher(cfg, e.sink)
		if setup != nil {
			setup(w)
		}
		e.watchers = append(e.watchers, w)
		running.Add(1)
		go func() {
			defer running.Done()
			w.Run(e.stop)
		}()
	}
	running.Add(1)
	go func() {
		defer running.Done()
		ctl.Run(e.stop)
	}()
	t.Cleanup(func() {
		close(e.stop)
		done := make(chan struct{})
		go func() { running.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(zkWait):
			t.Errorf("watchers or controller still running %v after stop", zkWait)
		}
	})
	return e
}

func (e *env) waitSynced(t *testing.T) {
	t.Helper()
	retry.UntilSuccessOrFail(t, func() error {
		if !e.ctl.HasSynced() {
			return fmt.Errorf("registry not synced")
		}
		return nil
	}, retry.Timeout(zkWait))
}

// eventually waits (up to zkWait) for a condition on real ZooKeeper state.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	retry.UntilSuccessOrFail(t, f, retry.Timeout(zkWait))
}

func wantAddrs(r *registrytest.Recorder, h string, want ...string) func() error {
	return r.WantAddrs(h, want...)
}

// zkAddr is the --dubboRegistry value for a test server.
func zkAddr(s *zkt.Server, params string) string {
	a := "zookeeper://" + s.Addr + "?session-timeout=4s"
	if params != "" {
		a += "&" + params
	}
	return a
}
