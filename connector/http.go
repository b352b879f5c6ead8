package connector

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/omniroute/omniroute/mapping"
)

// The HTTP server's timeouts (STYLE.md: explicit, on one http.Server).
const (
	httpReadHeaderTimeout = 10 * time.Second
	httpReadTimeout       = 30 * time.Second
	httpWriteTimeout      = 60 * time.Second
	httpIdleTimeout       = 2 * time.Minute
)

// Readiness conditions: /readyz is 200 only when every one holds.
const (
	CondMappingLoaded    = "mapping_loaded"
	CondTokenHeld        = "token_held"
	CondOrgChecked       = "org_checked"
	CondStreamSubscribed = "stream_subscribed"
	CondReconcileApplied = "reconcile_applied"
)

// Condition is one named readiness condition and what /readyz says while it is false.
type Condition struct {
	Name      string
	WhenFalse string
}

// DefaultConditions are the daemon's readiness conditions, in the order they become true.
func DefaultConditions() []Condition {
	return []Condition{
		{CondMappingLoaded, "mapping not loaded"},
		{CondTokenHeld, "no salesforce access token"},
		{CondOrgChecked, "mapping not checked against the org"},
		{CondStreamSubscribed, "stream not subscribed"},
		{CondReconcileApplied, "reconcile not applied"},
	}
}

// Readiness is a set of named conditions, all false at first. It is safe for concurrent use.
type Readiness struct {
	conds []Condition
	mu    sync.Mutex
	held  map[string]bool
}

// NewReadiness returns conditions that are all false.
func NewReadiness(conds ...Condition) *Readiness {
	return &Readiness{conds: conds, held: map[string]bool{}}
}

// Set marks a condition true or false. An unknown name panics: conditions are fixed at start.
func (r *Readiness) Set(name string, ok bool) {
	for _, c := range r.conds {
		if c.Name == name {
			r.mu.Lock()
			r.held[name] = ok
			r.mu.Unlock()
			return
		}
	}
	panic("connector: unknown readiness condition " + name)
}

// Ready reports whether every condition holds, and each condition's state in order.
func (r *Readiness) Ready() (bool, []ConditionStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ready := true
	out := make([]ConditionStatus, len(r.conds))
	for i, c := range r.conds {
		ok := r.held[c.Name]
		out[i] = ConditionStatus{Name: c.Name, OK: ok}
		if !ok {
			ready = false
			out[i].Message = c.WhenFalse
		}
	}
	return ready, out
}

// ConditionStatus is one condition as /readyz reports it.
type ConditionStatus struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// Liveness tracks the heartbeats of the daemon's loops: /healthz is 200 while each has beaten
// within its period. It is safe for concurrent use.
type Liveness struct {
	now   func() time.Time
	mu    sync.Mutex
	loops []*Heartbeat
}

// NewLiveness returns an empty set of loops; now is the clock (default time.Now).
func NewLiveness(now func() time.Time) *Liveness {
	if now == nil {
		now = time.Now
	}
	return &Liveness{now: now}
}

// Heartbeat is one loop's proof of progress.
type Heartbeat struct {
	name   string
	within time.Duration
	l      *Liveness
	last   time.Time // guarded by l.mu
}

// Register adds a loop that must beat at least every within; it counts as beating now.
func (l *Liveness) Register(name string, within time.Duration) *Heartbeat {
	l.mu.Lock()
	defer l.mu.Unlock()
	hb := &Heartbeat{name: name, within: within, l: l, last: l.now()}
	l.loops = append(l.loops, hb)
	return hb
}

// Beat records progress.
func (h *Heartbeat) Beat() {
	h.l.mu.Lock()
	h.last = h.l.now()
	h.l.mu.Unlock()
}

// LoopStatus is one loop as /healthz reports it.
type LoopStatus struct {
	Name     string    `json:"name"`
	OK       bool      `json:"ok"`
	LastBeat time.Time `json:"last_beat"`
	Message  string    `json:"message,omitempty"`
}

// Healthy reports whether every loop beat within its period, and each loop's state.
func (l *Liveness) Healthy() (bool, []LoopStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	healthy := true
	out := make([]LoopStatus, len(l.loops))
	for i, hb := range l.loops {
		age := now.Sub(hb.last)
		out[i] = LoopStatus{Name: hb.name, OK: age <= hb.within, LastBeat: hb.last.UTC()}
		if !out[i].OK {
			healthy = false
			out[i].Message = fmt.Sprintf("no progress for %s (limit %s)", age.Round(time.Second), hb.within)
		}
	}
	return healthy, out
}

// APIError is the body of every error the HTTP API returns. Its field names are stable.
type APIError struct {
	// Error is a stable machine-readable code, e.g. unauthorized, admin_disabled,
	// mapping_rejected, not_found, method_not_allowed.
	Error string `json:"error"`
	// Message is for people.
	Message string `json:"message"`
	// Problems lists each problem of a rejected mapping as file:line:col: path: message.
	Problems []string `json:"problems,omitempty"`
}

// HTTPOptions configures the HTTP layer.
type HTTPOptions struct {
	// AdminToken is the bearer token of the admin endpoints; empty refuses them (403).
	AdminToken Secret
	// Gatherer is what /metrics serves. Required.
	Gatherer prometheus.Gatherer
	// Registerer receives the http_* metrics, under the daemon's prefix. Nil registers none.
	Registerer prometheus.Registerer
	// Ready backs /readyz. Required.
	Ready *Readiness
	// Live backs /healthz. Required.
	Live *Liveness
	// Reload loads the mapping now (POST /-/reload): Reloader.Load. Nil: no reload endpoint.
	Reload func(context.Context) (Mapping, error)
	// Logger logs refused admin calls and server errors. Nil discards.
	Logger *slog.Logger
	// Agent is the agent websocket, served at AgentPath (GET, its own authentication, outside
	// the http_* request metrics: a connection lives for hours) and closed when the server shuts
	// down. Nil: not served.
	Agent *Gateway
}

// HTTP is the daemon's one HTTP server: open /metrics, /healthz and /readyz, and the admin API
// behind a bearer token. Other parts add endpoints with HandleAdmin before Serve.
type HTTP struct {
	opts    HTTPOptions
	log     *slog.Logger
	mux     *http.ServeMux
	srv     *http.Server
	metrics *httpMetrics
}

// NewHTTP builds the server and its open and admin routes.
func NewHTTP(opts HTTPOptions) (*HTTP, error) {
	if opts.Gatherer == nil || opts.Ready == nil || opts.Live == nil {
		return nil, errors.New("check http options: a gatherer, readiness and liveness are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &HTTP{opts: opts, log: opts.Logger.With("component", "http"), mux: http.NewServeMux(), metrics: newHTTPMetrics(opts.Registerer)}
	h.srv = &http.Server{
		Handler:           h.mux,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
	h.HandleOpen("/metrics", http.MethodGet, promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	h.HandleOpen("/healthz", http.MethodGet, http.HandlerFunc(h.healthz))
	h.HandleOpen("/readyz", http.MethodGet, http.HandlerFunc(h.readyz))
	if opts.Reload != nil {
		h.HandleAdmin("/-/reload", http.MethodPost, http.HandlerFunc(h.reload))
	}
	if opts.Agent != nil {
		// The gateway clears this server's ReadTimeout and WriteTimeout on the connections it
		// upgrades (http.ResponseController); Shutdown closes them (the server does not wait
		// for hijacked connections).
		h.mux.Handle(AgentPath, allowMethod(http.MethodGet, opts.Agent))
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, APIError{Error: "not_found", Message: "no such endpoint: " + r.URL.Path})
	})
	return h, nil
}

// Handler returns the server's handler (tests, and the demo's in-process use).
func (h *HTTP) Handler() http.Handler { return h.mux }

// HandleOpen serves pattern (a path) for one method without authentication.
func (h *HTTP) HandleOpen(pattern, method string, handler http.Handler) {
	h.mux.Handle(pattern, h.instrument(pattern, allowMethod(method, handler)))
}

// HandleAdmin serves pattern (a path, e.g. /v1/plans or /v1/work/{id}/explain) for one method
// behind the admin bearer token.
func (h *HTTP) HandleAdmin(pattern, method string, handler http.Handler) {
	h.mux.Handle(pattern, h.instrument(pattern, allowMethod(method, h.requireAdmin(handler))))
}

// Serve serves on ln until Shutdown; it returns nil after a Shutdown.
func (h *HTTP) Serve(ln net.Listener) error {
	if err := h.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for requests in flight, then closes the agent
// websockets (Gateway.Close), until ctx ends.
func (h *HTTP) Shutdown(ctx context.Context) error {
	if err := h.srv.Shutdown(ctx); err != nil {
		_ = h.srv.Close()
		return fmt.Errorf("shut the http server down: %w", err)
	}
	if g := h.opts.Agent; g != nil {
		// The agents' websockets were hijacked: close them (1001) and wait for their
		// handlers, within ctx.
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			g.Close()
		}()
		select {
		case <-closed:
		case <-ctx.Done():
			return fmt.Errorf("close the agent websockets: %w", ctx.Err())
		}
	}
	return nil
}

// allowMethod answers 405 (JSON, with Allow) to other methods. GET also allows HEAD.
func allowMethod(method string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && (method != http.MethodGet || r.Method != http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, APIError{Error: "method_not_allowed", Message: "use " + method})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireAdmin lets a request through only with "Authorization: Bearer <OMNIROUTE_ADMIN_TOKEN>",
// compared in constant time (of sha256 digests, so not even the length leaks). With no token
// configured every admin call is refused with 403.
func (h *HTTP) requireAdmin(next http.Handler) http.Handler {
	want := h.opts.AdminToken.Reveal()
	wantSum := sha256.Sum256([]byte(want))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if want == "" {
			writeError(w, http.StatusForbidden, APIError{Error: "admin_disabled",
				Message: "the admin API is off: no " + env("AdminToken") + " is configured (to reload the mapping, send SIGHUP)"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		gotSum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(gotSum[:], wantSum[:]) != 1 {
			h.metrics.refused.Inc()
			h.log.Warn("admin call refused", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="omniroute"`)
			writeError(w, http.StatusUnauthorized, APIError{Error: "unauthorized", Message: "a valid bearer token is required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *HTTP) healthz(w http.ResponseWriter, _ *http.Request) {
	healthy, loops := h.opts.Live.Healthy()
	writeProbe(w, healthy, struct {
		Healthy bool         `json:"healthy"`
		Loops   []LoopStatus `json:"loops"`
	}{healthy, loops})
}

func (h *HTTP) readyz(w http.ResponseWriter, _ *http.Request) {
	ready, conds := h.opts.Ready.Ready()
	writeProbe(w, ready, struct {
		Ready      bool              `json:"ready"`
		Conditions []ConditionStatus `json:"conditions"`
	}{ready, conds})
}

// writeProbe answers a probe: 200 when ok, else 503, with the body saying why.
func writeProbe(w http.ResponseWriter, ok bool, body any) {
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

// ReloadResponse is the body of a successful POST /-/reload.
type ReloadResponse struct {
	SHA256 string   `json:"sha256"`
	Plans  []string `json:"plans"`
}

// reload answers 200 with the new mapping's checksum and plans once it is handed to the
// router, or 400 with every problem when it was rejected and the previous mapping stays.
func (h *HTTP) reload(w http.ResponseWriter, r *http.Request) {
	m, err := h.opts.Reload(r.Context())
	if err != nil {
		e := APIError{Error: "mapping_rejected", Message: err.Error()}
		var ps mapping.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				e.Problems = append(e.Problems, p.String())
			}
		}
		writeError(w, http.StatusBadRequest, e)
		return
	}
	resp := ReloadResponse{SHA256: m.SHA256, Plans: []string{}}
	for _, p := range m.Config.Plans {
		resp.Plans = append(resp.Plans, p.Name)
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeError(w http.ResponseWriter, code int, e APIError) { writeJSON(w, code, e) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// httpMetrics are the http_* metrics. The handler label is the route pattern: bounded.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	refused  prometheus.Counter
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	f := promauto.With(reg)
	return &httpMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"handler", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5},
		}, []string{"handler"}),
		refused: f.NewCounter(prometheus.CounterOpts{
			Subsystem: "http", Name: "admin_refused_total",
			Help: "Admin API calls refused for a missing or wrong bearer token.",
		}),
	}
}

func (h *HTTP) instrument(route string, next http.Handler) http.Handler {
	labels := prometheus.Labels{"handler": route}
	return promhttp.InstrumentHandlerCounter(h.metrics.requests.MustCurryWith(labels),
		promhttp.InstrumentHandlerDuration(h.metrics.duration.MustCurryWith(labels), next))
}
