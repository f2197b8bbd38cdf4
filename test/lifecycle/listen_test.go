//go:build unix

package lifecycle

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const listenConf = `
pid {{DIR}}/wsgate.pid;
error_log {{DIR}}/error.log;
http {
    access_log off;
    upstream ws_a { server 127.0.0.1:{{B}}; }
    server {
        listen 127.0.0.1:{{L1}};
        listen 127.0.0.1:{{L2}};
        location /ws/ { proxy_pass http://ws_a; }
        location = /gen { return 200 "{{GEN}}"; }
    }
}
`

// TestReloadListeners: a reload closes removed listeners, opens new ones,
// and a kept one accepts all along (a client loop on it sees no failure).
func TestReloadListeners(t *testing.T) {
	b := newBackend(t)
	kept, removed, added := itoa(freePort(t)), itoa(freePort(t)), itoa(freePort(t))
	g := startGateway(t, listenConf, map[string]string{"B": b.port(), "L1": kept, "L2": removed, "GEN": "1"},
		"127.0.0.1:"+kept, "127.0.0.1:"+removed)
	mustGet(t, "http://127.0.0.1:"+removed+"/gen", "1")
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+added, time.Second); err == nil {
		c.Close()
		t.Fatalf("127.0.0.1:%s accepts before it is configured", added)
	}
	ws, err := dialWS("ws://127.0.0.1:"+kept+"/ws/", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.close()

	var stop atomic.Bool
	var ok atomic.Int64
	var mu sync.Mutex
	var fails []string
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				// A fresh TCP connection per request: every one is a new
				// accept on the kept socket.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+kept)
				if err == nil {
					c.SetDeadline(time.Now().Add(5 * time.Second))
					_, err = fmt.Fprintf(c, "GET /gen HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
					if err == nil {
						buf := make([]byte, 64)
						var n int
						n, err = c.Read(buf)
						if err == nil && string(buf[:12]) != "HTTP/1.1 200" {
							err = fmt.Errorf("response %q", buf[:n])
						}
					}
					c.Close()
				}
				cancel()
				if err != nil {
					mu.Lock()
					fails = append(fails, err.Error())
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}

	time.Sleep(200 * time.Millisecond)
	g.writeConfig(listenConf, map[string]string{"B": b.port(), "L1": kept, "L2": added, "GEN": "2"})
	g.reload(false)
	mustGet(t, "http://127.0.0.1:"+added+"/gen", "2")
	mustGet(t, "http://127.0.0.1:"+kept+"/gen", "2")
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if len(fails) > 0 {
		t.Errorf("kept listener: %d connections failed around the reload (%d ok); first: %v", len(fails), ok.Load(), fails[:min(5, len(fails))])
	}
	t.Logf("kept listener answered %d fresh connections around the reload", ok.Load())

	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+removed, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("removed listener 127.0.0.1:%s still accepts 5s after the reload", removed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := ws.echo([]byte("kept"), 5*time.Second); err != nil {
		t.Errorf("WebSocket on the kept listener: %v", err)
	}
	ws2, err := dialWS("ws://127.0.0.1:"+added+"/ws/", 5*time.Second)
	if err != nil {
		t.Fatalf("WebSocket on the new listener: %v", err)
	}
	if err := ws2.echo([]byte("new"), 5*time.Second); err != nil {
		t.Error(err)
	}
	ws2.close()
}
