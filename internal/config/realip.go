package config

import (
	"net"
	"net/netip"
	"net/textproto"
	"strings"
)

// RealIP is nginx's ngx_http_realip_module for one level: set_real_ip_from
// (the innermost level with any replaces the outer list), real_ip_header
// and real_ip_recursive (inherited one by one, as nginx merges them).
type RealIP struct {
	From []netip.Prefix // trusted addresses, masked
	// Kind is where the address comes from: RealIPXRealIP (the first
	// X-Real-IP line, the default), RealIPXForwardedFor (every
	// X-Forwarded-For line, the last first) or RealIPHeader (the first
	// line of Header).
	Kind RealIPKind
	// Header is the canonical name of the field for RealIPHeader.
	Header string
	// Recursive is real_ip_recursive: the address taken is the last one
	// that is not trusted, not simply the last one.
	Recursive bool
}

// RealIPKind is the source named by real_ip_header.
type RealIPKind uint8

const (
	RealIPXRealIP RealIPKind = iota
	RealIPXForwardedFor
	RealIPHeader
)

// Trusted reports whether a is in set_real_ip_from.
func (ri *RealIP) Trusted(a netip.Addr) bool {
	for _, p := range ri.From {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// compileRealIP builds the settings' RealIP from the effective
// directives; nil when no set_real_ip_from applies (the module then does
// nothing, as in nginx).
func (c *compiler) compileRealIP(eff level, one func(string) *Directive) *RealIP {
	ri := &RealIP{}
	for _, d := range eff["set_real_ip_from"] {
		ps, e := parseRealIPFrom(d)
		c.err(e)
		ri.From = append(ri.From, ps...)
	}
	if d := one("real_ip_header"); d != nil {
		switch v := d.Args[0]; v {
		// nginx compares these two case-sensitively; another spelling
		// is an ordinary field name (its first line is used)
		case "X-Real-IP":
			ri.Kind = RealIPXRealIP
		case "X-Forwarded-For":
			ri.Kind = RealIPXForwardedFor
		case "proxy_protocol":
			c.err(d.Errorf("\"real_ip_header proxy_protocol\" is not implemented by wsgate (listen has no proxy_protocol)"))
		default:
			ri.Kind = RealIPHeader
			ri.Header = textproto.CanonicalMIMEHeaderKey(v)
		}
	}
	if d := one("real_ip_recursive"); d != nil {
		v, e := parseFlag(d)
		c.err(e)
		ri.Recursive = v
	}
	if len(eff["set_real_ip_from"]) == 0 {
		return nil
	}
	return ri
}

// parseRealIPFrom reads one set_real_ip_from argument: an address, a CIDR
// or a host name (every address it resolves to, as nginx does at load).
func parseRealIPFrom(d *Directive) ([]netip.Prefix, *Error) {
	a := d.Args[0]
	if strings.HasPrefix(a, "unix:") {
		return nil, d.Errorf("\"set_real_ip_from unix:\" is not implemented by wsgate (it has no unix sockets)")
	}
	if strings.Contains(a, "/") {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, d.Errorf("invalid parameter %q", a)
		}
		return []netip.Prefix{p.Masked()}, nil
	}
	if ip, err := netip.ParseAddr(a); err == nil {
		if ip.Zone() != "" {
			return nil, d.Errorf("invalid parameter %q", a)
		}
		return []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}, nil
	}
	ips, err := net.LookupIP(a)
	if err != nil || len(ips) == 0 {
		return nil, d.Errorf("host not found in set_real_ip_from %q", a)
	}
	var out []netip.Prefix
	for _, ip := range ips {
		if x, ok := netip.AddrFromSlice(ip); ok {
			x = x.Unmap()
			out = append(out, netip.PrefixFrom(x, x.BitLen()))
		}
	}
	return out, nil
}
