package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain checks that every scenario leaves no goroutine and no file
// descriptor behind.
func TestMain(m *testing.M) {
	// Start the runtime poller first: its epoll and eventfd descriptors
	// live for the whole process.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	// The epoll engine's loops live as long as the process, too.
	startEngine()
	g0, fd0 := runtime.NumGoroutine(), countFDs()
	code := m.Run()
	// The fuzzing engine keeps goroutines of its own (os/signal).
	fuzzing := flag.Lookup("test.fuzz").Value.String() != ""
	if code == 0 && !fuzzing {
		var g, fd int
		for i := 0; i < 100; i++ {
			g, fd = runtime.NumGoroutine(), countFDs()
			if g <= g0 && fd <= fd0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if g > g0 || fd > fd0 {
			fmt.Fprintf(os.Stderr, "leak: goroutines %d -> %d, fds %d -> %d\n", g0, g, fd0, fd)
			buf := make([]byte, 1<<20)
			os.Stderr.Write(buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}

// bothEngines runs f as subtests "epoll" and "goroutine": tunnels between
// TCP connections started in the first use the epoll engine (on Linux), in
// the second the goroutine engine.
func bothEngines(t *testing.T, f func(*testing.T)) {
	for _, goroutines := range []bool{false, true} {
		name := "epoll"
		if goroutines {
			name = "goroutine"
		}
		t.Run(name, func(t *testing.T) {
			setEngine(t, goroutines)
			f(t)
		})
	}
}

// checkEngine fails t if tun is not carried by the engine the test asked for.
func checkEngine(t testing.TB, tun *Tunnel, c net.Conn) {
	t.Helper()
	_, tcp := c.(*net.TCPConn)
	want := tcp && epollAvailable && !forceGoroutines
	assertf(t, (tun.ep != nil) == want, "epoll engine %v, want %v", tun.ep != nil, want)
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		panic(err)
	}
	return len(ents)
}

func assertf(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assertf(t, err == nil, "listen: %v", err)
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	assertf(t, err == nil, "dial: %v", err)
	r := <-ch
	assertf(t, r.err == nil, "accept: %v", r.err)
	return a, r.c
}

// rig is a tunnel between two raw-wire test peers.
type rig struct {
	t       testing.TB
	client  net.Conn // the test's client end
	backend net.Conn // the test's backend end
	tun     *Tunnel
	stats   chan Stats
}

// newRig starts a tunnel whose proxy ends are connected to rig.client and
// rig.backend over loopback TCP.
func newRig(t testing.TB, opt Options, clientBuf, backendBuf []byte) *rig {
	t.Helper()
	c, pc := tcpPair(t)
	pb, b := tcpPair(t)
	return startRig(t, c, pc, pb, b, opt, clientBuf, backendBuf)
}

func startRig(t testing.TB, c, pc, pb, b net.Conn, opt Options, clientBuf, backendBuf []byte) *rig {
	r := &rig{t: t, client: c, backend: b, stats: make(chan Stats, 1)}
	r.tun = New(pc, clientBuf, pb, backendBuf, opt)
	checkEngine(t, r.tun, pc)
	go func() { r.stats <- r.tun.Run(context.Background()) }()
	t.Cleanup(func() {
		r.client.Close()
		r.backend.Close()
		select {
		case <-r.tun.Done():
		case <-time.After(5 * time.Second):
			t.Errorf("tunnel did not end")
		}
	})
	return r
}

// wait returns the tunnel's stats, failing after d.
func (r *rig) wait(d time.Duration) Stats {
	r.t.Helper()
	select {
	case st := <-r.stats:
		r.stats <- st
		return st
	case <-time.After(d):
		r.t.Fatalf("tunnel still running after %v", d)
	}
	return Stats{}
}

// wsFrame encodes a frame. mask is whether to mask it with a random key.
func wsFrame(b0 byte, payload []byte, mask bool) []byte {
	var out []byte
	out = append(out, b0)
	var mbit byte
	if mask {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n <= 0xffff:
		out = append(out, mbit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !mask {
		return append(out, payload...)
	}
	var key [4]byte
	binary.BigEndian.PutUint32(key[:], rand.Uint32())
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// rawFrame is a frame read by a test peer.
type rawFrame struct {
	b0      byte
	masked  bool
	payload []byte // unmasked
}

func (f rawFrame) opcode() byte { return f.b0 & 0x0f }

func (f rawFrame) closeCode() int {
	if len(f.payload) < 2 {
		return CloseNoStatus
	}
	return int(binary.BigEndian.Uint16(f.payload))
}

// readFrame reads one frame from r.
func readFrame(r io.Reader) (rawFrame, error) {
	var hdr [14]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return rawFrame{}, err
	}
	f := rawFrame{b0: hdr[0], masked: hdr[1]&0x80 != 0}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, hdr[:2]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(hdr[:2]))
	case 127:
		if _, err := io.ReadFull(r, hdr[:8]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(hdr[:8])
	}
	var key [4]byte
	if f.masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= key[i&3]
		}
	}
	return f, nil
}

// expectClose reads frames from c (skipping others) until a Close frame, and
// checks its code and masking.
func expectClose(t testing.TB, c net.Conn, code int, masked bool) rawFrame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for {
		f, err := readFrame(c)
		assertf(t, err == nil, "waiting for Close %d: %v", code, err)
		if f.opcode() != opClose {
			continue
		}
		assertf(t, f.closeCode() == code, "got Close %d, want %d", f.closeCode(), code)
		assertf(t, f.masked == masked, "Close masked=%v, want %v", f.masked, masked)
		return f
	}
}

// expectEOF checks that c is closed by the far end within d.
func expectEOF(t testing.TB, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	assertf(t, !(errors.As(err, &ne) && ne.Timeout()), "connection still open after %v", d)
}

// readExactly reads n bytes from c within 5 seconds.
func readExactly(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	assertf(t, err == nil, "reading %d bytes: %v", n, err)
	return b
}

// writeChunks writes b in pieces of random size, so that frame headers
// straddle reads on the far side.
func writeChunks(t testing.TB, c net.Conn, b []byte) {
	t.Helper()
	for len(b) > 0 {
		n := min(len(b), 1+rand.IntN(700))
		if _, err := c.Write(b[:n]); err != nil {
			t.Errorf("write: %v", err) // not Fatal: runs in its own goroutine
			return
		}
		b = b[n:]
	}
}

// readHead reads an HTTP/1.1 message head (through the blank line) verbatim.
func readHead(br *bufio.Reader) ([]byte, error) {
	var head bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		head.WriteString(line)
		if strings.TrimRight(line, "\r\n") == "" {
			return head.Bytes(), nil
		}
	}
}
