package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// The rewrite module on real sockets: what a client gets and what the
// backend receives (the same behaviours test/e2e/diff_rewrite_test.go
// compares with nginx itself).

// TestRewriteCertbotServer: certbot's generated HTTP server redirects its
// own name to https and answers 404 to everything else.
func TestRewriteCertbotServer(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `
server {
	if ($host = example.com) {
		return 301 https://$host$request_uri;
	}
	listen {{LISTEN}};
	server_name example.com;
	return 404;
}`)
	r := rawGet(t, p.addr, "/a/b?c=1", "example.com")
	if r.status != 301 || r.header.Get("Location") != "https://example.com/a/b?c=1" {
		t.Errorf("example.com: %d Location %q", r.status, r.header.Get("Location"))
	}
	if r := rawGet(t, p.addr, "/a", "other.example"); r.status != 404 {
		t.Errorf("other host: %d, want 404", r.status)
	}
}

// TestRewriteBreakProxied: "rewrite ... break" in a proxied location sends
// the rewritten URI (with the request's arguments) upstream, even when
// proxy_pass has a URI part; set variables reach proxy_set_header.
func TestRewriteBreakProxied(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	p := startProxy(t, `
upstream backend { server `+up.addr()+`; }
server {
	listen {{LISTEN}};
	set $via "wsgate";
	location /api/ {
		rewrite ^/api/(.*)$ /$1 break;
		proxy_pass http://backend;
		proxy_set_header X-Via "$via $1";
	}
	location /v1/ {
		rewrite ^/v1/(.*)$ /users?name=$1 break;
		proxy_pass http://backend/ignored/;
	}
}`)
	for _, tc := range []struct{ target, uri, via string }{
		{"/api/users?id=7", "/users?id=7", "wsgate users"},
		{"/api/a%20b", "/a%20b", "wsgate a b"},
		{"/v1/bob?x=1", "/users?name=bob&x=1", ""},
	} {
		if r := rawGet(t, p.addr, tc.target, "example.test"); r.status != 200 {
			t.Fatalf("%s: %d %q", tc.target, r.status, r.body)
		}
		rec := up.last(t)
		if rec.RequestURI != tc.uri || rec.Header.Get("X-Via") != tc.via {
			t.Errorf("%s: upstream got %s X-Via %q, want %s %q", tc.target, rec.RequestURI, rec.Header.Get("X-Via"), tc.uri, tc.via)
		}
	}
}

// TestRewriteRedirects: permanent and redirect flags, absolute
// replacements, and the request's arguments with and without a trailing ?.
func TestRewriteRedirects(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	rewrite ^/old/(.*)$ /new/$1 permanent;
	rewrite ^/secure https://$host$request_uri? permanent;
	location / {
		rewrite ^/(.*)/$ /$1 redirect;
		rewrite ^/q/(.*)$ /b?x=$1 redirect;
		return 200 "no redirect";
	}
}`)
	base := "http://example.test:" + port(p.addr)
	for _, tc := range []struct {
		target   string
		status   int
		location string
	}{
		{"/old/page?a=1", 301, base + "/new/page?a=1"},
		{"/secure/x?a=1", 301, "https://example.test/secure/x?a=1"},
		{"/dir/sub/", 302, base + "/dir/sub"},
		{"/q/1?a=2", 302, base + "/b?x=1&a=2"},
		{"/plain", 200, ""},
	} {
		r := rawGet(t, p.addr, tc.target, "example.test:"+port(p.addr))
		if r.status != tc.status || r.header.Get("Location") != tc.location {
			t.Errorf("%s: %d Location %q, want %d %q", tc.target, r.status, r.header.Get("Location"), tc.status, tc.location)
		}
	}
}

// TestRewriteLastAndCycle: "last" searches the locations again with the
// new URI; more than ten searches end in 500 with nginx's error line.
func TestRewriteLastAndCycle(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location / { rewrite ^/app/(.*)$ /svc/$1 last; return 404; }
	location /svc/ { proxy_pass http://`+up.addr()+`; }
	location /loop/ { rewrite ^/loop/(.*)$ /loop/$1 last; }
}`)
	if r := rawGet(t, p.addr, "/app/x?y=1", "example.test"); r.status != 200 || up.last(t).RequestURI != "/svc/x?y=1" {
		t.Errorf("last: %d, upstream %q", r.status, up.last(t).RequestURI)
	}
	if r := rawGet(t, p.addr, "/loop/x", "example.test"); r.status != 500 {
		t.Errorf("loop: %d, want 500", r.status)
	}
	if !strings.Contains(p.elog.String(), `rewrite or internal redirection cycle while processing "/loop/x"`) {
		t.Errorf("no cycle line in the error log:\n%s", p.elog.String())
	}
}

// TestRewriteIfInLocation: the CORS preflight idiom (add_header and return
// in an if) and the CORS origin check with set; a GET goes upstream with
// the location's own headers only.
func TestRewriteIfInLocation(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location / {
		set $cors "";
		if ($http_origin ~* ^https://(www\.)?example\.com$) { set $cors $http_origin; }
		if ($request_method = 'OPTIONS') {
			add_header 'Access-Control-Allow-Origin' '*';
			add_header 'Access-Control-Max-Age' 1728000;
			return 204;
		}
		add_header Access-Control-Allow-Origin $cors;
		proxy_pass http://`+up.addr()+`;
	}
}`)
	r := rawDo(t, p.addr, rawRequest("OPTIONS", "/api", "example.test", "Origin: https://a.example"))
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Max-Age") != "1728000" {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
	if n := len(up.records()); n != 0 {
		t.Errorf("the preflight reached the backend")
	}
	r = rawGet(t, p.addr, "/api", "example.test", "Origin: https://www.example.com")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://www.example.com" || r.header.Get("Access-Control-Max-Age") != "" {
		t.Errorf("allowed origin: %d %v", r.status, r.header)
	}
	r = rawGet(t, p.addr, "/api", "example.test", "Origin: https://evil.example")
	if _, ok := r.header["Access-Control-Allow-Origin"]; ok || r.status != 200 {
		t.Errorf("other origin: %d %v", r.status, r.header)
	}
}

// TestRewriteFileTests: if (!-f $request_filename) { proxy_pass ...;
// break; } serves existing files and proxies the rest; -d, -e and -x.
func TestRewriteFileTests(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	prefix := t.TempDir()
	writeFile(t, prefix, "www/index.txt", "static file")
	writeFile(t, prefix, "www/dir/x", "")
	writeFile(t, prefix, "www/run.sh", "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(prefix, "www/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startProxyIn(t, prefix, `
server {
	listen {{LISTEN}};
	root {{PREFIX}}/www;
	location / {
		if (-d $request_filename) { return 200 "dir"; }
		if (!-f $request_filename) { proxy_pass http://`+up.addr()+`; break; }
	}
	location ~ ^/t(/.*)$ {
		set $f $document_root$1;
		set $r "";
		if (-e $f) { set $r "${r}e"; }
		if (-x $f) { set $r "${r}x"; }
		if (!-e $f) { set $r "${r}!e"; }
		return 200 "[$r]";
	}
}`)
	for _, tc := range []struct{ target, body string }{
		{"/index.txt", "static file"},
		{"/dir/", "dir"},
		{"/app/route", "up"},
	} {
		if r := rawGet(t, p.addr, tc.target, "example.test"); r.status != 200 || r.body != tc.body {
			t.Errorf("%s: %d %q, want %q", tc.target, r.status, r.body, tc.body)
		}
	}
	if up.last(t).RequestURI != "/app/route" {
		t.Errorf("upstream got %q", up.last(t).RequestURI)
	}
	for _, tc := range []struct{ target, body string }{
		{"/t/run.sh", "[ex]"},
		{"/t/index.txt", "[e]"},
		{"/t/none", "[!e]"},
	} {
		if r := rawGet(t, p.addr, tc.target, "example.test"); r.status != 200 || r.body != tc.body {
			t.Errorf("%s: %d %q, want %q", tc.target, r.status, r.body, tc.body)
		}
	}
}

// TestRewriteWebSocket: a WebSocket handshake through a rewritten
// location reaches the backend with the rewritten URI and works.
func TestRewriteWebSocket(t *testing.T) {
	t.Parallel()
	up := newWSEcho(t)
	p := startProxy(t, `
map $http_upgrade $connection_upgrade { default upgrade; '' close; }
server {
	listen {{LISTEN}};
	location /socket/ {
		rewrite ^/socket/(.*)$ /ws/$1 break;
		proxy_pass http://`+up.addr()+`;
		proxy_http_version 1.1;
		proxy_set_header Upgrade $http_upgrade;
		proxy_set_header Connection $connection_upgrade;
	}
}`)
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/socket/chat?room=1", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "hi" {
		t.Fatalf("echo: %q %v", b, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	if got := up.last(t).RequestURI; got != "/ws/chat?room=1" {
		t.Errorf("upstream URI %q", got)
	}
}

// TestRewriteLog: rewrite_log on writes nginx's notice lines for each
// regex tested and each rewritten URI to the error log.
func TestRewriteLog(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	rewrite_log on;
	location / {
		rewrite ^/nomatch /x;
		rewrite ^/a/(.*)$ /b/$1?k=v last;
		return 200 "$uri $args";
	}
}`)
	if r := rawGet(t, p.addr, "/a/1?z=2", "example.test"); r.status != 200 || r.body != "/b/1 k=v&z=2" {
		t.Errorf("%d %q", r.status, r.body)
	}
	logs := p.elog.String()
	for _, want := range []string{
		`[notice] "^/nomatch" does not match "/a/1"`,
		`[notice] "^/a/(.*)$" matches "/a/1"`,
		`[notice] rewritten data: "/b/1", args: "k=v&z=2"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("error log lacks %q:\n%s", want, logs)
		}
	}
}

// TestRewriteSetInLogAndMap: set variables reach log_format and map
// sources; an if's access_log replaces the location's.
func TestRewriteSetInLogAndMap(t *testing.T) {
	t.Parallel()
	prefix := t.TempDir()
	p := startProxyIn(t, prefix, `
log_format tagged '$tag $mapped $uri';
map $tag $mapped { default plain; gold vip; }
server {
	listen {{LISTEN}};
	access_log {{PREFIX}}/access.log tagged;
	location / {
		set $tag "$arg_t";
		if ($arg_quiet) { access_log {{PREFIX}}/quiet.log tagged; }
		rewrite ^/old/(.*)$ /new/$1;
		return 200 "$mapped";
	}
}`)
	if r := rawGet(t, p.addr, "/old/x?t=gold", "example.test"); r.status != 200 || r.body != "vip" {
		t.Errorf("map of a set variable: %d %q", r.status, r.body)
	}
	waitForLog(t, filepath.Join(prefix, "access.log"), "gold vip /new/x")
	rawGet(t, p.addr, "/y?t=tin&quiet=1", "example.test")
	waitForLog(t, filepath.Join(prefix, "quiet.log"), "tin plain /y")
}
