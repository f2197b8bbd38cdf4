package config

import (
	"strings"
	"testing"
	"time"
)

// TestHeaderNameDirectives: underscores_in_headers (default off) and
// ignore_invalid_headers (default on) are flags of the http and server
// contexts, inherited from http.
func TestHeaderNameDirectives(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
    underscores_in_headers on;
    server { listen 8080; location / { } }
    server { listen 8081; underscores_in_headers off; ignore_invalid_headers off; }
    server { listen 8082; }
}`)
	srv := cfg.HTTP.Servers
	if s := srv[0].Settings; !s.UnderscoresInHeaders || !s.IgnoreInvalidHeaders {
		t.Errorf("http-level on, inherited: underscores=%v ignore=%v", s.UnderscoresInHeaders, s.IgnoreInvalidHeaders)
	}
	if s := srv[0].Locations[0].Settings; !s.UnderscoresInHeaders || !s.IgnoreInvalidHeaders {
		t.Errorf("location settings: underscores=%v ignore=%v", s.UnderscoresInHeaders, s.IgnoreInvalidHeaders)
	}
	if s := srv[1].Settings; s.UnderscoresInHeaders || s.IgnoreInvalidHeaders {
		t.Errorf("server-level off: underscores=%v ignore=%v", s.UnderscoresInHeaders, s.IgnoreInvalidHeaders)
	}
	cfg = mustLoad(t, `http { server { } }`)
	if s := cfg.HTTP.Servers[0].Settings; s.UnderscoresInHeaders || !s.IgnoreInvalidHeaders {
		t.Errorf("defaults: underscores=%v ignore=%v, want off and on", s.UnderscoresInHeaders, s.IgnoreInvalidHeaders)
	}

	bad := []struct{ src, want string }{
		{`http { server { location / { underscores_in_headers on; } } }`, `"underscores_in_headers" directive is not allowed here`},
		{`http { server { location / { ignore_invalid_headers off; } } }`, `"ignore_invalid_headers" directive is not allowed here`},
		{`http { underscores_in_headers yes; server { } }`, `invalid value "yes" in "underscores_in_headers" directive, it must be "on" or "off"`},
		{`http { server { ignore_invalid_headers; } }`, `invalid number of arguments in "ignore_invalid_headers" directive`},
		{`http { server { underscores_in_headers on; underscores_in_headers off; } }`, `"underscores_in_headers" directive is duplicate`},
	}
	for _, tt := range bad {
		_, err := loadSrc(t, tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s\n  error %v\n  want  %s", tt.src, err, tt.want)
		}
	}
}

// TestConnectionTimeouts: keepalive_timeout TIME [HEADER_TIME] (http,
// server, location; default 75s) and client_header_timeout TIME (http,
// server; default 60s).
func TestConnectionTimeouts(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
    keepalive_timeout 10s 8;
    client_header_timeout 5s;
    server { listen 8080; location / { keepalive_timeout 0; } location /b { } }
    server { listen 8081; client_header_timeout 1m; keepalive_timeout 500ms; }
}`)
	s0 := cfg.HTTP.Servers[0]
	if s := s0.Settings; s.KeepaliveTimeout != 10*time.Second || s.KeepaliveHeader != 8*time.Second || s.ClientHeaderTimeout != 5*time.Second {
		t.Errorf("http level, inherited: keepalive %v header %v client_header %v", s.KeepaliveTimeout, s.KeepaliveHeader, s.ClientHeaderTimeout)
	}
	if s := s0.Locations[0].Settings; s.KeepaliveTimeout != 0 || s.KeepaliveHeader != 0 {
		t.Errorf("keepalive_timeout 0 in a location: %v %v", s.KeepaliveTimeout, s.KeepaliveHeader)
	}
	if s := s0.Locations[1].Settings; s.KeepaliveTimeout != 10*time.Second || s.KeepaliveHeader != 8*time.Second {
		t.Errorf("inherited by a location: %v %v", s.KeepaliveTimeout, s.KeepaliveHeader)
	}
	if s := cfg.HTTP.Servers[1].Settings; s.KeepaliveTimeout != 500*time.Millisecond || s.KeepaliveHeader != 0 || s.ClientHeaderTimeout != time.Minute {
		t.Errorf("server level: keepalive %v header %v client_header %v", s.KeepaliveTimeout, s.KeepaliveHeader, s.ClientHeaderTimeout)
	}
	cfg = mustLoad(t, `http { server { } }`)
	if s := cfg.HTTP.Servers[0].Settings; s.KeepaliveTimeout != 75*time.Second || s.KeepaliveHeader != 0 || s.ClientHeaderTimeout != time.Minute {
		t.Errorf("defaults: keepalive %v header %v client_header %v", s.KeepaliveTimeout, s.KeepaliveHeader, s.ClientHeaderTimeout)
	}
	bad := []struct{ src, want string }{
		{`http { server { keepalive_timeout 10s soon; } }`, `"keepalive_timeout" directive invalid value "soon"`},
		{`http { server { keepalive_timeout 10s 500ms; } }`, `"keepalive_timeout" directive invalid value "500ms"`},
		{`http { server { keepalive_timeout 1 2 3; } }`, `invalid number of arguments in "keepalive_timeout" directive`},
		{`http { server { client_header_timeout never; } }`, `"client_header_timeout" directive invalid value "never"`},
		{`http { server { location / { client_header_timeout 5s; } } }`, `"client_header_timeout" directive is not allowed here`},
	}
	for _, tt := range bad {
		_, err := loadSrc(t, tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s\n  error %v\n  want  %s", tt.src, err, tt.want)
		}
	}
}

// TestClientKeepaliveRequestsAndBodyTimeout: keepalive_requests N (http,
// server, location; default 1000; a number as nginx's ngx_atoi reads it)
// and client_body_timeout TIME (http, server, location; default 60s) take
// effect, so "wsgate -t" no longer lists them as ignored; the upstream
// block's keepalive_requests stays its own.
func TestClientKeepaliveRequestsAndBodyTimeout(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http {
    keepalive_requests 7;
    client_body_timeout 30s;
    upstream u { server 127.0.0.1:1; keepalive_requests 5; }
    server {
        listen 8080;
        location / { keepalive_requests 0; client_body_timeout 500ms; proxy_pass http://u; }
        location /b { }
    }
    server { listen 8081; keepalive_requests 2000000000; client_body_timeout 0; }
}`)
	s0 := cfg.HTTP.Servers[0]
	if s := s0.Settings; s.KeepaliveRequests != 7 || s.ClientBodyTimeout != 30*time.Second {
		t.Errorf("http level, inherited: keepalive_requests %d client_body_timeout %v", s.KeepaliveRequests, s.ClientBodyTimeout)
	}
	if s := s0.Locations[0].Settings; s.KeepaliveRequests != 0 || s.ClientBodyTimeout != 500*time.Millisecond {
		t.Errorf("location level: keepalive_requests %d client_body_timeout %v", s.KeepaliveRequests, s.ClientBodyTimeout)
	}
	if s := s0.Locations[1].Settings; s.KeepaliveRequests != 7 || s.ClientBodyTimeout != 30*time.Second {
		t.Errorf("inherited by a location: keepalive_requests %d client_body_timeout %v", s.KeepaliveRequests, s.ClientBodyTimeout)
	}
	if s := cfg.HTTP.Servers[1].Settings; s.KeepaliveRequests != 2000000000 || s.ClientBodyTimeout != 0 {
		t.Errorf("server level: keepalive_requests %d client_body_timeout %v", s.KeepaliveRequests, s.ClientBodyTimeout)
	}
	if u := cfg.HTTP.Upstreams["u"]; u == nil || u.KeepaliveRequests != 5 {
		t.Errorf("upstream keepalive_requests: %+v", u)
	}
	for _, ig := range cfg.Ignored {
		if ig.Name == "keepalive_requests" || ig.Name == "client_body_timeout" {
			t.Errorf("listed as ignored: %s", ig)
		}
	}
	cfg = mustLoad(t, `http { server { } }`)
	if s := cfg.HTTP.Servers[0].Settings; s.KeepaliveRequests != 1000 || s.ClientBodyTimeout != time.Minute {
		t.Errorf("defaults: keepalive_requests %d client_body_timeout %v", s.KeepaliveRequests, s.ClientBodyTimeout)
	}
	bad := []struct{ src, want string }{
		{`http { keepalive_requests -1; server { } }`, `"keepalive_requests" directive invalid number "-1"`},
		{`http { server { keepalive_requests 1k; } }`, `"keepalive_requests" directive invalid number "1k"`},
		{`http { server { location / { keepalive_requests many; } } }`, `"keepalive_requests" directive invalid number "many"`},
		{`http { server { keepalive_requests 99999999999999999999; } }`, `"keepalive_requests" directive invalid number`},
		{`http { server { keepalive_requests 1 2; } }`, `invalid number of arguments in "keepalive_requests" directive`},
		{`http { server { keepalive_requests 1; keepalive_requests 2; } }`, `"keepalive_requests" directive is duplicate`},
		{`http { server { client_body_timeout -1s; } }`, `"client_body_timeout" directive invalid value "-1s"`},
		{`http { server { location / { client_body_timeout soon; } } }`, `"client_body_timeout" directive invalid value "soon"`},
		{`keepalive_requests 5; http { }`, `"keepalive_requests" directive is not allowed here`},
	}
	for _, tt := range bad {
		_, err := loadSrc(t, tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s\n  error %v\n  want  %s", tt.src, err, tt.want)
		}
	}
}

// TestImplicitUpstreamKeepaliveDefaults: the one-server upstream behind
// "proxy_pass http://host:port" gets the upstream keepalive defaults
// (keepalive_timeout 60s, keepalive_requests 1000, keepalive_time 1h).
func TestImplicitUpstreamKeepaliveDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `http { server { location / { proxy_pass http://127.0.0.1:9; } } }`)
	u := cfg.HTTP.Implicit["127.0.0.1:9"]
	if u == nil {
		t.Fatalf("no implicit upstream: %v", cfg.HTTP.Implicit)
	}
	if u.Keepalive != 0 || u.KeepaliveTimeout != time.Minute || u.KeepaliveRequests != 1000 || u.KeepaliveTime != time.Hour {
		t.Errorf("implicit upstream keepalive %d timeout %v requests %d time %v", u.Keepalive, u.KeepaliveTimeout, u.KeepaliveRequests, u.KeepaliveTime)
	}
}
