//go:build linux

package tunnel

import (
	"container/heap"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// forceGoroutines selects the goroutine engine for every tunnel
// (WSGATE_TUNNEL_ENGINE=goroutine), for A/B comparisons. Tests switch it.
var forceGoroutines = os.Getenv("WSGATE_TUNNEL_ENGINE") == "goroutine"

// useEpoll reports whether the epoll engine can carry a tunnel between
// client and backend: it needs the plain TCP sockets.
func useEpoll(client, backend net.Conn) bool {
	if forceGoroutines {
		return false
	}
	_, ok1 := client.(*net.TCPConn)
	_, ok2 := backend.(*net.TCPConn)
	return ok1 && ok2
}

// loopBufSize is the read buffer of an event loop, shared by its tunnels.
const loopBufSize = 64 << 10

// outPool holds the buffers of unsent bytes to a peer that is slower than
// its partner. A read is at most loopBufSize bytes and the source is not
// read again until the rest has been sent, so one buffer is enough.
var outPool = sync.Pool{New: func() any {
	b := make([]byte, 0, loopBufSize+1024)
	return &b
}}

// loop is one event loop: a goroutine blocked in epoll_wait that carries
// every tunnel assigned to it. All tunnel state it touches belongs to it;
// other goroutines reach a tunnel only through post.
type loop struct {
	epfd         int
	wakeR, wakeW int // a pipe: a byte in it wakes epoll_wait for posted work

	mu      sync.Mutex // guards the fields below
	posted  []*epollTunnel
	woken   bool // a byte is in the pipe or the loop is about to take posted
	live    int  // tunnels started on this loop and not finished
	running bool // the loop goroutine runs; it exits when live is 0

	// Owned by the loop goroutine.
	peers  []*epPeer // by file descriptor
	timers timerHeap // tunnels by the time they need a look
	due    []*epollTunnel
	work   []*epollTunnel
	events []syscall.EpollEvent

	file     *os.File        // epfd, polled by Go; nil if it cannot be
	rc       syscall.RawConn // file's
	deadline int64           // file's read deadline in monotime, 0 if none, -1 unknown
	exit     bool            // serveReady found the loop quiet
	again    bool            // a read filled the buffer: the socket may hold more
	gen      uint32          // tells a descriptor's registrations apart
	now      int64           // Tunnel.clock of the tunnel being served, at its last read
	tick     int64           // monotime at the last wake-up (epollTunnel.clock)
	buf      [loopBufSize + maxControlFrame]byte
	ctl      [maxControlFrame]byte
	payload  [maxControlPayload]byte
}

var (
	loopsOnce sync.Once
	loops     []*loop
	loopsErr  error
	loopNext  atomic.Uint32
)

// startEngine creates GOMAXPROCS event loops, once. Their descriptors live
// as long as the process, like Go's own network poller; a loop's goroutine
// runs only while the loop carries tunnels.
func startEngine() {
	loopsOnce.Do(func() {
		n := runtime.GOMAXPROCS(0)
		for i := 0; i < n; i++ {
			l, err := newLoop()
			if err != nil {
				loopsErr = err
				return
			}
			loops = append(loops, l)
		}
	})
}

func newLoop() (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("pipe2", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(p[0])
		syscall.Close(p[1])
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := &loop{epfd: epfd, wakeR: p[0], wakeW: p[1], deadline: -1, events: make([]syscall.EpollEvent, 256)}
	// Let Go's poller watch the epoll descriptor (see run).
	if syscall.SetNonblock(epfd, true) == nil {
		f := os.NewFile(uintptr(epfd), "epoll")
		if f.SetReadDeadline(time.Time{}) == nil {
			if rc, err := f.SyscallConn(); err == nil {
				l.file, l.rc = f, rc
			}
		}
	}
	return l, nil
}

// pickLoop assigns loops round robin.
func pickLoop() *loop {
	return loops[int(loopNext.Add(1))%len(loops)]
}

// begin posts a new tunnel to the loop, starting its goroutine if it is not
// running.
func (l *loop) begin(e *epollTunnel) {
	l.mu.Lock()
	l.live++
	if !l.running {
		l.running = true
		go l.run()
	}
	l.mu.Unlock()
	l.post(e)
}

// end records that a tunnel of the loop has finished. Called by the loop.
func (l *loop) end() {
	l.mu.Lock()
	l.live--
	l.mu.Unlock()
}

// quiet reports whether the loop has nothing left to carry.
func (l *loop) quiet() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live == 0 && len(l.posted) == 0
}

// idle reports whether the loop has nothing left to carry; if so, its
// goroutine must exit at once.
func (l *loop) idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live > 0 || len(l.posted) > 0 {
		return false
	}
	l.running = false
	return true
}

// post asks the loop to look at e (register it, or act on Shutdown, a
// cancelled context or a timer). Safe for concurrent use. A loop that is not
// running has no live tunnel: the post is about an ended one and is dropped.
func (l *loop) post(e *epollTunnel) {
	l.mu.Lock()
	if !l.running {
		l.mu.Unlock()
		return
	}
	l.posted = append(l.posted, e)
	wake := !l.woken
	l.woken = true
	l.mu.Unlock()
	if wake {
		b := [1]byte{1}
		rawIO(syscall.SYS_WRITE, l.wakeW, b[:], 0) // EAGAIN: the pipe is full, the loop will wake anyway
	}
}

// takePosted empties the pipe, then the posted list. In that order, a post
// racing with it either lands in the list taken or writes a new byte.
func (l *loop) takePosted(into []*epollTunnel) []*epollTunnel {
	var b [64]byte
	for {
		if _, err := rawIO(syscall.SYS_READ, l.wakeR, b[:], 0); err != nil {
			break
		}
	}
	l.mu.Lock()
	into = append(into[:0], l.posted...)
	clear(l.posted)
	l.posted = l.posted[:0]
	l.woken = false
	l.mu.Unlock()
	return into
}

// run is the event loop goroutine. It exits when the loop has no tunnel.
//
// The loop's epoll descriptor is itself polled by Go's network poller
// (l.rc), so an idle loop is a parked goroutine, not a thread blocked in
// epoll_wait: waking it costs no thread handoff, and the earliest tunnel
// timer is the read deadline. If the runtime cannot poll it, the loop blocks
// in epoll_wait instead.
func (l *loop) run() {
	if l.rc == nil {
		l.runBlocking()
		return
	}
	for {
		err := l.rc.Read(l.serveReady)
		if l.exit {
			l.exit = false
			if l.idle() {
				return // the loop is another goroutine's from here on
			}
			continue
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			panic(fmt.Errorf("tunnel: event loop: %w", err))
		}
		if err != nil {
			// A passed deadline fails every Read before the callback
			// runs: clear it; serveReady expires the timers and sets
			// the next one.
			l.file.SetReadDeadline(time.Time{})
			l.deadline = 0
		}
	}
}

// serveReady is l.rc's read callback: it serves everything ready, then
// returns false to park until the epoll descriptor is readable again or the
// deadline passes, or true when the loop must exit.
func (l *loop) serveReady(uintptr) bool {
	for {
		n, err := epollPoll(l.epfd, l.events)
		if err != nil {
			panic(os.NewSyscallError("epoll_wait", err))
		}
		l.tick = monotime()
		l.serve(l.events[:n])
		l.expire()
		if l.quiet() {
			l.exit = true
			return true
		}
		// Go's poller watches the epoll descriptor edge-triggered: it
		// reports new readiness (data, a FIN, an EPOLL_CTL_MOD or ADD of
		// a ready socket), not what a level-triggered socket still had
		// after its read. Ask epoll_wait again when that may be so: the
		// batch was full, a read filled the buffer, or a FIN came with
		// the data (TestDataThenFIN).
		if n < len(l.events) && !l.again {
			break
		}
		l.again = false
	}
	var at int64
	if len(l.timers) > 0 {
		at = l.timers[0].at
	}
	if at != l.deadline {
		var d time.Time
		if at != 0 {
			d = epoch.Add(time.Duration(at))
		}
		l.file.SetReadDeadline(d)
		l.deadline = at
	}
	return false
}

// runBlocking is run for a loop whose descriptor Go cannot poll.
func (l *loop) runBlocking() {
	for {
		wait := -1
		if len(l.timers) > 0 {
			d := l.timers[0].at - monotime()
			wait = int(max(0, (d+int64(time.Millisecond)-1)/int64(time.Millisecond)))
		}
		n, err := syscall.EpollWait(l.epfd, l.events, wait)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			panic(os.NewSyscallError("epoll_wait", err))
		}
		l.tick = monotime()
		l.serve(l.events[:n])
		l.expire()
		if l.idle() {
			return
		}
	}
}

// serve handles a batch of readiness events.
func (l *loop) serve(events []syscall.EpollEvent) {
	for i := range events {
		ev := &events[i]
		fd := int(ev.Fd)
		if fd == l.wakeR {
			l.work = l.takePosted(l.work)
			for j, e := range l.work {
				e.poke()
				l.work[j] = nil
			}
			continue
		}
		if fd >= len(l.peers) {
			continue
		}
		p := l.peers[fd]
		if p == nil || p.gen != uint32(ev.Pad) {
			continue // a descriptor closed earlier in this batch
		}
		p.e.handle(p, ev.Events)
	}
}

// add registers p's socket for reading.
func (l *loop) add(p *epPeer) error {
	for p.fd >= len(l.peers) {
		l.peers = append(l.peers, nil)
		l.peers = l.peers[:cap(l.peers)]
	}
	l.gen++
	p.gen = l.gen
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(p.fd), Pad: int32(p.gen)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, p.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.peers[p.fd] = p
	p.events = ev.Events
	p.polled = true
	return nil
}

// watch sets the events p's socket is polled for.
func (l *loop) watch(p *epPeer, events uint32) {
	if !p.polled || p.events == events {
		return
	}
	ev := syscall.EpollEvent{Events: events, Fd: int32(p.fd), Pad: int32(p.gen)}
	if syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, p.fd, &ev) == nil {
		p.events = events
	}
}

// forget stops polling p's socket; it stays open.
func (l *loop) forget(p *epPeer) {
	if !p.polled {
		return
	}
	syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, p.fd, nil)
	p.polled = false
	l.peers[p.fd] = nil
}

// release drops p from the loop's table before its socket is closed;
// closing the socket's last descriptor removes it from the epoll set.
func (l *loop) release(p *epPeer) {
	if p.polled {
		p.polled = false
		l.peers[p.fd] = nil
	}
}

// dupSocket returns a close-on-exec duplicate of c's socket (non-blocking,
// as Go made it). The caller closes c, taking the socket out of Go's
// poller.
func dupSocket(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, syscall.EINVAL
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		r, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0) // raw: see epollPoll
		if errno != 0 {
			derr = os.NewSyscallError("fcntl", errno)
			return
		}
		nfd = int(r)
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return -1, err
	}
	// No F_SETFL: O_NONBLOCK belongs to the open file description, which
	// the duplicate shares with Go's socket, already non-blocking.
	return nfd, nil
}

// epollPoll is epoll_wait with timeout 0 (it never blocks), retried on
// EINTR. It is a raw system call, as Go's own poller makes its
// non-blocking epoll_wait: syscall.EpollWait enters the scheduler's
// syscall state, and doing that while the process was idle wakes the
// runtime's sysmon thread, which then runs every 20 µs for a while on the
// proxy's core — thousands of context switches a second under an echo
// load that idles between batches.
func epollPoll(epfd int, events []syscall.EpollEvent) (int, error) {
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
			uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
}

// closeFD closes a socket of the loop's (a raw call, as epollPoll; closing
// a socket does not block).
func closeFD(fd int) { syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0) }

// readFD and writeFD retry on EINTR; n is 0 on error. The sockets are
// non-blocking, so the calls never wait: they skip the scheduler
// bookkeeping of syscall.Read and syscall.Write (RawSyscall), as Go's own
// poller does for its non-blocking descriptors' epoll calls. They are
// recvfrom and sendto, as nginx uses, not read and write: on a socket
// those go straight to the socket layer, where read and write first pass
// through the VFS (position lock, access checks, fsnotify hooks), a few
// per cent of a 64-byte echo's CPU. MSG_NOSIGNAL: a peer that is gone
// gives EPIPE, not a signal.
func readFD(fd int, b []byte) (int, error) { return rawIO(syscall.SYS_RECVFROM, fd, b, 0) }
func writeFD(fd int, b []byte) (int, error) {
	return rawIO(syscall.SYS_SENDTO, fd, b, syscall.MSG_NOSIGNAL)
}

func rawIO(trap uintptr, fd int, b []byte, flags uintptr) (int, error) {
	p := unsafe.Pointer(&zero) // what an empty buffer points at
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		n, _, errno := syscall.RawSyscall6(trap, uintptr(fd), uintptr(p), uintptr(len(b)), flags, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
}

var zero byte

// epoch is the origin of monotime.
var epoch = time.Now()

// monotime is the loops' clock: nanoseconds since epoch, monotonic.
func monotime() int64 { return int64(time.Since(epoch)) }

// timerHeap orders tunnels by epollTunnel.at, earliest first. Each tunnel
// is in its loop's heap at most once, at index epollTunnel.hidx.
type timerHeap []*epollTunnel

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}
func (h *timerHeap) Push(x any) {
	e := x.(*epollTunnel)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hidx = -1
	return e
}

// schedule makes the loop poke e at monotime at.
func (l *loop) schedule(e *epollTunnel, at int64) {
	e.at = at
	if e.hidx >= 0 {
		heap.Fix(&l.timers, e.hidx)
	} else {
		heap.Push(&l.timers, e)
	}
}

// unschedule takes e out of the timer heap.
func (l *loop) unschedule(e *epollTunnel) {
	if e.hidx >= 0 {
		heap.Remove(&l.timers, e.hidx)
	}
}

// expire pokes the tunnels whose time has come.
func (l *loop) expire() {
	now := monotime()
	l.tick = now
	l.due = l.due[:0]
	for len(l.timers) > 0 && l.timers[0].at <= now {
		l.due = append(l.due, heap.Pop(&l.timers).(*epollTunnel))
	}
	for i, e := range l.due {
		e.poke() // may schedule e again, but not for this round
		l.due[i] = nil
	}
}
