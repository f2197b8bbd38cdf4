package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/config"
)

func hostPort(t *testing.T, rawURL string) string {
	t.Helper()
	return strings.TrimPrefix(rawURL, "http://")
}

// statusServer answers every request with the status in code and body.
func statusServer(t *testing.T, code *atomic.Int32, body string, hits *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits != nil {
			hits.Add(1)
		}
		if r.URL.Path != "/healthz" || r.Header.Get("User-Agent") != "wsgate-health-check" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(int(code.Load()))
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHealthCheckFailsAndPasses(t *testing.T) {
	t.Parallel()
	var okCode, badCode atomic.Int32
	okCode.Store(200)
	badCode.Store(500)
	var badHits atomic.Int32
	good := statusServer(t, &okCode, "ok", nil)
	bad := statusServer(t, &badCode, "boom", &badHits)

	up := upstreamOf("", server(hostPort(t, good.URL)), server(hostPort(t, bad.URL)))
	up.HealthCheck = &config.HealthCheck{Interval: time.Hour, Fails: 2, Passes: 3, URI: "/healthz", Type: "http"}
	var logs strings.Builder
	p := NewPool(up, Options{Logf: func(f string, a ...any) { logs.WriteString(f + "\n") }})
	h := &healthProber{pool: p, hc: up.HealthCheck}
	badSrv := serverByAddr(t, p, hostPort(t, bad.URL))

	h.round(t.Context())
	if st := badSrv.State(); st != "up" {
		t.Fatalf("after 1 of fails=2 bad probes state = %q", st)
	}
	if !strings.Contains(badSrv.ProbeError(), "status 500") {
		t.Errorf("probe error = %q", badSrv.ProbeError())
	}
	h.round(t.Context())
	if st := badSrv.State(); st != "unhealthy" {
		t.Fatalf("after 2 bad probes state = %q", st)
	}
	if got := countPicks(t, p, 10, noRequest); got[badSrv.Addr()] != 0 {
		t.Errorf("unhealthy server picked: %v", got)
	}
	badCode.Store(204)
	for i := 1; i <= 3; i++ {
		h.round(t.Context())
		want := "unhealthy"
		if i == 3 {
			want = "up"
		}
		if st := badSrv.State(); st != want {
			t.Fatalf("after %d good probes state = %q, want %q", i, st, want)
		}
	}
	if got := countPicks(t, p, 10, noRequest); got[badSrv.Addr()] != 5 {
		t.Errorf("recovered server not back in rotation: %v", got)
	}
	if n := badHits.Load(); n != 5 {
		t.Errorf("bad server saw %d probes, want 5", n)
	}
	if !strings.Contains(logs.String(), "unhealthy") || !strings.Contains(logs.String(), "healthy again") {
		t.Errorf("transitions not logged:\n%s", logs.String())
	}
}

func TestHealthProbeHTTPMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		code    int
		body    string
		status  []config.StatusRange
		bodyRe  string
		wantErr string // "" = healthy
	}{
		{desc: "default accepts 200", code: 200},
		{desc: "default accepts 302", code: 302},
		{desc: "default rejects 404", code: 404, wantErr: "status 404"},
		{desc: "default rejects 503", code: 503, wantErr: "status 503"},
		{desc: "match status range", code: 204, status: []config.StatusRange{{Lo: 200, Hi: 204}}},
		{desc: "match rejects outside range", code: 301, status: []config.StatusRange{{Lo: 200, Hi: 299}}, wantErr: "status 301"},
		{desc: "match accepts 500 when listed", code: 500, status: []config.StatusRange{{Lo: 500, Hi: 500}}},
		{desc: "body matches", code: 200, body: `{"status":"alive"}`, bodyRe: `"status":"(alive|ok)"`},
		{desc: "body does not match", code: 200, body: `{"status":"draining"}`, bodyRe: `"status":"(alive|ok)"`, wantErr: "body does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			var code atomic.Int32
			code.Store(int32(tt.code))
			srv := statusServer(t, &code, tt.body, nil)
			up := upstreamOf("", server(hostPort(t, srv.URL)))
			up.HealthCheck = &config.HealthCheck{Interval: time.Second, Fails: 1, Passes: 1, URI: "/healthz", Type: "http", MatchStatus: tt.status, MatchBody: tt.bodyRe}
			p := NewPool(up, Options{})
			h := &healthProber{pool: p, hc: up.HealthCheck}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			err := h.probe(ctx, p.Servers()[0])
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("probe failed: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("probe error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestHealthProbeWebSocket(t *testing.T) {
	t.Parallel()
	closes := make(chan websocket.StatusCode, 1)
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			http.NotFound(w, r)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, _, err = c.Read(r.Context())
		closes <- websocket.CloseStatus(err)
	}))
	t.Cleanup(ws.Close)
	var ok atomic.Int32
	ok.Store(200)
	plain := statusServer(t, &ok, "not a websocket", nil)

	// A raw server that answers 101 with a wrong Sec-WebSocket-Accept.
	wrongAccept := rawServer(t, func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n")
	})
	// A raw server that accepts and never answers.
	stalled := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	// A closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	tests := []struct {
		desc    string
		addr    string
		uri     string
		wantErr string
	}{
		{desc: "real websocket server answers 101", addr: hostPort(t, ws.URL), uri: "/ws"},
		{desc: "websocket path not found", addr: hostPort(t, ws.URL), uri: "/nope", wantErr: "status 404, want 101"},
		{desc: "plain HTTP server", addr: hostPort(t, plain.URL), uri: "/healthz", wantErr: "status 200, want 101"},
		{desc: "wrong Sec-WebSocket-Accept", addr: wrongAccept, uri: "/", wantErr: "Sec-WebSocket-Accept"},
		{desc: "stalled server times out", addr: stalled, uri: "/", wantErr: "timed out"},
		{desc: "connection refused", addr: refused, uri: "/", wantErr: "connect"},
	}
	// The group returns when its parallel subtests are done.
	t.Run("probes", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.desc, func(t *testing.T) {
				t.Parallel()
				up := upstreamOf("", server(tt.addr))
				up.HealthCheck = &config.HealthCheck{Interval: time.Second, Fails: 1, Passes: 1, URI: tt.uri, Type: "websocket"}
				p := NewPool(up, Options{})
				h := &healthProber{pool: p, hc: up.HealthCheck}
				ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				err := h.probe(ctx, p.Servers()[0])
				if time.Since(start) > 2*time.Second {
					t.Errorf("probe took %v", time.Since(start))
				}
				switch {
				case tt.wantErr == "" && err != nil:
					t.Errorf("probe failed: %v", err)
				case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
					t.Errorf("probe error = %v, want %q", err, tt.wantErr)
				}
			})
		}
	})
	select {
	case code := <-closes:
		if code != websocket.StatusGoingAway {
			t.Errorf("server saw close status %v, want 1001 Going Away", code)
		}
	case <-time.After(5 * time.Second):
		t.Error("websocket server never saw the probe's Close frame")
	}
}

// rawServer runs handle for every connection to a fresh 127.0.0.1
// listener and returns its address; connections close when handle
// returns or the test ends.
func rawServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	conns := make(chan net.Conn, 16)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	})
	return ln.Addr().String()
}

func TestHealthProbePortAndDial(t *testing.T) {
	t.Parallel()
	var ok atomic.Int32
	ok.Store(200)
	srv := statusServer(t, &ok, "", nil)
	_, port, _ := net.SplitHostPort(hostPort(t, srv.URL))
	n, _ := strconv.Atoi(port)
	up := upstreamOf("", server("127.0.0.1:1")) // traffic port is closed; health port is not
	up.HealthCheck = &config.HealthCheck{Interval: time.Second, Fails: 1, Passes: 1, URI: "/healthz", Port: n, Type: "http"}
	var dials atomic.Int32
	var dialed atomic.Value
	p := NewPool(up, Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		dialed.Store(addr)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	h := &healthProber{pool: p, hc: up.HealthCheck}
	if err := h.probe(t.Context(), p.Servers()[0]); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if dials.Load() != 1 || dialed.Load() != "127.0.0.1:"+port {
		t.Errorf("dials = %d to %v", dials.Load(), dialed.Load())
	}
}

// TestHealthCheckStartClose runs the real prober goroutine: a server
// answering 500 turns unhealthy, comes back when it answers 200, a stalled
// probe does not block Pick, and after Close every goroutine is gone.
func TestHealthCheckStartClose(t *testing.T) {
	// Not parallel: it counts goroutines.
	base := runtime.NumGoroutine()
	func() {
		var code atomic.Int32
		code.Store(500)
		srv := statusServer(t, &code, "", nil)
		defer srv.Close()
		stalled := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stalled:
			case <-r.Context().Done():
			}
		}))
		defer slow.Close()
		defer close(stalled)

		up := upstreamOf("", server(hostPort(t, srv.URL)), server(hostPort(t, slow.URL)), server("127.0.0.1:1", "down"))
		up.HealthCheck = &config.HealthCheck{Interval: 20 * time.Millisecond, Fails: 2, Passes: 2, URI: "/healthz", Type: "http"}
		p := NewPool(up, Options{})
		p.Start(t.Context())
		p.Start(t.Context()) // second Start is a no-op
		s := serverByAddr(t, p, hostPort(t, srv.URL))

		waitState(t, s, "unhealthy")
		// The slow server's probe is stuck on the network right now; Pick
		// must not wait for it.
		start := time.Now()
		for range 100 {
			if s2, err := p.Pick(nil); err == nil {
				if s2 == s {
					t.Fatal("picked the unhealthy server")
				}
				s2.Release()
			}
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("100 Picks took %v while a probe was stalled", d)
		}
		code.Store(200)
		waitState(t, s, "up")
		p.Close()
		p.Close()            // idempotent
		p.Start(t.Context()) // after Close: no-op
	}()
	waitGoroutines(t, base)
}

func TestHealthCheckStopsOnContext(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		var code atomic.Int32
		code.Store(200)
		srv := statusServer(t, &code, "", nil)
		defer srv.Close()
		up := upstreamOf("", server(hostPort(t, srv.URL)))
		up.HealthCheck = &config.HealthCheck{Interval: 10 * time.Millisecond, Fails: 1, Passes: 1, URI: "/healthz", Type: "websocket"}
		p := NewPool(up, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		p.Start(ctx)
		// A single server that fails its probe is still unhealthy: active
		// checks, unlike max_fails, apply to the only server too.
		waitState(t, p.Servers()[0], "unhealthy")
		_, err := p.Pick(nil)
		if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "1 unhealthy") {
			t.Errorf("Pick err = %v", err)
		}
		cancel()
		p.Close()
	}()
	waitGoroutines(t, base)
}

func waitState(t *testing.T, s *Server, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s state %q, want %q (last probe: %s)", s.Addr(), s.State(), want, s.ProbeError())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
