package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// queryAllRecords runs SOQL through queryAll.
func (h *harness) queryAll(soql string) []map[string]any {
	h.t.Helper()
	s, b := h.rest(http.MethodGet, "queryAll?q="+url.QueryEscape(soql), nil)
	require.Equal(h.t, http.StatusOK, s, string(b))
	var res struct {
		Records []map[string]any `json:"records"`
	}
	require.NoError(h.t, json.Unmarshal(b, &res))
	return res.Records
}

// TestQueryAllReturnsDeletedRows: query hides deleted rows, queryAll returns them with
// IsDeleted=true, also after the store has compacted them away from the live rows, and an
// accepted work's deleted PSR is found by id.
func TestQueryAllReturnsDeletedRows(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var ids []string
	for range 200 {
		s, b := h.rest(http.MethodPost, "sobjects/Case", map[string]any{"Subject": "bin"})
		require.Equal(t, http.StatusCreated, s, string(b))
		var res struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(b, &res))
		ids = append(ids, res.ID)
	}
	for _, id := range ids[:150] { // enough to compact the deleted rows out of the live list
		s, b := h.rest(http.MethodDelete, "sobjects/Case/"+id, nil)
		require.Equal(t, http.StatusNoContent, s, string(b))
	}
	require.Len(t, h.query("SELECT Id FROM Case WHERE Subject = 'bin'"), 50)
	all := h.queryAll("SELECT Id, IsDeleted FROM Case WHERE Subject = 'bin'")
	require.Len(t, all, 200)
	deleted := 0
	for _, r := range all {
		if r["IsDeleted"] == true {
			deleted++
		}
	}
	require.Equal(t, 150, deleted)
	require.Len(t, h.queryAll("SELECT Id FROM Case WHERE Subject = 'bin' AND IsDeleted = true"), 150)
	require.Empty(t, h.query("SELECT Id FROM Case WHERE IsDeleted = true"))

	// A deleted PSR (work accepted) by id.
	h.presence(agent1, "Available")
	w, aw := h.routed("Case", "Support_EN", agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))
	q := "SELECT Id, IsDeleted, WorkItemId FROM PendingServiceRouting WHERE Id = '" + w.PSRID + "'"
	require.Empty(t, h.query(q))
	got := h.queryAll(q)
	require.Len(t, got, 1)
	require.Equal(t, true, got[0]["IsDeleted"])
	require.Equal(t, w.WorkItemID, got[0]["WorkItemId"])
}

// TestFifteenCharacterIDs: a 15-character id matches its 18-character form in SOQL filters
// and in REST paths and reference fields; answers always carry the 18-character form.
func TestFifteenCharacterIDs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	w := h.createWork("Case", "Support_EN")
	short := func(id string) string { return id[:15] }

	recs := h.query("SELECT Id FROM Case WHERE Id = '" + short(w.WorkItemID) + "'")
	require.Len(t, recs, 1)
	require.Equal(t, w.WorkItemID, recs[0]["Id"])
	recs = h.query("SELECT Id FROM PendingServiceRouting WHERE WorkItemId IN ('" + short(w.WorkItemID) + "')")
	require.Len(t, recs, 1)
	require.Equal(t, w.PSRID, recs[0]["Id"])

	rec := h.record("PendingServiceRouting", short(w.PSRID))
	require.Equal(t, w.PSRID, rec["Id"])
	s, b := h.rest(http.MethodPatch, "sobjects/Case/"+short(w.WorkItemID), map[string]any{"Subject": "short id"})
	require.Equal(t, http.StatusNoContent, s, string(b))
	require.Equal(t, "short id", h.record("Case", w.WorkItemID)["Subject"])

	// Reference fields given as 15 characters are stored in the 18-character form.
	psr := h.record("PendingServiceRouting", w.PSRID)
	s, b = h.rest(http.MethodPost, "sobjects/AgentWork", map[string]any{
		"UserId": short(h.userID(agent1)), "WorkItemId": short(w.WorkItemID), "ServiceChannelId": short(psr["ServiceChannelId"].(string)),
		"PendingServiceRoutingId": short(w.PSRID), "CapacityWeight": psr["CapacityWeight"],
	})
	require.Equal(t, http.StatusCreated, s, string(b))
	var res struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(b, &res))
	aw := h.record("AgentWork", short(res.ID))
	require.Equal(t, w.WorkItemID, aw["WorkItemId"])
	require.Equal(t, w.PSRID, aw["PendingServiceRoutingId"])
	require.Equal(t, true, h.record("PendingServiceRouting", w.PSRID)["IsPushed"])
	s, _ = h.rest(http.MethodDelete, "sobjects/Case/"+short(w.WorkItemID)+"x", nil)
	require.Equal(t, http.StatusNotFound, s)
}

// TestPolymorphicOwnerIsTheNameEntity: Owner of a Case is a User or a queue; Salesforce
// returns it through the Name entity: attributes.type "Name", Type "User" or "Queue", and
// user-only fields null for a queue.
func TestPolymorphicOwnerIsTheNameEntity(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	queued := h.createWork("Case", "Support_EN")
	w, aw := h.routed("Case", "Support_EN", agent1)
	require.Equal(t, http.StatusOK, h.awAction(aw, "accept", nil))

	q := "SELECT Id, Owner.Name, Owner.Type, Owner.Alias, Owner.IsActive, Owner.Username FROM Case WHERE Id = '%s'"
	owner := func(id string) map[string]any {
		recs := h.query(fmt.Sprintf(q, id))
		require.Len(t, recs, 1)
		return recs[0]["Owner"].(map[string]any)
	}
	qo := owner(queued.WorkItemID)
	require.Equal(t, map[string]any{"type": "Name", "url": "/services/data/v62.0/sobjects/Group/" + h.queueID("Support_EN")}, qo["attributes"])
	require.Equal(t, "Queue", qo["Type"])
	require.Equal(t, "Support EN", qo["Name"])
	require.Nil(t, qo["Alias"])
	require.Nil(t, qo["Username"])
	uo := owner(w.WorkItemID)
	require.Equal(t, map[string]any{"type": "Name", "url": "/services/data/v62.0/sobjects/User/" + h.userID(agent1)}, uo["attributes"])
	require.Equal(t, "User", uo["Type"])
	require.Equal(t, agent1, uo["Username"])
	require.Equal(t, true, uo["IsActive"])

	// A relationship with one target stays typed as that target.
	recs := h.query("SELECT Id, User.Username FROM AgentWork WHERE Id = '" + aw + "'")
	require.Equal(t, "User", recs[0]["User"].(map[string]any)["attributes"].(map[string]any)["type"])
}
