package route_test

import (
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/route"
)

// compile builds a configuration from an http-level body.
func compile(t *testing.T, body string) *config.Config {
	t.Helper()
	prefix := t.TempDir()
	name := filepath.Join(prefix, "wsgate.conf")
	src := "events {}\nhttp {\naccess_log off;\n" + body + "\n}\n"
	tree, err := config.ParseBytes(name, []byte(src), prefix)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	cfg, err := config.Compile(name, prefix, tree, config.Options{Prefix: prefix, SkipResolve: true})
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, src)
	}
	return cfg
}

// TestFindLocation follows ngx_http_core_module "location": exact match
// first, then the longest prefix; "^~" on it skips regexes; otherwise
// regexes in configuration order, those nested in the matched prefix
// first; then the remembered prefix.
func TestFindLocation(t *testing.T) {
	t.Parallel()
	cfg := compile(t, `
server {
	listen 127.0.0.1:8080;
	# the example of the nginx documentation
	location = / { return 200 A; }
	location / { return 200 B; }
	location /documents/ { return 200 C; }
	location ^~ /images/ { return 200 D; }
	location ~* \.(gif|jpg|jpeg)$ { return 200 E; }

	location /nest/ {
		location ~ \.php$ { return 200 nested-php; }
		location /nest/deep/ {
			location ~ \.php$ { return 200 deep-php; }
		}
		location ^~ /nest/img/ { return 200 nested-noregex; }
		location = /nest/exact { return 200 nested-exact; }
	}
	location ~ \.php$ { return 200 top-php; }
	location ~ ^/order/a { return 200 first-regex; }
	location ~ ^/order/ { return 200 second-regex; }
	location /order/ { return 200 order-prefix; }
	location ~ ^/cap/(\w+)/(\d+)$ { return 200 cap; }
	location /longest/ { return 200 short; }
	location /longest/path/ { return 200 long; }
	location /api { return 200 api-noslash; }
	location /exact { return 200 prefix-exact; }
	location = /exact { return 200 eq-exact; }
}`)
	srv := cfg.HTTP.Servers[0]
	name := func(l *config.Location) string {
		if l == nil {
			return "<nil>"
		}
		for _, op := range l.Script {
			if op.Return != nil {
				return op.Return.Text.Raw()
			}
		}
		return l.Name()
	}
	tests := []struct {
		desc, uri, want string
	}{
		{desc: "= / wins for /", uri: "/", want: "A"},
		{desc: "/ for other URIs", uri: "/index.html", want: "B"},
		{desc: "longest prefix /documents/", uri: "/documents/document.html", want: "C"},
		{desc: "^~ /images/ stops the regex search", uri: "/images/1.gif", want: "D"},
		{desc: "regex beats a plain prefix", uri: "/documents/1.jpg", want: "E"},
		{desc: "~* is case-insensitive", uri: "/documents/1.JPG", want: "E"},
		{desc: "regex nested in the matched prefix is tried first", uri: "/nest/a.php", want: "nested-php"},
		{desc: "nested prefix inside a prefix", uri: "/nest/deep/x", want: "/nest/deep/"},
		{desc: "the nested prefix's own regex first", uri: "/nest/deep/x.php", want: "deep-php"},
		{desc: "nested = match", uri: "/nest/exact", want: "nested-exact"},
		{desc: "nested ^~ keeps its own level from regexes but not the outer level's", uri: "/nest/img/a.php", want: "top-php"},
		{desc: "nested ^~ without a matching regex", uri: "/nest/img/a.png", want: "nested-noregex"},
		{desc: "outer prefix when nothing nested matches", uri: "/nest/other", want: "/nest/"},
		{desc: "top regex outside the prefix", uri: "/x/y.php", want: "top-php"},
		{desc: "first regex in config order wins", uri: "/order/abc", want: "first-regex"},
		{desc: "second regex when the first does not match", uri: "/order/zzz", want: "second-regex"},
		{desc: "longest prefix, not the first", uri: "/longest/path/x", want: "long"},
		{desc: "shorter prefix", uri: "/longest/pat", want: "short"},
		{desc: "prefix without slash matches longer names", uri: "/apix", want: "api-noslash"},
		{desc: "= beats an equal prefix", uri: "/exact", want: "eq-exact"},
		{desc: "prefix after = does not match the exact URI only", uri: "/exactly", want: "prefix-exact"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			m := route.Find(srv, tc.uri)
			if m.Redirect {
				t.Fatalf("Find(%q) redirects", tc.uri)
			}
			if got := name(m.Location); got != tc.want {
				t.Errorf("Find(%q) = %q, want %q", tc.uri, got, tc.want)
			}
		})
	}
	t.Run("captures", func(t *testing.T) {
		t.Parallel()
		m := route.Find(srv, "/cap/abc/42")
		if len(m.Captures) != 3 || m.Captures[1] != "abc" || m.Captures[2] != "42" {
			t.Errorf("captures = %q, want [/cap/abc/42 abc 42]", m.Captures)
		}
	})
}

// TestFindAutoRedirect: a prefix location ending in "/" handled by
// proxy_pass answers its name without the slash with a redirect, unless a
// location equal to that URI exists; the redirect wins over regexes.
func TestFindAutoRedirect(t *testing.T) {
	t.Parallel()
	cfg := compile(t, `
server {
	listen 127.0.0.1:8080;
	location / { return 200 root; }
	location /app/ { proxy_pass http://127.0.0.1:9; }
	location /static/ { return 200 static; }
	location /both/ { proxy_pass http://127.0.0.1:9; }
	location /both { return 200 both; }
	location /eq/ { proxy_pass http://127.0.0.1:9; }
	location = /eq { return 200 eq; }
	location ~ ^/app$ { return 200 regex; }
	location /outer/ {
		location /outer/inner/ { proxy_pass http://127.0.0.1:9; }
	}
}`)
	srv := cfg.HTTP.Servers[0]
	tests := []struct {
		desc     string
		uri      string
		redirect bool
		want     string
	}{
		{desc: "proxied /app/ redirects /app, even over a matching regex", uri: "/app", redirect: true},
		{desc: "/app/ itself", uri: "/app/", want: "/app/"},
		{desc: "non-proxied location does not redirect", uri: "/static", want: "/"},
		{desc: "a prefix location equal to the URI", uri: "/both", want: "/both"},
		{desc: "an exact location equal to the URI", uri: "/eq", want: "= /eq"},
		{desc: "nested proxied prefix", uri: "/outer/inner", redirect: true},
		{desc: "longer URI is no redirect", uri: "/appx", want: "/"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			m := route.Find(srv, tc.uri)
			if m.Redirect != tc.redirect {
				t.Fatalf("Find(%q).Redirect = %v, want %v", tc.uri, m.Redirect, tc.redirect)
			}
			if !tc.redirect && m.Location.Name() != tc.want {
				t.Errorf("Find(%q) = %q, want %q", tc.uri, m.Location.Name(), tc.want)
			}
		})
	}
}

// TestServerName follows ngx_http_core_module "server_name" and "How nginx
// processes a request": exact name, longest wildcard starting with "*",
// longest wildcard ending with "*", first regex in configuration order,
// then the default server of the listen socket (default_server, else the
// first server).
func TestServerName(t *testing.T) {
	t.Parallel()
	cfg := compile(t, `
server { listen 127.0.0.1:8080; server_name first.test; }
server { listen 127.0.0.1:8080; server_name example.com www.example.com; }
server { listen 127.0.0.1:8080; server_name *.example.com; }
server { listen 127.0.0.1:8080; server_name *.api.example.com; }
server { listen 127.0.0.1:8080; server_name www.example.*; }
server { listen 127.0.0.1:8080; server_name .dot.test; }
server { listen 127.0.0.1:8080; server_name ~^re\d+\.test$; }
server { listen 127.0.0.1:8080; server_name ~^re.*\.test$; }
server { listen 127.0.0.1:8080; server_name ~^www\..*\.org$ noname.test; }
server { listen 127.0.0.1:8080; server_name ""; }
server { listen 127.0.0.1:9090; server_name a.test; }
server { listen 127.0.0.1:9090 default_server; server_name b.test; }
`)
	tbl := route.Build(cfg.HTTP)
	primary := func(s *config.Server) string {
		if s == nil {
			return "<nil>"
		}
		if s.PrimaryName == "" {
			return `""`
		}
		return s.PrimaryName
	}
	tests := []struct {
		desc, bind, host, want string
	}{
		{desc: "exact", bind: "127.0.0.1:8080", host: "www.example.com", want: "example.com"},
		{desc: "exact beats wildcards", bind: "127.0.0.1:8080", host: "example.com", want: "example.com"},
		{desc: "leading wildcard", bind: "127.0.0.1:8080", host: "mail.example.com", want: "*.example.com"},
		{desc: "longest leading wildcard", bind: "127.0.0.1:8080", host: "v1.api.example.com", want: "*.api.example.com"},
		{desc: "*.x does not match x itself", bind: "127.0.0.1:8080", host: "api.example.com", want: "*.example.com"},
		{desc: "trailing wildcard beats a matching regex", bind: "127.0.0.1:8080", host: "www.example.org", want: "www.example.*"},
		{desc: "trailing wildcard, another TLD", bind: "127.0.0.1:8080", host: "www.example.net", want: "www.example.*"},
		{desc: ".dot matches the bare name", bind: "127.0.0.1:8080", host: "dot.test", want: ".dot.test"},
		{desc: ".dot matches subdomains", bind: "127.0.0.1:8080", host: "a.b.dot.test", want: ".dot.test"},
		{desc: "first regex in config order", bind: "127.0.0.1:8080", host: "re42.test", want: `~^re\d+\.test$`},
		{desc: "second regex when the first fails", bind: "127.0.0.1:8080", host: "rex.test", want: `~^re.*\.test$`},
		{desc: "regex", bind: "127.0.0.1:8080", host: "www.foo.org", want: `~^www\..*\.org$`},
		{desc: "regex server by its later exact name", bind: "127.0.0.1:8080", host: "noname.test", want: `~^www\..*\.org$`},
		{desc: "uppercase host", bind: "127.0.0.1:8080", host: "WWW.Example.COM", want: "example.com"},
		{desc: "host with port", bind: "127.0.0.1:8080", host: "www.example.com:8080", want: "example.com"},
		{desc: "trailing dot", bind: "127.0.0.1:8080", host: "www.example.com.", want: "example.com"},
		{desc: "uppercase, trailing dot and port", bind: "127.0.0.1:8080", host: "Mail.Example.Com.:8080", want: "*.example.com"},
		{desc: "no Host: the empty name", bind: "127.0.0.1:8080", host: "", want: `""`},
		{desc: "unknown host: first server is the default", bind: "127.0.0.1:8080", host: "nowhere.test", want: "first.test"},
		{desc: "IP literal host: default", bind: "127.0.0.1:8080", host: "127.0.0.1:8080", want: "first.test"},
		{desc: "IPv6 literal host: default", bind: "127.0.0.1:8080", host: "[::1]:8080", want: "first.test"},
		{desc: "default_server beats first", bind: "127.0.0.1:9090", host: "nowhere.test", want: "b.test"},
		{desc: "names still win over default_server", bind: "127.0.0.1:9090", host: "a.test", want: "a.test"},
		{desc: "servers of another port are not candidates", bind: "127.0.0.1:9090", host: "example.com", want: "b.test"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := tbl.Binding(tc.bind)
			if b == nil {
				t.Fatalf("no binding %s", tc.bind)
			}
			s := b.Server("127.0.0.1", tc.host)
			got := primary(s)
			if got != tc.want {
				t.Errorf("Server(%q) = %s, want %s", tc.host, got, tc.want)
			}
		})
	}
}

// TestBuildWildcardListen: with a wildcard listen on a port, wsgate binds
// the wildcard only and picks among servers by the local address, as
// nginx does with "bind" absent.
func TestBuildWildcardListen(t *testing.T) {
	t.Parallel()
	cfg := compile(t, `
server { listen 8080; server_name any.test; }
server { listen 127.0.0.1:8080; server_name lo.test; }
server { listen 127.0.0.2:8080 default_server; server_name lo2.test; }
`)
	tbl := route.Build(cfg.HTTP)
	if len(tbl.Bindings) != 1 || tbl.Bindings[0].Addr != ":8080" {
		var addrs []string
		for _, b := range tbl.Bindings {
			addrs = append(addrs, b.Addr)
		}
		t.Fatalf("bindings %q, want [:8080]", addrs)
	}
	b := tbl.Binding(":8080")
	tests := []struct {
		desc, local, host, want string
	}{
		{desc: "127.0.0.1 has its own server set", local: "127.0.0.1", host: "any.test", want: "lo.test"},
		{desc: "127.0.0.2 default_server", local: "127.0.0.2", host: "x", want: "lo2.test"},
		{desc: "other address: the wildcard's servers", local: "10.0.0.1", host: "x", want: "any.test"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if got := b.Server(tc.local, tc.host); got == nil || got.PrimaryName != tc.want {
				t.Errorf("Server(%s, %q) = %v, want %s", tc.local, tc.host, got, tc.want)
			}
		})
	}
}

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Example.COM", "example.com"},
		{"example.com:80", "example.com"},
		{"example.com.", "example.com"},
		{"example.com.:443", "example.com"},
		{"[::1]:8080", "::1"},
		{"[::1]", "::1"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := route.NormalizeHost(tc.in); got != tc.want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestFindAutoRedirectExactLocation: nginx sets auto_redirect on any
// location whose name ends in "/" and whose handler is proxy_pass, exact
// ones included (ngx_http_proxy_pass; ngx_http_create_locations_tree
// copies it from lq->exact too), so "location = /x/ { proxy_pass ...; }"
// answers "/x" with a 301 to "/x/".
func TestFindAutoRedirectExactLocation(t *testing.T) {
	t.Parallel()
	cfg := compile(t, `
server {
	listen 127.0.0.1:8080;
	location / { return 200 root; }
	location = /x/ { proxy_pass http://127.0.0.1:9; }
}`)
	m := route.Find(cfg.HTTP.Servers[0], "/x")
	if !m.Redirect {
		t.Errorf("Find(/x) = %q without redirect; nginx answers 301 to /x/", m.Location.Name())
	}
}

// TestDefaultServer: the default server of a socket and local address
// (where nginx takes connection-level settings such as
// client_header_timeout) is the server chosen for a Host that no
// server_name matches: "default_server" if a listen says so, else the
// first server listening there.
func TestDefaultServer(t *testing.T) {
	cfg := compile(t, `
server { listen 127.0.0.1:8001; server_name a; }
server { listen 127.0.0.1:8001 default_server; server_name b; }
server { listen 8002; server_name c; }
server { listen 127.0.0.2:8002; server_name d; }
server { listen 127.0.0.2:8002 default_server; server_name e; }
server { listen [::1]:8003; listen 127.0.0.1:8003; server_name f; }
server { listen 127.0.0.1:8003 default_server; server_name g; }
server { listen 0.0.0.0:8004; server_name h; }
server { listen 8004 default_server; server_name i; }
`)
	table := route.Build(cfg.HTTP)
	name := func(s *config.Server) string {
		if s == nil {
			return "<nil>"
		}
		return s.Names[0].Exact
	}
	want := map[string]string{
		"127.0.0.1:8001 127.0.0.1": "b",
		":8002 127.0.0.1":          "c", // the wildcard's group
		":8002 127.0.0.2":          "e",
		"[::1]:8003 ::1":           "f",
		"127.0.0.1:8003 127.0.0.1": "g",
		":8004 127.0.0.1":          "i",
	}
	for k, w := range want {
		var addr, ip string
		for i := len(k) - 1; i >= 0; i-- {
			if k[i] == ' ' {
				addr, ip = k[:i], k[i+1:]
				break
			}
		}
		b := table.Binding(addr)
		if b == nil {
			t.Errorf("no binding %s", addr)
			continue
		}
		if got := name(b.Default(ip)); got != w {
			t.Errorf("Default(%s) on %s = %s, want %s", ip, addr, got, w)
		}
	}
	for _, b := range table.Bindings {
		for _, ip := range []string{"127.0.0.1", "127.0.0.2", "::1", "10.0.0.1"} {
			if d, s := b.Default(ip), b.Server(ip, "no.such.name.invalid"); d != s {
				t.Errorf("bind %s, local %s: Default is %s, an unmatched Host gets %s", b.Addr, ip, name(d), name(s))
			}
		}
	}
}
