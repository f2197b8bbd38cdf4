//go:build unix

package lifecycle

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

const shutdownConf = `
pid {{DIR}}/wsgate.pid;
error_log {{DIR}}/error.log;
http {
    access_log off;
    websocket_drain_window 1s;
    upstream be { server 127.0.0.1:{{B}}; }
    server {
        listen 127.0.0.1:{{P}};
        location /ws/ { proxy_pass http://be; }
        location /slow { proxy_pass http://be; }
    }
}
`

// TestQuit: SIGQUIT and "wsgate -s quit" with WebSockets open and slow HTTP
// requests in flight: every WebSocket client gets Close 1001 (its backend
// too), every HTTP request completes with its full response, and the
// process exits 0.
func TestQuit(t *testing.T) {
	for _, tc := range []struct {
		desc string
		nWS  int
		send func(g *gateway)
	}{
		// the figure: 1000 WebSockets and in-flight HTTP requests
		{"SIGQUIT", 1000, func(g *gateway) { g.signal(syscall.SIGQUIT) }},
		{"-s quit", 50, func(g *gateway) { g.ctl("quit") }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			nWS := tc.nWS
			const nHTTP, body = 5, 256 << 10
			const slow = 1500 * time.Millisecond
			b := newBackend(t)
			p := itoa(freePort(t))
			addr := "127.0.0.1:" + p
			g := startGateway(t, shutdownConf, map[string]string{"B": b.port(), "P": p}, addr)
			ws := dialMany(t, "ws://"+addr+"/ws/", nWS, 16)
			echoAll(t, ws, 16)

			type result struct {
				n   int
				err error
			}
			results := make([]result, nHTTP)
			var wg sync.WaitGroup
			for i := range nHTTP {
				wg.Add(1)
				go func() {
					defer wg.Done()
					url := fmt.Sprintf("http://%s/slow?ms=%d&bytes=%d", addr, slow.Milliseconds(), body)
					req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
					resp, err := (&http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
					if err != nil {
						results[i] = result{err: err}
						return
					}
					defer resp.Body.Close()
					n, err := io.Copy(io.Discard, resp.Body)
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					results[i] = result{n: int(n), err: err}
				}()
			}
			deadline := time.Now().Add(5 * time.Second)
			for b.slowReq.Load() < nHTTP {
				if time.Now().After(deadline) {
					t.Fatalf("backend got %d of %d slow requests", b.slowReq.Load(), nHTTP)
				}
				time.Sleep(5 * time.Millisecond)
			}

			sentAt := time.Now()
			tc.send(g)
			code, ok := g.waitExit(30 * time.Second)
			if !ok {
				t.Fatalf("wsgate still running 30s after %s", tc.desc)
			}
			t.Logf("exited %v after %s", g.exitAt.Sub(sentAt).Round(time.Millisecond), tc.desc)
			if code != 0 {
				t.Errorf("exit code %d after %s, want 0", code, tc.desc)
			}
			wg.Wait()
			for i, r := range results {
				if r.err != nil || r.n != body {
					t.Errorf("slow request %d: %d of %d bytes, %v", i, r.n, body, r.err)
				}
			}
			got := map[int]int{}
			var first, last time.Time
			for _, c := range ws {
				code, ok := c.waitClosed(5 * time.Second)
				if !ok {
					code = 0
				} else {
					if first.IsZero() || c.closeAt.Before(first) {
						first = c.closeAt
					}
					if c.closeAt.After(last) {
						last = c.closeAt
					}
				}
				got[code]++
			}
			if got[1001] != nWS {
				t.Errorf("WebSocket clients got close codes %v (0 = still open), want 1001 x %d", got, nWS)
			}
			// websocket_drain_window 1s: the closes are spread over it.
			if spread := last.Sub(first); spread < 500*time.Millisecond || spread > 2*time.Second {
				t.Errorf("Close 1001 spread over %v, want about the 1s websocket_drain_window", spread)
			}
			if codes := b.waitCloses(t, nWS, 5*time.Second); codes[1001] != nWS {
				t.Errorf("backend got close codes %v, want 1001 x %d", codes, nWS)
			}
		})
	}
}

// TestStop: SIGTERM and "wsgate -s stop" send Close 1001 to every WebSocket
// and the process exits within 2 s.
func TestStop(t *testing.T) {
	for _, tc := range []struct {
		desc string
		send func(g *gateway)
	}{
		{"SIGTERM", func(g *gateway) { g.signal(syscall.SIGTERM) }},
		{"SIGINT", func(g *gateway) { g.signal(syscall.SIGINT) }},
		{"-s stop", func(g *gateway) { g.ctl("stop") }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			const nWS = 50
			b := newBackend(t)
			p := itoa(freePort(t))
			addr := "127.0.0.1:" + p
			g := startGateway(t, shutdownConf, map[string]string{"B": b.port(), "P": p}, addr)
			ws := dialMany(t, "ws://"+addr+"/ws/", nWS, 16)
			echoAll(t, ws, 16)

			sentAt := time.Now()
			tc.send(g)
			code, ok := g.waitExit(10 * time.Second)
			if !ok {
				t.Fatalf("wsgate still running 10s after %s", tc.desc)
			}
			took := g.exitAt.Sub(sentAt)
			t.Logf("exited %v after %s", took.Round(time.Millisecond), tc.desc)
			if took > 2*time.Second {
				t.Errorf("wsgate took %v to exit after %s, want at most 2s", took, tc.desc)
			}
			if code != 0 {
				t.Errorf("exit code %d after %s, want 0", code, tc.desc)
			}
			got := map[int]int{}
			for _, c := range ws {
				code, ok := c.waitClosed(5 * time.Second)
				if !ok {
					code = 0
				}
				got[code]++
			}
			if got[1001] != nWS {
				t.Errorf("WebSocket clients got close codes %v (0 = still open), want 1001 x %d", got, nWS)
			}
			if codes := b.waitCloses(t, nWS, 5*time.Second); codes[1001] != nWS {
				t.Errorf("backend got close codes %v, want 1001 x %d", codes, nWS)
			}
		})
	}
}
