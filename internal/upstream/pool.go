// Package upstream runs upstream groups: it picks a server for each
// request with nginx's balancing methods, tracks passive health
// (max_fails/fail_timeout) and active health checks, and counts live
// requests and WebSocket tunnels per server.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// ErrNoServer is returned, wrapped with the upstream's name and the
// reason, when Pick finds no server to use: the upstream has none, or
// every server is down, failed, unhealthy, already tried for the request
// or at max_conns. The proxy answers 502.
var ErrNoServer = errors.New("no live upstream server")

// Options tunes a Pool. The zero value is ready to use.
type Options struct {
	// Logf receives state changes (server disabled, unhealthy, back).
	// If nil, nothing is logged.
	Logf func(format string, args ...any)
	// Now is the clock. If nil, time.Now is used.
	Now func() time.Time
	// Dial opens health probe connections. If nil, a net.Dialer is used.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Request carries what balancing needs to know about one request.
type Request struct {
	// ClientIP is $remote_addr, for ip_hash.
	ClientIP string
	// HashKey is the "hash KEY" template evaluated for this request; the
	// caller evaluates it. Empty falls back to round robin, as in nginx.
	HashKey string
	// StickyValue is the value of the sticky cookie the request carried
	// ("" if none).
	StickyValue string
	// Tried lists servers already tried for this request; Pick skips
	// them (proxy_next_upstream).
	Tried []*Server
}

// Pool is the runtime of one upstream: its servers, the balancing method,
// passive and active health. It is safe for concurrent use.
//
// Contract for callers, per attempt:
//
//	s, err := pool.Pick(req)       // s is already Acquired
//	if err != nil { 502 }          // errors.Is(err, ErrNoServer)
//	... connect, send, read ...
//	on failure: pool.Fail(s); s.Release(); req.Tried = append(req.Tried, s); Pick again
//	on success: pool.Success(s); s.Release() when the response (or the
//	            WebSocket tunnel) ends
type Pool struct {
	name    string
	cfg     *config.Upstream
	logf    func(format string, args ...any)
	now     func() time.Time
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	all     []*Server // configuration order
	primary []*Server
	backup  []*Server
	// single is nginx's peers->single: exactly one primary server and no
	// backup. Such a server is never marked failed, because there would
	// be nothing else to try.
	single      bool
	totalWeight int          // sum of primary weights, for ip_hash and hash
	points      []chashPoint // hash KEY consistent
	byID        map[string]*Server
	bodyRe      *regexp.Regexp // health_check match body

	mu sync.Mutex // guards balancing and health state of every Server

	lifeMu  sync.Mutex // guards started, closed, cancel
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the health prober
}

// NewPool builds the runtime of cfg. It starts nothing; call Start for
// active health checks and Close when done.
func NewPool(cfg *config.Upstream, opt Options) *Pool {
	p := &Pool{
		name: cfg.Name,
		cfg:  cfg,
		logf: opt.Logf,
		now:  opt.Now,
		dial: opt.Dial,
	}
	if p.logf == nil {
		p.logf = func(string, ...any) {}
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.dial == nil {
		var d net.Dialer
		p.dial = d.DialContext
	}
	for _, sc := range cfg.Servers {
		s := newServer(p, sc)
		p.all = append(p.all, s)
		if s.backup {
			p.backup = append(p.backup, s)
		} else {
			p.primary = append(p.primary, s)
			p.totalWeight += sc.Weight
		}
	}
	p.single = len(p.primary) == 1 && len(p.backup) == 0
	if cfg.Method == "hash" && cfg.Consistent {
		p.points = buildPoints(p.primary)
	}
	if cfg.Sticky != nil {
		p.byID = make(map[string]*Server, len(p.all))
		for _, s := range p.all {
			if _, dup := p.byID[s.id]; !dup {
				p.byID[s.id] = s
			}
		}
	}
	if hc := cfg.HealthCheck; hc != nil && hc.MatchBody != "" {
		re, err := regexp.Compile(hc.MatchBody)
		if err != nil {
			// config.CompileHealthCheck rejects this; a hand-built
			// config gets probes that always fail rather than a panic.
			p.logf("upstream %q: health_check match body %q: %v", p.name, hc.MatchBody, err)
			re = regexp.MustCompile(`\A\z.`) // never matches
		}
		p.bodyRe = re
	}
	return p
}

// Name returns the upstream's name.
func (p *Pool) Name() string { return p.name }

// Servers returns every server in configuration order, for status pages
// and metrics. The slice is a copy; the Servers are shared.
func (p *Pool) Servers() []*Server {
	return append([]*Server(nil), p.all...)
}

// Pick chooses a server for r with the upstream's balancing method and
// counts it as acquired: the live count used by least_conn and max_conns
// is raised in the same critical section as the choice, so concurrent
// Picks never overshoot max_conns. The caller must call Release on the
// returned server exactly once. r may be nil.
//
// Backup servers are used only when no primary server can be. When no
// server can be used the error wraps ErrNoServer and says why.
func (p *Pool) Pick(r *Request) (*Server, error) {
	var empty Request
	if r == nil {
		r = &empty
	}
	now := p.now()
	p.mu.Lock()
	s := p.pickLocked(r, now)
	if s == nil {
		err := p.noServerError(r, now)
		p.mu.Unlock()
		return nil, err
	}
	s.live.Add(1)
	if now.Sub(s.checked) > s.cfg.FailTimeout {
		s.checked = now
	}
	p.mu.Unlock()
	return s, nil
}

// pickLocked runs the balancing method. The caller holds p.mu.
func (p *Pool) pickLocked(r *Request, now time.Time) *Server {
	if p.single {
		s := p.primary[0]
		if p.usable(s, r, now) {
			return s
		}
		return nil
	}
	if p.cfg.Sticky != nil && r.StickyValue != "" {
		if s := p.stickyServer(r, now); s != nil {
			return s
		}
	}
	switch p.cfg.Method {
	case "ip_hash":
		return p.ipHash(r, now)
	case "hash":
		if p.cfg.Consistent {
			return p.consistentHash(r, now)
		}
		return p.hash(r, now)
	case "random":
		return p.random(r, now)
	case "least_conn":
		if s := p.leastConn(p.primary, r, now); s != nil {
			return s
		}
		return p.leastConn(p.backup, r, now)
	}
	return p.roundRobin(r, now)
}

// usable reports whether s may take r at now: not down, not unhealthy,
// not tried for r, not failed (max_fails within fail_timeout), not at
// max_conns. When a failed server's fail_timeout has passed it becomes
// usable again, and its slow start begins. The caller holds p.mu.
func (p *Pool) usable(s *Server, r *Request, now time.Time) bool {
	if s.cfg.Down || s.unhealthy || tried(r, s) {
		return false
	}
	if s.failedAt(now) {
		return false
	}
	s.recover(now)
	if s.cfg.MaxConns > 0 && s.live.Load() >= int64(s.cfg.MaxConns) {
		return false
	}
	return true
}

func tried(r *Request, s *Server) bool {
	for _, t := range r.Tried {
		if t == s {
			return true
		}
	}
	return false
}

// noServerError explains why no server could be picked. The caller holds
// p.mu.
func (p *Pool) noServerError(r *Request, now time.Time) error {
	if len(p.all) == 0 {
		return fmt.Errorf("upstream %q: %w: no servers configured", p.name, ErrNoServer)
	}
	var down, unhealthy, failed, full, triedN int
	for _, s := range p.all {
		switch {
		case s.cfg.Down:
			down++
		case s.unhealthy:
			unhealthy++
		case tried(r, s):
			triedN++
		case s.failedAt(now):
			failed++
		case s.cfg.MaxConns > 0 && s.live.Load() >= int64(s.cfg.MaxConns):
			full++
		}
	}
	var why []string
	for _, c := range []struct {
		n    int
		what string
	}{
		{down, "down"}, {unhealthy, "unhealthy (health check)"},
		{failed, "failed (max_fails within fail_timeout)"},
		{full, "at max_conns"}, {triedN, "already tried"},
	} {
		if c.n > 0 {
			why = append(why, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if len(why) == 0 {
		why = append(why, "none selectable")
	}
	return fmt.Errorf("upstream %q: %w: %d servers: %s", p.name, ErrNoServer, len(p.all), strings.Join(why, ", "))
}

// Fail records a failed attempt on s: a connect error, a timeout, or a
// response status listed in proxy_next_upstream. After max_fails failures
// within fail_timeout, s is left out for fail_timeout, as in nginx; each
// failure also lowers its effective weight by weight/max_fails. The only
// server of an upstream (no other primary, no backup) is never marked
// failed, as nginx never does.
func (p *Pool) Fail(s *Server) {
	if p.single || s == nil {
		return
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	s.fails++
	s.accessed = now
	s.checked = now
	if mf := s.cfg.MaxFails; mf > 0 {
		s.effective -= int64(s.cfg.Weight/mf) * weightScale
		if s.fails >= mf {
			if !s.failed {
				p.logf("upstream %q: server %s temporarily disabled for %v after %d failures", p.name, s.cfg.Addr, s.cfg.FailTimeout, s.fails)
			}
			s.failed = true
			s.rampStart = time.Time{}
		}
	}
	if s.effective < 0 {
		s.effective = 0
	}
}

// Success records a successful attempt on s (a response, or a WebSocket
// handshake answered 101). As in nginx it clears the failure count only
// once the fail_timeout window of the last failure has closed, so
// failures spread inside one window still add up to max_fails.
func (p *Pool) Success(s *Server) {
	if p.single || s == nil {
		return
	}
	p.mu.Lock()
	if s.accessed.Before(s.checked) {
		s.fails = 0
	}
	p.mu.Unlock()
}
