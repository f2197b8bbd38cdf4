package lifecycle

import (
	"github.com/wsgate/wsgate/internal/testenv"

	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
)

var (
	// tmpRoot holds the wsgate binary built once for this test binary.
	tmpRoot string
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

// inCI, moduleRoot and needWsgate are the shared harness (internal/testenv).
func inCI() bool { return testenv.InCI() }

func moduleRoot(t testing.TB) string { return testenv.ModuleRoot(t) }

func needWsgate(t testing.TB) string { return testenv.Wsgate(t, tmpRoot) }
