package routing

import (
	"time"

	"github.com/omniroute/omniroute/mapping"
)

// EventType says what an Event reports.
type EventType uint8

// Event types. The zero EventType is EventTick.
const (
	// EventTick only lets time pass: due timers fire.
	EventTick EventType = iota
	// EventWorkArrived: a PendingServiceRouting appeared (Work). A second arrival of waiting work
	// is treated as EventWorkChanged. The new PSR a CommandRequeue asked for routes the work the
	// engine kept for it. A new PSR (another PSR id) for work an agent holds is a transfer made
	// in Salesforce: the interaction ends for that agent and the work is routed again. A PSR id
	// the engine saw deleted (EventWorkRemoved) is a replay and is ignored (CommandIgnored,
	// ReasonPSRDeleted), for EventWorkChanged too.
	EventWorkArrived
	// EventWorkChanged: the PSR of waiting work changed (Work): priority, weight, preferred user,
	// queue... The same queue keeps the plan the work overflowed or was transferred to.
	EventWorkChanged
	// EventWorkRemoved: the PSR of WorkID (PSR, when set) was deleted (the customer left, the work was closed in
	// Salesforce, or an agent accepted it). Waiting work is forgotten. An open offer is kept, with
	// its capacity, and re-checked (CommandCheckOffer, ReasonPSRDeleted): Salesforce deletes the
	// PSR on every accept, possibly before the Opened AgentWork arrives; a decline or cancel
	// outcome then forgets the work. Accepted work is not affected.
	EventWorkRemoved
	// EventOfferAccepted: AgentID accepted WorkID (AgentWork Opened).
	EventOfferAccepted
	// EventOfferDeclined: the offer of WorkID to AgentID ended without an accept; Outcome says
	// how (AgentWork Declined, DeclinedOnPushTimeout, Unavailable, or the AgentWork insert was
	// refused). The work waits again with its original age; AgentID is kept out of its next
	// offer. For every outcome but OutcomeDeclined the agent is also not routable until their
	// next presence or state event. OutcomeInsertFailed also undoes auto-accepted work whose
	// AgentWork was not yet confirmed Opened.
	EventOfferDeclined
	// EventWorkClosed: Salesforce closed AgentID's AgentWork of WorkID (the agent closed the
	// tab): the same as a release by the agent. It is ignored (stale) unless the work is that
	// agent's interaction.
	EventWorkClosed
	// EventAgentSkills: AgentID's skills (and public groups, which pick a capacity profile).
	EventAgentSkills
	// EventAgentState: AgentID chose State (agent pad or omniroute). While the agent works it is
	// the intended state, entered after the work ends.
	EventAgentState
	// EventAgentPresence: AgentID's Omni-Channel presence became Presence (a ServicePresenceStatus
	// DeveloperName, or mapping.OfflineStatus) with Channels open.
	EventAgentPresence
	// EventExternalWork: Salesforce itself routed WorkID on Channel to AgentID (not an offer of
	// ours): the agent is Busy Inbound (seed 003) until EventExternalWorkClosed.
	EventExternalWork
	// EventExternalWorkClosed: the externally routed WorkID closed.
	EventExternalWorkClosed
	// EventAgentAction: AgentID asks for Action on WorkID.
	EventAgentAction
	// EventWorkTransferred: the AgentWork of AgentID's interaction WorkID went Transferred in
	// Salesforce. The interaction leaves the agent (ended, transferred) and the engine forgets
	// it; a transfer to a queue or skill brings a new PSR, which arrives as new work.
	EventWorkTransferred
	// EventReconcile: Snapshot is everything Salesforce holds now (after a resubscribe from
	// -1, a replay gap or a restart). The engine makes its state match, at once: see Snapshot.
	EventReconcile
)

var eventTypeNames = [...]string{
	EventTick: "tick", EventWorkArrived: "work_arrived", EventWorkChanged: "work_changed",
	EventWorkRemoved: "work_removed", EventOfferAccepted: "offer_accepted",
	EventOfferDeclined: "offer_declined", EventWorkClosed: "work_closed",
	EventAgentSkills: "agent_skills", EventAgentState: "agent_state",
	EventAgentPresence: "agent_presence", EventExternalWork: "external_work",
	EventExternalWorkClosed: "external_work_closed", EventAgentAction: "agent_action",
	EventWorkTransferred: "work_transferred", EventReconcile: "reconcile",
}

// String returns the snake_case name used in scenario files.
func (t EventType) String() string {
	if int(t) < len(eventTypeNames) {
		return eventTypeNames[t]
	}
	return "unknown"
}

// Event is everything the engine learns. It is a flat value (no interfaces) so that applying
// it does not allocate; only the fields its Type names are read.
type Event struct {
	Type EventType
	// Work is the PSR for EventWorkArrived and EventWorkChanged.
	Work Work
	// WorkID is the work item (WorkItemId) the event is about.
	WorkID string
	// AgentID is the Salesforce User Id of the agent the event is about.
	AgentID string
	// PSR is the PendingServiceRouting Id Salesforce deleted (EventWorkRemoved). When set and
	// not the work's current PSR, the event is a replay or a late delete of an earlier PSR of the
	// same work item, and the work is kept. Empty means the work's current PSR.
	PSR string
	// Outcome is why an offer was not taken (EventOfferDeclined).
	Outcome Outcome
	// State is the chosen state (EventAgentState).
	State mapping.State
	// Presence is the presence status DeveloperName (EventAgentPresence).
	Presence string
	// Channels are the service channels the presence status opens (EventAgentPresence).
	Channels []string
	// Echo marks an EventAgentPresence whose status is no choice to follow: the connector
	// recognised omniroute's own push coming back, or a change older than a push still on its
	// way. Presence and channels are updated; the state is not.
	Echo bool
	// Skills are the agent's skills (EventAgentSkills).
	Skills []Skill
	// Groups are the agent's public groups, used to pick a capacity profile (EventAgentSkills).
	Groups []string
	// Channel is the service channel of externally routed work (EventExternalWork).
	Channel string
	// Action is what the agent asks for (EventAgentAction).
	Action Action
	// Snapshot is Salesforce's state (EventReconcile).
	Snapshot *Snapshot
}

// Snapshot is what Salesforce holds at one moment, for EventReconcile. Applying it:
//
//   - Presence replaces every agent's presence; a known agent missing from it is offline.
//   - Waiting (PSRs not pushed), Offers (AgentWork Assigned) and Interactions (AgentWork Opened,
//     routed by the engine) are the engine's work. Work the engine holds that is in none of
//     them leaves it: waiting work is forgotten (parked work, and work awaiting the new PSR of a
//     transfer, too), an offer is withdrawn (its capacity freed), an interaction ends
//     (CommandEnded, ReasonReconciled). Wrap-ups are the engine's own and stay.
//   - Work in them that the engine lacks, or holds in another form, enters as Salesforce has it:
//     waiting work is routed; an offer or interaction is taken as given to that agent (its
//     capacity counted even past the agent's caps, since Salesforce already decided).
//   - External lists the AgentWork Salesforce routed itself (Busy Inbound); it replaces the
//     engine's set.
//
// Nothing is offered until the whole snapshot is applied; then every agent is filled. Entries
// with an empty agent or work id are skipped, and so is a waiting PSR the engine saw deleted (the
// snapshot is older than that delete): the work stays as the engine has it.
type Snapshot struct {
	Waiting      []Work
	Offers       []Assignment
	Interactions []Assignment
	External     []Assignment
	Presence     []AgentPresence
}

// Assignment is work held by an agent: Work as its PSR described it (ID, PSR, Queue and
// Channel at least) and the agent's User Id.
type Assignment struct {
	Work    Work
	AgentID string
}

// AgentPresence is an agent's current presence status and the channels it opens.
type AgentPresence struct {
	AgentID  string
	Presence string
	Channels []string
}

// SkillRequirement is a skill the PSR itself requires (a SkillRequirement record whose
// RelatedRecordId is the PSR, e.g. after a transfer to a skill), next to the plan's skills.
type SkillRequirement struct {
	Name  string
	Level float64
	// Additional: IsAdditionalSkill; dropped with the plan's additional skills (or after the
	// PSR's DropAdditionalSkillsTimeout).
	Additional bool
}

// Skill is an agent's skill (Skill DeveloperName) at a level (ServiceResourceSkill.SkillLevel).
type Skill struct {
	Name  string
	Level float64
}

// Work is a waiting work item as its PendingServiceRouting describes it.
type Work struct {
	// ID is the WorkItemId; it names the work in every later event and command.
	ID string
	// PSR is the PendingServiceRouting Id, copied into the AgentWork.
	PSR string
	// Queue is the queue (GroupId or DeveloperName); it picks the plan.
	Queue string
	// Channel is the ServiceChannel DeveloperName; it picks the class and default weight.
	Channel string
	// RequestedAt is the age origin (CustomRequestedDateTime, else CreatedDate). It survives
	// re-routing. Zero means "now".
	RequestedAt time.Time
	// Priority overrides the plan's priority when HasPriority (RoutingPriority). Lower first.
	Priority    int
	HasPriority bool
	// Weight overrides the channel's capacity weight when > 0 (CapacityWeight). A weight above
	// 1<<20 (bad input) counts as 1<<20, which fits no agent.
	Weight int
	// PreferredUser is the PreferredUserId; PreferredRequired is IsPreferredUserRequired.
	PreferredUser     string
	PreferredRequired bool
	// DropAdditionalAfter is the PSR's DropAdditionalSkillsTimeout, counted from RequestedAt,
	// when HasDropAdditional; otherwise the plan's DropAdditionalSkillsAfter applies.
	DropAdditionalAfter time.Duration
	HasDropAdditional   bool
	// Session groups interactions of one contact; empty means a new session named after ID.
	Session string
	// Skills are the PSR's own skill requirements, required next to the plan's.
	Skills []SkillRequirement
}

// Outcome says why an offer ended without an accept.
type Outcome uint8

// Offer outcomes (AgentWork statuses).
const (
	// OutcomeDeclined: the agent declined (AgentWork Declined).
	OutcomeDeclined Outcome = iota
	// OutcomePushTimeout: Salesforce's push timeout expired (DeclinedOnPushTimeout).
	OutcomePushTimeout
	// OutcomeUnavailable: the agent went offline (Unavailable).
	OutcomeUnavailable
	// OutcomeInsertFailed: Salesforce refused the AgentWork insert (CommandOffer failed).
	OutcomeInsertFailed
)

// ActionKind is an agent action on an interaction.
type ActionKind uint8

// Actions. Which classes allow which is the table on Engine.
const (
	ActionRelease ActionKind = iota + 1
	ActionHold
	ActionRetrieve
	ActionConsult
	ActionTransfer
	ActionAbandon
	ActionElevate
	ActionEndWrapUp
	ActionDisposition
)

var actionNames = [...]string{
	ActionRelease: "release", ActionHold: "hold", ActionRetrieve: "retrieve",
	ActionConsult: "consult", ActionTransfer: "transfer", ActionAbandon: "abandon",
	ActionElevate: "elevate", ActionEndWrapUp: "end_wrap_up", ActionDisposition: "disposition",
}

// String returns the snake_case name.
func (a ActionKind) String() string {
	if int(a) < len(actionNames) && actionNames[a] != "" {
		return actionNames[a]
	}
	return "unknown"
}

// TargetKind says what a consult or transfer goes to.
type TargetKind uint8

// Targets.
const (
	TargetNone TargetKind = iota
	// TargetAgent is a Salesforce User Id.
	TargetAgent
	// TargetNumber is a telephone number (consult only).
	TargetNumber
	// TargetPlan is an interaction plan name (transfer only).
	TargetPlan
	// TargetQueue is a Salesforce queue (transfer only): Salesforce makes a new PSR.
	TargetQueue
)

var targetNames = [...]string{
	TargetNone: "", TargetAgent: "agent", TargetNumber: "number", TargetPlan: "plan", TargetQueue: "queue",
}

// String returns the snake_case name.
func (t TargetKind) String() string {
	if int(t) < len(targetNames) {
		return targetNames[t]
	}
	return "unknown"
}

// ElevateMode is seed 002's choice when elevating to voice.
type ElevateMode uint8

// Elevation modes.
const (
	// ElevateCurrent turns the current interaction into the voice call: it ends (no wrap-up)
	// and the voice call takes its place in the session.
	ElevateCurrent ElevateMode = iota
	// ElevateNewContact adds a voice call to the session; the original carries on.
	ElevateNewContact
)

// Action is an agent's request on one of their interactions.
type Action struct {
	Kind ActionKind
	// Target and TargetID name the consult or transfer target.
	Target   TargetKind
	TargetID string
	// Mode and NewWorkID describe an elevation: NewWorkID names the voice interaction
	// (default: WorkID + "/voice"); Channel picks the live channel (default: the first live
	// channel of the mapping by name).
	Mode      ElevateMode
	NewWorkID string
	Channel   string
	// Disposition is the disposition code (ActionDisposition).
	Disposition string
}

// CommandType says what a Command asks for or reports.
type CommandType uint8

// Command types.
const (
	// CommandOffer: insert an AgentWork for WorkID/PSR to AgentID on Channel with Weight; if the
	// insert is refused, report EventOfferDeclined with OutcomeInsertFailed. AutoAccept marks
	// plans whose work needs no accept; the engine then treats it as accepted (the Opened
	// AgentWork confirms it). Reason is ReasonTransfer for the target of a transfer.
	CommandOffer CommandType = iota + 1
	// CommandCheckOffer: the plan's offer timeout passed (ReasonOfferTimeout), or the PSR was
	// deleted (ReasonPSRDeleted), with no outcome for the offer of WorkID to AgentID. Look the
	// AgentWork up and report its outcome (Opened: EventOfferAccepted; Declined or Canceled:
	// EventOfferDeclined with OutcomeDeclined; DeclinedOnPushTimeout: OutcomePushTimeout;
	// Unavailable: OutcomeUnavailable; no AgentWork at all: OutcomeInsertFailed; still
	// Assigned: nothing). Never insert a second AgentWork: the offer stays open and the check
	// repeats every offer timeout.
	CommandCheckOffer
	// CommandTransfer: AgentID's interaction WorkID was transferred to Target/TargetID (agent,
	// plan or queue). It records the decision; the CommandRequeue that follows is what Salesforce
	// must do. For an agent or a plan the engine then awaits the new PSR and offers it to that
	// agent (ReasonTransfer) or routes it in that plan.
	CommandTransfer
	// CommandRequeue: move WorkID (on Channel) to Salesforce queue TargetID (Target is
	// TargetQueue) so that Salesforce makes a new PSR for it: a case's owner becomes the queue,
	// a chat or messaging session is transferred to the queue. It carries no PSR (the work's
	// PSR was deleted when it was accepted). When Plan is set (a transfer to a plan or an
	// agent) the engine keeps the work and routes it under Plan when the new PSR arrives
	// (EventWorkArrived with WorkID); otherwise it has forgotten the work, and the new PSR is
	// new work.
	CommandRequeue
	// CommandSetState: AgentID's state is now State. Presence, when not empty, is the mapped
	// presence status to push to the console; empty means leave presence alone.
	CommandSetState
	// CommandNotify: tell AgentID something (Reason) about WorkID/Session.
	CommandNotify
	// CommandRefused: AgentID's Action on WorkID was refused for Reason.
	CommandRefused
	// CommandIgnored: an event could not be applied (Reason): a stale or unknown outcome, an empty
	// agent id, or a replayed CREATE, UPDATE or DELETE of a deleted PSR (ReasonPSRDeleted).
	CommandIgnored
	// CommandHold / CommandRetrieve / CommandConsult: carry out the accepted action.
	CommandHold
	CommandRetrieve
	CommandConsult
	// CommandElevate: start a voice call WorkID on Channel for AgentID in Session (Mode in
	// Reason: ReasonElevateCurrent or ReasonElevateNewContact).
	CommandElevate
	// CommandWrapUp: interaction WorkID is in wrap-up.
	CommandWrapUp
	// CommandEnded: interaction WorkID ended for AgentID (Reason says how).
	CommandEnded
	// CommandSessionEnded: Session is done (Disposition set where required).
	CommandSessionEnded
	// CommandRerouted: waiting WorkID changed how it is routed (Reason), e.g. relaxed skills,
	// overflow to Plan, preferred user fallback, or a reload fallback.
	CommandRerouted
	// CommandUnroutable: WorkID cannot be routed yet (Reason); it is kept and retried on reload.
	CommandUnroutable
)

var commandNames = [...]string{
	CommandOffer: "offer", CommandCheckOffer: "check_offer", CommandTransfer: "transfer",
	CommandRequeue: "requeue", CommandSetState: "set_state", CommandNotify: "notify",
	CommandRefused: "refused", CommandIgnored: "ignored", CommandHold: "hold",
	CommandRetrieve: "retrieve", CommandConsult: "consult", CommandElevate: "elevate",
	CommandWrapUp: "wrap_up", CommandEnded: "ended", CommandSessionEnded: "session_ended",
	CommandRerouted: "rerouted", CommandUnroutable: "unroutable",
}

// String returns the snake_case name used in scenario files.
func (t CommandType) String() string {
	if int(t) < len(commandNames) && commandNames[t] != "" {
		return commandNames[t]
	}
	return "unknown"
}

// Command is what the engine wants done or reports. Only the fields its Type names are set.
type Command struct {
	Type    CommandType
	WorkID  string
	PSR     string
	AgentID string
	Channel string
	Weight  int
	// AutoAccept: the offer needs no accept (plan auto-accept).
	AutoAccept bool
	// Plan is the plan the work is in (offer, rerouted).
	Plan     string
	Target   TargetKind
	TargetID string
	State    mapping.State
	Presence string
	Session  string
	Action   ActionKind
	Reason   Reason
	// Disposition is the session's disposition (CommandSessionEnded).
	Disposition string
	// Deadline is when the wrap-up ends by itself (CommandWrapUp); zero when the plan has no
	// wrap-up timeout.
	Deadline time.Time
}
