package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

// Record writes and their validation: the org layer's create, update and delete of any
// object, as REST, sObject Collections and the control API's bulk create use them.

// lookup finds a live record of o; deleted records give ENTITY_IS_DELETED. Callers hold e.mu.
func (e *orgModel) lookup(o *objectDef, id string) (*record, *restError) {
	if rec, ok := e.st.get(id); ok && rec.obj == o {
		return rec, nil
	}
	if rec, ok := e.st.deleted[id]; ok && rec.obj == o {
		return nil, notFoundError("ENTITY_IS_DELETED", "entity is deleted")
	}
	if !validIDShape(id) {
		return nil, notFoundError("NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+id)
	}
	return nil, notFound()
}

// coerce converts a JSON value to the field's Go type.
func coerce(o *objectDef, f *fieldDef, v any) (any, *restError) {
	if v == nil {
		return nil, nil
	}
	bad := func() *restError {
		return badRequest("JSON_PARSER_ERROR", fmt.Sprintf("Cannot deserialize instance of %s from %v value for field %s", f.Type, v, f.Name), f.Name)
	}
	switch f.Type {
	case soql.String, soql.Picklist, soql.ID, soql.Reference:
		s, ok := v.(string)
		if !ok {
			return nil, bad()
		}
		if f.Type == soql.Picklist && len(f.Picklist) > 0 && !slices.Contains(f.Picklist, s) {
			return nil, badRequest("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", o.Label+": bad value for restricted picklist field: "+s, f.Name)
		}
		if f.Type == soql.Reference || f.Type == soql.ID {
			if s == "" {
				return nil, nil
			}
			if !validIDShape(s) {
				return nil, badRequest("MALFORMED_ID", f.Name+": id value of incorrect type: "+s, f.Name)
			}
			return normalizeID(s), nil
		}
		return s, nil
	case soql.Boolean:
		b, ok := v.(bool)
		if !ok {
			return nil, bad()
		}
		return b, nil
	case soql.Int:
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad()
		}
		i, err := n.Int64()
		if err != nil {
			fl, err2 := n.Float64()
			if err2 != nil || fl != math.Trunc(fl) {
				return nil, bad()
			}
			i = int64(fl)
		}
		return i, nil
	case soql.Double:
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad()
		}
		fl, err := n.Float64()
		if err != nil {
			return nil, bad()
		}
		return fl, nil
	case soql.DateTime, soql.Date:
		s, ok := v.(string)
		if !ok {
			return nil, bad()
		}
		for _, layout := range []string{restTime, time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700", "2006-01-02T15:04:05Z0700", "2006-01-02"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
		return nil, bad()
	}
	return nil, bad()
}

// typedValues validates body fields for insert (create=true) or update and converts them.
// Callers hold e.mu (reference checks read the store).
func (e *orgModel) typedValues(o *objectDef, body map[string]any, create bool) (map[string]any, *restError) {
	vals := map[string]any{}
	var readOnly []string
	// Unknown fields first, then the fields in name order: the error reported never depends
	// on map iteration order.
	keys := sortedKeys(body)
	for _, k := range keys {
		if _, ok := o.field(k); !ok && k != "attributes" {
			return nil, badRequest("INVALID_FIELD", "No such column '"+k+"' on sobject of type "+o.Name, k)
		}
	}
	for _, k := range keys {
		v := body[k]
		if k == "attributes" {
			continue
		}
		f, _ := o.field(k)
		if f.Name == "Id" {
			if create {
				return nil, badRequest("INVALID_FIELD", "The Id field should not be specified in the sobject data.")
			}
			continue
		}
		if (create && !f.Create) || (!create && !f.Update) {
			readOnly = append(readOnly, f.Name)
			continue
		}
		tv, err := coerce(o, f, v)
		if err != nil {
			return nil, err
		}
		if tv == nil && !f.Nillable && (!create || !f.Defaulted) {
			return nil, badRequest("REQUIRED_FIELD_MISSING", "Required fields are missing: ["+f.Name+"]", f.Name)
		}
		if f.Type == soql.Reference && tv != nil {
			ref, ok := e.st.get(tv.(string))
			if !ok {
				if gone, dead := e.st.deleted[tv.(string)]; dead && slices.Contains(f.Refs, gone.obj.Name) {
					return nil, badRequest("ENTITY_IS_DELETED", "entity is deleted")
				}
			}
			if !ok || !slices.Contains(f.Refs, ref.obj.Name) {
				return nil, badRequest("INVALID_CROSS_REFERENCE_KEY", f.Name+": invalid cross reference id", f.Name)
			}
		}
		vals[f.Name] = tv
	}
	if len(readOnly) > 0 {
		slices.Sort(readOnly)
		return nil, badRequest("INVALID_FIELD_FOR_INSERT_UPDATE",
			"Unable to create/update fields: "+strings.Join(readOnly, ", ")+". Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
			readOnly...)
	}
	if create {
		var missing []string
		for _, f := range o.Fields {
			if f.required() {
				if v, ok := vals[f.Name]; !ok || v == nil {
					missing = append(missing, f.Name)
				}
			}
		}
		if len(missing) > 0 {
			return nil, badRequest("REQUIRED_FIELD_MISSING", "Required fields are missing: ["+strings.Join(missing, ", ")+"]", missing...)
		}
	}
	return vals, nil
}

func cannot(op string, o *objectDef) *restError {
	return badRequest("INVALID_TYPE_FOR_OPERATION", "entity type cannot be "+op+": "+o.Label)
}

// insertOne creates one record through the API, applying Omni-Channel rules.
func (e *orgModel) insertOne(user, origin string, o *objectDef, body map[string]any) (string, *restError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.begin(user, origin)
	rec, err := e.insertTx(t, o, body)
	if err != nil {
		return "", err
	}
	e.commit(t)
	return rec.id, nil
}

func (e *orgModel) insertTx(t *tx, o *objectDef, body map[string]any) (*record, *restError) {
	if !o.Createable {
		return nil, cannot("inserted", o)
	}
	vals, err := e.typedValues(o, body, true)
	if err != nil {
		return nil, err
	}
	switch o.Name {
	case "AgentWork":
		psr, err := e.prepareAgentWork(t, vals)
		if err != nil {
			return nil, err
		}
		rec := t.create(o, vals)
		e.afterAgentWorkInsert(t, rec, psr)
		return rec, nil
	case "PushTopic":
		probe := &record{obj: o, vals: vals}
		t.defaults(o, vals)
		for _, p := range e.topics {
			if lower(p.name) == lower(probe.str("Name")) {
				return nil, badRequest("DUPLICATE_VALUE", "duplicate value found: Name duplicates value on record with id: "+p.id, "Name")
			}
		}
		if _, err := e.compileTopic(probe); err != nil {
			return nil, err
		}
		rec := t.create(o, vals)
		p, _ := e.compileTopic(rec)
		e.setTopic(p)
		return rec, nil
	}
	rec := t.create(o, vals)
	if slices.Contains(workItemTypes, o.Name) {
		if owner, ok := e.st.get(rec.str("OwnerId")); ok && owner.obj.Name == "Group" {
			e.routeToQueue(t, rec, owner, routeOpts{})
		}
	}
	return rec, nil
}

// updateOne updates one record through the API.
func (e *orgModel) updateOne(user, origin string, o *objectDef, id string, body map[string]any) *restError {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.begin(user, origin)
	if err := e.updateTx(t, o, id, body); err != nil {
		return err
	}
	e.commit(t)
	return nil
}

func (e *orgModel) updateTx(t *tx, o *objectDef, id string, body map[string]any) *restError {
	rec, err := e.lookup(o, id)
	if err != nil {
		return err
	}
	if !o.Updateable {
		return cannot("updated", o)
	}
	if err := editable(rec); err != nil {
		return err
	}
	vals, err := e.typedValues(o, body, false)
	if err != nil {
		return err
	}
	if o.Name == "PushTopic" {
		probe := rec.snapshot()
		for k, v := range vals {
			probe.vals[k] = v
		}
		if _, err := e.compileTopic(probe); err != nil {
			return err
		}
	}
	oldOwner := rec.str("OwnerId")
	t.update(rec, vals)
	switch {
	case o.Name == "PushTopic":
		p, _ := e.compileTopic(rec)
		e.setTopic(p)
	case slices.Contains(workItemTypes, o.Name):
		if nw := rec.str("OwnerId"); nw != oldOwner {
			e.ownerChanged(t, rec, nw)
		}
	}
	return nil
}

// editable refuses API updates of a PendingServiceRouting that is ready for routing: once
// IsReadyForRouting is true the record can't be edited (salesforce-facts.md 2.1; the error
// wording is the emulator's).
func editable(rec *record) *restError {
	if rec.obj.Name == "PendingServiceRouting" && rec.boolean("IsReadyForRouting") {
		return badRequest("FIELD_INTEGRITY_EXCEPTION",
			"You can't edit a PendingServiceRouting record once IsReadyForRouting is true.")
	}
	return nil
}

// deleteOne deletes one record through the API.
func (e *orgModel) deleteOne(user, origin string, o *objectDef, id string) *restError {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.begin(user, origin)
	if err := e.deleteTx(t, o, id); err != nil {
		return err
	}
	e.commit(t)
	return nil
}

func (e *orgModel) deleteTx(t *tx, o *objectDef, id string) *restError {
	rec, err := e.lookup(o, id)
	if err != nil {
		return err
	}
	if !o.Deletable {
		return cannot("deleted", o)
	}
	switch o.Name {
	case "AgentWork":
		if s := rec.str("Status"); s != StatusClosed && s != StatusDeclined && s != StatusUnavailable {
			return badRequest("DELETE_FAILED", "You can delete AgentWork only when its status is Closed, Declined or Unavailable.")
		}
	case "PendingServiceRouting":
		wi := rec.str("WorkItemId")
		if e.psrByWork[wi] == rec.id {
			delete(e.psrByWork, wi)
		}
	case "UserServicePresence":
		if e.currentUSP[rec.str("UserId")] == rec.id {
			delete(e.currentUSP, rec.str("UserId"))
		}
	case "PushTopic":
		e.dropTopic(rec.id)
	}
	t.remove(rec)
	return nil
}

// maxBulkRecords caps one CreateRecords call.
const maxBulkRecords = 100_000

// CreateRecords bulk-creates count records of typ with the same fields (e.g. 10,000 Cases
// for paging tests). Work items owned by an external-routing queue get PSRs as usual.
func (e *orgModel) CreateRecords(typ string, count int, fields map[string]any) ([]string, error) {
	o, ok := e.schema.object(typ)
	if !ok {
		return nil, fmt.Errorf("create records of %q: %w", typ, ErrNotFound)
	}
	if count < 1 || count > maxBulkRecords {
		return nil, fmt.Errorf("create %d records: count must be 1..%d: %w", count, maxBulkRecords, ErrInvalid)
	}
	// Round-trip through JSON so values get the REST types (numbers as json.Number).
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("create records: encode fields: %w", ErrInvalid)
	}
	ids := make([]string, 0, count)
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.begin("", "")
	for range count {
		var body map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return nil, fmt.Errorf("create records: decode fields: %w", ErrInvalid)
		}
		if body == nil {
			body = map[string]any{}
		}
		r, rerr := e.insertTx(t, o, body)
		if rerr != nil {
			e.commit(t)
			return ids, fmt.Errorf("create %s record %d: %s: %w", o.Name, len(ids)+1, rerr.Error(), ErrInvalid)
		}
		ids = append(ids, r.id)
	}
	e.commit(t)
	return ids, nil
}
