package gateway_test

import (
	"testing"
	"time"
)

// TestKeepaliveRequests: ngx_http_core_module "keepalive_requests":
// "Sets the maximum number of requests that can be served through one
// keep-alive connection. After the maximum number of requests are made,
// the connection is closed." nginx counts the requests on the connection
// and compares the count with the value of the location that answers
// (ngx_http_update_location_config: keep-alive ends when
// c->requests >= keepalive_requests), so the Nth response carries
// "Connection: close", and 0 closes after every response. Checked
// against nginx 1.22.1 with the same configuration.
func TestKeepaliveRequests(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	p := startProxy(t, `
upstream up { server `+up.addr()+`; }
server {
	listen {{LISTEN}};
	keepalive_requests 3;
	location / { return 200 ok; }
	location /proxy { proxy_pass http://up; }
	location /ten { keepalive_requests 10; return 200 ten; }
	location /zero { keepalive_requests 0; return 200 zero; }
}`)
	// expect sends the targets one by one on one connection: all but the
	// last are answered on a kept connection, the last with
	// "Connection: close", and the connection is closed after it.
	expect := func(t *testing.T, targets ...string) {
		t.Helper()
		k := dialKeep(t, p.addr)
		for i, target := range targets {
			resp, _ := k.do(target, "a.test")
			last := i == len(targets)-1
			// resp.Close: the response said "Connection: close"
			if resp.StatusCode != 200 || resp.Close != last {
				t.Fatalf("request %d (%s): status %d, Connection: close %v; want 200 and %v",
					i+1, target, resp.StatusCode, resp.Close, last)
			}
		}
		k.closedWithin(5 * time.Second)
	}
	t.Run("the third response closes", func(t *testing.T) {
		t.Parallel()
		expect(t, "/", "/", "/")
	})
	t.Run("proxied responses count alike", func(t *testing.T) {
		t.Parallel()
		expect(t, "/proxy", "/", "/proxy")
	})
	t.Run("the location that answers decides", func(t *testing.T) {
		t.Parallel()
		// the third request is answered by a location that allows 10,
		// the fourth by one that allows 3 again
		expect(t, "/", "/", "/ten", "/")
	})
	t.Run("0 closes after every response", func(t *testing.T) {
		t.Parallel()
		expect(t, "/zero")
	})
}

// TestKeepaliveRequestsDefault: without the directive a connection serves
// 1000 requests, the 1000th with "Connection: close".
func TestKeepaliveRequestsDefault(t *testing.T) {
	t.Parallel()
	p := startProxy(t, `server { listen {{LISTEN}}; return 200 ok; }`)
	k := dialKeep(t, p.addr)
	for i := 1; i <= 1000; i++ {
		resp, _ := k.do("/", "a.test")
		if resp.Close != (i == 1000) {
			t.Fatalf("request %d: Connection: close %v", i, resp.Close)
		}
	}
	k.closedWithin(5 * time.Second)
}
