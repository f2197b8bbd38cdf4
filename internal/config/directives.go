package config

import (
	"fmt"
	"sort"
	"strings"
)

// context is a bit set of the places a directive may appear.
type context uint16

const (
	ctxMain context = 1 << iota
	ctxEvents
	ctxHTTP
	ctxServer
	ctxLocation
	ctxUpstream
	ctxLimitExcept
	// ctxServerIf and ctxLocationIf are the blocks of "if" in a server and
	// in a location (nginx's NGX_HTTP_SIF_CONF and NGX_HTTP_LIF_CONF).
	ctxServerIf
	ctxLocationIf
)

func (c context) String() string {
	switch c {
	case ctxMain:
		return "main"
	case ctxEvents:
		return "events"
	case ctxHTTP:
		return "http"
	case ctxServer:
		return "server"
	case ctxLocation:
		return "location"
	case ctxUpstream:
		return "upstream"
	case ctxServerIf:
		return "if in server"
	case ctxLocationIf:
		return "if in location"
	}
	return "unknown"
}

const (
	ctxHSL = ctxHTTP | ctxServer | ctxLocation
	ctxSL  = ctxServer | ctxLocation
	// ctxIf is both kinds of "if" block; ctxRW is where nginx takes the
	// rewrite module's rewrite, return, set and break.
	ctxIf = ctxServerIf | ctxLocationIf
	ctxRW = ctxSL | ctxIf
)

// spec describes one accepted directive.
type spec struct {
	ctx   context
	min   int // minimum number of arguments
	max   int // maximum; -1 = no limit
	block bool
	// ignored directives are accepted for compatibility and have no
	// effect; "wsgate -t" lists them.
	ignored bool
	// note explains an ignored directive or a difference from nginx.
	note string
}

// directives is the table of every directive wsgate accepts outside
// upstream, map and types blocks (those are checked by their compilers).
var directives = map[string]spec{
	// main
	"worker_processes":        {ctx: ctxMain, min: 1, max: 1},
	"daemon":                  {ctx: ctxMain, min: 1, max: 1},
	"pid":                     {ctx: ctxMain, min: 1, max: 1},
	"error_log":               {ctx: ctxMain | ctxHSL, min: 1, max: 2},
	"events":                  {ctx: ctxMain, block: true},
	"http":                    {ctx: ctxMain, block: true},
	"worker_shutdown_timeout": {ctx: ctxMain, min: 1, max: 1},
	"user":                    {ctx: ctxMain, min: 1, max: 2, ignored: true, note: "wsgate runs as the user that starts it"},
	"worker_rlimit_nofile":    {ctx: ctxMain, min: 1, max: 1, ignored: true, note: "set the limit with ulimit -n"},
	"worker_cpu_affinity":     {ctx: ctxMain, min: 1, max: -1, ignored: true, note: "use taskset"},
	"worker_priority":         {ctx: ctxMain, min: 1, max: 1, ignored: true},
	"master_process":          {ctx: ctxMain, min: 1, max: 1, ignored: true},
	"pcre_jit":                {ctx: ctxMain, min: 1, max: 1, ignored: true},
	"timer_resolution":        {ctx: ctxMain, min: 1, max: 1, ignored: true},
	"env":                     {ctx: ctxMain, min: 1, max: 1, ignored: true},
	"load_module":             {ctx: ctxMain, min: 1, max: 1, ignored: true, note: "wsgate has no dynamic modules; directives of unloaded modules are still rejected by name"},

	// events
	"worker_connections": {ctx: ctxEvents, min: 1, max: 1},
	"use":                {ctx: ctxEvents, min: 1, max: 1, ignored: true, note: "Go's runtime picks epoll/kqueue"},
	"multi_accept":       {ctx: ctxEvents, min: 1, max: 1, ignored: true},
	"accept_mutex":       {ctx: ctxEvents, min: 1, max: 1, ignored: true},
	"accept_mutex_delay": {ctx: ctxEvents, min: 1, max: 1, ignored: true},

	// http
	"map":        {ctx: ctxHTTP, min: 2, max: 2, block: true},
	"upstream":   {ctx: ctxHTTP, min: 1, max: 1, block: true},
	"server":     {ctx: ctxHTTP, block: true},
	"log_format": {ctx: ctxHTTP, min: 2, max: -1},
	"match":      {ctx: ctxHTTP, min: 1, max: 1, block: true},
	"types":      {ctx: ctxHSL, block: true},

	// server
	"listen":              {ctx: ctxServer, min: 1, max: -1},
	"server_name":         {ctx: ctxServer, min: 1, max: -1},
	"location":            {ctx: ctxSL, min: 1, max: 2, block: true},
	"ssl_certificate":     {ctx: ctxHTTP | ctxServer, min: 1, max: 1},
	"ssl_certificate_key": {ctx: ctxHTTP | ctxServer, min: 1, max: 1},

	// http, server, location
	"access_log":            {ctx: ctxHSL | ctxLocationIf, min: 1, max: -1},
	"default_type":          {ctx: ctxHSL, min: 1, max: 1},
	"keepalive_timeout":     {ctx: ctxHSL, min: 1, max: 2},
	"keepalive_requests":    {ctx: ctxHSL, min: 1, max: 1},
	"client_max_body_size":  {ctx: ctxHSL, min: 1, max: 1},
	"root":                  {ctx: ctxHSL | ctxLocationIf, min: 1, max: 1},
	"index":                 {ctx: ctxHSL, min: 1, max: -1},
	"try_files":             {ctx: ctxSL, min: 2, max: -1},
	"return":                {ctx: ctxRW, min: 1, max: 2},
	"error_page":            {ctx: ctxHSL | ctxLocationIf, min: 2, max: -1},
	"alias":                 {ctx: ctxLocation, min: 1, max: 1},
	"internal":              {ctx: ctxLocation, min: 0, max: 0},
	"allow":                 {ctx: ctxHSL | ctxLimitExcept, min: 1, max: 1},
	"deny":                  {ctx: ctxHSL | ctxLimitExcept, min: 1, max: 1},
	"add_header":            {ctx: ctxHSL | ctxLocationIf, min: 2, max: 3},
	"resolver":              {ctx: ctxHSL, min: 1, max: -1, ignored: true, note: "wsgate resolves names with the system resolver"},
	"resolver_timeout":      {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"client_header_timeout": {ctx: ctxHTTP | ctxServer, min: 1, max: 1},
	// request header names (see dropInvalidHeaders in internal/proxy)
	"underscores_in_headers": {ctx: ctxHTTP | ctxServer, min: 1, max: 1},
	"ignore_invalid_headers": {ctx: ctxHTTP | ctxServer, min: 1, max: 1},
	"client_body_timeout":    {ctx: ctxHSL, min: 1, max: 1},
	"send_timeout":           {ctx: ctxHSL, min: 1, max: 1},
	// the discarding of a request body left unread (internal/proxy)
	"lingering_time":    {ctx: ctxHSL, min: 1, max: 1},
	"lingering_timeout": {ctx: ctxHSL, min: 1, max: 1},
	// ngx_http_realip_module (internal/config/realip.go)
	"set_real_ip_from":  {ctx: ctxHSL, min: 1, max: 1},
	"real_ip_header":    {ctx: ctxHSL, min: 1, max: 1},
	"real_ip_recursive": {ctx: ctxHSL, min: 1, max: 1},

	// proxy
	"proxy_pass":                  {ctx: ctxLocation | ctxLocationIf, min: 1, max: 1},
	"proxy_http_version":          {ctx: ctxHSL, min: 1, max: 1},
	"proxy_set_header":            {ctx: ctxHSL, min: 2, max: 2},
	"proxy_hide_header":           {ctx: ctxHSL, min: 1, max: 1},
	"proxy_pass_header":           {ctx: ctxHSL, min: 1, max: 1},
	"proxy_connect_timeout":       {ctx: ctxHSL, min: 1, max: 1},
	"proxy_read_timeout":          {ctx: ctxHSL, min: 1, max: 1},
	"proxy_send_timeout":          {ctx: ctxHSL, min: 1, max: 1},
	"proxy_buffering":             {ctx: ctxHSL, min: 1, max: 1},
	"proxy_request_buffering":     {ctx: ctxHSL, min: 1, max: 1},
	"proxy_next_upstream":         {ctx: ctxHSL, min: 1, max: -1},
	"proxy_next_upstream_tries":   {ctx: ctxHSL, min: 1, max: 1},
	"proxy_next_upstream_timeout": {ctx: ctxHSL, min: 1, max: 1},
	"proxy_redirect":              {ctx: ctxHSL, min: 1, max: 2},
	"proxy_pass_request_headers":  {ctx: ctxHSL, min: 1, max: 1},
	"proxy_pass_request_body":     {ctx: ctxHSL, min: 1, max: 1},
	"health_check":                {ctx: ctxLocation, min: 0, max: -1},

	// the rewrite module (see script.go); "return" is above
	"rewrite":     {ctx: ctxRW, min: 2, max: 3},
	"set":         {ctx: ctxRW, min: 2, max: 2},
	"break":       {ctx: ctxRW, min: 0, max: 0},
	"if":          {ctx: ctxSL, min: 1, max: -1, block: true},
	"rewrite_log": {ctx: ctxHSL | ctxIf, min: 1, max: 1},

	// wsgate's own directives (issue-specific defaults in docs/config.md)
	"websocket_frames":           {ctx: ctxHSL, min: 1, max: 1},
	"websocket_ping_interval":    {ctx: ctxHSL, min: 1, max: 1},
	"websocket_ping_timeout":     {ctx: ctxHSL, min: 1, max: 1},
	"websocket_max_message_size": {ctx: ctxHSL, min: 1, max: 1},
	"websocket_max_frame_rate":   {ctx: ctxHSL, min: 1, max: 1},
	"websocket_drain_window":     {ctx: ctxHTTP | ctxServer, min: 1, max: 1},

	// response shaping (see extras.go)
	"charset":                     {ctx: ctxHSL | ctxLocationIf, min: 1, max: 1},
	"expires":                     {ctx: ctxHSL | ctxLocationIf, min: 1, max: 2},
	"absolute_redirect":           {ctx: ctxHSL, min: 1, max: 1},
	"server_name_in_redirect":     {ctx: ctxHSL, min: 1, max: 1},
	"port_in_redirect":            {ctx: ctxHSL, min: 1, max: 1},
	"chunked_transfer_encoding":   {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"postpone_output":             {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"lingering_close":             {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"msie_padding":                {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"msie_refresh":                {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"if_modified_since":           {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"uninitialized_variable_warn": {ctx: ctxHSL | ctxIf, min: 1, max: 1, ignored: true, note: "wsgate does not warn about variables used before a set gives them a value; they are empty, as in nginx"},
	"etag":                        {ctx: ctxHSL, min: 1, max: 1, ignored: true, note: "wsgate sends Last-Modified for static files, no ETag"},

	// no effect without a cache, which wsgate does not have
	"proxy_cache_bypass": {ctx: ctxHSL, min: 1, max: -1, ignored: true, note: "wsgate has no proxy cache, so nothing is ever served from one"},
	"proxy_no_cache":     {ctx: ctxHSL, min: 1, max: -1, ignored: true, note: "wsgate has no proxy cache"},

	// pure tuning: accepted, no effect on behaviour
	"sendfile":                       {ctx: ctxHSL | ctxLocationIf, min: 1, max: 1, ignored: true},
	"sendfile_max_chunk":             {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"tcp_nopush":                     {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"tcp_nodelay":                    {ctx: ctxHSL, min: 1, max: 1, ignored: true, note: "wsgate always sets TCP_NODELAY"},
	"aio":                            {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"directio":                       {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"output_buffers":                 {ctx: ctxHSL, min: 2, max: 2, ignored: true},
	"open_file_cache":                {ctx: ctxHSL, min: 1, max: 2, ignored: true},
	"open_file_cache_valid":          {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"open_file_cache_min_uses":       {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"open_file_cache_errors":         {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"server_tokens":                  {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"server_names_hash_bucket_size":  {ctx: ctxHTTP, min: 1, max: 1, ignored: true},
	"server_names_hash_max_size":     {ctx: ctxHTTP, min: 1, max: 1, ignored: true},
	"types_hash_max_size":            {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"types_hash_bucket_size":         {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"variables_hash_max_size":        {ctx: ctxHTTP, min: 1, max: 1, ignored: true},
	"variables_hash_bucket_size":     {ctx: ctxHTTP, min: 1, max: 1, ignored: true},
	"map_hash_max_size":              {ctx: ctxHTTP, min: 1, max: 1, ignored: true},
	"map_hash_bucket_size":           {ctx: ctxHTTP, min: 1, max: 1, ignored: true},
	"proxy_headers_hash_max_size":    {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"proxy_headers_hash_bucket_size": {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"client_body_buffer_size":        {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"client_header_buffer_size":      {ctx: ctxHTTP | ctxServer, min: 1, max: 1, ignored: true},
	"large_client_header_buffers":    {ctx: ctxHTTP | ctxServer, min: 2, max: 2, ignored: true, note: "wsgate accepts request headers up to 64 KiB"},
	"proxy_buffer_size":              {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"proxy_buffers":                  {ctx: ctxHSL, min: 2, max: 2, ignored: true},
	"proxy_busy_buffers_size":        {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"proxy_max_temp_file_size":       {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"proxy_temp_file_write_size":     {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"proxy_temp_path":                {ctx: ctxHSL, min: 1, max: 4, ignored: true},
	"client_body_temp_path":          {ctx: ctxHSL, min: 1, max: 4, ignored: true},
	"fastcgi_temp_path":              {ctx: ctxHSL, min: 1, max: 4, ignored: true},
	"uwsgi_temp_path":                {ctx: ctxHSL, min: 1, max: 4, ignored: true},
	"scgi_temp_path":                 {ctx: ctxHSL, min: 1, max: 4, ignored: true},
	"reset_timedout_connection":      {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"log_not_found":                  {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"ssl_session_cache":              {ctx: ctxHTTP | ctxServer, min: 1, max: 2, ignored: true},
	"ssl_session_timeout":            {ctx: ctxHTTP | ctxServer, min: 1, max: 1, ignored: true},
	"ssl_session_tickets":            {ctx: ctxHTTP | ctxServer, min: 1, max: 1, ignored: true},
	"ssl_protocols":                  {ctx: ctxHTTP | ctxServer, min: 1, max: -1, ignored: true, note: "wsgate uses Go's TLS 1.2+ defaults"},
	"ssl_ciphers":                    {ctx: ctxHTTP | ctxServer, min: 1, max: 1, ignored: true, note: "wsgate uses Go's cipher suite defaults"},
	"ssl_prefer_server_ciphers":      {ctx: ctxHTTP | ctxServer, min: 1, max: 1, ignored: true},
	"ssl_dhparam":                    {ctx: ctxHTTP | ctxServer, min: 1, max: 1, ignored: true},
	"ssl_ecdh_curve":                 {ctx: ctxHTTP | ctxServer, min: 1, max: 1, ignored: true},
	"gzip":                           {ctx: ctxHSL | ctxLocationIf, min: 1, max: 1, ignored: true, note: "responses are passed uncompressed; upstream compression passes through"},
	"gzip_types":                     {ctx: ctxHSL, min: 1, max: -1, ignored: true},
	"gzip_vary":                      {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"gzip_proxied":                   {ctx: ctxHSL, min: 1, max: -1, ignored: true},
	"gzip_comp_level":                {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"gzip_min_length":                {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"gzip_disable":                   {ctx: ctxHSL, min: 1, max: -1, ignored: true},
	"gzip_http_version":              {ctx: ctxHSL, min: 1, max: 1, ignored: true},
	"gzip_buffers":                   {ctx: ctxHSL, min: 2, max: 2, ignored: true},
}

// unimplemented lists real nginx directives wsgate deliberately does not
// implement (yet); using one is an error that says so by name.
var unimplemented = map[string]bool{
	"limit_except": true,
	"proxy_cache":  true, "proxy_cache_path": true, "proxy_cache_key": true, "proxy_cache_valid": true,
	"proxy_intercept_errors": true,
	"proxy_ssl_verify":       true, "proxy_ssl_server_name": true, "proxy_ssl_certificate": true,
	"proxy_ssl_trusted_certificate": true, "proxy_ssl_name": true, "proxy_ssl_protocols": true,
	"proxy_ignore_headers": true, "proxy_set_body": true, "proxy_method": true, "proxy_store": true,
	"proxy_bind": true, "proxy_cookie_domain": true, "proxy_cookie_path": true, "proxy_ignore_client_abort": true,
	"fastcgi_pass": true, "fastcgi_param": true, "fastcgi_index": true, "uwsgi_pass": true, "uwsgi_param": true,
	"scgi_pass": true, "grpc_pass": true, "memcached_pass": true, "grpc_set_header": true,
	"autoindex": true, "source_charset": true,
	"sub_filter": true, "sub_filter_once": true, "ssi": true, "auth_basic": true, "auth_basic_user_file": true,
	"auth_request": true, "limit_req": true, "limit_req_zone": true, "limit_conn": true, "limit_conn_zone": true,
	"limit_rate": true, "geo": true, "split_clients": true,
	"satisfy": true, "stream": true, "mail": true, "ssl_stapling": true,
	"ssl_stapling_verify": true, "ssl_trusted_certificate": true, "ssl_client_certificate": true,
	"ssl_verify_client": true, "http2": true, "http2_push": true,
	"merge_slashes": true, "recursive_error_pages": true,
	"lua_package_path": true, "content_by_lua_block": true, "access_by_lua_block": true, "more_set_headers": true,
	"add_trailer": true, "secure_link": true, "mp4": true, "flv": true, "dav_methods": true, "perl": true,
	"js_import": true, "js_content": true, "empty_gif": true, "stub_status": true, "random_index": true,
	"ssl": true, "listen_backlog": true,
	"disable_symlinks": true, "internal_redirect": true,
}

// lookupSpec returns the spec for name, or an error in nginx's words:
// unknown, not implemented, or not allowed here.
func lookupSpec(d *Directive, in context) (spec, *Error) {
	s, ok := directives[d.Name]
	if !ok {
		if unimplemented[d.Name] {
			return s, d.Errorf("directive %q is a real nginx directive that wsgate does not implement (see docs/config.md)", d.Name)
		}
		return s, d.Errorf("unknown directive %q", d.Name)
	}
	if s.ctx&in == 0 {
		return s, d.Errorf("%q directive is not allowed here (in %s; allowed in %s)", d.Name, in.place(), s.ctx.names())
	}
	if s.block && !d.HasBlock {
		return s, d.Errorf("directive %q has no opening \"{\"", d.Name)
	}
	if !s.block && d.HasBlock {
		return s, d.Errorf("directive %q has no \";\" (it does not take a block)", d.Name)
	}
	if len(d.Args) < s.min || s.max >= 0 && len(d.Args) > s.max {
		return s, d.Errorf("invalid number of arguments in %q directive", d.Name)
	}
	return s, nil
}

// place names the context for an error message.
func (c context) place() string {
	switch c {
	case ctxServerIf:
		return "an \"if\" block of a server"
	case ctxLocationIf:
		return "an \"if\" block of a location"
	}
	return c.String() + " context"
}

func (c context) names() string {
	var out []string
	for _, x := range []context{ctxMain, ctxEvents, ctxHTTP, ctxServer, ctxLocation, ctxUpstream, ctxServerIf, ctxLocationIf} {
		if c&x != 0 {
			out = append(out, x.String())
		}
	}
	return strings.Join(out, ", ")
}

// IgnoredDirective is an accepted directive that has no effect.
type IgnoredDirective struct {
	Name string
	Pos  string
	Note string
}

func (i IgnoredDirective) String() string {
	s := fmt.Sprintf("%s: %q is accepted and ignored", i.Pos, i.Name)
	if i.Note != "" {
		s += " (" + i.Note + ")"
	}
	return s
}

// DirectiveNames returns every accepted directive name, sorted (for docs
// and tests).
func DirectiveNames() []string {
	var out []string
	for n := range directives {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
