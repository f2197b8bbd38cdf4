package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// upstreamClient sends HTTP/1.1 requests to upstream servers over pooled
// connections. It is wsgate's own small client rather than
// http.Transport because a proxy needs what Transport hides: the exact
// request target and header order, per-request connect/send/read
// timeouts on the connection itself, and no silent re-sending of a
// request on a new connection (proxy_next_upstream decides retries).
//
// Idle connections are kept per upstream block, as nginx's keepalive
// cache is: with "keepalive N" at most N for the whole block (the least
// recently used one is closed to make room), without it (wsgate pools by
// default) at most defaultMaxIdle per server. keepalive_timeout closes a
// connection idle that long, keepalive_requests and keepalive_time retire
// a connection after that many requests or that long since it opened.
type upstreamClient struct {
	mu     sync.Mutex
	caches map[*config.Upstream]*idleCache // nil key: variable proxy_pass to no upstream block
	closed bool
}

// defaultMaxIdle is the number of idle connections kept per server of an
// upstream without a keepalive directive.
const defaultMaxIdle = 64

// idleCache holds the idle connections of one upstream block.
type idleCache struct {
	lim  connLimits
	idle map[string][]*upstreamConn // by "scheme://addr", most recent last
	n    int                        // idle connections in all lists
}

// connLimits are an upstream block's keepalive settings.
type connLimits struct {
	max       int  // idle connections kept
	perServer bool // max counts per server (the default) rather than per block
	timeout   time.Duration
	requests  int
	maxAge    time.Duration
}

func limitsOf(u *config.Upstream) connLimits {
	l := connLimits{max: defaultMaxIdle, perServer: true, timeout: 60 * time.Second, requests: 1000, maxAge: time.Hour}
	if u == nil {
		return l
	}
	if u.Keepalive > 0 {
		l.max, l.perServer = u.Keepalive, false
	}
	l.timeout, l.requests, l.maxAge = u.KeepaliveTimeout, u.KeepaliveRequests, u.KeepaliveTime
	return l
}

// upstreamConn is one connection to an upstream server.
type upstreamConn struct {
	net.Conn
	up       *config.Upstream
	key      string
	br       *bufio.Reader
	bw       *bufio.Writer
	reused   bool
	requests int   // requests sent on it
	opened   int64 // nanotime() when it was opened
	// idle, idleAt and timer are guarded by upstreamClient.mu.
	idle   bool
	idleAt int64
	timer  *time.Timer

	// The liveness peek, set up once per connection (alive).
	rc     syscall.RawConn
	peekFn func(fd uintptr) bool
	peekOK bool
}

func newUpstreamClient() *upstreamClient {
	return &upstreamClient{caches: map[*config.Upstream]*idleCache{}}
}

// get returns an idle connection to key of upstream up that is still
// open, or nil.
func (c *upstreamClient) get(up *config.Upstream, key string) *upstreamConn {
	for {
		c.mu.Lock()
		ic := c.caches[up]
		if ic == nil || len(ic.idle[key]) == 0 {
			c.mu.Unlock()
			return nil
		}
		pc := ic.remove(key, len(ic.idle[key])-1) // the most recently used
		fresh := nanotime()-pc.idleAt < int64(ic.lim.timeout)
		c.mu.Unlock()
		if fresh && pc.alive() {
			pc.reused = true
			return pc
		}
		pc.Conn.Close()
	}
}

// alive reports whether an idle connection is still open: the server
// may have closed it (keepalive timeout) while it sat in the pool.
func (pc *upstreamConn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false // unsolicited bytes: not a clean idle connection
	}
	if pc.peekFn == nil {
		sc, ok := pc.Conn.(syscall.Conn)
		if !ok {
			return true // TLS: the exchange itself will tell
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		pc.rc = rc
		pc.peekFn = func(fd uintptr) bool {
			pc.peekOK = peekQuiet(fd)
			return true
		}
	}
	pc.peekOK = false
	pc.rc.Read(pc.peekFn)
	return pc.peekOK
}

// put returns a connection to the pool after a complete exchange, unless
// it has served keepalive_requests requests or is older than
// keepalive_time.
func (c *upstreamClient) put(pc *upstreamConn) {
	pc.Conn.SetDeadline(time.Time{})
	now := nanotime()
	c.mu.Lock()
	ic := c.caches[pc.up]
	if ic == nil && !c.closed {
		ic = &idleCache{lim: limitsOf(pc.up), idle: map[string][]*upstreamConn{}}
		c.caches[pc.up] = ic
	}
	if c.closed || pc.requests >= ic.lim.requests || now-pc.opened > int64(ic.lim.maxAge) || ic.lim.timeout <= 0 {
		c.mu.Unlock()
		pc.Conn.Close()
		return
	}
	var evicted *upstreamConn
	if ic.lim.perServer && len(ic.idle[pc.key]) >= ic.lim.max {
		evicted = ic.remove(pc.key, 0)
	} else if !ic.lim.perServer && ic.n >= ic.lim.max {
		evicted = ic.removeOldest()
	}
	pc.idle, pc.idleAt = true, now
	ic.idle[pc.key] = append(ic.idle[pc.key], pc)
	ic.n++
	if pc.timer == nil {
		pc.timer = time.AfterFunc(ic.lim.timeout, func() { c.expire(pc) })
	} else {
		pc.timer.Reset(ic.lim.timeout)
	}
	c.mu.Unlock()
	if evicted != nil {
		evicted.Conn.Close()
	}
}

// remove takes the i-th idle connection to key out of the cache.
func (ic *idleCache) remove(key string, i int) *upstreamConn {
	list := ic.idle[key]
	pc := list[i]
	copy(list[i:], list[i+1:])
	list[len(list)-1] = nil
	ic.idle[key] = list[:len(list)-1]
	ic.n--
	pc.idle = false
	if pc.timer != nil {
		pc.timer.Stop()
	}
	return pc
}

// removeOldest takes the least recently used idle connection out.
func (ic *idleCache) removeOldest() *upstreamConn {
	var key string
	var at int64
	found := false
	for k, list := range ic.idle {
		if len(list) > 0 && (!found || list[0].idleAt < at) {
			key, at, found = k, list[0].idleAt, true
		}
	}
	if !found {
		return nil
	}
	return ic.remove(key, 0)
}

// expire closes pc once it has been idle for keepalive_timeout (its timer
// may fire late, after pc was taken out and put back: idleAt tells).
func (c *upstreamClient) expire(pc *upstreamConn) {
	c.mu.Lock()
	ic := c.caches[pc.up]
	if !pc.idle || ic == nil || nanotime()-pc.idleAt < int64(ic.lim.timeout) {
		c.mu.Unlock()
		return
	}
	for i, x := range ic.idle[pc.key] {
		if x == pc {
			ic.remove(pc.key, i)
			break
		}
	}
	c.mu.Unlock()
	pc.Conn.Close()
}

// closeIdle closes every pooled connection; later puts close at once.
func (c *upstreamClient) closeIdle() {
	c.mu.Lock()
	caches := c.caches
	c.caches = map[*config.Upstream]*idleCache{}
	c.closed = true
	var all []*upstreamConn
	for _, ic := range caches {
		for k := range ic.idle {
			for len(ic.idle[k]) > 0 {
				all = append(all, ic.remove(k, len(ic.idle[k])-1))
			}
		}
	}
	c.mu.Unlock()
	for _, pc := range all {
		pc.Conn.Close()
	}
}

// exchange is one request/response on an upstream connection.
type exchange struct {
	up          *config.Upstream // whose idle connections to use (nil: none)
	method      string
	target      string // request target
	host        string // Host header value
	header      http.Header
	body        io.Reader // nil = no body
	length      int64     // -1 = chunked
	close       bool      // send Connection: close and do not pool
	connect     time.Duration
	sendTimeout time.Duration
	readTimeout time.Duration
}

// roundTrip sends ex to addr and reads the response head. The returned
// response's Body reads the rest with the read timeout between reads and
// returns the connection to the pool when it ends cleanly.
func (h *Handler) roundTrip(ctx context.Context, useTLS bool, addr string, ex *exchange) (*http.Response, error) {
	key := addr
	if useTLS {
		key = "tls://" + addr
	}
	pc := h.client.get(ex.up, key)
	for {
		if pc == nil {
			var err error
			if pc, err = h.dialUpstream(ctx, useTLS, addr, key, ex); err != nil {
				return nil, err
			}
		}
		pc.requests++
		// A client that goes away aborts the upstream exchange.
		stop := context.AfterFunc(ctx, func() { pc.Conn.SetDeadline(time.Now().Add(-time.Second)) })
		resp, err := h.send(pc, ex)
		if err != nil {
			stop()
			pc.Conn.Close()
			// Like nginx with a cached keepalive connection, a request
			// without a body that found its pooled connection closed
			// (the server closed it as the request went out: reset, or
			// EOF before any byte of the response) is sent once more on
			// a new connection, not answered with a 502. Only with
			// "keepalive" in the upstream, where nginx caches too:
			// without it nginx opens a new connection per request and
			// sends a request that kills its server once, and wsgate's
			// own pooling must not change that.
			if pc.reused && ex.up != nil && ex.up.Keepalive > 0 && ex.body == nil && ctx.Err() == nil && staleReuse(err) {
				pc = nil
				continue
			}
			return nil, err
		}
		body := &upstreamBody{client: h.client, pc: pc, rc: resp.Body, timeout: ex.readTimeout, stop: stop,
			reusable: !ex.close && !resp.Close}
		resp.Body = body
		return resp, nil
	}
}

// dialUpstream opens a new connection to addr for ex.
func (h *Handler) dialUpstream(ctx context.Context, useTLS bool, addr, key string, ex *exchange) (*upstreamConn, error) {
	dctx, cancel := context.WithTimeout(ctx, ex.connect)
	defer cancel()
	c, err := h.dialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if useTLS {
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: host, NextProtos: []string{"http/1.1"}})
		if err := tc.HandshakeContext(dctx); err != nil {
			c.Close()
			return nil, &dialError{addr: addr, err: err}
		}
		c = tc
	}
	return &upstreamConn{Conn: c, up: ex.up, key: key, opened: nanotime(),
		br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 4096)}, nil
}

// staleReuse reports whether err from send is what a pooled connection
// the server had closed gives: a reset or broken pipe, or EOF before any
// byte of the response.
func staleReuse(err error) bool {
	return errors.Is(err, errClosedBeforeResponse) || isConnReset(err)
}

// send writes the request and reads the response head.
func (h *Handler) send(pc *upstreamConn, ex *exchange) (*http.Response, error) {
	if ex.sendTimeout > 0 {
		pc.Conn.SetWriteDeadline(time.Now().Add(ex.sendTimeout))
	}
	bw := pc.bw
	bw.WriteString(ex.method)
	bw.WriteByte(' ')
	bw.WriteString(ex.target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(ex.host)
	bw.WriteString("\r\n")
	for k, vs := range ex.header {
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(headerValueReplacer.Replace(v))
			bw.WriteString("\r\n")
		}
	}
	if ex.close {
		bw.WriteString("Connection: close\r\n")
	}
	switch {
	case ex.body != nil && ex.length >= 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(ex.length, 10))
		bw.WriteString("\r\n\r\n")
		if _, err := io.CopyN(bw, ex.body, ex.length); err != nil {
			return nil, sendError(err)
		}
	case ex.body != nil:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(bw)
		if _, err := io.Copy(cw, ex.body); err != nil {
			return nil, sendError(err)
		}
		cw.Close()
		bw.WriteString("\r\n")
	default:
		if ex.method == http.MethodPost || ex.method == http.MethodPut || ex.method == http.MethodPatch {
			bw.WriteString("Content-Length: 0\r\n")
		}
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil {
		return nil, sendError(err)
	}
	pc.Conn.SetWriteDeadline(time.Time{})
	if ex.readTimeout > 0 {
		pc.Conn.SetReadDeadline(time.Now().Add(ex.readTimeout))
	}
	// Wait for the first byte apart: ReadResponse reports EOF before any
	// byte and EOF within the head alike.
	_, err := pc.br.Peek(1)
	if err == io.EOF {
		return nil, errClosedBeforeResponse
	}
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(pc.br, &http.Request{Method: ex.method})
	}
	for err == nil && resp.StatusCode == http.StatusContinue {
		resp, err = http.ReadResponse(pc.br, &http.Request{Method: ex.method})
	}
	if err != nil {
		switch {
		case isTimeout(err):
			return nil, errUpstreamTimeout
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errors.New("upstream prematurely closed connection while reading response header from upstream")
		case errors.Is(err, net.ErrClosed) || isConnReset(err):
			return nil, err
		}
		return nil, errors.Join(errInvalidHeader, err)
	}
	return resp, nil
}

// errClosedBeforeResponse is send's error when the connection ended before
// the first byte of the response.
var errClosedBeforeResponse = errors.New("upstream prematurely closed connection while reading response header from upstream")

var headerValueReplacer = strings.NewReplacer("\r", " ", "\n", " ")

func sendError(err error) error {
	if isTimeout(err) {
		return errUpstreamTimeout
	}
	return err
}

func isConnReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// upstreamBody reads a response body with proxy_read_timeout between
// reads and pools the connection when the body ends cleanly.
type upstreamBody struct {
	client   *upstreamClient
	pc       *upstreamConn
	rc       io.ReadCloser
	timeout  time.Duration
	stop     func() bool
	reusable bool
	done     bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.timeout > 0 {
		b.pc.Conn.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		if isTimeout(err) {
			err = errUpstreamTimeout
		}
		b.finish(false)
	}
	return n, err
}

func (b *upstreamBody) finish(clean bool) {
	if b.done {
		return
	}
	b.done = true
	aborted := !b.stop() // the client went away: the deadline was forced
	if clean && b.reusable && !aborted && b.pc.br.Buffered() == 0 {
		b.client.put(b.pc)
		return
	}
	b.pc.Conn.Close()
}

// Close ends the body; an unread remainder means the connection cannot
// be reused.
func (b *upstreamBody) Close() error {
	b.finish(false)
	return nil
}
