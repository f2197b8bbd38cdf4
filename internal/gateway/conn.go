package gateway

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"

	"github.com/wsgate/wsgate/internal/proxy"
)

// loggingListener wraps accepted connections so that the error responses
// net/http writes by itself (400 for a malformed request line or header,
// 431 for an oversized header) are logged: nginx logs every one, and an
// operator needs to see them.
type loggingListener struct {
	net.Listener
	elog *log.Logger
	tidy *tidier // counts accepts; nil if off
}

func (l *loggingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.tidy != nil {
		l.tidy.accepts.Add(1)
	}
	return &watchedConn{Conn: c, elog: l.elog}, nil
}

// watchedConn recognizes the error answers net/http writes on its own
// when it cannot read a request: a 4xx in one Write with no Date header
// (every response a handler writes gets one).
type watchedConn struct {
	net.Conn
	elog *log.Logger
}

var (
	statusPrefix = []byte("HTTP/1.1 4")
	dateHeader   = []byte("\r\nDate: ")
	headEnd      = []byte("\r\n\r\n")
)

// ownError reports whether p is net/http's own error answer.
func ownError(p []byte) bool {
	if !bytes.HasPrefix(p, statusPrefix) {
		return false
	}
	head := p
	if i := bytes.Index(p, headEnd); i >= 0 {
		head = p[:i+2]
	}
	return !bytes.Contains(head, dateHeader)
}

// Write logs net/http's own error answers and replaces them with nginx's
// small HTML page (net/http writes each one in a single Write, then
// closes the connection).
func (c *watchedConn) Write(p []byte) (int, error) {
	if !ownError(p) {
		return c.Conn.Write(p)
	}
	line := p
	if i := bytes.IndexByte(line, '\r'); i >= 0 {
		line = line[:i]
	}
	c.elog.Printf("[info] client %s sent an invalid request, answered %q", c.RemoteAddr(), line[9:])
	code, _ := strconv.Atoi(string(line[9:min(len(line), 12)]))
	title := ""
	if code == http.StatusRequestHeaderFieldsTooLarge {
		// nginx answers an oversized header with this 400
		code, title = http.StatusBadRequest, "Request Header Or Cookie Too Large"
	}
	if code < 400 || code > 499 {
		return c.Conn.Write(p)
	}
	body := proxy.ErrorBody(code, title)
	resp := fmt.Sprintf("HTTP/1.1 %d %s\r\nServer: wsgate\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(body), body)
	if _, err := io.WriteString(c.Conn, resp); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Unwrap returns the underlying connection (the tunnel engine works on
// the raw TCP socket).
func (c *watchedConn) Unwrap() net.Conn { return c.Conn }
