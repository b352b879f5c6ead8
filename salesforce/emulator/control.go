package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Counters are the emulator's running totals.
type Counters struct {
	APICalls        int64          `json:"apiCalls"`
	APILimit        int64          `json:"apiLimit"`
	TokensIssued    int64          `json:"tokensIssued"`
	EventsPublished int64          `json:"eventsPublished"`
	Records         map[string]int `json:"records"`
	Streaming       any            `json:"streaming"`
}

// Counters returns API calls, tokens, events published and live record counts per type.
func (e *Emulator) Counters() Counters {
	c := Counters{
		APICalls: e.apiUsed.Load(), APILimit: e.apiLimit.Load(), TokensIssued: e.tokensIssued.Load(),
		EventsPublished: e.eventsPublished.Load(), Records: map[string]int{},
		Streaming: e.stream.Stats(),
	}
	e.mu.Lock()
	for typ, list := range e.st.byType {
		n := 0
		for _, r := range list {
			if !r.deleted {
				n++
			}
		}
		c.Records[typ] = n
	}
	e.mu.Unlock()
	return c
}

// maxBulkRecords caps one CreateRecords call.
const maxBulkRecords = 100_000

// CreateRecords bulk-creates count records of typ with the same fields (e.g. 10,000 Cases
// for paging tests). Work items owned by an external-routing queue get PSRs as usual.
func (e *Emulator) CreateRecords(typ string, count int, fields map[string]any) ([]string, error) {
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

// controlHandler serves /emulator/v1/.
func (e *Emulator) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /emulator/v1/work", func(w http.ResponseWriter, r *http.Request) {
		var req WorkRequest
		if !decode(w, r, &req) {
			return
		}
		res, err := e.CreateWork(req)
		respond(w, http.StatusCreated, res, err)
	})
	mux.HandleFunc("POST /emulator/v1/work/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, map[string]bool{"ok": true}, e.CancelWork(r.PathValue("id")))
	})
	mux.HandleFunc("POST /emulator/v1/work/{id}/owner", func(w http.ResponseWriter, r *http.Request) {
		var req OwnerTarget
		if !decode(w, r, &req) {
			return
		}
		respond(w, http.StatusOK, map[string]bool{"ok": true}, e.ChangeOwner(r.PathValue("id"), req))
	})
	mux.HandleFunc("POST /emulator/v1/work/native", func(w http.ResponseWriter, r *http.Request) {
		var req NativeRequest
		if !decode(w, r, &req) {
			return
		}
		res, err := e.NativeRoute(req)
		respond(w, http.StatusCreated, res, err)
	})
	mux.HandleFunc("GET /emulator/v1/history", e.handleHistory)
	mux.HandleFunc("POST /emulator/v1/agents/{username}/presence", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Status string `json:"status"`
		}
		if !decode(w, r, &req) {
			return
		}
		respond(w, http.StatusOK, map[string]bool{"ok": true}, e.SetPresence(r.PathValue("username"), req.Status))
	})
	mux.HandleFunc("POST /emulator/v1/psr/{id}/assign", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			User string `json:"user"`
		}
		if !decode(w, r, &req) {
			return
		}
		id, err := e.AssignWork(r.PathValue("id"), req.User)
		respond(w, http.StatusCreated, map[string]string{"agentWorkId": id}, err)
	})
	mux.HandleFunc("POST /emulator/v1/agentwork/{id}/{action}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		switch r.PathValue("action") {
		case "accept":
			respond(w, http.StatusOK, map[string]bool{"ok": true}, e.AcceptWork(id))
		case "decline":
			var req struct {
				Reason string `json:"reason"`
			}
			if r.ContentLength != 0 && !decode(w, r, &req) {
				return
			}
			respond(w, http.StatusOK, map[string]bool{"ok": true}, e.DeclineWork(id, req.Reason))
		case "close":
			respond(w, http.StatusOK, map[string]bool{"ok": true}, e.CloseWork(id))
		case "transfer":
			var req TransferTarget
			if !decode(w, r, &req) {
				return
			}
			res, err := e.TransferWork(id, req)
			respond(w, http.StatusOK, res, err)
		default:
			writeControlError(w, http.StatusNotFound, "unknown action "+r.PathValue("action"))
		}
	})
	mux.HandleFunc("GET /emulator/v1/agentwork", func(w http.ResponseWriter, _ *http.Request) {
		out := e.AgentWorks()
		if out == nil {
			out = []AgentWorkInfo{}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /emulator/v1/auto", func(w http.ResponseWriter, r *http.Request) {
		var a AutoOptions
		if !decode(w, r, &a) {
			return
		}
		if a.DeclineRate < 0 || a.DeclineRate > 1 || a.AcceptAfter < 0 || a.CloseAfter < 0 {
			writeControlError(w, http.StatusBadRequest, "declineRate must be 0..1 and durations >= 0")
			return
		}
		e.SetAuto(a)
		writeJSON(w, http.StatusOK, a)
	})
	mux.HandleFunc("POST /emulator/v1/timers/run", func(w http.ResponseWriter, _ *http.Request) {
		e.RunTimers()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("POST /emulator/v1/faults/http", okAction(e.InjectHTTPFault))
	mux.HandleFunc("POST /emulator/v1/noise", okAction(func(n NoiseRequest) error { return e.SetNoise(n.Rate) }))
	mux.HandleFunc("POST /emulator/v1/faults/truncate", okAction(e.InjectTruncateFault))
	mux.HandleFunc("POST /emulator/v1/faults/latency", okAction(e.SetLatency))
	mux.HandleFunc("DELETE /emulator/v1/faults", func(w http.ResponseWriter, _ *http.Request) {
		e.ClearFaults()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	simple := map[string]func(){
		"POST /emulator/v1/sessions/expire":         e.ExpireSessions,
		"POST /emulator/v1/streaming/drop-clients":  e.DropStreamingClients,
		"POST /emulator/v1/streaming/expire-replay": e.ExpireReplay,
		"POST /emulator/v1/limits/exhaust":          e.ExhaustAPILimit,
		"POST /emulator/v1/limits/reset":            e.ResetAPILimit,
	}
	for pattern, fn := range simple {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) {
			fn()
			writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		})
	}
	mux.HandleFunc("POST /emulator/v1/streaming/gap", okAction(e.InjectGap))
	e.handleStreamingControl(mux)
	mux.HandleFunc("POST /emulator/v1/records/{type}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Count  int            `json:"count"`
			Fields map[string]any `json:"fields"`
		}
		if !decode(w, r, &req) {
			return
		}
		if req.Count == 0 {
			req.Count = 1
		}
		ids, err := e.CreateRecords(r.PathValue("type"), req.Count, req.Fields)
		body := map[string]any{"count": len(ids)}
		if len(ids) > 0 {
			body["firstId"], body["lastId"] = ids[0], ids[len(ids)-1]
		}
		if len(ids) <= 1000 {
			body["ids"] = ids
		}
		respond(w, http.StatusCreated, body, err)
	})
	mux.HandleFunc("GET /emulator/v1/counters", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, e.Counters())
	})
	mux.HandleFunc("GET /emulator/v1/requests", func(w http.ResponseWriter, _ *http.Request) {
		out := e.Requests()
		if out == nil {
			out = []RequestRecord{}
		}
		writeJSON(w, http.StatusOK, out)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !e.checkControl(r) {
			writeControlError(w, http.StatusUnauthorized, "control API needs Authorization: Bearer <control token>")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// okAction serves a POST whose JSON body decodes into a T and is handed to fn; it answers
// {"ok":true} or fn's error.
func okAction[T any](fn func(T) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var v T
		if !decode(w, r, &v) {
			return
		}
		respond(w, http.StatusOK, map[string]bool{"ok": true}, fn(v))
	}
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil && len(bytes.TrimSpace(data)) == 0 {
		return true
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
	}
	if err != nil {
		writeControlError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func writeControlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func respond(w http.ResponseWriter, status int, body any, err error) {
	if err == nil {
		writeJSON(w, status, body)
		return
	}
	code := http.StatusInternalServerError
	var re *restError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.As(err, &re):
		writeJSON(w, re.Status, map[string]any{"error": re.Error(), "errors": re.Errs})
		return
	}
	writeControlError(w, code, strings.TrimSpace(err.Error()))
}
