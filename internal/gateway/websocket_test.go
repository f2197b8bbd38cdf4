package gateway_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// newWSEcho is a WebSocket backend that echoes every message and
// records the handshake request.
func newWSEcho(t *testing.T) *recorder {
	t.Helper()
	rc := newRecorder(t, "ws")
	rc.handle = func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		ctx := r.Context()
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, b); err != nil {
				return
			}
		}
	}
	return rc
}

// acceptKey is RFC 6455's Sec-WebSocket-Accept for key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// rawWSBackend accepts TCP connections, reads one upgrade request, answers
// with the response upgrade(req) returns (a full head) and then hands the
// connection to serve. It is closed when the test ends.
func rawWSBackend(t *testing.T, respond func(req *http.Request) string, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if _, err := io.WriteString(c, respond(req)); err != nil {
					return
				}
				if serve != nil {
					serve(c, br)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// switching is a valid 101 for a WebSocket request.
func switching(req *http.Request) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
}

const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

func wsHandshake(path, host string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + wsKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// maskedText is a client's masked text frame carrying s (len(s) < 126).
func maskedText(s string) []byte {
	mask := [4]byte{1, 2, 3, 4}
	b := []byte{0x81, 0x80 | byte(len(s)), mask[0], mask[1], mask[2], mask[3]}
	for i := 0; i < len(s); i++ {
		b = append(b, s[i]^mask[i%4])
	}
	return b
}

// readFrame reads one unmasked server frame (payload < 126 bytes).
func readFrame(br *bufio.Reader) (op byte, payload string, err error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, "", err
	}
	n := int(h[1] & 0x7f)
	if h[1]&0x80 != 0 || n > 125 {
		return 0, "", errors.New("unexpected masked or long frame")
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return 0, "", err
	}
	return h[0] & 0x0f, string(p), nil
}

// TestWebSocketWithoutUpgradeLines: PRODUCT.md "An upgrade works whether
// or not the config carries the Upgrade/Connection lines" (nginx would send
// Connection: close and no Upgrade).
func TestWebSocketWithoutUpgradeLines(t *testing.T) {
	t.Parallel()
	up := newWSEcho(t)
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location /ws/ { proxy_pass http://`+up.addr()+`; }
}`)
	ctx := testCtx(t)
	c, resp, err := websocket.Dial(ctx, "ws://"+p.addr+"/ws/chat?room=1", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, msg := range []string{"one", "two", strings.Repeat("x", 70000)} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != msg {
			t.Errorf("echo of %d bytes came back as %d bytes", len(msg), len(b))
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	rec := up.last(t)
	if rec.RequestURI != "/ws/chat?room=1" {
		t.Errorf("upstream URI %q", rec.RequestURI)
	}
	if got := rec.Header.Get("Upgrade"); got != "websocket" {
		t.Errorf("upstream Upgrade = %q, want websocket", got)
	}
}

// TestWebSocketUpgradeMismatch: a 101 switching to a protocol the client
// did not ask for is an invalid upstream response: 502, no tunnel.
func TestWebSocketUpgradeMismatch(t *testing.T) {
	t.Parallel()
	up := rawWSBackend(t, func(*http.Request) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
	}, nil)
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location / { proxy_pass http://`+up+`; }
}`)
	resp := rawDo(t, p.addr, wsHandshake("/x", "example.test"))
	if resp.status != 502 {
		t.Fatalf("status %d, want 502", resp.status)
	}
	if !strings.Contains(resp.body, "502 Bad Gateway") {
		t.Errorf("body %q, want the 502 page", resp.body)
	}
}

// TestWebSocketEarlyBytes: bytes the client sends in the same write as its
// handshake (already buffered by the HTTP server when the request is
// hijacked) must reach the backend.
func TestWebSocketEarlyBytes(t *testing.T) {
	t.Parallel()
	up := newWSEcho(t)
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location / { proxy_pass http://`+up.addr()+`; }
}`)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := append([]byte(wsHandshake("/early", "example.test")), maskedText("early bird")...)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(wsKey) {
		t.Errorf("Sec-WebSocket-Accept = %q", got)
	}
	op, payload, err := readFrame(br)
	if err != nil {
		t.Fatalf("reading the echo of the early frame: %v", err)
	}
	if op != 1 || payload != "early bird" {
		t.Errorf("echo = op %d %q, want text %q", op, payload, "early bird")
	}
}

// TestWebSocketBackendDies: the backend's TCP connection ends mid-stream;
// the client's connection must end within a second.
func TestWebSocketBackendDies(t *testing.T) {
	t.Parallel()
	up := rawWSBackend(t, switching, func(c net.Conn, br *bufio.Reader) {
		c.Write([]byte{0x81, 2, 'h', 'i'})
		time.Sleep(50 * time.Millisecond)
		// return: the deferred Close drops the connection without a Close frame
	})
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location / { proxy_pass http://`+up+`; }
}`)
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, b, err := c.Read(ctx)
	if err != nil || string(b) != "hi" {
		t.Fatalf("first message %q, %v", b, err)
	}
	start := time.Now()
	_, _, err = c.Read(ctx)
	if err == nil {
		t.Fatal("read after the backend died returned a message")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("client noticed the dead backend after %v, want < 1s", d)
	}
}

// TestWebSocketClientLeaves: the client's TCP connection ends without a
// Close frame; the backend's connection must end within a second.
func TestWebSocketClientLeaves(t *testing.T) {
	t.Parallel()
	ended := make(chan time.Duration, 1)
	ready := make(chan struct{})
	up := rawWSBackend(t, switching, func(c net.Conn, br *bufio.Reader) {
		close(ready)
		start := time.Now()
		io.Copy(io.Discard, br)
		ended <- time.Since(start)
	})
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location / { proxy_pass http://`+up+`; }
}`)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, wsHandshake("/x", "example.test"))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	<-ready
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case d := <-ended:
		if d > time.Second+50*time.Millisecond {
			t.Errorf("backend connection ended %v after it started waiting, want within 1s of the client leaving", d)
		}
	case <-time.After(time.Second):
		t.Fatal("backend connection still open 1s after the client left")
	}
}

// TestWebSocketConnectionTokens: browsers send "Connection: keep-alive,
// Upgrade" (Firefox); the upgrade token may be anywhere in the list and in
// any case.
func TestWebSocketConnectionTokens(t *testing.T) {
	t.Parallel()
	up := newWSEcho(t)
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location / { proxy_pass http://`+up.addr()+`; }
}`)
	for _, conn := range []string{"keep-alive, Upgrade", "UPGRADE", "upgrade,keep-alive"} {
		t.Run(conn, func(t *testing.T) {
			req := strings.Replace(wsHandshake("/x", "example.test"), "Connection: Upgrade", "Connection: "+conn, 1)
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, req)
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 {
				t.Errorf("Connection: %s: status %d, want 101", conn, resp.StatusCode)
			}
		})
	}
}
