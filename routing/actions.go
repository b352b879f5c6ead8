package routing

import "github.com/omniroute/omniroute/mapping"

// allowed is the class × action table of seeds 000/001 (plus elevation, seed 002, for the
// classes that are not already voice). Indexed by mapping.Class and ActionKind.
var allowed = [4][ActionDisposition + 1]bool{
	mapping.Live: {
		ActionRelease: true, ActionHold: true, ActionRetrieve: true, ActionConsult: true,
		ActionTransfer: true, ActionEndWrapUp: true, ActionDisposition: true,
	},
	mapping.SemiLive: {
		ActionRelease: true, ActionConsult: true, ActionAbandon: true, ActionElevate: true,
		ActionEndWrapUp: true, ActionDisposition: true,
	},
	mapping.NonLive: {
		ActionRelease: true, ActionConsult: true, ActionTransfer: true, ActionAbandon: true,
		ActionElevate: true, ActionEndWrapUp: true, ActionDisposition: true,
	},
}

// Allowed reports whether the action is allowed on an interaction of class c.
func Allowed(c mapping.Class, k ActionKind) bool {
	if c < mapping.Live || c > mapping.NonLive || k < ActionRelease || k > ActionDisposition {
		return false
	}
	return allowed[c][k]
}

func (e *Engine) refuse(agentID, workID string, k ActionKind, r Reason) {
	e.emit(Command{Type: CommandRefused, AgentID: agentID, WorkID: workID, Action: k, Reason: r})
}

func (e *Engine) onAction(agentID, workID string, act *Action) {
	k := act.Kind
	if k < ActionRelease || k > ActionDisposition {
		e.refuse(agentID, workID, k, ReasonUnknownAction)
		return
	}
	a := e.agents[agentID]
	if a == nil {
		e.refuse(agentID, workID, k, ReasonUnknownAgent)
		return
	}
	if k == ActionDisposition {
		e.disposition(a, workID, act.Disposition)
		return
	}
	it := e.items[workID]
	if it == nil {
		e.refuse(agentID, workID, k, ReasonUnknownWork)
		return
	}
	if it.agent != a || (it.state != stActive && it.state != stWrapUp) {
		e.refuse(agentID, workID, k, ReasonNotAssigned)
		return
	}
	if !allowed[it.class][k] {
		e.refuse(agentID, workID, k, ReasonNotAllowedForClass)
		return
	}
	switch k {
	case ActionAbandon:
		e.finish(it, ReasonAbandoned)
		return
	case ActionEndWrapUp:
		if it.state != stWrapUp {
			e.refuse(agentID, workID, k, ReasonWrongState)
			return
		}
		e.finish(it, ReasonReleased)
		return
	}
	if it.state != stActive {
		e.refuse(agentID, workID, k, ReasonWrongState)
		return
	}
	switch k {
	case ActionRelease:
		e.release(it)
	case ActionHold:
		if it.held {
			e.refuse(agentID, workID, k, ReasonAlreadyHeld)
			return
		}
		it.held = true
		e.emit(Command{Type: CommandHold, WorkID: it.id, AgentID: a.id, Session: it.session.id})
	case ActionRetrieve:
		if !it.held {
			e.refuse(agentID, workID, k, ReasonNotHeld)
			return
		}
		it.held = false
		e.emit(Command{Type: CommandRetrieve, WorkID: it.id, AgentID: a.id, Session: it.session.id})
	case ActionConsult:
		e.consult(a, it, act)
	case ActionTransfer:
		e.transfer(a, it, act)
	case ActionElevate:
		e.elevate(a, it, act)
	}
}

// consult reaches a third party; the original interaction is never released.
func (e *Engine) consult(a *agent, it *item, act *Action) {
	switch act.Target {
	case TargetAgent:
		t := e.agents[act.TargetID]
		if t == nil {
			e.refuse(a.id, it.id, act.Kind, ReasonUnknownTarget)
			return
		}
		if t == a {
			e.refuse(a.id, it.id, act.Kind, ReasonBadTarget)
			return
		}
		// The target must be able to take a conversation now: Ready (not Busy Inbound, not
		// held back after an undelivered offer) and present on the interaction's channel.
		if !routable(t) || !t.channels[it.chanID].online {
			e.refuse(a.id, it.id, act.Kind, ReasonTargetUnavailable)
			return
		}
	case TargetNumber:
		if act.TargetID == "" {
			e.refuse(a.id, it.id, act.Kind, ReasonBadTarget)
			return
		}
	default:
		e.refuse(a.id, it.id, act.Kind, ReasonBadTarget)
		return
	}
	e.emit(Command{Type: CommandConsult, WorkID: it.id, AgentID: a.id, Target: act.Target, TargetID: act.TargetID, Session: it.session.id})
}

// transfer moves the interaction to an agent, a plan or a queue.
//
// Salesforce deleted the work's PSR when it was accepted (an elevated call never had one), and
// an AgentWork needs a PSR. So a transfer to a plan or an agent asks the connector to move the
// work to a queue (CommandRequeue: the plan's first queue; for an agent, the work's own queue)
// so that Salesforce makes a new PSR, and keeps the work (stAwaitingPSR) until that PSR arrives:
// then it waits in the target plan, or is offered to the target agent (reason transfer; if
// they cannot take it within the plan's preferred timeout, anyone in the plan may).
func (e *Engine) transfer(a *agent, it *item, act *Action) {
	var p *Plan
	queue := it.queue
	switch act.Target {
	case TargetAgent:
		t := e.agents[act.TargetID]
		switch {
		case t == nil:
			e.refuse(a.id, it.id, act.Kind, ReasonUnknownTarget)
			return
		case t == a:
			e.refuse(a.id, it.id, act.Kind, ReasonBadTarget)
			return
		case !direct(t, it, true):
			e.refuse(a.id, it.id, act.Kind, ReasonTargetUnavailable)
			return
		}
		p = e.plans.byName[it.plan.name]
		if p == nil {
			p = it.plan
		}
	case TargetPlan:
		p = e.plans.byName[act.TargetID]
		if p == nil {
			e.refuse(a.id, it.id, act.Kind, ReasonUnknownTarget)
			return
		}
		if len(p.queueNames) > 0 {
			queue = p.queueNames[0]
		}
	case TargetQueue:
		if act.TargetID == "" {
			e.refuse(a.id, it.id, act.Kind, ReasonBadTarget)
			return
		}
		e.emit(Command{Type: CommandTransfer, WorkID: it.id, AgentID: a.id, Target: TargetQueue, TargetID: act.TargetID})
		e.emit(Command{Type: CommandRequeue, WorkID: it.id, Channel: it.channel, Target: TargetQueue, TargetID: act.TargetID})
		e.finish(it, ReasonTransferred)
		return
	default:
		e.refuse(a.id, it.id, act.Kind, ReasonBadTarget)
		return
	}
	e.emit(Command{Type: CommandTransfer, WorkID: it.id, AgentID: a.id, Target: act.Target, TargetID: act.TargetID})
	e.emit(Command{Type: CommandRequeue, WorkID: it.id, Channel: it.channel, Plan: p.name, Target: TargetQueue, TargetID: queue})
	e.detach(it, ReasonTransferred)
	it.state = stAwaitingPSR
	if it.plan.name != p.name {
		it.inPlanSince = e.now
	}
	it.plan, it.movedPlan = p, true
	it.psr, it.psrGone, it.sessionID = "", false, ""
	it.preferred, it.preferredRequired, it.preferredUntil, it.retryAt = "", false, never, 0
	it.psrPreferred, it.psrPreferredRequired = "", false
	it.transferTo = ""
	if act.Target == TargetAgent {
		it.preferred, it.transferTo = act.TargetID, act.TargetID
	}
	// The transferring agent is kept out of the next offer, like a decliner.
	it.decliners = append(it.decliners[:0], a.id)
	e.workEnded(a, true)
}

// elevate adds a live (voice) interaction to the session of it (seed 002). ElevateCurrent ends
// it in favour of the voice call; ElevateNewContact keeps it. Either needs live capacity.
func (e *Engine) elevate(a *agent, it *item, act *Action) {
	chName := act.Channel
	if chName == "" {
		if len(e.plans.liveChannels) == 0 {
			e.refuse(a.id, it.id, act.Kind, ReasonNoLiveChannel)
			return
		}
		chName = e.plans.liveChannels[0]
	}
	def, ok := e.plans.channels[chName]
	if !ok || def.class != mapping.Live {
		e.refuse(a.id, it.id, act.Kind, ReasonNoLiveChannel)
		return
	}
	id := act.NewWorkID
	if id == "" {
		id = it.id + "/voice"
	}
	if _, dup := e.items[id]; dup {
		e.refuse(a.id, it.id, act.Kind, ReasonDuplicateWork)
		return
	}
	ch := e.chanIDs[chName]
	if act.Mode == ElevateCurrent {
		a.subUse(it)
	}
	ok = a.hasCap(mapping.Live, ch, def.weight)
	if act.Mode == ElevateCurrent {
		a.addUse(it)
	}
	if !ok {
		e.refuse(a.id, it.id, act.Kind, ReasonNoCapacity)
		return
	}
	v := e.newItem()
	v.id, v.queue, v.channel = id, it.queue, chName
	v.plan, v.chanID, v.class, v.weight = it.plan, ch, mapping.Live, def.weight
	v.since, v.inPlanSince = it.since, e.now
	v.state, v.agent, v.session = stActive, a, it.session
	e.items[id] = v
	a.addUse(v)
	a.nActive++
	it.session.open++
	mode := ReasonElevateNewContact
	if act.Mode == ElevateCurrent {
		mode = ReasonElevateCurrent
	}
	e.emit(Command{Type: CommandElevate, WorkID: id, AgentID: a.id, Channel: chName, Session: it.session.id, TargetID: it.id, Reason: mode})
	if act.Mode == ElevateCurrent {
		e.detach(it, ReasonElevated)
		delete(e.items, it.id)
		e.freeItem(it)
	}
	// Elevating the current interaction freed its units: the agent may take waiting work.
	e.syncState(a, false)
	e.refresh(a)
	e.fill(a)
}

// disposition records the session's disposition and ends the session if it was waiting for it.
// workID names an interaction of the session, or the session itself once its interactions ended.
func (e *Engine) disposition(a *agent, workID, d string) {
	if d == "" {
		e.refuse(a.id, workID, ActionDisposition, ReasonNoDisposition)
		return
	}
	var s *session
	if it := e.items[workID]; it != nil && it.agent == a && it.session != nil {
		s = it.session
	} else if ss := e.sessions[workID]; ss != nil && ss.agent == a {
		s = ss
	} else if ss := e.sessions[workID+"@"+a.id]; ss != nil && ss.agent == a {
		s = ss // the agent's own session of a contact transferred to them (see accept)
	}
	if s == nil {
		e.refuse(a.id, workID, ActionDisposition, ReasonUnknownWork)
		return
	}
	s.disposition = d
	if s.open == 0 {
		e.emit(Command{Type: CommandSessionEnded, AgentID: a.id, Session: s.id, Disposition: d})
		e.endSession(s)
	}
}
