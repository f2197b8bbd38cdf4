package lb

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadStats is what a client load loop saw.
type loadStats struct {
	mu         sync.Mutex
	handshakes int            // handshakes attempted
	failed     []string       // failed handshakes, with why
	byServer   map[string]int // successful handshakes per X-Backend
	echoFailed map[string]int // echo failures after a good handshake, per X-Backend
}

// runLoad opens WebSockets from workers goroutines, one after another
// (each with an echo and a Close, then a pause), until stop is closed.
func runLoad(url string, workers int, pause time.Duration, stop <-chan struct{}) *loadStats {
	st := &loadStats{byServer: map[string]int{}, echoFailed: map[string]int{}}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ws, resp, err := client{}.ws(url, nil)
				st.mu.Lock()
				st.handshakes++
				if err != nil {
					st.failed = append(st.failed, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
					st.mu.Unlock()
					time.Sleep(pause)
					continue
				}
				srv := resp.Header.Get("X-Backend")
				st.byServer[srv]++
				st.mu.Unlock()
				if err := echo(ws, "ping"); err != nil {
					st.mu.Lock()
					st.echoFailed[srv]++
					st.mu.Unlock()
				}
				closeWS(ws)
				time.Sleep(pause)
			}
		}()
	}
	go func() {
		<-stop
		wg.Wait()
		st.mu.Lock()
		st.handshakes = -st.handshakes - 1 // marks done; see wait
		st.mu.Unlock()
	}()
	return st
}

// wait blocks until the load loop's workers have all returned, up to 30 s.
func (st *loadStats) wait() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st.mu.Lock()
		if st.handshakes < 0 {
			st.handshakes = -st.handshakes - 1
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

// countWS counts "ws" events of each backend in [from, to).
func countWS(bs []*procBackend, from, to time.Time) map[string]int {
	out := map[string]int{}
	for _, b := range bs {
		for _, at := range b.eventsOf("ws") {
			if !at.Before(from) && at.Before(to) {
				out[b.name]++
			}
		}
	}
	return out
}

func share(m map[string]int, name string) float64 {
	total := 0
	for _, n := range m {
		total += n
	}
	if total == 0 {
		return 0
	}
	return float64(m[name]) / float64(total)
}

// TestFailoverKillRestartSlowStart: three backends as separate processes
// behind
//
//	server ... max_fails=1 fail_timeout=5s slow_start=4s;
//	health_check interval=1s fails=1 passes=2;   (in the location)
//
// Clients keep opening WebSockets while one backend is SIGKILLed: no
// handshake fails (a refused connect is retried on the next server), and
// the dead server is tried at most once per in-flight client before it is
// taken out. Restarted on the same port, it gets WebSockets again only
// after two good health probes, and its share ramps up over slow_start.
func TestFailoverKillRestartSlowStart(t *testing.T) {
	names := []string{"a", "b", "c"}
	var bs []*procBackend
	var lines []string
	for _, n := range names {
		addr := freeAddr(t)
		bs = append(bs, startProcBackend(t, n, addr))
		lines = append(lines, "        server "+addr+" max_fails=1 fail_timeout=5s slow_start=4s;")
	}
	victim := bs[1]
	g := startGateway(t, fmt.Sprintf(`
    upstream pool {
%s
    }
    server {
        listen {{LISTEN}};
        location / {
            proxy_pass http://pool;
            health_check interval=1s fails=1 passes=2;
        }
    }`, strings.Join(lines, "\n")))
	url := g.url("ws", "/ws")
	const workers = 4

	// Phase 1: load for ~3 s, SIGKILL b after 1 s.
	stop := make(chan struct{})
	st := runLoad(url, workers, 2*time.Millisecond, stop)
	time.Sleep(time.Second)
	logBefore := len(g.log.String())
	victim.kill()
	killedAt := time.Now()
	time.Sleep(2 * time.Second)
	close(stop)
	st.wait()
	t.Logf("phase 1: %d handshakes, per server %v, echo failures %v", st.handshakes, st.byServer, st.echoFailed)
	if len(st.failed) > 0 {
		t.Errorf("%d of %d handshakes failed while %s was killed; first: %v", len(st.failed), st.handshakes, victim.name, st.failed[:min(3, len(st.failed))])
	}
	for srv, n := range st.echoFailed {
		if srv != victim.name {
			t.Errorf("%d echoes failed on %s, which was not killed", n, srv)
		}
	}
	afterKill := g.log.String()[logBefore:]
	tries := strings.Count(afterKill, `upstream: "`+victim.addr+`"`)
	t.Logf("after the kill wsgate tried the dead %s %d time(s); log:\n%s", victim.name, tries, afterKill)
	if tries > workers {
		t.Errorf("wsgate tried the killed server %d times in the %v after SIGKILL (max_fails=1 fail_timeout=5s, %d clients): want at most one try per in-flight client", tries, time.Since(killedAt).Round(time.Millisecond), workers)
	}
	if i := strings.Index(afterKill, "temporarily disabled"); i >= 0 {
		if n := strings.Count(afterKill[i:], `upstream: "`+victim.addr+`"`); n > workers-1 {
			t.Errorf("%d tries of %s logged after it was marked failed", n, victim.name)
		}
	}
	if !strings.Contains(afterKill, "server "+victim.addr+" is unhealthy") {
		t.Fatalf("no health check marked %s unhealthy within 2s of SIGKILL (health_check interval=1s fails=1); log:\n%s", victim.addr, afterKill)
	}

	// Phase 2: restart b on its port, under load; it must pass two
	// probes before any client reaches it, then ramp up over 4 s.
	stop = make(chan struct{})
	st = runLoad(url, workers, 2*time.Millisecond, stop)
	restartedAt := time.Now()
	if err := victim.start(); err != nil {
		close(stop)
		st.wait()
		t.Fatal(err)
	}
	// Wait for the second good probe, then 5.5 s for the ramp.
	var healthyAt time.Time
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		var probes []time.Time
		for _, at := range victim.eventsOf("probe") {
			if at.After(restartedAt) {
				probes = append(probes, at)
			}
		}
		if len(probes) >= 2 {
			healthyAt = probes[1]
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if healthyAt.IsZero() {
		close(stop)
		st.wait()
		t.Fatalf("restarted %s got fewer than 2 health probes within 8s; events: %v", victim.name, victim.allEvents())
	}
	time.Sleep(5500 * time.Millisecond)
	close(stop)
	st.wait()
	t.Logf("phase 2: %d handshakes, per server %v, echo failures %v", st.handshakes, st.byServer, st.echoFailed)
	if len(st.failed) > 0 {
		t.Errorf("%d of %d handshakes failed after %s restarted; first: %v", len(st.failed), st.handshakes, victim.name, st.failed[:min(3, len(st.failed))])
	}
	for srv, n := range st.echoFailed {
		t.Errorf("%d echoes failed on %s after the restart", n, srv)
	}

	// No WebSocket before the second good probe since the restart.
	var goodProbes int
	var firstWS time.Time
	for _, e := range victim.allEvents() {
		if e.at.Before(restartedAt) {
			continue
		}
		switch e.kind {
		case "probe":
			goodProbes++
		case "ws":
			if firstWS.IsZero() {
				firstWS = e.at
				if goodProbes < 2 {
					t.Errorf("restarted %s got a WebSocket after %d good probe(s), want none before 2 (passes=2)", victim.name, goodProbes)
				}
			}
		}
	}
	if firstWS.IsZero() {
		t.Fatalf("restarted %s got no WebSocket in the %v after it turned healthy", victim.name, 5500*time.Millisecond)
	}
	t.Logf("restarted %s: second good probe %v after restart, first WebSocket %v after that",
		victim.name, healthyAt.Sub(restartedAt).Round(time.Millisecond), firstWS.Sub(healthyAt).Round(time.Millisecond))

	// slow_start=4s: a small share in the first second, a full third
	// after the ramp.
	early := countWS(bs, healthyAt, healthyAt.Add(time.Second))
	late := countWS(bs, healthyAt.Add(4*time.Second), healthyAt.Add(5*time.Second))
	se, sl := share(early, victim.name), share(late, victim.name)
	t.Logf("%s's share of new WebSockets: %.1f%% in the first second of slow start %v, %.1f%% after it %v", victim.name, 100*se, early, 100*sl, late)
	if se > 0.20 {
		t.Errorf("slow_start=4s: %s took %.1f%% of new WebSockets in its first second back, want well under a third (about 6%%)", victim.name, 100*se)
	}
	if sl < 0.25 || sl > 0.42 {
		t.Errorf("slow_start=4s: %s took %.1f%% of new WebSockets after the ramp, want about a third", victim.name, 100*sl)
	}
	if sl < 2*se {
		t.Errorf("slow_start=4s: %s's share did not ramp up: %.1f%% then %.1f%%", victim.name, 100*se, 100*sl)
	}
	g.alive(t)
}
