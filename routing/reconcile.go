package routing

import (
	"maps"
	"slices"

	"github.com/omniroute/omniroute/mapping"
)

// onReconcile makes the engine's work, offers, interactions, Busy Inbound work and presence
// match a Salesforce snapshot (see Snapshot). Nothing is offered until all of it is applied.
func (e *Engine) onReconcile(s *Snapshot) {
	if s == nil {
		e.emit(Command{Type: CommandIgnored, Reason: ReasonUnknownWork})
		return
	}
	e.reconciling = true
	// Presence first: it decides who is routable once the work is in place.
	seen := map[string]bool{}
	for _, p := range s.Presence {
		if p.AgentID == "" {
			continue // no agent to apply it to (see Apply)
		}
		seen[p.AgentID] = true
		e.onPresence(p.AgentID, p.Presence, p.Channels, false)
	}
	for _, a := range e.sortedAgents() {
		if !seen[a.id] && a.presence != "" && a.presence != mapping.OfflineStatus {
			seen[a.id] = true
			e.onPresence(a.id, mapping.OfflineStatus, nil, false)
		}
	}
	// Busy Inbound work: replaced by the snapshot's.
	ext := map[string]string{}
	for _, x := range s.External {
		ext[x.Work.ID] = x.AgentID
	}
	for _, id := range slices.Sorted(maps.Keys(e.external)) {
		if a, ok := ext[id]; !ok || a != e.external[id].id {
			e.onExternalClosed(id)
		}
	}
	for _, x := range s.External {
		if x.AgentID != "" && x.Work.ID != "" {
			e.onExternal(x.AgentID, x.Work.ID)
		}
	}
	// The engine's work that Salesforce no longer has leaves.
	has := map[string]bool{}
	for _, w := range s.Waiting {
		has[w.ID] = true
	}
	for _, as := range [][]Assignment{s.Offers, s.Interactions} {
		for _, x := range as {
			has[x.Work.ID] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(e.items)) {
		it := e.items[id]
		if it == nil || has[id] {
			continue
		}
		switch it.state {
		case stOffered:
			e.withdrawOffer(it)
			e.forget(it)
		case stActive:
			e.finish(it, ReasonReconciled)
		case stWrapUp:
		default:
			e.forget(it)
		}
	}
	// Interactions and offers as Salesforce has them.
	for _, x := range s.Interactions {
		it := e.assign(x)
		if it != nil && it.state == stOffered {
			e.accept(it)
		}
	}
	for _, x := range s.Offers {
		e.assign(x)
	}
	// Waiting work: an offer or interaction the engine holds for it ended in Salesforce.
	for i := range s.Waiting {
		w := &s.Waiting[i]
		if _, gone := e.deletedPSRs[w.PSR]; gone && w.PSR != "" {
			// The snapshot is older than the PSR's delete (SOQL ran while the stream went on):
			// the work stays as the engine has it.
			e.emit(Command{Type: CommandIgnored, WorkID: w.ID, PSR: w.PSR, Reason: ReasonPSRDeleted})
			continue
		}
		if it := e.items[w.ID]; it != nil {
			switch it.state {
			case stOffered:
				e.withdrawOffer(it)
			case stActive, stWrapUp:
				if w.PSR == it.psr {
					a := it.agent
					e.detach(it, ReasonReconciled)
					e.workEnded(a, true)
				}
			}
		}
		e.onWork(w)
	}
	e.reconciling = false
	for _, a := range e.sortedAgents() {
		// A state that follows from the snapshot's presence is not pushed back to it.
		e.syncState(a, seen[a.id] && a.nActive+a.nWrap == 0 && a.inbound == 0)
		e.refresh(a)
		e.fill(a)
	}
}

// assign makes x's work held by x's agent (offered, unless it already is an interaction of
// theirs), whatever the engine had: Salesforce already decided. It returns the work, or nil
// when it cannot be placed (unknown channel).
func (e *Engine) assign(x Assignment) *item {
	if x.AgentID == "" || x.Work.ID == "" {
		return nil
	}
	a := e.agentFor(x.AgentID)
	it := e.items[x.Work.ID]
	if it != nil && it.agent == a && (it.state == stOffered || it.state == stActive || it.state == stWrapUp) {
		return it
	}
	if it != nil {
		switch it.state {
		case stOffered:
			e.withdrawOffer(it)
		case stActive, stWrapUp:
			prev := it.agent
			e.detach(it, ReasonReconciled)
			e.workEnded(prev, true)
		default:
			e.unplace(it)
		}
	} else {
		it = e.newItem()
		it.id = x.Work.ID
		it.since = e.now
		e.items[it.id] = it
	}
	w := &x.Work
	it.psr, it.queue, it.channel = w.PSR, w.Queue, w.Channel
	if !w.RequestedAt.IsZero() {
		it.since = w.RequestedAt.UnixNano()
	}
	it.psrWeight = psrWeight(w.Weight)
	it.sessionID = w.Session
	e.setWorkSkills(it, w.Skills)
	it.state = stNone
	if !e.resolveItem(it, true) {
		return nil // parked: it waits for a table that knows its channel and queue
	}
	it.state = stOffered
	it.nextWork, it.offerPSR = nil, ""
	it.agent = a
	it.decliners = it.decliners[:0]
	a.addUse(it)
	a.nOffered++
	if it.plan.offerTimeout > 0 {
		e.timers.set(it, e.now+it.plan.offerTimeout)
	}
	return it
}

// withdrawOffer ends an open offer without an outcome: capacity freed, the work unplaced.
func (e *Engine) withdrawOffer(it *item) {
	a := it.agent
	e.timers.remove(it)
	a.subUse(it)
	a.nOffered--
	it.agent = nil
	it.state = stNone
	it.psrGone = false
	e.workEnded(a, false)
}
