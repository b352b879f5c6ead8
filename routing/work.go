package routing

import (
	"math"
	"slices"
	"time"
)

// Work: placement in buckets or with a preferred user, timers, offers, sessions and the work
// events (arrived, changed, removed, accepted, declined, closed).

func (e *Engine) newItem() *item {
	if n := len(e.free); n > 0 {
		it := e.free[n-1]
		e.free[n-1] = nil
		e.free = e.free[:n-1]
		return it
	}
	return &item{heapPos: -1, timerPos: -1}
}

func (e *Engine) freeItem(it *item) {
	d := it.decliners[:0]
	*it = item{heapPos: -1, timerPos: -1, decliners: d}
	e.free = append(e.free, it)
}

func (e *Engine) onWork(w *Work) {
	if w.ID == "" {
		e.emit(Command{Type: CommandIgnored, Reason: ReasonUnknownWork})
		return
	}
	if _, gone := e.deletedPSRs[w.PSR]; gone && w.PSR != "" {
		// A replayed CREATE or UPDATE of a PSR Salesforce deleted: PSR ids are never reused.
		e.emit(Command{Type: CommandIgnored, WorkID: w.ID, PSR: w.PSR, Reason: ReasonPSRDeleted})
		return
	}
	it := e.items[w.ID]
	existed := it != nil
	// The new PSR a transfer asked for keeps the plan the work was transferred to, whatever
	// its queue; any other new queue re-resolves the plan.
	keepPlan := existed && (it.state == stAwaitingPSR || it.queue == w.Queue)
	if existed {
		switch it.state {
		case stWaiting, stPinned, stParked, stAwaitingPSR, stNone:
			// An update of waiting work, or the new PSR a transfer asked for (CommandRequeue):
			// the work keeps its plan, age and decliners.
			e.unplace(it)
		case stActive, stWrapUp:
			if w.PSR == "" || w.PSR == it.psr {
				return // a late update of the PSR that was accepted
			}
			// A new PSR for an interaction: it was transferred in Salesforce (seed 004, a
			// transfer to a queue). It leaves its agent, who is kept out of the next offer,
			// and is routed again under its new queue.
			a := it.agent
			e.detach(it, ReasonTransferred)
			it.decliners = append(it.decliners[:0], a.id)
			it.plan, it.movedPlan, it.transferTo = nil, false, ""
			it.since = e.now
			e.workEnded(a, true)
		default:
			// An open offer: only its PSR id is updated. The same PSR arriving again after its
			// DELETE (at-least-once delivery replays the CREATE) does not bring it back.
			if w.PSR != "" && w.PSR != it.psr {
				if it.offerPSR == "" {
					it.offerPSR = it.psr
				}
				// A new PSR may also mean the offer was accepted and the work transferred in
				// Salesforce before the accept reached the engine: kept for the accept.
				next := *w
				next.Skills = slices.Clone(w.Skills)
				it.nextWork = &next
				it.psr = w.PSR
				it.psrGone = false
			}
			return
		}
	} else {
		it = e.newItem()
		it.id = w.ID
		it.since = e.now
		e.items[w.ID] = it
	}
	if !keepPlan {
		it.movedPlan = false
	}
	it.state = stNone
	it.psr, it.queue, it.channel = w.PSR, w.Queue, w.Channel
	if w.Session != "" || !existed {
		it.sessionID = w.Session
	}
	if !w.RequestedAt.IsZero() {
		it.since = w.RequestedAt.UnixNano()
	}
	it.psrHasPriority, it.psrPriority = w.HasPriority, int32(min(max(w.Priority, math.MinInt32), math.MaxInt32))
	it.psrWeight = psrWeight(w.Weight)
	// A PSR update that leaves the preferred user as it was keeps the work where it is: after a
	// fallback (timeout or decline) it stays open to every agent.
	if it.psrPreferred != w.PreferredUser || it.psrPreferredRequired != w.PreferredRequired {
		it.psrPreferred, it.psrPreferredRequired = w.PreferredUser, w.PreferredRequired
		it.preferred, it.preferredRequired = w.PreferredUser, w.PreferredRequired
		it.preferredUntil = never
		it.retryAt = 0
	}
	it.psrHasDropAfter, it.psrDropAfter = w.HasDropAdditional, int64(w.DropAdditionalAfter)
	e.setWorkSkills(it, w.Skills)
	if !e.resolveItem(it, false) {
		return
	}
	if existed {
		// transition, not place: changed work whose overflow wait or preferred-user timeout
		// passed while it was parked or waiting moves on now, not at the next call.
		e.transition(it)
		return
	}
	e.place(it)
}

// maxWeight bounds a PSR's CapacityWeight: larger (bad input) fits no agent, and capacity sums
// stay far from overflowing.
const maxWeight = 1 << 20

// psrWeight is the PSR's CapacityWeight as the engine counts it (0: the channel's weight).
func psrWeight(w int) int32 {
	return int32(min(max(w, 0), maxWeight))
}

// resolveItem binds waiting work to its channel and plan under the current table. It returns
// false when the work is parked. The plan is the one the work was moved to (overflow or
// transfer) while the table still has a plan of that name, else its queue's. onReload keeps
// work whose queue lost its plan under that plan.
func (e *Engine) resolveItem(it *item, onReload bool) bool {
	it.table = e.plans
	def, ok := e.plans.channels[it.channel]
	if !ok {
		e.park(it, ReasonUnknownChannel)
		return false
	}
	it.chanID = e.chanIDs[it.channel]
	it.class = def.class
	// The PSR's CapacityWeight, else the channel's weight under this table (a reload may
	// change it for work that is still waiting).
	it.weight = it.psrWeight
	if it.weight <= 0 {
		it.weight = def.weight
	}
	var p *Plan
	if it.movedPlan && it.plan != nil {
		p = e.plans.byName[it.plan.name]
	}
	if p == nil {
		if p = e.plans.queues[it.queue]; p != nil {
			it.movedPlan = false
		}
	}
	reported := false
	if p == nil && onReload && it.plan != nil {
		// The queue lost its plan: the work stays under the plan it had (this table's plan of
		// that name when there is one), as if moved there, and this is reported once.
		if p = e.plans.byName[it.plan.name]; p == nil {
			p = it.plan
		}
		it.movedPlan, reported = true, true
		if it.reported != ReasonPlanRemoved {
			it.reported = ReasonPlanRemoved
			e.emit(Command{Type: CommandRerouted, WorkID: it.id, Plan: p.name, Reason: ReasonPlanRemoved})
		}
	}
	if p == nil {
		e.park(it, ReasonQueueUnmapped)
		return false
	}
	if it.plan == nil || it.plan.name != p.name {
		it.inPlanSince = e.now
		it.preferredUntil = never
	}
	it.plan = p
	if !reported {
		it.reported = ""
	}
	e.planTimes(it)
	return true
}

// park keeps work that cannot be routed under the current table. It forgets the work's plan
// (a reload that maps its queue routes it afresh) and reports it once per reason.
func (e *Engine) park(it *item, r Reason) {
	it.state = stParked
	it.plan, it.movedPlan = nil, false
	if it.reported != r {
		it.reported = r
		e.emit(Command{Type: CommandUnroutable, WorkID: it.id, Reason: r})
	}
}

// planTimes recomputes priority and the additional-skill drop time from the plan and the PSR.
func (e *Engine) planTimes(it *item) {
	p := it.plan
	it.priority = p.priority
	if it.psrHasPriority {
		it.priority = it.psrPriority
	}
	it.dropAt = never
	if len(p.additional) > 0 || len(it.psrAdditional) > 0 {
		switch {
		case it.psrHasDropAfter:
			it.dropAt = it.since + it.psrDropAfter
		case p.dropAfter > 0:
			it.dropAt = it.since + p.dropAfter
		}
	}
	if it.preferred != "" && !it.preferredRequired && it.preferredUntil == never {
		it.preferredUntil = e.now + p.preferredTimeout
	}
}

// unplace takes waiting work out of its heap and timer.
func (e *Engine) unplace(it *item) {
	switch it.state {
	case stWaiting:
		it.bucket.items.remove(it)
		it.bucket = nil
	case stPinned:
		if it.pinnedTo != nil {
			it.pinnedTo.pinned.remove(it)
			it.pinnedTo = nil
		} else {
			e.unpinUnknown(it)
		}
	}
	e.timers.remove(it)
	it.state = stNone
}

// unpinUnknown takes work out of the list of work waiting for a preferred user the engine does
// not know (yet).
func (e *Engine) unpinUnknown(it *item) {
	ws := e.unknownPreferred[it.preferred]
	if i := slices.Index(ws, it); i >= 0 {
		ws = slices.Delete(ws, i, i+1)
	}
	if len(ws) == 0 {
		delete(e.unknownPreferred, it.preferred)
		return
	}
	e.unknownPreferred[it.preferred] = ws
}

// requirements computes the stage and drop flag at now.
func (e *Engine) requirements(it *item) (int, bool) {
	wait := e.now - it.since
	st := 0
	for i, s := range it.plan.stages {
		if s.after <= wait {
			st = i
		}
	}
	return st, e.now >= it.dropAt
}

// place puts unplaced work where it waits, or offers it at once.
func (e *Engine) place(it *item) {
	it.stage, it.dropped = e.requirements(it)
	if it.preferred != "" && (it.preferredRequired || e.now < it.preferredUntil) {
		// A preferred user the engine does not know is not made up as an agent: the work
		// waits for them to appear (or for the preferred timeout).
		pa := e.agents[it.preferred]
		if pa != nil && !e.reconciling && e.now >= it.retryAt && direct(pa, it, it.preferredRequired) {
			e.offer(it, pa)
			return
		}
		it.state = stPinned
		it.pinnedTo = pa
		if pa != nil {
			pa.pinned.push(it)
		} else {
			e.unknownPreferred[it.preferred] = append(e.unknownPreferred[it.preferred], it)
		}
		e.schedule(it)
		return
	}
	b := e.bucketFor(it)
	it.bucket = b
	it.state = stWaiting
	b.items.push(it)
	e.schedule(it)
	if e.reconciling {
		return
	}
	if a := e.bestAgent(b, it); a != nil {
		e.offer(it, a)
	}
}

// schedule sets the next requirement, overflow or preferred-fallback deadline of waiting work.
func (e *Engine) schedule(it *item) {
	next := int64(never)
	p := it.plan
	if it.stage+1 < len(p.stages) {
		next = min(next, it.since+p.stages[it.stage+1].after)
	}
	if !it.dropped {
		next = min(next, it.dropAt)
	}
	if p.overflowTo != nil {
		next = min(next, it.inPlanSince+p.overflowAfter)
	}
	if it.state == stPinned && !it.preferredRequired {
		next = min(next, it.preferredUntil)
	}
	if it.state == stPinned && it.retryAt > e.now {
		next = min(next, it.retryAt)
	}
	if next == never {
		e.timers.remove(it)
		return
	}
	e.timers.set(it, max(next, e.now))
}

// transition applies a waiting item's due timers: overflow, preferred fallback, relaxation,
// additional-skill drop.
func (e *Engine) transition(it *item) {
	stage, dropped := it.stage, it.dropped
	e.unplace(it)
	if p := it.plan; p.overflowTo != nil && e.now >= it.inPlanSince+p.overflowAfter {
		it.plan, it.movedPlan = p.overflowTo, true
		it.inPlanSince = e.now
		e.planTimes(it)
		stage, dropped = 0, false
		e.emit(Command{Type: CommandRerouted, WorkID: it.id, Plan: it.plan.name, Reason: ReasonOverflow})
	}
	if it.preferred != "" && !it.preferredRequired && e.now >= it.preferredUntil {
		it.preferred = ""
		e.emit(Command{Type: CommandRerouted, WorkID: it.id, Plan: it.plan.name, Reason: ReasonPreferredTimeout})
	}
	ns, nd := e.requirements(it)
	if ns > stage {
		e.emit(Command{Type: CommandRerouted, WorkID: it.id, Plan: it.plan.name, Reason: ReasonRelaxed})
	}
	if nd && !dropped {
		e.emit(Command{Type: CommandRerouted, WorkID: it.id, Plan: it.plan.name, Reason: ReasonAdditionalDropped})
	}
	e.place(it)
}

// offer offers it to a (reason transfer when a is the agent it was transferred to).
func (e *Engine) offer(it *item, a *agent) {
	var why Reason
	if it.transferTo != "" && it.transferTo == a.id {
		why = ReasonTransfer
	}
	it.transferTo = ""
	e.unplace(it)
	it.state = stOffered
	it.nextWork, it.offerPSR = nil, "" // a new offer: no PSR seen during an earlier one counts
	it.agent = a
	clear(it.decliners)
	it.decliners = it.decliners[:0]
	a.addUse(it)
	a.nOffered++
	a.idleSince = e.now
	p := it.plan
	e.emit(Command{
		Type: CommandOffer, WorkID: it.id, PSR: it.psr, AgentID: a.id, Channel: it.channel,
		Weight: int(it.weight), AutoAccept: p.autoAccept, Plan: p.name, Reason: why,
	})
	switch {
	case p.autoAccept:
		it.autoPending = true
		e.accept(it)
	case p.offerTimeout > 0:
		e.timers.set(it, e.now+p.offerTimeout)
	}
	e.refresh(a)
}

func (e *Engine) accept(it *item) {
	a := it.agent
	e.timers.remove(it)
	it.state = stActive
	it.psrGone = false
	it.decliners = it.decliners[:0]
	a.nOffered--
	a.nActive++
	sid, explicit := it.sessionID, it.sessionID != ""
	if !explicit {
		sid = it.id
	}
	// A session of that name held by another agent (the contact was transferred, and its
	// first agent still works on it or owes its disposition) is not joined: this one is
	// named after the agent too, so that no two live sessions share an id.
	s := e.sessions[sid]
	if s != nil && s.agent != a {
		sid += "@" + a.id
		s = e.sessions[sid]
	}
	if s == nil {
		s = e.newSession(sid, a, explicit)
	}
	s.open++
	s.required = s.required || it.plan.disposition
	it.session = s
	e.syncState(a, false)
}

func (e *Engine) newSession(id string, a *agent, index bool) *session {
	var s *session
	if n := len(e.freeS); n > 0 {
		s = e.freeS[n-1]
		e.freeS[n-1] = nil
		e.freeS = e.freeS[:n-1]
	} else {
		s = &session{}
	}
	*s = session{id: id, agent: a}
	if index {
		e.index(s)
	}
	return s
}

func (e *Engine) index(s *session) {
	if !s.indexed {
		s.indexed = true
		e.sessions[s.id] = s
	}
}

func (e *Engine) endSession(s *session) {
	if s.indexed && e.sessions[s.id] == s {
		delete(e.sessions, s.id)
	}
	*s = session{}
	e.freeS = append(e.freeS, s)
}

// deletedPSRCap is how many deleted PSR ids the engine remembers (see Engine.deletedPSRs): far
// more than a replay after a reconnect brings back.
const deletedPSRCap = 4096

// psrDeleted remembers that Salesforce deleted psr.
func (e *Engine) psrDeleted(psr string) {
	if _, ok := e.deletedPSRs[psr]; ok || psr == "" {
		return
	}
	if len(e.deletedRing) < deletedPSRCap {
		e.deletedRing = append(e.deletedRing, psr)
	} else {
		delete(e.deletedPSRs, e.deletedRing[e.deletedRingPos])
		e.deletedRing[e.deletedRingPos] = psr
		e.deletedRingPos = (e.deletedRingPos + 1) % deletedPSRCap
	}
	e.deletedPSRs[psr] = struct{}{}
}

func (e *Engine) onWorkRemoved(id, psr string) {
	e.psrDeleted(psr)
	it := e.items[id]
	if it == nil {
		return
	}
	if psr != "" && psr != it.psr {
		// The delete of an earlier PSR of this work item (replayed, or late): the work lives
		// on under its current PSR.
		e.emit(Command{Type: CommandIgnored, WorkID: id, PSR: psr, Reason: ReasonPSRDeleted})
		return
	}
	e.psrDeleted(it.psr)
	switch it.state {
	case stWaiting, stPinned, stParked, stAwaitingPSR, stNone:
		e.forget(it)
	case stOffered:
		// Salesforce deletes the PSR on every accept, and the deletion may reach the engine
		// before the Opened AgentWork does. Freeing the capacity now would let it be given
		// twice; the offer stays open until its outcome (accepted, or declined/canceled) is
		// known, and the connector is asked to look the AgentWork up.
		if !it.psrGone {
			it.psrGone = true
			e.emit(Command{Type: CommandCheckOffer, WorkID: it.id, PSR: it.psr, AgentID: it.agent.id, Reason: ReasonPSRDeleted})
		}
	}
}

// forget drops work that is not with an agent.
func (e *Engine) forget(it *item) {
	e.unplace(it)
	delete(e.items, it.id)
	e.freeItem(it)
}

func (e *Engine) onAccepted(id, agentID string) {
	it := e.items[id]
	switch {
	case it != nil && it.state == stOffered && it.agent.id == agentID:
		next, offered := it.nextWork, it.offerPSR
		it.nextWork, it.offerPSR = nil, ""
		e.accept(it)
		if next != nil {
			// A new PSR came while the engine saw the offer open: the accepted work was then
			// transferred in Salesforce, as a new PSR for an interaction says (onWork).
			it.psr = offered
			e.onWork(next)
		}
	case it != nil && it.state == stActive && it.agent.id == agentID:
		// An auto-accepted offer: the Opened AgentWork confirms what the engine assumed.
		it.autoPending = false
	default:
		e.emit(Command{Type: CommandIgnored, WorkID: id, AgentID: agentID, Reason: ReasonStaleOutcome})
	}
}

// onDeclined ends an offer without an accept: declined, push timeout, unavailable, or the
// AgentWork insert refused (the last also for auto-accepted work not yet confirmed Opened).
func (e *Engine) onDeclined(id, agentID string, o Outcome) {
	it := e.items[id]
	if it == nil || it.agent == nil || it.agent.id != agentID ||
		(it.state != stOffered && (it.state != stActive || !it.autoPending || o != OutcomeInsertFailed)) {
		e.emit(Command{Type: CommandIgnored, WorkID: id, AgentID: agentID, Reason: ReasonStaleOutcome})
		return
	}
	a := it.agent
	e.timers.remove(it)
	a.subUse(it)
	if it.state == stActive {
		// Auto-accepted work whose AgentWork never opened: undo the interaction.
		a.nActive--
		it.autoPending = false
		if s := it.session; s != nil {
			it.session = nil
			if s.open--; s.open == 0 {
				e.endSession(s)
			} else {
				e.index(s) // its id stays taken (see accept)
			}
		}
	} else {
		a.nOffered--
	}
	if o != OutcomeDeclined {
		// The offer could not reach the agent (push timeout, unavailable, insert refused):
		// they get nothing more until their presence or state says otherwise.
		a.undeliverable = true
		e.emit(Command{Type: CommandNotify, WorkID: it.id, AgentID: a.id, Reason: ReasonUndeliverable})
	}
	if it.psrGone {
		// Declined or canceled after its PSR was deleted: nothing is left to route.
		e.emit(Command{Type: CommandNotify, WorkID: it.id, AgentID: a.id, Reason: ReasonWorkWithdrawn})
		delete(e.items, id)
		e.freeItem(it)
		e.workEnded(a, false)
		return
	}
	it.agent = nil
	it.state = stNone
	it.decliners = append(it.decliners, a.id)
	switch {
	case it.preferred == a.id && !it.preferredRequired:
		// A preferred user who declines is not waited for any longer.
		it.preferred = ""
		e.emit(Command{Type: CommandRerouted, WorkID: it.id, Plan: it.plan.name, Reason: ReasonPreferredDeclined})
	case it.preferred == a.id:
		// A required preferred user is the only one who may take it: offered again after the
		// plan's preferred timeout, not at once in a loop.
		it.retryAt = e.now + it.plan.preferredTimeout
	}
	e.refresh(a)
	if it.table != e.plans && !e.resolveItem(it, true) {
		// The offer was made under an older table: the work waits under the current one.
		e.workEnded(a, false)
		return
	}
	// The overflow wait and the preferred-user timeout kept running during the offer: if they
	// passed, the work moves on now instead of waiting one more call in its old plan.
	e.transition(it)
	e.workEnded(a, false)
}

func (e *Engine) onWorkClosed(id, agentID string) {
	it := e.items[id]
	mine := it != nil && it.agent != nil && it.agent.id == agentID
	switch {
	case mine && it.state == stActive:
		e.release(it)
	case mine && it.state == stWrapUp:
	default:
		e.emit(Command{Type: CommandIgnored, WorkID: id, AgentID: agentID, Reason: ReasonStaleOutcome})
	}
}

// onTransferred: the AgentWork of agentID's interaction went Transferred in Salesforce. The
// interaction leaves the agent; the engine forgets it (a transfer to a queue or skill brings a
// new PSR, which is new work; one to a user is that user's Busy Inbound work).
func (e *Engine) onTransferred(id, agentID string) {
	it := e.items[id]
	if it == nil || it.agent == nil || it.agent.id != agentID || (it.state != stActive && it.state != stWrapUp) {
		e.emit(Command{Type: CommandIgnored, WorkID: id, AgentID: agentID, Reason: ReasonStaleOutcome})
		return
	}
	e.finish(it, ReasonTransferred)
}

// release starts wrap-up; the interaction keeps its capacity until wrap-up ends.
func (e *Engine) release(it *item) {
	a := it.agent
	it.state = stWrapUp
	it.held = false
	a.nActive--
	a.nWrap++
	if it.plan.wrapUpTimeout > 0 {
		e.emit(Command{Type: CommandWrapUp, WorkID: it.id, AgentID: a.id, Session: it.session.id,
			Deadline: time.Unix(0, e.now+it.plan.wrapUpTimeout).UTC()})
		e.timers.set(it, e.now+it.plan.wrapUpTimeout)
		e.syncState(a, false)
		return
	}
	e.emit(Command{Type: CommandWrapUp, WorkID: it.id, AgentID: a.id, Session: it.session.id})
	e.finish(it, ReasonReleased)
}

// detach ends an interaction for its agent: capacity freed, session counted down.
func (e *Engine) detach(it *item, r Reason) {
	a := it.agent
	e.timers.remove(it)
	a.subUse(it)
	switch it.state {
	case stActive:
		a.nActive--
	case stWrapUp:
		a.nWrap--
	}
	a.idleSince = e.now
	s := it.session
	e.emit(Command{Type: CommandEnded, WorkID: it.id, AgentID: a.id, Session: s.id, Reason: r})
	s.open--
	if s.open > 0 {
		// The session outlives this interaction (an elevated call, a transfer): index it, so
		// that its id stays taken when this work id comes back (see accept).
		e.index(s)
	}
	if s.open == 0 {
		if s.required && s.disposition == "" {
			e.emit(Command{Type: CommandNotify, AgentID: a.id, Session: s.id, Reason: ReasonDispositionRequired})
			e.index(s)
		} else {
			e.emit(Command{Type: CommandSessionEnded, AgentID: a.id, Session: s.id, Disposition: s.disposition})
			e.endSession(s)
		}
	}
	it.agent, it.session, it.held = nil, nil, false
	it.state = stNone
}

// finish ends an interaction and forgets it.
func (e *Engine) finish(it *item, r Reason) {
	a := it.agent
	e.detach(it, r)
	delete(e.items, it.id)
	e.freeItem(it)
	e.workEnded(a, true)
}

// workEnded follows a drop in an agent's work: the post-call state once an interaction ended
// and nothing is left (Busy Inbound work included), then eligibility and new offers.
func (e *Engine) workEnded(a *agent, interaction bool) {
	if interaction {
		a.postCallDue = true
	}
	if !a.working() && a.inbound == 0 {
		if a.postCallDue && !a.intended {
			a.chosen = e.plans.postCall
		}
		a.intended, a.postCallDue = false, false
	}
	e.syncState(a, false)
	e.refresh(a)
	e.fill(a)
}
