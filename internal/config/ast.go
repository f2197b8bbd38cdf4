// Package config reads nginx-syntax configuration files and compiles them
// into the runtime model wsgate serves from.
//
// Reading happens in two stages. Parse turns text into a tree of Directives
// (syntax only: tokens, quotes, blocks, include). Load then checks every
// directive against the directive table (name, context, argument count) and
// compiles the tree into a Config. Every error carries the file and line of
// the directive it is about and prints as "FILE:LINE: message".
package config

import (
	"errors"
	"fmt"
	"strings"
)

// Directive is one nginx directive: a name, its arguments, and for block
// directives the directives inside the braces.
type Directive struct {
	Name string
	Args []string
	// Quoted reports, per argument, whether it was written in quotes. nginx
	// gives quoted and bare words the same meaning except in a few places
	// (an empty '' map key, for one), so most code ignores it.
	Quoted []bool
	File   string
	Line   int
	// Block holds the children of a block directive; HasBlock tells an
	// empty block ("events {}") from no block at all.
	Block    []*Directive
	HasBlock bool
}

// Pos returns "FILE:LINE" for the directive.
func (d *Directive) Pos() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// Errorf returns an *Error located at the directive.
func (d *Directive) Errorf(format string, a ...any) *Error {
	return &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf(format, a...)}
}

// Find returns the first child directive with the given name, or nil.
func (d *Directive) Find(name string) *Directive {
	for _, c := range d.Block {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Error is a configuration error at a file and line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	if e.File != "" {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return e.Msg
}

// ErrorList collects several configuration errors; its message has one
// error per line.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns nil for an empty list and the list otherwise.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Errors flattens err into its configuration errors. An error that is not
// a configuration error becomes one with no position.
func Errors(err error) []*Error {
	if err == nil {
		return nil
	}
	var l ErrorList
	if errors.As(err, &l) {
		return l
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return []*Error{{Msg: err.Error()}}
}
