package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

var errBadResponse = errors.New("malformed HTTP response")

// httpConn is one keep-alive HTTP/1.1 client connection driven by a single
// goroutine. It speaks only what the benchmark needs: GET, a status line,
// Content-Length or chunked bodies, and Connection: close.
type httpConn struct {
	nc  net.Conn
	br  *bufio.Reader
	req []byte
}

// get sends one GET and reads the whole response. It reports whether the
// connection can carry another request.
func (c *httpConn) get() (reusable bool, err error) {
	if _, err := c.nc.Write(c.req); err != nil {
		return false, fmt.Errorf("http: write: %w", err)
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return false, fmt.Errorf("http: read status: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return false, fmt.Errorf("%w: status %q", errBadResponse, line)
	}
	if line[9] != '2' {
		return false, fmt.Errorf("http: status %q", bytes.TrimSpace(line))
	}
	keepAlive := line[7] == '1'
	length, chunked := int64(-1), false
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return false, fmt.Errorf("http: read header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return false, fmt.Errorf("%w: header %q", errBadResponse, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || length < 0 {
				return false, fmt.Errorf("%w: Content-Length %q", errBadResponse, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keepAlive = false
			}
		}
	}
	switch {
	case chunked:
		err = c.discardChunked()
	case length >= 0:
		_, err = c.br.Discard(int(length))
	default:
		_, err = io.Copy(io.Discard, c.br)
		keepAlive = false
	}
	if err != nil {
		return false, fmt.Errorf("http: read body: %w", err)
	}
	return keepAlive, nil
}

// discardChunked reads a chunked body and its trailer.
func (c *httpConn) discardChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		sz, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(sz), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errBadResponse, line)
		}
		if n == 0 {
			for {
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimSpace(line)) == 0 {
					return nil
				}
			}
		}
		if _, err := c.br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}

// runHTTP measures plain GETs: o.conns keep-alive connections each send a
// request and read the response in a loop, reconnecting when the server
// closes.
func runHTTP(o *loadOptions) (*result, error) {
	r := o.newResult()
	t := &tally{}
	req := []byte("GET " + o.url.RequestURI() + " HTTP/1.1\r\nHost: " + o.url.Host + "\r\nUser-Agent: wsbench\r\n\r\n")
	addr := o.url.Host
	if o.url.Port() == "" {
		addr = net.JoinHostPort(o.url.Hostname(), "80")
	}
	conns := make([]*httpConn, o.conns)
	deadline := time.Now().Add(o.warmup + o.duration + o.timeout)
	o.drive(o.conns, t, r, func(w int) (bool, error) {
		c := conns[w]
		if c == nil {
			ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", addr)
			cancel()
			if err != nil {
				return true, fmt.Errorf("dial: %w", err)
			}
			nc.SetDeadline(deadline)
			c = &httpConn{nc: nc, br: bufio.NewReaderSize(nc, 4096), req: req}
			conns[w] = c
		}
		reusable, err := c.get()
		if !reusable {
			c.nc.Close()
			conns[w] = nil
		}
		return true, err
	})
	for _, c := range conns {
		if c != nil {
			c.nc.Close()
		}
	}
	return r, nil
}
