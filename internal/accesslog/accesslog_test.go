package accesslog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/vars"
)

type resolver map[string]string

func (r resolver) Var(name string) (string, bool) {
	v, ok := r[name]
	return v, ok
}

func TestFormatEscaping(t *testing.T) {
	t.Parallel()
	tp := vars.MustCompile(`$a "$b" $c`)
	r := resolver{"a": "", "b": "x\"y\\z\n\xff", "c": "ok"}
	for _, tc := range []struct{ escape, want string }{
		{"default", `- "x\x22y\x5Cz\x0A\xFF" ok`},
		{"json", ` "x\"y\\z\u000a` + "\xff" + `" ok`},
		{"none", " \"x\"y\\z\n\xff\" ok"},
	} {
		if got := Format(tp, tc.escape, r); got != tc.want {
			t.Errorf("escape=%s: got %q, want %q", tc.escape, got, tc.want)
		}
	}
}

// TestReopen: after the file is moved (logrotate), Reopen makes later
// lines go to a new file at the configured path.
func TestReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	s := NewSet()
	defer s.Close()
	if err := s.Open(path); err != nil {
		t.Fatal(err)
	}
	s.Write(path, "first")
	s.Flush()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	s.Write(path, "second")
	s.Flush()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if strings.TrimSpace(string(old)) != "first" || strings.TrimSpace(string(cur)) != "second" {
		t.Errorf("old file %q, new file %q", old, cur)
	}
	if err := s.Open(filepath.Join(dir, "no", "such", "dir", "x.log")); err == nil {
		t.Error("opening a log in a missing directory succeeded")
	}
}
