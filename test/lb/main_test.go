package lb

import (
	"github.com/wsgate/wsgate/internal/testenv"

	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const depsHint = "run scripts/deps.sh (installs Node and the npm packages in test/node)"

var (
	// tmpRoot holds the wsgate binary built for this test binary.
	tmpRoot string
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(backendEnv); spec != "" {
		// Re-executed as a backend process: serve until killed.
		os.Exit(runBackendProcess(spec))
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wsgate-lb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "lb:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	tmpRoot = dir
	// On a fresh machine "go test ./..." installs the peers itself; a
	// failure here makes the tests that need a peer fail with the hint.
	if wd, err := os.Getwd(); err == nil {
		if err := testenv.Ensure(filepath.Join(wd, "..", "..")); err != nil {
			fmt.Fprintln(os.Stderr, "lb:", err)
		}
	}
	return m.Run()
}

// needNode returns the node binary and test/node's directory. A missing
// node or npm package fails the test under CI=true and skips it outside
// CI, both with the hint to run scripts/deps.sh.
func needNode(t testing.TB) (node, dir string) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if inCI() {
			t.Fatalf("%s is missing (CI=true): %s", what, depsHint)
		}
		t.Skipf("%s is missing: %s", what, depsHint)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	dir = filepath.Join(moduleRoot(t), "test", "node")
	for _, p := range []string{
		"node_modules/socket.io/package.json",
		"node_modules/socket.io-client/package.json",
	} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			missing("test/node/" + p)
		}
	}
	return node, dir
}

// inCI, moduleRoot and needWsgate are the shared harness (internal/testenv).
func inCI() bool { return testenv.InCI() }

func moduleRoot(t testing.TB) string { return testenv.ModuleRoot(t) }

func needWsgate(t testing.TB) string { return testenv.Wsgate(t, tmpRoot) }
