package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRealIPUpstreamHeaders: with 127.0.0.1 trusted, the address from
// X-Forwarded-For (recursive) becomes $remote_addr: X-Real-IP and the
// appended address of $proxy_add_x_forwarded_for carry it, and
// $realip_remote_addr the connection's; the access log sees it too.
func TestRealIPUpstreamHeaders(t *testing.T) {
	up := newRecorder(t, "up")
	p := startProxy(t, `log_format ri '$remote_addr $realip_remote_addr $status';
server {
  listen {{LISTEN}};
  access_log {{PREFIX}}/access.log ri;
  set_real_ip_from 127.0.0.1;
  set_real_ip_from 10.0.0.0/8;
  real_ip_header X-Forwarded-For;
  real_ip_recursive on;
  location / {
    proxy_pass http://`+up.addr()+`;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Orig $realip_remote_addr;
  }
}`)
	resp := rawGet(t, p.addr, "/a", "a.test", "X-Forwarded-For: 198.51.100.1, 203.0.113.7, 10.0.0.2")
	if resp.status != 200 {
		t.Fatalf("status %d", resp.status)
	}
	h := up.last(t).Header
	if got := h.Get("X-Real-IP"); got != "203.0.113.7" {
		t.Errorf("X-Real-IP %q, want 203.0.113.7", got)
	}
	if got := h.Get("X-Forwarded-For"); got != "198.51.100.1, 203.0.113.7, 10.0.0.2, 203.0.113.7" {
		t.Errorf("X-Forwarded-For %q", got)
	}
	if got := h.Get("X-Orig"); got != "127.0.0.1" {
		t.Errorf("$realip_remote_addr %q, want 127.0.0.1", got)
	}
	var line string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(p.prefix, "access.log"))
		if line = strings.TrimSpace(string(b)); line != "" {
			break
		}
	}
	if line != "203.0.113.7 127.0.0.1 200" {
		t.Errorf("access log %q, want \"203.0.113.7 127.0.0.1 200\"", line)
	}
}

// TestRealIPUntrustedIgnored: a connection from an address outside
// set_real_ip_from keeps its own address, whatever it sends.
func TestRealIPUntrustedIgnored(t *testing.T) {
	up := newRecorder(t, "up")
	p := startProxy(t, `server {
  listen {{LISTEN}};
  set_real_ip_from 10.0.0.0/8;
  location / { proxy_pass http://`+up.addr()+`; proxy_set_header X-Real-IP $remote_addr; }
}`)
	rawGet(t, p.addr, "/a", "a.test", "X-Real-IP: 203.0.113.7")
	if got := up.last(t).Header.Get("X-Real-IP"); got != "127.0.0.1" {
		t.Errorf("X-Real-IP %q, want 127.0.0.1 (connection not trusted)", got)
	}
}

// TestRealIPAllowDeny: allow/deny judge the address realip found, with
// the location's realip settings applied before the access check.
func TestRealIPAllowDeny(t *testing.T) {
	up := newRecorder(t, "up")
	p := startProxy(t, `server {
  listen {{LISTEN}};
  location / {
    set_real_ip_from 127.0.0.1;
    allow 203.0.113.0/24;
    deny all;
    proxy_pass http://`+up.addr()+`;
  }
}`)
	for _, c := range []struct {
		hdr  string
		want int
	}{
		{"X-Real-IP: 203.0.113.7", 200},
		{"X-Real-IP: 198.51.100.1", 403},
		{"X-Other: 1", 403},
		{"X-Real-IP: bogus", 403},
	} {
		if resp := rawGet(t, p.addr, "/", "a.test", c.hdr); resp.status != c.want {
			t.Errorf("%s: status %d, want %d", c.hdr, resp.status, c.want)
		}
	}
	if !strings.Contains(p.elog.String(), "access forbidden by rule, client: 198.51.100.1") {
		t.Errorf("error log does not name the real client:\n%s", p.elog.String())
	}
}
