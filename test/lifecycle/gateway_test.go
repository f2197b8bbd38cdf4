//go:build unix

package lifecycle

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gateway is one wsgate process under test, started from a config file in
// its own directory.
type gateway struct {
	t    testing.TB
	dir  string
	conf string // path of the config file
	cmd  *exec.Cmd
	pid  int

	exited   chan struct{} // closed when the process has been reaped
	exitCode int
	exitAt   time.Time
}

var placeholderRE = regexp.MustCompile(`\{\{[A-Z][A-Z0-9_]*\}\}`)

// render substitutes {{NAME}} placeholders; {{DIR}} is always the
// gateway's directory. A placeholder left over fails the test.
func render(t testing.TB, dir, text string, vars map[string]string) string {
	t.Helper()
	pairs := []string{"{{DIR}}", dir}
	for k, v := range vars {
		pairs = append(pairs, "{{"+k+"}}", v)
	}
	out := strings.NewReplacer(pairs...).Replace(text)
	if m := placeholderRE.FindString(out); m != "" {
		t.Fatalf("render: placeholder %s left in the config", m)
	}
	return out
}

// startGateway writes conf (rendered with vars) to DIR/wsgate.conf, runs
// wsgate -c on it and waits until every address in wait accepts.
func startGateway(t testing.TB, conf string, vars map[string]string, wait ...string) *gateway {
	t.Helper()
	bin := needWsgate(t)
	dir := t.TempDir()
	g := &gateway{t: t, dir: dir, conf: filepath.Join(dir, "wsgate.conf"), exited: make(chan struct{})}
	g.writeConfig(conf, vars)
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(bin, "-c", g.conf)
	g.cmd.Dir = dir
	g.cmd.Stdout = out
	g.cmd.Stderr = out
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start wsgate: %v", err)
	}
	out.Close()
	g.pid = g.cmd.Process.Pid
	go func() {
		err := g.cmd.Wait()
		g.exitAt = time.Now()
		g.exitCode = 0
		if err != nil {
			g.exitCode = -1
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				g.exitCode = ee.ExitCode()
			}
		}
		close(g.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			g.cmd.Process.Kill()
			<-g.exited
		}
		if t.Failed() {
			t.Logf("wsgate output:\n%s", tail(g.read("output.log"), 4000))
			t.Logf("wsgate error_log:\n%s", tail(g.read("error.log"), 4000))
		}
	})
	for _, a := range wait {
		g.waitAccepting(a, 10*time.Second)
	}
	return g
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// writeConfig renders conf into the gateway's config file.
func (g *gateway) writeConfig(conf string, vars map[string]string) {
	g.t.Helper()
	text := render(g.t, g.dir, conf, vars)
	// Write then rename, so a reload never reads half a file.
	tmp := g.conf + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		g.t.Fatal(err)
	}
	if err := os.Rename(tmp, g.conf); err != nil {
		g.t.Fatal(err)
	}
}

// read returns a file of the gateway's directory ("" if missing).
func (g *gateway) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(g.dir, name))
	return string(b)
}

// waitAccepting waits until addr accepts a TCP connection.
func (g *gateway) waitAccepting(addr string, d time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-g.exited:
			g.t.Fatalf("wsgate exited with %d before accepting on %s:\n%s", g.exitCode, addr, g.read("output.log"))
		default:
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("wsgate does not accept on %s after %v: %v", addr, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig to the process.
func (g *gateway) signal(sig syscall.Signal) {
	g.t.Helper()
	if err := syscall.Kill(g.pid, sig); err != nil {
		g.t.Fatalf("kill(%d, %v): %v", g.pid, sig, err)
	}
}

// ctl runs "wsgate -s name -c FILE", which finds the process through the
// pid file the config names.
func (g *gateway) ctl(name string) {
	g.t.Helper()
	out, err := exec.Command(needWsgate(g.t), "-s", name, "-c", g.conf).CombinedOutput()
	if err != nil {
		g.t.Fatalf("wsgate -s %s -c %s: %v\n%s", name, g.conf, err, out)
	}
}

// waitExit waits up to d for the process to exit and returns its exit code.
func (g *gateway) waitExit(d time.Duration) (code int, ok bool) {
	select {
	case <-g.exited:
		return g.exitCode, true
	case <-time.After(d):
		return 0, false
	}
}

// countErrorLog counts error_log lines containing s.
func (g *gateway) countErrorLog(s string) int {
	return strings.Count(g.read("error.log"), s)
}

// waitErrorLog waits until the error_log holds at least n lines with s.
func (g *gateway) waitErrorLog(s string, n int, d time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for g.countErrorLog(s) < n {
		if time.Now().After(deadline) {
			g.t.Fatalf("error_log does not show %q %d time(s) within %v:\n%s", s, n, d, tail(g.read("error.log"), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reload sends SIGHUP (or runs -s reload when viaCtl) and waits for the
// error_log to confirm the reload (n-th "reconfigured" line).
func (g *gateway) reload(viaCtl bool) {
	g.t.Helper()
	n := g.countErrorLog("reconfigured")
	if viaCtl {
		g.ctl("reload")
	} else {
		g.signal(syscall.SIGHUP)
	}
	g.waitErrorLog("reconfigured", n+1, 10*time.Second)
}

// fds returns the number of open file descriptors of the process.
func (g *gateway) fds() int {
	g.t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.pid))
	if err != nil {
		g.t.Fatalf("read /proc/%d/fd: %v", g.pid, err)
	}
	return len(es)
}

// status returns a numeric field of /proc/PID/status (Threads, VmRSS in kB).
func (g *gateway) status(field string) int {
	g.t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", g.pid))
	if err != nil {
		g.t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		n, err := strconv.Atoi(strings.Fields(v)[0])
		if err != nil {
			g.t.Fatalf("/proc/%d/status %s: %q", g.pid, field, v)
		}
		return n
	}
	g.t.Fatalf("/proc/%d/status has no %s", g.pid, field)
	return 0
}

// waitFDsAtMost waits up to d for the FD count to drop to max or below
// and returns the last count seen.
func (g *gateway) waitFDsAtMost(max int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := g.fds()
		if n <= max || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpClient is shared by the tests; every request has a timeout.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// get fetches url and returns the status and body.
func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// mustGet fetches url and fails unless it answers 200 with want.
func mustGet(t testing.TB, url, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, body, err := get(ctx, url)
	if err != nil || code != 200 || body != want {
		t.Fatalf("GET %s = %d %q, %v; want 200 %q", url, code, body, err, want)
	}
}
