package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/tunnel"
	"github.com/wsgate/wsgate/internal/upstream"
)

// proxyUpgrade carries a protocol upgrade (WebSocket) to the upstream,
// whether or not the config sets the Upgrade and Connection headers:
// wsgate dials the server itself, sends the handshake, checks the 101,
// then hands both connections to a tunnel.
func (h *Handler) proxyUpgrade(w *responseWriter, q *request, t *target, depth int) {
	s := q.set
	r := q.r
	proto := r.Header.Get("Upgrade")
	pk := h.newPicker(q, t)
	var lastErr error
	for {
		a, err := pk.next(lastErr)
		if err != nil {
			h.upstreamFailed(w, q, t, err, depth)
			return
		}
		bc, br, resp, err := h.handshake(q, t, a.addr, proto)
		if err != nil {
			if r.Context().Err() != nil {
				pk.abandon(w, a)
				return
			}
			h.elog.Printf("[error] upstream handshake failed: %v, upstream: %q, client: %s, request: %q",
				err, a.addr, q.remoteIP, r.Method+" "+r.RequestURI)
			pk.failed(a)
			lastErr = err
			if retryable(s.NextUpstream, err, 0, r.Method, false) {
				continue
			}
			h.upstreamFailed(w, q, t, err, depth)
			return
		}
		q.upstreamCode = itoa(resp.StatusCode)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			// A 5xx before the 101 moves on to the next server: nothing has
			// reached the client yet, and a handshake is idempotent.
			if resp.StatusCode >= 500 && (resp.StatusCode != 501 || s.NextUpstream.Statuses[501]) && !s.NextUpstream.Off {
				if _, more := pk.peek(); more {
					bc.Close()
					pk.failed(a)
					lastErr = errors.New("upstream answered " + resp.Status + " to the upgrade")
					h.elog.Printf("[warn] upstream %q answered %s to an upgrade, trying the next server", a.addr, resp.Status)
					continue
				}
			}
			if a.srv != nil {
				pk.t.pool.Success(a.srv)
				pk.setSticky(w.Header(), a.srv)
			}
			bc.SetReadDeadline(time.Time{})
			resp.Body = struct {
				io.Reader
				io.Closer
			}{resp.Body, bc}
			h.copyResponse(w, q, t, resp, func() { bc.Close() }, s.ProxyReadTimeout)
			if a.srv != nil {
				a.srv.Release()
			}
			return
		}
		if !strings.EqualFold(strings.TrimSpace(resp.Header.Get("Upgrade")), proto) {
			bc.Close()
			h.elog.Printf("[error] upstream %q switched to protocol %q, client asked for %q", a.addr, resp.Header.Get("Upgrade"), proto)
			pk.failed(a)
			h.errorPage(w, q, http.StatusBadGateway, depth)
			return
		}
		if a.srv != nil {
			pk.t.pool.Success(a.srv)
			pk.setSticky(resp.Header, a.srv)
		}
		h.runTunnel(w, q, t, a, bc, br, resp, proto)
		return
	}
}

// handshake dials addr and sends the upgrade request; it returns the
// connection, its reader (which may hold bytes after the response head)
// and the parsed response head.
func (h *Handler) handshake(q *request, t *target, addr, proto string) (net.Conn, *bufio.Reader, *http.Response, error) {
	s := q.set
	ctx, cancel := context.WithTimeout(q.r.Context(), s.ProxyConnectTimeout)
	defer cancel()
	bc, err := h.dialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, nil, err
	}
	if t.https {
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(bc, &tls.Config{InsecureSkipVerify: true, ServerName: host, NextProtos: []string{"http/1.1"}})
		tc.SetDeadline(time.Now().Add(s.ProxyConnectTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			bc.Close()
			return nil, nil, nil, &dialError{addr: addr, err: err}
		}
		bc = tc
	}
	bp := handshakeBufs.Get().(*[]byte)
	defer handshakeBufs.Put(bp)
	*bp = h.appendHandshake((*bp)[:0], q, t, proto)
	if s.ProxySendTimeout > 0 {
		bc.SetWriteDeadline(time.Now().Add(s.ProxySendTimeout))
	}
	if err := writeAll(bc, *bp); err != nil {
		bc.Close()
		return nil, nil, nil, &dialError{addr: addr, err: err}
	}
	bc.SetWriteDeadline(time.Time{})
	if s.ProxyReadTimeout > 0 {
		bc.SetReadDeadline(time.Now().Add(s.ProxyReadTimeout))
	}
	br := bufio.NewReaderSize(bc, 4096)
	resp, err := http.ReadResponse(br, q.r)
	if err != nil {
		bc.Close()
		if isTimeout(err) {
			return nil, nil, nil, fmt.Errorf("%w: reading response header: %v", errUpstreamTimeout, err)
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, nil, fmt.Errorf("upstream prematurely closed connection while reading response header: %w", err)
		}
		var oe *net.OpError
		if errors.As(err, &oe) {
			// a reset or broken connection is an "error", not an
			// "invalid_header", for proxy_next_upstream
			return nil, nil, nil, fmt.Errorf("reading response header from upstream: %w", err)
		}
		return nil, nil, nil, fmt.Errorf("%w: %v", errInvalidHeader, err)
	}
	// The read deadline stays: copyResponse bounds a non-101 answer's
	// body itself, and the tunnel clears it.
	return bc, br, resp, nil
}

// hopSet is hopHeaders as a set of canonical names.
var hopSet = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range hopHeaders {
		m[k] = true
	}
	return m
}()

// handshakeBufs holds the buffers upstream handshakes are written into.
var handshakeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// appendHandshake appends the upstream upgrade request for q to dst: the
// request line, Host, "Upgrade: proto" and "Connection: upgrade", then the
// headers a proxied request carries (setHeaders: the proxy_set_header
// values and the client's end-to-end headers), less the Host, Connection,
// Upgrade and Content-Length already decided. It allocates nothing beyond
// dst's growth and what variables evaluate to.
func (h *Handler) appendHandshake(dst []byte, q *request, t *target, proto string) []byte {
	s := q.set
	p := h.planFor(s)
	host := t.host // unless proxy_set_header Host gives one
	for i, k := range p.setNames {
		if k == "Host" {
			if v := s.ProxySetHeaders[i].Value.Eval(q); v != "" {
				host = v
				break
			}
		}
	}
	dst = append(dst, q.r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, t.uri...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: "...)
	dst = append(dst, proto...)
	dst = append(dst, "\r\nConnection: upgrade\r\n"...)
	line := func(k, v string) {
		switch k {
		case "Host", "Connection", "Upgrade", "Content-Length":
			return
		}
		dst = append(dst, k...)
		dst = append(dst, ": "...)
		dst = appendHeaderValue(dst, v)
		dst = append(dst, "\r\n"...)
	}
	h.eachUpstreamHeader(q, line, func(k string, vs []string) {
		for _, v := range vs {
			line(k, v)
		}
	})
	return append(dst, "\r\n"...)
}

// appendHeaderValue appends v with CR and LF replaced by spaces.
func appendHeaderValue(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// runTunnel completes the client side of the upgrade and carries the
// connection until it ends.
func (h *Handler) runTunnel(w *responseWriter, q *request, t *target, a *attempt, bc net.Conn, br *bufio.Reader, resp *http.Response, proto string) {
	defer func() {
		if a.srv != nil {
			a.srv.Release()
		}
	}()
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		bc.Close()
		h.writeError(w, q, http.StatusInternalServerError)
		return
	}
	cc, cbuf, err := hj.Hijack()
	if err != nil {
		bc.Close()
		h.elog.Printf("[error] hijack failed: %v", err)
		return
	}
	// The tunnel engine works on the raw socket, not the listener's
	// logging wrapper.
	if u, ok := cc.(interface{ Unwrap() net.Conn }); ok {
		cc = u.Unwrap()
	}
	w.hijacked = true
	w.wrote = true
	q.status = http.StatusSwitchingProtocols

	// The 101 to the client: the upstream's headers minus hop-by-hop and
	// hidden ones, then Upgrade/Connection as the protocol needs.
	s := q.set
	p := h.planFor(s)
	bp := handshakeBufs.Get().(*[]byte)
	defer handshakeBufs.Put(bp)
	b := append((*bp)[:0], "HTTP/1.1 101 Switching Protocols\r\n"...)
	for k, vs := range resp.Header {
		if hopSet[k] || p.hideResponse[k] || k == "Content-Length" || !p.passResponse[k] && strings.HasPrefix(k, "X-Accel-") {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "Server: wsgate\r\nUpgrade: "...)
	b = append(b, resp.Header.Get("Upgrade")...)
	b = append(b, "\r\nConnection: upgrade\r\n\r\n"...)
	*bp = b
	cc.SetWriteDeadline(time.Now().Add(s.SendTimeout))
	if err := writeAll(cc, b); err != nil {
		cc.Close()
		bc.Close()
		return
	}
	// The tunnel clears what is left of the handshake's deadlines (or
	// takes the sockets out of Go's poller, and them with it).
	var clientBuf, backendBuf []byte
	if n := cbuf.Reader.Buffered(); n > 0 {
		p, _ := cbuf.Reader.Peek(n)
		clientBuf = append([]byte(nil), p...)
	}
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		backendBuf = append([]byte(nil), p...)
	}
	ws := s.WebSocket
	frames := ws.Frames && strings.EqualFold(proto, "websocket")
	opt := tunnel.Options{
		Frames:      frames,
		IdleTimeout: s.ProxyReadTimeout,
		SendTimeout: s.ProxySendTimeout,
	}
	if frames {
		opt.PingInterval = ws.PingInterval
		opt.PingTimeout = ws.PingTimeout
		opt.MaxMessageSize = ws.MaxMessageSize
		opt.MaxFrameRate = ws.MaxFrameRate
	}
	tn := tunnel.New(cc, clientBuf, bc, backendBuf, opt)
	tag := &TunnelTag{Generation: h.gen, Server: a.addr, Location: q.loc.Name(), Server_: q.srv}
	if t.up != nil {
		tag.Upstream = t.up.Name
	}
	tn.SetTag(tag)
	remove := h.tunnels.Add(tn)
	// The tunnel outlives the request: net/http's connection goroutine
	// returns now and frees its stack and buffers; a tunnelCarrier owns
	// the connection until it ends, then writes the access log line.
	q.detached = true
	srv := a.srv
	a.srv = nil // released by the carrier, not by runTunnel's defer
	c := tunnelCarrier{h: h, remoteIP: q.remoteIP, tn: tn, srv: srv, addr: a.addr, remove: remove, log: newTunnelLog(q)}
	c.run()
}

// tunnelCarrier runs one detached tunnel to its end: it releases the
// upstream server's live count and logs the connection. No goroutine waits
// for the tunnel: run starts it with RunAsync and ended runs when it is over.
type tunnelCarrier struct {
	h *Handler
	// log is what the access log line needs, nil without access logs;
	// the request itself is not kept (see tunnelLog).
	log      *tunnelLog
	remoteIP string
	tn       *tunnel.Tunnel
	srv      *upstream.Server
	addr     string
	remove   func()
}

func (c tunnelCarrier) run() {
	c.tn.RunAsync(context.Background(), c.ended)
}

// ended runs once, when the tunnel has ended; with the epoll engine on an
// event loop, so it must not block.
func (c tunnelCarrier) ended(st tunnel.Stats) {
	c.remove()
	if c.srv != nil {
		c.srv.Release()
	}
	l, h := c.log, c.h
	if st.Err != nil && !errors.Is(st.Err, net.ErrClosed) {
		h.elog.Printf("[info] websocket tunnel ended: %v, client: %s, upstream: %q, close: %d by %s",
			st.Err, c.remoteIP, c.addr, st.CloseCode, st.CloseBy)
	}
	if l == nil {
		return
	}
	l.ws = &wsLog{
		in: st.BytesFromClient, out: st.BytesFromBackend,
		msgsIn: st.MessagesIn, msgsOut: st.MessagesOut,
		closeCode: st.CloseCode, closeBy: st.CloseBy, duration: st.Duration,
	}
	l.bytesSent = st.BytesFromBackend
	l.write()
}
