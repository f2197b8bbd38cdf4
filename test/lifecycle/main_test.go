//go:build unix

package lifecycle

import (
	"github.com/wsgate/wsgate/internal/testenv"

	"fmt"
	"os"
	"strconv"
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

// freePort is the shared harness's (internal/testenv).
func freePort(t testing.TB) int { return testenv.FreePort(t) }

func itoa(n int) string { return strconv.Itoa(n) }

// inCI, moduleRoot and needWsgate are the shared harness (internal/testenv).
func inCI() bool { return testenv.InCI() }

func moduleRoot(t testing.TB) string { return testenv.ModuleRoot(t) }

func needWsgate(t testing.TB) string { return testenv.Wsgate(t, tmpRoot) }
