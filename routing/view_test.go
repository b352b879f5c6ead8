package routing

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

var viewT0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func viewConfig() *mapping.Config {
	return &mapping.Config{
		Channels: []mapping.Channel{
			{Name: "chat", Class: mapping.SemiLive, Weight: 1},
			{Name: "case", Class: mapping.NonLive, Weight: 1},
		},
		Capacity: mapping.Capacity{Default: "std", Profiles: []mapping.CapacityProfile{{Name: "std", Total: 1}}},
		Plans: []mapping.Plan{
			{
				Name: "support", Queues: []string{"Q1"}, Priority: 2,
				RequiredSkills:            []mapping.SkillRequirement{{Skill: "English", MinLevel: 5}},
				AdditionalSkills:          []mapping.SkillRequirement{{Skill: "German", MinLevel: 3}},
				DropAdditionalSkillsAfter: time.Minute,
				Relaxation:                []mapping.RelaxationStep{{After: 30 * time.Second, Skill: "English", MinLevel: 3}},
				Overflow:                  &mapping.Overflow{Plan: "billing", After: 2 * time.Minute},
				OfferTimeout:              20 * time.Second, WrapUpTimeout: 10 * time.Second,
			},
			{Name: "billing", Queues: []string{"Q2"}, AutoAccept: true,
				RequiredSkills: []mapping.SkillRequirement{{Skill: "Billing", MinLevel: 1}}},
		},
	}
}

func viewEngine(t *testing.T) *Engine {
	t.Helper()
	tbl, err := Compile(viewConfig())
	require.NoError(t, err)
	return New(tbl)
}

// agentUp makes an agent known with skills, a state and a presence on channels.
func agentUp(e *Engine, at time.Time, id string, st mapping.MajorState, skills map[string]float64, channels ...string) {
	var sk []Skill
	for _, n := range []string{"English", "German", "Billing"} {
		if l, ok := skills[n]; ok {
			sk = append(sk, Skill{Name: n, Level: l})
		}
	}
	e.Apply(at, Event{Type: EventAgentSkills, AgentID: id, Skills: sk})
	e.Apply(at, Event{Type: EventAgentState, AgentID: id, State: mapping.State{Major: st, Minor: map[bool]string{true: "Break"}[st == mapping.Away]}})
	e.Apply(at, Event{Type: EventAgentPresence, AgentID: id, Presence: "Available", Channels: channels})
}

func groupIDs(t *testing.T, x Explanation) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, g := range x.Groups {
		require.Len(t, g.Agents, min(g.Count, ExplainGroupLimit))
		for _, a := range g.Agents {
			out[g.Reason] = append(out[g.Reason], a.ID)
		}
	}
	return out
}

func findAgent(t *testing.T, x Explanation, reason, id string) ExplainAgent {
	t.Helper()
	for _, g := range x.Groups {
		for _, a := range g.Agents {
			if g.Reason == reason && a.ID == id {
				return a
			}
		}
	}
	t.Fatalf("agent %s not in group %s: %+v", id, reason, x.Groups)
	return ExplainAgent{}
}

func TestPlanViews(t *testing.T) {
	t.Parallel()
	e := viewEngine(t)
	got := e.Plans().PlanViews()
	require.Equal(t, []PlanView{
		{
			Name: "billing", Queues: []string{"Q2"}, RequiredSkills: []SkillLevel{{"Billing", 1}},
			AdditionalSkills: []SkillLevel{}, Relaxation: []RelaxationView{}, PreferredTimeoutSeconds: 30, AutoAccept: true,
		},
		{
			Name: "support", Queues: []string{"Q1"}, Priority: 2,
			RequiredSkills: []SkillLevel{{"English", 5}}, AdditionalSkills: []SkillLevel{{"German", 3}},
			DropAdditionalAfterSeconds: 60,
			Relaxation:                 []RelaxationView{{AfterSeconds: 30, RequiredSkills: []SkillLevel{{"English", 3}}}},
			Overflow:                   &OverflowView{Plan: "billing", AfterSeconds: 120},
			OfferTimeoutSeconds:        20, WrapUpTimeoutSeconds: 10, PreferredTimeoutSeconds: 20,
		},
	}, got)
	b, err := json.Marshal(got[1])
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"support","queues":["Q1"],"priority":2,
		"required_skills":[{"skill":"English","level":5}],"additional_skills":[{"skill":"German","level":3}],
		"drop_additional_after_seconds":60,
		"relaxation":[{"after_seconds":30,"required_skills":[{"skill":"English","level":3}]}],
		"overflow":{"plan":"billing","after_seconds":120},"offer_timeout_seconds":20,"wrap_up_timeout_seconds":10,
		"preferred_timeout_seconds":20,"auto_accept":false,"disposition_required":false}`, string(b))
}

// TestExplainWaitingAndRouted applies events step by step and checks the explanation of work
// W1 (and W2) after each: offered, then waiting for each reason an agent can fail.
func TestExplainWaitingAndRouted(t *testing.T) {
	t.Parallel()
	e := viewEngine(t)
	at := viewT0
	agentUp(e, at, "a1", mapping.Ready, map[string]float64{"English": 8, "German": 4}, "chat")
	agentUp(e, at, "a2", mapping.Ready, map[string]float64{"English": 4, "German": 9}, "chat")
	agentUp(e, at, "a3", mapping.Away, map[string]float64{"English": 9, "German": 5}, "chat")
	agentUp(e, at, "a4", mapping.Ready, map[string]float64{"English": 9, "German": 5}, "case")
	agentUp(e, at, "a5", mapping.Ready, nil, "chat")
	w1 := Work{ID: "W1", PSR: "P1", Queue: "Q1", Channel: "chat", RequestedAt: at}

	type step struct {
		name   string
		events []Event
		work   string
		status string
		groups map[string][]string
		agent  string
	}
	steps := []step{
		{name: "offered to the only eligible agent", events: []Event{{Type: EventWorkArrived, Work: w1}},
			work: "W1", status: "offered", agent: "a1"},
		{name: "push timeout: a1 undeliverable",
			events: []Event{{Type: EventOfferDeclined, WorkID: "W1", AgentID: "a1", Outcome: OutcomePushTimeout}},
			work:   "W1", status: "waiting", groups: map[string][]string{
				GroupMissingSkill: {"a2", "a5"}, GroupNotReady: {"a3"}, GroupUndeliverable: {"a1"}, GroupNotOnChannel: {"a4"},
			}},
		{name: "a1 back: declined before",
			events: []Event{{Type: EventAgentPresence, AgentID: "a1", Presence: "Available", Channels: []string{"chat"}}},
			work:   "W1", status: "waiting", groups: map[string][]string{
				GroupMissingSkill: {"a2", "a5"}, GroupNotReady: {"a3"}, GroupDeclined: {"a1"}, GroupNotOnChannel: {"a4"},
			}},
		{name: "W2 takes a1's capacity",
			events: []Event{{Type: EventWorkArrived, Work: Work{ID: "W2", PSR: "P2", Queue: "Q1", Channel: "chat", RequestedAt: at}}},
			work:   "W1", status: "waiting", groups: map[string][]string{
				GroupMissingSkill: {"a2", "a5"}, GroupNotReady: {"a3"}, GroupNoCapacity: {"a1"}, GroupNotOnChannel: {"a4"},
			}},
		{name: "W2 explained", work: "W2", status: "offered", agent: "a1"},
	}
	for _, s := range steps {
		at = at.Add(time.Second)
		for _, ev := range s.events {
			e.Apply(at, ev)
		}
		x, ok := e.Explain(at, s.work)
		require.True(t, ok, s.name)
		require.Equal(t, s.status, x.Status, s.name)
		require.Equal(t, "support", x.Plan, s.name)
		require.Equal(t, []SkillLevel{{"English", 5}, {"German", 3}}, x.Required, s.name)
		if s.agent != "" {
			require.Equal(t, s.agent, x.Agent.ID, s.name)
			require.Equal(t, 12.0, x.Agent.SkillFit, s.name)
			require.Equal(t, ChoosingOrder, x.ChoosingOrder)
			require.Zero(t, x.Others.Count, s.name)
			require.Empty(t, x.Groups, s.name)
			continue
		}
		require.Equal(t, s.groups, groupIDs(t, x), s.name)
		require.Nil(t, x.Agent)
	}
	x, _ := e.Explain(at, "W1")
	a2 := findAgent(t, x, GroupMissingSkill, "a2")
	require.Equal(t, ExplainAgent{ID: "a2", Missing: &MissingSkill{Skill: "English", NeededLevel: 5, HadLevel: 4, Held: true}}, a2)
	a5 := findAgent(t, x, GroupMissingSkill, "a5")
	require.Equal(t, ExplainAgent{ID: "a5", Missing: &MissingSkill{Skill: "English", NeededLevel: 5}}, a5)
	require.Equal(t, "Away/Break", findAgent(t, x, GroupNotReady, "a3").State)
	require.Equal(t, "total: 1/1 units used, needs 1", findAgent(t, x, GroupNoCapacity, "a1").Detail)
	require.Equal(t, "presence Available does not open chat", findAgent(t, x, GroupNotOnChannel, "a4").Detail)
	require.Equal(t, []string{"a1"}, x.Decliners)
	require.InDelta(t, 5.0, x.AgeSeconds, 1e-9)

	_, ok := e.Explain(at, "nope")
	require.False(t, ok)

	// Relaxed after 30 s: English 3 is enough for a2, who takes W1.
	at = viewT0.Add(31 * time.Second)
	e.Apply(at, Event{Type: EventTick})
	x, _ = e.Explain(at, "W1")
	require.Equal(t, "offered", x.Status)
	require.Equal(t, "a2", x.Agent.ID)
	require.Equal(t, 1, x.Stage)

	// Agents and queues, from the same engine.
	qs := e.Queues(at)
	require.Equal(t, []QueueView{{Plan: "billing", Queue: "Q2"}, {Plan: "support", Queue: "Q1", Offered: 2}}, qs)
	as, more, total := e.Agents("", 0)
	require.False(t, more)
	require.Equal(t, 5, total)
	require.Len(t, as, 5)
	require.Equal(t, "a1", as[0].ID)
	require.Equal(t, mapping.State{Major: mapping.Ready}, as[0].State)
	require.False(t, as[0].Routable == (len(as[0].NotRoutable) > 0))
	require.Equal(t, []HeldWorkView{{WorkID: "W2", Status: "offered", Channel: "chat", Class: "semi-live", Plan: "support", Weight: 1}}, as[0].Work)
	require.Equal(t, 1, as[0].Capacity.Used)
	require.Equal(t, 1, as[0].Capacity.Total)
	require.Equal(t, []string{"not_ready"}, as[2].NotRoutable)
	require.False(t, as[2].Routable)
	require.True(t, as[3].Routable, "a4 is Ready and has channels open")
}

func TestQueuesDepthAndAge(t *testing.T) {
	t.Parallel()
	e := viewEngine(t)
	e.Apply(viewT0, Event{Type: EventWorkArrived, Work: Work{ID: "W1", Queue: "Q1", Channel: "chat", RequestedAt: viewT0}})
	e.Apply(viewT0.Add(5*time.Second), Event{Type: EventWorkArrived, Work: Work{ID: "W2", Queue: "Q1", Channel: "chat"}})
	e.Apply(viewT0.Add(5*time.Second), Event{Type: EventWorkArrived, Work: Work{ID: "W3", Queue: "Qx", Channel: "chat"}})
	e.Apply(viewT0.Add(5*time.Second), Event{Type: EventWorkArrived, Work: Work{ID: "W4", Queue: "Q2", Channel: "chat", PreferredUser: "zz", PreferredRequired: true}})
	got := e.Queues(viewT0.Add(10 * time.Second))
	require.Equal(t, []QueueView{
		{Plan: "", Queue: "Qx", Depth: 1, Parked: 1, OldestAgeSeconds: 5},
		{Plan: "billing", Queue: "Q2", Depth: 1, PreferredPending: 1, OldestAgeSeconds: 5},
		{Plan: "support", Queue: "Q1", Depth: 2, Waiting: 2, OldestAgeSeconds: 10},
	}, got)
	x, _ := e.Explain(viewT0.Add(10*time.Second), "W3")
	require.Equal(t, "parked", x.Status)
	require.Equal(t, "queue_unmapped", x.ParkReason)
}

// TestExplainPreferredCapAndRivals: preferred user pending groups, the 50-agent cap, and the
// other eligible agents of routed work with the key that decided.
func TestExplainPreferredCapAndRivals(t *testing.T) {
	t.Parallel()
	e := viewEngine(t)
	at := viewT0
	for i := range 60 {
		agentUp(e, at, fmt.Sprintf("n%02d", i), mapping.Ready, nil, "chat")
	}
	agentUp(e, at, "c1", mapping.Away, map[string]float64{"Billing": 2}, "chat")
	agentUp(e, at, "c2", mapping.Ready, map[string]float64{"Billing": 2}, "chat")
	e.Apply(at, Event{Type: EventWorkArrived, Work: Work{ID: "W1", Queue: "Q2", Channel: "chat", PreferredUser: "c1", PreferredRequired: true}})
	x, _ := e.Explain(at, "W1")
	require.Equal(t, "preferred_user_pending", x.Status)
	g := groupIDs(t, x)
	require.Equal(t, []string{"c1"}, g[GroupNotReady])
	require.Equal(t, []string{"c2"}, g[GroupPreferredPending])
	require.Equal(t, GroupMissingSkill, x.Groups[0].Reason)
	require.Equal(t, 60, x.Groups[0].Count)
	require.Len(t, x.Groups[0].Agents, ExplainGroupLimit)
	as, more, total := e.Agents("", 0)
	require.False(t, more)
	require.Equal(t, 62, total)
	require.Equal(t, "c1", as[0].ID)
	page, more, _ := e.Agents("n10", 5)
	require.True(t, more)
	require.Equal(t, []string{"n11", "n12", "n13", "n14", "n15"}, []string{page[0].ID, page[1].ID, page[2].ID, page[3].ID, page[4].ID})
	page, more, _ = e.Agents("n57", 5)
	require.False(t, more)
	require.Len(t, page, 2)
	page, more, _ = e.Agents("c15", 1) // not an agent: the next one after it
	require.True(t, more)
	require.Equal(t, "c2", page[0].ID)
	require.Nil(t, as[0].IdleSince, "c1 was never idle")
	b, err := json.Marshal(as[0])
	require.NoError(t, err)
	require.Contains(t, string(b), `"idle_since":null`)

	// c1 gets Ready: offered and auto-accepted. c2 and c3 are eligible rivals now.
	at = at.Add(time.Second)
	agentUp(e, at, "c3", mapping.Ready, map[string]float64{"Billing": 1}, "chat")
	e.Apply(at, Event{Type: EventAgentState, AgentID: "c1", State: mapping.State{Major: mapping.Ready}})
	x, _ = e.Explain(at, "W1")
	require.Equal(t, "active", x.Status)
	require.Equal(t, "c1", x.Agent.ID)
	require.Equal(t, "active: with c1, its preferred user (the choosing order does not apply)", x.Summary)
	require.Equal(t, 2.0, x.Agent.SkillFit)
	require.Equal(t, 2, x.Others.Count)
	require.Equal(t, "c2", x.Others.Agents[0].ID)
	require.Equal(t, "idle_since_at_offer", x.Others.Agents[0].Candidate.DecidedBy)
	require.Equal(t, "c3", x.Others.Agents[1].ID)
	require.Equal(t, "skill_fit", x.Others.Agents[1].Candidate.DecidedBy)
}

// TestViewsAgreeWithTheEngine drives an engine with random events (arrivals, offers' outcomes,
// closes, state, presence and skill changes, time passing, reloads) and, after each, checks
// the views against each other and against the engine's own decisions: no waiting work has an
// agent the explanation calls eligible (the engine would have offered it), the holder of
// routed work lists it, and the queue counts match the agents' counts. Every view of every
// work id must be computable at every step (no panic).
func TestViewsAgreeWithTheEngine(t *testing.T) {
	t.Parallel()
	tables := []*Table{}
	for _, mut := range []func(*mapping.Config){
		func(*mapping.Config) {},
		func(c *mapping.Config) { c.Plans[0].Relaxation = nil; c.Capacity.Profiles[0].Total = 2 },
	} {
		cfg := viewConfig()
		mut(cfg)
		tbl, err := Compile(cfg)
		require.NoError(t, err)
		tables = append(tables, tbl)
	}
	for seed := int64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewSource(seed))
		e := New(tables[0])
		at := viewT0
		agents := []string{"a1", "a2", "a3", "a4", "a5"}
		var works []string
		pick := func(xs []string) string { return xs[r.Intn(len(xs))] }
		for step := range 300 {
			at = at.Add(time.Duration(r.Intn(8)) * time.Second)
			switch k := r.Intn(12); {
			case k < 3:
				id := fmt.Sprintf("W%d", step)
				works = append(works, id)
				w := Work{ID: id, PSR: "P" + id, Queue: pick([]string{"Q1", "Q1", "Q2", "Qx"}), Channel: pick([]string{"chat", "case"}), RequestedAt: at}
				if r.Intn(5) == 0 {
					w.PreferredUser, w.PreferredRequired = pick(agents), r.Intn(2) == 0
				}
				e.Apply(at, Event{Type: EventWorkArrived, Work: w})
			case k < 6 && len(works) > 0:
				id := pick(works)
				x, _ := e.Explain(at, id)
				if x.Agent == nil {
					e.Apply(at, Event{Type: EventWorkRemoved, WorkID: id})
					continue
				}
				switch r.Intn(4) {
				case 0:
					e.Apply(at, Event{Type: EventOfferAccepted, WorkID: id, AgentID: x.Agent.ID})
				case 1:
					e.Apply(at, Event{Type: EventOfferDeclined, WorkID: id, AgentID: x.Agent.ID, Outcome: Outcome(r.Intn(4))})
				default:
					e.Apply(at, Event{Type: EventWorkClosed, WorkID: id, AgentID: x.Agent.ID})
				}
			case k < 8:
				agentUp(e, at, pick(agents), []mapping.MajorState{mapping.Ready, mapping.Ready, mapping.Away}[r.Intn(3)],
					map[string]float64{"English": float64(r.Intn(10)), "German": float64(r.Intn(6)), "Billing": float64(r.Intn(3))},
					[][]string{{"chat"}, {"case"}, {"chat", "case"}, nil}[r.Intn(4)]...)
			case k < 9:
				e.SetPlans(at, tables[r.Intn(len(tables))])
			default:
				e.Apply(at, Event{Type: EventTick})
			}
			checkViews(t, e, at, append(works, "unknown"), fmt.Sprintf("seed %d step %d", seed, step))
		}
	}
}

func checkViews(t *testing.T, e *Engine, at time.Time, works []string, where string) {
	t.Helper()
	_ = e.Plans().PlanViews()
	as, _, total := e.Agents("", 0)
	held := map[string]string{}
	offered := 0
	for _, a := range as {
		offered += a.Capacity.Counts.Offered
		require.Equal(t, a.Routable, len(a.NotRoutable) == 0, where)
		for _, w := range a.Work {
			held[w.WorkID] = a.ID
		}
	}
	queued := 0
	for _, q := range e.Queues(at) {
		queued += q.Offered
		require.Equal(t, q.Depth, q.Waiting+q.PreferredPending+q.Parked, where)
	}
	require.Equal(t, offered, queued, "%s: offers by agents and by queues", where)
	for _, id := range works {
		x, ok := e.Explain(at, id)
		if !ok {
			require.NotContains(t, held, id, where)
			continue
		}
		switch x.Status {
		case "waiting", "preferred_user_pending":
			n := 0
			for _, g := range x.Groups {
				n += g.Count
				if g.Reason == GroupEligible {
					require.Failf(t, "an eligible agent for waiting work", "%s: work %s: %+v", where, id, g.Agents)
				}
			}
			require.Equal(t, total, n, "%s: every agent is in one group", where)
		case "offered", "active", "wrap_up":
			require.Equal(t, held[id], x.Agent.ID, "%s: %s", where, id)
		}
	}
}
