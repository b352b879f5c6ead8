package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Tests in this file pin places where the emulator used to be more lenient than, or shaped
// differently from, a real org.

type restErrs []struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields"`
}

func decodeErrs(t *testing.T, b []byte) restErrs {
	t.Helper()
	var e restErrs
	require.NoError(t, json.Unmarshal(b, &e), string(b))
	require.NotEmpty(t, e, string(b))
	return e
}

// A lookup to a deleted record is ENTITY_IS_DELETED, not INVALID_CROSS_REFERENCE_KEY: a partner
// that routes a PSR the agent accepted meanwhile (the PSR is gone) must see the real code.
func TestAgentWorkForDeletedPSRIsEntityIsDeleted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	h.presence(agent2, "Available")
	w := h.createWork("Chat", "Support_EN")
	psr := h.record("PendingServiceRouting", w.PSRID)
	aw := h.assign(w, agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))

	s, b := h.rest(http.MethodPost, "sobjects/AgentWork", map[string]any{
		"UserId": h.userID(agent2), "WorkItemId": w.WorkItemID, "ServiceChannelId": psr["ServiceChannelId"],
		"PendingServiceRoutingId": w.PSRID,
	})
	require.Equal(t, http.StatusBadRequest, s, string(b))
	e := decodeErrs(t, b)
	require.Equal(t, "ENTITY_IS_DELETED", e[0].ErrorCode)
	require.Equal(t, "entity is deleted", e[0].Message)
	require.Empty(t, h.query("SELECT Id FROM AgentWork WHERE UserId = '"+h.userID(agent2)+"'"))
}

// AgentWork can be deleted only when Closed, Declined or Unavailable (salesforce-facts.md 2.2).
func TestAgentWorkDeleteOnlyInDocumentedStatuses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	h.presence(agent2, "Available")

	// DeclinedOnPushTimeout: Billing's routing configuration has a 30 s push timeout.
	w := h.createWork("Case", "Billing")
	timedOut := h.assign(w, agent1)
	h.clock.Advance(30 * time.Second)
	h.em.RunTimers()
	require.Equal(t, StatusDeclinedOnPushTimeout, h.record("AgentWork", timedOut)["Status"])

	// Transferred: accepted work moved to a queue.
	w2 := h.createWork("Chat", "Support_EN")
	moved := h.assign(w2, agent2)
	require.Equal(t, http.StatusOK, h.awAction(moved, "accept", nil))
	s, b := h.control(http.MethodPost, "agentwork/"+moved+"/transfer", map[string]string{"queue": "Support_DE"})
	require.Equal(t, http.StatusOK, s, string(b))
	require.Equal(t, StatusTransferred, h.record("AgentWork", moved)["Status"])

	for _, id := range []string{timedOut, moved} {
		s, b := h.rest(http.MethodDelete, "sobjects/AgentWork/"+id, nil)
		require.Equal(t, http.StatusBadRequest, s, string(b))
		require.Equal(t, "DELETE_FAILED", decodeErrs(t, b)[0].ErrorCode)
		h.record("AgentWork", id) // still there
	}

	// Declined can be deleted.
	w3 := h.createWork("Case", "Support_EN")
	declined := h.assign(w3, agent1)
	require.Equal(t, http.StatusOK, h.awAction(declined, "decline", nil))
	s, b = h.rest(http.MethodDelete, "sobjects/AgentWork/"+declined, nil)
	require.Equal(t, http.StatusNoContent, s, string(b))
}

// A failed collection result has no "id" member at all (Salesforce leaves it out rather than
// sending null).
func TestCollectionFailureResultHasNoID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, method := range []string{http.MethodPost, http.MethodPatch} {
		rec := map[string]any{"attributes": map[string]any{"type": "Case"}, "Status": "Bogus"}
		if method == http.MethodPatch {
			rec["id"] = "500000000000000AAA"
		}
		s, b := h.rest(method, "composite/sobjects", map[string]any{"records": []any{rec}})
		require.Equal(t, http.StatusOK, s, string(b))
		var res []map[string]any
		require.NoError(t, json.Unmarshal(b, &res))
		require.Len(t, res, 1)
		require.Equal(t, false, res[0]["success"], string(b))
		require.NotContains(t, res[0], "id", string(b))
		require.NotEmpty(t, res[0]["errors"])
	}
}

// allOrNone: two AgentWork for one PSR in one request must not half-commit: the second fails,
// so nothing is written and the PSR is still unpushed.
func TestAllOrNoneAgentWorkConflictWritesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	h.presence(agent2, "Available")
	w := h.createWork("Case", "Support_EN")
	psr := h.record("PendingServiceRouting", w.PSRID)
	rec := func(user string) map[string]any {
		return map[string]any{"attributes": map[string]any{"type": "AgentWork"}, "UserId": h.userID(user),
			"WorkItemId": w.WorkItemID, "ServiceChannelId": psr["ServiceChannelId"], "PendingServiceRoutingId": w.PSRID,
			"CapacityWeight": psr["CapacityWeight"]}
	}
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe("/data/ChangeEvents", -1)["successful"])

	s, b := h.rest(http.MethodPost, "composite/sobjects", map[string]any{"allOrNone": true, "records": []any{rec(agent1), rec(agent2)}})
	require.Equal(t, http.StatusOK, s, string(b))
	var res []struct {
		Success bool           `json:"success"`
		Errors  []collectError `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(b, &res))
	require.Len(t, res, 2)
	require.False(t, res[0].Success, string(b))
	require.Equal(t, "ALL_OR_NONE_OPERATION_ROLLED_BACK", res[0].Errors[0].StatusCode)
	require.False(t, res[1].Success, string(b))
	require.Equal(t, "FIELD_INTEGRITY_EXCEPTION", res[1].Errors[0].StatusCode)
	require.Empty(t, h.query("SELECT Id FROM AgentWork"))
	require.Equal(t, false, h.record("PendingServiceRouting", w.PSRID)["IsPushed"])
	require.Empty(t, c.events(1), "a rolled-back request publishes no change event")

	// Capacity adds up across the records of one request too: agent01 has capacity 10 in the
	// demo org, so eleven weight-1 items cannot all go to them.
	var recs []any
	for range 11 {
		wi := h.createWork("Case", "Support_EN")
		recs = append(recs, map[string]any{"attributes": map[string]any{"type": "AgentWork"}, "UserId": h.userID(agent1),
			"WorkItemId": wi.WorkItemID, "ServiceChannelId": psr["ServiceChannelId"], "PendingServiceRoutingId": wi.PSRID, "CapacityWeight": 1})
	}
	s, b = h.rest(http.MethodPost, "composite/sobjects", map[string]any{"allOrNone": true, "records": recs})
	require.Equal(t, http.StatusOK, s, string(b))
	require.NoError(t, json.Unmarshal(b, &res))
	require.Len(t, res, 11)
	require.Equal(t, "FIELD_INTEGRITY_EXCEPTION", res[10].Errors[0].StatusCode, string(b))
	require.Equal(t, "ALL_OR_NONE_OPERATION_ROLLED_BACK", res[0].Errors[0].StatusCode)
	require.Empty(t, h.query("SELECT Id FROM AgentWork"))
}

// Validation is deterministic: an unknown field is reported before a value of the wrong type,
// whatever order Go's map iteration picks.
func TestFieldValidationOrderIsDeterministic(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for range 30 {
		s, b := h.rest(http.MethodPost, "sobjects/Case", map[string]any{"Subject": 5, "Description": true, "Nope": "x"})
		require.Equal(t, http.StatusBadRequest, s, string(b))
		e := decodeErrs(t, b)
		require.Equal(t, "INVALID_FIELD", e[0].ErrorCode, string(b))
		require.Equal(t, []string{"Nope"}, e[0].Fields)
	}
}

// Once IsReadyForRouting is true a PendingServiceRouting can't be edited (salesforce-facts.md
// 2.1); the partner must not be able to "fix" a PSR the org would refuse to change.
func TestReadyPSRCannotBeEdited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.createWork("Case", "Support_EN")
	s, b := h.rest(http.MethodPatch, "sobjects/PendingServiceRouting/"+w.PSRID, map[string]any{"RoutingPriority": 5})
	require.Equal(t, http.StatusBadRequest, s, string(b))
	require.Equal(t, "FIELD_INTEGRITY_EXCEPTION", decodeErrs(t, b)[0].ErrorCode)
	require.Equal(t, 1.0, h.record("PendingServiceRouting", w.PSRID)["RoutingPriority"])

	// A PSR created over the API and not yet ready can be edited, and then flipped to ready.
	ch := h.record("PendingServiceRouting", w.PSRID)["ServiceChannelId"]
	s, b = h.rest(http.MethodPost, "sobjects/Case", map[string]any{"Subject": "manual"})
	require.Equal(t, http.StatusCreated, s, string(b))
	var cr struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(b, &cr))
	s, b = h.rest(http.MethodPost, "sobjects/PendingServiceRouting", map[string]any{
		"WorkItemId": cr.ID, "ServiceChannelId": ch, "RoutingModel": "ExternalRouting", "CapacityWeight": 1,
	})
	require.Equal(t, http.StatusCreated, s, string(b))
	require.NoError(t, json.Unmarshal(b, &cr))
	s, b = h.rest(http.MethodPatch, "sobjects/PendingServiceRouting/"+cr.ID, map[string]any{"RoutingPriority": 2})
	require.Equal(t, http.StatusNoContent, s, string(b))
	s, b = h.rest(http.MethodPatch, "sobjects/PendingServiceRouting/"+cr.ID, map[string]any{"IsReadyForRouting": true})
	require.Equal(t, http.StatusNoContent, s, string(b))
	s, b = h.rest(http.MethodPatch, "sobjects/PendingServiceRouting/"+cr.ID, map[string]any{"RoutingPriority": 3})
	require.Equal(t, http.StatusBadRequest, s, string(b))
}

// changes returns "Entity:TYPE" for each CDC message.
func changes(ev []map[string]any) []string {
	var out []string
	for _, m := range ev {
		hd := header(m)
		out = append(out, hd["entityName"].(string)+":"+hd["changeType"].(string))
	}
	return out
}

// The change events of the documented "Expected Behavior" scenarios (salesforce-facts.md 1.4 and
// 1.7), event by event: which entity, which change type, which changed fields, in which order.
func TestExpectedBehaviorChangeEvents(t *testing.T) {
	t.Parallel()
	sub := func(h *harness) *cometClient {
		c := h.comet(h.token)
		c.handshake()
		for _, ch := range []string{"/data/PendingServiceRoutingChangeEvent", "/data/AgentWorkChangeEvent"} {
			require.Equal(t, true, c.subscribe(ch, -1)["successful"])
		}
		return c
	}

	t.Run("decline", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		h.presence(agent1, "Available")
		h.presence(agent2, "Available")
		c := sub(h)
		w := h.createWork("Case", "Support_EN")
		aw := h.assign(w, agent1)
		require.Equal(t, http.StatusOK, h.awAction(aw, "decline", nil))
		h.assign(w, agent2)
		ev := c.events(7)
		require.Equal(t, []string{"PendingServiceRouting:CREATE", "AgentWork:CREATE", "PendingServiceRouting:UPDATE",
			"AgentWork:UPDATE", "PendingServiceRouting:UPDATE", "AgentWork:CREATE", "PendingServiceRouting:UPDATE"}, changes(ev))
		require.Equal(t, false, payload(ev[0])["IsPushed"])
		require.Equal(t, true, payload(ev[0])["IsReadyForRouting"])
		require.Equal(t, "ExternalRouting", payload(ev[0])["RoutingModel"])
		require.Equal(t, StatusAssigned, payload(ev[1])["Status"])
		require.Equal(t, []any{"DeclineDateTime", "Status", "LastModifiedDate", "LastModifiedById"}, header(ev[3])["changedFields"])
		require.Equal(t, StatusDeclined, payload(ev[3])["Status"])
		// The release: IsPushed false and LastDeclinedAgentSession set, in one PSR UPDATE that
		// shares the AgentWork UPDATE's transaction.
		require.Equal(t, []any{"IsPushed", "LastDeclinedAgentSession", "Serial", "LastModifiedDate", "LastModifiedById"}, header(ev[4])["changedFields"])
		require.Equal(t, false, payload(ev[4])["IsPushed"])
		require.NotEmpty(t, payload(ev[4])["LastDeclinedAgentSession"])
		require.Equal(t, header(ev[3])["transactionKey"], header(ev[4])["transactionKey"])
		require.Equal(t, true, payload(ev[6])["IsPushed"])
	})

	t.Run("push timeout", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		h.presence(agent1, "Available")
		c := sub(h)
		w := h.createWork("Case", "Billing")
		h.assign(w, agent1)
		h.clock.Advance(30 * time.Second)
		h.em.RunTimers()
		ev := c.events(5)
		require.Equal(t, []string{"PendingServiceRouting:CREATE", "AgentWork:CREATE", "PendingServiceRouting:UPDATE",
			"AgentWork:UPDATE", "PendingServiceRouting:UPDATE"}, changes(ev))
		require.Equal(t, StatusDeclinedOnPushTimeout, payload(ev[3])["Status"])
		require.Equal(t, "2026-11-22T09:00:30Z", payload(ev[3])["PushTimeoutDateTime"])
		require.Equal(t, false, payload(ev[4])["IsPushed"])
		require.Contains(t, header(ev[4])["changedFields"], "LastDeclinedAgentSession")
		require.Equal(t, "", header(ev[4])["changeOrigin"], "Salesforce's own change, not an API call")
	})

	t.Run("transfer to queue", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		h.presence(agent1, "Available")
		c := sub(h)
		w := h.createWork("Case", "Support_EN")
		aw := h.assign(w, agent1)
		require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
		s, b := h.control(http.MethodPost, "agentwork/"+aw+"/transfer", map[string]string{"queue": "Support_DE"})
		require.Equal(t, http.StatusOK, s, string(b))
		ev := c.events(7)
		require.Equal(t, []string{"PendingServiceRouting:CREATE", "AgentWork:CREATE", "PendingServiceRouting:UPDATE",
			"AgentWork:UPDATE", "PendingServiceRouting:DELETE", "AgentWork:UPDATE", "PendingServiceRouting:CREATE"}, changes(ev))
		require.Equal(t, StatusOpened, payload(ev[3])["Status"])
		require.Equal(t, []any{w.PSRID}, header(ev[4])["recordIds"])
		require.Equal(t, StatusTransferred, payload(ev[5])["Status"])
		created := payload(ev[6])
		require.NotEqual(t, w.PSRID, header(ev[6])["recordIds"].([]any)[0])
		require.Equal(t, true, created["IsTransfer"])
		require.Equal(t, false, created["IsPushed"])
		require.Equal(t, h.queueID("Support_DE"), created["GroupId"])
		require.Equal(t, h.userID(agent1), created["TransferRequesterId"])
		require.Equal(t, header(ev[5])["transactionKey"], header(ev[6])["transactionKey"])
	})

	t.Run("transfer to agent", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		h.presence(agent1, "Available")
		h.presence(agent2, "Available")
		c := sub(h)
		w := h.createWork("Chat", "Support_EN")
		aw := h.assign(w, agent1)
		require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
		s, b := h.control(http.MethodPost, "agentwork/"+aw+"/transfer", map[string]string{"user": agent2})
		require.Equal(t, http.StatusOK, s, string(b))
		var tr TransferResult
		require.NoError(t, json.Unmarshal(b, &tr))
		require.Equal(t, http.StatusOK, h.awAction(tr.AgentWorkID, "accept", nil))
		ev := c.events(8)
		// No PSR after the accept: the transfer is seen on AgentWork only.
		require.Equal(t, []string{"PendingServiceRouting:CREATE", "AgentWork:CREATE", "PendingServiceRouting:UPDATE",
			"AgentWork:UPDATE", "PendingServiceRouting:DELETE", "AgentWork:CREATE", "AgentWork:UPDATE", "AgentWork:UPDATE"}, changes(ev))
		second := payload(ev[5])
		require.Equal(t, StatusAssigned, second["Status"])
		require.Equal(t, w.WorkItemID, second["WorkItemId"])
		require.Equal(t, h.userID(agent2), second["UserId"])
		require.Equal(t, StatusOpened, payload(ev[6])["Status"])
		require.Equal(t, []any{tr.AgentWorkID}, header(ev[6])["recordIds"])
		require.Equal(t, StatusTransferred, payload(ev[7])["Status"])
		require.Equal(t, []any{aw}, header(ev[7])["recordIds"])
		chat := h.record("LiveChatTranscript", w.WorkItemID)
		require.Equal(t, h.userID(agent2), chat["OwnerId"])
		require.Equal(t, "InProgress", chat["Status"])
	})
}

// describe's nillable follows the field, not "read-only means nillable": Id, booleans and
// system dates are never nillable, GroupId is.
func TestDescribeNillable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, b := h.rest(http.MethodGet, "sobjects/PendingServiceRouting/describe", nil)
	require.Equal(t, http.StatusOK, s, string(b))
	var d struct {
		Fields []struct {
			Name     string `json:"name"`
			Nillable bool   `json:"nillable"`
		} `json:"fields"`
	}
	require.NoError(t, json.Unmarshal(b, &d))
	got := map[string]bool{}
	for _, f := range d.Fields {
		got[f.Name] = f.Nillable
	}
	want := map[string]bool{
		"Id": false, "IsDeleted": false, "IsPushed": false, "IsReadyForRouting": false, "CreatedDate": false,
		"Name": false, "ServiceChannelId": false, "WorkItemId": false,
		"GroupId": true, "LastDeclinedAgentSession": true, "PreferredUserId": true, "CapacityWeight": true,
	}
	for f, n := range want {
		require.Contains(t, got, f)
		require.Equal(t, n, got[f], f)
	}
}

// REST wants "Bearer <token>" or "OAuth <token>": a bare token is INVALID_AUTH_HEADER (CometD,
// whose reference client sends the bare token, accepts it; see streaming tests).
func TestRESTRejectsBareToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, authz := range []string{h.token, "Basic " + h.token} {
		s, b, _ := h.do(http.MethodGet, "/services/data/v62.0/limits", "", nil, "Authorization", authz)
		requireRESTError(t, s, b, http.StatusUnauthorized, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE")
	}
	for _, authz := range []string{"Bearer " + h.token, "OAuth " + h.token} {
		s, b, _ := h.do(http.MethodGet, "/services/data/v62.0/limits", "", nil, "Authorization", authz)
		require.Equal(t, http.StatusOK, s, string(b))
	}
	s, b, _ := h.do(http.MethodGet, "/services/data/v62.0/limits", "", nil)
	requireRESTError(t, s, b, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
	// The bare token still works on CometD.
	s, b, _ = h.do(http.MethodPost, "/cometd/62.0", "", []any{map[string]any{"channel": "/meta/handshake", "version": "1.0",
		"supportedConnectionTypes": []string{"long-polling"}}}, "Authorization", h.token)
	require.Equal(t, http.StatusOK, s, string(b))
	require.Contains(t, string(b), `"successful":true`)
}

// The case-safe suffix matches ids Salesforce documents (REST create examples).
func TestIDChecksumMatchesSalesforceExamples(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"001D000000IqhSLIAZ", "001RM000003oLrHYAU", "003D000000QV9n2IAD"} {
		require.Equal(t, id[15:], idChecksum(id[:15]), id)
		require.Equal(t, id, normalizeID(id[:15]))
	}
}

// A latency fault holds requests of its scope (here: an hour, so the client gives up) and leaves
// other scopes alone. (TestHTTPFaults only checked that a 1 ms latency still answers 200.)
func TestLatencyFaultDelaysOnlyItsScope(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, b := h.control(http.MethodPost, "faults/latency", map[string]any{"ms": 3_600_000, "scope": "rest"})
	require.Equal(t, http.StatusOK, s, string(b))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+"/services/data/v62.0/limits", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_ = resp.Body.Close()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded, "the REST request must still be held")
	h.passwordToken(DemoUsername, DemoPassword) // the token scope is not delayed
	s, _ = h.control(http.MethodDelete, "faults", nil)
	require.Equal(t, http.StatusOK, s)
	s, b = h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusOK, s, string(b))
}
