package lb

import (
	"github.com/wsgate/wsgate/internal/testpeers"

	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const depsHint = "run scripts/deps.sh (installs Node and the npm packages in test/node)"

var (
	// tmpRoot holds the wsgate binary built for this test binary.
	tmpRoot string

	buildOnce sync.Once
	wsgateBin string
	buildErr  error
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
		if err := testpeers.Ensure(filepath.Join(wd, "..", "..")); err != nil {
			fmt.Fprintln(os.Stderr, "lb:", err)
		}
	}
	return m.Run()
}

// inCI reports whether the tests run under CI=true, where a missing peer is
// a failure.
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// moduleRoot finds the directory holding go.mod, walking up from the
// test's working directory.
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
			t.Fatal("lb: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// needWsgate builds ./cmd/wsgate once per test binary and returns the
// binary's path. A build failure fails the calling test with the
// compiler's output.
func needWsgate(t testing.TB) string {
	t.Helper()
	root := moduleRoot(t)
	buildOnce.Do(func() {
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
