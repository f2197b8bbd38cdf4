package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// compileUpstreamSrc parses src (http-level "match" and one "upstream"
// block) as file "t.conf" and compiles the upstream.
func compileUpstreamSrc(t *testing.T, src string) (*Upstream, error) {
	t.Helper()
	dirs, err := ParseBytes("t.conf", []byte(src), "/")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	matches := map[string]*Directive{}
	var up *Directive
	for _, d := range dirs {
		switch d.Name {
		case "match":
			matches[d.Args[0]] = d
		case "upstream":
			up = d
		}
	}
	if up == nil {
		t.Fatalf("no upstream in %q", src)
	}
	return CompileUpstream(up, matches)
}

func srv(addr string, line int, mod ...func(*UpstreamServer)) UpstreamServer {
	s := UpstreamServer{Addr: addr, Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second, Line: line}
	for _, m := range mod {
		m(&s)
	}
	return s
}

func TestCompileUpstream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		src  string
		want *Upstream
	}{
		{
			desc: "empty upstream is valid (Dokku no listeners)",
			src:  "upstream app { }",
			want: &Upstream{Name: "app", File: "t.conf", Line: 1},
		},
		{
			desc: "default port and parameters",
			src: `upstream app {
    server 10.0.0.1:5000;
    server backend.internal;
    server [::1]:8080;
    server [2001:db8::1];
}`,
			want: &Upstream{Name: "app", File: "t.conf", Line: 1, Servers: []UpstreamServer{
				srv("10.0.0.1:5000", 2), srv("backend.internal:80", 3),
				srv("[::1]:8080", 4), srv("[2001:db8::1]:80", 5),
			}},
		},
		{
			desc: "all server parameters",
			src: `upstream app {
    server a:1 weight=5 max_fails=3 fail_timeout=1m30s max_conns=100 slow_start=30s;
    server b:1 backup;
    server c:1 down max_fails=0 fail_timeout=500ms;
}`,
			want: &Upstream{Name: "app", File: "t.conf", Line: 1, Servers: []UpstreamServer{
				srv("a:1", 2, func(s *UpstreamServer) {
					s.Weight, s.MaxFails, s.FailTimeout, s.MaxConns, s.SlowStart = 5, 3, 90*time.Second, 100, 30*time.Second
				}),
				srv("b:1", 3, func(s *UpstreamServer) { s.Backup = true }),
				srv("c:1", 4, func(s *UpstreamServer) { s.Down, s.MaxFails, s.FailTimeout = true, 0, 500*time.Millisecond }),
			}},
		},
		{
			desc: "least_conn with keepalive and zone",
			src: `upstream ws {
    zone ws 64k;
    least_conn;
    keepalive 32;
    keepalive_timeout 30s;
    keepalive_requests 100;
    keepalive_time 2h;
    server a:1;
}`,
			want: &Upstream{Name: "ws", File: "t.conf", Line: 1, Method: "least_conn", Keepalive: 32,
				KeepaliveTimeout: 30 * time.Second, KeepaliveRequests: 100, KeepaliveTime: 2 * time.Hour,
				Servers: []UpstreamServer{srv("a:1", 8)}},
		},
		{
			desc: "keepalive_requests 0 (never reused), defaults for the rest",
			src:  "upstream u {\n keepalive_requests 0;\n}",
			want: &Upstream{Name: "u", File: "t.conf", Line: 1,
				KeepaliveTimeout: 60 * time.Second, KeepaliveRequests: 0, KeepaliveTime: time.Hour},
		},
		{
			desc: "ip_hash",
			src:  "upstream u {\n ip_hash;\n server a:1 weight=2;\n}",
			want: &Upstream{Name: "u", File: "t.conf", Line: 1, Method: "ip_hash",
				Servers: []UpstreamServer{srv("a:1", 3, func(s *UpstreamServer) { s.Weight = 2 })}},
		},
		{
			desc: "hash consistent",
			src:  "upstream u {\n hash $remote_addr consistent;\n}",
			want: &Upstream{Name: "u", File: "t.conf", Line: 1, Method: "hash", HashKey: "$remote_addr", Consistent: true},
		},
		{
			desc: "hash plain",
			src:  "upstream u {\n hash \"$cookie_io$arg_sid\";\n}",
			want: &Upstream{Name: "u", File: "t.conf", Line: 1, Method: "hash", HashKey: "$cookie_io$arg_sid"},
		},
		{
			desc: "random",
			src:  "upstream u {\n random;\n}",
			want: &Upstream{Name: "u", File: "t.conf", Line: 1, Method: "random"},
		},
		{
			desc: "random two least_conn",
			src:  "upstream u {\n random two least_conn;\n}",
			want: &Upstream{Name: "u", File: "t.conf", Line: 1, Method: "random", RandomTwo: true, RandomLeastConn: true},
		},
		{
			desc: "random two",
			src:  "upstream u {\n random two;\n}",
			want: &Upstream{Name: "u", File: "t.conf", Line: 1, Method: "random", RandomTwo: true, RandomLeastConn: true},
		},
		{
			desc: "sticky cookie with every attribute",
			src:  "upstream u {\n sticky cookie srv_id expires=1h domain=.example.com path=/ httponly secure samesite=Lax;\n server a:1 backup;\n}",
			want: &Upstream{Name: "u", File: "t.conf", Line: 1, Method: "sticky",
				Sticky:  &StickyCookie{Name: "srv_id", Expires: time.Hour, Domain: ".example.com", Path: "/", HTTPOnly: true, Secure: true, SameSite: "lax"},
				Servers: []UpstreamServer{srv("a:1", 3, func(s *UpstreamServer) { s.Backup = true })}},
		},
		{
			desc: "sticky expires=max",
			src:  "upstream u {\n sticky cookie s expires=max;\n}",
			want: &Upstream{Name: "u", File: "t.conf", Line: 1, Method: "sticky", Sticky: &StickyCookie{Name: "s", Expires: -1}},
		},
		{
			desc: "health_check defaults",
			src:  "upstream u {\n health_check;\n}",
			want: &Upstream{Name: "u", File: "t.conf", Line: 1,
				HealthCheck: &HealthCheck{Interval: 5 * time.Second, Fails: 1, Passes: 1, URI: "/", Type: "http"}},
		},
		{
			desc: "health_check websocket with match",
			src: `match ok {
    status 200-399;
    status ! 302;
    body ~ "alive";
}
upstream u {
    health_check interval=2s fails=3 passes=2 uri=/healthz port=9000 type=websocket match=ok;
}`,
			want: &Upstream{Name: "u", File: "t.conf", Line: 6,
				HealthCheck: &HealthCheck{Interval: 2 * time.Second, Fails: 3, Passes: 2, URI: "/healthz", Port: 9000, Type: "websocket",
					MatchStatus: []StatusRange{{200, 301}, {303, 399}}, MatchBody: "alive"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, err := compileUpstreamSrc(t, tt.src)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.want.KeepaliveTimeout == 0 && tt.want.KeepaliveRequests == 0 && tt.want.KeepaliveTime == 0 {
				// keepalive_timeout 60s, keepalive_requests 1000,
				// keepalive_time 1h unless the case sets them
				tt.want.KeepaliveTimeout, tt.want.KeepaliveRequests, tt.want.KeepaliveTime = time.Minute, 1000, time.Hour
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
				for i := range min(len(got.Servers), len(tt.want.Servers)) {
					if got.Servers[i] != tt.want.Servers[i] {
						t.Errorf("server %d: got %+v want %+v", i, got.Servers[i], tt.want.Servers[i])
					}
				}
				if got.HealthCheck != nil && tt.want.HealthCheck != nil {
					t.Errorf("health: got %+v want %+v", *got.HealthCheck, *tt.want.HealthCheck)
				}
			}
		})
	}
}

func TestCompileUpstreamErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		src  string
		want string // whole error text, one error per line
	}{
		{"unknown directive", "upstream u {\n proxy_pas x;\n}", `t.conf:2: unknown directive "proxy_pas"`},
		{"no name", "upstream {\n}", `t.conf:1: invalid number of arguments in "upstream" directive`},
		{"weight zero", "upstream u {\n server a weight=0;\n}", `t.conf:2: invalid parameter "weight=0"`},
		{"weight not a number", "upstream u {\n server a weight=x;\n}", `t.conf:2: invalid parameter "weight=x"`},
		{"negative max_fails", "upstream u {\n server a max_fails=-1;\n}", `t.conf:2: invalid parameter "max_fails=-1"`},
		{"bad fail_timeout", "upstream u {\n server a fail_timeout=10q;\n}", `t.conf:2: invalid parameter "fail_timeout=10q"`},
		{"bad max_conns", "upstream u {\n server a max_conns=;\n}", `t.conf:2: invalid parameter "max_conns="`},
		{"unknown server parameter", "upstream u {\n server a:1 heavy;\n}", `t.conf:2: invalid parameter "heavy"`},
		{"server without address", "upstream u {\n server;\n}", `t.conf:2: invalid number of arguments in "server" directive`},
		{"unix socket", "upstream u {\n server unix:/tmp/app.sock;\n}", `t.conf:2: unix domain sockets are not supported in upstream "unix:/tmp/app.sock"`},
		{"resolve", "upstream u {\n server app.local resolve;\n}", `t.conf:2: server parameter "resolve" is not implemented by wsgate`},
		{"service", "upstream u {\n server app.local service=http;\n}", `t.conf:2: server parameter "service" is not implemented by wsgate`},
		{"scheme in address", "upstream u {\n server http://a:1;\n}", `t.conf:2: invalid host in upstream "http://a:1" (a server address has no scheme)`},
		{"bad port", "upstream u {\n server a:99999;\n}", `t.conf:2: invalid port in upstream "a:99999"`},
		{"port zero", "upstream u {\n server a:0;\n}", `t.conf:2: invalid port in upstream "a:0"`},
		{"empty port", "upstream u {\n server a:;\n}", `t.conf:2: invalid port in upstream "a:"`},
		{"no host", "upstream u {\n server :80;\n}", `t.conf:2: no host in upstream ":80"`},
		{"bare ipv6", "upstream u {\n server ::1;\n}", `t.conf:2: invalid host in upstream "::1" (write IPv6 addresses in brackets)`},
		{"uri in address", "upstream u {\n server a:1/x;\n}", `t.conf:2: invalid host in upstream "a:1/x"`},
		{"hash without key", "upstream u {\n hash;\n}", `t.conf:2: invalid number of arguments in "hash" directive`},
		{"hash bad flag", "upstream u {\n hash $uri consistant;\n}", `t.conf:2: invalid parameter "consistant"`},
		{"least_conn with argument", "upstream u {\n least_conn 1;\n}", `t.conf:2: invalid number of arguments in "least_conn" directive`},
		{"random bad", "upstream u {\n random three;\n}", `t.conf:2: invalid parameter "three"`},
		{"random two bad method", "upstream u {\n random two fastest;\n}", `t.conf:2: invalid parameter "fastest"`},
		{"sticky with ip_hash", "upstream u {\n ip_hash;\n sticky cookie s;\n}", `t.conf:3: load balancing method redefined ("ip_hash" at line 2, "sticky" here)`},
		{"least_conn then hash", "upstream u {\n least_conn;\n hash $uri;\n}", `t.conf:3: load balancing method redefined ("least_conn" at line 2, "hash" here)`},
		{"backup with hash", "upstream u {\n hash $uri;\n server a backup;\n}", `t.conf:3: balancing method does not support parameter "backup" ("hash" at line 2)`},
		{"backup before ip_hash", "upstream u {\n server a backup;\n ip_hash;\n}", `t.conf:2: balancing method does not support parameter "backup" ("ip_hash" at line 3)`},
		{"backup with random", "upstream u {\n random two;\n server a backup;\n}", `t.conf:3: balancing method does not support parameter "backup" ("random" at line 2)`},
		{"slow_start with hash", "upstream u {\n hash $uri consistent;\n server a slow_start=10s;\n}", `t.conf:3: balancing method does not support parameter "slow_start" ("hash" at line 2)`},
		{"keepalive zero", "upstream u {\n keepalive 0;\n}", `t.conf:2: invalid value "0" in "keepalive" directive`},
		{"keepalive duplicate", "upstream u {\n keepalive 1;\n keepalive 2;\n}", `t.conf:3: "keepalive" directive is duplicate`},
		{"keepalive_timeout bad", "upstream u {\n keepalive_timeout forever;\n}", `t.conf:2: invalid value "forever" in "keepalive_timeout" directive`},
		{"zone bad size", "upstream u {\n zone z 64q;\n}", `t.conf:2: invalid zone size "64q"`},
		{"sticky route", "upstream u {\n sticky route $a;\n}", `t.conf:2: "sticky route" is not implemented by wsgate; use "sticky cookie"`},
		{"sticky no name", "upstream u {\n sticky cookie;\n}", `t.conf:2: invalid number of arguments in "sticky" directive`},
		{"sticky bad samesite", "upstream u {\n sticky cookie s samesite=sometimes;\n}", `t.conf:2: invalid parameter "samesite=sometimes"`},
		{"sticky bad expires", "upstream u {\n sticky cookie s expires=soon;\n}", `t.conf:2: invalid parameter "expires=soon"`},
		{"ntlm not implemented", "upstream u {\n ntlm;\n}", `t.conf:2: "ntlm" directive is not implemented by wsgate`},
		{"block on simple directive", "upstream u {\n least_conn { }\n}", `t.conf:2: directive "least_conn" is not terminated by ";"`},
		{"health_check bad interval", "upstream u {\n health_check interval=0;\n}", `t.conf:2: invalid parameter "interval=0"`},
		{"health_check bad type", "upstream u {\n health_check type=tcp;\n}", `t.conf:2: invalid parameter "type=tcp"`},
		{"health_check grpc", "upstream u {\n health_check type=grpc;\n}", `t.conf:2: health_check "type=grpc" is not implemented by wsgate`},
		{"health_check unknown match", "upstream u {\n health_check match=nope;\n}", `t.conf:2: health_check match "nope" not found`},
		{"health_check bad uri", "upstream u {\n health_check uri=health;\n}", `t.conf:2: invalid parameter "uri=health"`},
		{"health_check fails zero", "upstream u {\n health_check fails=0;\n}", `t.conf:2: invalid parameter "fails=0"`},
		{"health_check duplicate", "upstream u {\n health_check;\n health_check;\n}", `t.conf:3: "health_check" directive is duplicate`},
		{"health_check mandatory", "upstream u {\n health_check mandatory;\n}", `t.conf:2: health_check parameter "mandatory" is not implemented by wsgate`},
		{"match bad status", "match m {\n status 700;\n}\nupstream u {\n health_check match=m;\n}", `t.conf:2: invalid status "700"`},
		{"match impossible", "match m {\n status 200;\n status 500;\n}\nupstream u {\n health_check match=m;\n}", `t.conf:1: match "m": no status code can satisfy every "status" line`},
		{"match bad regex", "match m {\n body ~ \"(\";\n}\nupstream u {\n health_check match=m;\n}", "t.conf:2: invalid regex \"(\": error parsing regexp: missing closing ): `(`"},
		{"match header", "match m {\n header Content-Type = text/html;\n}\nupstream u {\n health_check match=m;\n}", `t.conf:2: "header" in match is not implemented by wsgate`},
		{
			desc: "every error reported, each at its line",
			src:  "upstream u {\n server a weight=0;\n foo;\n server b:1;\n server c max_fails=x;\n}",
			want: strings.Join([]string{
				`t.conf:2: invalid parameter "weight=0"`,
				`t.conf:3: unknown directive "foo"`,
				`t.conf:5: invalid parameter "max_fails=x"`,
			}, "\n"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, err := compileUpstreamSrc(t, tt.src)
			if err == nil {
				t.Fatalf("no error; compiled %+v", got)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
			for _, e := range Errors(err) {
				if e.File == "" || e.Line == 0 {
					t.Errorf("error without position: %v", e)
				}
			}
		})
	}
}

func TestCompileHealthCheckInLocation(t *testing.T) {
	t.Parallel()
	dirs, err := ParseBytes("t.conf", []byte("health_check uri=/ping passes=3;"), "/")
	if err != nil {
		t.Fatal(err)
	}
	hc, err := CompileHealthCheck(dirs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &HealthCheck{Interval: 5 * time.Second, Fails: 1, Passes: 3, URI: "/ping", Type: "http"}
	if !reflect.DeepEqual(hc, want) {
		t.Errorf("got %+v want %+v", hc, want)
	}
}

func TestParseUpstreamTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		in   string
		want time.Duration
		ok   bool
	}{
		{"bare number is seconds", "10", 10 * time.Second, true},
		{"seconds", "10s", 10 * time.Second, true},
		{"milliseconds", "500ms", 500 * time.Millisecond, true},
		{"combined", "1m30s", 90 * time.Second, true},
		{"combined with trailing seconds", "1m30", 90 * time.Second, true},
		{"hours days weeks", "1w2d3h", (7*24 + 2*24 + 3) * time.Hour, true},
		{"month and year", "1y1M", (365 + 30) * 24 * time.Hour, true},
		{"seconds then ms", "1s500ms", 1500 * time.Millisecond, true},
		{"zero", "0", 0, true},
		{"empty", "", 0, false},
		{"unit out of order", "30s1m", 0, false},
		{"repeated unit", "1s1s", 0, false},
		{"unknown unit", "10x", 0, false},
		{"unit alone", "s", 0, false},
		{"negative", "-1s", 0, false},
		{"ms then bare", "500ms1", 0, false},
		{"too long", "99999999999s", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseUpstreamTime(tt.in)
			if ok != tt.ok || got != tt.want {
				t.Errorf("ParseUpstreamTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseUpstreamTime(f *testing.F) {
	for _, s := range []string{"10", "1m30s", "500ms", "1y1M1w1d1h1m1s1ms", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseUpstreamTime(s)
		if ok && d < 0 {
			t.Errorf("%q: negative duration %v", s, d)
		}
	})
}

func FuzzCompileUpstream(f *testing.F) {
	for _, s := range []string{
		"server a:1 weight=2 max_fails=3 fail_timeout=5s backup;",
		"hash $remote_addr consistent; server [::1]:80;",
		"sticky cookie s expires=max path=/;",
		"health_check interval=1s type=websocket;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		dirs, err := ParseBytes("f.conf", []byte("upstream u {\n"+body+"\n}"), "/")
		if err != nil || len(dirs) != 1 || dirs[0].Name != "upstream" {
			return
		}
		u, err := CompileUpstream(dirs[0], nil)
		if err != nil {
			for _, e := range Errors(err) {
				if e.Line == 0 {
					t.Errorf("error without line: %v", e)
				}
			}
			return
		}
		for _, s := range u.Servers {
			if s.Weight < 1 || s.Addr == "" {
				t.Errorf("bad server %+v", s)
			}
		}
	})
}
