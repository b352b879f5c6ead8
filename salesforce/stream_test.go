package salesforce

import (
	"context"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
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
	s    *Stream
	msgs chan Message
	stop func() error
}

func (o *org) stream(t *testing.T, mod func(*StreamOptions)) *runningStream {
	t.Helper()
	ts, err := NewTokenSource(o.tokenOptions(t, GrantJWTBearer))
	require.NoError(t, err)
	opts := StreamOptions{
		Tokens: ts, HTTPClient: o.srv.Client(), Channels: []string{psrChannel},
		// From -2, so events published before the subscribe completes
		// are not missed: the tests need no wait for "subscribed".
		StartFrom: ReplayAll,
		Backoff:   func(int) time.Duration { return time.Millisecond },
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
	return &runningStream{s: s, msgs: msgs, stop: stop}
}

// next waits for the next message (a bound on a broken test, not a sleep).
func (r *runningStream) next(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(20 * time.Second):
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatal("no stream message within 20s")
	}
	return Message{}
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

func work(t testing.TB, o *org) emulator.WorkResult {
	t.Helper()
	w, err := o.emu.CreateWork(emulator.WorkRequest{Channel: "Case", Queue: "Support_EN", Subject: "s"})
	require.NoError(t, err)
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
	store, err := NewFileCheckpointStore(t.TempDir(), []string{psrChannel})
	require.NoError(t, err)
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
		var psr PendingServiceRouting
		require.NoError(t, m.Event.Decode(&psr))
		require.Equal(t, w.WorkItemID, psr.WorkItemID)
		require.Equal(t, RoutingModelExternal, psr.RoutingModel)
		ids = append(ids, m.Event.ReplayID)
	}
	require.Less(t, ids[0], ids[1])
	require.Less(t, ids[1], ids[2])
	require.NoError(t, rs.s.Commit(t.Context(), psrChannel, ids[1]))
	require.Error(t, rs.s.Commit(t.Context(), "/data/Other", 1))
	require.NoError(t, rs.stop())
	require.GreaterOrEqual(t, testutil.ToFloat64(rs.s.metrics.events.WithLabelValues(psrChannel)), 3.0)
	require.Equal(t, 1, testutil.CollectAndCount(rs.s.metrics.state, "omniroute_stream_last_replay_id_age_seconds"))

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
	require.GreaterOrEqual(t, testutil.ToFloat64(rs.s.metrics.rehandshakes.WithLabelValues("unknown_client")), 1.0)
	w3 := work(t, o)
	rs.nextCreate(t, w3.PSRID)
	require.Equal(t, 1, o.tokenRequests())
}

// All CometD clients dropped while a channel subscribed from -1 has had no
// event yet: it can only resubscribe from -1, so work created while the
// client was disconnected is never delivered. The handler gets a Gap
// (Resubscribed) once the new subscription is live, and a reconciliation
// done then finds the work.
func TestStreamResubscribedFromLatestReportsGap(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	c, _ := o.client(t, GrantJWTBearer, nil)
	// The stream's backoff parks once the client is disconnected, until
	// the test has created work: the outage is deterministic.
	parked, release := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	rs := o.stream(t, func(so *StreamOptions) {
		so.StartFrom = ReplayLatest
		so.Backoff = func(int) time.Duration {
			if armed.CompareAndSwap(true, false) {
				close(parked)
				<-release
			}
			return time.Millisecond
		}
	})
	unpark := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unpark) // runs before the stream stops
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(rs.s.metrics.requests.WithLabelValues("subscribe", "ok")) >= 1
	}, 10*time.Second, 5*time.Millisecond)

	armed.Store(true)
	require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 503, Count: 1, Scope: "cometd"}))
	o.emu.DropStreamingClients() // 403::Unknown client, then the handshake meets the 503
	select {
	case <-parked:
	case <-time.After(20 * time.Second):
		t.Fatal("the stream never backed off after the drop")
	}
	lost := work(t, o) // published while no subscription exists
	unpark()

	m := rs.next(t)
	require.NotNil(t, m.Gap, "the caller must be told, got %+v", m.Event)
	require.Equal(t, ReplayGap{
		Channel: psrChannel, ReplayID: ReplayLatest, ResumeFrom: ReplayLatest,
		Reason: reasonResubscribed, Resubscribed: true,
	}, *m.Gap)
	require.Equal(t, 1.0, testutil.ToFloat64(rs.s.metrics.gaps.WithLabelValues(psrChannel)))
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
}

// Replay ids expired: the stored id is refused, the handler gets a Gap
// naming it, the checkpoint is dropped, and new events still flow.
func TestStreamReplayExpired(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	store := &MemoryCheckpointStore{}
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
	require.NotNil(t, g.Gap, "%+v", g)
	require.Equal(t, psrChannel, g.Gap.Channel)
	require.Equal(t, m.Event.ReplayID, g.Gap.ReplayID)
	require.Equal(t, ReplayAll, g.Gap.ResumeFrom)
	require.Contains(t, g.Gap.Reason, "replayId")
	require.Equal(t, 1.0, testutil.ToFloat64(rs2.s.metrics.gaps.WithLabelValues(psrChannel)))
	stored, err := store.Load(t.Context())
	require.NoError(t, err)
	require.Empty(t, stored)
	w2 := work(t, o)
	rs2.nextCreate(t, w2.PSRID)
}

// CDC gap and overflow events reach the handler as typed gap events.
func TestStreamGapEvents(t *testing.T) {
	t.Parallel()
	o, rs, w1 := liveStream(t)
	require.NoError(t, o.emu.InjectGap(emulator.GapRequest{Entity: "PendingServiceRouting", ChangeType: "GAP_UPDATE", RecordIDs: []string{w1.PSRID}}))
	require.NoError(t, o.emu.InjectGap(emulator.GapRequest{Entity: "PendingServiceRouting", ChangeType: "GAP_OVERFLOW"}))
	m := rs.next(t)
	require.Equal(t, ChangeGapUpdate, m.Event.ChangeType)
	require.True(t, m.Event.IsGap())
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
	o, rs, _ := liveStream(t)
	require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 503, Count: 3, RetryAfterSeconds: 1, Scope: "cometd"}))
	require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 429, Count: 1, RetryAfterSeconds: 1, Scope: "cometd"}))
	require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 500, Count: 2, Scope: "cometd"}))
	o.emu.DropStreamingClients() // end the held poll so the next requests meet the faults
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
	pushed, ok := m.Event.Bool("IsPushed")
	require.True(t, ok)
	require.False(t, pushed)
	var psr PendingServiceRouting
	require.NoError(t, m.Event.Decode(&psr))
	require.Equal(t, w.WorkItemID, psr.WorkItemID)
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
