package soql

import "slices"

func (p *Plan) newCtx(src Source) *evalCtx {
	c := &evalCtx{src: src, rels: p.rels}
	if n := len(p.rels); n > 0 {
		c.parents = make([]Record, n)
		c.loaded = make([]bool, n)
	}
	return c
}

// Match reports whether rec is of the plan's object and satisfies its WHERE clause.
func (p *Plan) Match(rec Record, src Source, _ Options) bool {
	if rec == nil || rec.Type() != p.object {
		return false
	}
	if p.where == nil {
		return true
	}
	c := p.newCtx(src)
	c.reset(rec)
	return p.where.eval(c)
}

// Project renders one record as the select list would, ignoring WHERE, ORDER BY and LIMIT;
// parents are looked up through src. PushTopic notifications use it after Match.
func (p *Plan) Project(rec Record, src Source) Row {
	c := p.newCtx(src)
	return p.project(c, []Record{rec})[0]
}

// Run executes the plan against src. Rows come in ORDER BY order; ties, and queries without
// ORDER BY, keep the Scan order, so results are deterministic for a deterministic Source.
func (p *Plan) Run(src Source, _ Options) *Result {
	c := p.newCtx(src)
	// Without ORDER BY the scan can stop as soon as LIMIT rows matched.
	need := -1
	if p.limit >= 0 && len(p.order) == 0 {
		need = p.limit
	}
	if p.count {
		n := 0
		if need != 0 {
			src.Scan(p.object, func(r Record) bool {
				c.reset(r)
				if p.where == nil || p.where.eval(c) {
					n++
				}
				return need < 0 || n < need
			})
		}
		if p.limit >= 0 {
			n = min(n, p.limit)
		}
		return &Result{IsCount: true, TotalSize: n}
	}
	var matched []Record
	if p.byID != "" && need != 0 {
		// Ids are unique, so a hit is the whole answer; a miss (say, a differently cased
		// id) falls back to the scan.
		if r, ok := src.Get(p.byID); ok && r.Type() == p.object {
			c.reset(r)
			if p.where.eval(c) {
				matched = []Record{r}
			}
			need = 0
		}
	}
	if need != 0 {
		src.Scan(p.object, func(r Record) bool {
			c.reset(r)
			if p.where == nil || p.where.eval(c) {
				matched = append(matched, r)
			}
			return need < 0 || len(matched) < need
		})
	}
	if len(p.order) > 0 && len(matched) > 1 {
		matched = p.sort(c, matched)
	}
	if p.limit >= 0 && len(matched) > p.limit {
		matched = matched[:p.limit]
	}
	rows := p.project(c, matched)
	return &Result{TotalSize: len(rows), Rows: rows}
}

// sort orders records by the ORDER BY keys, computed once per record. Nulls go first in
// either direction (Salesforce: "By default, null values are sorted first").
func (p *Plan) sort(c *evalCtx, recs []Record) []Record {
	k := len(p.order)
	keys := make([]any, len(recs)*k)
	for i, r := range recs {
		c.reset(r)
		for j := range p.order {
			keys[i*k+j] = c.value(&p.order[j].acc)
		}
	}
	idx := make([]int, len(recs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		for j := range p.order {
			o := &p.order[j]
			va, vb := keys[a*k+j], keys[b*k+j]
			var r int
			switch {
			case va == nil && vb == nil:
				continue
			case va == nil:
				return -1
			case vb == nil:
				return 1
			}
			if sa, ok := va.(string); ok && o.ids {
				if sb, ok := vb.(string); ok {
					r = compareIDs(sa, sb)
				}
			} else {
				r = compareValues(va, vb)
			}
			if o.desc {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return 0
	})
	out := make([]Record, len(recs))
	for i, j := range idx {
		out[i] = recs[j]
	}
	return out
}

// project builds the rows. Columns, parent rows and parent columns for all rows come from
// three slabs, so a Run allocates a handful of times however many rows it returns.
func (p *Plan) project(c *evalCtx, recs []Record) []Row {
	rows := make([]Row, len(recs))
	if len(recs) == 0 {
		return rows
	}
	nParents, nParentCols := 0, 0
	for i := range p.cols {
		if p.cols[i].rel >= 0 {
			nParents++
			nParentCols += len(p.cols[i].parent)
		}
	}
	k := len(p.cols)
	cols := make([]Col, len(recs)*k)
	var parentRows []Row
	var parentCols []Col
	if nParents > 0 {
		parentRows = make([]Row, 0, len(recs)*nParents)
		parentCols = make([]Col, 0, len(recs)*nParentCols)
	}
	for ri, r := range recs {
		c.reset(r)
		row := Row{Type: r.Type(), ID: r.ID(), Cols: cols[ri*k : (ri+1)*k : (ri+1)*k]}
		for i := range p.cols {
			cp := &p.cols[i]
			if cp.rel < 0 {
				v, _ := r.Value(cp.acc.field)
				row.Cols[i] = Col{Name: cp.name, Value: v}
				continue
			}
			col := Col{Name: cp.name}
			if parent := c.parent(cp.rel); parent != nil {
				start := len(parentCols)
				for j := range cp.parent {
					a := &cp.parent[j]
					parentCols = append(parentCols, Col{Name: a.colName, Value: c.value(a)})
				}
				parentRows = append(parentRows, Row{Type: parent.Type(), ID: parent.ID(), Cols: parentCols[start:len(parentCols):len(parentCols)]})
				col.Parent = &parentRows[len(parentRows)-1]
			}
			row.Cols[i] = col
		}
		rows[ri] = row
	}
	return rows
}
