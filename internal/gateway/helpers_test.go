package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	"github.com/wsgate/wsgate/internal/testenv"
)

// proxyUnderTest is a running gateway on 127.0.0.1.
type proxyUnderTest struct {
	addr   string // 127.0.0.1:port
	prefix string // config prefix (a temp dir)
	g      *gateway.Gateway
	elog   *testenv.SyncBuffer // the gateway's error log
}

// reservePort returns a free 127.0.0.1 port (the gateway refuses port 0).
func reservePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// compile parses and compiles conf as the file prefix/wsgate.conf.
func compile(t *testing.T, prefix, conf string) *config.Config {
	t.Helper()
	name := filepath.Join(prefix, "wsgate.conf")
	tree, err := config.ParseBytes(name, []byte(conf), prefix)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, conf)
	}
	cfg, err := config.Compile(name, prefix, tree, config.Options{Prefix: prefix, SkipResolve: true})
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, conf)
	}
	return cfg
}

// startProxy runs a gateway for an http-level config body. "{{LISTEN}}" is
// replaced by the reserved address and "{{PREFIX}}" by the config prefix.
// Access logs default to off unless the body sets access_log. The gateway
// stops when the test ends.
func startProxy(t *testing.T, body string) *proxyUnderTest {
	t.Helper()
	prefix := t.TempDir()
	return startProxyIn(t, prefix, body)
}

func startProxyIn(t *testing.T, prefix, body string) *proxyUnderTest {
	t.Helper()
	var lastErr error
	for try := 0; try < 5; try++ {
		addr := reservePort(t)
		r := strings.NewReplacer("{{LISTEN}}", addr, "{{PREFIX}}", prefix)
		conf := "events {}\nhttp {\n"
		if !strings.Contains(body, "access_log") {
			conf += "access_log off;\n"
		}
		conf += r.Replace(body) + "\n}\n"
		cfg := compile(t, prefix, conf)
		elog := &testenv.SyncBuffer{}
		g := gateway.New(log.New(elog, "", 0))
		if err := g.Start(cfg); err != nil {
			lastErr = err
			if errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			t.Fatalf("start: %v", err)
		}
		p := &proxyUnderTest{addr: addr, prefix: prefix, g: g, elog: elog}
		t.Cleanup(g.Stop)
		return p
	}
	t.Fatalf("start: %v", lastErr)
	return nil
}

func (p *proxyUnderTest) url(path string) string { return "http://" + p.addr + path }

// record is what a recording backend saw.
type record struct {
	Method     string
	RequestURI string
	Host       string
	Header     http.Header
	Body       string
}

// recorder is an httptest backend that records every request and answers
// 200 with the body "name".
type recorder struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	recs []record
	// handle, when set, answers instead of the default.
	handle http.HandlerFunc
}

func newRecorder(t *testing.T, name string) *recorder {
	t.Helper()
	rc := &recorder{name: name}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.recs = append(rc.recs, record{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Body: string(b)})
		h := rc.handle
		rc.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, rc.name)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *recorder) addr() string { return rc.srv.Listener.Addr().String() }

func (rc *recorder) records() []record {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]record(nil), rc.recs...)
}

func (rc *recorder) last(t *testing.T) record {
	t.Helper()
	rs := rc.records()
	if len(rs) == 0 {
		t.Fatalf("backend %s got no request", rc.name)
	}
	return rs[len(rs)-1]
}

// rawResponse is a response read off a raw connection.
type rawResponse struct {
	status int
	header http.Header
	body   string
}

// rawDo writes req (a full HTTP/1.x request, "\r\n" line ends) to addr and
// reads one response. It does not touch the request target, so the test
// controls exactly what reaches the proxy.
func rawDo(t *testing.T, addr, req string) rawResponse {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	method := strings.SplitN(req, " ", 2)[0]
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response to %q: %v", firstLine(req), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// rawGet sends "GET target HTTP/1.1" with Host host (and extra header
// lines, each "Name: value").
func rawGet(t *testing.T, addr, target, host string, extra ...string) rawResponse {
	t.Helper()
	return rawDo(t, addr, rawRequest("GET", target, host, extra...))
}

func rawRequest(method, target, host string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return b.String()
}

func firstLine(s string) string {
	if i := strings.Index(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// testCtx is a context bounded by the test's deadline or 20 seconds.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// writeFile creates dir/name with content (directories made as needed).
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// noRedirect is an http.Client that reports redirects instead of
// following them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableKeepAlives: true},
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
