package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/vars"
)

// loadSrc writes src to a temporary test.conf and loads it without
// resolving host names.
func loadSrc(t *testing.T, src string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "test.conf")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(path, Options{SkipResolve: true})
}

func mustLoad(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := loadSrc(t, src)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return cfg
}

// findLoc returns the location of the first server written as name
// ("/a", "= /x", "~ ^/y", "@n"), searching nested locations too.
func findLoc(t *testing.T, cfg *Config, name string) *Location {
	t.Helper()
	srv := cfg.HTTP.Servers[0]
	var walk func([]*Location) *Location
	walk = func(ls []*Location) *Location {
		for _, l := range ls {
			if l.Name() == name {
				return l
			}
			if f := walk(l.Children); f != nil {
				return f
			}
		}
		return nil
	}
	if l := walk(srv.Locations); l != nil {
		return l
	}
	if strings.HasPrefix(name, "@") && srv.Named[name[1:]] != nil {
		return srv.Named[name[1:]]
	}
	t.Fatalf("no location %q", name)
	return nil
}

// mapResolver is a fixed set of variables.
type mapResolver map[string]string

func (m mapResolver) Var(name string) (string, bool) { v, ok := m[name]; return v, ok }

func setHeaders(s *Settings) string {
	var out []string
	for _, h := range s.ProxySetHeaders {
		out = append(out, h.Name+": "+h.Value.Raw())
	}
	return strings.Join(out, "; ")
}

func addHeaders(s *Settings) string {
	var out []string
	for _, h := range s.AddHeaders {
		a := ""
		if h.Always {
			a = " always"
		}
		out = append(out, h.Name+": "+h.Value.Raw()+a)
	}
	return strings.Join(out, "; ")
}

// TestLoadErrorsGolden loads every testdata/errors/*.conf and compares
// the full error list, one "FILE:LINE: message" per line, with its golden.
func TestLoadErrorsGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "errors", "*.conf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			_, err := Load(f, Options{SkipResolve: true})
			if err == nil {
				t.Fatalf("want errors, got none")
			}
			var b strings.Builder
			for _, e := range Errors(err) {
				if e.File != f || e.Line == 0 {
					t.Errorf("error not located in %s: %v", f, e)
				}
				b.WriteString(e.Error() + "\n")
			}
			checkGolden(t, strings.TrimSuffix(f, ".conf")+".golden", b.String())
		})
	}
}

// TestLoadReportsEveryError checks that one Load reports problems from
// different servers, locations and levels together, not just the first,
// in line order.
func TestLoadReportsEveryError(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join("testdata", "errors", "multiple.conf"), Options{SkipResolve: true})
	got := Errors(err)
	var lines []int
	for _, e := range got {
		lines = append(lines, e.Line)
	}
	if want := "[7 11 12 15 18]"; fmt.Sprint(lines) != want {
		t.Errorf("error lines = %v, want %s\n%v", lines, want, err)
	}
}

func TestProxySetHeaderInheritance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		http     string
		server   string
		location string
		want     string
		userConn bool
	}{
		{desc: "nothing set: nginx defaults", want: "Host: $proxy_host; Connection: close"},
		{desc: "http level inherited", http: "proxy_set_header X-A a;", want: "X-A: a; Host: $proxy_host; Connection: close"},
		{desc: "server level replaces http", http: "proxy_set_header X-A a;", server: "proxy_set_header X-B b;", want: "X-B: b; Host: $proxy_host; Connection: close"},
		{desc: "location replaces all outer", http: "proxy_set_header X-A a;", server: "proxy_set_header X-B b;", location: "proxy_set_header X-C c;", want: "X-C: c; Host: $proxy_host; Connection: close"},
		{desc: "own Host and Connection drop the defaults", location: "proxy_set_header Host $host; proxy_set_header Connection \"upgrade\";", want: "Host: $host; Connection: upgrade", userConn: true},
		{desc: "header names match case-insensitively", location: "proxy_set_header host $http_host; proxy_set_header connection $connection_upgrade;", want: "host: $http_host; connection: $connection_upgrade", userConn: true},
		{desc: "inherited Connection counts as set", server: "proxy_set_header Connection close;", want: "Connection: close; Host: $proxy_host", userConn: true},
		{desc: "order as written", location: "proxy_set_header B 2; proxy_set_header A 1;", want: "B: 2; A: 1; Host: $proxy_host; Connection: close"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			cfg := mustLoad(t, fmt.Sprintf(`http {
				map $http_upgrade $connection_upgrade { default upgrade; '' close; }
				%s
				server { %s location / { proxy_pass http://127.0.0.1:1; %s } }
			}`, tt.http, tt.server, tt.location))
			s := findLoc(t, cfg, "/").Settings
			if got := setHeaders(s); got != tt.want {
				t.Errorf("headers = %q, want %q", got, tt.want)
			}
			if s.UserConnection != tt.userConn {
				t.Errorf("UserConnection = %v, want %v", s.UserConnection, tt.userConn)
			}
		})
	}
}

func TestAddHeaderInheritance(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
		add_header X-Http h;
		server {
			location /inherit { }
			location /own { add_header X-Loc l always; add_header X-Two 2; }
			location /nested {
				add_header X-Outer o;
				location /nested/inner { }
			}
		}
	}`)
	tests := []struct{ loc, want string }{
		{"/inherit", "X-Http: h"},
		{"/own", "X-Loc: l always; X-Two: 2"},
		{"/nested", "X-Outer: o"},
		{"/nested/inner", "X-Outer: o"},
	}
	for _, tt := range tests {
		if got := addHeaders(findLoc(t, cfg, tt.loc).Settings); got != tt.want {
			t.Errorf("%s: add_header = %q, want %q", tt.loc, got, tt.want)
		}
	}
	if got := addHeaders(cfg.HTTP.Servers[0].Settings); got != "X-Http: h" {
		t.Errorf("server: add_header = %q", got)
	}
	if _, err := loadSrc(t, `http { server { add_header X v sometimes; } }`); err == nil || !strings.Contains(err.Error(), `invalid parameter "sometimes"`) {
		t.Errorf("add_header with a bad third argument: %v", err)
	}
}

func TestRootAliasIndexTryFiles(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
		server {
			root www;
			location /default { }
			location /abs { root /srv/abs; }
			location /alias/ {
				alias /srv/data/;
				location /alias/sub/ { }
			}
			location /var { root $document_root_x; }
			location /idx { index a.html b.$arg_x; }
			location /try { try_files $uri $uri/ /index.html; }
			location /try404 { try_files $uri =404; }
			location /trynamed { try_files $uri @fallback; }
			location @fallback { return 204; }
		}
	}`)
	prefix := cfg.Prefix
	tests := []struct {
		loc, root string
		alias     bool
	}{
		{"/default", filepath.Join(prefix, "www"), false},
		{"/abs", "/srv/abs", false},
		{"/alias/", "/srv/data/", true},
		{"/alias/sub/", "/srv/data/", true},
		{"/var", "$document_root_x", false},
	}
	for _, tt := range tests {
		s := findLoc(t, cfg, tt.loc).Settings
		if s.Root.Raw() != tt.root || s.RootIsAlias != tt.alias {
			t.Errorf("%s: root %q alias %v, want %q %v", tt.loc, s.Root.Raw(), s.RootIsAlias, tt.root, tt.alias)
		}
	}
	raws := func(ts []*vars.Template) string {
		var out []string
		for _, x := range ts {
			out = append(out, x.Raw())
		}
		return strings.Join(out, " ")
	}
	if got := raws(findLoc(t, cfg, "/default").Settings.Index); got != "index.html" {
		t.Errorf("default index = %q", got)
	}
	if got := raws(findLoc(t, cfg, "/idx").Settings.Index); got != "a.html b.$arg_x" {
		t.Errorf("index = %q", got)
	}
	for loc, want := range map[string]string{"/try": "$uri $uri/ /index.html", "/try404": "$uri =404", "/trynamed": "$uri @fallback", "/default": ""} {
		if got := raws(findLoc(t, cfg, loc).Settings.TryFiles); got != want {
			t.Errorf("%s: try_files = %q, want %q", loc, got, want)
		}
	}

	def := mustLoad(t, `http { server { location / { } } }`)
	if got := findLoc(t, def, "/").Settings.Root.Raw(); got != filepath.Join(def.Prefix, "html") {
		t.Errorf("default root = %q, want PREFIX/html", got)
	}
	if _, err := loadSrc(t, `http { server { location / { try_files $uri =99; } } }`); err == nil || !strings.Contains(err.Error(), `invalid code "=99"`) {
		t.Errorf("try_files =99: %v", err)
	}
	if _, err := loadSrc(t, `http { server { location @n { alias /x; } } }`); err == nil || !strings.Contains(err.Error(), "cannot be used inside the named location") {
		t.Errorf("alias in named location: %v", err)
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
		log_format ws escape=json '{"s":"$status",' '"ws":"$ws_close_code"}';
		server {
			location /default { }
			location /off { access_log off; }
			location /fmt { access_log /var/log/ws.log ws buffer=32k; access_log stderr; }
			location /offlast { access_log stdout; access_log off; }
		}
		server {
			access_log logs/srv.log;
			location / { }
			location /o { access_log off; }
		}
	}`)
	type want struct{ path, format string }
	logs := func(s *Settings) []want {
		var out []want
		for _, l := range s.AccessLogs {
			out = append(out, want{l.Path, l.Format.Name})
		}
		return out
	}
	check := func(name string, s *Settings, w ...want) {
		t.Helper()
		if got := logs(s); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: access logs %v, want %v", name, got, w)
		}
	}
	check("/default", findLoc(t, cfg, "/default").Settings, want{"stdout", "combined"})
	check("/off", findLoc(t, cfg, "/off").Settings)
	check("/offlast", findLoc(t, cfg, "/offlast").Settings)
	check("/fmt", findLoc(t, cfg, "/fmt").Settings, want{"/var/log/ws.log", "ws"}, want{"stderr", "combined"})
	srv2 := cfg.HTTP.Servers[1]
	check("server 2 /", srv2.Locations[0].Settings, want{filepath.Join(cfg.Prefix, "logs/srv.log"), "combined"})
	check("server 2 /o", srv2.Locations[1].Settings)
	if f := cfg.HTTP.LogFormats["ws"]; f == nil || f.Escape != "json" || f.Template.Raw() != `{"s":"$status","ws":"$ws_close_code"}` {
		t.Errorf("log_format ws = %+v", f)
	}
}

func TestMap(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
		map $http_upgrade $connection_upgrade {
			default upgrade;
			''      close;
		}
		map $uri $backend {
			default        d;
			/exact         exact;
			~^/exact       regex-not-reached;
			~^/API/        case-sensitive;
			~*^/api/       caseless;
			~^/api/v2      later-regex;
			~^/u/(?<id>\d+) user-$id;
			\~tilde        escaped;
		}
		map $x $nodefault { a 1; }
		server { }
	}`)
	tests := []struct {
		desc string
		m    string
		vars mapResolver
		want string
	}{
		{desc: "empty key matches an empty value", m: "connection_upgrade", vars: mapResolver{"http_upgrade": ""}, want: "close"},
		{desc: "missing variable is empty", m: "connection_upgrade", vars: mapResolver{}, want: "close"},
		{desc: "default", m: "connection_upgrade", vars: mapResolver{"http_upgrade": "websocket"}, want: "upgrade"},
		{desc: "exact wins over regex", m: "backend", vars: mapResolver{"uri": "/exact"}, want: "exact"},
		{desc: "exact is case-sensitive", m: "backend", vars: mapResolver{"uri": "/EXACT"}, want: "d"},
		{desc: "regex case-sensitive", m: "backend", vars: mapResolver{"uri": "/API/x"}, want: "case-sensitive"},
		{desc: "caseless regex", m: "backend", vars: mapResolver{"uri": "/Api/x"}, want: "caseless"},
		{desc: "first regex in order wins", m: "backend", vars: mapResolver{"uri": "/api/v2/x"}, want: "caseless"},
		{desc: "regex prefix exact-looking key", m: "backend", vars: mapResolver{"uri": "/exactly"}, want: "regex-not-reached"},
		{desc: "named capture is a plain variable key", m: "backend", vars: mapResolver{"uri": "/u/42", "id": "ID"}, want: "user-ID"},
		{desc: "backslash escapes a leading tilde", m: "backend", vars: mapResolver{"uri": "~tilde"}, want: "escaped"},
		{desc: "no default is empty", m: "nodefault", vars: mapResolver{"x": "b"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			m := cfg.HTTP.Maps[tt.m]
			if m == nil {
				t.Fatalf("no map $%s", tt.m)
			}
			if got := m.Eval(tt.vars); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestServerNames(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
		server { server_name Example.COM *.example.org .example.net www.example.* ~^(?<sub>\w+)\.example\.io$ "" _; }
		server { listen 81; }
		server { server_name "" b.example; }
	}`)
	var got []string
	for _, n := range cfg.HTTP.Servers[0].Names {
		switch {
		case n.Regex != nil:
			got = append(got, "regex:"+n.Regex.String())
		case n.Suffix != "":
			got = append(got, fmt.Sprintf("suffix:%s dot:%v", n.Suffix, n.Dot))
		case n.Prefix != "":
			got = append(got, "prefix:"+n.Prefix)
		default:
			got = append(got, "exact:"+n.Exact)
		}
	}
	want := []string{"exact:example.com", "suffix:.example.org dot:false", "suffix:.example.net dot:true", "prefix:www.example.",
		`regex:^(?P<sub>\w+)\.example\.io$`, "exact:", "exact:_"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("names:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p := cfg.HTTP.Servers[0].PrimaryName; p != "Example.COM" {
		t.Errorf("primary name = %q, want as written", p)
	}
	if n := cfg.HTTP.Servers[1].Names; len(n) != 1 || n[0].Exact != "" || n[0].Regex != nil || n[0].Suffix != "" || n[0].Prefix != "" {
		t.Errorf("no server_name: names = %+v, want the empty name only", n)
	}
	// An empty first name must not hide the names after it.
	if n := cfg.HTTP.Servers[2].Names; len(n) != 2 || n[1].Exact != "b.example" {
		t.Errorf(`server_name "" b.example: names = %+v`, n)
	}
	for _, bad := range []string{"www.*.example.com", "~(unclosed"} {
		if _, err := loadSrc(t, "http { server { server_name "+bad+"; } }"); err == nil {
			t.Errorf("server_name %s: no error", bad)
		}
	}
}

func TestListen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, args string
		addr       string
		def        bool
		ssl, h2    bool
	}{
		{desc: "port only", args: "80", addr: ":80"},
		{desc: "address and port", args: "127.0.0.1:8080", addr: "127.0.0.1:8080"},
		{desc: "address only", args: "127.0.0.1", addr: "127.0.0.1:80"},
		{desc: "ipv6 with port", args: "[::1]:80", addr: "[::1]:80"},
		{desc: "ipv6 without port", args: "[::]", addr: "[::]:80"},
		{desc: "wildcard with port", args: "*:80", addr: ":80"},
		{desc: "wildcard alone", args: "*", addr: ":80"},
		{desc: "host name", args: "localhost:8000", addr: "localhost:8000"},
		{desc: "default_server", args: "8080 default_server", addr: ":8080", def: true},
		{desc: "old default spelling", args: "8080 default", addr: ":8080", def: true},
		{desc: "ssl and http2", args: "443 ssl http2", addr: ":443", ssl: true, h2: true},
		{desc: "tuning parameters accepted", args: "80 reuseport backlog=511 deferred", addr: ":80"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			cfg := mustLoad(t, "http { server { listen "+tt.args+"; ssl_certificate /dev/null; ssl_certificate_key /dev/null; } }")
			l := cfg.HTTP.Servers[0].Listens[0]
			if l.Addr != tt.addr || l.DefaultServer != tt.def || l.SSL != tt.ssl || l.HTTP2 != tt.h2 {
				t.Errorf("listen %s = %+v, want addr %s default %v ssl %v http2 %v", tt.args, l, tt.addr, tt.def, tt.ssl, tt.h2)
			}
			if l.Line != 1 {
				t.Errorf("line = %d", l.Line)
			}
		})
	}
	cfg := mustLoad(t, "http { server { } }")
	if l := cfg.HTTP.Servers[0].Listens; len(l) != 1 || l[0].Addr != ":80" {
		t.Errorf("default listen = %+v, want :80", l)
	}
	for _, bad := range []string{"unix:/tmp/s", "80 proxy_protocol", "80 quic"} {
		if _, err := loadSrc(t, "http { server { listen "+bad+"; } }"); err == nil || !strings.Contains(err.Error(), "not implemented") {
			t.Errorf("listen %s: %v, want not implemented", bad, err)
		}
	}
}

func TestLocations(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
		server {
			location / { }
			location = /exact { }
			location =/tight { }
			location ^~ /static/ { }
			location ~ \.php$ { }
			location ~* "\.(png|jpg)$" { }
			location @named { }
			location /outer/ {
				location /outer/inner/ { }
				location ~ \.js$ { }
			}
			location ~ ^/re/ {
				location /anything { }
			}
		}
	}`)
	srv := cfg.HTTP.Servers[0]
	var got []string
	for _, l := range srv.Locations {
		re := ""
		if l.Regex != nil {
			re = " re=" + l.Regex.String()
		}
		got = append(got, fmt.Sprintf("%q %q%s children=%d", l.Modifier, l.Path, re, len(l.Children)))
	}
	want := []string{
		`"" "/" children=0`,
		`"=" "/exact" children=0`,
		`"=" "/tight" children=0`,
		`"^~" "/static/" children=0`,
		`"~" "\\.php$" re=\.php$ children=0`,
		`"~*" "\\.(png|jpg)$" re=(?i)\.(png|jpg)$ children=0`,
		`"" "/outer/" children=2`,
		`"~" "^/re/" re=^/re/ children=1`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("locations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := srv.Named["named"]; n == nil || n.Modifier != "@" || n.Name() != "@named" {
		t.Errorf("named location = %+v", n)
	}
	if l := findLoc(t, cfg, "/outer/inner/"); l.File == "" || l.Line != 11 {
		t.Errorf("nested location position %s:%d", l.File, l.Line)
	}
}

func TestAutoRedirect(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
		upstream app { server 127.0.0.1:1; }
		server {
			location /ws/ { proxy_pass http://app; }
			location ^~ /api/ { proxy_pass http://app/v1/; }
			location /noslash { proxy_pass http://app; }
			location /static/ { root /srv; }
			location ~ ^/re/ { proxy_pass http://app; }
			location /outer/ {
				proxy_pass http://app;
				location /outer/inner/ { }
			}
		}
	}`)
	for loc, want := range map[string]bool{"/ws/": true, "^~ /api/": true, "/noslash": false, "/static/": false, "~ ^/re/": false, "/outer/": true, "/outer/inner/": false} {
		if got := findLoc(t, cfg, loc).AutoRedirect; got != want {
			t.Errorf("%s: AutoRedirect = %v, want %v", loc, got, want)
		}
	}
	if p := findLoc(t, cfg, "/outer/inner/").Settings.Proxy; p != nil {
		t.Errorf("proxy_pass inherited by a nested location: %+v", p)
	}
}

func TestProxyPass(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
		upstream app { server 127.0.0.1:1; }
		server {
			location /a { proxy_pass http://app; }
			location /b/ { proxy_pass http://app/; }
			location /c { proxy_pass http://127.0.0.1:9000/x/; }
			location /d { proxy_pass https://backend.example; }
			location /e { proxy_pass http://$host:8080; }
			location /f { proxy_pass http://127.0.0.1:9000; }
		}
	}`)
	tests := []struct {
		loc, host, uri, scheme string
		hasURI, named, dynamic bool
		addr                   string
	}{
		{loc: "/a", host: "app", scheme: "http", named: true},
		{loc: "/b/", host: "app", uri: "/", hasURI: true, scheme: "http", named: true},
		{loc: "/c", host: "127.0.0.1:9000", uri: "/x/", hasURI: true, scheme: "http", addr: "127.0.0.1:9000"},
		{loc: "/d", host: "backend.example", scheme: "https", addr: "backend.example:443"},
		{loc: "/e", dynamic: true},
		{loc: "/f", host: "127.0.0.1:9000", scheme: "http", addr: "127.0.0.1:9000"},
	}
	for _, tt := range tests {
		p := findLoc(t, cfg, tt.loc).Settings.Proxy
		if p == nil {
			t.Errorf("%s: no proxy", tt.loc)
			continue
		}
		if tt.dynamic {
			if p.Dynamic == nil || p.Upstream != nil {
				t.Errorf("%s: want dynamic, got %+v", tt.loc, p)
			}
			continue
		}
		if p.Host != tt.host || p.URI != tt.uri || p.HasURI != tt.hasURI || p.Scheme != tt.scheme {
			t.Errorf("%s: proxy = %+v", tt.loc, p)
		}
		if tt.named && (p.Upstream != cfg.HTTP.Upstreams["app"]) {
			t.Errorf("%s: not the named upstream", tt.loc)
		}
		if tt.addr != "" && (p.Upstream == nil || !p.Upstream.Implicit || p.Upstream.Servers[0].Addr != tt.addr) {
			t.Errorf("%s: implicit upstream = %+v, want %s", tt.loc, p.Upstream, tt.addr)
		}
	}
	// Two locations with the same address share one implicit upstream.
	if findLoc(t, cfg, "/c").Settings.Proxy.Upstream != findLoc(t, cfg, "/f").Settings.Proxy.Upstream {
		t.Errorf("implicit upstreams for one address are not shared")
	}
}

func TestReturn(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
		server {
			location /first { return 200 "one"; return 404; }
			location /url { return https://example.com$request_uri; }
			location /outer {
				return 403;
				location /outer/inner { }
			}
		}
		server {
			return 301 https://$host$request_uri;
			location /own { return 204; }
		}
	}`)
	first := func(s Script) *Return {
		for _, op := range s {
			if op.Return != nil {
				return op.Return
			}
		}
		return nil
	}
	if s := findLoc(t, cfg, "/first").Script; len(s) != 2 || s[0].Return.Code != 200 || s[0].Return.Text.Raw() != "one" || s[1].Return.Code != 404 {
		t.Errorf("returns of one location are not kept in order: %+v", s)
	}
	if r := first(findLoc(t, cfg, "/url").Script); r == nil || r.Code != 302 {
		t.Errorf("return URL: %+v, want 302", r)
	}
	if r := first(findLoc(t, cfg, "/outer/inner").Script); r != nil {
		t.Errorf("location return inherited by a nested location: %+v", r)
	}
	srv := cfg.HTTP.Servers[1]
	// A server-level return is in the server's script, which runs before
	// any location is searched.
	if r := first(srv.Script); r == nil || r.Code != 301 {
		t.Errorf("server return: %+v", r)
	}
	if r := first(srv.Locations[0].Script); r == nil || r.Code != 204 {
		t.Errorf("location return: %+v", r)
	}
}

func TestIgnoredDirectives(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `user nobody;
worker_rlimit_nofile 65535;
events { use epoll; multi_accept on; }
http {
    sendfile on;
    tcp_nodelay on;
    gzip on;
    server {
        server_tokens off;
        location / { proxy_buffers 8 16k; }
    }
}`)
	var got []string
	for _, ig := range cfg.Ignored {
		got = append(got, ig.Name+"@"+ig.Pos[strings.LastIndexByte(ig.Pos, ':')+1:])
	}
	want := "user@1 worker_rlimit_nofile@2 use@3 multi_accept@3 sendfile@5 tcp_nodelay@6 gzip@7 server_tokens@9 proxy_buffers@10"
	if strings.Join(got, " ") != want {
		t.Errorf("ignored = %s\nwant      %s", strings.Join(got, " "), want)
	}
	if s := cfg.Ignored[5].String(); !strings.Contains(s, `"tcp_nodelay" is accepted and ignored (wsgate always sets TCP_NODELAY)`) {
		t.Errorf("String() = %q", s)
	}
	for _, name := range DirectiveNames() {
		if s := directives[name]; s.ignored && unimplemented[name] {
			t.Errorf("%s is both ignored and not implemented", name)
		}
	}
}

func TestSnippetWithoutHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		src  string
	}{
		{desc: "server only", src: `server { listen 8080; location / { proxy_pass http://127.0.0.1:1; } }`},
		{desc: "upstream, map and server", src: `upstream app { server 127.0.0.1:1; }
map $http_upgrade $connection_upgrade { default upgrade; '' close; }
server { listen 8080; location / { proxy_pass http://app; proxy_set_header Connection $connection_upgrade; } }`},
		{desc: "http-level settings", src: `proxy_read_timeout 1h; error_log stderr; server { listen 8080; }`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			cfg := mustLoad(t, tt.src)
			if cfg.HTTP == nil || len(cfg.HTTP.Servers) != 1 || cfg.HTTP.Servers[0].Listens[0].Addr != ":8080" {
				t.Fatalf("snippet not read as http: %+v", cfg.HTTP)
			}
		})
	}
	cfg := mustLoad(t, `proxy_read_timeout 1h; server { listen 8080; }`)
	if got := cfg.HTTP.Servers[0].Settings.ProxyReadTimeout; got != time.Hour {
		t.Errorf("http-level setting in a snippet = %v", got)
	}
	// A whole nginx.conf is not wrapped.
	if _, err := loadSrc(t, `events {} server { }`); err == nil || !strings.Contains(err.Error(), `"server" directive is not allowed here`) {
		t.Errorf("server at main level of a full config: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `events {} http { server { location / { proxy_pass http://127.0.0.1:1; } } }`)
	if cfg.WorkerConnections != 512 || cfg.ErrorLog != "stderr" || cfg.PID != filepath.Join(cfg.Prefix, "wsgate.pid") || cfg.WorkerShutdownTimeout != time.Minute {
		t.Errorf("main defaults = %+v", cfg)
	}
	s := findLoc(t, cfg, "/").Settings
	if s.ProxyHTTPVersion != "1.0" || s.ProxyReadTimeout != time.Minute || s.ProxyConnectTimeout != time.Minute || s.ProxySendTimeout != time.Minute ||
		!s.ProxyBuffering || s.ClientMaxBodySize != 1<<20 || s.KeepaliveTimeout != 75*time.Second || s.DefaultType != "text/plain" ||
		!s.NextUpstream.Error || !s.NextUpstream.Timeout {
		t.Errorf("settings defaults = %+v", s)
	}
	ws := s.WebSocket
	if !ws.Frames || ws.PingInterval != 30*time.Second || ws.PingTimeout != 10*time.Second || ws.MaxMessageSize != 0 || ws.MaxFrameRate != 0 || ws.DrainWindow != 30*time.Second {
		t.Errorf("websocket defaults = %+v", ws)
	}
	cfg = mustLoad(t, `http { websocket_drain_window 5s; server { location / {
		websocket_frames off; websocket_ping_interval off; websocket_ping_timeout 3s;
		websocket_max_message_size 64k; websocket_max_frame_rate 100/s; } } }`)
	ws = findLoc(t, cfg, "/").Settings.WebSocket
	if ws.Frames || ws.PingInterval != 0 || ws.PingTimeout != 3*time.Second || ws.MaxMessageSize != 64<<10 || ws.MaxFrameRate != 100 || ws.DrainWindow != 5*time.Second {
		t.Errorf("websocket settings = %+v", ws)
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	durations := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30", 30 * time.Second, true}, {"30s", 30 * time.Second, true}, {"500ms", 500 * time.Millisecond, true},
		{"1m30s", 90 * time.Second, true}, {"2h", 2 * time.Hour, true}, {"1d", 24 * time.Hour, true},
		{"1w", 7 * 24 * time.Hour, true}, {"1M", 30 * 24 * time.Hour, true}, {"1y", 365 * 24 * time.Hour, true},
		{"", 0, false}, {"s", 0, false}, {"10x", 0, false}, {"-1", 0, false}, {"1.5s", 0, false},
	}
	for _, tt := range durations {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	sizes := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1024", 1024, true}, {"8k", 8 << 10, true}, {"8K", 8 << 10, true}, {"1m", 1 << 20, true}, {"1G", 1 << 30, true},
		{"0", 0, true}, {"", 0, false}, {"k", 0, false}, {"-1", 0, false}, {"1t", 0, false},
	}
	for _, tt := range sizes {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestSeeds loads the nginx snippets of the five seed documents
// (testdata/seeds, copied with their host names as written).
func TestSeeds(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "seeds", "*.conf"))
	if err != nil || len(files) < 5 {
		t.Fatalf("seed inputs: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(f, Options{SkipResolve: true})
			if strings.Contains(f, "verbatim") {
				// Published without the ';' after proxy_pass; nginx -t
				// rejects it too, at the closing brace.
				if err == nil || !strings.Contains(err.Error(), `unexpected "}"`) {
					t.Errorf("want the missing-';' error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v", err)
			}
			if cfg.HTTP == nil || len(cfg.HTTP.Servers) == 0 {
				t.Fatalf("no servers")
			}
			for _, s := range cfg.HTTP.Servers {
				for _, l := range s.Locations {
					if p := l.Settings.Proxy; p != nil && p.Upstream == nil && p.Dynamic == nil {
						t.Errorf("%s: proxy without upstream", l.Name())
					}
				}
			}
		})
	}
}
