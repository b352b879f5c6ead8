package streaming

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
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
	lastSeen  time.Time
	gone      bool
}

type wakeReason int

const (
	wakeNone wakeReason = iota
	wakeEvent
	wakeSuperseded
	wakeDropped
	wakeDisconnected
	wakeClosed
	wakeRevalidate
	wakeLimit
)

type poll struct {
	done    chan struct{}
	reason  wakeReason
	browser string
	counted bool // still counted in s.browsers
}

// release answers c's held connect now, if it has one. Callers hold s.mu.
func (s *Server) release(c *client, r wakeReason) {
	p := c.poll
	if p == nil {
		return
	}
	c.poll = nil
	s.uncount(p)
	if p.reason == wakeNone {
		p.reason = r
		close(p.done)
	}
}

// uncount removes p from its browser's count of held connects. Callers hold s.mu.
func (s *Server) uncount(p *poll) {
	if !p.counted {
		return
	}
	p.counted = false
	if s.browsers[p.browser]--; s.browsers[p.browser] <= 0 {
		delete(s.browsers, p.browser)
	}
}

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
					replies[connectAt] = s.connectReply(msgs[connectAt].ClientID, &msgs[connectAt], false)
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

var handshakeExt = json.RawMessage(`{"replay":true,"payload.format":true}`)

func (s *Server) handshake(w http.ResponseWriter, rq *request, m *message) reply {
	rep := newReply(m)
	deny := func(reason string) reply {
		ext, _ := json.Marshal(map[string]any{"sfdc": map[string]string{"failureReason": reason}})
		rep.Ext = ext
		rep.Advice = &advice{Reconnect: "none"}
		rep.Error = ErrTextHandshakeDenied
		return rep
	}
	s.mu.Lock()
	busy := s.takeBusyLocked("handshake")
	s.mu.Unlock()
	if busy {
		return busyReply(m)
	}
	if rq.token == "" {
		return deny(ErrTextAuthRequired)
	}
	principal, ok := s.auth(rq)
	if !ok {
		return deny(ErrTextAuthInvalid)
	}
	if len(m.SupportedConnectionTypes) > 0 {
		found := false
		for _, t := range m.SupportedConnectionTypes {
			if t == connectionLongPolling {
				found = true
			}
		}
		if !found {
			rep.Error = invalidConnectionType(strings.Join(m.SupportedConnectionTypes, ","))
			rep.Advice = &advice{Reconnect: "none"}
			return rep
		}
	}
	if rq.browser == "" {
		rq.browser = randomID()
		http.SetCookie(w, &http.Cookie{Name: browserCookie, Value: rq.browser, Path: "/", HttpOnly: true})
	}
	now := s.opts.Now()
	c := &client{
		id:        randomID(),
		browser:   rq.browser,
		principal: principal,
		subs:      make(map[string]*subscription),
		lastSeen:  now,
	}
	s.mu.Lock()
	if reason := s.handshakeRefusalLocked(now); reason != "" {
		s.mu.Unlock()
		rep = deny(reason)
		rep.Ext = failureExt(reason, true)
		return rep
	}
	s.clients[c.id] = c
	s.maybeSweep(now)
	s.mu.Unlock()
	s.log.Debug("bayeux handshake", slog.String("client_id", c.id))

	rep.Ext = handshakeExt
	rep.MinimumVersion = "1.0"
	rep.ClientID = c.id
	rep.SupportedConnectionTypes = []string{connectionLongPolling}
	rep.Version = "1.0"
	rep.Successful = true
	return rep
}

// randomID returns a Salesforce-looking lower-case base-36 id of about 25 characters.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return new(big.Int).SetBytes(b[:]).Text(36)
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

// connectCheck validates a /meta/connect before it is held. ok means the connect is valid and
// connect must answer it.
func (s *Server) connectCheck(rq *request, m *message) (reply, bool) {
	c, fail, _ := s.lockedLookup(rq, m)
	defer s.mu.Unlock()
	if fail != nil {
		return *fail, false
	}
	if m.ConnectionType != connectionLongPolling {
		rep := newReply(m)
		rep.ClientID = c.id
		rep.Error = invalidConnectionType(m.ConnectionType)
		rep.Advice = &advice{Reconnect: "none", Interval: ms(0)}
		return rep, false
	}
	if c.poll != nil {
		s.release(c, wakeSuperseded)
	}
	if s.takeBusyLocked("connect") {
		// The stricter reading: the session does not survive; the client must back off
		// and handshake again.
		s.dropClient(c, wakeDropped)
		rep := busyReply(m)
		rep.ClientID = c.id
		rep.Advice = &advice{Reconnect: "none", Interval: ms(0)}
		return rep, false
	}
	return reply{}, true
}

// connectReply is a successful connect reply.
func (s *Server) connectReply(clientID string, m *message, multi bool) reply {
	rep := newReply(m)
	rep.ClientID = clientID
	rep.Successful = true
	rep.Advice = &advice{Interval: ms(s.opts.AdviceInterval), Timeout: ms(s.opts.AdviceTimeout), Reconnect: "retry"}
	if multi {
		rep.Advice.Interval = ms(s.opts.MultiSessionInterval)
		rep.Advice.MultipleClients = true
	}
	return rep
}

// connect answers a validated /meta/connect, holding it when the client is connected, has no
// events waiting and no other client of its browser holds a connect. status is 0 to write the
// reply, -1 when the client went away, or an HTTP status to answer with instead (408 for a
// connect superseded by a newer one from the same client, as CometD 3 answers it).
func (s *Server) connect(r *http.Request, rq *request, m *message, alone bool) (reply, [][]byte, int) {
	timeout := s.opts.AdviceTimeout
	if m.Advice != nil && m.Advice.Timeout != nil && *m.Advice.Timeout >= 0 {
		if t := time.Duration(*m.Advice.Timeout * float64(time.Millisecond)); t < timeout {
			timeout = t
		}
	}

	s.mu.Lock()
	c := s.clients[m.ClientID]
	if c == nil || c.gone {
		if s.consumeTombstoneLocked(m.ClientID) {
			rq.pre = append(rq.pre, disconnectMsg)
		}
		s.mu.Unlock()
		return unknownClientReply(m), nil, 0
	}
	if s.exhaustedLocked(s.opts.Now()) {
		s.dropClient(c, wakeDropped)
		s.mu.Unlock()
		return dailyLimitReply(m, c.id), [][]byte{disconnectMsg}, 0
	}
	hold := c.connected && len(c.queue) == 0 && timeout > 0 && !s.closed
	multi := false
	if hold && s.browsers[c.browser] > 0 {
		hold, multi = false, true
	}
	var p *poll
	if hold {
		p = &poll{done: make(chan struct{}), browser: c.browser, counted: true}
		c.poll = p
		s.browsers[c.browser]++
	}
	s.mu.Unlock()

	if hold {
		if s.onHold != nil {
			s.onHold()
		}
		timer := time.NewTimer(timeout)
		var reason wakeReason
		select {
		case <-p.done:
		case <-timer.C:
		case <-r.Context().Done():
		}
		timer.Stop()
		s.mu.Lock()
		if c.poll == p {
			c.poll = nil
		}
		s.uncount(p)
		reason = p.reason
		if r.Context().Err() != nil {
			c.lastSeen = s.opts.Now()
			s.mu.Unlock()
			return reply{}, nil, -1
		}
		s.mu.Unlock()
		switch reason {
		case wakeSuperseded:
			if alone {
				return reply{}, nil, http.StatusRequestTimeout
			}
		case wakeDropped:
			s.mu.Lock()
			if s.consumeTombstoneLocked(c.id) {
				rq.pre = append(rq.pre, disconnectMsg)
			}
			s.mu.Unlock()
			return unknownClientReply(m), nil, 0
		case wakeDisconnected:
			rep := newReply(m)
			rep.ClientID = c.id
			rep.Successful = true
			rep.Advice = &advice{Reconnect: "none", Interval: ms(0)}
			return rep, nil, 0
		}
		// The session is validated again before answering a held connect.
		if s.opts.Authenticate != nil {
			if principal, ok := s.opts.Authenticate(rq.token); !ok || principal != c.principal {
				s.mu.Lock()
				s.dropClient(c, wakeDropped)
				s.mu.Unlock()
				rep := newReply(m)
				rep.ClientID = c.id
				rep.Error = ErrTextAuthInvalid
				rep.Advice = &advice{Reconnect: "none", Interval: ms(0)}
				return rep, nil, 0
			}
		}
	}

	s.mu.Lock()
	if c.gone {
		if s.consumeTombstoneLocked(c.id) {
			rq.pre = append(rq.pre, disconnectMsg)
		}
		s.mu.Unlock()
		return unknownClientReply(m), nil, 0
	}
	now := s.opts.Now()
	if s.exhaustedLocked(now) {
		s.dropClient(c, wakeDropped)
		s.mu.Unlock()
		return dailyLimitReply(m, c.id), [][]byte{disconnectMsg}, 0
	}
	events := s.take(c, now)
	c.connected = true
	c.lastSeen = now
	s.mu.Unlock()
	return s.connectReply(c.id, m, multi), events, 0
}

func unknownClientReply(m *message) reply {
	rep := newReply(m)
	rep.Error = ErrTextUnknownClient
	rep.Advice = &advice{Reconnect: "handshake", Interval: ms(0)}
	return rep
}

// take removes up to MaxResponseBytes of queued events (at least one) from c's queue, and no
// more counted events than the delivery allocation has left; using it up answers every other
// held connect with the daily-limit error. Callers hold s.mu.
func (s *Server) take(c *client, now time.Time) [][]byte {
	if len(c.queue) == 0 {
		return nil
	}
	left := s.remainingLocked(now)
	size, n := 0, 0
	var counted int64
	for n < len(c.queue) {
		l := len(c.queue[n].msg) + 1
		if n > 0 && size+l > s.opts.MaxResponseBytes {
			break
		}
		if countsTowardDeliveries(c.queue[n].ch.name) {
			if left >= 0 && counted >= left {
				break
			}
			counted++
		}
		size += l
		n++
	}
	if n == 0 {
		return nil
	}
	s.countLocked(now, counted)
	if counted > 0 && left >= 0 && counted >= left {
		s.releaseAllLocked(wakeLimit)
	}
	out := make([][]byte, n)
	for i := range n {
		out[i] = c.queue[i].msg
	}
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	s.delivered += int64(n)
	return out
}

// channelCheck validates a subscription name before Authorize sees it.
func channelCheck(ch string) string {
	switch {
	case ch == "":
		return ErrTextChannelNotSpecified
	case !strings.HasPrefix(ch, "/"):
		return ErrTextLeadingSlash
	case strings.HasPrefix(ch, "/meta/") || ch == "/meta" || strings.HasPrefix(ch, "/service/"):
		return ErrTextRestrictedChannel
	}
	return ""
}

func (s *Server) subscribe(rq *request, m *message) reply {
	c, fail, now := s.lockedLookup(rq, m)
	s.mu.Unlock()
	if fail != nil {
		fail.Subscription = m.Subscription
		return *fail
	}
	rep, subs, ok := subscriptionReply(c, m)
	if !ok {
		return rep
	}
	s.mu.Lock()
	busy := s.takeBusyLocked("subscribe")
	s.mu.Unlock()
	if busy {
		rep.Error = ErrTextTooBusy
		rep.Ext = failureExt(ErrTextTooBusy, false)
		return rep
	}
	rx := m.replay()
	for _, ch := range subs {
		if text := channelCheck(ch); text != "" {
			rep.Error = text
			return rep
		}
		base, filter, valid := parseSubscription(ch)
		if !valid {
			rep.Error = ChannelNotFoundError(ch).Error()
			return rep
		}
		if s.opts.Authorize != nil {
			if err := s.opts.Authorize(c.principal, ch); err != nil {
				rep.Error = err.Error()
				if rep.Error == "" {
					rep.Error = ErrTextNotAllowed
				}
				return rep
			}
		}
		from, text := int64(-1), "-1"
		if rx.present {
			raw, found := rx.values[ch]
			if !found {
				if base, _, cut := strings.Cut(ch, "?"); cut {
					raw, found = rx.values[base]
				}
			}
			if !found {
				shown := make(map[string]string, len(rx.values))
				for k, v := range rx.values {
					shown[k] = string(v)
				}
				rep.Error = replayMapMismatch(ch, shown)
				return rep
			}
			if from, text, valid = parseReplayValue(raw); !valid {
				rep.Error = invalidReplayID(text)
				return rep
			}
		}
		s.mu.Lock()
		if c.gone {
			s.mu.Unlock()
			return unknownClientReply(m)
		}
		errText := s.subscribeLocked(c, ch, base, filter, from, text, now)
		s.mu.Unlock()
		if errText != "" {
			rep.Error = errText
			return rep
		}
	}
	rep.Successful = true
	return rep
}

// subscribeLocked subscribes c to key (channel ch narrowed by filter) and queues the replayed
// events. Callers hold s.mu.
func (s *Server) subscribeLocked(c *client, key, ch string, filter []fieldFilter, from int64, text string, now time.Time) string {
	st := s.channel(ch)
	st.pruneBefore(now.Add(-st.retention))
	s.cleanFIFO()
	var replay []retained
	switch {
	case from == -1:
	case from == -2:
		replay = st.live()
	case from > 0 && from <= s.lastID && from > st.horizon && from > s.globalHorizon:
		replay = st.after(from)
	default:
		return invalidReplayID(text)
	}
	if old, again := c.subs[key]; again {
		s.removeSub(c, old)
	}
	sub := &subscription{key: key, st: st, filter: filter}
	c.subs[key] = sub
	st.subs[c] = append(st.subs[c], sub)
	for _, r := range replay {
		if filter != nil && !sub.matches(&sobjectFields{data: r.ev.data}) {
			continue
		}
		c.queue = append(c.queue, delivery{ch: st, id: r.ev.id, msg: r.replayMsg()})
	}
	if len(c.queue) > s.opts.MaxQueue {
		s.overflow(c)
		return ErrTextUnknownClient
	}
	if len(c.queue) > 0 && c.poll != nil {
		s.release(c, wakeEvent)
	}
	return ""
}

// removeSub ends one subscription of c. The channel's undelivered events are dropped from c's
// queue once c has no other subscription to that channel. Callers hold s.mu.
func (s *Server) removeSub(c *client, sub *subscription) {
	delete(c.subs, sub.key)
	subs := sub.st.subs[c]
	for i, x := range subs {
		if x == sub {
			subs = append(subs[:i], subs[i+1:]...)
			break
		}
	}
	if len(subs) == 0 {
		delete(sub.st.subs, c)
		c.removeQueued(sub.st)
		return
	}
	sub.st.subs[c] = subs
}

func (c *client) removeQueued(st *channelState) {
	q := c.queue[:0]
	for _, d := range c.queue {
		if d.ch != st {
			q = append(q, d)
		}
	}
	clear(c.queue[len(q):])
	c.queue = q
}

// subscriptionReply starts client c's reply to a subscribe or unsubscribe and returns the
// message's subscriptions; ok is false, with the error in the reply, when it names none.
func subscriptionReply(c *client, m *message) (rep reply, subs []string, ok bool) {
	rep = newReply(m)
	rep.ClientID = c.id
	rep.Subscription = m.Subscription
	subs, ok = m.subscriptions()
	if !ok || len(subs) == 0 {
		rep.Error = ErrTextChannelNotSpecified
		return rep, nil, false
	}
	return rep, subs, true
}

func (s *Server) unsubscribe(rq *request, m *message) reply {
	c, fail, _ := s.lockedLookup(rq, m)
	defer s.mu.Unlock()
	if fail != nil {
		fail.Subscription = m.Subscription
		return *fail
	}
	rep, subs, ok := subscriptionReply(c, m)
	if !ok {
		return rep
	}
	for _, key := range subs {
		if sub, ok := c.subs[key]; ok {
			s.removeSub(c, sub)
		}
	}
	rep.Successful = true
	return rep
}

func (s *Server) disconnect(rq *request, m *message) reply {
	c, fail, _ := s.lockedLookup(rq, m)
	defer s.mu.Unlock()
	if fail != nil {
		return *fail
	}
	s.dropClient(c, wakeDisconnected)
	rep := newReply(m)
	rep.ClientID = c.id
	rep.Successful = true
	return rep
}

// channel returns the state of ch, creating it. Callers hold s.mu.
func (s *Server) channel(ch string) *channelState {
	st := s.channels[ch]
	if st == nil {
		ret := time.Duration(0)
		if s.opts.Retention != nil {
			ret = s.opts.Retention(ch)
		}
		if ret <= 0 {
			ret = defaultRetention(ch)
		}
		st = &channelState{name: ch, retention: ret, subs: make(map[*client][]*subscription), horizon: s.globalHorizon}
		s.channels[ch] = st
	}
	return st
}

// dropClient forgets c and answers its held connect. Callers hold s.mu.
func (s *Server) dropClient(c *client, r wakeReason) {
	if c.gone {
		return
	}
	c.gone = true
	delete(s.clients, c.id)
	for _, sub := range c.subs {
		delete(sub.st.subs, c)
	}
	c.queue = nil
	if c.poll != nil {
		s.release(c, r)
	}
}

func (s *Server) overflow(c *client) {
	s.dropped++
	s.log.Warn("bayeux client dropped: event queue overflow", slog.String("client_id", c.id), slog.Int("max_queue", s.opts.MaxQueue))
	s.dropClient(c, wakeDropped)
}

// maybeSweep expires idle clients and applies retention at most every ClientTimeout/4 of
// (injected) time, so memory stays bounded without a background goroutine. Callers hold s.mu.
func (s *Server) maybeSweep(now time.Time) {
	if now.Sub(s.lastSweep) < s.opts.ClientTimeout/4 {
		return
	}
	s.lastSweep = now
	s.expireIdleLocked(now)
	for _, st := range s.channels {
		st.pruneBefore(now.Add(-st.retention))
	}
	s.cleanFIFO()
}

// expireIdleLocked forgets clients with no held connect that sent nothing for ClientTimeout.
// Callers hold s.mu.
func (s *Server) expireIdleLocked(now time.Time) {
	for _, c := range s.clients {
		if c.poll == nil && now.Sub(c.lastSeen) > s.opts.ClientTimeout {
			s.dropClient(c, wakeDropped)
		}
	}
}

// Publish stores one event on the given channels, assigns it the next replay id (one id shared
// by those channels, strictly increasing across the server), and delivers it to current
// subscribers. build receives the replay id and returns the message's "data" member; it runs
// while Publish is serialised, so it must not call back into the Server. Data that is not
// valid JSON is replaced by null (and logged) so that no response is ever corrupted.
func (s *Server) Publish(channels []string, build func(replayID int64) json.RawMessage) int64 {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	id := s.lastID + 1
	s.mu.Unlock()

	data := build(id)
	if !json.Valid(data) {
		s.log.Warn("bayeux publish: event data is not valid JSON, sending null", slog.Int64("replay_id", id))
		data = json.RawMessage("null")
	}
	type out struct {
		name string
		msg  []byte
	}
	outs := make([]out, 0, len(channels))
	for _, ch := range channels {
		dup := false
		for _, o := range outs {
			if o.name == ch {
				dup = true
			}
		}
		if dup {
			continue
		}
		name, _ := json.Marshal(ch)
		msg := make([]byte, 0, len(name)+len(data)+20)
		msg = append(msg, `{"channel":`...)
		msg = append(msg, name...)
		msg = append(msg, `,"data":`...)
		msg = append(msg, data...)
		msg = append(msg, '}')
		outs = append(outs, out{ch, msg})
	}

	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastID = id
	s.published++
	ev := &event{id: id, published: now, data: data}
	for _, o := range outs {
		st := s.channel(o.name)
		st.pruneBefore(now.Add(-st.retention))
		st.log = append(st.log, retained{ev: ev, msg: o.msg})
		ev.refs++
		ev.chans = append(ev.chans, st)
		fields := sobjectFields{data: data}
		for c, subs := range st.subs {
			if !anyMatches(subs, &fields) {
				continue
			}
			c.queue = append(c.queue, delivery{ch: st, id: id, msg: o.msg})
			if len(c.queue) > s.opts.MaxQueue {
				s.overflow(c)
				continue
			}
			if c.poll != nil {
				s.release(c, wakeEvent)
			}
		}
	}
	if ev.refs > 0 {
		s.fifo = append(s.fifo, ev)
	}
	for len(s.fifo)-s.fifoStart > s.opts.MaxEvents {
		s.popFIFO()
	}
	s.cleanFIFO()
	s.maybeSweep(now)
	return id
}

// popFIFO forgets the oldest retained event on every channel. Every event with a lower id is
// already forgotten, so every id up to it becomes invalid. Callers hold s.mu.
func (s *Server) popFIFO() {
	ev := s.fifo[s.fifoStart]
	s.fifo[s.fifoStart] = nil
	s.fifoStart++
	for _, st := range ev.chans {
		if st.start < len(st.log) && st.log[st.start].ev == ev {
			st.dropHead()
		}
	}
	ev.chans = nil
	if ev.id > s.globalHorizon {
		s.globalHorizon = ev.id
	}
	if s.fifoStart >= 64 && s.fifoStart*2 >= len(s.fifo) {
		n := copy(s.fifo, s.fifo[s.fifoStart:])
		clear(s.fifo[n:])
		s.fifo = s.fifo[:n]
		s.fifoStart = 0
	}
}

// cleanFIFO pops events no channel retains any more. Callers hold s.mu.
func (s *Server) cleanFIFO() {
	for s.fifoStart < len(s.fifo) && s.fifo[s.fifoStart].refs == 0 {
		s.popFIFO()
	}
}

// DropAllClients disconnects every known clientId from the server side: their next message
// gets 403::Unknown client (advice reconnect "handshake", interval 0), and held connects
// answer that at once. The first /meta/connect of each dropped client (the held one, or the
// next) also carries a server-sent {"channel":"/meta/disconnect","successful":true} before
// its reply.
func (s *Server) DropAllClients() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		s.tombstoneLocked(c.id)
		s.dropClient(c, wakeDropped)
	}
}

// RevalidateSessions answers every held connect at once after checking its token again with
// Authenticate: a revoked token gets 401::Authentication invalid now rather than at the next
// advice timeout.
func (s *Server) RevalidateSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		if c.poll != nil {
			s.release(c, wakeRevalidate)
		}
	}
}

// ExpireEvents forgets every retained event: every replay id issued so far becomes invalid.
// Events already queued for connected subscribers are still delivered.
func (s *Server) ExpireEvents() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.fifoStart < len(s.fifo) {
		s.popFIFO()
	}
	s.globalHorizon = s.lastID
}

// ExpireBefore forgets the events published before t (by the Now clock); their replay ids
// become invalid.
func (s *Server) ExpireBefore(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.fifoStart < len(s.fifo) && s.fifo[s.fifoStart].published.Before(t) {
		s.popFIFO()
	}
	for _, st := range s.channels {
		st.pruneBefore(t)
	}
	s.cleanFIFO()
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
