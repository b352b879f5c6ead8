package emulator

import (
	"fmt"
	"slices"
	"time"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

// change is one record change inside a transaction, as CDC reports it.
type change struct {
	obj     *objectDef
	typ     string // CREATE, UPDATE, DELETE
	ids     []string
	payload object    // CDC body fields (CDC-formatted values)
	changed []string  // UPDATE: changed fields
	rec     *record   // the record after the change (before it, for DELETE)
	recs    []*record // after mergeChanges: the snapshot of each record in ids
}

// tx is one Salesforce transaction: every change it makes is published at commit, in order,
// sharing one transactionKey.
type tx struct {
	e       *Emulator
	now     time.Time
	user    string
	origin  string
	changes []*change
	quiet   bool
	noise   bool // a noise transaction (it makes no further noise)
	// batch, when set, is the dry run of an allOrNone collection: AgentWork checks see the
	// PSRs and capacity claimed by the request's earlier records.
	batch *batchClaims
}

// batchClaims is what the already-checked records of one collection request would take.
type batchClaims struct {
	psrs map[string]bool    // PSR ids that an earlier AgentWork pushes
	load map[string]float64 // user id -> capacity earlier AgentWork take
}

// begin starts a transaction made by user (a User id) through origin (changeOrigin; may be
// empty). Callers hold e.mu.
func (e *Emulator) begin(user, origin string) *tx {
	if user == "" {
		user = e.org.integration
	}
	return &tx{e: e, now: e.now().UTC(), user: user, origin: origin}
}

// defaults fills create-time defaults.
func (t *tx) defaults(o *objectDef, vals map[string]any) {
	set := func(f string, v any) {
		if _, ok := vals[f]; !ok {
			if _, has := o.byLower[lower(f)]; has {
				vals[f] = v
			}
		}
	}
	switch o.Name {
	case "User":
		set("IsActive", true)
		set("UserType", "Standard")
		if _, ok := vals["Name"]; !ok {
			vals["Name"] = fmt.Sprint(strOr(vals["FirstName"], ""), " ", strOr(vals["LastName"], ""))
		}
	case "ServiceResource", "PushTopic":
		set("IsActive", true)
		set("ResourceType", "T")
		set("NotifyForFields", "Referenced")
		set("NotifyForOperations", "All")
		for _, f := range []string{"NotifyForOperationCreate", "NotifyForOperationUpdate", "NotifyForOperationDelete", "NotifyForOperationUndelete"} {
			set(f, true)
		}
	case "Case":
		set("Status", "New")
		set("Priority", "Medium")
	case "MessagingSession":
		set("Status", "New")
	case "ServiceChannel":
		set("CapacityModel", "TabBased")
	case "PendingServiceRouting":
		set("RoutingType", "QueueBased")
		set("Serial", int64(1))
	case "Group":
		if _, ok := vals["DeveloperName"]; !ok {
			vals["DeveloperName"] = vals["Name"]
		}
	case "ServiceResourceSkill":
		set("EffectiveStartDate", t.now)
		set("SkillLevel", float64(0))
	case "SkillRequirement":
		set("SkillLevel", float64(0))
	}
	for _, f := range o.Fields {
		if f.Type == soql.Boolean && f.Defaulted && f.Name != "IsDeleted" {
			set(f.Name, false)
		}
	}
	if _, ok := o.byLower["ownerid"]; ok {
		set("OwnerId", t.user)
	}
}

func strOr(v any, d string) string {
	if s, ok := v.(string); ok {
		return s
	}
	return d
}

// create inserts a record (values already validated and typed) and records a CREATE change.
func (t *tx) create(o *objectDef, vals map[string]any) *record {
	e := t.e
	r := &record{obj: o, id: e.st.newID(o), vals: vals}
	t.defaults(o, vals)
	if o.AutoName {
		vals["Name"] = e.st.nextName(o)
	}
	switch o.Name {
	case "Case":
		vals["CaseNumber"] = e.st.nextName(o)
	case "SkillRequirement", "ServiceResourceSkill":
		vals["SkillNumber"] = "SN-" + e.st.nextName(o)
	}
	vals["CreatedDate"] = t.now
	vals["CreatedById"] = t.user
	vals["LastModifiedDate"] = t.now
	vals["LastModifiedById"] = t.user
	vals["SystemModstamp"] = t.now
	for k, v := range vals {
		if v == nil {
			delete(vals, k)
		}
	}
	e.st.insert(r)
	if t.quiet {
		return r
	}
	c := &change{obj: o, typ: "CREATE", ids: []string{r.id}, rec: r.snapshot()}
	for _, f := range o.Fields {
		switch f.Name {
		case "Id", "IsDeleted", "SystemModstamp":
			continue
		}
		if v, ok := vals[f.Name]; ok && v != nil {
			c.payload = append(c.payload, kv{f.Name, cdcValue(v)})
		}
	}
	t.changes = append(t.changes, c)
	return r
}

// update applies vals to r and records an UPDATE change with the fields whose value changed.
// It returns the changed field names (nil when nothing changed).
func (t *tx) update(r *record, vals map[string]any) []string { return t.save(r, vals, false) }

// touch saves r without changing any of its fields, as an automation re-saving a record does:
// an UPDATE whose changed fields are the system fields (and Serial for a PSR).
func (t *tx) touch(r *record) []string { return t.save(r, nil, true) }

func (t *tx) save(r *record, vals map[string]any, force bool) []string {
	var changed []string
	for k, v := range vals {
		old, had := r.vals[k]
		if (had && old == v) || (!had && v == nil) {
			continue
		}
		if ot, ok := old.(time.Time); ok {
			if nt, ok := v.(time.Time); ok && ot.Equal(nt) {
				continue
			}
		}
		changed = append(changed, k)
	}
	if len(changed) == 0 && !force {
		return nil
	}
	for _, k := range changed {
		if vals[k] == nil {
			delete(r.vals, k)
		} else {
			r.vals[k] = vals[k]
		}
	}
	if r.obj.Name == "PendingServiceRouting" {
		r.vals["Serial"] = r.int("Serial") + 1
		changed = append(changed, "Serial")
	}
	if r.vals["LastModifiedById"] != t.user {
		r.vals["LastModifiedById"] = t.user
		changed = append(changed, "LastModifiedById")
	}
	r.vals["LastModifiedDate"] = t.now
	r.vals["SystemModstamp"] = t.now
	changed = append(changed, "LastModifiedDate")
	// Report fields in schema order.
	pos := map[string]int{}
	for i, f := range r.obj.Fields {
		pos[f.Name] = i
	}
	slices.SortFunc(changed, func(a, b string) int { return pos[a] - pos[b] })
	changed = slices.Compact(changed)
	if t.quiet {
		return changed
	}
	c := &change{obj: r.obj, typ: "UPDATE", ids: []string{r.id}, changed: changed, rec: r.snapshot()}
	for _, k := range changed {
		c.payload = append(c.payload, kv{k, cdcValue(r.vals[k])})
	}
	t.changes = append(t.changes, c)
	return changed
}

// remove deletes r and records a DELETE change.
func (t *tx) remove(r *record) {
	t.e.st.remove(r)
	if t.quiet {
		return
	}
	t.changes = append(t.changes, &change{obj: r.obj, typ: "DELETE", ids: []string{r.id}, rec: r.snapshot()})
}
