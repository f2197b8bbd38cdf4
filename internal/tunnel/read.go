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

// read reads from the source into c.buf[c.end:] and returns the number of
// bytes read. When the source is a socket (syscall.Conn) it waits for read
// readiness holding no buffer, so an idle direction costs no buffer memory;
// otherwise it holds a pooled buffer while blocked.
func (c *copier) read() (int, error) {
	if c.rc == nil {
		c.takeBuffer()
		return c.src.conn.Read(c.buf[c.end:])
	}
	c.rn, c.rerr = 0, nil
	if err := c.rc.Read(c.readFn); err != nil {
		return 0, err
	}
	return c.rn, c.rerr
}

// readReady is the syscall.RawConn.Read callback: one non-blocking read into
// a pooled buffer. On EAGAIN the buffer goes back to the pool (unless it holds
// a partial header) and the runtime poller parks the goroutine.
func (c *copier) readReady(fd uintptr) bool {
	c.takeBuffer()
	for {
		n, err := syscall.Read(int(fd), c.buf[c.end:])
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
		case n == 0:
			c.rerr = io.EOF
		default:
			c.rn = n
		}
		return true
	}
}
