package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startEchoServer runs the wsbench echo backend on a loopback port for the
// length of the test.
func startEchoServer(t *testing.T) *url.URL {
	t.Helper()
	srv := httptest.NewServer(echoHandler{})
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Scheme = "ws"
	u.Path = "/echo"
	return u
}

func testOptions(mode string, u *url.URL, conns, size int) *loadOptions {
	return &loadOptions{
		mode: mode, url: u, conns: conns, size: size,
		duration: 300 * time.Millisecond, warmup: 50 * time.Millisecond,
		timeout: 5 * time.Second, dialers: 8,
	}
}

func TestEchoModeCountsRoundTrips(t *testing.T) {
	u := startEchoServer(t)
	for _, tt := range []struct {
		desc  string
		mode  string
		conns int
		size  int
	}{
		{desc: "small messages", mode: "echo", conns: 4, size: 64},
		{desc: "empty messages", mode: "echo", conns: 2, size: 0},
		{desc: "64 KiB messages", mode: "bulk", conns: 2, size: 64 << 10},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			o := testOptions(tt.mode, u, tt.conns, tt.size)
			o.count = 200
			r, err := runEcho(o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Errors != 0 || r.Ops < 1 || r.P50us <= 0 || r.P99us < r.P50us {
				t.Fatalf("result %+v", r)
			}
			if tt.mode == "bulk" && r.Bytes != 2*int64(tt.size)*r.Ops {
				t.Fatalf("bytes %d for %d ops of %d", r.Bytes, r.Ops, tt.size)
			}
		})
	}
}

func TestHandshakeModeCompletesLifetimes(t *testing.T) {
	u := startEchoServer(t)
	r, err := runHandshake(testOptions("handshake", u, 3, 16))
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.Ops < 1 {
		t.Fatalf("result %+v", r)
	}
}

func TestIdleModeHoldsAndEchoes(t *testing.T) {
	u := startEchoServer(t)
	o := testOptions("idle", u, 40, 64)
	o.duration = 100 * time.Millisecond
	o.procs = procSet{roots: []int{os.Getpid()}}
	r, err := runIdle(o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Held != 40 || r.Echoed != 40 || r.Errors != 0 {
		t.Fatalf("held %d, echoed %d, errors %d (%s)", r.Held, r.Echoed, r.Errors, r.FirstErr)
	}
	if !r.ProxyMeasured || r.RSSHeld <= 0 {
		t.Fatalf("no measurement of our own process: %+v", r)
	}
}

// connTracker is a listener that remembers accepted connections, so a test
// can cut hijacked WebSockets, which httptest does not track.
type connTracker struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *connTracker) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *connTracker) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

func TestIdleModeCountsLostConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &connTracker{Listener: ln}
	srv := &http.Server{Handler: echoHandler{}}
	go srv.Serve(tr)
	t.Cleanup(func() { srv.Close() })
	u := &url.URL{Scheme: "ws", Host: ln.Addr().String(), Path: "/"}
	o := testOptions("idle", u, 5, 8)
	o.duration = 300 * time.Millisecond
	go func() {
		time.Sleep(100 * time.Millisecond)
		srv.Close()
		tr.closeAll()
	}()
	r, err := runIdle(o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Held != 5 || r.Echoed != 0 || r.Errors != 5 {
		t.Fatalf("after the backend died: held %d, echoed %d, errors %d", r.Held, r.Echoed, r.Errors)
	}
}

func TestHTTPModeCountsRequests(t *testing.T) {
	u := startEchoServer(t)
	u.Scheme = "http"
	o := testOptions("http", u, 3, 0)
	o.count = 100
	r, err := runHTTP(o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.Ops < 1 {
		t.Fatalf("result %+v", r)
	}
}

// TestHTTPModeReadsChunkedAndClose drives the HTTP client against a
// backend that streams chunked bodies and closes after each response.
func TestHTTPModeReadsChunkedAndClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("part one "))
		w.(http.Flusher).Flush()
		w.Write([]byte("part two"))
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	o := testOptions("http", u, 2, 0)
	o.count = 50
	r, err := runHTTP(o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.Ops < 1 {
		t.Fatalf("result %+v", r)
	}
}

// TestClientAgainstCoderServer checks the hand-written client against an
// independent implementation: coder/websocket rejects unmasked or
// malformed client frames.
func TestClientAgainstCoderServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(4 << 20)
		for {
			typ, p, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, p); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(strings.Replace(srv.URL, "http", "ws", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialWS(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	c.nc.SetDeadline(time.Now().Add(5 * time.Second))
	for _, size := range []int{0, 1, 125, 126, 65535, 65536, 3 << 20} {
		p := bytes.Repeat([]byte{'x', 'y', 'z'}, size/3+1)[:size]
		if err := c.echo(p); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
	}
	if err := c.closeHandshake(time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestEchoServerAgainstCoderClient checks the echo backend with an
// independent client, including fragmented messages and ping.
func TestEchoServerAgainstCoderClient(t *testing.T) {
	u := startEchoServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(4 << 20)
	for i, size := range []int{0, 64, 70000, 1 << 20} {
		want := bytes.Repeat([]byte(strconv.Itoa(i)), size)[:size]
		if err := c.Write(ctx, websocket.MessageBinary, want); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageBinary || !bytes.Equal(got, want) {
			t.Fatalf("size %d: type %v, %d bytes back, %v", size, typ, len(got), err)
		}
	}
	// A fragmented text message comes back frame by frame and reassembles.
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("frag"))
	w.Write([]byte("mented"))
	w.Close()
	typ, got, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(got) != "fragmented" {
		t.Fatalf("fragmented: %v %q %v", typ, got, err)
	}
	go c.CloseRead(ctx) // Ping needs a reader
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestEchoServerPlainGET(t *testing.T) {
	u := startEchoServer(t)
	u.Scheme = "http"
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || b.String() != httpBody {
		t.Fatalf("%d %q", resp.StatusCode, b.String())
	}
}

func TestProcSampleOwnProcess(t *testing.T) {
	ps, err := parsePIDs(strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	s := ps.sample()
	if s.cpu <= 0 || s.rss <= 0 {
		t.Fatalf("sample of self: %+v", s)
	}
	m := newMeter(procSet{}, procSet{})
	if len(m.cpus) == 0 {
		t.Fatal("no allowed CPUs found for this process")
	}
	if some, all := cpuBusy(m.cpus), systemBusy(); some <= 0 || some > all {
		t.Fatalf("busy time of our CPUs %v, of all %v", some, all)
	}
	if _, err := parsePIDs("0"); err == nil {
		t.Fatal("parsePIDs(0) succeeded")
	}
}
