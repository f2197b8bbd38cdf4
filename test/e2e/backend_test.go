package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// absent stands for a header the backend did not receive, as opposed to one
// received with an empty value.
const absent = "<absent>"

// record is what a backend saw of one request, as received on the wire.
type record struct {
	Backend    string // name of the backend that received it
	Method     string
	URI        string // RequestURI: path and query exactly as sent
	Host       string
	XFF        string // X-Forwarded-For
	XRealIP    string // X-Real-IP
	Upgrade    string
	Connection string
	Proto      string
	Body       string
	Case       string // X-Case, set by the test to find the record
}

// compared returns the fields the differential tests require to match,
// one "name: value" per line.
func (r *record) compared() string {
	if r == nil {
		return "(request not forwarded to any backend)"
	}
	return fmt.Sprintf("backend: %s\nmethod: %s\nuri: %s\nhost: %s\nx-forwarded-for: %s\nx-real-ip: %s\nupgrade: %s\nbody: %q",
		r.Backend, r.Method, r.URI, r.Host, r.XFF, r.XRealIP, r.Upgrade, r.Body)
}

// String shows all fields, including the ones only printed for context.
func (r *record) String() string {
	if r == nil {
		return "(request not forwarded to any backend)"
	}
	return r.compared() + fmt.Sprintf("\nconnection: %s\nproto: %s", r.Connection, r.Proto)
}

// wsMode says what a backend does with an accepted WebSocket.
type wsMode int

const (
	wsEcho    wsMode = iota // echo every message back
	wsPush                  // send pushJSON on connect, then echo
	wsChat                  // "joined" on connect, broadcast every message to all clients
	wsSeed004               // answer "Server received from client: " + message, like seed 004's server.js
)

// pushJSON is what a wsPush backend sends on connect (seed 000's push-service).
const pushJSON = `{"type":"push","resource":"tasks","data":[{"id":1,"status":"done"}]}`

// backend is a recording HTTP and WebSocket server on 127.0.0.1. Plain HTTP
// requests get 200 with "backend NAME METHOD URI"; WebSocket upgrade
// requests (Upgrade: websocket) are accepted and served per its wsMode.
type backend struct {
	name string
	mode wsMode
	srv  *httptest.Server
	Addr string // "127.0.0.1:PORT"

	mu      sync.Mutex
	records []record
	conns   map[*websocket.Conn]bool
}

func newBackend(t testing.TB, name string, mode wsMode) *backend {
	t.Helper()
	b := &backend{name: name, mode: mode, conns: map[*websocket.Conn]bool{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serveHTTP))
	b.Addr = strings.TrimPrefix(b.srv.URL, "http://")
	t.Cleanup(b.close)
	return b
}

func (b *backend) close() {
	b.mu.Lock()
	for c := range b.conns {
		c.CloseNow()
	}
	b.mu.Unlock()
	b.srv.Close()
}

func header(r *http.Request, name string) string {
	v, ok := r.Header[http.CanonicalHeaderKey(name)]
	if !ok {
		return absent
	}
	return strings.Join(v, ", ")
}

func (b *backend) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	rec := record{
		Backend:    b.name,
		Method:     r.Method,
		URI:        r.RequestURI,
		Host:       r.Host,
		XFF:        header(r, "X-Forwarded-For"),
		XRealIP:    header(r, "X-Real-IP"),
		Upgrade:    header(r, "Upgrade"),
		Connection: header(r, "Connection"),
		Proto:      r.Proto,
		Body:       string(body),
		Case:       r.Header.Get("X-Case"),
	}
	b.mu.Lock()
	b.records = append(b.records, rec)
	b.mu.Unlock()

	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		b.serveWebSocket(w, r)
		return
	}
	// Query parameters steer the answer: sleep=DURATION delays it,
	// crash=1 closes the connection without one, status=N sets the status.
	q := r.URL.Query()
	if d, err := time.ParseDuration(q.Get("sleep")); err == nil {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if q.Get("crash") == "1" {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	status := http.StatusOK
	if n, err := strconv.Atoi(q.Get("status")); err == nil && n >= 200 && n <= 599 {
		status = n
	}
	w.Header().Set("X-Backend", b.name)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	fmt.Fprintf(w, "backend %s %s %s\n", b.name, r.Method, r.RequestURI)
}

func (b *backend) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has written the error response
	}
	c.SetReadLimit(1 << 20)
	b.mu.Lock()
	b.conns[c] = true
	n := len(b.conns)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.CloseNow()
	}()
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()

	switch b.mode {
	case wsPush:
		if err := c.Write(ctx, websocket.MessageText, []byte(pushJSON)); err != nil {
			return
		}
	case wsChat:
		if err := c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf("joined %d", n))); err != nil {
			return
		}
	}
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		switch b.mode {
		case wsChat:
			b.broadcast(ctx, typ, msg)
		case wsSeed004:
			err = c.Write(ctx, websocket.MessageText, []byte("Server received from client: "+string(msg)))
		default:
			err = c.Write(ctx, typ, msg)
		}
		if err != nil {
			return
		}
	}
}

func (b *backend) broadcast(ctx context.Context, typ websocket.MessageType, msg []byte) {
	b.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		c.Write(ctx, typ, msg)
	}
}

// all returns a copy of every record so far.
func (b *backend) all() []record {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]record(nil), b.records...)
}

// last returns the most recent record, or nil.
func (b *backend) last() *record {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.records) == 0 {
		return nil
	}
	r := b.records[len(b.records)-1]
	return &r
}

// reset forgets every record.
func (b *backend) reset() {
	b.mu.Lock()
	b.records = nil
	b.mu.Unlock()
}

// byCase finds the records with X-Case id among the backends.
func byCase(id string, backends ...*backend) []record {
	var out []record
	for _, b := range backends {
		for _, r := range b.all() {
			if r.Case == id {
				out = append(out, r)
			}
		}
	}
	return out
}

// jsonValid reports whether s is a JSON document.
func jsonValid(s string) bool { return json.Valid([]byte(s)) }
