package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The seed tests run each seed document's nginx config, as written, under
// nginx and under wsgate, and check what the document promises its reader.
// The nginx subtest proves each expectation is nginx's behaviour.

// forEachProxy runs fn as a subtest per proxy kind.
func forEachProxy(t *testing.T, fn func(t *testing.T, kind proxyKind)) {
	for _, kind := range proxyKinds(t) {
		t.Run(string(kind), func(t *testing.T) { fn(t, kind) })
	}
}

func wantStatus(t *testing.T, what string, got response, want int) {
	t.Helper()
	if got.Status != want {
		t.Errorf("%s: status %d, want %d; body:\n%s", what, got.Status, want, got.Body)
	}
}

func wantField(t *testing.T, what, field, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: backend saw %s %q, want %q", what, field, got, want)
	}
}

// wantRecord checks the last request a backend saw.
func wantRecord(t *testing.T, what string, b *backend, want record) {
	t.Helper()
	got := b.last()
	if got == nil {
		t.Errorf("%s: backend %s received no request", what, b.name)
		return
	}
	if want.Method != "" {
		wantField(t, what, "method", got.Method, want.Method)
	}
	if want.URI != "" {
		wantField(t, what, "URI", got.URI, want.URI)
	}
	if want.Host != "" {
		wantField(t, what, "Host", got.Host, want.Host)
	}
	if want.XFF != "" {
		wantField(t, what, "X-Forwarded-For", got.XFF, want.XFF)
	}
	if want.XRealIP != "" {
		wantField(t, what, "X-Real-IP", got.XRealIP, want.XRealIP)
	}
	if want.Upgrade != "" {
		wantField(t, what, "Upgrade", got.Upgrade, want.Upgrade)
	}
	if want.Connection != "" {
		wantField(t, what, "Connection", strings.ToLower(got.Connection), strings.ToLower(want.Connection))
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func seedRoot(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("testdata", "seeds", "000-dist"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSeed000EmberPushService: nginx serves the built Ember app from root
// with SPA deep links, and /push-service is a WebSocket to a push service
// that sends JSON as soon as the socket opens.
func TestSeed000EmberPushService(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind proxyKind) {
		push := newBackend(t, "push-service", wsPush)
		listen := listenAddr(t)
		conf := render(t, readTestdata(t, "seeds/000-ember.conf"), map[string]string{
			"LISTEN": listen, "PUSH_SERVICE": push.Addr, "ROOT": seedRoot(t),
		})
		p := startProxy(t, kind, conf, listen)

		for _, c := range []struct {
			target, want string
		}{
			{"/", "ember-index"},
			{"/index.html", "ember-index"},
			{"/tasks/42/edit", "ember-index"}, // deep link: try_files falls back to /index.html
			{"/tasks?filter=open", "ember-index"},
			{"/assets/app.js", "ember-app-js"},
			{"/assets/missing.js", "ember-index"},
			{"/posts/", "static posts index"}, // $uri/ then index
		} {
			r := mustDo(t, listen, rawRequest{Target: c.target})
			wantStatus(t, "GET "+c.target, r, http.StatusOK)
			if !strings.Contains(r.Body, c.want) {
				t.Errorf("GET %s: body %q does not contain %q", c.target, r.Body, c.want)
			}
		}
		if n := len(push.all()); n != 0 {
			t.Errorf("static requests reached the push service: %v", push.all())
		}

		ctx := testCtx(t)
		ws := dialWS(t, ctx, listen, "/push-service/", "")
		msg := readText(t, ctx, ws)
		if msg != pushJSON || !jsonValid(msg) {
			t.Errorf("pushed message = %q, want the push service's JSON %q", msg, pushJSON)
		}
		writeText(t, ctx, ws, `{"ack":1}`)
		if got := readText(t, ctx, ws); got != `{"ack":1}` {
			t.Errorf("echo after push = %q", got)
		}
		wantRecord(t, "WebSocket /push-service/", push, record{
			Method: "GET", URI: "/push-service/", Host: listen, XFF: "127.0.0.1",
			Upgrade: "websocket", Connection: "upgrade",
		})
		ws.Close(1000, "")
		p.alive(t)
	})
}

// TestSeed001RestAndWebSocket: two REST upstreams under /apiv1/ and /apiv2/,
// a WebSocket under /ws/ and the front end proxied at /.
func TestSeed001RestAndWebSocket(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind proxyKind) {
		rest1 := newBackend(t, "apirest1", wsEcho)
		rest2 := newBackend(t, "apicommon:8001", wsEcho)
		wsb := newBackend(t, "apicommon", wsEcho)
		front := newBackend(t, "frontend", wsEcho)
		listen := listenAddr(t)
		conf := render(t, readTestdata(t, "seeds/001-rest-ws.conf"), map[string]string{
			"LISTEN": listen, "APIREST1": rest1.Addr, "APICOMMON_8001": rest2.Addr,
			"APICOMMON": wsb.Addr, "FRONTEND_URL": front.Addr,
		})
		p := startProxy(t, kind, conf, listen)
		port := strings.TrimPrefix(listen, "127.0.0.1")

		r := mustDo(t, listen, rawRequest{Target: "/apiv1/users?page=2", Host: "localhost" + port})
		wantStatus(t, "GET /apiv1/users?page=2", r, 200)
		wantRecord(t, "GET /apiv1/users?page=2", rest1, record{
			Method: "GET", URI: "/apiv1/users?page=2", Host: "localhost", XFF: "127.0.0.1",
		})

		r = mustDo(t, listen, rawRequest{Method: "POST", Target: "/apiv2/items", Host: "localhost" + port,
			Body: `{"name":"x"}`, Header: [][2]string{{"X-Forwarded-For", "203.0.113.9"}}})
		wantStatus(t, "POST /apiv2/items", r, 200)
		wantRecord(t, "POST /apiv2/items", rest2, record{
			Method: "POST", URI: "/apiv2/items", Host: "localhost", XFF: "203.0.113.9, 127.0.0.1",
		})
		if got := rest2.last(); got != nil && got.Body != `{"name":"x"}` {
			t.Errorf("POST /apiv2/items: backend got body %q", got.Body)
		}

		r = mustDo(t, listen, rawRequest{Target: "/dashboard/settings", Host: "localhost" + port})
		wantStatus(t, "GET /dashboard/settings", r, 200)
		// No Host directive in location /: nginx sends $proxy_host.
		wantRecord(t, "GET /dashboard/settings", front, record{
			Method: "GET", URI: "/dashboard/settings", Host: front.Addr, XFF: absent,
		})

		ctx := testCtx(t)
		ws := dialWS(t, ctx, listen, "/ws/chat?room=1", "localhost"+port)
		writeText(t, ctx, ws, "hello over /ws/")
		if got := readText(t, ctx, ws); got != "hello over /ws/" {
			t.Errorf("echo through /ws/ = %q", got)
		}
		wantRecord(t, "WebSocket /ws/chat?room=1", wsb, record{
			Method: "GET", URI: "/ws/chat?room=1", Host: "localhost", Upgrade: "websocket", Connection: "upgrade",
		})
		ws.Close(1000, "")
		for _, b := range []*backend{rest1, rest2, front} {
			for _, rec := range b.all() {
				if strings.HasPrefix(rec.URI, "/ws/") {
					t.Errorf("/ws/ request reached %s: %+v", b.name, rec)
				}
			}
		}
		p.alive(t)
	})
}

func render002(t *testing.T, listen, web, wsServers string) string {
	text := strings.ReplaceAll(readTestdata(t, "seeds/002-dokku.conf"), "{{ $.APP }}", "websocket-example")
	return render(t, text, map[string]string{"LISTEN": listen, "WEB": web, "WS_SERVERS": wsServers})
}

// TestSeed002DokkuNoListeners: the rendered template with no ws process
// points the upstream at 127.0.0.1:65535 "to force a 502".
func TestSeed002DokkuNoListeners(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind proxyKind) {
		web := newBackend(t, "web", wsEcho)
		listen := listenAddr(t)
		conf := render002(t, listen, web.Addr, "  server 127.0.0.1:65535; # force a 502")
		p := startProxy(t, kind, conf, listen)

		wantStatus(t, "GET /echo", mustDo(t, listen, rawRequest{Target: "/echo"}), http.StatusBadGateway)
		wantStatus(t, "WebSocket handshake /echo", mustDo(t, listen, rawRequest{Target: "/echo", WS: true}), http.StatusBadGateway)
		r := mustDo(t, listen, rawRequest{Target: "/"})
		wantStatus(t, "GET / (web process)", r, http.StatusOK)
		wantRecord(t, "GET /", web, record{URI: "/"})
		p.alive(t)
	})
}

// TestSeed002DokkuEcho: with a ws listener the WebSocket echo works and the
// ws process sees /echo (proxy_pass without a URI keeps the path).
func TestSeed002DokkuEcho(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind proxyKind) {
		web := newBackend(t, "web", wsEcho)
		wsp := newBackend(t, "ws", wsEcho)
		listen := listenAddr(t)
		conf := render002(t, listen, web.Addr, "  server "+wsp.Addr+";")
		p := startProxy(t, kind, conf, listen)

		ctx := testCtx(t)
		ws := dialWS(t, ctx, listen, "/echo", "")
		for _, m := range []string{"ping", "hello dokku", strings.Repeat("x", 70000)} {
			writeText(t, ctx, ws, m)
			if got := readText(t, ctx, ws); got != m {
				t.Errorf("echo of %d bytes came back as %d bytes", len(m), len(got))
			}
		}
		wantRecord(t, "WebSocket /echo", wsp, record{
			Method: "GET", URI: "/echo", Host: "127.0.0.1", XFF: "127.0.0.1", XRealIP: "127.0.0.1",
			Upgrade: "websocket", Connection: "upgrade",
		})
		ws.Close(1000, "")
		if n := len(web.all()); n != 0 {
			t.Errorf("/echo reached the web process: %v", web.all())
		}
		p.alive(t)
	})
}

// TestSeed003Chat: two chat clients through /ws/ see each other's messages.
func TestSeed003Chat(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind proxyKind) {
		chat := newBackend(t, "chat", wsChat)
		listen := listenAddr(t)
		host, port, _ := strings.Cut(chat.Addr, ":")
		conf := render(t, readTestdata(t, "seeds/003-chat.conf"), map[string]string{
			"LISTEN": listen, "APPSERVER_IP": host, "PORT": port,
		})
		p := startProxy(t, kind, conf, listen)
		ctx := testCtx(t)

		alice := dialWS(t, ctx, listen, "/ws/", "")
		if got := readText(t, ctx, alice); got != "joined 1" {
			t.Fatalf("alice: first message %q, want %q", got, "joined 1")
		}
		bob := dialWS(t, ctx, listen, "/ws/", "")
		if got := readText(t, ctx, bob); got != "joined 2" {
			t.Fatalf("bob: first message %q, want %q", got, "joined 2")
		}
		wantRecord(t, "WebSocket /ws/", chat, record{
			Method: "GET", URI: "/ws/", Host: chat.Addr, Upgrade: "websocket", Connection: "upgrade",
		})

		writeText(t, ctx, alice, "alice: hi bob")
		if got := readText(t, ctx, bob); got != "alice: hi bob" {
			t.Errorf("bob received %q, want alice's message", got)
		}
		if got := readText(t, ctx, alice); got != "alice: hi bob" {
			t.Errorf("alice received %q, want her own message broadcast", got)
		}
		writeText(t, ctx, bob, "bob: hello alice")
		if got := readText(t, ctx, alice); got != "bob: hello alice" {
			t.Errorf("alice received %q, want bob's message", got)
		}
		if got := readText(t, ctx, bob); got != "bob: hello alice" {
			t.Errorf("bob received %q, want his own message broadcast", got)
		}
		r := mustDo(t, listen, rawRequest{Target: "/index.php"})
		wantStatus(t, "GET /index.php (chat page)", r, 200)
		alice.Close(1000, "")
		bob.Close(1000, "")
		p.alive(t)
	})
}

// TestSeed004MapConnectionUpgrade: the map sets Connection to "upgrade" for
// upgrade requests and "close" otherwise; the ws example answers through it.
func TestSeed004MapConnectionUpgrade(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind proxyKind) {
		wsb := newBackend(t, "websocket", wsSeed004)
		listen := listenAddr(t)
		conf := render(t, readTestdata(t, "seeds/004-nginx-ws.conf"), map[string]string{
			"LISTEN": listen, "WSBACKEND": wsb.Addr,
		})
		p := startProxy(t, kind, conf, listen)

		ctx := testCtx(t)
		ws := dialWS(t, ctx, listen, "/", "")
		writeText(t, ctx, ws, "Hello")
		if got, want := readText(t, ctx, ws), "Server received from client: Hello"; got != want {
			t.Errorf("reply = %q, want %q", got, want)
		}
		wantRecord(t, "WebSocket /", wsb, record{
			Method: "GET", URI: "/", Host: "127.0.0.1", Upgrade: "websocket", Connection: "upgrade",
		})
		ws.Close(1000, "")

		r := mustDo(t, listen, rawRequest{Target: "/status?x=1"})
		wantStatus(t, "GET /status?x=1", r, 200)
		// $http_upgrade is empty: the map gives "close", and the empty
		// Upgrade is not sent at all. nginx forwards that "close" (and
		// never reuses upstream connections without "keepalive"); wsgate
		// reads a Connection value that comes from a variable as the
		// WebSocket idiom it is and keeps the upstream connection alive
		// (docs/config.md, proxy_set_header). Only a literal
		// "proxy_set_header Connection close" turns pooling off.
		conn := "close"
		if kind == kindWsgate {
			conn = absent
		}
		wantRecord(t, "GET /status?x=1 (no Upgrade)", wsb, record{
			Method: "GET", URI: "/status?x=1", Host: "127.0.0.1", Upgrade: absent, Connection: conn,
		})
		p.alive(t)
	})
}
