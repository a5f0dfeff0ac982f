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

package dubbo3

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
)

// The local-metadata lookup, as a Dubbo 3 consumer makes it (dubbo-go v3.3.2
// metadata/client.go GetMetadataFromRpc, buildStandardMetadataServiceURL): a Dubbo
// (Hessian2) call to the instance's MetadataService on the protocol and port of the
// instance's dubbo.metadata-service.url-params.
const (
	MetadataServiceInterface = "org.apache.dubbo.metadata.MetadataService"
	MetadataServiceVersion   = "1.0.0" // url-params "version"; the body's service version
	MetadataServiceMethod    = "getMetadataInfo"
	// The group attachment is the application name (url-params "group").

	// Java classes of the answer (dubbo-go metadata/info JavaClassName).
	MetadataInfoClass = "org.apache.dubbo.metadata.MetadataInfo"
	ServiceInfoClass  = "org.apache.dubbo.metadata.MetadataInfo$ServiceInfo"
)

// MetadataInfoPOJO is org.apache.dubbo.metadata.MetadataInfo as dubbo-go v3.3.2 encodes it
// (hessian field names: app, revision, tag, services).
type MetadataInfoPOJO struct {
	App      string                      `hessian:"app" json:"app"`
	Revision string                      `hessian:"revision" json:"revision"`
	Tag      string                      `hessian:"tag" json:"tag"`
	Services map[string]*ServiceInfoPOJO `hessian:"services" json:"services"`
}

// JavaClassName is the Hessian2 class name.
func (*MetadataInfoPOJO) JavaClassName() string { return MetadataInfoClass }

// ServiceInfoPOJO is org.apache.dubbo.metadata.MetadataInfo$ServiceInfo (hessian field
// names: name, group, version, protocol, port, path, params).
type ServiceInfoPOJO struct {
	Name     string            `hessian:"name" json:"name"`
	Group    string            `hessian:"group" json:"group"`
	Version  string            `hessian:"version" json:"version"`
	Protocol string            `hessian:"protocol" json:"protocol"`
	Port     int64             `hessian:"port" json:"port"` // dubbo-go encodes its Go int as a Hessian long
	Path     string            `hessian:"path" json:"path"`
	Params   map[string]string `hessian:"params" json:"params"`
}

// JavaClassName is the Hessian2 class name.
func (*ServiceInfoPOJO) JavaClassName() string { return ServiceInfoClass }

var registerOnce sync.Once

// RegisterMetadataPOJOs registers MetadataInfoPOJO and ServiceInfoPOJO with
// dubbo-go-hessian2 (process-wide): until then the answer's classes are unknown and
// hessian.NewDecoder fails on them.
func RegisterMetadataPOJOs() {
	registerOnce.Do(func() {
		hessian.RegisterPOJO(&MetadataInfoPOJO{})
		hessian.RegisterPOJO(&ServiceInfoPOJO{})
	})
}

var metadataRequestID atomic.Int64

// MetadataCall is the raw exchange of one getMetadataInfo call.
type MetadataCall struct {
	Request  []byte // the request frame (header + body)
	Header   hessian.DubboHeader
	Response []byte // the response frame (header + body)
}

// CallMetadataService calls getMetadataInfo(revision) on addr (the instance's host and its
// MetadataService port) with group = app, and returns the raw exchange.
func CallMetadataService(addr, app, revision string, timeout time.Duration) (*MetadataCall, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	codec := hessian.NewHessianCodec(nil)
	req, err := codec.Write(hessian.Service{
		Path: MetadataServiceInterface, Interface: MetadataServiceInterface, Group: app,
		Version: MetadataServiceVersion, Method: MetadataServiceMethod, Timeout: timeout,
	}, hessian.DubboHeader{SerialID: 2, Type: hessian.PackageRequest_TwoWay, ID: metadataRequestID.Add(1)},
		hessian.NewRequest([]any{revision}, nil))
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	head := make([]byte, hessian.HEADER_LENGTH)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("read response header from %s: %v", addr, err)
	}
	n := binary.BigEndian.Uint32(head[12:16])
	if n > 16<<20 {
		return nil, fmt.Errorf("response body of %d bytes from %s", n, addr)
	}
	frame := make([]byte, hessian.HEADER_LENGTH+int(n))
	copy(frame, head)
	if _, err := io.ReadFull(r, frame[hessian.HEADER_LENGTH:]); err != nil {
		return nil, fmt.Errorf("read response body from %s: %v", addr, err)
	}
	call := &MetadataCall{Request: req, Response: frame}
	rc := hessian.NewHessianCodec(bufio.NewReader(bytes.NewReader(frame)))
	if err := rc.ReadHeader(&call.Header); err != nil {
		return nil, err
	}
	return call, nil
}

// Decode decodes the response body into out (e.g. *MetadataInfoPOJO once
// RegisterMetadataPOJOs ran, or *any).
func (c *MetadataCall) Decode(out any) error {
	rc := hessian.NewHessianCodec(bufio.NewReader(bytes.NewReader(c.Response)))
	var h hessian.DubboHeader
	if err := rc.ReadHeader(&h); err != nil {
		return err
	}
	resp := &hessian.Response{RspObj: out}
	if err := rc.ReadBody(resp); err != nil {
		return err
	}
	if h.ResponseStatus != hessian.Response_OK || resp.Exception != nil {
		return fmt.Errorf("dubbo error (status %d): %v", h.ResponseStatus, resp.Exception)
	}
	return nil
}

// GetMetadataInfo calls getMetadataInfo(revision) and decodes the answer.
func GetMetadataInfo(addr, app, revision string, timeout time.Duration) (*MetadataInfoPOJO, error) {
	RegisterMetadataPOJOs()
	c, err := CallMetadataService(addr, app, revision, timeout)
	if err != nil {
		return nil, err
	}
	var v any
	if err := c.Decode(&v); err != nil {
		return nil, err
	}
	switch m := v.(type) {
	case *MetadataInfoPOJO:
		return m, nil
	case MetadataInfoPOJO:
		return &m, nil
	}
	return nil, fmt.Errorf("getMetadataInfo answered %T, not %s", v, MetadataInfoClass)
}
