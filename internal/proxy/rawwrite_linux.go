//go:build linux

package proxy

import (
	"net"
	"os"
	"syscall"
	"unsafe"
)

// writeAll writes b to c, a TCP connection in Go's poller, with raw
// sendto calls made from its RawConn.Write callback: the poller still
// waits for room and honours c's write deadline, but the calls do not go
// through the scheduler's syscall state. A loopback write does the peer's
// TCP receive work before it returns (tens of µs); entered as a system
// call, that is long enough for Go's sysmon to take the process's only P
// away (GOMAXPROCS=1) and wake another thread to run it, a thread switch
// per handshake write. Other connections (TLS) are written as usual.
func writeAll(c net.Conn, b []byte) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		_, err := c.Write(b)
		return err
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
				syscall.MSG_NOSIGNAL, 0, 0)
			switch errno {
			case 0:
				b = b[n:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until the socket has room
			default:
				werr = &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", errno)}
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}
