package e2e

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// A scenario is one config run under a proxy with a list of probes; its
// outcome per probe is what the client got and what the backends saw,
// normalized so that runs under nginx and wsgate (with different ports)
// compare equal when they behave the same.
type scenario struct {
	conf     string        // config template
	backends []backendSpec // started before the proxy; their addresses fill placeholders
	listens  []string      // placeholders for the proxy's listen addresses
	vars     func(vars map[string]string)
	probes   []probe
	// respHeaders names response headers compared besides Location
	// (absent and empty are told apart).
	respHeaders []string
}

type backendSpec struct {
	name        string // recorded as record.Backend
	placeholder string // {{NAME}} filled with "127.0.0.1:PORT"
	mode        wsMode
}

// probe is one request sent to the listener named by listen.
type probe struct {
	listen string // placeholder of the listen address; the first when empty
	req    rawRequest
}

func (p probe) String() string {
	m := p.req.Method
	if m == "" {
		m = "GET"
	}
	s := m + " " + clip(p.req.Target)
	if p.req.WS {
		s += " (WebSocket handshake)"
	}
	if p.req.Host != "" {
		s += " Host: " + p.req.Host
	}
	for _, h := range p.req.Header {
		s += " " + h[0] + ": " + h[1]
	}
	return s
}

// outcome is what one probe observed.
type outcome struct {
	err      string
	status   int
	location string
	body     string // the client's response body, compared for 2xx answers
	records  []record
	headers  [][2]string // the scenario's respHeaders: name, value or absent
}

// fields lists the compared facts as (name, value) pairs in a stable order;
// records are numbered when either side of a comparison has n > 1.
func (o outcome) fields(n int) [][2]string {
	if o.err != "" {
		return [][2]string{{"client error", o.err}}
	}
	f := [][2]string{
		{"status", strconv.Itoa(o.status)},
		{"Location", o.location},
		{"forwarded", strconv.Itoa(len(o.records))},
	}
	if o.status >= 200 && o.status < 300 {
		f = append(f, [2]string{"response body", shorten(o.body)})
	}
	f = append(f, o.headers...)
	for i, r := range o.records {
		p := ""
		if n > 1 {
			p = fmt.Sprintf("[%d] ", i)
		}
		f = append(f,
			[2]string{p + "backend", r.Backend},
			[2]string{p + "method", r.Method},
			[2]string{p + "uri", r.URI},
			[2]string{p + "Host", r.Host},
			[2]string{p + "X-Forwarded-For", r.XFF},
			[2]string{p + "X-Real-IP", r.XRealIP},
			[2]string{p + "Upgrade", r.Upgrade},
			[2]string{p + "body", strconv.Quote(r.Body)},
		)
	}
	return f
}

// summary is a one-line account of an outcome for logs.
func (o outcome) summary() string {
	if o.err != "" {
		return "error: " + o.err
	}
	s := strconv.Itoa(o.status)
	if o.location != "" {
		s += " Location: " + o.location
	}
	for _, r := range o.records {
		s += fmt.Sprintf(" | %s %s %s Host=%s XFF=%s XRI=%s Upgrade=%s Connection=%s %s",
			r.Backend, r.Method, r.URI, r.Host, r.XFF, r.XRealIP, r.Upgrade, r.Connection, r.Proto)
	}
	return s
}

// context lists facts printed with a difference but not compared.
func (o outcome) context(n int) [][2]string {
	var f [][2]string
	for i, r := range o.records {
		p := ""
		if n > 1 {
			p = fmt.Sprintf("[%d] ", i)
		}
		f = append(f, [2]string{p + "Connection (not compared)", r.Connection}, [2]string{p + "proto (not compared)", r.Proto})
	}
	return f
}

// run starts the scenario's backends and the proxy, sends every probe in
// order and returns one outcome per probe.
func (s scenario) run(t *testing.T, kind proxyKind) []outcome {
	t.Helper()
	vars := map[string]string{}
	var backends []*backend
	for _, bs := range s.backends {
		b := newBackend(t, bs.name, bs.mode)
		backends = append(backends, b)
		vars[bs.placeholder] = b.Addr
	}
	for _, l := range s.listens {
		vars[l] = listenAddr(t)
	}
	if s.vars != nil {
		s.vars(vars)
	}
	norm := newNormalizer(vars)
	conf := render(t, s.conf, vars)
	var addrs []string
	for _, l := range s.listens {
		addrs = append(addrs, vars[l])
	}
	p := startProxy(t, kind, conf, addrs...)

	out := make([]outcome, len(s.probes))
	for i, pr := range s.probes {
		listen := pr.listen
		if listen == "" {
			listen = s.listens[0]
		}
		addr := vars[listen]
		q := pr.req
		for k, v := range vars {
			q.Host = strings.ReplaceAll(q.Host, "{{"+k+"}}", v)
		}
		id := fmt.Sprintf("%s-%d", kind, i)
		q.Header = append(append([][2]string(nil), q.Header...), [2]string{"X-Case", id})
		resp, err := do(addr, q)
		o := outcome{}
		if err != nil {
			o.err = err.Error()
		} else {
			o.status = resp.Status
			o.location = norm.apply(resp.Location)
			o.body = resp.Body
			for _, name := range s.respHeaders {
				v := absent
				if vs, ok := resp.Header[http.CanonicalHeaderKey(name)]; ok {
					v = strings.Join(vs, ", ")
				}
				o.headers = append(o.headers, [2]string{"response " + name, v})
			}
		}
		for _, r := range byCase(id, backends...) {
			r.Host = norm.apply(r.Host)
			r.Case = ""
			o.records = append(o.records, r)
		}
		out[i] = o
	}
	p.alive(t)
	return out
}

// diffOutcomes returns a side-by-side table of nginx's and wsgate's
// outcomes when any compared field differs, or "".
func diffOutcomes(ng, ws outcome) string {
	n := max(len(ng.records), len(ws.records))
	a, b := ng.fields(n), ws.fields(n)
	names := []string{}
	seen := map[string]bool{}
	av, bv := map[string]string{}, map[string]string{}
	for _, f := range a {
		av[f[0]] = f[1]
		if !seen[f[0]] {
			seen[f[0]] = true
			names = append(names, f[0])
		}
	}
	for _, f := range b {
		bv[f[0]] = f[1]
		if !seen[f[0]] {
			seen[f[0]] = true
			names = append(names, f[0])
		}
	}
	differ := false
	for _, n := range names {
		if av[n] != bv[n] {
			differ = true
		}
	}
	if !differ {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "    %-28s %-40s %s\n", "", "nginx", "wsgate")
	row := func(n, x, y string) {
		mark := "  "
		if x != y {
			mark = "!="
		}
		fmt.Fprintf(&sb, "  %s %-28s %-40s %s\n", mark, n, clip(orNone(x)), clip(orNone(y)))
	}
	for _, n := range names {
		row(n, av[n], bv[n])
	}
	ac, bc := map[string]string{}, map[string]string{}
	var cn []string
	for _, f := range ng.context(n) {
		ac[f[0]] = f[1]
		cn = append(cn, f[0])
	}
	for _, f := range ws.context(n) {
		if _, ok := ac[f[0]]; !ok {
			cn = append(cn, f[0])
		}
		bc[f[0]] = f[1]
	}
	sort.Strings(cn)
	for _, n := range cn {
		fmt.Fprintf(&sb, "     %-28s %-40s %s\n", n, clip(orNone(ac[n])), clip(orNone(bc[n])))
	}
	return sb.String()
}

// shorten quotes s, keeping a head and a length so long bodies stay readable
// and still differ when they differ.
func shorten(s string) string {
	if len(s) <= 60 {
		return strconv.Quote(s)
	}
	sum := 0
	for i := 0; i < len(s); i++ {
		sum = sum*31 + int(s[i])
	}
	return fmt.Sprintf("%s... (%d bytes, hash %08x)", strconv.Quote(s[:40]), len(s), uint32(sum))
}

// clip shortens a long value for display only; comparisons use it whole.
func clip(s string) string {
	if len(s) <= 100 {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:60], len(s))
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runDifferential runs s under nginx and wsgate and reports, per probe, every
// compared field that differs. check, when not nil, is called with nginx's
// outcomes first to pin the expectations to nginx's documented behaviour.
func runDifferential(t *testing.T, s scenario, label func(i int) string, check func(t *testing.T, ng []outcome)) {
	t.Helper()
	ng := s.run(t, kindNginx)
	for i, o := range ng {
		t.Logf("nginx: %-60s -> %s", s.probes[i], o.summary())
	}
	if check != nil {
		check(t, ng)
	}
	other := kindWsgate
	if os.Getenv("E2E_DIFF_SELFCHECK") != "" && !inCI() {
		// Harness self-check: nginx against itself must show no difference.
		other = kindNginx
	} else if kinds := proxyKinds(t); len(kinds) == 1 && kinds[0] == kindNginx {
		t.Logf("E2E_PROXIES=nginx: wsgate side not run")
		return
	}
	ws := s.run(t, other)
	mismatches := 0
	for i := range s.probes {
		if d := diffOutcomes(ng[i], ws[i]); d != "" {
			mismatches++
			t.Errorf("%s\n  request: %s\n%s", label(i), s.probes[i], d)
		}
	}
	if mismatches > 0 {
		t.Logf("%d of %d requests differ between nginx and wsgate", mismatches, len(s.probes))
	}
}
