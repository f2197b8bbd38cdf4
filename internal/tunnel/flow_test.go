package tunnel

import (
	"runtime"
	"testing"
	"time"
)

// TestBackpressure: a client that does not read stops the backend's writes;
// the tunnel does not buffer without bound.
func TestBackpressure(t *testing.T) { bothEngines(t, testBackpressure) }

func testBackpressure(t *testing.T) {
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

// TestIdleMemory: an idle tunnel holds no forwarding buffer.
func TestIdleMemory(t *testing.T) { bothEngines(t, testIdleMemory) }

func testIdleMemory(t *testing.T) {
	const n = 100
	var stack uint64
	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // the second GC empties sync.Pool's victim cache
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		stack = ms.StackInuse
		return ms.HeapAlloc
	}
	before := heap()
	stack0 := stack
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
	t.Logf("per idle tunnel: heap %d bytes (4 test sockets and tunnel state), goroutine stacks %d bytes",
		per, (int64(stack)-int64(stack0))/n)
	assertf(t, per < bufSize/2, "idle tunnel holds %d heap bytes: a forwarding buffer is not released", per)
	runtime.KeepAlive(rigs)
}
