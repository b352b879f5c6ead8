package soql

import (
	"strings"
)

// Condition is a compiled channel-member filter expression (PlatformEventChannelMember
// filterExpression), e.g. "RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true". It
// uses the WHERE grammar of Parse over event fields; paths may have any number of dotted parts
// ("ChangeEventHeader.changeType"). It is immutable and safe for concurrent use.
type Condition struct {
	expr  string
	root  cond
	paths []string
}

// ParseCondition parses a filter expression. Errors are *Error with Code MALFORMED_QUERY and a
// "... at column N" message. The grammar is the WHERE clause of the frozen subset (=, !=, IN,
// AND, OR, parentheses; null, booleans, numbers and strings).
func ParseCondition(expr string) (*Condition, error) {
	toks, lerr := lex(expr)
	p := &parser{src: expr, toks: toks}
	if lerr != nil {
		return nil, p.errAt(lerr.pos, lerr.reason)
	}
	if p.peek().kind == tEOF {
		return nil, p.errAt(0, "empty filter expression")
	}
	n, err := p.cond()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errTok(t)
	}
	c := &Condition{expr: expr}
	seen := map[string]bool{}
	root, err := compileUntyped(p, n, func(path string) {
		if !seen[path] {
			seen[path] = true
			c.paths = append(c.paths, path)
		}
	})
	if err != nil {
		return nil, err
	}
	c.root = root
	return c, nil
}

// compileLogic compiles AND, OR and NOT nodes, compiling their operands with leaf; ok is false
// for any other node. Both the bound (query) and the untyped (filter) compilers use it.
func compileLogic(n node, leaf func(node) (cond, *Error)) (c cond, err *Error, ok bool) {
	switch x := n.(type) {
	case *logicNode:
		kids := make([]cond, 0, len(x.kids))
		for _, k := range x.kids {
			c, err := leaf(k)
			if err != nil {
				return nil, err, true
			}
			kids = append(kids, c)
		}
		if x.or {
			return orCond(kids), nil, true
		}
		return andCond(kids), nil, true
	}
	return nil, nil, false
}

func compileUntyped(p *parser, n node, addPath func(string)) (cond, *Error) {
	rec := func(k node) (cond, *Error) { return compileUntyped(p, k, addPath) }
	if c, err, ok := compileLogic(n, rec); ok {
		return c, err
	}
	switch x := n.(type) {
	case *cmpNode:
		if isRange(x.op) {
			return nil, p.errAt(x.opPos, outsideSubset("operator "+x.opTxt+" in a filter expression")+useEqNeIn)
		}
		addPath(x.path.text)
		k := &cmpCond{acc: accessor{path: x.path.text, rel: -1}, op: x.op, lit: x.lit, list: x.list}
		if x.op == opIn {
			buildSet(k)
		}
		return k, nil
	}
	return nil, p.errAt(0, "unexpected condition")
}

// String returns the expression as given to ParseCondition.
func (c *Condition) String() string { return c.expr }

// Paths returns the distinct field paths the expression reads, as written, in first-use order.
func (c *Condition) Paths() []string { return append([]string(nil), c.paths...) }

// Eval evaluates the condition. get is called with each field path exactly as written in the
// expression (case preserved, e.g. "ChangeEventHeader.changeType"); a missing field is null.
// Case-insensitive lookup is the caller's choice: LookupFold provides it for decoded JSON.
// Values may be string, bool, float64, int64, int, json.Number or nil. Null semantics are
// those of SOQL: a missing or null field equals only null and satisfies !=.
func (c *Condition) Eval(get func(path string) (any, bool)) bool {
	ctx := &evalCtx{get: get}
	return c.root.eval(ctx)
}

// LookupFold returns a getter over a decoded JSON object (nested map[string]any) that follows
// dotted paths and matches each key case-insensitively, preferring an exact match.
func LookupFold(m map[string]any) func(path string) (any, bool) {
	return func(path string) (any, bool) {
		var cur any = m
		for rest, more := path, true; more; {
			var part string
			part, rest, more = strings.Cut(rest, ".")
			obj, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			v, ok := obj[part]
			if !ok {
				// Several keys may fold to the same name: take the smallest, so the
				// result never depends on map order.
				best, found := "", false
				for k, kv := range obj {
					if strings.EqualFold(k, part) && (!found || k < best) {
						best, v, found = k, kv, true
					}
				}
				if !found {
					return nil, false
				}
			}
			cur = v
		}
		return cur, true
	}
}
