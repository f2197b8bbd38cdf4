package e2e

import (
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Promises of PRODUCT.md where wsgate deliberately goes beyond nginx; these
// run against wsgate only.

// wsgateOnly skips a wsgate-only test in E2E_PROXIES=nginx mode (which CI
// ignores).
func wsgateOnly(t *testing.T) {
	if kinds := proxyKinds(t); len(kinds) == 1 && kinds[0] == kindNginx {
		t.Skip("E2E_PROXIES=nginx (never under CI)")
	}
}

// TestWsgateUpgradeWithoutUpgradeLines: "An upgrade works whether or not the
// config carries the Upgrade/Connection lines." (nginx would not upgrade.)
func TestWsgateUpgradeWithoutUpgradeLines(t *testing.T) {
	wsgateOnly(t)
	up := newBackend(t, "up", wsEcho)
	listen := listenAddr(t)
	conf := render(t, `events {}
http {
  upstream up { server {{UP}}; }
  server {
    listen {{LISTEN}};
    location /ws/ { proxy_pass http://up; }
  }
}
`, map[string]string{"UP": up.Addr, "LISTEN": listen})
	p := startProxy(t, kindWsgate, conf, listen)
	ctx := testCtx(t)
	ws := dialWS(t, ctx, listen, "/ws/x", "")
	writeText(t, ctx, ws, "no upgrade lines")
	if got := readText(t, ctx, ws); got != "no upgrade lines" {
		t.Errorf("echo = %q", got)
	}
	wantRecord(t, "WebSocket /ws/x", up, record{URI: "/ws/x", Upgrade: "websocket"})
	ws.Close(websocket.StatusNormalClosure, "")
	p.alive(t)
}

// TestWsgateEmptyUpstream: "An upstream with no servers is valid config (the
// Dokku 'no listeners' case) and answers 502 with a clear page."
func TestWsgateEmptyUpstream(t *testing.T) {
	wsgateOnly(t)
	listen := listenAddr(t)
	conf := render(t, `events {}
http {
  upstream app-ws {
  }
  server {
    listen {{LISTEN}};
    location /echo {
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_pass http://app-ws;
    }
  }
}
`, map[string]string{"LISTEN": listen})
	dir := t.TempDir()
	path := filepath.Join(dir, "empty.conf")
	writeFile(t, path, conf)
	if out, code := runExit(t, exec.Command(needWsgate(t), "-t", "-c", path)); code != 0 {
		t.Errorf("wsgate -t with an empty upstream: exit %d\n%s", code, out)
	}
	p := startProxy(t, kindWsgate, conf, listen)
	r := mustDo(t, listen, rawRequest{Target: "/echo"})
	wantStatus(t, "GET /echo (no servers)", r, http.StatusBadGateway)
	r = mustDo(t, listen, rawRequest{Target: "/echo", WS: true})
	wantStatus(t, "WebSocket /echo (no servers)", r, http.StatusBadGateway)
	p.alive(t)
}

// TestWsgateSIGTERM: SIGTERM stops wsgate; an open WebSocket gets a Close
// frame (1001 Going Away or 1012 Service Restart), not a reset.
func TestWsgateSIGTERM(t *testing.T) {
	wsgateOnly(t)
	up := newBackend(t, "up", wsEcho)
	listen := listenAddr(t)
	conf := render(t, readTestdata(t, "seeds/004-nginx-ws.conf"), map[string]string{
		"LISTEN": listen, "WSBACKEND": up.Addr,
	})
	p := startProxy(t, kindWsgate, conf, listen)
	ctx := testCtx(t)
	ws := dialWS(t, ctx, listen, "/", "")
	writeText(t, ctx, ws, "before shutdown")
	readText(t, ctx, ws)

	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := ws.Read(ctx)
		readErr <- err
	}()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("wsgate still running 15s after SIGTERM; output:\n%s", p.logs())
	}
	t.Logf("wsgate exited %v after SIGTERM in %v", p.cmd.ProcessState, time.Since(start).Round(time.Millisecond))
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0; output:\n%s", code, p.logs())
	}
	select {
	case err := <-readErr:
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Errorf("open WebSocket on SIGTERM: %v, want a Close frame 1001 or 1012", err)
		} else if ce.Code != websocket.StatusGoingAway && ce.Code != websocket.StatusServiceRestart {
			t.Errorf("open WebSocket on SIGTERM: close code %d %q, want 1001 or 1012", ce.Code, ce.Reason)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("open WebSocket still open 5s after wsgate exited")
	}
	if out := p.logs(); strings.Contains(out, "panic") || strings.Contains(out, "DATA RACE") {
		t.Errorf("wsgate output on shutdown:\n%s", out)
	}
}
