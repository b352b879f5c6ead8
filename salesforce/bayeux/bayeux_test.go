package bayeux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
	"github.com/omniroute/omniroute/salesforce/internal/emutest"
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

// org is the emulator on loopback, its AdviceTimeout short.
type org struct{ *emutest.Org }

func newOrg(t *testing.T) *org {
	return &org{emutest.New(t, func(o *emulator.Options) { o.RandSeed, o.AdviceTimeout = 7, 5*time.Second })}
}

func (o *org) control(t *testing.T, path, body string) { o.Control(t, path, body, nil) }

// token gets an access token from the emulator's OAuth endpoint (a token the emulator made
// from a bubble's goroutine would carry the bubble's fake time, and be long expired).
func (o *org) token(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {emulator.DemoClientID}, "client_secret": {emulator.DemoClientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.Srv.URL+"/services/oauth2/token", strings.NewReader(form.Encode()))
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
		return "", fmt.Errorf("token: %d: %w", resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

func (o *org) work(t *testing.T) { o.Work(t) }

func bubbleClient() *http.Client { return emutest.BubbleClient() }

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
		Endpoint:   func(context.Context) (string, error) { return o.Srv.URL + "/cometd/63.0", nil },
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

// running starts a default harness on a new org, subscribed to psr from -2.
func running(t *testing.T) (*org, *harness) {
	t.Helper()
	o := newOrg(t)
	h := newHarness(t, o, nil)
	h.start(Subscription{psr, ReplayAll})
	return o, h
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
	o, h := running(t)
	o.work(t)
	first := h.nextEvent()
	o.Emu.DropStreamingClients()
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
	o, h := running(t)
	o.work(t)
	h.nextEvent()
	o.Emu.ExpireSessions()
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
	o.Emu.ExpireReplay()
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
	o, h := running(t)
	o.work(t)
	first := h.nextEvent()
	require.NoError(t, o.Emu.InjectTruncateFault(emulator.TruncateFault{Count: 1, Scope: "cometd"}))
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
	require.NoError(t, o.Emu.SetLatency(emulator.LatencyFault{MS: 3000, Scope: "cometd"}))
	require.NoError(t, o.Emu.InjectHTTPFault(emulator.HTTPFault{Status: 500, Count: 1, Scope: "cometd"}))
	o.Emu.DropStreamingClients()
	require.Eventually(t, func() bool { return !h.c.Live() }, 20*time.Second, time.Millisecond, "not live while the session is lost")
	require.NoError(t, o.Emu.SetLatency(emulator.LatencyFault{MS: 0, Scope: "cometd"}))
	require.Eventually(t, h.c.Live, 30*time.Second, time.Millisecond, "live again once resubscribed")
	require.NoError(t, h.stop())
	require.False(t, h.c.Live())
}

// Defect: after cancellation, /meta/disconnect could take 5 s on a slow server, whatever the
// caller's deadline. Shutdown follows the caller's.
func TestShutdownFollowsTheCallersDeadline(t *testing.T) {
	t.Parallel()
	o, h := running(t)
	require.Eventually(t, h.c.Live, 10*time.Second, time.Millisecond)
	require.NoError(t, o.Emu.SetLatency(emulator.LatencyFault{MS: 4000, Scope: "cometd"}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := h.c.Shutdown(ctx); err != nil {
		require.ErrorIs(t, err, context.DeadlineExceeded, "the deadline cut the disconnect")
	}
	select {
	case err := <-h.done:
		require.NoError(t, err)
		h.done <- nil
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within the caller's deadline")
	}
	require.Less(t, time.Since(start), 3*time.Second)
	requests, _, _ := h.obs.snapshot()
	require.Equal(t, "disconnect transport", requests[len(requests)-1])
}

// Defect: only the Transport of Options.HTTPClient was used. The whole client is: here its
// Timeout cuts requests the slow server would answer too late.
func TestHTTPClientUsedWhole(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	require.NoError(t, o.Emu.SetLatency(emulator.LatencyFault{MS: 2000, Scope: "cometd"}))
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
	o, h := running(t)
	o.work(t)
	first := h.nextEvent()
	id, err := o.Emu.InjectMalformedEvent(psr, emulator.MalformedPayloadType)
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
	// The handler holds the first delivery until the second Run was refused: otherwise the
	// first Run may already have returned boom (and stopped running) before the second starts.
	delivered, release := make(chan struct{}), make(chan struct{})
	go func() {
		done <- h.c.Run(t.Context(), []Subscription{{psr, ReplayLatest}}, func(context.Context, Delivery) error {
			close(delivered)
			<-release
			return boom
		})
	}()
	<-delivered
	require.True(t, h.c.running.Load())
	require.ErrorContains(t, h.c.Run(t.Context(), []Subscription{{psr, ReplayLatest}}, func(context.Context, Delivery) error { return nil }), "already running")
	close(release)
	require.ErrorIs(t, <-done, boom, "the NotReplayed delivery's handler error stops Run")
}

func TestKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[Kind]string{Event: "event", BadEvent: "bad event", ReplayRefused: "replay refused", NotReplayed: "not replayed", Kind(9): "kind(9)"} {
		require.Equal(t, want, k.String())
	}
	require.Equal(t, "bayeux connect: http status 503", fmt.Sprint(&HTTPError{Op: "connect", Status: 503}))
}

// The org's daily event delivery allocation used up: every /meta/connect gets "403::Organization
// total events daily limit exceeded" with a server-sent /meta/disconnect. The client stays away
// for minutes (the limit schedule), then handshakes again and resumes from the last handled
// replay id once the allocation is back.
func TestDailyLimitWaitsMinutesThenResumes(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, o, nil)
		h.wait = time.Hour
		h.start(Subscription{psr, ReplayAll})
		o.work(t)
		first := h.nextEvent()
		o.control(t, "streaming/faults", `{"kind":"daily-limit"}`)
		o.work(t) // held until the allocation is back
		for {
			requests, _, _ := h.obs.snapshot()
			if count(requests, "connect 403") > 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		refused := time.Now()
		require.False(t, h.c.Live())
		o.control(t, "streaming/limits/reset", "")
		second := h.nextEvent()
		require.Greater(t, second.ReplayID, first.ReplayID)
		require.GreaterOrEqual(t, time.Since(refused), 15*time.Second, "a limit is waited out for minutes, not retried at once")
		requests, _, _ := h.obs.snapshot()
		require.Equal(t, 1, count(requests, "connect 403"), "one refusal, then minutes away: %v", requests)
		require.NoError(t, h.stop())
	})
}

// Too many CometD clients in the org: the handshake is refused with "403::Organization
// concurrent user limit exceeded" in ext.sfdc.failureReason, and retried on the limit schedule.
func TestConcurrentClientLimitAtHandshake(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	synctest.Test(t, func(t *testing.T) {
		o.control(t, "streaming/faults", `{"kind":"concurrent-clients","count":2}`)
		h := newHarness(t, o, nil)
		h.wait = time.Hour
		start := time.Now()
		h.start(Subscription{psr, ReplayAll})
		o.work(t)
		h.nextEvent()
		requests, _, _ := h.obs.snapshot()
		require.Equal(t, 2, count(requests, "handshake 403"), "%v", requests)
		require.GreaterOrEqual(t, time.Since(start), time.Minute, "two waits on the limit schedule")
		require.NoError(t, h.stop())
	})
}

// "503::Server is too busy" on a /meta/connect ends the session with advice reconnect none: at
// a limit that is not fatal, the client waits on the limit schedule and starts over.
func TestTooBusyConnectIsNotFatal(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, o, nil)
		h.wait = time.Hour
		h.start(Subscription{psr, ReplayAll})
		o.work(t)
		first := h.nextEvent()
		o.control(t, "streaming/faults", `{"kind":"too-busy","op":"connect","count":1}`)
		o.control(t, "streaming/drop-clients", "") // end the held connect; the next session's connect is refused
		start := time.Now()
		o.work(t)
		second := h.nextEvent()
		require.Greater(t, second.ReplayID, first.ReplayID)
		requests, _, _ := h.obs.snapshot()
		require.Equal(t, 1, count(requests, "connect 503"), "%v", requests)
		require.GreaterOrEqual(t, time.Since(start), 15*time.Second)
		require.NoError(t, h.stop())
	})
}
