package salesforce

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
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

// Shutdown returned at once while Run was still getting its first token (or loading the
// checkpoints): the bayeux client was not running yet, so nothing stopped Run, which went on for
// as long as the token endpoint took (up to a minute) and then ran until its context ended. The
// daemon's run group waited on it past its shutdown deadline. Shutdown stops Run in every phase
// and returns once Run has.
func TestReviewShutdownWhileGettingTheFirstToken(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	require.NoError(t, o.Emu.SetLatency(emulator.LatencyFault{MS: 5000, Scope: "token"}))
	topts := o.tokenOptions(t, GrantClientCredentials)
	topts.HTTPClient = bubbleClient()
	ts, err := NewTokenSource(topts)
	require.NoError(t, err)
	s, err := NewStream(StreamOptions{Tokens: ts, HTTPClient: bubbleClient(), Channels: []string{psrChannel}, Logger: testLogger(t)})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), func(context.Context, Message) error { return nil }) }()
	time.Sleep(200 * time.Millisecond) // Run is waiting for the token, which takes 5 s
	require.Zero(t, o.tokenRequests(), "the token request is still in flight")
	// The shared token fetch runs to its own end (goleak checks it is gone).
	t.Cleanup(func() {
		require.Eventually(t, func() bool { return o.tokenRequests() > 0 }, 20*time.Second, 10*time.Millisecond)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	shutErr := s.Shutdown(ctx)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after Shutdown")
	}
	require.NoError(t, shutErr)
	require.Less(t, time.Since(start), time.Second)
}

// Checked, found fine: a create whose answer comes after RequestTimeout (the request was sent,
// its outcome is unknown) is sent once, single or as a collection, and the error is not an
// *APIError (the daemon's writer treats it as unknown and looks the record up).
func TestReviewLateCreateIsSentOnce(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	c, _ := o.client(t, GrantClientCredentials, func(opts *Options) { opts.RequestTimeout = 300 * time.Millisecond })
	_, err := c.Limits(t.Context()) // the token first
	require.NoError(t, err)
	require.NoError(t, o.Emu.SetLatency(emulator.LatencyFault{MS: 2000, Scope: "rest"}))
	posts := func() int {
		n := 0
		for _, r := range o.Emu.Requests() {
			if r.Method == "POST" && strings.HasPrefix(r.Path, "/services/data/") {
				n++
			}
		}
		return n
	}
	_, err = c.Create(t.Context(), "Case", map[string]any{"Subject": "late"})
	require.Error(t, err)
	var ae *APIError
	require.NotErrorAs(t, err, &ae)
	_, err = c.CreateCollection(t.Context(), []Record{{Type: "Case", Fields: map[string]any{"Subject": "late"}}}, false)
	require.Error(t, err)
	require.NotErrorAs(t, err, &ae)
	require.NoError(t, o.Emu.SetLatency(emulator.LatencyFault{MS: 0, Scope: "rest"}))
	require.Eventually(t, func() bool { return posts() == 2 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, 2, posts(), "each create was sent once")
}

// A second Run while one ran reset the running one's bookkeeping (delivered and committed ids)
// before the bayeux client refused it, so the running stream then refused to commit an event
// it had delivered. A second Run is refused before it touches anything.
func TestReviewSecondRunLeavesTheFirstAlone(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	rs := o.stream(t, nil)
	w := work(t, o)
	m := rs.nextCreate(t, w.PSRID)
	err := rs.s.Run(t.Context(), func(context.Context, Message) error { return nil })
	require.ErrorContains(t, err, "already running")
	require.NoError(t, rs.s.Commit(t.Context(), psrChannel, m.Event.ReplayID))
	require.Equal(t, map[string]int64{psrChannel: m.Event.ReplayID}, rs.s.Committed())
}
