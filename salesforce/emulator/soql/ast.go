package soql

// pathRef is a field path as written: one part ("Status"), or relationship and field
// ("Owner.Name"); filter expressions may have more parts.
type pathRef struct {
	parts []string
	pos   int
	text  string
}

type orderTerm struct {
	path pathRef
	desc bool
}

type op int

const (
	opEq op = iota
	opNe
	opIn
	// The range operators, on id fields only (ids compare by their first 15 characters,
	// case-sensitively: base-62 order).
	opLt
	opLe
	opGt
	opGe
)

// rangeOps are the range operators by their text.
var rangeOps = map[string]op{"<": opLt, "<=": opLe, ">": opGt, ">=": opGe}

type litKind int

const (
	litNull litKind = iota
	litBool
	litNumber
	litString
)

type literal struct {
	kind litKind
	pos  int
	text string
	s    string
	b    bool
	f    float64
	id15 bool // litString against an ID field: a 15-character id compared case-sensitively to the first 15 characters
}

// node is a parsed WHERE condition.
type node interface{ isNode() }

type logicNode struct {
	or   bool
	kids []node
}

type cmpNode struct {
	path  pathRef
	op    op
	opPos int
	opTxt string
	lit   literal
	list  []literal
}

func (*logicNode) isNode() {}
func (*cmpNode) isNode()   {}
