package tunnel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// frameSequence returns every frame kind and fragmentation pattern, masked
// (as from a client) or not, and the number of complete data messages.
func frameSequence(mask bool) ([]byte, int) {
	big := make([]byte, 200_000) // 64-bit length, larger than the buffer
	for i := range big {
		big[i] = byte(i * 7)
	}
	var b []byte
	add := func(b0 byte, p []byte) { b = append(b, wsFrame(b0, p, mask)...) }
	add(0x81, []byte("hello"))                  // text
	add(0x82, []byte{0, 1, 2, 255})             // binary
	add(0x81, nil)                              // empty text
	add(0x82, bytes.Repeat([]byte("a"), 125))   // 7-bit max
	add(0x82, bytes.Repeat([]byte("b"), 126))   // 16-bit length
	add(0x82, bytes.Repeat([]byte("c"), 65535)) // 16-bit max
	add(0x82, bytes.Repeat([]byte("d"), 65536)) // 64-bit length
	add(0x82, big)                              // streams through
	add(0x01, []byte("frag-1 "))                // fragmented text...
	add(0x89, []byte("ping between fragments")) // control inside
	add(0x00, []byte("frag-2 "))                //
	add(0x8A, []byte("unsolicited pong"))       //
	add(0x00, nil)                              // empty continuation
	add(0x80, []byte("frag-end"))               // ...ends
	add(0x42, []byte("rsv1 compressed first"))  // RSV1, FIN=0
	add(0x80, []byte("rsv1 end"))               // continuation
	add(0xF2, []byte("all rsv bits"))           // RSV1-3 pass through
	add(0x89, nil)                              // empty ping
	add(0x8A, bytes.Repeat([]byte("p"), 125))   // largest pong
	add(0x02, big[:70000])                      // big fragment
	add(0x00, big[:40000])                      //
	add(0x80, big[:3])                          //
	return b, 12
}

func TestFramesPassUnchanged(t *testing.T) {
	r := newRig(t, Options{Frames: true}, nil, nil)

	up, upMessages := frameSequence(true)
	go writeChunks(t, r.client, up)
	got := readExactly(t, r.backend, len(up))
	assertf(t, bytes.Equal(got, up), "client->backend bytes differ")

	down, downMessages := frameSequence(false)
	go writeChunks(t, r.backend, down)
	got = readExactly(t, r.client, len(down))
	assertf(t, bytes.Equal(got, down), "backend->client bytes differ")

	// The closing handshake passes unchanged and ends the tunnel.
	closeUp := wsFrame(0x88, closePayload(1000, "bye"), true)
	_, err := r.client.Write(closeUp)
	assertf(t, err == nil, "write: %v", err)
	got = readExactly(t, r.backend, len(closeUp))
	assertf(t, bytes.Equal(got, closeUp), "close frame changed")
	closeDown := wsFrame(0x88, closePayload(1000, ""), false)
	_, err = r.backend.Write(closeDown)
	assertf(t, err == nil, "write: %v", err)
	got = readExactly(t, r.client, len(closeDown))
	assertf(t, bytes.Equal(got, closeDown), "close reply changed")

	st := r.wait(2 * time.Second)
	assertf(t, st.Err == nil, "Err = %v", st.Err)
	assertf(t, st.CloseCode == 1000 && st.CloseBy == "client", "close %d by %q", st.CloseCode, st.CloseBy)
	assertf(t, st.MessagesIn == int64(upMessages), "MessagesIn = %d, want %d", st.MessagesIn, upMessages)
	assertf(t, st.MessagesOut == int64(downMessages), "MessagesOut = %d, want %d", st.MessagesOut, downMessages)
	assertf(t, st.BytesFromClient == int64(len(up)+len(closeUp)), "BytesFromClient = %d", st.BytesFromClient)
	assertf(t, st.BytesFromBackend == int64(len(down)+len(closeDown)), "BytesFromBackend = %d", st.BytesFromBackend)
	expectEOF(t, r.client, time.Second)
	expectEOF(t, r.backend, time.Second)
}

// TestSplitHeaders feeds the client side one byte per read (net.Pipe has no
// syscall.Conn, so this also covers the buffered read path).
func TestSplitHeaders(t *testing.T) {
	c, pc := net.Pipe()
	pb, b := tcpPair(t)
	r := startRig(t, c, pc, pb, b, Options{Frames: true}, nil, nil)
	up, _ := frameSequence(true)
	up = up[:len(up)-300_000] // keep the one-byte writes short
	go func() {
		for i := range up {
			if _, err := r.client.Write(up[i : i+1]); err != nil {
				return
			}
		}
	}()
	got := readExactly(t, r.backend, len(up))
	assertf(t, bytes.Equal(got, up), "bytes differ")
}

func TestBufferedHandoff(t *testing.T) {
	first := wsFrame(0x81, []byte("buffered at hijack"), true)
	second := wsFrame(0x82, bytes.Repeat([]byte("x"), 300), true)
	cut := 3 // the buffered bytes end inside the second frame's header
	clientBuf := append(append([]byte{}, first...), second[:cut]...)
	backendBuf := wsFrame(0x81, []byte("backend said this first"), false)
	r := newRig(t, Options{Frames: true}, clientBuf, backendBuf)

	got := readExactly(t, r.client, len(backendBuf))
	assertf(t, bytes.Equal(got, backendBuf), "backend's buffered bytes differ")
	_, err := r.client.Write(second[cut:])
	assertf(t, err == nil, "write: %v", err)
	want := append(append([]byte{}, first...), second...)
	got = readExactly(t, r.backend, len(want))
	assertf(t, bytes.Equal(got, want), "client's buffered bytes differ")
}

func TestBufferedHandoffRaw(t *testing.T) {
	r := newRig(t, Options{}, []byte("early "), []byte("hello "))
	got := readExactly(t, r.client, 6)
	assertf(t, string(got) == "hello ", "got %q", got)
	r.client.Write([]byte("bird"))
	got = readExactly(t, r.backend, 10)
	assertf(t, string(got) == "early bird", "got %q", got)
}

func TestProtocolErrors(t *testing.T) {
	tests := []struct {
		desc        string
		fromBackend bool
		bad         []byte
	}{
		{desc: "unmasked client frame", bad: wsFrame(0x81, []byte("x"), false)},
		{desc: "masked backend frame", fromBackend: true, bad: wsFrame(0x81, []byte("x"), true)},
		{desc: "control payload over 125", bad: wsFrame(0x89, make([]byte, 126), true)},
		{desc: "fragmented ping", bad: wsFrame(0x09, []byte("x"), true)},
		{desc: "reserved opcode 3", bad: wsFrame(0x83, nil, true)},
		{desc: "reserved opcode 0xB", fromBackend: true, bad: wsFrame(0x8B, nil, false)},
		{desc: "reserved opcode 0xF", bad: wsFrame(0x8F, nil, true)},
		{desc: "continuation without message", bad: wsFrame(0x80, []byte("x"), true)},
		{desc: "data frame inside fragmented message", bad: append(wsFrame(0x01, []byte("a"), true), wsFrame(0x81, []byte("b"), true)...)},
		{desc: "backend continuation without message", fromBackend: true, bad: wsFrame(0x00, []byte("x"), false)},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := newRig(t, Options{Frames: true}, nil, nil)
			offender, other := r.client, r.backend
			if tt.fromBackend {
				offender, other = r.backend, r.client
			}
			// A good frame first: it must arrive, the bad one must not.
			good := wsFrame(0x82, []byte("good"), !tt.fromBackend)
			_, err := offender.Write(append(append([]byte{}, good...), tt.bad...))
			assertf(t, err == nil, "write: %v", err)
			got := readExactly(t, other, len(good))
			assertf(t, bytes.Equal(got, good), "good frame changed")

			expectClose(t, offender, CloseProtocolError, tt.fromBackend)
			expectClose(t, other, CloseGoingAway, !tt.fromBackend)
			st := r.wait(2 * time.Second)
			assertf(t, errors.Is(st.Err, ErrProtocol), "Err = %v", st.Err)
			assertf(t, st.CloseCode == CloseProtocolError && st.CloseBy == "proxy", "close %d by %q", st.CloseCode, st.CloseBy)
		})
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		desc        string
		opt         Options
		fromBackend bool
		frames      func(mask bool) []byte
		code        int
		err         error
	}{
		{
			desc: "message too big in one frame",
			opt:  Options{Frames: true, MaxMessageSize: 1000},
			frames: func(mask bool) []byte {
				return append(wsFrame(0x82, make([]byte, 1000), mask), wsFrame(0x82, make([]byte, 1001), mask)...)
			},
			code: CloseMessageTooBig, err: ErrMessageTooBig,
		},
		{
			desc: "message too big across fragments", fromBackend: true,
			opt: Options{Frames: true, MaxMessageSize: 1000},
			frames: func(mask bool) []byte {
				b := wsFrame(0x02, make([]byte, 600), mask)
				b = append(b, wsFrame(0x89, make([]byte, 100), mask)...) // control frames do not count
				return append(b, wsFrame(0x80, make([]byte, 401), mask)...)
			},
			code: CloseMessageTooBig, err: ErrMessageTooBig,
		},
		{
			desc: "frame rate",
			opt:  Options{Frames: true, MaxFrameRate: 20},
			frames: func(mask bool) []byte {
				var b []byte
				for i := 0; i < 100; i++ {
					b = append(b, wsFrame(0x81, []byte("spam"), mask)...)
				}
				return b
			},
			code: ClosePolicyViolation, err: ErrFrameRate,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := newRig(t, tt.opt, nil, nil)
			offender, other := r.client, r.backend
			if tt.fromBackend {
				offender, other = r.backend, r.client
			}
			_, err := offender.Write(tt.frames(!tt.fromBackend))
			assertf(t, err == nil, "write: %v", err)
			expectClose(t, offender, tt.code, tt.fromBackend)
			// other gets whatever passed, then Close 1001.
			expectClose(t, other, CloseGoingAway, !tt.fromBackend)
			st := r.wait(2 * time.Second)
			assertf(t, errors.Is(st.Err, tt.err), "Err = %v", st.Err)
		})
	}
}

func TestShutdownRawWire(t *testing.T) {
	r := newRig(t, Options{Frames: true}, nil, nil)
	r.tun.Shutdown(CloseServiceRestart, "restart")
	r.tun.Shutdown(CloseGoingAway, "second call loses")
	f := expectClose(t, r.client, CloseServiceRestart, false)
	assertf(t, string(f.payload[2:]) == "restart", "reason %q", f.payload[2:])
	expectClose(t, r.backend, CloseGoingAway, true)
	// Both answer; the tunnel ends without waiting out the grace period.
	r.client.Write(wsFrame(0x88, closePayload(CloseServiceRestart, ""), true))
	r.backend.Write(wsFrame(0x88, closePayload(CloseGoingAway, ""), false))
	st := r.wait(500 * time.Millisecond)
	assertf(t, st.Err == nil, "Err = %v", st.Err)
	assertf(t, st.CloseCode == CloseServiceRestart && st.CloseBy == "proxy", "close %d by %q", st.CloseCode, st.CloseBy)
	expectEOF(t, r.client, time.Second)
}

// TestShutdownAtFrameBoundary checks that the proxy's Close never lands inside
// a frame being forwarded.
func TestShutdownAtFrameBoundary(t *testing.T) {
	r := newRig(t, Options{Frames: true}, nil, nil)
	frame := wsFrame(0x82, bytes.Repeat([]byte("z"), 100_000), false)
	_, err := r.backend.Write(frame[:50_000])
	assertf(t, err == nil, "write: %v", err)
	readExactly(t, r.client, 1000) // the frame has started
	r.tun.Shutdown(CloseServiceRestart, "")
	time.Sleep(100 * time.Millisecond)
	_, err = r.backend.Write(frame[50_000:])
	assertf(t, err == nil, "write: %v", err)
	rest := readExactly(t, r.client, len(frame)-1000)
	assertf(t, bytes.Equal(rest, frame[1000:]), "frame changed")
	expectClose(t, r.client, CloseServiceRestart, false)
	expectClose(t, r.backend, CloseGoingAway, true)
	// Nobody answers: the tunnel ends after the grace period.
	st := r.wait(3 * time.Second)
	assertf(t, st.CloseCode == CloseServiceRestart, "CloseCode %d", st.CloseCode)
}

func TestShutdownBeforeRun(t *testing.T) {
	c, pc := tcpPair(t)
	pb, b := tcpPair(t)
	defer c.Close()
	defer b.Close()
	tun := New(pc, nil, pb, nil, Options{Frames: true})
	tun.Shutdown(CloseServiceRestart, "")
	done := make(chan Stats)
	go func() { done <- tun.Run(t.Context()) }()
	expectClose(t, c, CloseServiceRestart, false)
	expectClose(t, b, CloseGoingAway, true)
	st := <-done
	assertf(t, st.CloseCode == CloseServiceRestart, "CloseCode %d", st.CloseCode)
	assertf(t, tun.Run(t.Context()).Err != nil, "second Run did not fail")
}

func TestContextCancel(t *testing.T) {
	for _, frames := range []bool{false, true} {
		c, pc := tcpPair(t)
		pb, b := tcpPair(t)
		tun := New(pc, nil, pb, nil, Options{Frames: frames})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan Stats)
		go func() { done <- tun.Run(ctx) }()
		cancel()
		if frames {
			expectClose(t, c, CloseGoingAway, false)
			expectClose(t, b, CloseGoingAway, true)
		}
		expectEOF(t, c, 2*time.Second)
		expectEOF(t, b, 2*time.Second)
		st := <-done
		assertf(t, st.Err != nil, "Err = nil after cancel")
		c.Close()
		b.Close()
	}
}

func TestRawMode(t *testing.T) {
	r := newRig(t, Options{}, nil, nil)
	// Not frames at all: arbitrary bytes pass both ways.
	up := make([]byte, 300_000)
	for i := range up {
		up[i] = byte(rand.Uint32())
	}
	go writeChunks(t, r.client, up)
	got := readExactly(t, r.backend, len(up))
	assertf(t, bytes.Equal(got, up), "client->backend bytes differ")
	r.backend.Write([]byte("\x00\xff not a frame"))
	got = readExactly(t, r.client, 14)
	assertf(t, string(got) == "\x00\xff not a frame", "got %q", got)

	r.backend.Close() // EOF on one side ends the tunnel
	expectEOF(t, r.client, time.Second)
	st := r.wait(time.Second)
	assertf(t, st.Err == nil, "Err = %v", st.Err)
	assertf(t, st.BytesFromClient == int64(len(up)) && st.BytesFromBackend == 14, "bytes %d %d", st.BytesFromClient, st.BytesFromBackend)
}

func TestRawShutdown(t *testing.T) {
	r := newRig(t, Options{}, nil, nil)
	r.tun.Shutdown(CloseServiceRestart, "")
	expectEOF(t, r.client, time.Second)
	expectEOF(t, r.backend, time.Second)
	r.wait(time.Second)
}

func TestPeerLost(t *testing.T) {
	tests := []struct {
		desc        string
		frames      bool
		killBackend bool
		code        int // Close the survivor gets, 0 in raw mode
		err         error
	}{
		{desc: "backend killed", frames: true, killBackend: true, code: CloseInternalError, err: ErrBackendVanished},
		{desc: "client gone", frames: true, code: CloseGoingAway, err: ErrClientVanished},
		{desc: "backend killed raw", killBackend: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := newRig(t, Options{Frames: tt.frames}, nil, nil)
			victim, survivor := r.client, r.backend
			if tt.killBackend {
				victim, survivor = r.backend, r.client
			}
			// Mid-stream: a frame is in flight from the survivor.
			frame := wsFrame(0x82, make([]byte, 64), tt.killBackend)
			go survivor.Write(frame)
			readExactly(t, victim, len(frame))
			start := time.Now()
			victim.Close()
			if tt.code != 0 {
				expectClose(t, survivor, tt.code, tt.killBackend == false)
			}
			expectEOF(t, survivor, time.Second)
			assertf(t, time.Since(start) < time.Second, "survivor closed after %v", time.Since(start))
			st := r.wait(time.Second)
			assertf(t, errors.Is(st.Err, tt.err), "Err = %v, want %v", st.Err, tt.err)
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	for _, frames := range []bool{false, true} {
		r := newRig(t, Options{Frames: frames, IdleTimeout: 300 * time.Millisecond}, nil, nil)
		start := time.Now()
		// Traffic keeps it open.
		for i := 0; i < 4; i++ {
			time.Sleep(150 * time.Millisecond)
			r.client.Write(wsFrame(0x81, []byte("tick"), true))
			readExactly(t, r.backend, 10)
		}
		if frames {
			expectClose(t, r.client, CloseGoingAway, false)
		}
		expectEOF(t, r.client, 2*time.Second)
		st := r.wait(2 * time.Second)
		assertf(t, time.Since(start) >= 900*time.Millisecond, "closed after %v despite traffic", time.Since(start))
		assertf(t, errors.Is(st.Err, ErrIdleTimeout), "Err = %v", st.Err)
	}
}

// TestDeadPeer: a client that never answers pings is dropped within
// PingInterval+PingTimeout, and the backend gets Close 1001.
func TestDeadPeer(t *testing.T) {
	const interval, timeout = 400 * time.Millisecond, 300 * time.Millisecond
	r := newRig(t, Options{Frames: true, PingInterval: interval, PingTimeout: timeout}, nil, nil)
	start := time.Now()
	// The backend answers pings; the client reads them and stays silent.
	go func() {
		for {
			f, err := readFrame(r.backend)
			if err != nil {
				return
			}
			if f.opcode() == opPing {
				assertf(t, f.masked, "ping to backend not masked")
				r.backend.Write(wsFrame(0x8A, f.payload, false))
			}
		}
	}()
	r.client.SetReadDeadline(time.Now().Add(3 * time.Second))
	f, err := readFrame(r.client)
	assertf(t, err == nil && f.opcode() == opPing && !f.masked, "want unmasked ping, got %#x %v", f.b0, err)
	expectEOF(t, r.client, 3*time.Second)
	elapsed := time.Since(start)
	assertf(t, elapsed >= interval && elapsed < interval+timeout+300*time.Millisecond, "dead client closed after %v", elapsed)
	st := r.wait(2 * time.Second)
	assertf(t, errors.Is(st.Err, ErrPingTimeout), "Err = %v", st.Err)
	assertf(t, st.CloseCode == CloseGoingAway && st.CloseBy == "proxy", "close %d by %q", st.CloseCode, st.CloseBy)
}

// TestBackpressure: a client that does not read stops the backend's writes;
// the tunnel does not buffer without bound.
func TestBackpressure(t *testing.T) {
	r := newRig(t, Options{Frames: true}, nil, nil)
	var written int64
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		frame := wsFrame(0x82, make([]byte, 64<<10), false)
		for i := 0; i < 4096; i++ { // at most 256 MiB
			r.backend.SetWriteDeadline(time.Now().Add(time.Second))
			n, err := r.backend.Write(frame)
			written += int64(n)
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("backend writer neither finished nor stalled")
	}
	assertf(t, written < 64<<20, "backend wrote %d bytes to a client that reads nothing", written)
	// Everything written so far still arrives intact once the client reads.
	r.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got := int64(0); got < written-(64<<10+10); {
		f, err := readFrame(r.client)
		assertf(t, err == nil && len(f.payload) == 64<<10, "frame: %v", err)
		got += int64(len(f.payload) + 10)
	}
}

func TestRegistryDrain(t *testing.T) {
	var reg Registry
	const n = 4
	const window = 800 * time.Millisecond
	rigs := make([]*rig, n)
	for i := range rigs {
		rigs[i] = newRig(t, Options{Frames: true}, nil, nil)
		remove := reg.Add(rigs[i].tun)
		rigs[i].tun.SetTag(i)
		go func() { <-rigs[i].tun.Done(); remove(); remove() }()
	}
	// A tunnel the match function keeps.
	kept := newRig(t, Options{Frames: true}, nil, nil)
	defer reg.Add(kept.tun)()
	kept.tun.SetTag("keep")
	assertf(t, reg.Len() == n+1, "Len = %d", reg.Len())

	times := make(chan time.Time, n)
	for _, r := range rigs {
		go func() {
			f, err := readFrame(r.client)
			if err == nil && f.opcode() == opClose && f.closeCode() == CloseServiceRestart {
				times <- time.Now()
				r.client.Write(wsFrame(0x88, f.payload[:2], true))
			}
		}()
		go func() {
			if f, err := readFrame(r.backend); err == nil && f.opcode() == opClose {
				r.backend.Write(wsFrame(0x88, f.payload[:2], false))
			}
		}()
	}
	start := time.Now()
	reg.Drain(t.Context(), window, CloseServiceRestart, func(t *Tunnel) bool { return t.Tag() != "keep" })
	assertf(t, time.Since(start) >= window, "Drain returned after %v", time.Since(start))
	var first, last time.Time
	for i := 0; i < n; i++ {
		select {
		case ts := <-times:
			if first.IsZero() || ts.Before(first) {
				first = ts
			}
			if ts.After(last) {
				last = ts
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("only %d of %d clients got Close 1012", i, n)
		}
	}
	assertf(t, last.Sub(first) >= window/2, "shutdowns spread over %v, window %v", last.Sub(first), window)
	deadline := time.Now().Add(2 * time.Second)
	for reg.Len() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assertf(t, reg.Len() == 1, "Len after drain = %d", reg.Len())
	select {
	case <-kept.tun.Done():
		t.Fatal("kept tunnel was shut down")
	default:
	}
	reg.ShutdownAll(CloseGoingAway, "")
	expectClose(t, kept.client, CloseGoingAway, false)
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		desc string
		b    []byte
		ok   bool
		want header
	}{
		{desc: "short", b: []byte{0x81}},
		{desc: "text", b: []byte{0x81, 5}, ok: true, want: header{fin: true, opcode: 1, length: 5, size: 2}},
		{desc: "16-bit short", b: []byte{0x82, 126, 1}},
		{desc: "16-bit", b: []byte{0x02, 126, 1, 0}, ok: true, want: header{opcode: 2, length: 256, size: 4}},
		{desc: "64-bit masked", b: []byte{0xC2, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}, ok: true,
			want: header{fin: true, rsv: 0x40, opcode: 2, masked: true, key: [4]byte{1, 2, 3, 4}, length: 1 << 32, size: 14}},
		{desc: "64-bit top bit", b: []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, ok: true, want: header{fin: true, opcode: 2, length: -1, size: 10}},
		{desc: "masked short", b: []byte{0x81, 0x81, 1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			h, ok := parseHeader(tt.b)
			assertf(t, ok == tt.ok, "ok = %v", ok)
			if ok {
				assertf(t, h == tt.want, "got %+v, want %+v", h, tt.want)
			}
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4})
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := parseHeader(b)
		if !ok {
			return
		}
		if h.size < 2 || h.size > maxHeaderLen || h.size > len(b) {
			t.Fatalf("size %d for %d bytes", h.size, len(b))
		}
		want := 2 + map[byte]int{126: 2, 127: 8}[b[1]&0x7f]
		if b[1]&0x80 != 0 {
			want += 4
		}
		if h.size != want {
			t.Fatalf("size %d, want %d", h.size, want)
		}
	})
}

// TestOwnPongConsumed: the Pong answering the proxy's ping is not forwarded;
// other pongs are.
func TestOwnPongConsumed(t *testing.T) {
	r := newRig(t, Options{Frames: true, PingInterval: 200 * time.Millisecond, PingTimeout: 5 * time.Second}, nil, nil)
	r.client.SetReadDeadline(time.Now().Add(3 * time.Second))
	ping, err := readFrame(r.client)
	assertf(t, err == nil && ping.opcode() == opPing && !ping.masked, "want unmasked ping: %v", err)
	assertf(t, len(ping.payload) == 8, "ping payload %d bytes", len(ping.payload))
	answer := wsFrame(0x8A, ping.payload, true)
	unsolicited := wsFrame(0x8A, []byte("mine"), true)
	text := wsFrame(0x81, []byte("after the pong"), true)
	r.client.Write(append(append(append([]byte{}, answer...), unsolicited...), text...))

	r.backend.SetReadDeadline(time.Now().Add(3 * time.Second))
	var got []rawFrame
	for len(got) < 2 {
		f, err := readFrame(r.backend)
		assertf(t, err == nil, "backend read: %v", err)
		if f.opcode() == opPing { // the proxy pings the backend too
			assertf(t, f.masked, "ping to backend not masked")
			r.backend.Write(wsFrame(0x8A, f.payload, false))
			continue
		}
		got = append(got, f)
	}
	assertf(t, got[0].opcode() == opPong && string(got[0].payload) == "mine", "first frame %#x %q", got[0].b0, got[0].payload)
	assertf(t, got[1].opcode() == opText && string(got[1].payload) == "after the pong", "second frame %#x %q", got[1].b0, got[1].payload)
	st := r.stats
	select {
	case <-st:
		t.Fatal("tunnel ended")
	default:
	}
}

// TestSendTimeout: a client that stops reading fails the tunnel after
// SendTimeout, and the backend gets Close 1001.
func TestSendTimeout(t *testing.T) {
	r := newRig(t, Options{Frames: true, SendTimeout: 300 * time.Millisecond}, nil, nil)
	go func() {
		frame := wsFrame(0x82, make([]byte, 64<<10), false)
		for i := 0; i < 4096; i++ {
			r.backend.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := r.backend.Write(frame); err != nil {
				return
			}
		}
	}()
	expectClose(t, r.backend, CloseGoingAway, true)
	st := r.wait(3 * time.Second)
	assertf(t, errors.Is(st.Err, os.ErrDeadlineExceeded), "Err = %v", st.Err)
}

// TestIdleMemory: an idle tunnel holds no forwarding buffer.
func TestIdleMemory(t *testing.T) {
	const n = 100
	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // the second GC empties sync.Pool's victim cache
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	rigs := make([]*rig, n)
	up := wsFrame(0x82, make([]byte, 1000), true)
	down := wsFrame(0x82, make([]byte, 1000), false)
	for i := range rigs {
		r := newRig(t, Options{Frames: true, IdleTimeout: time.Minute, PingInterval: time.Minute}, nil, nil)
		rigs[i] = r
		r.client.Write(up)
		readExactly(t, r.backend, len(up))
		r.backend.Write(down)
		readExactly(t, r.client, len(down))
	}
	time.Sleep(100 * time.Millisecond)
	after := heap()
	per := (int64(after) - int64(before)) / n
	t.Logf("heap per idle tunnel: %d bytes (4 sockets, tunnel state; buffers pooled)", per)
	assertf(t, per < bufSize/2, "idle tunnel holds %d heap bytes: a forwarding buffer is not released", per)
	runtime.KeepAlive(rigs)
}

// randomFrames returns a random valid frame stream: messages of random size
// and fragmentation with control frames between fragments.
func randomFrames(rng *rand.Rand, mask bool, messages int) []byte {
	var b []byte
	for m := 0; m < messages; m++ {
		frags := 1 + rng.IntN(4)
		op := byte(1 + rng.IntN(2))
		for f := 0; f < frags; f++ {
			b0 := byte(0)
			if f == 0 {
				b0 = op | byte(rng.IntN(2))<<6 // RSV1 sometimes
			}
			if f == frags-1 {
				b0 |= 0x80
			}
			size := rng.IntN(100)
			if rng.IntN(8) == 0 {
				size = rng.IntN(100_000)
			}
			p := make([]byte, size)
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			b = append(b, wsFrame(b0, p, mask)...)
			if rng.IntN(3) == 0 {
				b = append(b, wsFrame(0x89+byte(rng.IntN(2)), make([]byte, rng.IntN(126)), mask)...)
			}
		}
	}
	return b
}

// TestRandomFramesBothWays sends random frame streams in both directions at
// once, in random chunks, and compares the bytes.
func TestRandomFramesBothWays(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		rng := rand.New(rand.NewPCG(seed, 42))
		r := newRig(t, Options{Frames: true, MaxMessageSize: 1 << 20}, nil, nil)
		up := randomFrames(rng, true, 60)
		down := randomFrames(rng, false, 60)
		go writeChunks(t, r.client, up)
		go writeChunks(t, r.backend, down)
		gotDown := make(chan []byte, 1)
		go func() {
			r.client.SetReadDeadline(time.Now().Add(5 * time.Second))
			b := make([]byte, len(down))
			n, _ := io.ReadFull(r.client, b)
			gotDown <- b[:n]
		}()
		gotUp := readExactly(t, r.backend, len(up))
		assertf(t, bytes.Equal(gotUp, up), "seed %d: client->backend bytes differ", seed)
		assertf(t, bytes.Equal(<-gotDown, down), "seed %d: backend->client bytes differ", seed)
		r.client.Close()
		r.backend.Close()
		st := r.wait(2 * time.Second)
		assertf(t, st.MessagesIn == 60 && st.MessagesOut == 60, "seed %d: messages %d/%d", seed, st.MessagesIn, st.MessagesOut)
	}
}
