package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce"
)

// testRouter is a Router driven in the test's goroutine (handle), with its commits recorded.
func testRouter(t *testing.T, now *time.Time) (*Router, *[]int64) {
	t.Helper()
	data, err := os.ReadFile(demoMapping)
	require.NoError(t, err)
	m, err := mapping.Parse(data, demoMapping)
	require.NoError(t, err)
	table, err := routing.Compile(m)
	require.NoError(t, err)
	var commits []int64
	r := NewRouter(RouterOptions{Table: table, Names: NewNames(mapping.Org{}, m),
		Commit: func(_ string, id int64) { commits = append(commits, id) },
		Now:    func() time.Time { return *now }})
	r.handle(inMsg{kind: msgSnapshot, snap: &reconcileData{agentWork: map[string]AgentWorkRef{}, uspUser: map[string]string{"0Jd000000000001AAA": "005000000000001AAA"}}})
	require.False(t, r.reconciling)
	return r, &commits
}

// newRouter is testRouter at a fixed time.
func newRouter(t *testing.T) (*Router, time.Time) {
	t.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r, _ := testRouter(t, &now)
	return r, now
}

// presenceClosed is the UserServicePresence UPDATE of a logout, or the first half of a status
// change.
func presenceClosed(replay int64, tx string) salesforce.Message {
	ev := &salesforce.ChangeEvent{Channel: "/data/X__chn", ReplayID: replay, Source: salesforce.SourceCDC,
		Entity: "UserServicePresence", ChangeType: salesforce.ChangeUpdate, RecordIDs: []string{"0Jd000000000001AAA"},
		ChangedFields: []string{"IsCurrentState"}, Fields: map[string]json.RawMessage{"IsCurrentState": json.RawMessage("false")},
		Presence: &salesforce.UserServicePresence{}, TransactionKey: tx}
	return salesforce.Message{Channel: ev.Channel, Event: ev}
}

// noise is a PSR update routing ignores.
func noise(replay int64, tx string) salesforce.Message {
	ev := &salesforce.ChangeEvent{Channel: "/data/X__chn", ReplayID: replay, Source: salesforce.SourceCDC,
		Entity: "PendingServiceRouting", ChangeType: salesforce.ChangeUpdate, RecordIDs: []string{"0JR000000000001AAA"},
		ChangedFields: []string{"SystemModstamp"}, Fields: map[string]json.RawMessage{"SystemModstamp": json.RawMessage(`"2026-01-01T00:00:00Z"`)},
		PSR: &salesforce.PendingServiceRouting{}, TransactionKey: tx}
	return salesforce.Message{Channel: ev.Channel, Event: ev}
}

// TestReplayIDCommittedOnceEveryEventApplied: events of the custom channel can share a replay
// id; it is committed only once a later id shows every event carrying it was delivered and
// each of them is applied (a logout waits for the rest of its transaction), in order.
func TestReplayIDCommittedOnceEveryEventApplied(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r, commits := testRouter(t, &now)

	r.handle(inMsg{kind: msgStream, stream: noise(10, "tx1")})
	require.Empty(t, *commits, "10 may be shared by events still to come")
	r.handle(inMsg{kind: msgStream, stream: presenceClosed(10, "tx1")})
	r.handle(inMsg{kind: msgStream, stream: noise(11, "tx1")})
	require.Empty(t, *commits, "the logout carrying 10 waits for the rest of its transaction")
	r.handle(inMsg{kind: msgStream, stream: noise(12, "tx2")})
	require.Equal(t, []int64{11}, *commits, "tx1 ended: the logout applied, 10 and 11 done at once (the newest is committed)")

	// A logout at the end of a quiet stream is applied by the timer, and its id committed
	// once a later one arrives.
	r.handle(inMsg{kind: msgStream, stream: presenceClosed(13, "tx3")})
	require.Equal(t, []int64{11, 12}, *commits)
	now = now.Add(logoutWait)
	r.flushLogouts("", true)
	r.handle(inMsg{kind: msgStream, stream: noise(14, "tx4")})
	require.Equal(t, []int64{11, 12, 13}, *commits)
	require.Empty(t, r.logouts)
}

// awStatus is an AgentWork UPDATE of Status, as CDC sends it (only what changed).
func awStatus(replay int64, id, status string) salesforce.Message {
	ev := &salesforce.ChangeEvent{Channel: "/data/X__chn", ReplayID: replay, Source: salesforce.SourceCDC,
		Entity: "AgentWork", ChangeType: salesforce.ChangeUpdate, RecordIDs: []string{id},
		ChangedFields: []string{"Status"}, Fields: map[string]json.RawMessage{"Status": json.RawMessage(`"` + status + `"`)},
		AgentWork: &salesforce.AgentWork{Status: status}, TransactionKey: "tx" + id}
	return salesforce.Message{Channel: ev.Channel, Event: ev}
}

// TestOutcomeOfAnEarlierAgentWorkLeavesTheOffer: an outcome names no AgentWork; one of an
// earlier offer of the same work to the same agent (replayed, or late) must not end the
// current offer. One that comes before the writer reported the current offer's AgentWork
// waits for it.
func TestOutcomeOfAnEarlierAgentWorkLeavesTheOffer(t *testing.T) {
	t.Parallel()
	r, now := newRouter(t)
	const work, agent, psr = "500000000000001AAA", "005000000000001AAA", "0JR000000000001AAA"
	ref := AgentWorkRef{UserID: agent, WorkID: work, PSR: psr, Ours: true}
	r.agentWork["0Bz000000000001AAA"] = ref // the earlier offer's, still known
	r.agentWork["0Bz000000000002AAA"] = ref
	r.offers[work] = offerRef{psr: psr, agent: agent, at: now, awID: "0Bz000000000002AAA"}

	r.handle(inMsg{kind: msgStream, stream: awStatus(20, "0Bz000000000001AAA", salesforce.AgentWorkDeclined)})
	require.Contains(t, r.offers, work, "the earlier AgentWork's decline ended the current offer")

	// The writer has not reported the current offer's AgentWork yet: the outcome waits.
	r.offers[work] = offerRef{psr: psr, agent: agent, at: now}
	r.handle(inMsg{kind: msgStream, stream: awStatus(21, "0Bz000000000001AAA", salesforce.AgentWorkDeclined)})
	require.Contains(t, r.offers, work)
	r.handle(inMsg{kind: msgResult, result: WriteResult{Command: routing.Command{Type: routing.CommandOffer, WorkID: work, AgentID: agent, PSR: psr},
		AgentWorkID: "0Bz000000000003AAA"}})
	require.Contains(t, r.offers, work, "the parked outcome was of another AgentWork")

	// The current offer's own outcome ends it.
	r.handle(inMsg{kind: msgStream, stream: awStatus(22, "0Bz000000000003AAA", salesforce.AgentWorkDeclined)})
	require.NotContains(t, r.offers, work)
}

// TestFailedRequeueReconciles: a requeue that failed has no engine event (the engine waits for
// the new PSR that will never come): the router reconciles.
func TestFailedRequeueReconciles(t *testing.T) {
	t.Parallel()
	r, _ := newRouter(t)
	reconciles := 0
	r.opts.Reconcile = func(Names) { reconciles++ }
	r.handle(inMsg{kind: msgResult, result: WriteResult{Command: routing.Command{Type: routing.CommandRequeue, WorkID: "500000000000001AAA",
		TargetID: "00G000000000001AAA"}}})
	require.Zero(t, reconciles, "a requeue that succeeded needs nothing")
	r.handle(inMsg{kind: msgResult, result: WriteResult{Command: routing.Command{Type: routing.CommandRequeue, WorkID: "500000000000001AAA",
		TargetID: "00G000000000001AAA"}, Err: errors.New("boom")}})
	require.Equal(t, 1, reconciles)
	require.True(t, r.reconciling)
}

// presenceRow is a UserServicePresence event of row id for the agent of testRouter.
func presenceRow(replay int64, tx, id string, ct salesforce.ChangeType, current bool) salesforce.Message {
	cur := json.RawMessage("false")
	if current {
		cur = json.RawMessage("true")
	}
	ev := &salesforce.ChangeEvent{Channel: "/data/X__chn", ReplayID: replay, Source: salesforce.SourceCDC,
		Entity: "UserServicePresence", ChangeType: ct, RecordIDs: []string{id}, TransactionKey: tx,
		ChangedFields: []string{"IsCurrentState"},
		Fields: map[string]json.RawMessage{"IsCurrentState": cur, "UserId": json.RawMessage(`"005000000000001AAA"`),
			"ServicePresenceStatusId": json.RawMessage(`"0N5000000000001AAA"`)},
		Presence: &salesforce.UserServicePresence{IsCurrentState: current, UserID: "005000000000001AAA", ServicePresenceStatusID: "0N5000000000001AAA"}}
	return salesforce.Message{Channel: ev.Channel, Event: ev}
}

func agentPresence(r *Router, id string) string {
	agents, _, _ := r.eng.Agents("", 0)
	for _, a := range agents {
		if a.ID == id {
			return a.Presence
		}
	}
	return ""
}

// TestPresenceRowClosedAgainIsNoLogout: presence is keyed on the row: a row the agent closed
// earlier that arrives again closed (noise, a replay) after a newer row is not a logout.
func TestPresenceRowClosedAgainIsNoLogout(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r, _ := testRouter(t, &now)
	const user = "005000000000001AAA"
	// A status change: the current row (from the snapshot) closes, a new one opens.
	r.handle(inMsg{kind: msgStream, stream: presenceRow(30, "tx1", "0Jd000000000001AAA", salesforce.ChangeUpdate, false)})
	r.handle(inMsg{kind: msgStream, stream: presenceRow(30, "tx1", "0Jd000000000002AAA", salesforce.ChangeCreate, true)})
	r.handle(inMsg{kind: msgStream, stream: noise(31, "tx2")})
	require.Equal(t, "0N5000000000001AAA", agentPresence(r, user))
	// The first row arrives closed again.
	r.handle(inMsg{kind: msgStream, stream: presenceRow(32, "tx3", "0Jd000000000001AAA", salesforce.ChangeUpdate, false)})
	r.handle(inMsg{kind: msgStream, stream: noise(33, "tx4")})
	now = now.Add(logoutWait)
	r.flushLogouts("", true)
	require.Equal(t, "0N5000000000001AAA", agentPresence(r, user), "an earlier row closed again logged the agent out")
	// The current row closing is a logout.
	r.handle(inMsg{kind: msgStream, stream: presenceRow(34, "tx5", "0Jd000000000002AAA", salesforce.ChangeUpdate, false)})
	r.handle(inMsg{kind: msgStream, stream: noise(35, "tx6")})
	require.Equal(t, mapping.OfflineStatus, agentPresence(r, user))
}

// TestReadPSRNotRoutableIsNotWork: a CDC UPDATE carries only what changed, so an update of a
// PSR of another routing model, or not ready for routing, is read whole: what the read says
// decides, and such a PSR is not work.
func TestReadPSRNotRoutableIsNotWork(t *testing.T) {
	t.Parallel()
	r, now := newRouter(t)
	psrs := []salesforce.PendingServiceRouting{
		{ID: "0JR000000000001AAA", WorkItemID: "500000000000001AAA", RoutingModel: "QueueBased", IsReadyForRouting: true},
		{ID: "0JR000000000002AAA", WorkItemID: "500000000000002AAA", RoutingModel: salesforce.RoutingModelExternal},
		{ID: "0JR000000000003AAA", WorkItemID: "500000000000003AAA", RoutingModel: salesforce.RoutingModelExternal, IsReadyForRouting: true},
	}
	r.handle(inMsg{kind: msgRead, read: &readAnswer{req: readRequest{psrs: []string{psrs[0].ID, psrs[1].ID, psrs[2].ID}}, psrs: psrs}})
	require.NotContains(t, r.waiting, "500000000000001AAA", "a PSR of another routing model became work")
	require.NotContains(t, r.waiting, "500000000000002AAA", "a PSR not ready for routing became work")
	require.Contains(t, r.waiting, "500000000000003AAA")
	_, known := r.eng.Explain(now, "500000000000001AAA")
	require.False(t, known)
}

// missed is the stream's notice that events may have been missed.
func missed() salesforce.Message {
	return salesforce.Message{Channel: "/data/X__chn", Missed: &salesforce.Missed{Channel: "/data/X__chn", Cause: salesforce.NotReplayed, ReplayID: -1}}
}

// TestMissedBeforeTheReadsIsCovered: a notice of missed events that the router took before
// the reconcile's reads began is covered by that reconcile (a fresh start reconciles once);
// one taken after the reads began asks for another.
func TestMissedBeforeTheReadsIsCovered(t *testing.T) {
	t.Parallel()
	r, _ := newRouter(t)
	reconciles := 0
	r.opts.Reconcile = func(Names) { reconciles++ }
	snap := func() inMsg {
		return inMsg{kind: msgSnapshot, snap: &reconcileData{agentWork: map[string]AgentWorkRef{}, uspUser: map[string]string{}}}
	}

	r.handle(inMsg{kind: msgReconcile})
	r.handle(inMsg{kind: msgStream, stream: missed()})
	r.handle(inMsg{kind: msgReconcileReading})
	r.handle(snap())
	require.Equal(t, 1, reconciles, "the notice came before the reads: covered")
	require.False(t, r.reconciling)

	r.handle(inMsg{kind: msgReconcile})
	r.handle(inMsg{kind: msgReconcileReading})
	r.handle(inMsg{kind: msgStream, stream: missed()})
	r.handle(snap())
	require.Equal(t, 3, reconciles, "the notice came during the reads: reconcile again")
	require.True(t, r.reconciling)

	// A notice the stream delivered before the reads began, still queued: covered too; the
	// reads begin once the router says so.
	r.streamIn <- inMsg{kind: msgStream, stream: missed()}
	reading := make(chan struct{})
	r.handle(inMsg{kind: msgReconcileReading, done: reading})
	require.Empty(t, r.streamIn)
	select {
	case <-reading:
	default:
		t.Fatal("the reads were not released")
	}
	r.handle(snap())
	require.Equal(t, 3, reconciles)
	require.False(t, r.reconciling)
}

// TestStreamBlocksWhenTheReconcileBufferIsFull: events that arrive during a reconcile are
// buffered up to a bound; beyond it the stream waits (backpressure) instead of memory growing.
func TestStreamBlocksWhenTheReconcileBufferIsFull(t *testing.T) {
	t.Parallel()
	r, _ := newRouter(t)
	r.bufferCap = 8
	r.opts.Reconcile = func(Names) {} // the snapshot never comes
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = r.Run(ctx) }() // Run starts a reconcile
	reading := make(chan struct{})
	require.NoError(t, r.send(ctx, inMsg{kind: msgReconcileReading, done: reading}))
	<-reading
	sent := 0
	for range r.bufferCap + 200 {
		sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := r.HandleStream(sctx, noise(int64(100+sent), "tx"))
		scancel()
		if err != nil {
			break
		}
		sent++
	}
	require.Less(t, sent, r.bufferCap+200, "the stream never waited")
	var buffered int
	require.NoError(t, r.Query(ctx, func(r *Router) { buffered = len(r.buffer) }))
	require.LessOrEqual(t, buffered, r.bufferCap)
	// The snapshot arrives: the buffer is applied and the stream flows again.
	require.NoError(t, r.send(ctx, inMsg{kind: msgSnapshot, snap: &reconcileData{agentWork: map[string]AgentWorkRef{}, uspUser: map[string]string{}}}))
	require.NoError(t, r.HandleStream(ctx, noise(int64(100+sent), "tx")))
}

// TestOpenAgentWorkOfOursIsNotExternal: after a transfer, the open AgentWork of the work item
// is read to count Salesforce's AgentWork for the target; an AgentWork of ours found there (the
// work offered again before the writer's result arrived) is an offer, not external work.
func TestOpenAgentWorkOfOursIsNotExternal(t *testing.T) {
	t.Parallel()
	r, _ := newRouter(t)
	const work = "500000000000001AAA"
	r.handle(inMsg{kind: msgRead, read: &readAnswer{req: readRequest{openOf: work}, open: []salesforce.AgentWork{
		{ID: "0Bz000000000001AAA", WorkItemID: work, UserID: "005000000000001AAA", Status: salesforce.AgentWorkAssigned, RoutingModel: salesforce.RoutingModelExternal},
		{ID: "0Bz000000000002AAA", WorkItemID: work, UserID: "005000000000002AAA", Status: salesforce.AgentWorkAssigned},
	}}})
	require.NotContains(t, r.external, "0Bz000000000001AAA", "our own offer counted as external work")
	require.Contains(t, r.external, "0Bz000000000002AAA")
}

// TestLightCheckReadBeforeASnapshotKeepsItsWork: a light check read before a reconcile must
// not remove the work that reconcile found (its PSRs are newer than the check).
func TestLightCheckReadBeforeASnapshotKeepsItsWork(t *testing.T) {
	t.Parallel()
	r, now := newRouter(t)
	check := &lightCheck{seq: r.seq, ids: map[string]bool{}, external: map[string]bool{}} // read now: no PSR yet
	r.handle(inMsg{kind: msgReconcile})
	snap := &reconcileData{agentWork: map[string]AgentWorkRef{}, uspUser: map[string]string{}}
	snap.snap.Waiting = []routing.Work{{ID: "500000000000001AAA", PSR: "0JR000000000001AAA", Queue: "Support_EN", Channel: "Chat", RequestedAt: now}}
	r.handle(inMsg{kind: msgSnapshot, snap: snap})
	require.Contains(t, r.waiting, "500000000000001AAA")
	r.handle(inMsg{kind: msgCheck, check: check})
	require.Contains(t, r.waiting, "500000000000001AAA", "a check read before the snapshot removed the work it found")
	require.Contains(t, r.psrWork, "0JR000000000001AAA")
}

// TestSnapshotForgetsEndedAgentWork: the router's AgentWork map restarts from the snapshot,
// so records whose end it never saw do not stay forever.
func TestSnapshotForgetsEndedAgentWork(t *testing.T) {
	t.Parallel()
	r, _ := newRouter(t)
	r.agentWork["0Bz000000000001AAA"] = AgentWorkRef{UserID: "005000000000001AAA", WorkID: "500000000000001AAA", Ours: true}
	r.handle(inMsg{kind: msgReconcile})
	r.handle(inMsg{kind: msgSnapshot, snap: &reconcileData{uspUser: map[string]string{},
		agentWork: map[string]AgentWorkRef{"0Bz000000000002AAA": {UserID: "005000000000001AAA", WorkID: "500000000000002AAA", Ours: true}}}})
	require.NotContains(t, r.agentWork, "0Bz000000000001AAA")
	require.Contains(t, r.agentWork, "0Bz000000000002AAA")
}

// recordingSink is an AgentSink that keeps what it gets.
type recordingSink struct{ got map[string][]AgentMessage }

func (s *recordingSink) Deliver(user string, m AgentMessage) bool {
	s.got[user] = append(s.got[user], m)
	return true
}

// TestAgentInputIsTheAuthenticatedUsers: an agent's input always applies to the authenticated
// user, whatever agent id it names; an event an agent may not send is refused; a status the
// org does not have is not pushed, and counted as failed.
func TestAgentInputIsTheAuthenticatedUsers(t *testing.T) {
	t.Parallel()
	r, _ := newRouter(t)
	sink := &recordingSink{got: map[string][]AgentMessage{}}
	r.opts.Agents = sink
	const me, other = "005000000000001AAA", "005000000000002AAA"
	r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: me,
		Event: &routing.Event{Type: routing.EventAgentState, AgentID: other, State: mapping.State{Major: mapping.Ready}}}})
	snap := r.agentSnapshot(me)
	require.Equal(t, mapping.State{Major: mapping.Ready}, snap.Agent.State)
	for _, a := range snap.Agents {
		require.NotEqual(t, other, a.ID, "the id the client sent is never used")
	}
	require.NotEmpty(t, sink.got[me])
	require.Empty(t, sink.got[other])
	require.InDelta(t, 1, testutil.ToFloat64(r.m.presenceSync.WithLabelValues(syncToSalesforce, syncFailed)), 0,
		"the login's status is not in this org: not pushed, counted as failed")

	r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: me, Event: &routing.Event{Type: routing.EventWorkArrived,
		Work: routing.Work{ID: "570000000000001AAA", Queue: "Support_EN", Channel: "Chat"}}}})
	last := sink.got[me][len(sink.got[me])-1]
	require.NotNil(t, last.Command)
	require.Equal(t, routing.CommandRefused, last.Command.Type)
	require.Empty(t, r.eng.Queues(time.Time{})[0].Waiting, "an agent cannot make work")

	require.ErrorIs(t, r.FromAgent(t.Context(), AgentInput{User: me}), errNoAgentInput)
}

// TestConsoleReportActsOnlyOnTheReportersWork: an agent's console reporting another agent's
// AgentWork closed changes nothing: the other agent stays Busy Inbound with it.
func TestConsoleReportActsOnlyOnTheReportersWork(t *testing.T) {
	t.Parallel()
	r, _ := newRouter(t)
	const me, other = "005000000000001AAA", "005000000000002AAA"
	const aw, work = "0Bz000000000001AAA", "570000000000001AAA"
	r.apply(routing.Event{Type: routing.EventAgentState, AgentID: other, State: mapping.State{Major: mapping.Ready}})
	r.agentWork[aw] = AgentWorkRef{UserID: other, WorkID: work}
	r.external[aw] = work
	r.apply(routing.Event{Type: routing.EventExternalWork, AgentID: other, WorkID: work, Channel: "Chat"})
	require.Equal(t, "Inbound", r.agentSnapshot(other).Agent.State.Minor)

	r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: me,
		Report: &ConsoleReport{Kind: ReportWorkClosed, WorkID: work, AgentWorkID: aw}}})
	require.Contains(t, r.external, aw, "another agent's console closed this agent's work")
	require.Equal(t, mapping.State{Major: mapping.Busy, Minor: "Inbound"}, r.agentSnapshot(other).Agent.State)

	r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: other,
		Report: &ConsoleReport{Kind: ReportWorkClosed, WorkID: work, AgentWorkID: aw}}})
	require.NotContains(t, r.external, aw)
	require.Equal(t, mapping.Ready, r.agentSnapshot(other).Agent.State.Major)
}

// TestOffersThatEndUnacceptedLeaveNothingBehind: work offered, declined, and then gone (the
// customer left) 1,000 times leaves the router's agent bookkeeping bounded: memory does not
// grow with every offer.
func TestOffersThatEndUnacceptedLeaveNothingBehind(t *testing.T) {
	t.Parallel()
	r, now := newRouter(t)
	const agent = "005000000000001AAA"
	r.apply(routing.Event{Type: routing.EventAgentSkills, AgentID: agent, Skills: []routing.Skill{{Name: "English", Level: 5}, {Name: "Technical", Level: 3}}})
	r.apply(routing.Event{Type: routing.EventAgentState, AgentID: agent, State: mapping.State{Major: mapping.Ready}})
	r.apply(routing.Event{Type: routing.EventAgentPresence, AgentID: agent, Presence: "Available", Channels: []string{"Chat"}})
	for i := range 1000 {
		work := fmt.Sprintf("570%015d", i)
		psr := fmt.Sprintf("0JR%015d", i)
		cmds := r.eng.Apply(now, routing.Event{Type: routing.EventWorkArrived,
			Work: routing.Work{ID: work, PSR: psr, Queue: "Support_EN", Channel: "Chat", RequestedAt: now}})
		require.True(t, slices.ContainsFunc(cmds, func(c routing.Command) bool { return c.Type == routing.CommandOffer }))
		r.dispatch(cmds)
		r.apply(routing.Event{Type: routing.EventOfferDeclined, WorkID: work, AgentID: agent})
		r.apply(routing.Event{Type: routing.EventWorkRemoved, WorkID: work, PSR: psr})
	}
	require.Zero(t, r.eng.Queues(now)[2].Offered)
	require.Less(t, len(r.workChannel), 200, "per-work entries of offers that ended")
	require.Empty(t, r.sessionWork)
	require.Empty(t, r.wrapUps)
}

// TestPSRDeletedWhileOfferedKeepsTheQueue: accepting deletes the PSR in Salesforce, and its
// DELETE may reach the router before the AgentWork's accept does. The work's queue is kept, so a
// later transfer to skills (a new PSR without a queue) is still routed by the plan of the queue
// the work came from.
func TestPSRDeletedWhileOfferedKeepsTheQueue(t *testing.T) {
	t.Parallel()
	r, now := newRouter(t)
	const agent, work = "005000000000001AAA", "570000000000001AAA"
	r.apply(routing.Event{Type: routing.EventAgentSkills, AgentID: agent, Skills: []routing.Skill{{Name: "English", Level: 5}, {Name: "Technical", Level: 3}}})
	r.apply(routing.Event{Type: routing.EventAgentState, AgentID: agent, State: mapping.State{Major: mapping.Ready}})
	r.apply(routing.Event{Type: routing.EventAgentPresence, AgentID: agent, Presence: "Available", Channels: []string{"Chat"}})
	r.applyTracked(routing.Event{Type: routing.EventWorkArrived,
		Work: routing.Work{ID: work, PSR: "0JR000000000001AAA", Queue: "Support_EN", Channel: "Chat", RequestedAt: now}}, nil)
	require.Contains(t, r.offers, work)
	r.applyTracked(routing.Event{Type: routing.EventWorkRemoved, WorkID: work, PSR: "0JR000000000001AAA"}, nil)
	r.applyTracked(routing.Event{Type: routing.EventOfferAccepted, WorkID: work, AgentID: agent}, nil)
	r.applyTracked(routing.Event{Type: routing.EventWorkArrived,
		Work: routing.Work{ID: work, PSR: "0JR000000000002AAA", Channel: "Chat", RequestedAt: now}}, nil)
	require.Equal(t, "Support_EN", r.workQueue[work], "the transfer's PSR lost the work's queue")
}

// TestCheckOfAnEarlierPSRLeavesTheOffer: an offer-timeout check waits (CheckWait) before its
// look-up, so its answer can come after the work has a new PSR offered to the same agent (it
// was accepted, then transferred back to a queue). The answer is about the earlier PSR's
// AgentWork: it must not end, or accept, the current offer. An answer about the current offer
// still applies.
func TestCheckOfAnEarlierPSRLeavesTheOffer(t *testing.T) {
	t.Parallel()
	r, now := newRouter(t)
	const work, agent, psr1, psr2 = "500000000000001AAA", "005000000000001AAA", "0JR000000000001AAA", "0JR000000000002AAA"
	snap := &reconcileData{agentWork: map[string]AgentWorkRef{"0Bz000000000002AAA": {UserID: agent, WorkID: work, PSR: psr2, Ours: true}},
		uspUser: map[string]string{}}
	snap.snap.Offers = []routing.Assignment{{AgentID: agent,
		Work: routing.Work{ID: work, PSR: psr2, Queue: "Support_EN", Channel: "Chat", RequestedAt: now}}}
	r.handle(inMsg{kind: msgReconcile})
	r.handle(inMsg{kind: msgSnapshot, snap: snap})
	require.Equal(t, psr2, r.offers[work].psr)
	status := func() string {
		x, ok := r.eng.Explain(now, work)
		if !ok {
			return "gone"
		}
		return x.Status
	}
	require.Equal(t, "offered", status())

	check := func(psr string) routing.Command {
		return routing.Command{Type: routing.CommandCheckOffer, WorkID: work, PSR: psr, AgentID: agent, Reason: routing.ReasonOfferTimeout}
	}
	closed := &routing.Event{Type: routing.EventWorkTransferred, WorkID: work, AgentID: agent}
	accepted := &routing.Event{Type: routing.EventOfferAccepted, WorkID: work, AgentID: agent}
	r.handle(inMsg{kind: msgResult, result: WriteResult{Command: check(psr1), AgentWorkID: "0Bz000000000001AAA", Event: accepted, After: closed}})
	require.Equal(t, "offered", status(), "the earlier PSR's accepted and transferred AgentWork ended the current offer")
	require.Equal(t, offerRef{psr: psr2, agent: agent, at: now, awID: "0Bz000000000002AAA"}, r.offers[work])
	declined := &routing.Event{Type: routing.EventOfferDeclined, WorkID: work, AgentID: agent, Outcome: routing.OutcomeDeclined}
	r.handle(inMsg{kind: msgResult, result: WriteResult{Command: check(psr1), AgentWorkID: "0Bz000000000001AAA", Event: declined}})
	require.Equal(t, "offered", status(), "the earlier PSR's declined AgentWork ended the current offer")

	// The current offer's own answer applies.
	r.handle(inMsg{kind: msgResult, result: WriteResult{Command: check(psr2), AgentWorkID: "0Bz000000000002AAA", Event: declined}})
	require.NotContains(t, r.offers, work)
	require.NotEqual(t, "offered", status())
}
