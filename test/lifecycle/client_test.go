//go:build unix

package lifecycle

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsHTTP is the HTTP client the WebSocket clients dial with; it keeps no
// idle connections so client-side sockets do not linger between tests.
var wsHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// wsClient is a WebSocket client with a Read always pending (so it answers
// pings, as coder/websocket does only while reading). Messages go to msgs;
// the end of the connection is recorded once.
type wsClient struct {
	c    *websocket.Conn
	msgs chan []byte
	done chan struct{}

	// Set before done is closed.
	closeCode int // status of the Close frame received; -1 if none
	closeAt   time.Time
	err       error
}

// dialWS opens a WebSocket to url within d.
func dialWS(url string, d time.Duration) (*wsClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: wsHTTP})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	w := &wsClient{c: c, msgs: make(chan []byte, 16), done: make(chan struct{})}
	go w.readLoop()
	return w, nil
}

func (w *wsClient) readLoop() {
	defer close(w.done)
	for {
		_, b, err := w.c.Read(context.Background())
		if err != nil {
			w.closeAt = time.Now()
			w.closeCode = int(websocket.CloseStatus(err))
			w.err = err
			return
		}
		select {
		case w.msgs <- b:
		default: // nobody is waiting for it; drop
		}
	}
}

// echo sends msg and waits up to d for the same bytes back.
func (w *wsClient) echo(msg []byte, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	select {
	case b := <-w.msgs:
		if !bytes.Equal(b, msg) {
			return fmt.Errorf("echo: got %q, want %q", b, msg)
		}
		return nil
	case <-w.done:
		return fmt.Errorf("connection ended (close %d): %v", w.closeCode, w.err)
	case <-ctx.Done():
		return fmt.Errorf("no echo within %v", d)
	}
}

// waitClosed waits up to d for the connection to end and reports the Close
// code received.
func (w *wsClient) waitClosed(d time.Duration) (code int, ok bool) {
	select {
	case <-w.done:
		return w.closeCode, true
	case <-time.After(d):
		return 0, false
	}
}

// isOpen reports whether the connection has not ended.
func (w *wsClient) isOpen() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// close ends the connection with Close 1000 and waits for the handshake.
func (w *wsClient) close() {
	w.c.Close(websocket.StatusNormalClosure, "")
	<-w.done
}

// dialMany opens n WebSockets to url, par at a time. Every one is closed at
// cleanup.
func dialMany(t testing.TB, url string, n, par int) []*wsClient {
	t.Helper()
	out := make([]*wsClient, n)
	errs := make([]error, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = dialWS(url, 10*time.Second)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range out {
			if c != nil {
				c.c.CloseNow()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("dial WebSocket %d/%d to %s: %v", i+1, n, url, err)
		}
	}
	return out
}

// echoAll checks that every client still echoes, par at a time.
func echoAll(t testing.TB, cs []*wsClient, par int) {
	t.Helper()
	echoEach(t, cs, par, func(i int) []byte { return fmt.Appendf(nil, "still here %d", i) })
}

// echoEach checks that every client echoes msg(its index), par at a time.
func echoEach(t testing.TB, cs []*wsClient, par int, msg func(i int) []byte) {
	t.Helper()
	sem := make(chan struct{}, par)
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m := msg(i)
			if err := c.echo(m, 10*time.Second); err != nil {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("#%d (%d B): %v", i, len(m), err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d WebSockets do not echo; first: %v", len(failed), len(cs), failed[:min(5, len(failed))])
	}
}
