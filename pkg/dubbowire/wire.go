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

// Package dubbowire speaks the Dubbo 2 wire protocol with Hessian2 serialization
// (github.com/apache/dubbo-go-hessian2): a minimal provider that answers calls and a
// client that makes them. The demo and the tests use it to run real Dubbo traffic.
package dubbowire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
)

const (
	headerLen  = 16
	hessian2ID = 2
	maxBody    = 8 << 20
)

// Call is one decoded request.
type Call struct {
	DubboVersion, Service, Version, Group, Method string
	Args                                          []any
	Attachments                                   map[string]string
}

// Handler answers a call with a value or an error.
type Handler func(Call) (any, error)

// Server is a Dubbo provider endpoint.
type Server struct {
	l       net.Listener
	handler Handler
	wg      sync.WaitGroup
	conns   sync.Map
	closed  atomic.Bool
}

// Listen serves Dubbo on addr until Close.
func Listen(addr string, h Handler) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{l: l, handler: h}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.l.Addr().String() }

// Close stops accepting, drops connections and waits.
func (s *Server) Close() {
	s.closed.Store(true)
	s.l.Close()
	s.conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.conns.Store(c, true)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.conns.Delete(c)
			defer c.Close()
			_ = s.serve(c)
		}()
	}
}

// readFrame buffers one whole frame so the codec can decode it.
func readFrame(r *bufio.Reader) (*hessian.HessianCodec, *hessian.DubboHeader, error) {
	head, err := r.Peek(headerLen)
	if err != nil {
		return nil, nil, err
	}
	if head[0] != 0xda || head[1] != 0xbb {
		return nil, nil, fmt.Errorf("not a Dubbo frame (magic %x%x)", head[0], head[1])
	}
	n := int(binary.BigEndian.Uint32(head[12:16]))
	if n < 0 || n > maxBody {
		return nil, nil, fmt.Errorf("Dubbo body of %d bytes", n)
	}
	if headerLen+n > r.Size() {
		// A frame larger than the buffer: read it whole, so the codec sees all of it.
		frame := make([]byte, headerLen+n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return nil, nil, err
		}
		r = bufio.NewReaderSize(bytes.NewReader(frame), len(frame))
	}
	if _, err := r.Peek(headerLen + n); err != nil {
		return nil, nil, err
	}
	codec := hessian.NewHessianCodec(r)
	h := &hessian.DubboHeader{}
	if err := codec.ReadHeader(h); err != nil {
		return nil, nil, err
	}
	return codec, h, nil
}

func (s *Server) serve(c net.Conn) error {
	r := bufio.NewReaderSize(c, maxBody+headerLen)
	for {
		codec, h, err := readFrame(r)
		if err != nil {
			return err
		}
		if h.Type&hessian.PackageHeartbeat != 0 {
			if err := codec.ReadBody(nil); err != nil {
				return err
			}
			out, err := codec.Write(hessian.Service{}, hessian.DubboHeader{
				SerialID: hessian2ID, Type: hessian.PackageHeartbeat, ID: h.ID, ResponseStatus: hessian.Response_OK,
			}, nil)
			if err != nil {
				return err
			}
			if _, err := c.Write(out); err != nil {
				return err
			}
			continue
		}
		body := make([]any, 7)
		if err := codec.ReadBody(body); err != nil {
			return err
		}
		call := Call{Attachments: map[string]string{}}
		call.DubboVersion, _ = body[0].(string)
		call.Service, _ = body[1].(string)
		call.Version, _ = body[2].(string)
		call.Method, _ = body[3].(string)
		call.Args, _ = body[5].([]any)
		if a, ok := body[6].(map[string]string); ok {
			call.Attachments = a
		}
		value, herr := s.handler(call)
		header := hessian.DubboHeader{SerialID: hessian2ID, Type: hessian.PackageResponse, ID: h.ID, ResponseStatus: hessian.Response_OK}
		var out []byte
		if herr != nil {
			header.ResponseStatus = hessian.Response_SERVICE_ERROR
			out, err = codec.Write(hessian.Service{}, header, herr.Error())
		} else {
			out, err = codec.Write(hessian.Service{}, header, hessian.NewResponse(value, nil, nil))
		}
		if err != nil {
			return err
		}
		if _, err := c.Write(out); err != nil {
			return err
		}
	}
}

var requestID atomic.Int64

// Invoke makes one call to addr and returns the string result.
func Invoke(addr string, c Call, timeout time.Duration) (string, error) {
	var s string
	if err := invoke(context.Background(), addr, c, timeout, &s); err != nil {
		return "", err
	}
	return s, nil
}

// InvokeValue makes one call to addr and returns the result as Hessian2 decodes it
// (registered POJOs as their Go types, strings, maps, ...). ctx cancels it.
func InvokeValue(ctx context.Context, addr string, c Call, timeout time.Duration) (any, error) {
	var v any
	if err := invoke(ctx, addr, c, timeout, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func invoke(ctx context.Context, addr string, c Call, timeout time.Duration, result any) (err error) {
	// The Hessian2 decoder panics on some malformed answers (e.g. an error response whose
	// body is not a string); a peer must not be able to crash the caller.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed answer from %s: %v", addr, r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	// Cancellation closes the connection, which ends a blocked read or write.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	codec := hessian.NewHessianCodec(nil)
	out, err := codec.Write(hessian.Service{
		Path: c.Service, Interface: c.Service, Group: c.Group, Version: c.Version, Method: c.Method, Timeout: timeout,
	}, hessian.DubboHeader{SerialID: hessian2ID, Type: hessian.PackageRequest_TwoWay, ID: requestID.Add(1)},
		hessian.NewRequest(c.Args, c.Attachments))
	if err != nil {
		return err
	}
	if _, err := conn.Write(out); err != nil {
		return err
	}
	rc, h, err := readFrame(bufio.NewReaderSize(conn, 64<<10))
	if err != nil {
		if err == io.EOF {
			return fmt.Errorf("connection closed by %s", addr)
		}
		return err
	}
	resp := &hessian.Response{RspObj: result}
	if err := rc.ReadBody(resp); err != nil {
		return err
	}
	if h.ResponseStatus != hessian.Response_OK || resp.Exception != nil {
		return fmt.Errorf("Dubbo error (status %d): %v", h.ResponseStatus, resp.Exception)
	}
	return nil
}
