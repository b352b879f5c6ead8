package connector

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
)

// syncMapping is seed 003's example mapping with every status of the org mapped both ways or
// falling back to the defaults.
const syncMapping = `
plans:
  - name: support
    queues: [Support_EN]
channels:
  - {name: Chat, class: semi-live}
capacity:
  default: standard
  profiles:
    - {name: standard, total: 10}
` + seed003Presence

// seed003Presence is seed 003's worked example (steps 5 and 6) as a presence section, with
// Taking_notes mapped back so that its echo would be a state change if it were not recognised.
const seed003Presence = `presence:
  fromSalesforce:
    On_a_call: Away
    Away_from_desk: Away/Break
    Taking_notes: Away/Notes
  toSalesforce:
    Ready: Ready_for_cases
    ReadyOutbound: Away_from_desk
    Busy: On_a_call
    WrapUp: Taking_notes
    Away: Away_from_desk
    ExtendedAway: Away_from_desk
    LoggedOut: Offline`

var syncStatuses = []string{"Available", "Ready_for_cases", "On_a_call", "Away_from_desk", "Taking_notes", mapping.OfflineStatus}

var syncStates = []string{"Ready", "Away", "Away/Break", "Away/Lunch", "ExtendedAway", "LoggedOut"}

// syncSim is Salesforce, one agent and their console around a Router, on a fake clock. The
// console carries out a ConsoleCommand some time after it is sent (it lands in Salesforce
// then); Salesforce reports each change of the agent's status, in commit order, some time
// after it.
type syncSim struct {
	t      *testing.T
	r      *Router
	rng    *rand.Rand
	now    time.Time
	user   string
	status string // what Omni-Channel shows
	// skew is how far Salesforce's clock (the events' commit times) is ahead of the daemon's.
	skew time.Duration
	// consoleReports: the console reports the agent's own picks in Omni-Channel as it sees
	// them (ReportPresenceChanged, ReportLoggedOut), as the real console does.
	consoleReports bool
	// landing are console commands not yet carried out; events are Salesforce's reports not
	// yet delivered, in commit order.
	landing []landing
	events  []sfEvent
	// counts
	pushes, stateChanges int
	states               []mapping.State
}

type landing struct {
	cmd ConsoleCommand
	at  time.Time
}

type sfEvent struct {
	status string
	at     time.Time // commit time
	due    time.Time // delivery time
}

// Deliver implements AgentSink.
func (s *syncSim) Deliver(_ string, m AgentMessage) bool {
	switch {
	case m.Console != nil:
		// The console carries out its commands one at a time, in order.
		s.pushes++
		at := s.now.Add(s.delay())
		if n := len(s.landing); n > 0 && at.Before(s.landing[n-1].at) {
			at = s.landing[n-1].at
		}
		s.landing = append(s.landing, landing{cmd: *m.Console, at: at})
	case m.Command != nil && m.Command.Type == routing.CommandSetState:
		s.stateChanges++
		s.states = append(s.states, m.Command.State)
	}
	return true
}

func (s *syncSim) delay() time.Duration {
	return time.Duration(s.rng.Int64N(int64(5 * time.Second)))
}

// commit changes the agent's status in Salesforce at now and queues its event.
func (s *syncSim) commit(status string) {
	if status == s.status {
		return // Salesforce reports no change
	}
	s.status = status
	due := s.now.Add(s.delay())
	if n := len(s.events); n > 0 && due.Before(s.events[n-1].due) {
		due = s.events[n-1].due // in commit order
	}
	s.events = append(s.events, sfEvent{status: status, at: s.now.Add(s.skew), due: due})
}

// step moves the clock to the next landing or event and carries it out; false when none is left.
func (s *syncSim) step() bool {
	li := -1
	for i, l := range s.landing {
		if li < 0 || l.at.Before(s.landing[li].at) {
			li = i
		}
	}
	switch {
	case li >= 0 && (len(s.events) == 0 || !s.events[0].due.Before(s.landing[li].at)):
		l := s.landing[li]
		s.landing = slices.Delete(s.landing, li, li+1)
		s.now = maxTime(s.now, l.at)
		if l.cmd.ExpectStatus != "" && l.cmd.ExpectStatus != s.status {
			// Compare-and-set: the agent changed the status since the push was decided.
			s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Report: &ConsoleReport{Kind: ReportResult,
				CommandID: l.cmd.ID, Error: ConsoleStatusChanged, Status: s.status, StatusID: s.r.statusID(s.status)}}})
			break
		}
		status := l.cmd.Status
		if l.cmd.Op == ConsoleLogout {
			status = mapping.OfflineStatus
		}
		unchanged := status == s.status
		s.commit(status)
		s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Report: &ConsoleReport{Kind: ReportResult,
			CommandID: l.cmd.ID, OK: true, Unchanged: unchanged}}})
		if s.consoleReports && !unchanged {
			// The console sees the change it made, as every other.
			s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Report: s.presenceReport()}})
		}
	case len(s.events) > 0:
		ev := s.events[0]
		s.events = s.events[1:]
		s.now = maxTime(s.now, ev.due)
		s.r.presenceSeen(s.user, ev.status, []string{"Chat"}, ev.at)
	default:
		return false
	}
	return true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func newSyncSim(t *testing.T, seed uint64) *syncSim {
	t.Helper()
	m, err := mapping.Parse([]byte(syncMapping), "sync.yaml")
	require.NoError(t, err)
	table, err := routing.Compile(m)
	require.NoError(t, err)
	org := mapping.Org{}
	for i, st := range syncStatuses[:len(syncStatuses)-1] {
		org.Statuses = append(org.Statuses, mapping.OrgStatus{ID: fmt.Sprintf("0N5%015d", i), DeveloperName: st})
	}
	s := &syncSim{t: t, rng: rand.New(rand.NewPCG(seed, 7)), now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC),
		user: "005000000000001AAA", status: mapping.OfflineStatus}
	s.r = NewRouter(RouterOptions{Table: table, Names: NewNames(org, m), Org: OrgInfo{Org: org}, Agents: s,
		Now: func() time.Time { return s.now }})
	s.r.handle(inMsg{kind: msgSnapshot, snap: &reconcileData{agentWork: map[string]AgentWorkRef{}, uspUser: map[string]string{}}})
	return s
}

func (s *syncSim) state() mapping.State {
	return s.r.agentSnapshot(s.user).Agent.State
}

// TestPresenceSyncConverges: the agent changes their status in Omni-Channel and their state in
// the pad, at random moments, while omniroute's pushes and Salesforce's events are in flight
// with random delays (1,000 interleavings). Sync never loops (everything settles, with at most
// one push per intent plus one re-push per overtaken push), never flaps (the state changes at
// most once per intent), and settles on the newer intent: the agent's last choice, in whichever
// system they made it, with the state and the status agreeing.
func TestPresenceSyncConverges(t *testing.T) {
	t.Parallel()
	testPresenceSyncConverges(t, 0)
}

// TestPresenceSyncConvergesClockSkew: the same with Salesforce's clock 10 s ahead of the
// daemon's and 10 s behind (more than the push-to-echo delay), the console honouring the
// compare-and-set of presence commands (ExpectStatus).
func TestPresenceSyncConvergesClockSkew(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{10 * time.Second, -10 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			t.Parallel()
			testPresenceSyncConverges(t, skew)
		})
	}
}

func testPresenceSyncConverges(t *testing.T, skew time.Duration) {
	t.Helper()
	m, err := mapping.Parse([]byte(syncMapping), "sync.yaml")
	require.NoError(t, err)
	p := &m.Presence
	for seed := range uint64(1000) {
		s := newSyncSim(t, seed)
		s.skew, s.consoleReports = skew, true
		intents := 0
		var last func() // asserts the last intent won
		n := 1 + s.rng.IntN(6)
		for range n {
			// Some time passes, and what falls due meanwhile happens.
			until := s.now.Add(time.Duration(s.rng.Int64N(int64(4 * time.Second))))
			for s.nextDue().Before(until) && s.step() {
			}
			s.now = maxTime(s.now, until)
			intents++
			if s.rng.IntN(2) == 0 {
				st := st(syncStates[s.rng.IntN(len(syncStates))])
				s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Event: &routing.Event{Type: routing.EventAgentState, State: st}}})
				last = func() {
					require.Equal(t, st, s.state(), "seed %d: the pad's choice is the newer intent", seed)
				}
			} else {
				status := syncStatuses[s.rng.IntN(len(syncStatuses))]
				if status == s.status || s.inFlight(status) {
					// A click on the status shown changes nothing: no event, no intent. A
					// click on the very status a push in flight carries is left out: its event
					// is indistinguishable from the push's echo (see docs/routing.md).
					intents--
					continue
				}
				s.commit(status)
				if s.consoleReports {
					// The console reports the agent's pick at once, in order with the pad's
					// inputs on the same websocket.
					s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Report: s.presenceReport()}})
				}
				last = func() {
					require.Equal(t, status, s.status, "seed %d: the agent's pick in Omni-Channel is the newer intent", seed)
				}
			}
		}
		steps := 0
		for s.step() {
			steps++
			require.Less(t, steps, 1000, "seed %d: sync never settles (a loop)", seed)
		}
		if last != nil {
			last()
		}
		require.True(t, p.StateForStatus(s.status) == s.state() || p.StatusForState(s.state()) == s.status,
			"seed %d: state %s and status %s disagree", seed, s.state(), s.status)
		require.LessOrEqual(t, s.stateChanges, intents, "seed %d: the state flapped: %v", seed, s.states)
		require.LessOrEqual(t, s.pushes, 2*intents, "seed %d: too many pushes", seed)
	}
}

// presenceReport is the console's report of the status Omni-Channel shows.
func (s *syncSim) presenceReport() *ConsoleReport {
	if s.status == mapping.OfflineStatus {
		return &ConsoleReport{Kind: ReportLoggedOut}
	}
	return &ConsoleReport{Kind: ReportPresenceChanged, Status: s.status, StatusID: s.r.statusID(s.status)}
}

// inFlight reports whether a console command not yet carried out sets status.
func (s *syncSim) inFlight(status string) bool {
	for _, l := range s.landing {
		if l.cmd.Status == status || (l.cmd.Op == ConsoleLogout && status == mapping.OfflineStatus) {
			return true
		}
	}
	return false
}

// nextDue is when the next landing or event falls due (far future when none).
func (s *syncSim) nextDue() time.Time {
	next := s.now.Add(time.Hour)
	for _, l := range s.landing {
		if l.at.Before(next) {
			next = l.at
		}
	}
	if len(s.events) > 0 && s.events[0].due.Before(next) {
		next = s.events[0].due
	}
	return next
}

func st(s string) mapping.State {
	v, err := mapping.ParseState(s)
	if err != nil {
		panic(err)
	}
	return v
}

// TestPushSeenByConsoleAndStreamIsOneEcho: the console reports every status change it sees,
// omniroute's own pushes included, and Salesforce streams the same change: whichever of the two
// comes first, the second is the same change, not the agent's new intent. Seed 003's example
// maps Away to Away_from_desk and Away_from_desk back to Away/Break, so taking the echo for an
// intent would change the state.
func TestPushSeenByConsoleAndStreamIsOneEcho(t *testing.T) {
	t.Parallel()
	for _, consoleFirst := range []bool{true, false} {
		s := newSyncSim(t, 1)
		s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Event: &routing.Event{Type: routing.EventAgentState, State: st("Away")}}})
		require.Len(t, s.landing, 1)
		decided := s.now
		cmd := s.landing[0].cmd
		require.Equal(t, "Away_from_desk", cmd.Status)
		s.now = s.now.Add(time.Second)
		s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Report: &ConsoleReport{Kind: ReportResult, CommandID: cmd.ID, OK: true}}})
		console := func() {
			s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Report: &ConsoleReport{Kind: ReportPresenceChanged,
				Status: "Away_from_desk", StatusID: cmd.StatusID}}})
		}
		stream := func() {
			s.r.presenceSeen(s.user, "Away_from_desk", []string{"Chat"}, decided.Add(500*time.Millisecond))
		}
		if consoleFirst {
			console()
			s.now = s.now.Add(time.Second)
			stream()
		} else {
			s.now = s.now.Add(time.Second)
			stream()
			console()
		}
		require.Equal(t, st("Away"), s.state(), "console first %v: the echo seen twice became an intent", consoleFirst)
		require.Len(t, s.landing, 1, "console first %v: nothing pushed again", consoleFirst)
	}
}

// TestPushOvertakenByTheAgentIsNotPushedAgain: a push carries the status Omni-Channel shows;
// when the agent picked another one in Omni-Channel before it landed, the console refuses it
// (status_changed, with the status it saw), the engine follows the agent's pick and nothing is
// pushed again, even when Salesforce's event of that pick carries a commit time from before the
// push (Salesforce's clock behind the daemon's).
func TestPushOvertakenByTheAgentIsNotPushedAgain(t *testing.T) {
	t.Parallel()
	s := newSyncSim(t, 1)
	s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Event: &routing.Event{Type: routing.EventAgentState, State: st("Ready")}}})
	require.Len(t, s.landing, 1)
	login := s.landing[0].cmd
	require.Equal(t, ConsoleLogin, login.Op)
	require.Equal(t, mapping.OfflineStatus, login.ExpectStatus, "after a snapshot, an agent it does not list is offline")
	for s.step() {
	}
	require.Equal(t, "Ready_for_cases", s.status)

	s.now = s.now.Add(time.Second)
	s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Event: &routing.Event{Type: routing.EventAgentState, State: st("Away")}}})
	require.Len(t, s.landing, 1)
	push := s.landing[0].cmd
	require.Equal(t, "Away_from_desk", push.Status)
	require.Equal(t, "Ready_for_cases", push.ExpectStatus)
	require.Equal(t, s.r.statusID("Ready_for_cases"), push.ExpectStatusID)
	s.landing = nil

	// The agent picks Taking_notes in Omni-Channel before the push lands; Salesforce's clock is
	// 10 s behind.
	s.now = s.now.Add(time.Second)
	s.status = "Taking_notes"
	s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Report: &ConsoleReport{Kind: ReportResult, CommandID: push.ID,
		Error: ConsoleStatusChanged, Status: "Taking_notes", StatusID: s.r.statusID("Taking_notes")}}})
	require.Equal(t, st("Away/Notes"), s.state(), "the engine follows the agent's pick")
	s.r.presenceSeen(s.user, "Taking_notes", []string{"Chat"}, s.now.Add(-10*time.Second))
	require.Empty(t, s.landing, "the agent's pick is not overridden")
	require.Equal(t, "Taking_notes", s.r.agentSnapshot(s.user).Agent.Presence)

	// Then a pad choice is pushed over the agent's pick.
	s.now = s.now.Add(time.Second)
	s.r.handle(inMsg{kind: msgAgent, agent: &AgentInput{User: s.user, Event: &routing.Event{Type: routing.EventAgentState, State: st("Ready")}}})
	require.Len(t, s.landing, 1)
	require.Equal(t, "Taking_notes", s.landing[0].cmd.ExpectStatus)
}
