package salesforce

import (
	"context"
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

// StreamOptions configures a Stream.
type StreamOptions struct {
	// Tokens authorizes the CometD requests and gives the instance URL.
	// Required.
	Tokens *TokenSource
	// HTTPClient's Transport carries the requests (the stream uses its own
	// http.Client around it, with a private cookie jar). Default
	// http.DefaultTransport.
	HTTPClient *http.Client
	// APIVersion of the CometD endpoint {instance_url}/cometd/{version}.
	// Default DefaultAPIVersion.
	APIVersion string
	// Channels to subscribe: /data/...ChangeEvent, /data/ChangeEvents,
	// /data/...__chn or /topic/... Required.
	Channels []string
	// Checkpoints holds the replay id of the last committed event per
	// channel. Default: an in-memory store (nothing survives a restart).
	Checkpoints CheckpointStore
	// StartFrom is where a channel without a checkpoint starts:
	// ReplayLatest (default) or ReplayAll.
	StartFrom int64
	// OnInvalidReplay is where a channel resumes after its stored replay
	// id was refused (the handler gets a Gap first). Default: from the
	// latest event.
	OnInvalidReplay bayeux.ReplayPolicy
	// Decoder decodes the events (PushTopic entity names).
	Decoder Decoder
	// Backoff is the wait before retry number attempt after failures;
	// nil means the bayeux default (1 s to 2 min, jittered).
	Backoff func(attempt int) time.Duration
	// NetworkDelay is added to the advised long-poll timeout to make the
	// /meta/connect HTTP deadline; zero means the bayeux default (20 s).
	NetworkDelay time.Duration
	// Registerer receives the omniroute_stream_* metrics; nil registers
	// nothing.
	Registerer prometheus.Registerer
	// Logger logs reconnections and skipped events; nil discards.
	Logger *slog.Logger
	// Now is the clock for the age metrics. Default time.Now.
	Now func() time.Time
}

// Message is what a StreamHandler receives: an event or a gap.
type Message struct {
	// Channel is the subscription the message belongs to.
	Channel string
	// Event is the decoded change (nil for a gap). A change event may
	// itself be a gap (Event.IsGap): then re-read its records.
	Event *ChangeEvent
	// Gap says events may have been missed (the server refused the stored
	// replay id, or the channel was resubscribed after a lost session
	// where nothing is replayed) and the caller must reconcile (re-read
	// the state from SOQL). Nil for an event.
	Gap *ReplayGap
}

// ReplayGap says events on a channel may have been missed. It comes in
// two cases, both delivered once the channel's new subscription is live,
// so a reconciliation done in the handler misses nothing published before:
//
//   - the server refused the stored replay id (too old): ReplayID is that
//     id, Resubscribed is false, and the channel's checkpoint is dropped
//     once the handler returns nil;
//   - the session was lost (re-handshake) and the channel was subscribed
//     again from where the server replays nothing published meanwhile: from
//     ReplayLatest (no event was handled on it yet), or from any id when
//     the server did not confirm the replay extension. Resubscribed is
//     true, ReplayID is where it resumed, and the checkpoint is kept.
type ReplayGap struct {
	Channel string
	// ReplayID is the id the server refused, or, when Resubscribed, the id
	// the channel was subscribed from again.
	ReplayID int64
	// ResumeFrom is where the channel resumes: ReplayLatest or ReplayAll
	// (or, when Resubscribed, ReplayID).
	ResumeFrom int64
	// Reason is the server's message, or why a resubscription lost events.
	Reason string
	// Resubscribed is true for a lost session, false for a refused id.
	Resubscribed bool
}

// reasonResubscribed is the Reason of a ReplayGap for a lost session.
const reasonResubscribed = "session lost: resubscribed where the server replays nothing published meanwhile"

// StreamHandler handles one message. Messages of a channel arrive in
// order, one at a time; while the handler runs no new long poll is made
// (backpressure). Returning an error stops Run.
type StreamHandler func(ctx context.Context, m Message) error

// Stream follows Salesforce Streaming API channels with durable replay.
//
// It wraps a bayeux.Client: the token source authorizes each request and
// is told (Invalidate) when CometD answers 401::Authentication invalid;
// the endpoint is {instance_url}/cometd/{version}; each channel starts
// from its checkpoint (or StartFrom); events are decoded to ChangeEvent.
//
// Delivery is at least once. The caller calls Commit(channel, replayID)
// once it has durably handled an event; only committed ids reach the
// checkpoint store, so after a crash the stream resumes after the last
// committed event and may deliver later ones again. Within a run, after a
// re-handshake, channels resume after the last event the handler returned
// nil for.
//
// A Gap is delivered when events may have been missed, once the channel's
// new subscription is live: the caller reconciles (re-reads the state).
// Either the stored replay id was too old: when the handler returns nil
// the channel's checkpoint is dropped (so a restart does not hit the same
// gap) and the channel resumes per OnInvalidReplay. Or, after a
// re-handshake, a channel that had no event yet was resubscribed from -1,
// so events published while the session was down are not replayed
// (ReplayGap.Resubscribed). A channel started from ReplayAll needs no such
// Gap: -2 replays every retained event.
//
// Events that cannot be decoded are logged, counted
// (omniroute_stream_decode_errors_total) and skipped.
type Stream struct {
	opts    StreamOptions
	bc      *bayeux.Client
	metrics *streamMetrics
	log     *slog.Logger
	lastTok atomic.Pointer[Token]

	mu        sync.Mutex // guards committed and serialises Save
	committed map[string]int64
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
	if opts.Checkpoints == nil {
		opts.Checkpoints = &MemoryCheckpointStore{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var rt http.RoundTripper
	if opts.HTTPClient != nil {
		rt = opts.HTTPClient.Transport
	}
	s := &Stream{
		opts:      opts,
		metrics:   newStreamMetrics(opts.Registerer, opts.Channels, opts.Now),
		log:       opts.Logger.With("component", "salesforce_stream"),
		committed: map[string]int64{},
	}
	bc, err := bayeux.New(bayeux.Options{
		Endpoint: func(ctx context.Context) (string, error) {
			tok, err := opts.Tokens.Token(ctx)
			if err != nil {
				return "", err
			}
			return tok.InstanceURL + "/cometd/" + opts.APIVersion, nil
		},
		Transport: rt,
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
		Backoff:         opts.Backoff,
		NetworkDelay:    opts.NetworkDelay,
		Observer:        (*streamObserver)(s.metrics),
		Logger:          s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream: %w", err)
	}
	s.bc = bc
	return s, nil
}

// Run loads the checkpoints, subscribes and delivers messages to h until
// ctx ends (then it disconnects and returns nil), h returns an error, or
// the server refuses the stream for good. A token grant the server refuses
// at start (a *TokenError with a 4xx status) is returned at once.
func (s *Stream) Run(ctx context.Context, h StreamHandler) error {
	if h == nil {
		return errors.New("run stream: nil handler")
	}
	// A grant the authorization server refuses (wrong key, user, secret)
	// will not heal by retrying: fail now rather than back off forever.
	// Later token failures are retried with the stream's backoff.
	if _, err := s.opts.Tokens.Token(ctx); err != nil {
		var te *TokenError
		if errors.As(err, &te) && te.Status >= 400 && te.Status < 500 && te.Status != http.StatusTooManyRequests {
			return fmt.Errorf("run stream: %w", err)
		}
	}
	stored, err := s.opts.Checkpoints.Load(ctx)
	if err != nil {
		return fmt.Errorf("run stream: %w", err)
	}
	s.mu.Lock()
	s.committed = maps.Clone(stored)
	s.mu.Unlock()
	subs := make([]bayeux.Subscription, 0, len(s.opts.Channels))
	for _, ch := range s.opts.Channels {
		from := s.opts.StartFrom
		if id, ok := stored[ch]; ok {
			from = id
		}
		subs = append(subs, bayeux.Subscription{Channel: ch, ReplayID: from})
	}
	resumeFrom := ReplayLatest
	if s.opts.OnInvalidReplay == bayeux.ResubscribeAll {
		resumeFrom = ReplayAll
	}
	err = s.bc.Run(ctx, subs, func(ctx context.Context, d bayeux.Delivery) error {
		switch d.Kind {
		case bayeux.Gap:
			s.metrics.gaps.WithLabelValues(d.Channel).Inc()
			gap := &ReplayGap{Channel: d.Channel, ReplayID: d.ReplayID, ResumeFrom: resumeFrom}
			var re *bayeux.ReplayError
			if errors.As(d.Err, &re) {
				gap.Reason = re.Message
			}
			if err := h(ctx, Message{Channel: d.Channel, Gap: gap}); err != nil {
				return err
			}
			return s.forget(ctx, d.Channel)
		case bayeux.Resubscribed:
			s.metrics.gaps.WithLabelValues(d.Channel).Inc()
			gap := &ReplayGap{Channel: d.Channel, ReplayID: d.ReplayID, ResumeFrom: d.ReplayID, Reason: reasonResubscribed, Resubscribed: true}
			return h(ctx, Message{Channel: d.Channel, Gap: gap})
		case bayeux.Event:
			s.metrics.state.event(d.Channel)
			// Delivery.Data is never reused by the bayeux client: the event
			// may alias it, no copy needed.
			ev, err := s.opts.Decoder.decodeOwned(d.Channel, d.Data)
			if err != nil {
				s.metrics.decodeErrors.WithLabelValues(d.Channel).Inc()
				s.log.Warn("stream event skipped", "channel", d.Channel, "replay_id", d.ReplayID, "err", err)
				return nil
			}
			return h(ctx, Message{Channel: d.Channel, Event: &ev})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("run stream: %w", err)
	}
	return nil
}

// Commit records that the event with replayID on channel has been handled
// and saves the checkpoint; it is durable when Commit returns. Commit is
// safe to call from the handler or from another goroutine.
func (s *Stream) Commit(ctx context.Context, channel string, replayID int64) error {
	if !slices.Contains(s.opts.Channels, channel) {
		return fmt.Errorf("commit replay id on %s: not a channel of this stream", channel)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, had := s.committed[channel]
	s.committed[channel] = replayID
	if err := s.opts.Checkpoints.Save(ctx, maps.Clone(s.committed)); err != nil {
		if had {
			s.committed[channel] = prev
		} else {
			delete(s.committed, channel)
		}
		return fmt.Errorf("commit replay id %d on %s: %w", replayID, channel, err)
	}
	s.metrics.state.committed(channel)
	return nil
}

// forget drops a channel's checkpoint after its gap was handled.
func (s *Stream) forget(ctx context.Context, channel string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.committed[channel]; !ok {
		return nil
	}
	next := maps.Clone(s.committed)
	delete(next, channel)
	if err := s.opts.Checkpoints.Save(ctx, next); err != nil {
		return fmt.Errorf("drop checkpoint of %s after a gap: %w", channel, err)
	}
	s.committed = next
	return nil
}

// Committed returns a copy of the committed replay ids.
func (s *Stream) Committed() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.committed)
}

// ResumePoints returns where each channel would resume after a
// re-handshake: the last event the handler accepted.
func (s *Stream) ResumePoints() map[string]int64 { return s.bc.ResumePoints() }

// streamObserver feeds the bayeux client's hooks into the stream metrics.
type streamObserver streamMetrics

func (o *streamObserver) Request(op, code string, d time.Duration) {
	o.requests.WithLabelValues(op, code).Inc()
	o.duration.WithLabelValues(op).Observe(d.Seconds())
}

func (o *streamObserver) Rehandshake(reason string) { o.rehandshakes.WithLabelValues(reason).Inc() }

func (o *streamObserver) Delivered(channel string) { o.events.WithLabelValues(channel).Inc() }
