package proxy

import (
	"errors"
	"strings"
)

// errBadURI is a request target nginx would answer with 400.
var errBadURI = errors.New("invalid request URI")

// normalizeURI turns a request path into nginx's $uri: %XX sequences
// decoded, "//" merged, "." and ".." segments resolved. A ".." above the
// root, a bad escape or a NUL byte is errBadURI (400 in nginx).
func normalizeURI(raw string) (string, error) {
	if raw == "" || raw[0] != '/' {
		if raw == "*" {
			return "*", nil
		}
		return "", errBadURI
	}
	// decode
	var dec []byte
	if strings.IndexByte(raw, '%') >= 0 {
		dec = make([]byte, 0, len(raw))
		for i := 0; i < len(raw); i++ {
			c := raw[i]
			if c == '%' {
				if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
					return "", errBadURI
				}
				c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
				i += 2
			}
			if c == 0 {
				return "", errBadURI
			}
			dec = append(dec, c)
		}
	} else {
		if strings.IndexByte(raw, 0) >= 0 {
			return "", errBadURI
		}
		dec = []byte(raw)
	}
	// merge slashes and resolve dot segments
	segs := make([]string, 0, 8)
	p := string(dec)
	trailing := strings.HasSuffix(p, "/")
	for _, s := range strings.Split(p, "/") {
		switch s {
		case "", ".":
			continue
		case "..":
			if len(segs) == 0 {
				return "", errBadURI
			}
			segs = segs[:len(segs)-1]
		default:
			segs = append(segs, s)
		}
	}
	if len(segs) == 0 {
		return "/", nil
	}
	out := "/" + strings.Join(segs, "/")
	last := p[strings.LastIndexByte(p, '/')+1:]
	if trailing || last == "." || last == ".." {
		out += "/"
	}
	return out, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// escapeURI escapes s as nginx 1.22's ngx_escape_uri(NGX_ESCAPE_URI) does
// when it rebuilds an upstream URI: control characters, space, '"', '#',
// '%', '<', '>', '?', '\\', '^', '`', '{', '|', '}', DEL and bytes >= 0x80
// become %XX; everything else is kept.
func escapeURI(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	return string(appendEscaped(make([]byte, 0, len(s)+2*n), s, needsEscape))
}

const hexDigits = "0123456789ABCDEF"

// appendEscaped appends s to dst with the bytes esc selects as %XX.
func appendEscaped(dst []byte, s string, esc func(byte) bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if esc(c) {
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

func needsEscape(c byte) bool {
	switch c {
	case ' ', '"', '#', '%', '<', '>', '?', '\\', '^', '`', '{', '|', '}':
		return true
	}
	return c < 0x20 || c >= 0x7f
}

// needsEscapeArgs is nginx 1.22's NGX_ESCAPE_ARGS table: that of
// needsEscape plus '&', '+' and ';'.
func needsEscapeArgs(c byte) bool {
	switch c {
	case '&', '+', ';':
		return true
	}
	return needsEscape(c)
}

// escapeArgs escapes s with NGX_ESCAPE_ARGS.
func escapeArgs(s string) string {
	for i := 0; i < len(s); i++ {
		if needsEscapeArgs(s[i]) {
			return string(appendEscaped(make([]byte, 0, len(s)+8), s, needsEscapeArgs))
		}
	}
	return s
}

// appendEscapeArgs appends s escaped with NGX_ESCAPE_ARGS.
func appendEscapeArgs(dst []byte, s string) []byte {
	return appendEscaped(dst, s, needsEscapeArgs)
}

// unescapeRedirect is ngx_unescape_uri(NGX_UNESCAPE_REDIRECT), which a
// rewrite applies to a redirect before it becomes the Location: %XX of a
// character above '%' and below DEL is decoded, other escapes stay; a
// "?" (also a decoded %3F) ends the decoding and the rest is kept as it
// is. Like nginx, a '%' not followed by a hex digit is dropped, and so is
// an escape whose second character is not a hex digit.
func unescapeRedirect(b []byte) []byte {
	out := make([]byte, 0, len(b))
	const (
		usual = iota
		quoted
		quotedSecond
	)
	state := usual
	var decoded byte
	for i := 0; i < len(b); i++ {
		ch := b[i]
		switch state {
		case usual:
			if ch == '?' {
				return append(append(out, ch), b[i+1:]...)
			}
			if ch == '%' {
				state = quoted
				continue
			}
			out = append(out, ch)
		case quoted:
			if isHex(ch) {
				decoded = unhex(ch)
				state = quotedSecond
				continue
			}
			state = usual
			out = append(out, ch)
		case quotedSecond:
			state = usual
			if !isHex(ch) {
				continue
			}
			c := decoded<<4 | unhex(ch)
			if c == '?' {
				return append(append(out, c), b[i+1:]...)
			}
			if c > '%' && c < 0x7f {
				out = append(out, c)
				continue
			}
			out = append(out, '%', b[i-1], ch)
		}
	}
	return out
}

// splitTarget splits a request target into path and query.
func splitTarget(t string) (path, query string, hasQuery bool) {
	if i := strings.IndexByte(t, '?'); i >= 0 {
		return t[:i], t[i+1:], true
	}
	return t, "", false
}
