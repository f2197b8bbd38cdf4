package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxIncludeDepth bounds include recursion so a file that includes itself
// is an error rather than a stack overflow.
const maxIncludeDepth = 16

// token is one lexical element of a configuration file.
type token struct {
	text   string
	line   int
	quoted bool
	// kind is 0 for a word, or one of ';', '{', '}'.
	kind byte
}

// lex splits src into tokens with nginx's rules (ngx_conf_read_token):
// whitespace separates words; ';', '{' and '}' stand alone when they begin
// a token; '#' starts a comment to the end of the line when it begins a
// word; "..." and '...' quote; a backslash protects the next character,
// and the escapes of unescape apply to quoted and bare words alike.
func lex(file string, src []byte) ([]token, error) {
	var toks []token
	line := 1
	i := 0
	n := len(src)
	for i < n {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#':
			for i < n && src[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, token{text: string(c), line: line, kind: c})
			i++
		case c == '"' || c == '\'':
			q := c
			start := line
			i++
			j := i
			closed := false
			for i < n {
				ch := src[i]
				if ch == '\\' && i+1 < n {
					if src[i+1] == '\n' {
						line++
					}
					i += 2
					continue
				}
				if ch == '\n' {
					line++
				}
				if ch == q {
					closed = true
					break
				}
				i++
			}
			if !closed {
				return nil, &Error{File: file, Line: start, Msg: "unexpected end of file, expecting closing quote"}
			}
			text := unescape(src[j:i])
			i++
			// As nginx, ")" may follow a quoted word: it starts the
			// next word (if ($a = "b") has the arguments "($a", "=",
			// "b", ")").
			if i < n && !isSpace(src[i]) && src[i] != ';' && src[i] != '{' && src[i] != '}' && src[i] != ')' {
				return nil, &Error{File: file, Line: line, Msg: fmt.Sprintf("unexpected %q after quoted string", src[i])}
			}
			toks = append(toks, token{text: text, line: start, quoted: true})
		default:
			// A bare word ends at whitespace, ';' or '{' (a '{' right
			// after '$' opens "${name}"). As in nginx, '}' does not end
			// a word, and a backslash protects the next character.
			start := line
			j := i
			for i < n {
				ch := src[i]
				if isSpace(ch) || ch == ';' || ch == '{' && (i == j || src[i-1] != '$' || escapedAt(src, j, i-1)) {
					break
				}
				if ch == '\\' && i+1 < n {
					if src[i+1] == '\n' {
						line++
					}
					i += 2
					continue
				}
				i++
			}
			toks = append(toks, token{text: unescape(src[j:i]), line: start})
		}
	}
	return toks, nil
}

// escapedAt reports whether the byte at k in src[from:] is escaped by an
// odd run of backslashes before it.
func escapedAt(src []byte, from, k int) bool {
	n := 0
	for k-1-n >= from && src[k-1-n] == '\\' {
		n++
	}
	return n%2 == 1
}

// unescape applies nginx's escapes to a raw word, quoted or not: \" \'
// and \\ stand for the character, \t \r \n for the control character;
// any other backslash is kept (regexes such as "\.js$" rely on it).
func unescape(raw []byte) string {
	if !bytes.ContainsRune(raw, '\\') {
		return string(raw)
	}
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+1 < len(raw) {
			switch raw[i+1] {
			case '"', '\'', '\\':
				b = append(b, raw[i+1])
				i++
				continue
			case 't':
				b = append(b, '\t')
				i++
				continue
			case 'r':
				b = append(b, '\r')
				i++
				continue
			case 'n':
				b = append(b, '\n')
				i++
				continue
			}
		}
		b = append(b, raw[i])
	}
	return string(b)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// parser builds the directive tree from tokens and expands include.
type parser struct {
	prefix string // directory relative include paths resolve against
	depth  int
	files  map[string]bool // files on the current include stack
}

// Parse reads the file at path and returns its top-level directives with
// every include expanded in place. Relative include paths resolve against
// prefix; an empty prefix means the directory of path.
func Parse(path, prefix string) ([]*Directive, error) {
	if prefix == "" {
		prefix = filepath.Dir(path)
	}
	p := &parser{prefix: prefix, files: map[string]bool{}}
	return p.parseFile(path, nil)
}

// ParseBytes parses src as if read from a file named name.
func ParseBytes(name string, src []byte, prefix string) ([]*Directive, error) {
	if prefix == "" {
		prefix = filepath.Dir(name)
	}
	p := &parser{prefix: prefix, files: map[string]bool{}}
	return p.parseSrc(name, src)
}

func (p *parser) parseFile(path string, from *Directive) ([]*Directive, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		if from != nil {
			return nil, from.Errorf("include %q: %v", path, unwrapPathErr(err))
		}
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read configuration: %v", unwrapPathErr(err))}
	}
	abs, _ := filepath.Abs(path)
	if p.files[abs] {
		return nil, from.Errorf("include %q: file includes itself", path)
	}
	p.files[abs] = true
	defer delete(p.files, abs)
	return p.parseSrc(path, src)
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (p *parser) parseSrc(name string, src []byte) ([]*Directive, error) {
	toks, err := lex(name, src)
	if err != nil {
		return nil, err
	}
	pos := 0
	ds, err := p.parseBlock(name, toks, &pos, 0)
	if err != nil {
		// nginx reports an unexpected end of file at the line after the
		// last newline, where its reader stopped.
		if e, ok := err.(*Error); ok && e.File == name && strings.HasPrefix(e.Msg, "unexpected end of file, expecting \";\" or \"}\"") || ok && e.File == name && e.Msg == `unexpected end of file, expecting "}"` {
			e.Line = bytes.Count(src, []byte{'\n'}) + 1
		}
		return nil, err
	}
	return ds, nil
}

// parseBlock reads directives until a closing brace (depth > 0) or the end
// of the tokens (depth 0).
func (p *parser) parseBlock(file string, toks []token, pos *int, depth int) ([]*Directive, error) {
	var out []*Directive
	for *pos < len(toks) {
		t := toks[*pos]
		switch t.kind {
		case '}':
			if depth == 0 {
				return nil, &Error{File: file, Line: t.line, Msg: `unexpected "}"`}
			}
			*pos++
			return out, nil
		case ';':
			return nil, &Error{File: file, Line: t.line, Msg: `unexpected ";"`}
		case '{':
			return nil, &Error{File: file, Line: t.line, Msg: `unexpected "{"`}
		}
		d := &Directive{Name: t.text, File: file, Line: t.line}
		if t.quoted {
			// nginx allows a quoted directive name; keep it as a name.
			d.Name = t.text
		}
		*pos++
		for {
			if *pos >= len(toks) {
				return nil, &Error{File: file, Line: t.line, Msg: fmt.Sprintf("unexpected end of file, expecting \";\" or \"}\" after %q", d.Name)}
			}
			a := toks[*pos]
			if a.kind == ';' {
				*pos++
				break
			}
			if a.kind == '{' {
				*pos++
				d.HasBlock = true
				children, err := p.parseBlock(file, toks, pos, depth+1)
				if err != nil {
					return nil, err
				}
				d.Block = children
				break
			}
			if a.kind == '}' {
				return nil, &Error{File: file, Line: a.line, Msg: fmt.Sprintf("unexpected \"}\": directive %q is not terminated by \";\"", d.Name)}
			}
			d.Args = append(d.Args, a.text)
			d.Quoted = append(d.Quoted, a.quoted)
			*pos++
		}
		if d.Name == "include" && !d.HasBlock {
			inc, err := p.include(d)
			if err != nil {
				return nil, err
			}
			out = append(out, inc...)
			continue
		}
		out = append(out, d)
	}
	if depth > 0 {
		line := 0
		if len(toks) > 0 {
			line = toks[len(toks)-1].line
		}
		return nil, &Error{File: file, Line: line, Msg: `unexpected end of file, expecting "}"`}
	}
	return out, nil
}

// include expands one include directive. A pattern with glob characters
// may match nothing (as in nginx); a plain path must exist.
func (p *parser) include(d *Directive) ([]*Directive, error) {
	if len(d.Args) != 1 {
		return nil, d.Errorf(`invalid number of arguments in "include" directive`)
	}
	if p.depth >= maxIncludeDepth {
		return nil, d.Errorf("include nested deeper than %d levels", maxIncludeDepth)
	}
	pat := d.Args[0]
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(p.prefix, pat)
	}
	var files []string
	if strings.ContainsAny(pat, "*?[") {
		m, err := filepath.Glob(pat)
		if err != nil {
			return nil, d.Errorf("include %q: %v", d.Args[0], err)
		}
		sort.Strings(m)
		for _, f := range m {
			if st, err := os.Stat(f); err == nil && !st.IsDir() {
				files = append(files, f)
			}
		}
	} else {
		files = []string{pat}
	}
	p.depth++
	defer func() { p.depth-- }()
	var out []*Directive
	for _, f := range files {
		ds, err := p.parseFile(f, d)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	return out, nil
}
