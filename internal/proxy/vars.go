package proxy

import (
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/route"
)

// request is the state of one client request while wsgate handles it. It
// implements vars.Resolver so templates can read nginx variables.
type request struct {
	h      *Handler
	r      *http.Request
	start  time.Time
	srv    *config.Server
	loc    *config.Location
	set    *config.Settings
	scheme string

	remoteIP, remotePort string
	localIP, localPort   string
	// realIP is set once the realip module replaced remoteIP and
	// remotePort; realIPOrig and realPortOrig are the connection's
	// ($realip_remote_addr, $realip_remote_port).
	realIP                   bool
	realIPOrig, realPortOrig string

	uri        string // $uri: normalized, may change on internal redirect
	args       string // $args
	hasArgs    bool
	uriChanged bool            // an internal redirect or a rewrite changed the URI
	captures   []string        // $1..$9: of the latest regex match
	locCaps    []string        // the submatches of the matched regex location
	srvCaps    *route.Captures // regex server_name submatches

	// The rewrite module's state; all zero for a request that meets no
	// rewrite module directive.
	vars []scriptVar // set variables and named captures of rewrite/if
	// internal: a rewrite matched, so internal locations are reachable
	// (nginx's r->internal).
	internal bool
	// locInvalid: "rewrite ... break" (or "break" after a rewrite)
	// changed the URI in its location; proxy_pass then passes the whole
	// URI, not its own URI part (nginx's r->valid_location = 0).
	locInvalid bool
	// escCaps escapes $1..$9 for arguments while set and if values are
	// evaluated (nginx's e->quote with a %- or +-encoded request path).
	escCaps bool
	quoted  int8 // quotedURI: 0 unknown, 1 no, 2 yes
	// explain stops before access checks and content (wsgate explain);
	// trace receives its lines ("label", "text"); shown records that the
	// result line was written.
	explain bool
	trace   func(label, text string)
	shown   bool

	status       int
	bytesSent    int64
	upstreamAddr string
	proxyHost    string
	upstreamCode string

	// underscores is set when a request header kept its "_" (see
	// dropInvalidHeaders): $http_NAME then looks for those names too.
	underscores bool

	ws       *wsLog // set for upgraded connections
	detached bool   // a tunnelCarrier logs the request when it ends
	mapDepth int
}

// wsLog holds the access-log values of an upgraded connection.
type wsLog struct {
	in, out         int64
	msgsIn, msgsOut int64
	closeCode       int
	closeBy         string
	duration        time.Duration
}

var hostname, _ = os.Hostname()

// Var implements vars.Resolver.
func (q *request) Var(name string) (string, bool) {
	if q.vars != nil && name != "" && (name[0] < '0' || name[0] > '9') {
		for i := range q.vars {
			if q.vars[i].name == name {
				return q.vars[i].value, true
			}
		}
	}
	if m, ok := q.h.cfg.HTTP.Maps[name]; ok {
		if q.mapDepth > 16 {
			return "", false
		}
		q.mapDepth++
		v := m.Eval(q)
		q.mapDepth--
		return v, true
	}
	r := q.r
	switch name {
	case "host":
		if h := route.NormalizeHost(r.Host); h != "" {
			return h, true
		}
		return q.srv.PrimaryName, true
	case "http_host":
		return r.Host, true
	case "remote_addr":
		return q.remoteIP, true
	case "remote_port":
		return q.remotePort, true
	case "binary_remote_addr":
		// 4 bytes for IPv4, 16 for IPv6 (a mapped address from the
		// realip module stays 16, as in nginx)
		ip, err := netip.ParseAddr(q.remoteIP)
		if err != nil {
			return "", true
		}
		if ip.Is4() {
			b := ip.As4()
			return string(b[:]), true
		}
		b := ip.As16()
		return string(b[:]), true
	case "realip_remote_addr":
		if q.realIP {
			return q.realIPOrig, true
		}
		return q.remoteIP, true
	case "realip_remote_port":
		if q.realIP {
			return q.realPortOrig, true
		}
		return q.remotePort, true
	case "remote_user":
		return "", true
	case "proxy_add_x_forwarded_for":
		if xff := strings.Join(r.Header.Values("X-Forwarded-For"), ", "); xff != "" {
			return xff + ", " + q.remoteIP, true
		}
		return q.remoteIP, true
	case "scheme":
		return q.scheme, true
	case "https":
		if q.scheme == "https" {
			return "on", true
		}
		return "", true
	case "request_uri":
		return r.RequestURI, true
	case "uri", "document_uri":
		return q.uri, true
	case "args", "query_string":
		return q.args, true
	case "is_args":
		if q.hasArgs && q.args != "" {
			return "?", true
		}
		return "", true
	case "server_name":
		return q.srv.PrimaryName, true
	case "server_port":
		return q.localPort, true
	case "server_addr":
		return q.localIP, true
	case "server_protocol":
		return r.Proto, true
	case "request_method":
		return r.Method, true
	case "request":
		return r.Method + " " + r.RequestURI + " " + r.Proto, true
	case "proxy_host":
		return q.proxyHost, true
	case "upstream_addr":
		return q.upstreamAddr, true
	case "upstream_status":
		return q.upstreamCode, true
	case "status":
		return strconv.Itoa(q.status), true
	case "request_time":
		return strconv.FormatFloat(time.Since(q.start).Seconds(), 'f', 3, 64), true
	case "body_bytes_sent", "bytes_sent":
		return strconv.FormatInt(q.bytesSent, 10), true
	case "request_length":
		// for an upgraded connection: every byte the client sent through
		// the tunnel (with $bytes_sent and $request_time, the connection's
		// bytes each way and duration in standard nginx variables)
		if q.ws != nil {
			return strconv.FormatInt(q.ws.in, 10), true
		}
		return strconv.FormatInt(r.ContentLength, 10), true
	case "time_local", "time_iso8601", "msec":
		// the current time, as nginx's: in an access log, when the line is
		// written (the end of the request, or of a WebSocket)
		return timeVar(name, time.Now()), true
	case "hostname":
		return hostname, true
	case "pid":
		return strconv.Itoa(os.Getpid()), true
	case "content_type":
		return r.Header.Get("Content-Type"), true
	case "content_length":
		return r.Header.Get("Content-Length"), true
	case "connection_upgrade_default":
		return "", true
	case "request_id":
		return requestID(q), true
	case "request_filename":
		if q.set == nil || q.locInvalid && q.set.RootIsAlias {
			return "", true
		}
		return q.h.filePath(q, q.uri), true
	case "document_root":
		s := q.set
		if s == nil {
			s = q.srv.Settings
		}
		root := s.Root.Eval(q)
		if !s.RootIsAlias && strings.HasSuffix(s.Root.Raw(), "/") {
			// nginx drops the trailing "/" of a root (not an alias)
			root = strings.TrimSuffix(root, "/")
		}
		return root, true
	case "ws_messages_in", "ws_messages_out", "ws_close_code", "ws_close_by", "ws_duration", "ws_bytes_in", "ws_bytes_out":
		return wsVar(q.ws, name), true
	}
	switch {
	case strings.HasPrefix(name, "http_"):
		return q.headerVar(name[5:]), true
	case strings.HasPrefix(name, "sent_http_"):
		return "", true
	case strings.HasPrefix(name, "arg_"):
		return argValue(q.args, name[4:]), true
	case strings.HasPrefix(name, "cookie_"):
		if c, err := r.Cookie(name[7:]); err == nil {
			return c.Value, true
		}
		return "", true
	}
	if n, err := strconv.Atoi(name); err == nil {
		// the latest regex match wins: a regex location's, else the
		// regex server_name's
		caps := q.captures
		if caps == nil && q.srvCaps != nil {
			caps = q.srvCaps.Numbered
		}
		if n < len(caps) {
			if q.escCaps {
				return escapeArgs(caps[n]), true
			}
			return caps[n], true
		}
		return "", true
	}
	if q.loc != nil && q.loc.Regex != nil && q.locCaps != nil {
		for i, gn := range q.loc.Regex.SubexpNames() {
			if gn != "" && strings.EqualFold(gn, name) && i < len(q.locCaps) {
				return q.locCaps[i], true
			}
		}
	}
	if q.srvCaps != nil {
		if v, ok := q.srvCaps.Named[name]; ok {
			return v, true
		}
	}
	return "", false
}

// wsVar is a $ws_* variable of a tunnel that has ended (ws), "-" before.
func wsVar(ws *wsLog, name string) string {
	if ws == nil {
		return "-"
	}
	switch name {
	case "ws_messages_in":
		return strconv.FormatInt(ws.msgsIn, 10)
	case "ws_messages_out":
		return strconv.FormatInt(ws.msgsOut, 10)
	case "ws_close_code":
		return strconv.Itoa(ws.closeCode)
	case "ws_close_by":
		if ws.closeBy == "" {
			return "-"
		}
		return ws.closeBy
	case "ws_duration":
		return strconv.FormatFloat(ws.duration.Seconds(), 'f', 3, 64)
	case "ws_bytes_in":
		return strconv.FormatInt(ws.in, 10)
	case "ws_bytes_out":
		return strconv.FormatInt(ws.out, 10)
	}
	return "-"
}

func requestID(q *request) string {
	port := q.remotePort
	if q.realIP {
		port = q.realPortOrig
	}
	return strconv.FormatInt(q.start.UnixNano(), 16) + port
}

// headerVar is $http_NAME: the values of every request header whose
// name, lowercased and with "-" read as "_", is NAME, joined by ", ".
func (q *request) headerVar(name string) string {
	vs := q.r.Header.Values(headerName(name))
	if q.underscores && strings.IndexByte(name, '_') >= 0 {
		// names written with "_" ("X_Real_IP") match too, as in nginx
		var more []string
		for k, kvs := range q.r.Header {
			if strings.IndexByte(k, '_') >= 0 && len(k) == len(name) && headerVarMatch(k, name) {
				more = append(more, kvs...)
			}
		}
		if len(more) > 0 {
			vs = append(append([]string(nil), vs...), more...)
		}
	}
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return vs[0]
	}
	return strings.Join(vs, ", ")
}

// headerVarMatch compares a header name with a variable suffix of the
// same length the way nginx does: case-insensitively, "-" as "_".
func headerVarMatch(header, name string) bool {
	for i := 0; i < len(header); i++ {
		c := header[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '-' {
			c = '_'
		}
		n := name[i]
		if 'A' <= n && n <= 'Z' {
			n += 'a' - 'A'
		}
		if c != n {
			return false
		}
	}
	return true
}

// headerName turns an nginx variable suffix ("x_real_ip") into a header
// name ("X-Real-Ip").
func headerName(s string) string {
	if k, ok := headerNames.Load(s); ok {
		return k.(string)
	}
	k := http.CanonicalHeaderKey(strings.ReplaceAll(s, "_", "-"))
	if headerNamesLen.Add(1) <= 4096 {
		headerNames.Store(s, k)
	}
	return k
}

// headerNames caches headerName: the names come from the configuration's
// $http_NAME variables, a small fixed set, and every request asks again.
// headerNamesLen bounds it all the same.
var (
	headerNames    sync.Map
	headerNamesLen atomic.Int32
)

// argValue returns the first value of name in the raw query, undecoded
// as nginx's $arg_NAME is.
func argValue(query, name string) string {
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// unescapePath is used for filesystem lookups of try_files candidates.
func unescapePath(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// timeVar formats t as $time_local, $time_iso8601 or $msec.
func timeVar(name string, t time.Time) string {
	switch name {
	case "time_local":
		return t.Format("02/Jan/2006:15:04:05 -0700")
	case "time_iso8601":
		return t.Format("2006-01-02T15:04:05-07:00")
	}
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}
