package config

import (
	"net/netip"
	"strings"
	"testing"
)

// TestRealIPCompile: set_real_ip_from (the innermost level's list),
// real_ip_header and real_ip_recursive (inherited one by one), as nginx
// merges them; no set_real_ip_from, no module.
func TestRealIPCompile(t *testing.T) {
	cfg := mustLoad(t, `http {
  set_real_ip_from 10.0.0.0/8;
  real_ip_header X-Forwarded-For;
  server {
    real_ip_recursive on;
    location /a { }
    location /b { set_real_ip_from 192.168.1.7; set_real_ip_from 2001:db8::/32; real_ip_header CF-Connecting-IP; }
    location /c { real_ip_header x-forwarded-for; }
  }
  server { listen 81; set_real_ip_from 10.1.2.3/8; real_ip_header X-Real-IP; }
  server { listen 82; location / { real_ip_header X-Real-IP; } }
}`)
	srv := cfg.HTTP.Servers[0]
	a := findLoc(t, cfg, "/a").Settings.RealIP
	if a == nil || len(a.From) != 1 || a.From[0] != netip.MustParsePrefix("10.0.0.0/8") || a.Kind != RealIPXForwardedFor || !a.Recursive {
		t.Errorf("/a: %+v", a)
	}
	if ri := srv.Settings.RealIP; ri == nil || !ri.Recursive {
		t.Errorf("server: %+v", ri)
	}
	b := findLoc(t, cfg, "/b").Settings.RealIP
	if b == nil || len(b.From) != 2 || b.Kind != RealIPHeader || b.Header != "Cf-Connecting-Ip" || !b.Recursive {
		t.Errorf("/b: %+v", b)
	}
	if !b.Trusted(netip.MustParseAddr("192.168.1.7")) || b.Trusted(netip.MustParseAddr("10.0.0.1")) || !b.Trusted(netip.MustParseAddr("2001:db8::5")) {
		t.Errorf("/b trusts the wrong addresses: %v", b.From)
	}
	// nginx compares the two known names case-sensitively
	if c := findLoc(t, cfg, "/c").Settings.RealIP; c == nil || c.Kind != RealIPHeader || c.Header != "X-Forwarded-For" {
		t.Errorf("/c: %+v", c)
	}
	s81 := cfg.HTTP.Servers[1].Settings.RealIP
	if s81 == nil || s81.From[0] != netip.MustParsePrefix("10.0.0.0/8") || s81.Kind != RealIPXRealIP || s81.Recursive {
		t.Errorf("listen 81: %+v", s81)
	}
	if ri := cfg.HTTP.Servers[2].Locations[0].Settings.RealIP; ri == nil {
		t.Errorf("listen 82: the http-level list is inherited")
	}
	none := mustLoad(t, `http { server { real_ip_header X-Forwarded-For; location / { } } }`)
	if ri := none.HTTP.Servers[0].Locations[0].Settings.RealIP; ri != nil {
		t.Errorf("without set_real_ip_from: %+v, want nil", ri)
	}
}

func TestRealIPErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`set_real_ip_from unix:;`, "not implemented"},
		{`set_real_ip_from 10.0.0.0/33;`, `invalid parameter "10.0.0.0/33"`},
		{`set_real_ip_from no-such-host.invalid;`, `host not found in set_real_ip_from "no-such-host.invalid"`},
		{`set_real_ip_from 1.2.3.4; real_ip_header proxy_protocol;`, "not implemented"},
		{`real_ip_header X-Real-IP; real_ip_header X-Forwarded-For;`, "is duplicate"},
		{`real_ip_recursive maybe;`, "real_ip_recursive"},
		{`real_ip_recursive on; real_ip_recursive off;`, "is duplicate"},
		{`set_real_ip_from;`, "invalid number of arguments"},
		{`location / { if ($a) { set_real_ip_from 1.2.3.4; } }`, "not allowed here"},
	} {
		_, err := loadSrc(t, "http { server { "+c.src+" } }")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.src, err, c.want)
		}
	}
}
