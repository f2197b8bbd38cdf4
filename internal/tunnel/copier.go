package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"syscall"
	"time"
	"unicode/utf8"
)

// copier carries one direction: it reads src and is the only writer to dst.
// Its fields belong to its goroutine until Run has waited for it.
type copier struct {
	t          *Tunnel
	src, dst   *peer
	fromClient bool

	rc     syscall.RawConn // src as a raw socket; nil if src is not a syscall.Conn
	readFn func(fd uintptr) bool
	rerr   error // why readReady left RawConn.Read

	bufp *[bufSize]byte // pooled buffer, nil while idle
	buf  []byte         // bufp[:], or the handoff bytes before the first read
	end  int            // buf[:end] holds bytes read and not yet consumed

	parseState
	now int64 // Tunnel.clock at the last read
	wdl int64 // Tunnel.clock when the write deadline was last set

	bytes int64 // read from src

	ctl     [maxControlFrame]byte // the proxy's control frames are built here
	payload [maxControlPayload]byte
}

func (c *copier) init(t *Tunnel, src, dst *peer, buffered []byte) {
	c.t, c.src, c.dst = t, src, dst
	c.fromClient = src.isClient
	c.wdl = math.MinInt64 / 2
	if len(buffered) > 0 {
		c.buf = buffered
		c.end = len(buffered)
	}
	if sc, ok := src.conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.readFn = c.readReady
		}
	}
}

// exit reports the copier's end to the supervisor.
func (c *copier) exit() {
	c.t.exited.Add(1)
	c.t.kick()
	c.t.wg.Done()
}

// account records n bytes just read from src as a sign of life.
func (c *copier) account(n int) {
	c.now = c.t.clock()
	c.bytes += int64(n)
	c.src.lastRead.Store(c.now)
	if c.src.pingSent.Load() != 0 {
		c.src.pingSent.Store(0)
	}
}

// consume forwards n bytes just read into c.buf[c.end:].
func (c *copier) consume(n int) {
	c.account(n)
	if c.t.opt.Frames {
		c.end += n
		frameCopier{c}.process()
		return
	}
	c.write(c.buf[:n])
}

// write writes b to dst. A failure marks dst gone and stops forwarding.
func (c *copier) write(b []byte) {
	if len(b) == 0 || c.discard {
		return
	}
	if st := int64(c.t.opt.SendTimeout); st > 0 {
		// Refresh the deadline only when a quarter of it has passed: a
		// write may fail after 3/4 to 1 SendTimeout without progress.
		if now := c.t.clock(); now-c.wdl > st/4 {
			c.dst.conn.SetWriteDeadline(time.Now().Add(time.Duration(st)))
			c.wdl = now
		}
	}
	if _, err := c.dst.conn.Write(b); err != nil {
		c.dstFailed(err)
	}
}

// dstFailed handles a failed write to dst: src is told (Close 1011 if the
// backend failed, 1001 if the client did) and the copier keeps reading src
// only to see its Close reply.
func (c *copier) dstFailed(err error) {
	c.discard = true
	if c.t.finishing.Load() {
		return
	}
	if !c.t.closing.Load() {
		c.t.setErr(fmt.Errorf("tunnel: %s write: %w", c.dst.name, err))
	}
	code := uint16(CloseGoingAway)
	if !c.dst.isClient {
		code = CloseInternalError
	}
	c.t.lost(c.dst, code, lossGrace)
}

// srcEnded handles EOF or a read error from src: dst is told (Close 1011 if
// the backend ended, 1001 if the client did) and the tunnel starts closing.
func (c *copier) srcEnded(err error) {
	if c.t.finishing.Load() {
		return
	}
	code := uint16(CloseGoingAway)
	if !c.fromClient {
		code = CloseInternalError
	}
	switch {
	case c.t.closing.Load():
	case errors.Is(err, io.EOF):
		if c.t.opt.Frames && c.src.flags.Load()&flagClosedIn == 0 {
			if c.fromClient {
				c.t.setErr(ErrClientVanished)
			} else {
				c.t.setErr(ErrBackendVanished)
			}
		}
	default:
		c.t.setErr(fmt.Errorf("tunnel: %s read: %w", c.src.name, err))
	}
	c.t.lost(c.src, code, lossGrace)
	if c.t.opt.Frames && !c.midFrame() {
		c.service(c.dst.flags.Load())
	}
}

// readTimedOut handles a read that returned err. It reports whether err was
// a wake-up (a read deadline in the past set by Tunnel.wake), after which the
// copier reads on.
func (c *copier) readTimedOut(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.t.finishing.Load() {
		return false
	}
	// Clear the deadline before looking at the mailbox, so that a request
	// posted after the look wakes the next read again.
	c.src.conn.SetReadDeadline(time.Time{})
	return true
}

// service acts on dst's mailbox. It must be called only at a frame boundary
// of dst's output.
func (c *copier) service(f uint32) {
	if f&flagCloseReq != 0 {
		c.dst.flags.And(^uint32(flagCloseReq))
		if f&(flagClosedOut|flagGone) == 0 && !c.discard {
			c.dst.mu.Lock()
			code, reason := c.dst.closeCode, c.dst.closeReason
			c.dst.mu.Unlock()
			binary.BigEndian.PutUint16(c.payload[:], code)
			n := copy(c.payload[2:], truncateUTF8(reason, maxControlPayload-2))
			c.writeControl(opClose, c.payload[:2+n])
			c.dst.flags.Or(flagClosedOut | flagProxyClosed)
			c.t.noteClose(int(code), "proxy")
		}
		c.discard = true
	}
	if f&flagPingReq != 0 {
		c.dst.flags.And(^uint32(flagPingReq))
		if !c.discard && f&(flagClosedOut|flagGone) == 0 {
			token := c.dst.pingToken.Add(2)
			c.dst.pingSent.Store(max(c.t.clock(), 1))
			binary.BigEndian.PutUint64(c.payload[:], token)
			c.writeControl(opPing, c.payload[:8])
			c.t.kick()
		}
	}
	if f&(flagGone|flagProxyClosed) != 0 {
		c.discard = true
	}
}

// writeControl writes one of the proxy's own control frames to dst, masked
// with a random key when dst is the backend.
func (c *copier) writeControl(op byte, payload []byte) {
	c.write(encodeControl(&c.ctl, op, payload, !c.dst.isClient, rand.Uint32()))
}

// byteCopier is the goroutine of a raw tunnel direction.
type byteCopier struct{ *copier }

func (c byteCopier) run() {
	defer c.exit()
	if c.end > 0 {
		c.account(c.end)
		c.write(c.buf[:c.end])
		c.end = 0
		c.buf = nil
	}
	for !c.discard {
		n, err := c.read()
		if n > 0 {
			c.consume(n)
		}
		if err != nil {
			if c.readTimedOut(err) {
				continue
			}
			c.srcEnded(err)
			return
		}
	}
}

// frameCopier is the goroutine of a frame-aware tunnel direction.
type frameCopier struct{ *copier }

func (c frameCopier) run() {
	defer c.exit()
	if c.end > 0 {
		c.account(0)
		c.bytes += int64(c.end)
		c.process()
	}
	for {
		if !c.midFrame() {
			if f := c.dst.flags.Load(); f&boundaryMask != 0 {
				c.service(f)
			}
		}
		n, err := c.read()
		if n > 0 {
			c.consume(n)
		}
		if err != nil {
			if c.readTimedOut(err) {
				continue
			}
			c.srcEnded(err)
			return
		}
	}
}

// process forwards the whole frames and frame parts in c.buf[:c.end], parsing
// headers in place, and keeps an incomplete header (or incomplete control
// frame) for the next read. Frames go out unchanged; only a Pong answering the
// proxy's own Ping is dropped.
func (c frameCopier) process() {
	b := c.buf[:c.end]
	c.keep(b[scanFrames(c, b):])
}

// frameCopier is scanFrames' frameDir for the goroutine engine.
func (c frameCopier) state() *parseState { return &c.parseState }
func (c frameCopier) boundary() uint32 {
	if f := c.dst.flags.Load(); f&boundaryMask != 0 {
		return f
	}
	return 0
}
func (c frameCopier) forward(b []byte)   { c.write(b) }
func (c frameCopier) closeSeen(code int) { c.t.noteClose(code, c.src.name) }
func (c frameCopier) closeDone(forwarded bool) {
	if forwarded {
		c.dst.flags.Or(flagClosedOut)
	}
	c.src.flags.Or(flagClosedIn)
	c.t.kick()
}
func (c frameCopier) pingToken() uint64 { return c.src.pingToken.Load() }

// keep makes rest (an incomplete header or control frame, at most
// maxControlFrame bytes) the start of the buffer for the next read.
func (c *copier) keep(rest []byte) {
	c.end = len(rest)
	if len(rest) == 0 {
		if c.bufp == nil {
			c.buf = nil // done with the handoff bytes
		}
		return
	}
	if c.bufp == nil {
		c.takeBuffer()
	}
	copy(c.buf, rest)
}

// Protocol violations the proxy can see (RFC 6455 §5).
var (
	errUnmasked         = fmt.Errorf("%w: unmasked client frame", ErrProtocol)
	errMasked           = fmt.Errorf("%w: masked backend frame", ErrProtocol)
	errLength           = fmt.Errorf("%w: payload length has the top bit set", ErrProtocol)
	errReservedOp       = fmt.Errorf("%w: reserved opcode", ErrProtocol)
	errControlFragment  = fmt.Errorf("%w: fragmented control frame", ErrProtocol)
	errControlLength    = fmt.Errorf("%w: control frame payload over 125 bytes", ErrProtocol)
	errCloseLength      = fmt.Errorf("%w: close frame with a 1-byte payload", ErrProtocol)
	errStrayContinue    = fmt.Errorf("%w: continuation frame without a message", ErrProtocol)
	errInterleavedStart = fmt.Errorf("%w: new data frame inside a fragmented message", ErrProtocol)
)

// check validates a frame header from src and updates the message state. It
// returns the Close code to send src (0 if the frame may pass) and why.
func (c frameCopier) check(h header) (uint16, error) {
	return c.parseState.check(&h, c.fromClient, &c.t.opt, c.now)
}

// violate closes the tunnel over a frame src must not send: Close(code) to
// src, Close 1001 to dst at once (the output is at a frame boundary), and
// nothing more forwarded.
func (c frameCopier) violate(code uint16, err error) {
	c.t.setErr(err)
	c.t.noteClose(int(code), "proxy")
	c.t.requestClose(c.src, code, "")
	c.t.requestClose(c.dst, CloseGoingAway, "")
	c.t.beginClosing(shutdownGrace)
	c.service(c.dst.flags.Load())
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
