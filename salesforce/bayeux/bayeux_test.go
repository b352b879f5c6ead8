package bayeux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

// The tests drive the client against the org emulator (Salesforce's shapes and faults) over
// real HTTP on loopback; faye_test.go runs it against faye, a Bayeux server nobody here wrote.

const psr = "/data/PendingServiceRoutingChangeEvent"

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu           sync.Mutex
	requests     []string
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

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// org is the emulator on loopback. Tests in a synctest bubble drive it only through its
// control API over HTTP, so that it acts from its own goroutines, never from the bubble's.
type org struct {
	emu *emulator.Emulator
	srv *httptest.Server
}

func newOrg(t *testing.T) *org {
	t.Helper()
	emu, err := emulator.New(emulator.Options{Seed: emulator.DemoSeed(), RandSeed: 7, AdviceTimeout: 5 * time.Second})
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(func() {
		srv.Close()
		emu.Close()
	})
	return &org{emu: emu, srv: srv}
}

func (o *org) control(t *testing.T, path, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, o.srv.URL+"/emulator/v1/"+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+o.emu.ControlToken())
	resp, err := bubbleClient().Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, path)
}

// token gets an access token from the emulator's OAuth endpoint (a token the emulator made
// from a bubble's goroutine would carry the bubble's fake time, and be long expired).
func (o *org) token(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {emulator.DemoClientID}, "client_secret": {emulator.DemoClientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.srv.URL+"/services/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := bubbleClient().Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// work creates a work item; its PSR CREATE is published on psr.
func (o *org) work(t *testing.T) {
	t.Helper()
	o.control(t, "work", `{"channel":"Case","queue":"Support_EN","subject":"s"}`)
}

// bubbleClient leaves no idle keep-alive connection blocked on the network, which would keep
// a synctest bubble's clock from moving.
func bubbleClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// harness runs a Client against the org and collects its deliveries.
type harness struct {
	t      *testing.T
	c      *Client
	obs    *recorder
	unauth chan struct{}
	ds     chan Delivery
	cancel context.CancelFunc
	done   chan error
	wait   time.Duration

	mu  sync.Mutex
	tok string // the access token in use; "" fetches one
}

func newHarness(t *testing.T, o *org, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, obs: &recorder{}, unauth: make(chan struct{}, 16), ds: make(chan Delivery, 256), wait: 20 * time.Second}
	opts := Options{
		Endpoint:   func(context.Context) (string, error) { return o.srv.URL + "/cometd/63.0", nil },
		HTTPClient: bubbleClient(),
		Authorize: func(ctx context.Context, req *http.Request) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.tok == "" {
				tok, err := o.token(ctx)
				if err != nil {
					return err
				}
				h.tok = tok
			}
			req.Header.Set("Authorization", "Bearer "+h.tok)
			return nil
		},
		Unauthorized: func() {
			h.mu.Lock()
			h.tok = ""
			h.mu.Unlock()
			h.unauth <- struct{}{}
		},
		Replay:   true,
		Observer: h.obs,
		Logger:   slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	require.NoError(t, err)
	h.c = c
	return h
}

func (h *harness) start(subs ...Subscription) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() {
		h.done <- h.c.Run(ctx, subs, func(ctx context.Context, d Delivery) error {
			select {
			case h.ds <- d:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	h.t.Cleanup(func() { _ = h.stop() })
}

func (h *harness) stop() error {
	h.cancel()
	err := <-h.done
	h.done <- err
	return err
}

// next returns the next delivery (the bound catches a broken test; in a bubble it is fake time).
func (h *harness) next() Delivery {
	h.t.Helper()
	select {
	case d := <-h.ds:
		return d
	case <-time.After(h.wait):
		h.t.Fatalf("no delivery within %v", h.wait)
		return Delivery{}
	}
}

// nextEvent skips deliveries until an event.
func (h *harness) nextEvent() Delivery {
	h.t.Helper()
	for {
		if d := h.next(); d.Kind == Event {
			return d
		}
	}
}

// entity returns the event's ChangeEventHeader.entityName.
func entity(t *testing.T, d Delivery) string {
	t.Helper()
	var hdr struct {
		EntityName string `json:"entityName"`
	}
	require.NoError(t, json.Unmarshal(d.Data.Payload["ChangeEventHeader"], &hdr))
	return hdr.EntityName
}

func TestRunDeliversAndShutsDown(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	h := newHarness(t, o, nil)
	require.False(t, h.c.Live())
	h.start(Subscription{psr, ReplayLatest})
	d := h.next()
	require.Equal(t, Delivery{Kind: NotReplayed, Channel: psr, ReplayID: ReplayLatest}, d, "from -1 nothing before is replayed")
	require.Eventually(t, h.c.Live, 10*time.Second, time.Millisecond)

	o.work(t)
	d = h.nextEvent()
	require.Equal(t, psr, d.Channel)
	require.Positive(t, d.ReplayID)
	require.Equal(t, "PendingServiceRouting", entity(t, d))
	require.Eventually(t, func() bool { return h.c.ResumePoints()[psr] == d.ReplayID }, 10*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.c.Shutdown(ctx))
	require.NoError(t, <-h.done)
	h.done <- nil
	require.False(t, h.c.Live())
	requests, rehandshakes, delivered := h.obs.snapshot()
	require.Equal(t, "disconnect ok", requests[len(requests)-1], "Shutdown sends /meta/disconnect")
	require.Empty(t, rehandshakes)
	require.Equal(t, []string{psr}, delivered)
	require.NoError(t, h.c.Shutdown(ctx), "nothing to shut down")
}

// Each Client keeps its own cookie jar, whatever the HTTPClient it is given: two clients on
// one browser session would make the server refuse to hold their polls.
func TestCookieJarPerClient(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	shared := bubbleClient()
	h1 := newHarness(t, o, func(opts *Options) { opts.HTTPClient = shared })
	h2 := newHarness(t, o, func(opts *Options) { opts.HTTPClient = shared })
	require.NotSame(t, h1.c.http.Jar, h2.c.http.Jar)
	require.Nil(t, shared.Jar, "the caller's client is not changed")
	h1.start(Subscription{psr, ReplayAll})
	h2.start(Subscription{psr, ReplayAll})
	o.work(t)
	require.Equal(t, "PendingServiceRouting", entity(t, h1.nextEvent()))
	require.Equal(t, "PendingServiceRouting", entity(t, h2.nextEvent()))
}

// The server forgot the client: 403::Unknown client (with a server-sent /meta/disconnect), a
// new handshake, and a resubscription from the last handled replay id, so what was published
// meanwhile still arrives.
func TestUnknownClientRehandshakesAndResumes(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	h := newHarness(t, o, nil)
	h.start(Subscription{psr, ReplayAll})
	o.work(t)
	first := h.nextEvent()
	o.emu.DropStreamingClients()
	o.work(t)
	second := h.nextEvent()
	require.Greater(t, second.ReplayID, first.ReplayID)
	_, rehandshakes, _ := h.obs.snapshot()
	require.NotEmpty(t, rehandshakes)
	require.Subset(t, []string{"unknown_client", "advice"}, rehandshakes)
	select {
	case d := <-h.ds:
		t.Fatalf("nothing else expected, got %+v", d)
	default:
	}
}

// 401::Authentication invalid: the caller drops its token, and the client handshakes again.
func TestAuthenticationInvalidCallsUnauthorized(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	h := newHarness(t, o, nil)
	h.start(Subscription{psr, ReplayAll})
	o.work(t)
	h.nextEvent()
	o.emu.ExpireSessions()
	select {
	case <-h.unauth:
	case <-time.After(20 * time.Second):
		t.Fatal("Unauthorized was not called")
	}
	o.work(t)
	h.nextEvent()
	_, rehandshakes, _ := h.obs.snapshot()
	require.Contains(t, rehandshakes, "auth")
}

// A stored replay id outside the retention window: ReplayRefused names it once the channel's
// resubscription (here from -2) is live, and events flow on.
func TestReplayRefusedResubscribesByPolicy(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	o.work(t)
	o.emu.ExpireReplay()
	h := newHarness(t, o, func(opts *Options) { opts.OnInvalidReplay = ResubscribeAll })
	h.start(Subscription{psr, 1})
	d := h.next()
	require.Equal(t, ReplayRefused, d.Kind)
	require.Equal(t, int64(1), d.ReplayID)
	re, ok := errors.AsType[*ReplayError](d.Err)
	require.True(t, ok)
	require.Contains(t, re.Message, "replayId")
	require.Equal(t, ReplayAll, h.c.ResumePoints()[psr])
	o.work(t)
	h.nextEvent()
}

// Defect: a /meta/connect answered 200 whose body is cut lost its events: the server had taken
// them off the session's queue and the client reconnected on the same client id. Now any
// failed connect ends the session, and the new one resumes from the last handled replay id.
func TestCutConnectBodyResumesFromLastHandled(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	h := newHarness(t, o, nil)
	h.start(Subscription{psr, ReplayAll})
	o.work(t)
	first := h.nextEvent()
	require.NoError(t, o.emu.InjectTruncateFault(emulator.TruncateFault{Count: 1, Scope: "cometd"}))
	o.work(t) // delivered in the connect whose body is cut
	second := h.nextEvent()
	require.Greater(t, second.ReplayID, first.ReplayID)
	requests, rehandshakes, _ := h.obs.snapshot()
	require.Equal(t, 1, count(requests, "connect transport"))
	require.Contains(t, rehandshakes, "transport")
}

// Defect: the client could not say whether its subscription was live.
func TestLive(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	h := newHarness(t, o, nil)
	require.False(t, h.c.Live())
	h.start(Subscription{psr, ReplayAll})
	require.Eventually(t, h.c.Live, 10*time.Second, time.Millisecond)
	require.NoError(t, o.emu.SetLatency(emulator.LatencyFault{MS: 3000, Scope: "cometd"}))
	require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 500, Count: 1, Scope: "cometd"}))
	o.emu.DropStreamingClients()
	require.Eventually(t, func() bool { return !h.c.Live() }, 20*time.Second, time.Millisecond, "not live while the session is lost")
	require.NoError(t, o.emu.SetLatency(emulator.LatencyFault{MS: 0, Scope: "cometd"}))
	require.Eventually(t, h.c.Live, 30*time.Second, time.Millisecond, "live again once resubscribed")
	require.NoError(t, h.stop())
	require.False(t, h.c.Live())
}

// Defect: after cancellation, /meta/disconnect could take 5 s on a slow server, whatever the
// caller's deadline. Shutdown follows the caller's.
func TestShutdownFollowsTheCallersDeadline(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	h := newHarness(t, o, nil)
	h.start(Subscription{psr, ReplayAll})
	require.Eventually(t, h.c.Live, 10*time.Second, time.Millisecond)
	require.NoError(t, o.emu.SetLatency(emulator.LatencyFault{MS: 10_000, Scope: "cometd"}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := h.c.Shutdown(ctx); err != nil {
		require.ErrorIs(t, err, context.DeadlineExceeded, "the deadline cut the disconnect")
	}
	require.Less(t, time.Since(start), 3*time.Second)
	require.NoError(t, <-h.done)
	h.done <- nil
	requests, _, _ := h.obs.snapshot()
	require.Equal(t, "disconnect transport", requests[len(requests)-1])
}

// Defect: only the Transport of Options.HTTPClient was used. The whole client is: here its
// Timeout cuts requests the slow server would answer too late.
func TestHTTPClientUsedWhole(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	require.NoError(t, o.emu.SetLatency(emulator.LatencyFault{MS: 2000, Scope: "cometd"}))
	h := newHarness(t, o, func(opts *Options) {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 200 * time.Millisecond}
	})
	h.start(Subscription{psr, ReplayAll})
	require.Eventually(t, func() bool {
		requests, _, _ := h.obs.snapshot()
		return count(requests, "handshake transport") > 0
	}, 20*time.Second, 10*time.Millisecond)
	require.False(t, h.c.Live())
}

// Defect: an event that could not be decoded vanished. It is handed over as a BadEvent, with
// its replay id when it can be read, and the events around it arrive in order.
func TestBadEventIsHandedOver(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	h := newHarness(t, o, nil)
	h.start(Subscription{psr, ReplayAll})
	o.work(t)
	first := h.nextEvent()
	id, err := o.emu.InjectMalformedEvent(psr, emulator.MalformedPayloadType)
	require.NoError(t, err)
	o.work(t)
	bad := h.next()
	require.Equal(t, BadEvent, bad.Kind, "%+v", bad)
	require.Equal(t, id, bad.ReplayID)
	require.Contains(t, string(bad.Raw), "not an object")
	require.Error(t, bad.Err)
	after := h.nextEvent()
	require.Greater(t, after.ReplayID, id)
	require.Greater(t, id, first.ReplayID)
	require.Eventually(t, func() bool { return h.c.ResumePoints()[psr] == after.ReplayID }, 10*time.Second, time.Millisecond)
}

// timedRecorder is a recorder that also notes when each request ended.
type timedRecorder struct {
	recorder
	at []time.Time
}

func (r *timedRecorder) Request(op, code string, d time.Duration) {
	r.recorder.Request(op, code, d)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at = append(r.at, time.Now())
}

// At a limit the client backs off on the limit schedule (minutes within a few steps), and
// honours Retry-After on HTTP 429 and 503.
func TestLimitsBackOffForMinutes(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	synctest.Test(t, func(t *testing.T) {
		obs := &timedRecorder{}
		h := newHarness(t, o, func(opts *Options) { opts.Observer = obs })
		h.wait = 2 * time.Hour
		// The HTTP fault meets the first handshake, then the server is too busy three times.
		o.control(t, "faults/http", `{"status":503,"count":1,"retryAfterSeconds":1800,"scope":"cometd"}`)
		o.control(t, "streaming/faults", `{"kind":"too-busy","op":"handshake","count":3}`)
		h.start(Subscription{psr, ReplayAll})
		o.work(t)
		h.nextEvent()
		require.NoError(t, h.stop())
		obs.mu.Lock()
		defer obs.mu.Unlock()
		require.Equal(t, []string{"handshake 503", "handshake 503", "handshake 503", "handshake 503", "handshake ok"}, obs.requests[:5])
		var waits []time.Duration // fake time moves only while the client waits
		for i := 1; i < 5; i++ {
			waits = append(waits, obs.at[i].Sub(obs.at[i-1]))
		}
		require.GreaterOrEqual(t, waits[0], 30*time.Minute, "Retry-After is honoured: %v", waits)
		require.GreaterOrEqual(t, waits[1], time.Minute, "minutes by the second step: %v", waits)
		require.GreaterOrEqual(t, waits[2], 4*time.Minute, "%v", waits)
	})
}

// An endpoint that is not an absolute http(s) URL can never work: Run returns at once.
func TestBadEndpointIsFatal(t *testing.T) {
	t.Parallel()
	c, err := New(Options{Endpoint: func(context.Context) (string, error) { return "cometd/63.0", nil }})
	require.NoError(t, err)
	err = c.Run(t.Context(), []Subscription{{psr, ReplayLatest}}, func(context.Context, Delivery) error { return nil })
	require.ErrorIs(t, err, errConfig)
}

func TestValidation(t *testing.T) {
	t.Parallel()
	_, err := New(Options{})
	require.Error(t, err)
	ep := func(context.Context) (string, error) { return "http://127.0.0.1:1/cometd/63.0", nil }
	_, err = New(Options{Endpoint: ep, OnInvalidReplay: 7})
	require.Error(t, err)
	_, err = New(Options{Endpoint: ep, RequestTimeout: -1})
	require.Error(t, err)
	c, err := New(Options{Endpoint: ep})
	require.NoError(t, err)
	nop := func(context.Context, Delivery) error { return nil }
	for name, subs := range map[string][]Subscription{
		"none":      nil,
		"relative":  {{"data/X", -1}},
		"meta":      {{"/meta/connect", -1}},
		"wildcard":  {{"/topic/*", -1}},
		"twice":     {{"/data/X", -1}, {"/data/X", -2}},
		"below -2":  {{"/data/X", -3}},
		"too short": {{"/", -1}},
	} {
		require.Error(t, c.Run(t.Context(), subs, nop), name)
	}
	require.Error(t, c.Run(t.Context(), []Subscription{{"/data/X", -1}}, nil))
}

// Only one Run at a time; a handler's error stops Run and is returned.
func TestConcurrentRunRefusedAndHandlerError(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	h := newHarness(t, o, nil)
	boom := errors.New("boom")
	done := make(chan error, 1)
	go func() {
		done <- h.c.Run(t.Context(), []Subscription{{psr, ReplayLatest}}, func(context.Context, Delivery) error { return boom })
	}()
	require.Eventually(t, h.c.running.Load, 10*time.Second, time.Millisecond)
	require.ErrorContains(t, h.c.Run(t.Context(), []Subscription{{psr, ReplayLatest}}, func(context.Context, Delivery) error { return nil }), "already running")
	require.ErrorIs(t, <-done, boom, "the NotReplayed delivery's handler error stops Run")
}

func TestKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[Kind]string{Event: "event", BadEvent: "bad event", ReplayRefused: "replay refused", NotReplayed: "not replayed", Kind(9): "kind(9)"} {
		require.Equal(t, want, k.String())
	}
	require.Equal(t, "bayeux connect: http status 503", fmt.Sprint(&HTTPError{Op: "connect", Status: 503}))
}
