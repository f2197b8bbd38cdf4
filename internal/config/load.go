package config

import (
	"net"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/vars"
)

// Options change how Load reads a configuration.
type Options struct {
	// Prefix is the directory relative paths (include, root, pid, logs)
	// resolve against. Empty means the directory of the config file.
	Prefix string
	// SkipResolve skips checking that upstream host names resolve.
	SkipResolve bool
}

// Load reads, validates and compiles the configuration file at path. On
// failure the error is an ErrorList with every problem found.
func Load(path string, opt Options) (*Config, error) {
	prefix := opt.Prefix
	if prefix == "" {
		prefix = filepath.Dir(path)
	}
	if abs, err := filepath.Abs(prefix); err == nil {
		prefix = abs
	}
	tree, err := Parse(path, prefix)
	if err != nil {
		return nil, ErrorList(Errors(err))
	}
	return Compile(path, prefix, tree, opt)
}

// compiler carries state while compiling one configuration.
type compiler struct {
	cfg   *Config
	opt   Options
	errs  ErrorList
	seen  map[string]bool // dedupe errors reported once per inheriting location
	http  *HTTP
	match map[string]*Directive
}

func (c *compiler) err(e *Error) {
	if e == nil {
		return
	}
	k := e.Error()
	if c.seen[k] {
		return
	}
	c.seen[k] = true
	c.errs = append(c.errs, e)
}

func (c *compiler) errList(err error) {
	for _, e := range Errors(err) {
		c.err(e)
	}
}

// Compile checks and compiles an already parsed tree.
func Compile(path, prefix string, tree []*Directive, opt Options) (*Config, error) {
	c := &compiler{
		cfg: &Config{
			File:                  path,
			Prefix:                prefix,
			WorkerConnections:     512,
			PID:                   filepath.Join(prefix, "wsgate.pid"),
			ErrorLog:              "stderr",
			WorkerShutdownTimeout: 60 * time.Second,
		},
		opt:  opt,
		seen: map[string]bool{},
	}
	// A file that holds only http-level directives (a conf.d snippet
	// with server blocks) is read as if wrapped in http { }.
	if !hasMainDirectives(tree) && len(tree) > 0 {
		tree = []*Directive{{Name: "http", File: path, Line: 1, HasBlock: true, Block: tree}}
	}
	var httpBlock *Directive
	for _, d := range tree {
		if !c.check(d, ctxMain) {
			continue
		}
		switch d.Name {
		case "worker_processes":
			c.cfg.WorkerProcesses = d.Args[0]
			if d.Args[0] != "auto" {
				if n, err := strconv.Atoi(d.Args[0]); err != nil || n < 1 {
					c.err(d.Errorf("invalid value %q in \"worker_processes\" directive", d.Args[0]))
				}
			}
		case "daemon":
			v, e := parseFlag(d)
			c.err(e)
			c.cfg.Daemon = v
		case "pid":
			c.cfg.PID = c.path(d.Args[0])
		case "error_log":
			c.cfg.ErrorLog = c.logPath(d.Args[0])
			if len(d.Args) == 2 && !validLogLevel(d.Args[1]) {
				c.err(d.Errorf("invalid log level %q", d.Args[1]))
			}
		case "worker_shutdown_timeout":
			v, e := parseTime(d, 0)
			c.err(e)
			c.cfg.WorkerShutdownTimeout = v
		case "events":
			c.events(d)
		case "http":
			if httpBlock != nil {
				c.err(d.Errorf("\"http\" directive is duplicate"))
				continue
			}
			httpBlock = d
		}
	}
	if httpBlock != nil {
		c.compileHTTP(httpBlock)
		c.checkTLS()
		c.checkDuplicateLocations()
	}
	if len(c.errs) > 0 {
		// Report in file order, whatever order the compiler found them.
		sort.SliceStable(c.errs, func(i, j int) bool {
			if c.errs[i].File != c.errs[j].File {
				return false
			}
			return c.errs[i].Line < c.errs[j].Line
		})
		return nil, c.errs
	}
	return c.cfg, nil
}

// hasMainDirectives reports whether the tree is a whole nginx.conf rather
// than an http-level snippet. Unknown names decide nothing: they are
// reported wherever the tree ends up, and a typo in a conf.d snippet must
// not turn its server blocks into "not allowed here" errors.
func hasMainDirectives(tree []*Directive) bool {
	for _, d := range tree {
		if s, ok := directives[d.Name]; ok && s.ctx&ctxMain != 0 && d.Name != "error_log" {
			return true
		}
	}
	return false
}

func validLogLevel(s string) bool {
	switch s {
	case "debug", "info", "notice", "warn", "error", "crit", "alert", "emerg":
		return true
	}
	return false
}

// check looks d up in the directive table for context in. It reports
// whether d still needs compiling: false after reporting an error, or
// for an accepted directive that is ignored (listed for "wsgate -t").
func (c *compiler) check(d *Directive, in context) bool {
	s, err := lookupSpec(d, in)
	if err != nil {
		c.err(err)
		return false
	}
	if s.ignored {
		c.ignore(d, s)
		return false
	}
	return true
}

func (c *compiler) ignore(d *Directive, s spec) {
	c.cfg.Ignored = append(c.cfg.Ignored, IgnoredDirective{Name: d.Name, Pos: d.Pos(), Note: s.note})
}

// path resolves p against the prefix.
func (c *compiler) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.cfg.Prefix, p)
}

func (c *compiler) logPath(p string) string {
	switch p {
	case "stderr", "stdout", "/dev/stderr", "/dev/stdout":
		return strings.TrimPrefix(p, "/dev/")
	}
	if strings.HasPrefix(p, "syslog:") {
		return "stderr"
	}
	return c.path(p)
}

func (c *compiler) events(d *Directive) {
	for _, e := range d.Block {
		if !c.check(e, ctxEvents) {
			continue
		}
		if e.Name == "worker_connections" {
			n, err := strconv.Atoi(e.Args[0])
			if err != nil || n < 1 {
				c.err(e.Errorf("invalid value %q in \"worker_connections\" directive", e.Args[0]))
				continue
			}
			c.cfg.WorkerConnections = n
		}
	}
}

// level is the set of non-block setting directives at one nesting level.
type level map[string][]*Directive

// duplicates reports a second root, alias or proxy_pass at one level, as
// nginx does ("is duplicate"). Settings read through effective() are
// checked there; these are read by innermostOf and loc0, which do not.
func (c *compiler) duplicates(lv level) {
	for _, name := range []string{"root", "alias", "proxy_pass"} {
		if ds := lv[name]; len(ds) > 1 {
			c.err(ds[1].Errorf("%q directive is duplicate", name))
		}
	}
}

// settingNames are directives handled by the inheritance merge rather than
// structurally.
func isStructural(name string) bool {
	switch name {
	case "server", "location", "upstream", "map", "log_format", "listen", "server_name", "match", "types",
		"ssl_certificate", "ssl_certificate_key":
		return true
	}
	return false
}

func (c *compiler) compileHTTP(d *Directive) {
	h := &HTTP{
		Maps:       map[string]*vars.Map{},
		Upstreams:  map[string]*Upstream{},
		LogFormats: map[string]*LogFormat{},
		Implicit:   map[string]*Upstream{},
	}
	c.http = h
	c.cfg.HTTP = h
	c.match = map[string]*Directive{}
	combined := &LogFormat{Name: "combined", Escape: "default", Template: vars.MustCompile(combinedFormat)}
	h.LogFormats["combined"] = combined

	top := level{}
	var types *Directive
	// First pass: log formats, maps, match blocks, upstreams.
	for _, e := range d.Block {
		if !c.check(e, ctxHTTP) {
			continue
		}
		switch e.Name {
		case "log_format":
			c.logFormat(e)
		case "map":
			c.compileMap(e)
		case "match":
			c.match[e.Args[0]] = e
		case "types":
			types = e
		case "server", "upstream":
		default:
			top[e.Name] = append(top[e.Name], e)
		}
	}
	for _, e := range d.Block {
		if e.Name == "upstream" && e.HasBlock && len(e.Args) == 1 {
			if _, dup := h.Upstreams[e.Args[0]]; dup {
				c.err(e.Errorf("duplicate upstream %q", e.Args[0]))
				continue
			}
			u, err := CompileUpstream(e, c.match)
			if err != nil {
				c.errList(err)
				continue
			}
			c.resolveServers(u, e)
			h.Upstreams[e.Args[0]] = u
		}
	}
	c.duplicates(top)
	httpTypes := defaultTypes
	if types != nil {
		httpTypes = c.compileTypes(types)
	}
	for _, e := range d.Block {
		if e.Name == "server" && e.HasBlock {
			if srv := c.compileServer(e, top, httpTypes); srv != nil {
				h.Servers = append(h.Servers, srv)
			}
		}
	}
}

const combinedFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`

func (c *compiler) logFormat(d *Directive) {
	name := d.Args[0]
	args := d.Args[1:]
	esc := "default"
	if strings.HasPrefix(args[0], "escape=") {
		esc = strings.TrimPrefix(args[0], "escape=")
		args = args[1:]
		if esc != "default" && esc != "json" && esc != "none" {
			c.err(d.Errorf("unknown log format escaping %q", esc))
			return
		}
	}
	if name == "combined" {
		c.err(d.Errorf("duplicate \"log_format\" name \"combined\""))
		return
	}
	if _, dup := c.http.LogFormats[name]; dup {
		c.err(d.Errorf("duplicate \"log_format\" name %q", name))
		return
	}
	t, err := vars.Compile(strings.Join(args, ""))
	if err != nil {
		c.err(d.Errorf("%v", err))
		return
	}
	c.http.LogFormats[name] = &LogFormat{Name: name, Escape: esc, Template: t}
}

func (c *compiler) compileMap(d *Directive) {
	src, err := vars.Compile(d.Args[0])
	if err != nil {
		c.err(d.Errorf("%v", err))
		return
	}
	if !strings.HasPrefix(d.Args[1], "$") {
		c.err(d.Errorf("invalid variable name %q", d.Args[1]))
		return
	}
	name := strings.ToLower(strings.TrimPrefix(d.Args[1], "$"))
	if name == "" {
		c.err(d.Errorf("invalid variable name %q", d.Args[1]))
		return
	}
	if _, dup := c.http.Maps[name]; dup {
		c.err(d.Errorf("the duplicate %q variable", "$"+name))
		return
	}
	m := vars.NewMap(src, name)
	for _, e := range d.Block {
		if e.HasBlock {
			c.err(e.Errorf("unexpected \"{\" in map"))
			continue
		}
		key := e.Name
		switch {
		case key == "hostnames" && len(e.Args) == 0:
			c.err(e.Errorf("\"hostnames\" in map is not implemented by wsgate"))
			continue
		case key == "volatile" && len(e.Args) == 0:
			continue
		case key == "include":
			continue // already expanded by the parser
		}
		if len(e.Args) != 1 {
			c.err(e.Errorf("invalid number of the map parameters"))
			continue
		}
		val, err := vars.Compile(e.Args[0])
		if err != nil {
			c.err(e.Errorf("%v", err))
			continue
		}
		switch {
		case key == "default":
			if m.Default != nil {
				c.err(e.Errorf("duplicate default map parameter"))
			}
			m.Default = val
		case strings.HasPrefix(key, "~*"):
			if err := m.AddRegex(key[2:], true, val); err != nil {
				c.err(e.Errorf("invalid regular expression %q: %v", key[2:], err))
			}
		case strings.HasPrefix(key, "~"):
			if err := m.AddRegex(key[1:], false, val); err != nil {
				c.err(e.Errorf("invalid regular expression %q: %v", key[1:], err))
			}
		default:
			if strings.HasPrefix(key, "\\") {
				key = key[1:]
			}
			if !m.AddExact(key, val) {
				c.err(e.Errorf("conflicting parameter %q", key))
			}
		}
	}
	c.http.Maps[name] = m
}

func (c *compiler) compileTypes(d *Directive) map[string]string {
	out := map[string]string{}
	for _, e := range d.Block {
		if e.HasBlock || len(e.Args) == 0 {
			c.err(e.Errorf("invalid \"types\" entry %q", e.Name))
			continue
		}
		for _, ext := range e.Args {
			out[strings.ToLower(ext)] = e.Name
		}
	}
	return out
}

// resolveServers checks upstream host names as nginx does at start-up.
func (c *compiler) resolveServers(u *Upstream, d *Directive) {
	if c.opt.SkipResolve {
		return
	}
	for _, s := range u.Servers {
		host, _, err := net.SplitHostPort(s.Addr)
		if err != nil {
			host = s.Addr
		}
		if net.ParseIP(host) != nil {
			continue
		}
		if _, err := net.LookupHost(host); err != nil {
			line := s.Line
			if line == 0 {
				line = d.Line
			}
			c.err(&Error{File: d.File, Line: line, Msg: "host not found in upstream \"" + s.Addr + "\""})
		}
	}
}

var listenParamRe = regexp.MustCompile(`^(backlog|rcvbuf|sndbuf|accept_filter|ipv6only|so_keepalive|fastopen|setfib)=`)

func (c *compiler) listen(d *Directive) (Listen, *Error) {
	l := Listen{File: d.File, Line: d.Line}
	a := d.Args[0]
	switch {
	case strings.HasPrefix(a, "unix:"):
		return l, d.Errorf("listen on a unix socket (%q) is not implemented by wsgate", a)
	case strings.HasPrefix(a, "["):
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			// "[::]" with no port
			if !strings.HasSuffix(a, "]") || strings.Count(a, "]") != 1 {
				return l, d.Errorf("invalid host in %q of the \"listen\" directive", a)
			}
			host, port = a[1:len(a)-1], "80"
		}
		if !isPort(port) {
			return l, d.Errorf("invalid port in %q of the \"listen\" directive", a)
		}
		l.Addr = net.JoinHostPort(host, port)
	case isDigits(a):
		// nginx reads an all-digit address as a port (ngx_parse_inet_url).
		if !isPort(a) {
			return l, d.Errorf("invalid port in %q of the \"listen\" directive", a)
		}
		l.Addr = ":" + a
	case strings.Contains(a, ":"):
		host, port, err := net.SplitHostPort(a)
		if err != nil || !isPort(port) {
			return l, d.Errorf("invalid port in %q of the \"listen\" directive", a)
		}
		if host == "*" {
			host = ""
		}
		l.Addr = net.JoinHostPort(host, port)
	default:
		if a == "*" {
			a = ""
		}
		l.Addr = net.JoinHostPort(a, "80")
	}
	for _, p := range d.Args[1:] {
		switch {
		case p == "default_server" || p == "default":
			l.DefaultServer = true
		case p == "ssl":
			l.SSL = true
		case p == "http2":
			l.HTTP2 = true
		case p == "reuseport" || p == "deferred" || p == "bind" || listenParamRe.MatchString(p):
		case p == "proxy_protocol" || p == "quic":
			return l, d.Errorf("\"listen ... %s\" is not implemented by wsgate", p)
		default:
			return l, d.Errorf("invalid parameter %q", p)
		}
	}
	return l, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

func (c *compiler) serverNames(d *Directive) []ServerName {
	var out []ServerName
	for _, a := range d.Args {
		switch {
		case strings.HasPrefix(a, "~"):
			re, err := regexp.Compile(vars.ConvertRegex(a[1:]))
			if err != nil {
				c.err(d.Errorf("invalid server name regex %q: %v", a, err))
				continue
			}
			out = append(out, ServerName{Regex: re})
		case strings.HasPrefix(a, "*."):
			out = append(out, ServerName{Suffix: strings.ToLower(a[1:])})
		case strings.HasPrefix(a, "."):
			out = append(out, ServerName{Suffix: strings.ToLower(a), Dot: true})
		case strings.HasSuffix(a, ".*"):
			out = append(out, ServerName{Prefix: strings.ToLower(a[:len(a)-1])})
		case strings.Contains(a, "*"):
			c.err(d.Errorf("invalid server name or wildcard %q", a))
		default:
			out = append(out, ServerName{Exact: strings.ToLower(a)})
		}
	}
	return out
}

func (c *compiler) compileServer(d *Directive, httpLevel level, httpTypes map[string]string) *Server {
	srv := &Server{File: d.File, Line: d.Line, Named: map[string]*Location{}}
	lv := level{}
	var script []*Directive // rewrite module directives, in order
	var types map[string]string
	var locs []*Directive
	named := false // a server_name was written ("" is a valid first name)
	for _, e := range d.Block {
		if !c.check(e, ctxServer) {
			continue
		}
		switch e.Name {
		case "listen":
			l, err := c.listen(e)
			if err != nil {
				c.err(err)
				continue
			}
			srv.Listens = append(srv.Listens, l)
		case "server_name":
			srv.Names = append(srv.Names, c.serverNames(e)...)
			if !named {
				srv.PrimaryName = e.Args[0]
				named = true
			}
		case "location":
			locs = append(locs, e)
		case "types":
			types = c.compileTypes(e)
		case "ssl_certificate":
			srv.TLSCert = c.path(e.Args[0])
		case "ssl_certificate_key":
			srv.TLSKey = c.path(e.Args[0])
		default:
			if isScriptDirective(e.Name) {
				script = append(script, e)
				continue
			}
			lv[e.Name] = append(lv[e.Name], e)
		}
	}
	c.duplicates(lv)
	if len(srv.Listens) == 0 {
		srv.Listens = []Listen{{Addr: ":80", File: d.File, Line: d.Line}}
	}
	if !named {
		srv.Names = []ServerName{{Exact: ""}}
	}
	for _, l := range srv.Listens {
		if l.SSL && (srv.TLSCert == "" || srv.TLSKey == "") {
			c.err(&Error{File: l.File, Line: l.Line, Msg: "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive"})
		}
	}
	if types == nil {
		types = httpTypes
	}
	chain := []level{httpLevel, lv}
	srv.Settings = c.settings(chain, types, nil)
	srv.Script = c.compileScript(script, ctxServer, nil)
	for _, e := range locs {
		if l := c.compileLocation(e, chain, types, nil, srv); l != nil {
			if l.Modifier == "@" {
				srv.Named[l.Path] = l
				continue
			}
			srv.Locations = append(srv.Locations, l)
		}
	}
	return srv
}

func (c *compiler) compileLocation(d *Directive, chain []level, types map[string]string, parent *Location, srv *Server) *Location {
	l := &Location{File: d.File, Line: d.Line}
	switch len(d.Args) {
	case 1:
		a := d.Args[0]
		switch {
		case strings.HasPrefix(a, "@"):
			l.Modifier, l.Path = "@", a[1:]
		case strings.HasPrefix(a, "="):
			l.Modifier, l.Path = "=", a[1:]
		case strings.HasPrefix(a, "^~"):
			l.Modifier, l.Path = "^~", a[2:]
		case strings.HasPrefix(a, "~*"):
			l.Modifier, l.Path = "~*", a[2:]
		case strings.HasPrefix(a, "~"):
			l.Modifier, l.Path = "~", a[1:]
		default:
			l.Path = a
		}
	case 2:
		switch d.Args[0] {
		case "=", "^~", "~", "~*":
			l.Modifier, l.Path = d.Args[0], d.Args[1]
		default:
			c.err(d.Errorf("invalid location modifier %q", d.Args[0]))
			return nil
		}
	}
	if l.Path == "" {
		c.err(d.Errorf("invalid location name %q", strings.Join(d.Args, " ")))
		return nil
	}
	if l.Modifier == "~" || l.Modifier == "~*" {
		p := vars.ConvertRegex(l.Path)
		if l.Modifier == "~*" {
			p = "(?i)" + p
		}
		re, err := regexp.Compile(p)
		if err != nil {
			c.err(d.Errorf("invalid regular expression %q in location: %v", l.Path, err))
			return nil
		}
		l.Regex = re
	}
	if parent != nil {
		if parent.Modifier == "=" {
			c.err(d.Errorf("location %q cannot be inside the exact location %q", l.Name(), parent.Name()))
			return nil
		}
		if l.Modifier == "@" {
			c.err(d.Errorf("named location %q can be on the server level only", l.Name()))
			return nil
		}
		if parent.Modifier == "@" {
			c.err(d.Errorf("location %q cannot be inside the named location %q", l.Name(), parent.Name()))
			return nil
		}
		if parent.Regex == nil && l.Regex == nil && !strings.HasPrefix(l.Path, parent.Path) {
			c.err(d.Errorf("location %q is outside location %q", l.Path, parent.Path))
			return nil
		}
	}
	lv := level{}
	var children, script []*Directive
	for _, e := range d.Block {
		if !c.check(e, ctxLocation) {
			continue
		}
		switch e.Name {
		case "location":
			children = append(children, e)
		case "types":
			types = c.compileTypes(e)
		case "internal":
			l.Internal = true
		default:
			if isScriptDirective(e.Name) {
				script = append(script, e)
				continue
			}
			lv[e.Name] = append(lv[e.Name], e)
		}
	}
	c.duplicates(lv)
	if a, r := lv["alias"], lv["root"]; len(a) > 0 && len(r) > 0 {
		c.err(a[0].Errorf("\"alias\" directive is duplicate, \"root\" directive was specified earlier"))
	}
	if a := lv["alias"]; len(a) > 0 && l.Modifier == "@" {
		c.err(a[0].Errorf("\"alias\" directive cannot be used inside the named location"))
	}
	sub := append(append([]level{}, chain...), lv)
	l.Settings = c.settings(sub, types, l)
	l.Script = c.compileScript(script, ctxLocation, &ifScope{loc: l, chain: sub, types: types})
	if pp := lv["proxy_pass"]; len(pp) > 0 && strings.HasSuffix(l.Path, "/") && (l.Modifier == "" || l.Modifier == "^~" || l.Modifier == "=") {
		// nginx's location tree gives exact locations the auto-redirect too.
		l.AutoRedirect = true
	}
	for _, e := range children {
		if ch := c.compileLocation(e, sub, types, l, srv); ch != nil {
			l.Children = append(l.Children, ch)
		}
	}
	return l
}
