// Package vars compiles and evaluates nginx variable templates such as
// "$scheme://$host$request_uri" and implements the map directive.
package vars

import (
	"fmt"
	"strings"
)

// Resolver looks up the value of a variable by name (without "$").
// It reports false when the variable is unknown for this request; an
// unknown variable evaluates to the empty string, as in nginx.
type Resolver interface {
	Var(name string) (string, bool)
}

// part is a literal run or a variable reference.
type part struct {
	lit   string
	name  string // variable name when isVar
	isVar bool
}

// Template is a compiled string with embedded variables. The zero value
// evaluates to "". A Template is immutable and safe for concurrent use.
type Template struct {
	raw   string
	parts []part
}

// Compile parses s. Variables are written $name or ${name}; a name is
// letters, digits and underscores. A "$" not followed by a name is an
// error, as in nginx ("invalid variable name").
func Compile(s string) (*Template, error) {
	t := &Template{raw: s}
	var lit strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		name, next, err := scanVarName(s, i+1)
		if err != nil {
			return nil, err
		}
		i = next
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, part{name: strings.ToLower(name), isVar: true})
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	return t, nil
}

// scanVarName reads the variable name that starts at s[i], just after a
// "$": "{name}", one capture digit ("$1".."$9", as in nginx's script
// compiler: "$10" is $1 followed by "0"), or letters, digits and
// underscores. It returns the name as written and where the text goes on.
func scanVarName(s string, i int) (name string, next int, err error) {
	switch {
	case i < len(s) && s[i] == '{':
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", 0, fmt.Errorf("the closing bracket in %q variable is missing", s)
		}
		name, next = s[i+1:i+end], i+end+1
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		name, next = s[i:i+1], i+1
	default:
		next = i
		for next < len(s) && isNameByte(s[next]) {
			next++
		}
		name = s[i:next]
	}
	if name == "" || !validName(name) {
		return "", 0, fmt.Errorf("invalid variable name in %q", s)
	}
	return name, next, nil
}

// MustCompile is Compile for templates known to be valid.
func MustCompile(s string) *Template {
	t, err := Compile(s)
	if err != nil {
		panic(err)
	}
	return t
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// Raw returns the text the template was compiled from.
func (t *Template) Raw() string {
	if t == nil {
		return ""
	}
	return t.raw
}

// IsConst reports whether the template holds no variables.
func (t *Template) IsConst() bool {
	if t == nil {
		return true
	}
	for _, p := range t.parts {
		if p.isVar {
			return false
		}
	}
	return true
}

// Vars returns the names of the variables the template uses.
func (t *Template) Vars() []string {
	var out []string
	if t == nil {
		return nil
	}
	for _, p := range t.parts {
		if p.isVar {
			out = append(out, p.name)
		}
	}
	return out
}

// Eval returns the template's value for r.
func (t *Template) Eval(r Resolver) string {
	if t == nil {
		return ""
	}
	if len(t.parts) == 1 {
		p := t.parts[0]
		if !p.isVar {
			return p.lit
		}
		v, _ := r.Var(p.name)
		return v
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.isVar {
			v, _ := r.Var(p.name)
			b.WriteString(v)
		} else {
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

// EvalEscaped is Eval with every variable's value passed through esc
// (log_format escaping applies to variable values, not literal text).
func (t *Template) EvalEscaped(r Resolver, esc func(string) string) string {
	if t == nil {
		return ""
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.isVar {
			v, ok := r.Var(p.name)
			if !ok || v == "" {
				if p.name != "" && !ok {
					v = "-"
				}
			}
			b.WriteString(esc(v))
		} else {
			b.WriteString(p.lit)
		}
	}
	return b.String()
}
