package e2e

import (
	"github.com/wsgate/wsgate/internal/testpeers"

	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const depsHint = "run scripts/deps.sh (installs nginx and the Node peers)"

var (
	// tmpRoot holds the wsgate binary built for this test binary.
	tmpRoot string

	buildOnce sync.Once
	wsgateBin string
	buildErr  error
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
		if err := testpeers.Ensure(filepath.Join(wd, "..", "..")); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
		}
	}
	return m.Run()
}

// inCI reports whether the tests run under CI=true, where a missing peer is
// a failure and the nginx-only mode is ignored.
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// moduleRoot finds the directory holding go.mod, walking up from the test's
// working directory.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("e2e: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// needWsgate builds ./cmd/wsgate once per test binary and returns the
// binary's path. A build failure fails the calling test with the compiler's
// output.
func needWsgate(t testing.TB) string {
	t.Helper()
	root := moduleRoot(t)
	buildOnce.Do(func() {
		if bin := os.Getenv("WSGATE_BIN"); bin != "" && !inCI() {
			wsgateBin = bin // a binary built by hand, outside CI only
			return
		}
		bin := filepath.Join(tmpRoot, "wsgate")
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/wsgate")...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/wsgate: %v\n%s", err, out)
			return
		}
		wsgateBin = bin
	})
	if buildErr != nil {
		t.Fatalf("wsgate does not build, so it cannot be tested:\n%v", buildErr)
	}
	return wsgateBin
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
