package bayeux

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// unknownClient is Salesforce's reply to a message from a dropped session.
func unknownClient(m map[string]any) map[string]any {
	return failOn("403::Unknown client", map[string]any{"reconnect": "handshake", "interval": 0}, nil)(m)
}

// TestSessionsThatFailAtOnceBackOff drives servers that accept every
// handshake and subscribe but end each session at once. Without a backoff
// the client would loop handshake, subscribe, connect at full speed: the
// first re-handshake in a row is immediate, later ones wait.
func TestSessionsThatFailAtOnceBackOff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		setup  func(f *fakeServer)
		reason string
	}{
		{"connect succeeds advising handshake", func(f *fakeServer) {
			f.onEvery(chConnect, func(m map[string]any) []map[string]any {
				return []map[string]any{{"channel": chConnect, "id": m["id"], "successful": true, "advice": map[string]any{"reconnect": "handshake", "interval": 0}}}
			})
		}, "advice"},
		{"server disconnect in every subscribe reply", func(f *fakeServer) {
			f.onEvery(chSubscribe, func(m map[string]any) []map[string]any {
				return []map[string]any{
					{"channel": chSubscribe, "id": m["id"], "successful": true, "subscription": m["subscription"]},
					{"channel": chDisconnect, "successful": true},
				}
			})
		}, "advice"},
		{"server disconnect in every connect reply", func(f *fakeServer) {
			f.onEvery(chConnect, func(m map[string]any) []map[string]any {
				return []map[string]any{
					{"channel": chConnect, "id": m["id"], "successful": true, "advice": map[string]any{"reconnect": "retry", "interval": 0}},
					{"channel": chDisconnect, "successful": true},
				}
			})
		}, "advice"},
		{"first connect of each session succeeds, the second is unknown", func(f *fakeServer) {
			f.hold = time.Millisecond
			var mu sync.Mutex
			n := map[any]int{}
			f.onEvery(chConnect, func(m map[string]any) []map[string]any {
				mu.Lock()
				defer mu.Unlock()
				n[m["clientId"]]++
				if n[m["clientId"]] == 2 {
					return []map[string]any{unknownClient(m)}
				}
				return nil
			})
		}, "unknown_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			tc.setup(f)
			h := newHarness(t, f, nil)
			h.start(Subscription{chA, 5})
			f.waitFor(chSubscribe, func(m map[string]any) bool { return m["clientId"] == "client-6" })
			require.NoError(t, h.stop())
			// Attempt n waits n seconds (the harness's backoff); the first
			// is immediate.
			waits := h.recordedWaits()
			require.GreaterOrEqual(t, len(waits), 4, "sessions ended at once were retried without backoff: %v", waits)
			require.Equal(t, []time.Duration{2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}, waits[:4])
			_, rehandshakes, _ := h.obs.snapshot()
			require.Equal(t, tc.reason, rehandshakes[0])
		})
	}
}

// TestHealthySessionResetsBackoff: a connect the server held (after the
// first of the session) proves the session healthy even with no events, so
// the next failure retries at once.
func TestHealthySessionResetsBackoff(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	// Each connect is held past half the advised timeout: a healthy poll.
	f.advice = map[string]any{"reconnect": "retry", "interval": 0, "timeout": 100}
	f.hold = 60 * time.Millisecond
	for range 2 {
		f.onHTTP(func(w http.ResponseWriter, _ *http.Request, _ []map[string]any) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		})
	}
	var connects atomic.Int32
	f.onEvery(chConnect, func(m map[string]any) []map[string]any {
		if connects.Add(1) == 3 {
			return []map[string]any{unknownClient(m)}
		}
		return nil
	})
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, ReplayLatest})
	f.waitFor(chConnect, func(m map[string]any) bool { return m["clientId"] == "client-2" })
	require.NoError(t, h.stop())
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second}, h.recordedWaits())
}

// TestEndpointAndAuthorizeHaveDeadlines: an Endpoint or Authorize that
// hangs (a token endpoint that never answers) is cut by the request
// timeout; the client backs off and tries again.
func TestEndpointAndAuthorizeHaveDeadlines(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var epCalls, authCalls atomic.Int32
	var noDeadline atomic.Bool
	hang := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			noDeadline.Store(true)
		}
		<-ctx.Done()
		return ctx.Err()
	}
	h := newHarness(t, f, func(o *Options) {
		o.RequestTimeout = 150 * time.Millisecond
		o.Endpoint = func(ctx context.Context) (string, error) {
			if epCalls.Add(1) == 1 {
				return "", hang(ctx)
			}
			return f.url(), nil
		}
		o.Authorize = func(ctx context.Context, req *http.Request) error {
			if authCalls.Add(1) == 1 {
				return hang(ctx)
			}
			req.Header.Set("Authorization", "Bearer TOKEN")
			return nil
		}
	})
	h.start(Subscription{chA, ReplayLatest})
	f.waitFor(chConnect, nil)
	require.NoError(t, h.stop())
	require.False(t, noDeadline.Load())
	// Endpoint: hung once, then the handshake whose Authorize hung, then
	// the good one (more only if a loaded machine made a request time out).
	require.GreaterOrEqual(t, epCalls.Load(), int32(3))
	require.GreaterOrEqual(t, authCalls.Load(), int32(2))
}

// TestHandlerErrorWinsOverCancellation: a handler that fails while the
// context is being cancelled still gets its error back from Run.
func TestHandlerErrorWinsOverCancellation(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	f := newFake(t)
	h := newHarness(t, f, nil)
	h.handler = func(context.Context, Delivery) error {
		h.cancel()
		return boom
	}
	h.start(Subscription{chA, 5})
	f.waitFor(chConnect, nil)
	f.publish(chA, 6, nil)
	require.ErrorIs(t, h.result(), boom)
	require.Equal(t, map[string]int64{chA: 5}, h.c.ResumePoints())
}

// TestCancelInsideHandler: the handler's context is Run's; cancelling it
// ends a blocked handler, Run returns nil, the event stays unacknowledged
// and the session is disconnected.
func TestCancelInsideHandler(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	h := newHarness(t, f, nil)
	entered := make(chan struct{})
	h.handler = func(ctx context.Context, d Delivery) error {
		if d.ReplayID == 7 {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	h.start(Subscription{chA, 5})
	f.waitFor(chConnect, nil)
	f.publish(chA, 6, nil)
	f.publish(chA, 7, nil)
	<-entered
	require.NoError(t, h.stop())
	require.Equal(t, map[string]int64{chA: 6}, h.c.ResumePoints())
	require.Len(t, f.messages(chDisconnect), 1)
}

// TestCancelDuringRealBackoff uses the real wait: a one-hour backoff ends
// as soon as the context does.
func TestCancelDuringRealBackoff(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	backingOff := make(chan struct{}, 1)
	c, err := New(Options{
		Endpoint:  func(context.Context) (string, error) { return "http://" + addr + "/cometd/62.0", nil },
		Transport: tr,
		Backoff: func(int) time.Duration {
			backingOff <- struct{}{}
			return time.Hour
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, []Subscription{{Channel: chA}}, func(context.Context, Delivery) error { return nil })
	}()
	<-backingOff
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return while backing off")
	}
}

// TestGapOnceAcrossFailures: a refused replay id is reported once, even
// when the resubscribe from the policy's -1 then meets a dropped session.
func TestGapOnceAcrossFailures(t *testing.T) {
	t.Parallel()
	const refused = "400::The replayId {42} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."
	f := newFake(t)
	f.on(chSubscribe, failOn(refused, nil, nil))
	f.on(chSubscribe, unknownClient)
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, 42})
	d := h.next()
	require.Equal(t, Gap, d.Kind)
	require.Equal(t, int64(42), d.ReplayID)
	f.waitFor(chConnect, func(m map[string]any) bool { return m["clientId"] == "client-2" })
	f.publish(chA, 50, nil)
	d = h.next()
	require.Equal(t, Event, d.Kind)
	require.Equal(t, int64(50), d.ReplayID)
	require.NoError(t, h.stop())
	require.Empty(t, h.deliv, "one refusal, one gap")
	var from []any
	for _, m := range f.messages(chSubscribe) {
		from = append(from, m["clientId"], replayExt(m)[chA])
	}
	require.Equal(t, []any{"client-1", float64(42), "client-1", float64(-1), "client-2", float64(-1)}, from)
}

// TestFilteredSubscriptionReplayMap: the replay map of a filtered
// subscription names both the subscription and its bare channel, since
// EMP-Connector (Salesforce's reference client) keys it by the bare channel.
func TestFilteredSubscriptionReplayMap(t *testing.T) {
	t.Parallel()
	const filtered = chC + "?OwnerId=005xx"
	f := newFake(t)
	h := newHarness(t, f, nil)
	h.start(Subscription{filtered, 12}, Subscription{chA, 3})
	f.waitFor(chConnect, nil)
	require.NoError(t, h.stop())
	got := map[string]map[string]any{}
	for _, m := range f.messages(chSubscribe) {
		got[m["subscription"].(string)] = replayExt(m)
	}
	require.Equal(t, map[string]map[string]any{
		filtered: {filtered: float64(12), chC: float64(12)},
		chA:      {chA: float64(3)},
	}, got)
}

// TestWildcardSubscriptionRefused: events of a wildcard subscription would
// arrive on channels the client cannot map back, and be dropped.
func TestWildcardSubscriptionRefused(t *testing.T) {
	t.Parallel()
	c, err := New(Options{Endpoint: func(context.Context) (string, error) { return "http://127.0.0.1:1/cometd/62.0", nil }})
	require.NoError(t, err)
	for _, ch := range []string{"/topic/*", "/data/**", "/topic/*?a=b"} {
		// Without the check, Run would try to reach the server until ctx ends.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := c.Run(ctx, []Subscription{{Channel: ch, ReplayID: ReplayLatest}}, func(context.Context, Delivery) error { return nil })
		cancel()
		require.ErrorContains(t, err, "wildcard", ch)
	}
}

// TestResumePointsWhileRunningAndRunAgain reads the resume points from
// another goroutine while events flow (-race checks it), then runs the
// same client again with other subscriptions.
func TestResumePointsWhileRunningAndRunAgain(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, 5})
	f.waitFor(chConnect, nil)
	stopReading := make(chan struct{})
	readerDone := make(chan struct{})
	var backwards atomic.Bool
	go func() {
		defer close(readerDone)
		last := int64(0)
		for {
			select {
			case <-stopReading:
				return
			default:
			}
			id := h.c.ResumePoints()[chA]
			if id < last {
				backwards.Store(true)
			}
			last = id
		}
	}()
	for i := range int64(20) {
		f.publish(chA, 10+i, nil)
	}
	for range 20 {
		h.next()
	}
	close(stopReading)
	<-readerDone
	require.False(t, backwards.Load(), "a resume point went backwards")
	require.NoError(t, h.stop())
	require.Equal(t, map[string]int64{chA: 29}, h.c.ResumePoints())

	// A second Run starts from its own subscriptions.
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() {
		done <- h.c.Run(ctx, []Subscription{{Channel: chB, ReplayID: 77}}, func(context.Context, Delivery) error { return nil })
	}()
	m := f.waitFor(chSubscribe, func(m map[string]any) bool { return m["subscription"] == chB })
	require.Equal(t, map[string]any{chB: float64(77)}, replayExt(m))
	require.Equal(t, map[string]int64{chB: 77}, h.c.ResumePoints())
	cancel()
	require.NoError(t, <-done)
}

// TestEarlyEmptyLongPollsBackOff: a server (or proxy) that answers every
// /meta/connect at once, empty, would otherwise be polled in a hot loop.
// The first connect of a session returns at once on Salesforce: no wait.
func TestEarlyEmptyLongPollsBackOff(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.advice = map[string]any{"reconnect": "retry", "interval": 0, "timeout": 10000}
	f.hold = time.Millisecond // far below the advised 10 s, even on a loaded machine
	var connects atomic.Int32
	seen := make(chan struct{})
	f.onEvery(chConnect, func(map[string]any) []map[string]any {
		if connects.Add(1) == 6 {
			close(seen)
		}
		return nil
	})
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, ReplayLatest})
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		t.Fatal("fewer than 6 connects")
	}
	require.NoError(t, h.stop())
	waits := h.recordedWaits()
	require.GreaterOrEqual(t, len(waits), 4, "empty long polls that returned at once were repeated without a wait")
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}, waits[:4])
	_, rehandshakes, _ := h.obs.snapshot()
	require.Empty(t, rehandshakes, "the session is kept")
}
