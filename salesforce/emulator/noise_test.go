package emulator

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPresenceCapacityFigures: AverageCapacity, IdleDuration and AtCapacityDuration of the
// current UserServicePresence row follow the agent's load and are written on accept and close,
// as UPDATEs that the custom channel's filter does not pass.
func TestPresenceCapacityFigures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.ClientTimeout = time.Hour })
	all := h.comet(h.token)
	all.handshake()
	require.Equal(t, true, all.subscribe("/data/UserServicePresenceChangeEvent", -1)["successful"])
	custom := h.comet(h.token)
	custom.handshake()
	require.Equal(t, true, custom.subscribe(customChannel, -1)["successful"])

	h.presence(agent1, "Available") // T0
	usp := h.query("SELECT Id, ConfiguredCapacity, AverageCapacity, IdleDuration FROM UserServicePresence WHERE IsCurrentState = true")
	require.Len(t, usp, 1)
	require.Equal(t, 10.0, usp[0]["ConfiguredCapacity"])
	h.clock.Advance(30 * time.Second) // idle
	w := h.createWork("Case", "Support_EN")
	psr := h.record("PendingServiceRouting", w.PSRID)
	s, b := h.rest(http.MethodPost, "sobjects/AgentWork", map[string]any{
		"UserId": h.userID(agent1), "WorkItemId": w.WorkItemID, "ServiceChannelId": psr["ServiceChannelId"],
		"PendingServiceRoutingId": w.PSRID, "CapacityWeight": 10, // the whole capacity
	})
	require.Equal(t, http.StatusCreated, s, string(b))
	aw := h.query("SELECT Id FROM AgentWork")[0]["Id"].(string)
	h.clock.Advance(30 * time.Second) // at capacity
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
	rec := h.record("UserServicePresence", usp[0]["Id"].(string))
	require.Equal(t, 5.0, rec["AverageCapacity"]) // (0*30 + 10*30) / 60
	require.Equal(t, 30.0, rec["IdleDuration"])
	require.Equal(t, 30.0, rec["AtCapacityDuration"])
	h.clock.Advance(60 * time.Second)
	require.Equal(t, http.StatusOK, h.awAction(aw, "close", nil))
	rec = h.record("UserServicePresence", usp[0]["Id"].(string))
	require.Equal(t, 7.5, rec["AverageCapacity"]) // (0*30 + 10*90) / 120
	require.Equal(t, 30.0, rec["IdleDuration"])
	require.Equal(t, 90.0, rec["AtCapacityDuration"])

	ev := all.events(3)
	require.Equal(t, []string{"UserServicePresence:CREATE", "UserServicePresence:UPDATE", "UserServicePresence:UPDATE"}, kinds(ev))
	for _, m := range ev[1:] {
		require.Subset(t, changedFields(m), []string{"AverageCapacity", "AtCapacityDuration"})
		require.NotContains(t, payload(m), "IsCurrentState", "the per-entity channel is not enriched")
	}
	// On the custom channel the figures' UPDATEs fail the filter (IsCurrentState is true).
	got := kinds(custom.events(10))
	require.Equal(t, 1, countOf(got, "UserServicePresence:CREATE"))
	require.Zero(t, countOf(got, "UserServicePresence:UPDATE"))
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// TestNoiseUpdates: with a noise rate of 1 every change is followed by UPDATEs that change
// nothing routing reads: on the custom channel a PSR UPDATE without IsPushed and an AgentWork
// UPDATE without Status arrive (enriched, so they pass the filters); a missing field there
// must never be read as false or zero. Rate 0 stops the noise.
func TestNoiseUpdates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe(customChannel, -1)["successful"])
	cases := h.comet(h.token)
	cases.handshake()
	require.Equal(t, true, cases.subscribe("/data/CaseChangeEvent", -1)["successful"])

	for _, bad := range []map[string]any{{"rate": -0.1}, {"rate": 1.5}, {"rate": "x"}} {
		s, _ := h.control(http.MethodPost, "noise", bad)
		require.Equal(t, http.StatusBadRequest, s, bad)
	}
	s, b := h.control(http.MethodPost, "noise", map[string]any{"rate": 1})
	require.Equal(t, http.StatusOK, s, string(b))
	w := h.createWork("Case", "Support_EN")
	aw := h.assign(w, agent1)
	require.NoError(t, h.em.SetNoise(0))
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))

	ev := c.events(10)
	var psrNoise, awNoise int
	for _, m := range ev {
		hd := header(m)
		p := payload(m)
		switch hd["entityName"].(string) + ":" + hd["changeType"].(string) {
		case "PendingServiceRouting:UPDATE":
			if _, pushed := p["IsPushed"]; !pushed {
				psrNoise++
				require.ElementsMatch(t, []string{"Serial", "LastModifiedDate"}, changedFields(m))
				require.Equal(t, true, p["IsReadyForRouting"], "enriched")
			}
		case "AgentWork:UPDATE":
			if _, st := p["Status"]; !st {
				awNoise++
				require.Contains(t, changedFields(m), "ActiveTime")
				require.Equal(t, "ExternalRouting", p["RoutingModel"], "enriched")
			}
		}
	}
	require.Positive(t, psrNoise, kinds(ev))
	require.Positive(t, awNoise, kinds(ev))
	// The accept came after the noise stopped: it is the last event.
	require.Equal(t, "AgentWork:UPDATE", kinds(ev)[len(ev)-1])
	require.Equal(t, "Opened", payload(ev[len(ev)-1])["Status"], "rate 0 makes no noise")

	cev := cases.events(3)
	require.Equal(t, "Case:CREATE", kinds(cev)[0])
	edited := slices.ContainsFunc(cev, func(m map[string]any) bool {
		return header(m)["changeType"] == "UPDATE" && payload(m)["Subject"] == "help (edited)"
	})
	require.True(t, edited, "the Case subject was edited as noise: %v", kinds(cev))
}
