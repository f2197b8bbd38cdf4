package tunnel

import "syscall"

// sysFD converts a descriptor from syscall.RawConn for the syscall package.
func sysFD(fd uintptr) syscall.Handle { return syscall.Handle(fd) }
