package proxy

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
)

// This file runs the rewrite module's scripts (rewrite, return, set,
// break, if) as nginx's script engine does (ngx_http_rewrite_module.c,
// ngx_http_script.c). Only requests whose server or location has such
// directives get here.

// scriptVar is a variable given a value by set, or by a named capture of
// a rewrite or if regex.
type scriptVar struct {
	name, value string
}

// setVar gives the variable name (lowercase) a value for this request.
func (q *request) setVar(name, value string) {
	for i := range q.vars {
		if q.vars[i].name == name {
			q.vars[i].value = value
			return
		}
	}
	q.vars = append(q.vars, scriptVar{name, value})
}

// keepNamedCaptures turns the named groups of the matched regex location
// into variables, so that they outlive the location (nginx sets them as
// variables when the location matches).
func (q *request) keepNamedCaptures() {
	if q.loc == nil || q.loc.Regex == nil || q.locCaps == nil {
		return
	}
	for i, n := range q.loc.Regex.SubexpNames() {
		if n != "" && i < len(q.locCaps) {
			q.setVar(strings.ToLower(n), q.locCaps[i])
		}
	}
}

// noCaptures is the state after a rewrite module regex did not match:
// nginx then has no captures at all ($1 is empty, also the server_name's).
var noCaptures = []string{}

// quotedURI reports whether the request path was sent with a "%" escape or
// a "+" (nginx's r->quoted_uri || r->plus_in_uri): captures copied into
// arguments or a redirect are then escaped again.
func (q *request) quotedURI() bool {
	if q.quoted == 0 {
		q.quoted = 1
		t := q.r.RequestURI
		if strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://") {
			if i := strings.Index(t[8:], "/"); i >= 0 {
				t = t[8+i:]
			}
		}
		if i := strings.IndexAny(t, "?#"); i >= 0 {
			t = t[:i]
		}
		if strings.ContainsAny(t, "%+") {
			q.quoted = 2
		}
	}
	return q.quoted == 2
}

// scriptRun is one run of a script (nginx's script engine).
type scriptRun struct {
	h     *Handler
	w     *responseWriter
	q     *request
	depth int
	log   bool
	// quote is nginx's e->quote: on until a rewrite completes; while on,
	// captures in set and if values are escaped for a quoted URI.
	quote bool
	// changed is nginx's r->uri_changed: a rewrite without "break"
	// matched, so the locations are searched again afterwards.
	changed bool
}

// scriptEnd says how a run of (part of) a script ended.
type scriptEnd uint8

const (
	scriptNext scriptEnd = iota // past the last directive
	scriptStop                  // break, or a rewrite with a flag
	scriptDone                  // the request was answered
)

// runScript runs sc for q. done reports that the request was answered;
// again that a rewrite changed the URI and asks for a new location search
// (only meaningful after a location's script). logOn is rewrite_log.
func (h *Handler) runScript(w *responseWriter, q *request, sc config.Script, depth int, logOn bool) (done, again bool) {
	e := &scriptRun{h: h, w: w, q: q, depth: depth, log: logOn, quote: true}
	if e.exec(sc) == scriptDone {
		return true, false
	}
	return false, e.changed
}

func (e *scriptRun) exec(sc config.Script) scriptEnd {
	q := e.q
	for _, op := range sc {
		switch {
		case op.Rewrite != nil:
			if end := e.rewrite(op.Rewrite); end != scriptNext {
				return end
			}
		case op.Return != nil:
			if q.trace != nil {
				e.tracef("return %d%s", op.Return.Code, strings.TrimRight(" "+op.Return.Text.Raw(), " "))
			}
			e.h.doReturn(e.w, q, op.Return, e.depth)
			return scriptDone
		case op.Set != nil:
			e.set(op.Set)
		case op.Break:
			if q.trace != nil {
				e.tracef("break")
			}
			if e.changed {
				// a rewrite without flag before: stay in this location
				e.changed = false
				q.locInvalid = true
			}
			return scriptStop
		case op.If != nil:
			ok := e.cond(&op.If.Cond)
			if q.trace != nil {
				e.tracef("if (%s): %v", op.If.Cond.Text, ok)
			}
			if !ok {
				continue
			}
			if op.If.Settings != nil {
				// the implicit location replaces the enclosing one,
				// also for the directives after the block
				q.set = op.If.Settings
			}
			if end := e.exec(op.If.Body); end != scriptNext {
				return end
			}
		}
	}
	return scriptNext
}

// tracef reports a step to wsgate explain (callers check q.trace first).
func (e *scriptRun) tracef(format string, a ...any) {
	e.q.tracef("rewrite", format, a...)
}

// tracef writes a line of wsgate explain's report.
func (q *request) tracef(label, format string, a ...any) {
	if q.trace != nil {
		q.trace(label, fmt.Sprintf(format, a...))
	}
}

// notice writes a rewrite_log line (callers check e.log first, so that
// a script without rewrite_log builds no arguments).
func (e *scriptRun) notice(format string, a ...any) {
	q := e.q
	args := append(a, q.remoteIP, q.srv.PrimaryName, q.r.Method+" "+q.r.RequestURI+" "+q.r.Proto, q.r.Host)
	e.h.elog.Printf("[notice] "+format+", client: %s, server: %s, request: %q, host: %q", args...)
}

// matched records a rewrite module regex match: its submatches become
// $1..$9 (a regex without groups leaves none: checked against nginx
// 1.22), its named groups variables.
func (e *scriptRun) matched(sm []string, named []config.NamedGroup) {
	e.q.captures = sm
	for _, n := range named {
		e.q.setVar(n.Name, sm[n.Index])
	}
}

func (e *scriptRun) rewrite(rw *config.Rewrite) scriptEnd {
	q := e.q
	sm := rw.Regex.FindStringSubmatch(q.uri)
	if sm == nil {
		if e.log {
			e.notice("%q does not match %q", rw.Pattern, q.uri)
		}
		q.captures = noCaptures
		return scriptNext
	}
	if e.log {
		e.notice("%q matches %q", rw.Pattern, q.uri)
	}
	e.matched(sm, rw.Named)
	q.internal = true
	q.uriChanged = true // the request line's URI is no longer valid
	if rw.Break {
		q.locInvalid = true
		e.changed = false
	} else {
		e.changed = true
	}
	x := captureExpander{q: q, quoted: q.quotedURI(), redirect: rw.Redirect}
	buf, argsAt := rw.Replacement.Expand(make([]byte, 0, 64), x)
	e.quote = false
	if rw.Redirect {
		loc := string(unescapeRedirect(buf))
		if rw.AddArgs && q.args != "" {
			sep := "?"
			if rw.Replacement.Args {
				sep = "&"
			}
			loc += sep + q.args
		}
		if e.log {
			e.notice("rewritten redirect: %q", loc)
		}
		if q.trace != nil {
			e.tracef("rewrite %s %s: matches %q, %d redirect to %s", rw.Pattern, rw.Replacement.Raw(), sm[0], rw.Status, loc)
		}
		e.h.redirect(e.w, q, rw.Status, e.h.absolute(q, loc))
		return scriptDone
	}
	var uri string
	if argsAt >= 0 {
		uri = string(buf[:argsAt])
		args := string(buf[argsAt:])
		if rw.AddArgs && q.args != "" {
			args += "&" + q.args
		}
		q.args = args
	} else {
		uri = string(buf)
		if !rw.AddArgs {
			q.args = ""
		}
	}
	q.hasArgs = q.args != ""
	if e.log {
		e.notice("rewritten data: %q, args: %q", uri, q.args)
	}
	flag := rw.Flag
	if flag == "" {
		flag = "no flag"
	}
	if q.trace != nil {
		e.tracef("rewrite %s %s (%s): $uri %s, $args %q", rw.Pattern, rw.Replacement.Raw(), flag, uri, q.args)
	}
	if uri == "" {
		e.h.elog.Printf("[error] the rewritten URI has a zero length, client: %s, request: %q", q.remoteIP, q.r.Method+" "+q.r.RequestURI)
		e.h.errorPage(e.w, q, http.StatusInternalServerError, e.depth)
		return scriptDone
	}
	q.uri = uri
	if rw.Stop {
		return scriptStop
	}
	return scriptNext
}

// captureExpander expands a rewrite replacement for q: captures that go
// into the arguments or a redirect are escaped when the request path was
// escaped (ngx_http_script_copy_capture_code).
type captureExpander struct {
	q        *request
	quoted   bool
	redirect bool
}

func (x captureExpander) Var(name string) (string, bool) { return x.q.Var(name) }

func (x captureExpander) AppendCapture(dst []byte, n int, inArgs bool) []byte {
	caps := x.q.captures
	if caps == nil && x.q.srvCaps != nil {
		caps = x.q.srvCaps.Numbered
	}
	if n >= len(caps) {
		return dst
	}
	if (inArgs || x.redirect) && x.quoted {
		return appendEscapeArgs(dst, caps[n])
	}
	return append(dst, caps[n]...)
}

func (e *scriptRun) set(s *config.Set) {
	q := e.q
	q.escCaps = e.quote && q.quotedURI()
	v := s.Value.Eval(q)
	q.escCaps = false
	if q.trace != nil {
		e.tracef("set $%s %q", s.Name, v)
	}
	if s.Args {
		q.args, q.hasArgs = v, v != ""
		q.uriChanged = true
		return
	}
	q.setVar(s.Name, v)
}

func (e *scriptRun) cond(c *config.Condition) bool {
	q := e.q
	switch c.Kind {
	case config.CondVar:
		v := c.Var.Eval(q)
		return v != "" && v != "0"
	case config.CondEqual, config.CondNotEqual:
		a := c.Var.Eval(q)
		q.escCaps = e.quote && q.quotedURI()
		b := c.Value.Eval(q)
		q.escCaps = false
		return (a == b) == (c.Kind == config.CondEqual)
	case config.CondRegex:
		s := c.Var.Eval(q)
		sm := c.Regex.FindStringSubmatch(s)
		if sm == nil {
			if e.log {
				e.notice("%q does not match %q", c.Pattern, s)
			}
			q.captures = noCaptures
			return c.Negate
		}
		if e.log {
			e.notice("%q matches %q", c.Pattern, s)
		}
		e.matched(sm, c.Named)
		return !c.Negate
	case config.CondFile:
		q.escCaps = e.quote && q.quotedURI()
		p := c.Var.Eval(q)
		q.escCaps = false
		return fileTest(p, c.FileOp) != c.Negate
	}
	return false
}

// fileTest is -f, -d, -e or -x on path, following symbolic links as
// nginx's open_file_cache test does: -e is a file or a directory, -x has
// the owner's execute bit.
func fileTest(path string, op byte) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	switch op {
	case 'f':
		return st.Mode().IsRegular()
	case 'd':
		return st.IsDir()
	case 'e':
		return st.Mode().IsRegular() || st.IsDir()
	case 'x':
		return st.Mode().Perm()&0o100 != 0
	}
	return false
}
