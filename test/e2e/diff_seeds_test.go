package e2e

import (
	"strings"
	"testing"
)

// The seed configs under nginx and wsgate: the same requests (plain and
// WebSocket handshakes) must reach the same backends with the same method,
// URI, Host, X-Forwarded-For, X-Real-IP and Upgrade, and the clients must
// get the same status codes (and, for 2xx answers, the same bodies).

func wsReq(target string) rawRequest { return rawRequest{Target: target, WS: true} }

func seedLabel(name string) func(int) string {
	return func(int) string { return "seed " + name }
}

func TestDifferentialSeed000(t *testing.T) {
	s := scenario{
		conf:     readTestdata(t, "seeds/000-ember.conf"),
		backends: []backendSpec{{"push-service", "PUSH_SERVICE", wsPush}},
		listens:  []string{"LISTEN"},
		vars:     func(v map[string]string) { v["ROOT"] = seedRoot(t) },
		probes: []probe{
			{req: get("/")},
			{req: get("/index.html")},
			{req: get("/tasks/42/edit")},
			{req: get("/tasks?filter=open")},
			{req: get("/assets/app.js")},
			{req: get("/assets/missing.js")},
			{req: get("/assets/")},
			{req: get("/assets")},
			{req: get("/posts")},
			{req: get("/posts/")},
			{req: get("/robots.txt")},
			{req: rawRequest{Method: "HEAD", Target: "/tasks/1"}},
			{req: rawRequest{Method: "POST", Target: "/tasks/1", Body: "x"}},
			{req: wsReq("/push-service/")},
			{req: wsReq("/push-service")},
			{req: wsReq("/push-service/?token=abc%20d")},
			{req: rawRequest{Target: "/push-service/", WS: true, Host: "app.example.test", Header: [][2]string{{"X-Forwarded-For", "198.51.100.7"}}}},
			{req: get("/push-service/status")},
			{req: wsReq("/push-service-v2/x")},
		},
	}
	runDifferential(t, s, seedLabel("000 (Ember + /push-service)"), nil)
}

func TestDifferentialSeed001(t *testing.T) {
	localhost := "localhost:{{LISTEN_PORT}}"
	s := scenario{
		conf: readTestdata(t, "seeds/001-rest-ws.conf"),
		backends: []backendSpec{
			{"apirest1", "APIREST1", wsEcho}, {"apicommon:8001", "APICOMMON_8001", wsEcho},
			{"apicommon", "APICOMMON", wsEcho}, {"frontend", "FRONTEND_URL", wsEcho},
		},
		listens: []string{"LISTEN"},
		vars: func(v map[string]string) {
			v["LISTEN_PORT"] = strings.TrimPrefix(v["LISTEN"], "127.0.0.1:")
		},
		probes: []probe{
			{req: rawRequest{Target: "/apiv1/users?page=2", Host: localhost}},
			{req: rawRequest{Target: "/apiv1", Host: localhost}},
			{req: rawRequest{Target: "/apiv1/", Host: localhost}},
			{req: rawRequest{Method: "POST", Target: "/apiv2/items", Host: localhost, Body: `{"name":"x"}`,
				Header: [][2]string{{"X-Forwarded-For", "203.0.113.9"}}}},
			{req: rawRequest{Target: "/apiv2/a%2Fb%20c?q=%2F", Host: localhost}},
			{req: rawRequest{Target: "/", Host: localhost}},
			{req: rawRequest{Target: "/dashboard/settings?tab=1", Host: localhost}},
			{req: rawRequest{Target: "/ws/chat?room=1", Host: localhost, WS: true}},
			{req: rawRequest{Target: "/ws/", Host: localhost, WS: true}},
			{req: rawRequest{Target: "/ws/plain", Host: localhost}},
			{req: rawRequest{Target: "/ws", Host: localhost}},
			{req: rawRequest{Target: "/apiv1/x", Host: "other.example.test"}},
		},
	}
	runDifferential(t, s, seedLabel("001 (REST + /ws/)"), nil)
}

func seed002Scenario(t *testing.T, listener bool) scenario {
	conf := strings.ReplaceAll(readTestdata(t, "seeds/002-dokku.conf"), "{{ $.APP }}", "websocket-example")
	s := scenario{
		conf:     conf,
		backends: []backendSpec{{"web", "WEB", wsEcho}},
		listens:  []string{"LISTEN"},
		vars:     func(v map[string]string) { v["WS_SERVERS"] = "  server 127.0.0.1:65535; # force a 502" },
		probes: []probe{
			{req: wsReq("/echo")},
			{req: get("/echo")},
			{req: wsReq("/echo/sub?x=1")},
			{req: get("/echoes")},
			{req: get("/")},
			{req: rawRequest{Target: "/echo", WS: true, Host: "websocket-example.dokku.me", Header: [][2]string{{"X-Forwarded-For", "192.0.2.1"}, {"X-Real-IP", "192.0.2.99"}}}},
		},
	}
	if listener {
		s.backends = append(s.backends, backendSpec{"ws", "WS", wsEcho})
		s.vars = func(v map[string]string) { v["WS_SERVERS"] = "  server " + v["WS"] + ";" }
	}
	return s
}

func TestDifferentialSeed002NoListeners(t *testing.T) {
	runDifferential(t, seed002Scenario(t, false), seedLabel("002 (Dokku, no ws listeners: 502)"), nil)
}

func TestDifferentialSeed002Echo(t *testing.T) {
	runDifferential(t, seed002Scenario(t, true), seedLabel("002 (Dokku /echo)"), nil)
}

func TestDifferentialSeed003(t *testing.T) {
	s := scenario{
		conf:     readTestdata(t, "seeds/003-chat.conf"),
		backends: []backendSpec{{"chat", "APPSERVER", wsChat}},
		listens:  []string{"LISTEN"},
		vars: func(v map[string]string) {
			v["APPSERVER_IP"], v["PORT"], _ = strings.Cut(v["APPSERVER"], ":")
		},
		probes: []probe{
			{req: wsReq("/ws/")},
			{req: wsReq("/ws/room/7?nick=a%20b")},
			{req: get("/ws/")},
			{req: get("/ws")},
			{req: get("/")},
			{req: get("/index.php?x=1")},
		},
	}
	runDifferential(t, s, seedLabel("003 (chat /ws/)"), nil)
}

func TestDifferentialSeed004(t *testing.T) {
	s := scenario{
		conf:     readTestdata(t, "seeds/004-nginx-ws.conf"),
		backends: []backendSpec{{"websocket", "WSBACKEND", wsSeed004}},
		listens:  []string{"LISTEN"},
		probes: []probe{
			{req: wsReq("/")},
			{req: get("/")},
			{req: wsReq("/wsapp/?a=1")},
			{req: rawRequest{Target: "/x", Header: [][2]string{{"Upgrade", "h2c"}, {"Connection", "Upgrade"}}}},
			{req: rawRequest{Target: "/", WS: true, Host: "Proxy.Example.TEST:8020"}},
		},
	}
	runDifferential(t, s, seedLabel("004 (map $connection_upgrade)"), nil)
}
