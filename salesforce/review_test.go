package salesforce

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Defects the second review of issue 9 found, each with the test that failed before its fix.

const chnChannel = "/data/ExternalRoutingChannel__chn"

// nextOn skips messages until one on channel arrives.
func (r *runningStream) nextOn(t *testing.T, channel string) Message {
	t.Helper()
	for {
		if m := r.next(t); m.Channel == channel {
			return m
		}
	}
}

// A refused replay id was dropped from the in-memory checkpoint, so a commit on ANOTHER
// channel saved the store without it: the refused channel's checkpoint vanished, and a
// restart from -2 (StartFrom ReplayAll) subscribed it with no report, though the caller may
// have crashed before it reconciled. The refused id must stay stored until the refused
// channel itself commits.
func TestReviewRefusedCheckpointSurvivesOtherChannelsCommit(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	store := &memStore{}
	both := func(so *StreamOptions) { so.Checkpoints, so.Channels = store, []string{psrChannel, chnChannel} }

	rs := o.stream(t, both)
	w := work(t, o)
	for _, ch := range []string{psrChannel, chnChannel} {
		m := rs.nextOn(t, ch)
		require.NotNil(t, m.Event, "%+v", m)
		require.Equal(t, []string{w.PSRID}, m.Event.RecordIDs)
		require.NoError(t, rs.s.Commit(t.Context(), ch, m.Event.ReplayID))
	}
	require.NoError(t, rs.stop())
	before, err := store.Load(t.Context())
	require.NoError(t, err)
	refusedPSR := before[psrChannel]
	o.Emu.ExpireReplay()

	// Both ids are refused; new work; only the custom channel's event is committed before a crash.
	rs = o.stream(t, both)
	for range 2 {
		m := rs.next(t)
		require.NotNil(t, m.Missed, "%+v", m)
		require.Equal(t, ReplayRefused, m.Missed.Cause)
	}
	w2 := work(t, o)
	m := rs.nextOn(t, chnChannel)
	require.NotNil(t, m.Event, "%+v", m)
	require.Equal(t, []string{w2.PSRID}, m.Event.RecordIDs)
	require.NoError(t, rs.s.Commit(t.Context(), chnChannel, m.Event.ReplayID))
	stored, err := store.Load(t.Context())
	require.NoError(t, err)
	require.Equal(t, refusedPSR, stored[psrChannel], "the refused PSR checkpoint must stay stored")
	require.NoError(t, rs.stop())

	// The restart meets the refusal again: the caller is told.
	rs = o.stream(t, both)
	g := rs.nextOn(t, psrChannel)
	require.NotNil(t, g.Missed, "the PSR channel restarted with no report: %+v", g)
	require.Equal(t, ReplayRefused, g.Missed.Cause)
}
