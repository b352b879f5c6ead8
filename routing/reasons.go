package routing

// Reason explains a refusal or a routing change. The set is closed: Reasons lists every value,
// so the connector can pre-create bounded metric labels from it.
type Reason string

// Reasons for refused actions.
const (
	// ReasonUnknownAgent: the agent is not known to the engine.
	ReasonUnknownAgent Reason = "unknown_agent"
	// ReasonUnknownWork: no interaction has that work id.
	ReasonUnknownWork Reason = "unknown_work"
	// ReasonNotAssigned: the work is not an interaction of this agent.
	ReasonNotAssigned Reason = "not_assigned"
	// ReasonNotAllowedForClass: the action is not allowed for the interaction's class (seeds 000/001).
	ReasonNotAllowedForClass Reason = "not_allowed_for_class"
	// ReasonWrongState: the interaction is not in a state that allows the action (e.g. releasing
	// an interaction already in wrap-up).
	ReasonWrongState Reason = "wrong_state"
	// ReasonAlreadyHeld: hold on a held interaction.
	ReasonAlreadyHeld Reason = "already_held"
	// ReasonNotHeld: retrieve on an interaction that is not held.
	ReasonNotHeld Reason = "not_held"
	// ReasonBadTarget: the consult or transfer target kind does not fit the action, or is empty.
	ReasonBadTarget Reason = "bad_target"
	// ReasonUnknownTarget: the target agent or plan does not exist.
	ReasonUnknownTarget Reason = "unknown_target"
	// ReasonTargetUnavailable: the target agent is not routable for this work now.
	ReasonTargetUnavailable Reason = "target_unavailable"
	// ReasonNoCapacity: the agent lacks capacity (elevation needs live capacity).
	ReasonNoCapacity Reason = "no_capacity"
	// ReasonNoLiveChannel: elevation needs a live channel and the mapping has none.
	ReasonNoLiveChannel Reason = "no_live_channel"
	// ReasonDuplicateWork: the new work id is already in use.
	ReasonDuplicateWork Reason = "duplicate_work"
	// ReasonNoDisposition: a disposition action without a disposition code.
	ReasonNoDisposition Reason = "no_disposition"
	// ReasonUnknownAction: the action kind is not one the engine knows.
	ReasonUnknownAction Reason = "unknown_action"
)

// Reasons for routing changes, notifications and ignored events.
const (
	// ReasonQueueUnmapped: the work's queue belongs to no plan.
	ReasonQueueUnmapped Reason = "queue_unmapped"
	// ReasonUnknownChannel: the work's service channel is not in the mapping.
	ReasonUnknownChannel Reason = "unknown_channel"
	// ReasonPlanRemoved: a reload removed the work's queue from every plan; the work stays
	// queued under the plan it had (see Engine.SetPlans).
	ReasonPlanRemoved Reason = "plan_removed"
	// ReasonOverflow: the work overflowed to another plan.
	ReasonOverflow Reason = "overflow"
	// ReasonRelaxed: a relaxation step lowered or dropped a required skill.
	ReasonRelaxed Reason = "relaxed"
	// ReasonAdditionalDropped: the additional skills were dropped.
	ReasonAdditionalDropped Reason = "additional_dropped"
	// ReasonPreferredTimeout: the preferred user did not become available in time; the work is
	// open to every agent.
	ReasonPreferredTimeout Reason = "preferred_timeout"
	// ReasonPreferredDeclined: the (not required) preferred user declined the work; it is open to
	// every agent at once.
	ReasonPreferredDeclined Reason = "preferred_declined"
	// ReasonOfferTimeout: no outcome arrived within the plan's offer timeout.
	ReasonOfferTimeout Reason = "offer_timeout"
	// ReasonPSRDeleted: the PSR of an open offer was deleted (an accept, or the work went away);
	// the offer is kept until its outcome is known.
	ReasonPSRDeleted Reason = "psr_deleted"
	// ReasonWorkWithdrawn: an open offer whose PSR was deleted ended without an accept.
	ReasonWorkWithdrawn Reason = "work_withdrawn"
	// ReasonUndeliverable: an offer to the agent came back push timeout or unavailable, or its
	// AgentWork insert was refused; the agent is not routable until their presence or state
	// changes.
	ReasonUndeliverable Reason = "undeliverable"
	// ReasonStaleOutcome: an offer outcome for an offer that is not open (already decided).
	ReasonStaleOutcome Reason = "stale_outcome"
	// ReasonStateNotChoosable: Busy and WrapUp are the engine's to set; an agent cannot choose them.
	ReasonStateNotChoosable Reason = "state_not_choosable"
	// ReasonBusyInbound: Salesforce routed work to the agent itself (seed 003).
	ReasonBusyInbound Reason = "busy_inbound"
	// ReasonDispositionRequired: every interaction of the session is done but the plan requires
	// a disposition; the session waits for one.
	ReasonDispositionRequired Reason = "disposition_required"
	// ReasonTransfer: the offer is a transfer to an agent.
	ReasonTransfer Reason = "transfer"
	// ReasonElevateCurrent / ReasonElevateNewContact: the elevation mode.
	ReasonElevateCurrent    Reason = "elevate_current"
	ReasonElevateNewContact Reason = "elevate_new_contact"
)

// Reasons an interaction ended (CommandEnded).
const (
	// ReasonReleased: the wrap-up after a release ended.
	ReasonReleased Reason = "released"
	// ReasonAbandoned: the agent abandoned it; capacity was freed at once.
	ReasonAbandoned Reason = "abandoned"
	// ReasonTransferred: it left the agent by transfer.
	ReasonTransferred Reason = "transferred"
	// ReasonElevated: it became the voice call of its session (elevate current).
	ReasonElevated Reason = "elevated"
	// ReasonReconciled: Salesforce no longer has it (EventReconcile).
	ReasonReconciled Reason = "reconciled"
)

// Reasons returns every Reason, in a fixed order.
func Reasons() []Reason {
	return []Reason{
		ReasonUnknownAgent, ReasonUnknownWork, ReasonNotAssigned, ReasonNotAllowedForClass,
		ReasonWrongState, ReasonAlreadyHeld, ReasonNotHeld, ReasonBadTarget, ReasonUnknownTarget,
		ReasonTargetUnavailable, ReasonNoCapacity, ReasonNoLiveChannel, ReasonDuplicateWork,
		ReasonNoDisposition, ReasonUnknownAction,
		ReasonQueueUnmapped, ReasonUnknownChannel, ReasonPlanRemoved, ReasonOverflow,
		ReasonRelaxed, ReasonAdditionalDropped, ReasonPreferredTimeout, ReasonPreferredDeclined, ReasonOfferTimeout,
		ReasonPSRDeleted, ReasonWorkWithdrawn, ReasonStaleOutcome, ReasonStateNotChoosable, ReasonBusyInbound,
		ReasonDispositionRequired, ReasonTransfer, ReasonElevateCurrent, ReasonElevateNewContact,
		ReasonReleased, ReasonAbandoned, ReasonTransferred, ReasonElevated,
		ReasonUndeliverable, ReasonReconciled,
	}
}
