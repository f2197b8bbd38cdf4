//go:build unix

package lifecycle

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

const dynamicConf = `
pid {{DIR}}/wsgate.pid;
error_log {{DIR}}/error.log;
http {
    access_log off;
    map $http_x_unused $ws_target { default 127.0.0.1:{{B}}; }
    server {
        listen 127.0.0.1:{{P}};
        location /ws/ { proxy_pass http://$ws_target; }
        location = /gen { return 200 "{{GEN}}"; }
    }
}
`

// TestReloadKeepsDynamicProxyPass: a WebSocket proxied with a variable
// proxy_pass (no upstream block) survives a reload that changes an
// unrelated route: its server and location are still there.
func TestReloadKeepsDynamicProxyPass(t *testing.T) {
	b := newBackend(t)
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	g := startGateway(t, dynamicConf, map[string]string{"B": b.port(), "P": p, "GEN": "1"}, addr)
	ws, err := dialWS("ws://"+addr+"/ws/", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.c.CloseNow()
	if err := ws.echo([]byte("before"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	g.writeConfig(dynamicConf, map[string]string{"B": b.port(), "P": p, "GEN": "2"})
	g.reload(false)
	mustGet(t, "http://"+addr+"/gen", "2")
	if code, ended := ws.waitClosed(2 * time.Second); ended {
		t.Fatalf("a reload that changed only an unrelated route closed a WebSocket on a variable proxy_pass with %d (%v)", code, ws.err)
	}
	if err := ws.echo([]byte("after"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

const tlsConf = `
pid {{DIR}}/wsgate.pid;
error_log {{DIR}}/error.log;
http {
    access_log off;
    server {
        listen 127.0.0.1:{{P}} ssl;
        ssl_certificate {{CERT}};
        ssl_certificate_key {{KEY}};
        location / { return 200 "tls"; }
    }
}
`

// servedCN returns the common name of the certificate addr presents.
func servedCN(t testing.TB, addr string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestReloadNewCertificate: a reload that points a kept TLS listener at a
// new certificate (the usual reason to reload: a renewed certificate)
// serves the new certificate to new connections, as nginx does.
func TestReloadNewCertificate(t *testing.T) {
	dir := t.TempDir()
	c1, k1 := testenv.WriteCert(t, dir, "first")
	c2, k2 := testenv.WriteCert(t, dir, "second")
	p := itoa(freePort(t))
	addr := "127.0.0.1:" + p
	g := startGateway(t, tlsConf, map[string]string{"P": p, "CERT": c1, "KEY": k1}, addr)
	if cn := servedCN(t, addr); cn != "first" {
		t.Fatalf("served certificate %q, want first", cn)
	}
	g.writeConfig(tlsConf, map[string]string{"P": p, "CERT": c2, "KEY": k2})
	g.reload(false)
	if cn := servedCN(t, addr); cn != "second" {
		t.Errorf("after a reload to a new ssl_certificate the listener still serves %q, want second", cn)
	}
}
