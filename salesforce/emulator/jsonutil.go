package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Time layouts Salesforce uses on the wire.
const (
	restTime = "2006-01-02T15:04:05.000+0000" // REST, SOQL results, PushTopic sobject
	cdcTime  = "2006-01-02T15:04:05Z"         // CDC payloads over CometD
)

// kv is one member of an ordered JSON object.
type kv struct {
	K string
	V any
}

// object is a JSON object that keeps its member order.
type object []kv

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.K)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshalValue(m.V)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalValue(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return []byte("null"), nil
	case string:
		return json.Marshal(x)
	case bool:
		return strconv.AppendBool(nil, x), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case float64:
		if x == float64(int64(x)) && x < 1e15 && x > -1e15 {
			return strconv.AppendFloat(nil, x, 'f', 1, 64), nil
		}
		return strconv.AppendFloat(nil, x, 'g', -1, 64), nil
	case time.Time:
		return json.Marshal(x.UTC().Format(restTime))
	}
	return json.Marshal(v)
}

// cdcValue converts a record value for a CDC payload (datetimes as ISO "Z" strings).
func cdcValue(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format(cdcTime)
	}
	return v
}

// apiError is one entry of a Salesforce REST error array.
type apiError struct {
	Message   string
	ErrorCode string
	Fields    []string // nil: no "fields" member
}

// MarshalJSON writes message, errorCode and, when Fields is not nil, fields.
func (a apiError) MarshalJSON() ([]byte, error) {
	o := object{{"message", a.Message}, {"errorCode", a.ErrorCode}}
	if a.Fields != nil {
		o = append(o, kv{"fields", a.Fields})
	}
	return o.MarshalJSON()
}

// restError is an error that renders as a Salesforce error array with an HTTP status.
type restError struct {
	Status int
	Errs   []apiError
}

func (e *restError) Error() string {
	if len(e.Errs) == 0 {
		return http.StatusText(e.Status)
	}
	return e.Errs[0].ErrorCode + ": " + e.Errs[0].Message
}

// badRequest is a Salesforce API error answered 400 over REST: the org layer's refusals
// (validation, Omni-Channel rules) are made with it, so the org never names an HTTP status.
func badRequest(code, msg string, fields ...string) *restError {
	return errf(http.StatusBadRequest, code, msg, fields...)
}

// notFoundError is a Salesforce API error answered 404 over REST.
func notFoundError(code, msg string) *restError {
	return errf(http.StatusNotFound, code, msg)
}

func errf(status int, code, msg string, fields ...string) *restError {
	if fields == nil {
		fields = []string{}
	}
	return &restError{Status: status, Errs: []apiError{{Message: msg, ErrorCode: code, Fields: fields}}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`[{"message":"could not encode the response","errorCode":"UNKNOWN_EXCEPTION"}]`)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeRESTError(w http.ResponseWriter, e *restError) {
	writeJSON(w, e.Status, e.Errs)
}
