package salesforce

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

// Tests of the defects issue 9 found by trying the client under faults, each driven through an
// emulator fault. (The bayeux client's own are in bayeux/bayeux_test.go.)

// A REST GET whose body is cut partway was not retried: a body read error counted as a
// permanent decode error. It is a network error, and a safe request retries it.
func TestCutRESTBodyIsRetried(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	c, _ := o.client(t, GrantClientCredentials, nil)
	_, err := c.Limits(t.Context()) // token first, so the cut meets the query
	require.NoError(t, err)
	require.NoError(t, o.Emu.InjectTruncateFault(emulator.TruncateFault{Count: 1, Scope: "rest"}))
	n := 0
	for _, err := range c.Query(t.Context(), "SELECT Id FROM ServiceChannel") {
		require.NoError(t, err)
		n++
	}
	require.Equal(t, 4, n)
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.retries.WithLabelValues("query", "network")))
	require.Equal(t, 2.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("query", "200")), "the cut answer was a 200")
}

// An event that could not be decoded was logged, counted and skipped. Now it reaches the
// handler as a bad event (with its replay id, which may be committed), between the events
// around it, in order.
func TestStreamHandsOverBadEvents(t *testing.T) {
	t.Parallel()
	o, rs, _ := liveStream(t)
	noHeader, err := o.Emu.InjectMalformedEvent(psrChannel, emulator.MalformedNoHeader)
	require.NoError(t, err)
	notObject, err := o.Emu.InjectMalformedEvent(psrChannel, emulator.MalformedPayloadType)
	require.NoError(t, err)
	w := work(t, o)
	for _, id := range []int64{noHeader, notObject} {
		m := rs.next(t)
		require.NotNil(t, m.Bad, "%+v", m)
		require.Nil(t, m.Event)
		require.Equal(t, psrChannel, m.Bad.Channel)
		require.Equal(t, id, m.Bad.ReplayID)
		require.Equal(t, id, m.ReplayID())
		require.Error(t, m.Bad.Err)
		require.Contains(t, string(m.Bad.Raw), "emulator-malformed")
		require.NoError(t, rs.s.Commit(t.Context(), psrChannel, id))
	}
	m := rs.nextCreate(t, w.PSRID)
	require.Greater(t, m.Event.ReplayID, notObject)
	require.Equal(t, 2.0, testutil.ToFloat64(rs.s.metrics.badEvents.WithLabelValues(psrChannel)))
}

// Commit accepted any id, so out-of-order commits could move a checkpoint backwards or past
// events not yet handled. Commits are monotonic per channel, and an id not delivered yet is
// refused.
func TestStreamCommitsAreMonotonic(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	store := &memStore{}
	rs := o.stream(t, func(so *StreamOptions) { so.Checkpoints = store })
	w1, w2 := work(t, o), work(t, o)
	id1 := rs.nextCreate(t, w1.PSRID).Event.ReplayID
	id2 := rs.nextCreate(t, w2.PSRID).Event.ReplayID
	require.NoError(t, rs.s.Commit(t.Context(), psrChannel, id2))
	require.NoError(t, rs.s.Commit(t.Context(), psrChannel, id1), "an older id changes nothing")
	require.Equal(t, map[string]int64{psrChannel: id2}, rs.s.Committed())
	require.ErrorContains(t, rs.s.Commit(t.Context(), psrChannel, id2+1000), "not delivered yet")
	stored, err := store.Load(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]int64{psrChannel: id2}, stored)
}

// After a refused replay id the checkpoint was deleted, and a crash before the next commit
// restarted from new events with no report. No checkpoint where one was expected must reach
// the caller: the refused id stays stored until the next commit (a restart meets the refusal
// again), and any channel that starts without a checkpoint, from -1, is reported as Missed.
func TestStreamVanishedCheckpointIsReported(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	store := &memStore{}
	committed := commitThenExpire(t, o, store)

	for range 2 { // the second run is the restart after a crash before any commit
		rs := o.stream(t, func(so *StreamOptions) { so.Checkpoints = store })
		g := rs.next(t)
		require.NotNil(t, g.Missed, "%+v", g)
		require.Equal(t, ReplayRefused, g.Missed.Cause)
		require.Equal(t, committed, g.Missed.ReplayID)
		require.NoError(t, rs.stop())
	}

	// A store without this channel's checkpoint (lost, or never written): the start from -1
	// is reported, once the subscription is live.
	reg := prometheus.NewPedanticRegistry()
	rs := o.stream(t, func(so *StreamOptions) {
		so.Checkpoints, so.StartFrom, so.Registerer = &memStore{}, ReplayLatest, reg
	})
	g := rs.next(t)
	require.Equal(t, &Missed{Channel: psrChannel, Cause: NotReplayed, ReplayID: ReplayLatest, ResumeFrom: ReplayLatest}, g.Missed)
	require.True(t, rs.s.Live())
	require.Equal(t, 1.0, testutil.ToFloat64(rs.s.metrics.missed.WithLabelValues(psrChannel, "not_replayed")))
}

// failingStore is a CheckpointStore whose Save always fails.
type failingStore struct{ memStore }

func (f *failingStore) Save(context.Context, map[string]int64) error { return errors.New("disk full") }

// A failed save leaves the committed position where it was.
func TestStreamCommitFailureKeepsPosition(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	rs := o.stream(t, func(so *StreamOptions) { so.Checkpoints = &failingStore{} })
	w := work(t, o)
	m := rs.nextCreate(t, w.PSRID)
	require.ErrorContains(t, rs.s.Commit(t.Context(), psrChannel, m.Event.ReplayID), "disk full")
	require.Empty(t, rs.s.Committed())
	require.Error(t, rs.s.Commit(t.Context(), "/data/Other", 1), "not a channel of the stream")
}
