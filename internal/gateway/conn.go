package gateway

import (
	"bytes"
	"log"
	"net"
	"sync/atomic"
)

// loggingListener wraps accepted connections so that the error responses
// net/http writes by itself (400 for a malformed request line or header,
// 431 for an oversized header) are logged: nginx logs every one, and an
// operator needs to see them.
type loggingListener struct {
	net.Listener
	elog *log.Logger
}

func (l *loggingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c, elog: l.elog}, nil
}

// watchedConn notes whether a handler is running on the connection; a
// response written while none is, is net/http's own error answer.
type watchedConn struct {
	net.Conn
	elog   *log.Logger
	active atomic.Bool
}

var statusPrefix = []byte("HTTP/1.1 4")

func (c *watchedConn) Write(p []byte) (int, error) {
	if !c.active.Load() && bytes.HasPrefix(p, statusPrefix) {
		line := p
		if i := bytes.IndexByte(line, '\r'); i >= 0 {
			line = line[:i]
		}
		c.elog.Printf("[info] client %s sent an invalid request, answered %q", c.RemoteAddr(), line[9:])
	}
	return c.Conn.Write(p)
}

// Unwrap returns the underlying connection (the tunnel engine works on
// the raw TCP socket).
func (c *watchedConn) Unwrap() net.Conn { return c.Conn }
