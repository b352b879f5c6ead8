package soql

import (
	"slices"
	"strings"
)

// Plan is a Query bound to a schema: names resolved to canonical spellings, filter literals
// checked against field types, the condition compiled. It is immutable and safe for concurrent
// use.
type Plan struct {
	object string
	count  bool
	cols   []colPlan
	where  cond
	order  []orderPlan
	limit  int
	rels   []relPlan
	byID   string // WHERE pins Id to one 18-character id: try Source.Get before scanning

	selectFields, whereFields []string
}

type colPlan struct {
	acc    accessor   // a plain field (rel < 0)
	rel    int        // parent relationship index, or -1
	name   string     // column name: field or relationship name
	parent []accessor // fields selected through the relationship, in select order
}

type orderPlan struct {
	acc  accessor
	desc bool
	ids  bool // an id or reference field: ids sort case-sensitively (compareIDs)
}

// Object returns the canonical object name.
func (p *Plan) Object() string { return p.object }

// IsCount reports whether the plan is SELECT COUNT().
func (p *Plan) IsCount() bool { return p.count }

// SelectFields returns the canonical fields of the queried object that the select list reads,
// in first-use order; a parent path contributes its relationship's id field ("Owner.Name" ->
// "OwnerId"). PushTopic NotifyForFields (Select, Referenced) is built on it.
func (p *Plan) SelectFields() []string { return append([]string(nil), p.selectFields...) }

// WhereFields is SelectFields for the WHERE clause (NotifyForFields Where, Referenced).
func (p *Plan) WhereFields() []string { return append([]string(nil), p.whereFields...) }

type binder struct {
	collect *[]string // where resolve records the fields it binds
	q       *Query
	s       Schema
	object  string
	plan    *Plan
	relIdx  map[string]int // canonical relationship name -> index
}

func bind(q *Query, s Schema) (*Plan, error) {
	obj, ok := s.Object(q.object.text)
	if !ok {
		return nil, errAt(CodeInvalidType, q.stmt, q.object.pos, unsupportedType(q.object.text))
	}
	b := &binder{q: q, s: s, object: obj, relIdx: map[string]int{}}
	b.plan = &Plan{object: obj, count: q.count, limit: q.limit}
	colByRel := map[int]int{}
	seen := map[string]bool{}
	b.collect = &b.plan.selectFields
	for _, f := range q.fields {
		acc, _, err := b.resolve(f)
		if err != nil {
			return nil, err
		}
		key := acc.colName
		if acc.rel >= 0 {
			key = b.plan.rels[acc.rel].name + "." + acc.colName
		}
		if seen[strings.ToLower(key)] {
			return nil, b.errAt(CodeMalformedQuery, f.pos, "duplicate field selected: "+key)
		}
		seen[strings.ToLower(key)] = true
		if acc.rel < 0 {
			b.plan.cols = append(b.plan.cols, colPlan{acc: acc, rel: -1, name: acc.colName})
			continue
		}
		ci, ok := colByRel[acc.rel]
		if !ok {
			ci = len(b.plan.cols)
			colByRel[acc.rel] = ci
			b.plan.cols = append(b.plan.cols, colPlan{rel: acc.rel, name: b.plan.rels[acc.rel].name})
		}
		b.plan.cols[ci].parent = append(b.plan.cols[ci].parent, acc)
	}
	b.collect = &b.plan.whereFields
	if q.where != nil {
		c, err := b.compile(q.where)
		if err != nil {
			return nil, err
		}
		b.plan.where = c
		b.plan.byID = pinnedID(c)
	}
	b.collect = nil
	for _, o := range q.orderBy {
		acc, typ, err := b.resolve(o.path)
		if err != nil {
			return nil, err
		}
		b.plan.order = append(b.plan.order, orderPlan{acc: acc, desc: o.desc, ids: typ == ID || typ == Reference})
	}
	return b.plan, nil
}

func (b *binder) errAt(code string, pos int, reason string) *Error {
	return errAt(code, b.q.stmt, pos, reason)
}

// resolve binds a path to an accessor and the field's type.
func (b *binder) resolve(p pathRef) (accessor, FieldType, *Error) {
	if len(p.parts) == 1 {
		f, ok := b.s.Field(b.object, p.parts[0])
		if !ok {
			return accessor{}, 0, b.errAt(CodeInvalidField, p.pos, noSuchColumn(p.parts[0], b.object))
		}
		b.note(f.Name)
		return accessor{field: f.Name, rel: -1, colName: f.Name}, f.Type, nil
	}
	rel, ok := b.s.Relationship(b.object, p.parts[0])
	if !ok {
		return accessor{}, 0, b.errAt(CodeInvalidField, p.pos, unknownRelationship(p.parts[0]))
	}
	idx, ok := b.relIdx[rel.Name]
	if !ok {
		idx = len(b.plan.rels)
		b.relIdx[rel.Name] = idx
		b.plan.rels = append(b.plan.rels, relPlan{name: rel.Name, idField: rel.IDField})
	}
	acc := accessor{rel: idx}
	fieldPos := p.pos + len(p.parts[0]) + 1
	if len(rel.Targets) > 1 {
		// Salesforce resolves a polymorphic relationship through the Name entity: only its
		// fields can be selected, whatever the targets have.
		nf, ok := nameEntity[strings.ToLower(p.parts[1])]
		if !ok {
			return accessor{}, 0, b.errAt(CodeInvalidField, fieldPos, noSuchColumn(p.parts[1], "Name"))
		}
		acc.colName, acc.parentField = nf.Name, nf.Name
		acc.parentFields = map[string]string{}
		for _, t := range rel.Targets {
			if f, ok := b.s.Field(t, nf.Name); ok {
				acc.parentFields[t] = f.Name
			}
		}
		acc.typeFallback = nf.Name == "Type"
		b.note(rel.IDField)
		return acc, nf.Type, nil
	}
	var typ FieldType
	found := false
	for _, t := range rel.Targets {
		if f, ok := b.s.Field(t, p.parts[1]); ok {
			found, typ = true, f.Type
			acc.colName, acc.parentField = f.Name, f.Name
			break
		}
	}
	if !found {
		entity := ""
		if len(rel.Targets) == 1 {
			entity = rel.Targets[0]
		}
		return accessor{}, 0, b.errAt(CodeInvalidField, fieldPos, noSuchColumn(p.parts[1], entity))
	}
	b.note(rel.IDField)
	return acc, typ, nil
}

// note records a field of the queried object for SelectFields and WhereFields.
func (b *binder) note(field string) {
	if b.collect == nil || slices.Contains(*b.collect, field) {
		return
	}
	*b.collect = append(*b.collect, field)
}

func (b *binder) compile(n node) (cond, *Error) {
	if c, err, ok := compileLogic(n, b.compile); ok {
		return c, err
	}
	switch x := n.(type) {
	case *cmpNode:
		acc, typ, err := b.resolve(x.path)
		if err != nil {
			return nil, err
		}
		name := acc.colName
		k := &cmpCond{acc: acc, op: x.op}
		if isRange(x.op) {
			if typ != ID {
				return nil, b.errAt(CodeMalformedQuery, x.opPos,
					outsideSubset("operator "+x.opTxt+" on a field that is not an id ("+name+")")+useEqNeIn)
			}
		}
		if x.op == opIn {
			for _, l := range x.list {
				l, err := b.checkLit(l, name, typ)
				if err != nil {
					return nil, err
				}
				k.list = append(k.list, l)
			}
			buildSet(k)
			return k, nil
		}
		l, err := b.checkLit(x.lit, name, typ)
		if err != nil {
			return nil, err
		}
		if isRange(x.op) && l.kind == litNull { // null, or '' (null on an id field)
			return nil, b.errAt(CodeMalformedQuery, x.opPos, outsideSubset("operator "+x.opTxt+" with null"))
		}
		k.lit = l
		return k, nil
	}
	return nil, b.errAt(CodeMalformedQuery, 0, "unexpected condition")
}

// checkLit checks a literal against the field type and normalises it. Date and datetime
// fields take only null: the frozen subset has no date literals.
func (b *binder) checkLit(l literal, name string, typ FieldType) (literal, *Error) {
	if l.kind == litNull {
		return l, nil
	}
	ok := false
	switch typ {
	case String, Picklist:
		ok = l.kind == litString
	case ID, Reference:
		if l.kind == litString {
			if l.s == "" {
				// Salesforce treats '' on an id field as null.
				return literal{kind: litNull, pos: l.pos, text: l.text}, nil
			}
			if !validID(l.s) {
				return l, b.errAt(CodeInvalidFilterOperator, l.pos, "invalid ID field: "+l.s)
			}
			l.id15 = len(l.s) == 15
			ok = true
		}
	case Boolean:
		ok = l.kind == litBool
	case Int, Double:
		ok = l.kind == litNumber
	}
	if !ok {
		return l, b.errAt(CodeInvalidField, l.pos, wrongFilterType(name, typ))
	}
	return l, nil
}

func validID(s string) bool {
	if len(s) != 15 && len(s) != 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentStart(s[i]) && !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// buildSet turns a long IN list of plain strings into a set.
func buildSet(k *cmpCond) {
	if len(k.list) < 8 {
		return
	}
	set := make(map[string]bool, len(k.list))
	null := false
	for _, l := range k.list {
		switch {
		case l.kind == litNull:
			null = true
		case l.kind == litString && !l.id15:
			set[strings.ToLower(l.s)] = true
		default:
			return
		}
	}
	k.set, k.setNull = set, null
}

// pinnedID returns the id when the condition is "Id = '<18 chars>'" or has it as a top-level
// conjunct.
func pinnedID(c cond) string {
	conj := []cond{c}
	if a, ok := c.(andCond); ok {
		conj = a
	}
	for _, k := range conj {
		if x, ok := k.(*cmpCond); ok && x.op == opEq && x.acc.rel < 0 && x.acc.field == "Id" &&
			x.lit.kind == litString && len(x.lit.s) == 18 {
			return x.lit.s
		}
	}
	return ""
}

// nameEntity holds the fields of Salesforce's Name entity, through which polymorphic
// relationships such as Owner are queried. Type is the parent's object type ("User") unless
// the parent has a Type field of its own (a queue's Group.Type is "Queue").
var nameEntity = func() map[string]Field {
	m := map[string]Field{}
	for _, f := range []Field{
		{"Id", ID}, {"Name", String}, {"Alias", String}, {"CommunityNickname", String}, {"Email", String},
		{"FirstName", String}, {"LastName", String}, {"IsActive", Boolean}, {"Phone", String}, {"Title", String},
		{"Type", Picklist}, {"Username", String}, {"UserRoleId", Reference}, {"ProfileId", Reference},
		{"RecordTypeId", Reference}, {"NameOrAlias", String}, {"LastReferencedDate", DateTime},
		{"LastViewedDate", DateTime}, {"SmallPhotoUrl", String}, {"MediumPhotoUrl", String}, {"FullPhotoUrl", String},
	} {
		m[strings.ToLower(f.Name)] = f
	}
	return m
}()
