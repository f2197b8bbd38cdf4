package main

import (
	"github.com/wsgate/wsgate/internal/testenv"

	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/config"
)

// TestExamplesLoad: every shipped example is a valid configuration.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.conf")
	if err != nil || len(files) < 5 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := config.Load(f, config.Options{}); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestConfigTestCommand: -t says success in nginx's words, or prints every
// error as FILE:LINE: message and exits 1; ignored directives are listed.
func TestConfigTestCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, []byte("events {}\nhttp { sendfile on; server { listen 127.0.0.1:1; location / { return 200; } } }\n"), 0o644)
	code, _, errs := runCLI("-t", "-c", good)
	if code != 0 || !strings.Contains(errs, "configuration file "+good+" test is successful") {
		t.Errorf("good config: exit %d, %q", code, errs)
	}
	if !strings.Contains(errs, `"sendfile" is accepted and ignored`) {
		t.Errorf("ignored directive not listed: %q", errs)
	}
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("http {\n  server {\n    proxy_pas http://x;\n    location / { proxy_cache one; }\n  }\n}\n"), 0o644)
	code, _, errs = runCLI("-t", "-c", bad)
	if code != 1 {
		t.Errorf("bad config: exit %d", code)
	}
	for _, want := range []string{bad + `:3: unknown directive "proxy_pas"`, bad + `:4: directive "proxy_cache" is a real nginx directive that wsgate does not implement`} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
	if code, _, errs := runCLI("-t", "-c", filepath.Join(dir, "missing.conf")); code != 1 || !strings.Contains(errs, "missing.conf") {
		t.Errorf("missing file: exit %d %q", code, errs)
	}
}

// TestExplain: explain names the location and the exact upstream request,
// including nginx's trailing-slash URI replacement.
func TestExplain(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "x.conf")
	os.WriteFile(f, []byte(`
upstream api { server 127.0.0.1:9; }
server {
  listen 127.0.0.1:8080;
  location /api/ { proxy_pass http://api/v2/; proxy_set_header X-Real-IP $remote_addr; }
  location /ws/ { proxy_pass http://api; }
}
`), 0o644)
	code, out, errs := runCLI("explain", "-c", f, "/api/users?id=7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"location:  " + f + ":5  /api/", "upstream:  api (round robin, 1 server(s)) -> 127.0.0.1:9", "GET /v2/users?id=7 HTTP/1.1", "X-Real-Ip: 127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	code, out, _ = runCLI("explain", "-c", f, "-ws", "/ws/chat")
	if code != 0 || !strings.Contains(out, "GET /ws/chat HTTP/1.1") || !strings.Contains(out, "Upgrade: websocket") {
		t.Errorf("websocket explain: %d\n%s", code, out)
	}
	code, out, _ = runCLI("explain", "-c", f, "/ws")
	if code != 0 || !strings.Contains(out, "301 to /ws/") {
		t.Errorf("auto-redirect explain: %d\n%s", code, out)
	}
}

// TestDemo: the README's first command serves the page, the API and the
// WebSocket echo, and stops on SIGTERM.
func TestDemo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wsgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "demo", "-listen", addr)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo did not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for path, want := range map[string]string{"/": "wsgate demo", "/some/deep/link": "wsgate demo", "/api/hello": "GET /api/hello"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(ctx, websocket.MessageText, []byte("Hello"))
	_, msg, err := c.Read(ctx)
	if err != nil || !strings.HasSuffix(string(msg), ": Hello") {
		t.Errorf("echo: %q %v", msg, err)
	}
	if !strings.Contains(out.String(), "ws://"+addr+"/ws/echo") {
		t.Errorf("demo did not print the WebSocket URL:\n%s", out.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	// the proxy closes the WebSocket with 1001 on SIGTERM
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("after SIGTERM: %v, want close 1001", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo exit: %v\n%s", err, out.String())
		}
	case <-time.After(3 * time.Second):
		t.Errorf("demo did not exit within 3 s of SIGTERM")
	}
}

// syncBuffer is the shared harness's (internal/testenv).
type syncBuffer = testenv.SyncBuffer

// TestPrefix: relative include paths resolve against the config file's
// folder, or against -p PREFIX when given (as nginx).
func TestPrefix(t *testing.T) {
	conf, prefix := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(prefix, "conf.d"), 0o755)
	os.WriteFile(filepath.Join(prefix, "conf.d", "a.conf"), []byte("server { listen 127.0.0.1:1; return 200; }\n"), 0o644)
	f := filepath.Join(conf, "main.conf")
	os.WriteFile(f, []byte("events {}\nhttp { include conf.d/*.conf; }\n"), 0o644)
	// without -p the glob (relative to the file's folder) matches nothing:
	// a valid config with no server
	if code, _, errs := runCLI("-t", "-c", f); code != 0 {
		t.Fatalf("without -p: exit %d %s", code, errs)
	}
	os.WriteFile(filepath.Join(prefix, "conf.d", "b.conf"), []byte("server { listen 127.0.0.1:1; bogus_directive; }\n"), 0o644)
	code, _, errs := runCLI("-t", "-p", prefix, "-c", f)
	if code != 1 || !strings.Contains(errs, filepath.Join(prefix, "conf.d", "b.conf")+`:1: unknown directive "bogus_directive"`) {
		t.Errorf("with -p, the include under the prefix must be read: exit %d\n%s", code, errs)
	}
}
