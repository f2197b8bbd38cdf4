// Package testenv gives the end-to-end test packages what they share:
// the module root, the wsgate binary built once per test binary (with
// -race when the tests run with it), and the third-party peers. It
// installs the third-party peers the end-to-end tests
// drive (nginx for differential tests; Node, ws, wscat and socket.io) by
// running scripts/deps.sh, so that "go test ./..." works on a fresh
// machine with no other set-up. It is used only by test packages.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var (
	once sync.Once
	err  error
)

// Ensure runs scripts/deps.sh (under an flock, since go test runs test
// packages in parallel) unless every peer is already present. root is the
// module root. The script is idempotent and fast when nothing is missing;
// its output goes to stderr. The error says what failed.
func Ensure(root string) error {
	once.Do(func() {
		if present(root) {
			return
		}
		script := filepath.Join(root, "scripts", "deps.sh")
		cmd := exec.Command("flock", "/tmp/wsgate-deps.lock", "bash", script)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.Stdin = nil
		if e := cmd.Run(); e != nil {
			err = fmt.Errorf("scripts/deps.sh failed: %v (run it by hand to see why)", e)
		}
	})
	return err
}

// present reports whether nginx and the Node packages are installed.
func present(root string) bool {
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			return false
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		return false
	}
	for _, p := range []string{"ws", "wscat", "socket.io", "socket.io-client"} {
		if _, err := os.Stat(filepath.Join(root, "test", "node", "node_modules", p, "package.json")); err != nil {
			return false
		}
	}
	return true
}
