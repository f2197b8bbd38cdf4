package upstream

import (
	"net/http"
	"time"
)

// stickyMaxExpires is what "expires=max" sets, as nginx does for its
// "expires max": a fixed date in 2037 and ten years of Max-Age.
var stickyMaxExpires = time.Date(2037, time.December, 31, 23, 55, 55, 0, time.UTC)

const stickyMaxAge = 315360000

// stickyServer returns the server r's sticky cookie designates if it can
// take r. A cookie naming a backup server is honoured only while no
// primary server is usable. The caller holds p.mu.
func (p *Pool) stickyServer(r *Request, now time.Time) *Server {
	s := p.byID[r.StickyValue]
	if s == nil || !p.usable(s, r, now) {
		return nil
	}
	if s.backup {
		for _, ps := range p.primary {
			if p.usable(ps, r, now) {
				return nil
			}
		}
	}
	return s
}

// StickyCookie returns the Set-Cookie that binds a client to s under
// "sticky cookie", or nil when the upstream has no sticky setting. Send it
// when the request came without a sticky value, or with one that did not
// lead to s (unknown, or its server unavailable): StickyCookieFor decides
// that.
func (p *Pool) StickyCookie(s *Server) *http.Cookie {
	sc := p.cfg.Sticky
	if sc == nil || s == nil {
		return nil
	}
	c := &http.Cookie{
		Name:     sc.Name,
		Value:    s.id,
		Domain:   sc.Domain,
		Path:     sc.Path,
		HttpOnly: sc.HTTPOnly,
		Secure:   sc.Secure,
	}
	switch {
	case sc.Expires < 0:
		c.Expires = stickyMaxExpires
		c.MaxAge = stickyMaxAge
	case sc.Expires > 0:
		c.Expires = p.now().Add(sc.Expires).UTC()
		c.MaxAge = int(sc.Expires / time.Second)
	}
	switch sc.SameSite {
	case "strict":
		c.SameSite = http.SameSiteStrictMode
	case "lax":
		c.SameSite = http.SameSiteLaxMode
	case "none":
		c.SameSite = http.SameSiteNoneMode
	}
	return c
}

// StickyCookieFor returns StickyCookie(s) when r's sticky value does not
// already designate s, and nil otherwise (or without sticky). Call it
// after a successful Pick and add the cookie to the response.
func (p *Pool) StickyCookieFor(r *Request, s *Server) *http.Cookie {
	if p.cfg.Sticky == nil || s == nil || (r != nil && r.StickyValue == s.id) {
		return nil
	}
	return p.StickyCookie(s)
}
