package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		h    frameHeader
		want int // header length on the wire
	}{
		{desc: "empty unmasked", h: frameHeader{fin: true, opcode: opBinary}, want: 2},
		{desc: "125 masked", h: frameHeader{fin: true, opcode: opText, masked: true, length: 125, mask: [4]byte{1, 2, 3, 4}}, want: 6},
		{desc: "126 uses 16-bit length", h: frameHeader{fin: true, opcode: opBinary, length: 126}, want: 4},
		{desc: "65535 uses 16-bit length", h: frameHeader{opcode: opContinuation, length: 65535, masked: true}, want: 8},
		{desc: "65536 uses 64-bit length", h: frameHeader{fin: true, opcode: opBinary, length: 65536}, want: 10},
		{desc: "1 MiB masked", h: frameHeader{fin: true, opcode: opBinary, length: 1 << 20, masked: true, mask: [4]byte{9, 8, 7, 6}}, want: 14},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := headerLen(tt.h); got != tt.want {
				t.Fatalf("headerLen = %d, want %d", got, tt.want)
			}
			var b [maxHeaderLen]byte
			n := putHeader(b[:], tt.h)
			if n != tt.want {
				t.Fatalf("putHeader wrote %d bytes, want %d", n, tt.want)
			}
			got, err := readHeader(bufio.NewReader(bytes.NewReader(b[:n])))
			if err != nil {
				t.Fatalf("readHeader: %v", err)
			}
			if got != tt.h {
				t.Fatalf("round trip: got %+v, want %+v", got, tt.h)
			}
		})
	}
}

func TestReadHeaderRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		wire []byte
		want error
	}{
		{desc: "reserved bit", wire: []byte{0xC2, 0x00}, want: errReservedBits},
		{desc: "fragmented ping", wire: []byte{0x09, 0x00}, want: errBadControl},
		{desc: "long close", wire: []byte{0x88, 126, 0x00, 0x7E}, want: errBadControl},
		{desc: "huge length", wire: []byte{0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0}, want: errFrameTooLarge},
		{desc: "truncated", wire: []byte{0x82}, want: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := readHeader(bufio.NewReader(bytes.NewReader(tt.wire)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("readHeader = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMaskBytesMatchesSpec(t *testing.T) {
	t.Parallel()
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for n := range 200 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i * 7)
		}
		got := bytes.Clone(src)
		maskBytes(key, got)
		for i := range src {
			// RFC 6455 §5.3: transformed-octet-i = original-octet-i XOR masking-key-octet-(i MOD 4)
			if want := src[i] ^ key[i%4]; got[i] != want {
				t.Fatalf("len %d byte %d: got %#x, want %#x", n, i, got[i], want)
			}
		}
		maskBytes(key, got)
		if !bytes.Equal(got, src) {
			t.Fatalf("len %d: masking twice did not restore the input", n)
		}
	}
}

// TestRFCExample checks the masked "Hello" frame of RFC 6455 §5.7.
func TestRFCExample(t *testing.T) {
	t.Parallel()
	wire := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	br := bufio.NewReader(bytes.NewReader(wire))
	h, err := readHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, h.length)
	io.ReadFull(br, p)
	maskBytes(h.mask, p)
	if !h.fin || h.opcode != opText || string(p) != "Hello" {
		t.Fatalf("got fin=%v op=%d %q", h.fin, h.opcode, p)
	}
	var b [maxHeaderLen + 5]byte
	n := putHeader(b[:], h)
	maskCopy(b[n:], []byte("Hello"), h.mask)
	if !bytes.Equal(b[:n+5], wire) {
		t.Fatalf("encoded % x, want % x", b[:n+5], wire)
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d})
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, wire []byte) {
		h, err := readHeader(bufio.NewReader(bytes.NewReader(wire)))
		if err != nil {
			return
		}
		if h.length < 0 || h.length > maxFrameLen {
			t.Fatalf("accepted length %d", h.length)
		}
		var b [maxHeaderLen]byte
		n := putHeader(b[:], h)
		again, err := readHeader(bufio.NewReader(bytes.NewReader(b[:n])))
		if err != nil || again != h {
			t.Fatalf("re-encoding %+v gave %+v, %v", h, again, err)
		}
	})
}

// discardConn is a net.Conn whose writes vanish, for timing writers alone.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetDeadline(time.Time) error      { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

func benchmarkWriteFrame(b *testing.B, size int) {
	c := newWSConn(discardConn{})
	p := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.writeFrame(opBinary, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteFrame64(b *testing.B)  { benchmarkWriteFrame(b, 64) }
func BenchmarkWriteFrame1M(b *testing.B)  { benchmarkWriteFrame(b, 1<<20) }
func BenchmarkMaskBytes64(b *testing.B)   { benchmarkMask(b, 64) }
func BenchmarkMaskBytes1M(b *testing.B)   { benchmarkMask(b, 1<<20) }
func BenchmarkReadMessage64(b *testing.B) { benchmarkReadMessage(b, 64) }
func BenchmarkReadMessage1M(b *testing.B) { benchmarkReadMessage(b, 1<<20) }

func benchmarkMask(b *testing.B, size int) {
	p := make([]byte, size)
	key := [4]byte{1, 2, 3, 4}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		maskBytes(key, p)
	}
}

// repeatReader yields one encoded frame over and over.
type repeatReader struct {
	frame []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.frame[r.off:])
		n += k
		r.off = (r.off + k) % len(r.frame)
	}
	return n, nil
}

func benchmarkReadMessage(b *testing.B, size int) {
	h := frameHeader{fin: true, opcode: opBinary, length: int64(size)}
	frame := make([]byte, headerLen(h)+size)
	putHeader(frame, h)
	c := newWSConn(discardConn{})
	c.br = bufio.NewReaderSize(&repeatReader{frame: frame}, 4096)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, p, err := c.readMessage(); err != nil || len(p) != size {
			b.Fatalf("read %d bytes, %v", len(p), err)
		}
	}
}
