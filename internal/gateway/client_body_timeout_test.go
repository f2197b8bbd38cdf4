package gateway_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bodyBackend is an upstream that reads each request body to its end and
// records what it got and how the read ended.
type bodyBackend struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []bodySeen
}

type bodySeen struct {
	path string
	body string
	err  error
}

func newBodyBackend(t *testing.T) *bodyBackend {
	t.Helper()
	bb := &bodyBackend{}
	bb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		bb.mu.Lock()
		bb.seen = append(bb.seen, bodySeen{path: r.URL.Path, body: string(b), err: err})
		bb.mu.Unlock()
		io.WriteString(w, "got "+strconv.Itoa(len(b)))
	}))
	t.Cleanup(bb.srv.Close)
	return bb
}

func (bb *bodyBackend) addr() string { return bb.srv.Listener.Addr().String() }

// requests returns what the backend saw for path.
func (bb *bodyBackend) requests(path string) []bodySeen {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	var out []bodySeen
	for _, s := range bb.seen {
		if s.path == path {
			out = append(out, s)
		}
	}
	return out
}

// TestClientBodyTimeout: ngx_http_core_module "client_body_timeout":
// "Defines a timeout for reading client request body. The timeout is set
// only for a period between two successive read operations, not for the
// transmission of the whole request body. If a client does not transmit
// anything within this time, the request is terminated with the 408
// (Request Time-out) error." nginx 1.22.1, checked with the same cases,
// sends no response then: the connection is closed and the access log
// says 408; a body that was being passed to the upstream unbuffered ends
// there too (the upstream connection is closed). A client that keeps
// sending, however slowly, is not cut.
func TestClientBodyTimeout(t *testing.T) {
	t.Parallel()
	bb := newBodyBackend(t)
	prefix := t.TempDir()
	p := startProxyIn(t, prefix, `
log_format st '$status "$request"';
access_log {{PREFIX}}/access.log st;
upstream up { server `+bb.addr()+`; }
server {
	listen {{LISTEN}};
	client_body_timeout 300ms;
	location / { proxy_pass http://up; }
	location /big { client_max_body_size 0; proxy_pass http://up; }
	location /steady { client_body_timeout 600ms; proxy_pass http://up; }
	location /long { client_body_timeout 10s; proxy_pass http://up; }
}`)
	logPath := filepath.Join(prefix, "access.log")

	// stall sends a request head and the start of its body, then nothing:
	// the connection must be closed without a response after the
	// timeout, with 408 in the access log.
	stall := func(t *testing.T, head, start string) {
		t.Helper()
		k := dialKeep(t, p.addr)
		if _, err := io.WriteString(k.c, head+start); err != nil {
			t.Fatal(err)
		}
		if el := k.closedWithin(10 * time.Second); el < 250*time.Millisecond {
			t.Errorf("closed after %v, before client_body_timeout 300ms", el)
		}
		want := `408 "` + firstLine(head) + `"`
		waitForLog(t, logPath, want)
	}
	t.Run("fixed length body, stalled", func(t *testing.T) {
		t.Parallel()
		stall(t, "POST /fixed HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", "abc")
		time.Sleep(200 * time.Millisecond)
		if got := bb.requests("/fixed"); len(got) != 0 {
			t.Errorf("the upstream got %+v, want nothing (the body never came whole)", got)
		}
	})
	t.Run("chunked body streamed upstream, stalled", func(t *testing.T) {
		t.Parallel()
		// three whole chunks of 3000 bytes, then nothing: enough for
		// wsgate to have passed the head and a part of the body on (it
		// writes to the upstream through a 4 KiB buffer, and net/http
		// hands a chunk on only once it is whole)
		chunk := "bb8\r\n" + strings.Repeat("x", 3000) + "\r\n"
		stall(t, "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", chunk+chunk+chunk)
		got := waitForBackend(t, bb, "/chunked")
		if got.err == nil || len(got.body) > 9000 {
			t.Errorf("the upstream read %d bytes, err %v; want a body cut short", len(got.body), got.err)
		}
	})
	t.Run("large body streamed upstream, stalled", func(t *testing.T) {
		t.Parallel()
		// over the 1 MiB wsgate reads before it connects: streamed
		stall(t, "POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\n", strings.Repeat("x", 9000))
		got := waitForBackend(t, bb, "/big")
		if got.err == nil || len(got.body) >= 4194304 {
			t.Errorf("the upstream read %d bytes, err %v; want a body cut short", len(got.body), got.err)
		}
	})
	// drip sends body in pieces, gap apart, and returns the response.
	drip := func(t *testing.T, head string, pieces []string, gap time.Duration) *http.Response {
		t.Helper()
		k := dialKeep(t, p.addr)
		k.c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(k.c, head); err != nil {
			t.Fatal(err)
		}
		for _, s := range pieces {
			time.Sleep(gap)
			if _, err := io.WriteString(k.c, s); err != nil {
				t.Fatalf("the connection was closed while the client was sending: %v", err)
			}
		}
		resp, err := http.ReadResponse(k.br, nil)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp
	}
	t.Run("steady slow body, fixed length", func(t *testing.T) {
		t.Parallel()
		// 15 bytes 100ms apart: 1.5s in all, far over 600ms, but never
		// 600ms without a byte
		pieces := strings.Split(strings.Repeat("x", 15), "")
		resp := drip(t, "POST /steady/fixed HTTP/1.1\r\nHost: a\r\nContent-Length: 15\r\n\r\n", pieces, 100*time.Millisecond)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		if got := bb.requests("/steady/fixed"); len(got) != 1 || got[0].body != strings.Repeat("x", 15) || got[0].err != nil {
			t.Errorf("upstream got %+v", got)
		}
	})
	t.Run("steady slow body, streamed", func(t *testing.T) {
		t.Parallel()
		var pieces []string
		for i := 0; i < 15; i++ {
			pieces = append(pieces, "1\r\ny\r\n")
		}
		pieces = append(pieces, "0\r\n\r\n")
		resp := drip(t, "POST /steady/chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", pieces, 100*time.Millisecond)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		if got := bb.requests("/steady/chunked"); len(got) != 1 || got[0].body != strings.Repeat("y", 15) || got[0].err != nil {
			t.Errorf("upstream got %+v", got)
		}
	})
	t.Run("the location's value applies", func(t *testing.T) {
		t.Parallel()
		// a 1s pause: over the server's 300ms, within the location's 10s
		resp := drip(t, "POST /long HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc", []string{"def"}, time.Second)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
	})
	t.Run("no deadline left behind on a kept connection", func(t *testing.T) {
		t.Parallel()
		k := dialKeep(t, p.addr)
		for i := 0; i < 2; i++ {
			k.c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(k.c, "POST /kept HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
			resp, err := http.ReadResponse(k.br, nil)
			if err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.Close || string(b) != "got 5" {
				t.Fatalf("request %d: %d close=%v %q", i+1, resp.StatusCode, resp.Close, b)
			}
			// idle for longer than client_body_timeout: keepalive_timeout
			// (75s) governs the idle connection
			k.openFor(900 * time.Millisecond)
		}
	})
	// runs when the parallel subtests are done (before the gateway stops)
	t.Cleanup(func() {
		if s := p.elog.String(); !strings.Contains(s, "[info] client timed out while reading client request body") || strings.Contains(s, "panic") {
			t.Errorf("error log:\n%s", s)
		}
	})
}

// waitForLog waits up to 5 seconds for the file at path to hold want.
func waitForLog(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			if errors.Is(err, os.ErrNotExist) {
				b = []byte("(no file)")
			}
			t.Fatalf("access log lacks %q; it holds:\n%s", want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForBackend waits up to 5 seconds for bb to have finished reading a
// request for path and returns the first.
func waitForBackend(t *testing.T, bb *bodyBackend, path string) bodySeen {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got := bb.requests(path); len(got) > 0 {
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upstream never saw %s end", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
