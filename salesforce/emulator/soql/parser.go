package soql

import (
	"strconv"
	"strings"
)

// Parse parses a SOQL statement. It checks syntax only (and the emulator's frozen subset);
// names are resolved by Run, Match or Bind. Every error is an *Error with Code MALFORMED_QUERY.
//
// Grammar (keywords, object and field names are case-insensitive): the frozen subset, what
// omniroute and its tests send (docs/emulator.md, "SOQL subset").
//
//	query   = SELECT (COUNT "(" ")" | path {"," path}) FROM ident
//	          [WHERE cond] [ORDER BY term {"," term}] [LIMIT int]   no ORDER BY with COUNT()
//	path    = ident ["." ident]                     one level of parent relationship
//	term    = path [ASC|DESC]
//	cond    = unary {AND unary} | unary {OR unary}  mixing AND and OR needs parentheses
//	unary   = "(" cond ")" | path ("=" | "!=") value | path IN "(" value {"," value} ")"
//	value   = NULL | TRUE | FALSE | number | 'string'
func Parse(stmt string) (*Query, error) {
	toks, lerr := lex(stmt)
	if lerr != nil {
		return nil, errAt(CodeMalformedQuery, stmt, lerr.pos, lerr.reason)
	}
	p := &parser{src: stmt, toks: toks, soql: true}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	return q, nil
}

// maxDepth bounds nesting of parentheses and NOT, so hostile input cannot exhaust the stack.
const maxDepth = 100

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
	soql  bool // false: a channel filter expression (errors without the statement echo)
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errTok(t token) *Error {
	if t.kind == tEOF {
		return p.errAt(t.pos, "unexpected token: <EOF>")
	}
	return p.errAt(t.pos, "unexpected token: '"+t.text+"'")
}

func (p *parser) errAt(pos int, reason string) *Error {
	e := errAt(CodeMalformedQuery, p.src, pos, reason)
	if !p.soql {
		// Filter expressions are short: the reason and where, without the statement echo.
		e.Message = reason + " at column " + strconv.Itoa(e.Column)
		if e.Row > 1 {
			e.Message = reason + " at row " + strconv.Itoa(e.Row) + ", column " + strconv.Itoa(e.Column)
		}
	}
	return e
}

// isKw reports whether t is the keyword kw (upper case).
func isKw(t token, kw string) bool { return t.kind == tIdent && strings.EqualFold(t.text, kw) }

func (p *parser) acceptKw(kw string) bool {
	if isKw(p.peek(), kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expectKw(kw string) *Error {
	if !p.acceptKw(kw) {
		return p.errTok(p.peek())
	}
	return nil
}

// reserved words cannot be field or object names.
var reserved = map[string]bool{
	"AND": true, "ASC": true, "DESC": true, "EXCLUDES": true, "FIRST": true, "FROM": true, "GROUP": true,
	"HAVING": true, "IN": true, "INCLUDES": true, "LAST": true, "LIKE": true, "LIMIT": true, "NOT": true,
	"NULL": true, "NULLS": true, "OR": true, "SELECT": true, "WHERE": true, "WITH": true, "TRUE": true,
	"FALSE": true, "ORDER": true, "OFFSET": true, "TYPEOF": true, "FOR": true, "USING": true, "BY": true,
}

// outsideSubset is the reason of every error about valid SOQL outside the frozen subset.
func outsideSubset(feature string) string {
	return feature + ": not in the emulator's SOQL subset (what omniroute sends)"
}

// useEqNeIn ends the reason of an operator outside the subset.
const useEqNeIn = "; use =, != or IN"

// unsupported names SOQL features outside the emulator's subset, keyed by the keyword that
// introduces them.
var unsupported = map[string]string{
	"GROUP":    outsideSubset("GROUP BY"),
	"HAVING":   outsideSubset("HAVING"),
	"WITH":     outsideSubset("WITH"),
	"FOR":      outsideSubset("FOR VIEW, FOR REFERENCE and FOR UPDATE"),
	"USING":    outsideSubset("USING SCOPE"),
	"TYPEOF":   outsideSubset("TYPEOF"),
	"INCLUDES": outsideSubset("INCLUDES"),
	"EXCLUDES": outsideSubset("EXCLUDES"),
	"ALL":      outsideSubset("ALL ROWS") + "; use the queryAll resource",
	"OFFSET":   outsideSubset("OFFSET"),
	"NULLS":    outsideSubset("NULLS FIRST and NULLS LAST"),
	"LIKE":     outsideSubset("LIKE") + useEqNeIn,
	"NOT":      outsideSubset("NOT") + useEqNeIn,
}

func (p *parser) unsupportedErr(t token) *Error {
	if t.kind == tIdent {
		if msg, ok := unsupported[strings.ToUpper(t.text)]; ok {
			return p.errAt(t.pos, msg)
		}
	}
	return p.errTok(t)
}

func (p *parser) query() (*Query, error) {
	q := &Query{stmt: p.src, limit: -1}
	if err := p.expectKw("SELECT"); err != nil {
		return nil, err
	}
	if err := p.selectList(q); err != nil {
		return nil, err
	}
	if err := p.expectKw("FROM"); err != nil {
		return nil, err
	}
	obj := p.next()
	// Group is a reserved word and a standard object (queues): FROM takes it as the object.
	if obj.kind != tIdent || (reserved[strings.ToUpper(obj.text)] && !strings.EqualFold(obj.text, "Group")) {
		if obj.kind == tLParen {
			return nil, p.errAt(obj.pos, outsideSubset("sub-queries in FROM"))
		}
		return nil, p.errTok(obj)
	}
	if strings.Contains(obj.text, ".") {
		return nil, p.errTok(obj)
	}
	q.object = pathRef{parts: []string{obj.text}, pos: obj.pos, text: obj.text}
	if p.acceptKw("WHERE") {
		n, err := p.cond()
		if err != nil {
			return nil, err
		}
		q.where = n
	}
	if p.acceptKw("ORDER") {
		if err := p.expectKw("BY"); err != nil {
			return nil, err
		}
		for {
			term, err := p.orderTerm()
			if err != nil {
				return nil, err
			}
			if q.count {
				// "You can't use COUNT() with an ORDER BY clause" (SOQL reference, COUNT());
				// the wording is Salesforce's for ordering an aggregate query.
				return nil, p.errAt(term.path.pos, "Ordered field must be grouped or aggregated: "+term.path.text)
			}
			q.orderBy = append(q.orderBy, term)
			if p.peek().kind != tComma {
				break
			}
			p.next()
		}
	}
	if p.acceptKw("LIMIT") {
		n, err := p.nonNegInt()
		if err != nil {
			return nil, err
		}
		q.limit = n
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unsupportedErr(t)
	}
	return q, nil
}

func (p *parser) selectList(q *Query) *Error {
	first := p.peek()
	if isKw(first, "COUNT") && p.toks[p.i+1].kind == tLParen {
		p.i += 2
		if t := p.next(); t.kind != tRParen {
			return p.errAt(t.pos, outsideSubset("aggregate functions such as COUNT(field)")+"; use COUNT()")
		}
		q.count = true
		if t := p.peek(); t.kind == tComma {
			return p.errTok(t)
		}
		return nil
	}
	seen := map[string]bool{}
	for {
		t := p.next()
		switch {
		case t.kind == tLParen:
			return p.errAt(t.pos, outsideSubset("child relationship sub-queries"))
		case t.kind != tIdent || reserved[strings.ToUpper(t.text)]:
			if t.kind == tIdent && strings.EqualFold(t.text, "TYPEOF") {
				return p.unsupportedErr(t)
			}
			return p.errTok(t)
		}
		if p.peek().kind == tLParen {
			return p.errAt(t.pos, outsideSubset("functions in the select list ("+t.text+")"))
		}
		ref, err := p.pathOf(t)
		if err != nil {
			return err
		}
		key := strings.ToLower(t.text)
		if seen[key] {
			return p.errAt(t.pos, "duplicate field selected: "+t.text)
		}
		seen[key] = true
		q.fields = append(q.fields, ref)
		if p.peek().kind != tComma {
			return nil
		}
		p.next()
	}
}

// pathOf turns an identifier token into a path, allowing one level of relationship in SOQL.
func (p *parser) pathOf(t token) (pathRef, *Error) {
	parts := strings.Split(t.text, ".")
	if p.soql && len(parts) > 2 {
		return pathRef{}, p.errAt(t.pos, outsideSubset("relationship paths deeper than one level ("+t.text+")"))
	}
	return pathRef{parts: parts, pos: t.pos, text: t.text}, nil
}

func (p *parser) nonNegInt() (int, *Error) {
	t := p.next()
	if t.kind != tNumber {
		return 0, p.errTok(t)
	}
	n, err := strconv.Atoi(t.text)
	if err != nil || n < 0 || strings.HasPrefix(t.text, "+") {
		return 0, p.errTok(t)
	}
	return n, nil
}

func (p *parser) orderTerm() (orderTerm, *Error) {
	t := p.next()
	if t.kind != tIdent || reserved[strings.ToUpper(t.text)] {
		return orderTerm{}, p.errTok(t)
	}
	if p.peek().kind == tLParen {
		return orderTerm{}, p.errAt(t.pos, outsideSubset("functions in ORDER BY ("+t.text+")"))
	}
	ref, err := p.pathOf(t)
	if err != nil {
		return orderTerm{}, err
	}
	term := orderTerm{path: ref}
	switch {
	case p.acceptKw("ASC"):
	case p.acceptKw("DESC"):
		term.desc = true
	}
	return term, nil
}

// cond parses a chain of unary conditions joined by one kind of logical operator.
func (p *parser) cond() (node, *Error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.errAt(p.peek().pos, "condition nested too deeply")
	}
	first, err := p.unary()
	if err != nil {
		return nil, err
	}
	var kind string
	kids := []node{first}
	for {
		t := p.peek()
		var k string
		switch {
		case isKw(t, "AND"):
			k = "AND"
		case isKw(t, "OR"):
			k = "OR"
		default:
			if len(kids) == 1 {
				return first, nil
			}
			return &logicNode{or: kind == "OR", kids: kids}, nil
		}
		if kind != "" && k != kind {
			// Salesforce: "Parentheses are required whenever you mix the operators."
			return nil, p.errTok(t)
		}
		kind = k
		p.next()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
}

func (p *parser) unary() (node, *Error) {
	t := p.peek()
	switch {
	case isKw(t, "NOT"):
		return nil, p.unsupportedErr(t)
	case t.kind == tLParen:
		p.next()
		if isKw(p.peek(), "SELECT") {
			return nil, p.errAt(p.peek().pos, outsideSubset("semi-join sub-selects"))
		}
		n, err := p.cond()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errTok(c)
		}
		return n, nil
	}
	return p.comparison()
}

func (p *parser) comparison() (node, *Error) {
	t := p.next()
	if t.kind != tIdent || reserved[strings.ToUpper(t.text)] {
		return nil, p.unsupportedErr(t)
	}
	if p.peek().kind == tLParen {
		return nil, p.errAt(t.pos, outsideSubset("functions in WHERE ("+t.text+")"))
	}
	ref, err := p.pathOf(t)
	if err != nil {
		return nil, err
	}
	opTok := p.next()
	c := &cmpNode{path: ref, opPos: opTok.pos, opTxt: opTok.text}
	switch {
	case opTok.kind == tOp && opTok.text == "=":
		c.op = opEq
	case opTok.kind == tOp && opTok.text == "!=":
		c.op = opNe
	case opTok.kind == tOp && rangeOps[opTok.text] != 0:
		c.op = rangeOps[opTok.text] // on id fields only: checked when bound to the schema
	case opTok.kind == tOp:
		return nil, p.errAt(opTok.pos, outsideSubset("operator "+opTok.text)+useEqNeIn)
	case isKw(opTok, "IN"):
		c.op = opIn
	case isKw(opTok, "NOT") && isKw(p.peek(), "IN"):
		return nil, p.errAt(opTok.pos, outsideSubset("NOT IN")+useEqNeIn)
	default:
		return nil, p.unsupportedErr(opTok)
	}
	if c.op == opIn {
		lp := p.next()
		if lp.kind != tLParen {
			if lp.kind == tColon {
				return nil, p.errAt(lp.pos, outsideSubset("bind variables"))
			}
			return nil, p.errTok(lp)
		}
		if isKw(p.peek(), "SELECT") {
			return nil, p.errAt(p.peek().pos, outsideSubset("semi-join sub-selects"))
		}
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			c.list = append(c.list, v)
			sep := p.next()
			if sep.kind == tRParen {
				break
			}
			if sep.kind != tComma {
				return nil, p.errTok(sep)
			}
		}
		return c, nil
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	c.lit = v
	return c, nil
}

func (p *parser) value() (literal, *Error) {
	t := p.next()
	switch t.kind {
	case tString:
		return literal{kind: litString, pos: t.pos, text: t.text, s: t.str}, nil
	case tNumber:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return literal{}, p.errTok(t)
		}
		return literal{kind: litNumber, pos: t.pos, text: t.text, f: f}, nil
	case tDate:
		return literal{}, p.errAt(t.pos, outsideSubset("date and dateTime literals ("+t.text+")"))
	case tColon:
		return literal{}, p.errAt(t.pos, outsideSubset("bind variables"))
	case tIdent:
		switch strings.ToUpper(t.text) {
		case "NULL":
			return literal{kind: litNull, pos: t.pos, text: t.text}, nil
		case "TRUE":
			return literal{kind: litBool, pos: t.pos, text: t.text, b: true}, nil
		case "FALSE":
			return literal{kind: litBool, pos: t.pos, text: t.text}, nil
		}
		if isDateLiteralName(t.text) {
			return literal{}, p.errAt(t.pos, outsideSubset("date literals ("+t.text+")"))
		}
	}
	return literal{}, p.errTok(t)
}

// isDateLiteralName recognises Salesforce's date literals (TODAY, LAST_N_DAYS:n, THIS_MONTH,
// ...), so they get a clear message instead of "unexpected token".
func isDateLiteralName(s string) bool {
	u := strings.ToUpper(s)
	switch u {
	case "TODAY", "YESTERDAY", "TOMORROW":
		return true
	}
	for _, pre := range []string{"THIS_", "LAST_", "NEXT_", "N_"} {
		if strings.HasPrefix(u, pre) {
			return true
		}
	}
	return false
}
