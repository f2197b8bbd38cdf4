package tunnel

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// raiseFDLimit lifts the soft open-file limit to the hard one and returns it.
func raiseFDLimit(t testing.TB) uint64 {
	var lim syscall.Rlimit
	assertf(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil, "getrlimit")
	old := lim
	lim.Cur = lim.Max
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return old.Cur
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	return lim.Cur
}

// pairMaker makes loopback TCP pairs from one listener.
type pairMaker struct {
	t  testing.TB
	ln net.Listener
}

func newPairMaker(t testing.TB) *pairMaker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assertf(t, err == nil, "listen: %v", err)
	t.Cleanup(func() { ln.Close() })
	return &pairMaker{t: t, ln: ln}
}

func (m *pairMaker) pair() (a, b net.Conn) {
	a, err := net.Dial("tcp", m.ln.Addr().String())
	assertf(m.t, err == nil, "dial: %v", err)
	b, err = m.ln.Accept()
	assertf(m.t, err == nil, "accept: %v", err)
	return a, b
}

// echoOnce sends a masked frame from the client end, answers it from the
// backend end and checks both arrive unchanged.
func echoOnce(t testing.TB, c, b net.Conn, payload []byte) {
	t.Helper()
	up := wsFrame(0x82, payload, true)
	_, err := c.Write(up)
	assertf(t, err == nil, "client write: %v", err)
	got := readExactly(t, b, len(up))
	assertf(t, bytes.Equal(got, up), "client frame changed")
	down := wsFrame(0x82, payload, false)
	_, err = b.Write(down)
	assertf(t, err == nil, "backend write: %v", err)
	got = readExactly(t, c, len(down))
	assertf(t, bytes.Equal(got, down), "backend frame changed")
}

// TestManyIdleTunnels holds thousands of idle epoll tunnels at once and
// checks that they cost no goroutine, and that every one still echoes after
// the hold. The test's own ends of the sockets live in this process too, so
// each tunnel needs four descriptors: 4000 tunnels are 16000 descriptors,
// under the 20000 hard limit here (9000 would need 36000). The proxy alone
// holds two per tunnel, as in wsbench idle.
func TestManyIdleTunnels(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	limit := raiseFDLimit(t)
	n := 4000
	if max := (int(limit) - countFDs() - 200) / 4; n > max {
		n = max
	}
	assertf(t, n >= 500, "only %d descriptors", limit)
	heap := func() (uint64, uint64) {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, ms.StackInuse
	}
	m := newPairMaker(t)
	type tun struct {
		c, b net.Conn
		tn   *Tunnel
	}
	tuns := make([]tun, n)
	ended := make(chan Stats, n)
	g0 := runtime.NumGoroutine()
	heap0, stack0 := heap()
	opt := Options{Frames: true, IdleTimeout: time.Minute, PingInterval: time.Minute}
	for i := range tuns {
		c, pc := m.pair()
		pb, b := m.pair()
		tn := New(pc, nil, pb, nil, opt)
		assertf(t, tn.ep != nil, "not the epoll engine")
		tn.RunAsync(context.Background(), func(st Stats) { ended <- st })
		tuns[i] = tun{c, b, tn}
		echoOnce(t, c, b, []byte("hello"))
	}
	time.Sleep(500 * time.Millisecond)
	heap1, stack1 := heap()
	g1 := runtime.NumGoroutine()
	t.Logf("%d idle tunnels: %d goroutines more, heap %d B and stacks %d B per tunnel (with the test's 2 sockets)",
		n, g1-g0, (int64(heap1)-int64(heap0))/int64(n), (int64(stack1)-int64(stack0))/int64(n))
	assertf(t, g1-g0 < 10, "%d goroutines for %d idle tunnels", g1-g0, n)
	payload := make([]byte, 64)
	for _, x := range tuns {
		echoOnce(t, x.c, x.b, payload)
	}
	select {
	case st := <-ended:
		t.Fatalf("a tunnel ended: %+v", st)
	default:
	}
	for _, x := range tuns {
		x.tn.Shutdown(CloseGoingAway, "")
		x.c.Close()
		x.b.Close()
	}
	for i := 0; i < n; i++ {
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d tunnels still running", n-i, n)
		}
	}
}

// TestLargeRandomMessages sends messages of 0 B to 1 MiB, fragmented, with
// control frames between fragments, both ways at once through a slow reader
// on each side, and compares the bytes.
func TestLargeRandomMessages(t *testing.T) { bothEngines(t, testLargeRandomMessages) }

func testLargeRandomMessages(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	stream := func(mask bool) []byte {
		var b []byte
		for m := 0; m < 12; m++ {
			size := rng.IntN(1<<20 + 1)
			if m%4 == 0 {
				size = rng.IntN(3)
			}
			p := make([]byte, size)
			for i := range p {
				p[i] = byte(i * 7)
			}
			frags := 1 + rng.IntN(3)
			for f := 0; f < frags; f++ {
				part := p[f*len(p)/frags : (f+1)*len(p)/frags]
				var b0 byte
				if f == 0 {
					b0 = 0x2
				}
				if f == frags-1 {
					b0 |= 0x80
				}
				b = append(b, wsFrame(b0, part, mask)...)
				b = append(b, wsFrame(0x89, []byte("ping"), mask)...)
			}
		}
		return b
	}
	r := newRig(t, Options{Frames: true, MaxMessageSize: 2 << 20}, nil, nil)
	up, down := stream(true), stream(false)
	go writeChunks(t, r.client, up)
	go writeChunks(t, r.backend, down)
	slowRead := func(c net.Conn, n int, out chan<- []byte) {
		var got []byte
		buf := make([]byte, 100_000)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for len(got) < n {
			k, err := c.Read(buf[:1+rand.IntN(len(buf)-1)])
			got = append(got, buf[:k]...)
			if err != nil {
				break
			}
			if rand.IntN(50) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		out <- got
	}
	gotUp, gotDown := make(chan []byte, 1), make(chan []byte, 1)
	go slowRead(r.backend, len(up), gotUp)
	go slowRead(r.client, len(down), gotDown)
	assertf(t, bytes.Equal(<-gotUp, up), "client->backend bytes differ")
	assertf(t, bytes.Equal(<-gotDown, down), "backend->client bytes differ")
}

// TestAbruptClose resets one side's connection (RST, no FIN, no Close
// frame) and checks the survivor gets its Close and the tunnel ends.
func TestAbruptClose(t *testing.T) { bothEngines(t, testAbruptClose) }

func testAbruptClose(t *testing.T) {
	for _, killBackend := range []bool{false, true} {
		r := newRig(t, Options{Frames: true}, nil, nil)
		echoOnce(t, r.client, r.backend, []byte("before"))
		victim, survivor, code := r.client, r.backend, CloseGoingAway
		if killBackend {
			victim, survivor, code = r.backend, r.client, CloseInternalError
		}
		victim.(*net.TCPConn).SetLinger(0)
		victim.Close()
		expectClose(t, survivor, code, !killBackend)
		expectEOF(t, survivor, 2*time.Second)
		st := r.wait(2 * time.Second)
		assertf(t, st.Err != nil, "Err = nil after a reset")
	}
}

// TestSlowReaderBounded: a client that reads nothing while the backend
// sends 64 MiB; the process heap stays bounded.
func TestSlowReaderBounded(t *testing.T) { bothEngines(t, testSlowReaderBounded) }

func testSlowReaderBounded(t *testing.T) {
	r := newRig(t, Options{Frames: true}, nil, nil)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	frame := wsFrame(0x82, make([]byte, 1<<20), false)
	var written int
	var rest []byte // of a frame cut by the write deadline
	for i := 0; i < 64; i++ {
		r.backend.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := r.backend.Write(frame)
		written += n
		if err != nil {
			rest = frame[n:]
			break
		}
	}
	runtime.ReadMemStats(&ms1)
	grew := int64(ms1.HeapInuse) - int64(ms0.HeapInuse)
	t.Logf("backend wrote %d bytes to a stalled client; heap in use grew %d bytes", written, grew)
	assertf(t, written < 48<<20, "no backpressure: %d bytes written", written)
	assertf(t, grew < 8<<20, "heap grew %d bytes", grew)
	r.backend.SetWriteDeadline(time.Time{})
	// Once the client reads, everything written arrives.
	go func() {
		r.backend.Write(append(rest, wsFrame(0x82, []byte("end"), false)...))
	}()
	r.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := readFrame(r.client)
		assertf(t, err == nil, "client read: %v", err)
		if len(f.payload) == 3 {
			break
		}
	}
}

// TestRunAsync: done is called once, after Done is closed, for either
// engine and for connections the epoll engine cannot take (net.Pipe).
func TestRunAsync(t *testing.T) { bothEngines(t, testRunAsync) }

func testRunAsync(t *testing.T) {
	for _, pipe := range []bool{false, true} {
		var c, pc net.Conn
		if pipe {
			c, pc = net.Pipe()
		} else {
			c, pc = tcpPair(t)
		}
		pb, b := tcpPair(t)
		tn := New(pc, nil, pb, nil, Options{Frames: true})
		checkEngine(t, tn, pc)
		calls := make(chan Stats, 2)
		tn.RunAsync(t.Context(), func(st Stats) {
			select {
			case <-tn.Done():
			default:
				t.Error("done called before Done was closed")
			}
			calls <- st
		})
		echoOnce(t, c, b, []byte("async"))
		c.Write(wsFrame(0x88, closePayload(1000, ""), true))
		expectClose(t, b, 1000, true)
		b.Write(wsFrame(0x88, closePayload(1000, ""), false))
		expectClose(t, c, 1000, false)
		select {
		case st := <-calls:
			assertf(t, st.Err == nil && st.CloseCode == 1000 && st.CloseBy == "client", "stats %+v", st)
		case <-time.After(3 * time.Second):
			t.Fatal("done not called")
		}
		time.Sleep(50 * time.Millisecond)
		assertf(t, len(calls) == 0, "done called twice")
		c.Close()
		b.Close()
	}
}
