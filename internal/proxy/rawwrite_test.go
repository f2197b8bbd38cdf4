package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// TestWriteAll: writeAll delivers every byte of a write far larger than
// the socket buffers (the poller waits for room between raw sendto
// calls), honours the write deadline when the peer stops reading, and
// reports a write to a closed peer as a net.OpError.
func TestWriteAll(t *testing.T) {
	a, b := tcpPair(t)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte)
	go func() {
		buf, _ := io.ReadAll(io.LimitReader(b, int64(len(msg))))
		got <- buf
	}()
	if err := writeAll(a, msg); err != nil {
		t.Fatalf("writeAll: %v", err)
	}
	if buf := <-got; !bytes.Equal(buf, msg) {
		t.Fatalf("peer read %d bytes, want the %d written, unchanged", len(buf), len(msg))
	}

	// Nobody reads b now: the buffers fill and the deadline ends the write.
	a.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	start := time.Now()
	err := writeAll(a, bytes.Repeat([]byte("x"), 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a peer that does not read: %v, want the deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the write deadline took %v to end the write", d)
	}

	c, d := tcpPair(t)
	d.SetLinger(0)
	d.Close() // reset
	time.Sleep(50 * time.Millisecond)
	// The first write after a reset may still be accepted locally.
	err = writeAll(c, []byte("after the peer reset"))
	for i := 0; err == nil && i < 10; i++ {
		time.Sleep(10 * time.Millisecond)
		err = writeAll(c, []byte("after the peer reset"))
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("write to a reset peer: %v (%T), want a *net.OpError", err, err)
	}
}
