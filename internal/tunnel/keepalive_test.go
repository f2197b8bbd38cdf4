package tunnel

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestIdleTimeout(t *testing.T) { bothEngines(t, testIdleTimeout) }

func testIdleTimeout(t *testing.T) {
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
func TestDeadPeer(t *testing.T) { bothEngines(t, testDeadPeer) }

func testDeadPeer(t *testing.T) {
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

// TestOwnPongConsumed: the Pong answering the proxy's ping is not forwarded;
// other pongs are.
func TestOwnPongConsumed(t *testing.T) { bothEngines(t, testOwnPongConsumed) }

func testOwnPongConsumed(t *testing.T) {
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
func TestSendTimeout(t *testing.T) { bothEngines(t, testSendTimeout) }

func testSendTimeout(t *testing.T) {
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
