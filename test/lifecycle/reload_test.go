//go:build unix

package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// reloadConf has one WebSocket route that stays and one unrelated route
// ({{GEN}}) that every reload changes.
const reloadConf = `
pid {{DIR}}/wsgate.pid;
error_log {{DIR}}/error.log;
events { worker_connections 8192; }
http {
    access_log off;
    websocket_drain_window 3s;
    upstream ws_a { server 127.0.0.1:{{B}}; }
    server {
        listen 127.0.0.1:{{P}};
        location /ws/ { proxy_pass http://ws_a; }
        location = /gen { return 200 "{{GEN}}"; }
        location /extra{{GEN}}/ { return 200 "extra {{GEN}}"; }
    }
}
`

// heldSockets is how many WebSockets the reload test holds. The issue asks
// for 1000; on this 2-core machine 1000 dial, survive 20 reloads and echo
// again in a few seconds, so the full count is used.
const heldSockets = 1000

// TestReloadKeepsWebSockets: 1000 WebSockets are held across 20 reloads
// (SIGHUP, and "wsgate -s reload" every fifth time) that change unrelated
// routes. Meanwhile new clients connect in a loop, and none may fail. All
// held sockets survive and echo afterwards; then an invalid config reload
// changes nothing and the error_log names file:line.
func TestReloadKeepsWebSockets(t *testing.T) {
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	vars := func(gen int) map[string]string {
		return map[string]string{"B": b.port(), "P": p, "GEN": itoa(gen)}
	}
	g := startGateway(t, reloadConf, vars(0), addr)
	base := "http://" + addr
	mustGet(t, base+"/gen", "0")

	held := dialMany(t, "ws://"+addr+"/ws/held", heldSockets, 64)
	echoAll(t, held, 64)

	// New clients connect, echo and leave in a loop for the whole test.
	var (
		stop      atomic.Bool
		wg        sync.WaitGroup
		loopOK    atomic.Int64
		loopMu    sync.Mutex
		loopFails []string
	)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				err := func() error {
					c, err := dialWS("ws://"+addr+"/ws/loop", 5*time.Second)
					if err != nil {
						return fmt.Errorf("dial: %w", err)
					}
					defer c.close()
					return c.echo(fmt.Appendf(nil, "loop %d/%d", w, i), 5*time.Second)
				}()
				if err == nil {
					err = func() error {
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						code, _, err := get(ctx, base+"/gen")
						if err == nil && code != 200 {
							err = fmt.Errorf("GET /gen: status %d", code)
						}
						return err
					}()
				}
				if err != nil {
					loopMu.Lock()
					loopFails = append(loopFails, err.Error())
					loopMu.Unlock()
					continue
				}
				loopOK.Add(1)
			}
		}()
	}

	for gen := 1; gen <= 20; gen++ {
		g.writeConfig(reloadConf, vars(gen))
		g.reload(gen%5 == 0)
		mustGet(t, base+"/gen", itoa(gen))
		mustGet(t, base+fmt.Sprintf("/extra%d/", gen), fmt.Sprintf("extra %d", gen))
	}
	stop.Store(true)
	wg.Wait()
	if len(loopFails) > 0 {
		t.Errorf("new clients during reloads: %d failed, %d ok; first: %v", len(loopFails), loopOK.Load(), loopFails[:min(5, len(loopFails))])
	}
	if loopOK.Load() < 20 {
		t.Errorf("only %d new clients completed during 20 reloads", loopOK.Load())
	}
	t.Logf("%d new clients connected, echoed and left during 20 reloads", loopOK.Load())

	closed := 0
	for _, c := range held {
		if !c.isOpen() {
			closed++
		}
	}
	if closed > 0 {
		t.Fatalf("%d of %d held WebSockets were closed by the reloads", closed, len(held))
	}
	echoAll(t, held, 64)
	if n := b.open.Load(); n < heldSockets {
		t.Errorf("backend has %d WebSockets open, want %d", n, heldSockets)
	}

	// An invalid config (a missing ';') changes nothing.
	bad := strings.Replace(reloadConf, `return 200 "{{GEN}}";`, `return 200 "{{GEN}}"`, 1)
	g.writeConfig(bad, vars(99))
	alerts := g.countErrorLog("reload failed")
	g.signal(syscall.SIGHUP)
	g.waitErrorLog("reload failed", alerts+1, 10*time.Second)
	elog := g.read("error.log")
	if !strings.Contains(elog, g.conf+":") {
		t.Errorf("the failed reload's error_log lines do not name %s:LINE:\n%s", g.conf, tail(elog, 2000))
	} else {
		for _, l := range strings.Split(elog, "\n") {
			if strings.Contains(l, g.conf+":") {
				t.Logf("error_log: %s", l)
			}
		}
	}
	mustGet(t, base+"/gen", "20")
	if code, body, _ := get(context.Background(), base+"/extra99/"); code == 200 {
		t.Errorf("GET /extra99/ = 200 %q after a failed reload; the bad config was applied", body)
	}
	echoAll(t, held, 64)
	c, err := dialWS("ws://"+addr+"/ws/after", 5*time.Second)
	if err != nil {
		t.Fatalf("dial after a failed reload: %v", err)
	}
	if err := c.echo([]byte("after"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c.close()

	// The held sockets leave; wsgate closes their connections.
	for _, c := range held {
		c.c.CloseNow()
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := b.open.Load(); n > 0 {
		t.Errorf("%d backend WebSockets still open 10s after their clients left", n)
	}
}
