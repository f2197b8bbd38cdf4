package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
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

// maxHeaderLen is the longest frame header: 2 fixed bytes, 8 bytes of
// extended length and a 4-byte masking key.
const maxHeaderLen = 14

// maxFrameLen bounds the payload a reader accepts, so a corrupt length
// cannot make the benchmark allocate gigabytes.
const maxFrameLen = 64 << 20

var (
	errFrameTooLarge = errors.New("frame too large")
	errReservedBits  = errors.New("reserved bits set")
	errBadControl    = errors.New("fragmented or oversized control frame")
)

// frameHeader is the decoded header of one frame.
type frameHeader struct {
	fin    bool
	opcode byte
	masked bool
	length int64
	mask   [4]byte
}

// headerLen reports how many bytes h takes on the wire.
func headerLen(h frameHeader) int {
	n := 2
	switch {
	case h.length > 0xFFFF:
		n += 8
	case h.length > 125:
		n += 2
	}
	if h.masked {
		n += 4
	}
	return n
}

// putHeader writes h in wire form into b, which must hold headerLen(h)
// bytes, and returns the number of bytes written.
func putHeader(b []byte, h frameHeader) int {
	b[0] = h.opcode & 0x0F
	if h.fin {
		b[0] |= 0x80
	}
	var maskBit byte
	if h.masked {
		maskBit = 0x80
	}
	n := 2
	switch {
	case h.length > 0xFFFF:
		b[1] = maskBit | 127
		binary.BigEndian.PutUint64(b[2:], uint64(h.length))
		n += 8
	case h.length > 125:
		b[1] = maskBit | 126
		binary.BigEndian.PutUint16(b[2:], uint16(h.length))
		n += 2
	default:
		b[1] = maskBit | byte(h.length)
	}
	if h.masked {
		copy(b[n:], h.mask[:])
		n += 4
	}
	return n
}

// readHeader reads one frame header from r. It rejects reserved bits (no
// extension is negotiated), fragmented or long control frames and payloads
// over maxFrameLen.
func readHeader(r *bufio.Reader) (frameHeader, error) {
	var h frameHeader
	b0, err := r.ReadByte()
	if err != nil {
		return h, err
	}
	b1, err := r.ReadByte()
	if err != nil {
		return h, noEOF(err)
	}
	if b0&0x70 != 0 {
		return h, errReservedBits
	}
	h.fin = b0&0x80 != 0
	h.opcode = b0 & 0x0F
	h.masked = b1&0x80 != 0
	h.length = int64(b1 & 0x7F)
	// Peek and Discard read the extended length and mask straight out of
	// the reader's buffer, so nothing here escapes to the heap.
	switch h.length {
	case 126:
		ext, err := next(r, 2)
		if err != nil {
			return h, err
		}
		h.length = int64(binary.BigEndian.Uint16(ext))
	case 127:
		ext, err := next(r, 8)
		if err != nil {
			return h, err
		}
		v := binary.BigEndian.Uint64(ext)
		if v > maxFrameLen {
			return h, errFrameTooLarge
		}
		h.length = int64(v)
	}
	if h.length > maxFrameLen {
		return h, errFrameTooLarge
	}
	if h.opcode&0x8 != 0 && (!h.fin || h.length > 125) {
		return h, errBadControl
	}
	if h.masked {
		m, err := next(r, 4)
		if err != nil {
			return h, err
		}
		copy(h.mask[:], m)
	}
	return h, nil
}

// next returns the next n bytes of r, valid until the next read, and
// consumes them. n must not exceed r's buffer size.
func next(r *bufio.Reader, n int) ([]byte, error) {
	b, err := r.Peek(n)
	if err != nil {
		return nil, noEOF(err)
	}
	r.Discard(n)
	return b, nil
}

// noEOF turns a clean EOF inside a frame into io.ErrUnexpectedEOF: only a
// stream that ends between frames ended cleanly.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// maskBytes XORs b in place with key, starting at key position 0
// (RFC 6455 §5.3). Masking is its own inverse, so it also unmasks.
func maskBytes(key [4]byte, b []byte) {
	if len(b) >= 8 {
		k := uint64(binary.LittleEndian.Uint32(key[:]))
		k |= k << 32
		for len(b) >= 32 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])^k)
			binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])^k)
			binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^k)
			b = b[32:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	// Every chunk above is a multiple of 4 bytes, so the tail starts at
	// key position 0 again.
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// maskCopy writes src XOR key into dst, which must be at least as long.
func maskCopy(dst, src []byte, key [4]byte) {
	dst = dst[:len(src)]
	copy(dst, src)
	maskBytes(key, dst)
}
