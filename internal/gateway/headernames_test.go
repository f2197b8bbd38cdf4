package gateway_test

import (
	"strings"
	"testing"
)

// TestHeaderNames: ngx_http_core_module "ignore_invalid_headers" (default
// on): "Valid names are composed of English letters, digits, hyphens, and
// possibly underscores (as controlled by the underscores_in_headers
// directive)"; invalid fields are ignored, so they are neither passed
// upstream nor seen as $http_NAME. With underscores_in_headers on, "_"
// names pass; with ignore_invalid_headers off every field passes.
// Expectations checked against nginx 1.22 (a header after Host is judged
// by the name-based server, which wsgate uses for all of them).
func TestHeaderNames(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	loc := `location / { proxy_pass http://up; proxy_set_header X-Vars "[$http_x_foo][$http_x_a_b][$http_x_ok]"; }`
	p := startProxy(t, `
upstream up { server `+up.addr()+`; }
server { listen {{LISTEN}}; `+loc+` }
server { listen {{LISTEN}}; server_name under.test; underscores_in_headers on; `+loc+` }
server { listen {{LISTEN}}; server_name keep.test; ignore_invalid_headers off; `+loc+` }
server { listen {{LISTEN}}; server_name both.test; underscores_in_headers on; ignore_invalid_headers on; `+loc+` }
`)
	p2 := startProxy(t, `
upstream up { server `+up.addr()+`; }
underscores_in_headers on;
server { listen {{LISTEN}}; `+loc+` }
server { listen {{LISTEN}}; server_name off.test; underscores_in_headers off; `+loc+` }
`)
	extra := []string{"X_Foo: 1", "X-A_b: 2", "X.Dot: 3", "X-Ok: 4"}
	tests := []struct {
		desc, addr, host string
		vars             string
		passed, dropped  []string // header names the backend must / must not see
	}{
		{"defaults: names with _ or . are dropped", p.addr, "default.test",
			"[][][4]", []string{"X-Ok"}, []string{"X_foo", "X-A_b", "X.dot"}},
		{"underscores_in_headers on", p.addr, "under.test",
			"[1][2][4]", []string{"X-Ok", "X_foo", "X-A_b"}, []string{"X.dot"}},
		{"ignore_invalid_headers off keeps every field", p.addr, "keep.test",
			"[1][2][4]", []string{"X-Ok", "X_foo", "X-A_b", "X.dot"}, nil},
		{"underscores on, ignore on", p.addr, "both.test",
			"[1][2][4]", []string{"X_foo", "X-A_b"}, []string{"X.dot"}},
		{"http level on, inherited", p2.addr, "default.test",
			"[1][2][4]", []string{"X_foo", "X-A_b"}, []string{"X.dot"}},
		{"http level on, server off", p2.addr, "off.test",
			"[][][4]", []string{"X-Ok"}, []string{"X_foo", "X-A_b", "X.dot"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			resp := rawGet(t, tc.addr, "/", tc.host, extra...)
			if resp.status != 200 {
				t.Fatalf("status %d", resp.status)
			}
			rec := up.last(t)
			if got := rec.Header.Get("X-Vars"); got != tc.vars {
				t.Errorf("$http_x_foo, $http_x_a_b, $http_x_ok = %q, want %q", got, tc.vars)
			}
			for _, k := range tc.passed {
				if _, ok := rec.Header[k]; !ok {
					t.Errorf("header %s not passed upstream (got %v)", k, rec.Header)
				}
			}
			for _, k := range tc.dropped {
				if _, ok := rec.Header[k]; ok {
					t.Errorf("header %s passed upstream, want it ignored", k)
				}
			}
		})
	}
	if !strings.Contains(p.elog.String(), `client sent invalid header line: "X_foo: 1"`) {
		t.Errorf("no info line for the ignored header in the error log:\n%s", p.elog.String())
	}
}

// TestHeaderNamesVariableMatchesBothSpellings: $http_x_real_ip reads
// "X-Real-IP" and, when underscores are allowed, "X_Real_IP" too (nginx
// compares names with "-" read as "_").
func TestHeaderNamesVariableMatchesBothSpellings(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `
server { listen {{LISTEN}}; underscores_in_headers on; return 200 "$http_x_real_ip"; }
`)
	resp := rawGet(t, p.addr, "/", "a.test", "X_Real_IP: 10.0.0.1")
	if resp.status != 200 || resp.body != "10.0.0.1" {
		t.Errorf("X_Real_IP: %d %q, want 200 \"10.0.0.1\"", resp.status, resp.body)
	}
	resp = rawGet(t, p.addr, "/", "a.test", "X-Real-IP: 10.0.0.2")
	if resp.status != 200 || resp.body != "10.0.0.2" {
		t.Errorf("X-Real-IP: %d %q, want 200 \"10.0.0.2\"", resp.status, resp.body)
	}
}
