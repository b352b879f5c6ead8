package routing

// The engine's three priority queues (waiting work per bucket, available agents per bucket,
// timers) are one indexed binary heap, heap[S]; no container/heap: its interface calls cost
// more than the decision itself. Each slot records its position in the element it stands for,
// so that an element can be removed or re-keyed in O(log n) without a search. All three orders
// are total (ties end on an id), so the minimum, and thus every decision, does not depend on
// insertion order.

// slot is an element of a heap: it orders itself against another slot and records its
// position in the element it stands for.
type slot[S any] interface {
	before(S) bool
	at(pos int32)
}

// heap is an indexed binary min-heap of slots.
type heap[S slot[S]] []S

func (h *heap[S]) push(s S) {
	*h = append(*h, s)
	s.at(int32(len(*h) - 1))
	h.up(len(*h) - 1)
}

func (h *heap[S]) removeAt(i int) {
	s := *h
	n := len(s) - 1
	if i != n {
		s[i] = s[n]
		s[i].at(int32(i))
	}
	var zero S
	s[n] = zero
	*h = s[:n]
	if i != n {
		h.fix(i)
	}
}

// fix restores the order after the slot at i changed its key.
func (h heap[S]) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h heap[S]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		h[i].at(int32(i))
		h[p].at(int32(p))
		i = p
	}
}

func (h heap[S]) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h[r].before(h[l]) {
			j = r
		}
		if !h[j].before(h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		h[i].at(int32(i))
		h[j].at(int32(j))
		i = j
	}
	return i > i0
}

// firstKept returns the first slot of h, in heap order, that keep accepts (false when none).
// The slots it passes over are popped into scratch (reused storage) and pushed back.
func firstKept[S slot[S]](h *heap[S], scratch *[]S, keep func(S) bool) (S, bool) {
	var found S
	ok := false
	s := (*scratch)[:0]
	for len(*h) > 0 {
		top := (*h)[0]
		if keep(top) {
			found, ok = top, true
			break
		}
		h.removeAt(0)
		s = append(s, top)
	}
	for _, x := range s {
		h.push(x)
	}
	clear(s)
	*scratch = s[:0]
	return found, ok
}

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

// itemSlot is waiting work in a heap, with its keys copied in (they never change while the work
// is in a heap) so that sifting compares slots without loading the items themselves.
type itemSlot struct {
	since int64
	prio  int32
	it    *item
}

func (s itemSlot) before(o itemSlot) bool {
	if s.prio != o.prio {
		return s.prio < o.prio
	}
	if s.since != o.since {
		return s.since < o.since
	}
	return s.it.id < o.it.id
}

func (s itemSlot) at(pos int32) { s.it.hpos = pos }

// itemHeap is waiting work ordered by itemLess; item.hpos is the position.
type itemHeap []itemSlot

// push and remove on an itemHeap are the generic heap's, specialised by hand: they run on every
// decision over heaps of hundreds of slots, and calls through the generic code's dictionary
// (before and at are not inlined there) measured 5-9% slower per decision. Agent and timer
// heaps are small in the steady state and use heap[S] as is.
func (h *itemHeap) push(it *item) {
	*h = append(*h, itemSlot{since: it.since, prio: it.prio, it: it})
	it.hpos = int32(len(*h) - 1)
	h.up(len(*h) - 1)
}

func (h itemHeap) top() *item {
	if len(h) == 0 {
		return nil
	}
	return h[0].it
}

func (h *itemHeap) remove(it *item) {
	s := *h
	i := int(it.hpos)
	n := len(s) - 1
	if i != n {
		s[i] = s[n]
		s[i].it.hpos = int32(i)
	}
	s[n] = itemSlot{}
	*h = s[:n]
	if i != n && !h.down(i) {
		h.up(i)
	}
	it.hpos = -1
}

func (h itemHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		h[i].it.hpos, h[p].it.hpos = int32(i), int32(p)
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
		if r := l + 1; r < n && h[r].before(h[l]) {
			j = r
		}
		if !h[j].before(h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		h[i].it.hpos, h[j].it.hpos = int32(i), int32(j)
		i = j
	}
	return i > i0
}

// before orders available agents for one bucket: best skill fit (higher first), then longest
// idle (earliest idle-since first), then least loaded (fewest units), then id.
func (m *membership) before(o *membership) bool {
	if m.fit != o.fit {
		return m.fit > o.fit
	}
	x, y := m.a, o.a
	if x.idleSince != y.idleSince {
		return x.idleSince < y.idleSince
	}
	if x.usedTotal != y.usedTotal {
		return x.usedTotal < y.usedTotal
	}
	return x.id < y.id
}

func (m *membership) at(pos int32) { m.pos = pos }

// agentHeap holds the memberships of agents available for one bucket; membership.pos is the
// position (-1 when absent).
type agentHeap []*membership

func (h *agentHeap) push(m *membership) { (*heap[*membership])(h).push(m) }

func (h *agentHeap) remove(m *membership) {
	(*heap[*membership])(h).removeAt(int(m.pos))
	m.pos = -1
}

func (h agentHeap) fix(m *membership) { heap[*membership](h).fix(int(m.pos)) }

// timerSlot is work with a pending deadline, ordered by due time, then work id.
type timerSlot struct {
	due int64
	it  *item
}

func (s timerSlot) before(o timerSlot) bool {
	if s.due != o.due {
		return s.due < o.due
	}
	return s.it.id < o.it.id
}

func (s timerSlot) at(pos int32) { s.it.tpos = pos }

// timerHeap holds work with a pending deadline; item.tpos is the position (-1 when absent) and
// item.due the deadline.
type timerHeap []timerSlot

func (h *timerHeap) set(it *item, due int64) {
	it.due = due
	if it.tpos >= 0 {
		(*h)[it.tpos].due = due
		heap[timerSlot](*h).fix(int(it.tpos))
		return
	}
	(*heap[timerSlot])(h).push(timerSlot{due: due, it: it})
}

func (h *timerHeap) remove(it *item) {
	if it.tpos < 0 {
		return
	}
	(*heap[timerSlot])(h).removeAt(int(it.tpos))
	it.tpos = -1
}

// first returns the work with the earliest deadline, or nil.
func (h timerHeap) first() *item {
	if len(h) == 0 {
		return nil
	}
	return h[0].it
}
