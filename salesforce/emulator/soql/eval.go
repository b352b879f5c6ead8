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

// relBounds is a relative date literal resolved against the clock of one Run.
type relBounds struct {
	fromDay, toDay int64
	from, to       time.Time
}

// evalCtx is per-Run (or per-Eval) state. It is never shared between goroutines.
type evalCtx struct {
	rec     Record
	src     Source
	rels    []relPlan
	parents []Record
	loaded  []bool
	get     func(string) (any, bool)
	bounds  []relBounds
	runes   []rune
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
type notCond struct{ x cond }

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

func (n notCond) eval(c *evalCtx) bool { return !n.x.eval(c) }

type cmpCond struct {
	acc     accessor
	op      op
	lit     literal
	list    []literal
	set     map[string]bool // IN over many plain strings: lower-cased members
	setNull bool            // IN list contains null (with set)
	like    []likeTok
	dayMode bool // relative dates compare calendar days (Date fields)
}

// eval follows Salesforce's two-valued null semantics: a null field equals only null, so
// "!= 'x'" and "NOT IN (...)" are true for null, and every ordering comparison and LIKE is false.
func (k *cmpCond) eval(c *evalCtx) bool {
	v := c.value(&k.acc)
	switch k.op {
	case opEq:
		return equal(c, v, &k.lit, k.dayMode)
	case opNe:
		return !equal(c, v, &k.lit, k.dayMode)
	case opIn:
		return k.in(c, v)
	case opNotIn:
		return !k.in(c, v)
	case opLike:
		s, ok := v.(string)
		return ok && k.lit.kind == litString && likeMatch(c, k.like, s)
	}
	if v == nil || k.lit.kind == litNull {
		return false
	}
	if k.lit.kind == litRelDate {
		pos, ok := relPosition(c, v, &k.lit, k.dayMode)
		if !ok {
			return false
		}
		switch k.op {
		case opLt:
			return pos < 0
		case opLe:
			return pos <= 0
		case opGt:
			return pos > 0
		default:
			return pos >= 0
		}
	}
	r, ok := compare(v, &k.lit)
	if !ok {
		return false
	}
	switch k.op {
	case opLt:
		return r < 0
	case opLe:
		return r <= 0
	case opGt:
		return r > 0
	default:
		return r >= 0
	}
}

func (k *cmpCond) in(c *evalCtx, v any) bool {
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
		if equal(c, v, &k.list[i], k.dayMode) {
			return true
		}
	}
	return false
}

// equal compares a field value with a literal.
func equal(c *evalCtx, v any, l *literal, dayMode bool) bool {
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
	case litDate:
		d, ok := toDay(v)
		return ok && d == l.day
	case litDateTime:
		t, ok := toTime(v)
		return ok && t.Equal(l.t)
	case litRelDate:
		pos, ok := relPosition(c, v, l, dayMode)
		return ok && pos == 0
	}
	return false
}

// relPosition places v before (-1), inside (0) or after (+1) a relative date range.
func relPosition(c *evalCtx, v any, l *literal, dayMode bool) (int, bool) {
	b := &c.bounds[l.relIdx]
	if dayMode {
		d, ok := toDay(v)
		if !ok {
			return 0, false
		}
		switch {
		case d < b.fromDay:
			return -1, true
		case d >= b.toDay:
			return 1, true
		}
		return 0, true
	}
	t, ok := toTime(v)
	if !ok {
		return 0, false
	}
	switch {
	case t.Before(b.from):
		return -1, true
	case !t.Before(b.to):
		return 1, true
	}
	return 0, true
}

// compare orders a non-null value against a literal; ok is false when they do not compare.
func compare(v any, l *literal) (int, bool) {
	switch l.kind {
	case litString:
		s, ok := v.(string)
		if !ok {
			return 0, false
		}
		return foldCompare(s, l.s), true
	case litNumber:
		f, ok := toFloat(v)
		if !ok {
			return 0, false
		}
		return cmp.Compare(f, l.f), true
	case litBool:
		b, ok := v.(bool)
		if !ok {
			return 0, false
		}
		return cmpBool(b, l.b), true
	case litDate:
		d, ok := toDay(v)
		if !ok {
			return 0, false
		}
		return cmp.Compare(d, l.day), true
	case litDateTime:
		t, ok := toTime(v)
		if !ok {
			return 0, false
		}
		return t.Compare(l.t), true
	}
	return 0, false
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

// Layouts accepted for datetime values that arrive as strings (CDC payloads, REST output).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.DateOnly}

func toTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case string:
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, x); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

func toDay(v any) (int64, bool) {
	if s, ok := v.(string); ok {
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			return dayNumber(t), true
		}
	}
	t, ok := toTime(v)
	if !ok {
		return 0, false
	}
	return dayNumber(t), true
}

// likeTok is one element of a compiled LIKE pattern.
type likeTok struct {
	r    rune // lower-cased literal rune
	kind byte // 0 literal, 1 '_' (one character), 2 '%' (any run)
}

// compileLike compiles a pattern: % matches any run, _ one character, \% and \_ the literal
// characters. Matching is case-insensitive.
func compileLike(p string) []likeTok {
	var out []likeTok
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRuneInString(p[i:])
		switch {
		case r == '\\' && i+1 < len(p) && (p[i+1] == '%' || p[i+1] == '_'):
			out = append(out, likeTok{r: rune(p[i+1])})
			i += 2
			continue
		case r == '%':
			if len(out) == 0 || out[len(out)-1].kind != 2 {
				out = append(out, likeTok{kind: 2})
			}
		case r == '_':
			out = append(out, likeTok{kind: 1})
		default:
			out = append(out, likeTok{r: unicode.ToLower(r)})
		}
		i += n
	}
	return out
}

func likeMatch(c *evalCtx, pat []likeTok, s string) bool {
	rs := c.runes[:0]
	for _, r := range s {
		rs = append(rs, unicode.ToLower(r))
	}
	c.runes = rs
	// Iterative wildcard matching with single-star backtracking: O(len(s)*len(pat)).
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(rs) {
		switch {
		case pi < len(pat) && (pat[pi].kind == 1 || (pat[pi].kind == 0 && pat[pi].r == rs[si])):
			pi++
			si++
		case pi < len(pat) && pat[pi].kind == 2:
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi].kind == 2 {
		pi++
	}
	return pi == len(pat)
}
