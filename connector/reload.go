package connector

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
)

// DefaultReloadInterval is how often the Reloader checks the mapping file's checksum when
// ReloaderOptions.Interval is zero.
const DefaultReloadInterval = 30 * time.Second

// Mapping is one loaded mapping: the file as parsed, its compiled routing table and the
// sha256 (hex) of the file.
type Mapping struct {
	Config *mapping.Config
	Table  *routing.Table
	SHA256 string
}

// ReloaderOptions configures a Reloader.
type ReloaderOptions struct {
	// Path is the mapping file. Required. Mount a Kubernetes ConfigMap as a directory (not
	// subPath) so that updates reach the file.
	Path string
	// Interval is the checksum poll period. Zero means DefaultReloadInterval; negative turns
	// the poll off (Trigger and Load still work).
	Interval time.Duration
	// Now is the clock for the success timestamp. Default time.Now.
	Now func() time.Time
	// Registerer receives the mapping_* metrics; the daemon passes it under its omniroute_
	// prefix. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger logs each reload's outcome. Nil discards.
	Logger *slog.Logger
}

// Reloader loads the mapping file and reloads it on a checksum change (one long-lived ticker),
// on Trigger (SIGHUP) and on Load (POST /-/reload, through the HTTP layer). Every load runs in
// this order:
//
//  1. read the file and hash it (sha256);
//  2. parse and validate it (mapping.Parse: every problem at once, with file:line:col);
//  3. check it against the org's metadata, once UseOrg has given it (CheckOrg);
//  4. compile it (routing.Compile);
//  5. hand it to the router: the newest Mapping waits on Updates.
//
// If any step fails, nothing is handed over: the previous mapping keeps running, the metric
// omniroute_mapping_last_reload_successful drops to 0, and the reason is logged and returned.
// A file that failed is not retried by the poll until its checksum changes again. Loads are
// serialised.
//
// The Reloader never touches the routing engine: the router is the only reader of Updates and
// swaps the table in itself (Engine.SetPlans), between two events.
type Reloader struct {
	opts    ReloaderOptions
	log     *slog.Logger
	metrics *reloadMetrics
	trigger chan struct{}
	updates chan Mapping // one slot: the newest mapping the router has not taken yet
	compile func(*mapping.Config) (*routing.Table, error)

	mu         sync.Mutex // serialises loads; guards the fields below
	current    Mapping
	loaded     bool
	org        *mapping.Org // the org the mapping must fit, once known
	failedHash string       // of the last file that failed (or readFailed), so the poll does not retry it
}

// NewReloader checks the options. It does not read the file: call Load.
func NewReloader(opts ReloaderOptions) (*Reloader, error) {
	if opts.Path == "" {
		return nil, fmt.Errorf("check reloader options: a mapping file path is required (%s)", env("MappingFile"))
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
	return &Reloader{
		opts:    opts,
		log:     opts.Logger.With("component", "mapping"),
		metrics: newReloadMetrics(opts.Registerer),
		trigger: make(chan struct{}, 1),
		updates: make(chan Mapping, 1),
		compile: routing.Compile,
	}, nil
}

// Updates delivers each newly loaded mapping to the router, its only reader. A mapping the
// router has not taken yet is replaced by a newer one, so the router always gets the newest
// and a load never waits for the router.
func (r *Reloader) Updates() <-chan Mapping { return r.updates }

// Load reads, parses, validates, checks, compiles and hands over the mapping file, and returns
// what it handed over. At start-up an error means there is no mapping to run with; later it
// means the previous one is still in use.
func (r *Reloader) Load(ctx context.Context) (Mapping, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(ctx, nil); err != nil {
		return Mapping{}, err
	}
	return r.current, nil
}

// load does one reload; data, when non-nil, is the file content already read. Callers hold mu.
func (r *Reloader) load(ctx context.Context, data []byte) error {
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
	var orgProblems []mapping.Problem
	if r.org != nil {
		problems, hasErrors := CheckOrg(cfg, *r.org)
		if hasErrors {
			return r.fail(hash, fmt.Errorf("check mapping %s against the org:\n%w", r.opts.Path, mapping.Problems(problems)))
		}
		orgProblems = problems
	}
	table, err := r.compile(cfg)
	if err != nil {
		return r.fail(hash, fmt.Errorf("compile mapping %s: %w", r.opts.Path, err))
	}
	r.current, r.loaded, r.failedHash = Mapping{Config: cfg, Table: table, SHA256: hash}, true, ""
	select { // replace a mapping the router has not taken yet
	case <-r.updates:
	default:
	}
	r.updates <- r.current // never blocks: the slot is free and only loads (serialised) send
	r.metrics.success.Set(1)
	r.metrics.successTime.Set(float64(r.opts.Now().UnixNano()) / 1e9)
	r.metrics.hash.Set(hashGauge(sum))
	r.metrics.reloads.WithLabelValues("success").Inc()
	r.log.Info("mapping loaded", "path", r.opts.Path, "sha256", hash, "plans", len(cfg.Plans))
	if r.org == nil {
		orgProblems = cfg.Warnings()
	}
	for _, w := range orgProblems {
		r.log.Warn("mapping warning", "path", r.opts.Path, "problem", w.String())
	}
	return nil
}

// UseOrg checks the mapping in use against the org's metadata and keeps the org, so that every
// later reload is checked against it too. It returns the problems (mapping.Problems) when the
// mapping does not fit the org; warnings are logged.
func (r *Reloader) UseOrg(org mapping.Org) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.org = &org
	if !r.loaded {
		return nil
	}
	problems, hasErrors := CheckOrg(r.current.Config, org)
	if hasErrors {
		return fmt.Errorf("check mapping %s against the org:\n%w", r.opts.Path, mapping.Problems(problems))
	}
	for _, w := range problems {
		r.log.Warn("mapping warning", "path", r.opts.Path, "problem", w.String())
	}
	return nil
}

// readFailed is failedHash when the last load could not read the file.
const readFailed = "read"

func (r *Reloader) fail(hash string, err error) error {
	r.failedHash = hash
	r.metrics.success.Set(0)
	r.metrics.reloads.WithLabelValues("failure").Inc()
	if r.loaded {
		r.log.Error("mapping reload failed; keeping the previous mapping", "path", r.opts.Path, "sha256_in_use", r.current.SHA256, "err", err)
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
func (r *Reloader) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// poll reloads when the file's checksum differs from the last file that failed and, unless the
// last load failed, from the mapping in use.
func (r *Reloader) poll(ctx context.Context) {
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
	if hash == r.failedHash || (hash == r.current.SHA256 && r.failedHash == "") {
		return
	}
	// A new file, or the file in use is back after a failure (a rollback): load it, which
	// also sets omniroute_mapping_last_reload_successful back to 1.
	_ = r.load(ctx, data)
}

// Run polls the checksum on one long-lived ticker and serves Trigger until ctx ends; it
// returns nil then. It is the mapping actor of the connector's run group.
func (r *Reloader) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if r.opts.Interval > 0 {
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

// Current returns the mapping in use; ok is false before the first successful Load.
func (r *Reloader) Current() (m Mapping, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current, r.loaded
}

// reloadMetrics are the mapping_* metrics.
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
			Subsystem: "mapping", Name: "last_reload_successful",
			Help: "Whether the last mapping (re)load succeeded (1) or was rejected, keeping the previous mapping (0).",
		}),
		successTime: f.NewGauge(prometheus.GaugeOpts{
			Subsystem: "mapping", Name: "last_reload_success_timestamp_seconds",
			Help: "When the mapping in use was loaded, in seconds since the epoch.",
		}),
		hash: f.NewGauge(prometheus.GaugeOpts{
			Subsystem: "mapping", Name: "hash",
			Help: "The first 6 bytes of the sha256 of the mapping file in use, as a number.",
		}),
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "mapping", Name: "reloads_total",
			Help: "Mapping (re)loads by result (success, failure).",
		}, []string{"result"}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m
}
