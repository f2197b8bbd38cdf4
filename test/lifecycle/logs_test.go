//go:build unix

package lifecycle

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const logConf = `
pid {{DIR}}/wsgate.pid;
error_log {{DIR}}/error.log;
http {
    log_format ws '$request_uri $status $ws_messages_in $ws_messages_out $ws_close_code $ws_close_by $ws_duration';
    access_log {{DIR}}/access.log ws;
    websocket_max_message_size 1k;
    upstream be { server 127.0.0.1:{{B}}; }
    server {
        listen 127.0.0.1:{{P}};
        location /ws/ { proxy_pass http://be; }
        location / { return 200 "{{GEN}}"; }
    }
}
`

// waitFileContains waits up to d for file to contain s (access logs are
// flushed at least once a second).
func waitFileContains(t testing.TB, file, s string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, _ := os.ReadFile(file)
		if strings.Contains(string(b), s) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not contain %q within %v:\n%s", filepath.Base(file), s, d, tail(string(b), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReopen: after the access log is renamed, "wsgate -s reopen" makes
// wsgate write to a new file at the original path.
func TestReopen(t *testing.T) {
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	g := startGateway(t, logConf, map[string]string{"B": b.port(), "P": p, "GEN": "1"}, addr)
	logPath := filepath.Join(g.dir, "access.log")
	mustGet(t, "http://"+addr+"/before", "1")
	waitFileContains(t, logPath, "/before 200", 3*time.Second)

	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	mustGet(t, "http://"+addr+"/renamed", "1")
	waitFileContains(t, logPath+".1", "/renamed 200", 3*time.Second)

	n := g.countErrorLog("reopening logs")
	g.ctl("reopen")
	g.waitErrorLog("reopening logs", n+1, 5*time.Second)
	mustGet(t, "http://"+addr+"/after", "1")
	waitFileContains(t, logPath, "/after 200", 3*time.Second)
	if old, _ := os.ReadFile(logPath + ".1"); strings.Contains(string(old), "/after") {
		t.Errorf("the renamed file got a line written after reopen:\n%s", old)
	}
}

// TestReopenAfterReload: a WebSocket set up before a reload ends after the
// access log was renamed and reopened; its line must go to the new file at
// the original path, not to the renamed one (which logrotate may already
// have compressed or deleted).
func TestReopenAfterReload(t *testing.T) {
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	g := startGateway(t, logConf, map[string]string{"B": b.port(), "P": p, "GEN": "1"}, addr)
	logPath := filepath.Join(g.dir, "access.log")
	ws, err := dialWS("ws://"+addr+"/ws/held", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.echo([]byte("hi"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	g.writeConfig(logConf, map[string]string{"B": b.port(), "P": p, "GEN": "2"})
	g.reload(false)
	mustGet(t, "http://"+addr+"/x", "2")

	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	n := g.countErrorLog("reopening logs")
	g.signal(syscall.SIGUSR1)
	g.waitErrorLog("reopening logs", n+1, 5*time.Second)
	ws.close()
	mustGet(t, "http://"+addr+"/after", "2")
	waitFileContains(t, logPath, "/after 200", 3*time.Second)
	time.Sleep(1500 * time.Millisecond) // one more flush for the WebSocket's line
	text, _ := readString(logPath)
	if !strings.Contains(text, "/ws/held 101") {
		old, _ := readString(logPath + ".1")
		t.Errorf("the line of a WebSocket that ended after reopen is not in the new access.log\nnew file:\n%s\nrenamed file:\n%s", text, old)
	}
}

func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// wsLogLine matches the "ws" log_format for an upgraded connection.
var wsLogLine = regexp.MustCompile(`(?m)^(/ws/\S+) (\d+) (\S+) (\S+) (\S+) (\S+) (\S+)$`)

// TestAccessLogUpgraded: the access log line of an upgraded connection is
// written when it ends, with its status, message counts, close code, who
// closed, and duration.
func TestAccessLogUpgraded(t *testing.T) {
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	g := startGateway(t, logConf, map[string]string{"B": b.port(), "P": p, "GEN": "1"}, addr)
	logPath := filepath.Join(g.dir, "access.log")

	ws, err := dialWS("ws://"+addr+"/ws/logged", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := ws.echo([]byte("m"+itoa(i)), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// Open for longer than the 1s flush interval: no line yet.
	time.Sleep(1500 * time.Millisecond)
	if s, _ := readString(logPath); strings.Contains(s, "/ws/logged") {
		t.Errorf("access log has a line for a WebSocket still open:\n%s", s)
	}
	ws.close()
	text := waitFileContains(t, logPath, "/ws/logged ", 3*time.Second)
	m := wsLogLine.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no WebSocket line in the access log:\n%s", text)
	}
	t.Logf("access log: %s", m[0])
	want := []string{"/ws/logged", "101", "3", "3", "1000", "client"}
	for i, w := range want {
		if m[i+1] != w {
			t.Errorf("access log field %d = %q, want %q (line %q)", i+1, m[i+1], w, m[0])
		}
	}
	if d, err := strconv.ParseFloat(m[7], 64); err != nil || d < 1.5 || d > 5 {
		t.Errorf("$ws_duration = %q, want about 1.5-2 seconds", m[7])
	}

	// A connection the proxy closes (message over websocket_max_message_size)
	// logs the proxy's code and "proxy".
	ws, err = dialWS("ws://"+addr+"/ws/toobig", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.echo([]byte("ok"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ws.c.Write(t.Context(), websocket.MessageBinary, make([]byte, 2048))
	if code, ok := ws.waitClosed(5 * time.Second); !ok || code != 1009 {
		t.Errorf("client close %d (ended %v), want 1009", code, ok)
	}
	text = waitFileContains(t, logPath, "/ws/toobig ", 3*time.Second)
	for _, m := range wsLogLine.FindAllStringSubmatch(text, -1) {
		if m[1] != "/ws/toobig" {
			continue
		}
		t.Logf("access log: %s", m[0])
		if m[2] != "101" || m[3] != "1" || m[4] != "1" || m[5] != "1009" || m[6] != "proxy" {
			t.Errorf("access log line %q, want 101 1 1 1009 proxy", m[0])
		}
	}
}

// TestReopenErrorLog: "wsgate -s reopen" reopens the error_log file too
// (nginx reopens all log files on USR1), so logrotate can move it.
func TestReopenErrorLog(t *testing.T) {
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	g := startGateway(t, logConf, map[string]string{"B": b.port(), "P": p, "GEN": "1"}, addr)
	elog := filepath.Join(g.dir, "error.log")
	g.waitErrorLog("started", 1, 5*time.Second)
	if err := os.Rename(elog, elog+".1"); err != nil {
		t.Fatal(err)
	}
	g.ctl("reopen")
	waitFileContains(t, elog+".1", "reopening logs", 5*time.Second)
	if _, err := os.Stat(elog); err != nil {
		t.Fatalf("after -s reopen the error_log at %s was not reopened (%v): lines still go to the renamed file", elog, err)
	}
	g.signal(syscall.SIGHUP) // writes "reconfigured" to the error_log
	waitFileContains(t, elog, "reconfigured", 5*time.Second)
	if b, _ := os.ReadFile(elog + ".1"); strings.Contains(string(b), "reconfigured") {
		t.Errorf("a line written after the reopen went to the renamed file")
	}
}
