package e2e

import "testing"

// TestDifferentialHeaderNames: underscores_in_headers and
// ignore_invalid_headers under nginx and wsgate. The variables show which
// request header fields each proxy kept: in the body of a return, and in
// X-Real-IP sent upstream.
func TestDifferentialHeaderNames(t *testing.T) {
	vars := `"[$http_x_foo][$http_x_a_b][$http_x_ok]"`
	loc := `location / { return 200 ` + vars + `; }
    location /up { proxy_pass http://up; proxy_set_header X-Real-IP ` + vars + `; }`
	conf := `events {}
http {
  access_log off;
  upstream up { server {{UP}}; }
  server { listen {{DEF}}; ` + loc + ` }
  server { listen {{UNDER}}; underscores_in_headers on; ` + loc + ` }
  server { listen {{KEEP}}; ignore_invalid_headers off; ` + loc + ` }
  server { listen {{NAMED}}; ` + loc + ` }
  server { listen {{NAMED}}; server_name under.test; underscores_in_headers on; ` + loc + ` }
}
`
	hdr := [][2]string{{"X_Foo", "1"}, {"X-A_b", "2"}, {"X.Dot", "3"}, {"X-Ok", "4"}}
	var probes []probe
	for _, l := range []string{"DEF", "UNDER", "KEEP", "NAMED"} {
		for _, target := range []string{"/", "/up"} {
			probes = append(probes, probe{listen: l, req: rawRequest{Target: target, Header: hdr}})
		}
	}
	// Host first (as clients send it): the name-based server decides.
	for _, target := range []string{"/", "/up"} {
		probes = append(probes, probe{listen: "NAMED", req: rawRequest{Target: target, Host: "under.test", Header: hdr}})
	}
	s := scenario{
		conf:     conf,
		backends: []backendSpec{{"up", "UP", wsEcho}},
		listens:  []string{"DEF", "UNDER", "KEEP", "NAMED"},
		probes:   probes,
	}
	runDifferential(t, s, func(i int) string { return "header names: " + s.probes[i].listen }, nil)
}
