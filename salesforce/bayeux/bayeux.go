package bayeux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Replay ids with a special meaning in a subscription.
const (
	ReplayLatest int64 = -1 // only events published after the subscribe
	ReplayAll    int64 = -2 // every event the server still retains
)

// Defaults for the request deadlines.
const (
	// DefaultRequestTimeout bounds every request but /meta/connect.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultNetworkDelay is added to the advised long-poll timeout to give a /meta/connect its
	// deadline (110 s + 20 s on Salesforce).
	DefaultNetworkDelay = 20 * time.Second
	// defaultAdviceTimeout is Salesforce's long-poll hold until a server advises otherwise.
	defaultAdviceTimeout = 110 * time.Second
	// maxAdvice caps an advised interval or timeout, so a broken server cannot park the client
	// for days.
	maxAdvice = 10 * time.Minute
	// maxResponseBytes caps a response body. Salesforce events are at most 1 MB each; a long
	// poll returns a bounded batch of them.
	maxResponseBytes = 64 << 20
	// maxBatchBytes caps the body of one subscribe POST, well under Salesforce's 32,768-byte
	// request limit.
	maxBatchBytes = 16 << 10
)

// ReplayPolicy says where to resubscribe a channel after the server refused its replay id.
type ReplayPolicy int

const (
	// ResubscribeLatest resubscribes from -1: only new events.
	ResubscribeLatest ReplayPolicy = iota
	// ResubscribeAll resubscribes from -2: every retained event.
	ResubscribeAll
)

func (p ReplayPolicy) replayID() int64 {
	if p == ResubscribeAll {
		return ReplayAll
	}
	return ReplayLatest
}

// Options configure a Client.
type Options struct {
	// Endpoint returns the full CometD URL ({instance}/cometd/62.0). It is asked at each
	// handshake, with a context bounded by RequestTimeout. Required.
	Endpoint func(ctx context.Context) (string, error)
	// HTTPClient carries the requests and is used as given (Transport, Timeout, CheckRedirect),
	// except that the Client keeps its own cookie jar: two Bayeux clients must never share one.
	// A Timeout, if set, must exceed the long-poll hold plus NetworkDelay. nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Authorize sets the Authorization header of each request. nil sends none.
	Authorize func(ctx context.Context, req *http.Request) error
	// Unauthorized is called when the server said 401::Authentication invalid or answered HTTP
	// 401: the caller drops its token, and the client handshakes again (with a token Authorize
	// fetches anew).
	Unauthorized func()
	// Replay sends the replay extension: ext {"replay":true} on the handshake and a channel ->
	// replay id map on each subscribe (only when the server confirmed the extension).
	Replay bool
	// OnInvalidReplay is where a channel resubscribes after the server refused its replay id.
	OnInvalidReplay ReplayPolicy
	// Observer receives metric hooks; nil means none.
	Observer Observer
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// RequestTimeout bounds each request but /meta/connect, and each call to Endpoint. Zero
	// means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// NetworkDelay is added to the advised long-poll timeout to make a /meta/connect's deadline.
	// Zero means DefaultNetworkDelay.
	NetworkDelay time.Duration
}

// Observer receives metric hooks. All methods must be cheap and safe for concurrent use.
type Observer interface {
	// Request reports one Bayeux request (for a batched subscribe, one per subscription). op:
	// handshake, connect, subscribe or disconnect; code: "ok", the Bayeux error code ("403"),
	// the HTTP status ("503") or "transport".
	Request(op, code string, d time.Duration)
	// Rehandshake reports a new handshake after the first one. reason: unknown_client, auth,
	// advice, transport or limit.
	Rehandshake(reason string)
	// Delivered reports an event (or bad event) the handler accepted.
	Delivered(channel string)
}

// Subscription is a channel to subscribe and where to start: ReplayLatest (-1), ReplayAll (-2)
// or the replay id of the last event already handled.
type Subscription struct {
	Channel  string
	ReplayID int64
}

// Kind says what a Delivery is.
type Kind int

const (
	// Event is an event published on a subscribed channel.
	Event Kind = iota
	// BadEvent is an event whose data does not have the shape Salesforce sends (not an object,
	// a replay id that is not an integer, ...). Raw holds it as sent and Err says why; it is
	// handed over, never dropped.
	BadEvent
	// ReplayRefused says the server refused a channel's replay id (outside the retention
	// window): events may have been missed and the caller must reconcile. The channel is
	// resubscribed as Options.OnInvalidReplay says, and this is delivered once that new
	// subscription is live, so a reconciliation done then misses nothing published before it.
	ReplayRefused
	// NotReplayed says a channel was subscribed from where the server replays nothing published
	// before: from -1 (at start without a stored id, after a refused id, or after a lost
	// session before any event was handled), or from any id when the server did not confirm
	// the replay extension. Events published before may have been missed: the caller must
	// reconcile. It is delivered once the subscription is live. A channel at -2 needs none.
	NotReplayed
)

// String implements fmt.Stringer.
func (k Kind) String() string {
	switch k {
	case Event:
		return "event"
	case BadEvent:
		return "bad event"
	case ReplayRefused:
		return "replay refused"
	case NotReplayed:
		return "not replayed"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Delivery is what the handler receives.
type Delivery struct {
	Kind Kind
	// Channel is the subscription the delivery belongs to. For a filtered subscription
	// ("/topic/X?F=v") the server sends events on the bare channel; Channel is then the
	// subscription as given.
	Channel string
	// ReplayID is, for an Event, data.event.replayId (0 if absent; for a BadEvent, 0 when it
	// cannot be read); for ReplayRefused, the replay id that was refused; for NotReplayed, the
	// replay id the channel was subscribed from.
	ReplayID int64
	// Data is an Event's data member, decoded. The handler may keep it.
	Data *EventData
	// Raw is a BadEvent's data member as sent.
	Raw json.RawMessage
	// Err is why a BadEvent is bad, or a ReplayRefused's *ReplayError.
	Err error
}

// Handler handles one delivery. It runs on the goroutine that called Run, so no new
// /meta/connect is sent while it runs (backpressure). A returned error stops Run, which
// returns it wrapped.
type Handler func(ctx context.Context, d Delivery) error

// Client is a Bayeux long-polling client for Salesforce's Streaming API.
//
// Run does, in order:
//
//  1. handshake (ext replay), store the client id and the advice;
//
//  2. subscribe every channel not yet subscribed, batched in as few POSTs as the request size
//     limit allows, each from its resume point; report NotReplayed or ReplayRefused once a
//     subscription is live where events may have been missed;
//
//  3. one /meta/connect at a time; hand each event in the response to the handler, in order,
//     and advance the channel's resume point once the handler returned nil; then follow the
//     advice (retry after interval, handshake, none);
//
//  4. on failure:
//
//     a connect that failed (no answer, an HTTP error, a body cut or
//     unreadable, no connect reply): the server may have taken events
//     off the session's queue that never arrived, so the session is
//     dropped: handshake again and resubscribe from the resume points
//     any "*::Unknown client" or a server's /meta/disconnect -> the same
//     "401::..." or HTTP 401         -> Unauthorized(), then the same
//     replay id invalid on subscribe -> resubscribe the channel from -1
//     or -2 (OnInvalidReplay), then ReplayRefused to the handler
//     a limit, "503::...", HTTP 429 or 503 -> back off on the limit
//     schedule (minutes within a few steps), at least Retry-After
//     anything else on handshake or subscribe, or advice "none" ->
//     Run returns the *Error
//
//     Failures in a row back off exponentially (github.com/cenkalti/backoff/v4, jittered);
//     only the first re-handshake in a row is immediate. So does a connect (not the first of
//     its session) that came back empty before half the advised timeout, with no interval
//     advised. The schedules reset once a session proves healthy (a connect that delivered an
//     event, or a later one the server held).
//
//  5. when ctx ends, return at once; Shutdown instead sends /meta/disconnect within the
//     caller's deadline first.
//
// A Client may run again after Run returned, but only one Run at a time.
type Client struct {
	opts       Options
	http       *http.Client
	log        *slog.Logger
	obs        Observer
	reqTimeout time.Duration
	netDelay   time.Duration

	running atomic.Bool
	live    atomic.Bool

	mu     sync.Mutex
	resume map[string]int64
	stop   context.CancelFunc // ends the running Run
	done   chan struct{}      // closed when the running Run returns
	bye    context.Context    // Shutdown's context, for /meta/disconnect
}

// New returns a Client with its own cookie jar.
func New(o Options) (*Client, error) {
	if o.Endpoint == nil {
		return nil, errors.New("create bayeux client: Endpoint is required")
	}
	if o.OnInvalidReplay != ResubscribeLatest && o.OnInvalidReplay != ResubscribeAll {
		return nil, fmt.Errorf("create bayeux client: unknown OnInvalidReplay policy %d", o.OnInvalidReplay)
	}
	if o.RequestTimeout < 0 || o.NetworkDelay < 0 {
		return nil, errors.New("create bayeux client: negative RequestTimeout or NetworkDelay")
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("create cookie jar: %w", err)
	}
	hc := *http.DefaultClient
	if o.HTTPClient != nil {
		hc = *o.HTTPClient
	}
	hc.Jar = jar
	c := &Client{
		opts: o, http: &hc, log: o.Logger, obs: o.Observer,
		reqTimeout: o.RequestTimeout, netDelay: o.NetworkDelay, resume: map[string]int64{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.obs == nil {
		c.obs = nopObserver{}
	}
	if c.reqTimeout == 0 {
		c.reqTimeout = DefaultRequestTimeout
	}
	if c.netDelay == 0 {
		c.netDelay = DefaultNetworkDelay
	}
	return c, nil
}

// ResumePoints returns, per subscribed channel, the replay id of the last event the handler
// accepted; before any, the id the channel was subscribed from (-1, -2 or a stored id; after a
// refused id, the policy's -1 or -2). It is a copy, safe to call while Run runs.
func (c *Client) ResumePoints() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.resume)
}

// Live reports whether every channel is subscribed on the current session and nothing has
// failed since: events published now reach the handler. It is false before the subscriptions
// are done, while the client recovers from a failure, and after Run returned.
func (c *Client) Live() bool { return c.live.Load() }

func (c *Client) setResume(channel string, id int64) {
	c.mu.Lock()
	c.resume[channel] = id
	c.mu.Unlock()
}

func (c *Client) resumeOf(channel string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resume[channel]
}

// Run handshakes, subscribes to subs, long-polls and delivers until ctx is done or Shutdown is
// called. It recovers by itself from everything recoverable; it returns nil on ctx
// cancellation or Shutdown, the handler's error (wrapped; returned even when ctx ended
// meanwhile, unless it wraps ctx's error), or a fatal error (advice reconnect=none, a handshake
// or subscribe refused for a reason retrying cannot fix: errors.As finds the *Error; or an
// endpoint that is not an absolute http or https URL). When ctx ends, Run returns without a
// /meta/disconnect (the server forgets the session on its own); Shutdown sends one.
func (c *Client) Run(ctx context.Context, subs []Subscription, h Handler) error {
	if h == nil {
		return errors.New("run bayeux client: nil handler")
	}
	if err := validateSubs(subs); err != nil {
		return fmt.Errorf("run bayeux client: %w", err)
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("run bayeux client: already running")
	}
	defer c.running.Store(false)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	defer close(done)
	c.mu.Lock()
	c.resume = make(map[string]int64, len(subs))
	for _, s := range subs {
		c.resume[s.Channel] = s.ReplayID
	}
	c.stop, c.done, c.bye = stop, done, nil
	c.mu.Unlock()

	s := newSession(c, h, subs)
	err := s.loop(runCtx)
	c.live.Store(false)
	c.mu.Lock()
	bye := c.bye
	c.stop, c.bye = nil, nil
	c.mu.Unlock()
	if bye != nil {
		s.disconnect(bye)
	}
	if runCtx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil // shutdown; a handler's own error is still returned
	}
	return err
}

// Shutdown ends a running Run: it stops the long poll, sends /meta/disconnect within ctx's
// deadline (and RequestTimeout), and returns once Run has returned, or ctx's error when ctx
// ends first. Without a running Run it does nothing.
func (c *Client) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	stop, done := c.stop, c.done
	if stop != nil {
		c.bye = ctx
	}
	c.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shut down bayeux client: %w", ctx.Err())
	}
}

func validateSubs(subs []Subscription) error {
	if len(subs) == 0 {
		return errors.New("no subscriptions")
	}
	seen := make(map[string]bool, len(subs))
	for _, s := range subs {
		switch {
		case len(s.Channel) < 2 || s.Channel[0] != '/':
			return fmt.Errorf("subscription %q: channel must start with '/'", s.Channel)
		case strings.HasPrefix(s.Channel, "/meta/"):
			return fmt.Errorf("subscription %q: meta channels cannot be subscribed", s.Channel)
		case strings.Contains(channelOf(s.Channel), "*"):
			// Its events would come on channels no subscription names.
			return fmt.Errorf("subscription %q: wildcard channels are not supported", s.Channel)
		case seen[s.Channel]:
			return fmt.Errorf("subscription %q: listed twice", s.Channel)
		case s.ReplayID < ReplayAll:
			return fmt.Errorf("subscription %q: replay id %d is below -2", s.Channel, s.ReplayID)
		}
		seen[s.Channel] = true
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type nopObserver struct{}

func (nopObserver) Request(string, string, time.Duration) {}
func (nopObserver) Rehandshake(string)                    {}
func (nopObserver) Delivered(string)                      {}
