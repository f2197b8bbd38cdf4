package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// uriCase is one server block of the proxy_pass table: its locations and the
// requests sent to it, each with what nginx does (checked against nginx
// itself; wsgate must then match nginx).
type uriCase struct {
	desc      string
	locations string
	reqs      []uriReq
}

type uriReq struct {
	req     rawRequest
	status  int
	backend string // "" when the request must not be forwarded
	uri     string // upstream request-target
}

func get(target string) rawRequest { return rawRequest{Target: target} }

var uriCases = []uriCase{
	{
		desc:      "prefix with slash, proxy_pass upstream without URI: request URI passed as sent",
		locations: `location /app/ { proxy_pass http://up; }`,
		reqs: []uriReq{
			{get("/app/x?y=1"), 200, "up", "/app/x?y=1"},
			{get("/app/a%20b/c%2Fd?q=%2F&r=a%20b"), 200, "up", "/app/a%20b/c%2Fd?q=%2F&r=a%20b"},
			{get("/app//x//y"), 200, "up", "/app//x//y"},
			{get("/app/./x/../y"), 200, "up", "/app/./x/../y"},
			{get("/app"), 301, "", ""}, // auto redirect to /app/
			{get("/app?z=1"), 301, "", ""},
		},
	},
	{
		desc:      "prefix with slash, proxy_pass http://up/: prefix replaced by /",
		locations: `location /app/ { proxy_pass http://up/; }`,
		reqs: []uriReq{
			{get("/app/x?y=1"), 200, "up", "/x?y=1"},
			{get("/app/"), 200, "up", "/"},
			{get("/app/a%20b"), 200, "up", "/a%20b"},
			{get("/app/a%2Fb"), 200, "up", "/a/b"},
			{get("/app//x"), 200, "up", "/x"},
			{get("/app/./x/../y"), 200, "up", "/y"},
			{get("/app/a+b%3Fc"), 200, "up", "/a+b%3Fc"},
			{get("/app/caf%C3%A9"), 200, "up", "/caf%C3%A9"},
			{get("/app/%7Euser"), 200, "up", "/~user"},
			{get("/app"), 301, "", ""},
		},
	},
	{
		desc:      "prefix without slash, proxy_pass http://up/",
		locations: `location /app { proxy_pass http://up/; }`,
		reqs: []uriReq{
			{get("/app/x"), 200, "up", "//x"},
			{get("/appx"), 200, "up", "/x"},
			{get("/app"), 200, "up", "/"},
			{get("/app?q=1"), 200, "up", "/?q=1"},
		},
	},
	{
		desc:      "prefix without slash, proxy_pass http://up",
		locations: `location /app { proxy_pass http://up; }`,
		reqs: []uriReq{
			{get("/app/x"), 200, "up", "/app/x"},
			{get("/appx?a=1"), 200, "up", "/appx?a=1"},
			{get("/app"), 200, "up", "/app"},
		},
	},
	{
		desc:      "prefix with slash, proxy_pass http://up/x/",
		locations: `location /app/ { proxy_pass http://up/x/; }`,
		reqs: []uriReq{
			{get("/app/a/b?c=d"), 200, "up", "/x/a/b?c=d"},
			{get("/app/"), 200, "up", "/x/"},
		},
	},
	{
		desc:      "prefix without slash, proxy_pass http://up/x/",
		locations: `location /app { proxy_pass http://up/x/; }`,
		reqs: []uriReq{
			{get("/app/a"), 200, "up", "/x//a"},
			{get("/app"), 200, "up", "/x/"},
		},
	},
	{
		desc:      "prefix with slash, proxy_pass http://up/x (no trailing slash)",
		locations: `location /app/ { proxy_pass http://up/x; }`,
		reqs: []uriReq{
			{get("/app/a"), 200, "up", "/xa"},
			{get("/app/"), 200, "up", "/x"},
		},
	},
	{
		desc:      "= location, proxy_pass without URI",
		locations: `location = /exact { proxy_pass http://up; }`,
		reqs: []uriReq{
			{get("/exact?q=1"), 200, "up", "/exact?q=1"},
			{get("/exact/"), 404, "", ""},
			{get("/exactly"), 404, "", ""},
		},
	},
	{
		desc:      "= location, proxy_pass with URI",
		locations: `location = /exact { proxy_pass http://up/other; }`,
		reqs: []uriReq{
			{get("/exact"), 200, "up", "/other"},
			{get("/exact?q=1"), 200, "up", "/other?q=1"},
		},
	},
	{
		desc:      "regex location, proxy_pass without URI",
		locations: `location ~ ^/re/(.*)$ { proxy_pass http://up; }`,
		reqs: []uriReq{
			{get("/re/a%20b?x=1"), 200, "up", "/re/a%20b?x=1"},
			{get("/re/"), 200, "up", "/re/"},
			{get("/RE/x"), 404, "", ""},
		},
	},
	{
		desc:      "case-insensitive regex location",
		locations: `location ~* \.(php|cgi)$ { proxy_pass http://up; }`,
		reqs: []uriReq{
			{get("/Index.PHP"), 200, "up", "/Index.PHP"},
			{get("/a/b.cgi?x=1"), 200, "up", "/a/b.cgi?x=1"},
			{get("/a/b.cgix"), 404, "", ""},
		},
	},
	{
		desc:      "regex capture in proxy_pass (variables: URI replaced as given)",
		locations: `location ~ ^/cap/(.*)$ { proxy_pass http://up/$1; }`,
		reqs: []uriReq{
			{get("/cap/foo/bar"), 200, "up", "/foo/bar"},
			{get("/cap/foo?x=1"), 200, "up", "/foo"}, // with variables nginx adds no args
		},
	},
	{
		desc: "^~ prefix beats regex",
		locations: `location ^~ /static/ { proxy_pass http://up; }
	location ~ \.js$ { proxy_pass http://up2; }`,
		reqs: []uriReq{
			{get("/static/a.js"), 200, "up", "/static/a.js"},
			{get("/other/a.js"), 200, "up2", "/other/a.js"},
		},
	},
	{
		desc: "regex beats plain prefix",
		locations: `location /static/ { proxy_pass http://up; }
	location ~ \.js$ { proxy_pass http://up2; }`,
		reqs: []uriReq{
			{get("/static/a.js"), 200, "up2", "/static/a.js"},
			{get("/static/a.css"), 200, "up", "/static/a.css"},
		},
	},
	{
		desc: "longest prefix wins",
		locations: `location /a/ { proxy_pass http://up; }
	location /a/b/ { proxy_pass http://up2/; }`,
		reqs: []uriReq{
			{get("/a/b/c?d=1"), 200, "up2", "/c?d=1"},
			{get("/a/c"), 200, "up", "/a/c"},
			{get("/a/b"), 301, "", ""}, // auto redirect to /a/b/ wins over the /a/ match
		},
	},
	{
		desc:      "location /, proxy_pass http://up/ (normalized URI re-escaped)",
		locations: `location / { proxy_pass http://up/; }`,
		reqs: []uriReq{
			{get("/a%2Fb"), 200, "up", "/a/b"},
			{get("/a%25b"), 200, "up", "/a%25b"},
			{get("/x//y/"), 200, "up", "/x/y/"},
			{get("/../etc/passwd"), 400, "", ""},
		},
	},
	{
		desc:      "location /, proxy_pass to an address, default Host is $proxy_host",
		locations: `location / { proxy_pass http://{{UP}}; }`,
		reqs: []uriReq{
			{get("/x"), 200, "up", "/x"},
			{rawRequest{Target: "/y?z", Host: "example.test"}, 200, "up", "/y?z"},
		},
	},
	{
		desc:      "address with URI",
		locations: `location /d/ { proxy_pass http://{{UP}}/base/; }`,
		reqs: []uriReq{
			{get("/d/x?y"), 200, "up", "/base/x?y"},
		},
	},
	{
		desc:      "query strings only: args passed raw",
		locations: `location /q/ { proxy_pass http://up/z/; }`,
		reqs: []uriReq{
			{get("/q/a?b=c&d=%20&e=%2F&f"), 200, "up", "/z/a?b=c&d=%20&e=%2F&f"},
			{get("/q/?x=1&x=2"), 200, "up", "/z/?x=1&x=2"},
			{get("/q/a?"), 200, "up", "/z/a"}, // empty args are dropped
		},
	},
	{
		desc:      "Host $host (lowercased, no port)",
		locations: `location / { proxy_pass http://up; proxy_set_header Host $host; }`,
		reqs: []uriReq{
			{rawRequest{Target: "/h", Host: "Example.TEST:8080"}, 200, "up", "/h"},
			{rawRequest{Target: "/h2"}, 200, "up", "/h2"},
		},
	},
	{
		desc:      "Host $http_host (as sent)",
		locations: `location / { proxy_pass http://up; proxy_set_header Host $http_host; }`,
		reqs: []uriReq{
			{rawRequest{Target: "/h", Host: "Example.TEST:8080"}, 200, "up", "/h"},
		},
	},
	{
		desc: "X-Forwarded-For $proxy_add_x_forwarded_for and X-Real-IP",
		locations: `location / {
		proxy_pass http://up;
		proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
		proxy_set_header X-Real-IP $remote_addr;
	}`,
		reqs: []uriReq{
			{get("/f"), 200, "up", "/f"},
			{rawRequest{Target: "/f2", Header: [][2]string{{"X-Forwarded-For", "10.0.0.1"}}}, 200, "up", "/f2"},
			{rawRequest{Target: "/f3", Header: [][2]string{{"X-Forwarded-For", "10.0.0.1, 10.0.0.2"}, {"X-Real-IP", "10.9.9.9"}}}, 200, "up", "/f3"},
		},
	},
	{
		desc:      "no X-Forwarded-For directive: client's header passes unchanged",
		locations: `location / { proxy_pass http://up; }`,
		reqs: []uriReq{
			{get("/n"), 200, "up", "/n"},
			{rawRequest{Target: "/n2", Header: [][2]string{{"X-Forwarded-For", "10.0.0.1"}}}, 200, "up", "/n2"},
		},
	},
	{
		desc:      "methods and bodies",
		locations: `location /m/ { proxy_pass http://up/; }`,
		reqs: []uriReq{
			{rawRequest{Method: "POST", Target: "/m/items?x=1", Body: `{"a":1}`}, 200, "up", "/items?x=1"},
			{rawRequest{Method: "PUT", Target: "/m/items/1", Body: "payload"}, 200, "up", "/items/1"},
			{rawRequest{Method: "DELETE", Target: "/m/items/1"}, 200, "up", "/items/1"},
			{rawRequest{Method: "HEAD", Target: "/m/h"}, 200, "up", "/h"},
			{rawRequest{Method: "PATCH", Target: "/m/p", Body: "x"}, 200, "up", "/p"},
		},
	},
	{
		desc:      "no matching location: static 404, nothing forwarded",
		locations: `location /only/ { proxy_pass http://up; }`,
		reqs: []uriReq{
			{get("/other"), 404, "", ""},
			{get("/only/x"), 200, "up", "/only/x"},
		},
	},
	{
		desc: "try_files and error_page redirects take the target's arguments, none without \"?\"",
		locations: `location /t/ { try_files $uri /fb; }
    location /tq/ { try_files $uri /fb?from=tf; }
    location /e/ { error_page 404 = /err; return 404; }
    location /eq/ { error_page 404 = /err?from=ep; return 404; }
    location = /fb { proxy_pass http://up; }
    location = /err { proxy_pass http://up; }`,
		reqs: []uriReq{
			{get("/t/x?a=1"), 200, "up", "/fb"},
			{get("/tq/x?a=1"), 200, "up", "/fb?from=tf"},
			{get("/e/x?a=1"), 200, "up", "/err"},
			{get("/eq/x?a=1"), 200, "up", "/err?from=ep"},
		},
	},
	{
		desc:      "upstream statuses pass through; dead and slow upstreams",
		locations: `location /s/ { proxy_pass http://up; proxy_read_timeout 1s; }`,
		reqs: []uriReq{
			{get("/s/x?status=404"), 404, "up", "/s/x?status=404"},
			{get("/s/x?status=500"), 500, "up", "/s/x?status=500"},
			{get("/s/x?status=503"), 503, "up", "/s/x?status=503"},
			{get("/s/x?status=204"), 204, "up", "/s/x?status=204"},
			{get("/s/x?status=302"), 302, "up", "/s/x?status=302"},
			{get("/s/x?crash=1"), 502, "up", "/s/x?crash=1"},
			{get("/s/x?sleep=3s"), 504, "up", "/s/x?sleep=3s"},
		},
	},
	{
		desc:      "dot segments and encoded dots are resolved before matching",
		locations: `location /app/ { proxy_pass http://up/; }`,
		reqs: []uriReq{
			{get("/app/%2e%2e/secret"), 404, "", ""},
			{get("/app/x/%2E%2E/y"), 200, "up", "/y"},
			{get("/app/x/./y"), 200, "up", "/x/y"},
		},
	},
	{
		desc:      "request bodies: chunked is de-chunked, Content-Length kept",
		locations: `location / { proxy_pass http://up; }`,
		reqs: []uriReq{
			{rawRequest{Method: "POST", Target: "/c", Body: "hello chunked world", Header: [][2]string{{"Transfer-Encoding", "chunked"}}}, 200, "up", "/c"},
			{rawRequest{Method: "POST", Target: "/e"}, 200, "up", "/e"},
		},
	},
	{
		desc: "WebSocket handshakes the backend refuses: its status passes through",
		locations: `location / {
		proxy_pass http://up;
		proxy_http_version 1.1;
		proxy_set_header Upgrade $http_upgrade;
		proxy_set_header Connection "upgrade";
	}`,
		reqs: []uriReq{
			{rawRequest{Target: "/v8", Header: [][2]string{{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Sec-WebSocket-Key", wsKey}, {"Sec-WebSocket-Version", "8"}}}, 400, "up", "/v8"},
			{rawRequest{Target: "/nokey", Header: [][2]string{{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Sec-WebSocket-Version", "13"}}}, 400, "up", "/nokey"},
		},
	},
	{
		desc:      "multiple X-Forwarded-For lines with $proxy_add_x_forwarded_for",
		locations: `location / { proxy_pass http://up; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }`,
		reqs: []uriReq{
			{rawRequest{Target: "/m", Header: [][2]string{{"X-Forwarded-For", "10.0.0.1"}, {"X-Forwarded-For", "10.0.0.2"}}}, 200, "up", "/m"},
		},
	},
	{
		desc:      "oversized request line and absolute-form target",
		locations: `location / { proxy_pass http://up; proxy_set_header Host $host; }`,
		reqs: []uriReq{
			{get("/long/" + strings.Repeat("a", 9000)), 414, "", ""},
			{rawRequest{Target: "http://abs.example.test/abs?x=1", Host: "ignored.example.test"}, 200, "up", "/abs?x=1"},
		},
	},
	{
		desc: "WebSocket handshake through a location with the Upgrade lines",
		locations: `location /ws/ {
		proxy_pass http://up/;
		proxy_http_version 1.1;
		proxy_set_header Upgrade $http_upgrade;
		proxy_set_header Connection "upgrade";
	}`,
		reqs: []uriReq{
			{rawRequest{Target: "/ws/chat?room=1", WS: true}, 101, "up", "/chat?room=1"},
			{get("/ws/plain"), 200, "up", "/plain"},
		},
	},
}

// TestDifferentialProxyPass runs the proxy_pass URI table under nginx and
// wsgate: one server per case, one config for all. nginx's results are
// first checked against the table (nginx's documented rules), then wsgate's
// are compared with nginx's field by field.
func TestDifferentialProxyPass(t *testing.T) {
	var conf strings.Builder
	conf.WriteString("events {}\nhttp {\n  upstream up { server {{UP}}; }\n  upstream up2 { server {{UP2}}; }\n")
	s := scenario{
		backends: []backendSpec{{"up", "UP", wsEcho}, {"up2", "UP2", wsEcho}},
	}
	refs := addTableServers(&conf, &s, "C", len(uriCases), func(i int) (string, string, []rawRequest) {
		c := uriCases[i]
		reqs := make([]rawRequest, len(c.reqs))
		for j, r := range c.reqs {
			reqs[j] = r.req
		}
		return c.desc, c.locations, reqs
	})
	conf.WriteString("}\n")
	s.conf = conf.String()

	label := func(i int) string {
		c := uriCases[refs[i].c]
		return fmt.Sprintf("case %q\n  location: %s", c.desc, c.locations)
	}
	check := func(t *testing.T, ng []outcome) {
		for i, o := range ng {
			want := uriCases[refs[i].c].reqs[refs[i].r]
			problems := tableProblems(o, want.status, want.backend, want.uri)
			if len(problems) > 0 {
				t.Errorf("nginx disagrees with the table (fix the table):\n  %s\n  request: %s\n  %s",
					label(i), s.probes[i], strings.Join(problems, "\n  "))
			}
		}
	}
	runDifferential(t, s, label, check)
}

// tableProblems lists how nginx's outcome o differs from a table row: the
// client's error, the status, and whether and where the request was
// forwarded (backend "" means not forwarded).
func tableProblems(o outcome, status int, backend, uri string) []string {
	var problems []string
	if o.err != "" {
		problems = append(problems, "client error: "+o.err)
	}
	if o.status != status {
		problems = append(problems, fmt.Sprintf("status %d, table says %d", o.status, status))
	}
	switch {
	case backend == "" && len(o.records) != 0:
		problems = append(problems, fmt.Sprintf("forwarded to %s %s, table says not forwarded", o.records[0].Backend, o.records[0].URI))
	case backend != "" && len(o.records) != 1:
		problems = append(problems, fmt.Sprintf("forwarded %d times, table says once", len(o.records)))
	case backend != "" && (o.records[0].Backend != backend || o.records[0].URI != uri):
		problems = append(problems, fmt.Sprintf("upstream got %s %s, table says %s %s", o.records[0].Backend, o.records[0].URI, backend, uri))
	}
	return problems
}

// tableRef names a table row: case c, request r.
type tableRef struct{ c, r int }

// addTableServers appends one server block per case to conf (a "# desc"
// comment, "listen {{PREFIXi}}", the case's body) and a probe per request
// to s; it returns the case and request of each probe, in order.
func addTableServers(conf *strings.Builder, s *scenario, prefix string, n int, server func(i int) (desc, body string, reqs []rawRequest)) []tableRef {
	var refs []tableRef
	for i := range n {
		desc, body, reqs := server(i)
		l := fmt.Sprintf("%s%d", prefix, i)
		s.listens = append(s.listens, l)
		fmt.Fprintf(conf, "\n  # %s\n  server {\n    listen {{%s}};\n    %s\n  }\n", desc, l, body)
		for j, r := range reqs {
			s.probes = append(s.probes, probe{listen: l, req: r})
			refs = append(refs, tableRef{i, j})
		}
	}
	return refs
}
