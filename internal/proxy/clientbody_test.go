package proxy

import (
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// pipeBody returns a timedBody with timeout d over a pipe, the pipe's
// writing end, and a count of the aborts (an abort fails the blocked read,
// as a past read deadline does).
func pipeBody(t *testing.T, d time.Duration) (*timedBody, *io.PipeWriter, *atomic.Int32) {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close(); pw.Close() })
	var aborts atomic.Int32
	b := &timedBody{r: pr, d: d, abort: func() {
		aborts.Add(1)
		pr.CloseWithError(errors.New("i/o timeout"))
	}}
	t.Cleanup(b.finish)
	return b, pw, &aborts
}

// TestTimedBodyStall: a read that waits the whole timeout fails with
// errClientBodyTimeout, and so does every later read.
func TestTimedBodyStall(t *testing.T) {
	t.Parallel()
	b, _, aborts := pipeBody(t, 100*time.Millisecond)
	start := time.Now()
	n, err := b.Read(make([]byte, 8))
	if n != 0 || !errors.Is(err, errClientBodyTimeout) || !b.expired() || aborts.Load() != 1 {
		t.Fatalf("read = %d, %v; expired %v, aborts %d", n, err, b.expired(), aborts.Load())
	}
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Errorf("timed out after %v, before 100ms", el)
	}
	if _, err := b.Read(make([]byte, 8)); !errors.Is(err, errClientBodyTimeout) {
		t.Errorf("read after the timeout: %v", err)
	}
}

// TestTimedBodyBetweenReads: the timeout bounds each wait for the client,
// not the whole body, and time spent between reads (writing upstream)
// does not count.
func TestTimedBodyBetweenReads(t *testing.T) {
	t.Parallel()
	b, pw, aborts := pipeBody(t, 300*time.Millisecond)
	go func() {
		// 10 bytes 50ms apart, then a pause the reader spends away
		for i := 0; i < 10; i++ {
			time.Sleep(50 * time.Millisecond)
			pw.Write([]byte{'x'})
		}
		pw.Write([]byte("yz"))
		pw.Close()
	}()
	buf := make([]byte, 1)
	var got []byte
	for {
		n, err := b.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		if len(got) == 10 {
			// the writer is blocked until the next read: a long pause
			// here is wsgate's, not the client's
			time.Sleep(time.Second)
		}
	}
	if string(got) != "xxxxxxxxxxyz" || b.expired() || aborts.Load() != 0 {
		t.Errorf("read %q, expired %v, aborts %d", got, b.expired(), aborts.Load())
	}
}

// TestTimedBodyFinish: after finish, the timer no longer aborts.
func TestTimedBodyFinish(t *testing.T) {
	t.Parallel()
	b, pw, aborts := pipeBody(t, 50*time.Millisecond)
	go pw.Write([]byte("a"))
	if _, err := b.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	b.finish()
	time.Sleep(200 * time.Millisecond)
	if b.expired() || aborts.Load() != 0 {
		t.Errorf("expired %v, aborts %d after finish", b.expired(), aborts.Load())
	}
	var nilBody *timedBody
	if nilBody.expired() {
		t.Error("a nil timedBody expired")
	}
}
