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

// Command pilot-discovery is upstream Istio's pilot-discovery with the
// dubbo-istiod extensions registered through the command's extension hooks.
// Everything else (flags, defaults, behaviour for non-Dubbo config) is upstream's.
package main

import (
	"os"

	// Import automemlimit to automatically set GOMEMLIMIT to 90% of cgroup memory limit, as upstream does.
	_ "github.com/KimMachineGun/automemlimit"

	"istio.io/istio/pilot/cmd/pilot-discovery/app"
	"istio.io/istio/pkg/log"

	// Registers the Dubbo extensions with app.CommandHooks / app.ServerHooks.
	_ "github.com/dubbo-istiod/dubbo-istiod/pilot/pkg/dubbo/extension"
)

func main() {
	log.EnableKlogWithCobra()
	rootCmd := app.NewRootCommand()
	if err := rootCmd.Execute(); err != nil {
		log.Error(err)
		os.Exit(-1)
	}
}
