package emulator

import (
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

const customChannel = "/data/ExternalRoutingChannel__chn"

// kinds lists "Entity:CHANGETYPE" of CDC messages.
func kinds(ev []map[string]any) []string {
	var got []string
	for _, m := range ev {
		hd := header(m)
		got = append(got, hd["entityName"].(string)+":"+hd["changeType"].(string))
	}
	return got
}

func changedFields(m map[string]any) []string {
	var out []string
	for _, f := range header(m)["changedFields"].([]any) {
		out = append(out, f.(string))
	}
	return out
}

// TestCustomChannelEnrichedEvents: offer -> decline -> re-offer -> accept -> away on the
// custom channel. PSR and AgentWork UPDATEs arrive with the filter fields enriched (current
// values, though unchanged), one record id each; the PSR DELETE does not arrive by default.
func TestCustomChannelEnrichedEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe(customChannel, -1)["successful"])
	plain := h.comet(h.token)
	plain.handshake()
	require.Equal(t, true, plain.subscribe("/data/PendingServiceRoutingChangeEvent", -1)["successful"])

	h.presence(agent1, "Available")
	w := h.createWork("Case", "Support_EN")
	aw := h.assign(w, agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "decline", nil))
	aw2 := h.assign(w, agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw2, "accept", nil))
	h.presence(agent1, "Away_from_desk")

	ev := c.events(11)
	require.Equal(t, []string{
		"UserServicePresence:CREATE", "PendingServiceRouting:CREATE",
		"PendingServiceRouting:UPDATE",                     // push
		"AgentWork:UPDATE", "PendingServiceRouting:UPDATE", // decline
		"PendingServiceRouting:UPDATE", // re-push
		"AgentWork:UPDATE",             // accept (the PSR DELETE is not delivered)
		"UserServicePresence:UPDATE", "UserServicePresence:CREATE",
	}, kinds(ev))
	for _, m := range ev {
		hd := header(m)
		require.Len(t, hd["recordIds"], 1, "enriched events are single-record")
		p := payload(m)
		switch hd["entityName"].(string) + ":" + hd["changeType"].(string) {
		case "PendingServiceRouting:UPDATE":
			require.Equal(t, "ExternalRouting", p["RoutingModel"])
			require.Equal(t, true, p["IsReadyForRouting"])
			require.NotContains(t, changedFields(m), "RoutingModel")
			require.NotContains(t, changedFields(m), "IsReadyForRouting")
			require.Contains(t, changedFields(m), "IsPushed")
		case "AgentWork:UPDATE":
			require.Equal(t, "ExternalRouting", p["RoutingModel"])
			require.NotContains(t, changedFields(m), "RoutingModel")
			require.Contains(t, changedFields(m), "Status")
		case "UserServicePresence:UPDATE":
			require.Equal(t, false, p["IsCurrentState"])
		}
	}
	require.Equal(t, "Declined", payload(ev[3])["Status"])
	require.Equal(t, "Opened", payload(ev[6])["Status"])

	// The per-entity channel stays unenriched: the push UPDATE carries only changed fields.
	pev := plain.events(5)
	require.Equal(t, []string{
		"PendingServiceRouting:CREATE", "PendingServiceRouting:UPDATE", "PendingServiceRouting:UPDATE",
		"PendingServiceRouting:UPDATE", "PendingServiceRouting:DELETE",
	}, kinds(pev))
	require.NotContains(t, payload(pev[1]), "RoutingModel")
	require.NotContains(t, payload(pev[1]), "IsReadyForRouting")
	require.Equal(t, replayID(ev[2]), replayID(pev[1]), "one replay id for the change on every channel")
}

// TestCustomChannelDeletesOption: with ChannelDeletes the PSR DELETE on accept arrives,
// enriched with the filter fields.
func TestCustomChannelDeletesOption(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.ChannelDeletes = true })
	h.presence(agent1, "Available")
	w := h.createWork("Case", "Support_EN")
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe(customChannel, -1)["successful"])
	aw := h.assign(w, agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
	ev := c.events(3)
	require.Equal(t, []string{"PendingServiceRouting:UPDATE", "AgentWork:UPDATE", "PendingServiceRouting:DELETE"}, kinds(ev))
	del := payload(ev[2])
	require.Equal(t, "ExternalRouting", del["RoutingModel"])
	require.Equal(t, true, del["IsReadyForRouting"])
	require.Equal(t, []any{w.PSRID}, header(ev[2])["recordIds"])
}

// TestCustomChannelUngroupsSharingReplayID: changes Salesforce groups (an agent going offline
// with two offers) come as one grouped event on /data/ChangeEvents and as single-record events
// sharing its replay id on the custom channel.
func TestCustomChannelUngroupsSharingReplayID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	w1 := h.createWork("Case", "Support_EN")
	w2 := h.createWork("Case", "Support_EN")
	aw1, aw2 := h.assign(w1, agent1), h.assign(w2, agent1)
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe(customChannel, -1)["successful"])
	all := h.comet(h.token)
	all.handshake()
	require.Equal(t, true, all.subscribe("/data/ChangeEvents", -1)["successful"])
	h.presence(agent1, "Offline")

	grouped := all.events(3)
	gpsr := cdcOf(grouped, "PendingServiceRouting")
	require.Len(t, gpsr, 1)
	require.Len(t, header(gpsr[0])["recordIds"], 2)
	gaw := cdcOf(grouped, "AgentWork")
	require.Len(t, gaw, 1)

	ev := c.events(5)
	psrs := cdcOf(ev, "PendingServiceRouting")
	require.Len(t, psrs, 2)
	require.Equal(t, replayID(gpsr[0]), replayID(psrs[0]))
	require.Equal(t, replayID(psrs[0]), replayID(psrs[1]), "ungrouped events share the replay id")
	ids := []any{header(psrs[0])["recordIds"].([]any)[0], header(psrs[1])["recordIds"].([]any)[0]}
	require.ElementsMatch(t, []any{w1.PSRID, w2.PSRID}, ids)
	for _, m := range psrs {
		require.Equal(t, false, payload(m)["IsPushed"])
		require.Equal(t, true, payload(m)["IsReadyForRouting"])
	}
	aws := cdcOf(ev, "AgentWork")
	require.Len(t, aws, 2)
	require.Equal(t, replayID(gaw[0]), replayID(aws[0]))
	require.Equal(t, replayID(aws[0]), replayID(aws[1]))
	require.ElementsMatch(t, []any{aw1, aw2}, []any{header(aws[0])["recordIds"].([]any)[0], header(aws[1])["recordIds"].([]any)[0]})

	// A subscribe from the shared replay id starts after both.
	after := h.comet(h.token)
	after.handshake()
	require.Equal(t, true, after.subscribe(customChannel, replayID(psrs[0]))["successful"])
	rest := after.events(10)
	require.False(t, slices.ContainsFunc(rest, func(m map[string]any) bool { return replayID(m) == replayID(psrs[0]) }))
}

// TestCustomChannelReplayCarriesCurrentValues: a replayed enriched event carries the enriched
// field's value at replay time; a field the change itself carries keeps its changed value.
// The filter is evaluated on the enriched values at commit.
func TestCustomChannelReplayCarriesCurrentValues(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	w := h.createWork("Case", "Support_EN")
	live := h.comet(h.token)
	live.handshake()
	require.Equal(t, true, live.subscribe(customChannel, -1)["successful"])
	h.assign(w, agent1)
	pushed := live.events(1)
	require.Equal(t, true, payload(pushed[0])["IsReadyForRouting"])

	// The org takes the PSR out of routing (as an admin or a flow would).
	h.em.mu.Lock()
	tx := h.em.begin("", "")
	psr, ok := h.em.st.get(w.PSRID)
	require.True(t, ok)
	tx.update(psr, map[string]any{"IsReadyForRouting": false})
	h.em.commit(tx)
	h.em.mu.Unlock()
	// That UPDATE fails the filter on its enriched values: it never reaches the channel.
	require.Empty(t, live.events(1))

	again := h.comet(h.token)
	again.handshake()
	require.Equal(t, true, again.subscribe(customChannel, -2)["successful"])
	ev := again.events(4)
	require.Equal(t, []string{"UserServicePresence:CREATE", "PendingServiceRouting:CREATE", "PendingServiceRouting:UPDATE"}, kinds(ev))
	require.Equal(t, replayID(pushed[0]), replayID(ev[2]))
	require.Equal(t, false, payload(ev[2])["IsReadyForRouting"], "replayed with the value at replay time")
	require.Equal(t, "ExternalRouting", payload(ev[2])["RoutingModel"])
	require.Equal(t, true, payload(ev[2])["IsPushed"], "a changed field keeps its changed value")
	require.Equal(t, true, payload(ev[1])["IsReadyForRouting"], "a CREATE carries its own fields, not enriched ones")
}
