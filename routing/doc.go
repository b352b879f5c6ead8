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
//     priority, an age that survives re-routing, required and additional skills, a preferred
//     user, a capacity weight, and the agents who declined it.
//   - Plans: skills, priority, relaxation steps, overflow, offer timeout, wrap-up timeout,
//     auto-accept, disposition required.
//   - Sessions: the interactions of one contact (an elevated voice call joins the session of
//     the chat it came from); a session ends when all are done and its disposition is set where
//     a plan requires one.
//
// The choosing order, the eligibility rules, the decision table and the actions-by-class table
// are documented on Engine.
//
// The package never does I/O, never logs, has no metrics, never reads the clock, randomness or
// the environment (time comes in as an argument), and imports only the standard library and
// mapping. Map iteration never reaches its output: the same events give the same commands.
package routing
