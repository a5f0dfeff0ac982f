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

package zk

import (
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"istio.io/istio/pkg/test/util/retry"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/dubbowire"
)

// JavaURLEncode, ProviderURL and NodePath: Dubbo's registration format (pkg/dubbowire).
var (
	JavaURLEncode = dubbowire.JavaURLEncode
	ProviderURL   = dubbowire.ProviderURL
	NodePath      = dubbowire.NodePath
)

// sessionWait bounds how long a write waits for the client's session (a restarted
// server or a healed partition on a loaded 2-core machine can take a while).
const sessionWait = 60 * time.Second

// Client is a ZooKeeper session, as one Dubbo application holds it.
type Client struct {
	Conn *zk.Conn

	// auth is the digest credential ("user:password") of this client, for
	// CreateProtected.
	auth string

	mu         sync.Mutex
	registered map[string][]byte // full node paths of ephemeral registrations -> their data
	sessionID  int64
	closed     bool
}

// Connect opens a session on the server (one per simulated Dubbo application). Like
// Dubbo, it re-registers its ephemeral providers when it gets a new session.
func Connect(t testing.TB, addr string, sessionTimeout time.Duration) *Client {
	t.Helper()
	// Session changes are read from the connection's own state whenever its callback
	// signals one: go-zookeeper drops events when its event channel is full, and a
	// dropped StateHasSession would skip a re-registration.
	changed := make(chan struct{}, 1)
	conn, events, err := zk.Connect([]string{addr}, sessionTimeout, zk.WithLogger(log.New(io.Discard, "", 0)),
		zk.WithEventCallback(func(ev zk.Event) {
			if ev.Type == zk.EventSession {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Conn: conn, registered: map[string][]byte{}, auth: fmt.Sprintf("client-%p:secret", conn)}
	go func() {
		for {
			select {
			case _, ok := <-events:
				if !ok {
					return // closed: the client's goroutines have ended
				}
			case <-changed:
				c.onSession()
			}
		}
	}()
	t.Cleanup(c.Close)
	c.waitSession(t)
	return c
}

func (c *Client) onSession() {
	id := c.Conn.SessionID()
	if c.Conn.State() != zk.StateHasSession || id == 0 {
		return
	}
	c.mu.Lock()
	renew := c.sessionID != 0 && id != c.sessionID && !c.closed
	c.sessionID = id
	nodes := maps.Clone(c.registered)
	c.mu.Unlock()
	if renew { // NEW_SESSION_CREATED: Dubbo re-registers what it exported
		for p, data := range nodes {
			_ = c.createData(p, data, zk.FlagEphemeral)
		}
	}
}

// waitSession waits until the client has a session, so that a write right after a
// server restart or a healed partition does not fail with "could not connect".
func (c *Client) waitSession(t testing.TB) {
	t.Helper()
	retry.UntilSuccessOrFail(t, func() error {
		if s := c.Conn.State(); s != zk.StateHasSession {
			return fmt.Errorf("no ZooKeeper session on %s (state %v)", c.Conn.Server(), s)
		}
		return nil
	}, retry.Timeout(sessionWait), retry.Delay(20*time.Millisecond))
}

// Close ends the session: its ephemeral nodes vanish, as when a provider stops.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.Conn.Close()
}

func (c *Client) ensure(path string) error {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	cur := ""
	for _, p := range parts {
		cur += "/" + p
		_, err := c.Conn.Create(cur, nil, 0, zk.WorldACL(zk.PermAll))
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %v", cur, err)
		}
	}
	return nil
}

func (c *Client) create(path string, flags int32) error {
	return c.createData(path, nil, flags)
}

func (c *Client) createData(path string, data []byte, flags int32) error {
	dir := path[:strings.LastIndexByte(path, '/')]
	if err := c.ensure(dir); err != nil {
		return err
	}
	_, err := c.Conn.Create(path, data, flags, zk.WorldACL(zk.PermAll))
	if errors.Is(err, zk.ErrNodeExists) {
		return nil
	}
	return err
}

// Register registers a provider URL as Dubbo does (ephemeral; dynamic=false makes it
// persistent) and returns the node path.
func (c *Client) Register(t testing.TB, iface, rawURL string) string {
	t.Helper()
	c.waitSession(t)
	p := NodePath("/dubbo", iface, "providers", rawURL)
	flags := int32(zk.FlagEphemeral)
	if strings.Contains(rawURL, "dynamic=false") {
		flags = 0
	}
	if err := c.create(p, flags); err != nil {
		t.Fatalf("register %s: %v", rawURL, err)
	}
	if flags == zk.FlagEphemeral {
		c.mu.Lock()
		c.registered[p] = nil
		c.mu.Unlock()
	}
	return p
}

// Put creates a node with data (and its missing parents), or sets the data of an
// existing one: Dubbo 3's instance nodes (ephemeral, registered by this client) and
// metadata/mapping nodes (persistent).
func (c *Client) Put(t testing.TB, path string, data []byte, ephemeral bool) {
	t.Helper()
	c.waitSession(t)
	if err := c.ensure(path[:strings.LastIndexByte(path, '/')]); err != nil {
		t.Fatal(err)
	}
	flags := int32(0)
	if ephemeral {
		flags = zk.FlagEphemeral
	}
	_, err := c.Conn.Create(path, data, flags, zk.WorldACL(zk.PermAll))
	if errors.Is(err, zk.ErrNodeExists) {
		_, err = c.Conn.Set(path, data, -1)
	}
	if err != nil {
		t.Fatalf("put %s: %v", path, err)
	}
	if ephemeral {
		c.mu.Lock()
		c.registered[path] = data
		c.mu.Unlock()
	}
}

// CreateRaw creates an arbitrary persistent node (junk, consumers, ...).
func (c *Client) CreateRaw(t testing.TB, path string) {
	t.Helper()
	c.waitSession(t)
	if err := c.create(path, 0); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
}

// Unregister deletes a node, as Dubbo's unexport does.
func (c *Client) Unregister(t testing.TB, path string) {
	t.Helper()
	c.waitSession(t)
	c.mu.Lock()
	delete(c.registered, path)
	c.mu.Unlock()
	if err := c.Conn.Delete(path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		t.Fatalf("delete %s: %v", path, err)
	}
}

// CreateProtected creates a persistent node (and its missing parents, world-readable)
// that only this client may read: other clients get "not authenticated" when they list
// it, as with a providers node whose ACL leaves out istiod.
func (c *Client) CreateProtected(t testing.TB, path string) {
	t.Helper()
	c.waitSession(t)
	if err := c.ensure(path[:strings.LastIndexByte(path, '/')]); err != nil {
		t.Fatal(err)
	}
	if err := c.Conn.AddAuth("digest", []byte(c.auth)); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	user, pass, _ := strings.Cut(c.auth, ":")
	if _, err := c.Conn.Create(path, nil, 0, zk.DigestACL(zk.PermAll, user, pass)); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
}

// Protect makes an existing node readable by this client only again.
func (c *Client) Protect(t testing.TB, path string) {
	t.Helper()
	c.waitSession(t)
	if err := c.Conn.AddAuth("digest", []byte(c.auth)); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	user, pass, _ := strings.Cut(c.auth, ":")
	if _, err := c.Conn.SetACL(path, zk.DigestACL(zk.PermAll, user, pass), -1); err != nil {
		t.Fatalf("set ACL of %s: %v", path, err)
	}
}

// SetWorldACL opens a node to every client (fixing what CreateProtected did).
func (c *Client) SetWorldACL(t testing.TB, path string) {
	t.Helper()
	c.waitSession(t)
	if _, err := c.Conn.SetACL(path, zk.WorldACL(zk.PermAll), -1); err != nil {
		t.Fatalf("set ACL of %s: %v", path, err)
	}
}

// Tree lists every node path under root (depth first, sorted per level), with its data
// length, e.g. "/dubbo/com.x.S/providers/dubbo%3A%2F%2F... (0 bytes)".
func (c *Client) Tree(t testing.TB, root string) []string {
	t.Helper()
	c.waitSession(t)
	var out []string
	var walk func(p string)
	walk = func(p string) {
		data, _, err := c.Conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			return // removed while walking
		}
		if err != nil {
			t.Fatalf("get %s: %v", p, err)
		}
		out = append(out, fmt.Sprintf("%s (%d bytes)", p, len(data)))
		children, _, err := c.Conn.Children(p)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			t.Fatalf("children of %s: %v", p, err)
		}
		sort.Strings(children)
		for _, ch := range children {
			walk(path.Join(p, ch))
		}
	}
	walk(root)
	return out
}
