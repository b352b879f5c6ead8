package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omniroute/omniroute/salesforce/emulator/streaming"
)

// Defaults for Options fields left zero.
const (
	DefaultSessionTimeout     = 2 * time.Hour
	DefaultDailyAPILimit      = 100_000
	DefaultAdviceTimeout      = 110 * time.Second
	DefaultClientTimeout      = 40 * time.Second
	DefaultCDCRetention       = 72 * time.Hour
	DefaultPushTopicRetention = 24 * time.Hour
	defaultAPIVersion         = "62.0"
)

// Options configures an Emulator. The zero value of every field but Seed has a sensible default.
type Options struct {
	// Seed is the org: DemoSeed() or LoadSeedFile(path).
	Seed Seed
	// SessionTimeout is how long an access token stays valid (default 2 h): after it was
	// issued, or after its last use with ExtendSessionOnActivity.
	SessionTimeout time.Duration
	// ExtendSessionOnActivity makes every REST or CometD use of a token restart its
	// SessionTimeout, as an org whose session settings extend sessions on activity would. By
	// default (false) a token expires SessionTimeout after it was issued however it is used,
	// CometD long-polls included: the stricter choice, which makes a long-running client
	// re-mint its token.
	ExtendSessionOnActivity bool
	// DailyAPILimit is the rolling-24-h REST allocation reported in Sforce-Limit-Info and
	// enforced with REQUEST_LIMIT_EXCEEDED (default 100,000).
	DailyAPILimit int
	// AdviceTimeout is how long a CometD /meta/connect is held (default 110 s).
	AdviceTimeout time.Duration
	// AdviceInterval is the advice interval in connect replies (default 0).
	AdviceInterval time.Duration
	// ClientTimeout is how long a CometD client may stay without a pending connect before the
	// server forgets it (default 40 s).
	ClientTimeout time.Duration
	// CDCRetention is how long /data/... events stay replayable (default 72 h).
	CDCRetention time.Duration
	// PushTopicRetention is how long /topic/... events stay replayable (default 24 h).
	PushTopicRetention time.Duration
	// MaxEvents caps retained events per channel (0: the streaming package's default).
	MaxEvents int
	// MaxStreamingClients is the concurrent CometD client allocation (0: 1,000; negative: none).
	MaxStreamingClients int
	// DailyDeliveredEvents enforces a rolling-24-h delivery allocation (0: counted only).
	DailyDeliveredEvents int64
	// ControlToken is the bearer token of the /emulator/v1/ control API; empty generates one
	// (ControlToken() returns it).
	ControlToken string
	// InstanceURL is returned as instance_url; empty means "http://" + the request's Host.
	InstanceURL string
	// ChannelDeletes delivers DELETE events on /data/ExternalRoutingChannel__chn enriched
	// with the filter fields (as a soft delete would be), so that the member filters can pass
	// them. By default (false) a DELETE carries no enriched field, as a hard delete does, and
	// the filters drop it: a daemon learns acceptance from the AgentWork update and a
	// cancelled waiting item from a refused insert or a periodic check. Whether a PSR delete
	// is hard is unconfirmed; false is the stricter choice.
	ChannelDeletes bool
	// NoiseRate is the initial noise rate (0..1; default 0, no noise): after each change, every
	// record it changed gets with this probability a further UPDATE that changes nothing
	// routing reads (SetNoise, POST /emulator/v1/noise).
	NoiseRate float64
	// Auto is the initial simulated-agent behaviour (off when zero).
	Auto AutoOptions
	// RandSeed seeds the decline-rate and fault-rate dice (0: random).
	RandSeed uint64
	// Now is the clock (default time.Now). Timers (push timeouts, auto agents) fire when
	// RunTimers is called or when the background timer loop finds them due.
	Now func() time.Time
	// Logger receives the emulator's logs (default: discard). Secrets are never logged.
	Logger *slog.Logger
}

// Emulator is an in-memory Salesforce org served over HTTP: OAuth token endpoint, REST
// (/services/data), CometD (/cometd/NN.N), the control API (/emulator/v1/) and
// /emulator/healthz. It is safe for concurrent use.
type Emulator struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	schema *schema

	// mu guards the store, the Omni-Channel indexes, timers and publishing order.
	mu         sync.Mutex
	st         *store
	org        orgRefs
	psrByWork  map[string]string         // work item id -> open PSR id
	awByWork   map[string][]string       // work item id -> AgentWork ids, oldest first
	awByUser   map[string][]string       // user id -> AgentWork ids
	currentUSP map[string]string         // user id -> current UserServicePresence id
	sessions   map[string]string         // user id -> live agent session id of the current login
	capacity   map[string]int            // user id -> configured capacity
	pstats     map[string]*presenceStats // user id -> figures of the current presence row
	noiseRate  float64
	history    map[string][]StatusChange
	historyLog []historyRow // every change of PSR, AgentWork and presence rows (History)
	timers     timerQueue
	auto       AutoOptions
	rng        *mrand.Rand
	topics     map[string]*pushTopic // PushTopic id -> topic
	members    map[string]*channelMember
	cursors    map[string]*cursor
	txSeq      uint64

	// enrichMu guards enrichedNow; it is a leaf lock, taken under e.mu at commit and under
	// the streaming server's lock when an enriched event is replayed.
	enrichMu    sync.Mutex
	enrichedNow map[string]map[string]any // record id -> current enriched field values

	topicMu       sync.RWMutex
	topicChannels map[string]bool // "/topic/Name" of active PushTopics

	auth authState

	apiUsed  atomic.Int64
	apiLimit atomic.Int64

	faults faultState
	reqs   requestLog

	eventsPublished atomic.Int64
	tokensIssued    atomic.Int64

	stream  *streaming.Server
	handler http.Handler

	wake      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// orgRefs are the seeded setup records, by DeveloperName or username.
type orgRefs struct {
	queues      map[string]*record         // DeveloperName -> Group
	channels    map[string]*record         // DeveloperName -> ServiceChannel
	statuses    map[string]*record         // DeveloperName -> ServicePresenceStatus
	skills      map[string]*record         // DeveloperName -> Skill
	users       map[string]*record         // lower-case username -> User
	routingCfgs map[string]*record         // DeveloperName -> QueueRoutingConfig
	statusChans map[string]map[string]bool // status id -> channel ids
	chanWeight  map[string]float64         // channel id -> default capacity weight
	buttons     map[string]string          // chat button DeveloperName -> queue DeveloperName
	integration string                     // user id of RunAs / first user
}

// New builds an emulator for opts.Seed. Call Close when done.
func New(opts Options) (*Emulator, error) {
	if err := opts.Seed.validate(); err != nil {
		return nil, fmt.Errorf("check seed: %w", err)
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.DailyAPILimit <= 0 {
		opts.DailyAPILimit = DefaultDailyAPILimit
	}
	if opts.AdviceTimeout <= 0 {
		opts.AdviceTimeout = DefaultAdviceTimeout
	}
	if opts.ClientTimeout <= 0 {
		opts.ClientTimeout = DefaultClientTimeout
	}
	if opts.CDCRetention <= 0 {
		opts.CDCRetention = DefaultCDCRetention
	}
	if opts.PushTopicRetention <= 0 {
		opts.PushTopicRetention = DefaultPushTopicRetention
	}
	if opts.ControlToken == "" {
		opts.ControlToken = randomHex(24)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NoiseRate < 0 || opts.NoiseRate > 1 {
		return nil, fmt.Errorf("noise rate %v: want 0..1: %w", opts.NoiseRate, ErrInvalid)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	seed := opts.RandSeed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	e := &Emulator{
		opts:          opts,
		log:           opts.Logger.With("component", "sfemulator"),
		now:           opts.Now,
		schema:        newSchema(),
		psrByWork:     map[string]string{},
		awByWork:      map[string][]string{},
		awByUser:      map[string][]string{},
		currentUSP:    map[string]string{},
		sessions:      map[string]string{},
		capacity:      map[string]int{},
		pstats:        map[string]*presenceStats{},
		noiseRate:     opts.NoiseRate,
		history:       map[string][]StatusChange{},
		rng:           mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		topics:        map[string]*pushTopic{},
		cursors:       map[string]*cursor{},
		topicChannels: map[string]bool{},
		enrichedNow:   map[string]map[string]any{},
		auto:          opts.Auto,
		wake:          make(chan struct{}, 1),
		done:          make(chan struct{}),
	}
	e.st = newStore(e.schema)
	members, err := compileMembers()
	if err != nil {
		return nil, err
	}
	e.members = members
	e.apiLimit.Store(int64(opts.DailyAPILimit))
	e.faults.rng = mrand.New(mrand.NewPCG(seed^0x5bd1e995, seed))
	if err := e.loadSeed(opts.Seed); err != nil {
		return nil, err
	}
	e.stream = streaming.New(streaming.Options{
		Authenticate:   e.authenticateStreaming,
		Authorize:      e.authorizeChannel,
		AdviceTimeout:  opts.AdviceTimeout,
		AdviceInterval: opts.AdviceInterval,
		ClientTimeout:  opts.ClientTimeout,
		Retention:      e.retention,
		MaxEvents:      opts.MaxEvents,
		Now:            opts.Now,
		Logger:         e.log,
	})
	e.applyStreamingAllocations()
	e.handler = e.routes()
	e.wg.Add(1)
	go e.timerLoop()
	return e, nil
}

// ControlToken returns the bearer token of the control API.
func (e *Emulator) ControlToken() string { return e.opts.ControlToken }

// Close stops the timer loop and the CometD server; pending long-polls are answered.
func (e *Emulator) Close() {
	e.closeOnce.Do(func() {
		close(e.done)
		e.stream.Close()
		e.wg.Wait()
	})
}

// ServeHTTP serves every endpoint of the emulated org.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.handler.ServeHTTP(w, r) }

func (e *Emulator) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/services/oauth2/token", e.handleToken)
	mux.HandleFunc("/services/oauth2/userinfo", e.handleUserInfo)
	mux.HandleFunc("GET /id/{org}/{user}", e.handleIdentity)
	rest := e.restHandler()
	mux.Handle("/services/data/", rest)
	mux.Handle("/services/data", rest)
	mux.Handle("/cometd/", e.stream)
	mux.HandleFunc("/emulator/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("/emulator/v1/", e.controlHandler())
	return e.withFaults(mux)
}

func (e *Emulator) retention(channel string) time.Duration {
	if strings.HasPrefix(channel, "/topic/") {
		return e.opts.PushTopicRetention
	}
	return e.opts.CDCRetention
}

// authorizeChannel accepts the CDC channels of the selected entities, the custom channel and
// the /topic channels of active PushTopics.
func (e *Emulator) authorizeChannel(_ string, channel string) error {
	switch {
	case channel == "/data/ChangeEvents", channel == externalRoutingChannel:
		return nil
	case strings.HasPrefix(channel, "/data/") && strings.HasSuffix(channel, "ChangeEvent"):
		name := strings.TrimSuffix(strings.TrimPrefix(channel, "/data/"), "ChangeEvent")
		if o, ok := e.schema.objects[lower(name)]; ok && o.CDC && o.Name == name {
			return nil
		}
	case strings.HasPrefix(channel, "/topic/"):
		base, _, _ := strings.Cut(channel, "?")
		e.topicMu.RLock()
		ok := e.topicChannels[base]
		e.topicMu.RUnlock()
		if ok {
			return nil
		}
	}
	return streaming.ChannelNotFoundError(channel)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Control errors; the control API maps them to 404, 409 and 400.
var (
	// ErrNotFound: the named record, user, queue, channel or status does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record is not in a state that allows the action.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is malformed.
	ErrInvalid = errors.New("invalid request")
)
