package emulator

import (
	"fmt"
	"maps"
	"time"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

// record is one sObject row. Values are string, bool, int64, float64, time.Time or nil,
// keyed by the canonical field name; Id lives in id.
type record struct {
	obj     *objectDef
	id      string
	vals    map[string]any
	deleted bool
}

func (r *record) Type() string { return r.obj.Name }
func (r *record) ID() string   { return r.id }

func (r *record) Value(field string) (any, bool) {
	if field == "Id" {
		return r.id, true
	}
	if v, ok := r.vals[field]; ok {
		return v, true
	}
	if field == "IsDeleted" {
		return r.deleted, true
	}
	if _, ok := r.obj.byLower[lower(field)]; ok {
		return nil, true
	}
	return nil, false
}

func (r *record) str(field string) string {
	s, _ := r.vals[field].(string)
	return s
}

func (r *record) boolean(field string) bool {
	b, _ := r.vals[field].(bool)
	return b
}

func (r *record) int(field string) int64 {
	switch v := r.vals[field].(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

func (r *record) float(field string) (float64, bool) {
	switch v := r.vals[field].(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	}
	return 0, false
}

func (r *record) time(field string) time.Time {
	t, _ := r.vals[field].(time.Time)
	return t
}

// snapshot copies the record so later changes don't show through.
func (r *record) snapshot() *record {
	return &record{obj: r.obj, id: r.id, vals: maps.Clone(r.vals), deleted: r.deleted}
}

// store holds every record in memory. It is guarded by Emulator.mu.
type store struct {
	schema  *schema
	byID    map[string]*record
	byType  map[string][]*record // insertion order; may hold deleted records until compacted
	deadN   map[string]int
	deleted map[string]*record
	// graveyard holds, per type, the deleted records compacted out of byType, oldest first,
	// for queryAll.
	graveyard map[string][]*record
	nameSeq   map[string]int
	idSeq     uint64
}

func newStore(s *schema) *store {
	return &store{
		schema:  s,
		byID:    map[string]*record{},
		byType:  map[string][]*record{},
		deadN:   map[string]int{},
		deleted: map[string]*record{},
		nameSeq: map[string]int{},

		graveyard: map[string][]*record{},
	}
}

func (s *store) newID(o *objectDef) string {
	s.idSeq++
	return makeID(o.Prefix, s.idSeq)
}

func (s *store) nextName(o *objectDef) string {
	s.nameSeq[o.Name]++
	return fmt.Sprintf("%08d", s.nameSeq[o.Name])
}

func (s *store) insert(r *record) {
	s.byID[r.id] = r
	s.byType[r.obj.Name] = append(s.byType[r.obj.Name], r)
}

func (s *store) remove(r *record) {
	r.deleted = true
	delete(s.byID, r.id)
	s.deleted[r.id] = r
	s.deadN[r.obj.Name]++
	if n := s.deadN[r.obj.Name]; n > 64 && n*2 > len(s.byType[r.obj.Name]) {
		live := s.byType[r.obj.Name][:0]
		for _, x := range s.byType[r.obj.Name] {
			if !x.deleted {
				live = append(live, x)
			} else {
				s.graveyard[r.obj.Name] = append(s.graveyard[r.obj.Name], x)
			}
		}
		clear(s.byType[r.obj.Name][len(live):])
		s.byType[r.obj.Name] = live
		s.deadN[r.obj.Name] = 0
	}
}

func (s *store) get(id string) (*record, bool) {
	r, ok := s.byID[normalizeID(id)]
	return r, ok
}

// each calls fn for every live record of a type in insertion order until fn returns false.
func (s *store) each(typ string, fn func(*record) bool) {
	for _, r := range s.byType[typ] {
		if r.deleted {
			continue
		}
		if !fn(r) {
			return
		}
	}
}

// eachWithDeleted calls fn for every record of a type, deleted ones included (queryAll),
// until fn returns false.
func (s *store) eachWithDeleted(typ string, fn func(*record) bool) {
	for _, list := range [][]*record{s.graveyard[typ], s.byType[typ]} {
		for _, r := range list {
			if !fn(r) {
				return
			}
		}
	}
}

// soqlSource adapts the store to soql.Source. It must be used with Emulator.mu held. With
// withDeleted (queryAll) scans and id lookups include deleted records (IsDeleted=true),
// parents too.
type soqlSource struct {
	*store
	withDeleted bool
}

func (s soqlSource) Object(name string) (string, bool) { return s.schema.Object(name) }
func (s soqlSource) Field(o, n string) (soql.Field, bool) {
	return s.schema.Field(o, n)
}

func (s soqlSource) Relationship(o, n string) (soql.Relationship, bool) {
	return s.schema.Relationship(o, n)
}

func (s soqlSource) Scan(object string, fn func(soql.Record) bool) {
	if s.withDeleted {
		s.eachWithDeleted(object, func(r *record) bool { return fn(r) })
		return
	}
	s.each(object, func(r *record) bool { return fn(r) })
}

func (s soqlSource) Get(id string) (soql.Record, bool) {
	r, ok := s.get(id)
	if !ok && s.withDeleted {
		r, ok = s.deleted[normalizeID(id)]
	}
	if !ok {
		return nil, false
	}
	return r, true
}

// oneRecordSource is a Source whose only record of its type is rec (PushTopic evaluation);
// parent lookups go to the whole store.
type oneRecordSource struct {
	soqlSource
	rec *record
}

func (s oneRecordSource) Scan(object string, fn func(soql.Record) bool) {
	if object == s.rec.obj.Name {
		fn(s.rec)
	}
}
