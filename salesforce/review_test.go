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

// Commit took any id below the delivered ones, 0 and the special -1 and -2 included: with no
// commit yet on the channel, committing a bad event's unknown id (0) or -2 stored it, and a
// restart subscribed from there (from -2, with no Missed). Only a real replay id (> 0) commits:
// 0 (Message.ReplayID of a message without one) changes nothing, -1 and -2 are refused.
func TestReviewCommitRefusesSpecialIDs(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	store := &memStore{}
	rs := o.stream(t, func(so *StreamOptions) { so.Checkpoints = store })
	w := work(t, o)
	rs.nextCreate(t, w.PSRID)
	require.NoError(t, rs.s.Commit(t.Context(), psrChannel, 0))
	for _, id := range []int64{ReplayLatest, ReplayAll} {
		require.Error(t, rs.s.Commit(t.Context(), psrChannel, id), "id %d", id)
	}
	require.Empty(t, rs.s.Committed())
	stored, err := store.Load(t.Context())
	require.NoError(t, err)
	require.Empty(t, stored)
}
