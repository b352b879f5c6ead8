package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

var apiVersions = func() []string {
	var v []string
	for n := 31; n <= 67; n++ {
		v = append(v, strconv.Itoa(n)+".0")
	}
	return v
}()

// restHandler serves /services/data on http.ServeMux patterns, one route per resource. Every
// route but the version list goes through rest: the version check, authentication and the API
// allocation come first, whatever the resource. A trailing slash is ignored, as the old
// segment router did.
func (e *Emulator) restHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/services/data", e.handleVersions)
	route := func(pattern string, fn func(c *restCtx) *restError) {
		mux.HandleFunc("/services/data/{version}"+pattern, e.rest(fn))
	}
	route("", func(c *restCtx) *restError {
		writeJSON(c.w, http.StatusOK, e.resourceList(c.version))
		return nil
	})
	route("/query", func(c *restCtx) *restError { return c.query(false, "") })
	route("/query/{locator}", func(c *restCtx) *restError { return c.query(false, c.r.PathValue("locator")) })
	route("/queryAll", func(c *restCtx) *restError { return c.query(true, "") })
	route("/queryAll/{locator}", func(c *restCtx) *restError { return c.query(true, c.r.PathValue("locator")) })
	route("/sobjects", (*restCtx).sobjectList)
	route("/sobjects/{type}", (*restCtx).sobjectType)
	route("/sobjects/{type}/describe", (*restCtx).sobjectDescribe)
	route("/sobjects/{type}/{id}", (*restCtx).sobjectRecord)
	route("/composite/sobjects", (*restCtx).collections)
	route("/limits", (*restCtx).limits)
	route("/{rest...}", func(*restCtx) *restError { return notFound() })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := strings.TrimRight(r.URL.Path, "/"); p != r.URL.Path {
			u := *r.URL
			u.Path, u.RawPath = p, ""
			r2 := *r
			r2.URL = &u
			r = &r2
		}
		mux.ServeHTTP(w, r)
	})
}

// rest wraps a REST route: it checks the API version, authenticates the token, counts the
// request against the API allocation, then runs fn and writes its error.
func (e *Emulator) rest(fn func(c *restCtx) *restError) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		version, ok := strings.CutPrefix(r.PathValue("version"), "v")
		if !ok || !slices.Contains(apiVersions, version) {
			writeRESTError(w, notFound())
			return
		}
		authz := r.Header.Get("Authorization")
		token := bearerToken(authz)
		if authz != "" && token == strings.TrimSpace(authz) {
			// REST wants a scheme (Bearer or OAuth); only CometD takes the bare token.
			writeRESTError(w, &restError{Status: http.StatusUnauthorized, Errs: []apiError{{Message: "INVALID_HEADER_TYPE", ErrorCode: "INVALID_AUTH_HEADER"}}})
			return
		}
		userID, ok := e.authenticate(token)
		if token == "" || !ok {
			writeRESTError(w, &restError{Status: http.StatusUnauthorized, Errs: []apiError{{Message: "Session expired or invalid", ErrorCode: "INVALID_SESSION_ID"}}})
			return
		}
		used := e.apiUsed.Add(1)
		limit := e.apiLimit.Load()
		if used > limit {
			used = e.apiUsed.Add(-1)
			w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", used, limit))
			writeRESTError(w, errf(http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
			return
		}
		w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", used, limit))
		method := r.Method
		if method == http.MethodPost && r.URL.Query().Get("_HttpMethod") == "PATCH" {
			method = http.MethodPatch
		}
		c := &restCtx{e: e, w: w, r: r, version: version, user: userID, method: method,
			origin: "com/salesforce/api/rest/" + version + clientSuffix(r)}
		if err := fn(c); err != nil {
			writeRESTError(w, err)
		}
	}
}

func clientSuffix(r *http.Request) string {
	opts := r.Header.Get("Sforce-Call-Options")
	for p := range strings.SplitSeq(opts, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "client="); ok && v != "" {
			return ";client=" + v
		}
	}
	return ""
}

func (e *Emulator) handleVersions(w http.ResponseWriter, _ *http.Request) {
	out := make([]object, 0, len(apiVersions))
	for _, v := range apiVersions {
		out = append(out, object{{"label", "v" + v}, {"url", "/services/data/v" + v}, {"version", v}})
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) resourceList(v string) map[string]string {
	base := "/services/data/v" + v
	return map[string]string{
		"sobjects": base + "/sobjects", "query": base + "/query", "queryAll": base + "/queryAll",
		"composite": base + "/composite", "limits": base + "/limits",
	}
}

type restCtx struct {
	e       *Emulator
	w       http.ResponseWriter
	r       *http.Request
	version string
	user    string
	method  string
	origin  string
}

func notFound() *restError {
	return errf(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
}

func methodNotAllowed(m string) *restError {
	return errf(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+m+"' not allowed. Allowed are GET,PATCH,DELETE,HEAD")
}

// readBody decodes a JSON object with numbers kept as json.Number.
func (c *restCtx) readBody(v any) *restError {
	data, err := io.ReadAll(io.LimitReader(c.r.Body, 50<<20))
	if err != nil {
		return errf(http.StatusBadRequest, "JSON_PARSER_ERROR", "could not read the request body")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return errf(http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected character: "+err.Error())
	}
	return nil
}

// sobjectList is GET sobjects: the describe summary of every object.
func (c *restCtx) sobjectList() *restError {
	if c.method != http.MethodGet {
		return methodNotAllowed(c.method)
	}
	var list []object
	for _, o := range c.e.schema.order {
		list = append(list, c.e.describeSummary(o, c.version))
	}
	writeJSON(c.w, http.StatusOK, object{{"encoding", "UTF-8"}, {"maxBatchSize", int64(200)}, {"sobjects", list}})
	return nil
}

// object resolves the {type} of the route.
func (c *restCtx) object() (*objectDef, *restError) {
	o, ok := c.e.schema.object(c.r.PathValue("type"))
	if !ok {
		return nil, notFound()
	}
	return o, nil
}

// sobjectType is POST sobjects/{type} (create) and GET (the object's summary).
func (c *restCtx) sobjectType() *restError {
	o, rerr := c.object()
	if rerr != nil {
		return rerr
	}
	switch c.method {
	case http.MethodPost:
		var body map[string]any
		if err := c.readBody(&body); err != nil {
			return err
		}
		id, err := c.e.insertOne(c.user, c.origin, o, body)
		if err != nil {
			return err
		}
		writeJSON(c.w, http.StatusCreated, object{{"id", id}, {"success", true}, {"errors", []any{}}})
		return nil
	case http.MethodGet:
		writeJSON(c.w, http.StatusOK, object{{"objectDescribe", c.e.describeSummary(o, c.version)}, {"recentItems", []any{}}})
		return nil
	}
	return methodNotAllowed(c.method)
}

// sobjectDescribe is GET sobjects/{type}/describe.
func (c *restCtx) sobjectDescribe() *restError {
	o, rerr := c.object()
	if rerr != nil {
		return rerr
	}
	if c.method != http.MethodGet {
		return methodNotAllowed(c.method)
	}
	writeJSON(c.w, http.StatusOK, c.e.describe(o, c.version))
	return nil
}

// sobjectRecord is GET, PATCH and DELETE sobjects/{type}/{id}.
func (c *restCtx) sobjectRecord() *restError {
	e := c.e
	o, rerr := c.object()
	if rerr != nil {
		return rerr
	}
	id := normalizeID(c.r.PathValue("id"))
	switch c.method {
	case http.MethodGet:
		e.mu.Lock()
		rec, err := e.lookup(o, id)
		var out object
		if err == nil {
			out = renderRecord(rec, c.version, c.r.URL.Query().Get("fields"))
		}
		e.mu.Unlock()
		if err != nil {
			return err
		}
		writeJSON(c.w, http.StatusOK, out)
		return nil
	case http.MethodPatch:
		var body map[string]any
		if err := c.readBody(&body); err != nil {
			return err
		}
		if err := e.updateOne(c.user, c.origin, o, id, body); err != nil {
			return err
		}
		c.w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodDelete:
		if err := e.deleteOne(c.user, c.origin, o, id); err != nil {
			return err
		}
		c.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return methodNotAllowed(c.method)
}

// lookup finds a live record of o; deleted records give ENTITY_IS_DELETED. Callers hold e.mu.
func (e *Emulator) lookup(o *objectDef, id string) (*record, *restError) {
	if rec, ok := e.st.get(id); ok && rec.obj == o {
		return rec, nil
	}
	if rec, ok := e.st.deleted[id]; ok && rec.obj == o {
		return nil, errf(http.StatusNotFound, "ENTITY_IS_DELETED", "entity is deleted")
	}
	if !validIDShape(id) {
		return nil, errf(http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+id)
	}
	return nil, notFound()
}

func renderRecord(r *record, version, fields string) object {
	out := object{{"attributes", object{{"type", r.obj.Name}, {"url", "/services/data/v" + version + "/sobjects/" + r.obj.Name + "/" + r.id}}}}
	var want map[string]bool
	if fields != "" {
		want = map[string]bool{}
		for f := range strings.SplitSeq(fields, ",") {
			want[lower(strings.TrimSpace(f))] = true
		}
	}
	for _, f := range r.obj.Fields {
		if want != nil && !want[lower(f.Name)] {
			continue
		}
		v, _ := r.Value(f.Name)
		out = append(out, kv{f.Name, v})
	}
	return out
}

// coerce converts a JSON value to the field's Go type.
func coerce(o *objectDef, f *fieldDef, v any) (any, *restError) {
	if v == nil {
		return nil, nil
	}
	bad := func() *restError {
		return errf(http.StatusBadRequest, "JSON_PARSER_ERROR", fmt.Sprintf("Cannot deserialize instance of %s from %v value for field %s", f.Type, v, f.Name), f.Name)
	}
	switch f.Type {
	case soql.String, soql.Picklist, soql.ID, soql.Reference:
		s, ok := v.(string)
		if !ok {
			return nil, bad()
		}
		if f.Type == soql.Picklist && len(f.Picklist) > 0 && !slices.Contains(f.Picklist, s) {
			return nil, errf(http.StatusBadRequest, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", o.Label+": bad value for restricted picklist field: "+s, f.Name)
		}
		if f.Type == soql.Reference || f.Type == soql.ID {
			if s == "" {
				return nil, nil
			}
			if !validIDShape(s) {
				return nil, errf(http.StatusBadRequest, "MALFORMED_ID", f.Name+": id value of incorrect type: "+s, f.Name)
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
func (e *Emulator) typedValues(o *objectDef, body map[string]any, create bool) (map[string]any, *restError) {
	vals := map[string]any{}
	var readOnly []string
	// Unknown fields first, then the fields in name order: the error reported never depends
	// on map iteration order.
	keys := sortedKeys(body)
	for _, k := range keys {
		if _, ok := o.field(k); !ok && k != "attributes" {
			return nil, errf(http.StatusBadRequest, "INVALID_FIELD", "No such column '"+k+"' on sobject of type "+o.Name, k)
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
				return nil, errf(http.StatusBadRequest, "INVALID_FIELD", "The Id field should not be specified in the sobject data.")
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
			return nil, errf(http.StatusBadRequest, "REQUIRED_FIELD_MISSING", "Required fields are missing: ["+f.Name+"]", f.Name)
		}
		if f.Type == soql.Reference && tv != nil {
			ref, ok := e.st.get(tv.(string))
			if !ok {
				if gone, dead := e.st.deleted[tv.(string)]; dead && slices.Contains(f.Refs, gone.obj.Name) {
					return nil, errf(http.StatusBadRequest, "ENTITY_IS_DELETED", "entity is deleted")
				}
			}
			if !ok || !slices.Contains(f.Refs, ref.obj.Name) {
				return nil, errf(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", f.Name+": invalid cross reference id", f.Name)
			}
		}
		vals[f.Name] = tv
	}
	if len(readOnly) > 0 {
		slices.Sort(readOnly)
		return nil, errf(http.StatusBadRequest, "INVALID_FIELD_FOR_INSERT_UPDATE",
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
			return nil, errf(http.StatusBadRequest, "REQUIRED_FIELD_MISSING", "Required fields are missing: ["+strings.Join(missing, ", ")+"]", missing...)
		}
	}
	return vals, nil
}

func cannot(op string, o *objectDef) *restError {
	return errf(http.StatusBadRequest, "INVALID_TYPE_FOR_OPERATION", "entity type cannot be "+op+": "+o.Label)
}

// insertOne creates one record through the API, applying Omni-Channel rules.
func (e *Emulator) insertOne(user, origin string, o *objectDef, body map[string]any) (string, *restError) {
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

func (e *Emulator) insertTx(t *tx, o *objectDef, body map[string]any) (*record, *restError) {
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
				return nil, errf(http.StatusBadRequest, "DUPLICATE_VALUE", "duplicate value found: Name duplicates value on record with id: "+p.id, "Name")
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
func (e *Emulator) updateOne(user, origin string, o *objectDef, id string, body map[string]any) *restError {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.begin(user, origin)
	if err := e.updateTx(t, o, id, body); err != nil {
		return err
	}
	e.commit(t)
	return nil
}

func (e *Emulator) updateTx(t *tx, o *objectDef, id string, body map[string]any) *restError {
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
		return errf(http.StatusBadRequest, "FIELD_INTEGRITY_EXCEPTION",
			"You can't edit a PendingServiceRouting record once IsReadyForRouting is true.")
	}
	return nil
}

// deleteOne deletes one record through the API.
func (e *Emulator) deleteOne(user, origin string, o *objectDef, id string) *restError {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.begin(user, origin)
	if err := e.deleteTx(t, o, id); err != nil {
		return err
	}
	e.commit(t)
	return nil
}

func (e *Emulator) deleteTx(t *tx, o *objectDef, id string) *restError {
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
			return errf(http.StatusBadRequest, "DELETE_FAILED", "You can delete AgentWork only when its status is Closed, Declined or Unavailable.")
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

// collections is POST/PATCH /composite/sobjects (salesforce-facts.md 6.3).
func (c *restCtx) collections() *restError {
	if c.method != http.MethodPost && c.method != http.MethodPatch {
		return methodNotAllowed(c.method)
	}
	var body struct {
		AllOrNone bool             `json:"allOrNone"`
		Records   []map[string]any `json:"records"`
	}
	if err := c.readBody(&body); err != nil {
		return err
	}
	if len(body.Records) == 0 {
		return errf(http.StatusBadRequest, "INVALID_FIELD", "No records to process")
	}
	if len(body.Records) > 200 {
		return errf(http.StatusBadRequest, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
	}
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.begin(c.user, c.origin)
	type result struct {
		ID      string         `json:"id,omitempty"` // left out on failure, as Salesforce does
		Success bool           `json:"success"`
		Errors  []collectError `json:"errors"`
	}
	results := make([]result, len(body.Records))
	if body.AllOrNone {
		// allOrNone: check every record first; one failure fails them all and nothing is
		// written. The check tracks the PSRs and capacity that earlier AgentWork of the request
		// take (see docs/emulator.md for what it does not see).
		failed := false
		check := e.begin(c.user, c.origin)
		check.batch = &batchClaims{psrs: map[string]bool{}, load: map[string]float64{}}
		for i, rec := range body.Records {
			if err := e.checkCollectionRecord(check, c.method, rec); err != nil {
				failed = true
				results[i] = result{Success: false, Errors: toCollect(err)}
			}
		}
		if failed {
			for i := range results {
				if results[i].Errors == nil {
					results[i] = result{Success: false, Errors: []collectError{{StatusCode: "ALL_OR_NONE_OPERATION_ROLLED_BACK",
						Message: "Record rolled back because not all records were valid and the request was using AllOrNone header", Fields: []string{}}}}
				}
			}
			writeJSON(c.w, http.StatusOK, results)
			return nil
		}
	}
	for i, rec := range body.Records {
		o, id, err := e.collectionTarget(c.method, rec)
		if err == nil {
			if c.method == http.MethodPost {
				var r *record
				r, err = e.insertTx(t, o, rec)
				if err == nil {
					id = r.id
				}
			} else {
				err = e.updateTx(t, o, id, rec)
			}
		}
		if err != nil {
			results[i] = result{Success: false, Errors: toCollect(err)}
			continue
		}
		results[i] = result{ID: id, Success: true, Errors: []collectError{}}
	}
	e.commit(t)
	writeJSON(c.w, http.StatusOK, results)
	return nil
}

// collectionTarget returns a collection record's type and, for updates, its id (removed from
// the record's fields).
func (e *Emulator) collectionTarget(method string, rec map[string]any) (*objectDef, string, *restError) {
	attrs, _ := rec["attributes"].(map[string]any)
	typ, _ := attrs["type"].(string)
	o, ok := e.schema.object(typ)
	if !ok {
		return nil, "", errf(http.StatusBadRequest, "INVALID_TYPE", "sObject type '"+typ+"' is not supported.")
	}
	if method == http.MethodPost {
		if _, has := rec["id"]; has {
			return nil, "", errf(http.StatusBadRequest, "INVALID_FIELD", "The Id field should not be specified in the sobject data.")
		}
		return o, "", nil
	}
	rid, _ := rec["id"].(string)
	if rid == "" {
		rid, _ = rec["Id"].(string)
	}
	delete(rec, "id")
	delete(rec, "Id")
	if rid == "" {
		return nil, "", errf(http.StatusBadRequest, "MISSING_ARGUMENT", "Id not specified in an update call")
	}
	return o, normalizeID(rid), nil
}

// checkCollectionRecord validates one collection record without writing anything.
func (e *Emulator) checkCollectionRecord(t *tx, method string, rec map[string]any) *restError {
	cp := map[string]any{}
	for k, v := range rec {
		cp[k] = v
	}
	o, id, err := e.collectionTarget(method, cp)
	if err != nil {
		return err
	}
	if method == http.MethodPost {
		if !o.Createable {
			return cannot("inserted", o)
		}
		vals, err := e.typedValues(o, cp, true)
		if err != nil {
			return err
		}
		switch o.Name {
		case "AgentWork":
			_, err = e.prepareAgentWork(t, vals)
		case "PushTopic":
			t.defaults(o, vals)
			_, err = e.compileTopic(&record{obj: o, vals: vals})
		}
		return err
	}
	target, err := e.lookup(o, id)
	if err != nil {
		return err
	}
	if !o.Updateable {
		return cannot("updated", o)
	}
	if err := editable(target); err != nil {
		return err
	}
	_, err = e.typedValues(o, cp, false)
	return err
}

type collectError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

func toCollect(err *restError) []collectError {
	out := make([]collectError, 0, len(err.Errs))
	for _, x := range err.Errs {
		f := x.Fields
		if f == nil {
			f = []string{}
		}
		out = append(out, collectError{StatusCode: x.ErrorCode, Message: x.Message, Fields: f})
	}
	return out
}

func (c *restCtx) limits() *restError {
	if c.method != http.MethodGet {
		return methodNotAllowed(c.method)
	}
	e := c.e
	limit, used := e.apiLimit.Load(), e.apiUsed.Load()
	pair := func(max, rem int64) object { return object{{"Max", max}, {"Remaining", rem}} }
	delivered, clients := e.streamingLimitPairs()
	writeJSON(c.w, http.StatusOK, object{
		{"DailyApiRequests", pair(limit, max(limit-used, 0))},
		{"DailyDeliveredPlatformEvents", delivered},
		{"DailyDurableStreamingApiEvents", pair(200000, 200000)},
		{"DurableStreamingApiConcurrentClients", clients},
		{"ConcurrentPerOrgLongTxn", pair(25, 25)},
	})
	return nil
}
