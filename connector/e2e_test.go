package connector

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

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
	return newEnvSeed(t, deletes, nil, mutate)
}

// newEnvSeed is newEnv with changes to the seed.
func newEnvSeed(t *testing.T, deletes bool, seedMut func(*emulator.Seed), mutate func(*Config)) *org {
	t.Helper()
	seed := demoSeed()
	for i, u := range seed.Users {
		if slices.Contains([]string{agent1, agent2, agent3}, u.Username) {
			seed.Users[i].Skills = map[string]float64{"English": 8, "German": 6, "Billing": 3, "Technical": 5}
		}
	}
	if seedMut != nil {
		seedMut(&seed)
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
	d := startDaemonClock(t, cfg, nil, clock.Now)
	d.waitCondition(t, CondReconcileApplied)
	return &org{t: t, em: em, d: d, clock: clock}
}

// query runs f in the router's goroutine.
func (e *org) query(f func(r *Router)) {
	e.t.Helper()
	e.d.c.mu.Lock()
	r := e.d.c.router
	e.d.c.mu.Unlock()
	require.NoError(e.t, r.Query(e.t.Context(), f))
}

// advance moves the org's and the daemon's clock and fires what fell due on both sides.
func (e *org) advance(d time.Duration) {
	e.t.Helper()
	e.clock.Advance(d)
	e.em.RunTimers()
	// Any message makes the router re-arm its timer at the engine's deadline, now past.
	e.query(func(*Router) {})
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
	}, 30*time.Second, 10*time.Millisecond, "no %s AgentWork for %s (%s); agentwork: %+v\nlogs:\n%s", status, workItem, user, e.em.AgentWorks(), e.d.logs.String())
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
// every PSR of each listed work item ends with exactly one accepted AgentWork.
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
		perPSR := map[string]int{}
		for _, aw := range e.em.AgentWorks() {
			if aw.WorkItemID != w || aw.PSRID == "" {
				continue
			}
			perPSR[aw.PSRID] += 0
			if slices.ContainsFunc(aw.History, func(s emulator.StatusChange) bool { return s.Status == "Opened" }) {
				perPSR[aw.PSRID]++
			}
		}
		require.NotEmpty(e.t, perPSR, "work %s was never offered", w)
		for psr, n := range perPSR {
			require.Equal(e.t, 1, n, "PSR %s of work %s has %d accepted AgentWorks: %+v", psr, w, n, e.em.AgentWorks())
		}
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
		e.advance(31 * time.Second)
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

// TestE2ETransfers: seed 004 and the Expected Behavior transfers: to an external-routing queue
// (routed by the target plan), through a chat button's queue, to a skill, to a user (the first
// agent freed, the second AgentWork counts for the target), and case owner changes to a queue
// (routed again) and to a user (leaves routing).
func TestE2ETransfers(t *testing.T) {
	t.Parallel()
	bothDeleteModes(t, func(t *testing.T, deletes bool) {
		e := newEnv(t, deletes, nil)
		e.presence(agent1, "Available")
		e.presence(agent2, "Available")

		// To a queue: a new PSR with IsTransfer, routed by support-de's plan.
		w := e.work(emulator.WorkRequest{PreferredUser: agent1})
		aw := e.waitAW(w.WorkItemID, "Assigned", agent1)
		require.NoError(t, e.em.AcceptWork(aw.ID))
		e.waitAW(w.WorkItemID, "Opened", agent1)
		_, err := e.em.TransferWork(aw.ID, emulator.TransferTarget{Queue: "Support_DE"})
		require.NoError(t, err)
		aw2 := e.waitAW(w.WorkItemID, "Assigned", "")
		require.NoError(t, e.em.AcceptWork(aw2.ID))

		// To a skill: routed with that skill required.
		_, err = e.em.TransferWork(e.waitAW(w.WorkItemID, "Opened", aw2.Username).ID,
			emulator.TransferTarget{Skills: []emulator.SkillRequest{{Skill: "Billing", Level: 2}}})
		require.NoError(t, err)
		aw3 := e.waitAW(w.WorkItemID, "Assigned", "")
		require.NoError(t, e.em.AcceptWork(aw3.ID))

		// To a user: the second AgentWork is Salesforce's; the first becomes Transferred
		// once it is accepted.
		from := e.waitAW(w.WorkItemID, "Opened", aw3.Username)
		target := agent1
		if from.Username == agent1 {
			target = agent2
		}
		res, err := e.em.TransferWork(from.ID, emulator.TransferTarget{User: target})
		require.NoError(t, err)
		require.NoError(t, e.em.AcceptWork(res.AgentWorkID))
		e.waitAW(w.WorkItemID, "Transferred", from.Username)
		// The target now holds Salesforce's AgentWork (read once the first became
		// Transferred): work preferring them waits (they are Busy with it) until it is closed.
		require.Eventually(t, func() bool {
			held := false
			e.query(func(r *Router) { _, held = r.external[res.AgentWorkID] })
			return held
		}, 20*time.Second, 10*time.Millisecond, "the router counts the target's AgentWork; logs:\n%s", e.d.logs.String())
		w5 := e.work(emulator.WorkRequest{PreferredUser: target})
		time.Sleep(time.Second)
		require.Zero(t, e.count(w5.WorkItemID), "the target of a transfer to a user is busy with it")
		require.NoError(t, e.em.CloseWork(res.AgentWorkID))
		require.NoError(t, e.em.AcceptWork(e.waitAW(w5.WorkItemID, "Assigned", target).ID))

		// A case whose owner becomes an external-routing queue is routed again; one whose
		// owner becomes a user leaves routing.
		c := e.work(emulator.WorkRequest{Channel: "Case", Queue: "Support_EN", PreferredUser: agent2})
		cw := e.waitAW(c.WorkItemID, "Assigned", agent2)
		require.NoError(t, e.em.AcceptWork(cw.ID))
		e.waitAW(c.WorkItemID, "Opened", agent2)
		require.NoError(t, e.em.ChangeOwner(c.WorkItemID, emulator.OwnerTarget{Queue: "Billing"}))
		cw2 := e.waitAW(c.WorkItemID, "Assigned", "")
		require.NoError(t, e.em.AcceptWork(cw2.ID))

		// Owner to a user while waiting: nobody is online for it, then the work leaves.
		e.presence(agent1, "Offline")
		e.presence(agent2, "Offline")
		e.presence(agent3, "Offline")
		c2 := e.work(emulator.WorkRequest{Channel: "Case", Queue: "Billing"})
		require.NoError(t, e.em.ChangeOwner(c2.WorkItemID, emulator.OwnerTarget{User: agent3}))
		time.Sleep(time.Second) // several light checks
		e.presence(agent3, "Available")
		time.Sleep(300 * time.Millisecond)
		require.Zero(t, e.count(c2.WorkItemID), "work whose owner became a user is not routed")

		e.invariants(w.WorkItemID, c.WorkItemID, w5.WorkItemID)
	})
}

// TestE2ECustomerEnds: the customer ending the chat while it waits or while it is offered:
// the work is dropped and the agent's slot freed.
func TestE2ECustomerEnds(t *testing.T) {
	t.Parallel()
	bothDeleteModes(t, func(t *testing.T, deletes bool) {
		e := newEnv(t, deletes, nil)
		// Waiting: nobody online; the customer leaves; an agent logging in later gets nothing.
		w := e.work(emulator.WorkRequest{})
		time.Sleep(100 * time.Millisecond)
		require.NoError(t, e.em.CancelWork(w.WorkItemID))
		time.Sleep(time.Second)
		e.presence(agent1, "Available")
		// Offered: cancelled while Assigned; agent01's slot is freed for the next one.
		w2 := e.work(emulator.WorkRequest{PreferredUser: agent1})
		e.waitAW(w2.WorkItemID, "Assigned", agent1)
		require.NoError(t, e.em.CancelWork(w2.WorkItemID))
		e.waitAW(w2.WorkItemID, "Canceled", agent1)
		// Fill agent01 to the semi-live cap (6 units = 3 chats): all three reach them.
		for range 3 {
			x := e.work(emulator.WorkRequest{PreferredUser: agent1})
			e.waitAW(x.WorkItemID, "Assigned", agent1)
		}
		time.Sleep(300 * time.Millisecond)
		require.Zero(t, e.count(w.WorkItemID), "cancelled waiting work is never offered")
		require.Equal(t, 1, e.count(w2.WorkItemID), "cancelled offered work is not offered again")
		e.invariants()
	})
}

// TestE2EGapAndReplayExpiry: a gap event and then a replay-id expiry with a restart mid-stream:
// reconcile, nothing lost, nothing doubled.
func TestE2EGapAndReplayExpiry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Gap events never match the custom channel's filters: the per-entity channels carry them.
	e := newEnv(t, false, func(c *Config) { c.StateDir = dir; c.Events = EventsEntities })
	e.presence(agent1, "Available")
	w := e.work(emulator.WorkRequest{})
	e.waitAW(w.WorkItemID, "Assigned", agent1)
	require.NoError(t, e.em.InjectGap(emulator.GapRequest{Entity: "AgentWork", ChangeType: "GAP_OVERFLOW"}))
	w2 := e.work(emulator.WorkRequest{})
	e.waitAW(w2.WorkItemID, "Assigned", agent1)
	require.Eventually(t, func() bool { return e.d.logsContain("gap event; reconciling") }, 10*time.Second, 10*time.Millisecond)

	// Stop the daemon, let work arrive and the stored replay id expire, start again.
	e.d.stop()
	require.NoError(t, <-e.d.done)
	e.d.done <- nil
	w3 := e.work(emulator.WorkRequest{})
	aw, err := e.em.AgentWorks(), error(nil)
	require.NoError(t, err)
	for _, a := range aw {
		if a.Status == "Assigned" {
			require.NoError(t, e.em.AcceptWork(a.ID))
		}
	}
	e.em.ExpireReplay()
	d2 := startDaemon(t, e.d.cfg)
	d2.waitCondition(t, CondReconcileApplied)
	e.d = d2
	require.NoError(t, e.em.AcceptWork(e.waitAW(w3.WorkItemID, "Assigned", agent1).ID))
	require.Equal(t, 1, e.count(w.WorkItemID))
	require.Equal(t, 1, e.count(w2.WorkItemID))

	// Mid-stream: the retained events are forgotten and the clients dropped while work
	// arrives; the stream's stored replay id is refused, and a reconcile finds the work.
	e.em.ExpireReplay()
	e.em.DropStreamingClients()
	w4 := e.work(emulator.WorkRequest{})
	aw4 := e.waitAW(w4.WorkItemID, "Assigned", agent1)
	require.NoError(t, e.em.AcceptWork(aw4.ID))
	require.Eventually(t, func() bool { return e.d.logsContain("cause=replay_refused") },
		10*time.Second, 10*time.Millisecond, "the refused replay id is reported:\n%s", e.d.logs.String())
	e.invariants(w.WorkItemID, w2.WorkItemID, w3.WorkItemID, w4.WorkItemID)
}

// TestE2ENoise: with the emulator's noise rate at 50%, nothing is misrouted: every work item
// ends with exactly one accepted AgentWork and no PSR has two open.
func TestE2ENoise(t *testing.T) {
	t.Parallel()
	bothDeleteModes(t, func(t *testing.T, deletes bool) {
		e := newEnv(t, deletes, nil)
		require.NoError(t, e.em.SetNoise(0.5))
		e.presence(agent1, "Available")
		e.presence(agent2, "Available")
		var ws []string
		for i := range 12 {
			x := e.work(emulator.WorkRequest{Channel: []string{"Chat", "Case", "Messaging"}[i%3]})
			ws = append(ws, x.WorkItemID)
		}
		for _, w := range ws {
			aw := e.waitAW(w, "Assigned", "")
			require.NoError(t, e.em.AcceptWork(aw.ID))
			require.NoError(t, e.em.CloseWork(aw.ID))
		}
		time.Sleep(300 * time.Millisecond)
		e.invariants(ws...)
	})
}

func (d *daemon) logsContain(s string) bool { return strings.Contains(d.logs.String(), s) }

// appliedThen500 lets the first AgentWork insert reach Salesforce and answers it with a 500,
// as a server failing after its commit does.
type appliedThen500 struct {
	mu   sync.Mutex
	done bool
}

func (a *appliedThen500) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/sobjects/AgentWork") && !strings.Contains(r.URL.Path, "/composite/sobjects") {
		return resp, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return resp, nil
	}
	a.done = true
	_ = resp.Body.Close()
	body := `[{"message":"An unexpected error occurred.","errorCode":"UNKNOWN_EXCEPTION"}]`
	return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r}, nil
}

// TestE2EInsert5xxButCreated: a 500 on an insert whose AgentWork was in fact created leads to
// no second AgentWork, and the accept is routed as usual.
func TestE2EInsert5xxButCreated(t *testing.T) {
	t.Parallel()
	bothDeleteModes(t, func(t *testing.T, deletes bool) {
		e := newEnv(t, deletes, nil)
		e.d.stop()
		require.NoError(t, <-e.d.done)
		e.d.done <- nil
		tr := &appliedThen500{}
		e.d = startDaemonWith(t, e.d.cfg, &http.Client{Transport: tr, Timeout: time.Minute})
		e.d.waitCondition(t, CondReconcileApplied)
		e.presence(agent1, "Available")
		e.presence(agent2, "Available")
		w := e.work(emulator.WorkRequest{})
		aw := e.waitAW(w.WorkItemID, "Assigned", "")
		require.NoError(t, e.em.AcceptWork(aw.ID))
		w2 := e.work(emulator.WorkRequest{})
		aw2 := e.waitAW(w2.WorkItemID, "Assigned", "")
		require.NoError(t, e.em.AcceptWork(aw2.ID))
		time.Sleep(300 * time.Millisecond)
		tr.mu.Lock()
		require.True(t, tr.done, "the fault was used")
		tr.mu.Unlock()
		require.Equal(t, 1, e.count(w.WorkItemID), "no second AgentWork")
		e.invariants(w.WorkItemID, w2.WorkItemID)
	})
}

// TestE2EPreferredUser: a required preferred user gets the work whenever they come, and nobody
// else does; a preferred user who is not required is waited for until the plan's preferred
// timeout (its offer timeout), then anyone qualified gets it.
func TestE2EPreferredUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	e.presence(agent1, "Available")
	req := e.work(emulator.WorkRequest{PreferredUser: agent3, PreferredUserRequired: true})
	opt := e.work(emulator.WorkRequest{PreferredUser: agent2})
	time.Sleep(500 * time.Millisecond)
	require.Zero(t, e.count(req.WorkItemID))
	require.Zero(t, e.count(opt.WorkItemID), "waits for the preferred user first")
	e.advance(31 * time.Second)
	aw := e.waitAW(opt.WorkItemID, "Assigned", agent1)
	require.NoError(t, e.em.AcceptWork(aw.ID))
	e.advance(5 * time.Minute)
	time.Sleep(300 * time.Millisecond)
	require.Zero(t, e.count(req.WorkItemID), "a required preferred user is never replaced")
	e.presence(agent3, "Available")
	require.NoError(t, e.em.AcceptWork(e.waitAW(req.WorkItemID, "Assigned", agent3).ID))
	e.invariants(req.WorkItemID, opt.WorkItemID)
}

// TestE2EFailedDeliveryRerouted: an insert Salesforce refuses (the agent's Omni-Channel
// capacity is smaller than the mapping's) is offered to someone else.
func TestE2EFailedDeliveryRerouted(t *testing.T) {
	t.Parallel()
	bothDeleteModes(t, func(t *testing.T, deletes bool) {
		e := newEnvSeed(t, deletes, func(s *emulator.Seed) {
			for i, u := range s.Users {
				if u.Username == agent1 {
					s.Users[i].Capacity = 1
				}
			}
		}, nil)
		e.presence(agent1, "Available")
		w := e.work(emulator.WorkRequest{PreferredUser: agent1})
		require.NoError(t, e.em.AcceptWork(e.waitAW(w.WorkItemID, "Assigned", agent1).ID))
		e.presence(agent2, "Available")
		w2 := e.work(emulator.WorkRequest{PreferredUser: agent1})
		aw := e.waitAW(w2.WorkItemID, "Assigned", agent2)
		require.NoError(t, e.em.AcceptWork(aw.ID))
		require.Equal(t, 1, e.count(w2.WorkItemID), "the refused insert made no AgentWork")
		e.invariants(w.WorkItemID, w2.WorkItemID)
	})
}

// TestE2EAutoAccept: a plan with autoAccept counts the work as accepted when it is offered; the
// accept in Salesforce confirms it, and an AgentWork that ends without opening re-routes it as
// a failed delivery. A plan without it waits for the accept in the widget.
func TestE2EAutoAccept(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, func(c *Config) {
		data, err := os.ReadFile(c.MappingFile)
		require.NoError(t, err)
		auto := strings.Replace(string(data), "    dispositionRequired: true\n", "    dispositionRequired: true\n    autoAccept: true\n", 1)
		require.NotEqual(t, string(data), auto)
		require.NoError(t, os.WriteFile(c.MappingFile, []byte(auto), 0o600))
	})
	e.presence(agent1, "Available")
	e.presence(agent2, "Available")
	b := e.work(emulator.WorkRequest{Queue: "Billing", PreferredUser: agent1})
	require.NoError(t, e.em.AcceptWork(e.waitAW(b.WorkItemID, "Assigned", agent1).ID))
	b2 := e.work(emulator.WorkRequest{Queue: "Billing", PreferredUser: agent1})
	require.NoError(t, e.em.DeclineWork(e.waitAW(b2.WorkItemID, "Assigned", agent1).ID, "no"))
	require.NoError(t, e.em.AcceptWork(e.waitAW(b2.WorkItemID, "Assigned", agent2).ID))
	// Auto-accepted work that never opened counts as not delivered: agent01 gets nothing more
	// until their presence changes.
	e.presence(agent1, "Offline")
	e.presence(agent1, "Available")
	s := e.work(emulator.WorkRequest{Queue: "Support_EN", PreferredUser: agent1})
	require.NoError(t, e.em.AcceptWork(e.waitAW(s.WorkItemID, "Assigned", agent1).ID))
	e.invariants(b.WorkItemID, b2.WorkItemID, s.WorkItemID)
	require.Contains(t, e.metric(t, "omniroute_routing_outcomes_total"), `plan="billing"`)
	e.lintMetrics(t)
}

// lintMetrics checks the registry after routing: lint-clean, and no label carries a
// Salesforce id.
func (e *org) lintMetrics(t *testing.T) {
	t.Helper()
	problems, err := testutil.GatherAndLint(e.d.reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	families, err := e.d.reg.Gather()
	require.NoError(t, err)
	id := regexp.MustCompile(`^[0-9a-zA-Z]{15}([0-9a-zA-Z]{3})?$`)
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				require.False(t, id.MatchString(l.GetValue()) && strings.ContainsAny(l.GetValue(), "0123456789"),
					"%s{%s=%q} looks like a Salesforce id", mf.GetName(), l.GetName(), l.GetValue())
			}
		}
	}
	for _, want := range []string{"omniroute_routing_event_to_agentwork_request_seconds_count", "omniroute_routing_offer_to_accept_seconds_count",
		"omniroute_router_events_total", "omniroute_reconcile_duration_seconds_count", "omniroute_writer_"} {
		require.NotEmpty(t, e.metric(t, want), want)
	}
}

// TestE2ESkillsRelaxationOverflow: on a fake clock, support-en work needs English 5 and
// Technical 3 (dropped after 1 min), relaxed to English 3 after 2 min; support-de work needs
// German 4 and overflows to support-en after 5 min. An agent with English 4 alone gets each
// exactly when its plan says.
func TestE2ESkillsRelaxationOverflow(t *testing.T) {
	t.Parallel()
	const agent4 = "agent04@omniroute.demo"
	e := newEnvSeed(t, false, func(s *emulator.Seed) {
		for i, u := range s.Users {
			if u.Username == agent4 {
				s.Users[i].Skills = map[string]float64{"English": 4}
			}
		}
	}, nil)
	e.presence(agent4, "Available")
	en := e.work(emulator.WorkRequest{Queue: "Support_EN"})
	de := e.work(emulator.WorkRequest{Queue: "Support_DE"})
	time.Sleep(300 * time.Millisecond)
	require.Zero(t, e.count(en.WorkItemID), "English 4 < 5 and no Technical")
	e.advance(61 * time.Second)
	time.Sleep(300 * time.Millisecond)
	require.Zero(t, e.count(en.WorkItemID), "Technical dropped, English 4 still < 5")
	e.advance(60 * time.Second)
	require.NoError(t, e.em.AcceptWork(e.waitAW(en.WorkItemID, "Assigned", agent4).ID))
	require.Zero(t, e.count(de.WorkItemID), "no German")
	e.advance(3 * time.Minute)
	require.NoError(t, e.em.AcceptWork(e.waitAW(de.WorkItemID, "Assigned", agent4).ID))
	e.invariants(en.WorkItemID, de.WorkItemID)
}

// metric returns the /metrics lines of a metric.
func (e *org) metric(t *testing.T, name string) string {
	t.Helper()
	_, _, body := call(t, http.MethodGet, e.d.url+"/metrics", "", nil)
	var out []string
	for l := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(l, name) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestE2EPresenceRelogin: an agent who logs out and in again at once stays online (the closed
// row of the logout is not taken for a logout after the new row); a status change (UPDATE and
// CREATE in one transaction) is not a logout either.
func TestE2EPresenceRelogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	e.presence(agent1, "Available")
	e.presence(agent1, "Offline")
	e.presence(agent1, "Available")
	e.presence(agent1, "Ready_for_cases")
	e.presence(agent1, "Available")
	time.Sleep(2500 * time.Millisecond)
	e.advance(0)
	w := e.work(emulator.WorkRequest{})
	require.NoError(t, e.em.AcceptWork(e.waitAW(w.WorkItemID, "Assigned", agent1).ID))
	e.presence(agent1, "Offline")
	time.Sleep(2500 * time.Millisecond)
	e.presence(agent2, "Available")
	w2 := e.work(emulator.WorkRequest{PreferredUser: agent1})
	time.Sleep(300 * time.Millisecond) // the PSR reaches the engine before the clock moves
	e.advance(31 * time.Second)
	require.NoError(t, e.em.AcceptWork(e.waitAW(w2.WorkItemID, "Assigned", agent2).ID))
	e.invariants(w.WorkItemID, w2.WorkItemID)
}

// TestE2EEventModes: OMNIROUTE_EVENTS=entities (per-entity CDC channels, grouped events) and
// pushtopic (PushTopics created by the daemon) route too: accept, decline re-routed, an agent
// going offline with an offer.
func TestE2EEventModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{EventsEntities, EventsPushTopic} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false, func(c *Config) { c.Events = mode })
			e.presence(agent1, "Available")
			e.presence(agent2, "Available")
			w := e.work(emulator.WorkRequest{PreferredUser: agent1})
			require.NoError(t, e.em.AcceptWork(e.waitAW(w.WorkItemID, "Assigned", agent1).ID))
			w2 := e.work(emulator.WorkRequest{PreferredUser: agent1})
			require.NoError(t, e.em.DeclineWork(e.waitAW(w2.WorkItemID, "Assigned", agent1).ID, "no"))
			require.NoError(t, e.em.AcceptWork(e.waitAW(w2.WorkItemID, "Assigned", agent2).ID))
			e.presence(agent3, "Available")
			w3 := e.work(emulator.WorkRequest{PreferredUser: agent3})
			e.waitAW(w3.WorkItemID, "Assigned", agent3)
			e.presence(agent3, "Offline")
			aw := e.waitAW(w3.WorkItemID, "Assigned", "")
			require.NotEqual(t, agent3, aw.Username)
			require.NoError(t, e.em.AcceptWork(aw.ID))
			e.invariants(w.WorkItemID, w2.WorkItemID, w3.WorkItemID)
			if mode == EventsPushTopic {
				require.Contains(t, e.d.logs.String(), "channel=/topic/OmnirouteRouting")
			}
		})
	}
}

// TestE2EStopCommitsAndResumes: SIGTERM's path (context cancelled) commits the replay ids of
// the events applied; the next start resumes from them (no missed events reported) and routes
// what arrived while the daemon was down.
func TestE2EStopCommitsAndResumes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, false, func(c *Config) { c.StateDir = dir })
	e.presence(agent1, "Available")
	w := e.work(emulator.WorkRequest{})
	require.NoError(t, e.em.AcceptWork(e.waitAW(w.WorkItemID, "Assigned", agent1).ID))
	e.waitAW(w.WorkItemID, "Opened", agent1)
	time.Sleep(200 * time.Millisecond)
	w1b := e.work(emulator.WorkRequest{})
	e.waitAW(w1b.WorkItemID, "Assigned", agent1) // its events close the earlier replay ids
	time.Sleep(200 * time.Millisecond)
	e.d.stop()
	select {
	case err := <-e.d.done:
		require.NoError(t, err)
		e.d.done <- nil
	case <-time.After(e.d.cfg.ShutdownTimeout.Duration + time.Second):
		t.Fatal("Run did not return within the shutdown timeout")
	}
	store, err := NewFileCheckpointStore(dir, []string{e.d.cfg.CDCChannel})
	require.NoError(t, err)
	ids, err := store.Load(t.Context())
	require.NoError(t, err)
	require.Positive(t, ids[e.d.cfg.CDCChannel], "a replay id was committed")

	w2 := e.work(emulator.WorkRequest{})
	d2 := startDaemonClock(t, e.d.cfg, nil, e.clock.Now)
	d2.waitCondition(t, CondReconcileApplied)
	e.d = d2
	require.NoError(t, e.em.AcceptWork(e.waitAW(w2.WorkItemID, "Assigned", agent1).ID))
	require.NoError(t, e.em.AcceptWork(e.waitAW(w1b.WorkItemID, "Assigned", agent1).ID))
	require.NotContains(t, d2.logs.String(), "events may have been missed", "resumed from the checkpoint")
	e.invariants(w.WorkItemID, w1b.WorkItemID, w2.WorkItemID)
}
