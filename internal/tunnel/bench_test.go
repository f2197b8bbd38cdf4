package tunnel

import (
	"io"
	"testing"
	"time"
)

func BenchmarkParseHeader(b *testing.B) {
	frames := [][]byte{
		wsFrame(0x81, make([]byte, 100), true),
		wsFrame(0x82, make([]byte, 1000), false),
		wsFrame(0x82, make([]byte, 70000), true)[:14],
	}
	b.ReportAllocs()
	var n int64
	for i := 0; b.Loop(); i++ {
		h, ok := parseHeader(frames[i%len(frames)])
		if !ok {
			b.Fatal("short")
		}
		n += h.length
	}
	_ = n
}

// benchForward measures one direction of a frame-aware tunnel: b.N frames of
// size payload from client to backend, over loopback TCP.
func benchForward(b *testing.B, opt Options, payload int) {
	r := newRig(b, opt, nil, nil)
	frame := wsFrame(0x82, make([]byte, payload), true)
	batch := make([]byte, 0, 64<<10)
	for len(batch)+len(frame) <= cap(batch) {
		batch = append(batch, frame...)
	}
	perBatch := len(batch) / len(frame)
	done := make(chan error, 1)
	want := int64(len(frame))
	b.SetBytes(want)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		buf := make([]byte, 64<<10)
		total := want * int64(b.N)
		for total > 0 {
			n, err := r.backend.Read(buf[:min(int64(len(buf)), total)])
			if err != nil {
				done <- err
				return
			}
			total -= int64(n)
		}
		done <- nil
	}()
	for left := b.N; left > 0; {
		k := min(left, perBatch)
		if _, err := r.client.Write(batch[:k*len(frame)]); err != nil {
			b.Fatal(err)
		}
		left -= k
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

func BenchmarkForwardFrames128(b *testing.B) { benchForward(b, Options{Frames: true}, 128) }
func BenchmarkForwardFrames16K(b *testing.B) { benchForward(b, Options{Frames: true}, 16<<10) }
func BenchmarkForwardRaw16K(b *testing.B)    { benchForward(b, Options{}, 16<<10) }

// BenchmarkForwardFramesLimits forwards with every per-frame check on.
func BenchmarkForwardFramesLimits(b *testing.B) {
	benchForward(b, Options{Frames: true, MaxMessageSize: 1 << 20, MaxFrameRate: 1 << 30,
		SendTimeout: time.Minute, IdleTimeout: time.Minute, PingInterval: time.Minute}, 128)
}

// BenchmarkEchoRoundTrip is one small message client -> backend -> client
// per op, the backend echoing: the proxy's cost per round trip.
func BenchmarkEchoRoundTrip(b *testing.B) {
	r := newRig(b, Options{Frames: true}, nil, nil)
	up := wsFrame(0x82, make([]byte, 64), true)
	down := wsFrame(0x82, make([]byte, 64), false)
	go func() {
		buf := make([]byte, len(up))
		for {
			if _, err := io.ReadFull(r.backend, buf); err != nil {
				return
			}
			if _, err := r.backend.Write(down); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, len(down))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.client.Write(up); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r.client, buf); err != nil {
			b.Fatal(err)
		}
	}
}
