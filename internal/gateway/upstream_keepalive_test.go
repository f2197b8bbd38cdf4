package gateway_test

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connCounter is a backend that counts its TCP connections: opened and
// currently open. hold, when set, makes requests wait until it is closed.
type connCounter struct {
	addr   string
	opened atomic.Int64
	open   atomic.Int64
	mu     sync.Mutex
	hold   chan struct{}
	inside atomic.Int64 // requests waiting on hold
}

func newConnCounter(t *testing.T) *connCounter {
	t.Helper()
	cc := &connCounter{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cc.mu.Lock()
			hold := cc.hold
			cc.mu.Unlock()
			if hold != nil {
				cc.inside.Add(1)
				<-hold
				cc.inside.Add(-1)
			}
			io.WriteString(w, "ok")
		}),
		IdleTimeout: time.Minute,
		ConnState: func(c net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				cc.opened.Add(1)
				cc.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				cc.open.Add(-1)
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cc.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return cc
}

// holdRequests makes the next requests wait until the returned function
// is called.
func (cc *connCounter) holdRequests() (release func()) {
	ch := make(chan struct{})
	cc.mu.Lock()
	cc.hold = ch
	cc.mu.Unlock()
	return func() {
		cc.mu.Lock()
		cc.hold = nil
		cc.mu.Unlock()
		close(ch)
	}
}

// waitOpen waits until the backend has want open connections (they close
// asynchronously) and fails after a few seconds.
func waitOpen(t *testing.T, what string, want int64, counters ...*connCounter) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int64
		for _, c := range counters {
			n += c.open.Load()
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d upstream connections open, want %d", what, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// concurrent sends n requests at once while the backends hold them, so n
// upstream connections are open, then lets them all finish.
func concurrent(t *testing.T, p *proxyUnderTest, path string, n int, backends ...*connCounter) {
	t.Helper()
	var releases []func()
	for _, b := range backends {
		releases = append(releases, b.holdRequests())
	}
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := noRedirect.Get(p.url(path))
			if err != nil {
				errs <- err.Error()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- resp.Status
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var in int64
		for _, b := range backends {
			in += b.inside.Load()
		}
		if in == int64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests reached the backends", in, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, r := range releases {
		r()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("request: %s", e)
	}
}

// TestUpstreamKeepalive: ngx_http_upstream_module "keepalive": "sets the
// maximum number of idle keepalive connections to upstream servers that
// are preserved in the cache of each worker process. When this number is
// exceeded, the least recently used connections are closed." The cache
// belongs to the upstream block, not to each server.
func TestUpstreamKeepalive(t *testing.T) {
	t.Parallel()
	t.Run("keepalive 2: two of five idle connections kept", func(t *testing.T) {
		t.Parallel()
		b := newConnCounter(t)
		p := startProxy(t, `
upstream b { server `+b.addr+`; keepalive 2; }
server { listen {{LISTEN}}; location / { proxy_pass http://b; } }`)
		concurrent(t, p, "/", 5, b)
		waitOpen(t, "after 5 concurrent requests", 2, b)
		// the kept ones are reused
		before := b.opened.Load()
		for i := 0; i < 4; i++ {
			get(t, p.url("/again"))
		}
		if n := b.opened.Load() - before; n != 0 {
			t.Errorf("4 sequential requests opened %d new connections, want the idle ones reused", n)
		}
	})
	t.Run("keepalive 1 counts for the whole upstream block", func(t *testing.T) {
		t.Parallel()
		b1, b2 := newConnCounter(t), newConnCounter(t)
		p := startProxy(t, `
upstream b { server `+b1.addr+`; server `+b2.addr+`; keepalive 1; }
server { listen {{LISTEN}}; location / { proxy_pass http://b; } }`)
		concurrent(t, p, "/", 4, b1, b2)
		waitOpen(t, "two servers, keepalive 1", 1, b1, b2)
	})
	t.Run("no keepalive directive: pooled by default, up to 64 per server", func(t *testing.T) {
		t.Parallel()
		b := newConnCounter(t)
		p := startProxy(t, `
upstream b { server `+b.addr+`; }
server { listen {{LISTEN}}; location / { proxy_pass http://b; } }`)
		concurrent(t, p, "/", 5, b)
		waitOpen(t, "default pool", 5, b)
	})
	t.Run("caches are per upstream block", func(t *testing.T) {
		t.Parallel()
		b := newConnCounter(t)
		p := startProxy(t, `
upstream one { server `+b.addr+`; keepalive 4; }
upstream two { server `+b.addr+`; keepalive 4; }
server { listen {{LISTEN}}; location /one { proxy_pass http://one; } location /two { proxy_pass http://two; } }`)
		get(t, p.url("/one"))
		get(t, p.url("/two"))
		get(t, p.url("/one"))
		get(t, p.url("/two"))
		if n := b.opened.Load(); n != 2 {
			t.Errorf("%d upstream connections for two upstream blocks, want 2 (one each, reused)", n)
		}
	})
}

// TestUpstreamKeepaliveTimeout: "keepalive_timeout: Sets a timeout during
// which an idle keepalive connection to an upstream server will stay
// open."
func TestUpstreamKeepaliveTimeout(t *testing.T) {
	t.Parallel()
	b := newConnCounter(t)
	p := startProxy(t, `
upstream b { server `+b.addr+`; keepalive 4; keepalive_timeout 300ms; }
upstream d { server `+b.addr+`; }
server { listen {{LISTEN}}; location / { proxy_pass http://b; } location /d { proxy_pass http://d; } }`)
	get(t, p.url("/d")) // the default pool: 60s
	get(t, p.url("/"))
	start := time.Now()
	waitOpen(t, "after keepalive_timeout 300ms", 1, b)
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("idle connection closed after %v, before keepalive_timeout", el)
	}
	if n := b.opened.Load(); n != 2 {
		t.Fatalf("%d connections opened, want 2 (one per upstream block)", n)
	}
	get(t, p.url("/"))
	if n := b.opened.Load(); n != 3 {
		t.Errorf("%d connections opened, want 3 (the expired one not reused)", n)
	}
}

// TestUpstreamKeepaliveRequests: "keepalive_requests: Sets the maximum
// number of requests that can be served through one keepalive connection.
// After the maximum number of requests is made, the connection is closed."
// And keepalive_time: "Limits the maximum time during which requests can
// be processed through one keepalive connection."
func TestUpstreamKeepaliveRequests(t *testing.T) {
	t.Parallel()
	t.Run("keepalive_requests 3", func(t *testing.T) {
		t.Parallel()
		b := newConnCounter(t)
		p := startProxy(t, `
upstream b { server `+b.addr+`; keepalive 4; keepalive_requests 3; }
server { listen {{LISTEN}}; location / { proxy_pass http://b; } }`)
		for i := 0; i < 7; i++ {
			if resp, body := get(t, p.url("/")); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
			}
		}
		if n := b.opened.Load(); n != 3 {
			t.Errorf("7 requests with keepalive_requests 3 used %d connections, want 3", n)
		}
		waitOpen(t, "after 7 requests", 1, b)
	})
	t.Run("keepalive_time 500ms", func(t *testing.T) {
		t.Parallel()
		b := newConnCounter(t)
		p := startProxy(t, `
upstream b { server `+b.addr+`; keepalive_time 500ms; }
server { listen {{LISTEN}}; location / { proxy_pass http://b; } }`)
		get(t, p.url("/"))
		get(t, p.url("/"))
		if n := b.opened.Load(); n != 1 {
			t.Fatalf("%d connections for two quick requests, want 1", n)
		}
		time.Sleep(600 * time.Millisecond)
		get(t, p.url("/")) // served on the old connection, which then retires
		get(t, p.url("/"))
		if n := b.opened.Load(); n != 2 {
			t.Errorf("%d connections, want 2 (the first retired after keepalive_time)", n)
		}
	})
}
