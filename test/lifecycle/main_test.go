package lifecycle

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

var (
	// tmpRoot holds the wsgate binary built once for this test binary.
	tmpRoot string

	buildOnce sync.Once
	wsgateBin string
	buildErr  error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wsgate-lifecycle-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "lifecycle:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	tmpRoot = dir
	return m.Run()
}

// moduleRoot finds the directory holding go.mod above the working directory.
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
			t.Fatal("lifecycle: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// needWsgate builds ./cmd/wsgate once per test binary (go build -o
// $TMP/wsgate ./cmd/wsgate from the module root) and returns its path.
func needWsgate(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		bin := filepath.Join(tmpRoot, "wsgate")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/wsgate")
		cmd.Dir = moduleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
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

var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no other caller in this test binary has been given.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !ports[port] {
			ports[port] = true
			return port
		}
	}
	t.Fatal("freePort: no unused port after 100 tries")
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }
