package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omniroute/omniroute/salesforce/bayeux"
)

// Replay ids with a special meaning.
const (
	ReplayLatest = bayeux.ReplayLatest // -1: only new events
	ReplayAll    = bayeux.ReplayAll    // -2: every event still retained
)

// CheckpointStore keeps the replay id of the last committed event of each channel, so that a
// restart (or another replica taking over) resumes where the last one stopped. Save must be
// durable when it returns. The daemon's file store is connector.FileCheckpointStore.
type CheckpointStore interface {
	// Load returns the stored replay ids; an empty map if there are none.
	Load(ctx context.Context) (map[string]int64, error)
	// Save replaces the stored replay ids.
	Save(ctx context.Context, ids map[string]int64) error
}

// StreamOptions configures a Stream.
type StreamOptions struct {
	// Tokens authorizes the CometD requests and gives the instance URL. Required.
	Tokens *TokenSource
	// HTTPClient carries the requests, used as the REST client uses it (Transport, Timeout,
	// CheckRedirect), except that the stream keeps a private cookie jar. A Timeout, if set, must
	// exceed the long poll (110 s) plus NetworkDelay. Default http.DefaultClient.
	HTTPClient *http.Client
	// APIVersion of the CometD endpoint {instance_url}/cometd/{version}. Default
	// DefaultAPIVersion.
	APIVersion string
	// Channels to subscribe: /data/...ChangeEvent, /data/ChangeEvents, /data/...__chn or
	// /topic/... Required.
	Channels []string
	// Checkpoints holds the replay id of the last committed event per channel. Nil keeps them
	// in memory only (nothing survives a restart).
	Checkpoints CheckpointStore
	// StartFrom is where a channel without a checkpoint starts: ReplayLatest (default) or
	// ReplayAll.
	StartFrom int64
	// OnInvalidReplay is where a channel resumes after its stored replay id was refused (the
	// handler gets a Missed first). Default: from the latest event.
	OnInvalidReplay bayeux.ReplayPolicy
	// TopicEntities maps a PushTopic channel (/topic/Name) to the entity its query selects from.
	// Without an entry the entity is guessed from the record id's key prefix.
	TopicEntities map[string]string
	// NetworkDelay is added to the advised long-poll timeout to make the /meta/connect HTTP
	// deadline; zero means the bayeux default (20 s).
	NetworkDelay time.Duration
	// Registerer receives the stream_* metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger logs reconnections and bad events; nil discards.
	Logger *slog.Logger
}

// Message is what a StreamHandler receives: exactly one of Event, Bad and Missed is set.
type Message struct {
	// Channel is the subscription the message belongs to.
	Channel string
	// Event is a decoded change. A change event may itself be one of Salesforce's gap events
	// (Event.ChangeType.IsGapEvent): then re-read its records.
	Event *ChangeEvent
	// Bad is an event that could not be decoded: count it and reconcile.
	Bad *BadEvent
	// Missed says events on the channel may have been missed: reconcile (re-read the state
	// from SOQL).
	Missed *Missed
}

// ReplayID returns the replay id of the message's event or bad event (0 if none is known):
// the id to Commit once the message is handled.
func (m Message) ReplayID() int64 {
	switch {
	case m.Event != nil:
		return m.Event.ReplayID
	case m.Bad != nil:
		return m.Bad.ReplayID
	}
	return 0
}

// BadEvent is an event that could not be decoded. It is handed over, never dropped: the
// caller counts it and reconciles, since it may have carried a change.
type BadEvent struct {
	Channel string
	// ReplayID is the event's replay id, 0 when even that could not be read.
	ReplayID int64
	// Raw is the event's data member as sent.
	Raw json.RawMessage
	// Err says why it could not be decoded.
	Err error
}

// MissedCause says why events may have been missed.
type MissedCause int

const (
	// ReplayRefused: the server refused the channel's stored replay id (outside the retention
	// window). ReplayID is the refused id; the channel resumed per OnInvalidReplay.
	ReplayRefused MissedCause = iota + 1
	// NotReplayed: the channel was subscribed from where the server replays nothing published
	// before: from -1 (no checkpoint at start, or a session lost before any event was handled
	// on it), or from any id when the server did not confirm the replay extension. ReplayID is
	// where it was subscribed from.
	NotReplayed
)

func (c MissedCause) String() string {
	switch c {
	case ReplayRefused:
		return "replay_refused"
	case NotReplayed:
		return "not_replayed"
	}
	return "unknown"
}

// Missed says events on a channel may have been missed. It is delivered once the channel's
// subscription is live, so a reconciliation done in the handler misses nothing published
// before it.
type Missed struct {
	Channel string
	Cause   MissedCause
	// ReplayID is the refused id (ReplayRefused) or where the channel was subscribed from
	// (NotReplayed).
	ReplayID int64
	// ResumeFrom is where the channel resumes: ReplayLatest, ReplayAll or, for NotReplayed,
	// ReplayID.
	ResumeFrom int64
	// Reason is the server's message for a refused id.
	Reason string
}

// StreamHandler handles one message. Messages of a channel arrive in order, one at a time;
// while the handler runs no new long poll is made (backpressure). Returning an error stops Run.
type StreamHandler func(ctx context.Context, m Message) error

// Stream follows Salesforce Streaming API channels with durable replay.
//
// It wraps a bayeux.Client: the token source authorizes each request and is told (Invalidate)
// when CometD answers 401::Authentication invalid; the endpoint is
// {instance_url}/cometd/{version}; each channel starts from its checkpoint (or StartFrom);
// events are decoded with encoding/json, once, into ChangeEvents with typed records.
//
// Delivery is at least once. The caller calls Commit(channel, replayID) once it has durably
// handled a message; only committed ids reach the checkpoint store, so after a crash the stream
// resumes after the last committed event and may deliver later ones again. Within a run, after
// any failed long poll or lost session, channels resume after the last message the handler
// returned nil for.
//
// Nothing is lost without telling the caller: an event that cannot be decoded arrives as a
// BadEvent, and a Missed arrives whenever events may have been missed (a refused replay id, a
// subscription from -1 at start or after a lost session, a server without replay); the caller
// reconciles.
type Stream struct {
	opts    StreamOptions
	bc      *bayeux.Client
	metrics *streamMetrics
	log     *slog.Logger
	lastTok atomic.Pointer[Token]

	mu        sync.Mutex       // guards committed and delivered, and serialises Save
	committed map[string]int64 // the last committed replay id per channel
	delivered map[string]int64 // the highest replay id handed to the handler per channel
}

// NewStream checks opts and returns a Stream. It makes no request.
func NewStream(opts StreamOptions) (*Stream, error) {
	if opts.Tokens == nil {
		return nil, errors.New("create stream: a token source is required")
	}
	if len(opts.Channels) == 0 {
		return nil, errors.New("create stream: no channels")
	}
	for _, ch := range opts.Channels {
		if !strings.HasPrefix(ch, "/data/") && !strings.HasPrefix(ch, "/topic/") && !strings.HasPrefix(ch, "/event/") {
			return nil, fmt.Errorf("create stream: channel %q: want a /data/, /topic/ or /event/ channel", ch)
		}
	}
	if opts.APIVersion == "" {
		opts.APIVersion = DefaultAPIVersion
	}
	opts.APIVersion = strings.TrimPrefix(opts.APIVersion, "v")
	if opts.StartFrom == 0 {
		opts.StartFrom = ReplayLatest
	}
	if opts.StartFrom != ReplayLatest && opts.StartFrom != ReplayAll {
		return nil, fmt.Errorf("create stream: start from %d: want -1 (latest) or -2 (all)", opts.StartFrom)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Stream{opts: opts, log: opts.Logger.With("component", "salesforce_stream"), committed: map[string]int64{}, delivered: map[string]int64{}}
	m, err := newStreamMetrics(opts.Registerer, opts.Channels, s.Live)
	if err != nil {
		return nil, fmt.Errorf("create stream: %w", err)
	}
	s.metrics = m
	s.bc, err = bayeux.New(bayeux.Options{
		Endpoint: func(ctx context.Context) (string, error) {
			tok, err := opts.Tokens.Token(ctx)
			if err != nil {
				return "", err
			}
			return tok.InstanceURL + "/cometd/" + opts.APIVersion, nil
		},
		HTTPClient: opts.HTTPClient,
		Authorize: func(ctx context.Context, req *http.Request) error {
			tok, err := opts.Tokens.Token(ctx)
			if err != nil {
				return err
			}
			s.lastTok.Store(&tok)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			return nil
		},
		Unauthorized: func() {
			if t := s.lastTok.Load(); t != nil {
				opts.Tokens.Invalidate(*t)
			}
		},
		Replay:          true,
		OnInvalidReplay: opts.OnInvalidReplay,
		NetworkDelay:    opts.NetworkDelay,
		Observer:        (*streamObserver)(s.metrics),
		Logger:          s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream: %w", err)
	}
	return s, nil
}

// Run loads the checkpoints, subscribes and delivers messages to h until ctx ends or Shutdown
// is called (then it returns nil), h returns an error, or the server refuses the stream for
// good. A token grant the server refuses at start (a *TokenError with a 4xx status) is
// returned at once.
func (s *Stream) Run(ctx context.Context, h StreamHandler) error {
	if h == nil {
		return errors.New("run stream: nil handler")
	}
	// A grant the authorization server refuses (wrong key, user, secret) will not heal by
	// retrying: fail now rather than back off forever. Later token failures are retried.
	if _, err := s.opts.Tokens.Token(ctx); err != nil {
		var te *TokenError
		if errors.As(err, &te) && te.Status >= 400 && te.Status < 500 && te.Status != http.StatusTooManyRequests {
			return fmt.Errorf("run stream: %w", err)
		}
	}
	var stored map[string]int64
	if s.opts.Checkpoints != nil {
		var err error
		if stored, err = s.opts.Checkpoints.Load(ctx); err != nil {
			return fmt.Errorf("run stream: %w", err)
		}
	}
	s.mu.Lock()
	s.committed, s.delivered = maps.Clone(stored), map[string]int64{}
	s.mu.Unlock()
	subs := make([]bayeux.Subscription, 0, len(s.opts.Channels))
	for _, ch := range s.opts.Channels {
		from, ok := stored[ch]
		if !ok {
			from = s.opts.StartFrom
		}
		subs = append(subs, bayeux.Subscription{Channel: ch, ReplayID: from})
	}
	err := s.bc.Run(ctx, subs, func(ctx context.Context, d bayeux.Delivery) error {
		m := s.message(d)
		if id := m.ReplayID(); id > 0 {
			s.mu.Lock()
			s.delivered[d.Channel] = max(s.delivered[d.Channel], id)
			s.mu.Unlock()
		}
		return h(ctx, m)
	})
	if err != nil {
		return fmt.Errorf("run stream: %w", err)
	}
	return nil
}

// message turns a Bayeux delivery into a Message, counting it.
func (s *Stream) message(d bayeux.Delivery) Message {
	m := Message{Channel: d.Channel}
	switch d.Kind {
	case bayeux.ReplayRefused, bayeux.NotReplayed:
		mi := &Missed{Channel: d.Channel, Cause: NotReplayed, ReplayID: d.ReplayID, ResumeFrom: d.ReplayID}
		if d.Kind == bayeux.ReplayRefused {
			mi.Cause, mi.ResumeFrom = ReplayRefused, s.bc.ResumePoints()[d.Channel]
			if re, ok := errors.AsType[*bayeux.ReplayError](d.Err); ok {
				mi.Reason = re.Message
			}
			// The refused id stays in the store until the next commit, so a crash before one
			// meets the refusal (and this report) again; in memory, any next commit is accepted.
			s.mu.Lock()
			delete(s.committed, d.Channel)
			s.mu.Unlock()
		}
		s.metrics.missed.WithLabelValues(d.Channel, mi.Cause.String()).Inc()
		m.Missed = mi
		return m
	case bayeux.Event:
		s.metrics.state.mark(s.metrics.state.lastEvent, d.Channel)
		ev, err := decodeEvent(d.Channel, d.ReplayID, d.Data, s.opts.TopicEntities)
		if err == nil {
			m.Event = &ev
			return m
		}
		raw, _ := json.Marshal(d.Data) // it was decoded, so it encodes
		d = bayeux.Delivery{Channel: d.Channel, ReplayID: d.ReplayID, Raw: raw, Err: err}
	}
	s.metrics.badEvents.WithLabelValues(d.Channel).Inc()
	s.log.Warn("bad event", "channel", d.Channel, "replay_id", d.ReplayID, "err", d.Err)
	m.Bad = &BadEvent{Channel: d.Channel, ReplayID: d.ReplayID, Raw: d.Raw, Err: d.Err}
	return m
}

// Commit records that the message with replayID on channel has been handled and saves the
// checkpoint; it is durable when Commit returns. Commit is safe to call from the handler or
// from another goroutine.
//
// Commits are monotonic per channel: an id at or below the channel's last commit changes
// nothing, and an id not yet delivered is refused. Committing an id means every message
// delivered before it on that channel is handled too, so a handler that queues work must
// commit in delivery order: commit an id only once it and every message before it on the
// channel are done (for example from the one goroutine that applies them in order).
func (s *Stream) Commit(ctx context.Context, channel string, replayID int64) error {
	if !slices.Contains(s.opts.Channels, channel) {
		return fmt.Errorf("commit replay id on %s: not a channel of this stream", channel)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.committed[channel]; ok && replayID <= prev {
		return nil
	}
	if replayID > s.delivered[channel] {
		return fmt.Errorf("commit replay id %d on %s: not delivered yet", replayID, channel)
	}
	next := maps.Clone(s.committed)
	if next == nil {
		next = map[string]int64{}
	}
	next[channel] = replayID
	if s.opts.Checkpoints != nil {
		if err := s.opts.Checkpoints.Save(ctx, next); err != nil {
			return fmt.Errorf("commit replay id %d on %s: %w", replayID, channel, err)
		}
	}
	s.committed = next
	s.metrics.state.mark(s.metrics.state.lastCommit, channel)
	return nil
}

// Committed returns a copy of the committed replay ids.
func (s *Stream) Committed() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.committed)
}

// Live reports whether every channel is subscribed on a working session: events published now
// reach the handler. Readiness should wait for it.
func (s *Stream) Live() bool { return s.bc.Live() }

// Shutdown ends Run: it stops the long poll and sends /meta/disconnect within ctx's deadline,
// then returns once Run has returned (or ctx's error if ctx ends first).
func (s *Stream) Shutdown(ctx context.Context) error { return s.bc.Shutdown(ctx) }

// streamObserver feeds the bayeux client's hooks into the stream metrics.
type streamObserver streamMetrics

func (o *streamObserver) Request(op, code string, d time.Duration) {
	o.requests.WithLabelValues(op, code).Inc()
	o.duration.WithLabelValues(op).Observe(d.Seconds())
}

func (o *streamObserver) Rehandshake(reason string) { o.rehandshakes.WithLabelValues(reason).Inc() }

func (o *streamObserver) Delivered(channel string) { o.events.WithLabelValues(channel).Inc() }
