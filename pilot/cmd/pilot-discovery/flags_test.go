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
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"istio.io/istio/pilot/cmd/pilot-discovery/app"
	"istio.io/istio/pkg/env"
)

type flagInfo struct{ typ, def, usage string }

// flagSet walks every command and returns "command --flag" -> definition.
func flagSet(root *cobra.Command) map[string]flagInfo {
	out := map[string]flagInfo{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) {
			out[c.CommandPath()+" --"+f.Name] = flagInfo{f.Value.Type(), f.DefValue, f.Usage}
		}
		c.LocalFlags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

// upstreamRoot builds the stock command: the same constructor with no extension hooks
// (the hooks patch adds no flag of its own; `make patches-check` rejects any patch that
// touches an upstream flag definition).
func upstreamRoot(t *testing.T) *cobra.Command {
	saved := app.CommandHooks
	app.CommandHooks = nil
	t.Cleanup(func() { app.CommandHooks = saved })
	return app.NewRootCommand()
}

func TestFlagSetIsUpstreamPlusDocumentedExtras(t *testing.T) {
	ours := flagSet(app.NewRootCommand()) // with the hooks registered by our extension package
	upstream := flagSet(upstreamRoot(t))
	if len(upstream) < 40 {
		t.Fatalf("only %d upstream flags found: the walk is broken", len(upstream))
	}

	for name, up := range upstream {
		got, ok := ours[name]
		if !ok {
			t.Errorf("upstream flag %s is missing", name)
			continue
		}
		if got != up {
			t.Errorf("flag %s changed: upstream %+v, ours %+v", name, up, got)
		}
	}

	doc, err := os.ReadFile("../../../docs/reference/flags.md")
	if err != nil {
		t.Fatal(err)
	}
	var extras []string
	for name, f := range ours {
		if _, ok := upstream[name]; ok {
			continue
		}
		extras = append(extras, name)
		if f.usage == "" {
			t.Errorf("flag %s has no help text", name)
		}
		flag := regexp.MustCompile(`--\S+$`).FindString(name)
		if !regexp.MustCompile("`" + regexp.QuoteMeta(flag) + "`").Match(doc) {
			t.Errorf("flag %s is not documented in docs/reference/flags.md", name)
		}
	}
	sort.Strings(extras)
	t.Logf("%d upstream flags, %d dubbo-istiod flags: %v", len(upstream), len(extras), extras)

	// Every flag the reference documents exists, so the doc cannot drift either.
	for _, m := range regexp.MustCompile("(?m)^\\| `(--[A-Za-z0-9_-]+)`").FindAllStringSubmatch(string(doc), -1) {
		found := false
		for _, e := range extras {
			if regexp.MustCompile(regexp.QuoteMeta(m[1]) + `$`).MatchString(e) {
				found = true
			}
		}
		if !found {
			t.Errorf("docs/reference/flags.md documents %s, which the command does not have", m[1])
		}
	}
}

// TestDubboEnvVarsDocumented: every environment variable of the Dubbo extensions (the
// ones whose name has DUBBO) has a row in docs/reference/flags.md naming it with the
// default the code registers, so an env-only switch cannot go undocumented either.
func TestDubboEnvVarsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/reference/flags.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\|.*$").FindAllString(string(doc), -1)
	n := 0
	for _, v := range env.VarDescriptions() {
		if !strings.Contains(v.Name, "DUBBO") {
			continue
		}
		n++
		var row string
		for _, r := range rows {
			if strings.Contains(r, "`"+v.Name+"`") {
				row = r
				break
			}
		}
		switch {
		case row == "":
			t.Errorf("environment variable %s is not in a table of docs/reference/flags.md", v.Name)
		case v.DefaultValue == "" && !strings.Contains(row, "| none |") && !strings.Contains(row, "| empty |"):
			t.Errorf("docs/reference/flags.md: %s has no default in the code; its row should say none or empty: %s", v.Name, row)
		case v.DefaultValue != "" && !strings.Contains(row, "| `"+v.DefaultValue+"` |"):
			t.Errorf("docs/reference/flags.md: %s defaults to %q in the code; its row says otherwise: %s", v.Name, v.DefaultValue, row)
		}
	}
	if n < 10 {
		t.Fatalf("only %d Dubbo environment variables registered: the extension package is not linked in", n)
	}
}
