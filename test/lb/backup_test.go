package lb

import (
	"fmt"
	"net/http"
	"testing"
)

// TestStickyCookieAtMaxConns: a sticky cookie naming a server at
// max_conns is treated as no cookie: the upgrade is balanced to another
// server and its 101 carries a new cookie naming that server.
func TestStickyCookieAtMaxConns(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        sticky cookie srv_id path=/;
        server %s max_conns=1;
        server %s;
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, a.addr, b.addr))
	toA := http.Header{"Cookie": {"srv_id=" + md5hex(a.addr)}}
	held, resp, err := client{}.ws(g.url("ws", "/ws"), toA)
	if err != nil {
		t.Fatal(err)
	}
	defer closeWS(held)
	if srv := resp.Header.Get("X-Backend"); srv != "a" {
		t.Fatalf("upgrade with srv_id for a went to %s", srv)
	}
	ws, resp, err := client{}.ws(g.url("ws", "/ws"), toA)
	if err != nil {
		t.Fatalf("second upgrade with srv_id for a (at max_conns=1): %v, want it balanced to b", err)
	}
	closeWS(ws)
	c := stickyCookie(resp)
	if srv := resp.Header.Get("X-Backend"); srv != "b" || c == nil || c.Value != md5hex(b.addr) {
		t.Errorf("upgrade with srv_id for a at max_conns: went to %s with Set-Cookie %q; want b and a srv_id naming b", srv, resp.Header.Values("Set-Cookie"))
	}
	g.alive(t)
}

// TestBackupOnlyWhenPrimariesCannot: a backup server gets nothing while a
// primary can take requests, and everything once none can.
func TestBackupOnlyWhenPrimariesCannot(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        server %s max_fails=1 fail_timeout=30s;
        server %s max_fails=1 fail_timeout=30s;
        server %s backup;
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, a.addr, b.addr, c.addr))
	visit(t, g, client{}, 5, nil)
	if n := c.requests.Load() + c.upgrades.Load(); n != 0 {
		t.Errorf("backup server got %d requests while both primaries were up", n)
	}
	a.stop()
	b.stop()
	for i, srv := range visit(t, g, client{}, 3, nil) {
		if srv != "c" {
			t.Errorf("request %d with both primaries stopped went to %q, want the backup c", i, srv)
		}
	}
	g.alive(t)
}
