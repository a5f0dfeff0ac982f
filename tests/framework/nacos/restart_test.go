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
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"istio.io/istio/pkg/test/util/retry"
)

// The server goes down and comes back on the same ports with the same data: the SDK
// reconnects by itself, registers its instances again and delivers to its subscribers.
func TestStopRestart(t *testing.T) {
	s := Start(t, Options{})
	s.RegisterInstance(t, "", svc, "", "127.0.0.1", 20880, nil)
	c := s.NamingClient(t, "")
	sub := subscribe(t, c, svc)
	sub.waitFor(sub.start, 10*time.Second, "127.0.0.1:20880")

	mark := time.Now()
	s.Stop()
	t.Logf("stopped in %v", time.Since(mark))
	// While it is down the SDK serves its cache; no callback empties the service.
	select {
	case ins := <-sub.ch:
		t.Logf("callback while down: %v", addrs(ins))
	case <-time.After(3 * time.Second):
		t.Logf("no callback in 3 s while down; ServerHealthy=%v", c.ServerHealthy())
	}
	ins, err := c.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
	t.Logf("SelectAllInstances while down: %v %v", addrs(ins), err)

	mark = time.Now()
	s.Start()
	t.Logf("restarted in %v", s.StartToReady)
	retry.UntilSuccessOrFail(t, func() error {
		if !c.ServerHealthy() {
			return fmt.Errorf("client not reconnected")
		}
		return nil
	}, retry.Timeout(30*time.Second), retry.Delay(50*time.Millisecond))
	t.Logf("subscriber's client reconnected %v after the restart", time.Since(mark))

	// The provider's client registers its instance again. Until then Polaris has dropped
	// it with the dead connection: a subscriber may see the service empty for a moment
	// (the callbacks logged above show it).
	t.Logf("instance registered again and seen by the old subscriber %v after the restart",
		sub.waitFor(mark, 30*time.Second, "127.0.0.1:20880"))
	// A change after the restart reaches the old subscription.
	mark2 := time.Now()
	s.RegisterInstance(t, "", svc, "", "127.0.0.1", 20881, nil)
	t.Logf("registration after the restart seen by the old subscriber after %v",
		sub.waitFor(mark2, 30*time.Second, "127.0.0.1:20880", "127.0.0.1:20881"))
	fresh := s.NamingClient(t, "")
	retry.UntilSuccessOrFail(t, func() error {
		ins, err := fresh.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
		if got := addrs(ins); err != nil || !slices.Equal(got, []string{"127.0.0.1:20880", "127.0.0.1:20881"}) {
			return fmt.Errorf("fresh client: %v %v", got, err)
		}
		return nil
	}, retry.Timeout(30*time.Second), retry.Delay(50*time.Millisecond))
	t.Logf("a fresh client sees both %v after the restart", time.Since(mark))
}

// Polaris's Nacos API cannot tell good credentials from bad ones through nacos-sdk-go: the
// SDK logs in at /nacos/v1/auth/users/login, which Polaris does not serve (404; it serves
// /v1/auth/users/login, which answers "invalid token" whatever the password), so the SDK
// never holds a token. With Options.Auth (strict client auth) config reads and every write
// are refused whatever the credentials, while the service list is still served.
func TestAuth(t *testing.T) {
	s := Start(t, Options{})
	s.RegisterInstance(t, "", svc, "", "127.0.0.1", 20880, nil)
	s.PublishConfig(t, "", "com.example.GreetService", "mapping", "app1")
	waitConfig(t, s, "com.example.GreetService", "mapping", "app1")

	// The same data behind strict auth.
	s.Stop()
	s.Opts.Auth = true
	s.Start()
	for _, pw := range []string{"wrong", AdminToken} {
		c := s.NamingClient(t, "", constant.WithUsername("polaris"), constant.WithPassword(pw))
		l, err := c.GetAllServicesInfo(vo.GetAllServiceInfoParam{PageNo: 1, PageSize: 10})
		if err != nil || !slices.Equal(l.Doms, []string{svc}) {
			t.Fatalf("password %.5s…: services %+v %v: the list is served behind strict auth", pw, l, err)
		}
		ok, err := c.RegisterInstance(vo.RegisterInstanceParam{Ip: "127.0.0.1", Port: 1, Weight: 1, Enable: true, Healthy: true, Ephemeral: true, ServiceName: "x"})
		t.Logf("password %.5s…: RegisterInstance ok=%v err=%v", pw, ok, err)
		if ok {
			t.Fatalf("password %.5s…: registration accepted behind strict auth", pw)
		}
		cc := s.ConfigClient(t, "", constant.WithUsername("polaris"), constant.WithPassword(pw))
		v, err := cc.GetConfig(vo.ConfigParam{DataId: "com.example.GreetService", Group: "mapping"})
		t.Logf("password %.5s…: GetConfig %q err=%v", pw, v, err)
		if err == nil || err.Error() != "invalid token" {
			t.Fatalf("password %.5s…: GetConfig %q %v, want error invalid token", pw, v, err)
		}
		ok, err = cc.PublishConfig(vo.ConfigParam{DataId: "d", Group: "g", Content: "x"})
		t.Logf("password %.5s…: PublishConfig ok=%v err=%v", pw, ok, err)
		if ok || err == nil || err.Error() != "access is not approved" {
			t.Fatalf("password %.5s…: PublishConfig %v %v, want error access is not approved", pw, ok, err)
		}
	}
}
