package soql

import (
	"sync/atomic"
	"time"
)

// FieldType is the SOAP type of a field, as far as querying cares.
type FieldType int

// Field types. String, Picklist, ID and Reference values are Go strings; Boolean is bool; Int is
// int64 (int also accepted); Double is float64; Date and DateTime are time.Time (a Date is
// compared by its calendar day in its own location, normally UTC midnight).
const (
	String FieldType = iota
	Boolean
	Int
	Double
	Date
	DateTime
	ID
	Reference
	Picklist
)

// String returns the type name Salesforce uses in filter error messages.
func (t FieldType) String() string {
	switch t {
	case String:
		return "string"
	case Boolean:
		return "boolean"
	case Int:
		return "integer"
	case Double:
		return "double"
	case Date:
		return "date"
	case DateTime:
		return "dateTime"
	case ID, Reference:
		return "id"
	case Picklist:
		return "picklist"
	}
	return "unknown"
}

// quoted reports whether literals of this type are written in quotes.
func (t FieldType) quoted() bool {
	switch t {
	case String, ID, Reference, Picklist:
		return true
	}
	return false
}

// Field describes one field of an sObject. Name is the canonical spelling.
type Field struct {
	Name string
	Type FieldType
}

// Relationship is a parent (lookup) relationship: Name is the canonical relationship name
// ("Owner"), IDField the id field holding the parent's id ("OwnerId"), Targets the parent
// sObject types. More than one target makes the relationship polymorphic.
type Relationship struct {
	Name, IDField string
	Targets       []string
}

// Schema resolves names case-insensitively and returns canonical spellings.
type Schema interface {
	// Object returns the canonical name of an sObject type.
	Object(name string) (canonical string, ok bool)
	// Field returns a field of a canonical object.
	Field(object, name string) (Field, bool)
	// Relationship returns a parent relationship of a canonical object.
	Relationship(object, name string) (Relationship, bool)
}

// Record is one live record.
type Record interface {
	// Type is the canonical sObject name.
	Type() string
	// ID is the 18-character id.
	ID() string
	// Value returns a field by canonical name: string, bool, int64, float64, time.Time or nil.
	Value(field string) (any, bool)
}

// Source is the org the query runs against.
type Source interface {
	Schema
	// Scan calls fn for every live record of a canonical object in a stable order, until fn
	// returns false.
	Scan(object string, fn func(Record) bool)
	// Get returns any live record by id; it is used for parent lookups.
	Get(id string) (Record, bool)
}

// Options carries what a query needs from its caller at run time. The frozen subset needs
// nothing from it: it has no date literal, so the package never reads a clock.
type Options struct {
	// Now is not read. It stays so that the emulator's callers, which set it, need not
	// change in the same commit; remove it with them.
	Now func() time.Time
}

// Result is what Run returns. For COUNT() IsCount is set and only TotalSize is meaningful.
// Otherwise Rows holds every matching row after LIMIT and TotalSize = len(Rows).
type Result struct {
	IsCount   bool
	TotalSize int
	Rows      []Row
}

// Row is one record as selected: Type and ID are always filled (for attributes.url), Cols
// follow the select-list order.
type Row struct {
	Type, ID string
	Cols     []Col
}

// Col is one selected column. A plain field has Name (canonical) and Value. A parent
// relationship has Name = the relationship name ("Owner") and Parent = the parent's row holding
// every field selected through that relationship, merged into one Col at the position of the
// first; Parent is nil when the parent is null.
type Col struct {
	Name   string
	Value  any
	Parent *Row
}

// Query is a parsed SOQL statement. It is immutable after Parse and safe for concurrent use;
// the first Run or Match binds it to the Source's schema and caches the binding, which assumes
// the schema behind a given Source value does not change (the emulator's schema is fixed).
type Query struct {
	stmt    string
	count   bool
	fields  []pathRef
	object  pathRef
	where   node
	orderBy []orderTerm
	limit   int // -1: none

	bound atomic.Pointer[boundCache]
}

// Object returns the object named in FROM, as written. Run and Match resolve it through the
// Schema; Plan.Object returns the canonical name.
func (q *Query) Object() string { return q.object.parts[0] }

// String returns the statement as given to Parse.
func (q *Query) String() string { return q.stmt }

// IsCount reports whether the statement is SELECT COUNT().
func (q *Query) IsCount() bool { return q.count }

// Run binds the query to src (INVALID_TYPE, INVALID_FIELD, ... on unknown names or mistyped
// filters), filters with WHERE, sorts by ORDER BY (ties keep Scan order), applies LIMIT and
// projects the select list.
func (q *Query) Run(src Source, o Options) (*Result, error) {
	p, err := q.planFor(src)
	if err != nil {
		return nil, err
	}
	return p.Run(src, o), nil
}

// Match reports whether rec satisfies the WHERE clause (and is of the queried object). It is
// what PushTopic matching needs; the select list, ORDER BY and LIMIT are ignored.
func (q *Query) Match(rec Record, src Source, o Options) (bool, error) {
	p, err := q.planFor(src)
	if err != nil {
		return false, err
	}
	return p.Match(rec, src, o), nil
}

// Bind resolves the query against a schema and returns the compiled plan. Run and Match call
// it (and cache the result) for you; call it directly to validate a query up front, e.g. a
// PushTopic's Query on insert, or to hold the plan yourself.
func (q *Query) Bind(s Schema) (*Plan, error) { return bind(q, s) }

type boundCache struct {
	schema Schema
	plan   *Plan
}

func (q *Query) planFor(src Source) (*Plan, error) {
	if c := q.bound.Load(); c != nil && sameSchema(c.schema, src) {
		return c.plan, nil
	}
	p, err := bind(q, src)
	if err != nil {
		return nil, err
	}
	q.bound.Store(&boundCache{schema: src, plan: p})
	return p, nil
}

// sameSchema compares two interface values; a dynamic type that is not comparable counts as
// different (and the query is simply bound again).
func sameSchema(a Schema, b Schema) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
