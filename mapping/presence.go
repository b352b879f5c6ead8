package mapping

// The presence tables of seed 003. Each rule that turns one side into the other is here, once,
// as a pure function of the mapping; who applies them, and when, is not:
//
//	rule                                   owner
//	state -> status, minor -> major        Presence.StatusForState (here)
//	status -> state, default Ready,        Presence.StateForStatus (here)
//	  Offline -> LoggedOut
//	revert to last status and its          Presence.PostWorkStatus (here)
//	  post-call exception
//	login -> online, logout -> offline,    routing.Engine: it owns the agent's state and asks for
//	  Offline in Salesforce -> logout,       the push (CommandSetState.Presence), reading the
//	  the five event switches                switches of PresenceEvents
//	echo suppression, newer intent wins    connector (presence.go): it has the clock and the I/O

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
// only Ready and ReadyOutbound ("Ready (Offline)") allow it (seed 003). The zero State is the
// default post-call state, Ready.
func RevertApplies(postCall State) bool {
	return postCall.Major == Ready || postCall.Major == ReadyOutbound || postCall.Major == 0
}

// PostWorkStatus is the revert-to-last-status decision (seed 003). An agent whose work (and
// wrap-up) has ended enters state next (the post-call state, or the state they chose during
// the work); this returns the presence status to show then. With revertToLastStatus on, a
// post-call state of Ready or ReadyOutbound, and next Ready or ReadyOutbound, it is the status
// the agent had before the work (preWorkStatus) when that is known and online; in every other
// case the status mapped to next wins.
func (p *Presence) PostWorkStatus(next State, preWorkStatus string) string {
	if p.RevertToLastStatus && RevertApplies(p.PostCallState) && next.Major != 0 && RevertApplies(next) &&
		preWorkStatus != "" && preWorkStatus != OfflineStatus {
		return preWorkStatus
	}
	return p.StatusForState(next)
}
