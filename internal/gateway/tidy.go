package gateway

import (
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Memory tidy.
//
// A burst of new connections (a reconnect storm after a deploy, a load
// test) leaves the Go heap at its peak: the garbage of thousands of
// handshakes sits uncollected until the next GC cycle, which an idle proxy
// may not run for two minutes, and freed pages go back to the OS only
// slowly after that. Thousands of WebSockets then held idle would be
// charged several times their real size. So once a burst of at least
// tidyBurst accepted connections is followed by a full tidyQuiet with no
// new connection, wsgate runs one GC and returns the freed memory to the
// OS at once (debug.FreeOSMemory): a few milliseconds of CPU, once per
// burst, never while connections keep arriving, and at most once per
// tidyGap ticks: a GC's cost grows with the live heap, and bursts that keep
// coming a few seconds apart are a load pattern, not a storm to clean up
// after. WSGATE_MEMORY_TIDY=off turns it off.
const (
	tidyBurst = 256
	tidyQuiet = time.Second
	tidyGap   = 30 // ticks of tidyQuiet
)

// tidier counts accepted connections and tidies after a quiet period.
type tidier struct {
	accepts atomic.Uint64
	free    func() // debug.FreeOSMemory
	stop    chan struct{}
	done    chan struct{}
}

func newTidier() *tidier {
	return &tidier{free: debug.FreeOSMemory, stop: make(chan struct{}), done: make(chan struct{})}
}

// tidyEnabled reports whether the environment allows the tidy.
func tidyEnabled() bool {
	switch os.Getenv("WSGATE_MEMORY_TIDY") {
	case "off", "0", "false", "no":
		return false
	}
	return true
}

// run ticks every quiet period until close.
func (t *tidier) run(quiet time.Duration) {
	defer close(t.done)
	tk := time.NewTicker(quiet)
	defer tk.Stop()
	var s tidyState
	for {
		select {
		case <-t.stop:
			return
		case <-tk.C:
			if s.tick(t.accepts.Load()) {
				t.free()
			}
		}
	}
}

func (t *tidier) close() {
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	<-t.done
}

// tidyState decides, one tick at a time, when to tidy: after a tick with
// no new connection that follows at least tidyBurst of them since the last
// tidy, and no sooner than tidyGap ticks after it.
type tidyState struct {
	last    uint64 // accept count at the previous tick
	settled uint64 // accept count at the last tidy
	ticks   int    // ticks since the last tidy
	tidied  bool   // there was one
}

func (s *tidyState) tick(accepts uint64) bool {
	s.ticks++
	moved := accepts != s.last
	s.last = accepts
	if moved || accepts-s.settled < tidyBurst || s.tidied && s.ticks < tidyGap {
		return false
	}
	s.settled, s.ticks, s.tidied = accepts, 0, true
	return true
}
