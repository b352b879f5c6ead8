package routing

import (
	"math/rand"
	"testing"
	"time"
)

// FuzzEngine drives the engine with event sequences derived from the fuzz input (a seed and a
// step count for the property test's generator, plus raw bytes that corrupt fields: empty ids,
// odd weights, negative priorities and durations). It must never panic and its invariants must
// hold after every step.
func FuzzEngine(f *testing.F) {
	f.Add(int64(1), []byte{0, 1, 2, 3})
	f.Add(int64(42), []byte{255, 128, 7})
	f.Fuzz(func(t *testing.T, seed int64, raw []byte) {
		propOnce.Do(func() {
			propPlansA = parseMapping(t, propMappingA, "a.yaml")
			propPlansB = parseMapping(t, propMappingB, "b.yaml")
		})
		w := &propWorld{r: rand.New(rand.NewSource(seed)), now: t0, offered: map[string]string{}, active: map[string]string{}}
		e := New(propPlansA)
		for i := range 60 {
			ev := w.event()
			if i < len(raw) {
				b := raw[i]
				switch b % 8 {
				case 0:
					ev.WorkID, ev.Work.ID = "", ""
				case 1:
					ev.AgentID = ""
				case 2:
					ev.Work.Weight = -int(b)
				case 3:
					ev.Work.Priority, ev.Work.HasPriority = -int(b), true
				case 4:
					ev.Work.DropAdditionalAfter, ev.Work.HasDropAdditional = -time.Duration(b)*time.Second, true
				case 5:
					ev.Type = EventType(b)
				case 6:
					ev.Action.Kind = ActionKind(b)
				case 7:
					ev.Work.RequestedAt = w.now.Add(time.Duration(b) * time.Hour)
				}
			}
			w.now = w.now.Add(time.Duration(w.r.Intn(8000)) * time.Millisecond)
			if w.r.Intn(40) == 0 {
				e.SetPlans(w.now, propPlansB)
			}
			e.Apply(w.now, ev)
			checkInvariants(t, e)
		}
	})
}
