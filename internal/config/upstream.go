package config

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults of ngx_http_upstream_module "server" parameters and of the
// health_check directive, used when a parameter is not written.
const (
	defaultServerWeight      = 1
	defaultServerMaxFails    = 1
	defaultServerFailTimeout = 10 * time.Second
	defaultUpstreamPort      = "80"

	defaultKeepaliveTimeout  = 60 * time.Second
	defaultKeepaliveRequests = 1000
	defaultKeepaliveTime     = time.Hour

	defaultHealthInterval = 5 * time.Second
	defaultHealthFails    = 1
	defaultHealthPasses   = 1
	defaultHealthURI      = "/"
)

// upstreamNotImplemented lists nginx (and NGINX Plus) directives that are
// valid inside an upstream block but that wsgate deliberately does not
// implement; they get a message naming them rather than "unknown
// directive".
var upstreamNotImplemented = map[string]bool{
	"ntlm": true, "queue": true, "resolver": true, "resolver_timeout": true,
	"state": true, "sticky_cookie_insert": true,
}

// CompileUpstream compiles an "upstream NAME { ... }" block with the
// meaning ngx_http_upstream_module gives it. matches holds the http-level
// "match NAME { ... }" blocks by name, for "health_check match=NAME"; it
// may be nil.
//
// An upstream without any server is valid: the proxy answers 502 for it.
// Every problem found is reported, each at its own line, as an ErrorList.
func CompileUpstream(d *Directive, matches map[string]*Directive) (*Upstream, error) {
	if len(d.Args) != 1 || !d.HasBlock {
		return nil, d.Errorf("invalid number of arguments in \"upstream\" directive")
	}
	u := &Upstream{Name: d.Args[0], File: d.File, Line: d.Line}
	u.setKeepaliveDefaults()
	var errs ErrorList
	var method *Directive // the directive that chose the balancing method
	seen := map[string]*Directive{}

	setMethod := func(c *Directive, m string) bool {
		if method != nil {
			errs = append(errs, c.Errorf("load balancing method redefined (\"%s\" at line %d, \"%s\" here)", method.Name, method.Line, c.Name))
			return false
		}
		method = c
		u.Method = m
		return true
	}
	once := func(c *Directive) bool {
		if prev := seen[c.Name]; prev != nil {
			errs = append(errs, c.Errorf("\"%s\" directive is duplicate", c.Name))
			return false
		}
		seen[c.Name] = c
		return true
	}

	var servers []*Directive
	for _, c := range d.Block {
		if c.HasBlock {
			errs = append(errs, c.Errorf("directive \"%s\" is not terminated by \";\"", c.Name))
			continue
		}
		switch c.Name {
		case "server":
			s, err := compileUpstreamServer(c)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			u.Servers = append(u.Servers, s)
			servers = append(servers, c)

		case "least_conn", "ip_hash":
			if len(c.Args) != 0 {
				errs = append(errs, upstreamArgCountError(c))
				continue
			}
			setMethod(c, c.Name)

		case "hash":
			if len(c.Args) < 1 || len(c.Args) > 2 {
				errs = append(errs, upstreamArgCountError(c))
				continue
			}
			if len(c.Args) == 2 && c.Args[1] != "consistent" {
				errs = append(errs, c.Errorf("invalid parameter \"%s\"", c.Args[1]))
				continue
			}
			if c.Args[0] == "" {
				errs = append(errs, c.Errorf("invalid key \"\" in \"hash\" directive"))
				continue
			}
			if setMethod(c, "hash") {
				u.HashKey = c.Args[0]
				u.Consistent = len(c.Args) == 2
			}

		case "random":
			if len(c.Args) > 2 {
				errs = append(errs, upstreamArgCountError(c))
				continue
			}
			if len(c.Args) >= 1 && c.Args[0] != "two" {
				errs = append(errs, c.Errorf("invalid parameter \"%s\"", c.Args[0]))
				continue
			}
			if len(c.Args) == 2 && c.Args[1] != "least_conn" {
				errs = append(errs, c.Errorf("invalid parameter \"%s\"", c.Args[1]))
				continue
			}
			if setMethod(c, "random") {
				u.RandomTwo = len(c.Args) >= 1
				// "random two" compares the two candidates by
				// least_conn whether or not the method is written;
				// it is the only comparison nginx has.
				u.RandomLeastConn = u.RandomTwo
			}

		case "sticky":
			sc, err := compileUpstreamSticky(c)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if setMethod(c, "sticky") {
				u.Sticky = sc
			}

		case "keepalive":
			if len(c.Args) != 1 {
				errs = append(errs, upstreamArgCountError(c))
				continue
			}
			if !once(c) {
				continue
			}
			n, ok := upstreamPositive(c.Args[0])
			if !ok {
				errs = append(errs, c.Errorf("invalid value \"%s\" in \"%s\" directive", c.Args[0], c.Name))
				continue
			}
			u.Keepalive = n

		case "keepalive_timeout", "keepalive_time":
			if len(c.Args) != 1 {
				errs = append(errs, upstreamArgCountError(c))
				continue
			}
			if !once(c) {
				continue
			}
			v, ok := ParseUpstreamTime(c.Args[0])
			if !ok {
				errs = append(errs, c.Errorf("invalid value \"%s\" in \"%s\" directive", c.Args[0], c.Name))
				continue
			}
			if c.Name == "keepalive_timeout" {
				u.KeepaliveTimeout = v
			} else {
				u.KeepaliveTime = v
			}

		case "keepalive_requests":
			if len(c.Args) != 1 {
				errs = append(errs, upstreamArgCountError(c))
				continue
			}
			if !once(c) {
				continue
			}
			n, ok := upstreamNonNegative(c.Args[0])
			if !ok {
				errs = append(errs, c.Errorf("invalid value \"%s\" in \"%s\" directive", c.Args[0], c.Name))
				continue
			}
			u.KeepaliveRequests = n

		case "zone":
			// Accepted for compatibility: wsgate keeps upstream state in
			// one process, so there is nothing to share.
			if len(c.Args) < 1 || len(c.Args) > 2 {
				errs = append(errs, upstreamArgCountError(c))
				continue
			}
			if !once(c) {
				continue
			}
			if len(c.Args) == 2 && !upstreamValidSize(c.Args[1]) {
				errs = append(errs, c.Errorf("invalid zone size \"%s\"", c.Args[1]))
			}

		case "health_check":
			if !once(c) {
				continue
			}
			hc, err := CompileHealthCheck(c, matches)
			if err != nil {
				errs = append(errs, Errors(err)...)
				continue
			}
			u.HealthCheck = hc

		default:
			if upstreamNotImplemented[c.Name] {
				errs = append(errs, c.Errorf("\"%s\" directive is not implemented by wsgate", c.Name))
				continue
			}
			errs = append(errs, c.Errorf("unknown directive \"%s\"", c.Name))
		}
	}

	// nginx checks server parameters against the method's flags when it
	// reads each server line, so "ip_hash" after "server ... backup"
	// slips through there; wsgate rejects either order.
	switch u.Method {
	case "ip_hash", "hash", "random":
		for i, s := range u.Servers {
			if s.Backup {
				errs = append(errs, servers[i].Errorf("balancing method does not support parameter \"backup\" (\"%s\" at line %d)", method.Name, method.Line))
			}
			if s.SlowStart > 0 {
				errs = append(errs, servers[i].Errorf("balancing method does not support parameter \"slow_start\" (\"%s\" at line %d)", method.Name, method.Line))
			}
		}
	}

	if err := errs.Err(); err != nil {
		return nil, err
	}
	return u, nil
}

// setKeepaliveDefaults sets the defaults of keepalive_timeout,
// keepalive_requests and keepalive_time.
func (u *Upstream) setKeepaliveDefaults() {
	u.KeepaliveTimeout = defaultKeepaliveTimeout
	u.KeepaliveRequests = defaultKeepaliveRequests
	u.KeepaliveTime = defaultKeepaliveTime
}

// compileUpstreamServer compiles "server ADDR [params]" inside upstream.
func compileUpstreamServer(c *Directive) (UpstreamServer, *Error) {
	s := UpstreamServer{
		Weight:      defaultServerWeight,
		MaxFails:    defaultServerMaxFails,
		FailTimeout: defaultServerFailTimeout,
		Line:        c.Line,
	}
	if len(c.Args) < 1 {
		return s, upstreamArgCountError(c)
	}
	addr, msg := upstreamServerAddr(c.Args[0])
	if msg != "" {
		return s, c.Errorf("%s", msg)
	}
	s.Addr = addr

	for _, a := range c.Args[1:] {
		name, val, hasVal := strings.Cut(a, "=")
		var ok bool
		switch {
		case name == "weight" && hasVal:
			s.Weight, ok = upstreamPositive(val)
		case name == "max_fails" && hasVal:
			s.MaxFails, ok = upstreamNonNegative(val)
		case name == "fail_timeout" && hasVal:
			s.FailTimeout, ok = ParseUpstreamTime(val)
		case name == "max_conns" && hasVal:
			s.MaxConns, ok = upstreamNonNegative(val)
		case name == "slow_start" && hasVal:
			s.SlowStart, ok = ParseUpstreamTime(val)
		case a == "backup":
			s.Backup, ok = true, true
		case a == "down":
			s.Down, ok = true, true
		case a == "resolve", a == "drain", name == "service" && hasVal, name == "route" && hasVal:
			return s, c.Errorf("server parameter \"%s\" is not implemented by wsgate", name)
		}
		if !ok {
			return s, c.Errorf("invalid parameter \"%s\"", a)
		}
	}
	return s, nil
}

// upstreamServerAddr checks the address of an upstream server line and
// returns it as host:port, with nginx's default port 80 added when none
// is written. The message is empty when the address is valid.
func upstreamServerAddr(a string) (string, string) {
	if len(a) >= 5 && strings.EqualFold(a[:5], "unix:") {
		return "", "unix domain sockets are not supported in upstream \"" + a + "\""
	}
	if strings.Contains(a, "://") {
		return "", "invalid host in upstream \"" + a + "\" (a server address has no scheme)"
	}
	if strings.ContainsAny(a, "/?#") {
		return "", "invalid host in upstream \"" + a + "\""
	}
	host, port := a, ""
	switch {
	case strings.HasPrefix(a, "["):
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "invalid host in upstream \"" + a + "\""
		}
		host = a[1:end]
		rest := a[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", "invalid host in upstream \"" + a + "\""
			}
			port = rest[1:]
			if port == "" {
				return "", "invalid port in upstream \"" + a + "\""
			}
		}
		if !strings.Contains(host, ":") || net.ParseIP(host) == nil {
			return "", "invalid IPv6 address in upstream \"" + a + "\""
		}
	case strings.Count(a, ":") > 1:
		return "", "invalid host in upstream \"" + a + "\" (write IPv6 addresses in brackets)"
	case strings.Contains(a, ":"):
		host, port, _ = strings.Cut(a, ":")
		if port == "" {
			return "", "invalid port in upstream \"" + a + "\""
		}
	}
	if host == "" {
		return "", "no host in upstream \"" + a + "\""
	}
	if port == "" {
		port = defaultUpstreamPort
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return "", "invalid port in upstream \"" + a + "\""
	}
	return net.JoinHostPort(host, port), ""
}

// compileUpstreamSticky compiles "sticky cookie NAME [expires=TIME|max]
// [domain=D] [path=P] [httponly] [secure] [samesite=strict|lax|none]".
func compileUpstreamSticky(c *Directive) (*StickyCookie, *Error) {
	if len(c.Args) < 1 {
		return nil, upstreamArgCountError(c)
	}
	switch c.Args[0] {
	case "cookie":
	case "route", "learn":
		return nil, c.Errorf("\"sticky %s\" is not implemented by wsgate; use \"sticky cookie\"", c.Args[0])
	default:
		return nil, c.Errorf("invalid parameter \"%s\"", c.Args[0])
	}
	if len(c.Args) < 2 {
		return nil, upstreamArgCountError(c)
	}
	sc := &StickyCookie{Name: c.Args[1]}
	if !upstreamValidCookieName(sc.Name) {
		return nil, c.Errorf("invalid cookie name \"%s\"", sc.Name)
	}
	for _, a := range c.Args[2:] {
		name, val, hasVal := strings.Cut(a, "=")
		ok := true
		switch {
		case name == "expires" && hasVal:
			if val == "max" {
				sc.Expires = -1
			} else {
				sc.Expires, ok = ParseUpstreamTime(val)
				ok = ok && sc.Expires > 0
			}
		case name == "domain" && hasVal:
			sc.Domain, ok = val, val != "" && !strings.ContainsAny(val, ";, \t")
		case name == "path" && hasVal:
			sc.Path, ok = val, strings.HasPrefix(val, "/") && !strings.ContainsAny(val, "; \t")
		case name == "samesite" && hasVal:
			switch strings.ToLower(val) {
			case "strict", "lax", "none":
				sc.SameSite = strings.ToLower(val)
			default:
				ok = false
			}
		case a == "httponly":
			sc.HTTPOnly = true
		case a == "secure":
			sc.Secure = true
		default:
			ok = false
		}
		if !ok {
			return nil, c.Errorf("invalid parameter \"%s\"", a)
		}
	}
	return sc, nil
}

// CompileHealthCheck compiles a "health_check [interval=TIME] [fails=N]
// [passes=N] [uri=URI] [port=N] [type=http|websocket] [match=NAME]"
// directive, allowed in upstream and location context. matches holds the
// http-level "match" blocks by name; it may be nil.
func CompileHealthCheck(d *Directive, matches map[string]*Directive) (*HealthCheck, error) {
	if d.HasBlock {
		return nil, d.Errorf("directive \"health_check\" is not terminated by \";\"")
	}
	hc := &HealthCheck{
		Interval: defaultHealthInterval,
		Fails:    defaultHealthFails,
		Passes:   defaultHealthPasses,
		URI:      defaultHealthURI,
		Type:     "http",
	}
	for _, a := range d.Args {
		name, val, hasVal := strings.Cut(a, "=")
		ok := hasVal
		switch name {
		case "interval":
			hc.Interval, ok = ParseUpstreamTime(val)
			ok = ok && hc.Interval > 0
		case "fails":
			hc.Fails, ok = upstreamPositive(val)
		case "passes":
			hc.Passes, ok = upstreamPositive(val)
		case "uri":
			hc.URI = val
			ok = strings.HasPrefix(val, "/") && !strings.ContainsAny(val, " \t\r\n")
		case "port":
			hc.Port, ok = upstreamPositive(val)
			ok = ok && hc.Port <= 65535
		case "type":
			switch val {
			case "http", "websocket":
				hc.Type = val
			case "grpc":
				return nil, d.Errorf("health_check \"type=grpc\" is not implemented by wsgate")
			default:
				ok = false
			}
		case "match":
			if !hasVal || val == "" {
				ok = false
				break
			}
			m := matches[val]
			if m == nil {
				return nil, d.Errorf("health_check match \"%s\" not found", val)
			}
			if err := compileUpstreamMatch(m, hc); err != nil {
				return nil, err
			}
		case "jitter", "mandatory", "persistent", "keepalive_time", "grpc_service", "grpc_status":
			return nil, d.Errorf("health_check parameter \"%s\" is not implemented by wsgate", name)
		default:
			ok = false
		}
		if !ok {
			return nil, d.Errorf("invalid parameter \"%s\"", a)
		}
	}
	return hc, nil
}

// compileMatch fills the match conditions of hc from a "match NAME { ... }"
// block. Supported: "status [!] CODE|LO-HI ..." (several status lines must
// all hold) and "body ~ REGEX" (Go RE2 syntax).
func compileUpstreamMatch(m *Directive, hc *HealthCheck) error {
	var errs ErrorList
	var allowed [600]bool // index = status code; nil status lines = any
	statusLines := 0
	for _, c := range m.Block {
		switch c.Name {
		case "status":
			set, err := upstreamMatchStatusSet(c)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for code := range allowed {
				if statusLines == 0 {
					allowed[code] = set[code]
				} else {
					allowed[code] = allowed[code] && set[code]
				}
			}
			statusLines++
		case "body":
			if len(c.Args) != 2 {
				errs = append(errs, upstreamArgCountError(c))
				continue
			}
			switch c.Args[0] {
			case "~":
			case "!~":
				errs = append(errs, c.Errorf("\"body !~\" is not implemented by wsgate"))
				continue
			default:
				errs = append(errs, c.Errorf("invalid parameter \"%s\"", c.Args[0]))
				continue
			}
			if hc.MatchBody != "" {
				errs = append(errs, c.Errorf("\"body\" directive is duplicate"))
				continue
			}
			if _, err := regexp.Compile(c.Args[1]); err != nil {
				errs = append(errs, c.Errorf("invalid regex \"%s\": %v", c.Args[1], err))
				continue
			}
			hc.MatchBody = c.Args[1]
		case "header":
			errs = append(errs, c.Errorf("\"header\" in match is not implemented by wsgate"))
		default:
			errs = append(errs, c.Errorf("unknown directive \"%s\"", c.Name))
		}
	}
	if statusLines > 0 {
		hc.MatchStatus = upstreamStatusRanges(allowed[:])
		if len(hc.MatchStatus) == 0 {
			errs = append(errs, m.Errorf("match \"%s\": no status code can satisfy every \"status\" line", strings.Join(m.Args, " ")))
		}
	}
	return errs.Err()
}

// upstreamMatchStatusSet returns the set of status codes 100..599 one "status"
// line of a match block accepts.
func upstreamMatchStatusSet(c *Directive) ([600]bool, *Error) {
	var set [600]bool
	args := c.Args
	neg := len(args) > 0 && args[0] == "!"
	if neg {
		args = args[1:]
	}
	if len(args) == 0 {
		return set, upstreamArgCountError(c)
	}
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || l < 100 || h > 599 || l > h {
			return set, c.Errorf("invalid status \"%s\"", a)
		}
		for code := l; code <= h; code++ {
			set[code] = true
		}
	}
	if neg {
		for code := 100; code < 600; code++ {
			set[code] = !set[code]
		}
	}
	return set, nil
}

// upstreamStatusRanges turns a set of status codes into inclusive ranges.
func upstreamStatusRanges(set []bool) []StatusRange {
	var out []StatusRange
	for code := 100; code < len(set); code++ {
		if !set[code] {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Hi == code-1 {
			out[n-1].Hi = code
			continue
		}
		out = append(out, StatusRange{Lo: code, Hi: code})
	}
	return out
}

// ParseUpstreamTime parses an nginx time value as ngx_parse_time does for
// seconds-based directives: a sequence of NUMBER UNIT with units y, M, w,
// d, h, m, s, ms in decreasing order ("1m30s", "500ms", "2h"); a bare
// number means seconds ("10" = 10s).
func ParseUpstreamTime(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	units := []struct {
		name string
		d    time.Duration
	}{
		{"y", 365 * 24 * time.Hour}, {"M", 30 * 24 * time.Hour},
		{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour},
		{"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond},
	}
	var total time.Duration
	next := 0 // index of the largest unit still allowed
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return 0, false
		}
		n, _ := strconv.ParseInt(s[:i], 10, 64)
		s = s[i:]
		if s == "" { // a trailing bare number is seconds
			if next > 6 {
				return 0, false
			}
			total += time.Duration(n) * time.Second
			break
		}
		j := 0
		for j < len(s) && (s[j] < '0' || s[j] > '9') {
			j++
		}
		unit := s[:j]
		s = s[j:]
		found := false
		for k := next; k < len(units); k++ {
			if units[k].name == unit {
				total += time.Duration(n) * units[k].d
				next = k + 1
				found = true
				break
			}
		}
		if !found || total < 0 {
			return 0, false
		}
	}
	return total, true
}

// upstreamPositive parses a decimal integer > 0 as ngx_atoi does (digits
// only, no sign).
func upstreamPositive(s string) (int, bool) {
	n, ok := upstreamNonNegative(s)
	return n, ok && n > 0
}

// upstreamNonNegative parses a decimal integer >= 0 (digits only).
func upstreamNonNegative(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// upstreamValidSize reports whether s is an nginx size ("64k", "1m", "4096").
func upstreamValidSize(s string) bool {
	if s == "" {
		return false
	}
	switch s[len(s)-1] {
	case 'k', 'K', 'm', 'M', 'g', 'G':
		s = s[:len(s)-1]
	}
	_, ok := upstreamNonNegative(s)
	return ok
}

// upstreamValidCookieName reports whether s is an RFC 6265 token.
func upstreamValidCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// upstreamArgCountError is nginx's message for a wrong number of arguments.
func upstreamArgCountError(c *Directive) *Error {
	return c.Errorf("invalid number of arguments in \"%s\" directive", c.Name)
}
