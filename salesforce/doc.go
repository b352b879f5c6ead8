// Package salesforce is omniroute's client for a Salesforce org: an OAuth
// token source, a REST client, typed Omni-Channel objects and change
// events, and a Streaming API consumer with durable replay checkpoints.
//
// # The shape
//
//   - TokenSource (auth.go): one token per grant, single-flight with
//     golang.org/x/sync/singleflight, dropped when a request is rejected.
//   - Client (salesforce.go, query.go, records.go): REST calls through one
//     retry loop on github.com/cenkalti/backoff/v4 (internal/retry, shared
//     with the stream); errors classified once (errors.go).
//   - Typed objects (objects.go): struct tags are the one place a field is
//     named; the SOQL field lists (PendingServiceRoutingFields, ...) are
//     derived from them.
//   - Stream (stream.go) on the bayeux client: each event is decoded once,
//     with encoding/json, into a ChangeEvent whose PSR, AgentWork or
//     Presence holds the typed record (numbers as numbers) and whose Has
//     says which fields an UPDATE carried. The handler gets a Message:
//     an Event, a BadEvent (could not be decoded: count and reconcile), or
//     Missed (events may have been missed: reconcile). Commit(channel, id)
//     is monotonic per channel; Live says the subscriptions are up (for
//     readiness); Shutdown(ctx) disconnects within the caller's deadline,
//     stops Run in any phase (its first token included) and is final: a
//     Run that starts after it returns nil at once.
//     The checkpoint store is the caller's (CheckpointStore; the daemon's
//     file store is connector.FileCheckpointStore).
//   - Metrics (metrics.go): promauto.With(Registerer), names without the
//     omniroute_ namespace (the daemon wraps the registerer with
//     prometheus.WrapRegistererWithPrefix); registering a second client of
//     the same kind on one registerer is an error from its constructor.
//
// # Why our own code
//
// No Go Salesforce or CometD library fit (see dependencies.md): the
// REST libraries available to us have no context support, send token
// requests outside the caller's HTTP client, return untyped errors, race
// when refreshing the token, and rewrite query locators; no Go CometD
// client is available at all. So this package is a small, exact client in
// the spirit of net/http, on golang.org/x/oauth2 for the three grants,
// github.com/cenkalti/backoff/v4 for retries, encoding/json for every
// decode, and the Bayeux protocol layer in the bayeux subpackage.
//
// # What it relies on in Salesforce's behaviour
//
//   - OAuth: the token endpoint {login}/services/oauth2/token answers
//     access_token and instance_url, and no expires_in. A token is
//     therefore used until it is rejected: REST HTTP 401 or
//     INVALID_SESSION_ID, or CometD 401::Authentication invalid. Then the
//     TokenSource is invalidated and the grant is run again (one request
//     however many callers were rejected). The JWT bearer grant signs RS256
//     with a numeric exp a few minutes ahead.
//   - REST: errors are JSON arrays of {errorCode, message, fields}
//     (collections say statusCode). 5xx, 429, UNABLE_TO_LOCK_ROW and
//     REQUEST_LIMIT_EXCEEDED other than the daily TotalRequests allocation
//     are transient; Retry-After is honoured. Every response carries
//     Sforce-Limit-Info: api-usage=used/max, which becomes two gauges.
//   - Queries: done=false pages carry nextRecordsUrl, a path on the
//     instance, which is followed exactly as returned (its API version may
//     differ from ours). The next page is requested as soon as a page's
//     header is in, never more than one page ahead of the caller, so a page
//     decodes while the next travels. A record that does not decode into
//     its type is skipped, logged and counted, never failing its page.
//   - Collections: composite/sobjects takes at most 200 records and
//     answers one result per record, in order, with allOrNone per request.
//   - Streaming: CometD at {instance_url}/cometd/{version}, long polling,
//     the replay extension (-1 new, -2 all retained, or "after this id"),
//     400 on a replay id outside retention (reported as Missed,
//     ReplayRefused), *::Unknown client after the server forgot the client.
//     A channel subscribed from -1 (at start without a checkpoint, or again
//     after a lost session before any event was handled on it) is not
//     replayed what was published before: that is reported as Missed
//     (NotReplayed), so the caller reconciles. A long poll that failed in
//     any way (a body cut partway included) may have carried events the
//     server will not send again on that session: the client handshakes
//     again and resubscribes from the last handled replay id.
//   - Change events: CDC payloads carry a ChangeEventHeader (entityName,
//     recordIds, changeType, changedFields, commit data) and only the
//     changed fields on UPDATE (plus fields a channel filter enriches);
//     Salesforce's gap events (GAP_*, GAP_OVERFLOW; ChangeType.IsGapEvent)
//     carry no fields. PushTopic events carry event.type
//     created/updated/deleted/undeleted and the selected fields in sobject.
//     Both decode to ChangeEvent.
//
// # What it never does
//
// It makes no routing decision and knows nothing of the connector or the
// mapping. It never logs or returns an access token, a client secret, a
// password or a private key (Token's String and LogValue redact). It never
// retries a record insert whose outcome is unknown (a 500 or a network
// error after sending): the caller knows how to look for the record first.
//
// Metrics are registered on the Registerer passed in the options (nil:
// none), as salesforce_* and stream_*; the caller adds the namespace.
package salesforce
