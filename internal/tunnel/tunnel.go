// Package tunnel carries an upgraded connection (WebSocket or any other
// protocol switched to with HTTP/1.1 Upgrade) between a client and a backend
// once the proxy has completed the handshake with both.
//
// A Tunnel is either a raw byte pipe or frame-aware. The frame-aware engine
// parses RFC 6455 frame headers in place in both directions and forwards every
// frame unchanged, byte for byte; on top of that it sends its own pings, limits
// message size and frame rate, counts messages, and closes with a proper Close
// frame on shutdown, protocol errors and lost peers.
//
// Two engines do the same work. The epoll engine (Linux, both connections
// *net.TCPConn) takes the two sockets out of Go's poller and serves them from
// GOMAXPROCS shared event loops: an idle tunnel is a small struct, with no
// goroutine and no buffer. The goroutine engine serves each direction with
// one copier goroutine that is the only writer to its destination; other
// parties (the supervisor in Run, Shutdown) post requests to a peer's mailbox
// and wake its copier with a read deadline in the past. In both, the proxy's
// own control frames are written only between frames, never inside a frame
// being forwarded. WSGATE_TUNNEL_ENGINE=goroutine selects the goroutine
// engine for every tunnel.
package tunnel

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Tunnel. The zero value is a raw byte pipe with no
// timeouts.
type Options struct {
	// Frames turns on the frame-aware engine: RFC 6455 §5 frame headers are
	// parsed in both directions. If false, bytes are copied as they are and
	// the Ping and limit options below are ignored.
	Frames bool

	// IdleTimeout closes both sides when no bytes have been read from either
	// side for this long (nginx proxy_read_timeout on upgraded connections).
	// Pongs answering the proxy's own pings count as traffic. Zero means no
	// idle timeout.
	IdleTimeout time.Duration

	// SendTimeout fails the tunnel when a write to either peer makes no
	// progress for this long. Writes are at most 32 KiB, so a peer that
	// accepts less than that in SendTimeout is treated as stuck. Zero means
	// writes may block until the other end of the tunnel ends it.
	SendTimeout time.Duration

	// PingInterval (Frames only): when nothing has been read from a peer for
	// this long, the proxy sends that peer a Ping of its own (unmasked to the
	// client, masked to the backend). The Pong answering it is consumed, not
	// forwarded. Zero means the proxy never pings.
	PingInterval time.Duration

	// PingTimeout (Frames only): when a pinged peer sends nothing for this
	// long after the ping, its TCP connection is closed and the other peer
	// gets Close 1001. Zero means PingInterval.
	PingTimeout time.Duration

	// MaxMessageSize (Frames only): a data message whose fragments' payloads
	// add up to more than this makes the proxy send Close 1009 to the sender
	// and 1001 to the other peer. The offending frame is not forwarded. Zero
	// means no limit.
	MaxMessageSize int64

	// MaxFrameRate (Frames only): more frames than this within one second
	// from one peer makes the proxy send Close 1008 to it and 1001 to the
	// other peer. Zero means no limit.
	MaxFrameRate int
}

// Stats describe a finished tunnel.
type Stats struct {
	BytesFromClient, BytesFromBackend int64
	// MessagesIn and MessagesOut count complete data messages from client to
	// backend and from backend to client. Zero when not frame-aware.
	MessagesIn, MessagesOut int64
	// CloseCode is the status code of the first Close frame seen or sent
	// (1005 if it had none), 0 if there was none.
	CloseCode int
	// CloseBy says who sent that first Close: "client", "backend" or
	// "proxy"; "" if there was none.
	CloseBy  string
	Duration time.Duration
	// Err says why the tunnel ended abnormally; nil for a clean close (a
	// completed closing handshake, EOF in raw mode, Shutdown).
	Err error
}

// Errors recorded in Stats.Err. Network errors are wrapped with a short
// prefix naming the side ("tunnel: backend read: ...").
var (
	ErrIdleTimeout     = errors.New("tunnel: idle timeout")
	ErrPingTimeout     = errors.New("tunnel: ping timeout")
	ErrProtocol        = errors.New("tunnel: protocol error")
	ErrMessageTooBig   = errors.New("tunnel: message too big")
	ErrFrameRate       = errors.New("tunnel: frame rate exceeded")
	ErrClientVanished  = errors.New("tunnel: client closed connection without close frame")
	ErrBackendVanished = errors.New("tunnel: backend closed connection without close frame")
)

const (
	// shutdownGrace bounds the wait for the closing handshake after the
	// proxy sent Close frames because of Shutdown, a cancelled context, an
	// idle timeout or a protocol violation.
	shutdownGrace = time.Second
	// lossGrace bounds the wait for the surviving peer's Close reply after
	// the other peer's connection ended or failed.
	lossGrace = 500 * time.Millisecond
)

// Tunnel carries one upgraded connection. It is created by New, run once by
// Run or RunAsync, and may be shut down from any goroutine.
//
// Two engines carry tunnels. On Linux, when both connections are
// *net.TCPConn, the epoll engine takes their sockets out of Go's poller and
// serves them from a few shared event loops: an idle tunnel then holds no
// goroutine and no buffer (engine_linux.go). Otherwise (TLS, net.Pipe, other
// systems, or WSGATE_TUNNEL_ENGINE=goroutine) each direction has a copier
// goroutine and Run supervises them (goEngine).
type Tunnel struct {
	opt       Options
	*goEngine // nil while the epoll engine carries the tunnel
	ep        *epollTunnel

	start time.Time // clock origin for peer timestamps

	running atomic.Bool

	shutdownOnce   sync.Once
	shutdown       atomic.Bool // Shutdown was called; code and reason are set
	shutdownCode   uint16
	shutdownReason string

	mu        sync.Mutex // guards the fields below
	closeCode int
	closeBy   string
	err       error
	tag       any
	// The channels are made only when needed (the goroutine engine's
	// supervisor, a caller of Done): an idle epoll tunnel is smaller
	// without them.
	shutdownc chan struct{} // closed by Shutdown; nil until the goroutine engine needs it
	done      chan struct{} // closed at the end; nil until Done is called
	ended     bool          // the tunnel has ended (done closed if made)
}

// goEngine is the state of a tunnel carried by copier goroutines.
type goEngine struct {
	client  peer
	backend peer
	c2b     copier // reads the client, writes the backend
	b2c     copier // reads the backend, writes the client

	closing   atomic.Bool  // the proxy has started closing; finish when both peers are done
	finishing atomic.Bool  // Run is closing the conns; copiers exit quietly
	grace     atomic.Int64 // grace period for closing, nanoseconds
	exited    atomic.Int32 // copiers that have returned
	kickc     chan struct{}
	wg        sync.WaitGroup
}

// newGoEngine sets t up to be carried by copier goroutines.
func (t *Tunnel) newGoEngine(client net.Conn, clientBuffered []byte, backend net.Conn, backendBuffered []byte) {
	t.goEngine = &goEngine{kickc: make(chan struct{}, 1)}
	t.mu.Lock()
	t.shutdownc = make(chan struct{})
	if t.shutdown.Load() {
		close(t.shutdownc)
	}
	t.mu.Unlock()
	t.client = peer{name: "client", conn: client, other: &t.backend, isClient: true}
	t.backend = peer{name: "backend", conn: backend, other: &t.client}
	t.client.pingToken.Store(rand.Uint64() | 1)
	t.backend.pingToken.Store(rand.Uint64() | 1)
	t.c2b.init(t, &t.client, &t.backend, clientBuffered)
	t.b2c.init(t, &t.backend, &t.client, backendBuffered)
}

// New prepares a tunnel between client and backend. clientBuffered and
// backendBuffered are bytes already read from that side (for example left in
// a bufio.Reader when the connection was hijacked); they are forwarded first
// and must not be modified until the tunnel has ended. The tunnel owns both
// connections from now on: Run or RunAsync closes them (the epoll engine at
// once, keeping duplicates of their sockets until the end). If neither is
// ever called the caller still owns them.
func New(client net.Conn, clientBuffered []byte, backend net.Conn, backendBuffered []byte, opt Options) *Tunnel {
	if opt.PingTimeout <= 0 {
		opt.PingTimeout = opt.PingInterval
	}
	t := &Tunnel{opt: opt, start: time.Now()}
	if useEpoll(client, backend) {
		t.ep = newEpollTunnel(t, client, clientBuffered, backend, backendBuffered)
	} else {
		t.newGoEngine(client, clientBuffered, backend, backendBuffered)
	}
	return t
}

// SetTag attaches caller data (route generation, upstream server) to the
// tunnel, for Registry match functions. Safe for concurrent use.
func (t *Tunnel) SetTag(v any) {
	t.mu.Lock()
	t.tag = v
	t.mu.Unlock()
}

// Tag returns the value last passed to SetTag, or nil.
func (t *Tunnel) Tag() any {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tag
}

// Done returns a channel that is closed when the tunnel has ended and
// released both connections.
func (t *Tunnel) Done() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done == nil {
		t.done = make(chan struct{})
		if t.ended {
			close(t.done)
		}
	}
	return t.done
}

// markEnded closes Done's channel, if it was made.
func (t *Tunnel) markEnded() {
	t.mu.Lock()
	t.ended = true
	if t.done != nil {
		close(t.done)
	}
	t.mu.Unlock()
}

// Shutdown ends the tunnel gracefully. A frame-aware tunnel sends Close(code,
// reason) to the client and Close 1001 (masked) to the backend, each at a frame
// boundary, then waits up to one second for the closing handshake before
// closing the connections; a raw tunnel just closes them. Code 0 means 1001;
// reason is cut to 123 bytes. Shutdown does not
// wait for Run to return (use Done). It is safe to call concurrently, more
// than once (the first call wins) and before Run (Run then shuts down at
// once, after the buffered bytes).
func (t *Tunnel) Shutdown(code uint16, reason string) {
	if code == 0 {
		code = CloseGoingAway
	}
	t.shutdownOnce.Do(func() {
		t.shutdownCode = code
		t.shutdownReason = reason
		t.mu.Lock()
		t.shutdown.Store(true)
		if t.shutdownc != nil {
			close(t.shutdownc)
		}
		t.mu.Unlock()
	})
	if t.ep != nil {
		t.ep.wake()
	}
}

// Run carries traffic until either side closes or fails, ctx is done, or
// Shutdown is called. It closes both connections and returns only when every
// resource the tunnel used has been released. Run or RunAsync must be called
// at most once; later calls end at once with an error in Stats.Err.
func (t *Tunnel) Run(ctx context.Context) Stats {
	if t.ep != nil {
		ch := make(chan Stats, 1)
		t.RunAsync(ctx, func(st Stats) { ch <- st })
		return <-ch
	}
	if !t.running.CompareAndSwap(false, true) {
		return Stats{Err: errRunTwice}
	}
	return t.runGoroutines(ctx)
}

// RunAsync is Run without blocking the caller: it starts the tunnel and
// returns. done is called exactly once, with the tunnel's Stats, after the
// tunnel has ended and released both connections; Done is closed before.
// With the epoll engine, done runs on an event loop goroutine: it must not
// block, and every tunnel of that loop waits for it to return. With the
// goroutine engine a goroutine waits for the tunnel and calls done.
func (t *Tunnel) RunAsync(ctx context.Context, done func(Stats)) {
	if !t.running.CompareAndSwap(false, true) {
		done(Stats{Err: errRunTwice})
		return
	}
	if t.ep != nil {
		if t.ep.start(ctx, done) {
			return
		}
		// The sockets could not be taken over; they are untouched.
		h := t.ep.h
		t.newGoEngine(h.conns[0], h.bufs[0], h.conns[1], h.bufs[1])
	}
	go func() { done(t.runGoroutines(ctx)) }()
}

var errRunTwice = errors.New("tunnel: Run called more than once")

// runGoroutines carries the tunnel with two copier goroutines and supervises
// them in the calling goroutine.
func (t *Tunnel) runGoroutines(ctx context.Context) Stats {
	began := time.Now()
	// Deadlines left over from the handshake must not cut the tunnel, and
	// silence is measured from now, not from New.
	t.client.conn.SetDeadline(time.Time{})
	t.backend.conn.SetDeadline(time.Time{})
	now := t.clock()
	t.client.lastRead.Store(now)
	t.backend.lastRead.Store(now)
	t.wg.Add(2)
	if t.opt.Frames {
		go frameCopier{&t.c2b}.run()
		go frameCopier{&t.b2c}.run()
	} else {
		go byteCopier{&t.c2b}.run()
		go byteCopier{&t.b2c}.run()
	}
	t.supervise(ctx)
	t.finishing.Store(true)
	t.client.conn.Close()
	t.backend.conn.Close()
	t.wg.Wait()
	t.c2b.releaseBuffer()
	t.b2c.releaseBuffer()
	t.markEnded()
	return t.stats(began, t.c2b.bytes, t.b2c.bytes, t.c2b.messages, t.b2c.messages)
}

// stats assembles the Stats of a finished tunnel.
func (t *Tunnel) stats(began time.Time, in, out, msgsIn, msgsOut int64) Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Stats{
		BytesFromClient:  in,
		BytesFromBackend: out,
		MessagesIn:       msgsIn,
		MessagesOut:      msgsOut,
		CloseCode:        t.closeCode,
		CloseBy:          t.closeBy,
		Duration:         time.Since(began),
		Err:              t.err,
	}
}
