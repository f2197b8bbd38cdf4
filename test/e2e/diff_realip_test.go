package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// realipCase is one server block of the realip table and the requests sent
// to it. The harness connects from 127.0.0.1, so a case trusts 127.0.0.1
// (or not) to decide whether the header applies.
type realipCase struct {
	desc   string
	server string
	reqs   []realipReq
}

// realipReq is a request and what nginx does with it: the status, the
// backend and URI when forwarded, and addr: the response body of a return
// (trimmed), or the X-Real-IP the backend got ($remote_addr).
type realipReq struct {
	req     rawRequest
	status  int
	backend string
	uri     string
	addr    string
}

func hdrs(kv ...string) [][2]string {
	var h [][2]string
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, [2]string{kv[i], kv[i+1]})
	}
	return h
}

func rget(target string, kv ...string) rawRequest {
	return rawRequest{Target: target, Header: hdrs(kv...)}
}

// pass is the proxied location of most cases: X-Real-IP carries
// $remote_addr, X-Forwarded-For $proxy_add_x_forwarded_for.
const realipPass = `proxy_pass http://up;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`

var realipCases = []realipCase{
	{
		desc:   "default header X-Real-IP, 127.0.0.1 trusted",
		server: `set_real_ip_from 127.0.0.1; location / { ` + realipPass + ` } location /v { return 200 "$remote_addr|$remote_port|$realip_remote_addr"; } location /w { return 200 "$remote_addr|$realip_remote_addr"; }`,
		reqs: []realipReq{
			{rget("/a", "X-Real-IP", "203.0.113.7"), 200, "up", "/a", "203.0.113.7"},
			{rget("/b"), 200, "up", "/b", "127.0.0.1"},
			{rget("/c", "X-Real-IP", "not-an-address"), 200, "up", "/c", "127.0.0.1"},
			{rget("/d", "X-Real-IP", "203.0.113.7", "X-Forwarded-For", "198.51.100.1"), 200, "up", "/d", "203.0.113.7"},
			{rget("/v", "X-Real-IP", "203.0.113.7:8080"), 200, "", "", "203.0.113.7|8080|127.0.0.1"},
			{rget("/v", "X-Real-IP", "203.0.113.7"), 200, "", "", "203.0.113.7||127.0.0.1"},
			{rget("/v", "X-Real-IP", "[2001:db8::1]:443"), 200, "", "", "2001:db8::1|443|127.0.0.1"},
			{rget("/v", "X-Real-IP", "2001:DB8:0:0:1::1"), 200, "", "", "2001:db8::1:0:0:1||127.0.0.1"},
			{rget("/v", "X-Real-IP", "::ffff:10.1.2.3"), 200, "", "", "::ffff:10.1.2.3||127.0.0.1"},
			{rget("/v", "X-Real-IP", "10.1.2."), 200, "", "", "10.1.2.0||127.0.0.1"},
			{rget("/w", "X-Real-IP", "255.255.255.255"), 200, "", "", "127.0.0.1|127.0.0.1"},
			{rget("/w", "X-Real-IP", "[::1]"), 200, "", "", "127.0.0.1|127.0.0.1"},
			{rget("/v", "X-Real-IP", "1.2.3.4", "X-Real-IP", "5.6.7.8"), 200, "", "", "1.2.3.4||127.0.0.1"},
		},
	},
	{
		desc:   "127.0.0.1 not trusted: the header is ignored",
		server: `set_real_ip_from 10.0.0.0/8; set_real_ip_from ::1; location / { ` + realipPass + ` }`,
		reqs: []realipReq{
			{rget("/a", "X-Real-IP", "203.0.113.7"), 200, "up", "/a", "127.0.0.1"},
		},
	},
	{
		desc:   "X-Forwarded-For, not recursive: the last address",
		server: `set_real_ip_from 127.0.0.0/8; set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; location / { ` + realipPass + ` }`,
		reqs: []realipReq{
			{rget("/a", "X-Forwarded-For", "203.0.113.7, 10.0.0.1"), 200, "up", "/a", "10.0.0.1"},
			{rget("/b", "X-Forwarded-For", "203.0.113.7"), 200, "up", "/b", "203.0.113.7"},
			{rget("/c", "X-Forwarded-For", "198.51.100.1", "X-Forwarded-For", "203.0.113.7 ,  "), 200, "up", "/c", "203.0.113.7"},
			{rget("/d", "X-Forwarded-For", "203.0.113.7, junk"), 200, "up", "/d", "127.0.0.1"},
			{rget("/e", "X-Real-IP", "203.0.113.9"), 200, "up", "/e", "127.0.0.1"},
		},
	},
	{
		desc:   "X-Forwarded-For, recursive: the last untrusted address",
		server: `set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; real_ip_recursive on; location / { ` + realipPass + ` }`,
		reqs: []realipReq{
			{rget("/a", "X-Forwarded-For", "203.0.113.7, 10.0.0.1"), 200, "up", "/a", "203.0.113.7"},
			{rget("/b", "X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.0.0.1,10.0.0.2"), 200, "up", "/b", "203.0.113.7"},
			{rget("/c", "X-Forwarded-For", "10.0.0.3, 10.0.0.1"), 200, "up", "/c", "10.0.0.3"},
			{rget("/d", "X-Forwarded-For", "198.51.100.1", "X-Forwarded-For", "10.0.0.1"), 200, "up", "/d", "198.51.100.1"},
			{rget("/e", "X-Forwarded-For", "198.51.100.1", "X-Forwarded-For", "203.0.113.7, 10.0.0.1"), 200, "up", "/e", "203.0.113.7"},
			{rget("/f", "X-Forwarded-For", "junk, 10.0.0.1"), 200, "up", "/f", "10.0.0.1"},
		},
	},
	{
		desc:   "another field (case-insensitive name), first line",
		server: `set_real_ip_from 127.0.0.1; real_ip_header cf-connecting-ip; location / { ` + realipPass + ` }`,
		reqs: []realipReq{
			{rget("/a", "CF-Connecting-IP", "203.0.113.7"), 200, "up", "/a", "203.0.113.7"},
			{rget("/b", "X-Real-IP", "203.0.113.7"), 200, "up", "/b", "127.0.0.1"},
		},
	},
	{
		desc: "allow/deny see the real address",
		server: `set_real_ip_from 127.0.0.1;
    location / { allow 203.0.113.0/24; deny all; ` + realipPass + ` }`,
		reqs: []realipReq{
			{rget("/in", "X-Real-IP", "203.0.113.7"), 200, "up", "/in", "203.0.113.7"},
			{rget("/out", "X-Real-IP", "198.51.100.1"), 403, "", "", ""},
			{rget("/none"), 403, "", "", ""},
		},
	},
	{
		desc: "location-level realip: after the location's rewrite phase, before access",
		server: `location /ret { set_real_ip_from 127.0.0.1; return 200 "$remote_addr"; }
    location /acc/ { set_real_ip_from 127.0.0.1; deny 127.0.0.1; ` + realipPass + ` }
    location /other/ { ` + realipPass + ` }`,
		reqs: []realipReq{
			{rget("/ret", "X-Real-IP", "203.0.113.7"), 200, "", "", "127.0.0.1"},
			{rget("/acc/x", "X-Real-IP", "203.0.113.7"), 200, "up", "/acc/x", "203.0.113.7"},
			{rget("/acc/y"), 403, "", "", ""},
			{rget("/other/z", "X-Real-IP", "203.0.113.7"), 200, "up", "/other/z", "127.0.0.1"},
		},
	},
	{
		desc: "server-level realip applies once, before the server's rewrite phase",
		server: `set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;
    set $who $remote_addr;
    location / { return 200 "$who"; }
    location /r/ { real_ip_recursive on; set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8; ` + realipPass + ` }`,
		reqs: []realipReq{
			{rget("/s", "X-Forwarded-For", "203.0.113.7"), 200, "", "", "203.0.113.7"},
			{rget("/r/x", "X-Forwarded-For", "203.0.113.7, 10.0.0.1"), 200, "up", "/r/x", "10.0.0.1"},
		},
	},
	{
		desc: "the server's realip applies in post-read: a location's own set_real_ip_from list comes too late",
		server: `set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; real_ip_recursive on;
    location / { set_real_ip_from 10.9.9.9; ` + realipPass + ` } location /up/ { ` + realipPass + ` }`,
		reqs: []realipReq{
			{rget("/a", "X-Forwarded-For", "203.0.113.7"), 200, "up", "/a", "203.0.113.7"},
			{rget("/up/a", "X-Forwarded-For", "203.0.113.7, 10.0.0.1"), 200, "up", "/up/a", "203.0.113.7"},
		},
	},
}

// TestDifferentialRealIP runs the realip table under nginx and wsgate, one
// server per case, one config for all. nginx's results are checked against the
// table, then wsgate's compared with nginx's field by field.
func TestDifferentialRealIP(t *testing.T) {
	var conf strings.Builder
	conf.WriteString("events {}\nhttp {\n  access_log off;\n  upstream up { server {{UP}}; }\n")
	s := scenario{backends: []backendSpec{{"up", "UP", wsEcho}}}
	refs := addTableServers(&conf, &s, "R", len(realipCases), func(i int) (string, string, []rawRequest) {
		c := realipCases[i]
		reqs := make([]rawRequest, len(c.reqs))
		for j, r := range c.reqs {
			reqs[j] = r.req
		}
		return c.desc, c.server, reqs
	})
	conf.WriteString("}\n")
	s.conf = conf.String()

	label := func(i int) string {
		c := realipCases[refs[i].c]
		return fmt.Sprintf("case %q\n  server: %s", c.desc, c.server)
	}
	check := func(t *testing.T, ng []outcome) {
		for i, o := range ng {
			want := realipCases[refs[i].c].reqs[refs[i].r]
			problems := tableProblems(o, want.status, want.backend, want.uri)
			switch {
			case want.addr == "":
			case want.backend == "" && strings.TrimSpace(o.body) != want.addr:
				problems = append(problems, fmt.Sprintf("body %q, table says %q", o.body, want.addr))
			case want.backend != "" && len(o.records) == 1 && o.records[0].XRealIP != want.addr:
				problems = append(problems, fmt.Sprintf("X-Real-IP %q, table says %q", o.records[0].XRealIP, want.addr))
			}
			if len(problems) > 0 {
				t.Errorf("nginx disagrees with the table (fix the table):\n  %s\n  request: %s\n  %s",
					label(i), s.probes[i], strings.Join(problems, "\n  "))
			}
		}
	}
	runDifferential(t, s, label, check)
}
