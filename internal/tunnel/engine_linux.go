//go:build linux

package tunnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// epollTunnel is a tunnel carried by an event loop. After start, every field
// but loopp belongs to the loop goroutine; other goroutines only post the
// tunnel to its loop (wake). An idle tunnel is this struct and its two
// sockets: no goroutine, no buffer.
type epollTunnel struct {
	t     *Tunnel
	l     *loop
	loopp atomic.Pointer[loop] // l, for wake; nil until start

	h *handoff // until registered

	client, backend epPeer
	c2b, b2c        epDir

	ctx     context.Context
	stopCtx func() bool // nil if ctx is never done
	done    func(Stats)
	began   time.Time
	off     int64 // t.start in monotime
	at      int64 // monotime when the loop pokes the tunnel, if hidx >= 0
	hidx    int   // index in the loop's timer heap, -1 if not there

	registered   bool
	ended        bool
	abort        bool  // end now (raw tunnel shut down)
	closing      bool  // the proxy has started closing; finish when both peers are done
	linger       int64 // Tunnel.clock when closing gives up
	shutdownSeen bool
	ctxSeen      bool
}

// handoff holds what New was given until the tunnel runs.
type handoff struct {
	conns [2]net.Conn // client, backend
	bufs  [2][]byte   // bytes already read from them
}

// epPeer is one end of an epoll tunnel: its socket and its state as in peer.
type epPeer struct {
	e        *epollTunnel
	other    *epPeer
	fd       int
	gen      uint32
	events   uint32 // what the socket is polled for
	polled   bool
	eof      bool // reading ended (EOF or error)
	isClient bool

	flags     uint32 // peer flags (flagPingReq...)
	lastRead  int64
	pingSent  int64
	pingToken uint64

	closeCode   uint16
	closeReason string

	out      []byte  // bytes not yet accepted by the socket; nil if none
	outp     *[]byte // out's pooled buffer
	outSince int64   // Tunnel.clock of the last progress sending out
}

// in returns the direction reading p, wr the one writing to it.
func (p *epPeer) in() *epDir {
	if p.isClient {
		return &p.e.c2b
	}
	return &p.e.b2c
}

func (p *epPeer) wr() *epDir {
	if p.isClient {
		return &p.e.b2c
	}
	return &p.e.c2b
}

func (p *epPeer) name() string {
	if p.isClient {
		return "client"
	}
	return "backend"
}

// epDir is one direction of an epoll tunnel.
type epDir struct {
	parseState
	src, dst   *epPeer
	fromClient bool
	busy       bool   // process is running: the proxy's frames wait for its boundaries
	carry      []byte // an incomplete header or control frame, for the next read
	bytes      int64
}

func newEpollTunnel(t *Tunnel, client net.Conn, clientBuffered []byte, backend net.Conn, backendBuffered []byte) *epollTunnel {
	e := &epollTunnel{t: t, hidx: -1, h: &handoff{conns: [2]net.Conn{client, backend}, bufs: [2][]byte{clientBuffered, backendBuffered}}}
	e.client = epPeer{e: e, other: &e.backend, fd: -1, isClient: true}
	e.backend = epPeer{e: e, other: &e.client, fd: -1}
	e.client.pingToken = rand.Uint64() | 1
	e.backend.pingToken = rand.Uint64() | 1
	e.c2b = epDir{src: &e.client, dst: &e.backend, fromClient: true}
	e.b2c = epDir{src: &e.backend, dst: &e.client}
	return e
}

// start takes both sockets out of Go's poller and hands the tunnel to an
// event loop. It returns false, with the connections untouched, if that is
// not possible.
func (e *epollTunnel) start(ctx context.Context, done func(Stats)) bool {
	startEngine()
	if loopsErr != nil {
		return false
	}
	cfd, err := dupSocket(e.h.conns[0])
	if err != nil {
		return false
	}
	bfd, err := dupSocket(e.h.conns[1])
	if err != nil {
		syscall.Close(cfd)
		return false
	}
	e.h.conns[0].Close()
	e.h.conns[1].Close()
	e.h.conns = [2]net.Conn{}
	e.client.fd, e.backend.fd = cfd, bfd
	e.ctx, e.done, e.began = ctx, done, time.Now()
	e.off = int64(e.t.start.Sub(epoch))
	e.l = pickLoop()
	e.loopp.Store(e.l)
	if ctx.Done() != nil {
		e.stopCtx = context.AfterFunc(ctx, e.wake)
	}
	e.l.begin(e)
	return true
}

// wake makes the loop look at the tunnel. Safe for concurrent use.
func (e *epollTunnel) wake() {
	if l := e.loopp.Load(); l != nil {
		l.post(e)
	}
}

// clock is Tunnel.clock as of the loop's last wake-up: like nginx, the
// loop reads the time once per epoll_wait, not once per event.
func (e *epollTunnel) clock() int64 { return e.l.tick - e.off }

// poke runs on the loop for posted work: registration, Shutdown, ctx and
// timers.
func (e *epollTunnel) poke() {
	if e.ended {
		return
	}
	if !e.registered && !e.register() {
		return
	}
	t := e.t
	if !e.shutdownSeen {
		if t.shutdown.Load() {
			e.shutdownSeen = true
			if !t.opt.Frames {
				e.abort = true
			} else {
				e.closeBoth(t.shutdownCode, t.shutdownReason, shutdownGrace)
			}
		}
	}
	if !e.ctxSeen && e.ctx.Err() != nil {
		e.ctxSeen = true
		t.setErr(context.Cause(e.ctx))
		if !t.opt.Frames {
			e.abort = true
		} else {
			e.closeBoth(CloseGoingAway, "", shutdownGrace)
		}
	}
	e.keepalive(e.clock())
	e.settle()
}

// register adds both sockets to the loop and forwards the handoff bytes.
func (e *epollTunnel) register() bool {
	e.registered = true
	now := e.clock()
	e.client.lastRead, e.backend.lastRead = now, now
	for _, p := range [2]*epPeer{&e.client, &e.backend} {
		if err := e.l.add(p); err != nil {
			e.t.setErr(fmt.Errorf("tunnel: %w", err))
			e.finish()
			return false
		}
	}
	for i, d := range [2]*epDir{&e.c2b, &e.b2c} {
		if b := e.h.bufs[i]; len(b) > 0 {
			d.bytes += int64(len(b))
			e.l.now = now
			e.process(d, b)
		}
	}
	e.h = nil
	return true
}

// handle serves a readiness event of p's socket.
func (e *epollTunnel) handle(p *epPeer, ev uint32) {
	acted := false
	if len(p.out) > 0 && ev&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
		e.flush(p)
		acted = true
	}
	// A hung-up socket is read even when its partner is slow, so that its
	// end is seen: what it still holds is bounded by its receive buffer.
	if !p.eof && (ev&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0 || ev&syscall.EPOLLIN != 0 && e.readable(p)) {
		e.read(p)
		acted = true
		if ev&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && !p.eof {
			e.l.again = true // the end behind the data is still to read
		}
	}
	if !acted && ev&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
		e.l.forget(p) // nothing more to learn from it
	}
	e.settle()
}

// readable reports whether p may be read: its partner is not behind.
func (e *epollTunnel) readable(p *epPeer) bool {
	return !p.eof && (len(p.other.out) == 0 || p.in().discard)
}

// read reads p once (the loop is level-triggered: what is left, including
// a FIN behind the data, is reported again) and forwards what came.
func (e *epollTunnel) read(p *epPeer) {
	d := p.in()
	l := e.l
	k := copy(l.buf[:], d.carry)
	n, err := readFD(p.fd, l.buf[k:k+loopBufSize])
	switch {
	case err == syscall.EAGAIN:
		return
	case err != nil:
		e.srcEnded(d, os.NewSyscallError("read", err))
		return
	case n == 0:
		e.srcEnded(d, io.EOF)
		return
	}
	d.carry = nil
	if n == loopBufSize {
		l.again = true
	}
	now := e.clock()
	l.now = now
	d.bytes += int64(n)
	p.lastRead = now
	p.pingSent = 0
	e.process(d, l.buf[:k+n])
}

// write sends b to d.dst, keeping what the socket does not take. A failure
// marks dst gone and stops forwarding.
func (e *epollTunnel) write(d *epDir, b []byte) {
	if len(b) == 0 || d.discard {
		return
	}
	p := d.dst
	if len(p.out) > 0 {
		p.out = append(p.out, b...)
		return
	}
	n, err := writeFD(p.fd, b)
	if err != nil && err != syscall.EAGAIN {
		e.dstFailed(d, os.NewSyscallError("write", err))
		return
	}
	if n < len(b) {
		p.outp = outPool.Get().(*[]byte)
		p.out = append((*p.outp)[:0], b[n:]...)
		p.outSince = e.clock()
	}
}

// flush sends what p's socket did not take before.
func (e *epollTunnel) flush(p *epPeer) {
	n, err := writeFD(p.fd, p.out)
	if err != nil && err != syscall.EAGAIN {
		e.dstFailed(p.wr(), os.NewSyscallError("write", err))
		return
	}
	if n > 0 {
		p.out = p.out[n:]
		p.outSince = e.clock()
	}
	if len(p.out) == 0 {
		p.dropOut()
	}
}

// dropOut returns p's unsent-bytes buffer.
func (p *epPeer) dropOut() {
	if p.outp != nil {
		*p.outp = (*p.outp)[:0]
		outPool.Put(p.outp)
	}
	p.out, p.outp = nil, nil
}

// process forwards the whole frames and frame parts in b, parsing headers in
// place, and keeps an incomplete header (or incomplete control frame) in
// d.carry. Frames go out unchanged; only a Pong answering the proxy's own
// Ping is dropped. It mirrors frameCopier.process.
func (e *epollTunnel) process(d *epDir, b []byte) {
	if !e.t.opt.Frames {
		e.write(d, b)
		return
	}
	d.busy = true
	if p := scanFrames(d, b); p < len(b) {
		d.carry = append(make([]byte, 0, maxControlFrame), b[p:]...)
	}
	d.busy = false
}

// epDir is scanFrames' frameDir for the epoll engine.
func (d *epDir) state() *parseState { return &d.parseState }
func (d *epDir) boundary() uint32   { return d.dst.flags & boundaryMask }
func (d *epDir) service(uint32)     { d.src.e.service(d) }
func (d *epDir) forward(b []byte)   { d.src.e.write(d, b) }
func (d *epDir) check(h header) (uint16, error) {
	return d.parseState.check(&h, d.fromClient, &d.src.e.t.opt, d.src.e.l.now)
}
func (d *epDir) violate(code uint16, err error) { d.src.e.violate(d, code, err) }
func (d *epDir) closeSeen(code int)             { d.src.e.t.noteClose(code, d.src.name()) }
func (d *epDir) closeDone(forwarded bool) {
	if forwarded {
		d.dst.flags |= flagClosedOut
	}
	d.src.flags |= flagClosedIn
}
func (d *epDir) pingToken() uint64 { return d.src.pingToken }

// service acts on d.dst's mailbox. It must be called only at a frame
// boundary of d's output.
func (e *epollTunnel) service(d *epDir) {
	dst := d.dst
	f := dst.flags
	if f&flagCloseReq != 0 {
		dst.flags &^= flagCloseReq
		if f&(flagClosedOut|flagGone) == 0 && !d.discard {
			pl := e.l.payload[:]
			binary.BigEndian.PutUint16(pl, dst.closeCode)
			n := copy(pl[2:], truncateUTF8(dst.closeReason, maxControlPayload-2))
			e.writeControl(d, opClose, pl[:2+n])
			dst.flags |= flagClosedOut | flagProxyClosed
			e.t.noteClose(int(dst.closeCode), "proxy")
		}
		d.discard = true
	}
	if f&flagPingReq != 0 {
		dst.flags &^= flagPingReq
		if !d.discard && f&(flagClosedOut|flagGone) == 0 {
			dst.pingToken += 2
			dst.pingSent = max(e.clock(), 1)
			binary.BigEndian.PutUint64(e.l.payload[:], dst.pingToken)
			e.writeControl(d, opPing, e.l.payload[:8])
		}
	}
	if f&(flagGone|flagProxyClosed) != 0 {
		d.discard = true
	}
}

// writeControl writes one of the proxy's own control frames to d.dst,
// masked with a random key when it is the backend.
func (e *epollTunnel) writeControl(d *epDir, op byte, payload []byte) {
	e.write(d, encodeControl(&e.l.ctl, op, payload, !d.dst.isClient, rand.Uint32()))
}

// nudge makes p's writer act on p's mailbox now if it is at a frame
// boundary; otherwise it does at the next one.
func (e *epollTunnel) nudge(p *epPeer) {
	if d := p.wr(); !d.busy && !d.midFrame() {
		e.service(d)
	}
}

// violate closes the tunnel over a frame src must not send: Close(code) to
// src, Close 1001 to dst at once (the output is at a frame boundary), and
// nothing more forwarded.
func (e *epollTunnel) violate(d *epDir, code uint16, err error) {
	e.t.setErr(err)
	e.t.noteClose(int(code), "proxy")
	e.requestClose(d.src, code, "")
	e.requestClose(d.dst, CloseGoingAway, "")
	e.beginClosing(shutdownGrace)
	e.service(d)
}

// srcEnded handles EOF or a read error from d.src: d.dst is told (Close 1011
// if the backend ended, 1001 if the client did) and the tunnel starts
// closing.
func (e *epollTunnel) srcEnded(d *epDir, err error) {
	d.src.eof = true
	code := uint16(CloseGoingAway)
	if !d.fromClient {
		code = CloseInternalError
	}
	switch {
	case e.closing:
	case errors.Is(err, io.EOF):
		if e.t.opt.Frames && d.src.flags&flagClosedIn == 0 {
			if d.fromClient {
				e.t.setErr(ErrClientVanished)
			} else {
				e.t.setErr(ErrBackendVanished)
			}
		}
	default:
		e.t.setErr(fmt.Errorf("tunnel: %s read: %w", d.src.name(), err))
	}
	e.lost(d.src, code, lossGrace)
}

// dstFailed handles a failed write to d.dst: d.src is told (Close 1011 if
// the backend failed, 1001 if the client did) and d keeps reading src only
// to see its Close reply.
func (e *epollTunnel) dstFailed(d *epDir, err error) {
	d.discard = true
	d.dst.dropOut()
	if !e.closing {
		e.t.setErr(fmt.Errorf("tunnel: %s write: %w", d.dst.name(), err))
	}
	code := uint16(CloseGoingAway)
	if !d.dst.isClient {
		code = CloseInternalError
	}
	e.lost(d.dst, code, lossGrace)
}

// lost records that p's connection ended or must be dropped. Its partner is
// sent Close(code) unless it has already been sent one.
func (e *epollTunnel) lost(p *epPeer, code uint16, grace time.Duration) {
	old := p.flags
	if old&flagGone != 0 {
		return
	}
	p.flags |= flagGone
	if !e.t.opt.Frames {
		return
	}
	if p.other.flags&flagClosedOut == 0 && old&flagClosedIn == 0 {
		e.requestClose(p.other, code, "")
	}
	e.beginClosing(grace)
}

// requestClose posts a proxy Close frame to p's mailbox. The first request
// for a peer wins.
func (e *epollTunnel) requestClose(p *epPeer, code uint16, reason string) {
	if p.closeCode == 0 {
		p.closeCode = code
		p.closeReason = reason
	}
	p.flags |= flagCloseReq
	e.nudge(p)
}

// closeBoth sends Close(code, reason) to the client and Close 1001 to the
// backend, and starts closing.
func (e *epollTunnel) closeBoth(code uint16, reason string, grace time.Duration) {
	e.t.noteClose(int(code), "proxy")
	e.requestClose(&e.client, code, reason)
	e.requestClose(&e.backend, CloseGoingAway, "")
	e.beginClosing(grace)
}

// beginClosing switches the tunnel to closing: it ends once both peers have
// sent Close or gone, or after grace.
func (e *epollTunnel) beginClosing(grace time.Duration) {
	at := e.clock() + int64(grace)
	if !e.closing || at < e.linger {
		e.linger = at
	}
	e.closing = true
}

// keepalive enforces IdleTimeout, PingInterval, PingTimeout and SendTimeout.
func (e *epollTunnel) keepalive(now int64) {
	opt := &e.t.opt
	if it := int64(opt.IdleTimeout); it > 0 && !e.closing {
		if now-max(e.client.lastRead, e.backend.lastRead) >= it {
			e.t.setErr(ErrIdleTimeout)
			if !opt.Frames {
				e.abort = true
				return
			}
			e.closeBoth(CloseGoingAway, "", shutdownGrace)
		}
	}
	if pt := int64(opt.PingTimeout); opt.Frames && opt.PingInterval > 0 && !e.closing {
		for _, p := range [2]*epPeer{&e.client, &e.backend} {
			if p.flags&(flagGone|flagClosedIn|flagClosedOut) != 0 {
				continue
			}
			if p.pingSent != 0 {
				if now-p.pingSent >= pt {
					e.t.setErr(ErrPingTimeout)
					e.lost(p, CloseGoingAway, shutdownGrace)
					syscall.Shutdown(p.fd, syscall.SHUT_RDWR)
					return
				}
				continue
			}
			if now-p.lastRead >= int64(opt.PingInterval) && p.flags&flagPingReq == 0 {
				p.flags |= flagPingReq
				e.nudge(p)
			}
		}
	}
	if st := int64(opt.SendTimeout); st > 0 {
		for _, p := range [2]*epPeer{&e.client, &e.backend} {
			if len(p.out) > 0 && now-p.outSince >= st {
				e.dstFailed(p.wr(), os.ErrDeadlineExceeded)
			}
		}
	}
}

// next returns the Tunnel.clock at which keepalive or closing must look
// again, math.MaxInt64 if never.
func (e *epollTunnel) next(now int64) int64 {
	opt := &e.t.opt
	next := int64(math.MaxInt64)
	if e.closing {
		next = e.linger
	}
	if it := int64(opt.IdleTimeout); it > 0 && !e.closing {
		next = min(next, max(e.client.lastRead, e.backend.lastRead)+it)
	}
	if pi := int64(opt.PingInterval); opt.Frames && pi > 0 && !e.closing {
		for _, p := range [2]*epPeer{&e.client, &e.backend} {
			switch {
			case p.flags&(flagGone|flagClosedIn|flagClosedOut) != 0:
			case p.pingSent != 0:
				next = min(next, p.pingSent+int64(opt.PingTimeout))
			case p.flags&flagPingReq != 0:
				next = min(next, now+pi) // waiting for a frame boundary
			default:
				next = min(next, p.lastRead+pi)
			}
		}
	}
	if st := int64(opt.SendTimeout); st > 0 {
		for _, p := range [2]*epPeer{&e.client, &e.backend} {
			if len(p.out) > 0 {
				next = min(next, p.outSince+st)
			}
		}
	}
	return next
}

// shouldFinish reports whether the tunnel has nothing left to carry.
func (e *epollTunnel) shouldFinish() bool {
	cf, bf := e.client.flags, e.backend.flags
	if e.abort {
		return true
	}
	if !e.t.opt.Frames {
		return e.client.eof || e.backend.eof || (cf|bf)&flagGone != 0
	}
	if e.client.eof && e.backend.eof {
		return true
	}
	// What has been forwarded (a Close reply) is sent before the end.
	if len(e.client.out) > 0 || len(e.backend.out) > 0 {
		return false
	}
	if e.closing {
		return cf&(flagClosedIn|flagGone) != 0 && bf&(flagClosedIn|flagGone) != 0
	}
	return cf&flagClosedIn != 0 && bf&flagClosedIn != 0
}

// settle ends the tunnel if it is done, and otherwise sets what its sockets
// are polled for and when its timer fires.
func (e *epollTunnel) settle() {
	if e.ended {
		return
	}
	now := e.clock()
	if e.shouldFinish() || e.closing && now >= e.linger {
		e.finish()
		return
	}
	for _, p := range [2]*epPeer{&e.client, &e.backend} {
		var ev uint32
		if e.readable(p) {
			ev = syscall.EPOLLIN | syscall.EPOLLRDHUP
		}
		if len(p.out) > 0 {
			ev |= syscall.EPOLLOUT
		}
		e.l.watch(p, ev)
	}
	next := e.next(now)
	if next == math.MaxInt64 {
		return
	}
	if at := next + e.off; e.hidx < 0 || at < e.at {
		e.l.schedule(e, at) // else the loop looks earlier, and again then
	}
}

// finish closes both sockets, releases everything and reports the Stats.
func (e *epollTunnel) finish() {
	e.ended = true
	e.l.unschedule(e)
	if e.stopCtx != nil {
		e.stopCtx()
	}
	for _, p := range [2]*epPeer{&e.client, &e.backend} {
		if p.fd >= 0 {
			// The duplicate is the socket's last descriptor: closing it
			// takes it out of the epoll set, no EPOLL_CTL_DEL needed.
			e.l.release(p)
			closeFD(p.fd)
			p.fd = -1
		}
		p.dropOut()
	}
	e.c2b.carry, e.b2c.carry = nil, nil
	t := e.t
	st := t.stats(e.began, e.c2b.bytes, e.b2c.bytes, e.c2b.messages, e.b2c.messages)
	t.markEnded()
	done := e.done
	e.done, e.ctx = nil, nil
	e.l.end()
	done(st)
}
