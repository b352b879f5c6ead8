package routing

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const reloadMapping = `
plans:
  - name: Sales
    queues: [Q_Sales]
    requiredSkills: [{skill: sales, minLevel: 3}]
    overflow: {plan: General, after: 5s}
    offerTimeout: 10s
    wrapUpTimeout: 0s
  - name: General
    queues: [Q_General]
    wrapUpTimeout: 0s
    offerTimeout: 10s
channels:
  - {name: chat, class: semi-live, weight: 1}
  - {name: email, class: non-live, weight: 1}
capacity:
  default: std
  profiles: [{name: std, total: 2}]
`

// TestReloadSameMappingKeepsHeapFlat compiles and swaps in the same mapping 1,000 times while
// work flows (arrivals, offers, accepts, releases, overflowed, parked and transferred work),
// and requires the live heap after the last reload to be within 256 KiB of the heap after the
// 100th: nothing the engine keeps per table (compiled plans, requirement-set caches, buckets)
// may pile up across reloads.
func TestReloadSameMappingKeepsHeapFlat(t *testing.T) {
	cfg := parseConfig(t, reloadMapping, "reload.yaml")
	first, err := Compile(cfg)
	require.NoError(t, err)
	e := New(first)
	now := t0
	apply := func(ev Event) []Command { return e.Apply(now, ev) }
	for i := range 50 {
		a := "A" + strconv.Itoa(i)
		lv := 5.0
		if i%2 == 0 {
			lv = 1 // only half can take Sales: Sales work overflows
		}
		apply(Event{Type: EventAgentSkills, AgentID: a, Skills: []Skill{{Name: "sales", Level: lv}}})
		apply(Event{Type: EventAgentPresence, AgentID: a, Presence: "Available", Channels: []string{"chat", "email"}})
	}
	// Parked work, and work waiting for a PSR after a transfer, stay across every reload.
	apply(Event{Type: EventWorkArrived, Work: Work{ID: "parked", PSR: "Pp", Queue: "Q_Nowhere", Channel: "chat"}})
	// A backlog that nobody can take (the PSRs require german): it overflows to General and
	// waits there through every reload.
	for i := range 500 {
		id := "B" + strconv.Itoa(i)
		apply(Event{Type: EventWorkArrived, Work: Work{ID: id, PSR: "P" + id, Queue: "Q_Sales", Channel: "email",
			Skills: []SkillRequirement{{Name: "german", Level: 1}}}})
	}
	var heapAt100 uint64
	n := 0
	for round := range 1000 {
		now = now.Add(3 * time.Second)
		for range 8 {
			n++
			id := "W" + strconv.Itoa(n)
			q := "Q_Sales"
			if n%3 == 0 {
				q = "Q_General"
			}
			apply(Event{Type: EventWorkArrived, Work: Work{ID: id, PSR: "P" + id, Queue: q, Channel: "chat"}})
		}
		// Every open offer is accepted, every interaction released (one is transferred to a
		// plan instead, and its new PSR arrives next round).
		var offers, active [][2]string
		for id, it := range e.items {
			switch it.state {
			case stOffered:
				offers = append(offers, [2]string{id, it.agent.id})
			case stActive:
				active = append(active, [2]string{id, it.agent.id})
			case stAwaitingPSR:
				apply(Event{Type: EventWorkArrived, Work: Work{ID: id, PSR: "T" + id, Queue: "Q_General", Channel: "chat"}})
			}
		}
		for _, o := range offers {
			apply(Event{Type: EventOfferAccepted, WorkID: o[0], AgentID: o[1]})
		}
		for i, x := range active {
			act := Action{Kind: ActionRelease}
			if i == 0 && round%10 == 0 {
				act = Action{Kind: ActionTransfer, Target: TargetPlan, TargetID: "General"}
			}
			apply(Event{Type: EventAgentAction, WorkID: x[0], AgentID: x[1], Action: act})
		}
		table, err := Compile(cfg)
		require.NoError(t, err)
		e.SetPlans(now, table)
		if round == 99 || round == 999 {
			runtime.GC()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if round == 99 {
				heapAt100 = ms.HeapAlloc
				continue
			}
			t.Logf("live heap after 100 reloads %d B, after 1,000 %d B; %d items", heapAt100, ms.HeapAlloc, len(e.items))
			require.Less(t, ms.HeapAlloc, heapAt100+256<<10, "the heap grew by %d B over 900 reloads", int64(ms.HeapAlloc)-int64(heapAt100))
		}
	}
	checkInvariants(t, e)
	require.Equal(t, stParked, e.items["parked"].state)
	require.Equal(t, "General", e.items["B0"].plan.name)
}
