package emulator

import (
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"
)

// historyEntities are the rows whose every change History records.
var historyEntities = map[string]bool{"PendingServiceRouting": true, "AgentWork": true, "UserServicePresence": true}

// Paging of History.
const (
	DefaultHistoryLimit = 1000
	MaxHistoryLimit     = 10_000
)

// HistoryEntry is one committed change of a PendingServiceRouting, AgentWork or
// UserServicePresence row, in commit order.
type HistoryEntry struct {
	// Seq numbers the entries from 1 without gaps.
	Seq int64 `json:"seq"`
	// Time is the commit time (the org clock).
	Time           time.Time `json:"time"`
	Entity         string    `json:"entity"`
	ID             string    `json:"id"`
	ChangeType     string    `json:"changeType"` // CREATE, UPDATE or DELETE
	ChangedFields  []string  `json:"changedFields,omitempty"`
	TransactionKey string    `json:"transactionKey"`
	// Fields is the whole row after the change (before it, for a DELETE).
	Fields map[string]any `json:"fields"`
}

// HistoryPage is one page of History.
type HistoryPage struct {
	Entries []HistoryEntry `json:"entries"`
	// Done is true when no entry follows; otherwise Next is the control-API path of the next
	// page.
	Done bool   `json:"done"`
	Next string `json:"next,omitempty"`
}

type historyRow struct {
	at      time.Time
	typ     string
	changed []string
	key     string
	rec     *record // snapshot, never mutated
}

// recordHistory appends a committed transaction's changes of the history entities. Callers
// hold e.mu.
func (e *Emulator) recordHistory(t *tx, key string) {
	for _, c := range t.changes {
		if historyEntities[c.obj.Name] && c.rec != nil {
			e.historyLog = append(e.historyLog, historyRow{at: t.now, typ: c.typ, changed: c.changed, key: key, rec: c.rec})
		}
	}
}

// History returns up to limit entries (DefaultHistoryLimit when 0, at most MaxHistoryLimit)
// after sequence number after: the full history of every PSR, AgentWork and presence row.
func (e *Emulator) History(after int64, limit int) (HistoryPage, error) {
	if limit == 0 {
		limit = DefaultHistoryLimit
	}
	if after < 0 || limit < 0 || limit > MaxHistoryLimit {
		return HistoryPage{}, fmt.Errorf("history after %d limit %d: want after >= 0 and limit 1..%d: %w", after, limit, MaxHistoryLimit, ErrInvalid)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	total := int64(len(e.historyLog))
	from := min(after, total)
	to := min(from+int64(limit), total)
	page := HistoryPage{Entries: make([]HistoryEntry, 0, to-from), Done: to == total}
	for i := from; i < to; i++ {
		h := e.historyLog[i]
		fields := maps.Clone(h.rec.vals)
		fields["Id"] = h.rec.id
		fields["IsDeleted"] = h.typ == "DELETE"
		page.Entries = append(page.Entries, HistoryEntry{
			Seq: i + 1, Time: h.at, Entity: h.rec.obj.Name, ID: h.rec.id, ChangeType: h.typ,
			ChangedFields: h.changed, TransactionKey: h.key, Fields: fields,
		})
	}
	if !page.Done {
		page.Next = "/emulator/v1/history?after=" + strconv.FormatInt(to, 10) + "&limit=" + strconv.Itoa(limit)
	}
	return page, nil
}

// handleHistory is GET /emulator/v1/history?after=N&limit=M.
func (e *Emulator) handleHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after int64
	var limit int
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil {
			writeControlError(w, http.StatusBadRequest, "after: not a number")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit == 0 {
			writeControlError(w, http.StatusBadRequest, "limit: want 1.."+strconv.Itoa(MaxHistoryLimit))
			return
		}
	}
	page, err := e.History(after, limit)
	respond(w, http.StatusOK, page, err)
}
