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

// Package kube_test runs dubbo-istiod as istiod runs in a cluster, against a real
// kube-apiserver and etcd on loopback (tests/framework/kube), with the Kubernetes and
// Dubbo registries together. One API server is shared by the package; each test works
// in namespaces of its own.
package kube_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dubbo-istiod/dubbo-istiod/tests/framework/kube"
)

var harness *kube.Cluster

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dubbo-istiod-kube-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	harness, err = kube.Start(ctx, dir)
	if err != nil {
		// A missing harness is a failure, never a skip.
		fmt.Fprintf(os.Stderr, "kube harness: %v\n", err)
		return 1
	}
	fmt.Printf("kube harness: kube-apiserver %s ready with Istio CRDs in %v (%s)\n",
		harness.Version, time.Since(start).Round(10*time.Millisecond), dir)
	code := m.Run()
	harness.Stop()
	if code == 0 && os.Getenv("KEEP_KUBE_DIR") == "" {
		_ = os.RemoveAll(dir)
	}
	return code
}
