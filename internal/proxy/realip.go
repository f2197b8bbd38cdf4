package proxy

import (
	"net/netip"
	"strconv"

	"github.com/wsgate/wsgate/internal/config"
)

// applyRealIP is nginx's ngx_http_realip_handler with the settings s: in
// the post-read phase with the server's settings (from ServeHTTP), and in
// the preaccess phase with the location's (from serveLocation, after the
// location's rewrite module script). Once it has replaced the address it
// does nothing more for the request, internal redirects included; when it
// finds nothing it may still apply with a later location's settings.
func (h *Handler) applyRealIP(q *request, s *config.Settings) {
	ri := s.RealIP
	if ri == nil || q.realIP {
		return
	}
	hdr := q.r.Header
	var vals []string
	switch ri.Kind {
	case config.RealIPXRealIP:
		vals = hdr["X-Real-Ip"]
	case config.RealIPXForwardedFor:
		vals = hdr["X-Forwarded-For"]
	default:
		vals = hdr[ri.Header]
	}
	if len(vals) == 0 {
		return
	}
	cur, err := netip.ParseAddr(q.remoteIP)
	if err != nil {
		return
	}
	var a realAddr
	rc := fwdDeclined
	if ri.Kind != config.RealIPXForwardedFor {
		// nginx takes the first line of X-Real-IP or another field
		a, rc = forwardedAddr(realAddr{addr: cur}, vals[0], ri)
	} else {
		// every X-Forwarded-For line, the last first
		// (ngx_http_get_forwarded_addr)
		a = realAddr{addr: cur}
		found := false
		for i := len(vals) - 1; i >= 0; i-- {
			var next realAddr
			next, rc = forwardedAddr(a, vals[i], ri)
			if rc != fwdDeclined {
				a = next
			}
			if !ri.Recursive {
				break
			}
			if rc == fwdDeclined && found {
				rc = fwdDone
				break
			}
			if rc != fwdOK {
				break
			}
			found = true
		}
	}
	if rc == fwdDeclined {
		return
	}
	q.realIP = true
	q.realIPOrig, q.realPortOrig = q.remoteIP, q.remotePort
	q.remoteIP = ngxAddrText(a.addr)
	q.remotePort = ""
	if a.port > 0 {
		q.remotePort = strconv.Itoa(a.port)
	}
	if q.trace != nil {
		q.tracef("realip", "client address %s from %s (connection from %s)", q.remoteIP, realIPSource(ri), q.realIPOrig)
	}
}

func realIPSource(ri *config.RealIP) string {
	switch ri.Kind {
	case config.RealIPXRealIP:
		return "X-Real-IP"
	case config.RealIPXForwardedFor:
		return "X-Forwarded-For"
	}
	return ri.Header
}

// realAddr is an address with the port given with it (0: none).
type realAddr struct {
	addr netip.Addr
	port int
}

const (
	fwdDeclined = iota // nginx's NGX_DECLINED: nothing taken
	fwdOK              // NGX_OK: an address taken, the list may go on
	fwdDone            // NGX_DONE: an address taken, the search ended
)

// forwardedAddr is ngx_http_get_forwarded_addr_internal: when cur is
// trusted, the last address of the list xff replaces it; with
// real_ip_recursive, so does each address before it while the one taken
// is trusted.
func forwardedAddr(cur realAddr, xff string, ri *config.RealIP) (realAddr, int) {
	if !ri.Trusted(cur.addr) {
		return cur, fwdDeclined
	}
	n := len(xff)
	p := n - 1
	for ; p > 0; p-- {
		if xff[p] != ' ' && xff[p] != ',' {
			break
		}
		n--
	}
	for ; p > 0; p-- {
		if xff[p] == ' ' || xff[p] == ',' {
			p++
			break
		}
	}
	if p < 0 {
		p = 0
	}
	a, ok := parseAddrPort(xff[p:n])
	if !ok {
		return cur, fwdDeclined
	}
	if ri.Recursive && p > 0 {
		b, rc := forwardedAddr(a, xff[:p-1], ri)
		if rc == fwdDeclined {
			return a, fwdDone
		}
		return b, rc
	}
	return a, fwdOK
}

// parseAddrPort is ngx_parse_addr_port: an IPv4 or IPv6 address, or
// "IPv4:PORT", "[IPv6]:PORT" with PORT 1-65535.
func parseAddrPort(s string) (realAddr, bool) {
	if a, ok := parseAddr(s); ok {
		return realAddr{addr: a}, true
	}
	var host, port string
	if len(s) > 0 && s[0] == '[' {
		i := indexByte(s, ']')
		if i < 0 || i == len(s)-1 || s[i+1] != ':' {
			return realAddr{}, false
		}
		host, port = s[1:i], s[i+2:]
	} else {
		i := indexByte(s, ':')
		if i < 0 {
			return realAddr{}, false
		}
		host, port = s[:i], s[i+1:]
	}
	pn := 0
	for i := 0; i < len(port); i++ {
		c := port[i]
		if c < '0' || c > '9' || pn > 65535 {
			return realAddr{}, false
		}
		pn = pn*10 + int(c-'0')
	}
	if len(port) == 0 || pn < 1 || pn > 65535 {
		return realAddr{}, false
	}
	a, ok := parseAddr(host)
	if !ok {
		return realAddr{}, false
	}
	return realAddr{addr: a, port: pn}, true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// parseAddr is ngx_parse_addr: nginx's lenient dotted IPv4
// (ngx_inet_addr: four parts of digits up to 255 each, empty parts are
// 0, 255.255.255.255 is not an address), else an IPv6 address.
func parseAddr(s string) (netip.Addr, bool) {
	var b [4]byte
	octet, n, ok := 0, 0, true
	for i := 0; i < len(s) && ok; i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			octet = octet*10 + int(c-'0')
			ok = octet <= 255
		case c == '.' && n < 3:
			b[n] = byte(octet)
			octet = 0
			n++
		default:
			ok = false
		}
	}
	if ok && n == 3 {
		b[3] = byte(octet)
		if b != [4]byte{255, 255, 255, 255} {
			return netip.AddrFrom4(b), true
		}
		return netip.Addr{}, false
	}
	if indexByte(s, ':') < 0 || indexByte(s, '%') >= 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

// ngxAddrText prints an address as nginx's ngx_sock_ntop does: IPv6 with
// the longest run of zero groups (two or more) as "::", and the IPv4
// form kept for mapped and compatible addresses.
func ngxAddrText(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	p := a.As16()
	zero, max, n, last := -1, 1, 0, -1
	for i := 0; i < 16; i += 2 {
		if p[i] != 0 || p[i+1] != 0 {
			if max < n {
				zero, max = last, n
			}
			n = 0
			continue
		}
		if n == 0 {
			last = i
		}
		n++
	}
	if max < n {
		zero, max = last, n
	}
	var dst []byte
	end := 16
	if zero == 0 {
		if max == 5 && p[10] == 0xff && p[11] == 0xff || max == 6 || max == 7 && p[14] != 0 && p[15] != 1 {
			end = 12
		}
		dst = append(dst, ':')
	}
	for i := 0; i < end; i += 2 {
		if i == zero {
			dst = append(dst, ':')
			i += (max - 1) * 2
			continue
		}
		dst = strconv.AppendUint(dst, uint64(p[i])<<8|uint64(p[i+1]), 16)
		if i < 14 {
			dst = append(dst, ':')
		}
	}
	if end == 12 {
		dst = strconv.AppendUint(dst, uint64(p[12]), 10)
		dst = append(dst, '.')
		dst = strconv.AppendUint(dst, uint64(p[13]), 10)
		dst = append(dst, '.')
		dst = strconv.AppendUint(dst, uint64(p[14]), 10)
		dst = append(dst, '.')
		dst = strconv.AppendUint(dst, uint64(p[15]), 10)
	}
	return string(dst)
}
