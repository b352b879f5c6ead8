package bayeux

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/omniroute/omniroute/salesforce/internal/retry"
)

// session is the state of one Run. Only the goroutine in Run touches it.
type session struct {
	c        *Client
	h        Handler
	channels []string // the subscriptions, in the caller's order

	endpoint string
	clientID string // "" means: handshake next
	replayOn bool   // the server confirmed the replay extension
	pending  []string
	seq      uint64

	interval time.Duration // advised wait between connects
	timeout  time.Duration // advised long-poll hold

	warnedMultiple bool // the multiple-clients advice was logged

	// refused holds refused replay ids not yet reported: ReplayRefused is delivered once the
	// channel's resubscription from -1 or -2 is live, so the caller's reconciliation cannot
	// miss an event published before it.
	refused map[string]*ReplayError

	// failures counts failed operations in a row; retry and limit are the two schedules. Ending
	// a session (re-handshake) counts as a failure, so a server that accepts each handshake and
	// drops the session at once is retried with a growing wait, never in a hot loop; so does
	// an empty connect that came back early (see connect). Only a session that proved healthy
	// resets them: a connect that delivered an event, or one the server held.
	failures int
	retry    *backoff.ExponentialBackOff
	limit    *backoff.ExponentialBackOff
	connects int // successful connects since the handshake
}

func newSession(c *Client, h Handler, subs []Subscription) *session {
	s := &session{
		c: c, h: h, timeout: defaultAdviceTimeout, refused: map[string]*ReplayError{},
		retry: retry.Backoff(time.Second, 2*time.Minute), limit: retry.AtLimit(),
	}
	for _, sub := range subs {
		s.channels = append(s.channels, sub.Channel)
	}
	return s
}

// loop runs until ctx ends or a step fails for good. Steps return nil after handling a
// recoverable failure (having backed off), and an error only to end Run: ctx's, the
// handler's, or a fatal *Error.
func (s *session) loop(ctx context.Context) error {
	for ctx.Err() == nil {
		var err error
		switch {
		case s.clientID == "":
			err = s.handshake(ctx)
		case len(s.pending) > 0:
			err = s.subscribe(ctx)
		default:
			err = s.connect(ctx)
		}
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *session) nextID() msgID {
	s.seq++
	return msgID(strconv.FormatUint(s.seq, 10))
}

// penalty counts a failure and waits before the next attempt. With immediateFirst, the first
// failure in a row retries at once (an advised re-handshake); later ones back off.
func (s *session) penalty(ctx context.Context, immediateFirst bool) error {
	s.c.live.Store(false)
	s.failures++
	if immediateFirst && s.failures == 1 {
		return ctx.Err()
	}
	d := s.retry.NextBackOff()
	s.c.log.Debug("backing off", "attempt", s.failures, "wait", d)
	return sleepCtx(ctx, d)
}

// limited counts a failure at a server limit and waits on the limit schedule, at least as
// long as the server's Retry-After.
func (s *session) limited(ctx context.Context, retryAfter time.Duration) error {
	s.c.live.Store(false)
	s.failures++
	d := max(s.limit.NextBackOff(), retryAfter)
	s.c.log.Warn("at a server limit, backing off", "attempt", s.failures, "wait", d)
	return sleepCtx(ctx, d)
}

// healthy resets the schedules: the session proved it works.
func (s *session) healthy() {
	s.failures = 0
	s.retry.Reset()
	s.limit.Reset()
}

// rehandshake drops the session: the next step is a handshake, and every channel is
// resubscribed from its resume point.
func (s *session) rehandshake(reason string) {
	s.c.log.Info("handshaking again", "reason", reason)
	s.c.obs.Rehandshake(reason)
	s.c.live.Store(false)
	s.clientID = ""
	s.pending = nil
}

// authFailed handles a refused token: it tells the caller (Unauthorized), drops the session,
// if there is one, and retries at once the first time in a row.
func (s *session) authFailed(ctx context.Context, op string, err error) error {
	s.c.log.Warn("request unauthorized", "op", op, "err", err)
	if s.c.opts.Unauthorized != nil {
		s.c.opts.Unauthorized()
	}
	if s.clientID != "" {
		s.rehandshake("auth")
	}
	return s.penalty(ctx, true)
}

// refusal turns an unsuccessful meta reply into its *Error, reports it to the Observer and
// classifies it.
func (s *session) refusal(op, channel string, r *message, d time.Duration) (*Error, class) {
	e := newError(op, channel, r.Error, failureReason(r))
	s.c.obs.Request(op, errCode(e), d)
	return e, classify(e)
}

func codeOf(err error) string {
	if he, ok := errors.AsType[*HTTPError](err); ok {
		return strconv.Itoa(he.Status)
	}
	return "transport"
}

func errCode(e *Error) string {
	if e.Code == "" {
		return "error"
	}
	return e.Code
}

// requestFailed handles a request that got no usable Bayeux answer: HTTP 401 means the token
// is bad, 429 and 503 a server limit; anything else backs off.
func (s *session) requestFailed(ctx context.Context, op string, err error) error {
	if errors.Is(err, errConfig) {
		return err
	}
	he, _ := errors.AsType[*HTTPError](err)
	switch {
	case he != nil && he.Status == http.StatusUnauthorized:
		return s.authFailed(ctx, op, err)
	case he != nil && (he.Status == http.StatusTooManyRequests || he.Status == http.StatusServiceUnavailable):
		return s.limited(ctx, he.RetryAfter)
	}
	s.c.log.Warn("request failed", "op", op, "err", err)
	return s.penalty(ctx, false)
}

// errConfig marks a request that cannot be built (a bad endpoint URL).
var errConfig = errors.New("bayeux client configuration")

// checkEndpoint refuses an endpoint no request can reach: retrying it
// would never succeed.
func checkEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	return fmt.Errorf("%w: endpoint %q: want an absolute http or https URL", errConfig, ep)
}

// bodyBuffers holds the buffers post reads answers into; one larger than maxPooledBody is
// left to the garbage collector.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 1 << 20

// post sends msgs as one JSON array and decodes the answer. The request
// gets its own deadline.
func (s *session) post(ctx context.Context, op string, msgs []message, timeout time.Duration) ([]message, time.Duration, error) {
	body, err := json.Marshal(msgs)
	if err != nil {
		return nil, 0, fmt.Errorf("encode %s request: %w", op, err)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: build %s request: %w", errConfig, op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if s.c.opts.Authorize != nil {
		if err := s.c.opts.Authorize(rctx, req); err != nil {
			return nil, 0, fmt.Errorf("authorize %s request: %w", op, err)
		}
	}
	start := time.Now()
	resp, err := s.c.http.Do(req)
	if err != nil {
		return nil, time.Since(start), fmt.Errorf("post %s: %w", op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	// The body is read into a pooled buffer: decodeResponse copies what it keeps, and a
	// long poll under load reads a large answer several times a second.
	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodyBuffers.Put(buf)
		}
	}()
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxResponseBytes+1))
	b := buf.Bytes()
	d := time.Since(start)
	if err != nil {
		return nil, d, fmt.Errorf("read %s response: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, d, &HTTPError{Op: op, Status: resp.StatusCode, RetryAfter: retry.After(resp.Header.Get("Retry-After"), time.Now())}
	}
	if len(b) > maxResponseBytes {
		return nil, d, fmt.Errorf("read %s response: %w: larger than %d bytes", op, errMalformed, maxResponseBytes)
	}
	out, err := decodeResponse(b)
	if err != nil {
		return nil, d, fmt.Errorf("decode %s response: %w", op, err)
	}
	return out, d, nil
}

// reply finds the meta reply to the message with id on channel. A reply
// without an id is matched by channel (and subscription, when given).
func reply(msgs []message, id msgID, channel, subscription string) *message {
	for i := range msgs {
		if msgs[i].Channel == channel && msgs[i].ID == id && msgs[i].bad == nil {
			return &msgs[i]
		}
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Channel != channel || m.ID != "" || m.bad != nil {
			continue
		}
		if subscription == "" || m.subscriptionString() == subscription {
			return m
		}
	}
	return nil
}

func failureReason(m *message) string {
	ext := decodeExt(m.Ext)
	if ext.Sfdc != nil {
		return ext.Sfdc.FailureReason
	}
	return ""
}

func (s *session) handshake(ctx context.Context) error {
	// The endpoint may come from a token request: it gets a deadline too.
	ectx, cancel := context.WithTimeout(ctx, s.c.reqTimeout)
	ep, err := s.c.opts.Endpoint(ectx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.c.log.Warn("endpoint unavailable", "err", err)
		return s.penalty(ctx, false)
	}
	if err := checkEndpoint(ep); err != nil {
		return err
	}
	s.endpoint = ep
	m := message{
		Channel:                  chHandshake,
		ID:                       s.nextID(),
		Version:                  "1.0",
		MinimumVersion:           "1.0",
		SupportedConnectionTypes: []string{"long-polling"},
	}
	if s.c.opts.Replay {
		m.Ext = json.RawMessage(`{"replay":true}`)
	}
	resp, d, err := s.post(ctx, "handshake", []message{m}, s.c.reqTimeout)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.c.obs.Request("handshake", codeOf(err), d)
		return s.requestFailed(ctx, "handshake", err)
	}
	r := reply(resp, m.ID, chHandshake, "")
	if r == nil || (r.Successful && r.ClientID == "") {
		s.c.obs.Request("handshake", "transport", d)
		s.c.log.Warn("request failed", "op", "handshake", "err", fmt.Errorf("%w: no handshake reply with a client id", errMalformed))
		return s.penalty(ctx, false)
	}
	if !r.Successful {
		e, class := s.refusal("handshake", "", r, d)
		switch class {
		case classAuth:
			return s.authFailed(ctx, "handshake", e)
		case classLimit:
			s.c.log.Warn("handshake refused", "err", e)
			return s.limited(ctx, 0)
		case classUnknownClient:
			s.c.log.Warn("handshake refused", "err", e)
			return s.penalty(ctx, false)
		default:
			return e
		}
	}
	s.c.obs.Request("handshake", "ok", d)
	s.clientID = r.ClientID
	s.connects = 0
	s.applyAdvice(r.Advice)
	ext := decodeExt(r.Ext)
	s.replayOn = s.c.opts.Replay && ext.Replay
	if s.c.opts.Replay && !ext.Replay {
		s.c.log.Warn("server did not confirm the replay extension")
	}
	s.pending = slices.Clone(s.channels)
	s.c.log.Info("handshake done", "replay", s.replayOn)
	return nil
}

func (s *session) applyAdvice(a *advice) {
	if a == nil {
		return
	}
	if a.Interval != nil {
		s.interval = adviceDuration(*a.Interval)
	}
	if a.Timeout != nil {
		s.timeout = adviceDuration(*a.Timeout)
	}
	if a.MultipleClients && !s.warnedMultiple {
		s.warnedMultiple = true
		s.c.log.Warn("server sees several clients sharing one browser session")
	}
}

// adviceDuration turns advised milliseconds into a duration within
// [0, maxAdvice].
func adviceDuration(ms float64) time.Duration {
	if math.IsNaN(ms) || ms <= 0 {
		return 0
	}
	if ms >= float64(maxAdvice/time.Millisecond) {
		return maxAdvice
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// subscribeBatch returns the first run of pending channels whose subscribe
// messages fit in one request.
func (s *session) subscribeBatch() ([]message, map[msgID]string, map[string]int64) {
	var (
		msgs  []message
		ids   = map[msgID]string{}
		from  = map[string]int64{}
		total = 2
	)
	for _, ch := range s.pending {
		sub, _ := json.Marshal(ch) // a string always encodes
		m := message{Channel: chSubscribe, ClientID: s.clientID, Subscription: sub, ID: s.nextID()}
		id := s.c.resumeOf(ch)
		if s.replayOn {
			// EMP-Connector keys a filtered subscription's replay id by the
			// bare channel; the map names both, so either lookup finds it.
			replay := map[string]int64{ch: id}
			if base := channelOf(ch); base != ch {
				replay[base] = id
			}
			ext, _ := json.Marshal(map[string]map[string]int64{"replay": replay}) // always encodes
			m.Ext = ext
		}
		b, _ := json.Marshal(m) // always encodes
		if len(msgs) > 0 && total+len(b)+1 > maxBatchBytes {
			s.seq-- // the id was not used
			break
		}
		total += len(b) + 1
		msgs = append(msgs, m)
		ids[m.ID] = ch
		from[ch] = id
	}
	return msgs, ids, from
}

func (s *session) subscribe(ctx context.Context) error {
	msgs, ids, from := s.subscribeBatch()
	resp, d, err := s.post(ctx, "subscribe", msgs, s.c.reqTimeout)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for range msgs {
			s.c.obs.Request("subscribe", codeOf(err), d)
		}
		return s.requestFailed(ctx, "subscribe", err)
	}
	if _, err := s.deliverAll(ctx, resp); err != nil {
		return err
	}
	if s.clientID == "" { // the server disconnected us in this response
		return s.penalty(ctx, true)
	}
	done := map[string]bool{}
	var limit, malformed bool
	for _, m := range msgs {
		ch := ids[m.ID]
		r := reply(resp, m.ID, chSubscribe, ch)
		if r == nil {
			s.c.obs.Request("subscribe", "transport", d)
			malformed = true
			continue
		}
		if r.Successful {
			s.c.obs.Request("subscribe", "ok", d)
			s.c.log.Info("subscribed", "channel", ch, "replay_id", from[ch])
			done[ch] = true
			if err := s.subscribed(ctx, ch, from[ch]); err != nil {
				return err
			}
			continue
		}
		e, class := s.refusal("subscribe", ch, r, d)
		switch class {
		case classUnknownClient:
			s.rehandshake("unknown_client")
			return s.penalty(ctx, true)
		case classAuth:
			return s.authFailed(ctx, "subscribe", e)
		case classLimit:
			s.c.log.Warn("subscribe refused", "channel", ch, "err", e)
			limit = true
		case classInvalidReplay:
			if err := s.refuse(ch, from[ch], e); err != nil {
				return err
			}
		default:
			return e
		}
	}
	pending := s.pending[:0]
	for _, ch := range s.pending {
		if !done[ch] {
			pending = append(pending, ch)
		}
	}
	s.pending = pending
	switch {
	case malformed:
		s.c.log.Warn("request failed", "op", "subscribe", "err", fmt.Errorf("%w: a subscribe reply is missing", errMalformed))
		return s.penalty(ctx, false)
	case limit:
		return s.limited(ctx, 0)
	case len(s.pending) == 0:
		s.c.live.Store(true)
	}
	return nil
}

// refuse records a refused replay id and moves the channel's resume point to the policy's -1
// or -2, from where it is resubscribed; ReplayRefused reaches the handler once that
// subscription is live (see subscribed).
func (s *session) refuse(ch string, refused int64, e *Error) error {
	if refused < 0 || !s.replayOn {
		// Refusing -1 or -2 is not a retention gap; resubscribing would loop.
		return e
	}
	re := &ReplayError{Channel: ch, ReplayID: refused, Message: e.Message}
	s.c.log.Warn("replay id refused", "channel", ch, "replay_id", refused, "err", re)
	s.refused[ch] = re
	s.c.setResume(ch, s.c.opts.OnInvalidReplay.replayID())
	return nil
}

// subscribed tells the handler, once ch's subscription from replay id "from" is live, that
// events may have been missed: ReplayRefused for a refused replay id, or NotReplayed for a
// subscription where the server replays nothing published before (from -1, or any id when
// the server does not replay).
func (s *session) subscribed(ctx context.Context, ch string, from int64) error {
	if re := s.refused[ch]; re != nil {
		if err := s.h(ctx, Delivery{Kind: ReplayRefused, Channel: ch, ReplayID: re.ReplayID, Err: re}); err != nil {
			return fmt.Errorf("handle refused replay id on %s: %w", ch, err)
		}
		delete(s.refused, ch)
		return nil
	}
	if from != ReplayLatest && s.replayOn {
		return nil
	}
	s.c.log.Info("subscribed without replay", "channel", ch, "replay_id", from)
	if err := s.h(ctx, Delivery{Kind: NotReplayed, Channel: ch, ReplayID: from}); err != nil {
		return fmt.Errorf("handle subscription of %s without replay: %w", ch, err)
	}
	return nil
}

func (s *session) connect(ctx context.Context) error {
	m := message{Channel: chConnect, ClientID: s.clientID, ConnectionType: "long-polling", ID: s.nextID()}
	resp, d, err := s.post(ctx, "connect", []message{m}, s.timeout+s.c.netDelay)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.c.obs.Request("connect", codeOf(err), d)
		if he, ok := errors.AsType[*HTTPError](err); !ok || he.Status != http.StatusUnauthorized {
			// The server may have taken events off the session's queue that never arrived:
			// only a new session, subscribed from the resume points, gets them again.
			s.rehandshake("transport")
		}
		return s.requestFailed(ctx, "connect", err)
	}
	delivered, err := s.deliverAll(ctx, resp)
	if err != nil {
		return err
	}
	r := reply(resp, m.ID, chConnect, "")
	if s.clientID == "" { // the server disconnected us in this response
		if r != nil && !r.Successful {
			// A limit (the daily delivery allocation) comes with a disconnect: wait it out.
			if e, class := s.refusal("connect", "", r, d); class == classLimit {
				s.c.log.Warn("connect refused", "err", e)
				return s.limited(ctx, 0)
			}
		}
		return s.penalty(ctx, true)
	}
	if r == nil {
		s.c.obs.Request("connect", "transport", d)
		s.c.log.Warn("request failed", "op", "connect", "err", fmt.Errorf("%w: no connect reply", errMalformed))
		s.rehandshake("transport")
		return s.penalty(ctx, false)
	}
	s.applyAdvice(r.Advice)
	reconnect := ""
	if r.Advice != nil {
		reconnect = r.Advice.Reconnect
	}
	if !r.Successful {
		e, class := s.refusal("connect", "", r, d)
		switch class {
		case classUnknownClient:
			s.rehandshake("unknown_client")
			return s.penalty(ctx, true)
		case classAuth:
			return s.authFailed(ctx, "connect", e)
		case classLimit:
			s.c.log.Warn("connect refused", "err", e)
			if reconnect != "retry" {
				s.rehandshake("limit")
			}
			return s.limited(ctx, 0)
		}
		switch reconnect {
		case "none":
			return e
		case "retry":
			s.c.log.Warn("connect refused", "err", e)
			return s.penalty(ctx, false)
		default:
			s.c.log.Warn("connect refused", "err", e)
			s.rehandshake("advice")
			return s.penalty(ctx, false)
		}
	}
	s.c.obs.Request("connect", "ok", d)
	switch reconnect {
	case "none":
		return &Error{Op: "connect", Message: "server advised reconnect none"}
	case "handshake":
		s.rehandshake("advice")
		return s.penalty(ctx, true)
	}
	// Salesforce answers a session's first connect at once and holds the
	// later ones until events come or the advised timeout passes.
	first := s.connects == 0
	s.connects++
	held := s.timeout > 0 && d >= s.timeout/2
	switch {
	case delivered > 0 || (!first && held):
		s.healthy()
	case !first && s.interval == 0:
		// Back empty long before the advised hold: a server or proxy that
		// does not hold long polls must not be polled in a hot loop.
		s.c.log.Debug("long poll returned early", "after", d)
		return s.penalty(ctx, false)
	}
	s.c.live.Store(true)
	return sleepCtx(ctx, s.interval)
}

// deliverAll hands every event in msgs to the handler, in order, and
// notices a /meta/disconnect the server sent on its own. It returns how many
// events the handler accepted.
func (s *session) deliverAll(ctx context.Context, msgs []message) (int, error) {
	n := 0
	for i := range msgs {
		m := &msgs[i]
		if m.isMeta() {
			if m.Channel == chDisconnect && s.clientID != "" {
				// API 64.0+: the server may disconnect the client itself.
				// The client sends /meta/disconnect only in its own POST at
				// shutdown, so one in a subscribe or connect response is the
				// server's.
				s.rehandshake("advice")
			}
			continue
		}
		if m.Data == nil && m.bad == nil {
			continue // e.g. a publish acknowledgement: not an event
		}
		ch := s.subscriptionFor(m.Channel)
		if ch == "" {
			s.c.log.Warn("event on a channel not subscribed", "channel", m.Channel)
			continue
		}
		d := eventDelivery(ch, m)
		if err := s.h(ctx, d); err != nil {
			return n, fmt.Errorf("handle event on %s: %w", ch, err)
		}
		n++
		if d.ReplayID > 0 {
			s.c.setResume(ch, d.ReplayID)
		}
		s.c.obs.Delivered(ch)
	}
	return n, nil
}

// eventDelivery makes the Delivery of an event message: a BadEvent when it did not decode or
// its replay id is not an integer.
func eventDelivery(ch string, m *message) Delivery {
	if m.bad != nil {
		var d EventData
		_ = json.Unmarshal(m.raw, &d) // the replay id, if it can be read
		id, _ := d.replayID()
		return Delivery{Kind: BadEvent, Channel: ch, ReplayID: id, Raw: m.raw, Err: m.bad}
	}
	id, err := m.Data.replayID()
	if err != nil {
		raw, _ := json.Marshal(m.Data) // it was decoded, so it encodes
		return Delivery{Kind: BadEvent, Channel: ch, Raw: raw, Err: err}
	}
	return Delivery{Kind: Event, Channel: ch, ReplayID: id, Data: m.Data}
}

// subscriptionFor maps a delivery's channel to the subscription it belongs
// to: the same name, or a filtered subscription "/topic/X?F=v" of it.
func (s *session) subscriptionFor(channel string) string {
	for _, ch := range s.channels {
		if ch == channel {
			return ch
		}
	}
	for _, ch := range s.channels {
		if channelOf(ch) == channel {
			return ch
		}
	}
	return ""
}

// disconnect ends the server session, if there is one, within ctx (Shutdown's).
func (s *session) disconnect(ctx context.Context) {
	if s.clientID == "" {
		return
	}
	m := message{Channel: chDisconnect, ClientID: s.clientID, ID: s.nextID()}
	s.clientID = ""
	resp, d, err := s.post(ctx, "disconnect", []message{m}, s.c.reqTimeout)
	if err != nil {
		s.c.obs.Request("disconnect", codeOf(err), d)
		s.c.log.Debug("disconnect failed", "err", err)
		return
	}
	if r := reply(resp, m.ID, chDisconnect, ""); r != nil && !r.Successful {
		e, _ := s.refusal("disconnect", "", r, d)
		s.c.log.Debug("disconnect refused", "err", e)
		return
	}
	s.c.obs.Request("disconnect", "ok", d)
	s.c.log.Info("disconnected")
}

// channelOf returns a subscription's channel without its filter
// ("/topic/X?F=v" -> "/topic/X").
func channelOf(sub string) string {
	ch, _, _ := strings.Cut(sub, "?")
	return ch
}
