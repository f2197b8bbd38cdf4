package upstream

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// server returns a server line with nginx's defaults, modified by opts
// written as "weight=5", "backup", "down", "max_fails=2",
// "fail_timeout=10s", "max_conns=3", "slow_start=100s".
func server(addr string, opts ...string) config.UpstreamServer {
	s := config.UpstreamServer{Addr: addr, Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		n := 0
		fmt.Sscan(v, &n)
		d, _ := time.ParseDuration(v)
		switch k {
		case "weight":
			s.Weight = n
		case "max_fails":
			s.MaxFails = n
		case "max_conns":
			s.MaxConns = n
		case "fail_timeout":
			s.FailTimeout = d
		case "slow_start":
			s.SlowStart = d
		case "backup":
			s.Backup = true
		case "down":
			s.Down = true
		default:
			panic("unknown option " + o)
		}
	}
	return s
}

func upstreamOf(method string, servers ...config.UpstreamServer) *config.Upstream {
	return &config.Upstream{Name: "backend", Method: method, Servers: servers}
}

// pick picks, checks for an error, and releases at once (a request that
// finished immediately).
func pick(t *testing.T, p *Pool, r *Request) string {
	t.Helper()
	s, err := p.Pick(r)
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	s.Release()
	return s.Addr()
}

func serverByAddr(t *testing.T, p *Pool, addr string) *Server {
	t.Helper()
	for _, s := range p.Servers() {
		if s.Addr() == addr {
			return s
		}
	}
	t.Fatalf("no server %s", addr)
	return nil
}

func countPicks(t *testing.T, p *Pool, n int, r func(i int) *Request) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := range n {
		got[pick(t, p, r(i))]++
	}
	return got
}

func noRequest(int) *Request { return nil }

// TestPickSelection checks, for every balancing method, which server a
// given request goes to.
func TestPickSelection(t *testing.T) {
	t.Parallel()
	three := []config.UpstreamServer{server("a:80"), server("b:80"), server("c:80")}
	tests := []struct {
		desc  string
		up    *config.Upstream
		setup func(t *testing.T, p *Pool)
		req   *Request
		want  []string // successive picks
	}{
		{
			desc: "round robin smooth sequence for weights 5:1:1 (nginx's example)",
			up:   upstreamOf("", server("a:80", "weight=5"), server("b:80"), server("c:80")),
			want: []string{"a:80", "a:80", "b:80", "a:80", "c:80", "a:80", "a:80", "a:80", "a:80", "b:80"},
		},
		{
			desc: "round robin skips down server",
			up:   upstreamOf("", server("a:80", "down"), server("b:80"), server("c:80")),
			want: []string{"b:80", "c:80", "b:80", "c:80"},
		},
		{
			desc: "least_conn with no load is round robin",
			up:   upstreamOf("least_conn", three...),
			want: []string{"a:80", "b:80", "c:80", "a:80", "b:80", "c:80"},
		},
		{
			desc: "least_conn prefers the server with fewer live connections",
			up:   upstreamOf("least_conn", three...),
			setup: func(t *testing.T, p *Pool) {
				serverByAddr(t, p, "a:80").Acquire()
				serverByAddr(t, p, "b:80").Acquire()
			},
			want: []string{"c:80", "c:80", "c:80"},
		},
		{
			desc: "least_conn divides by weight",
			up:   upstreamOf("least_conn", server("a:80", "weight=4"), server("b:80")),
			setup: func(t *testing.T, p *Pool) {
				for range 3 {
					serverByAddr(t, p, "a:80").Acquire()
				}
				serverByAddr(t, p, "b:80").Acquire()
			},
			want: []string{"a:80", "a:80"}, // 3/4 < 1/1
		},
		{
			desc: "ip_hash of 127.0.0.1 over three servers (hand-computed nginx hash 4040 % 3 = 2)",
			up:   upstreamOf("ip_hash", three...),
			req:  &Request{ClientIP: "127.0.0.1"},
			want: []string{"c:80", "c:80", "c:80"},
		},
		{
			desc: "ip_hash ignores the last octet",
			up:   upstreamOf("ip_hash", three...),
			req:  &Request{ClientIP: "127.0.0.200"},
			want: []string{"c:80"},
		},
		{
			desc: "ip_hash rehashes past a down server",
			up:   upstreamOf("ip_hash", server("a:80"), server("b:80"), server("c:80", "down")),
			req:  &Request{ClientIP: "127.0.0.1"},
			// 4040 -> c (down); folds on: 5135, 3323, 5510 -> c again;
			// 1928, 4650, 4957; 4957 % 3 = 1 -> b
			want: []string{"b:80", "b:80"},
		},
		{
			desc: "ip_hash with an unparsable address uses nginx's pseudo address",
			up:   upstreamOf("ip_hash", three...),
			req:  &Request{ClientIP: "unix:"},
			// 89 -> 10057%6271=3786 -> 3786*113%6271=1390 -> 1390*113%6271=295; 295%3=1
			want: []string{"b:80", "b:80"},
		},
		{
			desc: "hash with an empty key is round robin",
			up:   upstreamOf("hash", three...),
			req:  &Request{HashKey: ""},
			want: []string{"a:80", "b:80", "c:80"},
		},
		{
			desc: "backup unused while primaries are up",
			up:   upstreamOf("", server("a:80"), server("b:80"), server("c:80", "backup")),
			want: []string{"a:80", "b:80", "a:80", "b:80"},
		},
		{
			desc: "backup used when every primary is down",
			up:   upstreamOf("", server("a:80", "down"), server("b:80", "down"), server("c:80", "backup")),
			want: []string{"c:80", "c:80"},
		},
		{
			desc: "backup used when every primary failed",
			up:   upstreamOf("least_conn", server("a:80"), server("b:80"), server("c:80", "backup"), server("d:80", "backup")),
			setup: func(t *testing.T, p *Pool) {
				p.Fail(serverByAddr(t, p, "a:80"))
				p.Fail(serverByAddr(t, p, "b:80"))
			},
			want: []string{"c:80", "d:80", "c:80"},
		},
		{
			desc: "max_conns caps a server",
			up:   upstreamOf("", server("a:80", "max_conns=1"), server("b:80")),
			setup: func(t *testing.T, p *Pool) {
				serverByAddr(t, p, "a:80").Acquire()
			},
			want: []string{"b:80", "b:80", "b:80"},
		},
		{
			desc: "single server is never marked failed",
			up:   upstreamOf("", server("a:80")),
			setup: func(t *testing.T, p *Pool) {
				for range 10 {
					p.Fail(serverByAddr(t, p, "a:80"))
				}
			},
			want: []string{"a:80", "a:80"},
		},
		{
			desc: "max_fails=0 never disables",
			up:   upstreamOf("", server("a:80", "max_fails=0"), server("b:80")),
			setup: func(t *testing.T, p *Pool) {
				for range 10 {
					p.Fail(serverByAddr(t, p, "a:80"))
				}
			},
			// effective weight is untouched without max_fails
			want: []string{"a:80", "b:80", "a:80", "b:80"},
		},
		{
			desc: "random with one usable server",
			up:   upstreamOf("random", server("a:80", "down"), server("b:80"), server("c:80", "down")),
			want: []string{"b:80", "b:80", "b:80"},
		},
		{
			desc: "random two with one usable server falls back to round robin",
			up:   &config.Upstream{Name: "u", Method: "random", RandomTwo: true, RandomLeastConn: true, Servers: []config.UpstreamServer{server("a:80", "down"), server("b:80")}},
			want: []string{"b:80", "b:80"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			p := NewPool(tt.up, Options{Now: newFakeClock().Now})
			if tt.setup != nil {
				tt.setup(t, p)
			}
			var got []string
			for range tt.want {
				got = append(got, pick(t, p, tt.req))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("picks\n got: %v\nwant: %v", got, tt.want)
			}
		})
	}
}

func TestPickTriedExcludes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		method string
	}{
		{"round robin", ""}, {"least_conn", "least_conn"}, {"ip_hash", "ip_hash"},
		{"hash", "hash"}, {"random", "random"}, {"sticky", "sticky"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			up := upstreamOf(tt.method, server("a:80"), server("b:80"), server("c:80"))
			if tt.method == "sticky" {
				up.Sticky = &config.StickyCookie{Name: "route"}
			}
			p := NewPool(up, Options{})
			r := &Request{ClientIP: "10.1.2.3", HashKey: "k"}
			seen := map[string]bool{}
			for range 3 {
				s, err := p.Pick(r)
				if err != nil {
					t.Fatalf("Pick: %v", err)
				}
				if seen[s.Addr()] {
					t.Fatalf("picked tried server %s again", s.Addr())
				}
				seen[s.Addr()] = true
				p.Fail(s)
				s.Release()
				r.Tried = append(r.Tried, s)
			}
			_, err := p.Pick(r)
			if !errors.Is(err, ErrNoServer) {
				t.Fatalf("err = %v, want ErrNoServer", err)
			}
			if !strings.Contains(err.Error(), "3 already tried") {
				t.Errorf("error does not say why: %v", err)
			}
		})
	}
}

func TestNoServerErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		up    *config.Upstream
		setup func(t *testing.T, p *Pool)
		want  string
	}{
		{
			desc: "empty upstream (Dokku no listeners)",
			up:   upstreamOf(""),
			want: `upstream "backend": no live upstream server: no servers configured`,
		},
		{
			desc: "all down",
			up:   upstreamOf("least_conn", server("a:80", "down"), server("b:80", "down")),
			want: `upstream "backend": no live upstream server: 2 servers: 2 down`,
		},
		{
			desc: "failed and full",
			up:   upstreamOf("", server("a:80"), server("b:80", "max_conns=1"), server("c:80", "down")),
			setup: func(t *testing.T, p *Pool) {
				p.Fail(serverByAddr(t, p, "a:80"))
				serverByAddr(t, p, "b:80").Acquire()
			},
			want: `upstream "backend": no live upstream server: 3 servers: 1 down, 1 failed (max_fails within fail_timeout), 1 at max_conns`,
		},
		{
			desc: "single server at max_conns",
			up:   upstreamOf("", server("a:80", "max_conns=1")),
			setup: func(t *testing.T, p *Pool) {
				serverByAddr(t, p, "a:80").Acquire()
			},
			want: `upstream "backend": no live upstream server: 1 servers: 1 at max_conns`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			p := NewPool(tt.up, Options{Now: newFakeClock().Now})
			if tt.setup != nil {
				tt.setup(t, p)
			}
			s, err := p.Pick(nil)
			if s != nil || !errors.Is(err, ErrNoServer) {
				t.Fatalf("Pick = %v, %v; want ErrNoServer", s, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestRoundRobinDistribution(t *testing.T) {
	t.Parallel()
	p := NewPool(upstreamOf("", server("a:80", "weight=5"), server("b:80", "weight=3"), server("c:80", "weight=2")), Options{})
	got := countPicks(t, p, 1000, noRequest)
	for addr, w := range map[string]float64{"a:80": 0.5, "b:80": 0.3, "c:80": 0.2} {
		if share := float64(got[addr]) / 1000; math.Abs(share-w) > 0.05 {
			t.Errorf("%s got %.3f of picks, want %.2f±0.05 (%v)", addr, share, w, got)
		}
	}
}

func TestLeastConnLongLived(t *testing.T) {
	t.Parallel()
	p := NewPool(upstreamOf("least_conn", server("a:80"), server("b:80"), server("c:80")), Options{})
	a := serverByAddr(t, p, "a:80")
	for range 500 {
		a.Acquire() // 500 open WebSocket tunnels on a
	}
	got := map[string]int{}
	for range 500 {
		s, err := p.Pick(nil) // tunnels opened and kept: not released
		if err != nil {
			t.Fatal(err)
		}
		got[s.Addr()]++
	}
	if got["a:80"] != 0 || got["b:80"] != 250 || got["c:80"] != 250 {
		t.Errorf("picks = %v, want all 500 on b and c, evenly", got)
	}
	if a.Live() != 500 || serverByAddr(t, p, "b:80").Live() != 250 {
		t.Errorf("live counts a=%d b=%d", a.Live(), serverByAddr(t, p, "b:80").Live())
	}
	for range 500 {
		a.Release()
	}
	a.Release() // extra release must not go negative
	if a.Live() != 0 {
		t.Errorf("a live = %d after releases", a.Live())
	}
	// a has 0 against 250: the next 250 go to a.
	got = countPicksHeld(t, p, 250)
	if got["a:80"] != 250 {
		t.Errorf("after release picks = %v, want 250 on a", got)
	}
}

// countPicksHeld picks n times without releasing.
func countPicksHeld(t *testing.T, p *Pool, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		s, err := p.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		got[s.Addr()]++
	}
	return got
}

func TestIPHashSubnet(t *testing.T) {
	t.Parallel()
	p := NewPool(upstreamOf("ip_hash", server("a:80"), server("b:80"), server("c:80"), server("d:80")), Options{})
	for _, subnet := range []string{"192.0.2", "198.51.100", "10.20.30"} {
		first := ""
		for host := range 256 {
			got := pick(t, p, &Request{ClientIP: fmt.Sprintf("%s.%d", subnet, host)})
			if first == "" {
				first = got
			}
			if got != first {
				t.Fatalf("%s.%d went to %s, rest of the /24 to %s", subnet, host, got, first)
			}
		}
	}
	// Different /24s spread over the servers.
	got := countPicks(t, p, 1000, func(i int) *Request {
		return &Request{ClientIP: fmt.Sprintf("10.%d.%d.1", i/256, i%256)}
	})
	for _, addr := range []string{"a:80", "b:80", "c:80", "d:80"} {
		if got[addr] < 150 {
			t.Errorf("ip_hash spread %v: %s underused", got, addr)
		}
	}
	// IPv6 uses the whole address.
	a1 := pick(t, p, &Request{ClientIP: "2001:db8::1"})
	if a2 := pick(t, p, &Request{ClientIP: "2001:db8::1"}); a1 != a2 {
		t.Errorf("same IPv6 client went to %s then %s", a1, a2)
	}
	v6 := countPicks(t, p, 400, func(i int) *Request { return &Request{ClientIP: fmt.Sprintf("2001:db8::%x", i)} })
	if len(v6) < 3 {
		t.Errorf("IPv6 clients differing in the last bits spread to only %v", v6)
	}
}

func TestHashKey(t *testing.T) {
	t.Parallel()
	p := NewPool(upstreamOf("hash", server("a:80"), server("b:80"), server("c:80")), Options{})
	got := countPicks(t, p, 3000, func(i int) *Request { return &Request{HashKey: fmt.Sprintf("/room/%d", i)} })
	for addr, n := range got {
		if n < 800 || n > 1200 {
			t.Errorf("hash spread %v: %s has %d", got, addr, n)
		}
	}
	for i := range 100 {
		k := fmt.Sprintf("sid-%d", i)
		if a, b := pick(t, p, &Request{HashKey: k}), pick(t, p, &Request{HashKey: k}); a != b {
			t.Errorf("key %s went to %s then %s", k, a, b)
		}
	}
	// A failed server's keys go elsewhere; the others' stay.
	before := map[string]string{}
	for i := range 300 {
		k := fmt.Sprintf("k%d", i)
		before[k] = pick(t, p, &Request{HashKey: k})
	}
	p.Fail(serverByAddr(t, p, "b:80"))
	for k, was := range before {
		now := pick(t, p, &Request{HashKey: k})
		if now == "b:80" || (was != "b:80" && now != was) {
			t.Errorf("key %s: %s -> %s after b failed", k, was, now)
		}
	}
}

func TestConsistentHashRemap(t *testing.T) {
	t.Parallel()
	four := []config.UpstreamServer{server("10.0.0.1:8080"), server("10.0.0.2:8080"), server("10.0.0.3:8080"), server("10.0.0.4:8080")}
	mk := func(ss []config.UpstreamServer) *Pool {
		up := upstreamOf("hash", ss...)
		up.HashKey, up.Consistent = "$remote_addr", true
		return NewPool(up, Options{})
	}
	p4 := mk(four)
	p5 := mk(append(append([]config.UpstreamServer(nil), four...), server("10.0.0.5:8080")))
	const keys = 10000
	moved := 0
	per := map[string]int{}
	for i := range keys {
		r := &Request{HashKey: fmt.Sprintf("172.%d.%d.%d", i%7, i/256%256, i%256)}
		a, b := pick(t, p4, r), pick(t, p5, r)
		per[a]++
		if a != b {
			moved++
			if b != "10.0.0.5:8080" {
				t.Fatalf("key %s moved %s -> %s, not to the new server", r.HashKey, a, b)
			}
		}
	}
	if frac := float64(moved) / keys; frac < 0.15 || frac > 0.25 {
		t.Errorf("adding a 5th server moved %.1f%% of keys, want 15-25%%", frac*100)
	}
	for addr, n := range per {
		if n < keys/4*6/10 {
			t.Errorf("ring is lopsided: %s has %d of %d keys (%v)", addr, n, keys, per)
		}
	}
	// A failed server's keys move to their ring neighbours; others stay.
	before := map[string]string{}
	for i := range 1000 {
		k := fmt.Sprintf("user-%d", i)
		before[k] = pick(t, p4, &Request{HashKey: k})
	}
	p4.Fail(serverByAddr(t, p4, "10.0.0.2:8080"))
	for k, was := range before {
		now := pick(t, p4, &Request{HashKey: k})
		if now == "10.0.0.2:8080" || (was != "10.0.0.2:8080" && was != now) {
			t.Errorf("key %s: %s -> %s after one server failed", k, was, now)
		}
	}
}

func TestRandom(t *testing.T) {
	t.Parallel()
	p := NewPool(upstreamOf("random", server("a:80"), server("b:80", "weight=3")), Options{})
	got := countPicks(t, p, 10000, noRequest)
	if share := float64(got["b:80"]) / 10000; math.Abs(share-0.75) > 0.03 {
		t.Errorf("random weight 1:3 gave b %.3f, want 0.75±0.03", share)
	}

	up := upstreamOf("random", server("a:80"), server("b:80"), server("c:80"))
	up.RandomTwo, up.RandomLeastConn = true, true
	p2 := NewPool(up, Options{})
	a := serverByAddr(t, p2, "a:80")
	for range 100 {
		a.Acquire()
	}
	held := countPicksHeld(t, p2, 100)
	if held["a:80"] != 0 {
		t.Errorf("random two least_conn sent %d of 100 to the loaded server (%v)", held["a:80"], held)
	}
	if held["b:80"] < 20 || held["c:80"] < 20 {
		t.Errorf("random two spread %v", held)
	}
}

func TestSticky(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	up := upstreamOf("sticky", server("a:80"), server("b:80"), server("c:80"))
	up.Sticky = &config.StickyCookie{Name: "srv_id", Expires: time.Hour, Path: "/", HTTPOnly: true, SameSite: "lax"}
	p := NewPool(up, Options{Now: clock.Now})

	// No cookie: round robin, and a cookie to issue.
	r := &Request{}
	s, err := p.Pick(r)
	if err != nil {
		t.Fatal(err)
	}
	s.Release()
	c := p.StickyCookieFor(r, s)
	if c == nil || c.Name != "srv_id" || c.Value != s.StickyValue() || len(c.Value) != 32 {
		t.Fatalf("cookie = %+v", c)
	}
	if c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 3600 || !c.Expires.Equal(clock.Now().Add(time.Hour)) {
		t.Errorf("cookie attributes: %s", c)
	}
	first := s.Addr()

	// Same cookie: same server, every time, and no new cookie.
	for range 20 {
		r := &Request{StickyValue: c.Value}
		s, err := p.Pick(r)
		if err != nil {
			t.Fatal(err)
		}
		if s.Addr() != first {
			t.Fatalf("sticky request went to %s, cookie names %s", s.Addr(), first)
		}
		if nc := p.StickyCookieFor(r, s); nc != nil {
			t.Errorf("re-issued cookie %s for a request already bound", nc)
		}
		s.Release()
	}

	// Its server unavailable: another server and a new cookie.
	p.Fail(serverByAddr(t, p, first))
	r = &Request{StickyValue: c.Value}
	s, err = p.Pick(r)
	if err != nil {
		t.Fatal(err)
	}
	s.Release()
	if s.Addr() == first {
		t.Fatalf("sticky request went to failed server %s", first)
	}
	nc := p.StickyCookieFor(r, s)
	if nc == nil || nc.Value != s.StickyValue() || nc.Value == c.Value {
		t.Fatalf("new cookie = %v", nc)
	}

	// Unknown cookie: balanced normally, new cookie.
	r = &Request{StickyValue: "0123456789abcdef0123456789abcdef"}
	s, err = p.Pick(r)
	if err != nil {
		t.Fatal(err)
	}
	s.Release()
	if p.StickyCookieFor(r, s) == nil {
		t.Errorf("no cookie issued for an unknown sticky value")
	}

	// Once fail_timeout passes, the cookie leads back to its server.
	clock.Advance(11 * time.Second)
	if got := pick(t, p, &Request{StickyValue: c.Value}); got != first {
		t.Errorf("after recovery sticky went to %s, want %s", got, first)
	}

	// expires=max and session cookies.
	up.Sticky = &config.StickyCookie{Name: "s", Expires: -1}
	if c := NewPool(up, Options{}).StickyCookie(s); c.MaxAge != 315360000 || c.Expires.Year() != 2037 {
		t.Errorf("expires=max cookie: %s", c)
	}
	up.Sticky = &config.StickyCookie{Name: "s"}
	if c := NewPool(up, Options{}).StickyCookie(s); c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Errorf("session cookie: %s", c)
	}
	if c := NewPool(upstreamOf("", server("a:80")), Options{}).StickyCookie(s); c != nil {
		t.Errorf("cookie without sticky: %s", c)
	}
}

func TestStickyBackup(t *testing.T) {
	t.Parallel()
	up := upstreamOf("sticky", server("a:80"), server("b:80", "backup"))
	up.Sticky = &config.StickyCookie{Name: "route"}
	p := NewPool(up, Options{})
	b := serverByAddr(t, p, "b:80")
	if got := pick(t, p, &Request{StickyValue: b.StickyValue()}); got != "a:80" {
		t.Errorf("cookie for backup honoured while primary is up: %s", got)
	}
	p.Fail(serverByAddr(t, p, "a:80"))
	if got := pick(t, p, &Request{StickyValue: b.StickyValue()}); got != "b:80" {
		t.Errorf("cookie for backup with primary down: %s", got)
	}
}

func TestMaxFailsFailTimeout(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	p := NewPool(upstreamOf("", server("a:80", "max_fails=2", "fail_timeout=10s"), server("b:80")), Options{Now: clock.Now})
	a := serverByAddr(t, p, "a:80")

	p.Fail(a)
	if got := countPicks(t, p, 10, noRequest); got["a:80"] == 0 {
		t.Fatalf("one failure of max_fails=2 disabled a: %v", got)
	}
	clock.Advance(5 * time.Second)
	p.Fail(a) // second failure inside the window
	if st := a.State(); st != "failed" {
		t.Errorf("state = %q, want failed", st)
	}
	if got := countPicks(t, p, 10, noRequest); got["a:80"] != 0 {
		t.Fatalf("a picked while failed: %v", got)
	}
	clock.Advance(10 * time.Second) // exactly fail_timeout: still out (nginx: <=)
	if got := countPicks(t, p, 10, noRequest); got["a:80"] != 0 {
		t.Fatalf("a picked at exactly fail_timeout: %v", got)
	}
	clock.Advance(time.Millisecond)
	// Back in rotation for a trial; its effective weight regrows first.
	got := countPicks(t, p, 10, noRequest)
	if got["a:80"] == 0 {
		t.Fatalf("a not retried after fail_timeout: %v", got)
	}
	// Trial failed again: out for another fail_timeout.
	p.Fail(a)
	if got := countPicks(t, p, 10, noRequest); got["a:80"] != 0 {
		t.Fatalf("a picked after failing its trial: %v", got)
	}
	clock.Advance(11 * time.Second)
	s := pickUntil(t, p, "a:80")
	p.Success(s) // trial succeeded: failures forgotten
	p.Fail(a)    // one new failure is below max_fails again
	if got := countPicks(t, p, 10, noRequest); got["a:80"] == 0 {
		t.Fatalf("one failure after recovery disabled a: %v", got)
	}
}

func TestSuccessInsideWindowKeepsFailures(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	p := NewPool(upstreamOf("", server("a:80", "max_fails=2"), server("b:80")), Options{Now: clock.Now})
	a := serverByAddr(t, p, "a:80")
	p.Fail(a)
	clock.Advance(time.Second)
	p.Success(a) // nginx: inside fail_timeout, a success does not reset fails
	clock.Advance(time.Second)
	p.Fail(a)
	if got := countPicks(t, p, 4, noRequest); got["a:80"] != 0 {
		t.Errorf("max_fails=2 failures in one window with a success between did not disable a: %v", got)
	}
}

// pickUntil picks until addr comes up (with Success for other servers),
// returning it released.
func pickUntil(t *testing.T, p *Pool, addr string) *Server {
	t.Helper()
	for range 100 {
		s, err := p.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Release()
		if s.Addr() == addr {
			return s
		}
		p.Success(s)
	}
	t.Fatalf("%s never picked", addr)
	return nil
}

func TestBackupFailover(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	p := NewPool(upstreamOf("", server("a:80"), server("b:80"), server("c:80", "backup")), Options{Now: clock.Now})
	if got := countPicks(t, p, 20, noRequest); got["c:80"] != 0 {
		t.Fatalf("backup used with primaries up: %v", got)
	}
	p.Fail(serverByAddr(t, p, "a:80"))
	if got := countPicks(t, p, 20, noRequest); got["c:80"] != 0 || got["b:80"] != 20 {
		t.Fatalf("backup used with one primary up: %v", got)
	}
	p.Fail(serverByAddr(t, p, "b:80"))
	if got := countPicks(t, p, 20, noRequest); got["c:80"] != 20 {
		t.Fatalf("backup not used with primaries failed: %v", got)
	}
	clock.Advance(11 * time.Second)
	// Each primary gets one trial request; its success brings it back.
	got := map[string]int{}
	for range 20 {
		s, err := p.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Success(s)
		s.Release()
		got[s.Addr()]++
	}
	if got["c:80"] != 0 {
		t.Fatalf("backup still used after primaries came back: %v", got)
	}
	// Tried primaries also send the retry to the backup.
	r := &Request{Tried: []*Server{serverByAddr(t, p, "a:80"), serverByAddr(t, p, "b:80")}}
	if got := pick(t, p, r); got != "c:80" {
		t.Errorf("retry after both primaries tried went to %s", got)
	}
}

func TestMaxConnsConcurrent(t *testing.T) {
	t.Parallel()
	p := NewPool(upstreamOf("least_conn", server("a:80", "max_conns=5"), server("b:80", "max_conns=5")), Options{})
	var over atomic.Bool
	var ok, busy atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				s, err := p.Pick(nil)
				if err != nil {
					if !errors.Is(err, ErrNoServer) {
						t.Error(err)
					}
					busy.Add(1)
					continue
				}
				ok.Add(1)
				if s.Live() > 5 {
					over.Store(true)
				}
				if ok.Load()%7 == 0 {
					p.Fail(s)
				} else {
					p.Success(s)
				}
				s.Release()
			}
		}()
	}
	wg.Wait()
	if over.Load() {
		t.Error("max_conns exceeded under concurrency")
	}
	for _, s := range p.Servers() {
		if s.Live() != 0 {
			t.Errorf("%s live = %d after all released", s.Addr(), s.Live())
		}
	}
	if ok.Load() == 0 {
		t.Error("no pick succeeded")
	}
}

func TestSlowStartRoundRobin(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	p := NewPool(upstreamOf("", server("a:80"), server("b:80", "slow_start=100s")), Options{Now: clock.Now})
	b := serverByAddr(t, p, "b:80")
	p.Fail(b)
	clock.Advance(10*time.Second + time.Millisecond) // fail_timeout over: ramp starts
	share := func() float64 {
		got := map[string]int{}
		for range 2000 {
			s, err := p.Pick(nil)
			if err != nil {
				t.Fatal(err)
			}
			p.Success(s)
			s.Release()
			got[s.Addr()]++
		}
		return float64(got["b:80"]) / 2000
	}
	tests := []struct {
		at   time.Duration // into the ramp
		want float64       // b's share: f/(1+f)
	}{
		{10 * time.Second, 0.1 / 1.1},
		{50 * time.Second, 0.5 / 1.5},
		{90 * time.Second, 0.9 / 1.9},
		{100 * time.Second, 0.5},
	}
	start := clock.Now().Add(-time.Millisecond)
	for _, tt := range tests {
		clock.Advance(start.Add(tt.at).Sub(clock.Now()))
		if st := b.State(); (st == "slow_start") != (tt.at < 100*time.Second) {
			t.Errorf("at %v state = %q", tt.at, st)
		}
		if got := share(); math.Abs(got-tt.want) > 0.02 {
			t.Errorf("at %v into slow start b got %.3f of picks, want %.3f", tt.at, got, tt.want)
		}
	}
}

func TestSlowStartLeastConn(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	p := NewPool(upstreamOf("least_conn", server("a:80"), server("b:80", "slow_start=100s")), Options{Now: clock.Now})
	b := serverByAddr(t, p, "b:80")
	p.Fail(b)
	clock.Advance(10*time.Second + 10*time.Second) // 10s into the ramp
	got := map[string]int{}
	for range 1100 {
		s, err := p.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Success(s)
		got[s.Addr()]++ // long-lived: not released
	}
	// At 10% weight b takes about 1 in 11 new tunnels instead of all of
	// them (it had none, a had them all).
	if share := float64(got["b:80"]) / 1100; share < 0.06 || share > 0.13 {
		t.Errorf("b took %.3f of new tunnels 10%% into slow start (%v)", share, got)
	}
	clock.Advance(100 * time.Second)
	more := countPicksHeld(t, p, 1000)
	// Ramp over: least_conn evens the live counts out.
	if a, bl := serverByAddr(t, p, "a:80").Live(), b.Live(); a-bl > 1 || bl-a > 1 {
		t.Errorf("after slow start live a=%d b=%d (%v)", a, bl, more)
	}
}

func TestSlowStartAfterHealthRecovery(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	up := upstreamOf("", server("a:80"), server("b:80", "slow_start=60s"))
	up.HealthCheck = &config.HealthCheck{Interval: time.Second, Fails: 1, Passes: 1}
	p := NewPool(up, Options{Now: clock.Now})
	b := serverByAddr(t, p, "b:80")
	p.recordProbe(b, errors.New("status 500"))
	if got := countPicks(t, p, 10, noRequest); got["b:80"] != 0 {
		t.Fatalf("unhealthy b picked: %v", got)
	}
	p.recordProbe(b, nil)
	if st := b.State(); st != "slow_start" {
		t.Errorf("state after recovery = %q, want slow_start", st)
	}
	clock.Advance(6 * time.Second) // 10%
	got := countPicks(t, p, 1100, noRequest)
	if n := got["b:80"]; n < 70 || n > 130 {
		t.Errorf("b got %d of 1100 at 10%% of slow start, want about 100", n)
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	p := NewPool(upstreamOf("least_conn", server("a:80"), server("b:80"), server("c:80")), Options{})
	r := &Request{}
	allocs := testing.AllocsPerRun(1000, func() {
		s, err := p.Pick(r)
		if err != nil {
			t.Fatal(err)
		}
		s.Release()
	})
	if allocs != 0 {
		t.Errorf("Pick allocates %.1f times", allocs)
	}
}
