package main

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"time"
)

// websocketGUID is the constant of RFC 6455 §1.3 mixed into the accept key.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

var (
	errHandshake = errors.New("websocket handshake failed")
	errMasked    = errors.New("server sent a masked frame")
	errClosed    = errors.New("peer sent close")
)

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(websocketGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// wsConn is the client end of one WebSocket connection. It is not safe for
// concurrent use: one goroutine owns it from dial to close. Every frame it
// writes is masked with a fresh key from a per-connection ChaCha8 stream,
// as RFC 6455 §5.3 requires of clients. Buffers grow to the largest message
// seen and are reused; the steady-state echo path does not allocate.
type wsConn struct {
	nc   net.Conn
	br   *bufio.Reader
	wbuf []byte    // header room followed by the masked payload
	rbuf []byte    // payload of the last message read
	ctl  [125]byte // payload of the last control frame read
	rng  *rand.ChaCha8
}

// dialWS opens a TCP connection to u (ws:// only) and performs the opening
// handshake. ctx bounds the dial and the handshake.
func dialWS(ctx context.Context, u *url.URL) (*wsConn, error) {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := newWSConn(nc)
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	if err := c.handshake(u); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func newWSConn(nc net.Conn) *wsConn {
	var seed [32]byte
	crand.Read(seed[:])
	return &wsConn{
		nc:  nc,
		br:  bufio.NewReaderSize(nc, 4096),
		rng: rand.NewChaCha8(seed),
	}
}

// handshake sends the upgrade request and checks the 101 response.
func (c *wsConn) handshake(u *url.URL) error {
	var raw [16]byte
	c.rng.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	path := u.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c.nc, req); err != nil {
		return fmt.Errorf("handshake: write: %w", err)
	}
	status, err := c.br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("handshake: read status: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 101")) {
		return fmt.Errorf("%w: status %q", errHandshake, strings.TrimSpace(string(status)))
	}
	want := acceptKey(key)
	var gotAccept, gotUpgrade bool
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("handshake: read header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")):
			gotAccept = string(value) == want
		case bytes.EqualFold(name, []byte("Upgrade")):
			gotUpgrade = bytes.EqualFold(value, []byte("websocket"))
		}
	}
	if !gotAccept || !gotUpgrade {
		return fmt.Errorf("%w: missing or wrong Sec-WebSocket-Accept or Upgrade", errHandshake)
	}
	return nil
}

// writeFrame sends p as one final, masked frame with opcode op.
func (c *wsConn) writeFrame(op byte, p []byte) error {
	h := frameHeader{fin: true, opcode: op, masked: true, length: int64(len(p))}
	binary.LittleEndian.PutUint32(h.mask[:], uint32(c.rng.Uint64()))
	need := headerLen(h) + len(p)
	if cap(c.wbuf) < need {
		c.wbuf = make([]byte, need)
	}
	b := c.wbuf[:need]
	n := putHeader(b, h)
	maskCopy(b[n:], p, h.mask)
	_, err := c.nc.Write(b)
	return err
}

// readMessage reads the next data message, joining fragments and answering
// pings. The returned slice is valid until the next read. A close frame from
// the peer is answered and reported as errClosed.
func (c *wsConn) readMessage() (byte, []byte, error) {
	c.rbuf = c.rbuf[:0]
	var op byte
	for {
		h, err := readHeader(c.br)
		if err != nil {
			return 0, nil, err
		}
		if h.masked {
			return 0, nil, errMasked
		}
		if h.opcode&0x8 != 0 {
			p := c.ctl[:h.length]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return 0, nil, noEOF(err)
			}
			switch h.opcode {
			case opPing:
				if err := c.writeFrame(opPong, p); err != nil {
					return 0, nil, err
				}
			case opClose:
				c.writeFrame(opClose, p)
				return opClose, nil, errClosed
			}
			continue
		}
		if h.opcode != opContinuation {
			op = h.opcode
		}
		if int64(len(c.rbuf))+h.length > maxFrameLen {
			return 0, nil, errFrameTooLarge
		}
		start := len(c.rbuf)
		c.rbuf = grow(c.rbuf, int(h.length))
		if _, err := io.ReadFull(c.br, c.rbuf[start:]); err != nil {
			return 0, nil, noEOF(err)
		}
		if h.fin {
			return op, c.rbuf, nil
		}
	}
}

// grow extends b by n bytes, reallocating only when capacity runs out.
func grow(b []byte, n int) []byte {
	if need := len(b) + n; need <= cap(b) {
		return b[:need]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// echo sends p as a binary message and reads one message back, checking
// that it came back unchanged.
func (c *wsConn) echo(p []byte) error {
	if err := c.writeFrame(opBinary, p); err != nil {
		return fmt.Errorf("echo: write: %w", err)
	}
	_, got, err := c.readMessage()
	if err != nil {
		return fmt.Errorf("echo: read: %w", err)
	}
	if !bytes.Equal(got, p) {
		return fmt.Errorf("echo: got %d bytes back, want the %d sent", len(got), len(p))
	}
	return nil
}

// closeHandshake sends a 1000 close frame, waits for the peer's close (or
// the connection's end) and closes the TCP connection.
func (c *wsConn) closeHandshake(timeout time.Duration) error {
	defer c.nc.Close()
	c.nc.SetDeadline(time.Now().Add(timeout))
	if err := c.writeFrame(opClose, []byte{0x03, 0xE8}); err != nil {
		return fmt.Errorf("close: write: %w", err)
	}
	for {
		h, err := readHeader(c.br)
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("close: read: %w", err)
		}
		if _, err := c.br.Discard(int(h.length)); err != nil {
			return fmt.Errorf("close: read: %w", noEOF(err))
		}
		if h.opcode == opClose {
			return nil
		}
	}
}
