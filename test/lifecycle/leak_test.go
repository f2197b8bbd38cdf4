//go:build unix

package lifecycle

import (
	"github.com/wsgate/wsgate/internal/testenv"

	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const leakConf = `
pid {{DIR}}/wsgate.pid;
error_log {{DIR}}/error.log;
http {
    access_log {{DIR}}/access.log;
    upstream be { server 127.0.0.1:{{B}}; }
    server {
        listen 127.0.0.1:{{P}};
        location /ws/ { proxy_pass http://be; }
        location /api/ { proxy_pass http://be; }
        location = /gen { return 200 "{{GEN}}"; }
    }
}
`

// procUse is what the tests watch of the wsgate process.
type procUse struct{ fds, threads, rssKB int }

func (g *gateway) use() procUse {
	return procUse{fds: g.fds(), threads: g.status("Threads"), rssKB: g.status("VmRSS")}
}

func (u procUse) String() string {
	return fmt.Sprintf("%d fds, %d threads, %d kB RSS", u.fds, u.threads, u.rssKB)
}

// lightLoad runs one client that alternates a proxied HTTP request and a
// short WebSocket session until stop is called; errors are counted.
func lightLoad(t testing.TB, addr string) (stop func() (ok, failed int64)) {
	var done atomic.Bool
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	tr := &http.Transport{}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !done.Load(); i++ {
			err := func() error {
				resp, err := client.Get("http://" + addr + "/api/x")
				if err != nil {
					return err
				}
				resp.Body.Close()
				ws, err := dialWS("ws://"+addr+"/ws/light", 5*time.Second)
				if err != nil {
					return err
				}
				defer ws.close()
				return ws.echo(fmt.Appendf(nil, "light %d", i), 5*time.Second)
			}()
			if err != nil {
				failed.Add(1)
			} else {
				ok.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() (int64, int64) {
		done.Store(true)
		wg.Wait()
		tr.CloseIdleConnections()
		return ok.Load(), failed.Load()
	}
}

// TestNoLeakAfterClients: FDs and threads of the wsgate process go back near
// their baseline once 300 WebSockets and some HTTP clients have left.
func TestNoLeakAfterClients(t *testing.T) {
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	g := startGateway(t, leakConf, map[string]string{"B": b.port(), "P": p, "GEN": "0"}, addr)

	stop := lightLoad(t, addr)
	time.Sleep(500 * time.Millisecond)
	stop()
	time.Sleep(300 * time.Millisecond)
	base := g.use()

	ws := dialMany(t, "ws://"+addr+"/ws/many", 300, 32)
	echoAll(t, ws, 32)
	peak := g.use()
	if peak.fds < base.fds+600 {
		t.Errorf("with 300 WebSockets open wsgate has %d fds, baseline %d: want 2 per WebSocket (is /proc read right?)", peak.fds, base.fds)
	}
	for _, c := range ws {
		c.close()
	}
	fds := g.waitFDsAtMost(base.fds+4, 10*time.Second)
	after := g.use()
	t.Logf("baseline %v; 300 WebSockets open %v; after they left %v", base, peak, after)
	if fds > base.fds+4 {
		t.Errorf("wsgate holds %d fds 10s after 300 WebSockets left, baseline %d", fds, base.fds)
	}
	// Go keeps the OS threads it started for blocking system calls (a
	// burst of 600 closes can add a few), so one round may raise the
	// count; a leak keeps raising it. A second round must not.
	ws = dialMany(t, "ws://"+addr+"/ws/many", 300, 32)
	echoAll(t, ws, 32)
	for _, c := range ws {
		c.close()
	}
	g.waitFDsAtMost(base.fds+4, 10*time.Second)
	again := g.use()
	t.Logf("after a second round of 300: %v", again)
	if again.threads > after.threads+2 && again.threads > base.threads+4 {
		t.Errorf("wsgate threads keep growing: %d at baseline, %d after one round, %d after two", base.threads, after.threads, again.threads)
	}
	if again.fds > base.fds+4 {
		t.Errorf("wsgate holds %d fds after the second round, baseline %d", again.fds, base.fds)
	}
	// wsgate has closed its backend sockets (its fds are back); the
	// backend notices each close on its own schedule.
	deadline := time.Now().Add(3 * time.Second)
	for b.open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := b.open.Load(); n != 0 {
		t.Errorf("backend still has %d WebSockets open 3s after wsgate closed its sockets", n)
	}
}

// TestNoLeakAfterReloads: 50 reloads in a row under light load, with one
// WebSocket held through all of them, leave FDs, threads and RSS back near
// their baseline once the held WebSocket has left.
func TestNoLeakAfterReloads(t *testing.T) {
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	vars := func(gen int) map[string]string {
		return map[string]string{"B": b.port(), "P": p, "GEN": itoa(gen)}
	}
	g := startGateway(t, leakConf, vars(0), addr)

	// Warm up with the same work (50 reloads under light load), so the
	// baseline is a process whose heap has already grown to what this work
	// needs: a fresh process's RSS is ~10 MB, and the Go heap floating
	// between GC cycles alone moves it by more than 30%. What must not
	// happen is growth from one round of 50 reloads to the next.
	start := time.Now()
	stop := lightLoad(t, addr)
	for gen := 1; gen <= 50; gen++ {
		g.writeConfig(leakConf, vars(gen))
		g.reload(false)
	}
	stop()
	t.Logf("warm-up: 50 reloads in %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond)
	base := g.use()

	held, err := dialWS("ws://"+addr+"/ws/held", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	stop = lightLoad(t, addr)
	peak := procUse{}
	for gen := 51; gen <= 100; gen++ {
		g.writeConfig(leakConf, vars(gen))
		g.reload(gen%10 == 0)
		mustGet(t, "http://"+addr+"/gen", itoa(gen))
		if u := g.use(); u.fds > peak.fds {
			peak = u
		}
	}
	ok, failed := stop()
	if failed > 0 {
		t.Errorf("light load during 50 reloads: %d of %d rounds failed", failed, ok+failed)
	}
	if err := held.echo([]byte("held"), 5*time.Second); err != nil {
		t.Errorf("the WebSocket held through 50 reloads: %v", err)
	}
	held.close()
	httpClient.CloseIdleConnections()

	fds := g.waitFDsAtMost(base.fds+4, 10*time.Second)
	time.Sleep(time.Second)
	after := g.use()
	t.Logf("baseline %v; peak during 50 reloads %v (%d light rounds); after %v", base, peak, ok, after)
	if fds > base.fds+4 {
		t.Errorf("wsgate holds %d fds after 50 reloads and the clients left, baseline %d", fds, base.fds)
	}
	if after.threads > base.threads+4 {
		t.Errorf("wsgate has %d threads after 50 reloads, baseline %d", after.threads, base.threads)
	}
	// The race detector keeps shadow memory and sync metadata for every
	// generation's objects, so a -race binary's RSS says nothing about
	// wsgate's; .ci/run also runs this test without -race for the check.
	if testenv.Race {
		t.Logf("RSS check not applied to a -race build")
	} else if limit := base.rssKB * 13 / 10; after.rssKB > limit {
		t.Errorf("wsgate RSS %d kB after 50 reloads, baseline %d kB (limit +30%% = %d kB)", after.rssKB, base.rssKB, limit)
	}
}

// TestNoLeakBurstMemoryReturned: a burst of WebSockets that are then held
// idle must not leave wsgate's peak heap resident. Without the memory tidy
// (internal/gateway/tidy.go) the handshakes' garbage stays in RSS until a
// GC that an idle proxy does not run for minutes; with it, one quiet second
// after the burst wsgate collects and returns it, and the held WebSockets
// cost what they really hold.
func TestNoLeakBurstMemoryReturned(t *testing.T) {
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	g := startGateway(t, leakConf, map[string]string{"B": b.port(), "P": p, "GEN": "0"}, addr)
	time.Sleep(300 * time.Millisecond)
	base := g.use()

	const n = 1500
	ws := dialMany(t, "ws://"+addr+"/ws/burst", n, 64)
	echoAll(t, ws, 64)
	peak := g.use()
	held := peak
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		if u := g.use(); u.rssKB < held.rssKB {
			held = u
		}
	}
	t.Logf("baseline %v; right after %d WebSockets opened %v; lowest while they were held %v", base, n, peak, held)
	grew, kept := peak.rssKB-base.rssKB, held.rssKB-base.rssKB
	if testenv.Race {
		// The race detector's shadow memory is not returned.
		t.Logf("RSS check not applied to a -race build")
	} else if kept*10 > grew*8 {
		t.Errorf("wsgate kept %d of the %d kB of RSS the burst added while the %d WebSockets were held idle: the burst's garbage was not returned (want at most 80%%)", kept, grew, n)
	}
	echoAll(t, ws, 64) // the tidy must not disturb them
}
