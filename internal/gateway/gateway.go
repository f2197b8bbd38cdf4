// Package gateway runs wsgate: it owns the listening sockets, swaps
// configuration generations on reload without closing sockets that stay,
// and shuts down or drains connections gracefully.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/proxy"
	"github.com/wsgate/wsgate/internal/tunnel"
	"github.com/wsgate/wsgate/internal/upstream"
)

// Gateway serves a configuration and its successors. Its methods are
// safe for concurrent use.
type Gateway struct {
	elog    *log.Logger
	tunnels *tunnel.Registry
	logs    *accesslog.Set // shared by every generation

	mu        sync.Mutex // guards listeners, gen, closing
	listeners map[string]*listener
	gen       int
	closing   bool

	cur  atomic.Pointer[generation]
	wg   sync.WaitGroup // serve loops
	tidy *tidier        // nil when WSGATE_MEMORY_TIDY=off
}

// generation is one loaded configuration and its handler. A retired
// generation closes its handler once its last request (or WebSocket,
// which holds its request open) ends.
type generation struct {
	cfg   *config.Config
	h     *proxy.Handler
	certs []tls.Certificate // for "listen ... ssl" sockets
	keep  map[*upstream.Pool]bool

	mu      sync.Mutex // guards active, retired, closed
	active  int
	retired bool
	closed  bool
}

// acquire counts a request on g; it fails once g is closed.
func (g *generation) acquire() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.active++
	return true
}

func (g *generation) release() {
	g.mu.Lock()
	g.active--
	closeNow := g.retired && g.active == 0 && !g.closed
	if closeNow {
		g.closed = true
	}
	g.mu.Unlock()
	if closeNow {
		g.h.Close(g.keep)
	}
}

// retire marks g replaced; it closes when idle.
func (g *generation) retire(keep map[*upstream.Pool]bool) {
	g.mu.Lock()
	g.retired = true
	g.keep = keep
	closeNow := g.active == 0 && !g.closed
	if closeNow {
		g.closed = true
	}
	g.mu.Unlock()
	if closeNow {
		g.h.Close(keep)
	}
}

// listener is one bound socket and the http.Server on it.
type listener struct {
	addr string
	ln   net.Listener
	srv  *http.Server
	tls  bool
}

// New returns a gateway that logs errors to elog (nil = log.Default()).
func New(elog *log.Logger) *Gateway {
	if elog == nil {
		elog = log.Default()
	}
	g := &Gateway{elog: elog, tunnels: &tunnel.Registry{}, logs: accesslog.NewSet(), listeners: map[string]*listener{}}
	if tidyEnabled() {
		g.tidy = newTidier()
		go g.tidy.run(tidyQuiet)
	}
	return g
}

// Tunnels returns the registry of live upgraded connections.
func (g *Gateway) Tunnels() *tunnel.Registry { return g.tunnels }

// Config returns the configuration in force.
func (g *Gateway) Config() *config.Config {
	if c := g.cur.Load(); c != nil {
		return c.cfg
	}
	return nil
}

// Start applies cfg and opens its listeners. On error nothing is left
// listening.
func (g *Gateway) Start(cfg *config.Config) error {
	return g.apply(cfg)
}

// Reload applies cfg to new connections and requests. Sockets that stay
// in the configuration keep listening (no refused connection), removed
// ones close, new ones open. Established WebSockets stay on the route and
// server they were set up with; those whose upstream server is gone are
// drained with Close 1012 over websocket_drain_window. On error the old
// configuration stays in force untouched.
func (g *Gateway) Reload(cfg *config.Config) error {
	return g.apply(cfg)
}

func (g *Gateway) apply(cfg *config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return errors.New("gateway is shutting down")
	}
	old := g.cur.Load()
	var oldPools map[*config.Upstream]*upstream.Pool
	if old != nil {
		oldPools = old.h.Pools()
	}
	reused := map[*upstream.Pool]bool{}
	h, err := proxy.New(cfg, proxy.Options{
		ErrorLog:   g.elog,
		Tunnels:    g.tunnels,
		Logs:       g.logs,
		Generation: g.gen + 1,
		Pools: func(u *config.Upstream) *upstream.Pool {
			for ou, p := range oldPools {
				if sameUpstream(ou, u) {
					reused[p] = true
					return p
				}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	certs, err := loadCerts(cfg)
	if err != nil {
		h.Close(reused)
		return err
	}
	// Open new sockets first so a failure changes nothing.
	want := map[string]bool{}
	var opened []*listener
	for _, b := range h.Table().Bindings {
		want[b.Addr] = true
		if _, ok := g.listeners[b.Addr]; ok {
			continue
		}
		l, err := g.listen(b.Addr, b.TLS)
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			h.Close(reused)
			return err
		}
		opened = append(opened, l)
	}
	g.gen++
	gen := &generation{cfg: cfg, h: h, certs: certs}
	g.cur.Store(gen)
	h.Start()
	for _, l := range opened {
		g.listeners[l.addr] = l
		g.serve(l)
	}
	for addr, l := range g.listeners {
		if !want[addr] {
			delete(g.listeners, addr)
			go l.srv.Shutdown(context.Background())
		}
	}
	if old != nil {
		old.retire(reused)
		g.drainRemoved(cfg)
	}
	return nil
}

// sameUpstream reports whether two upstream configs are equal apart from
// where they were written, so a reload can keep the pool (and its live
// connection counts and health state).
func sameUpstream(a, b *config.Upstream) bool {
	if a.Name != b.Name || a.Implicit != b.Implicit {
		return false
	}
	x, y := *a, *b
	x.File, y.File, x.Line, y.Line = "", "", 0, 0
	xs := append([]config.UpstreamServer(nil), x.Servers...)
	ys := append([]config.UpstreamServer(nil), y.Servers...)
	for i := range xs {
		xs[i].Line = 0
	}
	for i := range ys {
		ys[i].Line = 0
	}
	x.Servers, y.Servers = xs, ys
	return reflect.DeepEqual(x, y)
}

// drainRemoved drains tunnels whose upstream server or location no
// longer exists in cfg.
func (g *Gateway) drainRemoved(cfg *config.Config) {
	servers := map[string]bool{}
	locs := map[string]bool{}
	window := 30 * time.Second
	if cfg.HTTP != nil {
		for _, u := range cfg.HTTP.Upstreams {
			for _, s := range u.Servers {
				servers[u.Name+"|"+s.Addr] = true
			}
		}
		for _, u := range cfg.HTTP.Implicit {
			for _, s := range u.Servers {
				servers[u.Name+"|"+s.Addr] = true
			}
		}
		for i, s := range cfg.HTTP.Servers {
			if i == 0 {
				window = s.Settings.WebSocket.DrainWindow
			}
			var walk func([]*config.Location)
			walk = func(ls []*config.Location) {
				for _, l := range ls {
					locs[l.Name()] = true
					walk(l.Children)
				}
			}
			walk(s.Locations)
			for _, l := range s.Named {
				locs[l.Name()] = true
			}
		}
	}
	gone := func(t *tunnel.Tunnel) bool {
		tag, ok := t.Tag().(*proxy.TunnelTag)
		if !ok {
			return false
		}
		if tag.Upstream == "" {
			// a variable proxy_pass naming no upstream block: only its
			// location can go away
			return !locs[tag.Location]
		}
		return !servers[tag.Upstream+"|"+tag.Server] || !locs[tag.Location]
	}
	var n atomic.Int64
	counted := func(t *tunnel.Tunnel) bool {
		if gone(t) {
			n.Add(1)
			return true
		}
		return false
	}
	go func() {
		g.tunnels.Drain(context.Background(), window, 1012, counted)
		if c := n.Load(); c > 0 {
			g.elog.Printf("[notice] reload: drained %d WebSocket connection(s) whose upstream server or location was removed, spread over %v", c, window)
		}
	}()
}

func (g *Gateway) listen(addr string, useTLS bool) (*listener, error) {
	// No TCP keepalive on accepted connections (nginx's so_keepalive off).
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bind() to %s failed: %w", addr, err)
	}
	// client_header_timeout and keepalive_timeout are kept per
	// connection, from the configuration in force (see
	// proxy.ClientConns): a reload changes them without a new server.
	conns := proxy.NewClientConns(addr, func() *proxy.Handler {
		if gen := g.cur.Load(); gen != nil {
			return gen.h
		}
		return nil
	})
	l := &listener{addr: addr, ln: conns.Listener(&loggingListener{Listener: ln, elog: g.elog, tidy: g.tidy}), tls: useTLS}
	if useTLS {
		// Certificates come from the configuration in force at each
		// handshake, so a reload renews them on sockets that stay open.
		l.ln = tls.NewListener(l.ln, &tls.Config{
			NextProtos:     []string{"http/1.1"},
			GetCertificate: g.certificate,
		})
	}
	l.srv = &http.Server{
		Handler:        http.HandlerFunc(g.serveHTTP),
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       log.New(&prefixWriter{g.elog, "[info] "}, "", 0),
		BaseContext: func(net.Listener) context.Context {
			return proxy.WithBinding(context.Background(), addr)
		},
		ConnState:   conns.ConnState,
		ConnContext: conns.ConnContext,
	}
	return l, nil
}

// prefixWriter turns net/http's own log lines into error_log lines.
type prefixWriter struct {
	l      *log.Logger
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.l.Print(p.prefix + strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// loadCerts reads every ssl_certificate of cfg; a bad one fails the load
// (or the reload, leaving the old configuration in force).
func loadCerts(cfg *config.Config) ([]tls.Certificate, error) {
	if cfg.HTTP == nil {
		return nil, nil
	}
	var certs []tls.Certificate
	seen := map[string]bool{}
	for _, s := range cfg.HTTP.Servers {
		if s.TLSCert == "" || seen[s.TLSCert+"|"+s.TLSKey] {
			continue
		}
		ssl := false
		for _, l := range s.Listens {
			ssl = ssl || l.SSL
		}
		if !ssl {
			continue
		}
		c, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: cannot load certificate %q: %w", s.File, s.Line, s.TLSCert, err)
		}
		seen[s.TLSCert+"|"+s.TLSKey] = true
		certs = append(certs, c)
	}
	return certs, nil
}

// certificate picks the certificate for a TLS handshake by SNI from the
// current configuration, falling back to the first one.
func (g *Gateway) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	gen := g.cur.Load()
	if gen == nil || len(gen.certs) == 0 {
		return nil, errors.New("no ssl_certificate configured")
	}
	for i := range gen.certs {
		if hello.SupportsCertificate(&gen.certs[i]) == nil {
			return &gen.certs[i], nil
		}
	}
	return &gen.certs[0], nil
}

func (g *Gateway) serve(l *listener) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := l.srv.Serve(l.ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.elog.Printf("[error] serve %s: %v", l.addr, err)
		}
	}()
}

func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	gen := g.cur.Load()
	for !gen.acquire() {
		// a reload retired and closed it between Load and acquire
		gen = g.cur.Load()
	}
	defer gen.release()
	gen.h.ServeHTTP(w, r)
}

// Addrs returns the bound addresses (useful when a config listens on
// port 0 in tests).
func (g *Gateway) Addrs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, l := range g.listeners {
		out = append(out, l.ln.Addr().String())
	}
	return out
}

// Stop closes every listener and connection now: WebSockets get Close
// 1001 (frame-aware tunnels) and in-flight HTTP requests are cut. It
// returns within about two seconds.
func (g *Gateway) Stop() {
	g.mu.Lock()
	g.closing = true
	ls := g.listeners
	g.listeners = map[string]*listener{}
	g.mu.Unlock()
	for _, l := range ls {
		l.srv.Close()
	}
	g.tunnels.ShutdownAll(1001, "going away")
	g.waitTunnels(2 * time.Second)
	g.finish()
}

// Quit shuts down gracefully: stop accepting, let in-flight HTTP requests
// finish, send Close 1001 to every WebSocket spread over the drain window,
// and return when all are gone or timeout passes (then Stop).
func (g *Gateway) Quit(timeout time.Duration) {
	g.mu.Lock()
	g.closing = true
	ls := g.listeners
	g.listeners = map[string]*listener{}
	g.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func(l *listener) {
			defer wg.Done()
			l.srv.Shutdown(ctx)
		}(l)
	}
	window := 30 * time.Second
	if c := g.Config(); c != nil && c.HTTP != nil && len(c.HTTP.Servers) > 0 {
		window = c.HTTP.Servers[0].Settings.WebSocket.DrainWindow
	}
	if window > timeout {
		window = timeout
	}
	g.tunnels.Drain(ctx, window, 1001, nil)
	wg.Wait()
	if ctx.Err() != nil {
		for _, l := range ls {
			l.srv.Close()
		}
	}
	// Handshakes that completed after the drain started get their Close
	// now rather than a reset at exit.
	g.tunnels.ShutdownAll(1001, "going away")
	g.waitTunnels(2 * time.Second)
	g.finish()
}

func (g *Gateway) waitTunnels(d time.Duration) {
	deadline := time.Now().Add(d)
	for g.tunnels.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (g *Gateway) finish() {
	g.wg.Wait()
	if g.tidy != nil {
		g.tidy.close()
	}
	if gen := g.cur.Load(); gen != nil {
		gen.retire(nil)
	}
	g.logs.Close()
}

// ReopenLogs reopens the access log files of every live configuration
// generation (wsgate -s reopen, after logrotate moved them).
func (g *Gateway) ReopenLogs() error {
	return g.logs.Reopen()
}
