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
	if a.priority != b.priority {
		return a.priority < b.priority
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

func (s itemSlot) at(pos int32) { s.it.heapPos = pos }

// itemHeap is waiting work ordered by itemLess; item.heapPos is the position (-1 when absent).
type itemHeap []itemSlot

func (h *itemHeap) push(it *item) {
	(*heap[itemSlot])(h).push(itemSlot{since: it.since, prio: it.priority, it: it})
}

func (h itemHeap) top() *item {
	if len(h) == 0 {
		return nil
	}
	return h[0].it
}

func (h *itemHeap) remove(it *item) {
	(*heap[itemSlot])(h).removeAt(int(it.heapPos))
	it.heapPos = -1
}

// before orders available agents for one bucket: best skill fit (higher first), then longest
// idle (earliest idle-since first), then least loaded (fewest units), then id. It reads the
// heap keys copied into the memberships (see agentHeap), and loads the agents only to compare
// ids when all else ties.
func (m *membership) before(o *membership) bool {
	if m.fit != o.fit {
		return m.fit > o.fit
	}
	if m.idle != o.idle {
		return m.idle < o.idle
	}
	if m.used != o.used {
		return m.used < o.used
	}
	return m.a.id < o.a.id
}

func (m *membership) at(pos int32) { m.pos = pos }

// agentHeap holds the memberships of agents available for one bucket; membership.pos is the
// position (-1 when absent).
//
// The heap orders memberships by fit and their heap keys (membership.idle and used), which are
// the agent's keys as of the membership's last re-keying. Keys that get worse are re-keyed
// lazily: an offer makes the agent's idle time the latest of all and raises its load, which
// would otherwise sink it to the bottom of every one of its buckets (O(log n) comparisons of
// cold memberships in each), though only the bucket the next choice is made in needs it. So a
// heap key is always before or equal to the agent's current key (a lower bound), and the order
// holds among heap keys; topAgent re-keys and sinks stale memberships until the top one is
// current, which is then the best by current keys too (every other agent's current key is at
// or after its heap key, which is at or after the top's). Keys that get better (a decline or a
// finished interaction lowers the load) are re-keyed at once, by a sift up.
//
// Leaving is lazy too: an agent that stops being eligible for the bucket (no room left for its
// weight after an offer, a state or presence change) is only marked out (bucket.nOut counts
// them), and topAgent drops it when it reaches the top; if it becomes eligible again before
// that, it is unmarked and re-keyed as above. An offer followed by a decline thus costs no
// sifting in the agent's other buckets. The heap holds the eligible agents and some that were
// eligible since they were last dropped.
type agentHeap []*membership

// eligible reports whether m's agent is available for m's bucket (in the heap, not marked out).
func (m *membership) eligible() bool { return m.pos >= 0 && !m.out }

// stale reports whether m's heap keys are not the agent's current keys.
func (m *membership) stale() bool {
	a := m.a
	return m.idle != a.idleSince || m.used != a.usedTotal
}

// improved reports whether the agent's current keys order before m's heap keys.
func (m *membership) improved() bool {
	a := m.a
	if a.idleSince != m.idle {
		return a.idleSince < m.idle
	}
	return a.usedTotal < m.used
}

// rekey copies the agent's keys into m's heap keys.
func (m *membership) rekey() {
	a := m.a
	m.idle, m.used = a.idleSince, a.usedTotal
}

func (h *agentHeap) push(m *membership) {
	m.rekey()
	(*heap[*membership])(h).push(m)
}

func (h *agentHeap) remove(m *membership) {
	(*heap[*membership])(h).removeAt(int(m.pos))
	m.pos = -1
	m.markOut(false)
}

// markOut sets m.out and keeps its bucket's count of marked memberships.
func (m *membership) markOut(out bool) {
	switch {
	case out && !m.out:
		m.b.nOut++
	case !out && m.out:
		m.b.nOut--
	}
	m.out = out
}

// update follows a change of m's agent's keys: re-keyed now if they got better, else left stale.
func (h agentHeap) update(m *membership) {
	if m.improved() {
		m.rekey()
		heap[*membership](h).up(int(m.pos))
	}
}

// topAgent returns the membership of the best available agent in b (by current keys), or nil.
// It drops the memberships marked out and re-keys the stale ones that it finds at the top.
// When every membership in the heap is marked out, it returns nil at once and leaves them:
// while every agent is busy, an agent that frees up and fills again in one event then costs no
// sifting at all.
func (b *bucket) topAgent() *membership {
	h := &b.agents
	for len(*h) > int(b.nOut) {
		m := (*h)[0]
		switch {
		case m.out:
			h.remove(m)
		case m.stale():
			m.rekey()
			heap[*membership](*h).down(0)
		default:
			return m
		}
	}
	return nil
}

// firstKept returns the best available agent's membership that keep accepts (nil when none).
// The memberships it passes over are removed into scratch (reused storage) and pushed back.
func (b *bucket) firstKept(scratch *[]*membership, keep func(*membership) bool) *membership {
	h := &b.agents
	var found *membership
	s := (*scratch)[:0]
	for {
		m := b.topAgent()
		if m == nil {
			break
		}
		if keep(m) {
			found = m
			break
		}
		h.remove(m)
		s = append(s, m)
	}
	for _, m := range s {
		h.push(m)
	}
	clear(s)
	*scratch = s[:0]
	return found
}

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

func (s timerSlot) at(pos int32) { s.it.timerPos = pos }

// timerHeap holds work with a pending deadline; item.timerPos is the position (-1 when absent) and
// item.due the deadline.
type timerHeap []timerSlot

func (h *timerHeap) set(it *item, due int64) {
	it.due = due
	if it.timerPos >= 0 {
		(*h)[it.timerPos].due = due
		heap[timerSlot](*h).fix(int(it.timerPos))
		return
	}
	(*heap[timerSlot])(h).push(timerSlot{due: due, it: it})
}

func (h *timerHeap) remove(it *item) {
	if it.timerPos < 0 {
		return
	}
	(*heap[timerSlot])(h).removeAt(int(it.timerPos))
	it.timerPos = -1
}

// first returns the work with the earliest deadline, or nil.
func (h timerHeap) first() *item {
	if len(h) == 0 {
		return nil
	}
	return h[0].it
}
