package lb

import (
	"github.com/wsgate/wsgate/internal/testenv"

	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is the shared harness's (internal/testenv).
type syncBuffer = testenv.SyncBuffer

// freePort is the shared harness's (internal/testenv).
func freePort(t testing.TB) int { return testenv.FreePort(t) }

// freeAddr returns "127.0.0.1:PORT" for a free port.
func freeAddr(t testing.TB) string {
	return "127.0.0.1:" + strconv.Itoa(freePort(t))
}

// gateway is a running wsgate subprocess. Its stderr (the error log) is
// kept in log. The test's cleanup stops it.
type gateway struct {
	addr string // listen address, 127.0.0.1:PORT
	conf string // path of the config file
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

// confTemplate wraps an http block body into a whole config. The server
// block listens on {{LISTEN}} and every location proxies to the upstream
// named "pool" unless the test writes its own server block.
const confTemplate = `events {}
http {
    access_log off;
%s
}
`

// startGateway writes http (the inside of the http block, with {{LISTEN}}
// for the listen address) to a config file and runs wsgate on it, waiting
// until it accepts connections. A wsgate that exits early fails the test
// with its output.
func startGateway(t testing.TB, http string) *gateway {
	t.Helper()
	bin := needWsgate(t)
	g := &gateway{addr: freeAddr(t), log: &syncBuffer{}, done: make(chan struct{})}
	text := strings.ReplaceAll(strings.Replace(confTemplate, "%s", http, 1), "{{LISTEN}}", g.addr)
	dir := t.TempDir()
	g.conf = filepath.Join(dir, "wsgate.conf")
	if err := os.WriteFile(g.conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(bin, "-c", g.conf)
	g.cmd.Dir = dir
	g.cmd.Stdout = g.log
	g.cmd.Stderr = g.log
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start wsgate: %v", err)
	}
	go func() {
		g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		g.stop()
		if out := g.log.String(); strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:") {
			t.Errorf("wsgate reported a data race or panic:\n%s", out)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", g.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return g
		}
		select {
		case <-g.done:
			t.Fatalf("wsgate exited before listening on %s\n--- config:\n%s\n--- output:\n%s", g.addr, numbered(text), g.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsgate not listening on %s after 15s\n--- output:\n%s", g.addr, g.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends wsgate with SIGTERM, then SIGKILL after 5 s.
func (g *gateway) stop() {
	select {
	case <-g.done:
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(5 * time.Second):
		g.cmd.Process.Kill()
		<-g.done
	}
}

// alive fails the test if wsgate has exited.
func (g *gateway) alive(t testing.TB) {
	t.Helper()
	select {
	case <-g.done:
		t.Fatalf("wsgate exited during the test; output:\n%s", g.log)
	default:
	}
}

// url returns scheme://LISTEN/path.
func (g *gateway) url(scheme, path string) string {
	return scheme + "://" + g.addr + path
}

// waitLog waits up to d for the error log to contain want.
func (g *gateway) waitLog(want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if strings.Contains(g.log.String(), want) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// numbered returns text with line numbers, for failure messages.
func numbered(text string) string {
	var b strings.Builder
	for i, l := range strings.Split(text, "\n") {
		b.WriteString(strconv.Itoa(i+1) + "\t" + l + "\n")
	}
	return b.String()
}

// runExit runs cmd and returns its combined output and exit code.
func runExit(t testing.TB, cmd *exec.Cmd) (string, int) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("%v: %v", cmd.Args, err)
		return "", -1
	}
}
