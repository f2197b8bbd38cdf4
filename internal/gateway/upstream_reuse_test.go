package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestUpstreamConnectionReuse: plain requests reuse pooled upstream
// connections, and a pooled connection the backend closed while idle
// (its keep-alive timeout) is noticed before use instead of failing the
// next request with a 502.
func TestUpstreamConnectionReuse(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}),
		IdleTimeout: 200 * time.Millisecond,
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p := startProxy(t, `
upstream b { server `+ln.Addr().String()+`; }
server { listen {{LISTEN}}; location / { proxy_pass http://b; } }
`)
	for i := 0; i < 20; i++ {
		resp, body := get(t, p.url("/x"))
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := conns.Load(); n > 2 {
		t.Errorf("20 sequential requests used %d upstream connections, want them reused", n)
	}
	// Let the backend close the idle pooled connection, then ask again.
	time.Sleep(600 * time.Millisecond)
	for i := 0; i < 3; i++ {
		resp, body := get(t, p.url("/after-idle"))
		if resp.StatusCode != 200 || !strings.Contains(body, "ok") {
			t.Fatalf("after the backend closed the idle connection: %d %q", resp.StatusCode, body)
		}
	}
}

// TestUpstreamStaleReuseRetried: a pooled connection that looks open but
// that the server closes as the next request arrives (the keep-alive race)
// costs the client nothing: like nginx with a cached connection, wsgate
// sends a request without a body once more on a new connection instead of
// answering 502. A POST with a body is not replayed.
func TestUpstreamStaleReuseRetried(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				// The first request on a connection is answered with
				// keep-alive; the second is read and dropped.
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if i == 1 {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}(c)
		}
	}()
	p := startProxy(t, `
upstream b { server `+ln.Addr().String()+`; keepalive 4; }
server { listen {{LISTEN}}; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } }
`)
	for i := 0; i < 6; i++ {
		resp, body := get(t, p.url("/x"))
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("GET %d: %d %q, want 200 \"ok\" (a stale pooled connection must be retried)\n%s", i, resp.StatusCode, body, p.elog.String())
		}
	}
	if n := conns.Load(); n < 4 {
		t.Errorf("backend saw %d connections for 6 GETs, want the pooled ones reused (and dropped) in between", n)
	}
	// A POST with a body on a stale connection is not sent twice.
	if resp, _ := get(t, p.url("/warm")); resp.StatusCode != 200 {
		t.Fatalf("warm-up GET: %d", resp.StatusCode)
	}
	resp, err := http.Post(p.url("/post"), "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("POST with a body on a stale pooled connection: %d, want 502 (not replayed)", resp.StatusCode)
	}

	// Without "keepalive" in the upstream nginx opens a new connection
	// per request and never retries this way; wsgate pools anyway, but a
	// request its server drops is sent once, as with nginx.
	before := conns.Load()
	q := startProxy(t, `
upstream b { server `+ln.Addr().String()+`; }
server { listen {{LISTEN}}; location / { proxy_pass http://b; } }
`)
	if resp, body := get(t, q.url("/one")); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("first GET without keepalive: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, q.url("/two")); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("GET dropped on a reused connection without keepalive: %d, want 502 (sent once, as nginx)", resp.StatusCode)
	}
	if n := conns.Load() - before; n != 1 {
		t.Errorf("without keepalive the backend saw %d connections for the two GETs, want 1 (pooled, no retry)", n)
	}
}
