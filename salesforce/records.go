package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// SaveResult is the outcome of one record write.
type SaveResult struct {
	ID      string        `json:"id"`
	Success bool          `json:"success"`
	Errors  []ErrorDetail `json:"errors"`
}

// Err returns nil for a success, else an error naming the first problem.
func (r SaveResult) Err() error {
	if r.Success {
		return nil
	}
	if len(r.Errors) == 0 {
		return errors.New("salesforce: record not saved (no error given)")
	}
	e := r.Errors[0]
	return &APIError{Status: http.StatusOK, Code: e.Code, Message: e.Message, Fields: e.Fields, Errors: r.Errors}
}

// Record is one sObject for the collection calls: its type, its id (for
// updates) and the fields to write.
type Record struct {
	Type   string
	ID     string
	Fields map[string]any
}

// MarshalJSON writes {"attributes":{"type":T},"id":ID,...fields}, members in key order (as
// for a map). A field named attributes, or id when ID is set, is left out: the record's own
// members win.
func (r Record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := r.appendJSON(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// appendJSON writes the record as MarshalJSON does. It is written out by hand, without a map
// of the whole record: it is on the path of every AgentWork insert.
func (r Record) appendJSON(b *bytes.Buffer) error {
	keys := make([]string, 0, len(r.Fields)+2)
	keys = append(keys, "attributes")
	if r.ID != "" {
		keys = append(keys, "id")
	}
	for k := range r.Fields {
		if k != "attributes" && (k != "id" || r.ID == "") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := appendValue(b, k); err != nil {
			return err
		}
		b.WriteByte(':')
		var err error
		switch {
		case k == "attributes":
			b.WriteString(`{"type":`)
			err = appendValue(b, r.Type)
			b.WriteByte('}')
		case k == "id" && r.ID != "":
			err = appendValue(b, r.ID)
		default:
			if err = appendValue(b, r.Fields[k]); err != nil {
				err = fmt.Errorf("field %s: %w", k, err)
			}
		}
		if err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

// appendValue writes v as encoding/json does.
func appendValue(b *bytes.Buffer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(data)
	return nil
}

// encodeCollection is the body of an sObject Collections call.
func encodeCollection(allOrNone bool, records []Record) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"allOrNone":`)
	b.WriteString(strconv.FormatBool(allOrNone))
	b.WriteString(`,"records":[`)
	for i, r := range records {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := r.appendJSON(&b); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}

var (
	sobjectName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	recordID    = regexp.MustCompile(`^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$`)
)

func checkType(t string) error {
	if !sobjectName.MatchString(t) {
		return fmt.Errorf("check sobject type %q: not an API name", t)
	}
	return nil
}

func checkID(id string) error {
	if !recordID.MatchString(id) {
		return fmt.Errorf("check record id %q: want 15 or 18 alphanumerics", id)
	}
	return nil
}

// Create inserts one record of sobject type t and returns its id. fields
// is anything that marshals to a JSON object of field values.
func (c *Client) Create(ctx context.Context, t string, fields any) (string, error) {
	if err := checkType(t); err != nil {
		return "", err
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return "", fmt.Errorf("create %s: encode fields: %w", t, err)
	}
	var res SaveResult
	r := request{op: "create", method: http.MethodPost, path: c.dataPath("/sobjects/" + t + "/"), body: body}
	if err := c.do(ctx, r, decodeJSON("create", &res)); err != nil {
		return "", fmt.Errorf("create %s: %w", t, err)
	}
	if err := res.Err(); err != nil {
		return "", fmt.Errorf("create %s: %w", t, err)
	}
	return res.ID, nil
}

// Update writes fields to the record t/id (PATCH; 204 on success).
func (c *Client) Update(ctx context.Context, t, id string, fields any) error {
	if err := checkType(t); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("update %s %s: encode fields: %w", t, id, err)
	}
	r := request{op: "update", method: http.MethodPatch, path: c.dataPath("/sobjects/" + t + "/" + id), body: body, safe: true}
	if err := c.do(ctx, r, ignoreBody); err != nil {
		return fmt.Errorf("update %s %s: %w", t, id, err)
	}
	return nil
}

// Delete deletes the record t/id. Deleting a record that is already
// deleted returns an *APIError with Code ENTITY_IS_DELETED (IsNotFound).
func (c *Client) Delete(ctx context.Context, t, id string) error {
	if err := checkType(t); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	r := request{op: "delete", method: http.MethodDelete, path: c.dataPath("/sobjects/" + t + "/" + id), safe: true}
	if err := c.do(ctx, r, ignoreBody); err != nil {
		return fmt.Errorf("delete %s %s: %w", t, id, err)
	}
	return nil
}

// Get reads the record t/id, optionally only the given fields, into v.
func (c *Client) Get(ctx context.Context, t, id string, fields []string, v any) error {
	if err := checkType(t); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	r := request{op: "get", method: http.MethodGet, path: c.dataPath("/sobjects/" + t + "/" + id), safe: true}
	if len(fields) > 0 {
		r.query = url.Values{"fields": {strings.Join(fields, ",")}}
	}
	if err := c.do(ctx, r, decodeJSON("get", v)); err != nil {
		return fmt.Errorf("get %s %s: %w", t, id, err)
	}
	return nil
}

// CollectionBatchSize is the most records one composite/sobjects request
// may carry.
const CollectionBatchSize = 200

// CreateCollection inserts records through composite/sobjects, in batches
// of up to 200, and returns one result per record in the order given.
// With allOrNone, each batch is all-or-none (Salesforce rolls back a batch
// in which any record fails; the others report
// ALL_OR_NONE_OPERATION_ROLLED_BACK); batches already committed stay
// committed. A request-level failure ends the call: results of earlier
// batches are returned with the error.
func (c *Client) CreateCollection(ctx context.Context, records []Record, allOrNone bool) ([]SaveResult, error) {
	return c.collection(ctx, "create_collection", http.MethodPost, records, allOrNone)
}

// UpdateCollection updates records (each with an ID) through
// composite/sobjects, like CreateCollection.
func (c *Client) UpdateCollection(ctx context.Context, records []Record, allOrNone bool) ([]SaveResult, error) {
	for i, r := range records {
		if err := checkID(r.ID); err != nil {
			return nil, fmt.Errorf("update collection: record %d: %w", i, err)
		}
	}
	return c.collection(ctx, "update_collection", http.MethodPatch, records, allOrNone)
}

func (c *Client) collection(ctx context.Context, op, method string, records []Record, allOrNone bool) ([]SaveResult, error) {
	for i, r := range records {
		if err := checkType(r.Type); err != nil {
			return nil, fmt.Errorf("%s: record %d: %w", op, i, err)
		}
	}
	results := make([]SaveResult, 0, len(records))
	for start := 0; start < len(records); start += CollectionBatchSize {
		end := min(start+CollectionBatchSize, len(records))
		body, err := encodeCollection(allOrNone, records[start:end])
		if err != nil {
			return results, fmt.Errorf("%s: encode records %d-%d: %w", op, start, end-1, err)
		}
		var batch []SaveResult
		r := request{op: op, method: method, path: c.dataPath("/composite/sobjects"), body: body, safe: method == http.MethodPatch}
		if err := c.do(ctx, r, decodeJSON(op, &batch)); err != nil {
			return results, fmt.Errorf("%s: records %d-%d: %w", op, start, end-1, err)
		}
		if len(batch) != end-start {
			return results, fmt.Errorf("%s: records %d-%d: got %d results for %d records", op, start, end-1, len(batch), end-start)
		}
		results = append(results, batch...)
	}
	return results, nil
}

// Limit is one entry of the limits resource.
type Limit struct {
	Max       int64 `json:"Max"`
	Remaining int64 `json:"Remaining"`
}

// Limits reads the org's limits (GET /limits), keyed by name, e.g.
// "DailyApiRequests".
func (c *Client) Limits(ctx context.Context) (map[string]Limit, error) {
	var raw map[string]json.RawMessage
	r := request{op: "limits", method: http.MethodGet, path: c.dataPath("/limits/"), safe: true}
	if err := c.do(ctx, r, decodeJSON("limits", &raw)); err != nil {
		return nil, fmt.Errorf("read limits: %w", err)
	}
	out := make(map[string]Limit, len(raw))
	for k, v := range raw {
		var l Limit
		// Entries carry sub-maps per app; only Max/Remaining matter here.
		if json.Unmarshal(v, &l) == nil {
			out[k] = l
		}
	}
	return out, nil
}
