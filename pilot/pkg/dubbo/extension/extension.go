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
	"github.com/spf13/cobra"

	"istio.io/istio/pilot/cmd/pilot-discovery/app"
	"istio.io/istio/pilot/pkg/bootstrap"
	"istio.io/istio/pkg/log"
	"istio.io/istio/pkg/version"
)

// Scope is the logging scope of the Dubbo extensions (--log_output_level=dubbo:debug).
var Scope = log.RegisterScope("dubbo", "dubbo-istiod: Dubbo registries and xDS")

func init() {
	app.CommandHooks = append(app.CommandHooks, addFlags)
	app.ServerHooks = append(app.ServerHooks, start)
}

// addFlags adds the flags of the Dubbo extensions to the discovery command. Every flag
// added here is listed in docs/reference/flags.md (checked by a test).
func addFlags(_ *cobra.Command) {}

// start runs right after bootstrap.NewServer, before the server starts.
func start(_ *bootstrap.Server, _ *bootstrap.PilotArgs, _ <-chan struct{}) error {
	Scope.Infof("dubbo-istiod %s extensions loaded", version.Info.Version)
	return nil
}
