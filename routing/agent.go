package routing

import (
	"slices"

	"github.com/omniroute/omniroute/mapping"
)

// Agents: capacity, eligibility, state derivation and presence, and the agent events.

func (e *Engine) agentFor(id string) *agent {
	if a, ok := e.agents[id]; ok {
		return a
	}
	a := &agent{
		id:     id,
		chosen: mapping.State{Major: mapping.LoggedOut},
		shown:  mapping.State{Major: mapping.LoggedOut},
	}
	e.agents[id] = a
	e.agentList = append(e.agentList, a)
	e.resolveAgent(a)
	for _, b := range e.bucketList {
		e.join(a, b)
	}
	// Work that named this agent as its preferred user before the engine knew them.
	for _, it := range e.unknownPreferred[id] {
		it.pinnedTo = a
		a.pinned.push(it)
	}
	delete(e.unknownPreferred, id)
	return a
}

// resolveAgent re-reads the agent's capacity profile and open channels from the table.
func (e *Engine) resolveAgent(a *agent) {
	n := len(e.chanNames)
	if len(a.channels) < n {
		a.channels = append(a.channels, make([]agentChan, n-len(a.channels))...)
	}
	a.profile = e.plans.profileFor(a.id, a.groups)
	a.capTotal = 0
	a.capClass = [4]int32{-1, -1, -1, -1}
	for i := range a.channels {
		a.channels[i].cap = -1
		a.channels[i].online = false
	}
	if p := a.profile; p != nil {
		a.capTotal = p.total
		a.capClass = p.class
		for name, c := range p.channels {
			if id, ok := e.chanIDs[name]; ok {
				a.channels[id].cap = c
			}
		}
	}
	for _, name := range a.openChannels {
		if id, ok := e.chanIDs[name]; ok {
			a.channels[id].online = true
		}
	}
}

func routable(a *agent) bool {
	return a.chosen.Major == mapping.Ready && a.inbound == 0 && a.capTotal > 0 && !a.undeliverable
}

func (a *agent) hasCap(class mapping.Class, ch, w int32) bool {
	// In int64: the sums cannot overflow whatever the agent was given (a snapshot may exceed
	// the caps).
	if int64(a.usedTotal)+int64(w) > int64(a.capTotal) {
		return false
	}
	if c := a.capClass[class]; c >= 0 && int64(a.usedClass[class])+int64(w) > int64(c) {
		return false
	}
	if c := a.channels[ch].cap; c >= 0 && int64(a.channels[ch].used)+int64(w) > int64(c) {
		return false
	}
	return true
}

func (a *agent) addUse(it *item) {
	a.usedTotal += it.weight
	a.usedClass[it.class] += it.weight
	a.channels[it.chanID].used += it.weight
}

func (a *agent) subUse(it *item) {
	a.usedTotal -= it.weight
	a.usedClass[it.class] -= it.weight
	a.channels[it.chanID].used -= it.weight
}

func (a *agent) working() bool { return a.nOffered+a.nActive+a.nWrap > 0 }

func (e *Engine) refresh(a *agent) {
	for _, m := range a.memberships {
		e.refreshMem(m)
	}
}

func (e *Engine) refreshMem(m *membership) {
	a, k := m.a, m.b.key
	ok := routable(a) && a.channels[k.chanID].online && a.hasCap(k.class, k.chanID, k.weight)
	switch {
	case ok && m.pos < 0:
		m.b.agents.push(m)
	case ok:
		m.markOut(false)
		m.b.agents.update(m)
	case m.pos >= 0:
		m.markOut(true) // dropped when it reaches the top (see agentHeap)
	}
}

func declined(it *item, id string) bool {
	for _, d := range it.decliners {
		if d == id {
			return true
		}
	}
	return false
}

// direct reports whether a can take it without the skill check (preferred user, transfer).
func direct(a *agent, it *item, ignoreDecliners bool) bool {
	return routable(a) && a.channels[it.chanID].online && a.hasCap(it.class, it.chanID, it.weight) &&
		(ignoreDecliners || !declined(it, a.id))
}

// fill offers waiting work to a while a is eligible for some.
func (e *Engine) fill(a *agent) {
	if e.reconciling {
		return // every agent is filled once the snapshot is applied
	}
	for routable(a) {
		var best *item
		for _, en := range a.pinned {
			if it := en.it; e.now >= it.retryAt && direct(a, it, it.preferredRequired) && (best == nil || itemLess(it, best)) {
				best = it
			}
		}
		for _, m := range a.memberships {
			if !m.eligible() {
				continue
			}
			if it := e.topFor(m.b, a); it != nil && (best == nil || itemLess(it, best)) {
				best = it
			}
		}
		if best == nil {
			return
		}
		e.offer(best, a)
	}
}

// topFor returns the best work in b that a did not decline.
func (e *Engine) topFor(b *bucket, a *agent) *item {
	top := b.items.top()
	if top == nil || len(top.decliners) == 0 || !declined(top, a.id) {
		return top
	}
	s, ok := firstKept((*heap[itemSlot])(&b.items), &e.scratchI, func(s itemSlot) bool { return !declined(s.it, a.id) })
	if !ok {
		return nil
	}
	return s.it
}

// bestAgent returns the best agent available in b that did not decline it.
func (e *Engine) bestAgent(b *bucket, it *item) *agent {
	top := b.topAgent()
	if top == nil {
		return nil
	}
	if len(it.decliners) == 0 || !declined(it, top.a.id) {
		return top.a
	}
	m := b.firstKept(&e.scratchM, func(m *membership) bool { return !declined(it, m.a.id) })
	if m == nil {
		return nil
	}
	return m.a
}

// syncState derives the agent's shown state and reports a change. fromPresence suppresses the
// presence push (the change came from Omni-Channel). The engine owns these presence rules of
// seed 003 (the tables themselves are mapping.Presence's):
//
//	change of the shown state          Presence on CommandSetState
//	came from Omni-Channel             "" (never pushed back: two-way sync cannot loop)
//	stateChangesUpdatePresence off     ""
//	-> LoggedOut (logout)              Offline when logoutSetsOffline, else ""
//	LoggedOut -> any (login)           the status mapped to the new state when loginSetsOnline, else ""
//	Busy/WrapUp -> idle (work ended)   mapping.Presence.PostWorkStatus: revert to the status before
//	                                   the work, or the mapped status (its post-call exception)
//	any other                          mapping.Presence.StatusForState (minor -> major fallback)
func (e *Engine) syncState(a *agent, fromPresence bool) {
	if e.reconciling {
		return // reported once the whole snapshot is applied
	}
	var d mapping.State
	switch {
	case a.inbound > 0:
		d = mapping.State{Major: mapping.Busy, Minor: "Inbound"}
	case a.nActive > 0:
		d = mapping.State{Major: mapping.Busy}
	case a.nWrap > 0:
		d = mapping.State{Major: mapping.WrapUp}
	default:
		d = a.chosen
	}
	if d == a.shown {
		return
	}
	prev := a.shown
	a.shown = d
	prevIdle := !working(prev)
	if prevIdle && working(d) {
		a.presenceBefore = a.presence
	}
	presence := ""
	ev := e.plans.events
	if !fromPresence && ev.StateChangesUpdatePresence {
		switch {
		case d.Major == mapping.LoggedOut:
			if ev.LogoutSetsOffline {
				presence = mapping.OfflineStatus
			}
		case prev.Major == mapping.LoggedOut:
			if ev.LoginSetsOnline {
				presence = e.plans.statusForState(d)
			}
		case !prevIdle && !working(d):
			presence = e.plans.presence.PostWorkStatus(d, a.presenceBefore)
		default:
			presence = e.plans.statusForState(d)
		}
	}
	if !working(d) {
		a.presenceBefore = ""
	}
	e.emit(Command{Type: CommandSetState, AgentID: a.id, State: d, Presence: presence})
}

// working reports whether a shown state is the engine's own: Busy (Busy/Inbound included) or
// WrapUp.
func working(s mapping.State) bool { return s.Major == mapping.Busy || s.Major == mapping.WrapUp }

func (e *Engine) onSkills(id string, skills []Skill, groups []string) {
	a := e.agentFor(id)
	a.groups = slices.Clone(groups)
	a.rawSkills = slices.Clone(skills)
	a.skills = a.skills[:0]
	for _, s := range skills {
		sid := e.skillID(s.Name)
		lv := level(s.Level)
		i, found := slices.BinarySearchFunc(a.skills, sid, func(r reqI, t int32) int { return int(r.skill - t) })
		if found {
			a.skills[i].level = max(a.skills[i].level, lv)
			continue
		}
		a.skills = slices.Insert(a.skills, i, reqI{skill: sid, level: lv})
	}
	for _, m := range a.memberships {
		if m.pos >= 0 {
			m.b.agents.remove(m)
		}
	}
	clear(a.memberships)
	a.memberships = a.memberships[:0]
	e.resolveAgent(a)
	for _, b := range e.bucketList {
		e.join(a, b)
	}
	e.refresh(a)
	e.fill(a)
}

func choosable(s mapping.State) bool {
	switch s.Major {
	case mapping.Ready, mapping.ReadyOutbound, mapping.Away, mapping.ExtendedAway, mapping.LoggedOut:
		return true
	}
	return false
}

func (e *Engine) onState(id string, st mapping.State) {
	if !choosable(st) {
		e.emit(Command{Type: CommandIgnored, AgentID: id, State: st, Reason: ReasonStateNotChoosable})
		return
	}
	a := e.agentFor(id)
	a.undeliverable = false
	e.choose(a, st, false)
}

func (e *Engine) choose(a *agent, st mapping.State, fromPresence bool) {
	if a.working() || a.inbound > 0 {
		a.intended = true
	} else if a.chosen.Major != mapping.Ready && st.Major == mapping.Ready {
		a.idleSince = e.now
	}
	a.chosen = st
	e.syncState(a, fromPresence)
	e.refresh(a)
	e.fill(a)
}

// onPresence applies an Omni-Channel status. The engine owns these rules of seed 003:
//
//	echo (the connector recognised omniroute's own push,   presence and channels only
//	  or a change older than a push on its way)
//	presenceChangesUpdateState off                          presence and channels only
//	Offline, offlineLogsOut off                             presence and channels only
//	a status whose state the agent already has (shown or    presence and channels only
//	  chosen): nothing changes
//	any other status                                        the state mapping.Presence.StateForStatus
//	                                                        gives (Offline: LoggedOut; unlisted:
//	                                                        Ready) is chosen, as the intended state
//	                                                        after the work while the agent works
//
// A status the agent picks while working is also the status to revert to after the work: their
// own latest choice wins over the one they had when the work began.
func (e *Engine) onPresence(id, status string, channels []string, echo bool) {
	a := e.agentFor(id)
	a.undeliverable = false
	a.presence = status
	a.openChannels = a.openChannels[:0]
	if status != "" && status != mapping.OfflineStatus {
		a.openChannels = append(a.openChannels, channels...)
	}
	e.resolveAgent(a)
	ev := e.plans.events
	if ev.PresenceChangesUpdateState && !echo {
		if working(a.shown) && status != "" && status != mapping.OfflineStatus {
			a.presenceBefore = status
		}
		st := e.plans.stateForStatus(status)
		switch {
		case st.Major == mapping.LoggedOut && !ev.OfflineLogsOut:
		case st == a.shown || st == a.chosen: // no change
		case !choosable(st):
		default:
			e.choose(a, st, true)
			return
		}
	}
	e.refresh(a)
	e.fill(a)
}

func (e *Engine) onExternal(agentID, workID string) {
	if _, dup := e.external[workID]; dup {
		return
	}
	a := e.agentFor(agentID)
	e.external[workID] = a
	a.inbound++
	e.syncState(a, false)
	e.refresh(a)
}

func (e *Engine) onExternalClosed(workID string) {
	a := e.external[workID]
	if a == nil {
		e.emit(Command{Type: CommandIgnored, WorkID: workID, Reason: ReasonUnknownWork})
		return
	}
	delete(e.external, workID)
	a.inbound--
	if a.inbound == 0 {
		a.idleSince = e.now // idle restarts, as after an interaction of ours
	}
	e.workEnded(a, false)
}
