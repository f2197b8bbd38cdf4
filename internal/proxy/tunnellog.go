package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/config"
)

// tunnelLog is what the access log line of a WebSocket needs once the
// request that opened it is gone. nginx writes that line when the
// connection ends; keeping the whole request (its http.Request, header map
// and context) until then would make every idle WebSocket ~3 KB dearer
// with access logs on, which is the default. So when the tunnel starts,
// the variables the log formats use are evaluated, except those only the
// end knows ($request_time, $bytes_sent, $request_length, the $ws_*
// counters and the log time), and the request is let go.
type tunnelLog struct {
	h     *Handler
	logs  []config.AccessLog
	early []scriptVar // name and value of every other variable used
	start time.Time
	depth int // map evaluation depth, as request.mapDepth

	// Set when the tunnel ends.
	bytesSent int64
	ws        *wsLog
}

// lateVars are the variables whose value is known only when a tunnel ends.
var lateVars = map[string]bool{
	"request_time": true, "body_bytes_sent": true, "bytes_sent": true, "request_length": true,
	"ws_messages_in": true, "ws_messages_out": true, "ws_close_code": true, "ws_close_by": true,
	"ws_duration": true, "ws_bytes_in": true, "ws_bytes_out": true,
	"time_local": true, "time_iso8601": true, "msec": true,
}

// newTunnelLog snapshots what q's access logs need; nil if q's location
// logs nothing.
func newTunnelLog(q *request) *tunnelLog {
	s := q.set
	if s == nil {
		s = q.srv.Settings
	}
	if len(s.AccessLogs) == 0 {
		return nil
	}
	if q.status == 0 {
		q.status = http.StatusOK
	}
	l := &tunnelLog{h: q.h, logs: s.AccessLogs, start: q.start}
	seen := map[string]bool{}
	var add func(names []string)
	add = func(names []string) {
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			if !q.isSet(n) {
				if m, ok := q.h.cfg.HTTP.Maps[n]; ok {
					// a map is evaluated at the end, on the values its
					// source and results use
					add(m.Vars())
					continue
				}
				if lateVars[n] {
					continue
				}
			}
			v, ok := q.Var(n)
			if !ok {
				continue // unknown: the log writes "-", as for q
			}
			l.early = append(l.early, scriptVar{name: n, value: v})
		}
	}
	for _, al := range s.AccessLogs {
		add(al.Format.Template.Vars())
	}
	return l
}

// isSet reports whether name is a set variable or named capture of q's
// rewrite script (which shadow maps and built-ins in request.Var).
func (q *request) isSet(name string) bool {
	for i := range q.vars {
		if q.vars[i].name == name {
			return true
		}
	}
	return false
}

// Var resolves a variable of the log line: the snapshot, a map, or one of
// the late variables.
func (l *tunnelLog) Var(name string) (string, bool) {
	for i := range l.early {
		if l.early[i].name == name {
			return l.early[i].value, true
		}
	}
	if m, ok := l.h.cfg.HTTP.Maps[name]; ok {
		if l.depth > 16 {
			return "", false
		}
		l.depth++
		v := m.Eval(l)
		l.depth--
		return v, true
	}
	switch name {
	case "time_local", "time_iso8601", "msec":
		return timeVar(name, time.Now()), true
	case "request_time":
		return strconv.FormatFloat(time.Since(l.start).Seconds(), 'f', 3, 64), true
	case "body_bytes_sent", "bytes_sent":
		return strconv.FormatInt(l.bytesSent, 10), true
	case "request_length":
		if l.ws != nil {
			return strconv.FormatInt(l.ws.in, 10), true
		}
		return "0", true
	}
	if lateVars[name] {
		return wsVar(l.ws, name), true
	}
	return "", false
}

// write writes the log lines, once the tunnel has ended.
func (l *tunnelLog) write() {
	for _, al := range l.logs {
		l.h.logs.Write(al.Path, accesslog.Format(al.Format.Template, al.Format.Escape, l))
	}
}
