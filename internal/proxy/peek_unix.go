//go:build unix

package proxy

import (
	"syscall"
	"unsafe"
)

// peekQuiet reports whether the idle socket fd is open and has nothing to
// read, with a non-blocking MSG_PEEK of one byte: EAGAIN means open and
// quiet; 0 bytes means the server closed it; data means it is out of step.
func peekQuiet(fd uintptr) bool {
	var b [1]byte
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK
}
