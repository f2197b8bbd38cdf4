package lb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// healthUA is the User-Agent wsgate's active health probes send.
const healthUA = "wsgate-health-check"

// backend is an HTTP and WebSocket echo server that counts what it
// accepts. Every answer carries "X-Backend: NAME" (the 101 too), and a
// plain GET answers NAME as its body, so clients see who served them.
// WebSocket messages are echoed unchanged.
//
// It is safe for concurrent use. stop closes the listener and every open
// WebSocket.
type backend struct {
	name string
	addr string

	upgrades atomic.Int64 // WebSocket handshakes accepted
	requests atomic.Int64 // plain HTTP requests, health probes excluded
	probes   atomic.Int64 // health probes (User-Agent wsgate-health-check)
	live     atomic.Int64 // WebSockets open now

	// event, if set, is called for every probe ("probe"), accepted
	// upgrade ("ws") and plain request ("http").
	event func(kind string)

	ln   net.Listener
	srv  *http.Server
	mu   sync.Mutex
	open map[*websocket.Conn]struct{}
	down bool
}

func newBackend(name string) *backend {
	b := &backend{name: name, open: map[*websocket.Conn]struct{}{}}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	return b
}

// startBackend runs a backend on a free 127.0.0.1 port until the test
// ends.
func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	b := newBackend(name)
	if err := b.listen(freeAddr(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	return b
}

// listen starts serving on addr.
func (b *backend) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("backend %s: %w", b.name, err)
	}
	b.mu.Lock()
	b.ln, b.addr, b.down = ln, ln.Addr().String(), false
	b.mu.Unlock()
	go b.srv.Serve(ln)
	return nil
}

func (b *backend) note(kind string) {
	if b.event != nil {
		b.event(kind)
	}
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend", b.name)
	if r.Header.Get("User-Agent") == healthUA {
		b.probes.Add(1)
		b.note("probe")
		io.WriteString(w, "ok")
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		b.requests.Add(1)
		b.note("http")
		io.WriteString(w, b.name)
		return
	}
	// Counted before Accept writes the 101: a client that has its
	// handshake back must find the tunnel counted (undone on failure).
	b.upgrades.Add(1)
	b.live.Add(1)
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		b.upgrades.Add(-1)
		b.live.Add(-1)
		return
	}
	b.mu.Lock()
	if b.down {
		b.mu.Unlock()
		b.upgrades.Add(-1)
		b.live.Add(-1)
		c.CloseNow()
		return
	}
	b.open[c] = struct{}{}
	b.mu.Unlock()
	b.note("ws")
	defer func() {
		b.live.Add(-1)
		b.mu.Lock()
		delete(b.open, c)
		b.mu.Unlock()
		c.CloseNow()
	}()
	ctx := context.Background()
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

// stop closes the listener and every open WebSocket (without a Close
// frame, like a crash). The backend can listen again afterwards.
func (b *backend) stop() {
	b.mu.Lock()
	b.down = true
	ln := b.ln
	conns := make([]*websocket.Conn, 0, len(b.open))
	for c := range b.open {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.CloseNow()
	}
	b.srv.SetKeepAlivesEnabled(false)
}

// waitLive waits up to d until the backend holds n open WebSockets.
func (b *backend) waitLive(n int64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for b.live.Load() != n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// backendEnv names the environment variable that turns this test binary
// into a backend process: "ADDR NAME".
const backendEnv = "WSGATE_LB_BACKEND"

// runBackendProcess serves a backend on the address in spec until the
// process is killed, printing one line per event to stdout:
// "listening", then "probe", "ws" and "http" lines, each followed by the
// event's Unix time in nanoseconds.
func runBackendProcess(spec string) int {
	addr, name, ok := strings.Cut(spec, " ")
	if !ok {
		fmt.Fprintf(os.Stderr, "%s: want \"ADDR NAME\", got %q\n", backendEnv, spec)
		return 2
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	emit := func(kind string) {
		mu.Lock()
		fmt.Fprintf(out, "%s %d\n", kind, time.Now().UnixNano())
		out.Flush()
		mu.Unlock()
	}
	b := newBackend(name)
	b.event = emit
	if err := b.listen(addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	emit("listening")
	select {} // until killed
}

// backendEvent is one line a backend process printed.
type backendEvent struct {
	kind string
	at   time.Time
}

// procBackend is a backend running as a separate process (this test
// binary re-executed), so that it can be killed for real.
type procBackend struct {
	name string
	addr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	events []backendEvent
	stderr *syncBuffer
	done   chan struct{}
}

// startProcBackend starts a backend process on addr and waits until it
// listens. It is killed when the test ends.
func startProcBackend(t testing.TB, name, addr string) *procBackend {
	t.Helper()
	p := &procBackend{name: name, addr: addr}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	return p
}

// start runs the process and waits up to 10 s for its "listening" line.
func (p *procBackend) start() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), backendEnv+"="+p.addr+" "+p.name)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("backend process %s: %w", p.name, err)
	}
	done := make(chan struct{})
	listening := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			kind, ns, _ := strings.Cut(sc.Text(), " ")
			n, _ := strconv.ParseInt(ns, 10, 64)
			p.mu.Lock()
			p.events = append(p.events, backendEvent{kind, time.Unix(0, n)})
			p.mu.Unlock()
			if kind == "listening" && !seen {
				seen = true
				close(listening)
			}
		}
		cmd.Wait()
	}()
	p.mu.Lock()
	p.cmd, p.stderr, p.done = cmd, stderr, done
	p.mu.Unlock()
	select {
	case <-listening:
		return nil
	case <-done:
		return fmt.Errorf("backend process %s exited before listening: %s", p.name, stderr)
	case <-time.After(10 * time.Second):
		p.kill()
		return errors.New("backend process " + p.name + " not listening after 10s")
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *procBackend) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// eventsOf returns the events of one kind so far.
func (p *procBackend) eventsOf(kind string) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []time.Time
	for _, e := range p.events {
		if e.kind == kind {
			out = append(out, e.at)
		}
	}
	return out
}

// allEvents returns a copy of every event so far, in order.
func (p *procBackend) allEvents() []backendEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]backendEvent(nil), p.events...)
}
