package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rwCase is one server block of the rewrite module table: its directives
// and the requests sent to it, each with what nginx does (checked against
// nginx itself first; wsgate must then match nginx field by field).
type rwCase struct {
	desc   string
	server string // the server block's body, without listen
	reqs   []rwReq
}

// rwReq is one request and nginx's documented answer. backend "" means
// the request must not reach a backend; location and body are checked
// when not empty (body: a substring of a 2xx response body); {{SELF}} in
// location stands for the case's own listen address.
type rwReq struct {
	req      rawRequest
	status   int
	backend  string
	uri      string
	location string
	body     string
}

func rq(target string) rawRequest { return rawRequest{Target: target} }

func hostRq(target, host string) rawRequest { return rawRequest{Target: target, Host: host} }

func originRq(target, origin string) rawRequest {
	return rawRequest{Target: target, Header: [][2]string{{"Origin", origin}}}
}

var rwCases = []rwCase{
	{
		desc: "certbot's generated server: if ($host = ...) return 301 in the server, then return 404",
		server: `if ($host = example.com) { return 301 https://$host$request_uri; }
    server_name example.com;
    return 404;`,
		reqs: []rwReq{
			{req: hostRq("/x?y=1", "example.com"), status: 301, location: "https://example.com/x?y=1"},
			{req: hostRq("/", "EXAMPLE.com:80"), status: 301, location: "https://example.com/"},
			{req: hostRq("/x", "other.example"), status: 404},
		},
	},
	{
		desc: `if ($scheme != "https") in a server`,
		server: `if ($scheme != "https") { return 301 https://$host$request_uri; }
    location / { proxy_pass http://up; }`,
		reqs: []rwReq{
			{req: hostRq("/a/b?c=d", "app.example"), status: 301, location: "https://app.example/a/b?c=d"},
		},
	},
	{
		desc:   "rewrite ... break in a proxied location: the rewritten URI goes upstream",
		server: `location /api/ { rewrite ^/api/(.*)$ /$1 break; proxy_pass http://up; }`,
		reqs: []rwReq{
			{req: rq("/api/users?id=1"), status: 200, backend: "up", uri: "/users?id=1"},
			{req: rq("/api/"), status: 200, backend: "up", uri: "/"},
			{req: rq("/api/a%20b/c%3Fd?x=%20"), status: 200, backend: "up", uri: "/a%20b/c%3Fd?x=%20"},
			{req: rq("/api/a%22b%7Cc"), status: 200, backend: "up", uri: "/a%22b%7Cc"},
			{req: rq("/api/caf%C3%A9+x"), status: 200, backend: "up", uri: "/caf%C3%A9+x"},
			{req: rq("/api"), status: 301, location: "http://{{SELF}}/api/"}, // proxy_pass's auto-redirect
		},
	},
	{
		desc:   "rewrite ... break and proxy_pass with a URI: the URI part is ignored, the whole changed URI passed",
		server: `location /name/ { rewrite ^/name/([^/]+) /users?name=$1 break; proxy_pass http://up/ignored/; }`,
		reqs: []rwReq{
			{req: rq("/name/bob"), status: 200, backend: "up", uri: "/users?name=bob"},
			{req: rq("/name/bob/x?a=1"), status: 200, backend: "up", uri: "/users?name=bob&a=1"},
			{req: rq("/name/"), status: 200, backend: "up", uri: "/ignored/"},
			{req: rq("/name/a%26b%20c+d"), status: 200, backend: "up", uri: "/users?name=a%26b%20c%2Bd"},
		},
	},
	{
		desc: "permanent, redirect and http:// replacements; arguments with and without a trailing ?",
		server: `rewrite ^/old/(.*)$ /new/$1 permanent;
    rewrite ^/full(.*)$ https://$host$request_uri? permanent;
    rewrite ^/keep(.*)$ https://$host$1 permanent;
    location / {
        rewrite ^/(.*)/$ /$1 redirect;
        rewrite ^/ra/(.*)$ /b?y=2 redirect;
        rewrite ^/rb/(.*)$ /b? redirect;
        rewrite ^/rc/(.*)$ http://other.example/$1;
        rewrite ^/rd/(.*)$ $scheme://$host/d/$1;
        return 200 "none";
    }`,
		reqs: []rwReq{
			{req: rq("/old/x"), status: 301, location: "http://{{SELF}}/new/x"},
			{req: rq("/old/x?a=1&b=2"), status: 301, location: "http://{{SELF}}/new/x?a=1&b=2"},
			{req: rq("/old/a%20b%3Fc?q=1"), status: 301, location: "http://{{SELF}}/new/a%20b?c?q=1"},
			{req: rq("/old/a+b%26c"), status: 301, location: "http://{{SELF}}/new/a+b&c"},
			{req: rq("/old/a%2Fb"), status: 301, location: "http://{{SELF}}/new/a/b"},
			{req: hostRq("/full/x?y=1", "app.example"), status: 301, location: "https://app.example/full/x?y=1"},
			{req: hostRq("/keep/x?y=1", "app.example"), status: 301, location: "https://app.example/x?y=1"},
			{req: rq("/a/b/"), status: 302, location: "http://{{SELF}}/a/b"},
			{req: rq("/a/b/?z=1"), status: 302, location: "http://{{SELF}}/a/b?z=1"},
			{req: rq("/ra/x?z=1"), status: 302, location: "http://{{SELF}}/b?y=2&z=1"},
			{req: rq("/rb/x?z=1"), status: 302, location: "http://{{SELF}}/b"},
			{req: rq("/rc/x?z=1"), status: 302, location: "http://other.example/x?z=1"},
			{req: hostRq("/rd/x", "app.example"), status: 302, location: "http://app.example/d/x"},
			{req: rq("/plain"), status: 200, body: "none"},
		},
	},
	{
		desc: "rewrite ... last: the new URI is matched against the locations again",
		server: `location / { rewrite ^/app/(.*)$ /$1 last; return 200 "root $uri"; }
    location /x/ { proxy_pass http://up; }
    location = /exact { return 200 "exact $uri $args"; }`,
		reqs: []rwReq{
			{req: rq("/app/x/y?q=1"), status: 200, backend: "up", uri: "/x/y?q=1"},
			{req: rq("/app/x/a%20b"), status: 200, backend: "up", uri: "/x/a%20b"},
			{req: rq("/app/exact?k=v"), status: 200, body: "exact /exact k=v"},
			{req: rq("/other"), status: 200, body: "root /other"},
		},
	},
	{
		desc: "arguments: kept, own arguments before the old ones, dropped with a trailing ?",
		server: `location / {
        rewrite ^/a1$ /b;
        rewrite ^/a2$ /b?y=2;
        rewrite ^/a3$ /b?y=2?;
        rewrite ^/a4$ /b?;
        rewrite ^/a5/(.*)$ /b?v=$1 last;
    }
    location /b { proxy_pass http://up; }`,
		reqs: []rwReq{
			{req: rq("/a1?x=1"), status: 200, backend: "up", uri: "/b?x=1"},
			{req: rq("/a1"), status: 200, backend: "up", uri: "/b"},
			{req: rq("/a2?x=1"), status: 200, backend: "up", uri: "/b?y=2&x=1"},
			{req: rq("/a2"), status: 200, backend: "up", uri: "/b?y=2"},
			{req: rq("/a3?x=1"), status: 200, backend: "up", uri: "/b?y=2"},
			{req: rq("/a4?x=1"), status: 200, backend: "up", uri: "/b"},
			{req: rq("/a5/p%20q+r?x=1"), status: 200, backend: "up", uri: "/b?v=p%20q%2Br&x=1"},
			{req: rq("/a5/plain+r"), status: 200, backend: "up", uri: "/b?v=plain%2Br"},
			{req: rq("/a5/plain"), status: 200, backend: "up", uri: "/b?v=plain"},
		},
	},
	{
		desc: "last against break, and a rewrite without flag that a later break keeps in its location",
		server: `location /lb/ {
        rewrite ^/lb/last/(.*)$ /t/$1 last;
        rewrite ^/lb/break/(.*)$ /t/$1 break;
        rewrite ^/lb/noflag/(.*)$ /t/$1;
        rewrite ^/lb/stay/(.*)$ /t/$1;
        if ($arg_stay) { break; }
        proxy_pass http://up/lb-upstream/;
    }
    location /t/ { proxy_pass http://up2; }`,
		reqs: []rwReq{
			{req: rq("/lb/last/x?q=1"), status: 200, backend: "up2", uri: "/t/x?q=1"},
			{req: rq("/lb/break/x?q=1"), status: 200, backend: "up", uri: "/t/x?q=1"},
			{req: rq("/lb/noflag/x"), status: 200, backend: "up2", uri: "/t/x"},
			{req: rq("/lb/stay/x?stay=1"), status: 200, backend: "up", uri: "/t/x?stay=1"},
			{req: rq("/lb/stay/x"), status: 200, backend: "up2", uri: "/t/x"},
			{req: rq("/lb/other?q=1"), status: 200, backend: "up", uri: "/lb-upstream/other?q=1"},
		},
	},
	{
		desc: "at most 10 new location searches, the 11th is a 500 (rewrite or internal redirection cycle)",
		server: `location /loop { rewrite ^/loop(.*)$ /loop$1 last; }
    location ~ ^/n/(x*)$ { rewrite ^/n/x(x*)$ /n/$1 last; return 200 "done $1"; }`,
		reqs: []rwReq{
			{req: rq("/loop/x"), status: 500},
			{req: rq("/n/" + strings.Repeat("x", 9)), status: 200, body: "done "},
			{req: rq("/n/" + strings.Repeat("x", 10)), status: 200, body: "done "},
			{req: rq("/n/" + strings.Repeat("x", 11)), status: 500},
		},
	},
	{
		desc: "captures: regex location, rewrite and if, numbered and named; a regex without groups leaves no $1; a prefix location keeps $1",
		server: `location ~ ^/cap/(\w+)/(\d+)$ { rewrite ^ /swap/$2/$1 last; }
    location ~ ^/cap2/ { rewrite ^/cap2/(\w+)/(\d+)$ /swap/$2/$1 last; }
    location /swap/ { return 200 "swap $uri [$1] [$2]"; }
    location /nm/ {
        if ($uri ~ ^/nm/(?<who>[a-z]+)(\d*)) { set $greet "hi $who $2"; }
        return 200 "$greet|$who|$1";
    }
    location /nomatch/ {
        if ($uri ~ ^/zzz/(.*)) { }
        return 200 "[$1]";
    }
    location ~ ^/keep/(.+)$ {
        rewrite ^/keep/ /kept/ last;
    }
    location /kept/ { return 200 "kept [$1]"; }`,
		reqs: []rwReq{
			{req: rq("/cap/abc/42"), status: 200, body: "swap /swap// [] []"},
			{req: rq("/cap2/abc/42"), status: 200, body: "swap /swap/42/abc [abc] [42]"},
			{req: rq("/nm/bob7"), status: 200, body: "hi bob 7|bob|bob"},
			{req: rq("/nm/7"), status: 200, body: "||"},
			{req: rq("/nomatch/x"), status: 200, body: "[]"},
			{req: rq("/keep/value"), status: 200, body: "kept []"},
		},
	},
	{
		desc: "set and a variable proxy_pass; set $args; set in the server",
		server: `set $base http://{{UP}};
    location /v/ { set $backend http://{{UP}}; proxy_pass $backend; }
    location /vb/ { set $backend http://{{UP2}}/fixed; proxy_pass $backend; }
    location /vs/ { proxy_pass $base; }
    location /args/ { set $args "a=1&b=$arg_b"; proxy_pass http://up; }
    location /ia/ { rewrite ^ /ia2? ; return 200 "[$is_args][$args]"; }`,
		reqs: []rwReq{
			{req: rq("/v/p?q=1"), status: 200, backend: "up", uri: "/v/p?q=1"},
			{req: rq("/vb/p?q=1"), status: 200, backend: "up2", uri: "/fixed"},
			{req: rq("/vs/p"), status: 200, backend: "up", uri: "/vs/p"},
			{req: rq("/args/x?b=2&c=3"), status: 200, backend: "up", uri: "/args/x?a=1&b=2"},
			{req: rq("/ia/x?q=1"), status: 200, body: "[][]"},
		},
	},
	{
		desc: "CORS with set and if in the server: add_header of the variable",
		server: `set $cors "";
    if ($http_origin ~* ^https://(www\.)?example\.com$) { set $cors $http_origin; }
    add_header Access-Control-Allow-Origin $cors;
    location / { proxy_pass http://up; proxy_set_header X-Real-IP "[$cors]"; }`,
		reqs: []rwReq{
			{req: originRq("/c", "https://www.example.com"), status: 200, backend: "up", uri: "/c"},
			{req: originRq("/c", "https://EXAMPLE.com"), status: 200, backend: "up", uri: "/c"},
			{req: originRq("/c", "https://evil.example"), status: 200, backend: "up", uri: "/c"},
			{req: rq("/c"), status: 200, backend: "up", uri: "/c"},
		},
	},
	{
		desc: "CORS with set and if in a location",
		server: `location / {
        set $cors "";
        if ($http_origin ~* ^https://(www\.)?example\.com$) { set $cors $http_origin; }
        add_header Access-Control-Allow-Origin $cors;
        add_header X-Tag outer;
        proxy_pass http://up;
    }`,
		reqs: []rwReq{
			{req: originRq("/c", "https://example.com"), status: 200, backend: "up", uri: "/c"},
			{req: originRq("/c", "https://evil.example"), status: 200, backend: "up", uri: "/c"},
		},
	},
	{
		desc: "CORS preflight: if in a location with add_header and return 204",
		server: `location / {
        if ($request_method = 'OPTIONS') {
            add_header 'Access-Control-Allow-Origin' '*';
            add_header 'Access-Control-Max-Age' 1728000;
            add_header 'Content-Type' 'text/plain; charset=utf-8';
            add_header 'Content-Length' 0;
            return 204;
        }
        add_header X-Tag outer;
        proxy_pass http://up;
    }`,
		reqs: []rwReq{
			{req: rawRequest{Method: "OPTIONS", Target: "/api/x", Header: [][2]string{{"Origin", "https://a.example"}}}, status: 204},
			{req: rq("/api/x"), status: 200, backend: "up", uri: "/api/x"},
			{req: rawRequest{Method: "POST", Target: "/api/x", Body: "b"}, status: 200, backend: "up", uri: "/api/x"},
		},
	},
	{
		desc: "if in a location: the last true if's settings win (\"if is evil\"), proxy_pass in if, root in if",
		server: `location /evil {
        set $true 1;
        if ($true) { add_header X-Tag first; }
        if ($true) { add_header Access-Control-Max-Age second; }
        return 204;
    }
    location /pi/ {
        proxy_pass http://up/base/;
        if ($arg_alt) { proxy_pass http://up2; }
        if ($arg_tag) { add_header X-Tag $arg_tag; }
    }
    location /f/ {
        root {{ROOT}};
        if ($arg_sub) { root {{ROOT}}/dir; }
        rewrite ^/f/(.*)$ /$1 break;
        if ($arg_sub) { add_header X-Tag "not reached"; }
    }
    location /tf/ {
        try_files /nothing =403;
        if ($arg_skip) { add_header X-Tag skipped; }
    }`,
		reqs: []rwReq{
			{req: rq("/evil"), status: 204},
			{req: rq("/pi/x?q=1"), status: 200, backend: "up", uri: "/base/x?q=1"},
			{req: rq("/pi/x?alt=1"), status: 200, backend: "up2", uri: "/pi/x?alt=1"},
			{req: rq("/pi/x?tag=t1"), status: 200, backend: "up", uri: "/base/x?tag=t1"},
			{req: rq("/f/file.txt"), status: 200, body: "root file"},
			{req: rq("/f/file.txt?sub=1"), status: 200, body: "dir file"},
			{req: rq("/tf/x"), status: 403},
			{req: rq("/tf/x?skip=1"), status: 404},
		},
	},
	{
		desc: "file tests -f -d -e -x and their negations against a root",
		server: `root {{ROOT}};
    location / {
        if (-d $request_filename) { return 200 "dir $uri"; }
        if (!-f $request_filename) { proxy_pass http://up; break; }
    }
    location ~ ^/t/\w+/(.*)$ {
        set $p $document_root/$1;
        if (-e $p) { set $e "e"; }
        if (!-e $p) { set $e "!e"; }
        if (-x $p) { set $x "x"; }
        if (!-x $p) { set $x "!x"; }
        if (-f $document_root/$1) { set $f "f"; }
        if (!-d $p) { set $d "!d"; }
        return 200 "$e $x $f $d";
    }`,
		reqs: []rwReq{
			{req: rq("/file.txt"), status: 200, body: "root file"},
			{req: rq("/dir/"), status: 200, body: "dir /dir/"},
			{req: rq("/dir"), status: 200, body: "dir /dir"},
			{req: rq("/missing?q=1"), status: 200, backend: "up", uri: "/missing?q=1"},
			{req: rq("/t/a/file.txt"), status: 200, body: "e !x f !d"},
			{req: rq("/t/a/run.sh"), status: 200, body: "e x f !d"},
			{req: rq("/t/a/dir"), status: 200, body: "e x  "},
			{req: rq("/t/a/nope"), status: 200, body: "!e !x  !d"},
		},
	},
	{
		desc: "internal locations, internal redirects through the server's rewrites, rewrite to an empty URI",
		server: `rewrite ^/fallback$ /final;
    location /int { internal; return 200 "internal"; }
    location /go { rewrite ^ /int last; }
    location /try/ { try_files $uri /fallback; }
    location /final { return 200 "final $uri"; }
    location /z { rewrite ^/z(.*)$ $1 last; }`,
		reqs: []rwReq{
			{req: rq("/go"), status: 200, body: "internal"},
			{req: rq("/int"), status: 404},
			{req: rq("/try/nothing"), status: 200, body: "final /final"},
			{req: rq("/z"), status: 500},
			{req: rq("/z/a"), status: 404},
		},
	},
	{
		desc: "server rewrite with break: the location's proxy_pass URI part is not used",
		server: `rewrite ^/sb/(.*)$ /sbx/$1 break;
    location /sbx/ { proxy_pass http://up/zz/; }`,
		reqs: []rwReq{
			{req: rq("/sb/a?q=1"), status: 200, backend: "up", uri: "/sbx/a?q=1"},
			{req: rq("/sbx/a?q=1"), status: 200, backend: "up", uri: "/zz/a?q=1"},
		},
	},
	{
		desc: "set feeds a map; return and if with = on an argument; deny after return",
		server: `location /m/ { set $mapsrc $arg_k; return 200 "[$mapped]"; }
    location /eq/ {
        if ($arg_a = "") { return 200 "empty"; }
        if ($arg_a != x) { return 200 "not x"; }
        return 200 "x";
    }
    location /deny/ { deny all; return 200 "returned"; }
    location /deny2/ { deny all; rewrite ^ /final2 last; }
    location /final2 { return 200 "final2"; }`,
		reqs: []rwReq{
			{req: rq("/m/?k=yes"), status: 200, body: "[ok]"},
			{req: rq("/m/?k=no"), status: 200, body: "[other]"},
			{req: rq("/eq/"), status: 200, body: "empty"},
			{req: rq("/eq/?a=y"), status: 200, body: "not x"},
			{req: rq("/eq/?a=x"), status: 200, body: "x"},
			{req: rq("/deny/"), status: 200, body: "returned"},
			{req: rq("/deny2/"), status: 200, body: "final2"},
		},
	},
	{
		desc: "edge cases: escaped captures in set, a ? inside a variable, named location, relative redirects, set prefix variables",
		server: `location ~ ^/qs/(.*)$ { set $v $1; return 200 "[$v] [$1]"; }
    location /rq/ { rewrite ^ /v$request_uri break; proxy_pass http://up; }
    location /tn/ { try_files /none @named; }
    location @named { rewrite ^/tn/(.*)$ /named/$1 break; proxy_pass http://up; }
    location /rel/ { rewrite ^/rel/(.*)$ x/$1 redirect; }
    location /relret/ { return 302 example.org/x; }
    location /abs/ { absolute_redirect off; rewrite ^/abs/(.*)$ /y/$1 permanent; }
    location /sh1/ { set $http_x_token from-set; return 200 "[$http_x_token]"; }
    location /sh2/ { return 200 "[$http_x_token]"; }
    location /sargs/ { set $args "k=v"; return 200 "[$is_args$args] [$arg_k]"; }
    location /dr/ { root {{ROOT}}/; return 200 "[$document_root] [$request_filename]"; }
    location /dra/ { alias {{ROOT}}/; return 200 "[$document_root] [$request_filename]"; }`,
		reqs: []rwReq{
			{req: rq("/qs/a%20b+c"), status: 200, body: "[a%20b%2Bc] [a b+c]"},
			{req: rq("/qs/plain"), status: 200, body: "[plain] [plain]"},
			{req: rq("/rq/x?a=1"), status: 200, backend: "up", uri: "/v/rq/x%3Fa=1?a=1"},
			{req: rq("/tn/p?q=1"), status: 200, backend: "up", uri: "/named/p?q=1"},
			{req: rq("/rel/abc?q=1"), status: 302, location: "x/abc?q=1"},
			{req: rq("/relret/"), status: 302, location: "example.org/x"},
			{req: rq("/abs/z"), status: 301, location: "/y/z"},
			{req: rawRequest{Target: "/sh1/", Header: [][2]string{{"X-Token", "hdr"}}}, status: 200, body: "[from-set]"},
			{req: rawRequest{Target: "/sh2/", Header: [][2]string{{"X-Token", "hdr"}}}, status: 200, body: "[hdr]"},
			{req: rq("/sargs/?a=1"), status: 200, body: "[?k=v] [v]"},
			{req: rq("/dr/x"), status: 200, body: "/dr/x]"},
			{req: rq("/dra/y"), status: 200, body: "/y]"},
		},
	},
	{
		desc: "more: WebSocket and POST through rewrite ... break, variable proxy_pass after break, server break, if comparing variables, error_page after a rewrite",
		server: `rewrite ^/srvbreak/(.*)$ /sbb/$1 break;
    location /wsr/ {
        rewrite ^/wsr/(.*)$ /$1 break;
        proxy_pass http://up;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }
    location /vbr/ { set $b http://{{UP2}}; rewrite ^/vbr/(.*)$ /$1 break; proxy_pass $b; }
    location /sbb/ { return 200 "sbb $uri"; }
    location /cmp/ {
        set $want "a";
        if ($arg_x = $want) { return 200 "same"; }
        if ($arg_x ~ ^(\d+)$) { }
        set $n $1;
        rewrite ^/cmp/(.*)$ /$1-$1;
        return 200 "other $uri $n";
    }
    location /ep/ { error_page 404 = /ep-found; rewrite ^/ep/(.*)$ /missing/$1 break; }
    location /al/ { alias {{ROOT}}/; rewrite ^/al/(.*)$ /al/$1 break; }
    location /al2/ { alias {{ROOT}}/; if ($arg_x) { } }
    location ~ ^/al3/(.*)$ { alias {{ROOT}}/$1; rewrite ^ /zz; break; }
    location = /ep-found { return 200 "found $uri $args"; }`,
		reqs: []rwReq{
			{req: rawRequest{Target: "/wsr/chat?room=1", WS: true}, status: 101, backend: "up", uri: "/chat?room=1"},
			{req: rawRequest{Method: "POST", Target: "/wsr/items?x=1", Body: `{"a":1}`}, status: 200, backend: "up", uri: "/items?x=1"},
			{req: rq("/vbr/a%20b?q=1"), status: 200, backend: "up2", uri: "/a%20b?q=1"},
			{req: rq("/srvbreak/z"), status: 200, body: "sbb /sbb/z"},
			{req: rq("/cmp/?x=a"), status: 200, body: "same"},
			{req: rq("/cmp/k?x=12"), status: 200, body: "other /k-k 12"},
			{req: rq("/ep/y"), status: 200, body: "found /ep-found "},
			{req: rq("/al/file.txt"), status: 500},
			{req: rq("/al2/file.txt?x=1"), status: 200, body: "root file"},
			{req: rq("/al3/file.txt"), status: 500},
		},
	},
	{
		desc: "idioms from the wild: try_files to a named location that rewrites, index.php redirect, maintenance flag file, method allow-list",
		server: `root {{ROOT}};
    set $maintenance 0;
    if (-f $document_root/maintenance.html) { set $maintenance 1; }
    if ($maintenance = 1) { return 503; }
    if ($request_method !~ ^(GET|HEAD|POST)$ ) { return 405; }
    if ($request_uri ~* "^(.*/)index\.php$") { return 301 $1; }
    add_header X-Tag server;
    location / { try_files $uri $uri/ @rewrites; }
    location @rewrites { rewrite ^/(.*)$ /app.php?q=$1 last; }
    location ~ \.php$ { proxy_pass http://up; }`,
		reqs: []rwReq{
			{req: rq("/file.txt"), status: 200, body: "root file"},
			{req: rq("/some/route?x=1"), status: 200, backend: "up", uri: "/app.php?q=some/route&x=1"},
			{req: rq("/dir/index.php"), status: 301, location: "http://{{SELF}}/dir/"},
			{req: rawRequest{Method: "PUT", Target: "/file.txt", Body: "x"}, status: 405},
			{req: rawRequest{Method: "DELETE", Target: "/x"}, status: 405},
		},
	},
}

// rwRoot makes the document root of the file tests.
func rwRoot(t *testing.T) string {
	dir := t.TempDir()
	for name, body := range map[string]string{"file.txt": "root file\n", "dir/file.txt": "dir file\n", "run.sh": "#!/bin/sh\n"} {
		writeFile(t, filepath.Join(dir, name), body)
	}
	if err := os.Chmod(filepath.Join(dir, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDifferentialRewrite runs the rewrite module table under nginx and
// wsgate: one server per case, one config for all. nginx's results are
// first checked against the table (nginx's documented rules), then
// wsgate's are compared with nginx's field by field: status, Location,
// the CORS and X-Tag response headers, and the upstream request line and
// headers.
func TestDifferentialRewrite(t *testing.T) {
	var conf strings.Builder
	conf.WriteString("events {}\nhttp {\n  upstream up { server {{UP}}; }\n  upstream up2 { server {{UP2}}; }\n")
	conf.WriteString("  map $mapsrc $mapped { default other; yes ok; }\n")
	root := rwRoot(t)
	s := scenario{
		backends:    []backendSpec{{"up", "UP", wsEcho}, {"up2", "UP2", wsEcho}},
		vars:        func(v map[string]string) { v["ROOT"] = root },
		respHeaders: []string{"Access-Control-Allow-Origin", "Access-Control-Max-Age", "X-Tag", "Content-Type"},
	}
	refs := addTableServers(&conf, &s, "C", len(rwCases), func(i int) (string, string, []rawRequest) {
		c := rwCases[i]
		reqs := make([]rawRequest, len(c.reqs))
		for j, r := range c.reqs {
			reqs[j] = r.req
		}
		return c.desc, c.server, reqs
	})
	conf.WriteString("}\n")
	s.conf = conf.String()

	label := func(i int) string {
		c := rwCases[refs[i].c]
		return fmt.Sprintf("case %q\n  server: %s", c.desc, c.server)
	}
	check := func(t *testing.T, ng []outcome) {
		for i, o := range ng {
			want := rwCases[refs[i].c].reqs[refs[i].r]
			problems := tableProblems(o, want.status, want.backend, want.uri)
			want.location = strings.ReplaceAll(want.location, "{{SELF}}", fmt.Sprintf("{{C%d}}", refs[i].c))
			if want.location != "" && o.location != want.location {
				problems = append(problems, fmt.Sprintf("Location %q, table says %q", o.location, want.location))
			}
			if want.body != "" && !strings.Contains(o.body, want.body) {
				problems = append(problems, fmt.Sprintf("body %q, table says it has %q", o.body, want.body))
			}
			if len(problems) > 0 {
				t.Errorf("nginx disagrees with the table (fix the table):\n  %s\n  request: %s\n  %s",
					label(i), s.probes[i], strings.Join(problems, "\n  "))
			}
		}
	}
	runDifferential(t, s, label, check)
}
