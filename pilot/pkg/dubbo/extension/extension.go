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

// Package extension wires the dubbo-istiod features into the stock pilot-discovery
// command through its extension hooks (patches/istio/0001). Importing it is all a
// main package has to do.
package extension

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"istio.io/istio/pilot/cmd/pilot-discovery/app"
	"istio.io/istio/pilot/pkg/bootstrap"
	"istio.io/istio/pilot/pkg/config/memory"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/schema/collection"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/env"
	"istio.io/istio/pkg/version"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/appdiscovery"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/dubbolog"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/governance"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/mosn"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/nacos"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/regaddr"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/registry"
	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/zookeeper"
)

// scope is the logging scope of the Dubbo extensions (--log_output_level=dubbo:debug).
var scope = dubbolog.Scope

// Environment variables: the defaults of the flags below, for Helm/istioctl installs.
var (
	registriesEnv = env.Register("PILOT_DUBBO_REGISTRIES", "",
		"Dubbo registry addresses, separated by spaces, e.g. "+
			"'zookeeper://10.0.0.1:2181?backup=10.0.0.2:2181,10.0.0.3:2181'. Same as --dubboRegistry.").Get()
	namespaceEnv = env.Register("PILOT_DUBBO_NAMESPACE", "dubbo",
		"Namespace of the services created from Dubbo interfaces. Same as --dubboNamespace.").Get()
	servicePortEnv = env.Register("PILOT_DUBBO_SERVICE_PORT", 20880,
		"Service port of Dubbo services; endpoints keep their own ports. Same as --dubboServicePort.").Get()
	hostSuffixEnv = env.Register("PILOT_DUBBO_HOST_SUFFIX", "",
		"Suffix appended to the hostnames of Dubbo services. Same as --dubboHostSuffix.").Get()
	labelKeysEnv = env.Register("PILOT_DUBBO_LABEL_KEYS", "",
		"Comma-separated extra provider URL parameters kept as endpoint labels. Same as --dubboLabelKeys.").Get()
	emptyProtectionEnv = env.Register("PILOT_DUBBO_EMPTY_PROTECTION", false,
		"Keep an interface's last providers when its registry lists none. Same as --dubboEmptyProtection.").Get()
	syncTimeoutEnv = env.Register("PILOT_DUBBO_SYNC_TIMEOUT", 10*time.Second,
		"Longest wait for the initial provider lists before istiod becomes ready anyway. Same as --dubboSyncTimeout.").Get()
	reconnectGraceEnv = env.Register("PILOT_DUBBO_RECONNECT_GRACE", 30*time.Second,
		"How long provider removals are held after a registry comes back with a new session. Same as --dubboReconnectGrace.").Get()
	outboundPortEnv = env.Register("PILOT_DUBBO_OUTBOUND_PORT", 20881,
		"Default port of MOSN's egress_dubbo listener on 127.0.0.1 (node metadata DUBBO_OUTBOUND_PORT overrides). Same as --dubboOutboundPort.").Get()
	inboundPortEnv = env.Register("PILOT_DUBBO_INBOUND_PORT", 20882,
		"Default port of MOSN's inbound_dubbo listener (node metadata DUBBO_INBOUND_PORT overrides). Same as --dubboInboundPort.").Get()
	edsPushIntervalEnv = env.Register("PILOT_DUBBO_EDS_PUSH_INTERVAL", 50*time.Millisecond,
		"Dubbo provider changes are pushed (endpoints only) at most this often, bypassing the push debounce "+
			"that a continuous stream of changes would starve; 0 uses istiod's debounce. Same as --dubboEDSPushInterval.").Get()
	enableMOSNEnv = env.Register("PILOT_ENABLE_DUBBO_MOSN", true,
		"Serve Dubbo listeners, routes and clusters to MOSN sidecars (node metadata GENERATOR=mosn). "+
			"When false, MOSN sidecars get upstream's output like every other proxy.").Get()
	levelsEnv = env.Register("PILOT_DUBBO_DISCOVERY_LEVELS", "all",
		"Registration levels read from Dubbo registries: interface, application or all. Same as --dubboDiscoveryLevels.").Get()
	triplePortEnv = env.Register("PILOT_DUBBO_TRIPLE_PORT", 50051,
		"Service port (grpc-tri) of Dubbo services with Triple providers. Same as --dubboTriplePort.").Get()
	metadataTimeoutEnv = env.Register("PILOT_DUBBO_METADATA_TIMEOUT", 5*time.Second,
		"Timeout of one metadata fetch of a Dubbo 3 application revision. Same as --dubboMetadataTimeout.").Get()
	metadataConcurrencyEnv = env.Register("PILOT_DUBBO_METADATA_CONCURRENCY", 8,
		"Metadata fetches in flight per registry. Same as --dubboMetadataConcurrency.").Get()
	nacosListIntervalEnv = env.Register("PILOT_DUBBO_NACOS_LIST_INTERVAL", 10*time.Second,
		"How often the service list of a Nacos registry is read (Nacos has no watch on it). Same as --dubboNacosListInterval.").Get()
	nacosDirEnv = env.Register("PILOT_DUBBO_NACOS_DIR", "",
		"Directory of the Nacos clients' cache and logs, one subdirectory per registry; empty: $TMPDIR/dubbo-istiod/nacos. Same as --dubboNacosDir.").Get()
	configCentersEnv = env.Register("PILOT_DUBBO_CONFIG_CENTERS", "",
		"Space-separated config center addresses for Dubbo's governance rules, instead of each registry's own. Same as --dubboConfigCenter.").Get()
	routeCacheEnv = env.Register("PILOT_DUBBO_MOSN_ROUTE_CACHE", true,
		"Build MOSN sidecars' Dubbo route configuration once per scope (Sidecar scope, namespace, outbound port; labels when a VirtualService matches on them) and share it; false builds it for every proxy.").Get()
	governanceEnv = env.Register("PILOT_DUBBO_GOVERNANCE", true,
		"Read Dubbo's governance rules (override rules today) from each registry's config center. Same as --dubboGovernance.").Get()
	appPortEnv = env.Register("PILOT_DUBBO_APP_PORT", 20880,
		"Default port of the provider app behind inbound_dubbo (node metadata DUBBO_APP_PORT overrides). Same as --dubboAppPort.").Get()
)

// Flags of the Dubbo extensions (documented in docs/reference/flags.md).
type Flags struct {
	Registries      []string
	Namespace       string
	ServicePort     uint32
	HostSuffix      string
	LabelKeys       []string
	EmptyProtection bool
	SyncTimeout     time.Duration
	ReconnectGrace  time.Duration
	EDSPushInterval time.Duration
	// Levels: interface, application or all (a registry's registry-type= overrides it).
	Levels              string
	TriplePort          uint32
	MetadataTimeout     time.Duration
	MetadataConcurrency int
	NacosListInterval   time.Duration
	NacosDir            string
	Governance          bool
	// ConfigCenters are separate config centers (Dubbo's config-center address); none:
	// each registry is its own.
	ConfigCenters []string
	MOSN          mosn.Options
}

var flags = &Flags{}

func init() {
	app.CommandHooks = append(app.CommandHooks, addFlags)
	app.InitHooks = append(app.InitHooks, initStores)
	app.ServerHooks = append(app.ServerHooks, start)
}

// addFlags adds the flags of the Dubbo extensions to the discovery command.
func addFlags(c *cobra.Command) {
	f := c.PersistentFlags()
	f.StringArrayVar(&flags.Registries, "dubboRegistry", strings.Fields(registriesEnv),
		"Dubbo registry address, in Dubbo's own syntax (repeatable, ZooKeeper and Nacos mixed freely): zookeeper://host:port"+
			"[?backup=host:port,...&root=/dubbo&name=NAME&session-timeout=30s&registry-type=all] or "+
			"nacos://[user:password@]host:port[?backup=host:port,...&namespace=ID&group=DEFAULT_GROUP&username=U&password=P"+
			"&accessKey=AK&secretKey=SK&name=NAME&registry-type=all] [env PILOT_DUBBO_REGISTRIES]")
	f.StringVar(&flags.Namespace, "dubboNamespace", namespaceEnv,
		"Namespace of the services created from Dubbo interfaces (exported to all namespaces) [env PILOT_DUBBO_NAMESPACE]")
	f.Uint32Var(&flags.ServicePort, "dubboServicePort", uint32(servicePortEnv),
		"Service port of Dubbo services; each endpoint keeps its provider's own port [env PILOT_DUBBO_SERVICE_PORT]")
	f.StringVar(&flags.HostSuffix, "dubboHostSuffix", hostSuffixEnv,
		"Suffix appended to Dubbo service hostnames (the lower-cased interface) [env PILOT_DUBBO_HOST_SUFFIX]")
	f.StringSliceVar(&flags.LabelKeys, "dubboLabelKeys", strings.FieldsFunc(labelKeysEnv, func(r rune) bool { return r == ',' || r == ' ' }),
		"Extra provider URL parameters kept as endpoint labels, besides version, group, application, dubbo.tag, release [env PILOT_DUBBO_LABEL_KEYS]")
	f.BoolVar(&flags.EmptyProtection, "dubboEmptyProtection", emptyProtectionEnv,
		"Keep an interface's last providers when a connected registry lists none [env PILOT_DUBBO_EMPTY_PROTECTION]")
	f.DurationVar(&flags.SyncTimeout, "dubboSyncTimeout", syncTimeoutEnv,
		"Longest wait for the Dubbo registries' initial lists before istiod becomes ready anyway [env PILOT_DUBBO_SYNC_TIMEOUT]")
	f.DurationVar(&flags.ReconnectGrace, "dubboReconnectGrace", reconnectGraceEnv,
		"How long provider removals are held after a registry returns with a new session, while providers re-register [env PILOT_DUBBO_RECONNECT_GRACE]")
	f.DurationVar(&flags.EDSPushInterval, "dubboEDSPushInterval", edsPushIntervalEnv,
		"Dubbo provider changes are pushed (endpoints only) at most this often, instead of waiting for istiod's push debounce; 0 uses the debounce [env PILOT_DUBBO_EDS_PUSH_INTERVAL]")
	f.StringVar(&flags.Levels, "dubboDiscoveryLevels", levelsEnv,
		"Registration levels read from Dubbo registries: interface (Dubbo 2 style /dubbo/<interface>/providers), application "+
			"(Dubbo 3 application-level discovery) or all; a registry address's registry-type= overrides it [env PILOT_DUBBO_DISCOVERY_LEVELS]")
	f.Uint32Var(&flags.TriplePort, "dubboTriplePort", uint32(triplePortEnv),
		"Service port (named grpc-tri, protocol GRPC) of Dubbo services with Triple providers; endpoints keep their own ports [env PILOT_DUBBO_TRIPLE_PORT]")
	f.DurationVar(&flags.MetadataTimeout, "dubboMetadataTimeout", metadataTimeoutEnv,
		"Timeout of one metadata fetch of a Dubbo 3 application revision (MetadataService call or metadata report read) [env PILOT_DUBBO_METADATA_TIMEOUT]")
	f.IntVar(&flags.MetadataConcurrency, "dubboMetadataConcurrency", metadataConcurrencyEnv,
		"Metadata fetches of Dubbo 3 application revisions in flight per registry [env PILOT_DUBBO_METADATA_CONCURRENCY]")
	f.DurationVar(&flags.NacosListInterval, "dubboNacosListInterval", nacosListIntervalEnv,
		"How often the service list of a Nacos registry is read to find new and removed Dubbo services; instance changes are pushed by subscription [env PILOT_DUBBO_NACOS_LIST_INTERVAL]")
	nacosDir := nacosDirEnv
	if nacosDir == "" {
		nacosDir = filepath.Join(os.TempDir(), "dubbo-istiod", "nacos")
	}
	f.StringVar(&flags.NacosDir, "dubboNacosDir", nacosDir,
		"Directory of the Nacos clients' cache and logs (one subdirectory per registry; never the working directory) [env PILOT_DUBBO_NACOS_DIR]")
	f.BoolVar(&flags.Governance, "dubboGovernance", governanceEnv,
		"Read Dubbo's governance rules from each registry's config center (ZooKeeper /dubbo/config/dubbo, Nacos group dubbo; a registry address's "+
			"config-center=false turns it off for that registry) and apply override rules to the providers' endpoints [env PILOT_DUBBO_GOVERNANCE]")
	f.StringArrayVar(&flags.ConfigCenters, "dubboConfigCenter", strings.Fields(configCentersEnv),
		"Config center of Dubbo's governance rules, in Dubbo's config-center syntax, instead of each registry's own (repeatable; the first one "+
			"holding a key wins): zookeeper://host:port[?namespace=dubbo&group=dubbo&name=NAME] or nacos://host:port[?namespace=ID&group=dubbo&name=NAME] "+
			"[env PILOT_DUBBO_CONFIG_CENTERS]")
	f.Uint32Var(&flags.MOSN.OutboundPort, "dubboOutboundPort", uint32(outboundPortEnv),
		"MOSN sidecars: port of the egress_dubbo listener on 127.0.0.1 that consumer apps call (node metadata DUBBO_OUTBOUND_PORT overrides) [env PILOT_DUBBO_OUTBOUND_PORT]")
	f.Uint32Var(&flags.MOSN.InboundPort, "dubboInboundPort", uint32(inboundPortEnv),
		"MOSN sidecars: port of the inbound_dubbo listener on 0.0.0.0 for providers (node metadata DUBBO_INBOUND_PORT overrides) [env PILOT_DUBBO_INBOUND_PORT]")
	f.Uint32Var(&flags.MOSN.AppPort, "dubboAppPort", uint32(appPortEnv),
		"MOSN sidecars: port of the provider app on 127.0.0.1 behind inbound_dubbo (node metadata DUBBO_APP_PORT overrides) [env PILOT_DUBBO_APP_PORT]")
}

// routeStore holds the VirtualServices Dubbo's condition and tag routes make
// (registry/routes.go); nil when no rules are read.
var routeStore *memory.Controller

// initStores runs inside bootstrap.NewServer: the route store joins istiod's aggregate
// config store, so its VirtualServices reach every proxy as any other.
func initStores(s *bootstrap.Server) {
	if len(flags.Registries) == 0 || !flags.Governance {
		return
	}
	routeStore = memory.NewController(memory.Make(collection.SchemasFor(collections.VirtualService, collections.DestinationRule)))
	s.ConfigStores = append(s.ConfigStores, routeStore)
}

// userVirtualServices lists the VirtualServices of a host other than those route rules
// make (an explicit one wins over them).
func userVirtualServices(store model.ConfigStore) func(host.Name) []string {
	return func(h host.Name) []string {
		var out []string
		for _, vs := range store.List(gvk.VirtualService, "") {
			if vs.Labels[governance.DerivedLabel] != "" {
				continue
			}
			spec, ok := vs.Spec.(interface{ GetHosts() []string })
			if !ok {
				continue
			}
			for _, vh := range spec.GetHosts() {
				if host.Name(vh) == h || (host.Name(vh).IsWildCarded() && h.SubsetOf(host.Name(vh))) {
					out = append(out, vs.Namespace+"/"+vs.Name)
					break
				}
			}
		}
		return out
	}
}

// start runs right after bootstrap.NewServer, before the server starts.
func start(s *bootstrap.Server, args *bootstrap.PilotArgs, stop <-chan struct{}) error {
	scope.Infof("dubbo-istiod %s extensions loaded", version.Info.Version)
	for _, p := range []uint32{flags.MOSN.OutboundPort, flags.MOSN.InboundPort, flags.MOSN.AppPort} {
		if p == 0 || p > 65535 {
			return fmt.Errorf("dubbo MOSN ports must be in 1..65535, got %d", p)
		}
	}
	var resolve mosn.InterfaceResolver
	if len(flags.Registries) > 0 {
		ctl, watchers, err := NewRegistry(*flags, args.RegistryOptions.KubeOptions.ClusterID, s.XDSServer)
		if err != nil {
			return err
		}
		ctl.SetPusher(s.XDSServer)
		if routeStore != nil {
			ctl.SetRouteStore(routeStore)
			ctl.SetVirtualServiceLister(userVirtualServices(s.XDSServer.Env.ConfigStore))
		}
		ctl.SetTrustDomain(func() string { return s.XDSServer.Env.Mesh().GetTrustDomain() })
		s.ServiceController().AddRegistry(ctl)
		s.AddDebugHandler("/debug/dubboz", "Dubbo registries, interfaces and provider instances", ctl.DebugHandler)
		for _, w := range watchers {
			go w.Run(stop)
		}
		resolve = ctl.Interface
	}
	// MOSN sidecars (GENERATOR=mosn) get the Dubbo listeners, routes and clusters, for
	// registry services and for ServiceEntry/Kubernetes services with Dubbo ports alike.
	if !enableMOSNEnv {
		scope.Infof("PILOT_ENABLE_DUBBO_MOSN=false: MOSN sidecars get upstream's output")
		return nil
	}
	flags.MOSN.NoRouteCache = !routeCacheEnv
	if _, err := mosn.Register(s.XDSServer, flags.MOSN, resolve); err != nil {
		return err
	}
	scope.Infof("MOSN sidecars (GENERATOR=mosn): egress_dubbo on 127.0.0.1:%d, inbound_dubbo on :%d -> 127.0.0.1:%d by default",
		flags.MOSN.OutboundPort, flags.MOSN.InboundPort, flags.MOSN.AppPort)
	return nil
}

// Runner is a registry watcher or resolver istiod runs until stop.
type Runner interface{ Run(stop <-chan struct{}) }

// NewRegistry builds the Dubbo registry controller and what reads each registry address:
// its ZooKeeper watcher and, at the application level, the metadata resolution.
func NewRegistry(f Flags, clusterID cluster.ID, xds model.XDSUpdater) (*registry.Controller, []Runner, error) {
	defLevels, err := regaddr.ParseLevels(f.Levels)
	if err != nil {
		return nil, nil, fmt.Errorf("--dubboDiscoveryLevels: %v", err)
	}
	ctl, err := registry.NewController(registry.Options{
		Namespace:       f.Namespace,
		ServicePort:     f.ServicePort,
		TriplePort:      f.TriplePort,
		HostSuffix:      f.HostSuffix,
		ExtraLabelKeys:  f.LabelKeys,
		EmptyProtection: f.EmptyProtection,
		ClusterID:       clusterID,
		SyncTimeout:     f.SyncTimeout,
		ReconnectGrace:  f.ReconnectGrace,
		EDSPushInterval: f.EDSPushInterval,
	}, xds)
	if err != nil {
		return nil, nil, fmt.Errorf("dubbo registry: %v", err)
	}
	var runners []Runner
	for _, addr := range f.Registries {
		scheme, _, _ := strings.Cut(strings.TrimSpace(addr), "://")
		var rs []Runner
		if strings.EqualFold(scheme, "nacos") {
			rs, err = addNacos(f, ctl, addr, defLevels)
		} else {
			rs, err = addZooKeeper(f, ctl, addr, defLevels)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--dubboRegistry: %v", err)
		}
		runners = append(runners, rs...)
	}
	if f.Governance {
		for _, addr := range f.ConfigCenters {
			r, err := addConfigCenter(f, ctl, addr)
			if err != nil {
				return nil, nil, fmt.Errorf("--dubboConfigCenter: %v", err)
			}
			runners = append(runners, r)
		}
	}
	return ctl, runners, nil
}

// addConfigCenter adds a separate config center: governance rules only.
func addConfigCenter(f Flags, ctl *registry.Controller, addr string) (Runner, error) {
	scheme, _, _ := strings.Cut(strings.TrimSpace(addr), "://")
	if !strings.EqualFold(scheme, "nacos") {
		cfg, err := zookeeper.ParseConfigCenter(addr)
		if err != nil {
			return nil, err
		}
		name, err := ctl.AddConfigCenter(cfg.Name, cfg.Address+" "+cfg.ConfigRoot)
		if err != nil {
			return nil, err
		}
		w := zookeeper.NewWatcher(cfg, ctl)
		w.SetConfigSink(ctl, name)
		scope.Infof("Dubbo config center %s: ZooKeeper %v, governance rules under %s", cfg.Name, cfg.Servers, cfg.ConfigRoot)
		return w, nil
	}
	cfg, err := nacos.ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	a, err := regaddr.Parse(addr, "8848")
	if err != nil {
		return nil, err
	}
	// In a config-center address, group is the rules' group (Dubbo's default "dubbo").
	cfg.ConfigGroup = a.Params.Get("group")
	if cfg.ConfigGroup == "" {
		cfg.ConfigGroup = "dubbo"
	}
	cfg.ListInterval, cfg.Dir = f.NacosListInterval, f.NacosDir
	name, err := ctl.AddConfigCenter(cfg.Name, cfg.Address)
	if err != nil {
		return nil, err
	}
	w := nacos.NewWatcher(cfg, ctl, "")
	w.SetConfigSink(ctl, name)
	w.SetRuleKeys(ctl.RuleKeys) // it lists no Dubbo service of its own
	ctl.AddDebugSection(registry.SectionNacos, func() any { return w.Debug() })
	scope.Infof("Dubbo config center %s: Nacos %v, governance rules from group %s of namespace %s (the keys of the services the registries list, every %v)",
		cfg.Name, cfg.Servers, cfg.ConfigGroup, cfg.NamespaceName(), cfg.ListInterval)
	return w, nil
}

// addZooKeeper adds a ZooKeeper registry: its watcher and, at the application level, the
// metadata resolution.
func addZooKeeper(f Flags, ctl *registry.Controller, addr string, defLevels regaddr.Levels) ([]Runner, error) {
	cfg, err := zookeeper.ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	if cfg.Levels == (regaddr.Levels{}) {
		cfg.Levels = defLevels
	}
	if cfg.Levels.Interface {
		if err := ctl.AddSource(cfg.Name, regaddr.Redact(addr)); err != nil {
			return nil, err
		}
	}
	w := zookeeper.NewWatcher(cfg, ctl)
	var runners []Runner
	if cfg.Levels.Application {
		src, err := addApplicationLevel(f, ctl, cfg.Name, cfg.Address, w.RemoteMetadata)
		if err != nil {
			return nil, err
		}
		w.SetAppSink(src, src.Name())
		runners = append(runners, src)
	}
	rules := "not read"
	if f.Governance && len(f.ConfigCenters) == 0 && cfg.ConfigRoot != "" {
		name, err := ctl.AddConfigCenter(cfg.Name, regaddr.Redact(addr)+" "+cfg.ConfigRoot)
		if err != nil {
			return nil, err
		}
		w.SetConfigSink(ctl, name)
		rules = "under " + cfg.ConfigRoot
	}
	scope.Infof("Dubbo registry %s: ZooKeeper %v, levels %v (interfaces under %s, applications under %s), governance rules %s, session timeout %v",
		cfg.Name, cfg.Servers, cfg.Levels, cfg.Root, cfg.ServicesRoot, rules, cfg.SessionTimeout)
	return append(runners, w), nil
}

// addNacos adds a Nacos registry: its watcher and, at the application level, the
// metadata resolution with the Nacos config center as metadata report.
func addNacos(f Flags, ctl *registry.Controller, addr string, defLevels regaddr.Levels) ([]Runner, error) {
	cfg, err := nacos.ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	if cfg.Levels == (regaddr.Levels{}) {
		cfg.Levels = defLevels
	}
	cfg.ListInterval, cfg.Dir = f.NacosListInterval, f.NacosDir
	if cfg.ListInterval <= 0 {
		return nil, fmt.Errorf("--dubboNacosListInterval must be positive, got %v", cfg.ListInterval)
	}
	ifaceSrc := ""
	if cfg.Levels.Interface {
		if err := ctl.AddSource(cfg.Name, cfg.Address); err != nil {
			return nil, err
		}
		ifaceSrc = cfg.Name
	}
	w := nacos.NewWatcher(cfg, ctl, ifaceSrc)
	var runners []Runner
	if cfg.Levels.Application {
		src, err := addApplicationLevel(f, ctl, cfg.Name, cfg.Address, w.RemoteMetadata)
		if err != nil {
			return nil, err
		}
		w.SetAppSink(src, src.Name())
		runners = append(runners, src)
	}
	rules := "not read"
	if f.Governance && len(f.ConfigCenters) == 0 && cfg.ConfigGroup != "" {
		name, err := ctl.AddConfigCenter(cfg.Name, cfg.Address+" group "+cfg.ConfigGroup)
		if err != nil {
			return nil, err
		}
		w.SetConfigSink(ctl, name)
		// Interfaces resolved at application level are not listed as providers:... services:
		// their service keys come from what the registry resolved.
		w.SetRuleKeys(ctl.RuleKeys)
		rules = fmt.Sprintf("from group %s of namespace %s (the keys of the services and applications listed)", cfg.ConfigGroup, cfg.NamespaceName())
	}
	ctl.AddDebugSection(registry.SectionNacos, func() any { return w.Debug() })
	scope.Infof("Dubbo registry %s: Nacos %v, namespace %s, group %s, levels %v, governance rules %s, services listed every %v, client files under %s",
		cfg.Name, cfg.Servers, cfg.NamespaceName(), cfg.Group, cfg.Levels, rules, cfg.ListInterval, cfg.Dir)
	return append(runners, w), nil
}

// addApplicationLevel adds the application level (Dubbo 3) of a registry, whatever its
// kind: remote reads the registry's metadata report.
func addApplicationLevel(f Flags, ctl *registry.Controller, name, addr string, remote appdiscovery.RemoteFetcher) (*appdiscovery.Source, error) {
	source, err := ctl.AddApplicationSource(name, addr)
	if err != nil {
		return nil, err
	}
	src := appdiscovery.NewSource(appdiscovery.Options{
		Source:      source,
		Remote:      remote,
		Timeout:     f.MetadataTimeout,
		Concurrency: f.MetadataConcurrency,
	}, ctl)
	ctl.AddDebugSection(registry.SectionApplications, func() any { return src.Debug() })
	return src, nil
}
