package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentBackend accepts connections and reads from them but never answers.
func silentBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestUpstreamErrors: the status of a request whose upstream fails, per
// nginx: refused or no server → 502, read timeout → 504, each with the
// built-in HTML page; proxy_next_upstream moves past a refusing server.
func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	good := newRecorder(t, "good")
	silent := silentBackend(t)
	closed := reservePort(t)  // nothing listens here any more
	closed2 := reservePort(t) // nor here
	p := startProxy(t, `
upstream dokku {
	server 127.0.0.1:65535; # force a 502
}
upstream empty {
}
upstream failover {
	server `+closed+` max_fails=0;
	server `+good.addr()+`;
}
upstream failover_off {
	server `+closed2+` max_fails=0;
	server `+good.addr()+`;
}
server {
	listen {{LISTEN}};
	location /dokku/ { proxy_pass http://dokku; }
	location /empty/ { proxy_pass http://empty; }
	location /silent/ { proxy_pass http://`+silent+`; proxy_read_timeout 1s; }
	location /failover/ { proxy_pass http://failover; }
	location /off/ { proxy_pass http://failover_off; proxy_next_upstream off; }
}`)
	tests := []struct {
		desc   string
		path   string
		ws     bool
		status int
		body   string
	}{
		{desc: "only server refuses", path: "/dokku/x", status: 502, body: "502 Bad Gateway"},
		{desc: "only server refuses, WebSocket handshake", path: "/dokku/ws", ws: true, status: 502, body: "502 Bad Gateway"},
		{desc: "upstream without servers", path: "/empty/x", status: 502, body: "502 Bad Gateway"},
		{desc: "upstream without servers, WebSocket handshake", path: "/empty/ws", ws: true, status: 502, body: "502 Bad Gateway"},
		{desc: "backend never answers: proxy_read_timeout", path: "/silent/x", status: 504, body: "504 Gateway Timeout"},
		{desc: "backend never answers a WebSocket handshake", path: "/silent/ws", ws: true, status: 504, body: "504 Gateway Timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			req := rawRequest("GET", tc.path, "example.test")
			if tc.ws {
				req = wsHandshake(tc.path, "example.test")
			}
			start := time.Now()
			resp := rawDo(t, p.addr, req)
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d (body %q)", resp.status, tc.status, resp.body)
			}
			if !strings.Contains(resp.body, tc.body) {
				t.Errorf("body %q, want it to contain %q", resp.body, tc.body)
			}
			if tc.status >= 500 && !strings.HasPrefix(resp.header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q, want text/html", resp.header.Get("Content-Type"))
			}
			if tc.status == 504 {
				if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
					t.Errorf("504 after %v, want about 1s (proxy_read_timeout 1s)", d)
				}
			}
		})
	}
	t.Run("first server refuses, second answers", func(t *testing.T) {
		t.Parallel()
		// The refusing server is never marked down (max_fails=0), and round
		// robin alternates, so some requests try it first.
		for i := 0; i < 6; i++ {
			req := rawRequest("GET", "/failover/x", "example.test")
			if i%2 == 1 {
				req = wsHandshake("/failover/ws", "example.test")
			}
			resp := rawDo(t, p.addr, req)
			if resp.status != 200 || resp.body != "good" {
				t.Errorf("try %d: %d %q, want 200 good", i, resp.status, resp.body)
			}
		}
		if !strings.Contains(p.elog.String(), closed) {
			t.Errorf("the refusing server %s was never tried; error log:\n%s", closed, p.elog.String())
		}
	})
	t.Run("proxy_next_upstream off", func(t *testing.T) {
		t.Parallel()
		// Round robin starts at either server; the refusing one must give
		// 502 at least once in two tries, never a retry.
		saw502 := false
		for i := 0; i < 4; i++ {
			resp := rawGet(t, p.addr, "/off/x", "example.test")
			if resp.status == 502 {
				saw502 = true
			}
		}
		if !saw502 {
			t.Error("proxy_next_upstream off: never answered 502 though one server refuses")
		}
	})
}

// TestMalformedRequest: a malformed request line gets 400 and does not
// affect the next connection.
func TestMalformedRequest(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location / { proxy_pass http://`+up.addr()+`; }
}`)
	tests := []struct {
		desc string
		req  string
	}{
		{desc: "garbage request line", req: "THIS IS NOT HTTP\r\n\r\n"},
		{desc: "missing version", req: "GET /\r\nHost: x\r\n\r\n"},
		{desc: "bad version", req: "GET / HTTP/9.x\r\nHost: x\r\n\r\n"},
		{desc: "space in target", req: "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"},
		{desc: "bad percent escape", req: "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n"},
		{desc: "relative target", req: "GET a/b HTTP/1.1\r\nHost: x\r\n\r\n"},
		{desc: "encoded NUL", req: "GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tc.req)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			// nginx's small HTML page, whether net/http or wsgate refused it
			if !strings.Contains(string(body), "<center><h1>400 Bad Request</h1></center>") {
				t.Errorf("body %q, want nginx's 400 page", body)
			}
			ok := rawGet(t, p.addr, "/next", "example.test")
			if ok.status != 200 || ok.body != "up" {
				t.Errorf("next connection: %d %q, want 200 up", ok.status, ok.body)
			}
		})
	}
	for _, r := range up.records() {
		if r.RequestURI != "/next" {
			t.Errorf("a malformed request reached the upstream as %q", r.RequestURI)
		}
	}
}

// TestOversizedHeader: a header nginx's 8k buffers cannot hold, and one
// net/http itself refuses, both get nginx's 400 "Request Header Or Cookie
// Too Large" page; the next connection still works.
func TestOversizedHeader(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location / { proxy_pass http://`+up.addr()+`; }
}`)
	for _, size := range []int{9 << 10, 80 << 10} {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nCookie: "+strings.Repeat("a", size)+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%d-byte header: no response: %v", size, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "<h1>400 ") {
			t.Errorf("%d-byte header: %d %q, want nginx's 400 page", size, resp.StatusCode, body)
		}
	}
	if ok := rawGet(t, p.addr, "/next", "example.test"); ok.status != 200 {
		t.Errorf("next request: %d", ok.status)
	}
}

// TestHandlerErrorsAreNotRewritten: a 4xx that wsgate itself answers
// (small enough to leave in one write after the handler returned) is not
// taken for net/http's own error answer: it keeps its body and is not
// logged as an invalid request.
func TestHandlerErrorsAreNotRewritten(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location / { return 404 "mine"; }
}`)
	r := rawGet(t, p.addr, "/x", "example.test")
	if r.status != 404 || r.body != "mine" {
		t.Errorf("got %d %q, want 404 \"mine\"", r.status, r.body)
	}
	if strings.Contains(p.elog.String(), "invalid request") {
		t.Errorf("a handler's 404 was logged as an invalid request:\n%s", p.elog.String())
	}
}
