package config

import "time"

// Upstream is a compiled "upstream NAME { ... }" block, or the implicit
// one-server upstream behind "proxy_pass http://host:port".
type Upstream struct {
	Name string
	File string // where the block was defined ("" for implicit ones)
	Line int
	// Implicit is true for upstreams made from a proxy_pass address.
	Implicit bool

	// Method is the balancing method: "" (weighted round robin),
	// "least_conn", "ip_hash", "hash", "random", "sticky".
	Method string
	// HashKey is the variable template of "hash KEY" (raw text).
	HashKey string
	// Consistent is "hash KEY consistent".
	Consistent bool
	// RandomTwo is "random two"; RandomLeastConn is "random two least_conn".
	RandomTwo       bool
	RandomLeastConn bool

	// Sticky is the "sticky cookie" setting; nil when not configured.
	Sticky *StickyCookie

	// Keepalive is the number of idle connections to the upstream's
	// servers kept for reuse, for the whole upstream block ("keepalive
	// N"); 0 means the proxy default (see docs/config.md).
	Keepalive int
	// KeepaliveTimeout closes a pooled connection idle that long (default
	// 60s), KeepaliveRequests retires a connection after that many
	// requests (default 1000), KeepaliveTime after that long since it was
	// opened (default 1h). CompileUpstream and implicit upstreams fill in
	// the defaults.
	KeepaliveTimeout  time.Duration
	KeepaliveRequests int
	KeepaliveTime     time.Duration

	// HealthCheck is the active health check; nil when not configured.
	HealthCheck *HealthCheck

	Servers []UpstreamServer
}

// UpstreamServer is one "server ADDR [params]" line of an upstream.
type UpstreamServer struct {
	// Addr is host:port as written (port 80 added when absent).
	Addr        string
	Weight      int           // default 1
	MaxFails    int           // default 1; 0 disables failure accounting
	FailTimeout time.Duration // default 10s
	MaxConns    int           // 0 = no limit
	Backup      bool
	Down        bool
	SlowStart   time.Duration // 0 = off
	Line        int
}

// StickyCookie is "sticky cookie NAME [expires=] [domain=] [path=]
// [httponly] [secure] [samesite=]".
type StickyCookie struct {
	Name     string
	Expires  time.Duration // 0 = session cookie; -1 = "max"
	Domain   string
	Path     string
	HTTPOnly bool
	Secure   bool
	SameSite string
}

// HealthCheck is the NGINX Plus style "health_check" directive.
type HealthCheck struct {
	Interval time.Duration // default 5s
	Fails    int           // default 1
	Passes   int           // default 1
	URI      string        // default "/"
	Port     int           // 0 = the server's port
	Type     string        // "http" (default) or "websocket"
	// MatchStatus and MatchBody come from a "match" block; empty = any 2xx/3xx.
	MatchStatus []StatusRange
	MatchBody   string
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }
