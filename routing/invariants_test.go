package routing

import (
	"testing"

	"github.com/omniroute/omniroute/mapping"
)

// checkInvariants checks the engine's state against its invariants by brute force:
// capacity counters match the work held and never exceed the caps; every waiting item has no
// idle eligible agent (liveness); heap positions are consistent.
func checkInvariants(t testing.TB, e *Engine) {
	type use struct {
		total int32
		class [4]int32
		ch    []int32
	}
	uses := map[*agent]*use{}
	for _, a := range e.agentList {
		uses[a] = &use{ch: make([]int32, len(a.ch))}
	}
	for id, it := range e.items {
		if it.id != id {
			t.Fatalf("item %q stored under %q", it.id, id)
		}
		switch it.state {
		case stOffered, stActive, stWrapUp:
			u := uses[it.agent]
			u.total += it.weight
			u.class[it.class] += it.weight
			u.ch[it.ch] += it.weight
		case stWaiting:
			if it.b == nil || int(it.hpos) >= len(it.b.items) || it.b.items[it.hpos] != it {
				t.Fatalf("waiting item %q not at its heap position", it.id)
			}
		case stPinned:
			if it.pinnedTo == nil || it.pinnedTo.pinned[it.hpos] != it {
				t.Fatalf("pinned item %q not at its heap position", it.id)
			}
		case stParked:
		default:
			t.Fatalf("item %q in state %d between events", it.id, it.state)
		}
	}
	for _, a := range e.agentList {
		u := uses[a]
		if u.total != a.usedTotal || u.class != a.usedClass {
			t.Fatalf("agent %s: used %d/%v, work held %d/%v", a.id, a.usedTotal, a.usedClass, u.total, u.class)
		}
		for ch := range u.ch {
			if u.ch[ch] != a.ch[ch].used {
				t.Fatalf("agent %s channel %d: used %d, held %d", a.id, ch, a.ch[ch].used, u.ch[ch])
			}
		}
		for _, m := range a.mems {
			want := routable(a) && a.ch[m.b.key.ch].online && a.hasCap(m.b.key.class, m.b.key.ch, m.b.key.weight)
			if want != (m.pos >= 0) {
				t.Fatalf("agent %s membership in bucket %v: eligible %v, in heap %v", a.id, m.b.key, want, m.pos >= 0)
			}
			if m.pos >= 0 && m.b.agents[m.pos] != m {
				t.Fatalf("agent %s membership not at its heap position", a.id)
			}
		}
	}
	// Liveness: no idle eligible agent while eligible work waits.
	for _, it := range e.items {
		switch it.state {
		case stWaiting:
			d := 0
			if it.dropped {
				d = 1
			}
			rs := e.reqSets[e.planReqs(it.plan)[2*it.stage+d]]
			for _, a := range e.agentList {
				if _, ok := fit(a, rs); ok && direct(a, it, false) {
					t.Fatalf("liveness: work %q waits while agent %s is eligible", it.id, a.id)
				}
			}
		case stPinned:
			if direct(it.pinnedTo, it, it.prefRequired) {
				t.Fatalf("liveness: work %q waits for preferred agent %s who is eligible", it.id, it.pinnedTo.id)
			}
		}
	}
}

// checkCaps fails if a uses more than its capacity: total, per class or per channel. A reload or
// a group change may shrink an agent's capacity below what it already holds, so the property
// test calls this for agents that were just given work; scenarios call it for every agent.
func checkCaps(t testing.TB, a *agent) {
	t.Helper()
	if a.usedTotal > a.capTotal {
		t.Fatalf("agent %s over capacity: %d > %d", a.id, a.usedTotal, a.capTotal)
	}
	for c := mapping.Live; c <= mapping.NonLive; c++ {
		if a.capClass[c] >= 0 && a.usedClass[c] > a.capClass[c] {
			t.Fatalf("agent %s over %s capacity: %d > %d", a.id, c, a.usedClass[c], a.capClass[c])
		}
	}
	for ch := range a.ch {
		if c := a.ch[ch].cap; c >= 0 && a.ch[ch].used > c {
			t.Fatalf("agent %s channel %d over capacity: %d > %d", a.id, ch, a.ch[ch].used, c)
		}
	}
}

// checkItemCaps fails if the capacity dimensions it uses (total, its class, its channel) are over
// their caps after a was given it.
func checkItemCaps(t testing.TB, a *agent, it *item) {
	if a.usedTotal > a.capTotal {
		t.Fatalf("agent %s over capacity after %s: %d > %d", a.id, it.id, a.usedTotal, a.capTotal)
	}
	if c := a.capClass[it.class]; c >= 0 && a.usedClass[it.class] > c {
		t.Fatalf("agent %s over %s capacity after %s: %d > %d", a.id, it.class, it.id, a.usedClass[it.class], c)
	}
	if c := a.ch[it.ch].cap; c >= 0 && a.ch[it.ch].used > c {
		t.Fatalf("agent %s over %s capacity after %s: %d > %d", a.id, it.channel, it.id, a.ch[it.ch].used, c)
	}
}
