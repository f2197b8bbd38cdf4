package gateway_test

import (
	"strings"
	"testing"
)

// TestRequestBodies: bodies reach the upstream (fixed length and
// chunked), client_max_body_size answers 413, and error_page on a
// proxied location's 502 serves the page with the 502 status.
func TestRequestBodies(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	prefix := t.TempDir()
	writeFile(t, prefix, "www/50x.html", "down for maintenance")
	p := startProxyIn(t, prefix, `
server {
	listen {{LISTEN}};
	root {{PREFIX}}/www;
	client_max_body_size 10;
	location /up/ { proxy_pass http://`+up.addr()+`/; }
	location /dead/ { proxy_pass http://127.0.0.1:65535; error_page 502 503 504 /50x.html; }
	location = /50x.html { }
}`)
	tests := []struct {
		desc   string
		req    string
		status int
		body   string // upstream body ("" = not forwarded) or response body
	}{
		{
			desc:   "fixed length body",
			req:    "POST /up/p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
			status: 200, body: "hello",
		},
		{
			desc:   "chunked body",
			req:    "POST /up/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
			status: 200, body: "abcde",
		},
		{
			desc:   "body over client_max_body_size",
			req:    "POST /up/big HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world",
			status: 413,
		},
		{
			desc:   "error_page for a 502 keeps the status",
			req:    rawRequest("GET", "/dead/x", "x"),
			status: 502, body: "down for maintenance",
		},
		{
			desc:   "error_page for a POST that failed with 502",
			req:    "POST /dead/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
			status: 502, body: "down for maintenance",
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := len(up.records())
			resp := rawDo(t, p.addr, tc.req)
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d (body %q)", resp.status, tc.status, resp.body)
			}
			recs := up.records()[before:]
			switch {
			case strings.HasPrefix(tc.desc, "error_page"):
				if resp.body != tc.body {
					t.Errorf("body %q, want %q", resp.body, tc.body)
				}
			case tc.status == 200:
				if len(recs) != 1 || recs[0].Body != tc.body {
					t.Errorf("upstream got %+v, want one request with body %q", recs, tc.body)
				}
			default:
				if len(recs) != 0 {
					t.Errorf("forwarded %d requests, want none", len(recs))
				}
			}
		})
	}
}
