package emulator

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const psrTopicQuery = "Select Id, Serial, QueueId, WorkItemId, IsPushed, ServiceChannelId, LastDeclinedAgentSession, CreatedDate from PendingServiceRouting where RoutingModel = 'ExternalRouting'"

func TestPushTopicEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	bad := []map[string]any{
		{"Name": "NoId", "Query": "SELECT IsPushed FROM PendingServiceRouting", "ApiVersion": 41.0},
		{"Name": "BadField", "Query": "SELECT Id, Nope FROM PendingServiceRouting", "ApiVersion": 41.0},
		{"Name": "ThisNameIsFarTooLongForAPushTopic", "Query": psrTopicQuery, "ApiVersion": 41.0},
	}
	for _, body := range bad {
		s, b := h.rest(http.MethodPost, "sobjects/PushTopic", body)
		require.Equal(t, http.StatusBadRequest, s, string(b))
	}
	s, b := h.rest(http.MethodPost, "sobjects/PushTopic", map[string]any{"Name": "PSRPushTopic", "Query": psrTopicQuery, "ApiVersion": 41.0, "NotifyForFields": "Referenced"})
	require.Equal(t, http.StatusCreated, s, string(b))
	s, _ = h.rest(http.MethodPost, "sobjects/PushTopic", map[string]any{"Name": "PSRPushTopic", "Query": psrTopicQuery, "ApiVersion": 41.0})
	require.Equal(t, http.StatusBadRequest, s, "duplicate name")

	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe("/topic/PSRPushTopic", -1)["successful"])
	unknown := c.subscribe("/topic/Nope", -1)
	require.Equal(t, false, unknown["successful"])
	require.Contains(t, unknown["error"], "400::The channel you requested to subscribe to does not exist")

	h.presence(agent1, "Available")
	w, aw := h.routed("Case", "Support_EN", agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "decline", nil))
	aw = h.assign(w, agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
	ev := c.events(6)
	var types []string
	for _, m := range ev {
		require.Equal(t, "/topic/PSRPushTopic", m["channel"])
		data := m["data"].(map[string]any)
		types = append(types, data["event"].(map[string]any)["type"].(string))
		so := data["sobject"].(map[string]any)
		require.Equal(t, w.PSRID, so["Id"])
		require.NotContains(t, so, "RoutingModel") // only SELECT fields
	}
	require.Equal(t, []string{"created", "updated", "updated", "updated", "deleted"}, types)
	last := ev[len(ev)-1]["data"].(map[string]any)
	require.Equal(t, true, last["sobject"].(map[string]any)["IsPushed"])
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, last["event"].(map[string]any)["createdDate"])

	// Deactivating the topic stops events and the channel.
	id := h.query("SELECT Id FROM PushTopic WHERE Name = 'PSRPushTopic'")[0]["Id"].(string)
	s, _ = h.rest(http.MethodPatch, "sobjects/PushTopic/"+id, map[string]any{"IsActive": false})
	require.Equal(t, http.StatusNoContent, s)
	c2 := h.comet(h.token)
	c2.handshake()
	require.Equal(t, false, c2.subscribe("/topic/PSRPushTopic", -1)["successful"])
}

func TestReplayExpiryDropAndGaps(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w1 := h.createWork("Case", "Support_EN")
	w2 := h.createWork("Case", "Support_EN")
	const ch = "/data/PendingServiceRoutingChangeEvent"

	all := h.comet(h.token)
	all.handshake()
	require.Equal(t, true, all.subscribe(ch, -2)["successful"])
	ev := all.events(2)
	require.Len(t, ev, 2)
	require.Equal(t, []any{w1.PSRID}, header(ev[0])["recordIds"])
	first := replayID(ev[0])

	after := h.comet(h.token)
	after.handshake()
	require.Equal(t, true, after.subscribe(ch, first)["successful"])
	ev = after.events(1)
	require.Len(t, ev, 1)
	require.Equal(t, []any{w2.PSRID}, header(ev[0])["recordIds"])

	// Gap and overflow events are header-only.
	s, b := h.control(http.MethodPost, "streaming/gap", map[string]any{"entity": "PendingServiceRouting", "changeType": "GAP_OVERFLOW"})
	require.Equal(t, http.StatusOK, s, string(b))
	ev = after.events(1)
	require.Len(t, ev, 1)
	require.Equal(t, "GAP_OVERFLOW", header(ev[0])["changeType"])
	require.Equal(t, []any{"000000000000000AAA"}, header(ev[0])["recordIds"])
	require.Len(t, payload(ev[0]), 1)
	s, _ = h.control(http.MethodPost, "streaming/gap", map[string]any{"entity": "PendingServiceRouting", "changeType": "GAP_UPDATE"})
	require.Equal(t, http.StatusBadRequest, s)

	// Expired replay ids are refused with the documented 400.
	s, _ = h.control(http.MethodPost, "streaming/expire-replay", nil)
	require.Equal(t, http.StatusOK, s)
	late := h.comet(h.token)
	late.handshake()
	reply := late.subscribe(ch, first)
	require.Equal(t, false, reply["successful"])
	require.True(t, strings.HasPrefix(reply["error"].(string), "400::The replayId {"), reply["error"])

	// Dropped clients get 403::Unknown client.
	s, _ = h.control(http.MethodPost, "streaming/drop-clients", nil)
	require.Equal(t, http.StatusOK, s)
	out := after.send(map[string]any{"channel": "/meta/connect", "connectionType": "long-polling"})
	rep := out[len(out)-1] // after the server-sent /meta/disconnect
	require.Equal(t, false, rep["successful"])
	require.Equal(t, "403::Unknown client", rep["error"])
}
