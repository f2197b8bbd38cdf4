package e2e

import (
	"github.com/wsgate/wsgate/internal/testenv"

	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const depsHint = "run scripts/deps.sh (installs nginx and the Node peers)"

var (
	// tmpRoot holds the wsgate binary built for this test binary.
	tmpRoot string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wsgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	tmpRoot = dir
	// On a fresh machine "go test ./..." installs the peers itself; a
	// failure here makes the tests that need a peer fail with the hint.
	if wd, err := os.Getwd(); err == nil {
		if err := testenv.Ensure(filepath.Join(wd, "..", "..")); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
		}
	}
	return m.Run()
}

// needNginx returns the path of the nginx binary or fails the test with the
// hint to run scripts/deps.sh.
func needNginx(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	t.Fatalf("nginx is not installed (CI=%q): %s", os.Getenv("CI"), depsHint)
	return ""
}

// needNode returns the node binary and test/node's directory, failing the
// test when node or the npm packages are missing.
func needNode(t testing.TB) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (CI=%q): %s", os.Getenv("CI"), depsHint)
	}
	dir = filepath.Join(moduleRoot(t), "test", "node")
	for _, p := range []string{
		"node_modules/ws/package.json",
		"node_modules/wscat/bin/wscat",
		"node_modules/socket.io/package.json",
		"node_modules/socket.io-client/package.json",
	} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("test/node/%s is missing (CI=%q): %s", p, os.Getenv("CI"), depsHint)
		}
	}
	return node, dir
}

// proxyKinds lists the proxies every seed test runs against: nginx, the
// reference, and wsgate. E2E_PROXIES=nginx (ignored under CI) leaves wsgate
// out.
func proxyKinds(t testing.TB) []proxyKind {
	only := os.Getenv("E2E_PROXIES")
	if only == "" || inCI() {
		return []proxyKind{kindNginx, kindWsgate}
	}
	var kinds []proxyKind
	for _, k := range strings.Split(only, ",") {
		switch proxyKind(strings.TrimSpace(k)) {
		case kindNginx:
			kinds = append(kinds, kindNginx)
		case kindWsgate:
			kinds = append(kinds, kindWsgate)
		default:
			t.Fatalf("E2E_PROXIES: unknown proxy %q (want nginx, wsgate)", k)
		}
	}
	if len(kinds) == 0 {
		t.Fatal(errors.New("E2E_PROXIES names no proxy"))
	}
	return kinds
}

// inCI, moduleRoot and needWsgate are the shared harness (internal/testenv).
func inCI() bool { return testenv.InCI() }

func moduleRoot(t testing.TB) string { return testenv.ModuleRoot(t) }

func needWsgate(t testing.TB) string { return testenv.Wsgate(t, tmpRoot) }
