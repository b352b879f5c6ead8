package mapping_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

// seed003 is the mapping of seed 003's worked example (steps 5 and 6): On a call -> Away,
// Away from desk -> Break, login -> Ready for cases, Wrap up -> Taking notes.
const seed003 = `
plans:
  - name: support
    queues: [Support_EN]
channels:
  - name: Chat
    class: semi-live
capacity:
  default: standard
  profiles:
    - name: standard
      total: 10
presence:
  fromSalesforce:
    On_a_call: Away
    Away_from_desk: Away/Break
  toSalesforce:
    Ready: Ready_for_cases
    ReadyOutbound: Away_from_desk
    Busy: On_a_call
    WrapUp: Taking_notes
    Away: Away_from_desk
    ExtendedAway: Away_from_desk
    LoggedOut: Offline
`

func parsePresence(t *testing.T, yaml string) *mapping.Presence {
	t.Helper()
	cfg, err := mapping.Parse([]byte(yaml), "seed003.yaml")
	require.NoError(t, err)
	return &cfg.Presence
}

func st(s string) mapping.State {
	v, err := mapping.ParseState(s)
	if err != nil {
		panic(err)
	}
	return v
}

// TestSeed003Events reproduces every example event of seed 003, in its order.
func TestSeed003Events(t *testing.T) {
	t.Parallel()
	p := parsePresence(t, seed003)
	type step struct {
		name string
		from mapping.AgentPresence
		// exactly one of state (an omniroute state change) or status (a Salesforce event)
		state     string
		status    string
		wantState string
		wantPush  string
	}
	tests := []step{
		{
			name:   "agent goes offline in Omni-Channel: logged out",
			from:   mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_cases"},
			status: mapping.OfflineStatus, wantState: "LoggedOut",
		},
		{
			name:  "agent logs in: Ready for cases",
			from:  mapping.AgentPresence{State: st("LoggedOut"), Status: mapping.OfflineStatus},
			state: "Ready", wantState: "Ready", wantPush: "Ready_for_cases",
		},
		{
			name:   "status On a call: Away",
			from:   mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_cases"},
			status: "On_a_call", wantState: "Away",
		},
		{
			name:   "status Away from desk: Break",
			from:   mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_cases"},
			status: "Away_from_desk", wantState: "Away/Break",
		},
		{
			name:  "state Wrap up: Taking notes",
			from:  mapping.AgentPresence{State: st("Busy"), Status: "On_a_call", PreWorkStatus: "Ready_for_cases"},
			state: "WrapUp", wantState: "WrapUp", wantPush: "Taking_notes",
		},
		{
			name:  "agent logs out: Offline",
			from:  mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_cases"},
			state: "LoggedOut", wantState: "LoggedOut", wantPush: mapping.OfflineStatus,
		},
		{
			name:   "unmapped status: the default Ready",
			from:   mapping.AgentPresence{State: st("Away/Break"), Status: "Away_from_desk"},
			status: "Ready_for_chats", wantState: "Ready",
		},
		{
			name:   "mapped status Ready_for_cases has no fromSalesforce line: the default Ready",
			from:   mapping.AgentPresence{State: st("Away"), Status: "On_a_call"},
			status: "Ready_for_cases", wantState: "Ready",
		},
		{
			name:  "minor state without a mapping: its major state's status",
			from:  mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_cases"},
			state: "Away/Lunch", wantState: "Away/Lunch", wantPush: "Away_from_desk",
		},
		{
			name:  "ExtendedAway minor falls back to ExtendedAway's status",
			from:  mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_cases"},
			state: "ExtendedAway/Training", wantState: "ExtendedAway/Training", wantPush: "Away_from_desk",
		},
		{
			name:  "work assigned: Busy pushes its status",
			from:  mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_cases"},
			state: "Busy", wantState: "Busy", wantPush: "On_a_call",
		},
		{
			name:  "a state whose status is already shown pushes nothing",
			from:  mapping.AgentPresence{State: st("Away/Break"), Status: "Away_from_desk"},
			state: "Away/Lunch", wantState: "Away/Lunch",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d mapping.Decision
			if tc.state != "" {
				d = p.OnStateChange(tc.from, st(tc.state))
			} else {
				d = p.OnStatusChange(tc.from, tc.status)
				require.Empty(t, d.Push, "a change that came from Salesforce is never pushed back")
			}
			require.Equal(t, st(tc.wantState), d.Next.State)
			require.Equal(t, tc.wantPush, d.Push)
		})
	}
}

func TestStatusForStateFallback(t *testing.T) {
	t.Parallel()
	p := parsePresence(t, seed003)
	p.ToSalesforce[st("Away/Break")] = "On_break"
	tests := []struct{ state, want string }{
		{"Away/Break", "On_break"},       // the minor mapping wins
		{"Away/Lunch", "Away_from_desk"}, // unmapped minor: major's mapping
		{"Away", "Away_from_desk"},
		{"WrapUp/Manual", "Taking_notes"},
		{"LoggedOut", mapping.OfflineStatus},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, p.StatusForState(st(tc.state)), tc.state)
	}
	require.Equal(t, st("Ready"), p.StateForStatus("Nobody_mapped_this"), "unmapped status: Ready")
	require.Equal(t, st("LoggedOut"), p.StateForStatus(mapping.OfflineStatus))
	require.Equal(t, st("Away/Break"), p.StateForStatus("Away_from_desk"))
}

// TestRevertToLastStatus covers seed 003's "Revert to status before interaction" rules.
func TestRevertToLastStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		revert    bool
		postCall  string
		preWork   string
		next      string // the state the agent enters after wrap-up
		wantPush  string
		wantWarns int
	}{
		{name: "revert on, post-call Ready: the pre-work status", revert: true, postCall: "Ready", preWork: "Ready_for_chats", next: "Ready", wantPush: "Ready_for_chats"},
		{name: "revert on, post-call ReadyOutbound (Ready (Offline)): the pre-work status", revert: true, postCall: "ReadyOutbound", preWork: "Ready_for_chats", next: "ReadyOutbound", wantPush: "Ready_for_chats"},
		{name: "revert off: the status mapped to Ready", revert: false, postCall: "Ready", preWork: "Ready_for_chats", next: "Ready", wantPush: "Ready_for_cases"},
		{name: "revert on, post-call Away: the mapped status wins, and the check warns", revert: true, postCall: "Away/Admin", preWork: "Ready_for_chats", next: "Away/Admin", wantPush: "Away_from_desk", wantWarns: 1},
		{name: "revert on, post-call LoggedOut: Offline wins, and the check warns", revert: true, postCall: "LoggedOut", preWork: "Ready_for_chats", next: "LoggedOut", wantPush: mapping.OfflineStatus, wantWarns: 1},
		{name: "revert on, pre-work status unknown: the mapped status", revert: true, postCall: "Ready", preWork: "", next: "Ready", wantPush: "Ready_for_cases"},
		{name: "revert on, agent leaves work for another state than post-call: its mapped status", revert: true, postCall: "Ready", preWork: "Ready_for_chats", next: "Away/Break", wantPush: "Away_from_desk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := mapping.Parse([]byte(seed003), "seed003.yaml")
			require.NoError(t, err)
			cfg.Presence.RevertToLastStatus = tc.revert
			cfg.Presence.PostCallState = st(tc.postCall)
			require.Len(t, cfg.Warnings(), tc.wantWarns)
			p := &cfg.Presence

			// The agent works from preWork status: Ready -> Busy -> WrapUp -> next.
			a := mapping.AgentPresence{State: st("Ready"), Status: tc.preWork}
			d := p.OnStateChange(a, st("Busy"))
			require.Equal(t, tc.preWork, d.Next.PreWorkStatus)
			d = p.OnStateChange(d.Next, st("WrapUp"))
			d = p.OnStateChange(d.Next, st(tc.next))
			require.Equal(t, tc.wantPush, d.Push)
			require.Empty(t, d.Next.PreWorkStatus)
		})
	}
	require.True(t, mapping.RevertApplies(st("Ready")))
	require.True(t, mapping.RevertApplies(st("ReadyOutbound")))
	require.False(t, mapping.RevertApplies(st("Away")))
	require.False(t, mapping.RevertApplies(st("ExtendedAway/Training")))
}

func TestPresenceChangeDuringWorkIsKeptForRevert(t *testing.T) {
	t.Parallel()
	p := parsePresence(t, seed003)
	p.RevertToLastStatus = true
	a := mapping.AgentPresence{State: st("Busy"), Status: "On_a_call", PreWorkStatus: "Ready_for_cases"}
	d := p.OnStatusChange(a, "Ready_for_chats")
	require.Equal(t, st("Busy"), d.Next.State, "omniroute owns Busy while work is active")
	require.Equal(t, "Ready_for_chats", d.Next.PreWorkStatus)
	d = p.OnStateChange(d.Next, st("WrapUp"))
	require.Equal(t, "Taking_notes", d.Push)
	d = p.OnStateChange(d.Next, st("Ready"))
	require.Equal(t, "Ready_for_chats", d.Push, "the agent's choice during work is restored")
}

// TestEventSwitches turns each of seed 003's five events off in turn.
func TestEventSwitches(t *testing.T) {
	t.Parallel()
	ready := mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_cases"}
	loggedOut := mapping.AgentPresence{State: st("LoggedOut"), Status: mapping.OfflineStatus}
	tests := []struct {
		name   string
		off    func(*mapping.PresenceEvents)
		run    func(*mapping.Presence) mapping.Decision
		want   string // state after
		wantPu string
	}{
		{"stateChangesUpdatePresence off", func(e *mapping.PresenceEvents) { e.StateChangesUpdatePresence = false },
			func(p *mapping.Presence) mapping.Decision { return p.OnStateChange(ready, st("Away")) }, "Away", ""},
		{"presenceChangesUpdateState off", func(e *mapping.PresenceEvents) { e.PresenceChangesUpdateState = false },
			func(p *mapping.Presence) mapping.Decision { return p.OnStatusChange(ready, "On_a_call") }, "Ready", ""},
		{"loginSetsOnline off", func(e *mapping.PresenceEvents) { e.LoginSetsOnline = false },
			func(p *mapping.Presence) mapping.Decision { return p.OnStateChange(loggedOut, st("Ready")) }, "Ready", ""},
		{"logoutSetsOffline off", func(e *mapping.PresenceEvents) { e.LogoutSetsOffline = false },
			func(p *mapping.Presence) mapping.Decision { return p.OnStateChange(ready, st("LoggedOut")) }, "LoggedOut", ""},
		{"offlineLogsOut off", func(e *mapping.PresenceEvents) { e.OfflineLogsOut = false },
			func(p *mapping.Presence) mapping.Decision { return p.OnStatusChange(ready, mapping.OfflineStatus) }, "Ready", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := parsePresence(t, seed003)
			require.Equal(t, mapping.PresenceEvents{
				StateChangesUpdatePresence: true, PresenceChangesUpdateState: true,
				LoginSetsOnline: true, LogoutSetsOffline: true, OfflineLogsOut: true,
			}, p.Events, "every switch defaults to on")
			tc.off(&p.Events)
			d := tc.run(p)
			require.Equal(t, st(tc.want), d.Next.State)
			require.Equal(t, tc.wantPu, d.Push)
		})
	}
}

func TestEchoFilter(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	f := mapping.NewEchoFilter(10 * time.Second)
	f.Pushed("005A", "Ready_for_cases", t0)
	require.False(t, f.IsEcho("005B", "Ready_for_cases", t0), "another agent's event")
	require.False(t, f.IsEcho("005A", "Away_from_desk", t0.Add(time.Second)), "the agent's own, different change")
	require.True(t, f.IsEcho("005A", "Ready_for_cases", t0.Add(2*time.Second)))
	require.False(t, f.IsEcho("005A", "Ready_for_cases", t0.Add(3*time.Second)), "an echo is consumed once")

	f.Pushed("005A", "Taking_notes", t0)
	require.False(t, f.IsEcho("005A", "Taking_notes", t0.Add(11*time.Second)), "expired after the TTL")

	// Two pushes, echoes in order: the later echo consumes the earlier push too.
	f.Pushed("005A", "On_a_call", t0)
	f.Pushed("005A", "Taking_notes", t0.Add(time.Second))
	require.True(t, f.IsEcho("005A", "Taking_notes", t0.Add(2*time.Second)))
	require.False(t, f.IsEcho("005A", "On_a_call", t0.Add(3*time.Second)))

	f.Pushed("005A", "On_a_call", t0)
	f.Forget("005A")
	require.False(t, f.IsEcho("005A", "On_a_call", t0))
}

// omni is a fake Omni-Channel widget: it applies pushes some time later and reports every status
// change as a Salesforce event, like UserServicePresence CDC does.
type omni struct {
	status string
	events []string // statuses reported, oldest first
}

func (o *omni) apply(status string) {
	o.status = status
	o.events = append(o.events, status)
}

// TestTwoWaySyncNeverLoops drives omniroute's state changes, the agent's own Omni changes,
// pushes and their echoes (delayed, reordered relative to new changes, sometimes past the
// echo TTL) through the presence functions, and checks that sync settles: every event is
// processed with a bounded number of pushes, a Salesforce-originated change never pushes back,
// and once quiet the state and the shown status agree.
func TestTwoWaySyncNeverLoops(t *testing.T) {
	t.Parallel()
	for seed := range uint64(200) {
		p := parsePresence(t, seed003)
		p.RevertToLastStatus = seed%2 == 0
		rng := rand.New(rand.NewPCG(seed, 42))
		filter := mapping.NewEchoFilter(5 * time.Second)
		now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
		a := mapping.AgentPresence{State: st("LoggedOut"), Status: mapping.OfflineStatus}
		w := &omni{status: mapping.OfflineStatus}
		var inFlight []string // pushes not yet applied by the widget
		pushes, ownChanges := 0, 0
		omnirouteStates := []string{"Ready", "Busy", "WrapUp", "Ready", "Away/Lunch", "Away/Break", "ExtendedAway/Training", "ReadyOutbound", "LoggedOut"}
		agentStatuses := []string{"Ready_for_cases", "On_a_call", "Away_from_desk", "Ready_for_chats", mapping.OfflineStatus}

		push := func(d mapping.Decision) {
			a = d.Next
			if d.Push != "" {
				pushes++
				filter.Pushed("005A", d.Push, now)
				inFlight = append(inFlight, d.Push)
			}
		}
		deliver := func() { // Salesforce events reach omniroute
			for len(w.events) > 0 {
				ev := w.events[0]
				w.events = w.events[1:]
				if filter.IsEcho("005A", ev, now) {
					push(p.OnEcho(a, ev))
					continue
				}
				d := p.OnStatusChange(a, ev)
				require.Empty(t, d.Push, "seed %d: a Salesforce change pushed back", seed)
				a = d.Next
			}
		}
		for range 60 {
			now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
			switch rng.IntN(4) {
			case 0: // omniroute changes the state
				ownChanges++
				push(p.OnStateChange(a, st(omnirouteStates[rng.IntN(len(omnirouteStates))])))
			case 1: // the agent picks a status in Omni
				w.apply(agentStatuses[rng.IntN(len(agentStatuses))])
			case 2: // the widget applies the oldest push
				if len(inFlight) > 0 {
					w.apply(inFlight[0])
					inFlight = inFlight[1:]
				}
			case 3:
				deliver()
			}
		}
		// Quiesce: apply every push, deliver every event, repeat until nothing moves.
		for round := 0; len(inFlight) > 0 || len(w.events) > 0; round++ {
			require.Less(t, round, 10, "seed %d: sync did not settle", seed)
			for _, s := range inFlight {
				w.apply(s)
			}
			inFlight = nil
			deliver()
		}
		require.LessOrEqual(t, pushes, 2*ownChanges, "seed %d: more than one re-push per omniroute state change", seed)
		require.Equal(t, w.status, a.Status, "seed %d: omniroute's view of the status", seed)
		// Settled: the shown status either is what the state maps to, or maps to the state.
		if a.State.Major != mapping.LoggedOut && a.State.Major != mapping.Busy && a.State.Major != mapping.WrapUp {
			require.True(t, p.Agrees(a.State, a.Status), "seed %d: state %s and status %s disagree", seed, a.State, a.Status)
		}
		// And one more delivery of the current status changes nothing.
		d := p.OnStatusChange(a, a.Status)
		require.Empty(t, d.Push)
	}
}

// TestLateEchoDoesNotFlap: an echo that arrives after the filter forgot the push still changes
// nothing, because the status already agrees with the state.
func TestLateEchoDoesNotFlap(t *testing.T) {
	t.Parallel()
	p := parsePresence(t, seed003)
	a := mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_cases"}
	d := p.OnStateChange(a, st("Away/Lunch"))
	require.Equal(t, "Away_from_desk", d.Push)
	// Away_from_desk maps back to Away/Break, but Away/Lunch already shows Away_from_desk.
	d2 := p.OnStatusChange(d.Next, "Away_from_desk")
	require.Equal(t, st("Away/Lunch"), d2.Next.State)
	require.Empty(t, d2.Push)
	// Busy pushes On_a_call, which maps to Away: the echo must not take the agent out of Busy.
	d = p.OnStateChange(d2.Next, st("Busy"))
	require.Equal(t, "On_a_call", d.Push)
	d2 = p.OnStatusChange(d.Next, "On_a_call")
	require.Equal(t, st("Busy"), d2.Next.State)
}

// TestOnEchoOvertakenPush: the agent picked Away from desk in Omni before omniroute's earlier
// push of Ready for cases landed. The echo is recognised, and the latest intent is pushed again.
func TestOnEchoOvertakenPush(t *testing.T) {
	t.Parallel()
	p := parsePresence(t, seed003)
	a := mapping.AgentPresence{State: st("Away/Break"), Status: "Away_from_desk"}
	d := p.OnEcho(a, "Ready_for_cases")
	require.Equal(t, st("Away/Break"), d.Next.State)
	require.Equal(t, "Away_from_desk", d.Push)
	// An echo that agrees changes nothing and pushes nothing.
	d = p.OnEcho(d.Next, "Away_from_desk")
	require.Empty(t, d.Push)
	// A stale echo while logged out logs the console out again.
	d = p.OnEcho(mapping.AgentPresence{State: st("LoggedOut"), Status: mapping.OfflineStatus}, "Ready_for_cases")
	require.Equal(t, mapping.OfflineStatus, d.Push)
}

func TestOmniLoginLogsIn(t *testing.T) {
	t.Parallel()
	p := parsePresence(t, seed003)
	a := mapping.AgentPresence{State: st("LoggedOut"), Status: mapping.OfflineStatus}
	d := p.OnStatusChange(a, "Away_from_desk")
	require.Equal(t, st("Away/Break"), d.Next.State)
	require.Empty(t, d.Push)
	p.Events.PresenceChangesUpdateState = false
	d = p.OnStatusChange(a, "Away_from_desk")
	require.Equal(t, st("LoggedOut"), d.Next.State)
	require.Equal(t, "Away_from_desk", d.Next.Status)
}

// TestLateEchoOfAnOverriddenPush: the agent goes on a break, then back to Ready a few seconds
// later. Salesforce reports the first push only after the echo TTL, but while the second push
// is still fresh. That echo is still omniroute's own: it must not put the agent back on a
// break, and the agent ends Ready, showing Ready_for_cases.
func TestLateEchoOfAnOverriddenPush(t *testing.T) {
	t.Parallel()
	p := parsePresence(t, seed003)
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	f := mapping.NewEchoFilter(5 * time.Second)
	a := mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_cases"}

	d := p.OnStateChange(a, st("Away/Break"))
	require.Equal(t, "Away_from_desk", d.Push)
	f.Pushed("005A", d.Push, t0)
	a = d.Next
	d = p.OnStateChange(a, st("Ready"))
	require.Equal(t, "Ready_for_cases", d.Push)
	f.Pushed("005A", d.Push, t0.Add(4*time.Second))
	a = d.Next

	// Both echoes arrive 6 s after the first push.
	now := t0.Add(6 * time.Second)
	for _, ev := range []string{"Away_from_desk", "Ready_for_cases"} {
		if f.IsEcho("005A", ev, now) {
			d = p.OnEcho(a, ev)
		} else {
			d = p.OnStatusChange(a, ev)
		}
		a = d.Next
		if d.Push != "" {
			f.Pushed("005A", d.Push, now)
		}
		require.Equal(t, st("Ready"), a.State, "after the echo of %s", ev)
	}
	require.Equal(t, "Ready_for_cases", a.Status)

	// The TTL counts from the latest push: once it has passed, everything is forgotten.
	require.False(t, f.IsEcho("005A", "Ready_for_cases", now.Add(5*time.Second+time.Millisecond)))
}

// TestBusyInbound: when Salesforce routes work to the agent itself, the routing engine sets
// Busy/Inbound (seed 003's Busy Inbound). Unmapped, it shows Busy's status; an admin may map
// the minor state; the status before it is restored after, as for omniroute's own work.
func TestBusyInbound(t *testing.T) {
	t.Parallel()
	p := parsePresence(t, seed003)
	p.RevertToLastStatus = true
	a := mapping.AgentPresence{State: st("Ready"), Status: "Ready_for_chats"}
	d := p.OnStateChange(a, st("Busy/Inbound"))
	require.Equal(t, "On_a_call", d.Push, "Busy/Inbound falls back to Busy's status")
	require.Equal(t, "Ready_for_chats", d.Next.PreWorkStatus)
	// The echo of that push, even unrecognised, keeps the agent Busy/Inbound.
	d2 := p.OnStatusChange(d.Next, "On_a_call")
	require.Equal(t, st("Busy/Inbound"), d2.Next.State)
	d = p.OnStateChange(d2.Next, st("Ready"))
	require.Equal(t, "Ready_for_chats", d.Push, "revert: the status before the Salesforce-routed work")

	p.ToSalesforce[st("Busy/Inbound")] = "Ready_for_chats"
	d = p.OnStateChange(a, st("Busy/Inbound"))
	require.Empty(t, d.Push, "mapped to the status already shown: nothing to push")
	require.Equal(t, st("Busy/Inbound"), d.Next.State)
}

// TestEchoAfterTheAgentChangedAgain: omniroute pushed Ready_for_cases; before it landed, the
// agent picked Ready_for_chats (also Ready, by default). Salesforce applied the agent's pick,
// then the stale push. The agent's later choice must win: it is pushed back.
func TestEchoAfterTheAgentChangedAgain(t *testing.T) {
	t.Parallel()
	p := parsePresence(t, seed003)
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	f := mapping.NewEchoFilter(5 * time.Second)
	a := mapping.AgentPresence{State: st("Away/Break"), Status: "Away_from_desk"}
	d := p.OnStateChange(a, st("Ready"))
	require.Equal(t, "Ready_for_cases", d.Push)
	f.Pushed("005A", d.Push, t0)
	a = d.Next

	require.False(t, f.IsEcho("005A", "Ready_for_chats", t0.Add(time.Second)))
	d = p.OnStatusChange(a, "Ready_for_chats")
	require.Equal(t, st("Ready"), d.Next.State)
	a = d.Next

	require.True(t, f.IsEcho("005A", "Ready_for_cases", t0.Add(2*time.Second)))
	d = p.OnEcho(a, "Ready_for_cases")
	require.Equal(t, st("Ready"), d.Next.State)
	require.Equal(t, "Ready_for_chats", d.Push, "the agent's later pick is restored")
	require.Equal(t, "Ready_for_chats", d.Next.Status)
}
