//go:build unix && !race

// The race detector allows at most 8128 live goroutines, and this test's
// own clients and backend need more than twice that; .ci/run runs it in
// its pass without -race, and `go test ./...` runs it too.

package lifecycle

import (
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestNoLeak9000Tunnels holds 9000 WebSockets through one wsgate process
// at once (the figure: 18000 proxy sockets, under the 20000
// open-file hard limit here), echoes messages of random sizes on every one
// before and after an idle hold, and checks what wsgate spends on them:
// two descriptors each and no thread per connection while they are open,
// a few kB of RSS each once they are idle, and everything back to the
// baseline after they leave, half with a Close handshake and half by an
// abrupt TCP close.
func TestNoLeak9000Tunnels(t *testing.T) {
	n := 9000
	// This process holds both ends wsgate talks to: a client socket and a
	// backend socket per WebSocket.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if fit := int(lim.Cur-300) / 2; fit < n {
		t.Logf("open-file limit %d: holding %d WebSockets, not %d", lim.Cur, fit, n)
		n = fit
	}
	if n < 1000 {
		t.Fatalf("the open-file limit (%d) leaves room for only %d WebSockets; raise it (ulimit -n)", lim.Cur, n)
	}

	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	g := startGateway(t, leakConf, map[string]string{"B": b.port(), "P": p, "GEN": "0"}, addr)
	// One WebSocket first: the tunnel engine's event loops (an epoll
	// descriptor and a wake-up pipe each) start with the first tunnel and
	// live as long as the process, like Go's own poller.
	warm := dialMany(t, "ws://"+addr+"/ws/warm", 1, 1)
	echoAll(t, warm, 1)
	warm[0].close()
	g.waitFDsAtMost(0, 500*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	base := g.use()

	start := time.Now()
	ws := dialMany(t, "ws://"+addr+"/ws/stress", n, 64)
	opened := time.Since(start)
	echoRandom(t, ws, 64, 16<<10)
	peak := g.use()
	t.Logf("%d WebSockets opened in %v; baseline %v; open %v", n, opened.Round(time.Millisecond), base, peak)
	if peak.fds < base.fds+2*n {
		t.Errorf("with %d WebSockets open wsgate has %d fds, baseline %d: want 2 per WebSocket", n, peak.fds, base.fds)
	}
	// Go starts threads for system calls that block during the burst and
	// keeps them (a few dozen at most); a thread per connection would be
	// thousands.
	if peak.threads > base.threads+64 {
		t.Errorf("wsgate runs %d threads with %d WebSockets open, %d at baseline: tunnels must not hold threads", peak.threads, n, base.threads)
	}

	// Idle hold: the lowest RSS over a few seconds (wsgate returns the
	// handshakes' garbage one quiet second after the burst).
	held := peak
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		if u := g.use(); u.rssKB < held.rssKB {
			held = u
		}
	}
	perConn := (held.rssKB - base.rssKB) * 1024 / n
	t.Logf("held idle: %v, %d B of RSS per WebSocket", held, perConn)
	// A goroutine and a buffer per direction (the io.Copy design) is
	// ~75 KB; an idle epoll tunnel is under 2 KB (docs/benchmarks.md),
	// ~2.3 KB here with this config's access log (its line's variables;
	// keeping the whole request for the log was ~4.8 KB).
	if perConn > 4<<10 {
		t.Errorf("wsgate keeps %d B of RSS per idle WebSocket with %d held: idle tunnels must hold no buffers or goroutine stacks", perConn, n)
	}
	echoRandom(t, ws, 64, 16<<10)

	// Leave: even ones with a Close handshake, odd ones abruptly.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i, c := range ws {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if i%2 == 0 {
				c.close()
			} else {
				c.c.CloseNow()
			}
		}()
	}
	wg.Wait()
	fds := g.waitFDsAtMost(base.fds+4, 20*time.Second)
	after := g.use()
	t.Logf("after they left: %v", after)
	if fds > base.fds+4 {
		t.Errorf("wsgate holds %d fds 20s after %d WebSockets left, baseline %d", fds, n, base.fds)
	}
	if after.threads > peak.threads {
		t.Errorf("wsgate runs %d threads after %d WebSockets left, %d while they were open", after.threads, n, peak.threads)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if o := b.open.Load(); o != 0 {
		t.Errorf("backend still has %d WebSockets open 10s after wsgate closed its sockets", o)
	}
	// wsgate still works.
	mustGet(t, "http://"+addr+"/gen", "0")
}

// echoRandom checks that every client echoes a message of a random size
// from 0 to max bytes, par at a time.
func echoRandom(t testing.TB, cs []*wsClient, par, max int) {
	t.Helper()
	echoEach(t, cs, par, func(int) []byte {
		msg := make([]byte, rand.IntN(max+1))
		for j := range msg {
			msg[j] = 'a' + byte(rand.IntN(26))
		}
		return msg
	})
}
