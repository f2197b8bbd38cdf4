package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/upstream"
	"github.com/wsgate/wsgate/internal/vars"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 (plus the
// legacy Proxy-Connection and Keep-Alive), never forwarded as they came.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// hiddenResponse are response headers nginx does not pass by default.
var hiddenResponse = map[string]bool{"date": true, "server": true, "x-pad": true}

// target is where one proxied request goes.
type target struct {
	pool  *upstream.Pool
	up    *config.Upstream
	host  string // for $proxy_host
	uri   string // request target sent upstream
	https bool
	// direct is set for a variable proxy_pass that named no upstream.
	direct string
}

// upstreamURI builds the request target with nginx's proxy_pass rules.
func (h *Handler) upstreamURI(q *request, p *config.Proxy) string {
	args := ""
	if q.args != "" {
		args = "?" + q.args
	}
	if q.locInvalid {
		// "rewrite ... break" changed the URI inside this location: the
		// whole URI is passed and proxy_pass's URI part is ignored
		return escapeURI(q.uri) + args
	}
	if p.HasURI && q.loc != nil && q.loc.Regex == nil && q.loc.Modifier != "@" && strings.HasPrefix(q.uri, q.loc.Path) {
		return p.URI + escapeURI(q.uri[len(q.loc.Path):]) + args
	}
	if p.HasURI {
		return p.URI + args
	}
	if !q.uriChanged {
		t := q.r.RequestURI
		if strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://") {
			t = q.r.URL.RequestURI()
		}
		return t
	}
	return escapeURI(q.uri) + args
}

// resolveTarget evaluates proxy_pass for q.
func (h *Handler) resolveTarget(q *request) (*target, error) {
	p := q.set.Proxy
	if p.Dynamic == nil {
		t := &target{pool: h.pools[p.Upstream], up: p.Upstream, host: p.Host, https: p.Scheme == "https"}
		t.uri = h.upstreamURI(q, p)
		return t, nil
	}
	raw := p.Dynamic.Eval(q)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("invalid URL prefix in \"" + raw + "\"")
	}
	t := &target{host: u.Host, https: u.Scheme == "https"}
	name := u.Hostname()
	if up, ok := h.cfg.HTTP.Upstreams[u.Host]; ok {
		t.up = up
	} else if up, ok := h.cfg.HTTP.Upstreams[name]; ok {
		t.up = up
	}
	if t.up != nil {
		t.pool = h.pools[t.up]
	} else {
		t.direct = u.Host
		if u.Port() == "" {
			port := "80"
			if t.https {
				port = "443"
			}
			t.direct = net.JoinHostPort(name, port)
		}
	}
	if u.EscapedPath() != "" || u.RawQuery != "" {
		t.uri = u.RequestURI()
	} else {
		cp := *p
		cp.HasURI = false
		t.uri = h.upstreamURI(q, &cp)
	}
	return t, nil
}

// proxyPass answers q by proxying to its upstream, trying further
// servers as proxy_next_upstream allows.
func (h *Handler) proxyPass(w *responseWriter, q *request, depth int) {
	t, err := h.resolveTarget(q)
	if err != nil {
		h.elog.Printf("[error] %v, client: %s", err, q.remoteIP)
		h.errorPage(w, q, http.StatusInternalServerError, depth)
		return
	}
	q.proxyHost = t.host
	if isUpgrade(q.r) {
		h.proxyUpgrade(w, q, t, depth)
		return
	}
	h.proxyHTTP(w, q, t, depth)
}

// isUpgrade reports whether r asks for a protocol upgrade (RFC 9110
// §7.8): an Upgrade header named in Connection.
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// attempt is one try of a proxied request: the server picked and the
// address to dial.
type attempt struct {
	srv  *upstream.Server
	addr string
}

// picker hands out servers for successive attempts of one request.
type picker struct {
	h      *Handler
	q      *request
	t      *target
	req    upstream.Request
	tries  int
	max    int
	start  time.Time
	lastOK *upstream.Server
}

func (h *Handler) newPicker(q *request, t *target) *picker {
	pk := &picker{h: h, q: q, t: t, start: time.Now()}
	pk.req.ClientIP = q.remoteIP
	if t.up != nil {
		if t.up.HashKey != "" {
			pk.req.HashKey = evalRaw(t.up.HashKey, q)
		}
		if t.up.Sticky != nil {
			if c, err := q.r.Cookie(t.up.Sticky.Name); err == nil {
				pk.req.StickyValue = c.Value
			}
		}
	}
	pk.max = q.set.NextUpstream.Tries
	if q.set.NextUpstream.Off {
		pk.max = 1
	}
	return pk
}

// next returns the next attempt, or an error when no server is left (or
// the tries/time budget is spent).
func (pk *picker) next(prevErr error) (*attempt, error) {
	if pk.t.direct != "" {
		if pk.tries > 0 {
			return nil, prevErr
		}
		pk.tries++
		return pk.record(&attempt{addr: pk.t.direct}), nil
	}
	if pk.tries > 0 {
		nu := pk.q.set.NextUpstream
		if pk.max > 0 && pk.tries >= pk.max {
			return nil, prevErr
		}
		if nu.Timeout_ > 0 && time.Since(pk.start) > nu.Timeout_ {
			return nil, prevErr
		}
	}
	s, err := pk.t.pool.Pick(&pk.req)
	if err != nil {
		if prevErr != nil {
			return nil, prevErr
		}
		return nil, err
	}
	pk.tries++
	pk.req.Tried = append(pk.req.Tried, s)
	return pk.record(&attempt{srv: s, addr: s.Addr()}), nil
}

// record adds the attempt's address to $upstream_addr ("a, b" after a
// retry, as nginx writes it).
func (pk *picker) record(a *attempt) *attempt {
	if pk.q.upstreamAddr != "" {
		pk.q.upstreamAddr += ", "
	}
	pk.q.upstreamAddr += a.addr
	return a
}

// abandon ends an attempt the client walked away from (nginx logs 499).
func (pk *picker) abandon(w *responseWriter, a *attempt) {
	pk.failedQuiet(a)
	pk.q.status = 499
	w.wrote = true
}

// failed records a failed attempt.
func (pk *picker) failed(a *attempt) {
	if a.srv != nil {
		pk.t.pool.Fail(a.srv)
		a.srv.Release()
	}
}

// retryable reports whether err (or status) lets the request move on to
// the next server, per proxy_next_upstream. sent tells whether the
// request may have reached the server (non-idempotent requests are then
// not retried unless non_idempotent is set).
func retryable(nu config.NextUpstream, err error, status int, method string, sent bool) bool {
	if nu.Off {
		return false
	}
	if sent && !nu.NonIdempotent && !idempotent(method) {
		return false
	}
	if err != nil {
		var de *dialError
		if errors.As(err, &de) {
			if isTimeout(err) {
				return nu.Timeout
			}
			return nu.Error
		}
		if isTimeout(err) {
			return nu.Timeout
		}
		if errors.Is(err, errInvalidHeader) {
			return nu.InvalidHeader
		}
		return nu.Error
	}
	return nu.Statuses[status]
}

func idempotent(m string) bool {
	switch m {
	case "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// proxyHTTP forwards a plain HTTP request with the shared transport.
func (h *Handler) proxyHTTP(w *responseWriter, q *request, t *target, depth int) {
	s := q.set
	r := q.r
	pk := h.newPicker(q, t)
	var lastErr error
	// The body is read with client_body_timeout between reads, whether
	// it is read first or streamed to the upstream.
	var rbody io.Reader
	var tb *timedBody
	if s.PassRequestBody && r.ContentLength != 0 {
		tb = newTimedBody(w, r, s.ClientBodyTimeout)
		defer tb.finish()
		rbody = tb
	}
	// Small bodies are read first, as nginx's proxy_request_buffering
	// does, so a failed attempt can be retried on the next server.
	var body []byte
	if s.PassRequestBody && r.ContentLength > 0 && r.ContentLength <= maxBufferedBody {
		var err error
		body, err = io.ReadAll(io.LimitReader(rbody, r.ContentLength))
		if tb.expired() {
			h.bodyTimedOut(w, q)
			return
		}
		if err != nil || int64(len(body)) != r.ContentLength {
			h.elog.Printf("[info] client closed connection while reading request body, client: %s", q.remoteIP)
			q.status = 499
			w.wrote = true
			return
		}
	}
	for {
		a, err := pk.next(lastErr)
		if err != nil {
			h.upstreamFailed(w, q, t, err, depth)
			return
		}

		ex := h.exchangeFor(q, t)
		if s.PassRequestBody && r.ContentLength != 0 {
			switch {
			case body != nil:
				ex.body, ex.length = bytes.NewReader(body), int64(len(body))
			case pk.tries == 1:
				ex.body, ex.length = rbody, r.ContentLength
			default:
				// a streamed body cannot be sent twice
				pk.failedQuiet(a)
				h.upstreamFailed(w, q, t, lastErr, depth)
				return
			}
		}
		resp, err := h.roundTrip(r.Context(), t.https, a.addr, ex)
		if err != nil && tb.expired() {
			// the client stopped sending the body being streamed: the
			// upstream connection is closed, as is the client's
			pk.failedQuiet(a)
			h.bodyTimedOut(w, q)
			return
		}
		if err != nil {
			if r.Context().Err() != nil {
				pk.abandon(w, a)
				return
			}
			h.elog.Printf("[error] %v while connecting to or reading from upstream %q, client: %s, request: %q",
				err, a.addr, q.remoteIP, r.Method+" "+r.RequestURI)
			pk.failed(a)
			lastErr = err
			var de *dialError
			sent := !errors.As(err, &de)
			if retryable(s.NextUpstream, err, 0, r.Method, sent) {
				continue
			}
			h.upstreamFailed(w, q, t, err, depth)
			return
		}
		cancel := func() { resp.Body.Close() }
		q.upstreamCode = itoa(resp.StatusCode)
		if retryable(s.NextUpstream, nil, resp.StatusCode, r.Method, true) {
			if _, more := pk.peek(); more {
				resp.Body.Close()
				cancel()
				pk.failed(a)
				lastErr = errors.New("upstream answered " + resp.Status)
				continue
			}
		}
		if a.srv != nil {
			pk.t.pool.Success(a.srv)
			pk.setSticky(w.Header(), a.srv)
		}
		h.copyResponse(w, q, t, resp, cancel, 0)
		if a.srv != nil {
			a.srv.Release()
		}
		return
	}
}

// setSticky issues the sticky cookie when the request came without one
// naming srv (first visit, or its server was unavailable).
func (pk *picker) setSticky(hdr http.Header, srv *upstream.Server) {
	if pk.t.pool == nil || pk.t.up == nil || pk.t.up.Sticky == nil {
		return
	}
	if c := pk.t.pool.StickyCookieFor(&pk.req, srv); c != nil {
		hdr.Add("Set-Cookie", c.String())
	}
}

func (pk *picker) failedQuiet(a *attempt) {
	if a.srv != nil {
		a.srv.Release()
	}
}

// peek reports whether another attempt is possible without taking it.
func (pk *picker) peek() (struct{}, bool) {
	if pk.t.direct != "" {
		return struct{}{}, false
	}
	if pk.max > 0 && pk.tries >= pk.max {
		return struct{}{}, false
	}
	for _, s := range pk.t.pool.Servers() {
		tried := false
		for _, x := range pk.req.Tried {
			if x == s {
				tried = true
			}
		}
		if !tried && s.State() != "down" {
			return struct{}{}, true
		}
	}
	return struct{}{}, false
}

func itoa(n int) string { return strconv.Itoa(n) }

// maxBufferedBody is the largest request body held in memory for retries.
const maxBufferedBody = 1 << 20

// bufPool holds response copy buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// templates caches compiled raw templates (hash keys).
var templates sync.Map

func compileCached(raw string) (*vars.Template, error) {
	if t, ok := templates.Load(raw); ok {
		return t.(*vars.Template), nil
	}
	t, err := vars.Compile(raw)
	if err != nil {
		return nil, err
	}
	templates.Store(raw, t)
	return t, nil
}

// upstreamFailed answers 502/504 after every attempt failed.
func (h *Handler) upstreamFailed(w *responseWriter, q *request, t *target, err error, depth int) {
	code := statusFor(err)
	if errors.Is(err, upstream.ErrNoServer) {
		name := ""
		if t.up != nil {
			name = t.up.Name
		}
		h.elog.Printf("[error] no live upstreams while connecting to upstream %q: %v, client: %s, request: %q",
			name, err, q.remoteIP, q.r.Method+" "+q.r.RequestURI)
		code = http.StatusBadGateway
	}
	h.errorPage(w, q, code, depth)
}

// exchangeFor builds the upstream request head with nginx's header
// rules: the proxy_set_header list, then the client's headers minus those
// it names and minus hop-by-hop ones.
func (h *Handler) exchangeFor(q *request, t *target) *exchange {
	s := q.set
	ex := &exchange{
		up:          t.up,
		method:      q.r.Method,
		target:      t.uri,
		host:        t.host,
		header:      make(http.Header, len(q.r.Header)+4),
		connect:     s.ProxyConnectTimeout,
		sendTimeout: s.ProxySendTimeout,
		readTimeout: s.ProxyReadTimeout,
	}
	h.setHeaders(q, ex.header)
	if hv, ok := ex.header["Host"]; ok {
		if len(hv) > 0 && hv[0] != "" {
			ex.host = hv[0]
		}
		delete(ex.header, "Host")
	}
	// Connection is hop-by-hop: wsgate manages its upstream connections
	// itself. Only a literal "proxy_set_header Connection close" turns
	// reuse off; a value from a variable (the map $http_upgrade
	// $connection_upgrade idiom gives "close" for plain requests) only
	// means "this is no upgrade".
	if c := ex.header.Get("Connection"); c != "" {
		if strings.EqualFold(c, "close") && s.UserConnection && connectionIsLiteral(s) {
			ex.close = true
		}
		delete(ex.header, "Connection")
	}
	delete(ex.header, "Upgrade")
	return ex
}

// connectionIsLiteral reports whether the configured Connection header
// is constant text rather than a variable.
func connectionIsLiteral(s *config.Settings) bool {
	for _, sh := range s.ProxySetHeaders {
		if strings.EqualFold(sh.Name, "Connection") {
			return sh.Value.IsConst()
		}
	}
	return false
}

// setHeaders fills hdr with the upstream request headers for q: the
// proxy_set_header values that are not empty, then the client's end-to-end
// headers (their value slices shared, not copied).
func (h *Handler) setHeaders(q *request, hdr http.Header) {
	h.eachUpstreamHeader(q,
		func(k, v string) { hdr[k] = append(hdr[k], v) },
		func(k string, vs []string) {
			if _, ok := hdr[k]; ok {
				hdr[k] = append(hdr[k], vs...)
			} else {
				hdr[k] = vs
			}
		})
}

// eachUpstreamHeader walks the headers a proxied request carries upstream,
// without building a map: set gets every proxy_set_header value that is
// not empty, then pass every client header that passes (not one the
// location sets, not hop-by-hop, not named by the client's Connection
// header).
func (h *Handler) eachUpstreamHeader(q *request, set func(k, v string), pass func(k string, vs []string)) {
	s := q.set
	p := h.planFor(s)
	for i, sh := range s.ProxySetHeaders {
		if v := sh.Value.Eval(q); v != "" {
			set(p.setNames[i], v)
		}
	}
	if !s.PassRequestHeaders {
		return
	}
	conn := q.r.Header["Connection"]
	for k, vs := range q.r.Header {
		if !p.skipRequest[k] && !connectionListed(conn, k) {
			pass(k, vs)
		}
	}
}

// connectionListed reports whether the Connection header values name k
// (a hop-by-hop header of this connection). k is canonical.
func connectionListed(conn []string, k string) bool {
	for _, v := range conn {
		for v != "" {
			tok := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if strings.EqualFold(strings.TrimSpace(tok), k) {
				return true
			}
		}
	}
	return false
}

// headerPlan is the per-location header work done once: canonical names
// of the proxy_set_header list, the client headers never copied, and the
// response headers hidden.
type headerPlan struct {
	setNames     []string        // canonical, parallel to ProxySetHeaders
	skipRequest  map[string]bool // canonical request header keys not copied
	hideResponse map[string]bool // canonical response header keys dropped
	passResponse map[string]bool // proxy_pass_header: shown despite defaults
}

// planFor returns the headerPlan of s, made once per handler (settings
// are immutable; the cache goes away with the configuration generation).
func (h *Handler) planFor(s *config.Settings) *headerPlan {
	if p, ok := h.plans.Load(s); ok {
		return p.(*headerPlan)
	}
	p := &headerPlan{skipRequest: map[string]bool{}, hideResponse: map[string]bool{}, passResponse: map[string]bool{}}
	for _, sh := range s.ProxySetHeaders {
		k := http.CanonicalHeaderKey(sh.Name)
		p.setNames = append(p.setNames, k)
		p.skipRequest[k] = true
	}
	for _, k := range hopHeaders {
		p.skipRequest[k] = true
		p.hideResponse[k] = true
	}
	p.skipRequest["Expect"] = true
	p.skipRequest["Content-Length"] = true
	for name := range hiddenResponse {
		p.hideResponse[http.CanonicalHeaderKey(name)] = true
	}
	for name, hide := range s.ProxyHideHeaders {
		k := http.CanonicalHeaderKey(name)
		if hide {
			p.hideResponse[k] = true
		} else {
			delete(p.hideResponse, k)
			p.passResponse[k] = true
		}
	}
	actual, _ := h.plans.LoadOrStore(s, p)
	return actual.(*headerPlan)
}

// copyResponse relays an upstream response to the client.
func (h *Handler) copyResponse(w *responseWriter, q *request, t *target, resp *http.Response, cancel context.CancelFunc, readTimeout time.Duration) {
	defer resp.Body.Close()
	s := q.set
	p := h.planFor(s)
	dst := w.Header()
	var conn map[string]bool
	for _, v := range resp.Header["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			if conn == nil {
				conn = map[string]bool{}
			}
			conn[http.CanonicalHeaderKey(strings.TrimSpace(tok))] = true
		}
	}
	for k, vs := range resp.Header {
		if conn[k] || p.hideResponse[k] || strings.HasPrefix(k, "X-Accel-") && !p.passResponse[k] {
			continue
		}
		dst[k] = vs
	}
	if loc := dst.Get("Location"); loc != "" && !s.ProxyRedirectOff && s.Proxy != nil && s.Proxy.Dynamic == nil && q.loc != nil && q.loc.Regex == nil {
		dst.Set("Location", rewriteLocation(loc, s.Proxy, q.loc))
	}
	h.addHeaders(w, q, resp.StatusCode)
	if resp.ContentLength >= 0 && dst.Get("Content-Length") == "" && resp.StatusCode != 304 && resp.StatusCode != 204 {
		dst.Set("Content-Length", itoa(int(resp.ContentLength)))
	}
	w.WriteHeader(resp.StatusCode)
	if q.r.Method == http.MethodHead {
		return
	}
	// Unbuffered: proxy_buffering off, an upstream's "X-Accel-Buffering:
	// no" (as nginx), or an event stream of unknown length (SSE works
	// even with the default proxy_buffering on).
	flush := !s.ProxyBuffering || strings.EqualFold(resp.Header.Get("X-Accel-Buffering"), "no") ||
		resp.ContentLength < 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	for {
		var timer *time.Timer
		if readTimeout > 0 {
			timer = time.AfterFunc(readTimeout, cancel)
		}
		n, err := resp.Body.Read(*buf)
		if timer != nil {
			timer.Stop()
		}
		if n > 0 {
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return
			}
			if flush {
				w.Flush()
			}
		}
		if err != nil {
			if err != io.EOF {
				h.elog.Printf("[error] upstream prematurely closed connection while reading upstream %q: %v, client: %s", q.upstreamAddr, err, q.remoteIP)
				// abort so the client sees a truncated response, not a complete one
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
}

// rewriteLocation applies "proxy_redirect default": the proxy_pass URL
// in a Location header becomes the location's path.
func rewriteLocation(loc string, p *config.Proxy, l *config.Location) string {
	prefix := p.Scheme + "://" + p.Host
	if p.HasURI {
		prefix += p.URI
		if strings.HasPrefix(loc, prefix) {
			return l.Path + loc[len(prefix):]
		}
		return loc
	}
	if strings.HasPrefix(loc, prefix+"/") {
		return loc[len(prefix):]
	}
	return loc
}

// evalRaw evaluates a raw template text (hash keys).
func evalRaw(raw string, q *request) string {
	t, err := compileCached(raw)
	if err != nil {
		return ""
	}
	return t.Eval(q)
}
