package vars

import (
	"strings"
	"testing"
)

type resolver map[string]string

func (r resolver) Var(name string) (string, bool) {
	v, ok := r[name]
	return v, ok
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	r := resolver{"host": "example.test", "request_uri": "/a?b", "http_x": "1"}
	for _, tc := range []struct {
		desc, in, want string
		konst          bool
	}{
		{desc: "literal", in: "close", want: "close", konst: true},
		{desc: "one variable", in: "$host", want: "example.test"},
		{desc: "mixed", in: "$scheme://$host$request_uri", want: "://example.test/a?b"},
		{desc: "braces", in: "${host}x", want: "example.testx"},
		{desc: "case-insensitive names", in: "$HOST", want: "example.test"},
		{desc: "unknown is empty", in: "[$nope]", want: "[]"},
		{desc: "empty", in: "", want: "", konst: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			tp, err := Compile(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := tp.Eval(r); got != tc.want {
				t.Errorf("Eval(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if tp.IsConst() != tc.konst || tp.Raw() != tc.in {
				t.Errorf("IsConst %v Raw %q", tp.IsConst(), tp.Raw())
			}
		})
	}
	for _, bad := range []string{"$", "a$", "${host", "${}", "$-x"} {
		if _, err := Compile(bad); err == nil {
			t.Errorf("Compile(%q) succeeded, want an error", bad)
		}
	}
}

func TestEvalEscaped(t *testing.T) {
	t.Parallel()
	tp := MustCompile(`"$a" $b`)
	got := tp.EvalEscaped(resolver{"a": `x"y`, "b": "z"}, func(s string) string { return strings.ToUpper(s) })
	if got != `"X"Y" Z` {
		t.Errorf("got %q: escaping must apply to values only", got)
	}
}

// TestMap follows nginx's map: exact keys first, then regexes in order,
// then default; ” matches the empty string (the $connection_upgrade idiom).
func TestMap(t *testing.T) {
	t.Parallel()
	m := NewMap(MustCompile("$http_upgrade"), "connection_upgrade")
	m.Default = MustCompile("upgrade")
	m.AddExact("", MustCompile("close"))
	m.AddExact("exact", MustCompile("e"))
	if err := m.AddRegex("^web", false, MustCompile("r1")); err != nil {
		t.Fatal(err)
	}
	if err := m.AddRegex("SOCKET$", true, MustCompile("r2-$http_upgrade")); err != nil {
		t.Fatal(err)
	}
	if m.AddExact("exact", MustCompile("dup")) {
		t.Error("duplicate exact key accepted")
	}
	for in, want := range map[string]string{
		"":          "close",
		"websocket": "r1",
		"exact":     "e",
		"h2socket":  "r2-h2socket",
		"other":     "upgrade",
	} {
		if got := m.Eval(resolver{"http_upgrade": in}); got != want {
			t.Errorf("map(%q) = %q, want %q", in, got, want)
		}
	}
	if err := m.AddRegex("(", false, nil); err == nil {
		t.Error("bad regex accepted")
	}
}

// TestCaptureNames: as in nginx's script compiler, "$1".."$9" are one
// digit, so "$10" is $1 followed by "0".
func TestCaptureNames(t *testing.T) {
	t.Parallel()
	r := resolver{"1": "one", "10": "ten"}
	if got := MustCompile("$10/$1x").Eval(r); got != "one0/onex" {
		t.Errorf("got %q", got)
	}
}

type expander struct {
	resolver
	caps []string
}

func (e expander) AppendCapture(dst []byte, n int, inArgs bool) []byte {
	if n >= len(e.caps) {
		return dst
	}
	if inArgs {
		return append(dst, strings.ToUpper(e.caps[n])...)
	}
	return append(dst, e.caps[n]...)
}

// TestReplacement: a rewrite replacement splits at its first literal "?"
// when it is not a redirect, tells captures in the arguments from those
// in the URI, and never splits at a "?" inside a variable's value.
func TestReplacement(t *testing.T) {
	t.Parallel()
	e := expander{resolver{"host": "h", "q": "x?y"}, []string{"/all", "a", "b"}}
	for _, tc := range []struct {
		in      string
		split   bool
		want    string
		argsAt  int
		hasArgs bool
	}{
		{"/$1/$2", true, "/a/b", -1, false},
		{"/$1?v=$2&h=$host", true, "/av=B&h=h", 2, true},
		{"/p$q", true, "/px?y", -1, false},
		{"/a?b?c", true, "/ab?c", 2, true},
		{"https://$host/$1?v=$2", false, "https://h/a?v=b", -1, true},
		{"/$9", true, "/", -1, false},
		{"${host}x", true, "hx", -1, false},
	} {
		r, err := CompileReplacement(tc.in, tc.split)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		out, at := r.Expand(nil, e)
		if string(out) != tc.want || at != tc.argsAt || r.Args != tc.hasArgs {
			t.Errorf("%q split=%v: %q argsAt %d Args %v, want %q %d %v", tc.in, tc.split, out, at, r.Args, tc.want, tc.argsAt, tc.hasArgs)
		}
	}
	for _, bad := range []string{"/$", "/${x", "/$-"} {
		if _, err := CompileReplacement(bad, true); err == nil {
			t.Errorf("CompileReplacement(%q) succeeded", bad)
		}
	}
}

// FuzzReplacement: CompileReplacement never panics, and what compiles
// expands.
func FuzzReplacement(f *testing.F) {
	for _, s := range []string{"/$1?v=$2&h=$host", "${host}?", "https://$host$request_uri", "/a?b?c", "$"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, split bool) {
		r, err := CompileReplacement(s, split)
		if err != nil {
			return
		}
		r.Expand(nil, expander{resolver{"host": "h"}, []string{"/x", "a"}})
	})
}
