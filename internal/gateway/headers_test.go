package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestProxySetHeaderInheritance: "These directives are inherited from the
// previous configuration level if and only if there are no
// proxy_set_header directives defined on the current level."
// (ngx_http_proxy_module). Host defaults to $proxy_host.
func TestProxySetHeaderInheritance(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	p := startProxy(t, `
upstream up { server `+up.addr()+`; }
proxy_set_header X-Http http-level;
server {
	listen {{LISTEN}};
	proxy_set_header X-Server server-level;
	proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
	location /inherit/ { proxy_pass http://up; }
	location /own/ { proxy_pass http://up; proxy_set_header X-Own own; }
	location /host/ { proxy_pass http://up; proxy_set_header Host $host; }
	location /addr/ { proxy_pass http://`+up.addr()+`; proxy_set_header X-Own own; }
	location /empty/ { proxy_pass http://up; proxy_set_header X-Drop ""; }
}
server {
	listen {{LISTEN}};
	server_name bare.test;
	location / { proxy_pass http://up; }
}`)
	tests := []struct {
		desc   string
		target string
		host   string
		extra  []string
		want   map[string]string // "" = absent
	}{
		{
			desc: "no proxy_set_header in the location: the server's list", target: "/inherit/x", host: "example.test",
			extra: []string{"X-Forwarded-For: 10.0.0.1"},
			want:  map[string]string{"X-Server": "server-level", "X-Http": "", "X-Forwarded-For": "10.0.0.1, 127.0.0.1", "Host": "up"},
		},
		{
			desc: "own proxy_set_header: nothing inherited", target: "/own/x", host: "example.test",
			extra: []string{"X-Forwarded-For: 10.0.0.1"},
			want:  map[string]string{"X-Own": "own", "X-Server": "", "X-Forwarded-For": "10.0.0.1", "Host": "up"},
		},
		{
			desc: "Host $host: lowercased, no port", target: "/host/x", host: "Example.TEST:8080",
			want: map[string]string{"Host": "example.test", "X-Server": ""},
		},
		{
			desc: "implicit upstream: Host is the proxy_pass address", target: "/addr/x", host: "example.test",
			want: map[string]string{"Host": up.addr()},
		},
		{
			desc: "empty value: the header is not sent", target: "/empty/x", host: "example.test",
			extra: []string{"X-Drop: from-client"},
			want:  map[string]string{"X-Drop": ""},
		},
		{
			desc: "http-level list when server and location have none", target: "/x", host: "bare.test",
			extra: []string{"X-Forwarded-For: 10.0.0.1"},
			want:  map[string]string{"X-Http": "http-level", "X-Forwarded-For": "10.0.0.1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			// sequential: one backend records all requests
			resp := rawGet(t, p.addr, tc.target, tc.host, tc.extra...)
			if resp.status != 200 {
				t.Fatalf("status %d", resp.status)
			}
			rec := up.last(t)
			for k, v := range tc.want {
				got := strings.Join(rec.Header.Values(k), ", ")
				if k == "Host" {
					got = rec.Host
				}
				if got != v {
					t.Errorf("upstream %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestHopByHopRequestHeaders: hop-by-hop headers (RFC 9110 §7.6.1) and
// those the client's Connection header names are not forwarded.
func TestHopByHopRequestHeaders(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	p := startProxy(t, `
upstream up { server `+up.addr()+`; }
server {
	listen {{LISTEN}};
	location / { proxy_pass http://up; }
}`)
	req := "GET /h HTTP/1.1\r\nHost: example.test\r\n" +
		"Connection: keep-alive, X-Secret\r\n" +
		"X-Secret: s\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n" +
		"Proxy-Authorization: Basic eA==\r\nX-Normal: n\r\n\r\n"
	resp := rawDo(t, p.addr, req)
	if resp.status != 200 {
		t.Fatalf("status %d", resp.status)
	}
	rec := up.last(t)
	for _, h := range []string{"X-Secret", "Keep-Alive", "Te", "Proxy-Connection", "Proxy-Authorization", "Upgrade"} {
		if v := rec.Header.Values(h); len(v) > 0 {
			t.Errorf("upstream got %s: %q; hop-by-hop headers must not be forwarded", h, v)
		}
	}
	if got := rec.Header.Get("X-Normal"); got != "n" {
		t.Errorf("upstream X-Normal = %q, want n", got)
	}
	if c := rec.Header.Get("Connection"); strings.Contains(strings.ToLower(c), "x-secret") {
		t.Errorf("upstream Connection = %q: the client's Connection header was forwarded", c)
	}
}

// TestResponseHeaders: Server and Date of the upstream are replaced by
// the proxy's (proxy_hide_header defaults), proxy_hide_header hides more,
// hop-by-hop response headers are dropped, and add_header applies to
// 200, 201, 204, 206, 301, 302, 303, 304, 307, 308 unless "always".
func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	up.handle = func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Server", "backend/1.0")
		h.Set("Date", "Mon, 01 Jan 2001 00:00:00 GMT")
		h.Set("X-Internal", "secret")
		h.Set("X-Accel-Buffering", "no")
		h.Set("X-Kept", "kept")
		h.Set("Keep-Alive", "timeout=5")
		code := 200
		switch r.URL.Path {
		case "/404":
			code = 404
		case "/302":
			h.Set("Location", "/elsewhere")
			code = 302
		case "/500":
			code = 500
		}
		w.WriteHeader(code)
		w.Write([]byte("body"))
	}
	p := startProxy(t, `
upstream up { server `+up.addr()+`; }
server {
	listen {{LISTEN}};
	location / {
		proxy_pass http://up;
		proxy_hide_header X-Internal;
		add_header X-Added yes;
		add_header X-Always yes always;
	}
	location /dead/ {
		proxy_pass http://127.0.0.1:1;
		add_header X-Added yes;
		add_header X-Always yes always;
	}
}`)
	tests := []struct {
		desc          string
		path          string
		status        int
		added, always bool
	}{
		{desc: "200", path: "/200", status: 200, added: true, always: true},
		{desc: "302", path: "/302", status: 302, added: true, always: true},
		{desc: "404 from upstream", path: "/404", status: 404, always: true},
		{desc: "500 from upstream", path: "/500", status: 500, always: true},
		{desc: "502 of the proxy", path: "/dead/x", status: 502, always: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			resp, _ := get(t, p.url(tc.path))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("X-Added") != ""; got != tc.added {
				t.Errorf("X-Added present = %v, want %v", got, tc.added)
			}
			if got := resp.Header.Get("X-Always") != ""; got != tc.always {
				t.Errorf("X-Always present = %v, want %v", got, tc.always)
			}
			if got := resp.Header.Get("Server"); got != "wsgate" {
				t.Errorf("Server = %q, want wsgate", got)
			}
			d, err := http.ParseTime(resp.Header.Get("Date"))
			if err != nil || time.Since(d) > time.Minute {
				t.Errorf("Date = %q, want the proxy's current date", resp.Header.Get("Date"))
			}
			if tc.path == "/dead/x" {
				return
			}
			for _, h := range []string{"X-Internal", "X-Accel-Buffering", "Keep-Alive"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("%s = %q, want hidden", h, v)
				}
			}
			if got := resp.Header.Get("X-Kept"); got != "kept" {
				t.Errorf("X-Kept = %q, want kept", got)
			}
		})
	}
}

// TestBugProxyPassHeaderServer: with "proxy_pass_header Server;" nginx
// passes the upstream's Server header and adds none of its own (the
// header filter only adds Server when headers_out.server is unset).
// wsgate's responseWriter.WriteHeader (proxy/handler.go) always overwrites
// Server with "wsgate", so the passed header is lost.
func TestBugProxyPassHeaderServer(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	up.handle = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "backend/1.0")
		w.Write([]byte("body"))
	}
	p := startProxy(t, `
upstream up { server `+up.addr()+`; }
server {
	listen {{LISTEN}};
	location / { proxy_pass http://up; proxy_pass_header Server; }
}`)
	resp, _ := get(t, p.url("/x"))
	if got := resp.Header.Values("Server"); len(got) != 1 || got[0] != "backend/1.0" {
		t.Errorf("Server = %q, want [backend/1.0] (proxy_pass_header Server)", got)
	}
}
