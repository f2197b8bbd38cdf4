package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/route"
)

// ExplainRequest describes a sample request for Explain.
type ExplainRequest struct {
	Method string
	// Target is a path with optional query ("/ws/chat?room=1") or an
	// absolute URL whose host becomes the Host header.
	Target string
	Header http.Header
	// Listen picks the socket ("127.0.0.1:8080" or ":80"); empty means
	// the first one in the configuration.
	Listen string
	// RemoteAddr is the client address; empty means 127.0.0.1:50000.
	RemoteAddr string
}

// Explain writes, for a sample request, the server and location nginx's
// rules select, what wsgate would do, and for proxied requests the
// upstream server picked and the exact upstream request line and headers.
// It sends nothing anywhere.
func (h *Handler) Explain(w io.Writer, er ExplainRequest) error {
	if er.Method == "" {
		er.Method = http.MethodGet
	}
	if er.RemoteAddr == "" {
		er.RemoteAddr = "127.0.0.1:50000"
	}
	host := ""
	target := er.Target
	if i := strings.Index(target, "://"); i >= 0 {
		rest := target[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			host, target = rest, "/"
		} else {
			host, target = rest[:j], rest[j:]
		}
	}
	if !strings.HasPrefix(target, "/") {
		return fmt.Errorf("explain: the target must be a path or an http:// URL, got %q", er.Target)
	}
	var b *route.Binding
	if er.Listen != "" {
		b = h.table.Binding(er.Listen)
		if b == nil {
			return fmt.Errorf("explain: no server listens on %q", er.Listen)
		}
	} else if len(h.table.Bindings) > 0 {
		b = h.table.Bindings[0]
	} else {
		return fmt.Errorf("explain: the configuration has no server")
	}
	hdr := er.Header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	if host == "" {
		host = hdr.Get("Host")
	}
	if host == "" {
		host = b.Addr
		if strings.HasPrefix(host, ":") {
			host = "localhost" + host
		}
	}
	hdr.Del("Host")
	r := &http.Request{Method: er.Method, RequestURI: target, Host: host, Header: hdr, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: er.RemoteAddr}
	q := &request{h: h, r: r, start: time.Now(), scheme: "http"}
	q.remoteIP, q.remotePort, _ = net.SplitHostPort(er.RemoteAddr)
	_, q.localPort, _ = net.SplitHostPort(b.Addr)
	q.srv = b.Server(q.localIP, host)
	fmt.Fprintf(w, "request:   %s %s  Host: %s  (client %s)\n", er.Method, target, host, er.RemoteAddr)
	names := []string{}
	for _, n := range q.srv.Names {
		switch {
		case n.Regex != nil:
			names = append(names, "~"+n.Regex.String())
		case n.Suffix != "":
			if n.Dot {
				names = append(names, n.Suffix)
			} else {
				names = append(names, "*"+n.Suffix)
			}
		case n.Prefix != "":
			names = append(names, n.Prefix+"*")
		default:
			names = append(names, fmt.Sprintf("%q", n.Exact))
		}
	}
	fmt.Fprintf(w, "server:    %s:%d  listen %s  server_name %s\n", q.srv.File, q.srv.Line, b.Addr, strings.Join(names, " "))
	path, query, hasQ := splitTarget(target)
	uri, err := normalizeURI(path)
	if err != nil {
		fmt.Fprintf(w, "result:    400 Bad Request (the URI %q does not normalize)\n", path)
		return nil
	}
	q.uri, q.args, q.hasArgs = uri, query, hasQ
	fmt.Fprintf(w, "uri:       %s  (normalized $uri)  args: %q\n", q.uri, q.args)
	// The handler's own path runs up to the content phase: the server's
	// and the location's rewrite module directives, each location
	// search. It stops before access checks and content, or at an answer
	// of its own (return, a rewrite redirect, an error).
	rec := &recorder{header: http.Header{}}
	rw := &responseWriter{ResponseWriter: rec, q: q}
	q.explain = true
	q.trace = func(label, text string) { fmt.Fprintf(w, "%-10s %s\n", label+":", text) }
	if q.srv.Settings.RealIP != nil {
		h.applyRealIP(q, q.srv.Settings)
	}
	h.process(rw, q, 0, false)
	if q.status == 444 && !rw.wrote {
		fmt.Fprintf(w, "result:    444 (the connection is closed without a response)\n")
		return nil
	}
	if rw.wrote {
		if !q.shown {
			fmt.Fprintf(w, "result:    %d", rec.code)
			if l := rec.header.Get("Location"); l != "" {
				fmt.Fprintf(w, " to %s", l)
			}
			if b := rec.body.String(); b != "" && !strings.HasPrefix(b, "<html>") {
				fmt.Fprintf(w, "  body %q", b)
			}
			fmt.Fprintln(w)
		}
		return nil
	}
	if q.uriChanged {
		fmt.Fprintf(w, "uri:       %s  (after rewrites)  args: %q\n", q.uri, q.args)
	}
	s := q.set
	switch {
	case !allowed(s.Access, q.remoteIP):
		fmt.Fprintf(w, "result:    403 (denied by allow/deny)\n")
	case len(s.TryFiles) > 0:
		var c []string
		for _, t := range s.TryFiles {
			c = append(c, t.Eval(q))
		}
		fmt.Fprintf(w, "result:    try_files %s (root %s)\n", strings.Join(c, " "), s.Root.Eval(q))
	case s.Proxy != nil:
		h.explainProxy(w, q)
	default:
		fmt.Fprintf(w, "result:    static file %s\n", h.filePath(q, q.uri))
	}
	return nil
}

// recorder is the ResponseWriter explain answers into.
type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(p)
}

func (h *Handler) explainProxy(w io.Writer, q *request) {
	t, err := h.resolveTarget(q)
	if err != nil {
		fmt.Fprintf(w, "result:    500 (%v)\n", err)
		return
	}
	q.proxyHost = t.host
	upgrade := isUpgrade(q.r)
	fmt.Fprintf(w, "proxy:     proxy_pass %s", q.set.Proxy.Raw)
	if upgrade {
		fmt.Fprintf(w, "  (WebSocket upgrade: tunnel after the 101)")
	}
	fmt.Fprintln(w)
	addr := t.direct
	if t.pool != nil {
		pk := h.newPicker(q, t)
		a, err := pk.next(nil)
		if err != nil {
			fmt.Fprintf(w, "upstream:  %s: %v -> 502\n", t.up.Name, err)
			return
		}
		addr = a.addr
		a.srv.Release()
		method := t.up.Method
		if method == "" {
			method = "round robin"
		}
		fmt.Fprintf(w, "upstream:  %s (%s, %d server(s)) -> %s\n", t.up.Name, method, len(t.up.Servers), addr)
	}
	var hdr http.Header
	host := t.host
	if upgrade {
		hdr = http.Header{}
		h.setHeaders(q, hdr)
		if v, ok := hdr["Host"]; ok && len(v) > 0 {
			host = v[0]
		}
		hdr.Del("Host")
		hdr.Set("Upgrade", q.r.Header.Get("Upgrade"))
		hdr.Set("Connection", "upgrade")
	} else {
		ex := h.exchangeFor(q, t)
		hdr, host = ex.header, ex.host
		if ex.close {
			hdr.Set("Connection", "close")
		}
	}
	fmt.Fprintf(w, "upstream request:\n  %s %s HTTP/1.1\n  Host: %s\n", q.r.Method, t.uri, host)
	keys := make([]string, 0, len(hdr))
	for k := range hdr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range hdr[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
}
