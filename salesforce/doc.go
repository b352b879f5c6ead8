// Package salesforce is omniroute's client for a Salesforce org: an OAuth
// token source, a REST client, typed Omni-Channel objects and change
// events, and a Streaming API consumer with durable replay checkpoints.
//
// # Why our own code
//
// No Go Salesforce or CometD library fit (see dependencies.md): the
// REST libraries available to us have no context support, send token
// requests outside the caller's HTTP client, return untyped errors, race
// when refreshing the token, and rewrite query locators; no Go CometD
// client is available at all. So this package is a small, exact client in
// the spirit of net/http, on golang.org/x/oauth2 for the three grants,
// github.com/cenkalti/backoff/v4 for retries, and the Bayeux protocol layer
// in the bayeux subpackage.
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
//     differ from ours).
//   - Collections: composite/sobjects takes at most 200 records and
//     answers one result per record, in order, with allOrNone per request.
//   - Streaming: CometD at {instance_url}/cometd/{version}, long polling,
//     the replay extension (-1 new, -2 all retained, or "after this id"),
//     400 on a replay id outside retention (reported as a ReplayGap),
//     *::Unknown client after the server forgot the client. A channel
//     that must be resubscribed from -1 after that (no event handled on it
//     yet) is not replayed what was published meanwhile: that too is
//     reported as a ReplayGap (Resubscribed), so the caller reconciles.
//   - Change events: CDC payloads carry a ChangeEventHeader (entityName,
//     recordIds, changeType, changedFields, commit data) and only the
//     changed fields on UPDATE; GAP_* and GAP_OVERFLOW carry no fields.
//     PushTopic events carry event.type created/updated/deleted/undeleted
//     and the selected fields in sobject. Both decode to ChangeEvent.
//
// # What it never does
//
// It makes no routing decision and knows nothing of the connector or the
// mapping. It never logs or returns an access token, a client secret, a
// password or a private key (Token's String and LogValue redact). It never
// retries a record insert whose outcome is unknown (a 500 or a network
// error after sending): the caller knows how to look for the record first.
//
// Metrics are registered on the Registerer passed in Options (nil: none),
// under the omniroute_salesforce_* and omniroute_stream_* names; callers
// must not add the omniroute namespace again.
package salesforce
