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
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/model"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/appdiscovery"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

// fakeSink records what the watcher hands the registry (the registry itself is exercised
// against a real server in watcher_test.go; this pins the per-list decisions).
type fakeSink struct {
	urls    map[string]map[string]*provider.URL
	removed []string
	apps    map[string]map[string]appdiscovery.Decoded
}

func (f *fakeSink) SetURLs(_, iface string, urls map[string]*provider.URL, _ time.Time) {
	f.urls[iface] = urls
}
func (f *fakeSink) RemoveInterface(_, iface string, _ time.Time) {
	delete(f.urls, iface)
	f.removed = append(f.removed, iface)
}
func (f *fakeSink) SourceConnected(string, bool, bool) {}
func (f *fakeSink) SourceSynced(string)                {}
func (f *fakeSink) ListError(string, string, error)    {}
func (f *fakeSink) SetDecoded(app string, in map[string]appdiscovery.Decoded, _ time.Time) {
	f.apps[app] = in
}
func (f *fakeSink) RemoveApp(app string, _ time.Time) { delete(f.apps, app) }
func (f *fakeSink) Listed()                           {}

func newTestWatcher() (*Watcher, *fakeSink) {
	f := &fakeSink{urls: map[string]map[string]*provider.URL{}, apps: map[string]map[string]appdiscovery.Decoded{}}
	w := NewWatcher(Config{Name: "nacos"}, f, "nacos")
	w.SetAppSink(f, "nacos/app")
	return w, f
}

func (w *Watcher) testSubscribe(service string) *subscription {
	s := &subscription{service: service, name: ParseServiceName(service)}
	w.subs[service] = s
	return s
}

func TestApplyInterfaceLevel(t *testing.T) {
	w, f := newTestWatcher()
	v1 := w.testSubscribe("providers:com.example.GreetService::")
	v2 := w.testSubscribe("providers:com.example.GreetService:2.0.0:")
	md := map[string]string{"interface": "com.example.GreetService", "protocol": "dubbo"}
	w.apply(v1, []model.Instance{
		{Ip: "10.0.0.1", Port: 20880, Weight: 1, Enable: true, Healthy: true, Metadata: md},
		{Ip: "10.0.0.2", Port: 20880, Weight: 1, Enable: true, Healthy: false, Metadata: md},
		{Ip: "10.0.0.3", Port: 20880, Weight: 1, Enable: false, Healthy: true, Metadata: md},
		{Ip: "not-an-ip", Port: 20880, Weight: 1, Enable: true, Healthy: true, Metadata: md},
	}, time.Now())
	w.apply(v2, []model.Instance{{Ip: "10.0.0.4", Port: 20881, Weight: 1, Enable: true, Healthy: true, Metadata: md}}, time.Now())
	got := slices.Sorted(maps.Keys(f.urls["com.example.GreetService"]))
	want := []string{"providers:com.example.GreetService:2.0.0:/10.0.0.4:20881", "providers:com.example.GreetService::/10.0.0.1:20880"}
	if !slices.Equal(got, want) {
		t.Fatalf("URLs %v, want %v (unhealthy, disabled and rejected instances out)", got, want)
	}
	if v1.dubbo != 4 || v1.out != 2 || v1.rejected != 1 {
		t.Errorf("counts: %d listed, %d out of rotation, %d rejected; want 4, 2, 1", v1.dubbo, v1.out, v1.rejected)
	}
	if u := f.urls["com.example.GreetService"]["providers:com.example.GreetService:2.0.0:/10.0.0.4:20881"]; u.Params["version"] != "2.0.0" {
		t.Errorf("version from the service name: %q", u.Params["version"])
	}
	// The same list again changes nothing (no push counted).
	pushes := v1.pushes
	w.apply(v1, []model.Instance{
		{Ip: "10.0.0.3", Port: 20880, Weight: 1, Enable: false, Healthy: true, Metadata: md},
		{Ip: "not-an-ip", Port: 20880, Weight: 1, Enable: true, Healthy: true, Metadata: md},
		{Ip: "10.0.0.2", Port: 20880, Weight: 1, Enable: true, Healthy: false, Metadata: md},
		{Ip: "10.0.0.1", Port: 20880, Weight: 1, Enable: true, Healthy: true, Metadata: md},
	}, time.Now())
	if v1.pushes != pushes {
		t.Errorf("a reordered identical list counted as a change")
	}
	// One version's service goes: the interface keeps the other's providers.
	w.mu.Lock()
	delete(w.subs, v2.service)
	w.removeLocked(v2, time.Now())
	w.mu.Unlock()
	if got := slices.Sorted(maps.Keys(f.urls["com.example.GreetService"])); len(got) != 1 {
		t.Errorf("after 2.0.0 went: %v", got)
	}
	w.mu.Lock()
	delete(w.subs, v1.service)
	w.removeLocked(v1, time.Now())
	w.mu.Unlock()
	if !slices.Equal(f.removed, []string{"com.example.GreetService"}) {
		t.Errorf("the interface must be removed once its last service went: %v", f.removed)
	}
}

func TestApplyApplicationLevel(t *testing.T) {
	w, f := newTestWatcher()
	app := w.testSubscribe("greet-provider")
	other := w.testSubscribe("spring-orders")
	dubbo := map[string]string{appdiscovery.KeyRevision: "abc", appdiscovery.KeyStorageType: "remote"}
	w.apply(other, []model.Instance{{Ip: "10.0.1.9", Port: 8080, Enable: true, Healthy: true,
		Metadata: map[string]string{"preserved.register.source": "SPRING_CLOUD"}}}, time.Now())
	if _, ok := f.apps["spring-orders"]; ok || other.nonDubbo != 1 {
		t.Errorf("a service with no Dubbo instance must not reach the application level (nonDubbo %d)", other.nonDubbo)
	}
	w.apply(app, []model.Instance{
		{Ip: "10.0.1.1", Port: 20880, Enable: true, Healthy: true, Metadata: dubbo},
		{Ip: "10.0.1.2", Port: 20880, Enable: true, Healthy: false, Metadata: dubbo},
	}, time.Now())
	if got := slices.Sorted(maps.Keys(f.apps["greet-provider"])); !slices.Equal(got, []string{"10.0.1.1:20880"}) {
		t.Errorf("instances %v, want the healthy one", got)
	}
	// Every instance gone: the application level is told (it had the application).
	w.apply(app, nil, time.Now())
	if in, ok := f.apps["greet-provider"]; !ok || len(in) != 0 {
		t.Errorf("an emptied application must be reported empty, got %v %v", in, ok)
	}
	d := w.Debug()
	if d.NonDubboServices != 1 || d.Subscribed["application"] != 2 {
		t.Errorf("debug: nonDubbo %d, applications %d; want 1, 2", d.NonDubboServices, d.Subscribed["application"])
	}
}
