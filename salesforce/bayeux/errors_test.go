package bayeux

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		code int
		args []string
		msg  string
	}{
		{"403::Unknown client", 403, nil, "Unknown client"},
		{"401:3n1smd2f:Unknown client", 401, []string{"3n1smd2f"}, "Unknown client"},
		{"403:a,b:Unknown client", 403, []string{"a", "b"}, "Unknown client"},
		{"400::API version in the URI is mandatory. URI format: '/cometd/66.0'", 400, nil, "API version in the URI is mandatory. URI format: '/cometd/66.0'"},
		{"403:denied_by_security_policy:create_denied", 403, []string{"denied_by_security_policy"}, "create_denied"},
		{"Unknown client", 0, nil, "Unknown client"},
		{"", 0, nil, ""},
		{"abc::x", 0, nil, "abc::x"},
		{"42::x", 0, nil, "42::x"},
		{"4031::x", 0, nil, "4031::x"},
		{"403:x", 0, nil, "403:x"},
		{"099::x", 0, nil, "099::x"},
	}
	for _, tc := range tests {
		code, args, msg := ParseError(tc.in)
		require.Equal(t, tc.code, code, tc.in)
		require.Equal(t, tc.args, args, tc.in)
		require.Equal(t, tc.msg, msg, tc.in)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, reason string
		want        class
	}{
		{"403::Unknown client", "", classUnknownClient},
		{"401:abc:Unknown client", "", classUnknownClient},
		{"403::Client has not completed handshake", "", classUnknownClient},
		{"400::Client {abc} has established a session, but no BAYEUX_BROWSER cookie present", "", classUnknownClient},
		{"401::Authentication invalid", "", classAuth},
		{"403::Handshake denied", "401::Request requires authentication", classAuth},
		{"403::Handshake denied", "", classAuth},
		{"400::The replayId {1553783} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.", "", classInvalidReplay},
		{"403::Organization total events daily limit exceeded", "", classLimit},
		{"403::Organization concurrent user limit exceeded", "", classLimit},
		{"403::Subscription limit exceeded for this topic", "", classLimit},
		{"403::Handshake denied", "503::Server is too busy. Please try your request again later.", classLimit},
		{"403::Restricted channel", "", classOther},
		{"400::The replayId for channel {/topic/X} wasn't found using the provided replay ID map {{}}. Ensure that the channel name you provided in the replay map is valid and matches the channel name used for subscribing.", "", classOther},
		{"", "", classOther},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, classify(newError("x", "", tc.raw, tc.reason)), "%s / %s", tc.raw, tc.reason)
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	require.Equal(t, "bayeux subscribe /topic/X refused: 403 Restricted channel", newError("subscribe", "/topic/X", "403::Restricted channel", "").Error())
	require.Equal(t, "bayeux handshake refused: 401 Authentication invalid", newError("handshake", "", "403::Handshake denied", "401::Authentication invalid").Error())
	require.Equal(t, "bayeux connect refused: unsuccessful reply without an error", newError("connect", "", "", "").Error())
	require.Equal(t, "replay id 5 refused on /data/X: gone", (&ReplayError{Channel: "/data/X", ReplayID: 5, Message: "gone"}).Error())
	require.Equal(t, "bayeux connect: http status 502", (&HTTPError{Op: "connect", Status: 502}).Error())
}

func TestAdviceDuration(t *testing.T) {
	t.Parallel()
	require.Equal(t, time.Duration(0), adviceDuration(-5))
	require.Equal(t, 110*time.Second, adviceDuration(110000))
	require.Equal(t, maxAdvice, adviceDuration(1e300))
	nan := 0.0
	require.Equal(t, time.Duration(0), adviceDuration(nan/nan))
}

// An event's replay id is data.event.replayId, an integer (quoted or not); anything else in
// its place makes the event bad, while a missing one is 0. A data member whose shape does not
// fit takes only its own message with it.
func TestReplayIDAndBadEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data string
		want int64
		bad  bool
	}{
		{`{"schema":"s","payload":{"event":{"replayId":1}},"event":{"replayId":6421}}`, 6421, false},
		{`{"event":{"createdDate":"2016-03-29T16:40:08.208Z","replayId":13,"type":"created"},"sobject":{"Id":"x"}}`, 13, false},
		{` { "event" : { "replayId" : 9223372036854775807 } } `, 9223372036854775807, false},
		{`{"event":{"replayId":"12"}}`, 12, false},
		{`{"event":{"replayId":null}}`, 0, false},
		{`{"event":{}}`, 0, false},
		{`{"event":null}`, 0, false},
		{`{"payload":{}}`, 0, false},
		{`{"event":{"replayId":1.5}}`, 0, true},
		{`{"event":{"replayId":1e3}}`, 0, true},
		{`{"event":{"replayId":99999999999999999999}}`, 0, true},
		{`{"event":{"replayId":"seven"}}`, 0, true},
		{`{"event":[{"replayId":4}]}`, 0, true},
		{`{"payload":"text","event":{"replayId":4}}`, 4, true},
		{`"string"`, 0, true},
		{`[1]`, 0, true},
	}
	for _, tc := range tests {
		body := `[{"channel":"/meta/connect","id":"1","successful":true},{"channel":"/data/X","data":` + tc.data + `},{"channel":"/data/X","data":{"event":{"replayId":99}}}]`
		msgs, err := decodeResponse([]byte(body))
		require.NoError(t, err, tc.data)
		require.Len(t, msgs, 3, tc.data)
		require.NotNil(t, reply(msgs, "1", chConnect, ""), tc.data)
		d := eventDelivery("/data/X", &msgs[1])
		require.Equal(t, tc.bad, d.Kind == BadEvent, "%s: %v", tc.data, d.Err)
		require.Equal(t, tc.want, d.ReplayID, tc.data)
		if tc.bad {
			require.Error(t, d.Err)
			require.NotEmpty(t, d.Raw)
		}
		next := eventDelivery("/data/X", &msgs[2])
		require.Equal(t, Delivery{Kind: Event, Channel: "/data/X", ReplayID: 99, Data: next.Data}, next, "the next event is intact")
	}
	for _, body := range []string{`{"channel":"/data/X","data":{"event":{"replayId":`, `"x"`, `[{"channel":5}]`, `[{"id":"1"}]`, ``} {
		_, err := decodeResponse([]byte(body))
		require.ErrorIs(t, err, errMalformed, body)
	}
}
