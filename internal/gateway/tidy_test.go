package gateway

import (
	"testing"
	"time"
)

func TestTidyStateWaitsForBurstThenQuiet(t *testing.T) {
	var s tidyState
	steps := []struct {
		accepts uint64
		want    bool
		why     string
	}{
		{0, false, "nothing happened"},
		{100, false, "connections are arriving"},
		{100, false, "quiet, but 100 is no burst"},
		{300, false, "arriving again (300 since the start)"},
		{300, true, "quiet after 300: tidy"},
		{300, false, "still quiet: tidied already"},
		{301, false, "one more arrives"},
		{301, false, "quiet after 1: no burst since the tidy"},
		{700, false, "a new burst is arriving"},
		{700, false, "quiet after it, but the last tidy was 4 ticks ago"},
	}
	for i, st := range steps {
		if got := s.tick(st.accepts); got != st.want {
			t.Fatalf("step %d (%s): tick(%d) = %v, want %v", i, st.why, st.accepts, got, st.want)
		}
	}
	// Quiet ticks until tidyGap have passed since the tidy: then it runs.
	n := 0
	for !s.tick(700) {
		if n++; n > tidyGap {
			t.Fatalf("no tidy %d quiet ticks after a burst", n)
		}
	}
	if since := 5 + n + 1; since != tidyGap { // 5 steps above, n quiet ticks, the tidy
		t.Errorf("second tidy %d ticks after the first, want %d", since, tidyGap)
	}
}

func TestTidierRunsAfterBurst(t *testing.T) {
	td := newTidier()
	freed := make(chan struct{}, 4)
	td.free = func() { freed <- struct{}{} }
	go td.run(20 * time.Millisecond)
	defer td.close()
	td.accepts.Add(tidyBurst)
	select {
	case <-freed:
	case <-time.After(5 * time.Second):
		t.Fatal("no tidy after a burst of tidyBurst accepts and a quiet period")
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(freed); n != 0 {
		t.Errorf("%d more tidies after one burst, want none", n)
	}
}
