package lb

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// openMany opens n WebSockets to url with workers in parallel and returns
// them with the backend that answered each (X-Backend of the 101). Every
// failed handshake fails the test.
func openMany(t *testing.T, c client, url string, n, workers int) ([]*websocket.Conn, []string) {
	t.Helper()
	conns := make([]*websocket.Conn, n)
	names := make([]string, n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ws, resp, err := c.ws(url, nil)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("handshake %d: %v", i, err))
					continue
				}
				conns[i] = ws
				names[i] = resp.Header.Get("X-Backend")
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Errorf("%d of %d handshakes failed; first: %v", f, n, firstErr.Load())
	}
	return conns, names
}

// closeAll closes every non-nil connection, in parallel.
func closeAll(conns []*websocket.Conn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			closeWS(c)
			<-sem
		}()
	}
	wg.Wait()
}

// TestWeightedRoundRobinWebSockets: 1000 WebSocket handshakes through
// wsgate to three servers weighted 5:3:2 land on them in proportion, each
// within 5% of its share (smooth weighted round robin gives the exact
// 500/300/200 when nothing fails).
func TestWeightedRoundRobinWebSockets(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        server %s weight=5;
        server %s weight=3;
        server %s weight=2;
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, a.addr, b.addr, c.addr))

	const n = 1000
	url := g.url("ws", "/ws")
	var wg sync.WaitGroup
	var failed atomic.Int64
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				ws, _, err := client{}.ws(url, nil)
				if err != nil {
					if failed.Add(1) == 1 {
						t.Errorf("handshake: %v", err)
					}
					continue
				}
				if err := echo(ws, "hi"); err != nil {
					t.Errorf("echo: %v", err)
				}
				closeWS(ws)
			}
		}()
	}
	wg.Wait()
	g.alive(t)
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d handshakes failed", f, n)
	}
	got := map[string]int64{"a": a.upgrades.Load(), "b": b.upgrades.Load(), "c": c.upgrades.Load()}
	t.Logf("upgrades accepted: a=%d b=%d c=%d (weights 5:3:2)", got["a"], got["b"], got["c"])
	if total := got["a"] + got["b"] + got["c"]; total != n {
		t.Errorf("backends accepted %d upgrades in all, want %d", total, n)
	}
	for name, w := range map[string]float64{"a": 5, "b": 3, "c": 2} {
		want := n * w / 10
		if math.Abs(float64(got[name])-want) > 0.05*want {
			t.Errorf("server %s (weight %.0f) got %d of %d WebSockets, want %.0f ±5%%", name, w, got[name], n, want)
		}
	}
}

// TestLeastConnCountsTunnels: under least_conn, live WebSocket tunnels are
// connections. With 500 idle tunnels left open on one server and none on
// the other two, the next 500 WebSockets all go to the other two.
func TestLeastConnCountsTunnels(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        least_conn;
        server %s;
        server %s;
        server %s;
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, a.addr, b.addr, c.addr))
	url := g.url("ws", "/ws")

	// 1500 idle tunnels: least_conn spreads them 500 each.
	conns, names := openMany(t, client{}, url, 1500, 16)
	t.Cleanup(func() { closeAll(conns) })
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("after 1500: a=%d b=%d c=%d live", a.live.Load(), b.live.Load(), c.live.Load())
	for _, be := range []*backend{a, b, c} {
		if l := be.live.Load(); l < 450 || l > 550 {
			t.Errorf("least_conn: server %s holds %d of 1500 idle tunnels, want about 500", be.name, l)
		}
	}
	// Close the tunnels of b and c: a alone holds about 500.
	var others []*websocket.Conn
	for i, n := range names {
		if n != "a" {
			others = append(others, conns[i])
			conns[i] = nil
		}
	}
	closeAll(others)
	if !b.waitLive(0, 10*time.Second) || !c.waitLive(0, 10*time.Second) {
		t.Fatalf("tunnels of b and c did not end: b=%d c=%d live", b.live.Load(), c.live.Load())
	}
	time.Sleep(300 * time.Millisecond) // let wsgate see the tunnels end
	held := a.live.Load()
	upA, upB, upC := a.upgrades.Load(), b.upgrades.Load(), c.upgrades.Load()

	more, _ := openMany(t, client{}, url, 500, 16)
	t.Cleanup(func() { closeAll(more) })
	dA, dB, dC := a.upgrades.Load()-upA, b.upgrades.Load()-upB, c.upgrades.Load()-upC
	t.Logf("a holds %d idle tunnels; the next 500 went a=%d b=%d c=%d", held, dA, dB, dC)
	if dA != 0 {
		t.Errorf("least_conn sent %d of the next 500 WebSockets to the server already holding %d tunnels, want 0", dA, held)
	}
	if dB+dC != 500 {
		t.Errorf("the other two servers got %d of the next 500 WebSockets, want 500", dB+dC)
	}
	if math.Abs(float64(dB-dC)) > 25 {
		t.Errorf("least_conn split the next 500 unevenly between two empty servers: b=%d c=%d", dB, dC)
	}
	g.alive(t)
}
