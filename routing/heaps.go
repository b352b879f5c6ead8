package routing

// Three hand-written indexed binary heaps (no container/heap: its interface calls cost more than
// the decision itself). Each element stores its own position so it can be removed or re-keyed in
// O(log n) without a search. All three orders are total (ties end on an id), so the minimum, and
// thus every decision, does not depend on insertion order.

// itemLess orders waiting work: priority (lower first), then age (older first), then id.
func itemLess(a, b *item) bool {
	if a.prio != b.prio {
		return a.prio < b.prio
	}
	if a.since != b.since {
		return a.since < b.since
	}
	return a.id < b.id
}

// itemHeap is waiting work ordered by itemLess; item.hpos is the position.
type itemHeap []*item

func (h *itemHeap) push(it *item) {
	*h = append(*h, it)
	it.hpos = int32(len(*h) - 1)
	h.up(len(*h) - 1)
}

func (h itemHeap) top() *item {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

func (h *itemHeap) remove(it *item) {
	s := *h
	i := int(it.hpos)
	n := len(s) - 1
	if i != n {
		s[i] = s[n]
		s[i].hpos = int32(i)
	}
	s[n] = nil
	*h = s[:n]
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
	it.hpos = -1
}

func (h itemHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !itemLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		h[i].hpos, h[p].hpos = int32(i), int32(p)
		i = p
	}
}

func (h itemHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && itemLess(h[r], h[l]) {
			j = r
		}
		if !itemLess(h[j], h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		h[i].hpos, h[j].hpos = int32(i), int32(j)
		i = j
	}
	return i > i0
}

// agentLess orders available agents for one bucket: best skill fit (higher first), then
// longest idle (earliest idle-since first), then least loaded (fewest units), then id.
func agentLess(a, b *membership) bool {
	if a.fit != b.fit {
		return a.fit > b.fit
	}
	x, y := a.a, b.a
	if x.idleSince != y.idleSince {
		return x.idleSince < y.idleSince
	}
	if x.usedTotal != y.usedTotal {
		return x.usedTotal < y.usedTotal
	}
	return x.id < y.id
}

// agentHeap holds the memberships of agents available for one bucket; membership.pos is the
// position (-1 when absent).
type agentHeap []*membership

func (h *agentHeap) push(m *membership) {
	*h = append(*h, m)
	m.pos = int32(len(*h) - 1)
	h.up(len(*h) - 1)
}

func (h *agentHeap) remove(m *membership) {
	s := *h
	i := int(m.pos)
	n := len(s) - 1
	if i != n {
		s[i] = s[n]
		s[i].pos = int32(i)
	}
	s[n] = nil
	*h = s[:n]
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
	m.pos = -1
}

func (h agentHeap) fix(m *membership) {
	if !h.down(int(m.pos)) {
		h.up(int(m.pos))
	}
}

func (h agentHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !agentLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		h[i].pos, h[p].pos = int32(i), int32(p)
		i = p
	}
}

func (h agentHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && agentLess(h[r], h[l]) {
			j = r
		}
		if !agentLess(h[j], h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		h[i].pos, h[j].pos = int32(i), int32(j)
		i = j
	}
	return i > i0
}

// timerLess orders timers by due time, then work id.
func timerLess(a, b *item) bool {
	if a.due != b.due {
		return a.due < b.due
	}
	return a.id < b.id
}

// timerHeap holds work with a pending deadline; item.tpos is the position (-1 when absent).
type timerHeap []*item

func (h *timerHeap) set(it *item, due int64) {
	if it.tpos >= 0 {
		it.due = due
		if !h.down(int(it.tpos)) {
			h.up(int(it.tpos))
		}
		return
	}
	it.due = due
	*h = append(*h, it)
	it.tpos = int32(len(*h) - 1)
	h.up(len(*h) - 1)
}

func (h *timerHeap) remove(it *item) {
	if it.tpos < 0 {
		return
	}
	s := *h
	i := int(it.tpos)
	n := len(s) - 1
	if i != n {
		s[i] = s[n]
		s[i].tpos = int32(i)
	}
	s[n] = nil
	*h = s[:n]
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
	it.tpos = -1
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !timerLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		h[i].tpos, h[p].tpos = int32(i), int32(p)
		i = p
	}
}

func (h timerHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && timerLess(h[r], h[l]) {
			j = r
		}
		if !timerLess(h[j], h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		h[i].tpos, h[j].tpos = int32(i), int32(j)
		i = j
	}
	return i > i0
}
