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
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a loopback TCP proxy in front of the server: Cut partitions the clients that
// use it (their connections drop and new ones are refused) while the server keeps
// running, so their sessions expire after the session timeout, exactly as in a network
// partition. Heal lets them reconnect.
type Proxy struct {
	Addr   string
	target string
	l      net.Listener

	mu      sync.Mutex
	cut     bool
	refused int
	conns   map[net.Conn]bool
	ups     map[net.Conn]bool // the proxy's connections to the target
}

// StartProxy proxies to target until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, l: l, conns: map[net.Conn]bool{}, ups: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { l.Close(); p.Cut() })
	return p
}

func (p *Proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.refused++
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.ups[up] = true
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	delete(p.ups, dst)
	delete(p.ups, src)
	p.mu.Unlock()
}

// Cut drops every proxied connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
		delete(p.ups, c)
	}
}

// Heal accepts connections again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Refused counts the connections refused while cut (each is one failed reconnect
// attempt of a client: go-zookeeper emits three session events for it).
func (p *Proxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// Upstreams returns the local addresses of the proxy's open connections to the target,
// as the server sees its clients (see Server.Sessions).
func (p *Proxy) Upstreams() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.ups))
	for c := range p.ups {
		out = append(out, c.LocalAddr().String())
	}
	return out
}
