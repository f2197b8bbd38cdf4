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
)

// upstreamClient sends HTTP/1.1 requests to upstream servers over pooled
// connections. It is wsgate's own small client rather than
// http.Transport because a proxy needs what Transport hides: the exact
// request target and header order, per-request connect/send/read
// timeouts on the connection itself, and no silent re-sending of a
// request on a new connection (proxy_next_upstream decides retries).
type upstreamClient struct {
	mu      sync.Mutex
	idle    map[string][]*upstreamConn // by "scheme://addr", most recent last
	maxIdle int                        // per address
	idleFor time.Duration
	closed  bool
}

// upstreamConn is one connection to an upstream server.
type upstreamConn struct {
	net.Conn
	key    string
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool
	idleAt time.Time
}

func newUpstreamClient() *upstreamClient {
	return &upstreamClient{idle: map[string][]*upstreamConn{}, maxIdle: 64, idleFor: 60 * time.Second}
}

// get returns an idle connection to key that is still open, or nil.
func (c *upstreamClient) get(key string) *upstreamConn {
	for {
		c.mu.Lock()
		list := c.idle[key]
		if len(list) == 0 {
			c.mu.Unlock()
			return nil
		}
		pc := list[len(list)-1]
		c.idle[key] = list[:len(list)-1]
		c.mu.Unlock()
		if time.Since(pc.idleAt) < c.idleFor && pc.alive() {
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
	sc, ok := pc.Conn.(syscall.Conn)
	if !ok {
		return true // TLS: the exchange itself will tell
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// A non-blocking peek: EAGAIN means open and quiet; 0 bytes means the
	// server closed it; data means it is out of step.
	alive := false
	var b [1]byte
	rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return alive
}

// put returns a connection to the pool after a complete exchange.
func (c *upstreamClient) put(pc *upstreamConn) {
	pc.idleAt = time.Now()
	pc.Conn.SetDeadline(time.Time{})
	c.mu.Lock()
	if c.closed || len(c.idle[pc.key]) >= c.maxIdle {
		c.mu.Unlock()
		pc.Conn.Close()
		return
	}
	c.idle[pc.key] = append(c.idle[pc.key], pc)
	c.mu.Unlock()
}

// closeIdle closes every pooled connection; later puts close at once.
func (c *upstreamClient) closeIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = map[string][]*upstreamConn{}
	c.closed = true
	c.mu.Unlock()
	for _, l := range idle {
		for _, pc := range l {
			pc.Conn.Close()
		}
	}
}

// exchange is one request/response on an upstream connection.
type exchange struct {
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
	pc := h.client.get(key)
	if pc == nil {
		dctx, cancel := context.WithTimeout(ctx, ex.connect)
		c, err := h.dialContext(dctx, "tcp", addr)
		if err == nil && useTLS {
			host, _, _ := net.SplitHostPort(addr)
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: host, NextProtos: []string{"http/1.1"}})
			if herr := tc.HandshakeContext(dctx); herr != nil {
				c.Close()
				err = &dialError{addr: addr, err: herr}
			} else {
				c = tc
			}
		}
		cancel()
		if err != nil {
			return nil, err
		}
		pc = &upstreamConn{Conn: c, key: key, br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 4096)}
	}
	// A client that goes away aborts the upstream exchange.
	stop := context.AfterFunc(ctx, func() { pc.Conn.SetDeadline(time.Now().Add(-time.Second)) })
	resp, err := h.send(pc, ex)
	if err != nil {
		stop()
		pc.Conn.Close()
		return nil, err
	}
	body := &upstreamBody{client: h.client, pc: pc, rc: resp.Body, timeout: ex.readTimeout, stop: stop,
		reusable: !ex.close && !resp.Close}
	resp.Body = body
	return resp, nil
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
	resp, err := http.ReadResponse(pc.br, &http.Request{Method: ex.method})
	for err == nil && resp.StatusCode == http.StatusContinue {
		resp, err = http.ReadResponse(pc.br, &http.Request{Method: ex.method})
	}
	if err != nil {
		switch {
		case isTimeout(err):
			return nil, errUpstreamTimeout
		case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errors.New("upstream prematurely closed connection while reading response header from upstream")
		case errors.Is(err, net.ErrClosed) || isConnReset(err):
			return nil, err
		}
		return nil, errors.Join(errInvalidHeader, err)
	}
	return resp, nil
}

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
