package mapping

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Position is a place in a mapping file. Line and Column are 1-based; zero means unknown.
type Position struct {
	File   string
	Line   int
	Column int
}

// String formats file:line:col, leaving out unknown parts.
func (p Position) String() string {
	switch {
	case p.Line == 0 && p.File == "":
		return ""
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
}

// Problem is one error or warning about a mapping, at a position and YAML path.
type Problem struct {
	Pos Position
	// Path is the YAML path, e.g. plans[2].overflow.plan. Empty for the whole file.
	Path    string
	Message string
	// Warning marks problems that do not stop the mapping from loading.
	Warning bool
}

// String formats the problem as "file:line:col: yaml.path: message".
func (p Problem) String() string {
	var b strings.Builder
	if s := p.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in a mapping, sorted by position. As an error it prints one
// problem per line. Callers that want the individual problems use errors.As.
type Problems []Problem

// Error prints one problem per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

// problemList collects problems with positions looked up from a source.
type problemList struct {
	src *source
	ps  []Problem
}

func (l *problemList) add(path, format string, args ...any) {
	l.ps = append(l.ps, Problem{Pos: l.src.pos(path), Path: path, Message: fmt.Sprintf(format, args...)})
}

func (l *problemList) warn(path, format string, args ...any) {
	l.ps = append(l.ps, Problem{Pos: l.src.pos(path), Path: path, Message: fmt.Sprintf(format, args...), Warning: true})
}

func (l *problemList) err() error {
	if len(l.ps) == 0 {
		return nil
	}
	sortProblems(l.ps)
	return Problems(l.ps)
}
