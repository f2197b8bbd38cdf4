package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// client_body_timeout, as nginx applies it: a timer runs only while
// wsgate waits for the client to send more of the request body, and
// starts again at every read, so a slow but steady uploader is never cut;
// a client that sends nothing for that long has its request terminated.
// nginx then sends no response: it logs 408 in the access log and closes
// the connection (an upstream that was already getting the body sees its
// connection closed too).
//
// The timer is not a read deadline set before every read: once the body
// has hit EOF, net/http keeps a background read on the connection, and a
// deadline left running would fail that read and cancel the request
// context. The timer here only sets a deadline (one in the past, to wake
// the blocked read) when it finds a read still waiting after the whole
// timeout, so a deadline exists only on a connection that is closed
// right after.

// errClientBodyTimeout is what a timedBody's Read returns once
// client_body_timeout has run out. It is not a net.Error: an upstream
// exchange that fails with it is not an upstream timeout.
var errClientBodyTimeout = errors.New("client timed out while reading client request body")

// aLongTimeAgo is a read deadline that wakes a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// timedBody reads a request body with client_body_timeout between reads.
type timedBody struct {
	r io.Reader
	d time.Duration
	w http.ResponseWriter // whose connection's read is woken
	// abort, when set, wakes the blocked read instead (tests).
	abort func()

	mu       sync.Mutex
	reading  bool  // a Read is waiting on the client
	since    int64 // nanotime() when that Read began
	timer    *time.Timer
	armed    bool // the timer is set (or its function is running)
	timedOut bool
	done     bool
}

// newTimedBody applies timeout d to reads of r.Body; w is the handler's
// ResponseWriter (its connection is the one whose reads are woken).
func newTimedBody(w http.ResponseWriter, r *http.Request, d time.Duration) *timedBody {
	if rw, ok := w.(*responseWriter); ok {
		rw.bodyTaken = true
	}
	return &timedBody{r: r.Body, d: d, w: w}
}

// wake fails the read blocked on the client connection: a read deadline
// in the past, which net/http lets a handler set on its connection.
func (b *timedBody) wake() {
	if b.abort != nil {
		b.abort()
		return
	}
	http.NewResponseController(b.w).SetReadDeadline(aLongTimeAgo)
}

func (b *timedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.timedOut {
		b.mu.Unlock()
		return 0, errClientBodyTimeout
	}
	b.reading, b.since = true, nanotime()
	if !b.armed {
		b.armed = true
		if b.timer == nil {
			b.timer = time.AfterFunc(b.d, b.expire)
		} else {
			b.timer.Reset(b.d)
		}
	}
	b.mu.Unlock()

	n, err := b.r.Read(p)

	b.mu.Lock()
	b.reading = false
	timedOut := b.timedOut
	b.mu.Unlock()
	if timedOut {
		// the deadline was forced: whatever the read returned, the
		// connection is unusable now
		return n, errClientBodyTimeout
	}
	return n, err
}

// expire runs when the timer fires. A read that has waited the whole
// timeout is woken and fails; a read that started later gets the rest of
// its time; between reads (wsgate is writing upstream) the timer stops
// until the next read sets it again.
func (b *timedBody) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done || b.timedOut {
		return
	}
	if !b.reading {
		b.armed = false
		return
	}
	if left := b.since + int64(b.d) - nanotime(); left > 0 {
		b.timer.Reset(time.Duration(left))
		return
	}
	b.timedOut = true
	b.wake()
}

// expired reports whether client_body_timeout ran out (false for nil:
// no body).
func (b *timedBody) expired() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timedOut
}

// finish stops the timer; call it when the body is no longer read.
func (b *timedBody) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = true
	if b.timer != nil {
		b.timer.Stop()
	}
}

// bodyTimedOut ends a request whose client_body_timeout ran out, as nginx
// does: no response, 408 in the access log, the connection closed.
func (h *Handler) bodyTimedOut(w *responseWriter, q *request) {
	h.elog.Printf("[info] client timed out while reading client request body, client: %s, request: %q",
		q.remoteIP, q.r.Method+" "+q.r.RequestURI)
	q.status = http.StatusRequestTimeout
	w.wrote = true
	if hj, ok := w.ResponseWriter.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			w.hijacked = true
			return
		}
	}
	// no hijacking: net/http closes the connection without a response
	panic(http.ErrAbortHandler)
}
