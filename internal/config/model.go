package config

import (
	"net"
	"regexp"
	"time"

	"github.com/wsgate/wsgate/internal/vars"
)

// Config is a loaded, validated configuration.
type Config struct {
	File   string // the main configuration file
	Prefix string // directory relative paths resolve against

	WorkerProcesses       string // accepted for compatibility; wsgate is one process
	WorkerConnections     int    // default 512, as nginx: the connection limit per process
	Daemon                bool   // accepted; wsgate always runs in the foreground
	PID                   string // absolute path of the pid file; default PREFIX/wsgate.pid
	ErrorLog              string // "stderr" (default) or an absolute path
	WorkerShutdownTimeout time.Duration

	HTTP *HTTP // nil when the file has no http block

	// Ignored lists accepted directives that have no effect.
	Ignored []IgnoredDirective
	// Warnings are non-fatal remarks (printed by "wsgate -t").
	Warnings []string
}

// HTTP is the compiled http block.
type HTTP struct {
	Maps       map[string]*vars.Map // by result variable name
	Upstreams  map[string]*Upstream // named upstream blocks
	LogFormats map[string]*LogFormat
	Servers    []*Server
	// Implicit holds the one-server upstreams made from proxy_pass
	// addresses, keyed by "host:port".
	Implicit map[string]*Upstream
}

// LogFormat is a compiled log_format.
type LogFormat struct {
	Name     string
	Escape   string // "default", "json" or "none"
	Template *vars.Template
}

// Listen is one listen directive.
type Listen struct {
	Addr          string // host:port; host may be empty (all addresses)
	DefaultServer bool
	SSL           bool
	HTTP2         bool
	File          string
	Line          int
}

// ServerName is one server_name entry.
type ServerName struct {
	Exact  string         // lowercased exact name ("" for the empty name)
	Suffix string         // "*.example.com" → ".example.com"; ".example.com" also matches example.com
	Prefix string         // "www.example.*" → "www.example."
	Regex  *regexp.Regexp // "~^..."
	Dot    bool           // ".example.com" form: matches the bare domain too
}

// Server is a compiled server block.
type Server struct {
	File    string
	Line    int
	Listens []Listen
	Names   []ServerName
	// PrimaryName is the first server_name, used for $server_name.
	PrimaryName string
	// Locations are the top-level locations in configuration order.
	Locations []*Location
	// Named are the "@name" locations.
	Named map[string]*Location
	// Settings apply to requests that match no location.
	Settings *Settings
	// Script holds the server-level rewrite module directives (rewrite,
	// return, set, break, if), run before any location is searched.
	Script Script

	TLSCert string // ssl_certificate, absolute
	TLSKey  string // ssl_certificate_key, absolute
}

// Location is a compiled location block.
type Location struct {
	// Modifier is "", "=", "^~", "~", "~*" or "@".
	Modifier string
	Path     string
	Regex    *regexp.Regexp
	File     string
	Line     int
	Settings *Settings
	// Children are nested locations in configuration order.
	Children []*Location
	// AutoRedirect: a prefix location ending in "/" handled by
	// proxy_pass answers a request for the prefix without the slash with
	// a 301 to the slashed URI, as nginx does.
	AutoRedirect bool
	// Internal locations only serve internal redirects.
	Internal bool
	// Script holds the location's own rewrite module directives, run
	// after the location is chosen; nested locations do not inherit it.
	Script Script

	// ifBlock marks the implicit location of an "if" (compile time only).
	ifBlock bool
}

// Name returns the location as written ("= /x", "~ ^/a", "/b").
func (l *Location) Name() string {
	if l == nil {
		return ""
	}
	if l.Modifier == "" {
		return l.Path
	}
	if l.Modifier == "@" {
		return "@" + l.Path
	}
	return l.Modifier + " " + l.Path
}

// Settings are the merged directive values in force for a location (or a
// server's no-location case). Inheritance follows nginx: a directive set
// at an inner level replaces the outer value entirely (for list
// directives such as proxy_set_header or add_header too).
type Settings struct {
	Root        *vars.Template // default "html" under the prefix
	RootIsAlias bool           // Root came from alias
	Index       []*vars.Template
	TryFiles    []*vars.Template // the last one is the fallback URI, "=CODE" or "@name"
	// RewriteLog (rewrite_log, default off) logs each rewrite module
	// regex test and result at notice level to the error log.
	RewriteLog  bool
	ErrorPages  []ErrorPage
	DefaultType string
	Types       map[string]string // lowercase extension → MIME type

	Proxy *Proxy // nil when the location does not proxy

	ProxyHTTPVersion string      // "1.0" (default) or "1.1"
	ProxySetHeaders  []SetHeader // effective list, nginx defaults included
	// UserConnection is set when the config itself sets the Connection
	// header; wsgate then honours "close" (no upstream keep-alive).
	// Without it, upstream connections are pooled (see docs/config.md).
	UserConnection      bool
	ProxyHideHeaders    map[string]bool
	ProxyConnectTimeout time.Duration // default 60s
	ProxyReadTimeout    time.Duration // default 60s
	ProxySendTimeout    time.Duration // default 60s
	ProxyBuffering      bool          // default on
	NextUpstream        NextUpstream
	ProxyRedirectOff    bool
	PassRequestHeaders  bool // default on
	PassRequestBody     bool // default on

	AddHeaders []AddHeader
	Access     []AccessRule
	// RealIP is the realip module (set_real_ip_from, real_ip_header,
	// real_ip_recursive); nil when no set_real_ip_from applies.
	RealIP     *RealIP
	AccessLogs []AccessLog // empty with AccessLogOff = off

	// UnderscoresInHeaders and IgnoreInvalidHeaders (http, server)
	// decide which request header fields count: see dropInvalidHeaders
	// in internal/proxy.
	UnderscoresInHeaders bool // default off
	IgnoreInvalidHeaders bool // default on

	ClientMaxBodySize int64 // default 1 MiB; 0 = unlimited
	// KeepaliveTimeout is how long a client keep-alive connection may
	// idle after a response of this location (default 75s); 0 closes the
	// connection after the response. KeepaliveHeader is the optional
	// second value, sent as "Keep-Alive: timeout=N" (0 = not sent).
	KeepaliveTimeout time.Duration
	KeepaliveHeader  time.Duration
	// KeepaliveRequests (default 1000) is the number of requests a client
	// keep-alive connection may serve: the response to the request that
	// reaches it (counted on the connection, checked against the value of
	// the location that answers) carries "Connection: close"; 0 closes
	// after every response.
	KeepaliveRequests int
	// ClientHeaderTimeout (http, server; default 60s) bounds the wait for
	// a request head; it is taken from the listen socket's default server.
	ClientHeaderTimeout time.Duration
	SendTimeout         time.Duration // default 60s
	// ClientBodyTimeout (default 60s) bounds the wait for each read of a
	// request body wsgate proxies, not the whole body.
	ClientBodyTimeout time.Duration
	// LingeringTimeout (default 5s) and LingeringTime (default 30s) bound
	// the discarding of a request body the location answered without
	// reading: the longest wait for more of it, and the whole time spent
	// after the response; then the connection is closed.
	LingeringTimeout time.Duration
	LingeringTime    time.Duration

	WebSocket WebSocketSettings

	// Response holds charset, expires and redirect settings.
	Response Response

	HealthCheck *HealthCheck
}

// WebSocketSettings are wsgate's own directives for upgraded connections.
type WebSocketSettings struct {
	Frames         bool          // websocket_frames, default on
	PingInterval   time.Duration // websocket_ping_interval, default 30s; 0 = off
	PingTimeout    time.Duration // websocket_ping_timeout, default 10s
	MaxMessageSize int64         // websocket_max_message_size, default 0 = off
	MaxFrameRate   int           // websocket_max_frame_rate, default 0 = off
	DrainWindow    time.Duration // websocket_drain_window, default 30s
}

// Proxy is a compiled proxy_pass.
type Proxy struct {
	Raw    string // as written
	Scheme string // "http" or "https"
	// Host is the upstream name or host[:port] as written; for variable
	// proxy_pass it is empty and Dynamic is set.
	Host string
	// HasURI tells "proxy_pass http://up/" (URI "/") from "http://up".
	HasURI bool
	URI    string
	// Upstream is the named or implicit upstream; nil when Dynamic.
	Upstream *Upstream
	// Dynamic holds the whole proxy_pass argument when it contains
	// variables; it is evaluated per request.
	Dynamic *vars.Template
}

// SetHeader is one proxy_set_header.
type SetHeader struct {
	Name  string // canonical case as written
	Value *vars.Template
}

// AddHeader is one add_header.
type AddHeader struct {
	Name   string
	Value  *vars.Template
	Always bool
}

// Return is the return directive (a ScriptOp).
type Return struct {
	Code int            // 0 with a URL means 302
	Text *vars.Template // body text or redirect URL
}

// ErrorPage is one error_page directive.
type ErrorPage struct {
	Codes    []int
	Response int // "=CODE"; 0 = keep the original code; -1 = "=" (use the target's)
	URI      *vars.Template
}

// AccessRule is allow or deny.
type AccessRule struct {
	Allow bool
	Net   *net.IPNet // nil = all
}

// AccessLog is one access_log destination.
type AccessLog struct {
	Path   string // absolute path, or "stdout"/"stderr"
	Format *LogFormat
}

// NextUpstream is proxy_next_upstream and its companions.
type NextUpstream struct {
	Error, Timeout, InvalidHeader bool
	Statuses                      map[int]bool // http_500 etc.
	NonIdempotent                 bool
	Off                           bool
	Tries                         int           // 0 = unlimited
	Timeout_                      time.Duration // proxy_next_upstream_timeout; 0 = unlimited
}
