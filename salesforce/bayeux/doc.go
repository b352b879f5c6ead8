// Package bayeux is a Bayeux (CometD) long-polling client, written for
// Salesforce's Streaming API and tested against faye, a Bayeux server
// nobody here wrote.
//
// # Why our own code
//
// No Go CometD client is served by the module proxy these builds use: all
// 21 candidate module paths tried (zph/bayeux, elastic/bayeux, the
// gobayeux family, go-force, ...) answer 403 (see
// shared/dependencies.md §3). The protocol subset Salesforce speaks is
// small, so this package implements it on net/http, in the spirit of
// EMP-Connector, Salesforce's reference Java client.
//
// # What it relies on from Salesforce
//
//   - Bayeux 1.0 over HTTP/1.1 long-polling only, JSON arrays in POST bodies,
//     at {instance}/cometd/{version} (37.0 or later), with an Authorization
//     header set by the caller on every request.
//   - Cookies (BAYEUX_BROWSER and routing cookies) must come back on every
//     request, and two clients must never share a jar: each Client has its
//     own.
//   - The replay extension: ext {"replay":true} on the handshake, confirmed
//     by the server's ext.replay; a {"replay":{channel: id}} map on each
//     subscribe (-1 new events, -2 all retained, else after that id); each
//     event carries data.event.replayId. For a filtered subscription
//     ("/topic/X?F=v") the map names both the subscription and the bare
//     channel, as EMP-Connector keys it by the bare channel. A channel
//     subscribed from -1 is not replayed what was published before: the
//     handler gets a NotReplayed delivery (and for a refused replay id a
//     ReplayRefused one) once the subscription is live, so it can reconcile
//     without missing anything.
//   - Events in a long-poll response are taken off the session's queue when
//     the server answers: a connect that fails in any way (no answer, an
//     HTTP error, a body cut partway) may have lost some. The client then
//     handshakes again and resubscribes from the last replay id the handler
//     accepted, which the server replays.
//   - Advice on handshake and connect replies: reconnect retry|handshake|none,
//     interval and timeout (110 s on Salesforce). A /meta/connect gets a
//     deadline of the advised timeout plus NetworkDelay.
//   - Error strings "code:args:message": any "*::Unknown client" (403 on
//     Salesforce, 401 on faye) means the server dropped the session;
//     "401::Authentication invalid" means the token is bad; "Client {id}
//     has established a session, but no BAYEUX_BROWSER cookie present"
//     needs a new handshake (and cookie); a failed handshake's real cause
//     is in ext.sfdc.failureReason; "The replayId {N} you provided was
//     invalid" on subscribe means the id is outside the retention window;
//     limit and "503::Server is too busy" errors (in error or in
//     ext.sfdc.failureReason), like HTTP 429 and 503 with their Retry-After,
//     ask for a retry minutes later: a limit schedule that reaches minutes
//     within a few steps. A server may also send /meta/disconnect on its own
//     (API 64.0+): the client handshakes again.
//   - Salesforce caps a request at 32,768 bytes, so subscribes are batched
//     in POSTs of at most 16 KiB.
//
// # How
//
// Each response is decoded once with encoding/json, events' data members
// included (EventData); a message whose members do not have their types is
// decoded alone and handed over as a BadEvent, never dropped. Waits use
// github.com/cenkalti/backoff/v4 (salesforce/internal/retry), the same
// schedule the REST client uses. Live reports whether the subscriptions are
// up; Shutdown(ctx) sends /meta/disconnect within the caller's deadline, and is final
// (a Run that starts after it returns at once).
// Options.HTTPClient is used whole, with a private cookie jar.
//
// # What it never does
//
// It never publishes, never uses websockets, never stores replay ids itself
// (ResumePoints hands them to the caller, who checkpoints them), never
// fetches tokens (Authorize and Unauthorized belong to the caller) and never
// imports anything from this repository. Events reach the handler on the
// goroutine that called Run, in the order received; no /meta/connect is in
// flight while the handler runs, so a handler that blocks longer than
// Salesforce's 40 s reconnect window costs a re-handshake (and a replay
// from the resume points), not an event.
package bayeux
