package gateway_test

import (
	"strings"
	"testing"
)

// TestProxyPassURI checks the request target the upstream receives, per
// ngx_http_proxy_module's proxy_pass rules: "If proxy_pass is specified
// with a URI, the part of a normalized request URI matching the location
// is replaced by the URI; without a URI, the request URI is passed in the
// same form as sent by the client, or the full normalized URI when it was
// changed". The expectations match test/e2e/diff_test.go, which checks them
// against nginx itself.
func TestProxyPassURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		locations string
		target    string
		status    int
		backend   string // "" = not forwarded
		uri       string
	}{
		{desc: "slash prefix, no URI: as sent", locations: `location /app/ { proxy_pass http://up; }`, target: "/app/x?y=1", status: 200, backend: "up", uri: "/app/x?y=1"},
		{desc: "slash prefix, no URI: escapes kept as sent", locations: `location /app/ { proxy_pass http://up; }`, target: "/app/a%20b/c%2Fd?q=%2F&r=a%20b", status: 200, backend: "up", uri: "/app/a%20b/c%2Fd?q=%2F&r=a%20b"},
		{desc: "slash prefix, no URI: double slashes kept", locations: `location /app/ { proxy_pass http://up; }`, target: "/app//x//y", status: 200, backend: "up", uri: "/app//x//y"},
		{desc: "slash prefix, no URI: dot segments kept", locations: `location /app/ { proxy_pass http://up; }`, target: "/app/./x/../y", status: 200, backend: "up", uri: "/app/./x/../y"},
		{desc: "slash prefix, URI /: prefix replaced", locations: `location /app/ { proxy_pass http://up/; }`, target: "/app/x?y=1", status: 200, backend: "up", uri: "/x?y=1"},
		{desc: "slash prefix, URI /: the prefix itself", locations: `location /app/ { proxy_pass http://up/; }`, target: "/app/", status: 200, backend: "up", uri: "/"},
		{desc: "slash prefix, URI /: %20 re-escaped", locations: `location /app/ { proxy_pass http://up/; }`, target: "/app/a%20b", status: 200, backend: "up", uri: "/a%20b"},
		{desc: "slash prefix, URI /: %2F decoded", locations: `location /app/ { proxy_pass http://up/; }`, target: "/app/a%2Fb", status: 200, backend: "up", uri: "/a/b"},
		{desc: "slash prefix, URI /: // merged", locations: `location /app/ { proxy_pass http://up/; }`, target: "/app//x", status: 200, backend: "up", uri: "/x"},
		{desc: "slash prefix, URI /: dots resolved", locations: `location /app/ { proxy_pass http://up/; }`, target: "/app/./x/../y", status: 200, backend: "up", uri: "/y"},
		{desc: "slash prefix, URI /: %3F stays escaped", locations: `location /app/ { proxy_pass http://up/; }`, target: "/app/a+b%3Fc", status: 200, backend: "up", uri: "/a+b%3Fc"},
		{desc: "slash prefix, URI /: UTF-8 re-escaped", locations: `location /app/ { proxy_pass http://up/; }`, target: "/app/caf%C3%A9", status: 200, backend: "up", uri: "/caf%C3%A9"},
		{desc: "slash prefix, URI /: %7E unescaped", locations: `location /app/ { proxy_pass http://up/; }`, target: "/app/%7Euser", status: 200, backend: "up", uri: "/~user"},
		{desc: "slash prefix, URI /: %25 stays %25", locations: `location / { proxy_pass http://up/; }`, target: "/a%25b", status: 200, backend: "up", uri: "/a%25b"},
		{desc: "no-slash prefix, URI /: double slash", locations: `location /app { proxy_pass http://up/; }`, target: "/app/x", status: 200, backend: "up", uri: "//x"},
		{desc: "no-slash prefix, URI /: suffix appended", locations: `location /app { proxy_pass http://up/; }`, target: "/appx", status: 200, backend: "up", uri: "/x"},
		{desc: "no-slash prefix, URI /: exact prefix", locations: `location /app { proxy_pass http://up/; }`, target: "/app?q=1", status: 200, backend: "up", uri: "/?q=1"},
		{desc: "no-slash prefix, no URI", locations: `location /app { proxy_pass http://up; }`, target: "/appx?a=1", status: 200, backend: "up", uri: "/appx?a=1"},
		{desc: "slash prefix, URI /x/", locations: `location /app/ { proxy_pass http://up/x/; }`, target: "/app/a/b?c=d", status: 200, backend: "up", uri: "/x/a/b?c=d"},
		{desc: "no-slash prefix, URI /x/", locations: `location /app { proxy_pass http://up/x/; }`, target: "/app/a", status: 200, backend: "up", uri: "/x//a"},
		{desc: "slash prefix, URI /x (no slash)", locations: `location /app/ { proxy_pass http://up/x; }`, target: "/app/a", status: 200, backend: "up", uri: "/xa"},
		{desc: "= location, no URI", locations: `location = /exact { proxy_pass http://up; }`, target: "/exact?q=1", status: 200, backend: "up", uri: "/exact?q=1"},
		{desc: "= location, no URI, other path 404", locations: `location = /exact { proxy_pass http://up; }`, target: "/exact/", status: 404},
		{desc: "= location with URI", locations: `location = /exact { proxy_pass http://up/other; }`, target: "/exact?q=1", status: 200, backend: "up", uri: "/other?q=1"},
		{desc: "regex location, no URI: as sent", locations: `location ~ ^/re/(.*)$ { proxy_pass http://up; }`, target: "/re/a%20b?x=1", status: 200, backend: "up", uri: "/re/a%20b?x=1"},
		{desc: "regex location is case-sensitive", locations: `location ~ ^/re/(.*)$ { proxy_pass http://up; }`, target: "/RE/x", status: 404},
		{desc: "~* location", locations: `location ~* \.(php|cgi)$ { proxy_pass http://up; }`, target: "/Index.PHP", status: 200, backend: "up", uri: "/Index.PHP"},
		{desc: "capture in proxy_pass: no args added", locations: `location ~ ^/cap/(.*)$ { proxy_pass http://up/$1; }`, target: "/cap/foo?x=1", status: 200, backend: "up", uri: "/foo"},
		{desc: "empty query dropped", locations: `location /q/ { proxy_pass http://up/z/; }`, target: "/q/a?", status: 200, backend: "up", uri: "/z/a"},
		{desc: "query passed raw", locations: `location /q/ { proxy_pass http://up/z/; }`, target: "/q/a?b=c&d=%20&e=%2F&f", status: 200, backend: "up", uri: "/z/a?b=c&d=%20&e=%2F&f"},
		{desc: "^~ beats regex", locations: "location ^~ /static/ { proxy_pass http://up; }\nlocation ~ \\.js$ { proxy_pass http://up2; }", target: "/static/a.js", status: 200, backend: "up", uri: "/static/a.js"},
		{desc: "regex beats plain prefix", locations: "location /static/ { proxy_pass http://up; }\nlocation ~ \\.js$ { proxy_pass http://up2; }", target: "/static/a.js", status: 200, backend: "up2", uri: "/static/a.js"},
		{desc: "..  above root is 400", locations: `location / { proxy_pass http://up/; }`, target: "/../etc/passwd", status: 400},
		{
			// nginx 1.22.1 (checked): the redirect target has no "?", so
			// the request's arguments are dropped
			desc:      "try_files redirect, then proxy_pass without URI: normalized URI, re-escaped, args dropped",
			locations: "location / { try_files /nonexistent /app$uri; }\nlocation /app/ { proxy_pass http://up; }",
			target:    "/a%20b//c?x=1", status: 200, backend: "up", uri: "/app/a%20b/c",
		},
		{
			desc:      "try_files to a named location: the URI is unchanged, passed as sent",
			locations: "location / { try_files /nonexistent @app; }\nlocation @app { proxy_pass http://up; }",
			target:    "/a%20b//c?x=1", status: 200, backend: "up", uri: "/a%20b//c?x=1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			up, up2 := newRecorder(t, "up"), newRecorder(t, "up2")
			p := startProxy(t, `
upstream up { server `+up.addr()+`; }
upstream up2 { server `+up2.addr()+`; }
server {
	listen {{LISTEN}};
	`+tc.locations+`
}`)
			resp := rawGet(t, p.addr, tc.target, "example.test")
			if resp.status != tc.status {
				t.Errorf("GET %s: status %d, want %d (body %q)", tc.target, resp.status, tc.status, resp.body)
			}
			all := map[string]*recorder{"up": up, "up2": up2}
			for name, rc := range all {
				rs := rc.records()
				if name != tc.backend && len(rs) > 0 {
					t.Errorf("GET %s: backend %s got %s, want nothing there", tc.target, name, rs[0].RequestURI)
				}
				if name == tc.backend {
					if len(rs) != 1 {
						t.Fatalf("GET %s: backend %s got %d requests, want 1", tc.target, name, len(rs))
					}
					if rs[0].RequestURI != tc.uri {
						t.Errorf("GET %s: upstream request target %q, want %q", tc.target, rs[0].RequestURI, tc.uri)
					}
				}
			}
		})
	}
}

// TestAutoRedirect: a prefix location ending in "/" whose handler is
// proxy_pass answers "/x" with 301 to "/x/" (args kept) unless a location
// for "/x" itself exists (ngx_http_core_module "location", last paragraph).
func TestAutoRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		locations string
		target    string
		status    int
		location  string // Location header path, "" = none
		backend   bool
	}{
		{desc: "proxied /x/ redirects /x", locations: `location /x/ { proxy_pass http://up; }`, target: "/x", status: 301, location: "/x/"},
		{desc: "args kept", locations: `location /x/ { proxy_pass http://up; }`, target: "/x?a=1", status: 301, location: "/x/?a=1"},
		{desc: "exact /x location wins", locations: "location /x/ { proxy_pass http://up; }\nlocation = /x { return 200 exact; }", target: "/x", status: 200},
		{desc: "prefix /x location wins", locations: "location /x/ { proxy_pass http://up; }\nlocation /x { proxy_pass http://up; }", target: "/x", status: 200, backend: true},
		{desc: "non-proxied /x/ does not redirect", locations: "location /x/ { return 200 slash; }\nlocation / { return 200 root; }", target: "/x", status: 200},
		{desc: "nested longest prefix /a/b/ redirects /a/b", locations: "location /a/ { proxy_pass http://up; }\nlocation /a/b/ { proxy_pass http://up/; }", target: "/a/b", status: 301, location: "/a/b/"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			up := newRecorder(t, "up")
			p := startProxy(t, `
upstream up { server `+up.addr()+`; }
server {
	listen {{LISTEN}};
	`+tc.locations+`
}`)
			resp := rawGet(t, p.addr, tc.target, "example.test")
			if resp.status != tc.status {
				t.Fatalf("GET %s: status %d, want %d", tc.target, resp.status, tc.status)
			}
			if tc.location != "" {
				want := "http://example.test:" + p.addr[strings.LastIndexByte(p.addr, ':')+1:] + tc.location
				if got := resp.header.Get("Location"); got != want {
					t.Errorf("Location %q, want %q", got, want)
				}
			}
			if got := len(up.records()) > 0; got != tc.backend {
				t.Errorf("forwarded = %v, want %v", got, tc.backend)
			}
		})
	}
}
