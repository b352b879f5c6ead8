package connector

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// testWriter is the in-test AgentWork sink used until the writer branch is merged: one insert
// per offer, a look-up per check, reports through the router's inbox.
type testWriter struct {
	d  writerDeps
	mu sync.Mutex
	q  []routing.Command
	wk chan struct{}
}

func (w *testWriter) Do(c routing.Command) {
	w.mu.Lock()
	w.q = append(w.q, c)
	w.mu.Unlock()
	select {
	case w.wk <- struct{}{}:
	default:
	}
}

func (w *testWriter) Run(ctx context.Context) error {
	for {
		w.mu.Lock()
		q := w.q
		w.q = nil
		w.mu.Unlock()
		for _, c := range q {
			w.handle(ctx, c)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wk:
		}
	}
}

func (w *testWriter) handle(ctx context.Context, c routing.Command) {
	switch c.Type {
	case routing.CommandOffer:
		wt := float64(max(c.Weight, 1))
		id, err := w.d.Client.Create(ctx, "AgentWork", salesforce.NewAgentWork{ServiceChannelID: w.d.Channels[c.Channel],
			WorkItemID: c.WorkID, UserID: c.AgentID, PendingServiceRoutingID: c.PSR, CapacityWeight: &wt})
		if err != nil {
			_ = w.d.Report(ctx, WriteResult{Command: c, Event: &routing.Event{Type: routing.EventOfferDeclined, WorkID: c.WorkID, AgentID: c.AgentID, Outcome: routing.OutcomeInsertFailed}})
			return
		}
		_ = w.d.Report(ctx, WriteResult{Command: c, AgentWorkID: id})
	case routing.CommandCheckOffer:
		var ev *routing.Event
		found := false
		for aw, err := range salesforce.QueryAs[salesforce.AgentWork](ctx, w.d.Client,
			"SELECT Id, Status FROM AgentWork WHERE PendingServiceRoutingId = '"+c.PSR+"' AND UserId = '"+c.AgentID+"'") {
			if err != nil {
				return
			}
			found = true
			if e, ok := agentWorkEvent(aw.Status, AgentWorkRef{UserID: c.AgentID, WorkID: c.WorkID, Ours: true}); ok {
				ev = &e
			}
		}
		if !found {
			ev = &routing.Event{Type: routing.EventOfferDeclined, WorkID: c.WorkID, AgentID: c.AgentID, Outcome: routing.OutcomeInsertFailed}
		}
		_ = w.d.Report(ctx, WriteResult{Command: c, Event: ev})
	}
}

func init() {
	if newWriter == nil {
		newWriter = func(d writerDeps) (writerPart, error) { return &testWriter{d: d, wk: make(chan struct{}, 1)}, nil }
	}
}

// fakeClock is the emulator's clock in the end-to-end tests: push timeouts fire when a test
// moves it.
type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// org is one daemon routing one emulator org.
type org struct {
	t     *testing.T
	em    *emulator.Emulator
	d     *daemon
	clock *fakeClock
}

const (
	agent1 = "agent01@omniroute.demo"
	agent2 = "agent02@omniroute.demo"
	agent3 = "agent03@omniroute.demo"
)

// newEnv starts an emulator (demo org; agents 01-03 hold every skill) and the daemon, ready.
func newEnv(t *testing.T, deletes bool, mutate func(*Config)) *org {
	t.Helper()
	seed := demoSeed()
	for i, u := range seed.Users {
		if slices.Contains([]string{agent1, agent2, agent3}, u.Username) {
			seed.Users[i].Skills = map[string]float64{"English": 8, "German": 6, "Billing": 3, "Technical": 5}
		}
	}
	clock := &fakeClock{}
	em, err := emulator.New(emulator.Options{Seed: seed, ChannelDeletes: deletes, Now: clock.Now, RandSeed: 1})
	require.NoError(t, err)
	t.Cleanup(em.Close)
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	cfg := daemonConfig(t, srv.URL)
	cfg.LogLevel = "info"
	cfg.WaitingCheck.Duration = 300 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	d := startDaemon(t, cfg)
	d.waitCondition(t, CondReconcileApplied)
	return &org{t: t, em: em, d: d, clock: clock}
}

func (e *org) presence(user, status string) {
	e.t.Helper()
	require.NoError(e.t, e.em.SetPresence(user, status))
}

func (e *org) work(req emulator.WorkRequest) emulator.WorkResult {
	e.t.Helper()
	if req.Channel == "" {
		req.Channel = "Chat"
	}
	if req.Queue == "" {
		req.Queue = "Support_EN"
	}
	w, err := e.em.CreateWork(req)
	require.NoError(e.t, err)
	return w
}

// waitAW waits until the work item has an AgentWork in status (for user, when given) and
// returns it.
func (e *org) waitAW(workItem, status, user string) emulator.AgentWorkInfo {
	e.t.Helper()
	var found emulator.AgentWorkInfo
	require.Eventually(e.t, func() bool {
		for _, aw := range e.em.AgentWorks() {
			if aw.WorkItemID == workItem && aw.Status == status && (user == "" || aw.Username == user) {
				found = aw
				return true
			}
		}
		return false
	}, 15*time.Second, 10*time.Millisecond, "no %s AgentWork for %s (%s); agentwork: %+v\nlogs:\n%s", status, workItem, user, e.em.AgentWorks(), e.d.logs.String())
	return found
}

// count returns how many AgentWorks the work item has.
func (e *org) count(workItem string) int {
	n := 0
	for _, aw := range e.em.AgentWorks() {
		if aw.WorkItemID == workItem {
			n++
		}
	}
	return n
}

// invariants checks the emulator's history: no PSR ever has two open AgentWorks at once, and
// each listed work item ends with exactly one accepted AgentWork.
func (e *org) invariants(accepted ...string) {
	e.t.Helper()
	open := map[string]map[string]bool{} // PSR -> open AgentWork ids
	var after int64
	for {
		page, err := e.em.History(after, 10000)
		require.NoError(e.t, err)
		for _, h := range page.Entries {
			after = h.Seq
			if h.Entity != "AgentWork" {
				continue
			}
			psr, _ := h.Fields["PendingServiceRoutingId"].(string)
			status, _ := h.Fields["Status"].(string)
			if psr == "" {
				continue
			}
			if open[psr] == nil {
				open[psr] = map[string]bool{}
			}
			if status == "Assigned" || status == "Opened" {
				open[psr][h.ID] = true
			} else {
				delete(open[psr], h.ID)
			}
			require.LessOrEqual(e.t, len(open[psr]), 1, "PSR %s has two open AgentWorks at seq %d", psr, h.Seq)
		}
		if page.Done || len(page.Entries) == 0 {
			break
		}
	}
	for _, w := range accepted {
		n := 0
		for _, aw := range e.em.AgentWorks() {
			if aw.WorkItemID == w && slices.ContainsFunc(aw.History, func(s emulator.StatusChange) bool { return s.Status == "Opened" }) {
				n++
			}
		}
		require.Equal(e.t, 1, n, "work %s has %d accepted AgentWorks: %+v", w, n, e.em.AgentWorks())
	}
}

func bothDeleteModes(t *testing.T, f func(t *testing.T, deletes bool)) {
	for _, deletes := range []bool{false, true} {
		name := "deletes_off"
		if deletes {
			name = "deletes_on"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, deletes)
		})
	}
}

// TestE2EAcceptDeclineTimeoutOffline: the Expected Behavior cases of one offer: accept;
// decline, re-routed to someone else; push timeout, re-routed; the agent goes offline,
// re-routed.
func TestE2EAcceptDeclineTimeoutOffline(t *testing.T) {
	t.Parallel()
	bothDeleteModes(t, func(t *testing.T, deletes bool) {
		e := newEnv(t, deletes, nil)
		e.presence(agent1, "Available")
		w := e.work(emulator.WorkRequest{})
		aw := e.waitAW(w.WorkItemID, "Assigned", agent1)
		require.NoError(t, e.em.AcceptWork(aw.ID))

		// Decline: re-routed to agent02 once agent01 is the only one who declined.
		e.presence(agent2, "Available")
		w2 := e.work(emulator.WorkRequest{PreferredUser: agent1})
		aw2 := e.waitAW(w2.WorkItemID, "Assigned", agent1)
		require.NoError(t, e.em.DeclineWork(aw2.ID, "busy"))
		aw2b := e.waitAW(w2.WorkItemID, "Assigned", agent2)
		require.NoError(t, e.em.AcceptWork(aw2b.ID))

		// Push timeout: agent03 lets it time out; it goes to agent02.
		e.presence(agent3, "Available")
		w3 := e.work(emulator.WorkRequest{PreferredUser: agent3})
		e.waitAW(w3.WorkItemID, "Assigned", agent3)
		e.clock.Advance(31 * time.Second)
		e.em.RunTimers()
		e.waitAW(w3.WorkItemID, "DeclinedOnPushTimeout", agent3)
		aw3 := e.waitAW(w3.WorkItemID, "Assigned", "")
		require.NotEqual(t, agent3, aw3.Username)
		require.NoError(t, e.em.AcceptWork(aw3.ID))

		// Agent goes offline with an offer: Unavailable, re-routed. (After the push timeout
		// agent03 gets nothing until a presence change: log in again.)
		e.presence(agent3, "Offline")
		e.presence(agent3, "Available")
		w4 := e.work(emulator.WorkRequest{PreferredUser: agent3})
		e.waitAW(w4.WorkItemID, "Assigned", agent3)
		e.presence(agent3, "Offline")
		e.waitAW(w4.WorkItemID, "Unavailable", agent3)
		aw4 := e.waitAW(w4.WorkItemID, "Assigned", "")
		require.NotEqual(t, agent3, aw4.Username)
		require.NoError(t, e.em.AcceptWork(aw4.ID))

		e.invariants(w.WorkItemID, w2.WorkItemID, w3.WorkItemID, w4.WorkItemID)
	})
}
