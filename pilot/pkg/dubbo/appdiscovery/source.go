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
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/dubbolog"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

var scope = dubbolog.Scope

// Sink is the Dubbo registry, as the application level feeds it: the provider URLs of an
// interface over every application of one registry.
type Sink interface {
	SetURLs(source, iface string, urls map[string]*provider.URL, observed time.Time)
	RemoveInterface(source, iface string, observed time.Time)
	SourceSynced(source string)
}

// RemoteFetcher reads an application revision's metadata from the registry's metadata
// report (ZooKeeper: /<root>/<app>/<revision>; Nacos: config dataId=<app>, group=<revision>).
type RemoteFetcher func(ctx context.Context, app, revision string) ([]byte, error)

// LocalFetcher asks an instance's MetadataService for its revision's metadata.
type LocalFetcher func(ctx context.Context, in *Instance) (*MetadataInfo, error)

// Options configure one registry's application level.
type Options struct {
	// Source names the registry source the URLs are reported as.
	Source string
	// Remote reads remote metadata; nil: revisions with remote metadata do not resolve.
	Remote RemoteFetcher
	// Local calls MetadataServices (default: FetchMetadataRPC).
	Local LocalFetcher
	// Timeout bounds one metadata fetch (default 5s).
	Timeout time.Duration
	// Concurrency bounds the fetches in flight (default 8).
	Concurrency int
	// MinBackoff and MaxBackoff pace the retries of a revision that does not resolve
	// (default 1s doubling to 1m).
	MinBackoff, MaxBackoff time.Duration
}

func (o *Options) defaults() {
	if o.Local == nil {
		o.Local = FetchMetadataRPC
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = time.Minute
		if o.MaxBackoff < o.MinBackoff {
			o.MaxBackoff = o.MinBackoff
		}
	}
}

type revKey struct{ app, revision string }

// revision is the metadata of one application revision, fetched once.
type revision struct {
	key      revKey
	info     *MetadataInfo
	err      error // last failure, while unresolved
	storage  string
	attempts int
	since    time.Time // first seen
	resolved time.Time
	inFlight bool
	queued   bool
	retry    *time.Timer
	initial  bool // seen before the source synced: sync waits for its first attempt
}

// instance is one instance node of an application, decoded once per body.
type instance struct {
	body string
	in   *Instance
	err  error
}

type app struct {
	name      string
	instances map[string]*instance // node name -> decoded
	// known are the interfaces the application serves, from its instances of resolved
	// revisions; kept while none is resolved (a restart in progress), so a service does
	// not flap away between an old instance leaving and a new revision resolving.
	known map[string]bool
	urls  map[string]map[string]*provider.URL // interface -> URLs of this application
}

// Source is the application level of one registry. Registries feed it the instance
// nodes of each application; it resolves revisions and reports interfaces to the Sink.
type Source struct {
	opts Options
	sink Sink

	mu      sync.Mutex
	apps    map[string]*app
	ifaces  map[string]map[string]bool // interface -> applications serving it
	revs    map[revKey]*revision
	queue   []revKey
	running int
	listed  bool // the registry listed every application once
	synced  bool
	stopped bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	logLimiter *rate.Limiter
	now        func() time.Time
	afterFunc  func(time.Duration, func()) *time.Timer
}

// NewSource creates the application level of a registry.
func NewSource(opts Options, sink Sink) *Source {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Source{
		opts: opts, sink: sink,
		apps: map[string]*app{}, ifaces: map[string]map[string]bool{}, revs: map[revKey]*revision{},
		ctx: ctx, cancel: cancel,
		logLimiter: rate.NewLimiter(rate.Limit(10), 50),
		now:        time.Now, afterFunc: time.AfterFunc,
	}
}

// Name is the registry source name.
func (s *Source) Name() string { return s.opts.Source }

// Run resolves revisions until stop closes (fetches start as instances are reported).
func (s *Source) Run(stop <-chan struct{}) {
	<-stop
	s.Stop()
}

// Stop cancels fetches and retries and waits for the fetches in flight.
func (s *Source) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.queue = nil
	for _, r := range s.revs {
		if r.retry != nil {
			r.retry.Stop()
		}
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// SetInstances replaces the instance nodes of an application (node name -> body):
// ZooKeeper's Curator JSON.
func (s *Source) SetInstances(appName string, bodies map[string][]byte, observed time.Time) {
	s.setInstances(appName, len(bodies), func(yield func(name, key string, decode func() (*Instance, error))) {
		for name, body := range bodies {
			yield(name, string(body), func() (*Instance, error) { return ParseCuratorInstance(appName, body) })
		}
	}, observed)
}

// Decoded is an instance a registry decoded itself (Nacos: address, port and metadata).
// Key identifies its content: an instance whose key did not change is not decoded again.
type Decoded struct {
	Key      string
	Instance *Instance
	Err      error
}

// SetDecoded replaces the instances of an application (name -> instance), decoded by
// the registry, e.g. with NewInstance.
func (s *Source) SetDecoded(appName string, instances map[string]Decoded, observed time.Time) {
	s.setInstances(appName, len(instances), func(yield func(name, key string, decode func() (*Instance, error))) {
		for name, d := range instances {
			yield(name, d.Key, func() (*Instance, error) { return d.Instance, d.Err })
		}
	}, observed)
}

func (s *Source) setInstances(appName string, n int,
	each func(yield func(name, key string, decode func() (*Instance, error))), observed time.Time,
) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	a := s.apps[appName]
	if a == nil {
		a = &app{name: appName, instances: map[string]*instance{}, known: map[string]bool{}, urls: map[string]map[string]*provider.URL{}}
		s.apps[appName] = a
	}
	cur := make(map[string]*instance, n)
	each(func(name, key string, decode func() (*Instance, error)) {
		if old := a.instances[name]; old != nil && old.body == key {
			cur[name] = old
			return
		}
		in, err := decode()
		if err == nil && in.Revision != EmptyRevision && in.StorageType == StorageLocal && in.MetadataService == nil {
			err = errorf(ReasonMetadataService, "local metadata, but no %s to reach the MetadataService", KeyMetadataService)
		}
		if err != nil {
			in = nil
			rejectedInstances.With(registryTag.Value(s.opts.Source), reasonTag.Value(ReasonOf(err))).Increment()
			s.logf("registry %s: application %s: instance %s rejected: %v", s.opts.Source, appName, clip(name), err)
		}
		cur[name] = &instance{body: key, in: in, err: err}
	})
	a.instances = cur
	s.update(a, observed, false)
}

// RemoveApp drops an application that is not registered any more.
func (s *Source) RemoveApp(appName string, observed time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appName]
	if a == nil || s.stopped {
		return
	}
	a.instances = map[string]*instance{}
	s.update(a, observed, true)
	delete(s.apps, appName)
}

// Listed tells that the registry listed every application once: the source is synced
// once each revision seen by then had its first fetch.
func (s *Source) Listed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listed = true
	s.maybeSynced()
}

// update recomputes an application after its instances or revisions changed, reports
// the interfaces whose URLs changed, and forgets revisions no instance carries. removed:
// the application is gone, and so are its interfaces.
func (s *Source) update(a *app, observed time.Time, removed bool) {
	carried := map[revKey]bool{}
	urls := map[string]map[string]*provider.URL{}
	anyResolved := false
	for _, name := range slices.Sorted(maps.Keys(a.instances)) {
		inst := a.instances[name]
		if inst.err != nil || inst.in.Revision == EmptyRevision {
			continue
		}
		k := revKey{a.name, inst.in.Revision}
		carried[k] = true
		r := s.want(k, inst.in.StorageType)
		if r.info == nil {
			continue
		}
		anyResolved = true
		for u, pu := range URLs(inst.in, r.info).URLs {
			iface := pu.Params["interface"]
			if urls[iface] == nil {
				urls[iface] = map[string]*provider.URL{}
			}
			urls[iface][u] = pu
		}
	}
	for k, r := range s.revs {
		if k.app == a.name && !carried[k] {
			if r.retry != nil {
				r.retry.Stop()
			}
			delete(s.revs, k)
		}
	}
	known := a.known
	if anyResolved || removed {
		known = map[string]bool{}
		for iface := range urls {
			known[iface] = true
		}
	}
	changed := map[string]bool{}
	for iface := range a.known {
		if !known[iface] || !sameURLs(a.urls[iface], urls[iface]) {
			changed[iface] = true
		}
	}
	for iface := range known {
		if !a.known[iface] || !sameURLs(a.urls[iface], urls[iface]) {
			changed[iface] = true
		}
	}
	a.known, a.urls = known, urls
	for _, iface := range slices.Sorted(maps.Keys(changed)) {
		apps := s.ifaces[iface]
		if known[iface] {
			if apps == nil {
				apps = map[string]bool{}
				s.ifaces[iface] = apps
			}
			apps[a.name] = true
		} else {
			delete(apps, a.name)
		}
		if len(apps) == 0 {
			delete(s.ifaces, iface)
			s.sink.RemoveInterface(s.opts.Source, iface, observed)
			continue
		}
		all := map[string]*provider.URL{}
		for _, other := range slices.Sorted(maps.Keys(apps)) {
			if o := s.apps[other]; o != nil {
				maps.Copy(all, o.urls[iface])
			}
		}
		s.sink.SetURLs(s.opts.Source, iface, all, observed)
	}
	s.maybeSynced()
}

func sameURLs(a, b map[string]*provider.URL) bool {
	if len(a) != len(b) {
		return false
	}
	for k, u := range a {
		v, ok := b[k]
		if !ok || u.Protocol != v.Protocol || u.IP != v.IP || u.Port != v.Port || u.Path != v.Path || !maps.Equal(u.Params, v.Params) {
			return false
		}
	}
	return true
}

// want returns the revision, queueing its first fetch when new.
func (s *Source) want(k revKey, storage string) *revision {
	r := s.revs[k]
	if r == nil {
		r = &revision{key: k, storage: storage, since: s.now(), initial: !s.synced}
		s.revs[k] = r
		s.enqueue(r)
	}
	return r
}

func (s *Source) enqueue(r *revision) {
	if r.queued || r.inFlight || r.info != nil || s.stopped {
		return
	}
	r.queued = true
	s.queue = append(s.queue, r.key)
	s.dispatch()
}

// dispatch starts fetches while fewer than Concurrency are in flight.
func (s *Source) dispatch() {
	if s.stopped {
		s.queue = nil
		return
	}
	for s.running < s.opts.Concurrency && len(s.queue) > 0 {
		k := s.queue[0]
		s.queue = s.queue[1:]
		r := s.revs[k]
		if r == nil || !r.queued {
			continue // forgotten while queued
		}
		r.queued, r.inFlight = false, true
		r.attempts++
		s.running++
		fetch := s.fetcher(r)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
			start := time.Now()
			info, err := fetch(ctx)
			cancel()
			s.done(r, info, err, time.Since(start))
		}()
	}
}

// fetcher picks how a revision is fetched (called under mu).
func (s *Source) fetcher(r *revision) func(context.Context) (*MetadataInfo, error) {
	k := r.key
	// The MetadataService of one of the instances carrying the revision, a different one
	// at each attempt (one unreachable instance must not keep the revision out).
	var carriers []*Instance
	if a := s.apps[k.app]; a != nil {
		for _, name := range slices.Sorted(maps.Keys(a.instances)) {
			if in := a.instances[name]; in.err == nil && in.in.Revision == k.revision && in.in.MetadataService != nil {
				carriers = append(carriers, in.in)
			}
		}
	}
	var local func(context.Context) (*MetadataInfo, error)
	if len(carriers) > 0 {
		in, fetch := carriers[(r.attempts-1)%len(carriers)], s.opts.Local
		local = func(ctx context.Context) (*MetadataInfo, error) {
			m, err := fetch(ctx, in)
			if err != nil {
				return nil, err
			}
			return m, m.validate(k.app, k.revision)
		}
	}
	if r.storage != StorageRemote {
		if local == nil {
			return func(context.Context) (*MetadataInfo, error) {
				return nil, errorf(ReasonMetadataFetch, "no instance of the revision has a MetadataService")
			}
		}
		return local
	}
	remote := s.opts.Remote
	return func(ctx context.Context) (*MetadataInfo, error) {
		var err error
		if remote == nil {
			err = errorf(ReasonMetadataFetch, "this registry has no metadata report")
		} else {
			var body []byte
			if body, err = remote(ctx, k.app, k.revision); err != nil {
				err = errorf(ReasonMetadataFetch, "remote metadata: %v", err)
			} else {
				var m *MetadataInfo
				if m, err = ParseMetadataJSON(k.app, k.revision, body); err == nil {
					return m, nil
				}
			}
		}
		// As Dubbo's consumers: when the metadata report fails, ask the instance.
		if local != nil {
			if m, lerr := local(ctx); lerr == nil {
				return m, nil
			}
		}
		return nil, err
	}
}

// done records a fetch's result and recomputes the application.
func (s *Source) done(r *revision, info *MetadataInfo, err error, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	r.inFlight = false
	first := r.initial
	r.initial = false
	result := "ok"
	if err != nil {
		result = ReasonOf(err)
	}
	metadataFetches.With(registryTag.Value(s.opts.Source), storageTag.Value(r.storage), resultTag.Value(result)).Increment()
	metadataFetchSeconds.Record(took.Seconds())
	if s.stopped || s.revs[r.key] != r {
		s.dispatch()
		s.maybeSynced()
		return // forgotten meanwhile: no instance carries it any more
	}
	if err == nil {
		r.info, r.err, r.resolved = info, nil, s.now()
		scope.Debugf("registry %s: application %s revision %s resolved (%d services, %s metadata, %v)",
			s.opts.Source, r.key.app, short(r.key.revision), len(info.Services), r.storage, took)
		if a := s.apps[r.key.app]; a != nil {
			s.update(a, s.now(), false)
		}
	} else {
		r.err = err
		backoff := s.opts.MinBackoff << min(r.attempts-1, 16)
		if backoff > s.opts.MaxBackoff || backoff <= 0 {
			backoff = s.opts.MaxBackoff
		}
		s.logf("registry %s: application %s revision %s: cannot resolve its metadata (attempt %d, retry in %v): %v; its instances stay out",
			s.opts.Source, r.key.app, short(r.key.revision), r.attempts, backoff, err)
		r.retry = s.afterFunc(backoff, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.revs[r.key] == r {
				r.retry = nil
				s.enqueue(r)
			}
		})
	}
	if first {
		s.maybeSynced()
	}
	s.dispatch()
	s.recordGauges()
}

func (s *Source) maybeSynced() {
	if s.synced || !s.listed {
		return
	}
	for _, r := range s.revs {
		if r.initial {
			return
		}
	}
	s.synced = true
	scope.Infof("registry %s: application level synced (%d applications, %d revisions)", s.opts.Source, len(s.apps), len(s.revs))
	s.sink.SourceSynced(s.opts.Source)
}

func (s *Source) recordGauges() {
	unresolved := 0
	for _, r := range s.revs {
		if r.info == nil {
			unresolved++
		}
	}
	unresolvedGauge.With(registryTag.Value(s.opts.Source)).Record(float64(unresolved))
	revisionsGauge.With(registryTag.Value(s.opts.Source)).Record(float64(len(s.revs)))
}

func (s *Source) logf(format string, args ...any) {
	if s.logLimiter.Allow() {
		scope.Warnf(format, args...)
	}
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// DebugApps is the application level of a registry in /debug/dubboz.
type DebugApps struct {
	Registry     string          `json:"registry"`
	Synced       bool            `json:"synced"`
	Applications []DebugApp      `json:"applications"`
	Revisions    []DebugRevision `json:"revisions"`
}

// DebugApp is one application.
type DebugApp struct {
	Name       string          `json:"name"`
	Instances  int             `json:"instances"`
	Interfaces []string        `json:"interfaces"`
	Rejected   []DebugRejected `json:"rejected,omitempty"`
}

// DebugRejected is an instance node that was not decoded.
type DebugRejected struct {
	Node  string `json:"node"`
	Error string `json:"error"`
}

// DebugRevision is one application revision.
type DebugRevision struct {
	App       string     `json:"app"`
	Revision  string     `json:"revision"`
	Storage   string     `json:"storage"`
	Resolved  bool       `json:"resolved"`
	Services  int        `json:"services,omitempty"`
	Error     string     `json:"error,omitempty"` // why it does not resolve (its instances stay out)
	Attempts  int        `json:"attempts"`
	Since     time.Time  `json:"since"`
	Resolving bool       `json:"fetching,omitempty"`
	At        *time.Time `json:"resolvedAt,omitempty"`
}

// Debug returns the current view.
func (s *Source) Debug() DebugApps {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := DebugApps{Registry: s.opts.Source, Synced: s.synced, Applications: []DebugApp{}, Revisions: []DebugRevision{}}
	for _, name := range slices.Sorted(maps.Keys(s.apps)) {
		a := s.apps[name]
		da := DebugApp{Name: name, Instances: len(a.instances), Interfaces: slices.Sorted(maps.Keys(a.known))}
		for _, n := range slices.Sorted(maps.Keys(a.instances)) {
			if err := a.instances[n].err; err != nil {
				da.Rejected = append(da.Rejected, DebugRejected{Node: clip(n), Error: err.Error()})
			}
		}
		d.Applications = append(d.Applications, da)
	}
	for _, r := range s.revs {
		dr := DebugRevision{App: r.key.app, Revision: r.key.revision, Storage: r.storage, Resolved: r.info != nil,
			Attempts: r.attempts, Since: r.since, Resolving: r.inFlight}
		if r.info != nil {
			dr.Services = len(r.info.Services)
			t := r.resolved
			dr.At = &t
		} else if r.err != nil {
			dr.Error = r.err.Error()
		}
		d.Revisions = append(d.Revisions, dr)
	}
	sort.Slice(d.Revisions, func(i, j int) bool {
		if d.Revisions[i].App != d.Revisions[j].App {
			return d.Revisions[i].App < d.Revisions[j].App
		}
		return d.Revisions[i].Revision < d.Revisions[j].Revision
	})
	return d
}
