package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// openedChat creates a chat in Support_EN, routes it to agent and accepts it.
func (h *harness) openedChat(agent string) (WorkResult, string) {
	h.t.Helper()
	w, aw := h.routed("Chat", "Support_EN", agent)
	require.Equal(h.t, http.StatusOK, h.awAction(aw, "accept", nil))
	return w, aw
}

func (h *harness) transfer(aw string, to map[string]any) (int, TransferResult) {
	h.t.Helper()
	s, b := h.control(http.MethodPost, "agentwork/"+aw+"/transfer", to)
	var res TransferResult
	if s == http.StatusOK {
		require.NoError(h.t, json.Unmarshal(b, &res), string(b))
	}
	return s, res
}

// TestTransferChatTargets: a chat goes to a queue directly or through a chat button (new PSR
// with IsTransfer on that queue), to skills (new skills-based PSR without a queue, with
// SkillRequirements), or to a user (a second AgentWork).
func TestTransferChatTargets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	h.presence(agent2, "Available")
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe(customChannel, -1)["successful"])

	for _, tc := range []struct {
		to    map[string]any
		queue string
	}{{map[string]any{"queue": "Support_DE"}, "Support_DE"}, {map[string]any{"button": "Chat_Billing"}, "Billing"}} {
		w, aw := h.openedChat(agent1)
		s, res := h.transfer(aw, tc.to)
		require.Equal(t, http.StatusOK, s, tc.to)
		psr := h.record("PendingServiceRouting", res.PSRID)
		require.Equal(t, true, psr["IsTransfer"])
		require.Equal(t, h.queueID(tc.queue), psr["GroupId"])
		require.Equal(t, w.WorkItemID, psr["WorkItemId"])
		require.Equal(t, h.queueID(tc.queue), h.record("LiveChatTranscript", w.WorkItemID)["OwnerId"])
		require.Equal(t, StatusTransferred, h.record("AgentWork", aw)["Status"])
	}

	w, aw := h.openedChat(agent1)
	s, res := h.transfer(aw, map[string]any{"skills": []any{map[string]any{"skill": "German", "level": 4}}})
	require.Equal(t, http.StatusOK, s)
	psr := h.record("PendingServiceRouting", res.PSRID)
	require.Equal(t, "SkillsBased", psr["RoutingType"])
	require.Equal(t, "ExternalRouting", psr["RoutingModel"])
	require.Equal(t, true, psr["IsTransfer"])
	require.Nil(t, psr["GroupId"])
	require.Nil(t, psr["QueueId"])
	reqs := h.query("SELECT Skill.DeveloperName, SkillLevel FROM SkillRequirement WHERE RelatedRecordId = '" + res.PSRID + "'")
	require.Len(t, reqs, 1)
	require.Equal(t, "German", reqs[0]["Skill"].(map[string]any)["DeveloperName"])
	require.Equal(t, StatusTransferred, h.record("AgentWork", aw)["Status"])
	require.Equal(t, h.userID(agent1), h.record("LiveChatTranscript", w.WorkItemID)["OwnerId"], "no queue owns it")
	// The skills PSR reaches the custom channel like any external-routing PSR.
	var created []string
	for _, m := range c.events(40) {
		if hd := header(m); hd["entityName"] == "PendingServiceRouting" && hd["changeType"] == "CREATE" {
			created = append(created, hd["recordIds"].([]any)[0].(string))
		}
	}
	require.Contains(t, created, res.PSRID)

	_, aw = h.openedChat(agent1)
	s, res = h.transfer(aw, map[string]any{"user": agent2})
	require.Equal(t, http.StatusOK, s)
	second := h.record("AgentWork", res.AgentWorkID)
	require.Equal(t, h.userID(agent2), second["UserId"])
	require.Equal(t, StatusAssigned, second["Status"])

	// Bad targets.
	_, aw = h.openedChat(agent1)
	for _, bad := range []map[string]any{{}, {"queue": "Support_DE", "user": agent2}, {"button": "Chat_Support_EN", "skills": []any{"German"}}} {
		s, _ := h.transfer(aw, bad)
		require.Equal(t, http.StatusBadRequest, s, bad)
	}
	for _, missing := range []map[string]any{{"button": "Nope"}, {"skills": []any{"Nope"}}, {"queue": "Nope"}} {
		s, _ := h.transfer(aw, missing)
		require.Equal(t, http.StatusNotFound, s, missing)
	}
	caseWork, caseAW := h.routed("Case", "Support_EN", agent2)
	require.NotEmpty(t, caseWork.PSRID)
	require.Equal(t, http.StatusOK, h.awAction(caseAW, "accept", nil))
	s, _ = h.transfer(caseAW, map[string]any{"button": "Chat_Support_EN"})
	require.Equal(t, http.StatusBadRequest, s, "a chat button transfers chats only")
}

// TestChangeCaseOwner: a case's owner changed to a user ends routing without an AgentWork (the
// new owner gets no Omni-Channel item); back to an external-routing queue it gets a new PSR.
func TestChangeCaseOwner(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.createWork("Case", "Support_EN")
	s, b := h.control(http.MethodPost, "work/"+w.WorkItemID+"/owner", map[string]any{"user": agent1})
	require.Equal(t, http.StatusOK, s, string(b))
	require.Empty(t, h.query("SELECT Id FROM PendingServiceRouting"))
	require.Empty(t, h.query("SELECT Id FROM AgentWork"))
	require.Equal(t, h.userID(agent1), h.record("Case", w.WorkItemID)["OwnerId"])

	s, b = h.control(http.MethodPost, "work/"+w.WorkItemID+"/owner", map[string]any{"queue": "Support_DE"})
	require.Equal(t, http.StatusOK, s, string(b))
	psrs := h.query("SELECT Id, GroupId, IsTransfer FROM PendingServiceRouting")
	require.Len(t, psrs, 1)
	require.Equal(t, h.queueID("Support_DE"), psrs[0]["GroupId"])
	require.Equal(t, false, psrs[0]["IsTransfer"], "the case never had AgentWork")

	for _, bad := range []map[string]any{{}, {"user": agent1, "queue": "Billing"}} {
		s, _ := h.control(http.MethodPost, "work/"+w.WorkItemID+"/owner", bad)
		require.Equal(t, http.StatusBadRequest, s, bad)
	}
	s, _ = h.control(http.MethodPost, "work/"+w.WorkItemID+"/owner", map[string]any{"queue": "Nope"})
	require.Equal(t, http.StatusNotFound, s)
	s, _ = h.control(http.MethodPost, "work/5005g00000zzzzzAAA/owner", map[string]any{"queue": "Billing"})
	require.Equal(t, http.StatusNotFound, s)
}

// TestNativeRouteBusyInbound: Omni-Channel routes a chat natively to an agent: an Assigned
// AgentWork with RoutingModel MostAvailable that takes the agent's capacity and never reaches
// the external-routing channel.
func TestNativeRouteBusyInbound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe(customChannel, -1)["successful"])
	s, b := h.control(http.MethodPost, "work/native", map[string]any{"channel": "Chat", "user": agent1})
	require.Equal(t, http.StatusCreated, s, string(b))
	var res NativeResult
	require.NoError(t, json.Unmarshal(b, &res))
	aw := h.record("AgentWork", res.AgentWorkID)
	require.Equal(t, "MostAvailable", aw["RoutingModel"])
	require.Equal(t, StatusAssigned, aw["Status"])
	require.Equal(t, 2.0, aw["CapacityWeight"], "the Chat channel's weight")
	psr := h.record("PendingServiceRouting", res.PSRID)
	require.Equal(t, "MostAvailable", psr["RoutingModel"])
	require.Equal(t, true, psr["IsPushed"])
	require.Empty(t, h.query("SELECT Id FROM PendingServiceRouting WHERE RoutingModel = 'ExternalRouting'"))
	require.Equal(t, http.StatusOK, h.awAction(res.AgentWorkID, "accept", nil))
	require.Equal(t, "InProgress", h.record("LiveChatTranscript", res.WorkItemID)["Status"])

	// The native chat takes capacity: 2 of 10, so weight 9 of external work no longer fits.
	w := h.createWork("Case", "Support_EN")
	p := h.record("PendingServiceRouting", w.PSRID)
	s, b = h.rest(http.MethodPost, "sobjects/AgentWork", map[string]any{
		"UserId": h.userID(agent1), "WorkItemId": w.WorkItemID, "ServiceChannelId": p["ServiceChannelId"],
		"PendingServiceRoutingId": w.PSRID, "CapacityWeight": 9,
	})
	requireRESTError(t, s, b, http.StatusBadRequest, "FIELD_INTEGRITY_EXCEPTION", "enough capacity")

	// Nothing native on the external-routing channel: only the presence and the external PSR.
	for _, m := range c.events(10) {
		if hd := header(m); hd["entityName"] != "UserServicePresence" {
			require.Equal(t, []any{w.PSRID}, hd["recordIds"], kinds([]map[string]any{m}))
		}
	}
	// An offline agent cannot be routed to natively, and nothing is created.
	s, _ = h.control(http.MethodPost, "work/native", map[string]any{"channel": "Chat", "user": agent2})
	require.Equal(t, http.StatusConflict, s)
	require.Len(t, h.query("SELECT Id FROM LiveChatTranscript"), 1)
}

// TestCustomerEndsChat: the customer leaves while the chat waits (PSR deleted, chat Missed)
// and while it is offered (AgentWork Canceled too), and after it was accepted (chat
// Completed, the AgentWork stays Opened).
func TestCustomerEndsChat(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	cancel := func(id string) {
		s, b := h.control(http.MethodPost, "work/"+id+"/cancel", nil)
		require.Equal(t, http.StatusOK, s, string(b))
	}
	waiting := h.createWork("Chat", "Support_EN")
	cancel(waiting.WorkItemID)
	require.Empty(t, h.query("SELECT Id FROM PendingServiceRouting WHERE Id = '"+waiting.PSRID+"'"))
	chat := h.record("LiveChatTranscript", waiting.WorkItemID)
	require.Equal(t, "Missed", chat["Status"])
	require.NotNil(t, chat["EndTime"])

	offered, aw := h.routed("Chat", "Support_EN", agent1)
	cancel(offered.WorkItemID)
	require.Equal(t, StatusCanceled, h.record("AgentWork", aw)["Status"])
	require.NotNil(t, h.record("AgentWork", aw)["CancelDateTime"])
	require.Empty(t, h.query("SELECT Id FROM PendingServiceRouting WHERE Id = '"+offered.PSRID+"'"))
	require.Equal(t, "Missed", h.record("LiveChatTranscript", offered.WorkItemID)["Status"])

	accepted, aw2 := h.openedChat(agent1)
	cancel(accepted.WorkItemID)
	require.Equal(t, StatusOpened, h.record("AgentWork", aw2)["Status"])
	require.Equal(t, "Completed", h.record("LiveChatTranscript", accepted.WorkItemID)["Status"])

	msg := h.createWork("Messaging", "Support_EN")
	cancel(msg.WorkItemID)
	require.Equal(t, "Ended", h.record("MessagingSession", msg.WorkItemID)["Status"])
}

// TestHistoryPaged: GET /emulator/v1/history returns every change of PSR, AgentWork and
// presence rows in commit order, with timestamps and the whole row, paged.
func TestHistoryPaged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	h.clock.Advance(time.Second)
	w, aw := h.routed("Case", "Support_EN", agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
	h.presence(agent1, "Offline") // logout

	var all []HistoryEntry
	path := "history?limit=3"
	pages := 0
	for {
		s, b := h.control(http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, s, string(b))
		var page HistoryPage
		require.NoError(t, json.Unmarshal(b, &page))
		require.LessOrEqual(t, len(page.Entries), 3)
		all = append(all, page.Entries...)
		pages++
		if page.Done {
			require.Empty(t, page.Next)
			break
		}
		path = page.Next[len("/emulator/v1/"):]
	}
	var got []string
	for i, e := range all {
		require.Equal(t, int64(i+1), e.Seq)
		require.False(t, e.Time.IsZero())
		require.Equal(t, e.ID, e.Fields["Id"])
		require.NotEmpty(t, e.TransactionKey)
		got = append(got, e.Entity+":"+e.ChangeType)
	}
	require.Equal(t, []string{
		"UserServicePresence:CREATE",
		"PendingServiceRouting:CREATE",
		"AgentWork:CREATE", "PendingServiceRouting:UPDATE",
		"AgentWork:UPDATE", "UserServicePresence:UPDATE", "PendingServiceRouting:DELETE",
		"UserServicePresence:UPDATE", // logout closes the row
	}, got)
	require.Equal(t, pages, (len(all)+2)/3)
	require.Equal(t, StatusOpened, all[4].Fields["Status"])
	require.Equal(t, w.PSRID, all[6].ID)
	require.Equal(t, true, all[6].Fields["IsDeleted"])
	require.Equal(t, false, all[7].Fields["IsCurrentState"])
	require.True(t, all[1].Time.After(all[0].Time))

	for _, bad := range []string{"history?after=-1", "history?limit=0", "history?limit=" + strconv.Itoa(MaxHistoryLimit+1), "history?after=x"} {
		s, _ := h.control(http.MethodGet, bad, nil)
		require.Equal(t, http.StatusBadRequest, s, bad)
	}
}
