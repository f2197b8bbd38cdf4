package gateway_test

import (
	"strings"
	"testing"
)

// TestStatic serves files as ngx_http_core_module does: root, alias,
// index, try_files, types, return, error_page, allow/deny; traversal out
// of the root is impossible.
func TestStatic(t *testing.T) {
	t.Parallel()
	prefix := t.TempDir()
	const secret = "TOP SECRET"
	writeFile(t, prefix, "secret.txt", secret)
	writeFile(t, prefix, "www/index.html", "<p>spa</p>")
	writeFile(t, prefix, "www/app.js", "console.log(1)")
	writeFile(t, prefix, "www/style.CSS", "p{}")
	writeFile(t, prefix, "www/dir/index.html", "dir index")
	writeFile(t, prefix, "www/plain/index.html", "plain index")
	writeFile(t, prefix, "www/plain/file.txt", "plain file")
	writeFile(t, prefix, "www/plain/noindex/x.txt", "x")
	writeFile(t, prefix, "www/404.html", "custom not found")
	writeFile(t, prefix, "assets/logo.svg", "<svg/>")
	p := startProxyIn(t, prefix, `
types {
	text/html html;
	application/javascript js;
	text/css css;
	image/svg+xml svg;
}
default_type application/octet-stream;
server {
	listen {{LISTEN}};
	root {{PREFIX}}/www;
	location / { try_files $uri $uri/ /index.html; }
	location /static/ { alias {{PREFIX}}/assets/; }
	location /plain/ { error_page 404 /404.html; }
	location = /404.html { internal; }
	location = /hello { return 200 "hello text"; }
	location = /moved { return 301 https://example.org/new; }
	location = /moved-rel { return 302 /new; }
	location = /gone { return 410; }
	location /private/ { deny all; }
	location /lan/ { allow 10.0.0.0/8; deny all; try_files /none @lan; }
	location /local/ { allow 127.0.0.1; deny all; try_files /none @local; }
	location @lan { return 200 lan; }
	location @local { return 200 local; }
	location /lan-return/ { allow 10.0.0.0/8; deny all; return 200 lan; }
}`)
	tests := []struct {
		desc     string
		method   string
		target   string
		status   int
		body     string // exact body; "" = not checked
		ctype    string // Content-Type prefix; "" = not checked
		location string // Location header; "" = not checked
	}{
		{desc: "file by root", target: "/app.js", status: 200, body: "console.log(1)", ctype: "application/javascript"},
		{desc: "file with a query", target: "/app.js?v=1", status: 200, body: "console.log(1)"},
		{desc: "extension matched case-insensitively", target: "/style.CSS", status: 200, ctype: "text/css"},
		{desc: "SPA fallback for a client route", target: "/some/client/route", status: 200, body: "<p>spa</p>", ctype: "text/html"},
		{desc: "root directory serves its index", target: "/", status: 200, body: "<p>spa</p>"},
		{desc: "directory without slash redirects", target: "/dir", status: 301, location: "/dir/"},
		{desc: "directory with slash serves its index", target: "/dir/", status: 200, body: "dir index"},
		{desc: "index in a location without try_files", target: "/plain/", status: 200, body: "plain index"},
		{desc: "default_type for an unknown extension", target: "/plain/file.txt", status: 200, body: "plain file", ctype: "application/octet-stream"},
		{desc: "directory without index: 403", target: "/plain/noindex/", status: 403},
		{desc: "alias", target: "/static/logo.svg", status: 200, body: "<svg/>", ctype: "image/svg+xml"},
		{desc: "alias missing file", target: "/static/none.svg", status: 404},
		{desc: "error_page keeps the 404 status", target: "/plain/missing", status: 404, body: "custom not found"},
		{desc: "internal location is not reachable from outside", target: "/404.html", status: 404},
		{desc: "POST on a static file: 405", method: "POST", target: "/plain/file.txt", status: 405},
		{desc: "HEAD on a static file", method: "HEAD", target: "/plain/file.txt", status: 200},
		{desc: "return 200 text", target: "/hello", status: 200, body: "hello text", ctype: "application/octet-stream"},
		{desc: "return 301 URL", target: "/moved", status: 301, location: "https://example.org/new"},
		{desc: "return 302 with a relative URI is made absolute", target: "/moved-rel", status: 302, location: "http://example.test:" + port(p.addr) + "/new"},
		{desc: "return code only: the built-in page", target: "/gone", status: 410, body: ""},
		{desc: "deny all", target: "/private/x", status: 403},
		{desc: "allow another network, deny all", target: "/lan/x", status: 403},
		{desc: "allow the client's address", target: "/local/x", status: 200, body: "local"},
		{desc: "return runs before allow/deny (rewrite phase before access, as nginx)", target: "/lan-return/x", status: 200, body: "lan"},
		{desc: "../ above the root", target: "/../secret.txt", status: 400},
		{desc: "%2e%2e above the root", target: "/%2e%2e/secret.txt", status: 400},
		{desc: "%2e%2e%2f above the root", target: "/x/%2e%2e%2f..%2fsecret.txt", status: 400},
		{desc: "alias ../ above the alias", target: "/static/..%2f..%2fsecret.txt", status: 400},
		{desc: "dot segments resolved inside the root", target: "/static/../app.js", status: 200, body: "console.log(1)"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req := rawRequest(method, tc.target, "example.test")
			if method == "POST" {
				req = "POST " + tc.target + " HTTP/1.1\r\nHost: example.test\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
			}
			resp := rawDo(t, p.addr, req)
			if resp.status != tc.status {
				t.Fatalf("%s %s: status %d, want %d (body %q)", method, tc.target, resp.status, tc.status, resp.body)
			}
			if strings.Contains(resp.body, secret) {
				t.Fatalf("%s %s: served a file outside the root", method, tc.target)
			}
			if tc.body != "" && resp.body != tc.body {
				t.Errorf("body %q, want %q", resp.body, tc.body)
			}
			if tc.ctype != "" && !strings.HasPrefix(resp.header.Get("Content-Type"), tc.ctype) {
				t.Errorf("Content-Type %q, want %q", resp.header.Get("Content-Type"), tc.ctype)
			}
			if tc.location != "" {
				want := tc.location
				if strings.HasPrefix(want, "/") {
					want = "http://example.test:" + port(p.addr) + want
				}
				if got := resp.header.Get("Location"); got != want {
					t.Errorf("Location %q, want %q", got, want)
				}
			}
			if method == "HEAD" && resp.body != "" {
				t.Errorf("HEAD response has a body %q", resp.body)
			}
		})
	}
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// TestBugReturnContentType: nginx's "return CODE text" sends the text with
// the Content-Type of the URI's extension from the types map, default_type
// only when there is none (ngx_http_send_response calls
// ngx_http_set_content_type). proxy/handler.go doReturn always uses
// default_type, so "location = /robots.txt { return 200 ...; }" is served
// as application/octet-stream by a config that includes mime.types.
func TestBugReturnContentType(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `
types { text/plain txt; application/json json; }
default_type application/octet-stream;
server {
	listen {{LISTEN}};
	location = /robots.txt { return 200 "User-agent: *\n"; }
	location = /health.json { return 200 '{"ok":true}'; }
	location = /plain { return 200 "no extension"; }
}`)
	tests := []struct{ path, ctype string }{
		{"/robots.txt", "text/plain"},
		{"/health.json", "application/json"},
		{"/plain", "application/octet-stream"},
	}
	for _, tc := range tests {
		resp, _ := get(t, p.url(tc.path))
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
	}
}
