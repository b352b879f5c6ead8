package emulator

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

// pushTopic is an active PushTopic compiled for matching.
type pushTopic struct {
	id, name     string
	plan         *soql.Plan
	object       string
	notifyFields string
	create       bool
	update       bool
	delete       bool
	active       bool
	selectFields map[string]bool // lower-case
	whereFields  map[string]bool // lower-case
}

var (
	quotedRE  = regexp.MustCompile(`'(?:[^'\\]|\\.)*'`)
	identRE   = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_.]*`)
	soqlWords = map[string]bool{"and": true, "or": true, "not": true, "in": true, "like": true, "null": true,
		"true": true, "false": true, "order": true, "by": true, "limit": true, "offset": true, "asc": true,
		"desc": true, "nulls": true, "first": true, "last": true, "includes": true, "excludes": true}
)

// compileTopic validates a PushTopic record's query (salesforce-facts.md 4.7) and compiles it.
func (e *Emulator) compileTopic(r *record) (*pushTopic, *restError) {
	name := r.str("Name")
	if name == "" || len(name) > 25 {
		return nil, errf(http.StatusBadRequest, "STRING_TOO_LONG", "Topic Name: data value too large or missing (max length=25)", "Name")
	}
	stmt := r.str("Query")
	if len(stmt) > 1300 {
		return nil, errf(http.StatusBadRequest, "STRING_TOO_LONG", "Query: data value too large (max length=1300)", "Query")
	}
	q, err := soql.Parse(stmt)
	if err != nil {
		return nil, soqlRESTError(err)
	}
	plan, err := q.Bind(e.schema)
	if err != nil {
		return nil, soqlRESTError(err)
	}
	if q.IsCount() {
		return nil, errf(http.StatusBadRequest, "INVALID_FIELD", "Aggregate queries are not supported in PushTopic queries", "Query")
	}
	upper := strings.ToUpper(stmt)
	fromAt := strings.Index(upper, " FROM ")
	sel := map[string]bool{}
	if fromAt > 6 {
		for f := range strings.SplitSeq(stmt[len("SELECT"):fromAt], ",") {
			sel[lower(strings.TrimSpace(f))] = true
		}
	}
	if !sel["id"] {
		return nil, errf(http.StatusBadRequest, "INVALID_FIELD", "SELECT clause must contain the Id field", "Query")
	}
	where := map[string]bool{}
	if w := strings.Index(upper, " WHERE "); w >= 0 {
		clause := quotedRE.ReplaceAllString(stmt[w+7:], "''")
		for _, id := range identRE.FindAllString(clause, -1) {
			if !soqlWords[lower(id)] {
				where[lower(id)] = true
			}
		}
	}
	nf := r.str("NotifyForFields")
	if nf == "" {
		nf = "Referenced"
	}
	return &pushTopic{
		id: r.id, name: name, plan: plan, object: plan.Object(), notifyFields: nf,
		create: r.boolean("NotifyForOperationCreate"), update: r.boolean("NotifyForOperationUpdate"),
		delete: r.boolean("NotifyForOperationDelete"), active: r.boolean("IsActive"),
		selectFields: sel, whereFields: where,
	}, nil
}

// setTopic registers (or replaces) a compiled PushTopic. Callers hold e.mu.
func (e *Emulator) setTopic(p *pushTopic) {
	if old, ok := e.topics[p.id]; ok {
		e.dropTopic(old.id)
	}
	e.topics[p.id] = p
	if p.active {
		e.topicMu.Lock()
		e.topicChannels["/topic/"+p.name] = true
		e.topicMu.Unlock()
	}
}

func (e *Emulator) dropTopic(id string) {
	p, ok := e.topics[id]
	if !ok {
		return
	}
	delete(e.topics, id)
	e.topicMu.Lock()
	delete(e.topicChannels, "/topic/"+p.name)
	e.topicMu.Unlock()
}

func (p *pushTopic) relevant(changed []string) bool {
	for _, f := range changed {
		l := lower(f)
		switch p.notifyFields {
		case "All":
			return true
		case "Select":
			if p.selectFields[l] {
				return true
			}
		case "Where":
			if p.whereFields[l] {
				return true
			}
		default: // Referenced
			if p.selectFields[l] || p.whereFields[l] {
				return true
			}
		}
	}
	return false
}

// publishTopics sends the change to every matching PushTopic. Callers hold e.mu.
func (e *Emulator) publishTopics(t *tx, c *change) {
	if len(e.topics) == 0 || c.rec == nil {
		return
	}
	for _, p := range e.topics {
		if !p.active || p.object != c.obj.Name {
			continue
		}
		var typ string
		switch c.typ {
		case "CREATE":
			if !p.create {
				continue
			}
			typ = "created"
		case "UPDATE":
			if !p.update || !p.relevant(c.changed) {
				continue
			}
			typ = "updated"
		case "DELETE":
			if !p.delete {
				continue
			}
			typ = "deleted"
		default:
			continue
		}
		src := oneRecordSource{soqlSource: soqlSource{store: e.st}, rec: c.rec}
		opts := soql.Options{Now: e.now}
		if !p.plan.Match(c.rec, src, opts) {
			continue
		}
		res := p.plan.Run(src, opts)
		if len(res.Rows) == 0 {
			continue
		}
		sobject := e.schema.rowObject(res.Rows[0], "")
		created := t.now.Format("2006-01-02T15:04:05.000Z")
		e.stream.Publish([]string{"/topic/" + p.name}, func(replayID int64) json.RawMessage {
			b, err := json.Marshal(object{
				{"event", object{{"createdDate", created}, {"replayId", replayID}, {"type", typ}}},
				{"sobject", sobject},
			})
			if err != nil {
				return json.RawMessage(`{}`)
			}
			return b
		})
		e.eventsPublished.Add(1)
	}
}

// rowObject renders a query row; with a version, each level starts with attributes{type,url}.
// A parent reached through a polymorphic relationship (Owner of a Case: a User or a queue) is
// the Name entity: attributes.type "Name", url of the real record (docs/emulator.md).
func (s *schema) rowObject(r soql.Row, version string) object {
	return s.renderRow(r, r.Type, version)
}

func (s *schema) renderRow(r soql.Row, attrType, version string) object {
	out := make(object, 0, len(r.Cols)+1)
	if version != "" {
		out = append(out, kv{"attributes", object{{"type", attrType}, {"url", "/services/data/v" + version + "/sobjects/" + r.Type + "/" + r.ID}}})
	}
	for _, c := range r.Cols {
		if c.Parent != nil {
			typ := c.Parent.Type
			if rel, ok := s.Relationship(r.Type, c.Name); ok && len(rel.Targets) > 1 {
				typ = "Name"
			}
			out = append(out, kv{c.Name, s.renderRow(*c.Parent, typ, version)})
			continue
		}
		out = append(out, kv{c.Name, c.Value})
	}
	return out
}
