package lb

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sioServer is a Node Socket.IO server (test/node/lb/sio-server.js).
type sioServer struct {
	name string
	addr string
	out  *syncBuffer
}

// startSIOServer runs sio-server.js as name on a free port until the test
// ends.
func startSIOServer(t *testing.T, node, dir, name string) *sioServer {
	t.Helper()
	s := &sioServer{name: name, addr: freeAddr(t), out: &syncBuffer{}}
	_, port, _ := net.SplitHostPort(s.addr)
	cmd := exec.Command(node, filepath.Join("lb", "sio-server.js"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT="+port, "NAME="+name)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("node sio-server.js: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.out.String(), "listening") {
		select {
		case <-done:
			t.Fatalf("sio-server.js %s exited: %s", name, s.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sio-server.js %s not listening after 10s: %s", name, s.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// runSIOClient runs sio-client.js against url with extra environment
// settings and returns its output and whether it reported OK on the
// websocket transport after starting on polling.
func runSIOClient(t *testing.T, node, dir, url string, env ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(node, filepath.Join("lb", "sio-client.js"))
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PROXY_URL="+url, "TIMEOUT_MS=10000"), env...)
	out, err := cmd.CombinedOutput()
	ok := err == nil && strings.Contains(string(out), "OK first=polling transport=websocket ack=")
	return strings.TrimSpace(string(out)), ok
}

// ackServer returns the server name in "... ack=NAME got hi".
func ackServer(out string) string {
	_, after, ok := strings.Cut(out, "ack=")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(after, " ")
	return name
}

// TestSocketIOBehindLoadBalancer: two real Socket.IO servers (npm
// socket.io) behind wsgate, and a real socket.io-client in its default
// mode: long-polling first, then the upgrade. Every polling request of a
// session must reach the server that holds it, so this works only when
// the upstream is sticky; with ip_hash and with "sticky cookie" each
// client gets an acknowledged round trip and ends on the websocket
// transport, and the clients use both servers. Plain round robin is the
// control: it breaks sessions ("Session ID unknown"), which shows the
// test tells the difference.
func TestSocketIOBehindLoadBalancer(t *testing.T) {
	node, dir := needNode(t)
	s1, s2 := startSIOServer(t, node, dir, "io1"), startSIOServer(t, node, dir, "io2")
	conf := func(method string) string {
		return fmt.Sprintf(`
    upstream pool {
        %s
        server %s;
        server %s;
    }
    server {
        listen {{LISTEN}};
        location / {
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
        }
    }`, method, s1.addr, s2.addr)
	}
	cases := []struct {
		desc    string
		method  string
		clients int
		env     func(i int) []string
	}{
		{
			desc: "ip_hash", method: "ip_hash;", clients: 6,
			env: func(i int) []string { return []string{fmt.Sprintf("LOCAL_ADDRESS=127.0.%d.1", 10+i)} },
		},
		{
			desc: "sticky cookie", method: "sticky cookie srv_id path=/;", clients: 4,
			env: func(int) []string { return []string{"WITH_CREDENTIALS=1"} },
		},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			g := startGateway(t, conf(tc.method))
			// The clients run at once, as a browser's tabs would.
			outs := make([]string, tc.clients)
			oks := make([]bool, tc.clients)
			var wg sync.WaitGroup
			for i := range tc.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i], oks[i] = runSIOClient(t, node, dir, g.url("http", ""), tc.env(i)...)
				}()
			}
			wg.Wait()
			used := map[string]int{}
			for i, out := range outs {
				if !oks[i] {
					t.Errorf("socket.io client %d %v through wsgate (%s): %s", i, tc.env(i), tc.desc, out)
					continue
				}
				t.Logf("client %d %v: %s", i, tc.env(i), out)
				used[ackServer(out)]++
			}
			if len(used) < 2 && !t.Failed() {
				t.Errorf("every session went to %v; want both Socket.IO servers used", used)
			}
			if t.Failed() {
				t.Logf("wsgate log:\n%s\n--- io1:\n%s\n--- io2:\n%s", g.log, s1.out, s2.out)
			}
			g.alive(t)
		})
	}
	t.Run("round robin control", func(t *testing.T) {
		g := startGateway(t, conf(""))
		out, ok := runSIOClient(t, node, dir, g.url("http", ""))
		t.Logf("round robin: %s", out)
		if ok {
			t.Errorf("a Socket.IO session survived plain round robin over two servers; the sticky cases above prove nothing if this works")
		}
		g.alive(t)
	})
}
