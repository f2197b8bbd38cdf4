package lb

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// stickyCookie returns the srv_id cookie a response sets, or nil.
func stickyCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "srv_id" {
			return c
		}
	}
	return nil
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestStickyCookie: "sticky cookie srv_id expires=1h path=/". The first
// response sets srv_id to the hex MD5 of the chosen server's address;
// later requests and WebSocket upgrades carrying it go to that server;
// when that server is stopped, they fall over to another one and get a
// new cookie naming it.
func TestStickyCookie(t *testing.T) {
	bs := map[string]*backend{}
	var lines []string
	for _, n := range []string{"a", "b", "c"} {
		bs[n] = startBackend(t, n)
		lines = append(lines, "        server "+bs[n].addr+" max_fails=1 fail_timeout=30s;")
	}
	g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        sticky cookie srv_id expires=1h path=/;
%s
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, strings.Join(lines, "\n")))
	cl := client{}

	// First visit: balanced, and the response names the server.
	resp, first, err := cl.get(g.url("http", "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ck := stickyCookie(resp)
	if resp.StatusCode != 200 || ck == nil {
		t.Fatalf("first response: status %d, Set-Cookie %q; want 200 with srv_id", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if want := md5hex(bs[first].addr); ck.Value != want {
		t.Errorf("srv_id=%s, want the hex MD5 of %s's address %s (%s)", ck.Value, first, bs[first].addr, want)
	}
	if ck.Path != "/" || ck.MaxAge != 3600 || ck.Expires.IsZero() {
		t.Errorf("Set-Cookie %q: want Path=/, Max-Age=3600 and an Expires (expires=1h path=/)", resp.Header.Get("Set-Cookie"))
	}
	t.Logf("first visit: server %s, Set-Cookie: %s", first, resp.Header.Get("Set-Cookie"))

	// With the cookie: every request and upgrade goes to that server.
	withCookie := http.Header{"Cookie": {"srv_id=" + ck.Value}}
	for i, got := range visit(t, g, cl, 4, withCookie) {
		if got != first {
			t.Errorf("request %d with srv_id for %s went to %s", i, first, got)
		}
	}
	// Without it, round robin spreads requests: the stickiness above is
	// the cookie's doing.
	spread := map[string]bool{}
	for range 6 {
		if _, body, err := cl.get(g.url("http", "/"), nil); err == nil {
			spread[body] = true
		}
	}
	if len(spread) < 2 {
		t.Errorf("requests without the cookie all went to %v; want round robin", spread)
	}
	// A WebSocket upgrade without a cookie gets one on its 101.
	ws, resp, err := cl.ws(g.url("ws", "/ws"), nil)
	if err != nil {
		t.Fatalf("upgrade without cookie: %v", err)
	}
	closeWS(ws)
	if c := stickyCookie(resp); c == nil || c.Value != md5hex(bs[resp.Header.Get("X-Backend")].addr) {
		t.Errorf("101 to an upgrade without cookie: Set-Cookie %q, want srv_id naming %s", resp.Header.Values("Set-Cookie"), resp.Header.Get("X-Backend"))
	}

	// The cookie's server goes away: requests fall over and get a new
	// cookie naming the server that answered.
	bs[first].stop()
	resp, got, err := cl.get(g.url("http", "/"), withCookie)
	if err != nil {
		t.Fatal(err)
	}
	nc := stickyCookie(resp)
	switch {
	case resp.StatusCode != 200:
		t.Fatalf("GET with srv_id of stopped server %s: status %d, want 200 from another server; log:\n%s", first, resp.StatusCode, g.log)
	case got == first:
		t.Fatalf("GET went to stopped server %s", first)
	case nc == nil || nc.Value == ck.Value || nc.Value != md5hex(bs[got].addr):
		t.Errorf("GET with srv_id of stopped server %s answered by %s with Set-Cookie %q; want a new srv_id naming %s", first, got, resp.Header.Values("Set-Cookie"), got)
	}
	// A WebSocket upgrade with the stale cookie falls over too, and its
	// 101 carries the new cookie.
	ws, resp, err = cl.ws(g.url("ws", "/ws"), withCookie)
	if err != nil {
		t.Fatalf("upgrade with srv_id of stopped server: %v\n%s", err, g.log)
	}
	if err := echo(ws, "after failover"); err != nil {
		t.Error(err)
	}
	closeWS(ws)
	wsSrv := resp.Header.Get("X-Backend")
	if c := stickyCookie(resp); wsSrv == first || c == nil || c.Value != md5hex(bs[wsSrv].addr) {
		t.Errorf("upgrade with srv_id of stopped server %s: answered by %s, Set-Cookie %q; want another server and a srv_id naming it", first, wsSrv, resp.Header.Values("Set-Cookie"))
	}
	// The new cookie sticks.
	if nc != nil {
		newCookie := http.Header{"Cookie": {"srv_id=" + nc.Value}}
		for i, s := range visit(t, g, cl, 3, newCookie) {
			if s != got {
				t.Errorf("request %d with the new srv_id for %s went to %s", i, got, s)
			}
		}
	}
	g.alive(t)
}
