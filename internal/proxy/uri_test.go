package proxy

import (
	"strings"
	"testing"
)

// TestNormalizeURI follows nginx's ngx_http_parse_complex_uri: %XX
// decoded, "//" merged, "." and ".." resolved, ".." above the root, bad
// escapes and NUL rejected (400).
func TestNormalizeURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, in, want string
		bad            bool
	}{
		{desc: "root", in: "/", want: "/"},
		{desc: "plain", in: "/a/b", want: "/a/b"},
		{desc: "trailing slash kept", in: "/a/b/", want: "/a/b/"},
		{desc: "double slashes merged", in: "//a//b//", want: "/a/b/"},
		{desc: "dot segment", in: "/a/./b", want: "/a/b"},
		{desc: "dot-dot segment", in: "/a/x/../b", want: "/a/b"},
		{desc: "trailing dot", in: "/a/.", want: "/a/"},
		{desc: "trailing dot-dot", in: "/a/b/..", want: "/a/"},
		{desc: "dot-dot to the root", in: "/a/..", want: "/"},
		{desc: "space decoded", in: "/a%20b", want: "/a b"},
		{desc: "%2F decoded to a slash", in: "/a%2Fb", want: "/a/b"},
		{desc: "%25 decoded once", in: "/a%25b", want: "/a%b"},
		{desc: "%2525 decoded once", in: "/a%2525b", want: "/a%25b"},
		{desc: "lowercase hex", in: "/%7euser", want: "/~user"},
		{desc: "encoded dots resolved", in: "/a/%2e%2e/b", want: "/b"},
		{desc: "encoded slash and dots resolved", in: "/a/b%2F..%2Fc", want: "/a/c"},
		{desc: "UTF-8 bytes", in: "/caf%C3%A9", want: "/café"},
		{desc: "dots in names are not segments", in: "/a/..b/.c/...", want: "/a/..b/.c/..."},
		{desc: "asterisk (OPTIONS *)", in: "*", want: "*"},
		{desc: "dot-dot above the root", in: "/..", bad: true},
		{desc: "dot-dot above the root later", in: "/a/../../b", bad: true},
		{desc: "encoded dot-dot above the root", in: "/%2e%2e/etc/passwd", bad: true},
		{desc: "bad escape", in: "/a%zz", bad: true},
		{desc: "truncated escape", in: "/a%2", bad: true},
		{desc: "percent at the end", in: "/a%", bad: true},
		{desc: "NUL", in: "/a%00b", bad: true},
		{desc: "raw NUL", in: "/a\x00b", bad: true},
		{desc: "relative", in: "a/b", bad: true},
		{desc: "empty", in: "", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := normalizeURI(tc.in)
			if tc.bad {
				if err == nil {
					t.Errorf("normalizeURI(%q) = %q, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("normalizeURI(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestEscapeURI follows ngx_escape_uri(NGX_ESCAPE_URI) of nginx 1.22.1
// (checked: "/app/a%22b%7Cc%5Ed" through proxy_pass http://b/ reaches the
// upstream as "/a%22b%7Cc%5Ed"): space, '"', '#', '%', '<', '>', '?', '\',
// '^', '`', '{', '|', '}', control bytes, DEL and bytes >= 0x80 are
// escaped, nothing else.
func TestEscapeURI(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"/a/b", "/a/b"},
		{"/a b", "/a%20b"},
		{"/a#b", "/a%23b"},
		{"/a%b", "/a%25b"},
		{"/a?b", "/a%3Fb"},
		{"/café", "/caf%C3%A9"},
		{"/\x01\x7f", "/%01%7F"},
		{"/~!$&'()*+,;=:@[]", "/~!$&'()*+,;=:@[]"},
		{"/\"<>{}|\\^`", "/%22%3C%3E%7B%7D%7C%5C%5E%60"},
	}
	for _, tc := range tests {
		if got := escapeURI(tc.in); got != tc.want {
			t.Errorf("escapeURI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSplitTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, path, query string
		has             bool
	}{
		{"/a", "/a", "", false},
		{"/a?", "/a", "", true},
		{"/a?b=c?d", "/a", "b=c?d", true},
	}
	for _, tc := range tests {
		p, q, has := splitTarget(tc.in)
		if p != tc.path || q != tc.query || has != tc.has {
			t.Errorf("splitTarget(%q) = %q, %q, %v", tc.in, p, q, has)
		}
	}
}

// FuzzNormalizeURI: a normalized URI is absolute, has no "//", no "." or
// ".." segment and no NUL, and normalizing it again (after escaping)
// changes nothing.
func FuzzNormalizeURI(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//x//y/", "/%2e%2e/", "/a%2Fb/..%2f", "/a/./b/.", "/caf%C3%A9", "/a%25"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := normalizeURI(raw)
		if err != nil || n == "*" {
			return
		}
		if !strings.HasPrefix(n, "/") || strings.Contains(n, "//") || strings.IndexByte(n, 0) >= 0 {
			t.Fatalf("normalizeURI(%q) = %q", raw, n)
		}
		for _, seg := range strings.Split(n, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("normalizeURI(%q) = %q keeps a dot segment", raw, n)
			}
		}
		again, err := normalizeURI(escapeURI(n))
		if err != nil || again != n {
			t.Fatalf("normalizeURI(escapeURI(%q)) = %q, %v", n, again, err)
		}
	})
}
