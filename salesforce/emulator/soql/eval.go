package soql

import (
	"cmp"
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// accessor reads one field path during evaluation.
type accessor struct {
	path string // filter expressions: handed to the getter as written

	field string // query: canonical field of the queried object (rel < 0)
	rel   int    // query: index of the parent relationship, or -1

	parentField  string            // monomorphic parent: canonical field on the target
	parentFields map[string]string // polymorphic parent: canonical field per target type
	typeFallback bool              // polymorphic Type: the parent's object type when it has no Type field
	colName      string            // the column name in output
}

// evalCtx is per-Run (or per-Eval) state. It is never shared between goroutines.
type evalCtx struct {
	rec     Record
	src     Source
	rels    []relPlan
	parents []Record
	loaded  []bool
	get     func(string) (any, bool)
}

type relPlan struct {
	name    string
	idField string
}

func (c *evalCtx) reset(r Record) {
	c.rec = r
	for i := range c.loaded {
		c.loaded[i] = false
		c.parents[i] = nil
	}
}

func (c *evalCtx) parent(i int) Record {
	if !c.loaded[i] {
		c.loaded[i] = true
		if v, ok := c.rec.Value(c.rels[i].idField); ok {
			if id, ok := v.(string); ok && id != "" {
				if p, ok := c.src.Get(id); ok {
					c.parents[i] = p
				}
			}
		}
	}
	return c.parents[i]
}

func (c *evalCtx) value(a *accessor) any {
	if c.get != nil {
		v, _ := c.get(a.path)
		return v
	}
	if a.rel < 0 {
		v, _ := c.rec.Value(a.field)
		return v
	}
	p := c.parent(a.rel)
	if p == nil {
		return nil
	}
	name := a.parentField
	if a.parentFields != nil {
		n, ok := a.parentFields[p.Type()]
		if !ok {
			if a.typeFallback {
				return p.Type()
			}
			return nil
		}
		name = n
	}
	v, _ := p.Value(name)
	return v
}

// cond is a compiled condition.
type cond interface{ eval(c *evalCtx) bool }

type andCond []cond
type orCond []cond

func (a andCond) eval(c *evalCtx) bool {
	for _, k := range a {
		if !k.eval(c) {
			return false
		}
	}
	return true
}

func (o orCond) eval(c *evalCtx) bool {
	for _, k := range o {
		if k.eval(c) {
			return true
		}
	}
	return false
}

type cmpCond struct {
	acc     accessor
	op      op
	lit     literal
	list    []literal
	set     map[string]bool // IN over many plain strings: lower-cased members
	setNull bool            // IN list contains null (with set)
}

// eval follows Salesforce's two-valued null semantics: a null field equals only null, so
// "!= 'x'" is true for null.
func (k *cmpCond) eval(c *evalCtx) bool {
	v := c.value(&k.acc)
	switch k.op {
	case opEq:
		return equal(v, &k.lit)
	case opNe:
		return !equal(v, &k.lit)
	case opIn:
		return k.in(v)
	}
	s, ok := v.(string)
	if !ok {
		return false // null (or not an id) is in no range
	}
	r := compareIDs(s, k.lit.s)
	switch k.op {
	case opLt:
		return r < 0
	case opLe:
		return r <= 0
	case opGt:
		return r > 0
	}
	return r >= 0
}

func isRange(o op) bool { return o == opLt || o == opLe || o == opGt || o == opGe }

// compareIDs orders two ids by their first 15 characters, byte by byte: base-62 digits in
// ASCII order (0-9, A-Z, a-z), case-sensitively, as PK chunking's base-62 boundaries are. The
// last 3 characters of an 18-character id only encode the case of the first 15, so an id and
// its 15-character form compare equal.
func compareIDs(a, b string) int {
	return strings.Compare(a[:min(len(a), 15)], b[:min(len(b), 15)])
}

func (k *cmpCond) in(v any) bool {
	if k.set != nil {
		if v == nil {
			return k.setNull
		}
		s, ok := v.(string)
		if !ok {
			return false
		}
		return k.set[strings.ToLower(s)]
	}
	for i := range k.list {
		if equal(v, &k.list[i]) {
			return true
		}
	}
	return false
}

// equal compares a field value with a literal.
func equal(v any, l *literal) bool {
	if l.kind == litNull {
		return v == nil
	}
	if v == nil {
		return false
	}
	switch l.kind {
	case litString:
		s, ok := v.(string)
		if !ok {
			return false
		}
		if l.id15 && len(s) == 18 {
			return s[:15] == l.s
		}
		return strings.EqualFold(s, l.s)
	case litBool:
		b, ok := v.(bool)
		return ok && b == l.b
	case litNumber:
		f, ok := toFloat(v)
		return ok && f == l.f
	}
	return false
}

// compareValues orders two non-null values of one field, for ORDER BY. Values of different
// kinds order by kind, so the sort stays total.
func compareValues(a, b any) int {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return foldCompare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok {
			return cmpBool(x, y)
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y)
		}
	default:
		if fx, ok := toFloat(a); ok {
			if fy, ok := toFloat(b); ok {
				return cmp.Compare(fx, fy)
			}
		}
	}
	return cmp.Compare(int64(kindRank(a)), int64(kindRank(b)))
}

func kindRank(v any) int {
	switch v.(type) {
	case bool:
		return 1
	case string:
		return 3
	case time.Time:
		return 4
	}
	if _, ok := toFloat(v); ok {
		return 2
	}
	return 5
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// foldCompare compares strings case-insensitively (Salesforce sorts and compares text without
// regard to case), falling back to byte order so distinct strings never tie arbitrarily.
func foldCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if ca < utf8.RuneSelf && cb < utf8.RuneSelf {
			if 'A' <= ca && ca <= 'Z' {
				ca += 'a' - 'A'
			}
			if 'A' <= cb && cb <= 'Z' {
				cb += 'a' - 'A'
			}
			if ca != cb {
				return cmp.Compare(int64(ca), int64(cb))
			}
			i++
			j++
			continue
		}
		ra, na := utf8.DecodeRuneInString(a[i:])
		rb, nb := utf8.DecodeRuneInString(b[j:])
		la, lb := unicode.ToLower(ra), unicode.ToLower(rb)
		if la != lb {
			return cmp.Compare(int64(la), int64(lb))
		}
		i += na
		j += nb
	}
	switch {
	case len(a)-i < len(b)-j:
		return -1
	case len(a)-i > len(b)-j:
		return 1
	}
	return 0
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case float32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
