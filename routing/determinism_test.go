package routing

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

// shuffledPlans parses text and compiles it with every list that is a set in meaning (plans,
// queues, channels, profiles, overrides, skills) shuffled.
func shuffledPlans(t testing.TB, r *rand.Rand, text, name string) *Table {
	t.Helper()
	if text == "" {
		return nil
	}
	cfg := parseConfig(t, text, name)
	shuffle(r, cfg.Plans)
	for i := range cfg.Plans {
		shuffle(r, cfg.Plans[i].Queues)
		shuffle(r, cfg.Plans[i].RequiredSkills)
		shuffle(r, cfg.Plans[i].AdditionalSkills)
	}
	shuffle(r, cfg.Channels)
	shuffle(r, cfg.Capacity.Profiles)
	plans, err := Compile(cfg)
	require.NoError(t, err)
	return plans
}

func shuffle[T any](r *rand.Rand, s []T) {
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

func parseConfig(t testing.TB, text, name string) *mapping.Config {
	t.Helper()
	if !containsPresence(text) {
		text += defaultPresence
	}
	cfg, err := mapping.Parse([]byte(text), name)
	require.NoError(t, err)
	return cfg
}

// TestDeterminismShuffledInputs plays every scenario again with shuffled inputs: the mapping's
// lists (plans, queues, channels, profiles, skills) and each event's skills, groups and channels
// in a random order, several times. The commands must be exactly those of the plain run.
func TestDeterminismShuffledInputs(t *testing.T) {
	t.Parallel()
	forEachScenario(t, func(t *testing.T, name string, sc scenario) {
		want := runScenario(t, name, sc, false)
		for seed := range int64(5) {
			r := rand.New(rand.NewSource(seed))
			e := New(shuffledPlans(t, r, sc.Mapping, name))
			for i, st := range sc.Steps {
				now := t0.Add(st.At)
				var got []Command
				switch {
				case st.Reload != "":
					got = e.SetPlans(now, shuffledPlans(t, r, st.Reload, name))
				case st.Event != nil:
					ev := st.Event.event(t)
					ev.Skills = slices.Clone(ev.Skills)
					ev.Groups = slices.Clone(ev.Groups)
					ev.Channels = slices.Clone(ev.Channels)
					shuffle(r, ev.Skills)
					shuffle(r, ev.Groups)
					shuffle(r, ev.Channels)
					got = e.Apply(now, ev)
				default:
					got = e.Apply(now, Event{Type: EventTick})
				}
				ys := make([]cmdYAML, 0, len(got))
				for _, c := range got {
					ys = append(ys, toYAML(c))
				}
				if d := cmp.Diff(want[i], ys); d != "" {
					t.Fatalf("seed %d step %d: shuffled inputs changed the commands (-plain +shuffled):\n%s", seed, i, d)
				}
			}
		}
	})
}
