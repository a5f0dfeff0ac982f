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
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"istio.io/istio/pkg/test/util/retry"
)

const svc = "providers:com.example.GreetService::"

// subscriber records every subscribe callback of one service.
type subscriber struct {
	t     testing.TB
	ch    chan []model.Instance
	start time.Time
}

func subscribe(t testing.TB, c naming_client.INamingClient, service string) *subscriber {
	t.Helper()
	s := &subscriber{t: t, ch: make(chan []model.Instance, 100), start: time.Now()}
	if err := c.Subscribe(&vo.SubscribeParam{ServiceName: service, SubscribeCallback: func(ins []model.Instance, err error) {
		if err != nil {
			t.Logf("subscribe callback error: %v", err)
			return
		}
		s.ch <- slices.Clone(ins)
	}}); err != nil {
		t.Fatalf("subscribe %s: %v", service, err)
	}
	return s
}

// waitFor waits for a callback whose instances (sorted "ip:port" of healthy, enabled
// ones) equal want, and returns how long it took since mark.
func (s *subscriber) waitFor(mark time.Time, timeout time.Duration, want ...string) time.Duration {
	s.t.Helper()
	sort.Strings(want)
	deadline := time.After(timeout)
	var last []string
	for {
		select {
		case ins := <-s.ch:
			last = addrs(ins)
			s.t.Logf("callback at +%v: %v", time.Since(mark).Round(time.Millisecond), last)
			if slices.Equal(last, want) {
				return time.Since(mark)
			}
		case <-deadline:
			s.t.Fatalf("no subscribe callback with %v within %v (last: %v)", want, timeout, last)
		}
	}
}

func addrs(ins []model.Instance) []string {
	out := []string{}
	for _, i := range ins {
		if i.Healthy && i.Enable {
			out = append(out, fmt.Sprintf("%s:%d", i.Ip, i.Port))
		}
	}
	sort.Strings(out)
	return out
}

func TestRegisterSubscribeDeregister(t *testing.T) {
	s := Start(t, Options{})
	t.Logf("polaris-server ready in %v at %s (grpc %d)", s.StartToReady, s.URL(), s.GRPCPort())

	md := map[string]string{"protocol": "dubbo", "path": "com.example.GreetService", "methods": "SayHello"}
	s.RegisterInstance(t, "", svc, "", "127.0.0.1", 20880, md)

	c := s.NamingClient(t, "")
	retry.UntilSuccessOrFail(t, func() error {
		l, err := c.GetAllServicesInfo(vo.GetAllServiceInfoParam{PageNo: 1, PageSize: 100})
		if err != nil {
			return err
		}
		if !slices.Contains(l.Doms, svc) {
			return fmt.Errorf("service list %+v lacks %s", l, svc)
		}
		return nil
	}, retry.Timeout(10*time.Second), retry.Delay(50*time.Millisecond))

	sub := subscribe(t, c, svc)
	t.Logf("first callback after %v", sub.waitFor(sub.start, 10*time.Second, "127.0.0.1:20880"))
	ins, err := c.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
	if err != nil || len(ins) != 1 {
		t.Fatalf("SelectAllInstances: %v %+v", err, ins)
	}
	if ins[0].Metadata["methods"] != "SayHello" || ins[0].Weight != 1 {
		t.Fatalf("instance %+v: want metadata methods=SayHello and weight 1", ins[0])
	}

	mark := time.Now()
	s.RegisterInstance(t, "", svc, "", "127.0.0.1", 20881, md)
	t.Logf("second instance seen after %v", sub.waitFor(mark, 10*time.Second, "127.0.0.1:20880", "127.0.0.1:20881"))

	// Deletions reach subscribers only with patch 0001 (the boltdb soft delete bumps the
	// instance's Mtime). Polaris's incremental cache re-reads instances modified within
	// cache.diffTime (5 s) of its last fetch, so an instance deleted within 5 s of its
	// registration goes even without the patch: let both instances age past that window
	// first, as every real provider has.
	time.Sleep(time.Until(mark.Add(6500 * time.Millisecond)))
	mark = time.Now()
	s.Deregister(t, "", svc, "", "127.0.0.1", 20880)
	t.Logf("deregistration seen after %v", sub.waitFor(mark, 15*time.Second, "127.0.0.1:20881"))
	// A provider that dies without deregistering: its connection goes, and so does its
	// instance (0 instances: WithUpdateCacheWhenEmpty).
	mark = time.Now()
	s.Disconnect(t, "", svc, "", "127.0.0.1", 20881)
	t.Logf("disconnection (0 instances) seen after %v", sub.waitFor(mark, 15*time.Second))
}

func TestCASPublish(t *testing.T) {
	s := Start(t, Options{})
	c := s.ConfigClient(t, "")
	const dataID, group = "com.example.GreetService", "mapping"
	// Retried as the harness's helpers do: Polaris refuses some requests right after its start.
	if ok, err := retrySDK(func() (bool, error) {
		return c.PublishConfig(vo.ConfigParam{DataId: dataID, Group: group, Content: "app1"})
	}); !ok || err != nil {
		t.Fatalf("publish: %v %v", ok, err)
	}
	// The CAS below compares with what was published: wait until it is readable.
	waitConfig(t, s, dataID, group, "app1")
	sum := md5.Sum([]byte("app1"))
	// As dubbo-go's mapping: compare-and-set against the md5 of what it read. Without
	// patch 0002 this answers 409000 (data is conflict).
	ok, err := c.PublishConfig(vo.ConfigParam{DataId: dataID, Group: group, Content: "app1,app2", CasMd5: hex.EncodeToString(sum[:])})
	if !ok || err != nil {
		t.Fatalf("CAS publish with the right md5: ok=%v err=%v", ok, err)
	}
	// A release reaches readers through Polaris's config cache, within about a second.
	waitConfig(t, s, dataID, group, "app1,app2")
	// And the CAS is real: a stale md5 is refused.
	ok, err = c.PublishConfig(vo.ConfigParam{DataId: dataID, Group: group, Content: "stale", CasMd5: hex.EncodeToString(sum[:])})
	if ok || err == nil {
		t.Fatalf("CAS publish with a stale md5 accepted: ok=%v err=%v", ok, err)
	}
	t.Logf("stale CAS publish: %v", err)
	if got, err := s.GetConfig(t, "", dataID, group); got != "app1,app2" {
		t.Fatalf("config after stale CAS publish: %q (%v), want app1,app2", got, err)
	}
}

func waitConfig(t *testing.T, s *Server, dataID, group, want string) {
	t.Helper()
	start := time.Now()
	retry.UntilSuccessOrFail(t, func() error {
		if got, err := s.GetConfig(t, "", dataID, group); got != want {
			return fmt.Errorf("config %s/%s: %q (%v), want %q", group, dataID, got, err, want)
		}
		return nil
	}, retry.Timeout(10*time.Second), retry.Delay(50*time.Millisecond))
	t.Logf("config %s/%s = %q seen after %v", group, dataID, want, time.Since(start))
}

func TestNamespaces(t *testing.T) {
	s := Start(t, Options{})
	// No CreateNamespace: Polaris creates "dev" on the first registration in it
	// (namespace.autoCreate).
	s.RegisterInstance(t, "dev", svc, "", "127.0.0.1", 20880, nil)
	s.RegisterInstance(t, "", svc, "", "127.0.0.1", 20990, nil)
	dev := s.NamingClient(t, "dev")
	pub := s.NamingClient(t, "")
	for _, c := range []struct {
		name   string
		client naming_client.INamingClient
		want   string
	}{{"dev", dev, "127.0.0.1:20880"}, {"public", pub, "127.0.0.1:20990"}} {
		retry.UntilSuccessOrFail(t, func() error {
			ins, err := c.client.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
			if err != nil {
				return err
			}
			if got := addrs(ins); !slices.Equal(got, []string{c.want}) {
				return fmt.Errorf("namespace %s: instances %v, want [%s]", c.name, got, c.want)
			}
			return nil
		}, retry.Timeout(10*time.Second), retry.Delay(50*time.Millisecond))
	}
	// The service list lags registrations by about a second: wait for it.
	for _, ns := range []string{"dev", ""} {
		c := s.NamingClient(t, ns)
		retry.UntilSuccessOrFail(t, func() error {
			l, err := c.GetAllServicesInfo(vo.GetAllServiceInfoParam{PageNo: 1, PageSize: 10})
			if err != nil || l.Count != 1 || !slices.Equal(l.Doms, []string{svc}) {
				return fmt.Errorf("namespace %q: services %+v %v, want only %s", ns, l, err, svc)
			}
			return nil
		}, retry.Timeout(10*time.Second), retry.Delay(50*time.Millisecond))
	}

	// A subscriber of a namespace nobody has written to yet sees the first registration.
	qa := subscribe(t, s.NamingClient(t, "qa"), svc)
	mark := time.Now()
	s.RegisterInstance(t, "qa", svc, "", "127.0.0.1", 20770, nil)
	t.Logf("first instance of a new namespace seen after %v", qa.waitFor(mark, 10*time.Second, "127.0.0.1:20770"))

	// Configs are per namespace too.
	s.PublishConfig(t, "dev", "com.example.GreetService", "mapping", "dev-app")
	retry.UntilSuccessOrFail(t, func() error {
		got, err := s.GetConfig(t, "dev", "com.example.GreetService", "mapping")
		if got != "dev-app" {
			return fmt.Errorf("dev config: %q %v", got, err)
		}
		return nil
	}, retry.Timeout(10*time.Second), retry.Delay(50*time.Millisecond))
	// A missing config reads as "" (with or without an error, depending on the SDK's
	// local cache).
	if got, err := s.GetConfig(t, "", "com.example.GreetService", "mapping"); got != "" {
		t.Fatalf("dev's config visible in public: %q %v", got, err)
	}
}

// Paging through the service list, as a registry does, sees every service of the group
// once. Without patch 0003 pages come in a different order at every call (repeats and
// misses), DEFAULT_GROUP also lists other groups' services as <group>__<name>, Count is
// the whole namespace, and another group's page is padded with empty names.
func TestServiceListPaging(t *testing.T) {
	s := Start(t, Options{})
	var want []string
	for i := 0; i < 25; i++ {
		name := fmt.Sprintf("providers:com.example.S%02d::", i)
		want = append(want, name)
		s.RegisterInstance(t, "", name, "", "127.0.0.1", 20880, nil)
	}
	s.RegisterInstance(t, "", "other-group-service", "other", "127.0.0.1", 20880, nil)
	c := s.NamingClient(t, "")
	pages := func(group string, size uint32) ([]string, error) {
		var got []string
		for page := uint32(1); ; page++ {
			l, err := c.GetAllServicesInfo(vo.GetAllServiceInfoParam{GroupName: group, PageNo: page, PageSize: size})
			if err != nil {
				return nil, err
			}
			got = append(got, l.Doms...)
			if len(l.Doms) < int(size) || len(got) >= int(l.Count) {
				if len(got) != int(l.Count) {
					return got, fmt.Errorf("count %d, pages hold %d names", l.Count, len(got))
				}
				return got, nil
			}
		}
	}
	start := time.Now()
	retry.UntilSuccessOrFail(t, func() error {
		got, err := pages("", 10)
		if err != nil {
			return err
		}
		if sort.Strings(got); !slices.Equal(got, want) {
			return fmt.Errorf("pages of 10 hold %v, want %v", got, want)
		}
		return nil
	}, retry.Timeout(10*time.Second), retry.Delay(100*time.Millisecond))
	t.Logf("25 services listed in pages of 10 after %v", time.Since(start))
	// Repeated reads give the same pages.
	for round := 0; round < 5; round++ {
		got, err := pages("", 10)
		if sort.Strings(got); err != nil || !slices.Equal(got, want) {
			t.Fatalf("round %d: pages of 10 hold %v (%v), want %v", round, got, err, want)
		}
	}
	// Another group lists its own service only (once the server lists it: its registration
	// came last).
	for _, size := range []uint32{1, 100} {
		retry.UntilSuccessOrFail(t, func() error {
			if got, err := pages("other", size); err != nil || !slices.Equal(got, []string{"other-group-service"}) {
				return fmt.Errorf("group other, pages of %d: %q %v, want [other-group-service]", size, got, err)
			}
			return nil
		}, retry.Timeout(10*time.Second), retry.Delay(100*time.Millisecond))
	}
}
