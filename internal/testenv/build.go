package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI=true, where a missing peer
// is a failure, never a skip.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// ModuleRoot returns the directory holding go.mod above the working
// directory, or fails t.
func ModuleRoot(t testing.TB) string {
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
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

var (
	buildOnce sync.Once
	bin       string
	buildErr  error
)

// Wsgate builds ./cmd/wsgate once per test binary into dir and returns the
// binary's path; under -race the binary is built with -race too, so a data
// race it reports can fail the test. Outside CI, WSGATE_BIN names a binary
// built by hand instead. A build failure fails t with the compiler's
// output.
func Wsgate(t testing.TB, dir string) string {
	t.Helper()
	root := ModuleRoot(t)
	buildOnce.Do(func() {
		if b := os.Getenv("WSGATE_BIN"); b != "" && !InCI() {
			bin = b
			return
		}
		out := filepath.Join(dir, "wsgate")
		args := []string{"build", "-o", out}
		if Race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/wsgate")...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/wsgate: %v\n%s", err, b)
			return
		}
		bin = out
	})
	if buildErr != nil {
		t.Fatalf("wsgate does not build, so it cannot be tested:\n%v", buildErr)
	}
	return bin
}
