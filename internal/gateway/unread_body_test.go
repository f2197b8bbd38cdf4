package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUnreadBody: a location that answers without reading the request
// body (return, static files, deny, client_max_body_size) answers at
// once, whatever is left of the body; the rest is read and dropped
// afterwards (ngx_http_discard_request_body). nginx 1.22.1, checked with
// `return 200 ok;` and a client that sends "POST / HTTP/1.1",
// "Content-Length: 100000" and 10 bytes of body, then nothing: the
// response (with "Connection: keep-alive") comes at once, and the
// connection is closed 5s later (lingering_timeout's default), 1s later
// with "lingering_timeout 1s"; a client that keeps sending a byte now and
// then is cut lingering_time after the response; a complete 10-byte body
// is dropped and the connection serves the next request.
func TestUnreadBody(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFile(t, root, "static/f.txt", "file")
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	lingering_timeout 500ms;
	lingering_time 1500ms;
	root `+root+`;
	location / { return 200 ok; }
	location /static/ { }
	location /deny { deny all; }
	location /small { client_max_body_size 5; return 200 ok; }
}`)

	// send writes head+body and reads the response; it fails unless the
	// response comes well within 1s.
	send := func(t *testing.T, k *keepConn, head, body string) *http.Response {
		t.Helper()
		k.c.SetDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		if _, err := io.WriteString(k.c, head+body); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(k.br, nil)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if el := time.Since(start); el > 900*time.Millisecond {
			t.Errorf("the response came after %v; want it at once", el)
		}
		return resp
	}
	stalled := func(t *testing.T, head, start string, status int) {
		t.Helper()
		k := dialKeep(t, p.addr)
		resp := send(t, k, head, start)
		if resp.StatusCode != status {
			t.Errorf("status %d, want %d", resp.StatusCode, status)
		}
		// lingering_timeout 500ms: closed then, not before (a chunked
		// body whose rest has not come is given up at once)
		el := k.closedWithin(5 * time.Second)
		if el < 300*time.Millisecond && !strings.Contains(head, "chunked") {
			t.Errorf("closed %v after the response; want lingering_timeout 500ms", el)
		}
	}
	kept := func(t *testing.T, head, body string, status int) {
		t.Helper()
		k := dialKeep(t, p.addr)
		resp := send(t, k, head, body)
		if resp.StatusCode != status || resp.Close {
			t.Errorf("status %d, close %v; want %d, keep-alive", resp.StatusCode, resp.Close, status)
		}
		// the body was dropped: the next request is read as one
		resp, got := k.do("/static/f.txt", "a")
		if resp.StatusCode != 200 || got != "file" {
			t.Errorf("second request: %d %q", resp.StatusCode, got)
		}
	}

	t.Run("return, stalled fixed-length body", func(t *testing.T) {
		t.Parallel()
		stalled(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n", "0123456789", 200)
	})
	t.Run("return, stalled chunked body", func(t *testing.T) {
		t.Parallel()
		stalled(t, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nabcde\r\n", 200)
	})
	t.Run("static, stalled body", func(t *testing.T) {
		t.Parallel()
		stalled(t, "GET /static/f.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n", "0123456789", 200)
	})
	t.Run("deny, stalled body", func(t *testing.T) {
		t.Parallel()
		stalled(t, "POST /deny HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n", "0123456789", 403)
	})
	t.Run("client_max_body_size, stalled body", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		resp := send(t, k, "POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n", "0123456789")
		if resp.StatusCode != 413 {
			t.Errorf("status %d, want 413", resp.StatusCode)
		}
		k.closedWithin(5 * time.Second)
	})
	t.Run("large stalled body", func(t *testing.T) {
		t.Parallel()
		// more than net/http would ever read after the response: the
		// connection is closed at once
		k := dialKeep(t, p.addr)
		send(t, k, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n", "0123456789")
		k.closedWithin(5 * time.Second)
	})
	t.Run("lingering_time bounds a trickling body", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		send(t, k, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n", "0123456789")
		// a byte every 100ms: never 500ms without one, but closed
		// lingering_time (1.5s) after the response
		start := time.Now()
		for time.Since(start) < 8*time.Second {
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(k.c, "x"); err != nil {
				break
			}
		}
		k.closedWithin(10*time.Second - time.Since(start))
		if el := time.Since(start); el < time.Second || el > 6*time.Second {
			t.Errorf("closed %v after the response; want lingering_time 1.5s", el)
		}
	})
	t.Run("return, complete unread body keeps the connection", func(t *testing.T) {
		t.Parallel()
		kept(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", "0123456789", 200)
	})
	t.Run("return, complete chunked body keeps the connection", func(t *testing.T) {
		t.Parallel()
		kept(t, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nabcde\r\n0\r\n\r\n", 200)
	})
	t.Run("static, complete unread body keeps the connection", func(t *testing.T) {
		t.Parallel()
		kept(t, "GET /static/f.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", "0123456789", 200)
	})
	t.Run("deny, complete unread body keeps the connection", func(t *testing.T) {
		t.Parallel()
		kept(t, "POST /deny HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", "0123456789", 403)
	})
	t.Run("body finished after the response", func(t *testing.T) {
		t.Parallel()
		// nginx keeps this connection; wsgate has said "Connection:
		// close" and closes it once the rest has come
		k := dialKeep(t, p.addr)
		resp := send(t, k, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n", "0123456789")
		if resp.StatusCode != 200 {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond) // within lingering_timeout
		io.WriteString(k.c, strings.Repeat("y", 10))
		if el := k.closedWithin(5 * time.Second); el > 300*time.Millisecond {
			t.Errorf("closed %v after the rest of the body; want at once", el)
		}
	})
}
