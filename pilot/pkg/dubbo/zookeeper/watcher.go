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

// Package zookeeper watches Dubbo providers in ZooKeeper (interface-level registration,
// /<root>/<interface>/providers/<encoded URL>) and reports them to the Dubbo registry.
//
// Every watched path has its own loop: list the children with a watch, report them,
// wait for the watch, list again. A burst of changes therefore collapses into one
// re-list that always reads the latest state. Watches are re-armed after every event; a
// lost session invalidates them, and each loop re-lists once the client has a session
// again. While the client is disconnected nothing is reported, so the last known
// providers stay served.
package zookeeper

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/dubbolog"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

var scope = dubbolog.Scope

// Sink receives what a registry lists (the Dubbo registry controller).
type Sink interface {
	SetProviders(registry, iface string, nodes []string, observed time.Time)
	RemoveInterface(registry, iface string, observed time.Time)
	SourceConnected(registry string, connected, newSession bool)
	SourceSynced(registry string)
}

// reserved children of the root that are not interfaces (Dubbo 2.7+/3 config center,
// service-name mapping and metadata report).
var reserved = map[string]bool{"config": true, "mapping": true, "metadata": true}

const (
	providersDir = "providers"
	retryBackoff = time.Second
	maxBuffer    = 128 << 20
)

// Watcher is one ZooKeeper registry.
type Watcher struct {
	cfg  Config
	sink Sink

	conn *zk.Conn

	// deliverMu orders what reaches the sink: a retired interface loop can never
	// report after its interface was removed.
	deliverMu sync.Mutex

	mu          sync.Mutex
	ready       chan struct{} // closed while the client has a session
	connected   bool
	sessionID   int64
	watching    map[string]chan struct{} // interface -> stop of its loop
	pending     map[string]bool          // interfaces whose first list is still due
	rootListed  bool
	syncedSent  bool
	badChildren map[string]bool
}

// NewWatcher creates a watcher; Run connects.
func NewWatcher(cfg Config, sink Sink) *Watcher {
	return &Watcher{
		cfg:         cfg,
		sink:        sink,
		ready:       make(chan struct{}),
		watching:    map[string]chan struct{}{},
		pending:     map[string]bool{},
		badChildren: map[string]bool{},
	}
}

type zkLogger struct{ name string }

func (l zkLogger) Printf(format string, args ...any) {
	scope.Debugf("zookeeper %s: %s", l.name, fmt.Sprintf(format, args...))
}

// Run connects and watches until stop closes. It never returns early: an unreachable
// ZooKeeper is retried forever (the client reconnects on its own).
func (w *Watcher) Run(stop <-chan struct{}) {
	conn, events, err := zk.Connect(w.cfg.Servers, w.cfg.SessionTimeout,
		zk.WithLogger(zkLogger{w.cfg.Name}), zk.WithMaxBufferSize(maxBuffer))
	if err != nil {
		// Only on malformed server lists, which ParseAddress already rejects.
		scope.Errorf("registry %s: cannot create ZooKeeper client: %v", w.cfg.Name, err)
		return
	}
	w.conn = conn
	scope.Infof("registry %s: watching %s on ZooKeeper %v", w.cfg.Name, w.cfg.Root, w.cfg.Servers)
	go w.watchRoot(stop)
	for {
		select {
		case <-stop:
			conn.Close()
			w.stopAll()
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Type == zk.EventSession {
				w.onSession(ev.State)
			}
		}
	}
}

func (w *Watcher) onSession(state zk.State) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch state {
	case zk.StateHasSession:
		id := w.conn.SessionID()
		newSession := w.sessionID != 0 && id != w.sessionID
		first := w.sessionID == 0
		w.sessionID = id
		if !w.connected {
			w.connected = true
			close(w.ready)
			switch {
			case first:
				scope.Infof("registry %s: connected (session 0x%x)", w.cfg.Name, id)
			case newSession:
				scope.Warnf("registry %s: reconnected with a NEW session 0x%x: re-listing every interface", w.cfg.Name, id)
			default:
				scope.Infof("registry %s: reconnected (session 0x%x kept)", w.cfg.Name, id)
			}
			w.sink.SourceConnected(w.cfg.Name, true, newSession)
		}
	case zk.StateDisconnected, zk.StateConnecting, zk.StateExpired:
		if state == zk.StateExpired {
			scope.Warnf("registry %s: session expired; providers stay served until the new session re-lists them", w.cfg.Name)
		}
		if w.connected {
			w.connected = false
			w.ready = make(chan struct{})
			scope.Warnf("registry %s: disconnected from ZooKeeper (%v); serving the last known providers", w.cfg.Name, state)
			w.sink.SourceConnected(w.cfg.Name, false, false)
		}
	}
}

// waitSession blocks until the client has a session; false when stopping.
func (w *Watcher) waitSession(stop <-chan struct{}) bool {
	w.mu.Lock()
	ready := w.ready
	w.mu.Unlock()
	select {
	case <-ready:
		return true
	case <-stop:
		return false
	}
}

func sleep(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// list reads the children of p and returns a watch; missing nodes are watched for
// creation (exists=false). It retries until it succeeds or stop closes.
func (w *Watcher) list(p string, stop <-chan struct{}) (children []string, exists bool, watch <-chan zk.Event, ok bool) {
	for {
		if !w.waitSession(stop) {
			return nil, false, nil, false
		}
		children, _, ch, err := w.conn.ChildrenW(p)
		if err == nil {
			return children, true, ch, true
		}
		if errors.Is(err, zk.ErrNoNode) {
			found, _, ch, err := w.conn.ExistsW(p)
			if err == nil && !found {
				return nil, false, ch, true
			}
			if err == nil {
				continue // created in between: list it
			}
		}
		scope.Debugf("registry %s: list %s: %v (retrying)", w.cfg.Name, p, err)
		if !sleep(retryBackoff, stop) {
			return nil, false, nil, false
		}
	}
}

// waitWatch waits for a watch event; it reports whether to list again.
func waitWatch(ch <-chan zk.Event, stop <-chan struct{}) (time.Time, bool) {
	select {
	case <-ch:
		// Any event (children changed, created, deleted, or "not watching" after a lost
		// session) means: list again once there is a session.
		return time.Now(), true
	case <-stop:
		return time.Time{}, false
	}
}

func (w *Watcher) watchRoot(stop <-chan struct{}) {
	for {
		children, _, watch, ok := w.list(w.cfg.Root, stop)
		if !ok {
			return
		}
		w.setInterfaces(children, stop)
		if _, ok := waitWatch(watch, stop); !ok {
			return
		}
	}
}

// setInterfaces starts a loop for every new interface and retires the removed ones.
func (w *Watcher) setInterfaces(children []string, stop <-chan struct{}) {
	now := time.Now()
	current := map[string]string{} // interface -> child name as stored
	for _, child := range children {
		iface, err := url.QueryUnescape(child)
		if err != nil || reserved[iface] || !provider.ValidInterface(iface) {
			w.mu.Lock()
			bad := !reserved[iface] && !w.badChildren[child]
			if bad {
				w.badChildren[child] = true
			}
			w.mu.Unlock()
			if bad {
				if len(child) > 200 {
					child = child[:200] + "..."
				}
				scope.Warnf("registry %s: %s/%s is not a Dubbo interface; ignored", w.cfg.Name, w.cfg.Root, child)
			}
			continue
		}
		current[iface] = child
	}
	w.mu.Lock()
	var started []string
	for iface, child := range current {
		if _, ok := w.watching[iface]; ok {
			continue
		}
		ifStop := make(chan struct{})
		w.watching[iface] = ifStop
		if !w.syncedSent {
			w.pending[iface] = true
		}
		started = append(started, iface)
		go w.watchInterface(iface, path.Join(w.cfg.Root, child, providersDir), ifStop, stop)
	}
	var removed []string
	for iface, ifStop := range w.watching {
		if _, ok := current[iface]; !ok {
			close(ifStop)
			delete(w.watching, iface)
			delete(w.pending, iface)
			removed = append(removed, iface)
		}
	}
	w.rootListed = true
	w.mu.Unlock()
	if len(removed) > 0 {
		w.deliverMu.Lock()
		for _, iface := range removed {
			w.sink.RemoveInterface(w.cfg.Name, iface, now)
		}
		w.deliverMu.Unlock()
	}
	if len(started) > 0 || len(removed) > 0 {
		scope.Debugf("registry %s: %d interfaces (+%d -%d)", w.cfg.Name, len(current), len(started), len(removed))
	}
	w.maybeSynced()
}

func (w *Watcher) watchInterface(iface, p string, ifStop chan struct{}, stop <-chan struct{}) {
	both := make(chan struct{})
	go func() {
		select {
		case <-ifStop:
		case <-stop:
		}
		close(both)
	}()
	observed := time.Now()
	for {
		children, exists, watch, ok := w.list(p, both)
		if !ok {
			return
		}
		if !exists {
			children = nil
		}
		if !w.deliver(iface, ifStop, children, observed) {
			return // retired while listing: the interface is gone
		}
		w.maybeSynced()
		if observed, ok = waitWatch(watch, both); !ok {
			return
		}
	}
}

// deliver reports an interface's providers unless its loop was retired.
func (w *Watcher) deliver(iface string, ifStop chan struct{}, children []string, observed time.Time) bool {
	w.deliverMu.Lock()
	defer w.deliverMu.Unlock()
	w.mu.Lock()
	live := w.watching[iface] == ifStop
	delete(w.pending, iface)
	w.mu.Unlock()
	if live {
		w.sink.SetProviders(w.cfg.Name, iface, children, observed)
	}
	return live
}

func (w *Watcher) maybeSynced() {
	w.mu.Lock()
	done := w.rootListed && len(w.pending) == 0 && !w.syncedSent
	if done {
		w.syncedSent = true
	}
	w.mu.Unlock()
	if done {
		w.sink.SourceSynced(w.cfg.Name)
	}
}

func (w *Watcher) stopAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for iface, ifStop := range w.watching {
		close(ifStop)
		delete(w.watching, iface)
	}
}

// Connected reports whether the watcher holds a session.
func (w *Watcher) Connected() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.connected
}
