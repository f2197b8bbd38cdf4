package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the lexer, the parser and the
// compiler. They must never panic; errors are fine. Inputs that mention
// include are skipped so the fuzzer cannot read the machine's files (an
// include of /dev/zero would never end).
func FuzzParse(f *testing.F) {
	for _, pat := range []string{"parse/*.conf", "parse/*/*.conf", "errors/*.conf", "seeds/*.conf"} {
		files, _ := filepath.Glob(filepath.Join("testdata", pat))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`a "x\"y" 'p\'q' b\ c ${d}e f}g;`))
	f.Add([]byte("location ~ \\.(js)$ { return 200 \"\\n\"; }"))
	f.Add([]byte(`http { server { set $a ""; if ($http_origin ~* ^https://(www\.)?x$) { set $a $1; }
		location / { if ($request_method = 'OPTIONS') { add_header A *; return 204; } rewrite ^/(.*)$ /b?$1? last; } } }`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		if bytes.Contains(src, []byte("include")) {
			t.Skip()
		}
		name := filepath.Join(dir, "fuzz.conf")
		tree, err := ParseBytes(name, src, dir)
		if err != nil {
			if len(Errors(err)) == 0 {
				t.Fatalf("error without a configuration error: %v", err)
			}
			return
		}
		cfg, err := Compile(name, dir, tree, Options{SkipResolve: true})
		if err == nil && cfg == nil {
			t.Fatalf("nil config without an error")
		}
		for _, e := range Errors(err) {
			if e.Msg == "" {
				t.Fatalf("empty error message in %v", err)
			}
		}
	})
}
