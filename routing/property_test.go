package routing

import (
	"maps"
	"math/rand"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

const propMappingA = `
plans:
  - name: Sales
    queues: [Q_Sales]
    priority: 1
    requiredSkills: [{skill: english, minLevel: 5}, {skill: sales, minLevel: 3}]
    additionalSkills: [{skill: vip, minLevel: 1}]
    dropAdditionalSkillsAfter: 20s
    relaxation:
      - {after: 30s, skill: english, minLevel: 2}
      - {after: 60s, skill: sales, drop: true}
    overflow: {plan: General, after: 90s}
    offerTimeout: 15s
    wrapUpTimeout: 10s
  - name: Service
    queues: [Q_Service]
    requiredSkills: [{skill: service, minLevel: 2}]
    offerTimeout: 20s
    wrapUpTimeout: 5s
    dispositionRequired: true
  - name: General
    queues: [Q_General]
    priority: 2
    autoAccept: true
channels:
  - {name: chat, class: semi-live, weight: 1}
  - {name: email, class: non-live, weight: 1}
  - {name: voice, class: live, weight: 4}
capacity:
  default: std
  profiles:
    - {name: std, total: 4, perClass: {semi-live: 3, non-live: 2}, perChannel: {chat: 2, email: 1}}
    - {name: big, total: 6}
  overrides:
    - {profile: big, groups: [Seniors]}
`

// propMappingB is what a reload swaps in: Service loses its queue, plans change.
const propMappingB = `
plans:
  - name: Sales
    queues: [Q_Sales]
    requiredSkills: [{skill: english, minLevel: 3}]
    offerTimeout: 10s
  - name: General
    queues: [Q_General, Q_Other]
    priority: 1
    wrapUpTimeout: 3s
channels:
  - {name: chat, class: semi-live, weight: 2}
  - {name: email, class: non-live, weight: 1}
  - {name: voice, class: live, weight: 4}
capacity:
  default: std
  profiles:
    - {name: std, total: 4}
`

var (
	propAgents   = []string{"A1", "A2", "A3", "A4", "A5", "A6"}
	propSkills   = []string{"english", "sales", "vip", "service"}
	propQueues   = []string{"Q_Sales", "Q_Service", "Q_General", "Q_Other", "Q_Unknown"}
	propChannels = []string{"chat", "email", "voice", "fax"}
	propStatuses = []string{"Available", "Break_Status", "Away_Status", "Offline", "Unlisted"}
	propStates   = []string{"Ready", "Away/Break", "ExtendedAway", "ReadyOutbound", "LoggedOut", "Busy"}
)

// propWorld generates one random event sequence and checks each step.
type propWorld struct {
	r       *rand.Rand
	now     time.Time
	nextID  int
	works   []string          // every work id ever created
	offered map[string]string // open offers: work -> agent
	active  map[string]string // interactions: work -> agent
	// An independent model of what makes an agent routable and of decliners, built from the
	// events alone (not from the engine's state), so that a bug in the engine's own checks
	// cannot hide from the offer check.
	external  map[string]string           // open externally routed work -> agent (Busy Inbound)
	online    map[string][]string         // agent -> channels its presence opens
	decliners map[string][]string         // work -> agents who declined it since its last offer
	required  map[string]string           // work -> its required preferred user
	skills    map[string]map[string]int32 // agent -> skill -> level (hundredths)
}

func (w *propWorld) pick(xs []string) string { return xs[w.r.Intn(len(xs))] }

func (w *propWorld) someWork() string {
	if len(w.works) == 0 || w.r.Intn(20) == 0 {
		return "W_none"
	}
	return w.works[w.r.Intn(len(w.works))]
}

// openOffer returns a random open offer, or false.
func (w *propWorld) openOffer() (string, string, bool) {
	if len(w.offered) == 0 {
		return "", "", false
	}
	ks := slices.Sorted(maps.Keys(w.offered))
	k := ks[w.r.Intn(len(ks))]
	return k, w.offered[k], true
}

func (w *propWorld) activeWork() (string, string, bool) {
	if len(w.active) == 0 {
		return "", "", false
	}
	ks := slices.Sorted(maps.Keys(w.active))
	k := ks[w.r.Intn(len(ks))]
	return k, w.active[k], true
}

func (w *propWorld) event() Event {
	r := w.r
	switch n := r.Intn(100); {
	case n < 20:
		w.nextID++
		id := "W" + strconv.Itoa(w.nextID)
		w.works = append(w.works, id)
		wk := Work{ID: id, PSR: "P" + id, Queue: w.pick(propQueues[:4]), Channel: w.pick(propChannels[:3])}
		if r.Intn(15) == 0 {
			wk.Queue = "Q_Unknown"
		}
		if r.Intn(15) == 0 {
			wk.Channel = "fax"
		}
		if r.Intn(4) == 0 {
			wk.Priority, wk.HasPriority = r.Intn(3), true
		}
		if r.Intn(5) == 0 {
			wk.RequestedAt = w.now.Add(-time.Duration(r.Intn(60)) * time.Second)
		}
		if r.Intn(6) == 0 {
			wk.PreferredUser, wk.PreferredRequired = w.pick(propAgents), r.Intn(3) == 0
		}
		if r.Intn(6) == 0 {
			wk.Weight = 1 + r.Intn(3)
		}
		if r.Intn(8) == 0 {
			wk.DropAdditionalAfter, wk.HasDropAdditional = time.Duration(r.Intn(30))*time.Second, true
		}
		return Event{Type: EventWorkArrived, Work: wk}
	case n < 23:
		id := w.someWork()
		return Event{Type: EventWorkChanged, Work: Work{ID: id, PSR: "P2" + id, Queue: w.pick(propQueues), Channel: w.pick(propChannels[:3])}}
	case n < 27:
		return Event{Type: EventWorkRemoved, WorkID: w.someWork()}
	case n < 40:
		if id, a, ok := w.openOffer(); ok && r.Intn(10) != 0 {
			return Event{Type: EventOfferAccepted, WorkID: id, AgentID: a}
		}
		return Event{Type: EventOfferAccepted, WorkID: w.someWork(), AgentID: w.pick(propAgents)}
	case n < 46:
		if id, a, ok := w.openOffer(); ok && r.Intn(10) != 0 {
			return Event{Type: EventOfferDeclined, WorkID: id, AgentID: a, Outcome: Outcome(r.Intn(3))}
		}
		return Event{Type: EventOfferDeclined, WorkID: w.someWork(), AgentID: w.pick(propAgents)}
	case n < 49:
		id, a, _ := w.activeWork()
		return Event{Type: EventWorkClosed, WorkID: id, AgentID: a}
	case n < 53:
		var sk []Skill
		for _, s := range propSkills {
			if r.Intn(3) != 0 {
				sk = append(sk, Skill{Name: s, Level: float64(r.Intn(10))})
			}
		}
		var groups []string
		if r.Intn(3) == 0 {
			groups = []string{"Seniors"}
		}
		return Event{Type: EventAgentSkills, AgentID: w.pick(propAgents), Skills: sk, Groups: groups}
	case n < 58:
		st, _ := mapping.ParseState(w.pick(propStates))
		return Event{Type: EventAgentState, AgentID: w.pick(propAgents), State: st}
	case n < 66:
		var chans []string
		for _, c := range propChannels {
			if r.Intn(3) != 0 {
				chans = append(chans, c)
			}
		}
		return Event{Type: EventAgentPresence, AgentID: w.pick(propAgents), Presence: w.pick(propStatuses), Channels: chans}
	case n < 68:
		w.nextID++
		return Event{Type: EventExternalWork, AgentID: w.pick(propAgents), WorkID: "X" + strconv.Itoa(w.nextID%7), Channel: "chat"}
	case n < 70:
		return Event{Type: EventExternalWorkClosed, WorkID: "X" + strconv.Itoa(r.Intn(7))}
	case n < 92:
		id, a, ok := w.activeWork()
		if !ok || r.Intn(10) == 0 {
			id, a = w.someWork(), w.pick(propAgents)
		}
		act := Action{Kind: ActionKind(1 + r.Intn(int(ActionDisposition)))}
		switch r.Intn(5) {
		case 0:
			act.Target, act.TargetID = TargetAgent, w.pick(propAgents)
		case 1:
			act.Target, act.TargetID = TargetNumber, "+4420"
		case 2:
			act.Target, act.TargetID = TargetPlan, w.pick([]string{"Sales", "Service", "General", "Nope"})
		case 3:
			act.Target, act.TargetID = TargetQueue, "Q_Service"
		}
		if r.Intn(2) == 0 {
			act.Mode = ElevateNewContact
		}
		if r.Intn(3) != 0 {
			act.Disposition = "Solved"
		}
		if r.Intn(10) == 0 {
			act.Kind = 0
		}
		return Event{Type: EventAgentAction, AgentID: a, WorkID: id, Action: act}
	default:
		return Event{Type: EventTick}
	}
}

// observe applies the command-level invariants to one batch and updates the offer model.
func (w *propWorld) observe(t testing.TB, e *Engine, ev Event, cmds []Command) {
	switch ev.Type {
	case EventWorkArrived, EventWorkChanged:
		// The engine reads a PSR's fields only while its work waits (the model's maps still
		// hold the state before this event).
		if _, busy := w.offered[ev.Work.ID]; !busy && w.active[ev.Work.ID] == "" {
			delete(w.required, ev.Work.ID)
			if ev.Work.PreferredRequired {
				w.required[ev.Work.ID] = ev.Work.PreferredUser
			}
		}
	case EventWorkRemoved:
		if _, busy := w.offered[ev.WorkID]; !busy && w.active[ev.WorkID] == "" {
			delete(w.decliners, ev.WorkID) // forgotten: a later event with its id is new work
		}
	case EventAgentSkills:
		sk := map[string]int32{}
		for _, x := range ev.Skills {
			sk[x.Name] = max(sk[x.Name], level(x.Level))
		}
		w.skills[ev.AgentID] = sk
	case EventExternalWork:
		if _, dup := w.external[ev.WorkID]; !dup {
			w.external[ev.WorkID] = ev.AgentID
		}
	case EventExternalWorkClosed:
		delete(w.external, ev.WorkID)
	case EventAgentPresence:
		w.online[ev.AgentID] = nil
		if ev.Presence != "" && ev.Presence != mapping.OfflineStatus {
			w.online[ev.AgentID] = slices.Clone(ev.Channels)
		}
	}
	switch ev.Type {
	case EventOfferAccepted:
		if a, ok := w.offered[ev.WorkID]; ok && a == ev.AgentID {
			delete(w.offered, ev.WorkID)
			w.active[ev.WorkID] = a
		}
	case EventOfferDeclined:
		if a, ok := w.offered[ev.WorkID]; ok && a == ev.AgentID {
			delete(w.offered, ev.WorkID)
			w.decliners[ev.WorkID] = append(w.decliners[ev.WorkID], a)
		}
	}
	for _, c := range cmds {
		require.True(t, validReasons[c.Reason], "command %+v has a reason outside the closed set", c)
		switch c.Type {
		case CommandRefused:
			require.NotEmpty(t, c.Reason, "refusal without a reason: %+v", c)
		case CommandNotify:
			if c.Reason == ReasonWorkWithdrawn {
				delete(w.offered, c.WorkID)
				delete(w.decliners, c.WorkID)
			}
		case CommandEnded, CommandRequeue:
			delete(w.active, c.WorkID)
		case CommandElevate:
			w.active[c.WorkID] = c.AgentID
			checkItemCaps(t, e.agents[c.AgentID], e.items[c.WorkID])
		case CommandOffer:
			if other, ok := w.offered[c.WorkID]; ok {
				t.Fatalf("work %s offered to %s while its offer to %s is open", c.WorkID, c.AgentID, other)
			}
			if other, ok := w.active[c.WorkID]; ok {
				t.Fatalf("work %s offered to %s while it is an interaction of %s", c.WorkID, c.AgentID, other)
			}
			for _, x := range w.external {
				if x == c.AgentID {
					t.Fatalf("work %s offered to %s, who is Busy Inbound", c.WorkID, c.AgentID)
				}
			}
			if !slices.Contains(w.online[c.AgentID], c.Channel) {
				t.Fatalf("work %s offered to %s, whose presence does not open %s (%v)", c.WorkID, c.AgentID, c.Channel, w.online[c.AgentID])
			}
			if slices.Contains(w.decliners[c.WorkID], c.AgentID) && c.Reason != ReasonTransfer && w.required[c.WorkID] != c.AgentID {
				t.Fatalf("work %s offered again to %s, who declined it", c.WorkID, c.AgentID)
			}
			delete(w.decliners, c.WorkID)
			if it := e.items[c.WorkID]; it != nil && c.Reason != ReasonTransfer && it.preferred != c.AgentID {
				// Skill-routed: the agent's skills, as the events gave them, meet every
				// requirement of the work's current stage.
				d := 0
				if it.dropped {
					d = 1
				}
				for _, r := range it.plan.reqs[2*it.stage+d] {
					if w.skills[c.AgentID][r.skill] < r.level {
						t.Fatalf("work %s offered to %s, whose %s level %d is below %d", c.WorkID, c.AgentID, r.skill, w.skills[c.AgentID][r.skill], r.level)
					}
				}
			}
			if c.AutoAccept {
				w.active[c.WorkID] = c.AgentID
			} else {
				w.offered[c.WorkID] = c.AgentID
			}
			it := e.items[c.WorkID]
			require.NotNil(t, it, "offered work %s unknown to the engine", c.WorkID)
			a := e.agents[c.AgentID]
			if it.agent == a {
				// Still with that agent at the end of the batch: the agent must be routable.
				require.True(t, routable(a) && a.ch[it.ch].online, "work %s offered to non-routable agent %s (state %v, channels %v)", c.WorkID, a.id, a.avail, a.ch)
			}
			checkItemCaps(t, a, it)
		}
	}
	// The model and the engine agree on open offers.
	for id, a := range w.offered {
		it := e.items[id]
		require.True(t, it != nil && it.state == stOffered && it.agent.id == a, "model offer %s->%s not open in the engine", id, a)
	}
}

var validReasons = func() map[Reason]bool {
	m := map[Reason]bool{"": true}
	for _, r := range Reasons() {
		m[r] = true
	}
	return m
}()

var (
	propOnce               sync.Once
	propPlansA, propPlansB *Table
)

func runProperty(t testing.TB, seed int64, steps int) []Command {
	t.Helper()
	propOnce.Do(func() {
		propPlansA = parseMapping(t, propMappingA, "a.yaml")
		propPlansB = parseMapping(t, propMappingB, "b.yaml")
	})
	plansA, plansB := propPlansA, propPlansB
	require.NotNil(t, plansA)
	w := &propWorld{
		r: rand.New(rand.NewSource(seed)), now: t0, offered: map[string]string{}, active: map[string]string{},
		external: map[string]string{}, online: map[string][]string{}, decliners: map[string][]string{}, required: map[string]string{},
		skills: map[string]map[string]int32{},
	}
	e := New(plansA)
	var all []Command
	for range steps {
		w.now = w.now.Add(time.Duration(w.r.Intn(8000)) * time.Millisecond)
		// Timers fire in a tick of their own, so that each batch checked below comes from one
		// cause and "offered to a routable agent" can be checked at the end of the batch.
		tick := Event{Type: EventTick}
		cmds := e.Apply(w.now, tick)
		w.observe(t, e, tick, cmds)
		checkInvariants(t, e)
		all = append(all, cmds...)
		var ev Event
		if w.r.Intn(60) == 0 {
			p := plansA
			if w.r.Intn(2) == 0 {
				p = plansB
			}
			ev = Event{Type: EventTick}
			cmds = e.SetPlans(w.now, p)
		} else {
			ev = w.event()
			cmds = e.Apply(w.now, ev)
		}
		w.observe(t, e, ev, cmds)
		checkInvariants(t, e)
		all = append(all, cmds...)
	}
	return all
}

// TestPropertyRandomSequences runs thousands of random event sequences (seeded, so a failure
// names its seed) and checks after every step: capacity never exceeded, no work offered to two
// agents, nothing offered to a non-routable agent, no idle eligible agent while eligible work
// waits, and every refusal carries a reason from the closed set.
func TestPropertyRandomSequences(t *testing.T) {
	t.Parallel()
	seqs := 2000
	if testing.Short() {
		seqs = 200
	}
	for seed := range int64(seqs) {
		runProperty(&seededT{TB: t, seed: seed}, seed, 80)
	}
}

// seededT prefixes failures with the seed that produced them.
type seededT struct {
	testing.TB
	seed int64
}

func (s *seededT) Fatalf(format string, args ...any) {
	s.Helper()
	s.TB.Fatalf("seed %d: "+format, append([]any{s.seed}, args...)...)
}

func (s *seededT) Errorf(format string, args ...any) {
	s.Helper()
	s.TB.Errorf("seed %d: "+format, append([]any{s.seed}, args...)...)
}

// TestDeterminismRunTwice replays the same random sequences (with reloads, whose internals
// iterate Go maps) on fresh engines and requires identical commands.
func TestDeterminismRunTwice(t *testing.T) {
	t.Parallel()
	for seed := range int64(50) {
		a := runProperty(t, seed, 150)
		b := runProperty(t, seed, 150)
		if d := cmp.Diff(a, b); d != "" {
			t.Fatalf("seed %d: two runs differ (-first +second):\n%s", seed, d)
		}
	}
}
