//go:build unix

package lifecycle

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// backend is an echo WebSocket server on 127.0.0.1. It also answers
// /slow?ms=N&bytes=M with M bytes after N milliseconds, and records the
// close status every WebSocket ended with.
type backend struct {
	addr string
	srv  *http.Server

	ctx    context.Context // cancelled at cleanup: ends every WebSocket
	cancel context.CancelFunc

	open     atomic.Int64 // WebSockets currently open
	accepted atomic.Int64 // WebSockets accepted so far
	slowReq  atomic.Int64 // /slow requests received so far

	mu     sync.Mutex
	closes []closeEvent
}

// closeEvent is how one WebSocket ended: the Close code the peer sent
// (-1 when the connection ended without a Close frame) and when.
type closeEvent struct {
	code int
	at   time.Time
}

func newBackend(t testing.TB) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String()}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	t.Cleanup(func() {
		b.cancel()
		b.srv.Close()
	})
	return b
}

// port returns the backend's port.
func (b *backend) port() string {
	_, p, _ := net.SplitHostPort(b.addr)
	return p
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/slow") {
		b.slowReq.Add(1)
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		n, _ := strconv.Atoi(r.URL.Query().Get("bytes"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write([]byte(strings.Repeat("x", n)))
		return
	}
	if r.Header.Get("Upgrade") == "" {
		w.Write([]byte("backend " + b.addr))
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	b.accepted.Add(1)
	b.open.Add(1)
	defer b.open.Add(-1)
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	for {
		typ, msg, err := c.Read(b.ctx)
		if err != nil {
			code := int(websocket.CloseStatus(err))
			b.mu.Lock()
			b.closes = append(b.closes, closeEvent{code: code, at: time.Now()})
			b.mu.Unlock()
			return
		}
		if err := c.Write(b.ctx, typ, msg); err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				continue // the Read will report the close
			}
		}
	}
}

// closeCodes returns how many WebSockets ended with each close code.
func (b *backend) closeCodes() map[int]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := map[int]int{}
	for _, e := range b.closes {
		m[e.code]++
	}
	return m
}

// waitCloses waits until at least n WebSockets have ended.
func (b *backend) waitCloses(t testing.TB, n int, d time.Duration) map[int]int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b.mu.Lock()
		got := len(b.closes)
		b.mu.Unlock()
		if got >= n {
			return b.closeCodes()
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %s: %d WebSocket(s) ended within %v, want %d; codes %v", b.addr, got, d, n, b.closeCodes())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastClose returns the most recent close event, if any.
func (b *backend) lastClose() (closeEvent, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.closes) == 0 {
		return closeEvent{}, false
	}
	return b.closes[len(b.closes)-1], true
}
