package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const agent1, agent2 = "agent01@omniroute.demo", "agent02@omniroute.demo"

// cdcOf filters CDC messages of one entity into (changeType, payload) pairs.
func cdcOf(msgs []map[string]any, entity string) []map[string]any {
	var out []map[string]any
	for _, m := range msgs {
		if header(m)["entityName"] == entity {
			out = append(out, m)
		}
	}
	return out
}

func TestWorkCreatesPSRWithExternalRoutingFields(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe("/data/PendingServiceRoutingChangeEvent", -1)["successful"])
	w := h.createWork("Chat", "Support_EN")

	psr := h.record("PendingServiceRouting", w.PSRID)
	queue := h.queueID("Support_EN")
	require.Equal(t, "ExternalRouting", psr["RoutingModel"])
	require.Equal(t, "QueueBased", psr["RoutingType"])
	require.Equal(t, true, psr["IsReadyForRouting"])
	require.Equal(t, false, psr["IsPushed"])
	require.Equal(t, false, psr["IsTransfer"])
	require.Equal(t, queue, psr["GroupId"])
	require.Equal(t, queue, psr["QueueId"])
	require.Equal(t, w.WorkItemID, psr["WorkItemId"])
	require.Equal(t, 1.0, psr["CapacityWeight"]) // from the routing configuration
	require.Equal(t, 30.0, psr["PushTimeout"])
	require.Equal(t, 1.0, psr["Serial"])
	require.Len(t, w.WorkItemID, 18)
	require.Equal(t, "570", w.WorkItemID[:3])
	require.Equal(t, "0JR", w.PSRID[:3])

	ev := c.events(1)
	require.Len(t, ev, 1)
	hd := header(ev[0])
	require.Equal(t, "CREATE", hd["changeType"])
	require.Equal(t, []any{w.PSRID}, hd["recordIds"])
	require.Equal(t, []any{}, hd["changedFields"])
	p := payload(ev[0])
	require.Equal(t, "ExternalRouting", p["RoutingModel"])
	require.Equal(t, true, p["IsReadyForRouting"])
	require.NotContains(t, p, "Id")
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, p["CreatedDate"])
}

func TestPreferredUserAndSkillsOnPSR(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, b := h.control(http.MethodPost, "work", map[string]any{
		"channel": "Case", "queue": "Support_DE", "preferredUser": agent2,
		"skills": []any{"German", map[string]any{"skill": "Technical", "level": 4, "additional": true}},
	})
	require.Equal(t, http.StatusCreated, s, string(b))
	var w WorkResult
	require.NoError(t, json.Unmarshal(b, &w))
	psr := h.record("PendingServiceRouting", w.PSRID)
	require.Equal(t, h.userID(agent2), psr["PreferredUserId"])
	require.Equal(t, "SkillsBased", psr["RoutingType"])
	reqs := h.query("SELECT Skill.DeveloperName, SkillLevel, IsAdditionalSkill FROM SkillRequirement WHERE RelatedRecordId = '" + w.PSRID + "' ORDER BY Skill.DeveloperName")
	require.Len(t, reqs, 2)
	require.Equal(t, "German", reqs[0]["Skill"].(map[string]any)["DeveloperName"])
	require.Equal(t, 4.0, reqs[1]["SkillLevel"])
	require.Equal(t, true, reqs[1]["IsAdditionalSkill"])

	require.Equal(t, false, psr["IsPreferredUserRequired"])
	require.Equal(t, 30.0, psr["PushTimeout"])
	s, b = h.control(http.MethodPost, "work", map[string]any{"channel": "Case", "queue": "Support_DE", "preferredUser": agent2, "preferredUserRequired": true})
	require.Equal(t, http.StatusCreated, s, string(b))
	require.NoError(t, json.Unmarshal(b, &w))
	psr = h.record("PendingServiceRouting", w.PSRID)
	require.Equal(t, true, psr["IsPreferredUserRequired"])
	require.Nil(t, psr["PushTimeout"], "a required preferred user has no push timeout")
	s, _ = h.control(http.MethodPost, "work", map[string]any{"channel": "Case", "queue": "Support_DE", "preferredUserRequired": true})
	require.Equal(t, http.StatusBadRequest, s)

	s, _ = h.control(http.MethodPost, "work", map[string]any{"channel": "Nope", "queue": "Support_DE"})
	require.Equal(t, http.StatusNotFound, s)
	s, _ = h.control(http.MethodPost, "work", map[string]any{"channel": "Case", "queue": "Support_DE", "bogus": 1})
	require.Equal(t, http.StatusBadRequest, s)
}

func TestAcceptOpensWorkAndDeletesPSR(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe("/data/ChangeEvents", -1)["successful"])
	w, aw := h.routed("Chat", "Support_EN", agent1)
	require.Equal(t, "0Bz", aw[:3])
	rec := h.record("AgentWork", aw)
	require.Equal(t, StatusAssigned, rec["Status"])
	require.Equal(t, "ExternalRouting", rec["RoutingModel"])
	require.Equal(t, true, h.record("PendingServiceRouting", w.PSRID)["IsPushed"])

	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
	require.Equal(t, StatusOpened, h.record("AgentWork", aw)["Status"])
	s, b := h.rest(http.MethodGet, "sobjects/PendingServiceRouting/"+w.PSRID, nil)
	require.Equal(t, http.StatusNotFound, s)
	require.JSONEq(t, `[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]`, string(b))
	chat := h.record("LiveChatTranscript", w.WorkItemID)
	require.Equal(t, h.userID(agent1), chat["OwnerId"])
	require.Equal(t, "InProgress", chat["Status"])
	require.Equal(t, http.StatusConflict, h.awAction(aw, "accept", nil))

	ev := c.events(8)
	var psrTypes, awTypes []string
	for _, m := range cdcOf(ev, "PendingServiceRouting") {
		psrTypes = append(psrTypes, header(m)["changeType"].(string))
	}
	for _, m := range cdcOf(ev, "AgentWork") {
		awTypes = append(awTypes, header(m)["changeType"].(string))
	}
	require.Equal(t, []string{"CREATE", "UPDATE", "DELETE"}, psrTypes)
	require.Equal(t, []string{"CREATE", "UPDATE"}, awTypes)
	psrEv := cdcOf(ev, "PendingServiceRouting")
	require.Equal(t, true, payload(psrEv[1])["IsPushed"])
	require.Contains(t, header(psrEv[1])["changedFields"], "IsPushed")
	require.NotContains(t, payload(psrEv[1]), "RoutingModel") // only changed fields on UPDATE
	del := payload(psrEv[2])
	require.Len(t, del, 1) // header only
	awUpd := cdcOf(ev, "AgentWork")[1]
	require.Equal(t, StatusOpened, payload(awUpd)["Status"])

	// Replay ids increase in commit order.
	for i := 1; i < len(ev); i++ {
		require.Greater(t, replayID(ev[i]), replayID(ev[i-1]))
	}
	list := h.em.AgentWorks()
	require.Len(t, list, 1)
	require.Equal(t, []string{StatusAssigned, StatusOpened}, []string{list[0].History[0].Status, list[0].History[1].Status})
}

func TestDeclineReleasesPSR(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	h.presence(agent2, "Available")
	w, aw := h.routed("Messaging", "Support_EN", agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "decline", map[string]string{"reason": "busy"}))
	rec := h.record("AgentWork", aw)
	require.Equal(t, StatusDeclined, rec["Status"])
	require.Equal(t, "busy", rec["DeclineReason"])
	psr := h.record("PendingServiceRouting", w.PSRID)
	require.Equal(t, false, psr["IsPushed"])
	require.Equal(t, true, psr["IsPushAttempted"])
	sess, _ := psr["LastDeclinedAgentSession"].(string)
	require.Len(t, sess, 18)
	require.NotEqual(t, h.userID(agent1), sess) // a chat session id, not a user id
	require.Equal(t, 3.0, psr["Serial"])
	// The partner routes it again to someone else.
	aw2 := h.assign(w, agent2)
	require.NotEqual(t, aw, aw2)
}

func TestPushTimeoutDeclinesOnTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	w, aw := h.routed("Case", "Billing", agent1)
	h.clock.Advance(29 * time.Second)
	h.em.RunTimers()
	require.Equal(t, StatusAssigned, h.record("AgentWork", aw)["Status"])
	h.clock.Advance(time.Second)
	h.em.RunTimers()
	rec := h.record("AgentWork", aw)
	require.Equal(t, StatusDeclinedOnPushTimeout, rec["Status"])
	require.NotNil(t, rec["PushTimeoutDateTime"])
	psr := h.record("PendingServiceRouting", w.PSRID)
	require.Equal(t, false, psr["IsPushed"])
	require.NotNil(t, psr["LastDeclinedAgentSession"])
}

func TestAgentOfflineMakesAssignedWorkUnavailable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	w1 := h.createWork("Case", "Support_EN")
	w2 := h.createWork("Case", "Support_EN")
	aw1, aw2 := h.assign(w1, agent1), h.assign(w2, agent1)
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe("/data/ChangeEvents", -1)["successful"])
	h.presence(agent1, "Offline")
	require.Equal(t, StatusUnavailable, h.record("AgentWork", aw1)["Status"])
	require.Equal(t, StatusUnavailable, h.record("AgentWork", aw2)["Status"])
	require.Equal(t, false, h.record("PendingServiceRouting", w1.PSRID)["IsPushed"])

	ev := c.events(4)
	// One USP UPDATE, then AgentWork and PSR updates merged into events with two recordIds.
	require.Equal(t, "UserServicePresence", header(ev[0])["entityName"])
	aws := cdcOf(ev, "AgentWork")
	require.Len(t, aws, 1)
	require.ElementsMatch(t, []any{aw1, aw2}, header(aws[0])["recordIds"])
	psrs := cdcOf(ev, "PendingServiceRouting")
	require.Len(t, psrs, 1)
	require.ElementsMatch(t, []any{w1.PSRID, w2.PSRID}, header(psrs[0])["recordIds"])
	require.Equal(t, false, payload(psrs[0])["IsPushed"])

	// An offline agent cannot get work.
	s, b := h.insertAgentWork(w1, agent1)
	requireRESTError(t, s, b, http.StatusBadRequest, "FIELD_INTEGRITY_EXCEPTION", "isn't online")
}

func TestCloseAgentWork(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	w, aw := h.routed("Phone", "Support_EN", agent1)
	require.Equal(t, http.StatusConflict, h.awAction(aw, "close", nil))
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
	h.clock.Advance(90 * time.Second)
	require.Equal(t, http.StatusOK, h.awAction(aw, "close", nil))
	rec := h.record("AgentWork", aw)
	require.Equal(t, StatusClosed, rec["Status"])
	require.Equal(t, 90.0, rec["HandleTime"])
	require.NotNil(t, h.record("VoiceCall", w.WorkItemID)["CallEndDateTime"])
	// Closed AgentWork can be deleted; Opened cannot.
	s, _ := h.rest(http.MethodDelete, "sobjects/AgentWork/"+aw, nil)
	require.Equal(t, http.StatusNoContent, s)
}

func TestTransferToQueueCreatesTransferPSR(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	w, aw := h.routed("Chat", "Support_EN", agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
	s, b := h.control(http.MethodPost, "agentwork/"+aw+"/transfer", map[string]string{"queue": "Support_DE"})
	require.Equal(t, http.StatusOK, s, string(b))
	var tr TransferResult
	require.NoError(t, json.Unmarshal(b, &tr))
	require.NotEmpty(t, tr.PSRID)
	require.NotEqual(t, w.PSRID, tr.PSRID)
	psr := h.record("PendingServiceRouting", tr.PSRID)
	require.Equal(t, true, psr["IsTransfer"])
	require.Equal(t, false, psr["IsPushed"])
	require.Equal(t, h.queueID("Support_DE"), psr["GroupId"])
	require.Equal(t, StatusTransferred, h.record("AgentWork", aw)["Status"])
}

func TestTransferToAgentCreatesSecondAgentWork(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	h.presence(agent2, "Available")
	w, aw := h.routed("Chat", "Support_EN", agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
	s, b := h.control(http.MethodPost, "agentwork/"+aw+"/transfer", map[string]string{"user": agent2})
	require.Equal(t, http.StatusOK, s, string(b))
	var tr TransferResult
	require.NoError(t, json.Unmarshal(b, &tr))
	require.Empty(t, tr.PSRID) // no new PSR
	second := h.record("AgentWork", tr.AgentWorkID)
	require.Equal(t, StatusAssigned, second["Status"])
	require.Equal(t, w.WorkItemID, second["WorkItemId"])
	require.Equal(t, h.userID(agent2), second["UserId"])
	require.Equal(t, StatusOpened, h.record("AgentWork", aw)["Status"])
	require.Equal(t, h.userID(agent2), h.record("LiveChatTranscript", w.WorkItemID)["OwnerId"])
	require.Equal(t, http.StatusOK, h.awAction(tr.AgentWorkID, "accept", nil))
	require.Equal(t, StatusTransferred, h.record("AgentWork", aw)["Status"])
	require.Equal(t, StatusOpened, h.record("AgentWork", tr.AgentWorkID)["Status"])
	require.Empty(t, h.query("SELECT Id FROM PendingServiceRouting"))
}

func TestCaseOwnerChangeToQueueAndUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	en := h.queueID("Support_EN")
	billing := h.queueID("Billing")
	// A Case created over REST into an external-routing queue gets a PSR.
	s, b := h.rest(http.MethodPost, "sobjects/Case", map[string]any{"Subject": "rest case", "OwnerId": en})
	require.Equal(t, http.StatusCreated, s, string(b))
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal(b, &created))
	psrs := h.query("SELECT Id, IsTransfer FROM PendingServiceRouting WHERE WorkItemId = '" + created.ID + "'")
	require.Len(t, psrs, 1)
	w := WorkResult{WorkItemID: created.ID, PSRID: psrs[0]["Id"].(string)}
	aw := h.assign(w, agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))

	// Owner change to a queue: new PSR with IsTransfer, old work Transferred.
	s, b = h.rest(http.MethodPatch, "sobjects/Case/"+created.ID, map[string]any{"OwnerId": billing})
	require.Equal(t, http.StatusNoContent, s, string(b))
	psrs = h.query("SELECT Id, IsTransfer, GroupId FROM PendingServiceRouting WHERE WorkItemId = '" + created.ID + "'")
	require.Len(t, psrs, 1)
	require.Equal(t, true, psrs[0]["IsTransfer"])
	require.Equal(t, billing, psrs[0]["GroupId"])
	require.Equal(t, StatusTransferred, h.record("AgentWork", aw)["Status"])

	// Owner change to a user: routing ends, the PSR is deleted.
	s, _ = h.rest(http.MethodPatch, "sobjects/Case/"+created.ID, map[string]any{"OwnerId": h.userID(agent2)})
	require.Equal(t, http.StatusNoContent, s)
	require.Empty(t, h.query("SELECT Id FROM PendingServiceRouting WHERE WorkItemId = '"+created.ID+"'"))
}

func TestPresenceWritesUpdateThenCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe("/data/UserServicePresenceChangeEvent", -1)["successful"])
	h.presence(agent1, "Available")
	h.clock.Advance(10 * time.Second)
	h.presence(agent1, "Away_from_desk")
	h.clock.Advance(5 * time.Second)
	h.presence(agent1, "Offline")
	ev := c.events(4)
	var types []string
	for _, m := range ev {
		types = append(types, header(m)["changeType"].(string))
	}
	// login = CREATE; status change = UPDATE old then CREATE new; logout = UPDATE only.
	require.Equal(t, []string{"CREATE", "UPDATE", "CREATE", "UPDATE"}, types)
	require.Equal(t, false, payload(ev[1])["IsCurrentState"])
	require.Equal(t, 10.0, payload(ev[1])["StatusDuration"])
	require.Equal(t, true, payload(ev[2])["IsCurrentState"])
	require.Equal(t, true, payload(ev[2])["IsAway"])
	require.Equal(t, header(ev[1])["transactionKey"], header(ev[2])["transactionKey"])
	require.Equal(t, 1.0, header(ev[1])["sequenceNumber"])
	require.Equal(t, 2.0, header(ev[2])["sequenceNumber"])
	require.Equal(t, h.userID(agent1), header(ev[1])["commitUser"])
	rows := h.query("SELECT Id, IsCurrentState, ServicePresenceStatus.DeveloperName FROM UserServicePresence ORDER BY StatusStartDate")
	require.Len(t, rows, 2)
	require.Equal(t, false, rows[0]["IsCurrentState"])
	require.Equal(t, false, rows[1]["IsCurrentState"])
}

func TestUserServicePresenceIsNotCreatableOrUpdatable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	s, b := h.rest(http.MethodPost, "sobjects/UserServicePresence", map[string]any{"UserId": h.userID(agent1)})
	requireRESTError(t, s, b, http.StatusBadRequest, "INVALID_TYPE_FOR_OPERATION", "User Service Presence")
	id := h.query("SELECT Id FROM UserServicePresence")[0]["Id"].(string)
	s, b = h.rest(http.MethodPatch, "sobjects/UserServicePresence/"+id, map[string]any{"IsCurrentState": false})
	requireRESTError(t, s, b, http.StatusBadRequest, "INVALID_TYPE_FOR_OPERATION", "User Service Presence")
	s, b = h.rest(http.MethodPost, "composite/sobjects", map[string]any{"records": []any{map[string]any{"attributes": map[string]any{"type": "UserServicePresence"}}}})
	require.Equal(t, http.StatusOK, s)
	require.Contains(t, string(b), `"statusCode":"INVALID_TYPE_FOR_OPERATION"`)
}

func TestAgentWorkIsNotUpdatable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	_, aw := h.routed("Case", "Support_EN", agent1)
	for _, body := range []map[string]any{{"Status": "Opened"}, {"UserId": h.userID(agent2)}, {"CapacityWeight": 3}} {
		s, b := h.rest(http.MethodPatch, "sobjects/AgentWork/"+aw, body)
		requireRESTError(t, s, b, http.StatusBadRequest, "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields")
	}
	require.Equal(t, StatusAssigned, h.record("AgentWork", aw)["Status"])
	// Assigned AgentWork cannot be deleted.
	s, _ := h.rest(http.MethodDelete, "sobjects/AgentWork/"+aw, nil)
	require.Equal(t, http.StatusBadRequest, s)
}

func TestAgentWorkInsertChecks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.createWork("Chat", "Support_EN")
	psr := h.record("PendingServiceRouting", w.PSRID)
	base := func() map[string]any {
		return map[string]any{"UserId": h.userID(agent1), "WorkItemId": w.WorkItemID, "ServiceChannelId": psr["ServiceChannelId"], "PendingServiceRoutingId": w.PSRID}
	}
	tests := []struct {
		name, setup string
		mod         func(map[string]any)
		code, msg   string
	}{
		{"offline agent", "", func(map[string]any) {}, "FIELD_INTEGRITY_EXCEPTION", "isn't online"},
		{"missing user", "Available", func(m map[string]any) { delete(m, "UserId") }, "REQUIRED_FIELD_MISSING", "[UserId]"},
		{"unknown psr", "Available", func(m map[string]any) { m["PendingServiceRoutingId"] = "0JR5g00000zzzzzAAA" }, "INVALID_CROSS_REFERENCE_KEY", "PendingServiceRoutingId"},
		{"bad id", "Available", func(m map[string]any) { m["WorkItemId"] = "nope" }, "MALFORMED_ID", "nope"},
		{"status field", "Available", func(m map[string]any) { m["Status"] = "Opened" }, "INVALID_FIELD_FOR_INSERT_UPDATE", "Status"},
		{"unknown field", "Available", func(m map[string]any) { m["Foo"] = 1 }, "INVALID_FIELD", "'Foo'"},
		{"status without channel", "Ready_for_cases", func(map[string]any) {}, "FIELD_INTEGRITY_EXCEPTION", "isn't associated with the work's service channel"},
		{"over capacity", "Available", func(m map[string]any) { m["CapacityWeight"] = 11 }, "FIELD_INTEGRITY_EXCEPTION", "enough capacity"},
		// A router that forgets to copy the PSR's CapacityWeight is refused; it is never
		// filled in from the PSR.
		{"no capacity weight", "Available", func(map[string]any) {}, "REQUIRED_FIELD_MISSING", "Required fields are missing: [CapacityWeight]"},
	}
	for _, tc := range tests {
		if tc.setup != "" {
			h.presence(agent1, tc.setup)
		}
		body := base()
		tc.mod(body)
		s, b := h.rest(http.MethodPost, "sobjects/AgentWork", body)
		requireRESTError(t, s, b, http.StatusBadRequest, tc.code, tc.msg)
	}
	h.presence(agent1, "Available")
	body := base()
	body["CapacityWeight"] = 11
	body["ShouldSkipCapacityCheck"] = true
	s, b := h.rest(http.MethodPost, "sobjects/AgentWork", body)
	require.Equal(t, http.StatusCreated, s, string(b))
	// Routing the same PSR twice is an error.
	s, b = h.rest(http.MethodPost, "sobjects/AgentWork", base())
	requireRESTError(t, s, b, http.StatusBadRequest, "FIELD_INTEGRITY_EXCEPTION", "already pushed")
}

func TestCancelWorkDeletesPSR(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	w, aw := h.routed("Chat", "Support_EN", agent1)
	s, _ := h.control(http.MethodPost, "work/"+w.WorkItemID+"/cancel", nil)
	require.Equal(t, http.StatusOK, s)
	require.Equal(t, StatusCanceled, h.record("AgentWork", aw)["Status"])
	require.Empty(t, h.query("SELECT Id FROM PendingServiceRouting"))
}

func TestAutoAgentsAcceptAndClose(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, b := h.control(http.MethodPost, "auto", map[string]any{"enabled": true, "acceptAfterMs": 2000, "closeAfterMs": 5000, "users": []string{agent1}})
	require.Equal(t, http.StatusOK, s, string(b))
	h.presence(agent1, "Available")
	h.presence(agent2, "Available")
	w1, w2 := h.createWork("Case", "Support_EN"), h.createWork("Case", "Support_EN")
	aw1, aw2 := h.assign(w1, agent1), h.assign(w2, agent2)
	h.clock.Advance(2 * time.Second)
	h.em.RunTimers()
	require.Equal(t, StatusOpened, h.record("AgentWork", aw1)["Status"])
	require.Equal(t, StatusAssigned, h.record("AgentWork", aw2)["Status"]) // not a simulated agent
	h.clock.Advance(5 * time.Second)
	h.em.RunTimers()
	require.Equal(t, StatusClosed, h.record("AgentWork", aw1)["Status"])

	h.em.SetAuto(AutoOptions{Enabled: true, DeclineRate: 1})
	w3 := h.createWork("Case", "Support_EN")
	aw3 := h.assign(w3, agent1)
	h.em.RunTimers()
	require.Equal(t, StatusDeclined, h.record("AgentWork", aw3)["Status"])
}

// TestConcurrentRoutingKeepsInvariants runs many partners and agents at once (under -race):
// every PSR ends with exactly one Opened AgentWork and no PSR is left.
func TestConcurrentRoutingKeepsInvariants(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const workers, perWorker = 6, 15
	users := make([]string, workers)
	for i := range users {
		users[i] = fmt.Sprintf("agent%02d@omniroute.demo", i+1)
		require.NoError(t, h.em.SetPresence(users[i], "Available"))
	}
	errc := make(chan error, workers)
	for i := range workers {
		go func() {
			for range perWorker {
				w, err := h.em.CreateWork(WorkRequest{Channel: "Case", Queue: "Support_EN"})
				if err != nil {
					errc <- err
					return
				}
				aw, err := h.em.AssignWork(w.PSRID, users[i])
				if err != nil {
					errc <- err
					return
				}
				if err := h.em.AcceptWork(aw); err != nil {
					errc <- err
					return
				}
				if err := h.em.CloseWork(aw); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range workers {
		require.NoError(t, <-errc)
	}
	list := h.em.AgentWorks()
	require.Len(t, list, workers*perWorker)
	perWork := map[string]int{}
	for _, aw := range list {
		require.Equal(t, StatusClosed, aw.Status)
		perWork[aw.WorkItemID]++
	}
	for _, n := range perWork {
		require.Equal(t, 1, n)
	}
	require.Empty(t, h.query("SELECT Id FROM PendingServiceRouting"))
	require.Len(t, h.query("SELECT Id FROM UserServicePresence WHERE IsCurrentState = true"), workers)
}
