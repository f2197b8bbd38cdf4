package proxy

import (
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestUnescapeRedirect follows ngx_unescape_uri(NGX_UNESCAPE_REDIRECT):
// escapes of characters above '%' and below DEL are decoded, others stay;
// a "?" (also %3F) ends the decoding; a broken escape loses its '%' (and
// its first digit), as in nginx.
func TestUnescapeRedirect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"/a%20b", "/a%20b"},
		{"/a%2Fb%41%7e", "/a/bA~"},
		{"/a%3Fb%41", "/a?b%41"},
		{"/a%3fb", "/a?b"},
		{"/a?b%41", "/a?b%41"},
		{"/a%25b", "/a%25b"},
		{"/a%26b%2B", "/a&b+"},
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"/a%zz", "/azz"},
		{"/a%2z", "/a"},
		{"/a%", "/a"},
	} {
		if got := string(unescapeRedirect([]byte(tc.in))); got != tc.want {
			t.Errorf("unescapeRedirect(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestEscapeArgs is NGX_ESCAPE_ARGS of nginx 1.22.1: the URI set plus
// '&', '+' and ';'.
func TestEscapeArgs(t *testing.T) {
	t.Parallel()
	if got := escapeArgs(`a b&c+d;e?f#g%h"i/j=k,l`); got != `a%20b%26c%2Bd%3Be%3Ff%23g%25h%22i/j=k,l` {
		t.Errorf("escapeArgs = %q", got)
	}
	if s := "plain/a=b"; escapeArgs(s) != s {
		t.Errorf("escapeArgs changed %q", s)
	}
}

// rwHandler compiles conf (an http block body) into a Handler whose
// error log goes to the returned buffer.
func rwHandler(t testing.TB, conf string) (*Handler, *testenv.SyncBuffer) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "wsgate.conf")
	if err := os.WriteFile(path, []byte("events {}\nhttp {\naccess_log off;\n"+conf+"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{SkipResolve: true})
	if err != nil {
		t.Fatal(err)
	}
	elog := &testenv.SyncBuffer{}
	h, err := New(cfg, Options{ErrorLog: log.New(elog, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(nil) })
	return h, elog
}

// rwServe sends one request through h as the listener layer would.
func rwServe(h *Handler, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://example.test"+target, nil)
	r.RequestURI = target
	r.RemoteAddr = "127.0.0.1:50000"
	for k, vs := range hdr {
		r.Header[k] = vs
	}
	b := h.table.Bindings[0]
	ctx := WithBinding(r.Context(), b.Addr)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80})
	r = r.WithContext(ctx)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// upstreamRecorder is a backend that answers with the request target it got.
func upstreamRecorder(t *testing.T) (addr string, got func() string) {
	var mu sync.Mutex
	var last string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.RequestURI + " " + r.Header.Get("X-Set")
		mu.Unlock()
		io.WriteString(w, "up")
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() string {
		mu.Lock()
		defer mu.Unlock()
		s := last
		last = ""
		return s
	}
}

// TestRewriteHandler drives the handler through the rewrite module's
// paths: server and location scripts, last/break, redirects, set, if
// with its implicit location, the cycle limit.
func TestRewriteHandler(t *testing.T) {
	up, got := upstreamRecorder(t)
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f.txt"), []byte("file"), 0o644)
	h, elog := rwHandler(t, `
upstream app { server `+up+`; }
server {
	listen 127.0.0.1:8080;
	root `+root+`;
	rewrite ^/old/(.*)$ /new/$1 permanent;
	if ($http_x_block) { return 403; }
	set $tag server;
	location /api/ {
		rewrite ^/api/(.*)$ /$1 break;
		proxy_pass http://app/ignored/;
		proxy_set_header X-Set "$tag $1";
	}
	location / {
		rewrite_log on;
		rewrite ^/app/(.*)$ /$1 last;
		if ($request_method = OPTIONS) { add_header X-Cors yes; return 204; }
		if (!-f $request_filename) { proxy_pass http://app; break; }
	}
	location /loop { rewrite ^ /loop last; }
	location /var/ { set $b http://`+up+`; proxy_pass $b; }
	location /red/ { rewrite ^/red/(.*)$ /x/$1?k=v redirect; }
	location /al/ { alias `+root+`/; rewrite ^/al/(.*)$ /al/$1 break; }
}`)
	for _, tc := range []struct {
		method, target string
		code           int
		location, up   string
		header         string // "Name: value" expected in the response
	}{
		{"GET", "/old/a?b=1", 301, "http://example.test/new/a?b=1", "", ""},
		{"GET", "/api/users?id=7", 200, "", "/users?id=7 server users", ""},
		{"GET", "/app/f.txt", 200, "", "", ""},
		{"GET", "/app/missing?x=1", 200, "", "/missing?x=1 ", ""},
		{"GET", "/missing", 200, "", "/missing ", ""},
		{"OPTIONS", "/any", 204, "", "", "X-Cors: yes"},
		{"GET", "/loop", 500, "", "", ""},
		{"GET", "/var/p?q=1", 200, "", "/var/p?q=1 ", ""},
		{"GET", "/red/a%20b?z=1", 302, "http://example.test/x/a%20b?k=v&z=1", "", ""},
		{"GET", "/al/f.txt", 500, "", "", ""},
	} {
		w := rwServe(h, tc.method, tc.target, nil)
		if w.Code != tc.code {
			t.Errorf("%s %s: %d, want %d (body %q)", tc.method, tc.target, w.Code, tc.code, w.Body.String())
		}
		if l := w.Header().Get("Location"); l != tc.location {
			t.Errorf("%s %s: Location %q, want %q", tc.method, tc.target, l, tc.location)
		}
		if u := got(); u != tc.up {
			t.Errorf("%s %s: upstream got %q, want %q", tc.method, tc.target, u, tc.up)
		}
		if tc.header != "" {
			k, v, _ := strings.Cut(tc.header, ": ")
			if w.Header().Get(k) != v {
				t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.target, k, w.Header().Get(k), v)
			}
		}
	}
	if w := rwServe(h, "GET", "/api/x", http.Header{"X-Block": {"1"}}); w.Code != 403 {
		t.Errorf("server-level if: %d, want 403", w.Code)
	}
	logs := elog.String()
	for _, want := range []string{
		`[error] rewrite or internal redirection cycle while processing "/loop"`,
		`[notice] "^/app/(.*)$" matches "/app/f.txt", client: 127.0.0.1`,
		`[notice] rewritten data: "/f.txt", args: "", client: 127.0.0.1`,
		`[notice] "^/app/(.*)$" does not match "/missing"`,
		`[alert] "alias" cannot be used in location "/al/" where URI was rewritten`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("error log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, `"^/api/(.*)$" matches`) {
		t.Errorf("rewrite_log off in /api/ but its rewrite was logged:\n%s", logs)
	}
}

// TestExplainRewrite: wsgate explain shows each rewrite module step, each
// location search and the final upstream request.
func TestExplainRewrite(t *testing.T) {
	t.Parallel()
	h, _ := rwHandler(t, `
upstream app { server 127.0.0.1:9; }
server {
	listen 127.0.0.1:8080;
	location / { rewrite ^/app/(.*)$ /api/$1 last; }
	location /api/ { rewrite ^/api/(.*)$ /v2/$1 break; proxy_pass http://app; }
	location /r/ { if ($arg_go) { return 301 https://example.org/; } }
}`)
	var out bytes.Buffer
	if err := h.Explain(&out, ExplainRequest{Target: "/app/users?id=1"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"location:  ", "  /\n",
		`rewrite:   rewrite ^/app/(.*)$ /api/$1 (last): $uri /api/users, $args "id=1"`,
		"  /api/\n",
		`rewrite:   rewrite ^/api/(.*)$ /v2/$1 (break): $uri /v2/users, $args "id=1"`,
		"GET /v2/users?id=1 HTTP/1.1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	h.Explain(&out, ExplainRequest{Target: "/r/?go=1"})
	if !strings.Contains(out.String(), "rewrite:   if ($arg_go): true") || !strings.Contains(out.String(), "result:    301 to https://example.org/") {
		t.Errorf("explain of a return in an if:\n%s", out.String())
	}
}

// TestNoScriptNoAllocs: the rewrite module costs nothing where it is not
// used: routing a request to a location without rewrite directives, up
// to its content handler, allocates nothing.
func TestNoScriptNoAllocs(t *testing.T) {
	h, _ := rwHandler(t, `
upstream app { server 127.0.0.1:9; }
map $http_upgrade $connection_upgrade { default upgrade; '' close; }
server {
	listen 127.0.0.1:8080;
	location /ws/ { proxy_pass http://app; proxy_set_header Connection $connection_upgrade; }
	location /other/ { rewrite ^ /x; }
}`)
	r := &http.Request{Method: "GET", RequestURI: "/ws/chat?room=1", Host: "example.com", Header: http.Header{},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "127.0.0.1:50000"}
	q := &request{h: h, r: r, start: time.Now(), scheme: "http", explain: true}
	q.remoteIP, q.remotePort, _ = net.SplitHostPort(r.RemoteAddr)
	q.srv = h.table.Bindings[0].Server("", r.Host)
	w := &responseWriter{ResponseWriter: httptest.NewRecorder(), q: q}
	allocs := testing.AllocsPerRun(200, func() {
		q.uri, q.args, q.hasArgs = "/ws/chat", "room=1", true
		h.process(w, q, 0, false)
	})
	if q.loc == nil || q.loc.Path != "/ws/" || w.wrote {
		t.Fatalf("routed to %v (answered: %v)", q.loc.Name(), w.wrote)
	}
	if allocs != 0 {
		t.Errorf("routing without rewrite directives allocates %.1f times per request", allocs)
	}
}

// BenchmarkRewriteScript is the routing of a request through a server
// if, a location rewrite ... break and a set, up to the content handler.
func BenchmarkRewriteScript(b *testing.B) {
	h, _ := rwHandler(b, `
upstream app { server 127.0.0.1:9; }
server {
	listen 127.0.0.1:8080;
	if ($scheme = "https") { return 301 http://$host$request_uri; }
	location /api/ {
		set $cors "";
		if ($http_origin ~* ^https://(www\.)?example\.com$) { set $cors $http_origin; }
		rewrite ^/api/(.*)$ /$1 break;
		proxy_pass http://app;
	}
}`)
	r := &http.Request{Method: "GET", RequestURI: "/api/users?id=1", Host: "example.com", Header: http.Header{"Origin": {"https://example.com"}},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "127.0.0.1:50000"}
	q := &request{h: h, r: r, start: time.Now(), scheme: "http", explain: true}
	q.remoteIP, q.remotePort, _ = net.SplitHostPort(r.RemoteAddr)
	q.srv = h.table.Bindings[0].Server("", r.Host)
	w := &responseWriter{ResponseWriter: httptest.NewRecorder(), q: q}
	b.ReportAllocs()
	for b.Loop() {
		q.uri, q.args, q.hasArgs = "/api/users", "id=1", true
		q.vars, q.captures = q.vars[:0], nil
		h.process(w, q, 0, false)
	}
	if q.uri != "/users" || w.wrote {
		b.Fatalf("uri %q, answered %v", q.uri, w.wrote)
	}
}
