package connector

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/omniroute/omniroute/mapping"
)

// DefaultReloadInterval is how often the Reloader checks the mapping file's checksum when
// ReloaderOptions.Interval is zero.
const DefaultReloadInterval = 30 * time.Second

// ReloaderOptions configures a Reloader. T is what Compile builds from a mapping, e.g.
// *routing.Plans.
type ReloaderOptions[T any] struct {
	// Path is the mapping file. Required. Mount a Kubernetes ConfigMap as a directory (not
	// subPath) so that updates reach the file.
	Path string
	// Compile turns a valid mapping into what Apply installs (routing.Compile). Required.
	Compile func(*mapping.Config) (T, error)
	// Apply installs a compiled mapping: the atomic swap. It is called only after read, parse,
	// validate and compile have all succeeded, never concurrently with itself, on the goroutine
	// that asked for the load (Run, the HTTP handler or Load's caller). The routing engine is
	// single-threaded, so Apply hands the plans to the routing loop (an atomic.Pointer it reads,
	// or a channel it serves) rather than calling Engine.SetPlans itself. Required.
	Apply func(cfg *mapping.Config, compiled T)
	// Interval is the checksum poll period. Zero means DefaultReloadInterval; negative turns
	// the poll off (SIGHUP and POST /-/reload still work).
	Interval time.Duration
	// Tick replaces the poll's ticker in tests: each receive is one poll.
	Tick <-chan time.Time
	// Now is the clock for the success timestamp. Default time.Now.
	Now func() time.Time
	// Registerer receives the omniroute_mapping_* metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger logs each reload's outcome. Nil discards.
	Logger *slog.Logger
	// Token is the bearer token POST /-/reload requires ("Authorization: Bearer TOKEN"),
	// compared in constant time. Empty turns reload over HTTP off: the handler answers 403
	// to everyone (SIGHUP and the poll still work). It is a secret: never logged or returned.
	Token string
}

// Reloader loads the mapping file and reloads it on a checksum change (one long-lived ticker),
// on Trigger (SIGHUP) and on POST /-/reload (ServeHTTP). Every load runs in this order:
//
//  1. read the file and hash it (sha256);
//  2. parse and validate it (mapping.Parse: every problem at once, with file:line:col);
//  3. compile it (Options.Compile);
//  4. swap it in (Options.Apply).
//
// If any step fails, nothing is applied: the previous mapping keeps running, the metric
// omniroute_mapping_last_reload_successful drops to 0, and the reason is logged and returned
// (to the HTTP caller as the response body). A file that failed is not retried by the poll
// until its checksum changes again. Loads are serialised.
type Reloader[T any] struct {
	opts    ReloaderOptions[T]
	log     *slog.Logger
	metrics *reloadMetrics
	trigger chan struct{}

	mu         sync.Mutex // serialises loads; guards the fields below
	cfg        *mapping.Config
	compiled   T
	loaded     bool
	hash       string // of the mapping in use
	failedHash string // of the last file that failed (or readFailed), so the poll does not retry it
}

// NewReloader checks the options. It does not read the file: call Load.
func NewReloader[T any](opts ReloaderOptions[T]) (*Reloader[T], error) {
	var errs []error
	if opts.Path == "" {
		errs = append(errs, errors.New("a mapping file path is required"))
	}
	if opts.Compile == nil {
		errs = append(errs, errors.New("a compile function is required"))
	}
	if opts.Apply == nil {
		errs = append(errs, errors.New("an apply function is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("check reloader options: %w", err)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultReloadInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Reloader[T]{
		opts:    opts,
		log:     opts.Logger.With("component", "mapping"),
		metrics: newReloadMetrics(opts.Registerer),
		trigger: make(chan struct{}, 1),
	}, nil
}

// Load reads, parses, validates, compiles and applies the mapping file. At start-up an error
// means there is no mapping to run with; later it means the previous one is still in use.
func (r *Reloader[T]) Load(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.load(ctx, nil)
}

// load does one reload; data, when non-nil, is the file content already read. Callers hold mu.
func (r *Reloader[T]) load(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reload mapping %s: %w", r.opts.Path, err)
	}
	var err error
	if data == nil {
		data, err = os.ReadFile(r.opts.Path)
		if err != nil {
			return r.fail(readFailed, fmt.Errorf("read mapping: %w", err))
		}
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	cfg, err := mapping.Parse(data, r.opts.Path)
	if err != nil {
		return r.fail(hash, fmt.Errorf("load mapping %s:\n%w", r.opts.Path, err))
	}
	compiled, err := r.opts.Compile(cfg)
	if err != nil {
		return r.fail(hash, fmt.Errorf("compile mapping %s: %w", r.opts.Path, err))
	}
	r.opts.Apply(cfg, compiled)
	r.cfg, r.compiled, r.loaded, r.hash, r.failedHash = cfg, compiled, true, hash, ""
	r.metrics.success.Set(1)
	r.metrics.successTime.Set(float64(r.opts.Now().UnixNano()) / 1e9)
	r.metrics.hash.Set(hashGauge(sum))
	r.metrics.reloads.WithLabelValues("success").Inc()
	r.log.Info("mapping loaded", "path", r.opts.Path, "sha256", hash, "plans", len(cfg.Plans))
	for _, w := range cfg.Warnings() {
		r.log.Warn("mapping warning", "path", r.opts.Path, "problem", w.String())
	}
	return nil
}

// readFailed is failedHash when the last load could not read the file.
const readFailed = "read"

func (r *Reloader[T]) fail(hash string, err error) error {
	r.failedHash = hash
	r.metrics.success.Set(0)
	r.metrics.reloads.WithLabelValues("failure").Inc()
	if r.loaded {
		r.log.Error("mapping reload failed; keeping the previous mapping", "path", r.opts.Path, "sha256_in_use", r.hash, "err", err)
	} else {
		r.log.Error("mapping load failed", "path", r.opts.Path, "err", err)
	}
	return err
}

// hashGauge turns a checksum into a gauge value: its first 6 bytes, exactly representable in
// a float64, as Alertmanager's config_hash does.
func hashGauge(sum [sha256.Size]byte) float64 {
	var b [8]byte
	copy(b[2:], sum[:6])
	return float64(binary.BigEndian.Uint64(b[:]))
}

// Trigger asks Run to reload now (SIGHUP). It never blocks; triggers that arrive while one is
// pending are merged.
func (r *Reloader[T]) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// poll reloads when the file's checksum differs from the last file that failed and, unless the
// last load failed, from the mapping in use.
func (r *Reloader[T]) poll(ctx context.Context) {
	data, err := os.ReadFile(r.opts.Path)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.failedHash != readFailed {
			_ = r.fail(readFailed, fmt.Errorf("read mapping: %w", err))
		}
		return
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if hash == r.failedHash || (hash == r.hash && r.failedHash == "") {
		return
	}
	// A new file, or the file in use is back after a failure (a rollback): load it, which
	// also sets omniroute_mapping_last_reload_successful back to 1.
	_ = r.load(ctx, data)
}

// Run polls the checksum and serves Trigger until ctx ends; it returns nil then. It is the
// mapping actor of the connector's run group.
func (r *Reloader[T]) Run(ctx context.Context) error {
	tick := r.opts.Tick
	if tick == nil && r.opts.Interval > 0 {
		t := time.NewTicker(r.opts.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			r.poll(ctx)
		case <-r.trigger:
			r.mu.Lock()
			_ = r.load(ctx, nil)
			r.mu.Unlock()
		}
	}
}

// Current returns the mapping in use and its compiled form; ok is false before the first
// successful Load.
func (r *Reloader[T]) Current() (cfg *mapping.Config, compiled T, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg, r.compiled, r.loaded
}

// Hash returns the sha256 (hex) of the mapping in use, or "".
func (r *Reloader[T]) Hash() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hash
}

// ServeHTTP handles POST /-/reload. It authenticates the caller with ReloaderOptions.Token
// (401 without the right bearer token, 403 when no token is configured), then reloads
// synchronously and answers 200 when the new mapping is in use, or 400 with every problem
// (file:line:col) when it was rejected and the previous mapping stays in use. Other methods
// get 405.
func (r *Reloader[T]) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST to reload the mapping", http.StatusMethodNotAllowed)
		return
	}
	if r.opts.Token == "" {
		http.Error(w, "reload over HTTP is off: no reload token is configured; send SIGHUP instead", http.StatusForbidden)
		return
	}
	got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(r.opts.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="omniroute"`)
		http.Error(w, "a valid bearer token is required", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	err := r.load(req.Context(), nil)
	hash := r.hash
	r.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, "%v\n", err)
		return
	}
	_, _ = fmt.Fprintf(w, "mapping reloaded (sha256 %s)\n", hash)
}

// reloadMetrics are the omniroute_mapping_* metrics.
type reloadMetrics struct {
	success     prometheus.Gauge
	successTime prometheus.Gauge
	hash        prometheus.Gauge
	reloads     *prometheus.CounterVec
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	f := promauto.With(reg)
	m := &reloadMetrics{
		success: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "omniroute", Subsystem: "mapping", Name: "last_reload_successful",
			Help: "Whether the last mapping (re)load succeeded (1) or was rejected, keeping the previous mapping (0).",
		}),
		successTime: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "omniroute", Subsystem: "mapping", Name: "last_reload_success_timestamp_seconds",
			Help: "When the mapping in use was loaded, in seconds since the epoch.",
		}),
		hash: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "omniroute", Subsystem: "mapping", Name: "hash",
			Help: "The first 6 bytes of the sha256 of the mapping file in use, as a number.",
		}),
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omniroute", Subsystem: "mapping", Name: "reloads_total",
			Help: "Mapping (re)loads by result (success, failure).",
		}, []string{"result"}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m
}
