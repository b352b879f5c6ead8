package bayeux

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeServer is a small Bayeux server over real HTTP on loopback that
// behaves like Salesforce by default and lets a test replace the next reply
// on any meta channel, or the next whole HTTP answer, to drive error paths.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	nclients  int
	clients   map[string]bool
	subs      map[string]map[string]bool // client id -> channels
	queue     []map[string]any           // events for the next connect
	reqs      []fakeRequest
	overrides map[string][]func(msg map[string]any) map[string]any
	every     map[string]func(msg map[string]any) []map[string]any // every reply on a channel; nil = the default
	raw       []func(w http.ResponseWriter, r *http.Request, msgs []map[string]any)
	extra     map[string][]map[string]any // messages appended to the next reply of a meta channel
	advice    map[string]any              // advice on handshake and connect replies
	hold      time.Duration               // how long a connect waits for events
	inflight  map[string]int              // client id -> connects being held
	maxFlight int                         // the most connects one client had in flight
	noReplay  bool                        // do not confirm the replay extension

	notify chan struct{}
	seen   chan fakeRequest // every request, for tests that wait on one
}

type fakeRequest struct {
	msgs    []map[string]any
	auth    string
	cookies []*http.Cookie
	ctype   string
	size    int
}

func (r fakeRequest) channels() []string {
	out := make([]string, 0, len(r.msgs))
	for _, m := range r.msgs {
		ch, _ := m["channel"].(string)
		out = append(out, ch)
	}
	return out
}

func newFake(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{
		t:         t,
		clients:   map[string]bool{},
		subs:      map[string]map[string]bool{},
		inflight:  map[string]int{},
		overrides: map[string][]func(map[string]any) map[string]any{},
		every:     map[string]func(map[string]any) []map[string]any{},
		extra:     map[string][]map[string]any{},
		advice:    map[string]any{"reconnect": "retry", "interval": 0, "timeout": 500},
		hold:      2 * time.Second,
		notify:    make(chan struct{}, 1),
		seen:      make(chan fakeRequest, 4096),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) url() string { return f.srv.URL + "/cometd/62.0" }

// on replaces the next reply on channel (a meta channel) with fn's result.
func (f *fakeServer) on(channel string, fn func(msg map[string]any) map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.overrides[channel] = append(f.overrides[channel], fn)
}

// onEvery answers every message on channel with fn's replies, unless a
// one-shot override (on) comes first; fn returning nil means the default.
func (f *fakeServer) onEvery(channel string, fn func(msg map[string]any) []map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.every[channel] = fn
}

// onHTTP replaces the next whole HTTP answer.
func (f *fakeServer) onHTTP(fn func(w http.ResponseWriter, r *http.Request, msgs []map[string]any)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raw = append(f.raw, fn)
}

// failOn returns a reply override that refuses msg with the error text,
// advice and ext given.
func failOn(errText string, adv map[string]any, ext map[string]any) func(map[string]any) map[string]any {
	return func(msg map[string]any) map[string]any {
		r := map[string]any{"channel": msg["channel"], "id": msg["id"], "successful": false, "error": errText}
		if adv != nil {
			r["advice"] = adv
		}
		if ext != nil {
			r["ext"] = ext
		}
		if s, ok := msg["subscription"]; ok {
			r["subscription"] = s
		}
		return r
	}
}

// publish queues an event for the next connect.
func (f *fakeServer) publish(channel string, replayID int64, payload any) {
	f.mu.Lock()
	f.queue = append(f.queue, map[string]any{
		"channel": channel,
		"data":    map[string]any{"event": map[string]any{"replayId": replayID}, "payload": payload},
	})
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func (f *fakeServer) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.reqs...)
}

// messages returns every message received on channel, in order.
func (f *fakeServer) messages(channel string) []map[string]any {
	var out []map[string]any
	for _, r := range f.requests() {
		for _, m := range r.msgs {
			if m["channel"] == channel {
				out = append(out, m)
			}
		}
	}
	return out
}

// waitFor blocks until a request with a message on channel arrives that
// pred accepts, and returns it.
func (f *fakeServer) waitFor(channel string, pred func(map[string]any) bool) map[string]any {
	f.t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case r := <-f.seen:
			for _, m := range r.msgs {
				if m["channel"] == channel && (pred == nil || pred(m)) {
					return m
				}
			}
		case <-timeout.C:
			f.t.Fatalf("no %s message arrived", channel)
			return nil
		}
	}
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	var msgs []map[string]any
	if err := json.Unmarshal(body, &msgs); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	rec := fakeRequest{msgs: msgs, auth: r.Header.Get("Authorization"), cookies: r.Cookies(), ctype: r.Header.Get("Content-Type"), size: len(body)}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	browser := fmt.Sprintf("browser-%d", len(f.reqs))
	var raw func(http.ResponseWriter, *http.Request, []map[string]any)
	if len(f.raw) > 0 {
		raw, f.raw = f.raw[0], f.raw[1:]
	}
	// Overrides are picked before the request is announced, so a test that
	// saw this request can register overrides for the next one.
	picked := make([]func(map[string]any) map[string]any, len(msgs))
	if raw == nil {
		for i, m := range msgs {
			ch, _ := m["channel"].(string)
			if o := f.overrides[ch]; len(o) > 0 {
				picked[i], f.overrides[ch] = o[0], o[1:]
			}
		}
	}
	f.mu.Unlock()
	select {
	case f.seen <- rec:
	default: // a test that floods requests does not wait on them
	}
	if raw != nil {
		raw(w, r, msgs)
		return
	}
	if _, err := r.Cookie("BAYEUX_BROWSER"); err != nil {
		http.SetCookie(w, &http.Cookie{Name: "BAYEUX_BROWSER", Value: browser, Path: "/cometd"})
	}
	var out []map[string]any
	for i, m := range msgs {
		out = append(out, f.handle(r.Context(), m, picked[i])...)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeServer) handle(ctx context.Context, m map[string]any, override func(map[string]any) map[string]any) []map[string]any {
	ch, _ := m["channel"].(string)
	f.mu.Lock()
	extra := f.extra[ch]
	delete(f.extra, ch)
	every := f.every[ch]
	f.mu.Unlock()
	if override != nil {
		return append([]map[string]any{override(m)}, extra...)
	}
	if every != nil {
		if out := every(m); out != nil {
			return append(out, extra...)
		}
	}
	return append(f.defaultReply(ctx, ch, m), extra...)
}

func (f *fakeServer) defaultReply(ctx context.Context, ch string, m map[string]any) []map[string]any {
	cid, _ := m["clientId"].(string)
	reply := map[string]any{"channel": ch, "id": m["id"], "successful": true}
	f.mu.Lock()
	known := f.clients[cid]
	adv := map[string]any{}
	for k, v := range f.advice {
		adv[k] = v
	}
	f.mu.Unlock()
	unknown := func() []map[string]any {
		reply["successful"] = false
		reply["error"] = "403::Unknown client"
		reply["advice"] = map[string]any{"reconnect": "handshake", "interval": 0}
		return []map[string]any{reply}
	}
	switch ch {
	case chHandshake:
		f.mu.Lock()
		f.nclients++
		id := fmt.Sprintf("client-%d", f.nclients)
		f.clients[id] = true
		noReplay := f.noReplay
		f.mu.Unlock()
		reply["clientId"] = id
		reply["version"] = "1.0"
		reply["minimumVersion"] = "1.0"
		reply["supportedConnectionTypes"] = []string{"long-polling"}
		reply["advice"] = adv
		if !noReplay {
			reply["ext"] = map[string]any{"replay": true, "payload.format": true}
		}
	case chSubscribe:
		if !known {
			return unknown()
		}
		sub, _ := m["subscription"].(string)
		reply["clientId"] = cid
		reply["subscription"] = sub
		f.mu.Lock()
		if f.subs[cid] == nil {
			f.subs[cid] = map[string]bool{}
		}
		f.subs[cid][sub] = true
		f.mu.Unlock()
	case chConnect:
		if !known {
			return unknown()
		}
		reply["clientId"] = cid
		reply["advice"] = adv
		f.mu.Lock()
		f.inflight[cid]++
		f.maxFlight = max(f.maxFlight, f.inflight[cid])
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.inflight[cid]--
			f.mu.Unlock()
		}()
		hold := time.NewTimer(f.hold)
		defer hold.Stop()
		for {
			f.mu.Lock()
			events := f.queue
			f.queue = nil
			f.mu.Unlock()
			if len(events) > 0 {
				return append([]map[string]any{reply}, events...)
			}
			select {
			case <-f.notify:
			case <-hold.C:
				return []map[string]any{reply}
			case <-ctx.Done():
				return []map[string]any{reply}
			}
		}
	case chDisconnect:
		if !known {
			return unknown()
		}
		f.mu.Lock()
		delete(f.clients, cid)
		f.mu.Unlock()
	default:
		reply["successful"] = false
		reply["error"] = "400::Unsupported channel"
	}
	return []map[string]any{reply}
}

// recorder is an Observer that records everything.
type recorder struct {
	mu           sync.Mutex
	requests     []string // "op code"
	rehandshakes []string
	delivered    []string
}

func (r *recorder) Request(op, code string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, op+" "+code)
}

func (r *recorder) Rehandshake(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rehandshakes = append(r.rehandshakes, reason)
}

func (r *recorder) Delivered(channel string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivered = append(r.delivered, channel)
}

func (r *recorder) snapshot() (requests, rehandshakes, delivered []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...), append([]string(nil), r.rehandshakes...), append([]string(nil), r.delivered...)
}

// harness runs one Client against a fake.
type harness struct {
	t       *testing.T
	f       *fakeServer
	c       *Client
	obs     *recorder
	logs    *syncBuffer
	unauth  chan struct{}
	waitsMu sync.Mutex
	waits   []time.Duration
	deliv   chan Delivery
	handler func(ctx context.Context, d Delivery) error
	cancel  context.CancelFunc
	done    chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newHarness builds a Client for f. mod may change the options first.
func newHarness(t *testing.T, f *fakeServer, mod func(*Options)) *harness {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	h := &harness{t: t, f: f, obs: &recorder{}, logs: &syncBuffer{}, unauth: make(chan struct{}, 16), deliv: make(chan Delivery, 1024)}
	o := Options{
		Endpoint:  func(context.Context) (string, error) { return f.url(), nil },
		Transport: tr,
		Authorize: func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer TOKEN")
			return nil
		},
		Unauthorized: func() { h.unauth <- struct{}{} },
		Replay:       true,
		Backoff:      func(attempt int) time.Duration { return time.Duration(attempt) * time.Second },
		Observer:     h.obs,
		Logger:       slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	require.NoError(t, err)
	// Record waits instead of sleeping: backoff and advice intervals are
	// asserted on, never waited out.
	c.wait = func(ctx context.Context, d time.Duration) error {
		h.waitsMu.Lock()
		h.waits = append(h.waits, d)
		h.waitsMu.Unlock()
		return ctx.Err()
	}
	h.c = c
	h.handler = func(_ context.Context, d Delivery) error {
		h.deliv <- d
		return nil
	}
	return h
}

func (h *harness) recordedWaits() []time.Duration {
	h.waitsMu.Lock()
	defer h.waitsMu.Unlock()
	return append([]time.Duration(nil), h.waits...)
}

// start runs the client in the background; stop ends it.
func (h *harness) start(subs ...Subscription) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	handler := h.handler
	go func() {
		h.done <- h.c.Run(ctx, subs, func(ctx context.Context, d Delivery) error { return handler(ctx, d) })
	}()
	h.t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			h.t.Logf("run returned: %v", err)
		}
	})
}

// stop cancels Run and returns its result.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	return h.result()
}

// result waits for Run to return by itself.
func (h *harness) result() error {
	h.t.Helper()
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return")
		return nil
	}
}

// next returns the next delivery.
func (h *harness) next() Delivery {
	h.t.Helper()
	select {
	case d := <-h.deliv:
		return d
	case <-time.After(10 * time.Second):
		h.t.Fatal("no delivery arrived")
		return Delivery{}
	}
}

func (h *harness) waitUnauthorized() {
	h.t.Helper()
	select {
	case <-h.unauth:
	case <-time.After(10 * time.Second):
		h.t.Fatal("Unauthorized was not called")
	}
}
