package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// Client connection timeouts, as nginx keeps them:
//
//   - client_header_timeout bounds the wait for a request head, from the
//     connection's start (or, on a keep-alive connection, from the first
//     byte of the next request) until the whole head is read. nginx takes
//     it from the default server of the listen socket (for the local
//     address the connection arrived on).
//   - keepalive_timeout is how long a keep-alive connection may sit idle
//     after a response; nginx takes it from the location that served the
//     request, and 0 there means "Connection: close" after that response.
//   - keepalive_requests caps the requests one connection serves: nginx
//     counts them on the connection and answers the one that reaches the
//     value of the location that serves it with "Connection: close".
//
// net/http has one IdleTimeout and one ReadHeaderTimeout per http.Server,
// fixed while it serves. ClientConns keeps them per connection instead,
// with a timer that closes a connection whose head or idle time ran out;
// so a reload applies the new values to the next request of every
// connection, without replacing the server or touching open connections.

// ClientConns applies client_header_timeout, keepalive_timeout and
// keepalive_requests to the connections of one listening socket. Wire it
// into the socket's http.Server: Listener around the listener (under
// TLS), ConnState and ConnContext as the server's hooks.
type ClientConns struct {
	bind    string
	current func() *Handler // the configuration in force
}

// NewClientConns returns the connection timeouts of the socket bound to
// bind (the address the Handler's routing table uses); current returns
// the handler in force.
func NewClientConns(bind string, current func() *Handler) *ClientConns {
	return &ClientConns{bind: bind, current: current}
}

// Listener wraps ln so that every accepted connection carries its timer.
func (cc *ClientConns) Listener(ln net.Listener) net.Listener {
	return &timedListener{Listener: ln, cc: cc}
}

// ConnState is the http.Server ConnState hook.
func (cc *ClientConns) ConnState(nc net.Conn, st http.ConnState) {
	c := clientConnOf(nc)
	if c == nil {
		return
	}
	switch st {
	case http.StateNew:
		if _, ok := nc.(*tls.Conn); ok {
			c.tls.Store(true)
		}
		c.arm(phaseHead, cc.headerTimeout(c.localIP()))
	case http.StateActive:
		// the request head has been read (net/http reports each request
		// once, before its handler runs: nginx's c->requests++)
		c.requests.Add(1)
		c.disarm(phaseActive)
	case http.StateIdle:
		d := time.Duration(c.idle.Swap(-1))
		if d < 0 {
			d = cc.defaultIdle(c.localIP())
		}
		c.arm(phaseIdle, d)
	case http.StateHijacked, http.StateClosed:
		// a WebSocket may hold the request (and this) for hours: keep
		// nothing but the struct
		c.disarm(phaseDone)
	}
}

// ConnContext is the http.Server ConnContext hook: it lets the handler
// tell the connection the keepalive_timeout of the request's location.
func (cc *ClientConns) ConnContext(ctx context.Context, nc net.Conn) context.Context {
	if c := clientConnOf(nc); c != nil {
		return context.WithValue(ctx, clientConnKey{}, c)
	}
	return ctx
}

func (cc *ClientConns) timeouts(localIP string) (header, idle time.Duration) {
	var h *Handler
	if cc.current != nil {
		h = cc.current()
	}
	if h == nil {
		return 60 * time.Second, 75 * time.Second
	}
	s := h.defaultServer(cc.bind, localIP)
	if s == nil || s.Settings == nil {
		return 60 * time.Second, 75 * time.Second
	}
	return s.Settings.ClientHeaderTimeout, s.Settings.KeepaliveTimeout
}

func (cc *ClientConns) headerTimeout(localIP string) time.Duration {
	d, _ := cc.timeouts(localIP)
	return d
}

// defaultIdle is the idle time for a response the handler did not see
// (none today; a safety net): the default server's keepalive_timeout.
func (cc *ClientConns) defaultIdle(localIP string) time.Duration {
	_, d := cc.timeouts(localIP)
	return d
}

type clientConnKey struct{}

// timedListener hands out clientConns.
type timedListener struct {
	net.Listener
	cc *ClientConns
}

func (l *timedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &clientConn{Conn: nc, cc: l.cc}
	c.idle.Store(-1)
	c.lip = c.findLocalIP()
	return c, nil
}

type connPhase int32

const (
	phaseHead   connPhase = iota // reading a request head (or waiting for the first)
	phaseActive                  // a request is being handled
	phaseIdle                    // keep-alive: waiting for the next request
	phaseLinger                  // discarding an unread request body after the response
	phaseDone                    // hijacked or closed
)

// clientConn is one client connection and its timer.
type clientConn struct {
	net.Conn
	cc    *ClientConns
	phase atomic.Int32
	// idle is the keepalive_timeout of the location that answered the
	// current request (nanoseconds); -1 when no response set it.
	idle atomic.Int64
	// requests counts the requests read on the connection, the current
	// one included (keepalive_requests).
	requests atomic.Int64

	lip string // localIP, found once at accept

	mu       sync.Mutex // guards timer, deadline and phase changes
	timer    *time.Timer
	deadline int64 // nanotime() when the current phase runs out

	// lingering_timeout and the end of lingering_time (nanotime()) of
	// the request whose unread body is being discarded (phaseLinger)
	lingerTimeout time.Duration
	lingerTime    time.Duration
	lingerEnd     int64 // 0 until the first read

	tls    atomic.Bool // served under TLS
	nowait atomic.Bool // reads do not wait (readAvailable)
}

// localIP is the address the connection arrived on (a socket bound to a
// wildcard address serves several).
func (c *clientConn) localIP() string { return c.lip }

func (c *clientConn) findLocalIP() string {
	switch a := c.Conn.LocalAddr().(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	default:
		ip, _, _ := net.SplitHostPort(a.String())
		return ip
	}
}

// clockBase and nanotime give monotonic readings for deadlines.
var clockBase = time.Now()

func nanotime() int64 { return int64(time.Since(clockBase)) }

// clientConnOf finds the clientConn under nc (a *tls.Conn wraps it).
func clientConnOf(nc net.Conn) *clientConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*clientConn)
	return c
}

// arm enters phase p with d to go before the connection is closed.
func (c *clientConn) arm(p connPhase, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if connPhase(c.phase.Load()) == phaseDone {
		return
	}
	c.phase.Store(int32(p))
	c.deadline = nanotime() + int64(d)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.expire)
	} else {
		c.timer.Reset(d)
	}
}

// disarm enters phase p, which has no time limit.
func (c *clientConn) disarm(p connPhase) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if connPhase(c.phase.Load()) != phaseDone {
		c.phase.Store(int32(p))
	}
	if c.timer != nil {
		c.timer.Stop()
		if p == phaseDone {
			c.timer = nil
		}
	}
}

// expire closes the connection when its head or idle time has run out
// (nginx closes it without an answer, as net/http does on its own
// timeouts), or when the discarding of an unread body waited
// lingering_timeout for more of it or ran past lingering_time.
func (c *clientConn) expire() {
	c.mu.Lock()
	p := connPhase(c.phase.Load())
	if p != phaseHead && p != phaseIdle && p != phaseLinger || nanotime() < c.deadline {
		c.mu.Unlock()
		return
	}
	c.phase.Store(int32(phaseDone))
	c.mu.Unlock()
	c.Conn.Close()
}

// Read notices the first bytes of the next request on an idle
// keep-alive connection: client_header_timeout runs from there.
func (c *clientConn) Read(p []byte) (int, error) {
	if c.nowait.Load() {
		return c.readNoWait(p)
	}
	if connPhase(c.phase.Load()) == phaseLinger {
		c.lingerRead()
	}
	n, err := c.Conn.Read(p)
	if n > 0 && connPhase(c.phase.Load()) == phaseIdle {
		c.arm(phaseHead, c.cc.headerTimeout(c.localIP()))
	}
	return n, err
}

// linger is called before the response to a request whose body was
// not read to its end and will not be: net/http reads the rest (up to
// 256 KiB) after the response, and drops it, before it closes the
// connection. As in nginx's ngx_http_discarded_request_body_handler,
// every read of that rest may wait lingering_timeout, and all of them
// together end lingering_time after the first (the response has gone by
// then); past either, the connection is closed.
func (c *clientConn) linger(timeout, total time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if connPhase(c.phase.Load()) != phaseActive {
		return
	}
	c.lingerTimeout = timeout
	c.lingerTime = total
	c.lingerEnd = 0
	c.phase.Store(int32(phaseLinger))
}

// lingerRead sets the timer for a read of a body being discarded: it
// may wait lingering_timeout, and not past the end of lingering_time.
// The timer closes the connection, which fails the read; net/http then
// finds the connection closed when it looks for the next request.
func (c *clientConn) lingerRead() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if connPhase(c.phase.Load()) != phaseLinger {
		return
	}
	now := nanotime()
	if c.lingerEnd == 0 {
		c.lingerEnd = now + int64(c.lingerTime)
	}
	c.deadline = min(now+int64(c.lingerTimeout), c.lingerEnd)
	d := time.Duration(c.deadline - now)
	if d < 0 {
		d = 0
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.expire)
	} else {
		c.timer.Reset(d)
	}
}

// Unwrap returns the raw socket (the tunnel engine works on it).
func (c *clientConn) Unwrap() net.Conn {
	if u, ok := c.Conn.(interface{ Unwrap() net.Conn }); ok {
		return u.Unwrap()
	}
	return c.Conn
}

// keepAlive applies keepalive_timeout and keepalive_requests of the
// location that answers q, as nginx's ngx_http_update_location_config
// does: keepalive_timeout 0, or a connection that has read
// keepalive_requests requests (this one included), closes the connection
// after this response ("Connection: close"); otherwise the connection may
// idle keepalive_timeout, and its optional second value is sent as
// "Keep-Alive: timeout=N".
func (w *responseWriter) keepAlive() {
	q := w.q
	s := q.set
	if s == nil && q.srv != nil {
		s = q.srv.Settings
	}
	if s == nil {
		return
	}
	hdr := w.Header()
	for _, v := range hdr["Connection"] {
		if hasToken(v, "close") {
			return
		}
	}
	c, _ := q.r.Context().Value(clientConnKey{}).(*clientConn)
	if s.KeepaliveTimeout <= 0 || c != nil && c.requests.Load() >= int64(s.KeepaliveRequests) {
		hdr.Set("Connection", "close")
		return
	}
	if c != nil {
		c.idle.Store(int64(s.KeepaliveTimeout))
	}
	if s.KeepaliveHeader > 0 && !q.r.Close {
		hdr.Set("Keep-Alive", "timeout="+strconv.FormatInt(int64(s.KeepaliveHeader/time.Second), 10))
	}
}

func hasToken(v, token string) bool {
	for _, t := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// defaultServer returns the default server for a connection that arrived
// on the socket bound to bind at local address localIP.
func (h *Handler) defaultServer(bind, localIP string) *config.Server {
	if b := h.table.Binding(bind); b != nil {
		return b.Default(localIP)
	}
	return nil
}
