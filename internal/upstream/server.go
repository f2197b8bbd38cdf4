package upstream

import (
	"crypto/md5"
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// weightScale is the fixed-point unit of effective and current weights:
// one configured weight unit is weightScale internal units, so slow start
// can hand a weight-1 server a fraction of its weight while the smooth
// weighted round robin stays nginx's integer algorithm.
const weightScale = 1000

// Server is one "server" line of an upstream at run time.
//
// Its live count is an atomic; everything else is guarded by the owning
// Pool's mutex. A Server must not be copied.
type Server struct {
	pool   *Pool
	cfg    config.UpstreamServer
	backup bool
	weight int64  // cfg.Weight * weightScale
	id     string // sticky cookie value: hex MD5 of the address

	live atomic.Int64 // requests and tunnels in flight (Acquire/Release)

	// Guarded by pool.mu. The names follow nginx's
	// ngx_http_upstream_rr_peer_t so the algorithms read alike.
	current   int64     // current_weight of smooth weighted round robin
	effective int64     // effective_weight: lowered by failures, regrows by one unit per pick round
	fails     int       // failures counted since the last reset
	checked   time.Time // start of the current fail_timeout window
	accessed  time.Time // time of the last failure
	failed    bool      // max_fails reached: unavailable until fail_timeout has passed
	rampStart time.Time // slow start began at; zero when not ramping
	unhealthy bool      // active health check says down
	hcFails   int       // consecutive failed probes
	hcPasses  int       // consecutive good probes
	lastProbe string    // why the last probe failed ("" when it passed)
}

func newServer(p *Pool, cfg config.UpstreamServer) *Server {
	if cfg.Weight < 1 {
		cfg.Weight = 1
	}
	sum := md5.Sum([]byte(cfg.Addr))
	s := &Server{
		pool:   p,
		cfg:    cfg,
		backup: cfg.Backup,
		weight: int64(cfg.Weight) * weightScale,
		id:     hex.EncodeToString(sum[:]),
	}
	s.effective = s.weight
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.cfg.Addr }

// Config returns the server's configuration line.
func (s *Server) Config() config.UpstreamServer { return s.cfg }

// Live returns the number of requests and WebSocket tunnels in flight on
// the server: successful Picks and Acquires not yet Released.
func (s *Server) Live() int { return int(s.live.Load()) }

// StickyValue returns the value of the sticky cookie that designates the
// server (hex MD5 of its address).
func (s *Server) StickyValue() string { return s.id }

// Acquire counts one more request or tunnel in flight on s. Pick already
// does it for the server it returns; call Acquire only to count work on a
// server obtained some other way, and pair it with one Release.
func (s *Server) Acquire() { s.live.Add(1) }

// Release ends one request or tunnel counted by Pick or Acquire. Call it
// exactly once per successful Pick (or Acquire): for an HTTP request when
// the response is done or the attempt failed, for a WebSocket when the
// tunnel ends. Extra calls are ignored rather than driving the count
// below zero.
func (s *Server) Release() {
	for {
		n := s.live.Load()
		if n <= 0 || s.live.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// State returns the server's state for status pages and metrics: "down"
// (configured down), "unhealthy" (active health check), "failed"
// (max_fails reached within fail_timeout), "slow_start" (recovering its
// weight) or "up".
func (s *Server) State() string {
	p := s.pool
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case s.cfg.Down:
		return "down"
	case s.unhealthy:
		return "unhealthy"
	case s.failedAt(now):
		return "failed"
	}
	s.recover(now)
	if !s.rampStart.IsZero() && now.Sub(s.rampStart) < s.cfg.SlowStart {
		return "slow_start"
	}
	return "up"
}

// failedAt reports whether passive health keeps s out at now: max_fails
// failures and the last one less than fail_timeout ago. The caller holds
// pool.mu.
func (s *Server) failedAt(now time.Time) bool {
	if s.pool.single {
		return false
	}
	return s.cfg.MaxFails > 0 && s.fails >= s.cfg.MaxFails && now.Sub(s.checked) <= s.cfg.FailTimeout
}

// recover notes that a server marked failed has served out its
// fail_timeout and may be tried again; its slow start begins at the
// moment fail_timeout ended. The caller holds pool.mu and has checked
// that failedAt(now) is false.
func (s *Server) recover(now time.Time) {
	if !s.failed {
		return
	}
	s.failed = false
	if s.cfg.SlowStart > 0 {
		s.rampStart = s.checked.Add(s.cfg.FailTimeout)
	}
}

// rampFraction returns how far slow start has brought s at now, in
// (0, 1]; 1 when s is not ramping. The caller holds pool.mu.
func (s *Server) rampFraction(now time.Time) float64 {
	if s.rampStart.IsZero() {
		return 1
	}
	el := now.Sub(s.rampStart)
	if el >= s.cfg.SlowStart || s.cfg.SlowStart <= 0 {
		s.rampStart = time.Time{}
		return 1
	}
	f := float64(max(el, 0)) / float64(s.cfg.SlowStart)
	return max(f, 1/float64(s.weight))
}

// pickWeight returns the weight s takes part in round robin with at now:
// its effective weight, capped by the slow start ramp. The caller holds
// pool.mu.
func (s *Server) pickWeight(now time.Time) int64 {
	w := s.effective
	if f := s.rampFraction(now); f < 1 {
		w = min(w, max(int64(f*float64(s.weight)), 1))
	}
	return w
}

// load is what least_conn minimises: live connections per unit of
// weight. A server in slow start counts as if it had one connection more,
// spread over its ramped weight, so a recovered server with no
// connections does not take every new tunnel at once; at the end of the
// ramp the value is nginx's conns/weight again. The caller holds pool.mu.
func (s *Server) load(now time.Time) float64 {
	c := float64(s.live.Load())
	w := float64(s.cfg.Weight)
	if f := s.rampFraction(now); f < 1 {
		return ((c+1)/f - 1) / w
	}
	return c / w
}

// ProbeError returns why the last active health probe of s failed, or ""
// if it passed or none has run.
func (s *Server) ProbeError() string {
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	return s.lastProbe
}
