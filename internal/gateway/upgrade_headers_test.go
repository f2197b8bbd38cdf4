package gateway_test

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestUpgradeResponseHeaders: the 101 wsgate sends the client carries the
// backend's end-to-end headers (Sec-WebSocket-Accept, -Protocol, cookies),
// hides what nginx hides on any proxied response (Server, Date, X-Accel-*,
// proxy_hide_header, hop-by-hop headers), and sets Upgrade and Connection
// itself.
func TestUpgradeResponseHeaders(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	up.handle = func(w http.ResponseWriter, r *http.Request) {
		c, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		bw.WriteString("HTTP/1.1 101 Switching Protocols\r\n" +
			"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
			"Sec-WebSocket-Protocol: chat\r\n" +
			"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n" +
			"Server: backend/1.0\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\n" +
			"X-Accel-Buffering: no\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\n" +
			"X-Kept: kept\r\n\r\n")
		bw.Flush()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 1)) // until the client leaves
	}
	p := startProxy(t, `
upstream up { server `+up.addr()+`; }
server {
	listen {{LISTEN}};
	location / {
		proxy_pass http://up;
		proxy_http_version 1.1;
		proxy_set_header Upgrade $http_upgrade;
		proxy_set_header Connection "upgrade";
		proxy_hide_header X-Internal;
	}
}`)
	c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	want := map[string][]string{
		"Upgrade":                {"websocket"},
		"Connection":             {"upgrade"},
		"Sec-Websocket-Accept":   {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
		"Sec-Websocket-Protocol": {"chat"},
		"Set-Cookie":             {"a=1", "b=2"},
		"X-Kept":                 {"kept"},
		"Server":                 {"wsgate"},
	}
	for k, vs := range want {
		if got := resp.Header[k]; len(got) != len(vs) || len(got) > 0 && got[0] != vs[0] || len(got) > 1 && got[1] != vs[1] {
			t.Errorf("%s = %q, want %q", k, got, vs)
		}
	}
	for _, k := range []string{"Date", "X-Accel-Buffering", "X-Internal", "Keep-Alive", "Content-Length"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("%s = %q passed in the 101, want it hidden", k, v)
		}
	}
}
