package config

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Response holds the response-shaping directives of a location:
// charset, expires and the redirect-building switches.
type Response struct {
	// Charset is the "charset" value appended to text Content-Types
	// ("" or "off" = none). Applied to static and proxied responses whose
	// type is in nginx's default charset_types and that name no charset.
	Charset string
	// Expires: ExpiresSet false = "expires off" (default). ExpiresEpoch
	// and ExpiresMax are nginx's special values; otherwise Expires is the
	// offset from now (negative = already expired).
	ExpiresSet   bool
	ExpiresEpoch bool
	ExpiresMax   bool
	Expires      time.Duration
	// AbsoluteRedirect (default on), ServerNameInRedirect (default off)
	// and PortInRedirect (default on) build the Location of redirects
	// wsgate itself issues, as nginx does.
	AbsoluteRedirect     bool
	ServerNameInRedirect bool
	PortInRedirect       bool
}

// compileResponse reads the response-shaping directives from eff.
func (c *compiler) compileResponse(eff level) Response {
	r := Response{AbsoluteRedirect: true, PortInRedirect: true}
	last := func(name string) *Directive {
		ds := eff[name]
		if len(ds) == 0 {
			return nil
		}
		return ds[len(ds)-1]
	}
	if d := last("charset"); d != nil {
		if d.Args[0] != "off" {
			r.Charset = d.Args[0]
		}
	}
	if d := last("expires"); d != nil {
		args := d.Args
		if args[0] == "modified" && len(args) == 2 {
			args = args[1:]
		}
		switch v := args[0]; {
		case v == "off":
		case v == "epoch":
			r.ExpiresSet, r.ExpiresEpoch = true, true
		case v == "max":
			r.ExpiresSet, r.ExpiresMax = true, true
		case strings.HasPrefix(v, "@"):
			c.err(d.Errorf("\"expires @time\" is not implemented by wsgate"))
		default:
			neg := strings.HasPrefix(v, "-")
			dur, err := ParseDuration(strings.TrimLeft(v, "+-"))
			if err != nil {
				c.err(d.Errorf("invalid value %q in \"expires\" directive", v))
				break
			}
			if neg {
				dur = -dur
			}
			r.ExpiresSet, r.Expires = true, dur
		}
	}
	for name, dst := range map[string]*bool{
		"absolute_redirect":       &r.AbsoluteRedirect,
		"server_name_in_redirect": &r.ServerNameInRedirect,
		"port_in_redirect":        &r.PortInRedirect,
	} {
		if d := last(name); d != nil {
			v, e := parseFlag(d)
			c.err(e)
			*dst = v
		}
	}
	return r
}

// checkTLS makes sure every certificate and key named by a server with an
// "ssl" listen can be read, as "nginx -t" does.
func (c *compiler) checkTLS() {
	if c.cfg.HTTP == nil {
		return
	}
	for _, s := range c.cfg.HTTP.Servers {
		ssl := false
		for _, l := range s.Listens {
			ssl = ssl || l.SSL
		}
		if !ssl {
			continue
		}
		for _, f := range []string{s.TLSCert, s.TLSKey} {
			if f == "" {
				continue
			}
			if _, err := os.ReadFile(f); err != nil {
				c.err(&Error{File: s.File, Line: s.Line, Msg: fmt.Sprintf("cannot load certificate or key %q: %v", f, unwrapPathErr(err))})
			}
		}
	}
}

// checkDuplicateLocations reports a location written twice at one level
// ("location /a/" and "location ^~ /a/" count as the same, as in nginx).
func (c *compiler) checkDuplicateLocations() {
	if c.cfg.HTTP == nil {
		return
	}
	var walk func([]*Location)
	walk = func(ls []*Location) {
		seen := map[string]bool{}
		for _, l := range ls {
			key := l.Modifier + " " + l.Path
			switch l.Modifier {
			case "", "^~":
				key = "prefix " + l.Path
			case "~", "~*", "@":
				walk(l.Children)
				continue // nginx allows repeated regex locations
			}
			if seen[key] {
				c.err(&Error{File: l.File, Line: l.Line, Msg: fmt.Sprintf("duplicate location %q", l.Path)})
			}
			seen[key] = true
			walk(l.Children)
		}
	}
	for _, s := range c.cfg.HTTP.Servers {
		walk(s.Locations)
	}
}
