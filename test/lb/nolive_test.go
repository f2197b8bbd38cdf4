package lb

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// expect502 sends a GET and a WebSocket upgrade through g and fails the
// test unless both get 502.
func expect502(t *testing.T, g *gateway, what string) {
	t.Helper()
	resp, _, err := client{}.get(g.url("http", "/"), nil)
	if err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("%s: GET: %v status %v, want 502", what, err, statusOf(resp))
	}
	ws, resp, err := client{}.ws(g.url("ws", "/ws"), nil)
	if err == nil {
		closeWS(ws)
		t.Errorf("%s: upgrade succeeded (server %s), want 502", what, resp.Header.Get("X-Backend"))
	} else if resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("%s: upgrade: %v status %v, want 502", what, err, statusOf(resp))
	}
}

// expectLog fails the test unless wsgate's error log gets every one of
// wants within 2 s.
func expectLog(t *testing.T, g *gateway, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !g.waitLog(w, 2*time.Second) {
			t.Errorf("error log does not say %q; log:\n%s", w, g.log)
		}
	}
}

// TestNoLiveUpstream502: when no server can take a request, HTTP and
// WebSocket clients get 502 and the error log says which upstream and
// why: servers refusing connections, then taken out by max_fails; all
// "down"; all at max_conns; no servers at all.
func TestNoLiveUpstream502(t *testing.T) {
	t.Run("refused then failed", func(t *testing.T) {
		s1, s2 := freeAddr(t), freeAddr(t) // nothing listens there
		g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        server %s max_fails=1 fail_timeout=30s;
        server %s max_fails=1 fail_timeout=30s;
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, s1, s2))
		expect502(t, g, "both servers refuse")
		expectLog(t, g, `"`+s1+`"`, `"`+s2+`"`, "connection refused")
		// Both are now out for fail_timeout: the next request is not
		// even tried, and the log names the upstream and the reason.
		expect502(t, g, "both servers failed")
		expectLog(t, g, `upstream "pool"`, "no live upstream", "2 failed (max_fails within fail_timeout)")
		g.alive(t)
	})

	t.Run("all down", func(t *testing.T) {
		b := startBackend(t, "b")
		g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        server %s down;
        server 127.0.0.1:1 down;
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, b.addr))
		expect502(t, g, "all servers down")
		expectLog(t, g, `upstream "pool"`, "no live upstream", "2 down")
		if n := b.requests.Load() + b.upgrades.Load(); n != 0 {
			t.Errorf("a server marked down got %d requests", n)
		}
		g.alive(t)
	})

	t.Run("all at max_conns", func(t *testing.T) {
		a, b := startBackend(t, "a"), startBackend(t, "b")
		g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        server %s max_conns=1;
        server %s max_conns=1;
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, a.addr, b.addr))
		var held []*websocket.Conn
		for i := range 2 {
			ws, _, err := client{}.ws(g.url("ws", "/ws"), nil)
			if err != nil {
				t.Fatalf("tunnel %d: %v", i, err)
			}
			held = append(held, ws)
		}
		if a.live.Load() != 1 || b.live.Load() != 1 {
			t.Fatalf("two tunnels landed a=%d b=%d, want one each", a.live.Load(), b.live.Load())
		}
		expect502(t, g, "every server at max_conns=1")
		expectLog(t, g, `upstream "pool"`, "no live upstream", "2 at max_conns")
		// A tunnel ending frees its slot.
		closeWS(held[0])
		var ok bool
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			ws, _, err := client{}.ws(g.url("ws", "/ws"), nil)
			if err == nil {
				held[0] = ws
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("a tunnel ended but no new WebSocket got through within 3s; log:\n%s", g.log)
		}
		closeAll(held)
		g.alive(t)
	})

	t.Run("no servers", func(t *testing.T) {
		g := startGateway(t, `
    upstream pool {
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`)
		expect502(t, g, "upstream without servers")
		expectLog(t, g, `upstream "pool"`, "no servers configured")
		if strings.Contains(g.log.String(), "panic") {
			t.Errorf("log: %s", g.log)
		}
		g.alive(t)
	})
}
