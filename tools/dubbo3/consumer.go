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
	"net/url"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/logger"
	"dubbo.apache.org/dubbo-go/v3/registry"
)

func runConsumer(args []string) error {
	fs := flag.NewFlagSet("dubbo3 consumer", flag.ContinueOnError)
	rawURL := fs.String("url", "", "direct provider URL, dubbo://ip:port/<interface>[?...] or tri://ip:port/<interface>")
	zk := fs.String("zk", "", "resolve through this ZooKeeper instead of -url (application-level discovery)")
	reg := fs.String("registry", "", "resolve through this registry instead of -url (application-level discovery): "+
		"zookeeper://host:port or nacos://host:port[?namespace=..]; -zk <addr> is zookeeper://<addr>")
	nacosDir := fs.String("nacos-dir", "", "directory of the Nacos SDK's cache and logs (default: a new directory under $TMPDIR)")
	proto := fs.String("protocol", "dubbo", "protocol with -zk or -registry: dubbo or tri")
	iface := fs.String("interface", "", "interface (default: the -url path, else com.example.GreetService)")
	version := fs.String("version", "", "service version")
	group := fs.String("group", "", "service group")
	method := fs.String("method", "SayHello", "method to call (one string argument, string answer)")
	arg := fs.String("arg", "world", "the call's argument")
	n := fs.Int("n", 1, "number of calls")
	timeout := fs.Duration("timeout", 3*time.Second, "timeout of each call")
	logLevel := fs.String("log-level", "error", "dubbo-go log level")
	if err := fs.Parse(args); err != nil {
		return err
	}

	if *zk != "" {
		if *reg != "" {
			return errors.New("-zk and -registry are exclusive")
		}
		*reg = "zookeeper://" + *zk
	}
	var refOpts []client.ReferenceOption
	switch {
	case *rawURL != "" && *reg != "":
		return errors.New("-url and -zk/-registry are exclusive")
	case *rawURL != "":
		u, err := url.Parse(*rawURL)
		if err != nil {
			return fmt.Errorf("-url: %v", err)
		}
		*proto = u.Scheme
		if *iface == "" && len(u.Path) > 1 {
			*iface = u.Path[1:]
		}
		refOpts = append(refOpts, client.WithURL(*rawURL))
	case *reg == "":
		return errors.New("one of -url, -zk or -registry is required")
	}
	if *iface == "" {
		*iface = "com.example.GreetService"
	}

	insOpts := []dubbo.InstanceOption{
		dubbo.WithName("dubbo3-consumer"),
		dubbo.WithLogger(logger.WithZap(), logger.WithLevel(*logLevel)),
	}
	if *reg != "" {
		regOpts, err := registryOptions(&providerFlags{registry: *reg, nacosDir: *nacosDir})
		if err != nil {
			return err
		}
		insOpts = append(insOpts, dubbo.WithRegistry(append(regOpts, registry.WithRegisterService())...))
	}
	ins, err := dubbo.NewInstance(insOpts...)
	if err != nil {
		return fmt.Errorf("new instance: %v", err)
	}
	cliOpts := []client.ClientOption{client.WithClientSerialization("hessian2"), client.WithClientRequestTimeout(*timeout)}
	switch *proto {
	case "dubbo":
		cliOpts = append(cliOpts, client.WithClientProtocolDubbo())
	case "tri":
		cliOpts = append(cliOpts, client.WithClientProtocolTriple())
	default:
		return fmt.Errorf("protocol %q: want dubbo or tri", *proto)
	}
	cli, err := ins.NewClient(cliOpts...)
	if err != nil {
		return fmt.Errorf("new client: %v", err)
	}
	// Trap: a Triple consumer of a non-IDL (Hessian2) service needs NONIDL, else
	// "wrapper codec: expected 1 params".
	refOpts = append(refOpts, client.WithIDL(constant.NONIDL), client.WithRequestTimeout(*timeout))
	if *version != "" {
		refOpts = append(refOpts, client.WithVersion(*version))
	}
	if *group != "" {
		refOpts = append(refOpts, client.WithGroup(*group))
	}
	conn, err := dial(cli, *iface, refOpts)
	if err != nil {
		return fmt.Errorf("dial %s: %v", *iface, err)
	}
	for i := 0; i < *n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		var resp string
		err := conn.CallUnary(ctx, []any{*arg}, &resp, *method)
		cancel()
		if err != nil {
			return fmt.Errorf("call %d/%d %s.%s over %s: %v", i+1, *n, *iface, *method, *proto, err)
		}
		fmt.Fprintln(out, resp)
	}
	return nil
}

// dial turns the panic dubbo-go v3.3.2 raises when a direct dubbo:// URL does not connect
// (a nil invoker in protocolwrapper.BuildInvokerChain) into an error.
func dial(cli *client.Client, iface string, opts []client.ReferenceOption) (conn *client.Connection, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot connect (dubbo-go panicked: %v)", r)
		}
	}()
	return cli.Dial(iface, opts...)
}
