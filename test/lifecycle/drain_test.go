//go:build unix

package lifecycle

import (
	"testing"
	"time"
)

const drainConf = `
pid {{DIR}}/wsgate.pid;
error_log {{DIR}}/error.log;
http {
    access_log off;
    websocket_drain_window 3s;
    upstream ws_a { server 127.0.0.1:{{A}}; }
    upstream ws_b { server 127.0.0.1:{{B}}; }
    server {
        listen 127.0.0.1:{{P}};
        location /a/ { proxy_pass http://ws_a; }
        location /b/ { proxy_pass http://ws_b; }
    }
}
`

// TestReloadDrainsRemovedServer: a reload that removes the upstream server
// held WebSockets use drains them with Close 1012 spread over
// websocket_drain_window (3s); their backend gets Close 1001. WebSockets on
// a server that stays are untouched, and new clients reach the new server.
func TestReloadDrainsRemovedServer(t *testing.T) {
	const n = 20
	const window = 3 * time.Second
	a1, a2, other := newBackend(t), newBackend(t), newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	g := startGateway(t, drainConf, map[string]string{"A": a1.port(), "B": other.port(), "P": p}, addr)

	drained := dialMany(t, "ws://"+addr+"/a/", n, 8)
	kept := dialMany(t, "ws://"+addr+"/b/", n, 8)
	echoAll(t, drained, 8)
	echoAll(t, kept, 8)

	g.writeConfig(drainConf, map[string]string{"A": a2.port(), "B": other.port(), "P": p})
	reloadAt := time.Now()
	g.reload(false)

	var first, last time.Time
	for i, c := range drained {
		code, ok := c.waitClosed(window + 5*time.Second)
		if !ok {
			t.Fatalf("WebSocket %d on the removed server is still open %v after the reload", i, time.Since(reloadAt))
		}
		if code != 1012 {
			t.Errorf("WebSocket %d on the removed server: close %d (%v), want 1012", i, code, c.err)
		}
		if first.IsZero() || c.closeAt.Before(first) {
			first = c.closeAt
		}
		if c.closeAt.After(last) {
			last = c.closeAt
		}
	}
	spread := last.Sub(first)
	t.Logf("drain: first close %v after the reload, last %v, spread %v (window %v)",
		first.Sub(reloadAt).Round(time.Millisecond), last.Sub(reloadAt).Round(time.Millisecond), spread.Round(time.Millisecond), window)
	if spread < window/2 {
		t.Errorf("drain spread %v, want at least half of websocket_drain_window %v", spread, window)
	}
	if end := last.Sub(reloadAt); end > window+2*time.Second {
		t.Errorf("last drained WebSocket closed %v after the reload, want within the %v window (+2s)", end, window)
	}
	if codes := a1.waitCloses(t, n, 5*time.Second); codes[1001] != n {
		t.Errorf("removed backend saw close codes %v, want 1001 x %d", codes, n)
	}

	for i, c := range kept {
		if !c.isOpen() {
			t.Errorf("WebSocket %d on a kept server was closed by the reload: %d %v", i, c.closeCode, c.err)
		}
	}
	echoAll(t, kept, 8)

	c, err := dialWS("ws://"+addr+"/a/", 5*time.Second)
	if err != nil {
		t.Fatalf("dial after the reload: %v", err)
	}
	if err := c.echo([]byte("new server"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if a2.accepted.Load() != 1 {
		t.Errorf("the new server accepted %d WebSockets, want 1", a2.accepted.Load())
	}
	c.close()
	g.waitErrorLog("drained 20 WebSocket connection(s)", 1, 5*time.Second)
}
