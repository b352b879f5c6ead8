package connector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// presenceMapping is the demo org's mapping with seed 003's worked example as its presence
// section (On a call -> Away, Away from desk -> Break, login -> Ready for cases, Wrap up ->
// Taking notes), revert to last status, and the disposition written to Disposition__c.
const presenceMapping = `
plans:
  - name: support-en
    queues: [Support_EN]
    requiredSkills:
      - {skill: English, minLevel: 5}
    offerTimeout: 30s
    wrapUpTimeout: 10s
  - name: billing
    queues: [Billing]
    requiredSkills:
      - {skill: Billing, minLevel: 2}
    offerTimeout: 30s
    wrapUpTimeout: 10s
    dispositionRequired: true
channels:
  - {name: Phone, class: live, weight: 5}
  - {name: Chat, class: semi-live, weight: 2, dispositionField: Disposition__c}
  - {name: Messaging, class: semi-live, weight: 2}
  - {name: Case, class: non-live, weight: 1, dispositionField: Disposition__c}
capacity:
  default: standard
  profiles:
    - name: standard
      total: 10
      perClass: {live: 5, semi-live: 6, non-live: 4}
` + seed003Presence + `
  revertToLastStatus: true
  postCallState: %s
`

// waitCommand waits for a command of type typ (matching f, when given) for user.
func (p *presenceEnv) waitCommand(user string, typ routing.CommandType, f func(routing.Command) bool) routing.Command {
	p.t.Helper()
	var got routing.Command
	require.Eventually(p.t, func() bool {
		for _, m := range p.console.messages(user) {
			if m.Command != nil && m.Command.Type == typ && (f == nil || f(*m.Command)) {
				got = *m.Command
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "no %s for %s; got %+v", typ, user, p.console.messages(user))
	return got
}

// presenceEnv is a daemon routing an emulator org, with every agent's console.
type presenceEnv struct {
	*org
	console *wsConsole
	ids     map[string]string // username -> user id
	status  map[string]string // status id -> DeveloperName
}

func newPresenceEnv(t *testing.T, postCall string, mutate ...func(*Config)) *presenceEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "presence.yaml")
	require.NoError(t, os.WriteFile(path, fmt.Appendf(nil, presenceMapping, postCall), 0o600))
	e := newEnv(t, false, func(c *Config) {
		c.MappingFile = path
		c.AgentTokenKey = NewSecret(testAgentKey)
		for _, m := range mutate {
			m(c)
		}
	})
	p := &presenceEnv{org: e, ids: map[string]string{}, status: map[string]string{}}
	type row struct {
		ID       string `json:"Id"`
		Username string `json:"Username"`
	}
	ctx := t.Context()
	for r, err := range salesforce.QueryAs[row](ctx, e.d.c.sf.Client, "SELECT Id, Username FROM User") {
		require.NoError(t, err)
		p.ids[r.Username] = r.ID
	}
	type srow struct {
		ID   string `json:"Id"`
		Name string `json:"DeveloperName"`
	}
	for r, err := range salesforce.QueryAs[srow](ctx, e.d.c.sf.Client, "SELECT Id, DeveloperName FROM ServicePresenceStatus") {
		require.NoError(t, err)
		p.status[r.ID] = r.Name
	}
	c := newWSConsole(t, e.em, "ws://"+e.d.c.Addr().String()+AgentPath, NewSecret(testAgentKey), e.clock.Now)
	for name, id := range p.ids {
		c.users[id] = name
	}
	c.omni = func(username string) string {
		s, _ := p.omniStatus(ctx, username) // an error (the test ended) only costs the hint
		return s
	}
	// Every agent's console is connected before anything happens, as in a contact centre
	// where the consoles are open: the gateway delivers only to live connections.
	for _, u := range []string{agent1, agent2, agent3} {
		c.connect(p.ids[u])
	}
	// Every frame the consoles sent was one the protocol takes, and the router took it.
	t.Cleanup(func() {
		for _, u := range []string{agent1, agent2, agent3} {
			require.Empty(t, c.otherErrors(p.ids[u]), "errors other than refusals for %s", u)
		}
	})
	p.console = c
	return p
}

// omni is the agent's current Omni-Channel status in the org (Offline when none).
func (p *presenceEnv) omni(username string) string {
	p.t.Helper()
	s, err := p.omniStatus(p.t.Context(), username)
	require.NoError(p.t, err)
	return s
}

func (p *presenceEnv) omniStatus(ctx context.Context, username string) (string, error) {
	type row struct {
		StatusID string `json:"ServicePresenceStatusId"`
	}
	q := "SELECT ServicePresenceStatusId FROM UserServicePresence WHERE UserId = '" + p.ids[username] + "' AND IsCurrentState = true"
	for r, err := range salesforce.QueryAs[row](ctx, p.d.c.sf.Client, q) {
		if err != nil {
			return "", err
		}
		return p.status[r.StatusID], nil
	}
	return mapping.OfflineStatus, nil
}

// waitOmni waits until the agent's Omni-Channel status is want.
func (p *presenceEnv) waitOmni(username, want string) {
	p.t.Helper()
	require.Eventually(p.t, func() bool { return p.omni(username) == want }, 20*time.Second, 20*time.Millisecond,
		"%s never showed %s in Omni-Channel (shows %s); console: %+v", username, want, p.omni(username), p.console.consoleOps(p.ids[username]))
}

// agent is the engine's view of the agent.
func (p *presenceEnv) agent(username string) routing.AgentView {
	p.t.Helper()
	var v routing.AgentView
	p.query(func(r *Router) { v = r.agentSnapshot(p.ids[username]).Agent })
	return v
}

// waitState waits until the engine shows the agent in state want.
func (p *presenceEnv) waitState(username, want string) {
	p.t.Helper()
	require.Eventually(p.t, func() bool { return p.agent(username).State.String() == want }, 20*time.Second, 20*time.Millisecond,
		"%s never reached %s (is %s)", username, want, p.agent(username).State)
}

// send sends an event from the agent's pad as its client frame.
func (p *presenceEnv) send(username string, ev routing.Event) {
	p.t.Helper()
	p.console.send(p.ids[username], eventFrame(ev))
}

// report sends a console report as its client frame.
func (p *presenceEnv) report(username string, r ConsoleReport) {
	p.t.Helper()
	p.console.send(p.ids[username], reportFrame(r))
}

// router is the daemon's router.
func (p *presenceEnv) router() *Router {
	p.d.c.mu.Lock()
	defer p.d.c.mu.Unlock()
	return p.d.c.router
}

func (p *presenceEnv) choose(username, state string) {
	p.t.Helper()
	st, err := mapping.ParseState(state)
	require.NoError(p.t, err)
	p.send(username, routing.Event{Type: routing.EventAgentState, State: st})
}

func (p *presenceEnv) act(username, work string, a routing.Action) {
	p.t.Helper()
	p.send(username, routing.Event{Type: routing.EventAgentAction, WorkID: work, Action: a})
}

// settle lets events in flight reach the router (used only before asserting that nothing
// more happened).
func (p *presenceEnv) settle() {
	time.Sleep(500 * time.Millisecond)
	p.query(func(*Router) {})
}

// login logs the agent in from the pad and waits until Omni-Channel shows status.
func (p *presenceEnv) login(username, state, status string) {
	p.t.Helper()
	p.choose(username, state)
	p.waitOmni(username, status)
	p.waitState(username, state)
}

// TestE2EPresenceSeed003: every event and example of seed 003, through the daemon, the
// emulator and the agent's console.
func TestE2EPresenceSeed003(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Ready")
	a1 := p.ids[agent1]

	// Login -> the mapped online status, through the console's login().
	p.login(agent1, "Ready", "Ready_for_cases")
	ops := p.console.consoleOps(a1)
	require.Equal(t, ConsoleLogin, ops[0].Op)
	require.NotEmpty(t, ops[0].StatusID)

	// On_a_call -> Away; Away_from_desk -> Away/Break (the agent's own changes in Omni).
	p.presence(agent1, "On_a_call")
	p.waitState(agent1, "Away")
	p.presence(agent1, "Away_from_desk")
	p.waitState(agent1, "Away/Break")
	// An unmapped status -> Ready.
	p.presence(agent1, "Available")
	p.waitState(agent1, "Ready")
	// None of these went back to the console.
	p.settle()
	require.Len(t, p.console.consoleOps(a1), 1, "a change from Salesforce is never pushed back")
	require.Equal(t, "Available", p.omni(agent1))

	// A minor state without its own mapping uses its major state's status.
	p.choose(agent1, "Away/Lunch")
	p.waitOmni(agent1, "Away_from_desk")
	p.settle()
	require.Equal(t, "Away/Lunch", p.agent(agent1).State.String(), "the echo of Away_from_desk (Away/Break) changes nothing")

	// Logout -> Offline, through logout().
	p.choose(agent1, "LoggedOut")
	p.waitOmni(agent1, mapping.OfflineStatus)
	ops = p.console.consoleOps(a1)
	require.Equal(t, ConsoleLogout, ops[len(ops)-1].Op)

	// Offline in Omni -> logged out.
	p.login(agent1, "Ready", "Ready_for_cases")
	p.presence(agent1, "Offline")
	p.waitState(agent1, "LoggedOut")

	metrics := p.metric(t, "omniroute_presence_sync_total")
	for _, series := range []string{`direction="to_salesforce",result="ok"`, `direction="from_salesforce",result="suppressed"`,
		`direction="from_salesforce",result="ok"`} {
		require.Regexp(t, `omniroute_presence_sync_total\{`+series+`\} [1-9]`, metrics)
	}
}

// acceptChat creates a chat in queue, waits for its offer to username and accepts it in the
// emulator; it returns the work item and its AgentWork.
func (p *presenceEnv) acceptChat(queue, username string) (string, string) {
	p.t.Helper()
	w := p.work(emulator.WorkRequest{Queue: queue})
	aw := p.waitAW(w.WorkItemID, "Assigned", username)
	require.NoError(p.t, p.em.AcceptWork(aw.ID))
	p.waitState(username, "Busy")
	return w.WorkItemID, aw.ID
}

// TestE2EPresenceWrapUpAndRevert: work -> Busy (On_a_call), release -> the AgentWork closed by
// the console, wrap-up (Taking_notes) counting down to its deadline -> the post-call state
// Ready, with the status the agent had before the work (revert to last status), not Ready's.
func TestE2EPresenceWrapUpAndRevert(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Ready")
	a1 := p.ids[agent1]
	p.presence(agent1, "Available") // the agent's own Ready status, all channels
	p.waitState(agent1, "Ready")

	w, aw := p.acceptChat("Support_EN", agent1)
	p.waitOmni(agent1, "On_a_call")
	p.settle()
	require.Equal(t, "Busy", p.agent(agent1).State.String(), "the echo of On_a_call (Away) changes nothing")

	start := p.clock.Now()
	p.act(agent1, w, routing.Action{Kind: routing.ActionRelease})
	wrap := p.waitCommand(a1, routing.CommandWrapUp, func(c routing.Command) bool { return c.WorkID == w })
	require.WithinDuration(t, start.Add(10*time.Second), wrap.Deadline, 3*time.Second, "the wrap-up's deadline")
	p.waitAW(w, "Closed", agent1) // closeAgentWork through the console
	p.waitOmni(agent1, "Taking_notes")
	p.waitState(agent1, "WrapUp")
	snap, err := p.router().AgentSnapshot(t.Context(), a1)
	require.NoError(t, err)
	// The frame's deadline is the gateway's (the plan's timeout from when it wrote the frame).
	require.WithinDuration(t, snap.WrapUps[w], wrap.Deadline, time.Second)
	_ = aw

	p.advance(11 * time.Second)
	p.waitCommand(a1, routing.CommandEnded, func(c routing.Command) bool { return c.WorkID == w })
	p.waitState(agent1, "Ready")
	p.waitOmni(agent1, "Available")
}

// TestE2EPresenceNoRevertWhenPostCallIsNotReady: with a post-call state of Away, the agent gets
// the status mapped to Away after work, whatever they had before it.
func TestE2EPresenceNoRevertWhenPostCallIsNotReady(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Away")
	p.presence(agent1, "Available")
	p.waitState(agent1, "Ready")
	w, _ := p.acceptChat("Support_EN", agent1)
	p.act(agent1, w, routing.Action{Kind: routing.ActionRelease})
	p.waitOmni(agent1, "Taking_notes")
	p.advance(11 * time.Second)
	p.waitState(agent1, "Away")
	p.waitOmni(agent1, "Away_from_desk")
}

// TestE2EBusyInbound: Salesforce routes a chat to the agent itself; they are Busy/Inbound and
// offered nothing until it closes. With the custom channel (the default) its AgentWork never
// reaches the stream, so the console's reports of the agent accepting and closing it are what
// tell the daemon; with per-entity channels the AgentWork events do.
func TestE2EBusyInbound(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{EventsChannel, EventsEntities} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p := newPresenceEnv(t, "Ready", func(c *Config) { c.Events = mode })
			p.presence(agent1, "Available")
			p.waitState(agent1, "Ready")
			native, err := p.em.NativeRoute(emulator.NativeRequest{Channel: "Chat", User: agent1})
			require.NoError(t, err)
			require.NoError(t, p.em.AcceptWork(native.AgentWorkID))
			report := func(kind ReportKind) {
				if mode == EventsChannel { // the console's lightning:omniChannelWork* events
					p.report(agent1, ConsoleReport{Kind: kind, WorkID: native.WorkItemID, AgentWorkID: native.AgentWorkID})
				}
			}
			report(ReportWorkAccepted)
			p.waitState(agent1, "Busy/Inbound")
			w := p.work(emulator.WorkRequest{})
			p.settle()
			require.Zero(t, p.count(w.WorkItemID), "nothing is offered while Busy Inbound")
			require.NoError(t, p.em.CloseWork(native.AgentWorkID))
			report(ReportWorkClosed)
			p.waitAW(w.WorkItemID, "Assigned", agent1)
		})
	}
}

// TestE2EActions: what each action does in Salesforce, each refused one with its reason.
func TestE2EActions(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Ready")
	a1, a2 := p.ids[agent1], p.ids[agent2]
	p.presence(agent1, "Available")
	p.waitState(agent1, "Ready")
	w, aw := p.acceptChat("Support_EN", agent1)

	refusedFor := func(work string, k routing.ActionKind, reason routing.Reason) {
		t.Helper()
		p.act(agent1, work, routing.Action{Kind: k, Target: routing.TargetPlan, TargetID: "billing"})
		p.waitCommand(a1, routing.CommandRefused, func(c routing.Command) bool {
			return c.WorkID == work && c.Action == k && c.Reason == reason
		})
	}
	// A chat (semi-live) cannot be held or transferred; unknown work is refused as such.
	refusedFor(w, routing.ActionHold, routing.ReasonNotAllowedForClass)
	refusedFor(w, routing.ActionTransfer, routing.ReasonNotAllowedForClass)
	refusedFor("570000000000999AAA", routing.ActionRelease, routing.ReasonUnknownWork)

	// Consult another agent: both are told; the original stays active.
	p.presence(agent2, "Available")
	p.waitState(agent2, "Ready")
	p.act(agent1, w, routing.Action{Kind: routing.ActionConsult, Target: routing.TargetAgent, TargetID: a2})
	p.waitCommand(a1, routing.CommandConsult, func(c routing.Command) bool { return c.WorkID == w })
	p.waitCommand(a2, routing.CommandConsult, func(c routing.Command) bool { return c.WorkID == w })
	require.Equal(t, "active", p.agent(agent1).Work[0].Status, "consult never releases the original")
	require.Equal(t, "Opened", p.em.AgentWorks()[slices.IndexFunc(p.em.AgentWorks(), func(x emulator.AgentWorkInfo) bool { return x.ID == aw })].Status)

	// Abandon with the console silent: the capacity is free at once.
	p.console.setSilent(a1, true)
	p.act(agent1, w, routing.Action{Kind: routing.ActionAbandon})
	p.waitCommand(a1, routing.CommandEnded, func(c routing.Command) bool { return c.WorkID == w && c.Reason == routing.ReasonAbandoned })
	require.Zero(t, p.agent(agent1).Capacity.Used)
	ops := p.console.consoleOps(a1)
	i := slices.IndexFunc(ops, func(c ConsoleCommand) bool { return c.Op == ConsoleCloseWork })
	require.GreaterOrEqual(t, i, 0, "abandon asks the console to close the AgentWork")
	require.Equal(t, aw, ops[i].AgentWorkID)
	// The AgentWork is still open in Salesforce (the console never closed it): a reconcile
	// does not bring the abandoned interaction back.
	require.NoError(t, p.router().RequestReconcile(t.Context()))
	p.settle()
	p.settle()
	require.Empty(t, p.agent(agent1).Work, "an abandoned interaction stays abandoned")
	require.Zero(t, p.agent(agent1).Capacity.Used)
	p.console.setSilent(a1, false)
}

// TestE2ETransferCase: a case (non-live) transferred to a plan goes to that plan's queue and the
// new PSR is routed by the plan; transferred to an agent, it lands with that agent only.
func TestE2ETransferCase(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Ready")
	a1 := p.ids[agent1]
	for _, u := range []string{agent1, agent2} {
		p.presence(u, "Available")
		p.waitState(u, "Ready")
	}
	c := p.work(emulator.WorkRequest{Channel: "Case"})
	aw := p.waitAW(c.WorkItemID, "Assigned", "")
	require.NoError(t, p.em.AcceptWork(aw.ID))
	holder := aw.Username
	other := agent1
	if holder == agent1 {
		other = agent2
	}
	p.waitState(holder, "Busy")
	// To the plan billing: requeued to its queue, routed by billing to someone else.
	p.act(holder, c.WorkItemID, routing.Action{Kind: routing.ActionTransfer, Target: routing.TargetPlan, TargetID: "billing"})
	next := p.waitAW(c.WorkItemID, "Assigned", other)
	require.NotEqual(t, aw.ID, next.ID)
	require.NoError(t, p.em.AcceptWork(next.ID))
	p.waitState(other, "Busy")
	// To an agent: it lands with that agent and no one else.
	p.act(other, c.WorkItemID, routing.Action{Kind: routing.ActionTransfer, Target: routing.TargetAgent, TargetID: p.ids[holder]})
	back := p.waitAW(c.WorkItemID, "Assigned", holder)
	require.NoError(t, p.em.AcceptWork(back.ID))
	p.waitState(holder, "Busy")
	for _, x := range p.em.AgentWorks() {
		if x.WorkItemID == c.WorkItemID && x.ID != aw.ID && x.ID != next.ID && x.ID != back.ID {
			t.Fatalf("the case went to someone else too: %+v", x)
		}
	}
	_ = a1
}

// TestE2EElevateAndDisposition: a billing chat elevated to a voice call in the same session,
// which needs live capacity; the session ends only after both interactions and the required
// disposition, which is written to the chat's Disposition__c.
func TestE2EElevateAndDisposition(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Ready")
	a1 := p.ids[agent1]
	p.presence(agent1, "Available")
	p.waitState(agent1, "Ready")
	w, _ := p.acceptChat("Billing", agent1)

	p.act(agent1, w, routing.Action{Kind: routing.ActionElevate, Mode: routing.ElevateNewContact, Channel: "Phone"})
	voice := p.waitCommand(a1, routing.CommandElevate, nil)
	// A second voice call needs more live capacity than the agent has (5 units, 5 used).
	p.act(agent1, w, routing.Action{Kind: routing.ActionElevate, Mode: routing.ElevateNewContact, Channel: "Phone", NewWorkID: w + "/voice2"})
	p.waitCommand(a1, routing.CommandRefused, func(c routing.Command) bool { return c.Reason == routing.ReasonNoCapacity })

	p.act(agent1, w, routing.Action{Kind: routing.ActionRelease})
	p.advance(11 * time.Second)
	p.waitCommand(a1, routing.CommandEnded, func(c routing.Command) bool { return c.WorkID == w })
	sessionOpen := func(why string) {
		t.Helper()
		p.settle()
		for _, m := range p.console.messages(a1) {
			require.False(t, m.Command != nil && m.Command.Type == routing.CommandSessionEnded, why)
		}
	}
	sessionOpen("the voice call is still open")
	p.act(agent1, voice.WorkID, routing.Action{Kind: routing.ActionRelease})
	p.advance(11 * time.Second)
	p.waitCommand(a1, routing.CommandNotify, func(c routing.Command) bool { return c.Reason == routing.ReasonDispositionRequired })
	sessionOpen("the disposition is missing")
	p.act(agent1, w, routing.Action{Kind: routing.ActionDisposition, Disposition: "Resolved"})
	p.waitCommand(a1, routing.CommandSessionEnded, func(c routing.Command) bool { return c.Disposition == "Resolved" })
	require.Eventually(t, func() bool {
		var rec struct {
			Disposition string `json:"Disposition__c"`
		}
		err := p.d.c.sf.Client.Get(t.Context(), "LiveChatTranscript", w, []string{"Disposition__c"}, &rec)
		return err == nil && rec.Disposition == "Resolved"
	}, 20*time.Second, 20*time.Millisecond, "the disposition was not written to the chat")
}

// TestE2EAcceptFromThePad: with a plan that needs an accept, the pad's accept is checked
// against the open offer and carried out by the console (acceptAgentWork); a decline of work
// not offered to the agent is refused.
func TestE2EAcceptFromThePad(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Ready")
	a1 := p.ids[agent1]
	p.presence(agent1, "Available")
	p.waitState(agent1, "Ready")
	w := p.work(emulator.WorkRequest{})
	aw := p.waitAW(w.WorkItemID, "Assigned", agent1)
	p.waitCommand(a1, routing.CommandOffer, func(c routing.Command) bool { return c.WorkID == w.WorkItemID })
	report := func(kind ReportKind, work string) {
		p.report(agent1, ConsoleReport{Kind: kind, WorkID: work})
	}
	report(ReportDeclineRequest, "570000000000999AAA")
	p.waitCommand(a1, routing.CommandRefused, func(c routing.Command) bool { return c.WorkID == "570000000000999AAA" })
	require.Eventually(t, func() bool {
		report(ReportAcceptRequest, w.WorkItemID)
		time.Sleep(50 * time.Millisecond)
		return slices.ContainsFunc(p.console.consoleOps(a1), func(c ConsoleCommand) bool { return c.Op == ConsoleAccept })
	}, 20*time.Second, 50*time.Millisecond)
	p.waitAW(w.WorkItemID, "Opened", agent1)
	require.Equal(t, aw.ID, p.console.consoleOps(a1)[slices.IndexFunc(p.console.consoleOps(a1), func(c ConsoleCommand) bool { return c.Op == ConsoleAccept })].AgentWorkID)
	p.waitState(agent1, "Busy")
}
