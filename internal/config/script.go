package config

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/wsgate/wsgate/internal/vars"
)

// Script is the rewrite module's directives of one server or location
// (rewrite, return, set, break and if), in configuration order. As in
// nginx, a server's script runs before the location search (and again
// after each internal redirect), the matched location's script after it;
// a location's script is not inherited by nested locations, and a
// location without one costs nothing.
type Script []*ScriptOp

// ScriptOp is one directive of a Script; exactly one of Rewrite, Return,
// Set, Break and If is set.
type ScriptOp struct {
	File    string
	Line    int
	Rewrite *Rewrite
	Return  *Return
	Set     *Set
	Break   bool
	If      *If
}

// Rewrite is "rewrite REGEX REPLACEMENT [FLAG]".
type Rewrite struct {
	Pattern     string // as written
	Regex       *regexp.Regexp
	Named       []NamedGroup // named groups, set as variables on a match
	Replacement *vars.Replacement
	Flag        string // "", "last", "break", "redirect" or "permanent"
	// Redirect answers Status with the replacement as Location: the
	// redirect and permanent flags, or a replacement that starts with
	// "http://", "https://" or "$scheme".
	Redirect bool
	Status   int
	// Stop ends the script after a match (every flag, and redirects).
	Stop bool
	// Break ("break" flag) keeps the request in its location: no new
	// location search, and proxy_pass passes the whole changed URI.
	Break bool
	// AddArgs keeps the request's arguments (the replacement does not
	// end in "?").
	AddArgs bool
}

// NamedGroup is a named capture group of a rewrite or if regex; a match
// sets the variable Name (lowercased).
type NamedGroup struct {
	Index int
	Name  string
}

// Set is "set $NAME VALUE".
type Set struct {
	Name  string // lowercased, without "$"
	Value *vars.Template
	// Args is "set $args": it changes the request's arguments.
	Args bool
}

// If is "if (CONDITION) { ... }".
type If struct {
	Cond Condition
	Body Script
	// Settings are those of the implicit location nginx makes for an if
	// inside a location: they inherit from the enclosing location and
	// replace its settings for the request once the condition holds (also
	// for the directives after the block). Nil for an if in a server.
	Settings *Settings
}

// CondKind is the form of an if condition.
type CondKind uint8

const (
	CondVar      CondKind = iota // ($var): false when empty or "0"
	CondEqual                    // ($var = value)
	CondNotEqual                 // ($var != value)
	CondRegex                    // ($var ~ regex), ~*, !~, !~*
	CondFile                     // (-f path), -d, -e, -x and their negations
)

// Condition is the compiled condition of an if.
type Condition struct {
	Kind CondKind
	Text string // as written, without the parentheses
	// Var is the tested variable (for file tests: the path).
	Var     *vars.Template
	Value   *vars.Template // = and !=
	Regex   *regexp.Regexp
	Pattern string
	Named   []NamedGroup
	Negate  bool // !~, !~*, !-f ...
	FileOp  byte // 'f', 'd', 'e' or 'x'
}

// inDirective is d.Errorf with nginx's message followed by the directive
// it is about.
func inDirective(d *Directive, format string, a ...any) *Error {
	return d.Errorf(format+" in %q directive", append(a, d.Name)...)
}

// isScriptDirective reports the rewrite module's directives that go into
// a Script rather than into the settings.
func isScriptDirective(name string) bool {
	switch name {
	case "rewrite", "return", "set", "break", "if":
		return true
	}
	return false
}

// ifScope says where a script is compiled: a server, or a location (whose
// if blocks become implicit locations).
type ifScope struct {
	loc   *Location // nil for a server
	chain []level   // the location's levels, http first
	types map[string]string
}

// compileScript compiles the rewrite module's directives of one level.
// in is the context they were found in.
func (c *compiler) compileScript(ds []*Directive, in context, sc *ifScope) Script {
	var out Script
	for _, d := range ds {
		op := &ScriptOp{File: d.File, Line: d.Line}
		switch d.Name {
		case "rewrite":
			op.Rewrite = c.compileRewrite(d)
			if op.Rewrite == nil {
				continue
			}
		case "return":
			op.Return = c.compileReturn(d)
		case "set":
			op.Set = c.compileSet(d)
			if op.Set == nil {
				continue
			}
		case "break":
			op.Break = true
		case "if":
			op.If = c.compileIf(d, in, sc)
			if op.If == nil {
				continue
			}
		default:
			continue
		}
		out = append(out, op)
	}
	return out
}

func (c *compiler) compileRewrite(d *Directive) *Rewrite {
	rw := &Rewrite{Pattern: d.Args[0], AddArgs: true}
	re, err := regexp.Compile(vars.ConvertRegex(d.Args[0]))
	if err != nil {
		c.err(d.Errorf("invalid regular expression %q in \"rewrite\" directive: %v", d.Args[0], err))
		return nil
	}
	rw.Regex = re
	rw.Named = namedGroups(re)
	repl := d.Args[1]
	if repl == "" {
		c.err(inDirective(d, "empty replacement"))
		return nil
	}
	if strings.HasSuffix(repl, "?") {
		// the last "?" drops the original arguments
		repl = repl[:len(repl)-1]
		rw.AddArgs = false
	}
	if strings.HasPrefix(repl, "http://") || strings.HasPrefix(repl, "https://") || strings.HasPrefix(repl, "$scheme") {
		rw.Redirect, rw.Status, rw.Stop = true, http.StatusFound, true
	}
	if len(d.Args) == 3 {
		rw.Flag = d.Args[2]
		switch rw.Flag {
		case "last":
			rw.Stop = true
		case "break":
			rw.Break, rw.Stop = true, true
		case "redirect":
			rw.Redirect, rw.Status, rw.Stop = true, http.StatusFound, true
		case "permanent":
			rw.Redirect, rw.Status, rw.Stop = true, http.StatusMovedPermanently, true
		default:
			c.err(inDirective(d, "invalid parameter %q", rw.Flag))
			return nil
		}
	}
	r, err := vars.CompileReplacement(repl, !rw.Redirect)
	if err != nil {
		c.err(inDirective(d, "%v", err))
		return nil
	}
	rw.Replacement = r
	return rw
}

// namedGroups returns the named groups of re.
func namedGroups(re *regexp.Regexp) []NamedGroup {
	var named []NamedGroup
	for i, n := range re.SubexpNames() {
		if n != "" {
			named = append(named, NamedGroup{Index: i, Name: strings.ToLower(n)})
		}
	}
	return named
}

// fixedVariables are nginx 1.22's built-in variables that "set" cannot
// change ("the duplicate ... variable"), as nginx -t reports them, and
// wsgate's own log variables. $args, $proxy_host and the prefix
// variables ($http_NAME, $arg_NAME, ...) can be set, as in nginx.
var fixedVariables = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`http_host http_user_agent http_referer http_via
		http_x_forwarded_for http_cookie content_length content_type host
		binary_remote_addr remote_addr remote_port proxy_protocol_addr
		proxy_protocol_port proxy_protocol_server_addr proxy_protocol_server_port
		server_addr server_port server_protocol scheme https request_uri uri
		document_uri request document_root realpath_root query_string is_args
		request_filename server_name request_method remote_user bytes_sent
		body_bytes_sent pipe request_completion request_body request_body_file
		request_length request_time request_id status sent_http_content_type
		sent_http_content_length sent_http_location sent_http_last_modified
		sent_http_connection sent_http_keep_alive sent_http_transfer_encoding
		sent_http_cache_control sent_http_link connection connection_requests
		connection_time nginx_version hostname pid msec time_iso8601 time_local
		tcpinfo_rtt tcpinfo_rttvar tcpinfo_snd_cwnd tcpinfo_rcv_space
		proxy_add_x_forwarded_for proxy_internal_body_length proxy_internal_chunked
		upstream_addr upstream_status upstream_connect_time upstream_header_time
		upstream_response_time upstream_response_length upstream_bytes_received
		upstream_bytes_sent upstream_cache_status realip_remote_addr
		realip_remote_port gzip_ratio date_local date_gmt uid_got uid_set
		fastcgi_script_name fastcgi_path_info secure_link secure_link_expires http2
		ws_messages_in ws_messages_out ws_bytes_in ws_bytes_out ws_close_code
		ws_close_by ws_duration`) {
		fixedVariables[n] = true
	}
}

func (c *compiler) compileSet(d *Directive) *Set {
	if !strings.HasPrefix(d.Args[0], "$") || len(d.Args[0]) == 1 {
		c.err(inDirective(d, "invalid variable name %q", d.Args[0]))
		return nil
	}
	name := strings.ToLower(d.Args[0][1:])
	switch {
	case fixedVariables[name]:
		c.err(inDirective(d, "the duplicate %q variable", name))
		return nil
	case name == "limit_rate":
		c.err(d.Errorf("\"set $limit_rate\" is not implemented by wsgate (it has no limit_rate)"))
		return nil
	}
	v, err := vars.Compile(d.Args[1])
	if err != nil {
		c.err(inDirective(d, "%v", err))
		return nil
	}
	return &Set{Name: name, Value: v, Args: name == "args"}
}

// compileIf compiles "if (CONDITION) { ... }" with nginx's condition
// syntax (ngx_http_rewrite_if_condition) and its block: in a server only
// the rewrite module's directives; in a location also the directives
// nginx allows there, which make the implicit location's settings.
func (c *compiler) compileIf(d *Directive, in context, sc *ifScope) *If {
	cond, ok := c.compileCondition(d)
	if !ok {
		return nil
	}
	inner := ctxServerIf
	if in == ctxLocation {
		inner = ctxLocationIf
	}
	var body []*Directive
	lv := level{}
	for _, e := range d.Block {
		if !c.check(e, inner) {
			continue
		}
		if isScriptDirective(e.Name) {
			body = append(body, e)
			continue
		}
		lv[e.Name] = append(lv[e.Name], e)
	}
	f := &If{Cond: cond}
	if inner == ctxLocationIf && sc != nil && sc.loc != nil {
		c.duplicates(lv)
		l := sc.loc
		implicit := &Location{Modifier: l.Modifier, Path: l.Path, Regex: l.Regex, File: d.File, Line: d.Line, ifBlock: true}
		chain := append(append([]level{}, sc.chain...), lv)
		s := c.settings(chain, sc.types, implicit)
		// The implicit location inherits the enclosing one's handler:
		// its proxy_pass (URI part included) unless it has its own.
		if s.Proxy == nil {
			s.Proxy = l.Settings.Proxy
		}
		s.HealthCheck = l.Settings.HealthCheck
		// try_files is not merged into it (checked against nginx 1.22:
		// a true if skips the enclosing location's try_files).
		s.TryFiles = nil
		f.Settings = s
	}
	f.Body = c.compileScript(body, inner, sc)
	return f
}

// compileCondition reads the arguments of an if as nginx does: "(" may be
// a word of its own or stick to the first one, ")" likewise to the last.
func (c *compiler) compileCondition(d *Directive) (Condition, bool) {
	var cond Condition
	args := append([]string(nil), d.Args...)
	first, last := 0, len(args)-1
	if args[0] == "" || args[0][0] != '(' {
		c.err(inDirective(d, "invalid condition %q", args[0]))
		return cond, false
	}
	if args[0] == "(" {
		first = 1
	} else {
		args[0] = args[0][1:]
	}
	if first > last || args[last] == "" || args[last][len(args[last])-1] != ')' {
		c.err(inDirective(d, "invalid condition %q", args[last]))
		return cond, false
	}
	if args[last] == ")" {
		last--
	} else {
		args[last] = args[last][:len(args[last])-1]
	}
	if first > last {
		c.err(inDirective(d, "invalid condition %q", d.Args[0]))
		return cond, false
	}
	words := args[first : last+1]
	cond.Text = strings.Join(words, " ")
	tmpl := func(s string) (*vars.Template, bool) {
		t, err := vars.Compile(s)
		if err != nil {
			c.err(inDirective(d, "%v", err))
			return nil, false
		}
		return t, true
	}
	p := words[0]
	switch {
	case len(p) > 1 && p[0] == '$':
		if len(words) != 1 && len(words) != 3 {
			c.err(inDirective(d, "invalid condition %q", p))
			return cond, false
		}
		v, ok := tmpl(p)
		if !ok {
			return cond, false
		}
		cond.Var = v
		if len(words) == 1 {
			cond.Kind = CondVar
			return cond, true
		}
		op, arg := words[1], words[2]
		switch op {
		case "=", "!=":
			cond.Kind = CondEqual
			if op == "!=" {
				cond.Kind = CondNotEqual
			}
			val, ok := tmpl(arg)
			if !ok {
				return cond, false
			}
			cond.Value = val
			return cond, true
		case "~", "~*", "!~", "!~*":
			cond.Kind = CondRegex
			cond.Negate = op[0] == '!'
			cond.Pattern = arg
			pat := vars.ConvertRegex(arg)
			if strings.HasSuffix(op, "*") {
				pat = "(?i)" + pat
			}
			re, err := regexp.Compile(pat)
			if err != nil {
				c.err(d.Errorf("invalid regular expression %q in \"if\" directive: %v", arg, err))
				return cond, false
			}
			cond.Regex = re
			cond.Named = namedGroups(re)
			return cond, true
		}
		c.err(inDirective(d, "unexpected %q in condition", op))
		return cond, false
	case len(p) == 2 && p[0] == '-' || len(p) == 3 && p[0] == '!' && p[1] == '-':
		if len(words) != 2 {
			c.err(inDirective(d, "invalid condition %q", p))
			return cond, false
		}
		cond.Kind = CondFile
		cond.Negate = p[0] == '!'
		cond.FileOp = p[len(p)-1]
		switch cond.FileOp {
		case 'f', 'd', 'e', 'x':
		default:
			c.err(inDirective(d, "invalid condition %q", p))
			return cond, false
		}
		v, ok := tmpl(words[1])
		if !ok {
			return cond, false
		}
		cond.Var = v
		return cond, true
	}
	c.err(inDirective(d, "invalid condition %q", p))
	return cond, false
}
