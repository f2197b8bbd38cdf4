package tunnel

import (
	"io"
	"os"
	"sync"
	"syscall"
)

// bufSize is the forwarding buffer of one direction while it has data.
const bufSize = 32 << 10

// bufPool holds forwarding buffers. An idle direction holds none: it waits
// for read readiness first and takes a buffer only when data has arrived.
var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

// takeBuffer makes c.buf a pooled buffer if it is not one already.
func (c *copier) takeBuffer() {
	if c.bufp == nil {
		c.bufp = bufPool.Get().(*[bufSize]byte)
		c.buf = c.bufp[:]
	}
}

// releaseBuffer returns the pooled buffer, if any. c.end must be 0.
func (c *copier) releaseBuffer() {
	if c.bufp != nil {
		bufPool.Put(c.bufp)
		c.bufp = nil
	}
	c.buf = nil
}

// read waits for data from the source and hands it to consume. When the
// source is a socket (syscall.Conn) the whole read-and-forward loop runs
// inside syscall.RawConn.Read, and an idle direction waits for readiness
// holding no buffer.
//
// It always reads until EAGAIN before waiting. Skipping that read after a
// short read (as nginx does with EPOLLRDHUP) is not safe here: a FIN that
// arrived with the data shares its readiness event, the short read returns
// only the data, and the EOF would go unseen (TestDataThenFIN).
//
// read returns when the source fails (EOF or error), a read deadline passes
// (Tunnel.wake), or a raw copier stops. Otherwise (not a syscall.Conn) it
// reads once into a held pooled buffer and returns the count for the caller
// to consume.
func (c *copier) read() (int, error) {
	if c.rc == nil {
		c.takeBuffer()
		return c.src.conn.Read(c.buf[c.end:])
	}
	c.rerr = nil
	if err := c.rc.Read(c.readFn); err != nil {
		return 0, err
	}
	return 0, c.rerr
}

// readReady is the syscall.RawConn.Read callback. It returns false to wait
// for readiness, true to leave RawConn.Read.
func (c *copier) readReady(fd uintptr) bool {
	for {
		c.takeBuffer()
		n, err := syscall.Read(sysFD(fd), c.buf[c.end:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if c.end == 0 {
				c.releaseBuffer()
			}
			return false
		case err != nil:
			c.rerr = os.NewSyscallError("read", err)
			return true
		case n == 0:
			c.rerr = io.EOF
			return true
		}
		c.consume(n)
		if c.discard && !c.t.opt.Frames {
			return true // a raw copier whose destination failed
		}
	}
}
