// Package proxy serves HTTP requests with a compiled nginx configuration:
// it picks the server and location, then answers with return, static
// files, or by proxying to an upstream (plain HTTP or a WebSocket
// upgrade carried by a tunnel).
package proxy

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/route"
	"github.com/wsgate/wsgate/internal/tunnel"
	"github.com/wsgate/wsgate/internal/upstream"
)

// maxInternalRedirects bounds try_files/error_page/index redirects, as
// nginx's 10-cycle limit does.
const maxInternalRedirects = 10

// largeHeaderBuffer is nginx's default large_client_header_buffers size.
const largeHeaderBuffer = 8192

// bindKey is the context key under which the listener layer stores the
// bind address of the socket a request arrived on.
type bindKey struct{}

// WithBinding returns ctx carrying the bind address (see BaseContext).
func WithBinding(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, bindKey{}, addr)
}

// Options configure a Handler.
type Options struct {
	// ErrorLog receives error-level lines. Nil means log.Default().
	ErrorLog *log.Logger
	// Tunnels tracks upgraded connections across configuration
	// generations. Nil means a private registry.
	Tunnels *tunnel.Registry
	// Generation numbers the configuration (reload count); tunnels are
	// tagged with it.
	Generation int
	// Logs, when set, is an access log set shared across configuration
	// generations (so reopen reaches every live generation); the handler
	// then does not close it. Nil makes a private set.
	Logs *accesslog.Set
	// Pools, when set, supplies the upstream pool for an upstream (a
	// reload may reuse the previous generation's pools). Nil builds
	// fresh pools.
	Pools func(*config.Upstream) *upstream.Pool
}

// Handler serves one configuration generation. It is safe for concurrent
// use; Close releases its pools and log files.
type Handler struct {
	cfg     *config.Config
	table   *route.Table
	pools   map[*config.Upstream]*upstream.Pool
	logs    *accesslog.Set
	ownLogs bool
	elog    *log.Logger
	tunnels *tunnel.Registry
	gen     int

	client    *upstreamClient
	plans     sync.Map // *config.Settings -> *headerPlan
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// TunnelTag is attached to every tunnel so reload and drain can tell
// which configuration and upstream server carry it.
type TunnelTag struct {
	Generation int
	Upstream   string // upstream name
	Server     string // server address
	Location   string // location name
	Server_    *config.Server
}

// New builds a Handler for cfg: upstream pools, transports, access logs.
func New(cfg *config.Config, opt Options) (*Handler, error) {
	h := &Handler{
		cfg:     cfg,
		table:   route.Build(cfg.HTTP),
		pools:   map[*config.Upstream]*upstream.Pool{},
		logs:    opt.Logs,
		elog:    opt.ErrorLog,
		tunnels: opt.Tunnels,
		gen:     opt.Generation,
	}
	if h.elog == nil {
		h.elog = log.Default()
	}
	if h.logs == nil {
		h.logs = accesslog.NewSet()
		h.ownLogs = true
	}
	if h.tunnels == nil {
		h.tunnels = &tunnel.Registry{}
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &config.HTTP{}
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	addPool := func(u *config.Upstream) {
		if u == nil || h.pools[u] != nil {
			return
		}
		var p *upstream.Pool
		if opt.Pools != nil {
			p = opt.Pools(u)
		}
		if p == nil {
			p = upstream.NewPool(u, upstream.Options{Logf: h.elog.Printf})
		}
		h.pools[u] = p
	}
	for _, u := range cfg.HTTP.Upstreams {
		addPool(u)
	}
	for _, u := range cfg.HTTP.Implicit {
		addPool(u)
	}
	// Every log destination opens now so a bad path fails the load.
	var err error
	walkSettings(cfg.HTTP, func(s *config.Settings) {
		for _, al := range s.AccessLogs {
			if e := h.logs.Open(al.Path); e != nil && err == nil {
				err = e
			}
		}
	})
	if err != nil {
		if h.ownLogs {
			h.logs.Close()
		}
		return nil, err
	}
	h.client = newUpstreamClient()
	return h, nil
}

// Start starts the active health checks of the handler's pools.
func (h *Handler) Start() {
	for _, p := range h.pools {
		p.Start(h.ctx)
	}
}

// Pools returns the handler's upstream pools (for status and reuse).
func (h *Handler) Pools() map[*config.Upstream]*upstream.Pool { return h.pools }

// Table returns the routing table (the listener layer binds its sockets).
func (h *Handler) Table() *route.Table { return h.table }

// Config returns the configuration the handler serves.
func (h *Handler) Config() *config.Config { return h.cfg }

// Logs returns the access log set (for reopen).
func (h *Handler) Logs() *accesslog.Set { return h.logs }

// Close stops health checks, idle upstream connections and log files.
// Pools listed in keep are left running (a reload handed them on).
func (h *Handler) Close(keep map[*upstream.Pool]bool) {
	h.closeOnce.Do(func() {
		h.cancel()
		for _, p := range h.pools {
			if !keep[p] {
				p.Close()
			}
		}
		h.client.closeIdle()
		if h.ownLogs {
			h.logs.Close()
		}
	})
}

func walkSettings(hc *config.HTTP, f func(*config.Settings)) {
	if hc == nil {
		return
	}
	var walk func([]*config.Location)
	walk = func(ls []*config.Location) {
		for _, l := range ls {
			f(l.Settings)
			walkScript(l.Script, f)
			walk(l.Children)
		}
	}
	for _, s := range hc.Servers {
		f(s.Settings)
		walk(s.Locations)
		for _, l := range s.Named {
			f(l.Settings)
			walkScript(l.Script, f)
			walk(l.Children)
		}
	}
}

// walkScript calls f for the settings of the implicit locations of a
// script's if blocks.
func walkScript(sc config.Script, f func(*config.Settings)) {
	for _, op := range sc {
		if op.If != nil && op.If.Settings != nil {
			f(op.If.Settings)
		}
	}
}

type dialTimeoutKey struct{}

func (h *Handler) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	// Go sets TCP_NODELAY on every TCP connection. TCP keepalive probes
	// are off, as in nginx: WebSocket pings and the pool's liveness check
	// find dead peers, and each keepalive option costs a syscall per dial.
	d := net.Dialer{Timeout: 60 * time.Second, KeepAlive: -1}
	if t, ok := ctx.Value(dialTimeoutKey{}).(time.Duration); ok && t > 0 {
		d.Timeout = t
	}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &dialError{addr: addr, err: err}
	}
	return c, nil
}

// ServeHTTP handles one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := &request{h: h, r: r, start: time.Now(), scheme: "http"}
	if r.TLS != nil {
		q.scheme = "https"
	}
	q.remoteIP, q.remotePort, _ = net.SplitHostPort(r.RemoteAddr)
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		q.localIP, q.localPort, _ = net.SplitHostPort(la.String())
	}
	bind, _ := r.Context().Value(bindKey{}).(string)
	b := h.table.Binding(bind)
	if b == nil {
		http.Error(w, "no server", http.StatusInternalServerError)
		return
	}
	q.srv, q.srvCaps = b.ServerMatch(q.localIP, r.Host)
	rw := &responseWriter{ResponseWriter: w, q: q}
	defer func() {
		if !q.detached {
			h.logRequest(q)
		}
	}()
	if r.ContentLength != 0 {
		// a handler that wrote nothing: net/http sends the 200
		defer func() {
			if !rw.wrote && !rw.hijacked && !q.detached {
				rw.discardUnread()
			}
		}()
	}

	// nginx reads the request line and each header line into buffers of
	// large_client_header_buffers (4 x 8k): longer ones are refused.
	if len(r.Method)+len(r.RequestURI)+len(r.Proto)+4 > largeHeaderBuffer {
		q.set = q.srv.Settings
		h.elog.Printf("[info] client sent too long URI while reading client request line, client: %s", q.remoteIP)
		h.writeError(rw, q, http.StatusRequestURITooLong)
		return
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if len(k)+len(v)+4 > largeHeaderBuffer {
				q.set = q.srv.Settings
				h.elog.Printf("[info] client sent too long header line: %q, client: %s", k, q.remoteIP)
				h.writeError(rw, q, http.StatusBadRequest)
				return
			}
		}
	}
	h.dropInvalidHeaders(q)
	// nginx's post-read phase: the realip module with the server's
	// settings
	if q.srv.Settings.RealIP != nil {
		h.applyRealIP(q, q.srv.Settings)
	}
	target := r.RequestURI
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		// absolute-form: use its path and query
		if i := strings.Index(target[8:], "/"); i >= 0 {
			target = target[8+i:]
		} else {
			target = "/"
		}
	}
	path, query, hasQ := splitTarget(target)
	uri, err := normalizeURI(path)
	if err != nil {
		q.set = q.srv.Settings
		h.errorPage(rw, q, http.StatusBadRequest, 0)
		return
	}
	q.uri, q.args, q.hasArgs = uri, query, hasQ
	h.process(rw, q, 0, false)
}

// dropInvalidHeaders applies ignore_invalid_headers and
// underscores_in_headers as nginx does: a header name is valid when it
// holds only letters, digits and "-", and "_" too with
// underscores_in_headers on; with ignore_invalid_headers on (the default)
// an invalid field is dropped, so it is neither passed upstream nor seen
// by $http_NAME; with it off every field is kept. nginx checks each line
// with the server known when it reads it (the listen socket's default
// server before the Host line, the name-based one after it); clients send
// Host first, so wsgate checks them all with the server that handles the
// request.
func (h *Handler) dropInvalidHeaders(q *request) {
	s := q.srv.Settings
	for k, vs := range q.r.Header {
		valid, underscore := headerNameValid(k, s.UnderscoresInHeaders)
		if valid || !s.IgnoreInvalidHeaders {
			q.underscores = q.underscores || underscore
			continue
		}
		for _, v := range vs {
			h.elog.Printf("[info] client sent invalid header line: %q, client: %s", k+": "+v, q.remoteIP)
		}
		delete(q.r.Header, k)
	}
}

// headerNameValid reports whether name is a valid header name for nginx
// (letters, digits, "-", and "_" when underscores are allowed), and
// whether it holds an underscore.
func headerNameValid(name string, underscores bool) (valid, underscore bool) {
	valid = true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		case c == '_':
			underscore = true
			valid = valid && underscores
		default:
			valid = false
		}
	}
	return valid, underscore
}

// process answers q from nginx's server rewrite phase on: the server's
// rewrite module directives, then the location search. Internal
// redirects come back here (nginx runs the server's script again after
// each); depth counts them and location searches started by rewrites;
// internal is set for redirects (internal locations allowed).
func (h *Handler) process(w *responseWriter, q *request, depth int, internal bool) {
	if depth > maxInternalRedirects {
		h.redirectCycle(w, q)
		return
	}
	if q.srv.Script != nil {
		q.loc, q.set = nil, q.srv.Settings
		if done, _ := h.runScript(w, q, q.srv.Script, depth, q.srv.Settings.RewriteLog); done {
			return
		}
	}
	h.findConfig(w, q, depth, internal)
}

// findConfig routes q.uri to a location and answers (nginx's find
// config phase and the phases after it). A location's rewrite that asks
// for a new search comes back here with depth+1.
func (h *Handler) findConfig(w *responseWriter, q *request, depth int, internal bool) {
	if depth > maxInternalRedirects {
		h.redirectCycle(w, q)
		return
	}
	m := route.Find(q.srv, q.uri)
	if q.trace != nil {
		if m.Location == nil {
			q.tracef("location", "none matched for %s; the server's own settings apply", q.uri)
		} else {
			q.tracef("location", "%s:%d  %s", m.Location.File, m.Location.Line, m.Location.Name())
		}
		if m.Redirect {
			q.tracef("result", "301 to %s/ (nginx's auto-redirect: the proxied location ends in \"/\")", q.uri)
			q.shown = true
		}
	}
	if m.Redirect {
		q.set = q.srv.Settings
		loc := q.uri + "/"
		if q.hasArgs {
			loc += "?" + q.args
		}
		h.redirect(w, q, http.StatusMovedPermanently, h.absolute(q, loc))
		return
	}
	h.serveLocation(w, q, m.Location, m.Captures, depth, internal)
}

// redirectCycle answers 500 after more than ten internal redirects or
// location searches, as nginx does.
func (h *Handler) redirectCycle(w *responseWriter, q *request) {
	h.elog.Printf("[error] rewrite or internal redirection cycle while processing %q", q.uri)
	q.set = q.srv.Settings
	h.writeError(w, q, http.StatusInternalServerError)
}

func (h *Handler) serveLocation(w *responseWriter, q *request, loc *config.Location, captures []string, depth int, internal bool) {
	q.loc = loc
	if captures != nil {
		// a regex location's match replaces the captures; a prefix
		// location keeps those of an earlier match (a rewrite's before
		// a new location search, or the server_name's)
		q.captures, q.locCaps = captures, captures
	}
	if loc != nil {
		q.set = loc.Settings
		if loc.Internal && !internal && !q.internal {
			h.errorPage(w, q, http.StatusNotFound, depth)
			return
		}
		if q.vars != nil {
			// named captures are variables: the latest match wins
			q.keepNamedCaptures()
		}
	} else {
		q.set = q.srv.Settings
	}
	if s := q.set; s.ClientMaxBodySize > 0 && q.r.ContentLength > s.ClientMaxBodySize {
		h.elog.Printf("[error] client intended to send too large body: %d bytes, client: %s", q.r.ContentLength, q.remoteIP)
		h.errorPage(w, q, http.StatusRequestEntityTooLarge, depth)
		return
	}
	if loc != nil && loc.Script != nil {
		// nginx's rewrite phase: after the location is found, before
		// access checks and content. An "if" may replace q.set.
		done, again := h.runScript(w, q, loc.Script, depth, loc.Settings.RewriteLog)
		if done {
			return
		}
		if again {
			q.keepNamedCaptures()
			h.findConfig(w, q, depth+1, true)
			return
		}
	}
	// nginx's preaccess phase: the realip module with the location's
	// settings, after its rewrite module script
	if q.set.RealIP != nil {
		h.applyRealIP(q, q.set)
	}
	if q.explain {
		return
	}
	s := q.set
	if !allowed(s.Access, q.remoteIP) {
		h.elog.Printf("[error] access forbidden by rule, client: %s, request: %q", q.remoteIP, q.r.Method+" "+q.r.RequestURI)
		h.errorPage(w, q, http.StatusForbidden, depth)
		return
	}
	if len(s.TryFiles) > 0 {
		h.tryFiles(w, q, depth)
		return
	}
	if s.Proxy != nil {
		h.proxyPass(w, q, depth)
		return
	}
	h.serveStatic(w, q, depth)
}

// internalRedirect re-runs location matching for uri (which may carry
// "?args") or jumps to a named location. A uri without "?" keeps the
// request's arguments only with keepArgs (the index module's redirect);
// error_page and try_files drop them, as nginx does.
func (h *Handler) internalRedirect(w *responseWriter, q *request, uri string, depth int, keepArgs bool) {
	if strings.HasPrefix(uri, "@") {
		loc := q.srv.Named[uri[1:]]
		if loc == nil {
			h.elog.Printf("[error] could not find named location %q", uri)
			h.writeError(w, q, http.StatusInternalServerError)
			return
		}
		h.serveLocation(w, q, loc, nil, depth+1, true)
		return
	}
	path, args, hasQ := splitTarget(uri)
	n, err := normalizeURI(path)
	if err != nil {
		h.writeError(w, q, http.StatusBadRequest)
		return
	}
	q.uri = n
	switch {
	case hasQ:
		q.args, q.hasArgs = args, true
	case !keepArgs:
		// error_page and try_files: nginx's ngx_http_internal_redirect
		// takes the target's own arguments, none if it has no "?"
		q.args, q.hasArgs = "", false
	}
	q.uriChanged = true
	h.process(w, q, depth+1, true)
}

func allowed(rules []config.AccessRule, ip string) bool {
	if len(rules) == 0 {
		return true
	}
	addr := net.ParseIP(ip)
	for _, r := range rules {
		if r.Net == nil || addr != nil && r.Net.Contains(addr) {
			return r.Allow
		}
	}
	return true
}

// absolute makes a redirect target that starts with "/" absolute as
// nginx's header filter does (absolute_redirect on,
// server_name_in_redirect off, port_in_redirect on); any other target is
// sent as it is.
func (h *Handler) absolute(q *request, loc string) string {
	if !strings.HasPrefix(loc, "/") {
		return loc
	}
	resp := config.Response{AbsoluteRedirect: true, PortInRedirect: true}
	if q.set != nil {
		resp = q.set.Response
	}
	if !resp.AbsoluteRedirect {
		return loc
	}
	host := route.NormalizeHost(q.r.Host)
	if host == "" || resp.ServerNameInRedirect {
		host = q.srv.PrimaryName
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := q.localPort
	if resp.PortInRedirect && (q.scheme == "http" && port != "80" || q.scheme == "https" && port != "443") {
		host += ":" + port
	}
	return q.scheme + "://" + host + loc
}

func (h *Handler) redirect(w *responseWriter, q *request, code int, loc string) {
	w.Header().Set("Location", loc)
	h.writeError(w, q, code)
}

func (h *Handler) doReturn(w *responseWriter, q *request, ret *config.Return, depth int) {
	code := ret.Code
	if code == 444 {
		// nginx closes the connection without a response.
		q.status = 444
		if hj, ok := w.ResponseWriter.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				w.hijacked = true
				return
			}
		}
		return
	}
	text := ret.Text.Eval(q)
	switch code {
	case 301, 302, 303, 307, 308:
		h.redirect(w, q, code, h.absolute(q, text))
		return
	}
	if ret.Text == nil {
		h.errorPage(w, q, code, depth)
		return
	}
	h.addHeaders(w, q, code)
	// As ngx_http_send_response: the type comes from the URI's extension.
	w.Header().Set("Content-Type", contentType(q.set, q.uri))
	w.WriteHeader(code)
	if q.r.Method != http.MethodHead {
		w.Write([]byte(text))
	}
}

// addHeaders applies add_header for the final status (nginx: 200, 201,
// 204, 206, 301, 302, 303, 304, 307, 308, or any with "always").
func (h *Handler) addHeaders(w *responseWriter, q *request, code int) {
	if q.set == nil {
		return
	}
	ok := false
	switch code {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		ok = true
	}
	if ok && q.set.Response.ExpiresSet {
		setExpires(w.Header(), q.set.Response)
	}
	for _, a := range q.set.AddHeaders {
		if !ok && !a.Always {
			continue
		}
		if v := a.Value.Eval(q); v != "" {
			w.Header().Add(a.Name, v)
		}
	}
}

// logRequest writes the access log lines for q.
func (h *Handler) logRequest(q *request) {
	s := q.set
	if s == nil {
		s = q.srv.Settings
	}
	if q.status == 0 {
		q.status = http.StatusOK
	}
	for _, al := range s.AccessLogs {
		h.logs.Write(al.Path, accesslog.Format(al.Format.Template, al.Format.Escape, q))
	}
}

// responseWriter records status and bytes for the log and applies
// error_page status overrides.
type responseWriter struct {
	http.ResponseWriter
	q        *request
	wrote    bool
	override int // status to send instead of the handler's (error_page)
	hijacked bool
	// bodyTaken is set when the request body is passed upstream (its
	// reader owns it: see discardUnread)
	bodyTaken bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if w.override > 0 {
		code = w.override
	}
	w.q.status = code
	// nginx adds its Server header only when none is set
	// (proxy_pass_header Server passes the upstream's).
	if _, ok := w.Header()["Server"]; !ok {
		w.Header().Set("Server", "wsgate")
	}
	if s := w.q.set; s != nil && s.Response.Charset != "" {
		addCharset(w.Header(), s.Response.Charset)
	}
	w.keepAlive()
	if w.q.r.ContentLength != 0 {
		w.discardUnread()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.q.bytesSent += int64(n)
	return n, err
}

func (w *responseWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ = fmt.Sprintf

// charsetTypes is nginx's default charset_types list (plus text/html,
// which nginx always includes).
var charsetTypes = map[string]bool{
	"text/html": true, "text/xml": true, "text/plain": true, "text/vnd.wap.wml": true,
	"application/javascript": true, "application/rss+xml": true,
}

// addCharset appends "; charset=cs" to a text Content-Type that has none.
func addCharset(h http.Header, cs string) {
	ct := h.Get("Content-Type")
	if ct == "" || strings.Contains(strings.ToLower(ct), "charset") {
		return
	}
	base := strings.TrimSpace(strings.SplitN(ct, ";", 2)[0])
	if charsetTypes[strings.ToLower(base)] {
		h.Set("Content-Type", ct+"; charset="+cs)
	}
}

// setExpires writes Expires and Cache-Control as nginx's expires does.
func setExpires(h http.Header, r config.Response) {
	now := time.Now().UTC()
	switch {
	case r.ExpiresEpoch:
		h.Set("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")
		h.Set("Cache-Control", "no-cache")
	case r.ExpiresMax:
		h.Set("Expires", "Thu, 31 Dec 2037 23:55:55 GMT")
		h.Set("Cache-Control", "max-age=315360000")
	case r.Expires < 0:
		h.Set("Expires", now.Add(r.Expires).Format(http.TimeFormat))
		h.Set("Cache-Control", "no-cache")
	default:
		h.Set("Expires", now.Add(r.Expires).Format(http.TimeFormat))
		h.Set("Cache-Control", "max-age="+strconv.FormatInt(int64(r.Expires/time.Second), 10))
	}
}
