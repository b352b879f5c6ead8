package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/omniroute/omniroute/salesforce"
)

// MetricsPrefix is added once, by the daemon, to every metric of every package.
const MetricsPrefix = "omniroute_"

// coreBeat is how often the core loop reports progress to /healthz, and coreLimit how long
// /healthz tolerates silence.
const (
	coreBeat  = 10 * time.Second
	coreLimit = time.Minute
)

// shutdownGrace is how long after the shutdown timeout Run waits for a part that ignores its
// stop before returning an error.
const shutdownGrace = 2 * time.Second

// Options are the daemon's dependencies. Config is the only required one.
type Options struct {
	// Config is the daemon's configuration; New validates it.
	Config Config
	// Logger is the parent logger (Config.NewLogger builds it from the environment). Nil
	// discards.
	Logger *slog.Logger
	// Registry receives every metric: the Go and process collectors as they are, and each
	// package's metrics under MetricsPrefix. Nil: a new registry. A metric registered twice
	// fails New.
	Registry *prometheus.Registry
	// HTTPClient carries every request to Salesforce. Default: DefaultHTTPClient.
	HTTPClient *http.Client
	// Listener, when set, is used instead of listening on Config.HTTPAddr (tests, the demo).
	Listener net.Listener
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Version is reported in omniroute_build_info and the start-up log.
	Version string
	// Elector, with Config.Leader.Election, decides whether this replica leads (tests: a
	// LeaseElector on client-go's fake clientset). Nil: New builds the in-cluster
	// LeaseElector (NewInClusterElector). Unused without leader election.
	Elector Elector
}

// ConfigError is a problem with the configuration or the mapping that New finds before
// anything runs: the process should exit with its configuration exit code.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying problems.
func (e *ConfigError) Unwrap() error { return e.Err }

// Connector is the omniroute daemon: a few actors in one oklog/run group, with data flowing
// one way (DESIGN.md, "The connector"):
//
//	stream ──► translate ──┐
//	gateway ─► translate ──┼─► inbox ─► router ─ Engine.Apply(now, ev) ─► commands ─┬─► writer (AgentWork)
//	reconcile (SOQL) ──────┘     ▲        ▲ plans (Reloader.Updates)                  ├─► presence ─► gateway
//	                             │        ▲ timer: Engine.NextDeadline                └─► logs, metrics
//	                             └──────────── outcomes, as routing.Event ◄──────────────┘
//
// The loop, as Run drives it:
//
//  1. New: validate the configuration (every problem at once); load, validate and compile the
//     mapping; build the Salesforce token source and client; register every metric under
//     omniroute_ (a duplicate fails); listen on OMNIROUTE_HTTP_ADDR.
//  2. Run starts the actors: the HTTP server (/metrics, /healthz, /readyz, admin API), the
//     mapping reloader (checksum poll, SIGHUP through Reload, POST /-/reload) and the core.
//  3. The core authenticates (transient failures are retried with backoff, a refused login
//     stops the daemon), reads the org's metadata and checks the mapping against it (a mapping
//     that does not fit stops the daemon; later reloads are checked the same way).
//     With leader election (leader.go) the core then stands by, warm and not ready, until
//     this replica holds the Lease; steps 4 and 5 run only while it leads, and a lost Lease
//     stops them at once and ends Run with ErrLeadershipLost.
//  4. Subscribe (OMNIROUTE_EVENTS); once the stream is live, reconcile from SOQL while the
//     router buffers what arrives; apply the snapshot, then the buffered events; /readyz turns
//     true. Then route: every event through the router, every command to its sink. A gap, a
//     missed replay or an undecodable event reconciles again the same way.
//  5. Stop (ctx cancelled: SIGTERM or SIGINT): /readyz turns false; the stream stops; the
//     writer finishes or hands back its calls in flight while the router takes its reports;
//     the router stops; the applied replay ids are committed; the stream disconnects; the
//     HTTP server drains; all within OMNIROUTE_SHUTDOWN_TIMEOUT; Run returns nil.
type Connector struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	ln       net.Listener
	sf       *Salesforce
	reloader *Reloader
	http     *HTTP
	ready    *Readiness
	live     *Liveness
	// metrics is the registerer every part's metrics go to, already under omniroute_;
	// registrations made before New returns are checked for duplicates.
	metrics prometheus.Registerer

	httpClient    *http.Client
	routerMetrics *routerMetrics

	mu      sync.Mutex
	mapping Mapping // the mapping the core holds
	router  *Router // the running router, for admin queries

	gateway *Gateway // the agent websocket at /v1/agent

	elector  Elector      // nil without leader election
	leader   *leaderGauge // omniroute_leader
	drainCut atomic.Bool  // the last route's writer cut a call at the end of its drain
}

// New validates the configuration, loads the mapping, builds the parts and listens. It makes
// no request to Salesforce. Configuration and mapping problems are a *ConfigError.
func New(opts Options) (*Connector, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, &ConfigError{Err: fmt.Errorf("configuration:\n%w", err)}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	reg := &checkedRegisterer{inner: opts.Registry}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prefixed := &checkedRegisterer{inner: prometheus.WrapRegistererWithPrefix(MetricsPrefix, opts.Registry)}
	promauto.With(prefixed).NewGauge(prometheus.GaugeOpts{
		Name:        "build_info",
		Help:        "Always 1; the labels say which omniroute is running.",
		ConstLabels: prometheus.Labels{"version": opts.Version, "goversion": runtime.Version()},
	}).Set(1)

	if opts.HTTPClient == nil {
		opts.HTTPClient = DefaultHTTPClient()
	}
	c := &Connector{cfg: cfg, log: opts.Logger, now: opts.Now, metrics: prefixed, httpClient: opts.HTTPClient}
	c.routerMetrics = newRouterMetrics(prefixed)
	conds := append([]Condition{{CondServing, "not serving: starting or shutting down"}}, DefaultConditions()...)
	if cfg.Leader.Election {
		conds = append(conds, Condition{CondLeader, "standby: another replica leads"})
	}
	c.ready = NewReadiness(conds...)
	c.leader = newLeaderGauge(prefixed)
	c.live = NewLiveness(opts.Now)
	var err error
	c.reloader, err = NewReloader(ReloaderOptions{Path: cfg.MappingFile, Now: opts.Now, Registerer: prefixed, Logger: opts.Logger})
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	if c.mapping, err = c.reloader.Load(context.Background()); err != nil {
		return nil, &ConfigError{Err: err}
	}
	<-c.reloader.Updates() // the core starts with this mapping
	c.ready.Set(CondMappingLoaded, true)
	sfHTTP := opts.HTTPClient
	if cfg.Leader.Election { // inserts leave only while the Lease is fresh (leader.go)
		sfHTTP = fenceWrites(sfHTTP, func() bool { return c.elector.Writable() })
	}
	c.sf, err = NewSalesforce(cfg.Salesforce, SalesforceOptions{HTTPClient: sfHTTP, Registerer: prefixed, Logger: opts.Logger})
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	// Salesforce tokens are let in once the org's id is known (startup: Gateway.SetOrg).
	c.gateway, err = NewGateway(GatewayOptions{
		Auth: AgentAuthFromConfig(cfg, "", opts.HTTPClient), Origins: cfg.AgentOrigins, SendBuffer: cfg.AgentSendBuffer,
		Registerer: prefixed, Logger: opts.Logger, Now: opts.Now,
	})
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	c.http, err = NewHTTP(HTTPOptions{
		AdminToken: cfg.AdminToken, Gatherer: opts.Registry, Registerer: prefixed,
		Ready: c.ready, Live: c.live, Reload: c.reloader.Load, Logger: opts.Logger,
		Agent: c.gateway,
	})
	if err != nil {
		return nil, err
	}
	registerAdminAPI(c.http, c.adminRouter)
	if cfg.Leader.Election {
		c.elector = opts.Elector
		if c.elector == nil {
			if c.elector, err = NewInClusterElector(cfg, opts.Logger); err != nil {
				return nil, &ConfigError{Err: err}
			}
		}
	}
	if err := errors.Join(reg.err(), prefixed.err()); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	c.ln = opts.Listener
	if c.ln == nil {
		if c.ln, err = (&net.ListenConfig{}).Listen(context.Background(), "tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("%s: listen: %w", env("HTTPAddr"), err)
		}
	}
	return c, nil
}

// CondServing is true while Run serves, and false while starting or shutting down.
const CondServing = "serving"

// Addr is the HTTP server's address.
func (c *Connector) Addr() net.Addr { return c.ln.Addr() }

// Reload asks for a mapping reload (SIGHUP). It never blocks.
func (c *Connector) Reload() { c.reloader.Trigger() }

// HTTP is the daemon's HTTP layer, for parts that add admin endpoints before Run.
func (c *Connector) HTTP() *HTTP { return c.http }

// Run runs the daemon until ctx is cancelled (then it stops within the shutdown timeout and
// returns nil) or a part fails for good (then it stops the others and returns why).
func (c *Connector) Run(ctx context.Context) error {
	c.log.Info("omniroute starting", "config", c.cfg, "http_addr", c.Addr().String())
	var g run.Group
	stopping := make(chan struct{})
	{
		execute, interrupt := run.ContextHandler(ctx)
		g.Add(execute, func(err error) {
			close(stopping)
			interrupt(err)
		})
	}
	g.Add(func() error { return c.http.Serve(c.ln) }, func(error) {
		c.ready.Set(CondServing, false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout.Duration)
		defer cancel()
		if err := c.http.Shutdown(sctx); err != nil {
			c.log.Warn("http server did not drain in time", "err", err)
		}
	})
	{
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return c.reloader.Run(rctx) }, func(error) { cancel() })
	}
	{
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return c.runCore(cctx) }, func(error) { cancel() })
	}
	c.ready.Set(CondServing, true)

	done := make(chan error, 1)
	go func() { done <- g.Run() }()
	var err error
	select {
	case err = <-done:
	case <-stopping:
		// Each part stops within the shutdown timeout (the HTTP server closes the connections
		// still open then); this guard only catches a part that ignores its stop.
		timer := time.NewTimer(c.cfg.ShutdownTimeout.Duration + shutdownGrace)
		defer timer.Stop()
		select {
		case err = <-done:
		case <-timer.C:
			return fmt.Errorf("stop within %s (%s): some parts are still running", c.cfg.ShutdownTimeout.Duration, env("ShutdownTimeout"))
		}
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		c.log.Info("omniroute stopped")
		return nil
	}
	return err
}

// runCore is the core actor: start-up against the org, then the router with its parts: the
// stream, the reader, the AgentWork writer and the replay committer. It returns nil when ctx
// ends, after a graceful stop within the shutdown timeout.
func (c *Connector) runCore(ctx context.Context) error {
	log := c.log.With("component", "core")
	org, err := c.startup(ctx, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	hb := c.live.Register("core", coreLimit)
	if c.elector != nil {
		return c.lead(ctx, log, org, hb)
	}
	c.leader.g.Set(1)
	defer c.leader.g.Set(0)
	return c.route(ctx, log, org, hb)
}

// route subscribes, reconciles and routes until ctx ends.
func (c *Connector) route(ctx context.Context, log *slog.Logger, org OrgInfo, hb *Heartbeat) error {
	if c.cfg.Events == EventsPushTopic {
		if err := EnsurePushTopics(ctx, c.sf.Client); err != nil {
			return err
		}
	}
	channels, topics := streamChannels(c.cfg)
	store, err := c.checkpoints(channels)
	if err != nil {
		return err
	}
	stream, err := salesforce.NewStream(salesforce.StreamOptions{
		Tokens: c.sf.Tokens, HTTPClient: streamHTTPClient(c.httpClient), APIVersion: c.cfg.Salesforce.APIVersion,
		Channels: channels, Checkpoints: store, TopicEntities: topics, Registerer: c.metrics, Logger: c.log,
	})
	if err != nil {
		return fmt.Errorf("configure the stream: %w", err)
	}
	c.mu.Lock()
	m := c.mapping
	c.mu.Unlock()
	names := NewNames(org.Org, m.Config)
	reader := NewReader(c.sf.Client)
	commit := newCommitter(stream)
	rctx, cancelRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRouter()
	var router *Router
	reconcile := func(names Names) {
		go func() {
			for !stream.Live() {
				select {
				case <-rctx.Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			c.ready.Set(CondStreamSubscribed, true)
			// What the router took before this point, the reads below cover.
			reading := make(chan struct{})
			if router.send(rctx, inMsg{kind: msgReconcileReading, done: reading}) != nil {
				return
			}
			select {
			case <-reading:
			case <-rctx.Done():
				return
			}
			d, err := Reconcile(rctx, c.sf.Client, names, org)
			msg := inMsg{kind: msgSnapshot, snap: d}
			if err != nil {
				msg = inMsg{kind: msgReconcileFailed, err: err}
				select {
				case <-rctx.Done():
					return
				case <-time.After(time.Second):
				}
			} else {
				c.routerMetrics.reconcileTime.Observe(d.took.Seconds())
			}
			_ = router.send(rctx, msg)
		}()
	}
	workItems := NewWorkItems(c.sf.Client, c.metrics, c.log)
	router = NewRouter(RouterOptions{
		Agents: c.gateway, WorkItems: workItems,
		Table: m.Table, Names: names, Org: org, Reader: reader, Commit: commit.Commit, Reconcile: reconcile,
		CheckInterval: c.cfg.WaitingCheck.Duration, Now: c.now, Logger: c.log, Metrics: c.routerMetrics,
		Updates: c.reloader.Updates(),
		OnMapping: func(m Mapping) {
			c.mu.Lock()
			c.mapping = m
			c.mu.Unlock()
		},
		OnReconciled: func() {
			c.ready.Set(CondReconcileApplied, true)
			log.Info("ready: reconcile applied, routing")
		},
	})
	reader.Bind(router)
	c.mu.Lock()
	c.router = router
	c.mu.Unlock()
	c.gateway.SetRouter(router)
	defer c.gateway.SetRouter(nil)
	writer, err := newWriter(writerDeps{Client: c.sf.Client, Org: org.Org, Report: router.Report,
		Registerer: c.metrics, Logger: c.log, ShutdownTimeout: c.cfg.ShutdownTimeout, MaxDrain: c.maxDrain(),
		InFlight: c.cfg.WriterInFlight})
	if err != nil {
		return err
	}
	router.opts.Writer = writer

	var wg sync.WaitGroup
	errs := make(chan error, 6)
	start := func(name string, ctx context.Context, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	wctx, cancelWriter := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWriter()
	sctx, cancelStream := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStream()
	start("router", rctx, router.Run)
	start("reader", rctx, reader.Run)
	start("committer", rctx, commit.Run)
	start("workitems", rctx, workItems.Run)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		if err := writer.Run(wctx); err != nil {
			errs <- fmt.Errorf("writer: %w", err)
		}
	}()
	streamDone := make(chan error, 1)
	go func() { streamDone <- stream.Run(sctx, router.HandleStream) }()

	beat := time.NewTicker(coreBeat)
	defer beat.Stop()
	var failure error
loop:
	for {
		hb.Beat()
		select {
		case <-ctx.Done():
			break loop
		case err := <-errs:
			failure = err
			break loop
		case err := <-streamDone:
			if err == nil {
				err = errors.New("the stream stopped")
			}
			failure = fmt.Errorf("stream: %w", err)
			streamDone = nil
			break loop
		case <-beat.C:
		}
	}
	// Stop: no new work (the stream first), the writer finishes or hands back what is in
	// flight while the router still takes its reports, then the router, the last commits and
	// the disconnect.
	c.ready.Set(CondReconcileApplied, false)
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout.Duration)
	defer cancel()
	if streamDone != nil {
		_ = stream.Shutdown(stop)
	}
	cancelStream()
	cancelWriter()
	select { // the writer answers or hands back its in-flight calls; the router takes them
	case <-writerDone:
	case <-stop.Done():
	}
	if dw, ok := writer.(*drainWatch); ok {
		c.drainCut.Store(dw.Cut())
	}
	cancelRouter()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-stop.Done():
	}
	if err := commit.flush(stop); err != nil {
		log.Warn("last replay commit failed; the next start replays from the previous one", "err", err)
	}
	if f, ok := store.(interface{ Flush(context.Context) error }); ok {
		if err := f.Flush(stop); err != nil {
			log.Warn("last replay commit not written; the next leader replays from the previous one", "err", err)
		}
	}
	c.ready.Set(CondStreamSubscribed, false)
	log.Info("core stopped", "committed", stream.Committed())
	return failure
}

// startup authenticates, reads the org's metadata and checks the mapping against it. Transient
// failures are retried with exponential backoff (logged); a refused login, a refused query or
// a mapping that does not fit the org is returned.
func (c *Connector) startup(ctx context.Context, log *slog.Logger) (OrgInfo, error) {
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = time.Minute
	bo.MaxElapsedTime = 0
	retry := func(step string, f func() error) error {
		return backoff.RetryNotify(func() error {
			err := f()
			if err != nil && !transient(err) {
				return backoff.Permanent(err)
			}
			return err
		}, backoff.WithContext(bo, ctx), func(err error, wait time.Duration) {
			log.Warn("start-up step failed; retrying", "step", step, "retry_in", wait, "err", err)
		})
	}
	var tok salesforce.Token
	if err := retry("login", func() (err error) {
		tok, err = c.sf.Authenticate(ctx)
		return err
	}); err != nil {
		return OrgInfo{}, err
	}
	if orgID := identityOrg(tok.ID); orgID != "" {
		o := AgentAuthFromConfig(c.cfg, orgID, c.httpClient)
		if err := c.gateway.SetOrg(o.OrgID, o.UserInfoURL); err != nil {
			return OrgInfo{}, err
		}
	} else {
		log.Warn("the token response has no identity URL with the org's id: the agent websocket accepts demo tokens only")
	}
	c.ready.Set(CondTokenHeld, true)
	bo.Reset()
	var info OrgInfo
	if err := retry("read org", func() (err error) {
		info, err = ReadOrgInfo(ctx, c.sf.Client)
		return err
	}); err != nil {
		return info, fmt.Errorf("read the org's omni-channel metadata: %w", err)
	}
	org := info.Org
	if err := c.reloader.UseOrg(org); err != nil {
		return info, err
	}
	c.ready.Set(CondOrgChecked, true)
	log.Info("mapping fits the org", "queues", len(org.Queues), "channels", len(org.Channels),
		"statuses", len(org.Statuses), "skills", len(org.Skills))
	return info, nil
}

// transient reports whether a start-up error may go away by itself: not a login the server
// refused (4xx other than 429), nor a REST error Salesforce says is final.
func transient(err error) bool {
	var te *salesforce.TokenError
	if errors.As(err, &te) {
		return te.Status == 0 || te.Status == http.StatusTooManyRequests || te.Status >= 500
	}
	var ae *salesforce.APIError
	if errors.As(err, &ae) {
		return ae.Retryable
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// checkedRegisterer turns the panic of a duplicate registration (promauto's MustRegister) into
// an error New returns, so a clash fails start-up with a message instead of a crash.
type checkedRegisterer struct {
	inner prometheus.Registerer
	mu    sync.Mutex
	errs  []error
}

func (r *checkedRegisterer) Register(c prometheus.Collector) error { return r.inner.Register(c) }

func (r *checkedRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.inner.Register(c); err != nil {
			r.mu.Lock()
			r.errs = append(r.errs, err)
			r.mu.Unlock()
		}
	}
}

func (r *checkedRegisterer) Unregister(c prometheus.Collector) bool { return r.inner.Unregister(c) }

func (r *checkedRegisterer) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

// identityOrg is the organization id in an identity URL (https://login.salesforce.com/id/<org>/<user>),
// or "" when the URL has no such path.
func identityOrg(idURL string) string {
	u, err := url.Parse(idURL)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 3 || parts[0] != "id" || parts[1] == "" {
		return ""
	}
	return parts[1]
}
