package tunnel

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestShutdownRawWire(t *testing.T) { bothEngines(t, testShutdownRawWire) }

func testShutdownRawWire(t *testing.T) {
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
func TestShutdownAtFrameBoundary(t *testing.T) { bothEngines(t, testShutdownAtFrameBoundary) }

func testShutdownAtFrameBoundary(t *testing.T) {
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

func TestShutdownBeforeRun(t *testing.T) { bothEngines(t, testShutdownBeforeRun) }

func testShutdownBeforeRun(t *testing.T) {
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

func TestContextCancel(t *testing.T) { bothEngines(t, testContextCancel) }

func testContextCancel(t *testing.T) {
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

func TestRawMode(t *testing.T) { bothEngines(t, testRawMode) }

func testRawMode(t *testing.T) {
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

func TestRawShutdown(t *testing.T) { bothEngines(t, testRawShutdown) }

func testRawShutdown(t *testing.T) {
	r := newRig(t, Options{}, nil, nil)
	r.tun.Shutdown(CloseServiceRestart, "")
	expectEOF(t, r.client, time.Second)
	expectEOF(t, r.backend, time.Second)
	r.wait(time.Second)
}

func TestPeerLost(t *testing.T) { bothEngines(t, testPeerLost) }

func testPeerLost(t *testing.T) {
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

// TestDataThenFIN: a peer that sends its last bytes and closes at once. The
// FIN arrives with the data (one readiness event); the tunnel must still see
// the EOF right away.
func TestDataThenFIN(t *testing.T) { bothEngines(t, testDataThenFIN) }

func testDataThenFIN(t *testing.T) {
	for i := 0; i < 20; i++ {
		frames := i%2 == 0
		r := newRig(t, Options{Frames: frames}, nil, nil)
		frame := wsFrame(0x82, []byte("last words"), false)
		r.backend.Write(frame)
		r.backend.Close()
		got := readExactly(t, r.client, len(frame))
		assertf(t, bytes.Equal(got, frame), "frame changed")
		if frames {
			expectClose(t, r.client, CloseInternalError, false)
		}
		expectEOF(t, r.client, time.Second)
		r.wait(time.Second)
	}
}
