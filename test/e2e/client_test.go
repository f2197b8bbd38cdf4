package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawRequest is an HTTP/1.1 request written byte for byte, so the request
// target reaches the proxy exactly as given (no client-side cleaning).
type rawRequest struct {
	Method string // GET when empty
	Target string // request-target, e.g. "/a%2Fb?x=1"
	Host   string // Host header; the dialled address when empty
	Header [][2]string
	Body   string
	WS     bool // add a WebSocket handshake (Upgrade, Connection, key, version)
}

// response is what a client got back.
type response struct {
	Status   int
	Location string
	Body     string
	Header   http.Header
}

const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

func (q rawRequest) bytes(addr string) []byte {
	method := q.Method
	if method == "" {
		method = "GET"
	}
	host := q.Host
	if host == "" {
		host = addr
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, q.Target, host)
	for _, h := range q.Header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	hasConnection, chunked := false, false
	for _, h := range q.Header {
		hasConnection = hasConnection || strings.EqualFold(h[0], "Connection")
		chunked = chunked || (strings.EqualFold(h[0], "Transfer-Encoding") && strings.EqualFold(h[1], "chunked"))
	}
	switch {
	case q.WS:
		b.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + wsKey + "\r\nSec-WebSocket-Version: 13\r\n")
	case !hasConnection:
		b.WriteString("Connection: close\r\n")
	}
	if !chunked && (q.Body != "" || method == "POST" || method == "PUT") {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(q.Body))
	}
	b.WriteString("\r\n")
	if chunked {
		// Two chunks, to exercise de-chunking.
		half := len(q.Body) / 2
		for _, part := range []string{q.Body[:half], q.Body[half:]} {
			if part != "" {
				fmt.Fprintf(&b, "%x\r\n%s\r\n", len(part), part)
			}
		}
		b.WriteString("0\r\n\r\n")
	} else {
		b.WriteString(q.Body)
	}
	return []byte(b.String())
}

// do sends q to addr on a new connection and reads the response. For a
// WebSocket handshake answered 101 the connection is closed right after the
// response head.
func do(addr string, q rawRequest) (response, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return response{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(q.bytes(addr)); err != nil {
		return response{}, err
	}
	method := q.Method
	if method == "" {
		method = "GET"
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return response{}, fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	out := response{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Header: resp.Header}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return out, fmt.Errorf("read body: %w", err)
		}
		out.Body = string(b)
	}
	return out, nil
}

// mustDo is do that fails the test on a transport error.
func mustDo(t testing.TB, addr string, q rawRequest) response {
	t.Helper()
	r, err := do(addr, q)
	if err != nil {
		t.Fatalf("%s %s via %s: %v", q.Method, q.Target, addr, err)
	}
	return r
}

// dialWS opens a WebSocket through addr, failing the test with the handshake
// response's status when it is refused.
func dialWS(t testing.TB, ctx context.Context, addr, path string, host string) *websocket.Conn {
	t.Helper()
	opts := &websocket.DialOptions{Host: host}
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+path, opts)
	if err != nil {
		status := "no response"
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("websocket dial ws://%s%s: %v (%s)", addr, path, err, status)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// readText reads one text message or fails the test.
func readText(t testing.TB, ctx context.Context, c *websocket.Conn) string {
	t.Helper()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("websocket read: got %v message %q, want text", typ, b)
	}
	return string(b)
}

func writeText(t testing.TB, ctx context.Context, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatalf("websocket write %q: %v", s, err)
	}
}
