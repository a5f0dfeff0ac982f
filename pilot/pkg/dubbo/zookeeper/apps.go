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
	"context"
	"errors"
	"path"
	"reflect"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"
)

// The application level (Dubbo 3): /<ServicesRoot>/<app>/<ip:port> instance nodes, one
// per protocol port of an instance, each a Curator ServiceInstance JSON body. Every
// application has its own loop, like an interface: list its instances with a watch,
// read the body of each instance not read yet with a data watch (Dubbo rewrites the
// body when an instance's metadata revision changes), report, wait for any of the
// watches, again. Bodies are re-read only when their own watch fires, so a busy
// application costs one read per changed instance, not one per instance.

// AppSink receives the application level of a registry (appdiscovery.Source).
type AppSink interface {
	// SetInstances replaces an application's instance nodes (node name -> body).
	SetInstances(app string, bodies map[string][]byte, observed time.Time)
	// RemoveApp reports that the application's node is gone.
	RemoveApp(app string, observed time.Time)
	// Listed reports that every application was listed once.
	Listed()
}

// SetAppSink reads the application level into sink, reported to the Dubbo registry as
// the source named source (before Run).
func (w *Watcher) SetAppSink(sink AppSink, source string) {
	w.apps, w.appSource = sink, source
}

// RemoteMetadata reads an application revision's metadata from the registry's metadata
// report: the node /<Root>/<app>/<revision> (Dubbo 3's remote metadata storage).
func (w *Watcher) RemoteMetadata(ctx context.Context, app, revision string) ([]byte, error) {
	if _, _, ok := w.waitSessionCtx(ctx); !ok {
		return nil, ctx.Err()
	}
	p := path.Join(w.cfg.Root, app, revision)
	body, _, err := w.conn.Get(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, errors.New(p + " does not exist")
	}
	return body, err
}

func (w *Watcher) waitSessionCtx(ctx context.Context) (int64, <-chan struct{}, bool) {
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
			return
		}
		close(stop)
	}()
	id, changed, ok := w.waitSession(ctx.Done())
	select {
	case <-stop:
	default:
		close(stop)
	}
	return id, changed, ok
}

func (w *Watcher) watchApps(stop <-chan struct{}) {
	f := &listFailures{source: w.appSource, iface: w.cfg.ServicesRoot}
	for {
		children, _, watch, ok := w.list(w.cfg.ServicesRoot, f, stop)
		if !ok {
			return
		}
		w.setApps(children, stop)
		if _, ok := waitWatch(watch, stop); !ok {
			return
		}
	}
}

// setApps starts a loop for every new application and retires the removed ones.
func (w *Watcher) setApps(children []string, stop <-chan struct{}) {
	now := time.Now()
	current := map[string]bool{}
	for _, c := range children {
		current[c] = true
	}
	w.mu.Lock()
	for app := range current {
		if _, ok := w.appWatching[app]; ok {
			continue
		}
		appStop := make(chan struct{})
		w.appWatching[app] = appStop
		if !w.appsListedSent {
			w.appPending[app] = true
		}
		w.loops.Add(1)
		go func() {
			defer w.loops.Done()
			w.watchApp(app, path.Join(w.cfg.ServicesRoot, app), appStop, stop)
		}()
	}
	var removed []string
	for app, appStop := range w.appWatching {
		if !current[app] {
			close(appStop)
			delete(w.appWatching, app)
			delete(w.appPending, app)
			removed = append(removed, app)
		}
	}
	w.appsRootListed = true
	w.mu.Unlock()
	if len(removed) > 0 {
		w.deliverMu.Lock()
		for _, app := range removed {
			w.apps.RemoveApp(app, now)
		}
		w.deliverMu.Unlock()
	}
	w.maybeAppsListed()
}

// armed is an instance body read with a data watch that has not fired yet.
type armed struct {
	body  []byte
	watch <-chan zk.Event
}

func (w *Watcher) watchApp(app, p string, appStop chan struct{}, stop <-chan struct{}) {
	both, done := make(chan struct{}), make(chan struct{})
	defer close(done)
	w.loops.Add(1)
	go func() {
		defer w.loops.Done()
		defer close(both)
		select {
		case <-appStop:
		case <-stop:
		case <-done:
		}
	}()
	f := &listFailures{source: w.appSource, iface: p}
	bodies := map[string]*armed{}
	observed := time.Now()
	for {
		children, exists, watch, ok := w.list(p, f, both)
		if !ok {
			return
		}
		if !exists {
			children = nil
		}
		cur := make(map[string]*armed, len(children))
		var retry time.Duration // an instance that failed to read is read again after it
		for _, c := range children {
			if a := bodies[c]; a != nil {
				cur[c] = a
				continue
			}
			body, _, dw, err := w.conn.GetW(path.Join(p, c))
			switch {
			case err == nil:
				cur[c] = &armed{body: body, watch: dw}
			case errors.Is(err, zk.ErrNoNode):
				// gone since the list: the children watch fires
			case connectionError(err):
				// the next list waits for the session and reads it again
			default:
				retry = w.failed(f, path.Join(p, c), err)
			}
		}
		bodies = cur
		if !w.deliverApp(app, appStop, bodies, observed) {
			return
		}
		w.maybeAppsListed()
		// Wait for the children watch or any armed data watch.
		cases := []reflect.SelectCase{
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(both)},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(watch)},
		}
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range bodies {
				if !yield(n) {
					return
				}
			}
		})
		for _, n := range names {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(bodies[n].watch)})
		}
		var timer *time.Timer
		if retry > 0 {
			timer = time.NewTimer(retry)
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
		}
		i, _, _ := reflect.Select(cases)
		if timer != nil {
			timer.Stop()
		}
		if i == 0 {
			return
		}
		observed = time.Now()
		if i >= 2 && i-2 < len(names) {
			delete(bodies, names[i-2]) // its body changed (or it went): read it again
		}
	}
}

// deliverApp reports an application's instances unless its loop was retired.
func (w *Watcher) deliverApp(app string, appStop chan struct{}, bodies map[string]*armed, observed time.Time) bool {
	w.deliverMu.Lock()
	defer w.deliverMu.Unlock()
	w.mu.Lock()
	live := w.appWatching[app] == appStop
	delete(w.appPending, app)
	w.mu.Unlock()
	if live {
		out := make(map[string][]byte, len(bodies))
		for n, a := range bodies {
			out[n] = a.body
		}
		w.apps.SetInstances(app, out, observed)
	}
	return live
}

func (w *Watcher) maybeAppsListed() {
	w.mu.Lock()
	done := w.appsRootListed && len(w.appPending) == 0 && !w.appsListedSent
	if done {
		w.appsListedSent = true
	}
	w.mu.Unlock()
	if done {
		w.apps.Listed()
	}
}

func (w *Watcher) stopApps() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for app, appStop := range w.appWatching {
		close(appStop)
		delete(w.appWatching, app)
	}
}
