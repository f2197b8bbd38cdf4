package gateway_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSSEUnbuffered: with "proxy_buffering off" each event reaches the
// client as the backend flushes it: the client gets the first event before
// the backend sends the second.
func TestSSEUnbuffered(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := newRecorder(t, "sse")
	up.handle = eventsHandler(release)
	p := startProxy(t, `
server {
	listen {{LISTEN}};
	location /events { proxy_pass http://`+up.addr()+`; proxy_buffering off; proxy_http_version 1.1; }
	location /buffered { proxy_pass http://`+up.addr()+`; }
}`)
	streamFirst(t, p, "/events?type=application/x-ndjson", release)
}

// TestStreamingWithBuffering: with the default proxy_buffering on, an
// upstream's "X-Accel-Buffering: no" (nginx's switch) and an SSE stream
// still reach the client event by event.
func TestStreamingWithBuffering(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"/buffered?type=application/x-ndjson&accel=1", "/buffered?type=text/event-stream"} {
		release := make(chan struct{})
		up := newRecorder(t, "sse")
		up.handle = eventsHandler(release)
		p := startProxy(t, `
server {
	listen {{LISTEN}};
	location /buffered { proxy_pass http://`+up.addr()+`; }
}`)
		streamFirst(t, p, target, release)
	}
}

// eventsHandler sends one event, flushes, and sends the second only once
// release is closed. ?type= sets the Content-Type, ?accel=1 adds
// "X-Accel-Buffering: no".
func eventsHandler(release chan struct{}) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.URL.Query().Get("type"))
		w.Header().Set("Cache-Control", "no-cache")
		if r.URL.Query().Get("accel") != "" {
			w.Header().Set("X-Accel-Buffering", "no")
		}
		w.WriteHeader(200)
		w.Write([]byte("data: first\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
			return
		}
		w.Write([]byte("data: second\n\n"))
	}
}

// streamFirst reads the first event of target before releasing the
// backend to send the second.
func streamFirst(t *testing.T, p *proxyUnderTest, target string, release chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A content type other than text/event-stream: the flushing must come
	// from proxy_buffering off, not from sniffing SSE.
	req, _ := http.NewRequestWithContext(ctx, "GET", p.url(target), nil)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: first event did not arrive before the second was sent: %v", target, err)
	}
	if line != "data: first\n" {
		t.Errorf("first line %q", line)
	}
	close(release)
	br.ReadString('\n')
	line, err = br.ReadString('\n')
	if err != nil || line != "data: second\n" {
		t.Errorf("second line %q, %v", line, err)
	}
}

// TestAccessLog: a custom log_format written to a file, including an
// upgraded WebSocket connection logged with status 101 when it ends.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	up := newWSEcho(t)
	prefix := t.TempDir()
	logPath := filepath.Join(prefix, "access.log")
	p := startProxyIn(t, prefix, `
log_format mine '$status "$request" $upstream_addr';
access_log {{PREFIX}}/access.log mine;
server {
	listen {{LISTEN}};
	location /ws/ { proxy_pass http://`+up.addr()+`; }
	location = /static { return 200 ok; }
}`)
	get(t, p.url("/static"))
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/ws/x?y=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(ctx, websocket.MessageText, []byte("hi"))
	c.Read(ctx)
	// the WebSocket line is written when the connection ends
	want := []string{
		`200 "GET /static HTTP/1.1" -` + "\n",
		`101 "GET /ws/x?y=1 HTTP/1.1" ` + up.addr() + "\n",
	}
	deadline := time.Now().Add(3 * time.Second)
	var got string
	for {
		b, _ := os.ReadFile(logPath)
		got = string(b)
		if strings.Contains(got, want[0]) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(got, "101 ") {
		t.Errorf("the WebSocket was logged before it ended:\n%s", got)
	}
	c.Close(websocket.StatusNormalClosure, "")
	for {
		b, _ := os.ReadFile(logPath)
		got = string(b)
		if strings.Contains(got, want[1]) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("access log lacks %q; it holds:\n%s", w, got)
		}
	}
}

// TestNoGoroutineLeak: after Stop, the goroutines of the gateway (serve
// loops, tunnels, health checks, log flusher, upstream connections) are
// gone. Not parallel: it counts the process's goroutines.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		up := newRecorder(t, "up")
		ws := newWSEcho(t)
		prefix := t.TempDir()
		p := startProxyIn(t, prefix, `
access_log {{PREFIX}}/access.log;
upstream up { server `+up.addr()+`; keepalive 8; }
server {
	listen {{LISTEN}};
	location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
	location /ws/ { proxy_pass http://`+ws.addr()+`; }
}`)
		for i := 0; i < 5; i++ {
			get(t, p.url("/x"))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/ws/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(ctx, websocket.MessageText, []byte("hi"))
		c.Read(ctx)
		// Stop with the WebSocket open: it must be closed by the gateway.
		p.g.Stop()
		c.CloseNow()
		up.srv.Close()
		ws.srv.Close()
	}()
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > before {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines before, %d after Stop:\n%s", before, n, buf)
	}
}
