package gateway_test

import "testing"

// TestRequestForms: absolute-form targets route by their path and pass it
// upstream as the origin form; add_header lists inherit like
// proxy_set_header (only when a level has none); HEAD gets no body.
func TestRequestForms(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	p := startProxy(t, `
add_header X-Http http;
server {
	listen {{LISTEN}};
	location /inherit/ { proxy_pass http://`+up.addr()+`; }
	location /own/ { proxy_pass http://`+up.addr()+`; add_header X-Own own; }
}`)
	tests := []struct {
		desc, method, target string
		uri, xhttp, xown     string
	}{
		{desc: "absolute-form http", method: "GET", target: "http://example.test/inherit/a?b=1", uri: "/inherit/a?b=1", xhttp: "http"},
		{desc: "absolute-form https", method: "GET", target: "https://example.test/own/a", uri: "/own/a", xown: "own"},
		{desc: "HEAD", method: "HEAD", target: "/inherit/h", uri: "/inherit/h", xhttp: "http"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			resp := rawDo(t, p.addr, rawRequest(tc.method, tc.target, "example.test"))
			if resp.status != 200 {
				t.Fatalf("status %d", resp.status)
			}
			if got := up.last(t).RequestURI; got != tc.uri {
				t.Errorf("upstream URI %q, want %q", got, tc.uri)
			}
			if got := resp.header.Get("X-Http"); got != tc.xhttp {
				t.Errorf("X-Http %q, want %q", got, tc.xhttp)
			}
			if got := resp.header.Get("X-Own"); got != tc.xown {
				t.Errorf("X-Own %q, want %q", got, tc.xown)
			}
			if tc.method == "HEAD" && resp.body != "" {
				t.Errorf("HEAD body %q", resp.body)
			}
		})
	}
}
