package lb

import (
	"fmt"
	"net/http"
	"testing"
)

// visit makes rounds WebSocket handshakes (each with an echo) and rounds
// plain GETs from c through g and returns the backends that answered, in
// order. Errors fail the test.
func visit(t *testing.T, g *gateway, c client, rounds int, hdr http.Header) []string {
	t.Helper()
	var seen []string
	for i := range rounds {
		ws, resp, err := c.ws(g.url("ws", "/ws"), hdr)
		if err != nil {
			t.Errorf("client %s: handshake %d: %v", c.local, i, err)
			continue
		}
		seen = append(seen, resp.Header.Get("X-Backend"))
		if err := echo(ws, "x"); err != nil {
			t.Errorf("client %s: echo: %v", c.local, err)
		}
		closeWS(ws)
		hr, body, err := c.get(g.url("http", "/page"), hdr)
		if err != nil {
			t.Errorf("client %s: GET %d: %v", c.local, i, err)
			continue
		}
		if hr.StatusCode != 200 {
			t.Errorf("client %s: GET %d: status %d", c.local, i, hr.StatusCode)
			continue
		}
		seen = append(seen, body)
	}
	return seen
}

// sameServer returns the one server in seen, or "" (and fails the test)
// when requests of one client went to several.
func sameServer(t *testing.T, who string, seen []string) string {
	t.Helper()
	for _, s := range seen {
		if s != seen[0] {
			t.Errorf("%s: requests went to several servers %v, want one", who, seen)
			return ""
		}
	}
	if len(seen) == 0 {
		return ""
	}
	return seen[0]
}

// TestIPHashThroughProxy: with ip_hash, every WebSocket and HTTP request
// of one client address goes to one server; clients of different /24
// networks spread over the servers; two clients of one /24 share a server
// (nginx hashes the first three octets).
func TestIPHashThroughProxy(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        ip_hash;
        server %s;
        server %s;
        server %s;
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, a.addr, b.addr, c.addr))

	used := map[string]int{}
	for i := 1; i <= 24; i++ {
		cl := client{local: fmt.Sprintf("127.0.%d.7", i)}
		srv := sameServer(t, "client "+cl.local, visit(t, g, cl, 3, nil))
		used[srv]++
		// Another host of the same /24 lands on the same server.
		peer := client{local: fmt.Sprintf("127.0.%d.200", i)}
		if got := sameServer(t, "client "+peer.local, visit(t, g, peer, 1, nil)); got != srv {
			t.Errorf("ip_hash: %s went to %q but %s (same /24) went to %q", peer.local, got, cl.local, srv)
		}
	}
	t.Logf("clients per server: %v", used)
	if len(used) < 2 {
		t.Errorf("ip_hash sent 24 client networks to %d server(s) %v; the hash does not spread", len(used), used)
	}
	g.alive(t)
}

// TestConsistentHashRemoteAddr: with "hash $remote_addr consistent" every
// request of one client address goes to one server, and when a server
// stops only its clients move: the clients of the other servers stay
// where they were.
func TestConsistentHashRemoteAddr(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	g := startGateway(t, fmt.Sprintf(`
    upstream pool {
        hash $remote_addr consistent;
        server %s max_fails=1 fail_timeout=30s;
        server %s max_fails=1 fail_timeout=30s;
        server %s max_fails=1 fail_timeout=30s;
    }
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://pool; }
    }`, a.addr, b.addr, c.addr))

	var clients []client
	for i := 1; i <= 12; i++ {
		for j := 1; j <= 2; j++ {
			clients = append(clients, client{local: fmt.Sprintf("127.1.%d.%d", i, j*50)})
		}
	}
	before := map[string]string{}
	used := map[string]int{}
	for _, cl := range clients {
		srv := sameServer(t, "client "+cl.local, visit(t, g, cl, 3, nil))
		before[cl.local] = srv
		used[srv]++
	}
	t.Logf("clients per server: %v", used)
	if len(used) < 3 {
		t.Errorf("hash $remote_addr consistent sent 24 clients to %d server(s) %v; want all three used", len(used), used)
	}
	if t.Failed() {
		t.FailNow()
	}

	c.stop()
	moved := 0
	for _, cl := range clients {
		srv := sameServer(t, "client "+cl.local+" after c stopped", visit(t, g, cl, 2, nil))
		switch was := before[cl.local]; {
		case was != "c" && srv != was:
			t.Errorf("client %s was on %s and moved to %s when c stopped; consistent hashing moves only c's clients", cl.local, was, srv)
		case was == "c":
			moved++
			if srv == "c" || srv == "" {
				t.Errorf("client %s still on %q after c stopped", cl.local, srv)
			}
		}
	}
	t.Logf("%d clients moved off the stopped server", moved)
	g.alive(t)
}
