package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// dialError is a failure to connect to an upstream server.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return "connect() to " + e.addr + " failed: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// errUpstreamTimeout is the read/send timeout of an upstream exchange.
var errUpstreamTimeout = errors.New("upstream timed out")

// errInvalidHeader is an upstream response wsgate cannot parse or use.
var errInvalidHeader = errors.New("upstream sent invalid header")

// isTimeout reports whether err is a timeout of any kind.
func isTimeout(err error) bool {
	if errors.Is(err, errUpstreamTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// statusFor maps an upstream error to the status nginx answers with:
// 504 for timeouts, 502 for everything else (refused, reset, bad
// response, no live server).
func statusFor(err error) int {
	if isTimeout(err) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// errorPage answers code, honouring error_page: an internal redirect to
// a URI or named location, or a redirect for a full URL.
func (h *Handler) errorPage(w *responseWriter, q *request, code int, depth int) {
	if q.set != nil && depth < maxInternalRedirects && w.override == 0 {
		for _, ep := range q.set.ErrorPages {
			if !hasCode(ep.Codes, code) {
				continue
			}
			uri := ep.URI.Eval(q)
			if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
				rc := http.StatusFound
				if ep.Response > 0 && ep.Response >= 300 && ep.Response < 400 {
					rc = ep.Response
				}
				h.redirect(w, q, rc, uri)
				return
			}
			switch {
			case ep.Response > 0:
				w.override = ep.Response
			case ep.Response == 0:
				w.override = code
			}
			if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
				// nginx turns the method into GET for the error page
				q.r.Method = http.MethodGet
			}
			h.internalRedirect(w, q, uri, depth, false)
			return
		}
	}
	h.writeError(w, q, code)
}

func hasCode(codes []int, c int) bool {
	for _, x := range codes {
		if x == c {
			return true
		}
	}
	return false
}

// writeError writes nginx's small built-in page for code.
func (h *Handler) writeError(w *responseWriter, q *request, code int) {
	if w.wrote {
		return
	}
	h.addHeaders(w, q, code)
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	body := errorBody(code)
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if code >= 400 && code != 404 && code != 403 && code != 405 {
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(code)
	if q.r.Method != http.MethodHead {
		w.Write([]byte(body))
	}
}

func errorBody(code int) string { return ErrorBody(code, "") }

// ErrorBody returns nginx's small HTML page for code; title replaces the
// status text when set (the listener layer uses it for net/http's own
// 400 answers).
func ErrorBody(code int, title string) string {
	text := http.StatusText(code)
	switch code {
	case 301:
		text = "Moved Permanently"
	case 302:
		text = "Found"
	case 413:
		text = "Request Entity Too Large"
	case 414:
		text = "Request-URI Too Large"
	}
	if title != "" {
		text = title
	}
	head := strconv.Itoa(code) + " " + text
	return "<html>\r\n<head><title>" + head + "</title></head>\r\n<body>\r\n<center><h1>" + head +
		"</h1></center>\r\n<hr><center>wsgate</center>\r\n</body>\r\n</html>\r\n"
}
