package e2e

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ansiRE matches terminal escape sequences wscat writes to a tty.
var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// startNodeServer runs test/node/server.js (seed 004's ws server) on port.
func startNodeServer(t *testing.T, node, dir string, port int) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(node, "server.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "HOST=127.0.0.1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("node server.js: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("node server.js exited: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node server.js not listening on %s after 10s: %s", addr, out)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "Server started") {
		time.Sleep(100 * time.Millisecond)
	}
	return out
}

// runWscat runs `wscat --connect URL` in a pseudo-terminal (util-linux
// script), as a person would at a shell, types line once it has connected,
// and returns the screen text (escape sequences removed) once want appears,
// or fails after a timeout.
func runWscat(t *testing.T, dir, url, line, want string) string {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script (util-linux, Debian package bsdutils) not found: %s", depsHint)
	}
	wscat := filepath.Join(dir, "node_modules", ".bin", "wscat")
	cmd := exec.Command(script, "-qfec", wscat+" --connect "+url, "/dev/null")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TERM=dumb")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("wscat: %v", err)
	}
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()

	screen := &syncBuffer{}
	found := make(chan struct{})
	connected := make(chan struct{})
	go func() {
		r := bufio.NewReader(stdout)
		buf := make([]byte, 4096)
		var sawConn, sawWant bool
		for {
			n, err := r.Read(buf)
			screen.Write(buf[:n])
			text := ansiRE.ReplaceAllString(screen.String(), "")
			if !sawConn && strings.Contains(text, "Connected") {
				sawConn = true
				close(connected)
			}
			if !sawWant && screenHasLine(text, want) {
				sawWant = true
				close(found)
			}
			if err != nil {
				if err != io.EOF {
					screen.Write([]byte("\n[read error: " + err.Error() + "]"))
				}
				return
			}
		}
	}()

	timeout := time.After(15 * time.Second)
	select {
	case <-connected:
	case <-timeout:
		t.Fatalf("wscat --connect %s did not print Connected within 15s; screen:\n%s", url, clean(screen.String()))
	}
	time.Sleep(300 * time.Millisecond) // type like a person: after the prompt shows
	if _, err := io.WriteString(stdin, line+"\r"); err != nil {
		t.Fatalf("typing into wscat: %v", err)
	}
	select {
	case <-found:
	case <-timeout:
		t.Fatalf("wscat did not print %q within 15s; screen:\n%s", want, clean(screen.String()))
	}
	return clean(screen.String())
}

func clean(s string) string {
	return strings.ReplaceAll(ansiRE.ReplaceAllString(s, ""), "\r", "")
}

// screenHasLine reports whether a line of the screen text, after prompt
// redraws, is want.
func screenHasLine(text, want string) bool {
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

// TestSeed004NodeWscat is seed 004's walkthrough with its real peers: the
// document's server.js on npm's ws, the document's nginx config in front of
// it, and npm's wscat typing Hello through the proxy.
func TestSeed004NodeWscat(t *testing.T) {
	node, dir := needNode(t)
	forEachProxy(t, func(t *testing.T, kind proxyKind) {
		port := freePort(t)
		serverOut := startNodeServer(t, node, dir, port)
		listen := listenAddr(t)
		conf := render(t, readTestdata(t, "seeds/004-nginx-ws.conf"), map[string]string{
			"LISTEN": listen, "WSBACKEND": "127.0.0.1:" + strconv.Itoa(port),
		})
		p := startProxy(t, kind, conf, listen)

		want := "< Server received from client: Hello"
		screen := runWscat(t, dir, "ws://"+listen, "Hello", want)
		t.Logf("wscat screen:\n%s", screen)

		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(serverOut.String(), "Received from client: Hello") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(serverOut.String(), "Received from client: Hello") {
			t.Errorf("server.js did not log the message; its output:\n%s", serverOut)
		}
		p.alive(t)
	})
}

// TestSocketIOThroughSeed004: a Socket.IO client (long-polling, then the
// upgrade to WebSocket) through seed 004's config to a Socket.IO server.
func TestSocketIOThroughSeed004(t *testing.T) {
	node, dir := needNode(t)
	forEachProxy(t, func(t *testing.T, kind proxyKind) {
		port := freePort(t)
		listen := listenAddr(t)
		conf := render(t, readTestdata(t, "seeds/004-nginx-ws.conf"), map[string]string{
			"LISTEN": listen, "WSBACKEND": "127.0.0.1:" + strconv.Itoa(port),
		})
		p := startProxy(t, kind, conf, listen)
		cmd := exec.Command(node, "socketio-check.js")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "BACKEND_PORT="+strconv.Itoa(port), "PROXY_URL=http://"+listen, "TIMEOUT_MS=10000")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK transport=websocket echo=server got hi") {
			t.Errorf("socket.io through %s: %v\n%s", kind, err, out)
		}
		p.alive(t)
	})
}
