package lb

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestConfigTestRejectsBadUpstreams: `wsgate -t` rejects bad upstream
// parameters with "FILE:LINE: message" pointing at the offending line,
// exits non-zero and says the test failed; a good upstream passes.
func TestConfigTestRejectsBadUpstreams(t *testing.T) {
	cases := []struct {
		desc  string
		block string // upstream block body; the marked line is the bad one
		line  int    // line of the error within the whole file
		want  string // part of the message
	}{
		{
			desc:  "weight=0",
			block: "server 127.0.0.1:9001;\n        server 127.0.0.1:9002 weight=0;",
			line:  5, want: `invalid parameter "weight=0"`,
		},
		{
			desc:  "hash without a key",
			block: "hash;\n        server 127.0.0.1:9001;",
			line:  4, want: `invalid number of arguments in "hash" directive`,
		},
		{
			desc:  "sticky with ip_hash",
			block: "ip_hash;\n        sticky cookie srv_id path=/;\n        server 127.0.0.1:9001;",
			line:  5, want: `load balancing method redefined`,
		},
		{
			desc:  "ip_hash after sticky",
			block: "sticky cookie srv_id;\n        ip_hash;\n        server 127.0.0.1:9001;",
			line:  5, want: `load balancing method redefined`,
		},
		{
			desc:  "weight=-1",
			block: "server 127.0.0.1:9001 weight=-1;",
			line:  4, want: `invalid parameter "weight=-1"`,
		},
	}
	bin := needWsgate(t)
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			text := "events {}\nhttp {\n    upstream pool {\n        " + tc.block + "\n    }\n" +
				"    server { listen 127.0.0.1:18099; location / { proxy_pass http://pool; } }\n}\n"
			path := filepath.Join(t.TempDir(), "bad.conf")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, code := runExit(t, exec.Command(bin, "-t", "-c", path))
			loc := path + ":" + strconv.Itoa(tc.line) + ": "
			if code == 0 || !strings.Contains(out, loc) || !strings.Contains(out, tc.want) || !strings.Contains(out, "test failed") {
				t.Errorf("wsgate -t: exit %d, output:\n%s\nwant non-zero, %q with %q and \"test failed\"\n--- config:\n%s", code, out, loc, tc.want, numbered(text))
			}
			if strings.Contains(out, "goroutine ") || strings.Contains(out, ".go:") {
				t.Errorf("wsgate -t printed a Go trace:\n%s", out)
			}
		})
	}
	t.Run("good", func(t *testing.T) {
		text := "events {}\nhttp {\n    upstream pool {\n        sticky cookie srv_id expires=1h path=/;\n" +
			"        server 127.0.0.1:9001 weight=5 max_fails=1 fail_timeout=5s slow_start=4s;\n        server 127.0.0.1:9002 max_conns=10;\n    }\n" +
			"    server { listen 127.0.0.1:18099; location / { proxy_pass http://pool; health_check interval=1s fails=1 passes=2; } }\n}\n"
		path := filepath.Join(t.TempDir(), "good.conf")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := runExit(t, exec.Command(bin, "-t", "-c", path))
		if code != 0 || !strings.Contains(out, "test is successful") {
			t.Errorf("wsgate -t on a good config: exit %d, output:\n%s", code, out)
		}
	})
}
