package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsProxy is a tiny upgrade proxy in front of a real WebSocket backend: it
// relays the handshake verbatim, then hands both connections to a Tunnel.
type wsProxy struct {
	ln      net.Listener
	stats   chan Stats
	tunnels chan *Tunnel
	wg      sync.WaitGroup
}

func startWSProxy(t *testing.T, backendAddr string, opt Options) *wsProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assertf(t, err == nil, "listen: %v", err)
	p := &wsProxy{ln: ln, stats: make(chan Stats, 16), tunnels: make(chan *Tunnel, 16)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(t, c, backendAddr, opt)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *wsProxy) serve(t *testing.T, c net.Conn, backendAddr string, opt Options) {
	br := bufio.NewReader(c)
	head, err := readHead(br)
	if err != nil {
		c.Close()
		return
	}
	bc, err := net.Dial("tcp", backendAddr)
	if err != nil {
		c.Close()
		t.Errorf("dial backend: %v", err)
		return
	}
	bbr := bufio.NewReader(bc)
	var resp []byte
	if _, err = bc.Write(head); err == nil {
		resp, err = readHead(bbr)
	}
	if err == nil {
		_, err = c.Write(resp)
	}
	if err != nil || !strings.Contains(string(resp), " 101 ") {
		t.Errorf("handshake: %v %q", err, resp)
		c.Close()
		bc.Close()
		return
	}
	cbuf, _ := br.Peek(br.Buffered())
	bbuf, _ := bbr.Peek(bbr.Buffered())
	tun := New(c, cbuf, bc, bbuf, opt)
	p.tunnels <- tun
	p.stats <- tun.Run(context.Background())
}

func (p *wsProxy) url() string { return "ws://" + p.ln.Addr().String() }

// wsBackend starts a WebSocket server running handle for each connection and
// waits for the handlers on cleanup.
func wsBackend(t *testing.T, mode websocket.CompressionMode, handle func(*websocket.Conn)) *httptest.Server {
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: mode})
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.CloseNow()
		handle(c)
	}))
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return srv
}

// echo echoes every message until the connection fails.
func echo(c *websocket.Conn) {
	ctx := context.Background()
	c.SetReadLimit(1 << 24)
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

func wsDial(t *testing.T, url string, mode websocket.CompressionMode) *websocket.Conn {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		CompressionMode: mode,
		HTTPClient:      &http.Client{Transport: tr},
	})
	assertf(t, err == nil, "dial: %v", err)
	c.SetReadLimit(1 << 24)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func (p *wsProxy) wait(t *testing.T) Stats {
	t.Helper()
	select {
	case st := <-p.stats:
		return st
	case <-time.After(5 * time.Second):
		t.Fatal("tunnel did not end")
	}
	return Stats{}
}

func TestWebSocketEcho(t *testing.T) { bothEngines(t, testWebSocketEcho) }

func testWebSocketEcho(t *testing.T) {
	tests := []struct {
		desc string
		mode websocket.CompressionMode
	}{
		{desc: "no compression", mode: websocket.CompressionDisabled},
		{desc: "permessage-deflate context takeover", mode: websocket.CompressionContextTakeover},
		{desc: "permessage-deflate no context takeover", mode: websocket.CompressionNoContextTakeover},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			backend := wsBackend(t, tt.mode, echo)
			proxy := startWSProxy(t, backend.Listener.Addr().String(), Options{Frames: true})
			c := wsDial(t, proxy.url(), tt.mode)
			ctx := t.Context()
			const n = 20
			var sent int64
			for i := 0; i < n; i++ {
				msg := []byte(strings.Repeat(fmt.Sprintf("message %d is quite compressible. ", i), 10+i*50))
				typ := websocket.MessageText
				if i%2 == 1 {
					typ = websocket.MessageBinary
				}
				sent += int64(len(msg))
				assertf(t, c.Write(ctx, typ, msg) == nil, "write %d", i)
				gt, got, err := c.Read(ctx)
				assertf(t, err == nil, "read %d: %v", i, err)
				assertf(t, gt == typ && bytes.Equal(got, msg), "echo %d differs", i)
			}
			assertf(t, c.Close(websocket.StatusNormalClosure, "done") == nil, "close")
			st := proxy.wait(t)
			assertf(t, st.Err == nil, "Err = %v", st.Err)
			assertf(t, st.MessagesIn == n && st.MessagesOut == n, "messages %d/%d", st.MessagesIn, st.MessagesOut)
			assertf(t, st.CloseCode == 1000 && st.CloseBy == "client", "close %d by %q", st.CloseCode, st.CloseBy)
			if tt.mode == websocket.CompressionDisabled {
				assertf(t, st.BytesFromClient > sent, "BytesFromClient %d <= payload %d", st.BytesFromClient, sent)
			} else {
				// Proof that deflate was negotiated and carried.
				assertf(t, st.BytesFromClient < sent/4, "BytesFromClient %d, payload %d: not compressed", st.BytesFromClient, sent)
			}
		})
	}
}

// TestWebSocketKeepalive: with IdleTimeout 2s and PingInterval 1s, a client
// that answers pings (coder/websocket does while reading) stays connected
// well past the idle timeout although no message moves.
func TestWebSocketKeepalive(t *testing.T) { bothEngines(t, testWebSocketKeepalive) }

func testWebSocketKeepalive(t *testing.T) {
	backend := wsBackend(t, websocket.CompressionDisabled, echo)
	proxy := startWSProxy(t, backend.Listener.Addr().String(),
		Options{Frames: true, IdleTimeout: 2 * time.Second, PingInterval: time.Second})
	c := wsDial(t, proxy.url(), websocket.CompressionDisabled)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx) // answers pings; no message comes
	assertf(t, errors.Is(err, context.DeadlineExceeded), "connection ended after idle: %v", err)
	// Reading was interrupted by the deadline, which closes a
	// coder/websocket conn; the tunnel must report a client that left, not a
	// timeout.
	st := proxy.wait(t)
	assertf(t, !errors.Is(st.Err, ErrIdleTimeout) && !errors.Is(st.Err, ErrPingTimeout), "Err = %v", st.Err)
	assertf(t, st.Duration >= 5*time.Second, "tunnel lasted %v", st.Duration)
}

// TestWebSocketDeadClient: a client that stops answering is closed within
// PingInterval+PingTimeout and the backend gets Close 1001.
func TestWebSocketDeadClient(t *testing.T) { bothEngines(t, testWebSocketDeadClient) }

func testWebSocketDeadClient(t *testing.T) {
	backendErr := make(chan error, 1)
	backend := wsBackend(t, websocket.CompressionDisabled, func(c *websocket.Conn) {
		_, _, err := c.Read(context.Background())
		backendErr <- err
	})
	proxy := startWSProxy(t, backend.Listener.Addr().String(),
		Options{Frames: true, PingInterval: 500 * time.Millisecond, PingTimeout: 500 * time.Millisecond})
	c := wsDial(t, proxy.url(), websocket.CompressionDisabled)
	_ = c // never reads, so never answers pings
	start := time.Now()
	select {
	case err := <-backendErr:
		assertf(t, websocket.CloseStatus(err) == CloseGoingAway, "backend got %v", err)
	case <-time.After(3 * time.Second):
		t.Fatal("backend not closed")
	}
	st := proxy.wait(t)
	assertf(t, time.Since(start) < 1500*time.Millisecond, "closed after %v", time.Since(start))
	assertf(t, errors.Is(st.Err, ErrPingTimeout), "Err = %v", st.Err)
}

func TestWebSocketShutdown(t *testing.T) { bothEngines(t, testWebSocketShutdown) }

func testWebSocketShutdown(t *testing.T) {
	backendErr := make(chan error, 1)
	backend := wsBackend(t, websocket.CompressionContextTakeover, func(c *websocket.Conn) {
		_, _, err := c.Read(context.Background())
		backendErr <- err
	})
	proxy := startWSProxy(t, backend.Listener.Addr().String(), Options{Frames: true})
	c := wsDial(t, proxy.url(), websocket.CompressionContextTakeover)
	tun := <-proxy.tunnels
	tun.Shutdown(CloseServiceRestart, "reload")
	_, _, err := c.Read(t.Context())
	assertf(t, websocket.CloseStatus(err) == CloseServiceRestart, "client got %v", err)
	assertf(t, websocket.CloseStatus(<-backendErr) == CloseGoingAway, "backend did not get 1001")
	st := proxy.wait(t)
	assertf(t, st.Err == nil && st.CloseCode == CloseServiceRestart, "stats %+v", st)
}

// TestWebSocketBackendKilled: the backend's TCP connection dies mid-stream;
// the client gets Close 1011 within a second.
func TestWebSocketBackendKilled(t *testing.T) { bothEngines(t, testWebSocketBackendKilled) }

func testWebSocketBackendKilled(t *testing.T) {
	backend := wsBackend(t, websocket.CompressionDisabled, func(c *websocket.Conn) {
		ctx := context.Background()
		c.Write(ctx, websocket.MessageText, []byte("about to die"))
		c.CloseNow() // TCP close, no Close frame
	})
	proxy := startWSProxy(t, backend.Listener.Addr().String(), Options{Frames: true})
	c := wsDial(t, proxy.url(), websocket.CompressionDisabled)
	_, msg, err := c.Read(t.Context())
	assertf(t, err == nil && string(msg) == "about to die", "read: %v", err)
	start := time.Now()
	_, _, err = c.Read(t.Context())
	assertf(t, websocket.CloseStatus(err) == CloseInternalError, "client got %v", err)
	assertf(t, time.Since(start) < time.Second, "closed after %v", time.Since(start))
	st := proxy.wait(t)
	assertf(t, errors.Is(st.Err, ErrBackendVanished), "Err = %v", st.Err)
}
