package upstream

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// Probe timeouts: a probe gets its interval, but at least
// minProbeTimeout and at most maxProbeTimeout, to connect, send and read
// the answer.
const (
	minProbeTimeout = time.Second
	maxProbeTimeout = 5 * time.Second
	// maxProbeBody bounds how much of a response body "match" reads.
	maxProbeBody = 64 << 10
	// websocketGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
	websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

// Start starts the active health checks of the upstream's "health_check",
// if it has one: one prober goroutine that every interval (with ±10%
// jitter) probes every server not configured down, all at once, each
// probe bounded by a timeout. A server becomes unhealthy after "fails"
// failed probes in a row and healthy again after "passes" good ones;
// servers start healthy. Probes never hold the lock Pick takes while they
// wait on the network. The prober stops when ctx is done or Close is
// called. Start does nothing after the first call or after Close.
func (p *Pool) Start(ctx context.Context) {
	hc := p.cfg.HealthCheck
	if hc == nil || len(p.all) == 0 {
		return
	}
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	ctx, p.cancel = context.WithCancel(ctx)
	pr := &healthProber{pool: p, hc: hc}
	p.wg.Add(1)
	go pr.run(ctx)
}

// Close stops the health prober and waits for it and its probes to end.
// The pool still picks servers afterwards, with health state frozen.
func (p *Pool) Close() {
	p.lifeMu.Lock()
	p.closed = true
	cancel := p.cancel
	p.lifeMu.Unlock()
	if cancel != nil {
		cancel()
	}
	p.wg.Wait()
}

// healthProber is the goroutine that runs one upstream's active health
// checks; it is named for its role so stack traces say what it is.
type healthProber struct {
	pool *Pool
	hc   *config.HealthCheck
}

func (h *healthProber) run(ctx context.Context) {
	defer h.pool.wg.Done()
	for {
		h.round(ctx)
		t := time.NewTimer(jitter(h.hc.Interval))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// jitter spreads d by up to ±10% so probers of many upstreams do not beat
// in step.
func jitter(d time.Duration) time.Duration {
	span := int64(d / 5)
	if span <= 0 {
		return d
	}
	return d - time.Duration(span/2) + time.Duration(rand.Int64N(span))
}

// round probes every server once, concurrently, and waits for all probes.
func (h *healthProber) round(ctx context.Context) {
	timeout := min(max(h.hc.Interval, minProbeTimeout), maxProbeTimeout)
	var wg sync.WaitGroup
	for _, s := range h.pool.all {
		if s.cfg.Down {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			err := h.probe(pctx, s)
			cancel()
			if ctx.Err() != nil {
				return // shutting down: not the server's fault
			}
			h.pool.recordProbe(s, err)
		}()
	}
	wg.Wait()
}

// probe sends one health request to s and says why it failed (nil when
// the server passed). type=http expects a status from the match block
// (default 2xx or 3xx) and its body regex; type=websocket performs a real
// RFC 6455 handshake, expects 101 with the right Sec-WebSocket-Accept,
// then closes with a Close frame.
func (h *healthProber) probe(ctx context.Context, s *Server) error {
	addr := s.cfg.Addr
	if h.hc.Port != 0 {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return err
		}
		addr = net.JoinHostPort(host, strconv.Itoa(h.hc.Port))
	}
	conn, err := h.pool.dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect: %w", ctxErr(ctx, err))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}

	uri := h.hc.URI
	if uri == "" {
		uri = "/"
	}
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: wsgate-health-check\r\n", uri, s.cfg.Addr)
	var key string
	if h.hc.Type == "websocket" {
		var nonce [16]byte
		crand.Read(nonce[:])
		key = base64.StdEncoding.EncodeToString(nonce[:])
		fmt.Fprintf(&req, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	} else {
		req.WriteString("Accept: */*\r\nConnection: close\r\n\r\n")
	}
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return fmt.Errorf("send: %w", ctxErr(ctx, err))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("read response: %w", ctxErr(ctx, err))
	}
	defer resp.Body.Close()

	if h.hc.Type == "websocket" {
		return h.checkWebSocket(ctx, conn, br, resp, key)
	}
	if !h.statusOK(resp.StatusCode) {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if re := h.pool.bodyRe; re != nil {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
		if err != nil {
			return fmt.Errorf("read body: %w", ctxErr(ctx, err))
		}
		if !re.Match(body) {
			return fmt.Errorf("body does not match %q", re.String())
		}
	}
	return nil
}

// statusOK applies the match block's status ranges, or 2xx/3xx.
func (h *healthProber) statusOK(code int) bool {
	if len(h.hc.MatchStatus) == 0 {
		return code >= 200 && code < 400
	}
	for _, r := range h.hc.MatchStatus {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// checkWebSocket validates a handshake answer and, when it is a good 101,
// ends the connection with a masked Close frame (1001 Going Away) and
// waits briefly for the server's Close so neither side sees a reset.
func (h *healthProber) checkWebSocket(ctx context.Context, conn net.Conn, br *bufio.Reader, resp *http.Response, key string) error {
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("websocket handshake: status %d, want 101", resp.StatusCode)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return fmt.Errorf("websocket handshake: Upgrade %q", resp.Header.Get("Upgrade"))
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("websocket handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	var mask [4]byte
	crand.Read(mask[:])
	payload := [2]byte{0x03, 0xe9} // 1001
	frame := []byte{0x88, 0x80 | 2, mask[0], mask[1], mask[2], mask[3], payload[0] ^ mask[0], payload[1] ^ mask[1]}
	if _, err := conn.Write(frame); err != nil {
		return fmt.Errorf("websocket close: %w", ctxErr(ctx, err))
	}
	// The handshake passed; waiting for the server's Close is courtesy
	// and its outcome does not change the verdict.
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var hdr [2]byte
	io.ReadFull(br, hdr[:])
	return nil
}

// errProbeTimeout is a probe that did not finish within its timeout.
var errProbeTimeout = errors.New("timed out")

// ctxErr reports a probe cut short by its deadline or by shutdown as
// that, rather than as the I/O error it caused ("use of closed network
// connection", "i/o timeout").
func ctxErr(ctx context.Context, err error) error {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return errProbeTimeout
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// recordProbe applies one probe result to s's health.
func (p *Pool) recordProbe(s *Server, err error) {
	hc := p.cfg.HealthCheck
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		s.hcPasses = 0
		s.hcFails++
		s.lastProbe = err.Error()
		if !s.unhealthy && s.hcFails >= max(hc.Fails, 1) {
			s.unhealthy = true
			p.logf("upstream %q: server %s is unhealthy after %d failed health checks: %v", p.name, s.cfg.Addr, s.hcFails, err)
		}
		return
	}
	s.hcFails = 0
	s.hcPasses++
	s.lastProbe = ""
	if s.unhealthy && s.hcPasses >= max(hc.Passes, 1) {
		s.unhealthy = false
		s.fails = 0
		s.failed = false
		if s.cfg.SlowStart > 0 && !p.single {
			s.rampStart = now
		}
		p.logf("upstream %q: server %s is healthy again after %d passed health checks", p.name, s.cfg.Addr, s.hcPasses)
	}
}
