// Package streaming is the org emulator's Streaming API endpoint: a Bayeux 1.0 (CometD)
// server over HTTP long-polling with Salesforce's replay extension, as Salesforce serves it at
// /cometd/NN.N.
//
// It answers /meta/handshake, /meta/connect, /meta/subscribe, /meta/unsubscribe and
// /meta/disconnect, batched in one JSON array per POST; sets and checks the BAYEUX_BROWSER
// cookie; reads the Authorization header as "Bearer <token>", "OAuth <token>" or a bare token;
// and words its errors as Salesforce does (401::Authentication invalid, 403::Unknown client,
// the invalid-replayId 400, ...). Events come in through Server.Publish, each with a replay id
// shared by its channels and strictly increasing; subscribers receive them in publish order in
// the next /meta/connect reply. A subscribe may replay retained events from -2 (all), -1
// (new only) or a stored replay id; retention is per channel (72 h /data, 24 h /topic by
// default) and can be cut short on demand (ExpireEvents, ExpireBefore).
//
// Behaviour Salesforce does not document, and what this package chose:
//   - The handshake reply always carries ext {"replay":true,"payload.format":true}, whether
//     or not the client asked for the replay extension; it has no advice and no
//     "reestablish" (as in replies logged from real orgs).
//   - Handshake failures are "403::Handshake denied" with the cause in ext.sfdc.failureReason
//     ("401::Request requires authentication" without a header, "401::Authentication invalid"
//     for a rejected token) and advice reconnect "none".
//   - The cookie is set by the handshake when the request has none (Path=/, HttpOnly, no
//     Secure so that plain-HTTP test clients keep it); every other meta message with a known
//     clientId must present it. Missing: "400::Client {<clientId>} has established a session,
//     but no BAYEUX_BROWSER cookie present" (advice reconnect "handshake"). Present with
//     another value: "403::Unknown client", as a request routed to another server would get.
//   - Each POST is authenticated once. Other meta messages without an Authorization header
//     get "401::Request requires authentication" (advice reconnect "none"). On /meta/connect
//     a rejected token answers "401::Authentication invalid" with advice
//     {"reconnect":"none","interval":0} and forgets the clientId; a held connect re-checks
//     its token before answering (RevalidateSessions makes every held connect do so at once).
//     A request authenticated as another principal than the handshake's gets
//     "400::Authenticated user id does not match the session's user id".
//   - A handshake whose supportedConnectionTypes lack "long-polling", and a connect with
//     another connectionType, get "400::Invalid connection type {<types>}" (advice none).
//   - A clientId expires when it has no connect held and has sent nothing for ClientTimeout
//     (default 40 s, Salesforce's reconnect timeout). Expiry is decided with the Now clock,
//     when the client next calls and in a sweep run from Publish and handshake; a held connect
//     never expires.
//   - The first connect after a handshake returns at once; later ones are held up to
//     AdviceTimeout, or the client's own advice.timeout when smaller. A newer connect from the
//     same client ends the held one with HTTP 408 (CometD 3, which Salesforce's server derives
//     from), or with a normal reply when it shared its POST with other messages. While one
//     client of a browser holds a connect, another client of the same browser is not held and
//     gets advice {"interval":2000,"multiple-clients":true,...}. A held connect answers at
//     once with "403::Unknown client" (advice handshake) when its client is dropped
//     (DropAllClients, queue overflow), with success and advice reconnect "none" when the
//     client disconnects, and with an empty success when the server closes.
//   - Events are delivered only in /meta/connect replies, before the meta replies of that
//     POST, at most MaxResponseBytes of them per reply (the rest make the next connect return
//     at once).
//   - Replay values: -1, -2, or a replay id that is at most the last id issued and greater
//     than every id forgotten on that channel (by retention, MaxEvents, ExpireEvents or
//     ExpireBefore). 0, other negatives, ids never issued, non-numbers and forgotten ids get
//     the invalid-replayId error. A replay map that does not name the subscribed channel
//     (also an empty map) gets "400::The replayId for channel {<ch>} wasn't found using the
//     provided replay ID map {{k=v, ...}}. ..."; no replay extension at all means -1.
//     Subscribing again with the same subscription string replaces the earlier subscription:
//     its undelivered events are dropped (unless another subscription of the client covers
//     the channel) and the replay starts from the new value.
//   - Unsubscribing from a channel the client is not subscribed to succeeds. /meta and
//     /service subscriptions and any client publish get "403::Restricted channel"; unknown
//     /meta channels "404::Unknown channel".
//   - Subscription filters ("/topic/Name?Field=value&Other='x'", as for PushTopics) work on
//     any channel: Authorize sees the whole string; events come on the bare channel and only
//     when every field of data.sobject (or, failing that, data.payload) equals its value
//     (JSON strings by content, quotes around the value optional; other JSON values by their
//     text; field names matched case-insensitively when no exact match exists). A filter
//     that does not parse as a URL query gets the channel-does-not-exist error. A replay map
//     may name the subscription or the bare channel. A client with a plain and a filtered
//     subscription to one channel gets each event once.
//   - A client whose undelivered events exceed MaxQueue is dropped (403::Unknown client).
//   - DropAllClients is a server-side disconnect: the first /meta/connect of each dropped
//     client (the held one or the next) answers {"channel":"/meta/disconnect","successful":true}
//     (CometD's server-sent disconnect) before its 403::Unknown client reply. Expiry and queue
//     overflow send no disconnect message.
//   - Allocations: MaxClients refuses handshakes beyond the org's concurrent clients
//     ("403::Handshake denied", ext.sfdc.failureReason "403::Organization concurrent user
//     limit exceeded", as logged from a real org). Deliveries of /data/ and /event/ events are
//     counted per subscriber over a rolling 24 h (Deliveries); with DailyDeliveryLimit set, a
//     connect delivers at most what is left and, once it is used up, every /meta/connect
//     answers "403::Organization total events daily limit exceeded" (advice reconnect "none",
//     after a server-sent disconnect) and forgets the client.
//   - InjectFault arms Salesforce-shaped faults: "too-busy" (503::Server is too busy... in
//     ext.sfdc.failureReason on the next handshakes, connects or subscribes),
//     "concurrent-clients" and "daily-limit". WriteHTTPFault answers a transport-level fault
//     with its HTTP status and a Bayeux error array, never plain text.
//   - Bodies that are not a JSON array (or one object) of messages get HTTP 400 with
//     [{"error":"400::Request body must be a JSON array of Bayeux messages","successful":false}];
//     an element that is not a message object gets "400::Malformed Bayeux message" while the
//     rest of the batch is served. Bodies over 32,768 bytes get HTTP 413 "Maximum Request
//     Size Exceeded"; non-POST requests HTTP 405; requests after Close HTTP 503.
//   - Paths with a "cometd" segment must carry a version of 37.0 or later.
//
// The package starts no goroutines (a long poll waits in its request's goroutine, on a real
// timer), takes every retention and expiry decision from Options.Now, never imports the rest
// of the emulator or our Salesforce client, never writes a response or calls Authenticate or
// Authorize while holding its lock (Publish's build runs under the publish lock only), and
// never logs tokens. Mount it behind an http.Server whose WriteTimeout (if any) exceeds
// AdviceTimeout, or held connects are cut.
package streaming
