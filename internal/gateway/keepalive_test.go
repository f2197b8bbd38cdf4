package gateway_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// keepConn is a raw client connection that sends requests one by one.
type keepConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialKeep(t *testing.T, addr string) *keepConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepConn{t: t, c: c, br: bufio.NewReader(c)}
}

// do sends "GET target" for host (keep-alive) and reads the response.
func (k *keepConn) do(target, host string, extra ...string) (*http.Response, string) {
	k.t.Helper()
	req := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n"
	for _, e := range extra {
		req += e + "\r\n"
	}
	k.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(k.c, req+"\r\n"); err != nil {
		k.t.Fatalf("write %s: %v", target, err)
	}
	resp, err := http.ReadResponse(k.br, &http.Request{Method: "GET"})
	if err != nil {
		k.t.Fatalf("read response to %s: %v", target, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// closedWithin waits up to d for the server to close the connection and
// returns how long that took; it fails the test if the server sends
// anything or keeps the connection open.
func (k *keepConn) closedWithin(d time.Duration) time.Duration {
	k.t.Helper()
	start := time.Now()
	k.c.SetReadDeadline(start.Add(d))
	b := make([]byte, 1)
	n, err := k.br.Read(b)
	el := time.Since(start)
	switch {
	case n > 0:
		k.t.Fatalf("server sent %q instead of closing", b[:n])
	case errors.Is(err, os.ErrDeadlineExceeded):
		k.t.Fatalf("connection still open after %v", d)
	}
	return el
}

// openFor checks that the server keeps the connection open (and silent)
// for d.
func (k *keepConn) openFor(d time.Duration) {
	k.t.Helper()
	k.c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 1)
	n, err := k.br.Read(b)
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		k.t.Fatalf("connection did not stay open for %v: read %q, %v", d, b[:n], err)
	}
}

// TestKeepaliveTimeout: ngx_http_core_module "keepalive_timeout": "The
// first parameter sets a timeout during which a keep-alive client
// connection will stay open on the server side. The zero value disables
// keep-alive client connections. The optional second parameter sets a
// value in the 'Keep-Alive: timeout=time' response header field." nginx
// takes it from the location that served the request.
func TestKeepaliveTimeout(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	p := startProxy(t, `
upstream up { server `+up.addr()+`; }
server {
	listen {{LISTEN}};
	server_name off.test;
	keepalive_timeout 0;
	location / { return 200 off; }
	location /proxy { proxy_pass http://up; }
	location /on { keepalive_timeout 30s; return 200 on; }
}
server {
	listen {{LISTEN}} default_server;
	keepalive_timeout 400ms;
	location / { return 200 short; }
	location /header { keepalive_timeout 30s 25; return 200 header; }
	location /zero { keepalive_timeout 0; return 200 zero; }
	location /long { keepalive_timeout 30s; return 200 long; }
}`)

	t.Run("0: Connection close, then closed", func(t *testing.T) {
		t.Parallel()
		for _, target := range []string{"/", "/proxy"} {
			k := dialKeep(t, p.addr)
			resp, _ := k.do(target, "off.test")
			if resp.StatusCode != 200 || !resp.Close || resp.Header.Get("Keep-Alive") != "" {
				t.Errorf("%s: status %d, Connection %q, Keep-Alive %q; want 200, close, none",
					target, resp.StatusCode, resp.Header.Get("Connection"), resp.Header.Get("Keep-Alive"))
			}
			k.closedWithin(2 * time.Second)
		}
	})
	t.Run("0 in the server, 30s in a location: kept", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		for i := 0; i < 2; i++ {
			resp, body := k.do("/on", "off.test")
			if resp.StatusCode != 200 || resp.Close || body != "on" {
				t.Fatalf("request %d: %d close=%v %q", i, resp.StatusCode, resp.Close, body)
			}
		}
	})
	t.Run("0 in a location only", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		resp, _ := k.do("/long", "a.test")
		if resp.Close {
			t.Fatalf("/long: Connection: close")
		}
		resp, _ = k.do("/zero", "a.test")
		if !resp.Close {
			t.Errorf("/zero: no Connection: close")
		}
		k.closedWithin(2 * time.Second)
	})
	t.Run("idle connection closed after the timeout", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		resp, body := k.do("/", "a.test")
		if resp.StatusCode != 200 || resp.Close || body != "short" {
			t.Fatalf("%d close=%v %q", resp.StatusCode, resp.Close, body)
		}
		if el := k.closedWithin(5 * time.Second); el < 300*time.Millisecond {
			t.Errorf("closed after %v, before keepalive_timeout 400ms", el)
		}
	})
	t.Run("the location's timeout decides the idle time", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		k.do("/long", "a.test")
		k.openFor(1200 * time.Millisecond)
		// the next response is from a 400ms location
		k.do("/", "a.test")
		k.closedWithin(5 * time.Second)
	})
	t.Run("second value: Keep-Alive header", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		resp, _ := k.do("/header", "a.test")
		if got := resp.Header.Get("Keep-Alive"); got != "timeout=25" {
			t.Errorf("Keep-Alive = %q, want timeout=25", got)
		}
		resp, _ = k.do("/", "a.test")
		if got := resp.Header.Get("Keep-Alive"); got != "" {
			t.Errorf("Keep-Alive without a second value = %q", got)
		}
		// a client that closes gets no Keep-Alive header (nginx sends it
		// only on a kept connection)
		resp, _ = k.do("/header", "a.test", "Connection: close")
		if got := resp.Header.Get("Keep-Alive"); got != "" {
			t.Errorf("Keep-Alive to a closing client = %q", got)
		}
	})
}

// TestClientHeaderTimeout: ngx_http_core_module "client_header_timeout":
// "Defines a timeout for reading client request header. If a client does
// not transmit the entire header within this time, the request is
// terminated". nginx reads it from the listen socket's default server (the
// Host header is not known yet), and applies it to the wait for the first
// request too.
func TestClientHeaderTimeout(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `
server { listen {{LISTEN}}; client_header_timeout 400ms; keepalive_timeout 30s; return 200 short; }
server { listen {{LISTEN}}; server_name long.test; client_header_timeout 30s; return 200 long; }
`)
	p2 := startProxy(t, `
client_header_timeout 400ms;
server { listen {{LISTEN}}; server_name short.test; return 200 short; }
server { listen {{LISTEN}} default_server; client_header_timeout 30s; return 200 long; }
`)
	partial := func(k *keepConn, host string) {
		t.Helper()
		if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: "+host+"\r\nX-Slow: 1\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("no request at all", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		if el := k.closedWithin(5 * time.Second); el < 300*time.Millisecond {
			t.Errorf("closed after %v, before client_header_timeout 400ms", el)
		}
	})
	t.Run("incomplete head: the default server's value, whatever Host says", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		partial(k, "long.test")
		k.closedWithin(5 * time.Second)
	})
	t.Run("incomplete head on a keep-alive connection", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		if resp, body := k.do("/", "a.test"); resp.StatusCode != 200 || body != "short" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		partial(k, "a.test")
		k.closedWithin(5 * time.Second) // keepalive_timeout is 30s
	})
	t.Run("http level 400ms, default server 30s: kept waiting", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p2.addr)
		partial(k, "short.test")
		k.openFor(1200 * time.Millisecond)
		// completing the head gets the answer
		io.WriteString(k.c, "\r\n")
		k.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(k.br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "short" {
			t.Errorf("body %q", b)
		}
	})
}

// TestConnectionTimeoutsReload: a reload that changes
// client_header_timeout and keepalive_timeout applies them to the socket
// that stays open.
func TestConnectionTimeoutsReload(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `server { listen {{LISTEN}}; return 200 one; }`)
	k := dialKeep(t, p.addr)
	if resp, _ := k.do("/", "a.test"); resp.Close {
		t.Fatal("default keepalive_timeout: Connection: close")
	}
	conf := "events {}\nhttp {\naccess_log off;\nserver { listen " + p.addr +
		"; client_header_timeout 400ms; keepalive_timeout 0; location / { return 200 two; } location /ka { keepalive_timeout 400ms; return 200 ka; } }\n}\n"
	if err := p.g.Reload(compile(t, p.prefix, conf)); err != nil {
		t.Fatal(err)
	}
	// The connection opened before the reload gets the new values at
	// its next request.
	resp, body := k.do("/", "a.test")
	if body != "two" || !resp.Close {
		t.Errorf("after reload: %q close=%v, want \"two\" and Connection: close", body, resp.Close)
	}
	k2 := dialKeep(t, p.addr)
	k2.closedWithin(5 * time.Second) // client_header_timeout 400ms, nothing sent
	k3 := dialKeep(t, p.addr)
	if resp, body := k3.do("/ka", "a.test"); resp.Close || body != "ka" {
		t.Fatalf("/ka: %q close=%v", body, resp.Close)
	}
	k3.closedWithin(5 * time.Second) // keepalive_timeout 400ms
	if s := p.elog.String(); strings.Contains(s, "panic") {
		t.Errorf("error log:\n%s", s)
	}
}

// TestConnectionTimeoutsTLS: the same timeouts on a "listen ... ssl"
// socket: a client that never completes the handshake is closed after
// client_header_timeout, and keepalive_timeout closes idle connections.
func TestConnectionTimeoutsTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := testenv.WriteCert(t, dir, "test")
	p := startProxy(t, `
server {
	listen {{LISTEN}} ssl;
	ssl_certificate `+cert+`;
	ssl_certificate_key `+key+`;
	client_header_timeout 400ms;
	keepalive_timeout 400ms 1;
	location / { return 200 tls; }
	location /close { keepalive_timeout 0; return 200 close; }
}`)
	t.Run("handshake never completed", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		k.closedWithin(5 * time.Second)
	})
	tlsDial := func(t *testing.T) *keepConn {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return &keepConn{t: t, c: c, br: bufio.NewReader(c)}
	}
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		k := tlsDial(t)
		resp, body := k.do("/", "a.test")
		if body != "tls" || resp.Close || resp.Header.Get("Keep-Alive") != "timeout=1" {
			t.Fatalf("%q close=%v Keep-Alive %q", body, resp.Close, resp.Header.Get("Keep-Alive"))
		}
		k.closedWithin(5 * time.Second)
	})
	t.Run("keepalive_timeout 0", func(t *testing.T) {
		t.Parallel()
		k := tlsDial(t)
		if resp, _ := k.do("/close", "a.test"); !resp.Close {
			t.Errorf("no Connection: close")
		}
		k.closedWithin(5 * time.Second)
	})
}
