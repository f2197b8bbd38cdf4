package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files under testdata from the current output")

// dumpTree renders a parse tree as stable text: one directive per line,
// "FILE:LINE name args", a q before a quoted argument, children indented.
// FILE is relative to base.
func dumpTree(ds []*Directive, base string) string {
	var b strings.Builder
	var walk func(ds []*Directive, indent string)
	walk = func(ds []*Directive, indent string) {
		for _, d := range ds {
			file := d.File
			if rel, err := filepath.Rel(base, d.File); err == nil {
				file = filepath.ToSlash(rel)
			}
			fmt.Fprintf(&b, "%s%s:%d %s", indent, file, d.Line, strconv.Quote(d.Name))
			for i, a := range d.Args {
				b.WriteByte(' ')
				if d.Quoted[i] {
					b.WriteByte('q')
				}
				b.WriteString(strconv.Quote(a))
			}
			switch {
			case d.HasBlock && len(d.Block) == 0:
				b.WriteString(" {}\n")
			case d.HasBlock:
				b.WriteString(" {\n")
				walk(d.Block, indent+"    ")
				b.WriteString(indent + "}\n")
			default:
				b.WriteString(";\n")
			}
		}
	}
	walk(ds, "")
	return b.String()
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

// TestParseGolden parses every testdata/parse/*.conf with includes
// resolved against testdata/parse and compares the tree, or the error,
// with its .golden file.
func TestParseGolden(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "parse")
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			tree, err := Parse(f, dir)
			var got string
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				got = dumpTree(tree, dir)
			}
			if strings.HasPrefix(filepath.Base(f), "err_") || strings.Contains(f, "include_missing") || strings.Contains(f, "include_self") {
				if err == nil {
					t.Errorf("want an error, got a tree")
				}
			} else if err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			checkGolden(t, strings.TrimSuffix(f, ".conf")+".golden", got)
		})
	}
}

// TestLexWords checks single words against nginx's ngx_conf_read_token.
func TestLexWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		src    string
		words  []string
		quoted []bool
	}{
		{desc: "bare", src: `a b;`, words: []string{"a", "b"}, quoted: []bool{false, false}},
		{desc: "double quotes keep spaces and semicolons", src: `a "b c; {d}";`, words: []string{"a", "b c; {d}"}, quoted: []bool{false, true}},
		{desc: "single quotes", src: `a 'b "c"';`, words: []string{"a", `b "c"`}},
		{desc: "escaped quote in double quotes", src: `a "x\"y";`, words: []string{"a", `x"y`}},
		{desc: "escaped other quote is unescaped too", src: `a "it\'s";`, words: []string{"a", "it's"}},
		{desc: "escaped backslash", src: `a "x\\y";`, words: []string{"a", `x\y`}},
		{desc: "control escapes", src: `a "x\ty\nz\r";`, words: []string{"a", "x\ty\nz\r"}},
		{desc: "regex escape kept in quotes", src: `a "\.js$";`, words: []string{"a", `\.js$`}},
		{desc: "regex escape kept bare", src: `a ~*\.(png|jpg)$;`, words: []string{"a", `~*\.(png|jpg)$`}},
		{desc: "escapes apply to bare words", src: `a x\"y\\z;`, words: []string{"a", `x"y\z`}},
		{desc: "escaped semicolon stays in a bare word", src: `a x\;y;`, words: []string{"a", `x\;y`}},
		{desc: "escaped space stays in a bare word", src: `a x\ y;`, words: []string{"a", `x\ y`}},
		{desc: "braced variable is one word", src: `a ${scheme}://${host}x;`, words: []string{"a", "${scheme}://${host}x"}},
		{desc: "closing brace inside a bare word", src: `a b}c;`, words: []string{"a", "b}c"}},
		{desc: "hash inside a word", src: `a b#c;`, words: []string{"a", "b#c"}},
		{desc: "hash starts a comment", src: "a b #c;\n;", words: []string{"a", "b"}},
		{desc: "empty quoted", src: `a '' "";`, words: []string{"a", "", ""}, quoted: []bool{false, true, true}},
		{desc: "quote inside a bare word is literal", src: `a b"c";`, words: []string{"a", `b"c"`}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			ds, err := ParseBytes("t.conf", []byte(tt.src), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 {
				t.Fatalf("got %d directives, want 1", len(ds))
			}
			got := append([]string{ds[0].Name}, ds[0].Args...)
			if strings.Join(got, "\x00") != strings.Join(tt.words, "\x00") || len(got) != len(tt.words) {
				t.Errorf("words = %q, want %q", got, tt.words)
			}
			if tt.quoted != nil && fmt.Sprint(ds[0].Quoted) != fmt.Sprint(tt.quoted[1:]) {
				t.Errorf("quoted = %v, want %v", ds[0].Quoted, tt.quoted[1:])
			}
		})
	}
}

// TestParseLines checks that line numbers count newlines inside quotes
// and escapes, and name the directive's first line.
func TestParseLines(t *testing.T) {
	t.Parallel()
	src := "a \"x\ny\";\nb 'p\\\nq';\n\n  c\n  d;\n"
	ds, err := ParseBytes("t.conf", []byte(src), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, fmt.Sprintf("%s:%d", d.Name, d.Line))
	}
	if want := "a:1 b:3 c:6"; strings.Join(got, " ") != want {
		t.Errorf("lines = %s, want %s", strings.Join(got, " "), want)
	}
}

// TestIncludeRelative checks that include paths resolve against the
// prefix, not the including file's directory, and that an absolute path
// is used as is.
func TestIncludeRelative(t *testing.T) {
	t.Parallel()
	prefix := t.TempDir()
	other := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(prefix, "conf.d", "x.conf"), "include snippets/y.conf;\n")
	write(filepath.Join(prefix, "snippets", "y.conf"), "from_prefix 1;\n")
	write(filepath.Join(other, "abs.conf"), "from_abs 1;\n")
	main := filepath.Join(prefix, "main.conf")
	write(main, "include conf.d/*.conf;\ninclude "+filepath.Join(other, "abs.conf")+";\n")
	ds, err := Parse(main, prefix)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range ds {
		names = append(names, d.Name)
	}
	if got := strings.Join(names, " "); got != "from_prefix from_abs" {
		t.Errorf("directives = %q, want %q", got, "from_prefix from_abs")
	}
	if ds[0].File != filepath.Join(prefix, "snippets", "y.conf") || ds[0].Line != 1 {
		t.Errorf("position = %s, want the included file", ds[0].Pos())
	}

	// Parse with an empty prefix resolves against the file's directory.
	if _, err := Parse(filepath.Join(prefix, "conf.d", "x.conf"), ""); err == nil {
		t.Errorf("include relative to conf.d/ found snippets/y.conf; want it resolved against conf.d and missing")
	}
}

// TestIncludeGlobSkipsDirs checks that a glob never tries to read a
// directory it matches.
func TestIncludeGlobSkipsDirs(t *testing.T) {
	t.Parallel()
	prefix := t.TempDir()
	if err := os.MkdirAll(filepath.Join(prefix, "d", "sub.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prefix, "d", "z.conf"), []byte("z 1;"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := ParseBytes(filepath.Join(prefix, "m.conf"), []byte("include d/*.conf;"), prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Name != "z" {
		t.Errorf("got %s", dumpTree(ds, prefix))
	}
}

// TestErrorFormat checks the FILE:LINE: message shapes.
func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		err  error
		want string
	}{
		{desc: "file and line", err: &Error{File: "a.conf", Line: 3, Msg: "m"}, want: "a.conf:3: m"},
		{desc: "file only", err: &Error{File: "a.conf", Msg: "m"}, want: "a.conf: m"},
		{desc: "message only", err: &Error{Msg: "m"}, want: "m"},
		{desc: "list", err: ErrorList{{File: "a", Line: 1, Msg: "x"}, {File: "b", Line: 2, Msg: "y"}}, want: "a:1: x\nb:2: y"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if ErrorList(nil).Err() != nil {
		t.Errorf("empty ErrorList.Err() != nil")
	}
	if got := Errors(fmt.Errorf("wrapped: %w", &Error{File: "f", Line: 1, Msg: "m"})); len(got) != 1 || got[0].Line != 1 {
		t.Errorf("Errors did not unwrap a wrapped *Error: %v", got)
	}
}
