package vars

import (
	"regexp"
	"strings"
)

// Map is a compiled "map SOURCE $result { ... }" block. Exact keys are
// matched first (case-sensitively, as nginx does without "hostnames"),
// then regular expressions in the order written ("~" case-sensitive,
// "~*" case-insensitive); "default" applies when nothing matches.
type Map struct {
	Source  *Template
	Result  string // variable name without "$"
	exact   map[string]*Template
	regexes []mapRegex
	Default *Template
}

type mapRegex struct {
	re    *regexp.Regexp
	value *Template
}

// NewMap returns an empty map from source to result.
func NewMap(source *Template, result string) *Map {
	return &Map{Source: source, Result: result, exact: map[string]*Template{}}
}

// AddExact adds an exact key. It reports false if the key was already set.
func (m *Map) AddExact(key string, value *Template) bool {
	if _, dup := m.exact[key]; dup {
		return false
	}
	m.exact[key] = value
	return true
}

// AddRegex adds a regular expression key (pattern without the "~").
func (m *Map) AddRegex(pattern string, caseless bool, value *Template) error {
	if caseless {
		pattern = "(?i)" + pattern
	}
	re, err := regexp.Compile(ConvertRegex(pattern))
	if err != nil {
		return err
	}
	m.regexes = append(m.regexes, mapRegex{re: re, value: value})
	return nil
}

// Eval returns the map's value for the request r.
func (m *Map) Eval(r Resolver) string {
	src := m.Source.Eval(r)
	if v, ok := m.exact[src]; ok {
		return v.Eval(r)
	}
	for _, rx := range m.regexes {
		if rx.re.MatchString(src) {
			return rx.value.Eval(r)
		}
	}
	return m.Default.Eval(r)
}

// ConvertRegex rewrites the PCRE constructs nginx configs commonly use
// into Go RE2 syntax: named groups "(?<name>...)" and "(?P<name>...)".
// Other PCRE-only features (lookaround, backreferences) fail to compile
// and are reported as config errors.
func ConvertRegex(p string) string {
	return strings.ReplaceAll(p, "(?<", "(?P<")
}

// Vars returns the names of the variables the map's source and values use.
func (m *Map) Vars() []string {
	out := m.Source.Vars()
	for _, v := range m.exact {
		out = append(out, v.Vars()...)
	}
	for _, rx := range m.regexes {
		out = append(out, rx.value.Vars()...)
	}
	return append(out, m.Default.Vars()...)
}
