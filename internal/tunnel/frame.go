package tunnel

import (
	"encoding/binary"
	"math"
	"time"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes the proxy sends (RFC 6455 §7.4.1).
const (
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseNoStatus        = 1005 // reported in Stats when a Close frame carries no code
	ClosePolicyViolation = 1008
	CloseMessageTooBig   = 1009
	CloseInternalError   = 1011
	CloseServiceRestart  = 1012
)

const (
	maxControlPayload = 125
	maxHeaderLen      = 2 + 8 + 4
	// maxControlFrame is the largest legal control frame; the copier waits
	// until a whole control frame sits in its buffer before judging it.
	maxControlFrame = maxHeaderLen + maxControlPayload
)

// header is a parsed frame header. It refers to no buffer, so parsing never
// allocates and the frame bytes stay untouched.
type header struct {
	fin    bool
	rsv    byte // the three RSV bits, in place (0x70)
	opcode byte
	masked bool
	key    [4]byte // masking key, valid when masked
	length int64   // payload length; -1 when the 64-bit length has its top bit set
	size   int     // header length in bytes (2 to 14)
}

// parseHeader parses the frame header at the start of b. ok is false when b
// holds less than a whole header; nothing is consumed or modified.
func parseHeader(b []byte) (h header, ok bool) {
	if len(b) < 2 {
		return h, false
	}
	b0, b1 := b[0], b[1]
	h.fin = b0&0x80 != 0
	h.rsv = b0 & 0x70
	h.opcode = b0 & 0x0f
	h.masked = b1&0x80 != 0
	n := 2
	switch l7 := b1 & 0x7f; l7 {
	case 126:
		n += 2
	case 127:
		n += 8
	default:
		h.length = int64(l7)
	}
	if h.masked {
		n += 4
	}
	if len(b) < n {
		return h, false
	}
	switch n - 2 - maskLen(h.masked) {
	case 2:
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
	case 8:
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			h.length = -1
		} else {
			h.length = int64(v)
		}
	}
	if h.masked {
		copy(h.key[:], b[n-4:n])
	}
	h.size = n
	return h, true
}

func maskLen(masked bool) int {
	if masked {
		return 4
	}
	return 0
}

func isControl(op byte) bool { return op&0x8 != 0 }

func isReserved(op byte) bool { return (op >= 0x3 && op <= 0x7) || op >= 0xB }

// unmaskedPrefix returns up to 8 leading payload bytes of a frame, unmasked,
// as a big-endian integer, without touching the frame. p is the payload.
func unmaskedPrefix(h *header, p []byte) uint64 {
	var v uint64
	for i := 0; i < len(p) && i < 8; i++ {
		c := p[i]
		if h.masked {
			c ^= h.key[i&3]
		}
		v = v<<8 | uint64(c)
	}
	return v
}

// closeCode reads the status code of a Close frame's payload p.
func closeCode(h *header, p []byte) int {
	if len(p) < 2 {
		return CloseNoStatus
	}
	return int(unmaskedPrefix(h, p[:2]))
}

// encodeControl writes a control frame with opcode op and the given payload
// (at most 125 bytes) into b and returns it. When masked, key masks the
// payload as a client must (RFC 6455 §5.3).
func encodeControl(b *[maxControlFrame]byte, op byte, payload []byte, masked bool, key uint32) []byte {
	n := len(payload)
	b[0] = 0x80 | op
	b[1] = byte(n)
	off := 2
	if masked {
		b[1] |= 0x80
		binary.BigEndian.PutUint32(b[2:], key)
		off = 6
	}
	copy(b[off:], payload)
	if masked {
		var k [4]byte
		binary.BigEndian.PutUint32(k[:], key)
		for i := 0; i < n; i++ {
			b[off+i] ^= k[i&3]
		}
	}
	return b[:off+n]
}

// parseState is one direction's position in the frame stream and its
// message state, shared by both engines.
type parseState struct {
	remaining int64 // payload bytes of the current frame still to pass
	discard   bool  // the proxy closed dst or dst is gone: parse, do not forward
	msgOpen   bool  // a fragmented data message is open
	msgSize   int64 // payload bytes of the open message so far
	rateStart int64 // Tunnel.clock when the frame-rate window began
	rateCount int
	messages  int64 // complete data messages
}

// midFrame reports whether dst has been sent part of a frame: nothing of the
// proxy's own may be written now.
func (c *parseState) midFrame() bool { return !c.discard && c.remaining > 0 }

// check validates a frame header from a peer (a client when fromClient) and updates the message state. It
// returns the Close code to send src (0 if the frame may pass) and why.
func (c *parseState) check(h *header, fromClient bool, opt *Options, now int64) (uint16, error) {
	op := h.opcode
	switch {
	case fromClient && !h.masked:
		return CloseProtocolError, errUnmasked
	case !fromClient && h.masked:
		return CloseProtocolError, errMasked
	case h.length < 0:
		return CloseProtocolError, errLength
	case isReserved(op):
		return CloseProtocolError, errReservedOp
	case isControl(op) && !h.fin:
		return CloseProtocolError, errControlFragment
	case isControl(op) && h.length > maxControlPayload:
		return CloseProtocolError, errControlLength
	case op == opClose && h.length == 1:
		return CloseProtocolError, errCloseLength
	case op == opContinuation && !c.msgOpen:
		return CloseProtocolError, errStrayContinue
	case !isControl(op) && op != opContinuation && c.msgOpen:
		return CloseProtocolError, errInterleavedStart
	}
	if max := opt.MaxFrameRate; max > 0 {
		if now-c.rateStart >= int64(time.Second) {
			c.rateStart = now
			c.rateCount = 0
		}
		c.rateCount++
		if c.rateCount > max {
			return ClosePolicyViolation, ErrFrameRate
		}
	}
	if isControl(op) {
		return 0, nil
	}
	size := h.length
	if op == opContinuation {
		size += c.msgSize
	}
	if max := opt.MaxMessageSize; max > 0 && size > max {
		return CloseMessageTooBig, ErrMessageTooBig
	}
	c.msgSize = size
	c.msgOpen = !h.fin
	if h.fin {
		c.messages++
		c.msgSize = 0
	}
	return 0, nil
}

// frameDir is one direction of a tunnel engine, as scanFrames sees it.
type frameDir interface {
	state() *parseState
	// boundary returns the destination's flags that ask the proxy to
	// speak at the next frame boundary (0: nothing to say).
	boundary() uint32
	service(f uint32)               // say it (f: what boundary returned)
	forward(b []byte)               // pass b on to the destination
	check(h header) (uint16, error) // validate a frame header from the source (by value: it stays on the stack)
	violate(code uint16, err error) // the source broke the protocol or a limit
	closeSeen(code int)             // a Close frame from the source, before it is forwarded
	closeDone(forwarded bool)       // after it: the closing handshake's flags
	pingToken() uint64              // the payload of the proxy's own Ping to the source
}

// scanFrames forwards the whole frames and frame parts in b, parsing
// headers in place, and returns how much of b it consumed: the rest is an
// incomplete header (or incomplete control frame) to be completed by the
// next read. Frames go out unchanged; only a Pong answering the proxy's
// own Ping is dropped. Both engines carry frames with it.
func scanFrames(d frameDir, b []byte) int {
	st := d.state()
	p, out := 0, 0 // b[out:p] is parsed and not yet written
	for {
		if st.remaining > 0 {
			k := min(int64(len(b)-p), st.remaining)
			p += int(k)
			st.remaining -= k
			if st.remaining > 0 {
				break
			}
		}
		// At a frame boundary: the proxy may speak here.
		if f := d.boundary(); f != 0 {
			d.forward(b[out:p])
			out = p
			d.service(f)
		}
		h, ok := parseHeader(b[p:])
		if !ok {
			break
		}
		control := isControl(h.opcode) && h.length >= 0 && h.length <= maxControlPayload
		if control && len(b)-p < h.size+int(h.length) {
			break // judge a control frame only when all of it is here
		}
		if !st.discard {
			if code, err := d.check(h); code != 0 {
				d.forward(b[out:p])
				out = p
				d.violate(code, err)
			}
		}
		if control {
			whole := h.size + int(h.length)
			pl := b[p+h.size : p+whole]
			switch h.opcode {
			case opClose:
				d.closeSeen(closeCode(&h, pl))
				forwarded := !st.discard
				d.forward(b[out : p+whole])
				out = p + whole
				d.closeDone(forwarded && !st.discard)
			case opPong:
				if h.length == 8 && unmaskedPrefix(&h, pl) == d.pingToken() {
					d.forward(b[out:p]) // drop the answer to our own ping
					out = p + whole
				}
			}
			p += whole
			continue
		}
		p += h.size
		st.remaining = h.length
		if h.length < 0 { // only seen while discarding garbage
			st.remaining = math.MaxInt64
		}
	}
	d.forward(b[out:p])
	return p
}
