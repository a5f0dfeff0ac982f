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
	"time"

	"github.com/go-zookeeper/zk"
)

// The application level (Dubbo 3): /<ServicesRoot>/<app>/<ip:port> instance nodes, one
// per protocol port of an instance, each a Curator ServiceInstance JSON body. Every
// application has its own loop, like an interface: list its instances with a watch
// (again only when that watch fires), read the body of each instance not read yet with
// a data watch (Dubbo rewrites the body when an instance's metadata revision changes),
// report, wait for any of the watches, again. A body is re-read only when its own watch
// fires, so a busy application costs one read per changed instance, and no watch is
// registered twice. A body that fails to read is retried with its own backoff.

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
	if _, _, ok := w.waitSession(ctx.Done()); !ok {
		return nil, ctx.Err()
	}
	p := path.Join(w.cfg.Root, app, revision)
	body, _, err := w.conn.Get(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, errors.New(p + " does not exist")
	}
	return body, err
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

// instanceNode is an instance body as last read, and the data watch armed by that read
// (nil: the body must be read again).
type instanceNode struct {
	body  []byte
	watch <-chan zk.Event
	fails *listFailures // consecutive failed reads (backoff, warnings, dubboz)
	next  time.Time     // no read before this after a failure
}

func (w *Watcher) watchApp(app, p string, appStop chan struct{}, stop <-chan struct{}) {
	w.watchBodies(p, w.appSource, nil, appStop, stop, func(nodes map[string]*instanceNode, observed time.Time) bool {
		if !w.deliverApp(app, appStop, nodes, observed) {
			return false
		}
		w.maybeAppsListed()
		return true
	})
}

// watchBodies watches the children of p and their bodies (the bodies of the children
// read accepts; nil: all) until loopStop or stop closes or deliver returns false.
// deliver gets the children as last read after every change; src names the source
// list errors are reported as.
func (w *Watcher) watchBodies(p, src string, read func(string) bool, loopStop chan struct{}, stop <-chan struct{},
	deliver func(nodes map[string]*instanceNode, observed time.Time) bool,
) {
	both, done := w.either(loopStop, stop)
	defer done()
	f := &listFailures{source: src, iface: p}
	nodes := map[string]*instanceNode{}
	var children []string
	var childrenWatch <-chan zk.Event
	relist := true
	observed := time.Now()
	defer func() {
		for n, in := range nodes {
			if in.fails != nil && in.fails.failures > 0 {
				w.sink.ListError(src, path.Join(p, n), nil) // gone with its loop
			}
		}
	}()
	for {
		if relist {
			var exists, ok bool
			children, exists, childrenWatch, ok = w.list(p, f, both)
			if !ok {
				return
			}
			if !exists {
				children = nil
			}
			relist = false
			listed := map[string]bool{}
			for _, c := range children {
				if read != nil && !read(c) {
					continue
				}
				listed[c] = true
				if nodes[c] == nil {
					nodes[c] = &instanceNode{}
				}
			}
			for c, in := range nodes {
				if !listed[c] {
					if in.fails != nil && in.fails.failures > 0 {
						w.sink.ListError(src, path.Join(p, c), nil)
					}
					delete(nodes, c)
				}
			}
		}
		// Read the bodies that need it: new instances, changed ones, failed ones when due.
		// A failed read keeps the body read before, if any: a connection hiccup never
		// takes an instance out.
		var retry time.Duration
		now := time.Now()
		for _, c := range children {
			in := nodes[c]
			if in == nil || in.watch != nil {
				continue
			}
			if now.Before(in.next) {
				retry = minPositive(retry, in.next.Sub(now))
				continue
			}
			np := path.Join(p, c)
			body, _, dw, err := w.conn.GetW(np)
			switch {
			case err == nil:
				in.body, in.watch = body, dw
				if in.fails != nil {
					w.listed(in.fails, np)
				}
			case errors.Is(err, zk.ErrNoNode):
				// gone since the list: the children watch fires
			case connectionError(err):
				retry = minPositive(retry, reconnectRetry)
			default:
				if in.fails == nil {
					in.fails = &listFailures{source: src, iface: np}
				}
				d := w.failed(in.fails, np, err)
				in.next = now.Add(d)
				retry = minPositive(retry, d)
			}
		}
		if !deliver(nodes, observed) {
			return
		}

		// Wait for the children watch, a data watch, or a due retry.
		cases := []reflect.SelectCase{
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(both)},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(childrenWatch)},
		}
		var names []string
		for _, c := range children {
			if in := nodes[c]; in != nil && in.watch != nil {
				names = append(names, c)
				cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(in.watch)})
			}
		}
		var timer *time.Timer
		if retry > 0 {
			timer = time.NewTimer(retry)
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
		}
		i, v, _ := reflect.Select(cases)
		if timer != nil {
			timer.Stop()
		}
		observed = time.Now()
		switch {
		case i == 0:
			return
		case i == 1:
			relist = true
		case i-2 < len(names):
			ev, _ := v.Interface().(zk.Event)
			if ev.Type == zk.EventNotWatching {
				// The session is gone: every watch fired; read everything again once there is
				// a session (bodies kept meanwhile).
				relist = true
				for _, in := range nodes {
					in.watch = nil
				}
				break
			}
			nodes[names[i-2]].watch = nil // changed (or deleted: the children watch fires too)
		}
	}
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || b < a {
		return b
	}
	return a
}

// deliverApp reports an application's instances (those with a body) unless its loop
// was retired.
func (w *Watcher) deliverApp(app string, appStop chan struct{}, nodes map[string]*instanceNode, observed time.Time) bool {
	w.deliverMu.Lock()
	defer w.deliverMu.Unlock()
	w.mu.Lock()
	live := w.appWatching[app] == appStop
	delete(w.appPending, app)
	w.mu.Unlock()
	if live {
		out := make(map[string][]byte, len(nodes))
		for n, in := range nodes {
			if in.body != nil || in.watch != nil {
				out[n] = in.body
			}
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
