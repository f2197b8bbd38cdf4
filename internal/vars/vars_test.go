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
