package gateway_test

import (
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
