package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// TruncateFault cuts the body of matching responses partway: the client gets the status line,
// the headers (with the full Content-Length) and the first Bytes bytes of the body, then the
// connection closes, as when a proxy or the network drops a response mid-body. It applies only
// to responses answered 200: REST GETs (scope rest) and CometD POSTs that carry a
// /meta/connect (scope cometd, including a connect that delivers events: those events count as
// delivered, as on a real org where the client must replay them). The next Count matching
// responses are cut, or each with probability Rate.
type TruncateFault struct {
	Count int     `json:"count"`
	Rate  float64 `json:"rate"`
	// Bytes is how many body bytes reach the client before the cut (0: half the body, at least
	// one byte short of it).
	Bytes int `json:"bytes"`
	// Scope is rest, cometd or all (default all).
	Scope string `json:"scope"`
}

// InjectTruncateFault adds a rule that cuts response bodies partway (see TruncateFault).
func (e *Emulator) InjectTruncateFault(f TruncateFault) error {
	switch f.Scope {
	case "", "all", "rest", "cometd":
	default:
		return fmt.Errorf("inject truncate fault: scope %q (want rest, cometd or all): %w", f.Scope, ErrInvalid)
	}
	if f.Count < 0 || f.Rate < 0 || f.Rate > 1 || (f.Count == 0 && f.Rate == 0) || f.Bytes < 0 {
		return fmt.Errorf("inject truncate fault: give count > 0 or rate in (0,1], and bytes >= 0: %w", ErrInvalid)
	}
	e.faults.mu.Lock()
	e.faults.truncate = append(e.faults.truncate, &f)
	e.faults.mu.Unlock()
	return nil
}

// truncateArmed reports whether any truncate rule could apply to scope; requests are buffered
// only then, so the fault costs nothing when no rule is set.
func (f *faultState) truncateArmed(scope string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.truncate {
		if t.Scope == "" || t.Scope == "all" || t.Scope == scope {
			return true
		}
	}
	return false
}

// pickTruncate consumes and returns the truncate rule that applies to a 200 response in scope.
func (f *faultState) pickTruncate(scope string) *TruncateFault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, t := range f.truncate {
		if t.Scope != "" && t.Scope != "all" && t.Scope != scope {
			continue
		}
		if t.Count > 0 {
			t.Count--
			if t.Count == 0 && t.Rate == 0 {
				f.truncate = append(f.truncate[:i], f.truncate[i+1:]...)
			}
			cp := *t
			return &cp
		}
		if t.Rate > 0 && f.rng.Float64() < t.Rate {
			cp := *t
			return &cp
		}
	}
	return nil
}

// truncatable reports whether r is a request whose 200 answer the truncate fault may cut: a
// REST GET, or a CometD POST carrying a /meta/connect. It peeks at a CometD body and puts it back.
func truncatable(scope string, r *http.Request) bool {
	switch scope {
	case "rest":
		return r.Method == http.MethodGet
	case "cometd":
		if r.Method != http.MethodPost || r.Body == nil {
			return false
		}
		const peekLimit = 1 << 20
		data, err := io.ReadAll(io.LimitReader(r.Body, peekLimit))
		r.Body = readCloser{io.MultiReader(bytes.NewReader(data), r.Body), r.Body}
		if err != nil {
			return false
		}
		var msgs []struct {
			Channel string `json:"channel"`
		}
		if json.Unmarshal(data, &msgs) != nil {
			var one struct {
				Channel string `json:"channel"`
			}
			if json.Unmarshal(data, &one) != nil {
				return false
			}
			msgs = append(msgs, one)
		}
		for _, m := range msgs {
			if m.Channel == "/meta/connect" {
				return true
			}
		}
	}
	return false
}

type readCloser struct {
	io.Reader
	io.Closer
}

// bufferedResponse holds a handler's whole answer so that the truncate fault can decide, once
// the status is known, whether to cut it.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// Flush is a no-op: the answer is sent whole (or cut) when the handler returns.
func (b *bufferedResponse) Flush() {}

// serveTruncatable runs next with a buffered response and then sends it whole, or, when a
// truncate rule applies to its 200 answer, sends its first bytes and aborts the connection.
// It reports whether the response was cut.
func (e *Emulator) serveTruncatable(w http.ResponseWriter, r *http.Request, scope string, next http.Handler) bool {
	buf := &bufferedResponse{header: w.Header()}
	next.ServeHTTP(buf, r)
	if buf.status == 0 {
		return false // the handler wrote nothing (the client went away)
	}
	body := buf.body.Bytes()
	var f *TruncateFault
	if buf.status == http.StatusOK && len(body) > 0 {
		f = e.faults.pickTruncate(scope)
	}
	if f == nil {
		w.WriteHeader(buf.status)
		_, _ = w.Write(body)
		return false
	}
	n := f.Bytes
	if n == 0 || n >= len(body) {
		n = len(body) / 2
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body[:n])
	_ = http.NewResponseController(w).Flush()
	return true
}
