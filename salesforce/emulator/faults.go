package emulator

import (
	"crypto/subtle"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTPFault makes matching requests fail: the next Count of them, or each with probability
// Rate, answer Status.
//
// 500 and 503 are the org failing, answered in Salesforce's shape for the scope. 429, 502 and
// 504 are proxy or gateway faults: a proxy, load balancer or API gateway between the client and
// the org answers them with a plain-text body that is not Salesforce's (Salesforce itself
// signals its request limit with 403 REQUEST_LIMIT_EXCEEDED, never 429). 429 and 503 carry
// Retry-After.
type HTTPFault struct {
	Status            int     `json:"status"`
	Count             int     `json:"count"`
	Rate              float64 `json:"rate"`
	RetryAfterSeconds int     `json:"retryAfterSeconds"`
	// Scope is rest, token, cometd or all (default all).
	Scope string `json:"scope"`
}

// LatencyFault delays matching requests by MS milliseconds.
type LatencyFault struct {
	MS    int    `json:"ms"`
	Scope string `json:"scope"`
}

type faultState struct {
	mu       sync.Mutex
	http     []*HTTPFault
	truncate []*TruncateFault
	latency  map[string]time.Duration
	rng      *mrand.Rand
}

func scopeOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/services/oauth2/"), strings.HasPrefix(path, "/id/"):
		return "token"
	case strings.HasPrefix(path, "/services/data"):
		return "rest"
	case strings.HasPrefix(path, "/cometd/"):
		return "cometd"
	}
	return ""
}

func validScope(s string) bool {
	switch s {
	case "", "all", "rest", "token", "cometd":
		return true
	}
	return false
}

// InjectHTTPFault adds an HTTP failure rule.
func (e *Emulator) InjectHTTPFault(f HTTPFault) error {
	switch f.Status {
	case 500, 503, 429, 502, 504:
	default:
		return fmt.Errorf("inject fault: status %d (want 500 or 503 from the org, 429, 502 or 504 from a gateway): %w", f.Status, ErrInvalid)
	}
	if !validScope(f.Scope) || f.Count < 0 || f.Rate < 0 || f.Rate > 1 || (f.Count == 0 && f.Rate == 0) {
		return fmt.Errorf("inject fault: give count > 0 or rate in (0,1] and a scope of rest, token, cometd or all: %w", ErrInvalid)
	}
	e.faults.mu.Lock()
	e.faults.http = append(e.faults.http, &f)
	e.faults.mu.Unlock()
	return nil
}

// SetLatency delays every request in scope by l.MS milliseconds (0 removes it).
func (e *Emulator) SetLatency(l LatencyFault) error {
	if !validScope(l.Scope) || l.MS < 0 {
		return fmt.Errorf("set latency: %w", ErrInvalid)
	}
	sc := l.Scope
	if sc == "" {
		sc = "all"
	}
	e.faults.mu.Lock()
	if e.faults.latency == nil {
		e.faults.latency = map[string]time.Duration{}
	}
	e.faults.latency[sc] = time.Duration(l.MS) * time.Millisecond
	e.faults.mu.Unlock()
	return nil
}

// ClearFaults removes every HTTP failure, truncate and latency rule.
func (e *Emulator) ClearFaults() {
	e.faults.mu.Lock()
	e.faults.http = nil
	e.faults.truncate = nil
	e.faults.latency = nil
	e.faults.mu.Unlock()
	e.stream.ClearFaults()
}

// pick returns the fault that applies to a request in scope, consuming one of its count.
func (f *faultState) pick(scope string) (*HTTPFault, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delay := f.latency["all"] + f.latency[scope]
	for i, h := range f.http {
		if h.Scope != "" && h.Scope != "all" && h.Scope != scope {
			continue
		}
		if h.Count > 0 {
			h.Count--
			if h.Count == 0 && h.Rate == 0 {
				f.http = append(f.http[:i], f.http[i+1:]...)
			}
			cp := *h
			return &cp, delay
		}
		if h.Rate > 0 && f.rng.Float64() < h.Rate {
			cp := *h
			return &cp, delay
		}
	}
	return nil, delay
}

// statusRecorder captures the response status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status    int
	truncated bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// withFaults applies faults and latency to the org endpoints and records every request.
func (e *Emulator) withFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope := scopeOf(r.URL.Path)
		if scope == "" {
			next.ServeHTTP(w, r)
			return
		}
		grant := ""
		if scope == "token" && r.Method == http.MethodPost {
			_ = r.ParseForm()
			grant = r.PostForm.Get("grant_type")
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			e.reqs.add(RequestRecord{Time: e.now(), Method: r.Method, Path: r.URL.Path, Status: rec.status, GrantType: grant, Truncated: rec.truncated})
		}()
		f, delay := e.faults.pick(scope)
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if f == nil {
			if scope != "token" && e.faults.truncateArmed(scope) && truncatable(scope, r) {
				if rec.truncated = e.serveTruncatable(rec, r, scope, next); rec.truncated {
					panic(http.ErrAbortHandler) // close the connection mid-body; net/http logs nothing
				}
				return
			}
			next.ServeHTTP(rec, r)
			return
		}
		if gatewayStatus(f.Status) {
			writeGatewayFault(rec, f)
			return
		}
		if f.Status != http.StatusInternalServerError {
			ra := f.RetryAfterSeconds
			if ra <= 0 {
				ra = 1
			}
			rec.Header().Set("Retry-After", strconv.Itoa(ra))
		}
		switch scope {
		case "rest":
			code, msg := "SERVER_UNAVAILABLE", "Server temporarily unavailable; please retry your request."
			switch f.Status {
			case http.StatusInternalServerError:
				code, msg = "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: emulator-fault"
			}
			writeRESTError(rec, errf(f.Status, code, msg))
		case "token":
			writeJSON(rec, f.Status, tokenError{"unknown_error", "retry your request"})
		default:
			e.stream.WriteHTTPFault(rec, r, f.Status)
		}
	})
}

// gatewayStatus reports whether status is answered by a proxy or gateway, not by the org.
func gatewayStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// writeGatewayFault answers as a proxy or gateway in front of the org would: a short plain-text
// body, Retry-After on 429, nothing in Salesforce's error shapes.
func writeGatewayFault(w http.ResponseWriter, f *HTTPFault) {
	if f.Status == http.StatusTooManyRequests {
		ra := f.RetryAfterSeconds
		if ra <= 0 {
			ra = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Via", "1.1 emulator-gateway")
	w.WriteHeader(f.Status)
	_, _ = fmt.Fprintf(w, "%d %s\n", f.Status, http.StatusText(f.Status))
}

// RequestRecord is one request the emulator served (never tokens or bodies).
type RequestRecord struct {
	Time      time.Time `json:"time"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Status    int       `json:"status"`
	GrantType string    `json:"grantType,omitempty"`
	// Truncated: the truncate fault cut this response's body.
	Truncated bool `json:"truncated,omitempty"`
}

const requestLogSize = 2000

type requestLog struct {
	mu   sync.Mutex
	buf  []RequestRecord
	next int
	full bool
}

func (l *requestLog) add(r RequestRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf == nil {
		l.buf = make([]RequestRecord, requestLogSize)
	}
	l.buf[l.next] = r
	l.next = (l.next + 1) % requestLogSize
	if l.next == 0 {
		l.full = true
	}
}

// Requests returns the most recent requests (up to 2,000), oldest first.
func (e *Emulator) Requests() []RequestRecord {
	l := &e.reqs
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.full {
		return append([]RequestRecord(nil), l.buf[:l.next]...)
	}
	return append(append([]RequestRecord(nil), l.buf[l.next:]...), l.buf[:l.next]...)
}

// checkControl authorizes a control API request.
func (e *Emulator) checkControl(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(e.opts.ControlToken)) == 1
}

// ExhaustAPILimit uses up the daily API allocation: REST calls get REQUEST_LIMIT_EXCEEDED.
func (e *Emulator) ExhaustAPILimit() { e.apiUsed.Store(e.apiLimit.Load()) }

// ResetAPILimit sets API usage back to zero.
func (e *Emulator) ResetAPILimit() { e.apiUsed.Store(0) }

// DropStreamingClients forgets every CometD client; their next request gets 403::Unknown client.
func (e *Emulator) DropStreamingClients() { e.stream.DropAllClients() }

// ExpireReplay drops every retained event, so stored replay ids become invalid.
func (e *Emulator) ExpireReplay() { e.stream.ExpireEvents() }
