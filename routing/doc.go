// Package routing is omniroute's routing engine: a deterministic state machine that decides
// which agent gets which waiting Salesforce work, and keeps agents' states and sessions.
//
// Everything it knows arrives as an Event with a timestamp (Engine.Apply); everything it wants
// done leaves as a Command (offer work, re-check an offer, transfer, requeue, set an agent's
// state and presence, notify, refuse an action with a Reason). Engine.NextDeadline tells the
// caller when to call back for timers. Compile turns a mapping.Config into an immutable Table
// once per load; Engine.SetPlans swaps it in without losing waiting or in-flight work.
//
// The model:
//
//   - Agents: skills with levels, capacity (total units plus per-class and per-channel caps
//     from a capacity profile), a chosen state (major + minor) and a derived shown state
//     (Busy, WrapUp, Busy/Inbound), Omni presence and the channels it opens, interactions, and
//     when they last became idle.
//   - Work: PSR id, work item id, channel (so class and default weight), queue (so plan),
//     priority, an age that survives re-routing, required and additional skills (the plan's
//     and the PSR's own), a preferred user, a capacity weight, and the agents who declined it.
//   - Plans: skills, priority, relaxation steps, overflow, offer timeout, wrap-up timeout,
//     auto-accept, disposition required.
//   - Sessions: the interactions of one contact (an elevated voice call joins the session of
//     the chat it came from); a session ends when all are done and its disposition is set where
//     a plan requires one.
//
// The choosing order, the eligibility rules, the decision table and the actions-by-class table
// are documented on Engine. docs/routing.md says field by field which Salesforce event becomes
// which Event and what the daemon does for each Command; in short:
//
//	Salesforce                                         Event
//	PSR create (ExternalRouting, ready)                EventWorkArrived (Work from the PSR and its SkillRequirements)
//	PSR update (not IsPushed=true)                     EventWorkChanged (the whole current PSR)
//	PSR delete                                         EventWorkRemoved (WorkID, and PSR = the deleted Id)
//	AgentWork Opened                                   EventOfferAccepted
//	AgentWork Declined/Canceled, DeclinedOnPushTimeout, EventOfferDeclined, Outcome Declined, PushTimeout,
//	  Unavailable; AgentWork insert refused              Unavailable, InsertFailed
//	AgentWork Closed / Transferred                     EventWorkClosed / EventWorkTransferred
//	AgentWork not inserted by omniroute, its end       EventExternalWork / EventExternalWorkClosed
//	UserServicePresence create / logout                EventAgentPresence (status, channels / offline;
//	                                                     Echo when the daemon recognised its own push)
//	ServiceResourceSkill, public groups                EventAgentSkills
//	agent pad: state / action                          EventAgentState / EventAgentAction
//	resubscribe from -1, replay gap, restart           EventReconcile (Snapshot by SOQL)
//	mapping reload / the NextDeadline timer            Engine.SetPlans / EventTick
//
//	Command           the daemon
//	CommandOffer      insert AgentWork (channel, work item, user, PSR, weight); refused: EventOfferDeclined(InsertFailed)
//	CommandCheckOffer query that AgentWork and report its status as an event; never insert a second one
//	CommandRequeue    move the work item to queue TargetID so Salesforce makes a new PSR (Plan set: the engine awaits it)
//	CommandSetState   show the state on the agent pad; push Presence to the Omni console when not empty
//	                  (the engine applies login, logout, Offline, the event switches and revert to
//	                  last status with mapping.Presence's tables; echoes change no state)
//	CommandNotify, CommandRefused, CommandWrapUp, CommandEnded, CommandSessionEnded: tell the agent pad
//	                  (CommandWrapUp carries its Deadline; the disposition of a session that ended is
//	                  written to Table.DispositionField of its work items)
//	CommandHold, CommandRetrieve, CommandConsult, CommandElevate: telephony actions for the agent
//	CommandTransfer, CommandRerouted, CommandUnroutable, CommandIgnored: log and count (metric label Reason)
//
// The package never does I/O, never logs, has no metrics, never reads the clock, randomness or
// the environment (time comes in as an argument), and imports only the standard library and
// mapping. Map iteration never reaches its output: the same events give the same commands.
package routing
