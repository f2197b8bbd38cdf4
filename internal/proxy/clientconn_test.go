package proxy

import (
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/route"
)

func compileHTTP(t *testing.T, conf string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	name := filepath.Join(dir, "wsgate.conf")
	tree, err := config.ParseBytes(name, []byte(conf), dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Compile(name, dir, tree, config.Options{Prefix: dir, SkipResolve: true})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestDefaultServersMatchRoute: the default server the connection
// timeouts come from is the one route picks for a Host no server_name
// matches, for every socket and local address.
func TestDefaultServersMatchRoute(t *testing.T) {
	cfg := compileHTTP(t, `events {} http {
server { listen 127.0.0.1:8001; server_name a; }
server { listen 127.0.0.1:8001 default_server; server_name b; }
server { listen 8002; server_name c; }
server { listen 127.0.0.2:8002; server_name d; }
server { listen 127.0.0.2:8002 default_server; server_name e; }
server { listen [::1]:8003; listen 127.0.0.1:8003; server_name f; }
server { listen 127.0.0.1:8003 default_server; server_name g; }
server { listen 0.0.0.0:8004; server_name h; }
server { listen 8004 default_server; server_name i; }
}`)
	defs := defaultServers(cfg.HTTP)
	h := &Handler{defaults: defs}
	table := route.Build(cfg.HTTP)
	n := 0
	for _, b := range table.Bindings {
		for _, ip := range []string{"127.0.0.1", "127.0.0.2", "::1", "10.0.0.1"} {
			want := b.Server(ip, "no.such.name.invalid")
			got := h.defaultServer(b.Addr, ip)
			if got != want {
				t.Errorf("bind %s, local %s: default server at line %d, route picks line %d", b.Addr, ip, got.Line, want.Line)
			}
			n++
		}
	}
	if len(defs) != len(table.Bindings) || n == 0 {
		t.Errorf("%d sockets, route has %d", len(defs), len(table.Bindings))
	}
}
