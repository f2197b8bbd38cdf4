//go:build unix

package proxy

import (
	"io"
	"syscall"
)

// readNoWait reads what the socket holds, without waiting: (0, nil)
// when it holds nothing.
func (c *clientConn) readNoWait(p []byte) (int, error) {
	rc := c.rawConn()
	if rc == nil {
		return 0, nil
	}
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK || rerr == syscall.EINTR:
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

const canReadNoWait = true
