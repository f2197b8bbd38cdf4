package lb

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// resetter is a raw-wire upstream that dies mid-exchange: it accepts a
// connection, reads the request head, then resets the connection (RST),
// as a backend killed between accept and answer does.
type resetter struct {
	addr  string
	conns atomic.Int64
}

func startResetter(t *testing.T) *resetter {
	t.Helper()
	ln, err := net.Listen("tcp", freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &resetter{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			go func() {
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}()
		}
	}()
	return r
}

// TestUpgradeRetriedAfterReset: a server that resets the connection after
// reading the handshake is an "error" in proxy_next_upstream's sense (an
// error "while ... passing a request to it, or reading the response
// header"), so with the default "proxy_next_upstream error timeout" the
// WebSocket handshake moves on to the next server, as a plain GET does.
// This is what a backend SIGKILLed under load does to in-flight
// handshakes (TestFailoverKillRestartSlowStart hits it by chance).
func TestUpgradeRetriedAfterReset(t *testing.T) {
	bad := startResetter(t)
	good := startBackend(t, "good")
	g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        server %s max_fails=0;
        server %s max_fails=0;
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, bad.addr, good.addr))

	for i := range 4 {
		resp, body, err := client{}.get(g.url("http", "/"), nil)
		if err != nil || resp.StatusCode != http.StatusOK || body != "good" {
			t.Errorf("GET %d: %v %v %q, want 200 from good after the reset", i, err, statusOf(resp), body)
		}
	}
	httpResets := bad.conns.Load()
	for i := range 4 {
		ws, resp, err := client{}.ws(g.url("ws", "/ws"), nil)
		if err != nil {
			t.Errorf("upgrade %d: %v (status %v), want 101 from good after the reset", i, err, statusOf(resp))
			continue
		}
		closeWS(ws)
	}
	t.Logf("resets: %d during GETs, %d during upgrades", httpResets, bad.conns.Load()-httpResets)
	if bad.conns.Load()-httpResets == 0 {
		t.Errorf("no upgrade reached the resetting server; the test did not test anything")
	}
	if t.Failed() {
		t.Logf("wsgate log:\n%s", g.log)
	}
	g.alive(t)
}

func statusOf(resp *http.Response) any {
	if resp == nil {
		return "no response"
	}
	return resp.StatusCode
}
