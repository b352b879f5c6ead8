// Package connector is omniroute's daemon: it joins the Salesforce client and stream, the
// mapping and the routing engine. It makes no routing decision: those belong to the routing
// package. The Connector type documents the loop.
//
// What it holds today:
//
//   - config.go: Config, read from OMNIROUTE_* variables with envconfig; Validate reports every
//     problem at once, each naming its variable; Secret values never print.
//   - org.go: the token source and REST client built from Config, the org metadata read
//     (ReadOrg) and the mapping's check against it (CheckOrg), shared with `omniroute mapping`.
//   - reload.go: the mapping Reloader (checksum poll on one ticker, SIGHUP, POST /-/reload):
//     read, parse, validate, check against the org, compile, then hand the newest
//     routing.Table to the router through Updates; a failed step keeps the previous mapping.
//   - http.go: the one HTTP server: open /metrics, /healthz (loops' heartbeats) and /readyz
//     (named conditions), and the admin API behind OMNIROUTE_ADMIN_TOKEN; JSON errors.
//   - gateway.go, agentwire.go, agentauth.go: the agent websocket at /v1/agent
//     (docs/agent-protocol.md), the router's AgentSink. Tokens (the agent's Salesforce token
//     checked with userinfo and cached by hash, or a demo HS256 token) and the Origin
//     allow-list are checked before the upgrade; one live connection per agent, the newest
//     wins; frames decode to AgentInput (User from the token, never the frame); a bounded queue
//     per connection, so Deliver never blocks and a slow client is dropped; a client's frames
//     are paced (FramesPerSecond) and each waits at most InputTimeout for the router's inbox; SetRouter follows the daemon's router
//     (none: upgrades refused; a new one: live connections closed); HTTP.Shutdown closes the
//     live connections and waits for them.
//   - translate.go: pure translation of PSR and AgentWork change events and PSR rows into
//     routing Events (Translate, Names.Work), with what the router knows passed in (Known) and
//     what must be read first passed back (Change); omniroute's own changeOrigin is recognised
//     (IsOwn). UserServicePresence changes are turned into presence events by the router.
//   - checkpoint.go: the durable replay checkpoint store (a file under OMNIROUTE_STATE_DIR);
//     checkpoint_lease.go: the store of leader election, an annotation of the Lease, written
//     at most once per retry period and only by the Lease's holder.
//   - leader.go: leader election (OMNIROUTE_LEADER_ELECTION) behind the Elector interface;
//     LeaseElector is client-go's tools/leaderelection on a coordination.k8s.io Lease with
//     ReleaseOnCancel. Every replica loads the mapping, logs in, reads and checks the org and
//     serves HTTP; only the leader subscribes (from the ids in the Lease), reconciles, routes
//     and writes. A standby's /readyz is false on its "leader" condition; omniroute_leader is
//     1 on the leader. The Lease is released only after the routing stopped, and never by a
//     leader that lost it (releaseFence); a leader that cannot renew stops routing at once,
//     drains its writer for at most LeaseDuration-RenewDeadline-RetryPeriod (maxDrain), and
//     the daemon exits (ErrLeadershipLost). AgentWork inserts leave only while the last
//     renewal is fresh on the leader's own clock (Elector.Writable, fenceWrites), so a leader
//     resumed from a freeze sends nothing it decided before.
//   - router.go: the Router, the only goroutine that touches routing.Engine: one inbox for
//     reads, writer results, reconcile snapshots, admin queries and one queue for stream
//     messages; reloads from Reloader.Updates; one timer at Engine.NextDeadline. It commits a
//     replay id only once every event carrying it is applied, keeps the maps Translate reads
//     (Known), turns UserServicePresence changes into presence events keyed on the row (the
//     agent's current row closed with no new one in the same transaction is a logout; an
//     earlier row closed again is noise), and applies each reconcile as one snapshot,
//     buffering what arrives meanwhile; once the reads began, at most 10,000 messages (then
//     the stream waits). A notice of missed events (or a bad or gap event) taken before the
//     reconcile's reads began is covered by it, so a fresh start reconciles once. An
//     AgentWork update is an offer's own only if it is the AgentWork the writer reported for
//     that offer (one that comes first waits for the writer's result), so an outcome of an
//     earlier AgentWork of the same work and agent never ends the current offer. A failed
//     requeue starts a reconcile (no new PSR will come). A PSR read whole that is not
//     external routing or not ready is no work. A transfer to a user is followed by reading
//     the target's AgentWork (it has no routing model, so the custom channel does not carry
//     it); the light check finds its close. The maps of AgentWork, PSRs, offers and presence
//     rows restart from each snapshot.
//   - reader.go: the reads the router needs (PSRs whole with their skills, an AgentWork it
//     does not know, the light check of waiting PSRs), answered through the inbox.
//   - reconcile.go: the SOQL snapshot (waiting and offered PSRs with their skills, open
//     AgentWork, current presence, agents' skills; the six queries at once, the PSRs as up to
//     four ranges of Id at once when they fill more than a page) and the channels of each
//     presence status.
//   - events.go: the channels of each OMNIROUTE_EVENTS mode, PushTopic creation, the
//     committer of replay ids.
//   - writer.go: the AgentWork writer (inserts, batches, look-ups, requeues).
//   - agents.go: the contract with the agent gateway: AgentSink (router -> consoles, never
//     blocks), AgentInput (consoles -> router), ConsoleCommand and ConsoleReport, AgentSnapshot,
//     AgentRouter (Router.FromAgent, Router.AgentSnapshot).
//   - presence.go: presence sync and agent actions in the router's goroutine. Agent inputs
//     join the one inbox (the agent is always the authenticated user); agent-addressed
//     commands go to RouterOptions.Agents; CommandSetState's Presence becomes a console
//     command (login, set status, logout, with the org's status Id); UserServicePresence
//     events and the console's reports pass the echo window and the newer-intent rule (the
//     only presence rules with a clock; the tables are mapping's, the state the engine's);
//     accept and decline requests are checked against the open offer; a release or abandon
//     asks the console to close the AgentWork; a session's disposition goes to WorkItems.
//   - workitems.go: the writer of dispositions to work items (REST PATCH of the mapping's
//     channels[].dispositionField), off the router's goroutine.
//   - admin.go: the admin read API (/v1/plans, /v1/agents, /v1/queues,
//     /v1/work/{id}/explain), each answered from the engine's own views inside the router's
//     goroutine (Router.Query).
//   - metrics.go: the router's metrics.
//   - connector.go: New and Run; the core logs in, reads the org, checks the mapping, then
//     subscribes, reconciles, becomes ready and routes; it stops in the order of the
//     Connector type's doc.
//
// The agent gateway is the router's AgentSink and calls it as AgentRouter; the daemon builds it in
// New, mounts it at /v1/agent, and hands it each router it starts.
//
// What it never does: decide routing; log, return or expose a secret (tokens, client secret,
// password, admin token); let two goroutines share the engine. Metrics are registered by each
// part with promauto.With on a registerer the daemon has already prefixed with omniroute_.
package connector
