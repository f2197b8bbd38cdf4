package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// seedConfigs renders every seed config with placeholder addresses (nothing
// needs to listen for a config test).
func seedConfigs(t *testing.T) map[string]string {
	vars := map[string]string{
		"LISTEN": "127.0.0.1:18080", "PUSH_SERVICE": "127.0.0.1:18081", "ROOT": seedRoot(t),
		"APIREST1": "127.0.0.1:18082", "APICOMMON_8001": "127.0.0.1:18083", "APICOMMON": "127.0.0.1:18084",
		"FRONTEND_URL": "127.0.0.1:18085", "WEB": "127.0.0.1:18086",
		"APPSERVER_IP": "127.0.0.1", "PORT": "18087", "WSBACKEND": "127.0.0.1:18088",
	}
	dokku := strings.ReplaceAll(readTestdata(t, "seeds/002-dokku.conf"), "{{ $.APP }}", "websocket-example")
	return map[string]string{
		"000-ember.conf":           render(t, readTestdata(t, "seeds/000-ember.conf"), vars),
		"001-rest-ws.conf":         render(t, readTestdata(t, "seeds/001-rest-ws.conf"), vars),
		"002-dokku-noworkers.conf": render(t, dokku, merge(vars, "WS_SERVERS", "  server 127.0.0.1:65535; # force a 502")),
		"002-dokku.conf":           render(t, dokku, merge(vars, "WS_SERVERS", "  server 127.0.0.1:18089;")),
		"003-chat.conf":            render(t, readTestdata(t, "seeds/003-chat.conf"), vars),
		"004-nginx-ws.conf":        render(t, readTestdata(t, "seeds/004-nginx-ws.conf"), vars),
	}
}

func merge(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range m {
		if kk != k {
			out[kk] = vv
		}
	}
	return out
}

// runExit runs cmd and returns its combined output and exit code.
func runExit(t *testing.T, cmd *exec.Cmd) (string, int) {
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

// TestConfigTestSeeds: `-t -c FILE` accepts every seed config, under nginx
// and wsgate, with nginx's success line.
func TestConfigTestSeeds(t *testing.T) {
	confs := seedConfigs(t)
	forEachProxy(t, func(t *testing.T, kind proxyKind) {
		for name, text := range confs {
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, name)
				writeFile(t, path, text)
				var cmd *exec.Cmd
				if kind == kindNginx {
					cmd = exec.Command(needNginx(t), "-t", "-p", dir+"/", "-c", path,
						"-g", "pid "+filepath.Join(dir, "nginx.pid")+"; error_log "+filepath.Join(dir, "error.log")+";")
				} else {
					cmd = exec.Command(needWsgate(t), "-t", "-c", path)
				}
				out, code := runExit(t, cmd)
				want := "configuration file " + path + " test is successful"
				if code != 0 || !strings.Contains(out, want) {
					t.Errorf("%s -t -c %s: exit %d, output:\n%s\nwant exit 0 and %q\n--- config:\n%s",
						kind, name, code, out, want, numbered(text))
				}
			})
		}
	})
}

var nginxErrLineRE = regexp.MustCompile(` in (\S+):(\d+)`)

// TestConfigTestSeed001Verbatim: seed 001's configuration as published
// misses a ";" and nginx -t rejects it; wsgate -t must reject it too, as
// `FILE:LINE: message` at the line nginx names, and exit 1.
func TestConfigTestSeed001Verbatim(t *testing.T) {
	text := render(t, readTestdata(t, "seeds/001-verbatim.conf"), map[string]string{
		"LISTEN": "127.0.0.1:18080", "APIREST1": "127.0.0.1:18082", "APICOMMON_8001": "127.0.0.1:18083",
		"FRONTEND_URL": "127.0.0.1:18085",
	})
	dir := t.TempDir()
	path := filepath.Join(dir, "verbatim.conf")
	writeFile(t, path, text)

	out, code := runExit(t, exec.Command(needNginx(t), "-t", "-p", dir+"/", "-c", path,
		"-g", "pid "+filepath.Join(dir, "nginx.pid")+"; error_log "+filepath.Join(dir, "error.log")+";"))
	m := nginxErrLineRE.FindStringSubmatch(out)
	if code != 1 || m == nil {
		t.Fatalf("nginx -t: exit %d, output:\n%s\nwant exit 1 naming the file and line", code, out)
	}
	nginxLine := m[2]
	t.Logf("nginx -t: %s", strings.TrimSpace(out))

	kinds := proxyKinds(t)
	if len(kinds) == 1 && kinds[0] == kindNginx {
		return
	}
	out, code = runExit(t, exec.Command(needWsgate(t), "-t", "-c", path))
	want := path + ":" + nginxLine + ":"
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("wsgate -t: exit %d, output:\n%s\nwant exit 1 and a line starting %q (nginx: %s)\n--- config:\n%s",
			code, out, want, strings.TrimSpace(m[0]), numbered(text))
	}
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
		t.Errorf("wsgate -t printed a Go stack trace:\n%s", out)
	}
}

// TestVersionFlag: `wsgate -v` prints a version and exits 0.
func TestVersionFlag(t *testing.T) {
	wsgateOnly(t)
	out, code := runExit(t, exec.Command(needWsgate(t), "-v"))
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("wsgate -v: exit %d, output %q; want exit 0 and a version", code, out)
	}
}

// badConfigs are configs nginx -t rejects; wsgate -t must reject each at the
// line nginx names.
var badConfigs = []struct{ desc, server string }{
	{"regex location with a URI in proxy_pass", "location ~ ^/x/ {\n  proxy_pass http://up/;\n}"},
	{"misspelt directive", "location / {\n  proxy_pas http://up;\n}"},
	{"proxy_pass in server context", "proxy_pass http://up;"},
	{"duplicate location", "location /a/ { proxy_pass http://up; }\nlocation /a/ { proxy_pass http://up; }"},
	{"invalid port", "listen 99999;"},
	{"proxy_http_version with a bad value", "location / {\n  proxy_http_version 2.0;\n  proxy_pass http://up;\n}"},
	{"missing semicolon before }", "location / {\n  proxy_pass http://up\n}"},
	{"unclosed block", "location / {\n  proxy_pass http://up;\n"},
}

func TestConfigTestRejects(t *testing.T) {
	nginx := needNginx(t)
	for _, c := range badConfigs {
		t.Run(c.desc, func(t *testing.T) {
			text := "events {}\nhttp {\n  upstream up { server 127.0.0.1:18090; }\n  server {\n    listen 127.0.0.1:18091;\n" +
				c.server + "\n  }\n}\n"
			dir := t.TempDir()
			path := filepath.Join(dir, "bad.conf")
			writeFile(t, path, text)
			out, code := runExit(t, exec.Command(nginx, "-t", "-p", dir+"/", "-c", path,
				"-g", "pid "+filepath.Join(dir, "nginx.pid")+"; error_log "+filepath.Join(dir, "error.log")+";"))
			m := nginxErrLineRE.FindStringSubmatch(out)
			if code != 1 || m == nil {
				t.Fatalf("nginx -t: exit %d, want 1 naming a line; output:\n%s\n--- config:\n%s", code, out, numbered(text))
			}
			kinds := proxyKinds(t)
			if len(kinds) == 1 && kinds[0] == kindNginx {
				return
			}
			wout, wcode := runExit(t, exec.Command(needWsgate(t), "-t", "-c", path))
			want := path + ":" + m[2] + ":"
			if wcode != 1 || !strings.Contains(wout, want) {
				t.Errorf("wsgate -t: exit %d, output:\n%s\nwant exit 1 and a line starting %q\nnginx said: %s\n--- config:\n%s",
					wcode, wout, want, strings.TrimSpace(out), numbered(text))
			}
		})
	}
}
