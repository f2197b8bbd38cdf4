package config

import (
	"strings"
	"testing"
)

// TestScriptRewriteFlags: rewrite's flags and replacement forms compile
// to nginx's meaning (ngx_http_rewrite): a replacement starting with
// http://, https:// or $scheme is a 302 redirect, "redirect" 302,
// "permanent" 301; every flag stops the script; a trailing "?" drops the
// request's arguments.
func TestScriptRewriteFlags(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http { server {
		rewrite ^/a /b;
		rewrite ^/a /b last;
		rewrite ^/a /b break;
		rewrite ^/a /b redirect;
		rewrite ^/a /b permanent;
		rewrite ^ https://$host$request_uri? permanent;
		rewrite ^/x http://other.example/;
		rewrite ^/y $scheme://$host/y break;
		rewrite ^/q /b?c=1;
	} }`)
	sc := cfg.HTTP.Servers[0].Script
	if len(sc) != 9 {
		t.Fatalf("script has %d ops, want 9", len(sc))
	}
	for i, want := range []struct {
		flag            string
		redirect        bool
		status          int
		stop, brk, args bool
	}{
		{"", false, 0, false, false, true},
		{"last", false, 0, true, false, true},
		{"break", false, 0, true, true, true},
		{"redirect", true, 302, true, false, true},
		{"permanent", true, 301, true, false, true},
		{"permanent", true, 301, true, false, false},
		{"", true, 302, true, false, true},
		{"break", true, 302, true, true, true},
		{"", false, 0, false, false, true},
	} {
		rw := sc[i].Rewrite
		if rw == nil {
			t.Fatalf("op %d is not a rewrite: %+v", i, sc[i])
		}
		if rw.Flag != want.flag || rw.Redirect != want.redirect || rw.Status != want.status || rw.Stop != want.stop || rw.Break != want.brk || rw.AddArgs != want.args {
			t.Errorf("op %d (line %d): %+v, want %+v", i, sc[i].Line, rw, want)
		}
	}
	if r := sc[5].Rewrite.Replacement; r.Raw() != "https://$host$request_uri" {
		t.Errorf("the trailing ? is part of the replacement: %q", r.Raw())
	}
	if !sc[8].Rewrite.Replacement.Args || sc[0].Rewrite.Replacement.Args {
		t.Errorf("Args: a replacement with its own ?args must say so")
	}
}

// TestScriptOrderAndIf: the rewrite module's directives of a level keep
// their order (return among them), conditions compile to their kinds,
// and an if in a location gets the settings of nginx's implicit nested
// location.
func TestScriptOrderAndIf(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
	rewrite_log on;
	upstream app { server 127.0.0.1:9; }
	upstream alt { server 127.0.0.1:8; }
	server {
		set $cors "";
		if ($http_origin ~* ^https://(www\.)?example\.com$) { set $cors $http_origin; }
		if ($request_method = 'OPTIONS') { return 204; }
		if ($scheme != "https") { return 301 https://$host$request_uri; }
		location /api/ {
			add_header X-Outer 1;
			root /srv/outer;
			try_files $uri =404;
			proxy_pass http://app/v1/;
			if (!-f $request_filename) { add_header X-Inner 1; break; }
			if (-d $document_root) { proxy_pass http://alt; }
			if ($arg_x) { root /srv/inner; rewrite_log off; }
			rewrite ^/api/(?<rest>.*)$ /$rest break;
			return 404;
		}
		location /plain/ { }
	}
}`)
	srv := cfg.HTTP.Servers[0]
	var kinds []string
	for _, op := range srv.Script {
		switch {
		case op.Set != nil:
			kinds = append(kinds, "set "+op.Set.Name)
		case op.If != nil:
			kinds = append(kinds, "if "+op.If.Cond.Text)
			if op.If.Settings != nil {
				t.Errorf("an if in a server has no settings of its own")
			}
		}
	}
	if got := strings.Join(kinds, "; "); got != `set cors; if $http_origin ~* ^https://(www\.)?example\.com$; if $request_method = OPTIONS; if $scheme != https` {
		t.Errorf("server script: %s", got)
	}
	c := srv.Script[1].If.Cond
	if c.Kind != CondRegex || c.Negate || !c.Regex.MatchString("https://EXAMPLE.com") || c.Regex.MatchString("https://evil.com") {
		t.Errorf("~* condition: %+v", c)
	}
	if c := srv.Script[2].If.Cond; c.Kind != CondEqual || c.Value.Raw() != "OPTIONS" {
		t.Errorf("= condition: %+v", c)
	}
	if c := srv.Script[3].If.Cond; c.Kind != CondNotEqual || c.Value.Raw() != "https" {
		t.Errorf("!= condition: %+v", c)
	}
	if !srv.Settings.RewriteLog {
		t.Errorf("rewrite_log on in http is not inherited")
	}

	loc := findLoc(t, cfg, "/api/")
	if len(loc.Script) != 5 || loc.Script[3].Rewrite == nil || loc.Script[4].Return == nil || loc.Script[4].Return.Code != 404 {
		t.Fatalf("location script: %+v", loc.Script)
	}
	if n := loc.Script[3].Rewrite.Named; len(n) != 1 || n[0].Name != "rest" || n[0].Index != 1 {
		t.Errorf("named groups: %+v", n)
	}
	if len(loc.Settings.TryFiles) == 0 || loc.Settings.Proxy == nil {
		t.Fatalf("the location's own settings: %+v", loc.Settings)
	}
	f := loc.Script[0].If
	if f.Cond.Kind != CondFile || !f.Cond.Negate || f.Cond.FileOp != 'f' || len(f.Body) != 1 || !f.Body[0].Break {
		t.Errorf("!-f: %+v body %+v", f.Cond, f.Body)
	}
	in := f.Settings
	if in == nil {
		t.Fatal("an if in a location has no settings")
	}
	if len(in.AddHeaders) != 1 || in.AddHeaders[0].Name != "X-Inner" {
		t.Errorf("add_header in the if replaces the location's list: %+v", in.AddHeaders)
	}
	if in.Proxy != loc.Settings.Proxy {
		t.Errorf("the if does not inherit the location's proxy_pass")
	}
	if in.TryFiles != nil {
		t.Errorf("try_files is inherited by the if (nginx does not merge it)")
	}
	if in.Root.Raw() != "/srv/outer" {
		t.Errorf("root of the if: %q", in.Root.Raw())
	}
	if p := loc.Script[1].If.Settings.Proxy; p == nil || p.Host != "alt" || p.HasURI {
		t.Errorf("proxy_pass in an if: %+v", p)
	}
	if s := loc.Script[2].If.Settings; s.Root.Raw() != "/srv/inner" || len(s.AddHeaders) != 1 || s.AddHeaders[0].Name != "X-Outer" || s.RewriteLog {
		t.Errorf("root/add_header/rewrite_log in the third if: %+v", s)
	}
	if sc := findLoc(t, cfg, "/plain/").Script; sc != nil {
		t.Errorf("a location without rewrite directives has a script: %+v", sc)
	}
}

// TestConditionSyntax follows ngx_http_rewrite_if_condition: "(" and ")"
// may stand alone or stick to the first and last word, and ")" may
// follow a quoted word directly.
func TestConditionSyntax(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cond string
		kind CondKind
		text string
	}{
		{`($a)`, CondVar, "$a"},
		{`( $a )`, CondVar, "$a"},
		{`($a = 'x y')`, CondEqual, "$a = x y"},
		{`($a = "")`, CondEqual, "$a = "},
		{`($a != "https" )`, CondNotEqual, "$a != https"},
		{`($a !~* "^(a|b)$")`, CondRegex, "$a !~* ^(a|b)$"},
		{`($a ~ \.(js|css)$)`, CondRegex, `$a ~ \.(js|css)$`},
		{`(-e $p)`, CondFile, "-e $p"},
		{`(!-x $p)`, CondFile, "!-x $p"},
	} {
		cfg, err := loadSrc(t, "http { server { if "+tc.cond+" { return 204; } } }")
		if err != nil {
			t.Errorf("if %s: %v", tc.cond, err)
			continue
		}
		c := cfg.HTTP.Servers[0].Script[0].If.Cond
		if c.Kind != tc.kind || c.Text != tc.text {
			t.Errorf("if %s: kind %d text %q, want %d %q", tc.cond, c.Kind, c.Text, tc.kind, tc.text)
		}
	}
}

// TestSetVariables: set may not change nginx's fixed variables; it may
// change $args, map results and the prefix variables.
func TestSetVariables(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
	map $uri $m { default a; }
	server {
		set $args "a=1";
		set $m b;
		set $http_x_token secret;
		set $Backend http://127.0.0.1:9;
		location / { proxy_pass $backend; }
	}
}`)
	sc := cfg.HTTP.Servers[0].Script
	if !sc[0].Set.Args || sc[1].Set.Name != "m" || sc[3].Set.Name != "backend" {
		t.Errorf("set ops: %+v %+v %+v", sc[0].Set, sc[1].Set, sc[3].Set)
	}
	if sc[2].Set.Name != "http_x_token" {
		t.Errorf("set $http_x_token: %+v", sc[2].Set)
	}
	for _, name := range []string{"uri", "host", "request_uri", "remote_addr", "http_host", "query_string", "ws_close_code"} {
		_, err := loadSrc(t, "http { server { set $"+name+" x; } }")
		if err == nil || !strings.Contains(err.Error(), `the duplicate "`+name+`" variable`) {
			t.Errorf("set $%s: %v", name, err)
		}
	}
}

// TestIfContexts: only directives nginx 1.22 allows in an if block are
// accepted there (checked with nginx -t); the others are errors that say
// where they are allowed.
func TestIfContexts(t *testing.T) {
	t.Parallel()
	for _, d := range []string{"add_header X 1;", "root /x;", "proxy_pass http://127.0.0.1:9;", "access_log off;",
		"charset utf-8;", "error_page 404 /x;", "expires 1h;", "rewrite_log on;", "uninitialized_variable_warn off;",
		"gzip on;", "sendfile on;", "set $a 1;", "return 200;", "break;", "rewrite ^ /x;"} {
		if _, err := loadSrc(t, "http { server { location / { if ($a) { "+d+" } } } }"); err != nil {
			t.Errorf("%s in a location's if: %v", d, err)
		}
	}
	for _, d := range []string{"proxy_set_header X 1;", "proxy_read_timeout 5s;", "try_files $uri =404;", "alias /x;",
		"client_max_body_size 1m;", "allow all;", "deny all;", "index x;", "internal;", "proxy_http_version 1.1;"} {
		_, err := loadSrc(t, "http { server { location / { if ($a) { "+d+" } } } }")
		if err == nil || !strings.Contains(err.Error(), "is not allowed here (in an \"if\" block of a location") {
			t.Errorf("%s in a location's if: %v", d, err)
		}
	}
	for _, d := range []string{"set $a 1;", "return 200;", "break;", "rewrite ^ /x;", "rewrite_log on;"} {
		if _, err := loadSrc(t, "http { server { if ($a) { "+d+" } } }"); err != nil {
			t.Errorf("%s in a server's if: %v", d, err)
		}
	}
	for _, d := range []string{"add_header X 1;", "root /x;", "proxy_pass http://127.0.0.1:9;"} {
		_, err := loadSrc(t, "http { server { if ($a) { "+d+" } } }")
		if err == nil || !strings.Contains(err.Error(), "is not allowed here (in an \"if\" block of a server") {
			t.Errorf("%s in a server's if: %v", d, err)
		}
	}
}
