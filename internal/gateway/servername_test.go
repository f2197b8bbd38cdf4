package gateway_test

import "testing"

// TestServerSelection: the Host header picks the server block through a
// real socket (exact, wildcard, regex, default_server), with port,
// trailing dot and uppercase ignored.
func TestServerSelection(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `
server { listen {{LISTEN}}; server_name first.test; return 200 first; }
server { listen {{LISTEN}} default_server; server_name default.test; return 200 default; }
server { listen {{LISTEN}}; server_name example.com; return 200 exact; }
server { listen {{LISTEN}}; server_name *.example.com; return 200 wild; }
server { listen {{LISTEN}}; server_name www.example.*; return 200 tail; }
server { listen {{LISTEN}}; server_name ~^[a-z]+\.apps\.test$; return 200 regex; }
`)
	tests := []struct{ desc, host, want string }{
		{desc: "exact", host: "example.com", want: "exact"},
		{desc: "exact, uppercase, port, trailing dot", host: "EXAMPLE.com.:80", want: "exact"},
		{desc: "leading wildcard", host: "www.example.com", want: "wild"},
		{desc: "trailing wildcard", host: "www.example.org", want: "tail"},
		{desc: "regex", host: "chat.apps.test", want: "regex"},
		{desc: "unknown: default_server, not the first", host: "nowhere.test", want: "default"},
		{desc: "IP address: default_server", host: "127.0.0.1", want: "default"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			resp := rawGet(t, p.addr, "/", tc.host)
			if resp.status != 200 || resp.body != tc.want {
				t.Errorf("Host %q: %d %q, want 200 %q", tc.host, resp.status, resp.body, tc.want)
			}
		})
	}
}

// TestBugServerNameCaptures: ngx_http_core_module "server_name": "Named
// captures in a regular expression create variables that can later be used
// in other directives" (and $1..$9 likewise). route.Binding.Server returns
// only the server, so the captures are lost and $app evaluates to "".
func TestBugServerNameCaptures(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `
server { listen {{LISTEN}}; server_name ~^(?<app>[a-z]+)\.apps\.test$; return 200 "app=$app"; }
server { listen {{LISTEN}}; server_name ~^([a-z]+)\.num\.test$; return 200 "one=$1"; }
`)
	for host, want := range map[string]string{"chat.apps.test": "app=chat", "blog.num.test": "one=blog"} {
		resp := rawGet(t, p.addr, "/", host)
		if resp.status != 200 || resp.body != want {
			t.Errorf("Host %q: %d %q, want 200 %q", host, resp.status, resp.body, want)
		}
	}
}
