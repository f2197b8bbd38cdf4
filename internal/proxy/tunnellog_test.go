package proxy

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/route"
)

const tunnelLogConf = `
events {}
http {
    map $http_upgrade $kind { websocket ws; default other; }
    map $bytes_sent $size_class { 0 empty; default some; }
    log_format ws '$remote_addr "$request" $status $http_origin $kind $tag '
                  '$request_length $bytes_sent $size_class $ws_messages_in $ws_messages_out '
                  '$ws_close_code $ws_close_by $upstream_addr $arg_room $nosuch';
    server {
        listen 127.0.0.1:8080;
        location /ws/ {
            access_log {{DIR}}/access.log ws;
            set $tag t1;
            proxy_pass http://127.0.0.1:9;
        }
    }
}
`

// TestTunnelLogMatchesRequest: the access log line of a WebSocket written
// from the snapshot taken when the tunnel starts is the line the request
// itself would give at the end (every variable but $request_time), so
// letting the request go changes nothing in the log.
func TestTunnelLogMatchesRequest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wsgate.conf")
	conf := []byte(strings.ReplaceAll(tunnelLogConf, "{{DIR}}", dir))
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(nil) })

	hdr := clientUpgradeHeader()
	r := &http.Request{Method: "GET", RequestURI: "/ws/chat?room=7", Host: "example.com", Header: hdr,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "192.0.2.9:50000"}
	q := &request{h: h, r: r, start: time.Now(), scheme: "http"}
	q.remoteIP, q.remotePort, _ = net.SplitHostPort(r.RemoteAddr)
	q.srv = h.table.Bindings[0].Server(q.localIP, r.Host)
	q.uri, q.args, q.hasArgs = "/ws/chat", "room=7", true
	m := route.Find(q.srv, q.uri)
	q.loc, q.captures, q.set = m.Location, m.Captures, m.Settings(q.srv)
	q.vars = append(q.vars, scriptVar{name: "tag", value: "t1"})
	q.upstreamAddr = "127.0.0.1:9"
	q.status = http.StatusSwitchingProtocols

	l := newTunnelLog(q)
	if l == nil {
		t.Fatal("no tunnel log for a location with access_log")
	}
	// The tunnel ends: the same figures reach the snapshot and, for
	// comparison, the request.
	ws := &wsLog{in: 120, out: 77, msgsIn: 3, msgsOut: 2, closeCode: 1000, closeBy: "client", duration: time.Second}
	l.ws, l.bytesSent = ws, 77
	q.ws, q.bytesSent = ws, 77

	tmpl := q.set.AccessLogs[0].Format.Template
	got := accesslog.Format(tmpl, "", l)
	want := accesslog.Format(tmpl, "", q)
	if got != want {
		t.Errorf("log line from the snapshot:\n got %s\nwant %s", got, want)
	}
	const line = `192.0.2.9 "GET /ws/chat?room=7 HTTP/1.1" 101 http://example.com ws t1 120 77 some 3 2 1000 client 127.0.0.1:9 7 -`
	if got != line {
		t.Errorf("log line:\n got %s\nwant %s", got, line)
	}
	if v, ok := l.Var("request_time"); !ok || v == "" {
		t.Errorf("$request_time = %q, %v", v, ok)
	}
}

// TestLogTimeIsWriteTime: $msec, $time_local and $time_iso8601 in an
// access log are the time the line is written, as in nginx (for a
// WebSocket: when it ends), not when the request began.
func TestLogTimeIsWriteTime(t *testing.T) {
	h := handshakeHandler(t)
	start := time.Now().Add(-time.Hour)
	for _, r := range []interface{ Var(string) (string, bool) }{
		&request{h: h, start: start},
		&tunnelLog{h: h, start: start},
	} {
		v, _ := r.Var("msec")
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("$msec = %q", v)
		}
		if d := time.Since(time.Unix(0, int64(sec*1e9))); d > time.Minute || d < -time.Minute {
			t.Errorf("%T: $msec is %v from now, want the time of the call (the request began an hour ago)", r, d.Round(time.Second))
		}
		if v, _ := r.Var("time_local"); v == start.Format("02/Jan/2006:15:04:05 -0700") {
			t.Errorf("%T: $time_local = %q, the request's start", r, v)
		}
	}
}
