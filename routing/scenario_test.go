package routing

import (
	"embed"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/omniroute/omniroute/mapping"
)

// Scenario files (testdata/scenarios/*.yaml, embedded) each describe one behaviour:
//
//	description: prose: what the scenario shows and why
//	mapping: |      a mapping file, parsed with mapping.Parse and compiled (a presence section
//	                is added when missing: defaultPresence)
//	steps:          played in order; each is one Apply (or SetPlans) call
//	  - at: 5s      clock offset from t0 (default 0s)
//	    event: {type: work_arrived, work: {id: W1, psr: P1, queue: Q, channel: chat}}
//	                (or reload: | <mapping>, or neither for a tick); a reconcile event has
//	                snapshot: {waiting: [<work>], offers: [{agent, work}], interactions: [...],
//	                external: [...], presence: [{agent, presence, channels}]}; a work may list
//	                its PSR's skills: {name: level} and additional: {name: level}
//	    expect:     the exact commands, in order; no expect means no commands
//	      - {type: offer, work: W1, psr: P1, agent: A1, channel: chat, weight: 1, plan: Support}
//	    deadline: 35s   optional: NextDeadline afterwards (offset from t0), or none
//
// After every step the runner also checks the engine's invariants (checkInvariants, checkCaps).
// A new routing rule ships with a new scenario.
//
//go:embed testdata/scenarios/*.yaml
var scenarioFS embed.FS

// t0 is the scenario clock's origin; every "at" is an offset from it.
var t0 = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// defaultPresence is appended to a scenario mapping that has no presence section, so most
// scenarios can stay short. It maps every major state both ways.
const defaultPresence = `
presence:
  fromSalesforce:
    Available: Ready
    Break_Status: Away/Break
    Away_Status: Away
  toSalesforce:
    Ready: Available
    ReadyOutbound: Outbound_Status
    Busy: Busy_Status
    WrapUp: Wrap_Status
    Away: Away_Status
    ExtendedAway: Away_Status
    LoggedOut: Offline
`

type scenario struct {
	Description string `yaml:"description"`
	Mapping     string `yaml:"mapping"`
	Steps       []step `yaml:"steps"`
}

type step struct {
	At       time.Duration `yaml:"at"`
	Event    *evYAML       `yaml:"event"`
	Reload   string        `yaml:"reload"`
	Expect   []cmdYAML     `yaml:"expect"`
	Deadline string        `yaml:"deadline"`
}

type workYAML struct {
	ID                string         `yaml:"id"`
	PSR               string         `yaml:"psr"`
	Queue             string         `yaml:"queue"`
	Channel           string         `yaml:"channel"`
	Requested         *time.Duration `yaml:"requested"` // offset from t0
	Priority          *int           `yaml:"priority"`
	Weight            int            `yaml:"weight"`
	Preferred         string         `yaml:"preferred"`
	PreferredRequired bool           `yaml:"preferred_required"`
	DropAdditional    *time.Duration `yaml:"drop_additional"`
	Session           string         `yaml:"session"`
	// Skills are the PSR's skill requirements; Additional lists the additional ones.
	Skills     map[string]float64 `yaml:"skills"`
	Additional map[string]float64 `yaml:"additional"`
}

type evYAML struct {
	Type     string             `yaml:"type"`
	Work     *workYAML          `yaml:"work"`
	WorkID   string             `yaml:"work_id"`
	PSR      string             `yaml:"psr"`
	Agent    string             `yaml:"agent"`
	Outcome  string             `yaml:"outcome"`
	State    string             `yaml:"state"`
	Presence string             `yaml:"presence"`
	Channels []string           `yaml:"channels"`
	Echo     bool               `yaml:"echo"`
	Skills   map[string]float64 `yaml:"skills"`
	Groups   []string           `yaml:"groups"`
	Channel  string             `yaml:"channel"`
	Action   string             `yaml:"action"`
	Target   string             `yaml:"target"`
	TargetID string             `yaml:"target_id"`
	Mode     string             `yaml:"mode"`
	NewWork  string             `yaml:"new_work"`
	Dispo    string             `yaml:"disposition"`
	Snapshot *snapshotYAML      `yaml:"snapshot"`
}

// snapshotYAML is a reconcile snapshot (Snapshot) as scenario files spell it.
type snapshotYAML struct {
	Waiting      []workYAML     `yaml:"waiting"`
	Offers       []assignYAML   `yaml:"offers"`
	Interactions []assignYAML   `yaml:"interactions"`
	External     []assignYAML   `yaml:"external"`
	Presence     []presenceYAML `yaml:"presence"`
}

type assignYAML struct {
	Agent string   `yaml:"agent"`
	Work  workYAML `yaml:"work"`
}

type presenceYAML struct {
	Agent    string   `yaml:"agent"`
	Presence string   `yaml:"presence"`
	Channels []string `yaml:"channels"`
}

func (y *snapshotYAML) snapshot() *Snapshot {
	s := &Snapshot{}
	for i := range y.Waiting {
		s.Waiting = append(s.Waiting, y.Waiting[i].work())
	}
	conv := func(as []assignYAML) []Assignment {
		var out []Assignment
		for i := range as {
			out = append(out, Assignment{Work: as[i].Work.work(), AgentID: as[i].Agent})
		}
		return out
	}
	s.Offers, s.Interactions, s.External = conv(y.Offers), conv(y.Interactions), conv(y.External)
	for _, p := range y.Presence {
		s.Presence = append(s.Presence, AgentPresence{AgentID: p.Agent, Presence: p.Presence, Channels: p.Channels})
	}
	return s
}

// cmdYAML is a Command as scenario files spell it; empty fields are left out.
type cmdYAML struct {
	Type        string `yaml:"type"`
	Work        string `yaml:"work,omitempty"`
	PSR         string `yaml:"psr,omitempty"`
	Agent       string `yaml:"agent,omitempty"`
	Channel     string `yaml:"channel,omitempty"`
	Weight      int    `yaml:"weight,omitempty"`
	AutoAccept  bool   `yaml:"auto_accept,omitempty"`
	Plan        string `yaml:"plan,omitempty"`
	Target      string `yaml:"target,omitempty"`
	TargetID    string `yaml:"target_id,omitempty"`
	State       string `yaml:"state,omitempty"`
	Presence    string `yaml:"presence,omitempty"`
	Session     string `yaml:"session,omitempty"`
	Action      string `yaml:"action,omitempty"`
	Reason      string `yaml:"reason,omitempty"`
	Disposition string `yaml:"disposition,omitempty"`
}

func toYAML(c Command) cmdYAML {
	y := cmdYAML{
		Type: c.Type.String(), Work: c.WorkID, PSR: c.PSR, Agent: c.AgentID, Channel: c.Channel,
		Weight: c.Weight, AutoAccept: c.AutoAccept, Plan: c.Plan, Target: c.Target.String(),
		TargetID: c.TargetID, Presence: c.Presence, Session: c.Session, Reason: string(c.Reason),
		Disposition: c.Disposition,
	}
	if c.State.Major != 0 {
		y.State = c.State.String()
	}
	if c.Action != 0 {
		y.Action = c.Action.String()
	}
	return y
}

func parseMapping(t testing.TB, text, name string) *Table {
	t.Helper()
	plans, err := Compile(parseConfig(t, text, name))
	require.NoError(t, err)
	return plans
}

func containsPresence(text string) bool {
	return strings.Contains(text, "\npresence:") || strings.HasPrefix(text, "presence:")
}

func lookup[T ~uint8](t testing.TB, name string, names func(T) string, last T) T {
	t.Helper()
	for v := T(0); v <= last; v++ {
		if names(v) == name {
			return v
		}
	}
	t.Fatalf("unknown name %q", name)
	return 0
}

func (y *evYAML) event(t testing.TB) Event {
	t.Helper()
	ev := Event{
		Type:     lookup(t, y.Type, EventType.String, EventReconcile),
		WorkID:   y.WorkID,
		PSR:      y.PSR,
		AgentID:  y.Agent,
		Presence: y.Presence,
		Channels: y.Channels,
		Echo:     y.Echo,
		Groups:   y.Groups,
		Channel:  y.Channel,
	}
	switch y.Outcome {
	case "", "declined":
	case "push_timeout":
		ev.Outcome = OutcomePushTimeout
	case "unavailable":
		ev.Outcome = OutcomeUnavailable
	case "insert_failed":
		ev.Outcome = OutcomeInsertFailed
	default:
		t.Fatalf("unknown outcome %q", y.Outcome)
	}
	if y.State != "" {
		st, err := mapping.ParseState(y.State)
		require.NoError(t, err)
		ev.State = st
	}
	for _, name := range slices.Sorted(maps.Keys(y.Skills)) {
		ev.Skills = append(ev.Skills, Skill{Name: name, Level: y.Skills[name]})
	}
	if w := y.Work; w != nil {
		ev.Work = w.work()
		if ev.WorkID == "" {
			ev.WorkID = w.ID
		}
	}
	if y.Snapshot != nil {
		ev.Snapshot = y.Snapshot.snapshot()
	}
	if y.Action != "" {
		ev.Action = Action{
			Kind:        lookup(t, y.Action, ActionKind.String, ActionDisposition),
			Target:      lookup(t, y.Target, TargetKind.String, TargetQueue),
			TargetID:    y.TargetID,
			NewWorkID:   y.NewWork,
			Channel:     y.Channel,
			Disposition: y.Dispo,
		}
		switch y.Mode {
		case "", "current":
		case "new_contact":
			ev.Action.Mode = ElevateNewContact
		default:
			t.Fatalf("unknown elevate mode %q", y.Mode)
		}
	}
	return ev
}

func (w *workYAML) work() Work {
	wk := Work{
		ID: w.ID, PSR: w.PSR, Queue: w.Queue, Channel: w.Channel, Weight: w.Weight,
		PreferredUser: w.Preferred, PreferredRequired: w.PreferredRequired, Session: w.Session,
	}
	if w.Requested != nil {
		wk.RequestedAt = t0.Add(*w.Requested)
	}
	if w.Priority != nil {
		wk.Priority, wk.HasPriority = *w.Priority, true
	}
	if w.DropAdditional != nil {
		wk.DropAdditionalAfter, wk.HasDropAdditional = *w.DropAdditional, true
	}
	for _, name := range slices.Sorted(maps.Keys(w.Skills)) {
		wk.Skills = append(wk.Skills, SkillRequirement{Name: name, Level: w.Skills[name]})
	}
	for _, name := range slices.Sorted(maps.Keys(w.Additional)) {
		wk.Skills = append(wk.Skills, SkillRequirement{Name: name, Level: w.Additional[name], Additional: true})
	}
	return wk
}

func loadScenarios(t testing.TB) map[string]scenario {
	t.Helper()
	files, err := scenarioFS.ReadDir("testdata/scenarios")
	require.NoError(t, err)
	out := map[string]scenario{}
	for _, f := range files {
		data, err := scenarioFS.ReadFile(path.Join("testdata/scenarios", f.Name()))
		require.NoError(t, err)
		var sc scenario
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		require.NoError(t, dec.Decode(&sc), f.Name())
		require.NotEmpty(t, strings.TrimSpace(sc.Description), "%s: a scenario needs a prose description", f.Name())
		require.NotEmpty(t, sc.Steps, f.Name())
		out[strings.TrimSuffix(f.Name(), ".yaml")] = sc
	}
	return out
}

// runScenario plays a scenario and returns every step's commands.
func runScenario(t testing.TB, name string, sc scenario, check bool) [][]cmdYAML {
	t.Helper()
	e := New(parseMapping(t, sc.Mapping, name+".yaml"))
	var all [][]cmdYAML
	for i, st := range sc.Steps {
		now := t0.Add(st.At)
		var got []Command
		switch {
		case st.Reload != "":
			got = e.SetPlans(now, parseMapping(t, st.Reload, name+".reload.yaml"))
		case st.Event != nil:
			got = e.Apply(now, st.Event.event(t))
		default:
			got = e.Apply(now, Event{Type: EventTick})
		}
		ys := make([]cmdYAML, 0, len(got))
		for _, c := range got {
			ys = append(ys, toYAML(c))
		}
		all = append(all, ys)
		if !check {
			continue
		}
		want := st.Expect
		if want == nil {
			want = []cmdYAML{}
		}
		if d := cmp.Diff(want, ys); d != "" {
			out, _ := yaml.Marshal(ys)
			t.Fatalf("step %d (at %s): commands differ (-want +got):\n%s\ngot:\n%s", i, st.At, d, out)
		}
		if st.Deadline != "" {
			dl, ok := e.NextDeadline()
			if st.Deadline == "none" {
				require.False(t, ok, "step %d: deadline %s", i, dl)
			} else {
				want, err := time.ParseDuration(st.Deadline)
				require.NoError(t, err)
				require.True(t, ok, "step %d: no deadline", i)
				require.Equal(t, t0.Add(want), dl, "step %d: deadline", i)
			}
		}
		checkInvariants(t, e)
		for _, a := range e.agentList {
			checkCaps(t, a)
		}
	}
	return all
}

// TestScenarios plays every testdata/scenarios/*.yaml file and compares the commands of each
// step with the file's expectations, checking the engine's invariants after each step.
func TestScenarios(t *testing.T) {
	t.Parallel()
	forEachScenario(t, func(t *testing.T, name string, sc scenario) {
		runScenario(t, name, sc, true)
	})
}

// forEachScenario runs f on every scenario file, in name order, as parallel subtests.
func forEachScenario(t *testing.T, f func(t *testing.T, name string, sc scenario)) {
	t.Helper()
	scs := loadScenarios(t)
	for _, name := range slices.Sorted(maps.Keys(scs)) {
		sc := scs[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, name, sc)
		})
	}
}
