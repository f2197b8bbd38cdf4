package proxy

import (
	"errors"
	"io"
	"net/http"
	"syscall"
)

// A request body that the location does not read (return, static files,
// proxy_pass_request_body off, a 403 or 413 answered before it) is
// discarded as nginx's ngx_http_discard_request_body does it: the
// response is sent at once, and the rest of the body is read and dropped
// after it, so that the connection can serve the next request; a client
// that stops sending has its connection closed after lingering_timeout
// without a byte, or lingering_time after the response in all.
//
// net/http, left to itself, reads up to 256 KiB of an unread body before
// it writes the response headers, with no time limit: a client that
// stalls mid-body never gets its answer. So before the headers are
// written, discardUnread reads what of the body has already arrived,
// without waiting (as nginx does first). A body read to its end that way
// leaves the connection to keep-alive. Otherwise the response says
// "Connection: close", which makes net/http write it without reading the
// body first; after it, net/http reads up to 256 KiB of the rest (to
// close the connection cleanly, not on unread data), and those reads are
// bounded by lingering_timeout and lingering_time (clientConn.linger).
// nginx would keep such a connection when the rest came in time; wsgate
// closes it.
//
// (net/http's full-duplex mode would leave the headers alone too, but
// its body then reaches its end only after the handler, which starts a
// read in the background that the next request's read runs into.)

// discardLimit bounds what discardUnread reads of an unread body
// without waiting before the response.
const discardLimit = 1 << 20

// discardUnread runs before the response headers of a request with a
// body are written.
func (w *responseWriter) discardUnread() {
	q := w.q
	if w.bodyTaken {
		// an upstream request reads it (and net/http after it, as before)
		return
	}
	c, _ := q.r.Context().Value(clientConnKey{}).(*clientConn)
	if c == nil {
		return
	}
	hdr := w.Header()
	for _, v := range hdr["Connection"] {
		if hasToken(v, "close") {
			w.linger(c)
			return
		}
	}
	if c.readAvailable(q.r.Body, discardLimit) {
		return
	}
	hdr.Del("Keep-Alive")
	hdr.Set("Connection", "close")
	w.linger(c)
}

// linger bounds the reads of the body that net/http makes after the
// response on c with the location's lingering_timeout and lingering_time.
func (w *responseWriter) linger(c *clientConn) {
	q := w.q
	s := q.set
	if s == nil && q.srv != nil {
		s = q.srv.Settings
	}
	if s == nil {
		return
	}
	c.linger(s.LingeringTimeout, s.LingeringTime)
}

// readAvailable reads and drops what of body has arrived (at most limit
// bytes), without waiting for more, and reports whether it reached the
// body's end. The body's reads reach the connection through net/http's
// buffer; while they do, the connection's reads do not wait: with
// nothing to read they return no bytes and no error, and the body's
// reader returns that up. Under TLS the connection can't be read that
// way (a record read retries until it has bytes), and nothing is read.
func (c *clientConn) readAvailable(body io.Reader, limit int) bool {
	if body == nil || body == http.NoBody {
		return true
	}
	if c.rawConn() == nil || c.tls.Load() || !canReadNoWait {
		return false
	}
	c.nowait.Store(true)
	defer c.nowait.Store(false)
	buf := make([]byte, 8192)
	for n := 0; n < limit; {
		k, err := body.Read(buf)
		n += k
		switch {
		case errors.Is(err, io.EOF):
			return true
		case err != nil:
			return false
		case k == 0:
			return false // nothing more has arrived
		}
	}
	return false
}

// rawConn is the socket's syscall.RawConn (nil if it has none).
func (c *clientConn) rawConn() syscall.RawConn {
	sc, ok := c.Unwrap().(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
