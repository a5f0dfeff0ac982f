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
//
// Session state is read from the client itself (Conn.State/SessionID) whenever its event
// callback says it changed, never from its event channel: go-zookeeper drops events when
// that 6-slot channel is full, and a dropped StateHasSession would leave every loop
// waiting for a session forever.
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
	// ListError reports a failed list of an interface's providers (iface "" = the registry root);
	// called on every failed attempt, and once with err == nil when the path lists again.
	ListError(registry, iface string, err error)
}

// reserved children of the root that are not interfaces (Dubbo 2.7+/3 config center,
// service-name mapping and metadata report).
var reserved = map[string]bool{"config": true, "mapping": true, "metadata": true}

const (
	providersDir = "providers"
	maxBuffer    = 128 << 20

	// reconnectRetry paces retries of a list that failed because the client lost its
	// connection (the session state catches up meanwhile).
	reconnectRetry = time.Second
	// A list that fails with a session is retried with exponential backoff (a
	// persistent error, e.g. a providers node whose ACL denies us, must not cost a
	// request per second forever), and warned about at most once per warnEvery.
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	warnEvery  = time.Minute
)

// Watcher is one ZooKeeper registry.
type Watcher struct {
	cfg  Config
	sink Sink

	conn *zk.Conn

	// retrySleep waits d before a failed list is retried (false: stopping); tests
	// observe and shorten it.
	retrySleep func(p string, d time.Duration, stop <-chan struct{}) bool

	// loops counts the watch loops and their helpers, so that Run returns only once
	// they have all ended.
	loops sync.WaitGroup

	// deliverMu orders what reaches the sink: a retired interface loop can never
	// report after its interface was removed.
	deliverMu sync.Mutex

	mu sync.Mutex
	// The session as reported to the sink. Only the session goroutine (Run) changes
	// these, after the sink heard of the change.
	ready     chan struct{} // closed while the client has a session
	changed   chan struct{} // closed (and replaced) whenever the reported session state changes
	connected bool
	sessionID int64

	// The application level (apps.go); apps is nil when it is not read.
	apps           AppSink
	appSource      string
	appWatching    map[string]chan struct{} // application -> stop of its loop
	appPending     map[string]bool          // applications whose first list is still due
	appsRootListed bool
	appsListedSent bool

	// The config center (config.go); rules is nil when it is not read.
	rules        ConfigSink
	configSource string

	watching    map[string]chan struct{} // interface -> stop of its loop; all closed by stopAll
	stopped     bool                     // stopAll ran: no interface loop starts any more
	pending     map[string]bool          // interfaces whose first list is still due
	rootListed  bool
	syncedSent  bool
	badChildren map[string]bool // root children already warned about; only those still listed
}

// NewWatcher creates a watcher; Run connects.
func NewWatcher(cfg Config, sink Sink) *Watcher {
	return &Watcher{
		cfg:         cfg,
		sink:        sink,
		retrySleep:  func(_ string, d time.Duration, stop <-chan struct{}) bool { return sleep(d, stop) },
		ready:       make(chan struct{}),
		changed:     make(chan struct{}),
		watching:    map[string]chan struct{}{},
		appWatching: map[string]chan struct{}{},
		appPending:  map[string]bool{},
		pending:     map[string]bool{},
		badChildren: map[string]bool{},
	}
}

type zkLogger struct{ name string }

func (l zkLogger) Printf(format string, args ...any) {
	scope.Debugf("zookeeper %s: %s", l.name, fmt.Sprintf(format, args...))
}

// Run connects and watches until stop closes, and returns once every goroutine it
// started (and the client's) has ended. It never returns early: an unreachable
// ZooKeeper is retried forever (the client reconnects on its own).
func (w *Watcher) Run(stop <-chan struct{}) {
	// The client calls the callback synchronously for every event; it must not block.
	// A one-slot signal cannot lose the last change: the session goroutine below reads
	// the client's current state after every signal.
	stateChanged := make(chan struct{}, 1)
	onEvent := func(ev zk.Event) {
		if ev.Type == zk.EventSession {
			select {
			case stateChanged <- struct{}{}:
			default:
			}
		}
	}
	conn, events, err := zk.Connect(w.cfg.Servers, w.cfg.SessionTimeout,
		zk.WithLogger(zkLogger{w.cfg.Name}), zk.WithMaxBufferSize(maxBuffer), zk.WithEventCallback(onEvent))
	if err != nil {
		// Only on malformed server lists, which ParseAddress already rejects.
		scope.Errorf("registry %s: cannot create ZooKeeper client: %v", w.cfg.Name, err)
		return
	}
	w.conn = conn
	if w.interfaceLevel() {
		scope.Infof("registry %s: watching %s (interface level) on ZooKeeper %v", w.cfg.Name, w.cfg.Root, w.cfg.Servers)
		w.loops.Add(1)
		go func() {
			defer w.loops.Done()
			w.watchRoot(stop)
		}()
	}
	if w.apps != nil {
		scope.Infof("registry %s: watching %s (application level) on ZooKeeper %v", w.cfg.Name, w.cfg.ServicesRoot, w.cfg.Servers)
		w.loops.Add(1)
		go func() {
			defer w.loops.Done()
			w.watchApps(stop)
		}()
	}
	if w.rules != nil {
		scope.Infof("registry %s: watching %s (governance rules) on ZooKeeper %v", w.cfg.Name, w.cfg.ConfigRoot, w.cfg.Servers)
		w.loops.Add(1)
		go func() {
			defer w.loops.Done()
			w.watchConfig(stop)
		}()
	}
	for {
		select {
		case <-stop:
			conn.Close()
			w.stopAll()
			w.stopApps()
			w.loops.Wait()
			// The channel is not read otherwise (it may drop events); the client closes it
			// once its goroutines have ended.
			for range events {
			}
			return
		case <-stateChanged:
			w.onSession(conn.State(), conn.SessionID())
		}
	}
}

// onSession applies the client's current session state. Only Run calls it.
func (w *Watcher) onSession(state zk.State, id int64) {
	w.mu.Lock()
	connected, prevID := w.connected, w.sessionID
	w.mu.Unlock()
	has := state == zk.StateHasSession
	if has && id == 0 {
		return // expired right after the state was read: another signal is pending
	}
	switch {
	case has && (!connected || id != prevID):
		first := prevID == 0
		newSession := !first && id != prevID
		switch {
		case first:
			scope.Infof("registry %s: connected (session 0x%x)", w.cfg.Name, id)
		case newSession:
			scope.Warnf("registry %s: reconnected with a NEW session 0x%x (was 0x%x): re-listing every interface", w.cfg.Name, id, prevID)
		default:
			scope.Infof("registry %s: reconnected (session 0x%x kept)", w.cfg.Name, id)
		}
		// The sink hears of a new session before any loop may deliver a list read on it
		// (loops check the session they listed on against the reported one): the registry
		// holds removals from the first re-list on.
		w.reportSession(true, newSession)
		w.mu.Lock()
		w.connected, w.sessionID = true, id
		if !connected {
			close(w.ready)
		}
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	case !has && connected:
		if state == zk.StateExpired {
			scope.Warnf("registry %s: session expired; providers stay served until the new session re-lists them", w.cfg.Name)
		}
		scope.Warnf("registry %s: disconnected from ZooKeeper (%v); serving the last known providers", w.cfg.Name, state)
		w.reportSession(false, false)
		w.mu.Lock()
		w.connected = false
		w.ready = make(chan struct{})
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
}

// interfaceLevel is true when the interface level is read (the default when the
// configuration names no level).
func (w *Watcher) interfaceLevel() bool {
	return !w.cfg.ConfigOnly && (w.cfg.Levels.Interface || !w.cfg.Levels.Application)
}

// reportSession reports the session state for each level read (one source each).
func (w *Watcher) reportSession(connected, newSession bool) {
	if w.interfaceLevel() {
		w.sink.SourceConnected(w.cfg.Name, connected, newSession)
	}
	if w.apps != nil {
		w.sink.SourceConnected(w.appSource, connected, newSession)
	}
	if w.rules != nil {
		w.rules.SourceConnected(w.configSource, connected, newSession)
	}
}

// waitSession blocks until the client has a session; it returns the session id as
// reported to the sink and a channel closed at the next reported change; ok is false
// when stopping.
func (w *Watcher) waitSession(stop <-chan struct{}) (id int64, changed <-chan struct{}, ok bool) {
	for {
		w.mu.Lock()
		ready, changed, id := w.ready, w.changed, w.sessionID
		w.mu.Unlock()
		select {
		case <-ready:
			return id, changed, true
		case <-stop:
			return 0, nil, false
		case <-changed:
		}
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

// connectionError is true for errors that only say the client has no working
// connection right now; the session state tells the rest.
func connectionError(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrClosing) ||
		errors.Is(err, zk.ErrSessionMoved)
}

// listFailures is the retry state of one watched path (it lives as long as its loop).
type listFailures struct {
	source   string // the source the errors are reported as ("": the interface level)
	iface    string // "" for the root
	failures int    // consecutive failed attempts
	backoff  time.Duration
	lastWarn time.Time
}

// failed reports a failed attempt and returns how long to wait before the next one.
func (w *Watcher) failed(f *listFailures, p string, err error) time.Duration {
	f.failures++
	if f.backoff == 0 {
		f.backoff = minBackoff
	} else if f.backoff *= 2; f.backoff > maxBackoff {
		f.backoff = maxBackoff
	}
	if now := time.Now(); now.Sub(f.lastWarn) >= warnEvery {
		f.lastWarn = now
		scope.Warnf("registry %s: cannot list %s: %v (attempt %d; retrying with backoff up to %v)",
			w.cfg.Name, p, err, f.failures, maxBackoff)
	} else {
		scope.Debugf("registry %s: list %s: %v (attempt %d, next in %v)", w.cfg.Name, p, err, f.failures, f.backoff)
	}
	w.sink.ListError(w.source(f), f.iface, err)
	return f.backoff
}

func (w *Watcher) source(f *listFailures) string {
	if f.source != "" {
		return f.source
	}
	return w.cfg.Name
}

// listed reports that a path lists again after failures.
func (w *Watcher) listed(f *listFailures, p string) {
	if f.failures == 0 {
		return
	}
	scope.Infof("registry %s: %s lists again after %d failed attempts", w.cfg.Name, p, f.failures)
	*f = listFailures{source: f.source, iface: f.iface}
	w.sink.ListError(w.source(f), f.iface, nil)
}

// list reads the children of p and returns a watch; missing nodes are watched for
// creation (exists=false). It retries until it succeeds or stop closes.
func (w *Watcher) list(p string, f *listFailures, stop <-chan struct{}) (children []string, exists bool, watch <-chan zk.Event, ok bool) {
	for {
		id, changed, ok := w.waitSession(stop)
		if !ok {
			return nil, false, nil, false
		}
		children, exists, watch, err := w.read(p)
		if err == nil && w.conn.SessionID() != id {
			// Read on a session the sink has not heard of yet (or just lost): wait until the
			// session goroutine caught up, then read again.
			err = zk.ErrSessionExpired
		}
		switch {
		case err == nil:
			w.listed(f, p)
			return children, exists, watch, true
		case connectionError(err):
			scope.Debugf("registry %s: list %s: %v (waiting for the session)", w.cfg.Name, p, err)
			t := time.NewTimer(reconnectRetry)
			select {
			case <-changed:
			case <-t.C:
			case <-stop:
				t.Stop()
				return nil, false, nil, false
			}
			t.Stop()
		default:
			if !w.retrySleep(p, w.failed(f, p, err), stop) {
				return nil, false, nil, false
			}
		}
	}
}

// read lists p once with a watch; a missing node is watched for its creation.
func (w *Watcher) read(p string) ([]string, bool, <-chan zk.Event, error) {
	for {
		children, _, ch, err := w.conn.ChildrenW(p)
		if err == nil {
			return children, true, ch, nil
		}
		if !errors.Is(err, zk.ErrNoNode) {
			return nil, false, nil, err
		}
		found, _, ch, err := w.conn.ExistsW(p)
		if err != nil {
			return nil, false, nil, err
		}
		if !found {
			return nil, false, ch, nil
		}
		// created in between: list it
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
	f := &listFailures{}
	for {
		children, _, watch, ok := w.list(w.cfg.Root, f, stop)
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
	bad := map[string]bool{}       // the root's bad children now; warned about once while listed
	for _, child := range children {
		iface, err := url.QueryUnescape(child)
		if err != nil || reserved[iface] || !provider.ValidInterface(iface) {
			if reserved[iface] {
				continue
			}
			bad[child] = true
			w.mu.Lock()
			known := w.badChildren[child]
			w.mu.Unlock()
			if !known {
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
	if w.stopped {
		w.mu.Unlock()
		return
	}
	// Forget the bad children that are gone, so that memory follows the tree.
	w.badChildren = bad
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
		w.loops.Add(1)
		go func() {
			defer w.loops.Done()
			w.watchInterface(iface, path.Join(w.cfg.Root, child, providersDir), ifStop)
		}()
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

// watchInterface lists an interface's providers until ifStop closes: when the interface
// is retired, or when the watcher stops (stopAll). One goroutine per interface, not two
// (a helper joining ifStop and the watcher's stop): at 10,000 interfaces, the helpers'
// stacks alone were tens of MiB.
func (w *Watcher) watchInterface(iface, p string, ifStop chan struct{}) {
	both := ifStop
	f := &listFailures{iface: iface}
	observed := time.Now()
	seen := false // the providers node existed once
	for {
		children, exists, watch, ok := w.list(p, f, both)
		if !ok {
			return
		}
		if !exists {
			children = nil
		}
		// A root child that never had a providers node is not an interface (yet): e.g.
		// /dubbo/<app>, where Dubbo 3 keeps an application's remote metadata. It is
		// watched for a providers node, but not reported.
		seen = seen || exists
		if !w.deliver(iface, ifStop, children, observed, seen) {
			return // retired while listing: the interface is gone
		}
		w.maybeSynced()
		if observed, ok = waitWatch(watch, both); !ok {
			return
		}
	}
}

// either returns a channel closed when a or b closes; call done when the loop using it
// ends (its helper goroutine ends then, whichever comes first).
func (w *Watcher) either(a chan struct{}, b <-chan struct{}) (<-chan struct{}, func()) {
	both, done := make(chan struct{}), make(chan struct{})
	w.loops.Add(1)
	go func() {
		defer w.loops.Done()
		defer close(both)
		select {
		case <-a:
		case <-b:
		case <-done:
		}
	}()
	return both, func() { close(done) }
}

// deliver reports an interface's providers (report: else only its first list is done)
// unless its loop was retired.
func (w *Watcher) deliver(iface string, ifStop chan struct{}, children []string, observed time.Time, report bool) bool {
	w.deliverMu.Lock()
	defer w.deliverMu.Unlock()
	w.mu.Lock()
	live := w.watching[iface] == ifStop
	delete(w.pending, iface)
	w.mu.Unlock()
	if live && report {
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
	w.stopped = true
	for iface, ifStop := range w.watching {
		close(ifStop)
		delete(w.watching, iface)
	}
}
