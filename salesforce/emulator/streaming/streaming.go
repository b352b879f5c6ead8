package streaming

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	browserCookie = "BAYEUX_BROWSER"

	defaultAdviceTimeout        = 110 * time.Second
	defaultClientTimeout        = 40 * time.Second
	defaultMaxEvents            = 100_000
	defaultMaxRequestBytes      = 32_768
	defaultMaxResponseBytes     = 512 << 10
	defaultMultiSessionInterval = 2 * time.Second
)

// Options configures a Server. The zero value of every field has a documented default.
type Options struct {
	// Authenticate checks the request's credentials (the token from the Authorization header,
	// taken from "Bearer <t>", "OAuth <t>" or a bare "<t>") and returns the principal;
	// ok=false answers 401::Authentication invalid. nil accepts every non-empty token, with
	// an empty principal. It is called without any Server lock held.
	Authenticate func(token string) (principal string, ok bool)
	// Authorize decides whether principal may subscribe to channel (nil error = yes). The
	// error text is sent in the subscribe reply's "error" field as is, e.g. the text of
	// ChannelNotFoundError. nil allows every channel. Called without any Server lock held.
	Authorize func(principal, channel string) error
	// AdviceTimeout is how long a /meta/connect is held without events (advice.timeout).
	// Default 110 s.
	AdviceTimeout time.Duration
	// AdviceInterval is advice.interval on connect replies. Default 0.
	AdviceInterval time.Duration
	// ClientTimeout expires a clientId that has no /meta/connect held and sent no message for
	// this long. Default 40 s (Salesforce's documented reconnect timeout).
	ClientTimeout time.Duration
	// Retention is how long events stay replayable on a channel. nil or a non-positive
	// result: 72 h for /data/ and /event/ channels, 24 h for every other channel.
	Retention func(channel string) time.Duration
	// MaxEvents caps the events retained for replay across all channels; the oldest are
	// forgotten first (their replay ids become invalid). Default 100,000.
	MaxEvents int
	// MaxQueue caps the events waiting for one client; a client that falls further behind is
	// dropped (403::Unknown client at its next message) and must handshake and replay.
	// Default 4*MaxEvents.
	MaxQueue int
	// MaxRequestBytes caps a request body (Salesforce: 32,768 bytes, HTTP 413 beyond).
	MaxRequestBytes int64
	// MaxResponseBytes caps the event bytes in one connect reply (at least one event is always
	// sent); the rest wait for the next connect, which then returns at once. Default 512 KiB.
	MaxResponseBytes int
	// MultiSessionInterval is advice.interval for a second client of one browser (one
	// BAYEUX_BROWSER cookie) while another client of that browser holds a connect. Default 2 s.
	MultiSessionInterval time.Duration
	// Now is the clock for retention and client-expiry decisions. Default time.Now. Long polls
	// always wait in real time.
	Now func() time.Time
	// Logger receives debug and warning records. nil discards them.
	Logger *slog.Logger
	// MaxClients is the org's concurrent CometD client allocation: a handshake while this
	// many clientIds are live is refused ("403::Handshake denied", failureReason
	// "403::Organization concurrent user limit exceeded"). 0: no limit.
	MaxClients int
	// DailyDeliveryLimit is the rolling-24-h allocation of delivered /data/ and /event/
	// events, counted per subscriber (DailyDeliveredPlatformEvents). Once used up, every
	// /meta/connect gets "403::Organization total events daily limit exceeded". 0: counted,
	// not enforced.
	DailyDeliveryLimit int64
}

// Server is a Bayeux (CometD) long-polling server that behaves like Salesforce's Streaming API
// endpoint /cometd/NN.N, with the replay extension. It is an http.Handler.
//
// State lives behind one mutex that is never held while a response is written or while the
// Authenticate, Authorize or build hooks run. Every client has a queue of encoded event
// messages; Publish appends to the queues of the channel's subscribers (O(subscribers) per
// event, no scan of past events) and wakes their held connects. Each channel keeps its
// retained events in id order for replay; a subscribe with a stored replay id finds its place
// by binary search.
type Server struct {
	opts Options
	log  *slog.Logger

	pubMu sync.Mutex // serialises Publish so ids and channel order agree

	mu            sync.Mutex
	closed        bool
	clients       map[string]*client
	channels      map[string]*channelState
	browsers      map[string]int // browser id -> connects held by its clients
	fifo          []*event       // retained events across channels, oldest first: fifo[fifoStart:]
	fifoStart     int
	lastID        int64 // last replay id issued
	globalHorizon int64 // every replay id <= this is forgotten on every channel
	lastSweep     time.Time
	published     int64
	delivered     int64
	dropped       int64
	flt           faultState

	onHold func() // test hook: called (without s.mu) when a connect starts being held
}

// Stats are the server's counters.
type Stats struct {
	Clients        int   // known clientIds
	Subscriptions  int   // client-channel subscriptions
	HeldConnects   int   // /meta/connect requests being held
	RetainedEvents int   // events retained for replay on at least one channel
	Published      int64 // events published since New
	Delivered      int64 // event messages written to connect responses since New
	DroppedClients int64 // clients dropped because their queue overflowed MaxQueue
}

type client struct {
	id        string
	browser   string
	principal string
	subs      map[string]*subscription // by subscription as written
	queue     []delivery
	poll      *poll
	connected bool // a connect has been answered at least once
	advised   advised
	lastSeen  time.Time
	gone      bool
}

// advised is the advice a client's connect replies last carried.
type advised int

const (
	advisedNone   advised = iota // no successful connect reply yet
	advisedNormal                // interval, timeout, reconnect retry
	advisedMulti                 // the multiple-clients advice
)

// New returns a Server with o's defaults filled in.
func New(o Options) *Server {
	if o.AdviceTimeout <= 0 {
		o.AdviceTimeout = defaultAdviceTimeout
	}
	if o.AdviceInterval < 0 {
		o.AdviceInterval = 0
	}
	if o.ClientTimeout <= 0 {
		o.ClientTimeout = defaultClientTimeout
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = defaultMaxEvents
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = max(4*o.MaxEvents, 1000)
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = defaultMaxRequestBytes
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = defaultMaxResponseBytes
	}
	if o.MultiSessionInterval <= 0 {
		o.MultiSessionInterval = defaultMultiSessionInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		opts:     o,
		log:      logger,
		clients:  make(map[string]*client),
		channels: make(map[string]*channelState),
		browsers: make(map[string]int),
		flt:      faultState{maxClients: max(o.MaxClients, 0), limit: max(o.DailyDeliveryLimit, 0)},
	}
}

// request is the per-POST state: credentials, cookie, and the cached authentication result.
type request struct {
	token     string
	browser   string
	authDone  bool
	authOK    bool
	principal string
	pre       [][]byte // server messages written before the replies (a server-sent disconnect)
}

func (s *Server) auth(rq *request) (string, bool) {
	if !rq.authDone {
		rq.authDone = true
		switch {
		case rq.token == "":
		case s.opts.Authenticate == nil:
			rq.authOK = true
		default:
			rq.principal, rq.authOK = s.opts.Authenticate(rq.token)
		}
	}
	return rq.principal, rq.authOK
}

// tokenFrom reads the Authorization header: "Bearer <t>", "OAuth <t>" (schemes matched
// case-insensitively) or a bare token, as EMP-Connector sends it.
func tokenFrom(h string) string {
	h = strings.TrimSpace(h)
	if i := strings.IndexByte(h, ' '); i > 0 {
		scheme := h[:i]
		if strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth") {
			return strings.TrimSpace(h[i+1:])
		}
	}
	return h
}

// versionError checks the API version in a /cometd/NN.N path. Paths without a "cometd"
// segment (the handler mounted elsewhere, as in tests) are not checked.
func versionError(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range segs {
		if seg != "cometd" {
			continue
		}
		if i+1 >= len(segs) || segs[i+1] == "" {
			return ErrTextVersionMandatory
		}
		v := segs[i+1]
		if v == "replay" && i+2 < len(segs) {
			v = segs[i+2]
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return ErrTextVersionMandatory
		}
		if f < 37 {
			return ErrTextUnsupportedVersion
		}
		return ""
	}
	return ""
}

func ms(d time.Duration) *int64 {
	v := d.Milliseconds()
	return &v
}

// ServeHTTP serves one Bayeux POST: a JSON array of messages (a single message object is
// accepted too). Replies come back in one JSON array: queued event messages first, then one
// reply per request message in request order. A /meta/connect is held until an event arrives
// for the client, its timeout passes, or the client is dropped.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "405 Method Not Allowed: Bayeux requests are POSTs", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		http.Error(w, "503 Service Unavailable: streaming server closed", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, "413 Maximum Request Size Exceeded", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "400 Bad Request: read request body", http.StatusBadRequest)
		return
	}
	msgs, err := decodeMessages(body)
	if err != nil {
		s.log.Debug("bad bayeux request body", slog.Int("bytes", len(body)))
		writeJSON(w, http.StatusBadRequest, nil, []reply{{Error: ErrTextMalformedBody}})
		return
	}

	rq := &request{token: tokenFrom(r.Header.Get("Authorization"))}
	if ck, err := r.Cookie(browserCookie); err == nil && ck.Value != "" {
		rq.browser = ck.Value
	}
	verr := versionError(r.URL.Path)

	replies := make([]reply, len(msgs))
	connectAt := -1
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.malformed:
			replies[i] = newReply(m)
			replies[i].Error = ErrTextMalformedMessage
		case verr != "":
			replies[i] = newReply(m)
			replies[i].Error = verr
			replies[i].Advice = &advice{Reconnect: "none"}
		case m.Channel == channelHandshake:
			replies[i] = s.handshake(w, rq, m)
		case m.Channel == channelConnect:
			var ok bool
			replies[i], ok = s.connectCheck(rq, m)
			if ok {
				if connectAt >= 0 {
					// Two connects in one POST: the earlier one is answered at once.
					s.mu.Lock()
					var adv *advice
					if c := s.clients[msgs[connectAt].ClientID]; c != nil {
						adv = s.adviceFor(c, false)
					}
					s.mu.Unlock()
					replies[connectAt] = connectReply(msgs[connectAt].ClientID, &msgs[connectAt], adv)
				}
				connectAt = i
			}
		case m.Channel == channelSubscribe:
			replies[i] = s.subscribe(rq, m)
		case m.Channel == channelUnsubscribe:
			replies[i] = s.unsubscribe(rq, m)
		case m.Channel == channelDisconnect:
			replies[i] = s.disconnect(rq, m)
		case strings.HasPrefix(m.Channel, "/meta/"):
			replies[i] = newReply(m)
			replies[i].Error = ErrTextUnknownChannel
		default:
			// Salesforce accepts no client publish.
			replies[i] = newReply(m)
			replies[i].Error = ErrTextRestrictedChannel
		}
	}

	var events [][]byte
	if connectAt >= 0 {
		var status int
		replies[connectAt], events, status = s.connect(r, rq, &msgs[connectAt], len(msgs) == 1)
		if status == -1 {
			return // the client went away
		}
		if status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
	}
	if len(rq.pre) > 0 {
		events = append(rq.pre, events...)
	}
	writeJSON(w, http.StatusOK, events, replies)
}

func writeJSON(w http.ResponseWriter, status int, events [][]byte, replies []reply) {
	var buf bytes.Buffer
	buf.WriteByte('[')
	n := 0
	for _, e := range events {
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(e)
		n++
	}
	for i := range replies {
		b, err := json.Marshal(&replies[i])
		if err != nil {
			continue // cannot happen: every field is a string, bool, number or valid raw JSON
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
		n++
	}
	buf.WriteByte(']')
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// lookup runs the checks shared by connect, subscribe, unsubscribe and disconnect, in this
// order: authentication, clientId present, clientId known and not expired, BAYEUX_BROWSER
// cookie present and matching, same principal as at handshake. On success it refreshes the
// client's activity time. Callers hold s.mu; Authenticate has already run (s.auth).
func (s *Server) lookup(rq *request, m *message, now time.Time) (*client, *reply) {
	rep := newReply(m)
	fail := func(text string, adv *advice, withClient bool) (*client, *reply) {
		rep.Error = text
		rep.Advice = adv
		if withClient {
			rep.ClientID = m.ClientID
		}
		return nil, &rep
	}
	if rq.token == "" {
		return fail(ErrTextAuthRequired, &advice{Reconnect: "none", Interval: ms(0)}, true)
	}
	principal, ok := rq.principal, rq.authOK
	if !ok {
		if m.Channel == channelConnect {
			if c := s.clients[m.ClientID]; c != nil {
				s.dropClient(c, wakeDropped)
			}
		}
		return fail(ErrTextAuthInvalid, &advice{Reconnect: "none", Interval: ms(0)}, true)
	}
	if m.ClientID == "" {
		return fail(ErrTextNoHandshake, &advice{Reconnect: "handshake", Interval: ms(0)}, false)
	}
	c := s.clients[m.ClientID]
	if c != nil && c.poll == nil && now.Sub(c.lastSeen) > s.opts.ClientTimeout {
		s.dropClient(c, wakeDropped)
		c = nil
	}
	if c == nil {
		if m.Channel == channelConnect && s.consumeTombstoneLocked(m.ClientID) {
			rq.pre = append(rq.pre, disconnectMsg)
		}
		return fail(ErrTextUnknownClient, &advice{Reconnect: "handshake", Interval: ms(0)}, false)
	}
	if rq.browser == "" {
		return fail(noCookie(c.id), &advice{Reconnect: "handshake", Interval: ms(0)}, true)
	}
	if rq.browser != c.browser {
		return fail(ErrTextUnknownClient, &advice{Reconnect: "handshake", Interval: ms(0)}, false)
	}
	if principal != c.principal {
		return fail(ErrTextUserMismatch, &advice{Reconnect: "none", Interval: ms(0)}, true)
	}
	c.lastSeen = now
	return c, nil
}

// lockedLookup authenticates the request and runs lookup at the current time. It returns with
// s.mu held: the caller unlocks.
func (s *Server) lockedLookup(rq *request, m *message) (*client, *reply, time.Time) {
	s.auth(rq)
	now := s.opts.Now()
	s.mu.Lock()
	c, fail := s.lookup(rq, m, now)
	return c, fail, now
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Clients:        len(s.clients),
		Published:      s.published,
		Delivered:      s.delivered,
		DroppedClients: s.dropped,
	}
	for _, ev := range s.fifo[s.fifoStart:] {
		if ev.refs > 0 {
			st.RetainedEvents++
		}
	}
	for _, c := range s.clients {
		st.Subscriptions += len(c.subs)
		if c.poll != nil {
			st.HeldConnects++
		}
	}
	return st
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close answers every held connect at once (an empty successful reply) and makes later
// requests fail with HTTP 503. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.clients {
		if c.poll != nil {
			s.release(c, wakeClosed)
		}
	}
}
