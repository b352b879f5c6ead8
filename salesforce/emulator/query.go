package emulator

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

const (
	defaultBatch = 2000
	minBatch     = 200
	maxCursors   = 1000
)

// cursor is the rest of a query result, served through nextRecordsUrl.
type cursor struct {
	rows    []soql.Row
	total   int
	batch   int
	version string
}

func soqlRESTError(err error) *restError {
	var se *soql.Error
	if errors.As(err, &se) {
		return errf(http.StatusBadRequest, se.Code, se.Message)
	}
	return errf(http.StatusBadRequest, "MALFORMED_QUERY", err.Error())
}

// batchSize reads Sforce-Query-Options: batchSize=N (200..2000; default 2000).
func batchSize(r *http.Request) int {
	for p := range strings.SplitSeq(r.Header.Get("Sforce-Query-Options"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "batchSize="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return defaultBatch
			}
			return min(max(n, minBatch), defaultBatch)
		}
	}
	return defaultBatch
}

// query serves query?q= and query/{locator}; with all (queryAll) deleted records are found
// too, with IsDeleted=true.
func (c *restCtx) query(all bool, locator string) *restError {
	if c.method != http.MethodGet {
		return methodNotAllowed(c.method)
	}
	e := c.e
	if locator != "" {
		return c.queryMore(locator)
	}
	stmt := c.r.URL.Query().Get("q")
	if strings.TrimSpace(stmt) == "" {
		return errf(http.StatusBadRequest, "MALFORMED_QUERY", "A query string has to be specified")
	}
	q, err := soql.Parse(stmt)
	if err != nil {
		return soqlRESTError(err)
	}
	e.mu.Lock()
	res, err := q.Run(soqlSource{store: e.st, withDeleted: all}, soql.Options{Now: e.now})
	e.mu.Unlock()
	if err != nil {
		return soqlRESTError(err)
	}
	if res.IsCount {
		writeJSON(c.w, http.StatusOK, object{{"totalSize", int64(res.TotalSize)}, {"done", true}, {"records", []any{}}})
		return nil
	}
	cur := &cursor{rows: res.Rows, total: res.TotalSize, batch: batchSize(c.r), version: c.version}
	c.writePage(cur, 0, "")
	return nil
}

func (c *restCtx) writePage(cur *cursor, from int, locator string) {
	e := c.e
	end := min(from+cur.batch, len(cur.rows))
	recs := make([]object, 0, end-from)
	for _, row := range cur.rows[from:end] {
		recs = append(recs, e.schema.rowObject(row, c.version))
	}
	out := object{{"totalSize", int64(cur.total)}, {"done", end >= len(cur.rows)}}
	if end < len(cur.rows) {
		if locator == "" {
			locator = e.saveCursor(cur)
		}
		out = append(out, kv{"nextRecordsUrl", "/services/data/v" + c.version + "/query/" + locator + "-" + strconv.Itoa(end)})
	} else if locator != "" {
		e.dropCursor(locator)
	}
	out = append(out, kv{"records", recs})
	writeJSON(c.w, http.StatusOK, out)
}

func (e *Emulator) saveCursor(cur *cursor) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.st.idSeq++
	id := makeID("01g", e.st.idSeq)
	if len(e.cursors) >= maxCursors {
		for k := range e.cursors { // evict an arbitrary old cursor
			delete(e.cursors, k)
			break
		}
	}
	e.cursors[id] = cur
	return id
}

func (e *Emulator) dropCursor(id string) {
	e.mu.Lock()
	delete(e.cursors, id)
	e.mu.Unlock()
}

func (c *restCtx) queryMore(loc string) *restError {
	id, offStr, ok := strings.Cut(loc, "-")
	off, err := strconv.Atoi(offStr)
	if !ok || err != nil || off < 0 {
		return errf(http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
	}
	c.e.mu.Lock()
	cur, ok := c.e.cursors[id]
	c.e.mu.Unlock()
	if !ok || off > len(cur.rows) {
		return errf(http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
	}
	c.writePage(cur, off, id)
	return nil
}

func (e *Emulator) describeSummary(o *objectDef, v string) object {
	base := "/services/data/v" + v + "/sobjects/" + o.Name
	return object{
		{"name", o.Name}, {"label", o.Label}, {"keyPrefix", o.Prefix}, {"custom", false},
		{"createable", o.Createable}, {"updateable", o.Updateable}, {"deletable", o.Deletable},
		{"queryable", true}, {"retrieveable", true},
		{"urls", object{{"sobject", base}, {"describe", base + "/describe"}, {"rowTemplate", base + "/{ID}"}}},
	}
}

func describeType(f *fieldDef) string {
	if f.typeName != "" {
		return f.typeName
	}
	switch f.Type {
	case soql.Boolean:
		return "boolean"
	case soql.Int:
		return "int"
	case soql.Double:
		return "double"
	case soql.Date:
		return "date"
	case soql.DateTime:
		return "datetime"
	case soql.ID:
		return "id"
	case soql.Reference:
		return "reference"
	case soql.Picklist:
		return "picklist"
	}
	return "string"
}

// describe is a minimal sObject describe: the object's flags and each field's name, type and
// create/update/nillable properties, references and picklist values.
func (e *Emulator) describe(o *objectDef, v string) object {
	out := e.describeSummary(o, v)
	fields := make([]object, 0, len(o.Fields))
	for _, f := range o.Fields {
		var pick []object
		for _, p := range f.Picklist {
			pick = append(pick, object{{"active", true}, {"defaultValue", false}, {"label", p}, {"value", p}})
		}
		if pick == nil {
			pick = []object{}
		}
		var rel any
		if f.RelName != "" {
			rel = f.RelName
		}
		refs := f.Refs
		if refs == nil {
			refs = []string{}
		}
		fields = append(fields, object{
			{"name", f.Name}, {"label", f.Name}, {"type", describeType(f)},
			{"createable", f.Create}, {"updateable", f.Update}, {"nillable", f.Nillable && f.Type != soql.Boolean},
			{"defaultedOnCreate", f.Defaulted}, {"filterable", true}, {"sortable", true},
			{"referenceTo", refs}, {"relationshipName", rel},
			{"picklistValues", pick}, {"restrictedPicklist", f.Type == soql.Picklist},
		})
	}
	return append(out, kv{"fields", fields}, kv{"childRelationships", []any{}})
}
