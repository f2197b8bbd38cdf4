package e2e

import (
	"github.com/wsgate/wsgate/internal/testenv"

	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proxyKind names the program under test.
type proxyKind string

const (
	kindNginx  proxyKind = "nginx"
	kindWsgate proxyKind = "wsgate"
)

// proxyProc is a running nginx or wsgate subprocess. It is stopped by the
// test's cleanup.
type proxyProc struct {
	kind proxyKind
	conf string // path of the config file it runs
	dir  string // its working dir, the config's dir and nginx's prefix
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// syncBuffer is the shared harness's (internal/testenv).
type syncBuffer = testenv.SyncBuffer

// freePort is the shared harness's (internal/testenv).
func freePort(t testing.TB) int { return testenv.FreePort(t) }

// listenAddr returns "127.0.0.1:PORT" for a free port.
func listenAddr(t testing.TB) string {
	return "127.0.0.1:" + strconv.Itoa(freePort(t))
}

var placeholderRE = regexp.MustCompile(`\{\{[A-Z][A-Z0-9_]*\}\}`)

// render substitutes {{NAME}} placeholders. A placeholder left over is a bug
// in the test and fails it.
func render(t testing.TB, text string, vars map[string]string) string {
	t.Helper()
	for k, v := range vars {
		text = strings.ReplaceAll(text, "{{"+k+"}}", v)
	}
	if left := placeholderRE.FindAllString(text, -1); len(left) > 0 {
		t.Fatalf("config template: placeholders without a value: %v", left)
	}
	return text
}

// readTestdata returns a file under testdata/.
func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// normalizer maps the run-specific addresses in what a run observed back to
// their placeholder names, so that runs with different ports compare equal.
type normalizer struct{ pairs []string }

func newNormalizer(vars map[string]string) normalizer {
	type kv struct{ k, v string }
	var list []kv
	for k, v := range vars {
		if strings.HasPrefix(v, "127.0.0.1:") {
			list = append(list, kv{k, v})
		}
	}
	sort.Slice(list, func(i, j int) bool { return len(list[i].v) > len(list[j].v) })
	var n normalizer
	for _, e := range list {
		n.pairs = append(n.pairs, e.v, "{{"+e.k+"}}")
		// $host and Location with a host name keep the port only.
		port := strings.TrimPrefix(e.v, "127.0.0.1")
		n.pairs = append(n.pairs, "localhost"+port, "localhost{{"+e.k+"_PORT}}")
		n.pairs = append(n.pairs, "example.test"+port, "example.test{{"+e.k+"_PORT}}")
	}
	return n
}

func (n normalizer) apply(s string) string {
	if len(n.pairs) == 0 {
		return s
	}
	return strings.NewReplacer(n.pairs...).Replace(s)
}

// startProxy writes conf to a fresh directory and runs it under kind, then
// waits until every address in listens accepts connections. The process is
// stopped when the test ends; a process that dies early fails the test with
// its output.
func startProxy(t testing.TB, kind proxyKind, conf string, listens ...string) *proxyProc {
	t.Helper()
	dir := t.TempDir()
	p := &proxyProc{kind: kind, dir: dir, out: &syncBuffer{}, done: make(chan struct{})}
	switch kind {
	case kindNginx:
		bin := needNginx(t)
		p.conf = filepath.Join(dir, "nginx.conf")
		writeFile(t, p.conf, conf)
		// Runtime paths go into the test's dir; the config stays the one
		// wsgate runs. user root lets workers read files in 0700 temp dirs.
		global := fmt.Sprintf("daemon off; master_process on; worker_processes 1; user root; pid %s; error_log %s info;",
			filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"))
		p.cmd = exec.Command(bin, "-p", dir+"/", "-c", p.conf, "-g", global)
	case kindWsgate:
		bin := needWsgate(t)
		p.conf = filepath.Join(dir, "wsgate.conf")
		writeFile(t, p.conf, conf)
		p.cmd = exec.Command(bin, "-c", p.conf)
	default:
		t.Fatalf("unknown proxy kind %q", kind)
	}
	p.cmd.Dir = dir
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", kind, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if out := p.out.String(); strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:") {
			t.Errorf("%s reported a data race or panic:\n%s", kind, out)
		}
	})

	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range listens {
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.done:
				t.Fatalf("%s exited before listening on %s (%v)\n--- config %s:\n%s\n--- output:\n%s",
					kind, addr, p.cmd.ProcessState, p.conf, numbered(conf), p.logs())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is not accepting on %s after 15s\n--- config %s:\n%s\n--- output:\n%s",
					kind, addr, p.conf, numbered(conf), p.logs())
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	return p
}

// logs returns what the process printed (and nginx's error log).
func (p *proxyProc) logs() string {
	s := p.out.String()
	if p.kind == kindNginx {
		if b, err := os.ReadFile(filepath.Join(p.dir, "error.log")); err == nil {
			s += string(b)
		}
	}
	return s
}

// stop sends SIGTERM (nginx's and wsgate's fast shutdown) and waits up to
// ten seconds before killing the process.
func (p *proxyProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// alive fails the test if the proxy has exited.
func (p *proxyProc) alive(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited (%v); output:\n%s", p.kind, p.cmd.ProcessState, p.logs())
	default:
	}
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// numbered returns text with line numbers, for failure messages about configs.
func numbered(text string) string {
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}
