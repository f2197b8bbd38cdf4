package config

import (
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/vars"
)

// effective returns, for each directive name, the directives of the
// innermost level that sets it: nginx's inheritance rule.
func effective(chain []level) level {
	out := level{}
	for _, lv := range chain {
		for name, ds := range lv {
			out[name] = ds
		}
	}
	return out
}

// settings compiles the merged settings for a chain of levels. loc is the
// location being compiled (nil at server level).
func (c *compiler) settings(chain []level, types map[string]string, loc *Location) *Settings {
	eff := effective(chain)
	s := &Settings{
		Root:                 vars.MustCompile(filepath.Join(c.cfg.Prefix, "html")),
		Index:                []*vars.Template{vars.MustCompile("index.html")},
		DefaultType:          "text/plain",
		Types:                types,
		ProxyHTTPVersion:     "1.0",
		ProxyConnectTimeout:  60 * time.Second,
		ProxyReadTimeout:     60 * time.Second,
		ProxySendTimeout:     60 * time.Second,
		ProxyBuffering:       true,
		PassRequestHeaders:   true,
		PassRequestBody:      true,
		ClientMaxBodySize:    1 << 20,
		IgnoreInvalidHeaders: true,
		KeepaliveTimeout:     75 * time.Second,
		KeepaliveRequests:    1000,
		ClientBodyTimeout:    60 * time.Second,
		LingeringTimeout:     5 * time.Second,
		LingeringTime:        30 * time.Second,
		SendTimeout:          60 * time.Second,
		ClientHeaderTimeout:  60 * time.Second,
		NextUpstream:         NextUpstream{Error: true, Timeout: true},
		WebSocket: WebSocketSettings{
			Frames:       true,
			PingInterval: 30 * time.Second,
			PingTimeout:  10 * time.Second,
			DrainWindow:  30 * time.Second,
		},
	}
	one := func(name string) *Directive {
		ds := eff[name]
		if len(ds) == 0 {
			return nil
		}
		if len(ds) > 1 && !multi[name] {
			c.err(ds[1].Errorf("%q directive is duplicate", name))
		}
		return ds[len(ds)-1]
	}
	tmpl := func(d *Directive, i int) *vars.Template {
		t, err := vars.Compile(d.Args[i])
		if err != nil {
			c.err(d.Errorf("%v", err))
			return vars.MustCompile("")
		}
		return t
	}
	timeOf := func(name string, dst *time.Duration) {
		if d := one(name); d != nil {
			v, e := parseTime(d, 0)
			c.err(e)
			*dst = v
		}
	}
	flagOf := func(name string, dst *bool) {
		if d := one(name); d != nil {
			v, e := parseFlag(d)
			c.err(e)
			*dst = v
		}
	}

	// root / alias: one setting; the innermost of either wins.
	if d := innermostOf(chain, "root", "alias"); d != nil {
		p := d.Args[0]
		if !strings.HasPrefix(p, "$") && !filepath.IsAbs(p) {
			p = filepath.Join(c.cfg.Prefix, p)
		}
		s.Root = tmplFrom(c, d, p)
		s.RootIsAlias = d.Name == "alias"
	}
	// Several index directives at one level add up, as in nginx.
	if ds := eff["index"]; len(ds) > 0 {
		s.Index = nil
		for _, d := range ds {
			for i := range d.Args {
				s.Index = append(s.Index, tmpl(d, i))
			}
		}
	}
	if d := one("try_files"); d != nil {
		for i := range d.Args {
			s.TryFiles = append(s.TryFiles, tmpl(d, i))
		}
		last := d.Args[len(d.Args)-1]
		if strings.HasPrefix(last, "=") {
			if n, err := strconv.Atoi(last[1:]); err != nil || n < 100 || n > 999 {
				c.err(d.Errorf("invalid code %q in \"try_files\" directive", last))
			}
		}
	}
	flagOf("rewrite_log", &s.RewriteLog)
	for _, d := range eff["error_page"] {
		if ep, ok := c.compileErrorPage(d); ok {
			s.ErrorPages = append(s.ErrorPages, ep)
		}
	}
	if d := one("default_type"); d != nil {
		s.DefaultType = d.Args[0]
	}
	if d := one("proxy_http_version"); d != nil {
		if d.Args[0] != "1.0" && d.Args[0] != "1.1" {
			c.err(d.Errorf("invalid value %q in \"proxy_http_version\" directive, it must be \"1.0\" or \"1.1\"", d.Args[0]))
		}
		s.ProxyHTTPVersion = d.Args[0]
	}
	// proxy_set_header: the user's list (innermost level that has any),
	// then nginx's defaults for names the user did not set.
	set := map[string]bool{}
	for _, d := range eff["proxy_set_header"] {
		s.ProxySetHeaders = append(s.ProxySetHeaders, SetHeader{Name: d.Args[0], Value: tmpl(d, 1)})
		set[strings.ToLower(d.Args[0])] = true
	}
	if !set["host"] {
		s.ProxySetHeaders = append(s.ProxySetHeaders, SetHeader{Name: "Host", Value: vars.MustCompile("$proxy_host")})
	}
	s.UserConnection = set["connection"]
	if !set["connection"] {
		s.ProxySetHeaders = append(s.ProxySetHeaders, SetHeader{Name: "Connection", Value: vars.MustCompile("close")})
	}
	s.ProxyHideHeaders = map[string]bool{}
	for _, d := range eff["proxy_hide_header"] {
		s.ProxyHideHeaders[strings.ToLower(d.Args[0])] = true
	}
	for _, d := range eff["proxy_pass_header"] {
		s.ProxyHideHeaders[strings.ToLower(d.Args[0])] = false
	}
	timeOf("proxy_connect_timeout", &s.ProxyConnectTimeout)
	timeOf("proxy_read_timeout", &s.ProxyReadTimeout)
	timeOf("proxy_send_timeout", &s.ProxySendTimeout)
	if d := one("keepalive_timeout"); d != nil {
		v, e := parseTime(d, 0)
		c.err(e)
		s.KeepaliveTimeout = v
		if len(d.Args) == 2 {
			// nginx reads the header time in seconds (no "ms")
			v, err := ParseDuration(d.Args[1])
			if err != nil || strings.Contains(d.Args[1], "ms") {
				c.err(d.Errorf("%q directive invalid value %q", d.Name, d.Args[1]))
			}
			s.KeepaliveHeader = v
		}
	}
	if d := one("keepalive_requests"); d != nil {
		n, ok := nonNegative(d.Args[0])
		if !ok {
			c.err(d.Errorf("%q directive invalid number %q", d.Name, d.Args[0]))
		}
		s.KeepaliveRequests = n
	}
	timeOf("client_header_timeout", &s.ClientHeaderTimeout)
	timeOf("client_body_timeout", &s.ClientBodyTimeout)
	timeOf("lingering_timeout", &s.LingeringTimeout)
	timeOf("lingering_time", &s.LingeringTime)
	timeOf("send_timeout", &s.SendTimeout)
	flagOf("underscores_in_headers", &s.UnderscoresInHeaders)
	flagOf("ignore_invalid_headers", &s.IgnoreInvalidHeaders)
	flagOf("proxy_buffering", &s.ProxyBuffering)
	flagOf("proxy_pass_request_headers", &s.PassRequestHeaders)
	flagOf("proxy_pass_request_body", &s.PassRequestBody)
	if d := one("proxy_request_buffering"); d != nil {
		_, e := parseFlag(d)
		c.err(e)
	}
	if d := one("proxy_redirect"); d != nil {
		if len(d.Args) == 1 && (d.Args[0] == "off" || d.Args[0] == "default") {
			s.ProxyRedirectOff = d.Args[0] == "off"
		} else {
			c.err(d.Errorf("\"proxy_redirect\" with replacement rules is not implemented by wsgate (only \"off\" and \"default\")"))
		}
	}
	if d := one("proxy_next_upstream"); d != nil {
		s.NextUpstream = c.compileNextUpstream(d)
	}
	if d := one("proxy_next_upstream_tries"); d != nil {
		n, err := strconv.Atoi(d.Args[0])
		if err != nil || n < 0 {
			c.err(d.Errorf("invalid value %q in \"proxy_next_upstream_tries\" directive", d.Args[0]))
		}
		s.NextUpstream.Tries = n
	}
	timeOf("proxy_next_upstream_timeout", &s.NextUpstream.Timeout_)
	for _, d := range eff["add_header"] {
		ah := AddHeader{Name: d.Args[0], Value: tmpl(d, 1)}
		if len(d.Args) == 3 {
			if d.Args[2] != "always" {
				c.err(d.Errorf("invalid parameter %q", d.Args[2]))
			}
			ah.Always = true
		}
		s.AddHeaders = append(s.AddHeaders, ah)
	}
	for _, d := range innermostList(chain, "allow", "deny") {
		r, e := compileAccess(d)
		if e != nil {
			c.err(e)
			continue
		}
		s.Access = append(s.Access, r)
	}
	if ds := eff["access_log"]; len(ds) > 0 {
		for _, d := range ds {
			if d.Args[0] == "off" {
				s.AccessLogs = nil
				break
			}
			al := AccessLog{Path: c.logPath(d.Args[0]), Format: c.http.LogFormats["combined"]}
			if len(d.Args) > 1 && !strings.Contains(d.Args[1], "=") {
				f, ok := c.http.LogFormats[d.Args[1]]
				if !ok {
					c.err(d.Errorf("unknown log format %q", d.Args[1]))
					continue
				}
				al.Format = f
			}
			s.AccessLogs = append(s.AccessLogs, al)
		}
	} else {
		s.AccessLogs = []AccessLog{{Path: "stdout", Format: c.http.LogFormats["combined"]}}
	}
	s.RealIP = c.compileRealIP(eff, one)
	if d := one("client_max_body_size"); d != nil {
		v, err := ParseSize(d.Args[0])
		if err != nil {
			c.err(d.Errorf("\"client_max_body_size\" directive invalid value %q", d.Args[0]))
		}
		s.ClientMaxBodySize = v
	}
	s.Response = c.compileResponse(eff)
	flagOf("websocket_frames", &s.WebSocket.Frames)
	if d := one("websocket_ping_interval"); d != nil {
		if d.Args[0] == "off" {
			s.WebSocket.PingInterval = 0
		} else {
			v, e := parseTime(d, 0)
			c.err(e)
			s.WebSocket.PingInterval = v
		}
	}
	timeOf("websocket_ping_timeout", &s.WebSocket.PingTimeout)
	timeOf("websocket_drain_window", &s.WebSocket.DrainWindow)
	if d := one("websocket_max_message_size"); d != nil {
		if d.Args[0] != "off" {
			v, err := ParseSize(d.Args[0])
			if err != nil {
				c.err(d.Errorf("\"websocket_max_message_size\" directive invalid value %q", d.Args[0]))
			}
			s.WebSocket.MaxMessageSize = v
		}
	}
	if d := one("websocket_max_frame_rate"); d != nil {
		if d.Args[0] != "off" {
			n, err := strconv.Atoi(strings.TrimSuffix(d.Args[0], "/s"))
			if err != nil || n < 1 {
				c.err(d.Errorf("\"websocket_max_frame_rate\" directive invalid value %q, expected N/s", d.Args[0]))
			}
			s.WebSocket.MaxFrameRate = n
		}
	}
	if loc != nil {
		if d := loc0(chain, "proxy_pass"); d != nil {
			s.Proxy = c.compileProxyPass(d, loc)
		}
		if d := loc0(chain, "health_check"); d != nil {
			hc, err := CompileHealthCheck(d, c.match)
			if err != nil {
				c.errList(err)
			} else {
				s.HealthCheck = hc
				if s.Proxy != nil && s.Proxy.Upstream != nil && s.Proxy.Upstream.HealthCheck == nil {
					s.Proxy.Upstream.HealthCheck = hc
				}
			}
		}
	}
	return s
}

// multi lists directives that may repeat at one level.
var multi = map[string]bool{
	"proxy_set_header": true, "proxy_hide_header": true, "proxy_pass_header": true, "add_header": true,
	"error_page": true, "allow": true, "deny": true, "access_log": true, "error_log": true,
	"index": true, "set_real_ip_from": true,
}

func tmplFrom(c *compiler, d *Directive, s string) *vars.Template {
	t, err := vars.Compile(s)
	if err != nil {
		c.err(d.Errorf("%v", err))
		return vars.MustCompile("")
	}
	return t
}

// loc0 returns the directive name set at the innermost level only (not
// inherited): proxy_pass belongs to its own location.
func loc0(chain []level, name string) *Directive {
	ds := chain[len(chain)-1][name]
	if len(ds) == 0 {
		return nil
	}
	return ds[len(ds)-1]
}

// innermostOf returns the last directive among names at the innermost
// level that has any of them.
func innermostOf(chain []level, names ...string) *Directive {
	for i := len(chain) - 1; i >= 0; i-- {
		var best *Directive
		for _, n := range names {
			for _, d := range chain[i][n] {
				if best == nil || d.Line > best.Line {
					best = d
				}
			}
		}
		if best != nil {
			return best
		}
	}
	return nil
}

// innermostList returns, in file order, every directive among names at
// the innermost level that has any of them (allow/deny are one list).
func innermostList(chain []level, names ...string) []*Directive {
	for i := len(chain) - 1; i >= 0; i-- {
		var out []*Directive
		for _, n := range names {
			out = append(out, chain[i][n]...)
		}
		if len(out) > 0 {
			sortByPos(out)
			return out
		}
	}
	return nil
}

func sortByPos(ds []*Directive) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && (ds[j].File == ds[j-1].File && ds[j].Line < ds[j-1].Line); j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

func compileAccess(d *Directive) (AccessRule, *Error) {
	r := AccessRule{Allow: d.Name == "allow"}
	a := d.Args[0]
	if a == "all" {
		return r, nil
	}
	if strings.HasPrefix(a, "unix:") {
		return r, d.Errorf("%q with unix: is not implemented by wsgate", d.Name)
	}
	if !strings.Contains(a, "/") {
		ip := net.ParseIP(a)
		if ip == nil {
			return r, d.Errorf("invalid parameter %q", a)
		}
		bits := 128
		if ip4 := ip.To4(); ip4 != nil {
			ip, bits = ip4, 32
		}
		r.Net = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
		return r, nil
	}
	_, n, err := net.ParseCIDR(a)
	if err != nil {
		return r, d.Errorf("invalid parameter %q", a)
	}
	r.Net = n
	return r, nil
}

func (c *compiler) compileReturn(d *Directive) *Return {
	r := &Return{}
	a := d.Args[0]
	if len(d.Args) == 1 {
		if strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://") || strings.HasPrefix(a, "$scheme") {
			r.Code = http.StatusFound
			r.Text = tmplFrom(c, d, a)
			return r
		}
	}
	n, err := strconv.Atoi(a)
	if err != nil || n < 0 || n > 999 {
		c.err(d.Errorf("invalid return code %q", a))
		return r
	}
	r.Code = n
	if len(d.Args) == 2 {
		r.Text = tmplFrom(c, d, d.Args[1])
	}
	return r
}

func (c *compiler) compileErrorPage(d *Directive) (ErrorPage, bool) {
	ep := ErrorPage{}
	args := d.Args
	uri := args[len(args)-1]
	args = args[:len(args)-1]
	for _, a := range args {
		if strings.HasPrefix(a, "=") {
			if a == "=" {
				ep.Response = -1
				continue
			}
			n, err := strconv.Atoi(a[1:])
			if err != nil || n < 100 || n > 999 {
				c.err(d.Errorf("invalid value %q", a))
				return ep, false
			}
			ep.Response = n
			continue
		}
		n, err := strconv.Atoi(a)
		if err != nil || n < 300 || n > 599 {
			c.err(d.Errorf("value %q must be between 300 and 599", a))
			return ep, false
		}
		ep.Codes = append(ep.Codes, n)
	}
	if len(ep.Codes) == 0 {
		c.err(d.Errorf("invalid number of arguments in \"error_page\" directive"))
		return ep, false
	}
	ep.URI = tmplFrom(c, d, uri)
	return ep, true
}

func (c *compiler) compileNextUpstream(d *Directive) NextUpstream {
	n := NextUpstream{Statuses: map[int]bool{}}
	for _, a := range d.Args {
		switch a {
		case "error":
			n.Error = true
		case "timeout":
			n.Timeout = true
		case "invalid_header":
			n.InvalidHeader = true
		case "non_idempotent":
			n.NonIdempotent = true
		case "off":
			n.Off = true
		case "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429":
			code, _ := strconv.Atoi(a[5:])
			n.Statuses[code] = true
		case "updating":
		default:
			c.err(d.Errorf("invalid value %q in \"proxy_next_upstream\" directive", a))
		}
	}
	if n.Off && len(d.Args) > 1 {
		c.err(d.Errorf("\"off\" cannot be combined with other values in \"proxy_next_upstream\""))
	}
	return n
}

// compileProxyPass reads "proxy_pass URL" with nginx's rules.
func (c *compiler) compileProxyPass(d *Directive, loc *Location) *Proxy {
	raw := d.Args[0]
	p := &Proxy{Raw: raw}
	var rest string
	switch {
	case strings.HasPrefix(strings.ToLower(raw), "http://"):
		p.Scheme, rest = "http", raw[7:]
	case strings.HasPrefix(strings.ToLower(raw), "https://"):
		p.Scheme, rest = "https", raw[8:]
	case strings.HasPrefix(raw, "$"):
		p.Dynamic = tmplFrom(c, d, raw)
		return p
	default:
		c.err(d.Errorf("invalid URL prefix in %q", raw))
		return nil
	}
	if strings.HasPrefix(rest, "unix:") {
		c.err(d.Errorf("proxy_pass to a unix socket is not implemented by wsgate"))
		return nil
	}
	if strings.Contains(raw, "$") {
		p.Dynamic = tmplFrom(c, d, raw)
		return p
	}
	host := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, p.URI, p.HasURI = rest[:i], rest[i:], true
	}
	if host == "" {
		c.err(d.Errorf("no host in upstream %q", raw))
		return nil
	}
	if p.HasURI && loc.ifBlock {
		c.err(d.Errorf("\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block"))
		return nil
	}
	if p.HasURI && (loc.Regex != nil || loc.Modifier == "@") {
		what := "location given by regular expression"
		if loc.Modifier == "@" {
			what = "named location"
		}
		c.err(d.Errorf("\"proxy_pass\" cannot have URI part in %s, or inside \"if\" statement, or inside \"limit_except\" block", what))
		return nil
	}
	p.Host = host
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	if u, ok := c.http.Upstreams[host]; ok {
		p.Upstream = u
	} else if u, ok := c.http.Upstreams[name]; ok {
		p.Upstream = u
	} else {
		addr := host
		if _, _, err := net.SplitHostPort(host); err != nil {
			port := "80"
			if p.Scheme == "https" {
				port = "443"
			}
			addr = net.JoinHostPort(strings.Trim(host, "[]"), port)
		} else if _, port, _ := net.SplitHostPort(host); !isPort(port) {
			c.err(d.Errorf("invalid port in upstream %q", host))
			return nil
		}
		if u, ok := c.http.Implicit[addr]; ok {
			p.Upstream = u
		} else {
			u := &Upstream{Name: host, Implicit: true, File: d.File, Line: d.Line,
				Servers: []UpstreamServer{{Addr: addr, Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second, Line: d.Line}}}
			u.setKeepaliveDefaults()
			c.resolveServers(u, d)
			c.http.Implicit[addr] = u
			p.Upstream = u
		}
	}
	if p.HasURI {
		if _, err := url.Parse(p.URI); err != nil {
			c.err(d.Errorf("invalid URI in %q", raw))
		}
	}
	return p
}

// defaultTypes is nginx's built-in types map, used when no types block is
// configured (configs normally "include mime.types").
var defaultTypes = map[string]string{"html": "text/html", "gif": "image/gif", "jpg": "image/jpeg"}

// nonNegative reads a number as nginx's ngx_atoi does: decimal digits
// only (no sign, no size suffix), within the range of an int.
func nonNegative(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
