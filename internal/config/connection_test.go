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
