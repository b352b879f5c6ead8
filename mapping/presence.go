package mapping

import (
	"sync"
	"time"
)

// StateForStatus maps a Salesforce presence status (DeveloperName) to an agent state, as
// presence.fromSalesforce says. Offline maps to LoggedOut; a status that is not listed maps to
// Ready, the default of seed 003.
func (p *Presence) StateForStatus(status string) State {
	if status == OfflineStatus {
		return State{Major: LoggedOut}
	}
	if st, ok := p.FromSalesforce[status]; ok {
		return st
	}
	return State{Major: Ready}
}

// StatusForState maps an agent state to the presence status to show in Omni-Channel, as
// presence.toSalesforce says. A minor state that is not listed falls back to its major state's
// status. It returns "" only for a state whose major state is not mapped, which Validate forbids.
func (p *Presence) StatusForState(s State) string {
	if status, ok := p.ToSalesforce[s]; ok {
		return status
	}
	return p.ToSalesforce[State{Major: s.Major}]
}

// RevertApplies reports whether revertToLastStatus can take effect with this post-call state:
// only Ready and ReadyOutbound ("Ready (Offline)") allow it (seed 003).
func RevertApplies(postCall State) bool {
	return postCall.Major == Ready || postCall.Major == ReadyOutbound
}

// PostWorkStatus is the revert-to-last-status decision. An agent whose work (and wrap-up) has
// ended goes to PostCallState; this returns the presence status to show then. With
// revertToLastStatus on and a post-call state of Ready or ReadyOutbound, it is the status the
// agent had before the work (preWorkStatus) when that is known and online; in every other case
// the status mapped to the post-call state wins.
func (p *Presence) PostWorkStatus(preWorkStatus string) string {
	if p.RevertToLastStatus && RevertApplies(p.PostCallState) &&
		preWorkStatus != "" && preWorkStatus != OfflineStatus {
		return preWorkStatus
	}
	return p.StatusForState(p.PostCallState)
}

// AgentPresence is what presence sync knows about one agent. The caller keeps one per agent
// and replaces it with Decision.Next after each call.
type AgentPresence struct {
	// State is the agent's contact-centre state; LoggedOut when not logged in.
	State State
	// Status is the last known Omni-Channel presence status: "" when unknown, OfflineStatus
	// when offline.
	Status string
	// PreWorkStatus is the status the agent had when their current work began (for
	// revertToLastStatus); "" when not working.
	PreWorkStatus string
}

// Decision is the outcome of a presence sync step.
type Decision struct {
	// Next replaces the agent's AgentPresence.
	Next AgentPresence
	// Push is the presence status to set in Omni-Channel through the console bridge:
	// "" for nothing, OfflineStatus to log out of Omni-Channel.
	Push string
}

// StateChanged reports whether the decision changed the agent's state.
func (d Decision) StateChanged(prev AgentPresence) bool { return d.Next.State != prev.State }

func working(m MajorState) bool { return m == Busy || m == WrapUp }

// OnStateChange decides what follows an agent state change made in omniroute (by the agent in
// their pad, or by omniroute itself: work assigned, wrap-up, post-call). It covers three of the
// five switches of seed 003:
//
//	LoggedOut -> anything else   login: loginSetsOnline pushes the status mapped to the new state
//	anything  -> LoggedOut       logout: logoutSetsOffline pushes Offline
//	other changes                stateChangesUpdatePresence pushes the mapped status; when work
//	                             ends (Busy/WrapUp -> Ready/ReadyOutbound) PostWorkStatus decides
//
// It never pushes the status Omni-Channel already shows, so repeated calls are harmless.
func (p *Presence) OnStateChange(a AgentPresence, next State) Decision {
	prev := a.State
	n := a
	n.State = next
	var push string
	switch {
	case next.Major == LoggedOut:
		n.PreWorkStatus = ""
		if p.Events.LogoutSetsOffline {
			push = OfflineStatus
		}
	case prev.Major == LoggedOut || prev.Major == 0:
		if p.Events.LoginSetsOnline {
			push = p.StatusForState(next)
		}
	default:
		if working(next.Major) && !working(prev.Major) {
			n.PreWorkStatus = a.Status
		}
		if !p.Events.StateChangesUpdatePresence {
			break
		}
		if working(prev.Major) && !working(next.Major) {
			if next == p.PostCallState {
				push = p.PostWorkStatus(a.PreWorkStatus)
			} else {
				push = p.StatusForState(next)
			}
			n.PreWorkStatus = ""
			break
		}
		push = p.StatusForState(next)
	}
	if !working(next.Major) {
		n.PreWorkStatus = ""
	}
	if push == a.Status {
		push = ""
	}
	if push != "" {
		n.Status = push
	}
	return Decision{Next: n, Push: push}
}

// OnStatusChange decides what follows a presence status change seen in Salesforce (a
// UserServicePresence event) that the EchoFilter did not recognise as omniroute's own push.
// It covers the other two switches of seed 003:
//
//	Offline                       offlineLogsOut: the agent is logged out
//	a status the current state    nothing changes (the status already agrees with the state)
//	  already maps to
//	any other status              presenceChangesUpdateState: the mapped state (default Ready),
//	                              except while Busy or WrapUp, which omniroute owns: then the status
//	                              is kept as the one to revert to after the work
//
// It never pushes anything back: a change that came from Salesforce is not echoed to
// Salesforce, so two-way sync cannot loop.
func (p *Presence) OnStatusChange(a AgentPresence, status string) Decision {
	n := a
	n.Status = status
	if status == OfflineStatus {
		if p.Events.OfflineLogsOut {
			n.State = State{Major: LoggedOut}
			n.PreWorkStatus = ""
		}
		return Decision{Next: n}
	}
	if !p.Events.PresenceChangesUpdateState {
		return Decision{Next: n}
	}
	if a.State.Major != LoggedOut && a.State.Major != 0 && p.Agrees(a.State, status) {
		return Decision{Next: n}
	}
	if working(a.State.Major) {
		n.PreWorkStatus = status
		return Decision{Next: n}
	}
	n.State = p.StateForStatus(status)
	return Decision{Next: n}
}

// Agrees reports whether a presence status is consistent with an agent state: the state maps
// to the status, or the status maps to the state. A status event that agrees with the current
// state changes nothing, which is what keeps late echoes from flapping the state.
func (p *Presence) Agrees(s State, status string) bool {
	return p.StatusForState(s) == status || p.StateForStatus(status) == s
}

// OnEcho decides what follows a presence event the EchoFilter recognised as omniroute's own
// push. The state is not changed. The push may have been overtaken: the state changed again,
// or the agent picked a status in Omni-Channel before the push landed, and Salesforce applied
// the push last. Then the latest intent is pushed again: the last known status (the agent's
// pick, or omniroute's later push) when it agrees with the state, else the status mapped to
// the state. Each re-push answers one stale echo, so this cannot loop.
func (p *Presence) OnEcho(a AgentPresence, status string) Decision {
	n := a
	n.Status = status
	if a.State.Major == 0 {
		return Decision{Next: n}
	}
	var want string
	switch {
	case a.State.Major == LoggedOut:
		if p.Events.LogoutSetsOffline {
			want = OfflineStatus
		}
	case !p.Events.StateChangesUpdatePresence:
	case a.Status != "" && a.Status != OfflineStatus && p.Agrees(a.State, a.Status):
		want = a.Status
	case !p.Agrees(a.State, status):
		want = p.StatusForState(a.State)
	}
	if want == "" || want == status {
		return Decision{Next: n}
	}
	n.Status = want
	return Decision{Next: n, Push: want}
}

// EchoFilter recognises omniroute's own presence pushes when Salesforce reports them back as
// UserServicePresence events, so they are not taken as the agent's own changes. Record every
// push with Pushed; ask IsEcho for every event. A push is forgotten once its echo (or the echo
// of a later push) is seen, or once TTL has passed since the agent's latest push: the TTL
// must exceed the slowest push-to-event delay. It reads no clock: callers pass now. It is
// safe for concurrent use.
type EchoFilter struct {
	ttl time.Duration
	mu  sync.Mutex
	// pending holds each agent's unconfirmed pushes, oldest first.
	pending map[string][]echoPush
}

type echoPush struct {
	status string
	at     time.Time
}

// maxPendingPushes bounds the unconfirmed pushes remembered per agent.
const maxPendingPushes = 16

// NewEchoFilter returns a filter that forgets an agent's pushes ttl after the latest one (30s
// if ttl <= 0).
func NewEchoFilter(ttl time.Duration) *EchoFilter {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	return &EchoFilter{ttl: ttl, pending: map[string][]echoPush{}}
}

// Pushed records that omniroute asked the agent's console to set status at now.
func (f *EchoFilter) Pushed(agent, status string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ps := f.live(agent, now)
	ps = append(ps, echoPush{status: status, at: now})
	if len(ps) > maxPendingPushes {
		ps = ps[len(ps)-maxPendingPushes:]
	}
	f.pending[agent] = ps
}

// IsEcho reports whether a presence event for agent with status, seen at now, is the echo of a
// push made within TTL. A match consumes that push and every older one (events arrive in order).
func (f *EchoFilter) IsEcho(agent, status string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ps := f.live(agent, now)
	for i, p := range ps {
		if p.status == status {
			ps = ps[i+1:]
			if len(ps) == 0 {
				delete(f.pending, agent)
			} else {
				f.pending[agent] = ps
			}
			return true
		}
	}
	return false
}

// Forget drops an agent's pending pushes, e.g. when the agent disconnects.
func (f *EchoFilter) Forget(agent string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pending, agent)
}

// live returns the agent's pushes, forgetting them all once TTL has passed since the latest.
// Pushes expire together, not one by one: Salesforce reports an agent's presence changes in
// order, so while a later push may still be echoed, the echoes of the earlier ones may still
// come before it, however late. Callers hold mu.
func (f *EchoFilter) live(agent string, now time.Time) []echoPush {
	ps := f.pending[agent]
	if len(ps) == 0 || now.Sub(ps[len(ps)-1].at) > f.ttl {
		delete(f.pending, agent)
		return nil
	}
	return ps
}
