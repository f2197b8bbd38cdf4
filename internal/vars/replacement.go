package vars

import (
	"strings"
)

// Replacement is the compiled replacement of a rewrite directive. It
// differs from a Template in what nginx's script compiler does for
// rewrite: "$1".."$9" are captures that the caller may escape, and the
// first literal "?" (outside variable values) starts the arguments when
// the replacement is not a redirect.
type Replacement struct {
	raw   string
	parts []rpart
	// Args reports a literal "?" in the replacement: the new URI carries
	// its own arguments (old arguments, if kept, follow after "&").
	Args bool
	// split is set when the first "?" separates URI and arguments (a
	// rewrite that is not a redirect).
	split bool
}

type rpartKind uint8

const (
	rLit rpartKind = iota
	rVar
	rCapture
	rArgs // the "?" that starts the arguments
)

type rpart struct {
	kind rpartKind
	lit  string
	name string
	n    int
}

// CompileReplacement parses a rewrite replacement. split makes the first
// literal "?" the start of the arguments (nginx's compile_args, used for
// rewrites that are not redirects).
func CompileReplacement(s string, split bool) (*Replacement, error) {
	r := &Replacement{raw: s, split: split}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			r.parts = append(r.parts, rpart{kind: rLit, lit: lit.String()})
			lit.Reset()
		}
	}
	argsStarted := false
	for i := 0; i < len(s); {
		c := s[i]
		if c == '?' {
			r.Args = true
			if split && !argsStarted {
				argsStarted = true
				flush()
				r.parts = append(r.parts, rpart{kind: rArgs})
				i++
				continue
			}
		}
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		i++
		if i < len(s) && s[i] >= '1' && s[i] <= '9' {
			flush()
			r.parts = append(r.parts, rpart{kind: rCapture, n: int(s[i] - '0')})
			i++
			continue
		}
		name, next, err := scanVarName(s, i)
		if err != nil {
			return nil, err
		}
		i = next
		flush()
		r.parts = append(r.parts, rpart{kind: rVar, name: strings.ToLower(name)})
	}
	flush()
	return r, nil
}

// Raw returns the text the replacement was compiled from.
func (r *Replacement) Raw() string {
	if r == nil {
		return ""
	}
	return r.raw
}

// Expander supplies what a replacement refers to: variables, and
// captures (appended to dst; inArgs tells whether the capture stands in
// the arguments part).
type Expander interface {
	Var(name string) (string, bool)
	AppendCapture(dst []byte, n int, inArgs bool) []byte
}

// Expand appends the replacement's value to dst. argsAt is the offset in
// the result where the arguments begin (the "?" itself is not written),
// or -1 when the replacement has no argument part.
func (r *Replacement) Expand(dst []byte, e Expander) (out []byte, argsAt int) {
	argsAt = -1
	start := len(dst)
	inArgs := false
	for _, p := range r.parts {
		switch p.kind {
		case rLit:
			dst = append(dst, p.lit...)
		case rVar:
			v, _ := e.Var(p.name)
			dst = append(dst, v...)
		case rCapture:
			dst = e.AppendCapture(dst, p.n, inArgs)
		case rArgs:
			inArgs = true
			argsAt = len(dst) - start
		}
	}
	return dst, argsAt
}
