package routing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

func TestCompileReportsEveryProblem(t *testing.T) {
	t.Parallel()
	cfg := &mapping.Config{
		Plans: []mapping.Plan{
			{Name: "A", Queues: []string{"Q1"}, Overflow: &mapping.Overflow{Plan: "Missing", After: time.Minute}},
			{Name: "A", Queues: []string{"Q2"}},
			{Name: "B", Queues: []string{"Q1"}, Relaxation: []mapping.RelaxationStep{{After: time.Second, Skill: "nope", MinLevel: 1}}},
			{Name: ""},
		},
		Channels: []mapping.Channel{{Name: "chat", Class: mapping.SemiLive}, {Name: "chat", Class: mapping.Live}, {Name: "x"}},
		Capacity: mapping.Capacity{
			Default:   "missing",
			Profiles:  []mapping.CapacityProfile{{Name: "zero", Total: 0}},
			Overrides: []mapping.CapacityOverride{{Profile: "ghost"}},
		},
	}
	_, err := Compile(cfg)
	require.Error(t, err)
	for _, want := range []string{
		`compile plans[0] "A": overflow to unknown plan "Missing"`,
		`compile plans[1]: duplicate plan "A"`,
		`compile plans[2] "B": relaxation step for "nope": not a required skill`,
		`compile plans[3]: empty name`,
		`compile channels[1]: duplicate channel "chat"`,
		`compile channels[2]: channel "x" has invalid class 0`,
		`compile capacity.profiles[0]: profile "zero" total 0 is not positive`,
		`compile capacity.default: unknown profile "missing"`,
		`compile capacity.overrides[0]: unknown profile "ghost"`,
	} {
		require.ErrorContains(t, err, want)
	}
	_, err = Compile(nil)
	require.Error(t, err)
}

func TestCompileStagesAndProfiles(t *testing.T) {
	t.Parallel()
	plans := parseMapping(t, `
plans:
  - name: P
    queues: [Q1, Q2]
    requiredSkills: [{skill: a, minLevel: 5}, {skill: b, minLevel: 3.5}]
    additionalSkills: [{skill: c, minLevel: 1}]
    relaxation:
      - {after: 10s, skill: a, minLevel: 2}
      - {after: 10s, skill: b, drop: true}
      - {after: 20s, skill: a, drop: true}
channels:
  - {name: chat, class: semi-live}
capacity:
  default: std
  profiles:
    - {name: std, total: 2}
    - {name: senior, total: 5}
    - {name: named, total: 9}
  overrides:
    - {profile: senior, groups: [Seniors]}
    - {profile: named, agents: [005X]}
`, "p.yaml")
	p := plans.PlanForQueue("Q2")
	require.NotNil(t, p)
	require.Equal(t, "P", p.Name())
	require.Equal(t, []string{"P"}, plans.PlanNames())
	require.Same(t, p, plans.Plan("P"))
	// Two steps at 10s merge into one stage.
	require.Len(t, p.stages, 3)
	require.Equal(t, []req{{"a", 500}, {"b", 350}}, p.stages[0].req)
	require.Equal(t, []req{{"a", 200}}, p.stages[1].req)
	require.Empty(t, p.stages[2].req)
	require.Equal(t, []req{{"a", 500}, {"b", 350}, {"c", 100}}, p.reqs[0])
	require.Equal(t, "std", plans.profileFor("005A", nil).name)
	require.Equal(t, "senior", plans.profileFor("005A", []string{"Other", "Seniors"}).name)
	// An agent listed by name beats a group match.
	require.Equal(t, "named", plans.profileFor("005X", []string{"Seniors"}).name)
}

func TestAllowedMatchesSeeds(t *testing.T) {
	t.Parallel()
	// Seeds 000/001: what each class allows; elevation (seed 002) for chat/email-like classes.
	want := map[mapping.Class][]ActionKind{
		mapping.Live:     {ActionRelease, ActionHold, ActionRetrieve, ActionConsult, ActionTransfer, ActionEndWrapUp, ActionDisposition},
		mapping.SemiLive: {ActionRelease, ActionConsult, ActionAbandon, ActionElevate, ActionEndWrapUp, ActionDisposition},
		mapping.NonLive:  {ActionRelease, ActionConsult, ActionTransfer, ActionAbandon, ActionElevate, ActionEndWrapUp, ActionDisposition},
	}
	for c, ks := range want {
		for k := ActionRelease; k <= ActionDisposition; k++ {
			require.Equal(t, contains(ks, k), Allowed(c, k), "%s %s", c, k)
		}
	}
	require.False(t, Allowed(0, ActionRelease))
	require.False(t, Allowed(mapping.Live, 0))
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestEngineAPI(t *testing.T) {
	t.Parallel()
	e := New(nil)
	_, ok := e.NextDeadline()
	require.False(t, ok)
	require.Empty(t, e.SetPlans(t0, nil))
	got := e.Apply(t0, Event{Type: EventWorkArrived, Work: Work{ID: "W1", Queue: "Q", Channel: "chat"}})
	require.Equal(t, []Command{{Type: CommandUnroutable, WorkID: "W1", Reason: ReasonUnknownChannel}}, got)
	got = e.Apply(t0, Event{Type: EventWorkArrived})
	require.Equal(t, []Command{{Type: CommandIgnored, Reason: ReasonUnknownWork}}, got)
	got = e.Apply(t0, Event{Type: EventAgentAction, AgentID: "A", Action: Action{Kind: 99}})
	require.Equal(t, []Command{{Type: CommandRefused, AgentID: "A", Action: 99, Reason: ReasonUnknownAction}}, got)
	// Time never runs backwards: an earlier now is the last one seen.
	plans := parseMapping(t, `
plans:
  - name: P
    queues: [Q]
    offerTimeout: 10s
channels:
  - {name: chat, class: semi-live}
capacity:
  default: std
  profiles: [{name: std, total: 1}]
`, "p.yaml")
	e = New(plans)
	require.Same(t, plans, e.Plans())
	e.Apply(t0, Event{Type: EventAgentPresence, AgentID: "A", Presence: "Available", Channels: []string{"chat"}})
	e.Apply(t0.Add(time.Minute), Event{Type: EventWorkArrived, Work: Work{ID: "W1", Queue: "Q", Channel: "chat"}})
	dl, ok := e.NextDeadline()
	require.True(t, ok)
	require.Equal(t, t0.Add(70*time.Second), dl)
	require.Empty(t, e.Apply(t0, Event{Type: EventTick}))
	got = e.Apply(t0.Add(70*time.Second), Event{Type: EventTick})
	require.Equal(t, CommandCheckOffer, got[0].Type)
	for _, r := range Reasons() {
		require.NotEmpty(t, string(r))
	}
}
