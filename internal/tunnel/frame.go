package tunnel

import "encoding/binary"

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
