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

package nacos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// login checks the credentials; a refusal is an "auth" error until a login succeeds.
func (w *Watcher) login(ctx context.Context) {
	err := w.checkLogin(ctx)
	w.mu.Lock()
	w.authErr = err != nil
	w.mu.Unlock()
	if err != nil {
		// The client goes on (a server may serve reads without a login); dubboz shows why.
		w.fail("auth", "", err)
		return
	}
	w.ok("auth", "")
}

// loginPath is Nacos's login API (v1, served beside the gRPC API by every Nacos 2 server).
const loginPath = "/nacos/v1/auth/users/login"

// checkLogin logs in once with the registry's credentials, the way the Nacos client does,
// to report a refusal clearly: the client itself only writes it to its own log file and
// then fails every request with a bare "403". Only a server that answers counts: an
// unreachable one is the connection's business.
func (w *Watcher) checkLogin(ctx context.Context) error {
	if w.cfg.Username == "" {
		return nil
	}
	timeout := w.cfg.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	client := &http.Client{Timeout: timeout}
	form := url.Values{"username": {w.cfg.Username}, "password": {w.cfg.Password}}.Encode()
	for _, s := range w.cfg.Servers {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s+loginPath, strings.NewReader(form))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			continue // unreachable: reported as a connection and list failure
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return nil
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("login as %q at %s refused: HTTP %d %s", w.cfg.Username, s, resp.StatusCode, strings.TrimSpace(clip(string(body))))
		}
		return fmt.Errorf("login as %q at %s failed: HTTP %d %s", w.cfg.Username, s, resp.StatusCode, strings.TrimSpace(clip(string(body))))
	}
	return nil
}
