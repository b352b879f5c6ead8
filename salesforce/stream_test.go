package salesforce

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/bayeux"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

const psrChannel = "/data/PendingServiceRoutingChangeEvent"

// runStream runs a stream on o in the background; messages go to the
// returned channel. The stream stops when the test ends (or stop is called).
type runningStream struct {
	// wait bounds next: 20 s, or in a synctest bubble (fake time) an hour, longer than the
	// limit schedule's steps.
	wait time.Duration
	s    *Stream
	msgs chan Message
	stop func() error
}

func (o *org) stream(t *testing.T, mod func(*StreamOptions)) *runningStream {
	t.Helper()
	hc := bubbleClient()
	// Not the JWT grant: a synctest bubble's clock starts in 2000, and the emulator would
	// refuse an assertion that expired then.
	topts := o.tokenOptions(t, GrantClientCredentials)
	topts.HTTPClient = hc
	ts, err := NewTokenSource(topts)
	require.NoError(t, err)
	opts := StreamOptions{
		Tokens: ts, HTTPClient: hc, Channels: []string{psrChannel},
		// From -2, so events published before the subscribe completes
		// are not missed: the tests need no wait for "subscribed".
		StartFrom: ReplayAll,
		Logger:    testLogger(t),
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := NewStream(opts)
	require.NoError(t, err)
	return start(t, s)
}

func start(t *testing.T, s *Stream) *runningStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	msgs := make(chan Message, 100)
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(ctx context.Context, m Message) error {
			select {
			case msgs <- m:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var stopped bool
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &runningStream{wait: 20 * time.Second, s: s, msgs: msgs, stop: stop}
}

// next waits for the next message (a bound on a broken test, not a sleep).
func (r *runningStream) next(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(r.wait):
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatalf("no stream message within %v", r.wait)
	}
	return Message{}
}

// memStore is a CheckpointStore in memory.
type memStore struct {
	mu  sync.Mutex
	ids map[string]int64
}

func (m *memStore) Load(context.Context) (map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.ids), nil
}

func (m *memStore) Save(_ context.Context, ids map[string]int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ids = maps.Clone(ids)
	return nil
}

// nextEvent skips messages until a PSR CREATE for work arrives.
func (r *runningStream) nextCreate(t *testing.T, psrID string) Message {
	t.Helper()
	for {
		m := r.next(t)
		if m.Event != nil && m.Event.ChangeType == ChangeCreate && m.Event.RecordIDs[0] == psrID {
			return m
		}
	}
}

// control calls the emulator's control API over HTTP and decodes the answer into out (if not
// nil). Tests in a synctest bubble drive the emulator only this way, so that it acts from its
// own goroutines, never from the bubble's (whose timers and channels run on fake time).
func (o *org) control(t testing.TB, path, body string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, o.srv.URL+"/emulator/v1/"+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+o.emu.ControlToken())
	resp, err := bubbleClient().Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Less(t, resp.StatusCode, 300, path)
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
}

func work(t testing.TB, o *org) emulator.WorkResult {
	t.Helper()
	var w emulator.WorkResult
	o.control(t, "work", `{"channel":"Case","queue":"Support_EN","subject":"s"}`, &w)
	return w
}

// liveStream returns an emulator and a stream on it (metrics on a
// registry) that has delivered a first event, w1: it is subscribed and
// long-polling.
func liveStream(t *testing.T) (*org, *runningStream, emulator.WorkResult) {
	t.Helper()
	o := newOrg(t, nil)
	rs := o.stream(t, func(so *StreamOptions) { so.Registerer = prometheus.NewPedanticRegistry() })
	w1 := work(t, o)
	rs.nextCreate(t, w1.PSRID)
	return o, rs, w1
}

// TestStreamDeliversCommitsAndResumes: events arrive typed and in order;
// a new stream on the same checkpoint file resumes after the last
// committed event, even though it would otherwise start from -2.
func TestStreamDeliversCommitsAndResumes(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	store := &memStore{}
	reg := prometheus.NewPedanticRegistry()
	rs := o.stream(t, func(so *StreamOptions) {
		so.Checkpoints, so.StartFrom, so.Registerer = store, ReplayAll, reg
	})
	w1, w2, w3 := work(t, o), work(t, o), work(t, o)
	var ids []int64
	for _, w := range []emulator.WorkResult{w1, w2, w3} {
		m := rs.nextCreate(t, w.PSRID)
		require.Equal(t, "PendingServiceRouting", m.Event.Entity)
		require.Equal(t, SourceCDC, m.Event.Source)
		psr := m.Event.PSR
		require.Equal(t, w.WorkItemID, psr.WorkItemID)
		require.Equal(t, RoutingModelExternal, psr.RoutingModel)
		require.True(t, psr.IsReadyForRouting)
		ids = append(ids, m.Event.ReplayID)
	}
	require.Less(t, ids[0], ids[1])
	require.Less(t, ids[1], ids[2])
	require.NoError(t, rs.s.Commit(t.Context(), psrChannel, ids[1]))
	require.Error(t, rs.s.Commit(t.Context(), "/data/Other", 1))
	require.NoError(t, rs.stop())
	require.GreaterOrEqual(t, testutil.ToFloat64(rs.s.metrics.events.WithLabelValues(psrChannel)), 3.0)
	require.Equal(t, 1, testutil.CollectAndCount(rs.s.metrics.state, "stream_last_replay_id_age_seconds"))

	stored, err := store.Load(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]int64{psrChannel: ids[1]}, stored)

	// Restart from the checkpoint: the third event again (at least once),
	// never the first two.
	rs2 := o.stream(t, func(so *StreamOptions) { so.Checkpoints, so.StartFrom = store, ReplayAll })
	m := rs2.next(t)
	require.NotNil(t, m.Event)
	require.Equal(t, ids[2], m.Event.ReplayID)
	w4 := work(t, o)
	require.Equal(t, w4.PSRID, rs2.nextCreate(t, w4.PSRID).Event.RecordIDs[0])
}

// Session expiry in the middle of a long poll: the stream gets a new
// token (one token request) and keeps receiving.
func TestStreamSessionExpiryMidLongPoll(t *testing.T) {
	t.Parallel()
	o, rs, _ := liveStream(t)
	require.Equal(t, 1, o.tokenRequests())
	o.emu.ExpireSessions()
	w2 := work(t, o)
	rs.nextCreate(t, w2.PSRID)
	require.Equal(t, 2, o.tokenRequests())
	require.GreaterOrEqual(t, testutil.ToFloat64(rs.s.metrics.rehandshakes.WithLabelValues("auth")), 1.0)
}

// All CometD clients dropped: 403::Unknown client, re-handshake,
// re-subscribe from the last delivered replay id; nothing is lost.
func TestStreamAllClientsDropped(t *testing.T) {
	t.Parallel()
	o, rs, _ := liveStream(t)
	o.emu.DropStreamingClients()
	w2 := work(t, o) // published while the client is unknown
	m := rs.nextCreate(t, w2.PSRID)
	require.NotNil(t, m.Event)
	// The emulator's first answer to a dropped client carries a server-sent /meta/disconnect.
	require.GreaterOrEqual(t, testutil.ToFloat64(rs.s.metrics.rehandshakes.WithLabelValues("unknown_client"))+
		testutil.ToFloat64(rs.s.metrics.rehandshakes.WithLabelValues("advice")), 1.0)
	w3 := work(t, o)
	rs.nextCreate(t, w3.PSRID)
	require.Equal(t, 1, o.tokenRequests())
}

// A channel subscribed from -1 is told at once that what was published before is not
// replayed. When the session is then lost before any event was handled on it, it can only
// resubscribe from -1, so work created while the client was disconnected is never delivered:
// the handler gets another Missed (NotReplayed) once the new subscription is live, and a
// reconciliation done then finds the work.
func TestStreamResubscribedFromLatestReportsMissed(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	synctest.Test(t, func(t *testing.T) {
		c, _ := o.client(t, GrantClientCredentials, nil)
		rs := o.stream(t, func(so *StreamOptions) { so.StartFrom = ReplayLatest })
		rs.wait = time.Hour
		m := rs.next(t)
		require.Equal(t, &Missed{Channel: psrChannel, Cause: NotReplayed, ReplayID: ReplayLatest, ResumeFrom: ReplayLatest}, m.Missed)
		require.True(t, rs.s.Live())

		// 403::Unknown client or a 503: the session is lost, and the stream waits on the limit
		// schedule.
		o.control(t, "faults/http", `{"status":503,"count":1,"retryAfterSeconds":1,"scope":"cometd"}`, nil)
		o.control(t, "streaming/drop-clients", "", nil)
		// The 503 meets the next connect or handshake; either way the session is gone.
		for testutil.ToFloat64(rs.s.metrics.requests.WithLabelValues("handshake", "503"))+
			testutil.ToFloat64(rs.s.metrics.requests.WithLabelValues("connect", "503")) < 1 {
			time.Sleep(time.Millisecond)
		}
		require.False(t, rs.s.Live())
		lost := work(t, o) // published while no subscription exists

		m = rs.next(t)
		require.NotNil(t, m.Missed, "the caller must be told, got %+v", m.Event)
		require.Equal(t, Missed{Channel: psrChannel, Cause: NotReplayed, ReplayID: ReplayLatest, ResumeFrom: ReplayLatest}, *m.Missed)
		require.Equal(t, 2.0, testutil.ToFloat64(rs.s.metrics.missed.WithLabelValues(psrChannel, "not_replayed")))
		// Reconcile: the lost work is found by a query.
		var found bool
		for p, err := range QueryAs[PendingServiceRouting](t.Context(), c, "SELECT "+PendingServiceRoutingFields+" FROM PendingServiceRouting") {
			require.NoError(t, err)
			found = found || p.ID == lost.PSRID
		}
		require.True(t, found)
		// The subscription is live: new work streams, the lost one never did.
		w := work(t, o)
		m = rs.next(t)
		require.NotNil(t, m.Event)
		require.Equal(t, []string{w.PSRID}, m.Event.RecordIDs)
		require.NoError(t, rs.stop())
	})
}

// Replay ids expired: the stored id is refused, the handler gets a Gap
// naming it, the checkpoint is dropped, and new events still flow.
func TestStreamReplayExpired(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	store := &memStore{}
	reg := prometheus.NewPedanticRegistry()
	rs := o.stream(t, func(so *StreamOptions) { so.Checkpoints = store })
	w1 := work(t, o)
	m := rs.nextCreate(t, w1.PSRID)
	require.NoError(t, rs.s.Commit(t.Context(), psrChannel, m.Event.ReplayID))
	require.NoError(t, rs.stop())

	o.emu.ExpireReplay()
	rs2 := o.stream(t, func(so *StreamOptions) {
		so.Checkpoints, so.Registerer, so.OnInvalidReplay = store, reg, bayeux.ResubscribeAll
	})
	g := rs2.next(t)
	require.NotNil(t, g.Missed, "%+v", g)
	require.Equal(t, psrChannel, g.Missed.Channel)
	require.Equal(t, ReplayRefused, g.Missed.Cause)
	require.Equal(t, m.Event.ReplayID, g.Missed.ReplayID)
	require.Equal(t, ReplayAll, g.Missed.ResumeFrom)
	require.Contains(t, g.Missed.Reason, "replayId")
	require.Equal(t, 1.0, testutil.ToFloat64(rs2.s.metrics.missed.WithLabelValues(psrChannel, "replay_refused")))
	// The refused id stays stored until the next commit, so a crash now meets it again.
	stored, err := store.Load(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]int64{psrChannel: m.Event.ReplayID}, stored)
	w2 := work(t, o)
	m2 := rs2.nextCreate(t, w2.PSRID)
	require.NoError(t, rs2.s.Commit(t.Context(), psrChannel, m2.Event.ReplayID))
	stored, err = store.Load(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]int64{psrChannel: m2.Event.ReplayID}, stored)
}

// CDC gap and overflow events reach the handler as typed gap events.
func TestStreamGapEvents(t *testing.T) {
	t.Parallel()
	o, rs, w1 := liveStream(t)
	require.NoError(t, o.emu.InjectGap(emulator.GapRequest{Entity: "PendingServiceRouting", ChangeType: "GAP_UPDATE", RecordIDs: []string{w1.PSRID}}))
	require.NoError(t, o.emu.InjectGap(emulator.GapRequest{Entity: "PendingServiceRouting", ChangeType: "GAP_OVERFLOW"}))
	m := rs.next(t)
	require.Equal(t, ChangeGapUpdate, m.Event.ChangeType)
	require.True(t, m.Event.ChangeType.IsGapEvent())
	require.Equal(t, []string{w1.PSRID}, m.Event.RecordIDs)
	m = rs.next(t)
	require.Equal(t, ChangeGapOverflow, m.Event.ChangeType)
	require.Equal(t, []string{"000000000000000AAA"}, m.Event.RecordIDs)
}

func TestNewStreamOptions(t *testing.T) {
	t.Parallel()
	ts, err := NewTokenSource(TokenOptions{Grant: GrantClientCredentials, ClientID: "c", ClientSecret: "s"})
	require.NoError(t, err)
	for name, o := range map[string]StreamOptions{
		"no tokens":      {Channels: []string{psrChannel}},
		"no channels":    {Tokens: ts},
		"bad channel":    {Tokens: ts, Channels: []string{"/meta/connect"}},
		"bad start from": {Tokens: ts, Channels: []string{psrChannel}, StartFrom: 5},
		"bad policy":     {Tokens: ts, Channels: []string{psrChannel}, OnInvalidReplay: bayeux.ReplayPolicy(9)},
	} {
		_, err := NewStream(o)
		require.Error(t, err, name)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// 5xx and 429 bursts on the CometD endpoint: the stream backs off,
// recovers and loses nothing.
func TestStreamCometDFaultBursts(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	synctest.Test(t, func(t *testing.T) {
		rs := o.stream(t, nil)
		rs.wait = time.Hour
		w1 := work(t, o)
		rs.nextCreate(t, w1.PSRID)
		o.control(t, "faults/http", `{"status":503,"count":3,"retryAfterSeconds":1,"scope":"cometd"}`, nil)
		o.control(t, "faults/http", `{"status":429,"count":1,"retryAfterSeconds":100,"scope":"cometd"}`, nil)
		o.control(t, "faults/http", `{"status":500,"count":2,"scope":"cometd"}`, nil)
		o.control(t, "streaming/drop-clients", "", nil) // end the held poll so the next requests meet the faults
		start := time.Now()
		w2, w3 := work(t, o), work(t, o)
		rs.nextCreate(t, w2.PSRID)
		rs.nextCreate(t, w3.PSRID)
		failed := 0.0
		for _, op := range []string{"connect", "handshake", "subscribe"} {
			for _, code := range []string{"503", "429", "500"} {
				failed += testutil.ToFloat64(rs.s.metrics.requests.WithLabelValues(op, code))
			}
		}
		require.Equal(t, 6.0, failed)
		// Four waits at a limit, each at least Retry-After and on the limit schedule (about
		// 30 s, 2 min, 8 min, 10 min, jittered), then two ordinary ones: minutes, not seconds.
		require.Greater(t, time.Since(start), 5*time.Minute)
		require.NoError(t, rs.stop())
	})
}

// A PushTopic created over REST streams the same typed ChangeEvent as CDC.
func TestStreamPushTopic(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	c, _ := o.client(t, GrantJWTBearer, nil)
	_, err := c.Create(t.Context(), "PushTopic", map[string]any{
		"Name":       "PSRPushTopic",
		"Query":      "SELECT Id, Serial, QueueId, WorkItemId, IsPushed, ServiceChannelId, LastDeclinedAgentSession, CreatedDate FROM PendingServiceRouting WHERE RoutingModel = 'ExternalRouting'",
		"ApiVersion": 41.0, "NotifyForOperationCreate": true, "NotifyForOperationUpdate": true,
		"NotifyForOperationDelete": true, "NotifyForFields": "Referenced",
	})
	require.NoError(t, err)
	rs := o.stream(t, func(so *StreamOptions) { so.Channels = []string{"/topic/PSRPushTopic"} })
	w := work(t, o)
	m := rs.next(t)
	require.NotNil(t, m.Event)
	require.Equal(t, SourcePushTopic, m.Event.Source)
	require.Equal(t, "PendingServiceRouting", m.Event.Entity)
	require.Equal(t, ChangeCreate, m.Event.ChangeType)
	require.Equal(t, []string{w.PSRID}, m.Event.RecordIDs)
	require.True(t, m.Event.Has("IsPushed"))
	require.False(t, m.Event.PSR.IsPushed)
	require.Equal(t, w.WorkItemID, m.Event.PSR.WorkItemID)
	require.False(t, m.Event.CommitTimestamp.IsZero())
}

// A refused grant stops Run at once instead of backing off forever.
func TestStreamRefusedGrantIsFatal(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	opts := o.tokenOptions(t, GrantPassword)
	opts.Password = "wrong"
	ts, err := NewTokenSource(opts)
	require.NoError(t, err)
	s, err := NewStream(StreamOptions{Tokens: ts, HTTPClient: o.srv.Client(), Channels: []string{psrChannel}})
	require.NoError(t, err)
	err = s.Run(t.Context(), func(context.Context, Message) error { return nil })
	var te *TokenError
	require.ErrorAs(t, err, &te)
	require.Equal(t, "invalid_grant", te.Code)
}
