package tunnel

import (
	"testing"
	"time"
)

func TestRegistryDrain(t *testing.T) { bothEngines(t, testRegistryDrain) }

func testRegistryDrain(t *testing.T) {
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
