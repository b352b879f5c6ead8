package emulator

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// A deactivated user cannot mint a new token with any grant, as a real org refuses the login
// ("authentication failure"); the emulator used to hand one out.
func TestReviewDeactivatedUserGetsNoToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	uid := h.userID("agent07@omniroute.demo")
	s, b := h.rest(http.MethodPatch, "sobjects/User/"+uid, map[string]any{"IsActive": false})
	require.Equal(t, http.StatusNoContent, s, string(b))

	s, b = h.form("/services/oauth2/token", url.Values{
		"grant_type": {"password"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret},
		"username": {"agent07@omniroute.demo"}, "password": {DemoPassword},
	})
	require.Equal(t, http.StatusBadRequest, s, string(b))
	require.JSONEq(t, `{"error":"invalid_grant","error_description":"authentication failure"}`, string(b))

	claims := jwt.MapClaims{"iss": DemoClientID, "sub": "agent07@omniroute.demo", "aud": "https://login.salesforce.com", "exp": h.clock.Now().Add(3 * time.Minute).Unix()}
	s, b = h.form("/services/oauth2/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion":  {signAssertion(t, claims, "testdata/demo-jwt-private-key.pem")},
	})
	require.Equal(t, http.StatusBadRequest, s, string(b))
	require.JSONEq(t, `{"error":"invalid_grant","error_description":"authentication failure"}`, string(b))

	// Reactivated, the same user logs in again.
	s, b = h.rest(http.MethodPatch, "sobjects/User/"+uid, map[string]any{"IsActive": true})
	require.Equal(t, http.StatusNoContent, s, string(b))
	h.passwordToken("agent07@omniroute.demo", DemoPassword)
}

// An AgentWork for a PSR that is gone (accepted, or the customer left) is refused.
func TestReviewAgentWorkForGonePSRRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence("agent01@omniroute.demo", "Available")
	h.presence("agent02@omniroute.demo", "Available")
	w, aw := h.routed("Chat", "Support_EN", "agent01@omniroute.demo")
	psr := h.record("PendingServiceRouting", w.PSRID)
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
	s, b := h.rest(http.MethodPost, "sobjects/AgentWork", map[string]any{
		"UserId": h.userID("agent02@omniroute.demo"), "WorkItemId": w.WorkItemID, "ServiceChannelId": psr["ServiceChannelId"],
		"PendingServiceRoutingId": w.PSRID, "CapacityWeight": psr["CapacityWeight"],
	})
	requireRESTError(t, s, b, http.StatusBadRequest, "ENTITY_IS_DELETED", "entity is deleted")

	w2 := h.createWork("Chat", "Support_EN")
	psr2 := h.record("PendingServiceRouting", w2.PSRID)
	s, b = h.control(http.MethodPost, "work/"+w2.WorkItemID+"/cancel", nil)
	require.Equal(t, http.StatusOK, s, string(b))
	s, b = h.rest(http.MethodPost, "sobjects/AgentWork", map[string]any{
		"UserId": h.userID("agent02@omniroute.demo"), "WorkItemId": w2.WorkItemID, "ServiceChannelId": psr2["ServiceChannelId"],
		"PendingServiceRoutingId": w2.PSRID, "CapacityWeight": psr2["CapacityWeight"],
	})
	requireRESTError(t, s, b, http.StatusBadRequest, "ENTITY_IS_DELETED", "entity is deleted")
}

// Bad control-API input is a 4xx, never a panic or a 500.
func TestReviewControlBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	cases := []struct{ method, path, body string }{
		{"GET", "history?after=-5", ""},
		{"GET", "history?limit=-1", ""},
		{"GET", "history?limit=100000", ""},
		{"GET", "history?after=99999999999999999999", ""},
		{"POST", "work", `{"channel":"Chat","queue":"Support_EN","skills":[1]}`},
		{"POST", "work", `{"channel":"Chat","queue":"Support_EN","skills":[{"skill":"Nope"}]}`},
		{"POST", "work", `[1,2]`},
		{"POST", "work", `{"channel":"Nope","queue":"Support_EN"}`},
		{"POST", "work/native", `{"channel":"Chat","user":"nobody"}`},
		{"POST", "work/native", `{}`},
		{"POST", "work/001000000000000AAA/cancel", ``},
		{"POST", "work/x/owner", `{"user":"a","queue":"b"}`},
		{"POST", "work/x/owner", `{}`},
		{"POST", "agents/nobody/presence", `{"status":"Available"}`},
		{"POST", "agents/agent01@omniroute.demo/presence", `{"status":""}`},
		{"POST", "psr/x/assign", `{"user":"agent01@omniroute.demo"}`},
		{"POST", "agentwork/x/accept", ``},
		{"POST", "agentwork/x/bogus", ``},
		{"POST", "agentwork/x/transfer", `{}`},
		{"POST", "agentwork/x/transfer", `{"queue":"a","user":"b"}`},
		{"POST", "noise", `{"rate":2}`},
		{"POST", "noise", `{"rate":-1}`},
		{"POST", "records/Case", `{"count":-1}`},
		{"POST", "records/Case", `{"count":100000000}`},
		{"POST", "records/Nope", `{}`},
		{"POST", "records/Case", `{"fields":{"Subject":{"a":1}}}`},
		{"POST", "streaming/gap", `{"entity":"Case","changeType":"GAP_UPDATE"}`},
		{"POST", "streaming/gap", `{"entity":"Nope","changeType":"GAP_OVERFLOW"}`},
		{"POST", "faults/http", `{"status":99}`},
		{"POST", "faults/latency", `{"ms":-5}`},
		{"POST", "faults/truncate", `{"after":-1}`},
		{"POST", "auto", `{"x":1}`},
	}
	for _, c := range cases {
		var body any
		if c.body != "" {
			body = json.RawMessage(c.body)
		}
		s, b, _ := h.do(c.method, "/emulator/v1/"+c.path, testControlToken, body)
		require.True(t, s >= 400 && s < 500, "%s %s %s: %d %s", c.method, c.path, c.body, s, b)
	}
}

// A 15-character id finds its record in REST paths and SOQL.
func TestReviewFifteenCharIDs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.createWork("Case", "Support_EN")
	short := w.WorkItemID[:15]
	rec := h.record("Case", short)
	require.Equal(t, w.WorkItemID, rec["Id"])
	recs := h.query("SELECT Id FROM PendingServiceRouting WHERE WorkItemId = '" + short + "'")
	require.Len(t, recs, 1)
	recs = h.query("SELECT Id FROM Case WHERE Id IN ('" + short + "')")
	require.Len(t, recs, 1)
}

// A replayed enriched event carries the enriched fields' values at replay time. A PSR deleted
// since (accepted) is hard-deleted by default (its DELETE is not delivered), so at replay time
// it has no values: the replayed PSR UPDATE carries no enriched field. The AgentWork is still
// there and keeps its enriched RoutingModel.
func TestReviewReplayAfterHardDeleteCarriesNoEnrichedFields(t *testing.T) {
	t.Parallel()
	for _, deletes := range []bool{false, true} {
		h := newHarness(t, func(o *Options) { o.ChannelDeletes = deletes })
		h.presence(agent1, "Available")
		w := h.createWork("Case", "Support_EN")
		aw := h.assign(w, agent1)
		require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))

		c := h.comet(h.token)
		c.handshake()
		require.Equal(t, true, c.subscribe(customChannel, -2)["successful"])
		ev := c.events(10)
		var psrUpdate, awUpdate map[string]any
		for _, m := range ev {
			switch kind := header(m)["entityName"].(string) + ":" + header(m)["changeType"].(string); kind {
			case "PendingServiceRouting:UPDATE":
				psrUpdate = payload(m)
			case "AgentWork:UPDATE":
				awUpdate = payload(m)
			}
		}
		require.NotNil(t, psrUpdate, kinds(ev))
		require.NotNil(t, awUpdate, kinds(ev))
		require.Equal(t, true, psrUpdate["IsPushed"], "a changed field keeps its changed value")
		if deletes {
			// With delivered DELETEs the PSR is taken as soft-deleted: its values remain.
			require.Equal(t, "ExternalRouting", psrUpdate["RoutingModel"])
			require.Equal(t, true, psrUpdate["IsReadyForRouting"])
		} else {
			require.NotContains(t, psrUpdate, "RoutingModel")
			require.NotContains(t, psrUpdate, "IsReadyForRouting")
		}
		require.Equal(t, "ExternalRouting", awUpdate["RoutingModel"])
	}
}

// Expired sessions are forgotten even when nobody presents their token again: a long run that
// mints tokens (a daemon re-minting, an agent gateway's logins) keeps memory bounded.
func TestReviewExpiredSessionsForgotten(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.SessionTimeout = time.Minute })
	for range 5000 {
		_, err := h.em.IssueToken(DemoUsername)
		require.NoError(t, err)
	}
	h.clock.Advance(2 * time.Minute)
	for range 5000 {
		_, err := h.em.IssueToken(DemoUsername)
		require.NoError(t, err)
	}
	h.em.auth.mu.Lock()
	n := len(h.em.auth.sessions)
	h.em.auth.mu.Unlock()
	require.LessOrEqual(t, n, 5000+1024, "expired sessions must not pile up")
}

// A 405 names the methods the resource takes, not one fixed list.
func TestReviewMethodNotAllowedNamesTheResourceMethods(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for path, allowed := range map[string]string{
		"sobjects/Case":               "GET,POST",
		"sobjects/Case/describe":      "GET",
		"sobjects":                    "GET",
		"query?q=SELECT+Id+FROM+Case": "GET",
		"limits":                      "GET",
		"composite/sobjects":          "POST,PATCH",
	} {
		s, b := h.rest(http.MethodPut, path, nil)
		requireRESTError(t, s, b, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method 'PUT' not allowed. Allowed are "+allowed)
	}
	w := h.createWork("Case", "Support_EN")
	s, b := h.rest(http.MethodPut, "sobjects/Case/"+w.WorkItemID, nil)
	requireRESTError(t, s, b, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Allowed are GET,PATCH,DELETE")
}

// A NaN noise rate is refused at New, as SetNoise refuses it (NaN compares false both ways and
// would give every record noise).
func TestReviewNaNNoiseRateRefused(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Seed: DemoSeed(), NoiseRate: math.NaN()})
	require.ErrorIs(t, err, ErrInvalid)
}
