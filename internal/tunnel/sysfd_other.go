//go:build !windows

package tunnel

// sysFD converts a descriptor from syscall.RawConn for the syscall package.
func sysFD(fd uintptr) int { return int(fd) }
