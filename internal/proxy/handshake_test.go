package proxy

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/route"
)

// The seed-004 shape, plus headers that exercise the rules: a variable that
// is empty (the header is dropped), a Connection token naming a hop-by-hop
// header of the client's own, and a value with a line break.
const handshakeConf = `
events {}
http {
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream websocket { server 127.0.0.1:9; }
    server {
        listen 127.0.0.1:8080;
        location /ws/ {
            proxy_pass http://websocket;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Empty $http_x_absent;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
`

// handshakeRequest sets up q and t for a WebSocket upgrade of path, as
// ServeHTTP and proxyPass would.
func handshakeRequest(tb testing.TB, h *Handler, hdr http.Header) (*request, *target) {
	tb.Helper()
	r := &http.Request{Method: "GET", RequestURI: "/ws/chat?room=1", Host: "example.com", Header: hdr,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "127.0.0.1:50000"}
	q := &request{h: h, r: r, start: time.Now(), scheme: "http"}
	q.remoteIP, q.remotePort, _ = net.SplitHostPort(r.RemoteAddr)
	b := h.table.Bindings[0]
	q.srv = b.Server(q.localIP, r.Host)
	q.uri, q.args, q.hasArgs = "/ws/chat", "room=1", true
	m := route.Find(q.srv, q.uri)
	q.loc, q.captures = m.Location, m.Captures
	q.set = m.Settings(q.srv)
	t, err := h.resolveTarget(q)
	if err != nil {
		tb.Fatal(err)
	}
	return q, t
}

func handshakeHandler(tb testing.TB) *Handler {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "wsgate.conf")
	if err := os.WriteFile(path, []byte(handshakeConf), 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	h, err := New(cfg, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close(nil) })
	return h
}

func clientUpgradeHeader() http.Header {
	return http.Header{
		"Upgrade":                  {"websocket"},
		"Connection":               {"Upgrade, X-Hop"},
		"X-Hop":                    {"only for the proxy"},
		"Sec-Websocket-Key":        {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-Websocket-Version":    {"13"},
		"Sec-Websocket-Protocol":   {"chat, superchat"},
		"Sec-Websocket-Extensions": {"permessage-deflate; client_max_window_bits"},
		"Origin":                   {"http://example.com"},
		"Cookie":                   {"a=1", "b=2"},
		"X-Forwarded-For":          {"203.0.113.7"},
		"X-Folded":                 {"one\r\ntwo"},
		"Content-Length":           {"0"},
	}
}

// TestAppendHandshake checks the upstream handshake written without a
// header map against the rules: what setHeaders gives a proxied request,
// less Host/Connection/Upgrade/Content-Length, with the handshake's own.
func TestAppendHandshake(t *testing.T) {
	h := handshakeHandler(t)
	q, tg := handshakeRequest(t, h, clientUpgradeHeader())
	raw := h.appendHandshake(nil, q, tg, "websocket")
	if bytes.Count(raw, []byte("\r\n\r\n")) != 1 || !bytes.HasSuffix(raw, []byte("\r\n\r\n")) {
		t.Fatalf("handshake is not one request head:\n%s", raw)
	}
	got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("upstream handshake does not parse: %v\n%s", err, raw)
	}
	if got.Method != "GET" || got.RequestURI != "/ws/chat?room=1" || got.Host != "example.com" {
		t.Errorf("request line/Host = %s %s Host %s, want GET /ws/chat?room=1 Host example.com", got.Method, got.RequestURI, got.Host)
	}
	want := http.Header{}
	h.setHeaders(q, want)
	for _, k := range []string{"Host", "Connection", "Upgrade", "Content-Length"} {
		want.Del(k)
	}
	want["Upgrade"] = []string{"websocket"}
	want["Connection"] = []string{"upgrade"}
	want["X-Folded"] = []string{"one  two"}
	if !reflect.DeepEqual(got.Header, want) {
		t.Errorf("upstream handshake headers:\n got %v\nwant %v\nraw:\n%s", got.Header, want, raw)
	}
	for _, k := range []string{"X-Hop", "X-Empty", "Content-Length"} {
		if _, ok := got.Header[k]; ok {
			t.Errorf("%s was passed upstream:\n%s", k, raw)
		}
	}
	if v := got.Header.Get("X-Forwarded-For"); v != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the client's list plus 127.0.0.1", v)
	}
	if strings.Count(string(raw), "Cookie: ") != 2 {
		t.Errorf("want both Cookie header lines passed:\n%s", raw)
	}
}

// BenchmarkHandshakeRewrite is the upstream handshake of a seed-004 style
// location: 0 allocations per handshake in steady state.
func BenchmarkHandshakeRewrite(b *testing.B) {
	h := handshakeHandler(b)
	hdr := clientUpgradeHeader()
	delete(hdr, "X-Forwarded-For") // $proxy_add_x_forwarded_for then needs no concatenation
	q, tg := handshakeRequest(b, h, hdr)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf = h.appendHandshake(buf[:0], q, tg, "websocket")
	}
	b.SetBytes(int64(len(buf)))
}
