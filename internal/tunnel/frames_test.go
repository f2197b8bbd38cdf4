package tunnel

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
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

func TestFramesPassUnchanged(t *testing.T) { bothEngines(t, testFramesPassUnchanged) }

func testFramesPassUnchanged(t *testing.T) {
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

// TestSplitHeaders feeds the client side one byte per write: with the
// goroutine engine over net.Pipe (no syscall.Conn, so this also covers the
// buffered read path) one byte per read; with the epoll engine over TCP.
func TestSplitHeaders(t *testing.T) { bothEngines(t, testSplitHeaders) }

func testSplitHeaders(t *testing.T) {
	c, pc := net.Pipe()
	if epollAvailable && !forceGoroutines {
		c, pc = tcpPair(t)
	}
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

func TestBufferedHandoff(t *testing.T) { bothEngines(t, testBufferedHandoff) }

func testBufferedHandoff(t *testing.T) {
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

func TestBufferedHandoffRaw(t *testing.T) { bothEngines(t, testBufferedHandoffRaw) }

func testBufferedHandoffRaw(t *testing.T) {
	r := newRig(t, Options{}, []byte("early "), []byte("hello "))
	got := readExactly(t, r.client, 6)
	assertf(t, string(got) == "hello ", "got %q", got)
	r.client.Write([]byte("bird"))
	got = readExactly(t, r.backend, 10)
	assertf(t, string(got) == "early bird", "got %q", got)
}

func TestProtocolErrors(t *testing.T) { bothEngines(t, testProtocolErrors) }

func testProtocolErrors(t *testing.T) {
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

func TestLimits(t *testing.T) { bothEngines(t, testLimits) }

func testLimits(t *testing.T) {
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
func TestRandomFramesBothWays(t *testing.T) { bothEngines(t, testRandomFramesBothWays) }

func testRandomFramesBothWays(t *testing.T) {
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
