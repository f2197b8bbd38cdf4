package config

import (
	"strings"
	"testing"
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
