//go:build !linux

package proxy

import "net"

// writeAll writes b to c.
func writeAll(c net.Conn, b []byte) error {
	_, err := c.Write(b)
	return err
}
