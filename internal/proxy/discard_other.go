//go:build !unix

package proxy

import "errors"

// readNoWait is not available here: readAvailable reads nothing.
func (c *clientConn) readNoWait(p []byte) (int, error) {
	return 0, errors.New("no non-blocking read")
}

const canReadNoWait = false
