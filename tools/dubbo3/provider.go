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

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/common/extension"
	"dubbo.apache.org/dubbo-go/v3/filter"
	_ "dubbo.apache.org/dubbo-go/v3/imports"
	"dubbo.apache.org/dubbo-go/v3/logger"
	"dubbo.apache.org/dubbo-go/v3/metrics/probe"
	"dubbo.apache.org/dubbo-go/v3/protocol"
	"dubbo.apache.org/dubbo-go/v3/protocol/base"
	"dubbo.apache.org/dubbo-go/v3/protocol/result"
	"dubbo.apache.org/dubbo-go/v3/registry"
	"dubbo.apache.org/dubbo-go/v3/server"
)

// listFlag is a repeatable flag that also accepts comma-separated lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

type providerFlags struct {
	zk, registry, nacosDir       string
	app, mode, metadata          string
	interfaces                   listFlag
	version, group, ip, prefix   string
	weight                       int64
	dubboPort, triPort, metaPort int
	logLevel                     string
	readyTimeout                 time.Duration
	registryID                   string
	serviceParams                listFlag
}

func runProvider(args []string) error {
	var f providerFlags
	fs := flag.NewFlagSet("dubbo3 provider", flag.ContinueOnError)
	fs.StringVar(&f.zk, "zk", "127.0.0.1:2181", "ZooKeeper address (host:port[,host:port]); shorthand of -registry zookeeper://<addr>")
	fs.StringVar(&f.registry, "registry", "", "registry URL: zookeeper://host:port[,host:port] or "+
		"nacos://host:port[?namespace=ns&group=g&username=u&password=p] (default zookeeper://<-zk>); "+
		"the registry is also the metadata report (-metadata remote) and holds the service-name mapping")
	fs.StringVar(&f.nacosDir, "nacos-dir", "", "directory of the Nacos SDK's cache and logs (default: a new directory under $TMPDIR; "+
		"the SDK writes cache/ and log/ in the working directory otherwise)")
	fs.StringVar(&f.app, "app", "greet-provider", "application name")
	fs.StringVar(&f.mode, "mode", "service", "registration: interface (Dubbo 2 style /dubbo/<iface>/providers), "+
		"service (application level; dubbo-go 3.3's default) or all (both)")
	fs.StringVar(&f.metadata, "metadata", "local", "metadata storage: local (MetadataService RPC) or remote "+
		"(in the registry: /dubbo/<app>/<revision> in ZooKeeper, config dataId=<app> group=<revision> in Nacos)")
	fs.Var(&f.interfaces, "interface", "exported interface, repeatable or comma-separated (default com.example.GreetService)")
	fs.StringVar(&f.version, "version", "", "service version")
	fs.StringVar(&f.group, "group", "", "service group")
	fs.Int64Var(&f.weight, "weight", 0, "service weight, the URL parameter weight (0: dubbo-go v3.3.2 then writes weight=0)")
	fs.IntVar(&f.dubboPort, "dubbo-port", 20880, "dubbo protocol port (0 = do not export dubbo)")
	fs.IntVar(&f.triPort, "tri-port", 50051, "triple protocol port (0 = do not export tri)")
	fs.IntVar(&f.metaPort, "metadata-port", 20990, "MetadataService port (must differ from -dubbo-port and -tri-port; served with -metadata local only)")
	fs.StringVar(&f.ip, "ip", "127.0.0.1", "IP the protocols bind and register")
	fs.StringVar(&f.prefix, "reply-prefix", "", "prefix of every answer (identifies the instance to a test)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "dubbo-go log level (debug, info, warn, error)")
	fs.DurationVar(&f.readyTimeout, "ready-timeout", 60*time.Second, "give up if not ready after this long")
	fs.StringVar(&f.registryID, "registry-id", "", "registry id (the instance metadata's registry.id; default zk or nacos)")
	fs.Var(&f.serviceParams, "param", "extra service URL parameter k=v, repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(f.interfaces) == 0 {
		f.interfaces = listFlag{"com.example.GreetService"}
	}
	if f.dubboPort == 0 && f.triPort == 0 {
		return errors.New("nothing to export: -dubbo-port and -tri-port are both 0")
	}
	if f.metaPort == 0 || f.metaPort == f.dubboPort || f.metaPort == f.triPort {
		// Trap: without its own port the MetadataService binds the dubbo protocol's port.
		return fmt.Errorf("-metadata-port %d must be set and differ from -dubbo-port and -tri-port", f.metaPort)
	}

	var regMode registry.Option
	switch f.mode {
	case "interface":
		regMode = registry.WithRegisterInterface()
	case "service":
		regMode = registry.WithRegisterService()
	case "all":
		regMode = registry.WithRegisterServiceAndInterface()
	default:
		return fmt.Errorf("-mode %q: want interface, service or all", f.mode)
	}
	regOpts, err := registryOptions(&f)
	if err != nil {
		return err
	}
	opts := []dubbo.InstanceOption{
		dubbo.WithName(f.app),
		dubbo.WithLogger(logger.WithZap(), logger.WithLevel(f.logLevel)),
		dubbo.WithRegistry(append(regOpts, regMode)...),
		dubbo.WithMetadataServicePort(f.metaPort),
	}
	switch f.metadata {
	case "local":
	case "remote":
		opts = append(opts, dubbo.WithRemoteMetadata())
	default:
		return fmt.Errorf("-metadata %q: want local or remote", f.metadata)
	}
	// Trap: without WithIp interface-level URLs carry the host's external address.
	if f.dubboPort != 0 {
		opts = append(opts, dubbo.WithProtocol(protocol.WithID("dubbo"), protocol.WithDubbo(),
			protocol.WithIp(f.ip), protocol.WithPort(f.dubboPort)))
	}
	if f.triPort != 0 {
		opts = append(opts, dubbo.WithProtocol(protocol.WithID("tri"), protocol.WithTriple(),
			protocol.WithIp(f.ip), protocol.WithPort(f.triPort)))
	}
	ins, err := dubbo.NewInstance(opts...)
	if err != nil {
		return fmt.Errorf("new instance: %v", err)
	}
	srvOpts := []server.ServerOption{
		server.WithServerSerialization("hessian2"),
		// The filter tells the handler which exported URL (protocol, port) a call came in on.
		server.WithServerFilter(constant.DefaultServiceFilters + "," + protoFilterName),
	}
	if f.weight != 0 {
		// No option sets the provider weight in v3.3.2; the URL's weight parameter is
		// written from Provider.Weight (server/action.go), after user params.
		w := f.weight
		srvOpts = append(srvOpts, func(o *server.ServerOptions) { o.Provider.Weight = w })
	}
	srv, err := ins.NewServer(srvOpts...)
	if err != nil {
		return fmt.Errorf("new server: %v", err)
	}
	for _, iface := range f.interfaces {
		svcOpts := []server.ServiceOption{server.WithInterface(iface)}
		if f.version != "" {
			svcOpts = append(svcOpts, server.WithVersion(f.version))
		}
		if f.group != "" {
			svcOpts = append(svcOpts, server.WithGroup(f.group))
		}
		for _, kv := range f.serviceParams {
			k, v, _ := strings.Cut(kv, "=")
			svcOpts = append(svcOpts, server.WithParam(k, v))
		}
		h := &GreetService{prefix: f.prefix, app: f.app, iface: iface}
		if err := srv.RegisterService(h, svcOpts...); err != nil {
			return fmt.Errorf("register %s: %v", iface, err)
		}
	}

	// Readiness: Serve sets the probe's ready flag once services are exported and the
	// instance is registered (server.ServeContext). The flag is only consulted when the
	// probe is initialised with UseInternalState; its HTTP listener takes a random port.
	probe.Init(&probe.Config{Enabled: true, Port: "0", UseInternalState: true})
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- srv.Serve() }()
	ctx, cancel := context.WithTimeout(context.Background(), f.readyTimeout)
	defer cancel()
	var ports []string
	// The MetadataService is exported only with local metadata.
	metaPort := f.metaPort
	if f.metadata != "local" {
		metaPort = 0
	}
	for _, p := range []int{f.dubboPort, f.triPort, metaPort} {
		if p != 0 {
			ports = append(ports, net.JoinHostPort(f.ip, strconv.Itoa(p)))
		}
	}
	for {
		if probe.CheckReadiness(ctx) == nil && dialAll(ports) == nil {
			break
		}
		select {
		case err := <-errc:
			return fmt.Errorf("serve: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v (ports %v: %v)", f.readyTimeout, ports, dialAll(ports))
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "READY app=%s ip=%s dubbo=%d tri=%d metadata=%d mode=%s storage=%s interfaces=%s pid=%d elapsed=%s\n",
		f.app, f.ip, f.dubboPort, f.triPort, metaPort, f.mode, f.metadata, f.interfaces.String(), os.Getpid(),
		time.Since(start).Round(time.Millisecond))
	// SIGTERM: dubbo-go's own handler unregisters, waits, and calls os.Exit(0).
	if err := <-errc; err != nil {
		return fmt.Errorf("serve: %v", err)
	}
	return nil
}

// registryOptions turns -registry (or -zk) into dubbo-go registry options. With the
// registry's default UseAsMetaReport and UseAsConfigCenter, the same registry stores the
// remote metadata and the service-name mapping: ZooKeeper nodes, or Nacos configs.
func registryOptions(f *providerFlags) ([]registry.Option, error) {
	raw := f.registry
	if raw == "" {
		raw = "zookeeper://" + f.zk
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("-registry %q: want zookeeper://host:port or nacos://host:port[?namespace=..]", raw)
	}
	q := u.Query()
	var opts []registry.Option
	switch u.Scheme {
	case "zookeeper", "zk":
		if f.registryID == "" {
			f.registryID = "zk"
		}
		opts = append(opts, registry.WithZookeeper())
	case "nacos":
		if f.registryID == "" {
			f.registryID = "nacos"
		}
		dir := f.nacosDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "dubbo3-nacos-"); err != nil {
				return nil, err
			}
		}
		opts = append(opts, registry.WithNacos(), registry.WithParams(map[string]string{
			constant.NacosCacheDirKey: filepath.Join(dir, "cache"),
			constant.NacosLogDirKey:   filepath.Join(dir, "log"),
		}))
		if ns := q.Get("namespace"); ns != "" {
			opts = append(opts, registry.WithNamespace(ns))
		}
		if g := q.Get("group"); g != "" {
			opts = append(opts, registry.WithGroup(g))
		}
		if v := q.Get("username"); v != "" {
			opts = append(opts, registry.WithUsername(v))
		}
		if v := q.Get("password"); v != "" {
			opts = append(opts, registry.WithPassword(v))
		}
	default:
		return nil, fmt.Errorf("-registry %q: scheme %q, want zookeeper or nacos", raw, u.Scheme)
	}
	return append(opts, registry.WithID(f.registryID), registry.WithAddress(u.Host)), nil
}

func dialAll(addrs []string) error {
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return err
		}
		_ = c.Close()
	}
	return nil
}

// GreetService is the exported non-IDL service (Hessian2 on dubbo and tri).
type GreetService struct {
	prefix, app, iface string
}

// Reference names the service in dubbo-go's registries (common.GetReference): without it
// every interface served by this Go type would be "GreetService", and the last one
// registered would replace the others.
func (g *GreetService) Reference() string { return g.iface }

// SayHello answers "<prefix> hello <name> from <app>@<ip>:<port> via <protocol>" so that a
// test knows which instance, port and protocol served the call.
func (g *GreetService) SayHello(ctx context.Context, name string) (string, error) {
	via, _ := ctx.Value(viaKey{}).(string)
	s := fmt.Sprintf("hello %s from %s@%s", name, g.app, via)
	if g.prefix != "" {
		s = g.prefix + " " + s
	}
	return s, nil
}

// Echo returns its argument unchanged.
func (g *GreetService) Echo(_ context.Context, s string) (string, error) { return s, nil }

const protoFilterName = "dubbo3-via"

type viaKey struct{}

// viaFilter stores "<ip>:<port> via <protocol>" of the exporter's URL in the call's context.
type viaFilter struct{}

func (viaFilter) Invoke(ctx context.Context, inv base.Invoker, invocation base.Invocation) result.Result {
	u := inv.GetURL()
	return inv.Invoke(context.WithValue(ctx, viaKey{}, fmt.Sprintf("%s:%s via %s", u.Ip, u.Port, u.Protocol)), invocation)
}

func (viaFilter) OnResponse(_ context.Context, r result.Result, _ base.Invoker, _ base.Invocation) result.Result {
	return r
}

func init() {
	extension.SetFilter(protoFilterName, func() filter.Filter { return viaFilter{} })
}
