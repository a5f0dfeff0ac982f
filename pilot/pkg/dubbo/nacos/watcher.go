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

package nacos

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
	"golang.org/x/time/rate"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/appdiscovery"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/dubbolog"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

var scope = dubbolog.Scope

// Sink is the Dubbo registry, as a Nacos registry feeds it.
type Sink interface {
	SetURLs(source, iface string, urls map[string]*provider.URL, observed time.Time)
	RemoveInterface(source, iface string, observed time.Time)
	SourceConnected(source string, connected, newSession bool)
	SourceSynced(source string)
	ListError(source, path string, err error)
}

// AppSink is the application level of the registry (appdiscovery.Source).
type AppSink interface {
	SetDecoded(app string, instances map[string]appdiscovery.Decoded, observed time.Time)
	RemoveApp(app string, observed time.Time)
	Listed()
}

const (
	// pageSize of the service list reads.
	pageSize = 500
	// subscribeConcurrency bounds the subscriptions in flight (each is a round trip).
	subscribeConcurrency = 32
	// healthInterval is how often the client's connection state is read.
	healthInterval = 500 * time.Millisecond
)

// Watcher reads one Nacos registry.
type Watcher struct {
	// getConfigMu serialises GetConfig: the SDK's config client sets a field of its
	// shared RPC client on every call, unguarded (a data race seen under stress-ng).
	getConfigMu sync.Mutex
	cfg         Config
	sink        Sink
	ifaceSrc    string // "" when the interface level is not read
	apps        AppSink
	appSrc      string
	rules       *configState    // nil when no governance rules are read
	ruleKeysOf  func() []string // more rule keys to watch (SetRuleKeys)
	closing     atomic.Bool     // set when the clients close (no more reads)

	// healthInterval and newClients are replaced by tests.
	healthInterval time.Duration
	newClients     func(Config) (naming_client.INamingClient, config_client.IConfigClient, error)

	// syncMu serialises syncServices (the list interval and a reconnection both run it).
	syncMu sync.Mutex

	mu        sync.Mutex
	naming    naming_client.INamingClient
	config    config_client.IConfigClient
	subs      map[string]*subscription
	ifaces    map[string]map[string]map[string]*provider.URL // interface -> Nacos service -> name -> URL
	fed       map[string]bool                                // applications handed to the application level
	connected bool
	gen       uint64 // the client's connection generation last seen; 0: never connected
	conn      func() (generation uint64, up bool)
	authErr   bool // the last login was refused: retried at every interval
	// totals over subs, kept as lists are applied (gauges without a walk per push)
	totIfaces, totApps, totInstances, totOut int
	synced                                   bool
	lastList                                 time.Time
	listed                                   int // services in the last list
	lastErr                                  map[string]debugError
	listFails                                int

	logLimiter *rate.Limiter
	wg         sync.WaitGroup
}

// subscription is one subscribed Nacos service.
type subscription struct {
	service  string
	name     ServiceName
	param    *vo.SubscribeParam
	key      listID // the instance list last applied
	last     []model.Instance
	missing  int      // consecutive service lists without it
	dubbo    int      // Dubbo instances listed
	out      int      // of which out of rotation
	nonDubbo int      // instances of a candidate application that are not Dubbo's
	apps     []string // applications of an interface's instances (their rule keys are watched)
	rejected int
	pushes   int
	lastPush time.Time
}

type debugError struct {
	Error string    `json:"error"`
	Since time.Time `json:"since"`
	Last  time.Time `json:"last"`
	Count int       `json:"count"`
}

// NewWatcher creates the reader of a Nacos registry. ifaceSource is the registry
// source of interface-level providers ("" when that level is not read); apps, when not
// nil, receives the application-level instances.
func NewWatcher(cfg Config, sink Sink, ifaceSource string) *Watcher {
	return &Watcher{
		cfg: cfg, sink: sink, ifaceSrc: ifaceSource,
		healthInterval: healthInterval,
		newClients:     newClients,
		subs:           map[string]*subscription{},
		ifaces:         map[string]map[string]map[string]*provider.URL{},
		fed:            map[string]bool{},
		lastErr:        map[string]debugError{},
		logLimiter:     rate.NewLimiter(rate.Every(time.Minute), 5),
	}
}

// SetAppSink makes the watcher read application-level services into sink, reported as
// source (before Run).
func (w *Watcher) SetAppSink(sink AppSink, source string) {
	w.apps, w.appSrc = sink, source
}

func (w *Watcher) sources() []string {
	var out []string
	for _, s := range []string{w.ifaceSrc, w.appSrc} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// safeName turns a registry name into a directory name.
var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// newClients creates the SDK's naming and config clients: gRPC to port+1000 of each
// server, cache and logs under cfg.Dir, nothing loaded from a previous run's cache,
// empty instance lists delivered (the registry's empty protection decides, not the SDK).
func newClients(cfg Config) (naming_client.INamingClient, config_client.IConfigClient, error) {
	dir := filepath.Join(cfg.Dir, unsafeChars.ReplaceAllString(cfg.Name, "_"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("client directory: %v", err)
	}
	var servers []constant.ServerConfig
	for _, s := range cfg.Servers {
		host, port, _ := net.SplitHostPort(s)
		p, _ := strconv.ParseUint(port, 10, 64)
		servers = append(servers, *constant.NewServerConfig(host, p))
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	cc := constant.NewClientConfig(
		constant.WithNamespaceId(cfg.Namespace),
		constant.WithTimeoutMs(uint64(timeout.Milliseconds())),
		constant.WithNotLoadCacheAtStart(true),
		constant.WithUpdateCacheWhenEmpty(true),
		constant.WithDisableUseSnapShot(true),
		constant.WithCacheDir(filepath.Join(dir, "cache")),
		constant.WithLogDir(filepath.Join(dir, "log")),
		constant.WithLogLevel("warn"),
		constant.WithUsername(cfg.Username),
		constant.WithPassword(cfg.Password),
		constant.WithAccessKey(cfg.AccessKey),
		constant.WithSecretKey(cfg.SecretKey),
		constant.WithAppName("dubbo-istiod"),
	)
	param := vo.NacosClientParam{ClientConfig: cc, ServerConfigs: servers}
	naming, err := clients.NewNamingClient(param)
	if err != nil {
		return nil, nil, fmt.Errorf("naming client: %v", err)
	}
	config, err := clients.NewConfigClient(param)
	if err != nil {
		naming.CloseClient()
		return nil, nil, fmt.Errorf("config client: %v", err)
	}
	return naming, config, nil
}

// Run reads the registry until stop closes.
func (w *Watcher) Run(stop <-chan struct{}) {
	scope.Infof("registry %s: reading Nacos %v, namespace %s, group %s (%s), services listed every %v",
		w.cfg.Name, w.cfg.Servers, w.cfg.NamespaceName(), w.cfg.Group, w.levels(), w.cfg.ListInterval)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	w.login(ctx)
	backoff := time.Second
	for {
		naming, config, err := w.newClients(w.cfg)
		if err == nil {
			w.mu.Lock()
			w.naming, w.config = naming, config
			w.conn = connectionOf(naming)
			w.mu.Unlock()
			break
		}
		w.fail("client", "", err)
		select {
		case <-stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.watchHealth(stop)
	}()
	interval := w.cfg.ListInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		w.syncServices()
		select {
		case <-stop:
			w.wg.Wait()
			w.close()
			return
		case <-t.C:
		}
	}
}

func (w *Watcher) levels() string {
	switch {
	case w.ifaceSrc != "" && w.apps != nil:
		return "interface and application level"
	case w.apps != nil:
		return "application level"
	}
	return "interface level"
}

func (w *Watcher) close() {
	w.closing.Store(true)
	w.mu.Lock()
	naming, config := w.naming, w.config
	w.mu.Unlock()
	naming.CloseClient()
	config.CloseClient()
}

// connectionOf reads the client's gRPC connection: generation and state (the patched
// client's Connection, patches/nacos-sdk-go/0004). A client without it is read through
// ServerHealthy, which cannot tell a reconnection between two reads.
func connectionOf(naming naming_client.INamingClient) func() (uint64, bool) {
	if c, ok := naming.(interface{ Connection() (uint64, bool) }); ok {
		return c.Connection
	}
	return func() (uint64, bool) { return 1, naming.ServerHealthy() }
}

// watchHealth reports the client's connection to the registry. A new connection is a new
// session: the server forgot our subscriptions (the client subscribes again and the
// instance lists are re-read), and providers that left meanwhile are removed only after
// the reconnect grace, as for a ZooKeeper session. The lists the re-subscription delivers
// see the new generation first (apply), so the grace is on before they are applied.
func (w *Watcher) watchHealth(stop <-chan struct{}) {
	t := time.NewTicker(w.healthInterval)
	defer t.Stop()
	for {
		w.mu.Lock()
		conn := w.conn
		w.mu.Unlock()
		gen, up := conn()
		w.mu.Lock()
		newSession, changed := w.observeLocked(gen, up)
		resync := changed && up && (newSession || !w.synced)
		w.mu.Unlock()
		if resync {
			// After a reconnection the client re-subscribes on its own; listing now makes
			// the registry's state current (and, when the server was down at start, reads
			// it) without waiting for the next interval.
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				w.syncServices()
			}()
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// observeLocked records the connection state and reports a change to the registry: a
// generation other than the last one seen is a new session (unless it is the first
// connection). Called with w.mu held, by the health loop and before applying a list.
func (w *Watcher) observeLocked(gen uint64, up bool) (newSession, changed bool) {
	newSession = up && gen != w.gen && w.gen != 0
	if up == w.connected && !newSession && (gen == w.gen || !up) {
		return false, false
	}
	switch {
	case up && newSession:
		scope.Infof("registry %s: reconnected to Nacos %v (new session: removals are held for the reconnect grace)", w.cfg.Name, w.cfg.Servers)
	case up:
		scope.Infof("registry %s: connected to Nacos %v", w.cfg.Name, w.cfg.Servers)
	case w.connected:
		scope.Warnf("registry %s: connection to Nacos %v lost; serving the last provider lists", w.cfg.Name, w.cfg.Servers)
	}
	if up {
		w.gen = gen
	}
	w.connected = up
	for _, src := range w.sources() {
		w.sink.SourceConnected(src, up, newSession)
	}
	if w.rules != nil {
		// The config client has a connection of its own, to the same servers: the naming
		// client's stands for both.
		w.rules.sink.SourceConnected(w.rules.source, up, newSession)
	}
	return newSession, true
}

// syncServices lists the services, subscribes to new Dubbo ones, unsubscribes from
// those gone, and re-reads every subscribed list from the client's cache (a missed or
// reordered callback heals at the next interval).
func (w *Watcher) syncServices() {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	naming, config := w.naming, w.config
	w.mu.Unlock()
	names, err := w.listServices(naming)
	if err != nil {
		w.fail("list", "", err)
		return
	}
	w.ok("list", "")
	want := map[string]ServiceName{}
	for _, n := range names {
		sn := ParseServiceName(n)
		switch {
		case sn.Kind == KindInterface && w.ifaceSrc != "":
		case sn.Kind == KindApplication && w.apps != nil:
		default:
			continue
		}
		want[n] = sn
	}
	w.mu.Lock()
	var add []string
	var gone []*subscription
	for n := range want {
		if s := w.subs[n]; s == nil {
			add = append(add, n)
		} else {
			s.missing = 0
		}
	}
	for n, s := range w.subs {
		if _, ok := want[n]; ok {
			continue
		}
		// One pass over the pages is no snapshot: a service deleted meanwhile shifts the
		// next one onto a page already read. Nacos only deletes services without
		// instances, so one still holding instances stays, and an empty one goes once two
		// lists in a row did not have it.
		s.missing++
		if s.missing >= 2 && s.key.n == 0 {
			gone = append(gone, s)
		}
	}
	for k := range w.lastErr {
		if svc, ok := strings.CutPrefix(k, "subscribe "); ok {
			if _, listed := want[svc]; !listed {
				delete(w.lastErr, k) // a service gone takes its failure with it
			}
		}
	}
	first, retryLogin := !w.synced, w.authErr
	w.mu.Unlock()
	if retryLogin {
		w.login(context.Background())
	}

	for _, s := range gone {
		w.unsubscribe(naming, s)
	}
	slices.Sort(add)
	sem := make(chan struct{}, subscribeConcurrency)
	var wg sync.WaitGroup
	for _, n := range add {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.subscribe(naming, n, want[n])
		}()
	}
	wg.Wait()
	w.resync(naming)
	w.syncRules(config, names)

	w.mu.Lock()
	w.lastList, w.listed = time.Now(), len(names)
	w.synced = true
	w.mu.Unlock()
	if first {
		if w.ifaceSrc != "" {
			w.sink.SourceSynced(w.ifaceSrc)
		}
		if w.apps != nil {
			w.apps.Listed()
		}
	}
}

// listServices pages through the services of the registry's namespace and group.
func (w *Watcher) listServices(naming naming_client.INamingClient) ([]string, error) {
	var names []string
	for page := uint32(1); ; page++ {
		l, err := naming.GetAllServicesInfo(vo.GetAllServiceInfoParam{
			NameSpace: w.cfg.Namespace, GroupName: w.cfg.Group, PageNo: page, PageSize: pageSize,
		})
		if err != nil {
			return nil, err
		}
		names = append(names, l.Doms...)
		if len(l.Doms) < pageSize || int64(len(names)) >= l.Count {
			break
		}
	}
	return names, nil
}

func (w *Watcher) subscribe(naming naming_client.INamingClient, service string, sn ServiceName) {
	s := &subscription{service: service, name: sn}
	s.param = &vo.SubscribeParam{
		ServiceName: service,
		GroupName:   w.cfg.Group,
		SubscribeCallback: func(instances []model.Instance, err error) {
			if err == nil {
				w.apply(s, instances, time.Now())
			}
		},
	}
	w.mu.Lock()
	w.subs[service] = s
	w.countLocked(s, 1)
	w.mu.Unlock()
	// The client hands the current list to the callback before Subscribe returns when it
	// is new to its cache (the next interval's resync covers the other cases).
	if err := naming.Subscribe(s.param); err != nil {
		w.mu.Lock()
		if w.subs[service] == s {
			delete(w.subs, service)
			w.countLocked(s, -1)
		}
		w.mu.Unlock()
		// The client registered the callback (and its re-subscription) before the request
		// failed: take them back, or every retry would add one more.
		_ = naming.Unsubscribe(s.param)
		w.fail("subscribe", service, err)
		return
	}
	w.ok("subscribe", service)
}

func (w *Watcher) unsubscribe(naming naming_client.INamingClient, s *subscription) {
	now := time.Now()
	w.mu.Lock()
	if w.subs[s.service] == s {
		delete(w.subs, s.service)
		w.countLocked(s, -1)
		w.removeLocked(s, now)
	}
	w.mu.Unlock()
	if err := naming.Unsubscribe(s.param); err != nil {
		w.fail("unsubscribe", s.service, err)
	}
}

// resync re-applies every subscribed list from the client's cache (no request).
func (w *Watcher) resync(naming naming_client.INamingClient) {
	w.mu.Lock()
	subs := slices.Collect(maps.Values(w.subs))
	w.mu.Unlock()
	for _, s := range subs {
		instances, err := naming.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: s.service, GroupName: w.cfg.Group})
		if err == nil {
			w.apply(s, instances, time.Now())
		}
	}
}

// apply installs the instance list of a subscribed service.
func (w *Watcher) apply(s *subscription, instances []model.Instance, observed time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		// A list the client's re-subscription delivers after a reconnection: the new
		// session (and its grace) first.
		if gen, up := w.conn(); up && gen != w.gen {
			w.observeLocked(gen, up)
		}
	}
	if w.subs[s.service] != s || sameSlice(s.last, instances) {
		return // the list the client cached and gave us last time (the interval's re-read)
	}
	key := listKey(instances)
	s.last = instances
	if s.key == key {
		return
	}
	s.key = key
	s.pushes++
	s.lastPush = observed
	w.totInstances -= s.dubbo
	w.totOut -= s.out
	s.dubbo, s.out, s.nonDubbo, s.rejected = 0, 0, 0, 0
	pushesTotal.With(registryTag.Value(w.cfg.Name)).Increment()
	switch s.name.Kind {
	case KindInterface:
		w.applyInterface(s, instances, observed)
	case KindApplication:
		w.applyApplication(s, instances, observed)
	}
	w.totInstances += s.dubbo
	w.totOut += s.out
	w.recordGauges()
}

func (w *Watcher) applyInterface(s *subscription, instances []model.Instance, observed time.Time) {
	urls := make(map[string]*provider.URL, len(instances))
	s.apps = appsOf(instances)
	for i := range instances {
		in := &instances[i]
		s.dubbo++
		if ok, _ := inRotation(in); !ok {
			s.out++
			continue
		}
		u, err := ProviderURL(s.name, in)
		if err != nil {
			s.rejected++
			reason := "invalid"
			var pe *provider.Error
			if errors.As(err, &pe) {
				reason = string(pe.Reason)
			}
			rejectedTotal.With(registryTag.Value(w.cfg.Name), reasonTag.Value(reason)).Increment()
			w.logf("registry %s: service %s: instance %s rejected: %v", w.cfg.Name, s.service, clip(instanceName(in)), err)
			continue
		}
		urls[s.service+"/"+instanceName(in)] = u
	}
	iface := s.name.Interface
	if w.ifaces[iface] == nil {
		w.ifaces[iface] = map[string]map[string]*provider.URL{}
	}
	w.ifaces[iface][s.service] = urls
	w.publishInterface(iface, observed)
}

// publishInterface reports an interface's URLs over its Nacos services (one per
// version and group).
func (w *Watcher) publishInterface(iface string, observed time.Time) {
	byService := w.ifaces[iface]
	if len(byService) == 0 {
		delete(w.ifaces, iface)
		w.sink.RemoveInterface(w.ifaceSrc, iface, observed)
		return
	}
	all := map[string]*provider.URL{}
	for _, urls := range byService {
		maps.Copy(all, urls)
	}
	w.sink.SetURLs(w.ifaceSrc, iface, all, observed)
}

func (w *Watcher) applyApplication(s *subscription, instances []model.Instance, observed time.Time) {
	app := s.service
	decoded := map[string]appdiscovery.Decoded{}
	for i := range instances {
		in := &instances[i]
		if !isDubboInstance(in) {
			s.nonDubbo++
			continue
		}
		s.dubbo++
		if ok, _ := inRotation(in); !ok {
			s.out++
			continue
		}
		decoded[instanceName(in)] = AppInstance(app, in)
	}
	if s.dubbo == 0 && !w.fed[app] {
		return // not a Dubbo application (yet)
	}
	w.fed[app] = true
	w.apps.SetDecoded(app, decoded, observed)
}

// removeLocked forgets a service that is not listed any more.
func (w *Watcher) removeLocked(s *subscription, observed time.Time) {
	w.totInstances -= s.dubbo
	w.totOut -= s.out
	switch s.name.Kind {
	case KindInterface:
		iface := s.name.Interface
		if byService := w.ifaces[iface]; byService != nil {
			delete(byService, s.service)
			w.publishInterface(iface, observed)
		}
	case KindApplication:
		if w.fed[s.service] {
			delete(w.fed, s.service)
			w.apps.RemoveApp(s.service, observed)
		}
	}
	w.recordGauges()
}

// listID identifies an instance list's content, whatever its order: its length and an
// order-independent 64-bit hash of its instances (address, state, weight, metadata).
// Hashing, not a string of the whole list: the 10 s re-read of every subscribed list and
// the memory per subscription were most of the registry's own cost (BENCHMARKS.md).
type listID struct {
	n    int
	hash uint64
}

func listKey(instances []model.Instance) listID {
	id := listID{n: len(instances)}
	for i := range instances {
		id.hash += mix(instanceHash(&instances[i]))
	}
	return id
}

// instanceHash hashes an instance; its metadata entries are combined order-independently
// (no sort of the keys).
func instanceHash(in *model.Instance) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d|%t|%t|%g", in.Ip, in.Port, in.Enable, in.Healthy, in.Weight)
	sum := h.Sum64()
	for k, v := range in.Metadata {
		h.Reset()
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(v))
		sum += mix(h.Sum64())
	}
	return sum
}

// mix spreads a hash before it is summed (splitmix64's finaliser), so that sums of
// related hashes do not collide.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// sameSlice is true when b is the very list a is (same backing array and length): the
// client's cache hands out the list it stored, so an unchanged service re-read at the
// interval costs no hashing.
func sameSlice(a, b []model.Instance) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// countLocked adds (delta 1) or takes away (-1) a subscription from the totals.
func (w *Watcher) countLocked(s *subscription, delta int) {
	if s.name.Kind == KindInterface {
		w.totIfaces += delta
	} else {
		w.totApps += delta
	}
	w.recordGauges()
}

func (w *Watcher) recordGauges() {
	r := registryTag.Value(w.cfg.Name)
	subscribedGauge.With(r, kindTag.Value("interface")).Record(float64(w.totIfaces))
	subscribedGauge.With(r, kindTag.Value("application")).Record(float64(w.totApps))
	instancesGauge.With(r).Record(float64(w.totInstances))
	outOfRotationGauge.With(r).Record(float64(w.totOut))
}

// fail records a failed request: counted, shown in /debug/dubboz, logged at the first
// failure and then rate-limited. A list failure is the registry's list error.
func (w *Watcher) fail(reason, service string, err error) {
	errorsTotal.With(registryTag.Value(w.cfg.Name), reasonTag.Value(reason)).Increment()
	k := reason
	if service != "" {
		k += " " + service
	}
	what := k
	now := time.Now()
	w.mu.Lock()
	e, seen := w.lastErr[k]
	if !seen {
		e.Since = now
	}
	e.Error, e.Last = err.Error(), now
	e.Count++
	w.lastErr[k] = e
	w.mu.Unlock()
	if reason == "list" || reason == "client" {
		for _, src := range w.sources() {
			w.sink.ListError(src, "", err)
		}
	}
	if w.rules != nil && (reason == "list" || reason == "client" || reason == "rule") {
		// The rule keys come from the service list: a failed list is the config center's too.
		w.rules.sink.ListError(w.rules.source, service, err)
	}
	if !seen {
		scope.Warnf("registry %s: Nacos %s failed (retrying; see /debug/dubboz): %v", w.cfg.Name, what, err)
	} else {
		w.logf("registry %s: Nacos %s still failing (%d attempts): %v", w.cfg.Name, what, e.Count, err)
	}
}

// ok clears a failure once the request works again.
func (w *Watcher) ok(reason, service string) {
	k := reason
	if service != "" {
		k += " " + service
	}
	w.mu.Lock()
	_, had := w.lastErr[k]
	delete(w.lastErr, k)
	w.mu.Unlock()
	if had {
		scope.Infof("registry %s: Nacos %s works again", w.cfg.Name, k)
		if reason == "list" || reason == "client" {
			for _, src := range w.sources() {
				w.sink.ListError(src, "", nil)
			}
		}
		if w.rules != nil && (reason == "list" || reason == "client" || reason == "rule") {
			w.rules.sink.ListError(w.rules.source, service, nil)
		}
	}
}

func (w *Watcher) logf(format string, args ...any) {
	if w.logLimiter.Allow() {
		scope.Warnf(format, args...)
	}
}

// RemoteMetadata reads an application revision's metadata from the Nacos config
// center: dataId=<app>, group=<revision>, as Dubbo 3's Nacos metadata report writes it
// (and the older dataId=<app>:<revision> in DEFAULT_GROUP).
func (w *Watcher) RemoteMetadata(ctx context.Context, app, revision string) ([]byte, error) {
	w.mu.Lock()
	config := w.config
	w.mu.Unlock()
	if config == nil {
		return nil, fmt.Errorf("not connected to Nacos yet")
	}
	var lastErr error
	for _, p := range []vo.ConfigParam{{DataId: app, Group: revision}, {DataId: app + ":" + revision, Group: DefaultGroup}} {
		type result struct {
			content string
			err     error
		}
		ch := make(chan result, 1)
		go func() {
			w.getConfigMu.Lock()
			c, err := config.GetConfig(p)
			w.getConfigMu.Unlock()
			ch <- result{c, err}
		}()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r := <-ch:
			switch {
			case r.err != nil:
				lastErr = fmt.Errorf("config dataId=%s group=%s: %v", p.DataId, p.Group, r.err)
			case r.content == "":
				lastErr = fmt.Errorf("config dataId=%s group=%s: not found", p.DataId, p.Group)
			default:
				return []byte(r.content), nil
			}
		}
	}
	errorsTotal.With(registryTag.Value(w.cfg.Name), reasonTag.Value("metadata")).Increment()
	return nil, lastErr
}
