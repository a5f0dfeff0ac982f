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

// Command dubbo-provider is a small real Dubbo provider: it serves the Dubbo protocol
// with Hessian2 serialization and registers itself in ZooKeeper exactly as Dubbo does
// (an ephemeral node /dubbo/<interface>/providers/<URL-encoded provider URL>). It answers
// every method with a greeting that names its version and port, so a caller sees which
// provider it reached. An admin endpoint changes the registered weight, as Dubbo's QoS
// and governance do:
//
//	curl -X POST '127.0.0.1:<admin>/weight?value=300'
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dubbo-istiod/dubbo-istiod/pkg/dubbowire"
)

type provider struct {
	conn   *zk.Conn
	iface  string
	ip     string
	port   int
	params map[string]string

	mu   sync.Mutex
	node string
}

func (p *provider) register() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	raw := dubbowire.ProviderURL(p.ip, p.port, p.iface, p.params)
	path := dubbowire.NodePath("/dubbo", p.iface, "providers", raw)
	acl := zk.WorldACL(zk.PermAll)
	parts := strings.Split(strings.TrimPrefix(path[:strings.LastIndexByte(path, '/')], "/"), "/")
	cur := ""
	for _, s := range parts {
		cur += "/" + s
		if _, err := p.conn.Create(cur, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %v", cur, err)
		}
	}
	if p.node != "" && p.node != path {
		_ = p.conn.Delete(p.node, -1)
	}
	if _, err := p.conn.Create(path, nil, zk.FlagEphemeral, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("register: %v", err)
	}
	p.node = path
	log.Printf("registered %s", raw)
	return nil
}

func main() {
	zkAddr := flag.String("zk", "127.0.0.1:2181", "ZooKeeper address")
	iface := flag.String("interface", "com.example.DemoService", "Dubbo interface")
	ip := flag.String("ip", "127.0.0.1", "address to serve and register")
	port := flag.Int("port", 20880, "Dubbo port")
	version := flag.String("version", "1.0.0", "service version")
	group := flag.String("group", "", "service group")
	weight := flag.Int("weight", 100, "Dubbo weight")
	app := flag.String("application", "demo-provider", "application name")
	admin := flag.String("admin", "", "admin address (POST /weight?value=N re-registers with a new weight)")
	flag.Parse()
	log.SetPrefix(fmt.Sprintf("[provider %s v%s :%d] ", *iface, *version, *port))
	log.SetFlags(log.Ltime)

	srv, err := dubbowire.Listen(net.JoinHostPort(*ip, strconv.Itoa(*port)), func(c dubbowire.Call) (any, error) {
		arg := ""
		if len(c.Args) > 0 {
			arg = fmt.Sprint(c.Args[0])
		}
		return fmt.Sprintf("%s(%s) answered by %s v%s on %s:%d", c.Method, arg, *app, *version, *ip, *port), nil
	})
	if err != nil {
		log.Fatalf("serve: %v", err)
	}
	conn, events, err := zk.Connect([]string{*zkAddr}, 10*time.Second, zk.WithLogger(log.New(io.Discard, "", 0)))
	if err != nil {
		log.Fatalf("zookeeper: %v", err)
	}
	p := &provider{conn: conn, iface: *iface, ip: *ip, port: *port, params: map[string]string{
		"version": *version, "group": *group, "weight": strconv.Itoa(*weight), "application": *app,
		"pid": strconv.Itoa(os.Getpid()), "timestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}}
	registered := make(chan struct{})
	go func() {
		var session int64
		for ev := range events {
			if ev.Type == zk.EventSession && ev.State == zk.StateHasSession && conn.SessionID() != session {
				session = conn.SessionID() // a new session: (re-)register, as Dubbo does
				if err := p.register(); err != nil {
					log.Printf("%v", err)
				}
				select {
				case <-registered:
				default:
					close(registered)
				}
			}
		}
	}()
	select {
	case <-registered:
	case <-time.After(30 * time.Second):
		log.Fatalf("no ZooKeeper session on %s", *zkAddr)
	}
	if *admin != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/weight", func(w http.ResponseWriter, r *http.Request) {
			n, err := strconv.Atoi(r.URL.Query().Get("value"))
			if r.Method != http.MethodPost || err != nil || n < 0 {
				http.Error(w, "POST /weight?value=<non-negative integer>", http.StatusBadRequest)
				return
			}
			p.mu.Lock()
			p.params["weight"] = strconv.Itoa(n)
			p.mu.Unlock()
			if err := p.register(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, "weight %d\n", n)
		})
		go func() { log.Printf("admin: %v", http.ListenAndServe(*admin, mux)) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	log.Printf("stopping: unregistering")
	p.mu.Lock()
	_ = conn.Delete(p.node, -1)
	p.mu.Unlock()
	conn.Close()
	srv.Close()
}
