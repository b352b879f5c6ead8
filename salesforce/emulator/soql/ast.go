package soql

import "time"

// pathRef is a field path as written: one part ("Status"), or relationship and field
// ("Owner.Name"); filter expressions may have more parts.
type pathRef struct {
	parts []string
	pos   int
	text  string
}

type orderTerm struct {
	path            pathRef
	desc, nullsLast bool
}

type op int

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opLike
	opIn
	opNotIn
)

func opFromText(s string) op {
	switch s {
	case "=":
		return opEq
	case "!=", "<>":
		return opNe
	case "<":
		return opLt
	case "<=":
		return opLe
	case ">":
		return opGt
	}
	return opGe
}

func (o op) String() string {
	return [...]string{"=", "!=", "<", "<=", ">", ">=", "LIKE", "IN", "NOT IN"}[o]
}

type litKind int

const (
	litNull litKind = iota
	litBool
	litNumber
	litString
	litDate     // YYYY-MM-DD
	litDateTime // YYYY-MM-DDThh:mm:ssZ
	litRelDate  // TODAY, LAST_N_DAYS:n, ...: the day range [today+from, today+to)
)

type literal struct {
	kind     litKind
	pos      int
	text     string
	s        string
	b        bool
	f        float64
	t        time.Time
	day      int64 // litDate: civil day number
	from, to int   // litRelDate: day offsets from today
	relIdx   int   // litRelDate: index of its bounds in the evaluation context
	id15     bool  // litString against an ID field: a 15-character id compared case-sensitively to the first 15 characters
}

// node is a parsed WHERE condition.
type node interface{ isNode() }

type logicNode struct {
	or   bool
	kids []node
}

type notNode struct{ x node }

type cmpNode struct {
	path  pathRef
	op    op
	opPos int
	lit   literal
	list  []literal
}

func (*logicNode) isNode() {}
func (*notNode) isNode()   {}
func (*cmpNode) isNode()   {}
