package streaming

import (
	"errors"
	"sort"
	"strconv"
	"strings"
)

// Bayeux error strings, worded as Salesforce words them ("<code>::<message>"). The placeholders
// Salesforce documents in braces keep their braces in the real messages (for example
// "The replayId {1553783} you provided was invalid."), so the helpers below do the same.
const (
	// ErrTextAuthInvalid answers a request whose token Authenticate rejected.
	ErrTextAuthInvalid = "401::Authentication invalid"
	// ErrTextAuthRequired answers a request without an Authorization header.
	ErrTextAuthRequired = "401::Request requires authentication"
	// ErrTextHandshakeDenied is the handshake's error; the cause goes in ext.sfdc.failureReason.
	ErrTextHandshakeDenied = "403::Handshake denied"
	// ErrTextUnknownClient answers a clientId the server does not know (expired, dropped, never issued).
	ErrTextUnknownClient = "403::Unknown client"
	// ErrTextNoHandshake answers a message without a clientId.
	ErrTextNoHandshake = "403::Client has not completed handshake"
	// ErrTextRestrictedChannel answers a subscription to a /meta or /service channel, and a client publish.
	ErrTextRestrictedChannel = "403::Restricted channel"
	// ErrTextChannelNotSpecified answers a subscribe without a subscription.
	ErrTextChannelNotSpecified = "400::Channel name not specified"
	// ErrTextLeadingSlash answers a subscription that does not start with '/'.
	ErrTextLeadingSlash = "400::Channel subscriptions must start with a leading '/'"
	// ErrTextUserMismatch answers a request authenticated as a different principal than the session's.
	ErrTextUserMismatch = "400::Authenticated user id does not match the session's user id"
	// ErrTextVersionMandatory answers a request whose path lacks the API version.
	ErrTextVersionMandatory = "400::API version in the URI is mandatory. URI format: '/cometd/66.0'"
	// ErrTextUnsupportedVersion answers a request for an API version below 37.0.
	ErrTextUnsupportedVersion = "400::Unsupported API version. Only API versions '37.0' and later are supported. URI format: '/cometd/66.0'"
	// ErrTextUnknownChannel answers a message on an unknown /meta channel.
	ErrTextUnknownChannel = "404::Unknown channel"
	// ErrTextMalformedMessage answers an array element that is not a Bayeux message object
	// (emulator wording: Salesforce documents none).
	ErrTextMalformedMessage = "400::Malformed Bayeux message"
	// ErrTextMalformedBody answers a body that is not JSON, not an object or array, or empty
	// (emulator wording: Salesforce documents none).
	ErrTextMalformedBody = "400::Request body must be a JSON array of Bayeux messages"
	// ErrTextNotAllowed answers a subscriber the Authorize hook did not name an error for.
	ErrTextNotAllowed = "403::Restricted channel"
)

// ChannelNotFoundError is the subscribe error for a channel that does not exist, worded as
// Salesforce words it. Authorize hooks return it for unknown channels.
func ChannelNotFoundError(channel string) error {
	return errors.New("400::The channel you requested to subscribe to does not exist {" + channel + "}")
}

func invalidConnectionType(t string) string {
	return "400::Invalid connection type {" + t + "}"
}

func noCookie(clientID string) string {
	return "400::Client {" + clientID + "} has established a session, but no " + browserCookie + " cookie present"
}

// invalidReplayID has two spaces after "invalid." as the real messages quoted in issues do.
func invalidReplayID(value string) string {
	return "400::The replayId {" + value + "} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."
}

// replayMapMismatch renders the replay map as Java's Map.toString does ({k=v, k2=v2}, keys
// sorted here for determinism), inside the braces of Salesforce's placeholder.
func replayMapMismatch(channel string, m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	b.WriteByte('}')
	return "400::The replayId for channel {" + channel + "} wasn't found using the provided replay ID map {" + b.String() +
		"}. Ensure that the channel name you provided in the replay map is valid and matches the channel name used for subscribing."
}

func formatID(id int64) string { return strconv.FormatInt(id, 10) }
