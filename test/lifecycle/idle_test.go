//go:build unix

package lifecycle

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const idleConf = `
pid {{DIR}}/wsgate.pid;
error_log {{DIR}}/error.log;
http {
    access_log off;
    upstream be { server 127.0.0.1:{{B}}; }
    server {
        listen 127.0.0.1:{{P}};
        location /ws/ {
            proxy_pass http://be;
            proxy_read_timeout 2s;
            websocket_ping_interval 1s;
            websocket_ping_timeout 1s;
        }
        location /limited/ {
            proxy_pass http://be;
            websocket_max_message_size 1k;
        }
    }
}
`

// TestIdleHealthyClientStays: with proxy_read_timeout 2s and the proxy
// pinging every second, a client that answers pings (coder/websocket does
// while a Read is pending) and sends nothing stays connected for 10 s.
func TestIdleHealthyClientStays(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	startGateway(t, idleConf, map[string]string{"B": b.port(), "P": p}, addr)
	ws, err := dialWS("ws://"+addr+"/ws/idle", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.close()
	if code, ended := ws.waitClosed(10 * time.Second); ended {
		t.Fatalf("an idle WebSocket that answers pings was closed (code %d: %v) within 10s with proxy_read_timeout 2s", code, ws.err)
	}
	if err := ws.echo([]byte("still here"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := b.open.Load(); n != 1 {
		t.Errorf("backend has %d WebSockets open, want 1", n)
	}
}

// rawHandshake opens a TCP connection to addr and completes a WebSocket
// handshake for path by hand; after it the caller's conn is a bare socket.
func rawHandshake(t testing.TB, addr, path string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, addr)
	// Read the response head byte by byte so nothing after it is consumed.
	br := bufio.NewReaderSize(c, 16)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("raw handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("raw handshake: status %d", resp.StatusCode)
	}
	if br.Buffered() > 0 {
		t.Fatalf("raw handshake: %d bytes after the 101 already", br.Buffered())
	}
	c.SetDeadline(time.Time{})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestIdleDeadClientClosed: a client that completed the handshake and then
// neither reads nor answers pings is closed within websocket_ping_interval
// + websocket_ping_timeout (2 s), and the backend gets Close 1001.
func TestIdleDeadClientClosed(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	startGateway(t, idleConf, map[string]string{"B": b.port(), "P": p}, addr)
	c := rawHandshake(t, addr, "/ws/dead")
	start := time.Now()
	codes := b.waitCloses(t, 1, 10*time.Second)
	ev, _ := b.lastClose()
	took := ev.at.Sub(start)
	t.Logf("backend got close %v %v after the handshake", codes, took.Round(time.Millisecond))
	if codes[1001] != 1 {
		t.Errorf("backend close codes %v, want 1001", codes)
	}
	if took > 2*time.Second+500*time.Millisecond {
		t.Errorf("dead client found after %v, want within ping interval + ping timeout (2s)", took)
	}
	if took < time.Second {
		t.Errorf("dead client dropped after %v, before the first ping was even due (1s)", took)
	}
	// The client's socket has been closed by wsgate: after whatever frames
	// were sent (pings), reads end with EOF or a reset.
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("the dead client's socket is still open after the backend was closed")
		}
		break
	}
}

// TestMaxMessageSize: with websocket_max_message_size 1k, a 2 KiB message
// gets the client Close 1009 and the backend Close 1001; the message is not
// forwarded.
func TestMaxMessageSize(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	startGateway(t, idleConf, map[string]string{"B": b.port(), "P": p}, addr)
	ws, err := dialWS("ws://"+addr+"/limited/", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.echo(make([]byte, 1024), 5*time.Second); err != nil {
		t.Fatalf("a 1 KiB message (at the limit): %v", err)
	}
	if err := ws.c.Write(t.Context(), websocket.MessageBinary, make([]byte, 2048)); err != nil {
		t.Fatal(err)
	}
	code, ok := ws.waitClosed(5 * time.Second)
	if !ok || code != 1009 {
		t.Errorf("client close %d (ended %v, %v), want 1009", code, ok, ws.err)
	}
	if codes := b.waitCloses(t, 1, 5*time.Second); codes[1001] != 1 {
		t.Errorf("backend close codes %v, want 1001", codes)
	}
	select {
	case m := <-ws.msgs:
		t.Errorf("a %d-byte message came back: the oversized message was forwarded", len(m))
	default:
	}
}
