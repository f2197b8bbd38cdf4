package proxy

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// pipeConn returns an upstreamConn on one end of a pipe and the other end.
func pipeConn(t *testing.T, up *config.Upstream, key string) (*upstreamConn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return &upstreamConn{Conn: a, up: up, key: key, opened: nanotime(), requests: 1, br: bufio.NewReader(a)}, b
}

// closed reports whether the far end of a pipe sees its peer closed.
func closed(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

// TestIdleCacheLRU: with "keepalive N" the cache holds N connections for
// the whole upstream block and closes the least recently used one to make
// room, whichever server it leads to.
func TestIdleCacheLRU(t *testing.T) {
	up := &config.Upstream{Keepalive: 2, KeepaliveTimeout: time.Minute, KeepaliveRequests: 100, KeepaliveTime: time.Hour}
	c := newUpstreamClient()
	defer c.closeIdle()
	a1, far1 := pipeConn(t, up, "a")
	b1, far2 := pipeConn(t, up, "b")
	a2, far3 := pipeConn(t, up, "a")
	c.put(a1)
	time.Sleep(time.Millisecond)
	c.put(b1)
	time.Sleep(time.Millisecond)
	c.put(a2) // full: a1, the oldest, goes
	if !closed(far1) {
		t.Errorf("least recently used connection not closed")
	}
	if closed(far2) || closed(far3) {
		t.Errorf("a newer connection was closed")
	}
	if got := c.get(up, "b"); got != b1 {
		t.Errorf("get b = %p, want the pooled one %p", got, b1)
	}
	// Another upstream block has its own cache.
	other := &config.Upstream{Keepalive: 2, KeepaliveTimeout: time.Minute, KeepaliveRequests: 100, KeepaliveTime: time.Hour}
	if got := c.get(other, "a"); got != nil {
		t.Errorf("another upstream block got a connection of the first")
	}
}

// TestIdleCacheDefault: without "keepalive" each server keeps up to
// defaultMaxIdle idle connections.
func TestIdleCacheDefault(t *testing.T) {
	up := &config.Upstream{KeepaliveTimeout: time.Minute, KeepaliveRequests: 100, KeepaliveTime: time.Hour}
	c := newUpstreamClient()
	defer c.closeIdle()
	var fars []net.Conn
	for i := 0; i < defaultMaxIdle+1; i++ {
		pc, far := pipeConn(t, up, "a")
		c.put(pc)
		fars = append(fars, far)
	}
	pc, _ := pipeConn(t, up, "b")
	c.put(pc)
	if !closed(fars[0]) {
		t.Errorf("connection %d of one server kept", defaultMaxIdle+1)
	}
	if n := c.caches[up].n; n != defaultMaxIdle+1 {
		t.Errorf("%d idle, want %d for server a and 1 for b", n, defaultMaxIdle+1)
	}
}
