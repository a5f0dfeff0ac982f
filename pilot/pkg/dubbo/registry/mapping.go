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

package registry

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/labels"
	"istio.io/istio/pkg/spiffe"

	"github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/provider"
)

// DefaultLabelKeys are the URL parameters that identify a subset of providers and so
// become endpoint labels. Volatile parameters (timestamp, pid, ...) never do: a label
// change is an endpoint change, and they would cause a push at every restart.
var DefaultLabelKeys = []string{"version", "group", "application", "dubbo.tag", "release"}

// Provider parameters that declare the provider's Istio sidecar (docs/security.md,
// "Registry providers"): a provider whose instance runs a sidecar terminating Istio
// mutual TLS sets TLSModeParam=istio (the pod label's key and value), and its identity
// with ServiceAccountParam (a name in the registry's namespace, <namespace>/<name>, or a
// spiffe:// URI). Without them a registry provider is plaintext, as before.
const (
	TLSModeParam        = "security.istio.io/tlsMode"
	ServiceAccountParam = "serviceAccount"
)

// RegistryLabel is the endpoint label naming the registry a provider came from.
const RegistryLabel = "registry"

const (
	defaultWeight = 100
	maxWeight     = 1_000_000
)

// Hostname maps a Dubbo interface to an Istio hostname: lower-cased, characters outside
// [a-z0-9.-] mapped to '-', every DNS label trimmed of leading/trailing '-', plus an
// optional suffix. The exact interface string is kept beside it by the registry.
func Hostname(iface, suffix string) string {
	var b strings.Builder
	b.Grow(len(iface) + len(suffix) + 1)
	for _, r := range strings.ToLower(iface) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	parts := strings.Split(b.String(), ".")
	out := parts[:0]
	for _, p := range parts {
		p = strings.Trim(p, "-")
		if len(p) > 63 {
			p = strings.Trim(p[:63], "-")
		}
		if p != "" {
			out = append(out, p)
		}
	}
	h := strings.Join(out, ".")
	if s := strings.Trim(suffix, "."); s != "" && h != "" {
		h += "." + s
	}
	return h
}

// labelValue sanitises a parameter value into Kubernetes label-value syntax:
// at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric.
func labelValue(v string) string {
	isAlnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	valid := func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '.' }
	// Nearly every value is valid as it is: returned without a copy (the parameter's
	// interned string), so endpoints share it.
	ok := len(v) <= 63 && (v == "" || isAlnum(v[0]) && isAlnum(v[len(v)-1]))
	for i := 0; ok && i < len(v); i++ {
		ok = valid(v[i])
	}
	if ok {
		return v
	}
	b := []byte(v)
	for i, c := range b {
		if !valid(c) {
			b[i] = '-'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	for len(b) > 0 && !isAlnum(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && !isAlnum(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return string(b)
}

// workloadName is unique per provider instance: Istio keys endpoints by
// namespace/workload/IP/port-name, without the endpoint port, so two providers on one
// IP (or one process exporting two groups) would otherwise collide and a removal would
// silently not be pushed.
func workloadName(u *provider.URL) string {
	app := labelValue(u.Params["application"])
	if app == "" {
		app = "dubbo"
	}
	name := fmt.Sprintf("%s-%s-%d", app, strings.ReplaceAll(u.IP, ":", "-"), u.Port)
	if g := labelValue(u.Params["group"]); g != "" {
		name += "-" + g
	}
	if v := labelValue(u.Params["version"]); v != "" {
		name += "-" + v
	}
	if u.Protocol != ProtocolDubbo {
		// dubbo and Triple on one port (Dubbo's port unification) are two endpoints.
		name += "-" + labelValue(u.Protocol)
	}
	return name
}

// endpointSpec is what a provider URL contributes before it becomes an IstioEndpoint.
type endpointSpec struct {
	ep       *model.IstioEndpoint
	disabled bool   // disabled=true / enabled=false: taken out of rotation
	zero     bool   // weight=0: out of rotation unless every provider is at 0 (as Dubbo's balancers do)
	warning  string // a parameter was ignored (bad weight): logged once with the node
	stamp    int64  // registration timestamp, to keep the newest of duplicates
	governed bool   // made by override rules from the provider's own
	// params are the provider's parameters as override rules made them (nil: its own).
	params map[string]string
}

// toEndpoint maps one provider URL (docs/registry.md, "What a Dubbo interface becomes")
// served on the service port named portName.
func (o *Options) toEndpoint(u *provider.URL, registry, portName string) endpointSpec {
	l := sharedLabels.get(labelValue(registry), o.labelKeys(), u.Params)
	spec := endpointSpec{}
	weight := uint32(defaultWeight)
	if w, ok := u.Params["weight"]; ok && w != "" {
		n, err := strconv.ParseInt(w, 10, 64)
		switch {
		case err != nil || n < 0:
			spec.warning = fmt.Sprintf("weight %q is not a non-negative integer; using %d", w, defaultWeight)
		case n == 0:
			spec.zero = true
			weight = 1
		case n > maxWeight:
			weight = maxWeight
		default:
			weight = uint32(n)
		}
	}
	// Java's RegistryDirectory.toInvokers: a non-empty disabled decides; else enabled.
	if d := u.Params["disabled"]; d != "" {
		spec.disabled = strings.EqualFold(d, "true")
	} else {
		spec.disabled = strings.EqualFold(u.Params["enabled"], "false")
	}
	spec.stamp, _ = strconv.ParseInt(u.Params["timestamp"], 10, 64)
	spec.ep = &model.IstioEndpoint{
		Labels:          l,
		Addresses:       []string{u.IP},
		ServicePortName: portName,
		EndpointPort:    u.Port,
		LbWeight:        weight,
		TLSMode:         model.DisabledTLSModeLabel,
		ServiceAccount:  o.serviceAccount(u.Params[ServiceAccountParam]),
		Namespace:       o.Namespace,
		WorkloadName:    workloadName(u),
		Locality:        model.Locality{ClusterID: o.ClusterID},
		HealthStatus:    model.Healthy,
	}
	if u.Params[TLSModeParam] == model.IstioMutualTLSModeLabel {
		spec.ep.TLSMode = model.IstioMutualTLSModeLabel
	}
	return spec
}

// serviceAccount is the SPIFFE identity a provider declares ("" when none or invalid:
// then no SAN can be checked and consumers' TLS to it fails closed).
func (o *Options) serviceAccount(v string) string {
	if v == "" || strings.HasPrefix(v, spiffe.URIPrefix) {
		return v
	}
	ns, sa, ok := strings.Cut(v, "/")
	if !ok {
		ns, sa = o.Namespace, v
	}
	if ns == "" || sa == "" || strings.Contains(sa, "/") {
		return ""
	}
	td := "cluster.local"
	if o.TrustDomain != nil {
		if t := o.TrustDomain(); t != "" {
			td = t
		}
	}
	return spiffe.MustGenSpiffeURIForTrustDomain(td, ns, sa)
}

// sharedLabels hands out one map per distinct endpoint label set: providers of one
// interface (and often of many) carry the same few labels, and a map per endpoint was
// ~300 bytes each at 100,000 providers. The maps are never mutated: neither we nor
// istiod write an endpoint's labels (istiod clones them where it adds its own). The
// table is dropped when it reaches maxSharedLabels sets, so it stays bounded; that only
// means later endpoints do not share with earlier ones.
var sharedLabels = labelTable{}

const maxSharedLabels = 1 << 14

type labelTable struct {
	mu sync.Mutex
	m  map[string]labels.Instance
	b  []byte // the key being built, reused
}

// get returns the labels of an endpoint: the registry label, and those of keys the
// provider has a valid value for. A map is made only for a label set not seen before.
func (t *labelTable) get(registry string, keys []string, params map[string]string) labels.Instance {
	t.mu.Lock()
	defer t.mu.Unlock()
	// The key lists the labels in the order of keys (fixed per registry options); label
	// names and values cannot hold 0 bytes, so it is unambiguous.
	t.b = append(append(append(t.b[:0], RegistryLabel...), 0), registry...)
	for _, k := range keys {
		if v := labelValue(params[k]); v != "" {
			t.b = append(append(append(append(t.b, 0), k...), 0), v...)
		}
	}
	if c, ok := t.m[string(t.b)]; ok {
		return c
	}
	l := labels.Instance{RegistryLabel: registry}
	for _, k := range keys {
		if v := labelValue(params[k]); v != "" {
			l[k] = v
		}
	}
	if t.m == nil || len(t.m) >= maxSharedLabels {
		t.m = map[string]labels.Instance{}
	}
	t.m[string(t.b)] = l
	return l
}
