package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRESTRecordLifecycleAndErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, b := h.rest(http.MethodPost, "sobjects/Case", map[string]any{"Subject": "printer on fire", "Priority": "High"})
	require.Equal(t, http.StatusCreated, s, string(b))
	var created struct {
		ID      string `json:"id"`
		Success bool   `json:"success"`
		Errors  []any  `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(b, &created))
	require.True(t, created.Success)
	require.Equal(t, "500", created.ID[:3])
	require.Len(t, created.ID, 18)
	require.Equal(t, created.ID[15:], idChecksum(created.ID[:15]))

	rec := h.record("Case", created.ID)
	require.Equal(t, map[string]any{"type": "Case", "url": "/services/data/v62.0/sobjects/Case/" + created.ID}, rec["attributes"])
	require.Equal(t, "New", rec["Status"])
	require.Equal(t, "High", rec["Priority"])
	// 15-character ids work too.
	require.Equal(t, created.ID, h.record("Case", created.ID[:15])["Id"])

	s, _ = h.rest(http.MethodPatch, "sobjects/Case/"+created.ID, map[string]any{"Status": "Working"})
	require.Equal(t, http.StatusNoContent, s)
	require.Equal(t, "Working", h.record("Case", created.ID)["Status"])

	errTests := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"unknown field", "POST", "sobjects/Case", map[string]any{"Foo": 1}, 400, "INVALID_FIELD"},
		{"id in body", "POST", "sobjects/Case", map[string]any{"Id": created.ID}, 400, "INVALID_FIELD"},
		{"required", "POST", "sobjects/User", map[string]any{"Username": "x@y"}, 400, "REQUIRED_FIELD_MISSING"},
		{"cross reference", "POST", "sobjects/Case", map[string]any{"OwnerId": "0055g00000zzzzzAAA"}, 400, "INVALID_CROSS_REFERENCE_KEY"},
		{"picklist", "POST", "sobjects/Case", map[string]any{"Status": "Bogus"}, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"},
		{"read only", "PATCH", "sobjects/Case/" + created.ID, map[string]any{"CaseNumber": "1"}, 400, "INVALID_FIELD_FOR_INSERT_UPDATE"},
		{"unknown type", "GET", "sobjects/Nope/describe", nil, 404, "NOT_FOUND"},
		{"unknown id", "GET", "sobjects/Case/5005g00000zzzzzAAA", nil, 404, "NOT_FOUND"},
		{"malformed query", "GET", "query?q=" + url.QueryEscape("SELEC Id FROM Case"), nil, 400, "MALFORMED_QUERY"},
		{"bad query field", "GET", "query?q=" + url.QueryEscape("SELECT Nope FROM Case"), nil, 400, "INVALID_FIELD"},
		{"bad query type", "GET", "query?q=" + url.QueryEscape("SELECT Id FROM Nope"), nil, 400, "INVALID_TYPE"},
		{"bad locator", "GET", "query/01gXXX-2000", nil, 400, "INVALID_QUERY_LOCATOR"},
	}
	for _, tc := range errTests {
		s, b := h.rest(tc.method, tc.path, tc.body)
		require.Equal(t, tc.status, s, tc.name+": "+string(b))
		var errs []map[string]any
		require.NoError(t, json.Unmarshal(b, &errs), tc.name)
		require.Equal(t, tc.code, errs[0]["errorCode"], tc.name)
		require.NotEmpty(t, errs[0]["message"], tc.name)
	}

	s, _ = h.rest(http.MethodDelete, "sobjects/Case/"+created.ID, nil)
	require.Equal(t, http.StatusNoContent, s)
	s, b = h.rest(http.MethodDelete, "sobjects/Case/"+created.ID, nil)
	require.Equal(t, http.StatusNotFound, s)
	require.JSONEq(t, `[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]`, string(b))
}

func TestRESTVersionsDescribeLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, b, hdr := h.do(http.MethodGet, "/services/data/", "", nil)
	require.Equal(t, http.StatusOK, s)
	require.Empty(t, hdr.Get("Sforce-Limit-Info"))
	require.Contains(t, string(b), `"version":"62.0"`)
	require.Contains(t, string(b), `"url":"/services/data/v62.0"`)

	s, b, hdr = h.do(http.MethodGet, "/services/data/v62.0/sobjects/AgentWork/describe", h.token, nil)
	require.Equal(t, http.StatusOK, s)
	require.Regexp(t, `^api-usage=\d+/100000$`, hdr.Get("Sforce-Limit-Info"))
	var d struct {
		Name      string `json:"name"`
		KeyPrefix string `json:"keyPrefix"`
		Fields    []struct {
			Name       string   `json:"name"`
			Type       string   `json:"type"`
			Createable bool     `json:"createable"`
			Updateable bool     `json:"updateable"`
			References []string `json:"referenceTo"`
			Picklist   []struct {
				Value string `json:"value"`
			} `json:"picklistValues"`
		} `json:"fields"`
	}
	require.NoError(t, json.Unmarshal(b, &d))
	require.Equal(t, "0Bz", d.KeyPrefix)
	byName := map[string]int{}
	for i, f := range d.Fields {
		byName[f.Name] = i
		require.False(t, f.Updateable && f.Name != "OwnerId", "AgentWork field %s must not be updateable", f.Name)
	}
	status := d.Fields[byName["Status"]]
	require.Equal(t, "picklist", status.Type)
	require.Len(t, status.Picklist, 8)
	require.True(t, d.Fields[byName["UserId"]].Createable)
	require.Equal(t, []string{"User"}, d.Fields[byName["UserId"]].References)

	s, b = h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusOK, s)
	var lim map[string]map[string]int
	require.NoError(t, json.Unmarshal(b, &lim))
	require.Equal(t, 100000, lim["DailyApiRequests"]["Max"])
	require.Less(t, lim["DailyApiRequests"]["Remaining"], 100000)

	s, _ = h.rest(http.MethodGet, "nope", nil)
	require.Equal(t, http.StatusNotFound, s)
	s, _, _ = h.do(http.MethodGet, "/services/data/v12.0/limits", h.token, nil)
	require.Equal(t, http.StatusNotFound, s)
}

func TestQueryPagingAndBatchSize(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, b := h.control(http.MethodPost, "records/Case", map[string]any{"count": 4500, "fields": map[string]any{"Subject": "bulk", "Priority": "Low"}})
	require.Equal(t, http.StatusCreated, s, string(b))
	q := "query?q=" + url.QueryEscape("SELECT Id, Subject, Owner.Username FROM Case WHERE Subject = 'bulk' ORDER BY CaseNumber")
	page := func(path string, hdr ...string) (int, bool, string, []map[string]any) {
		s, b := h.rest(http.MethodGet, path, nil, hdr...)
		require.Equal(t, http.StatusOK, s, string(b))
		var res struct {
			TotalSize int              `json:"totalSize"`
			Done      bool             `json:"done"`
			Next      string           `json:"nextRecordsUrl"`
			Records   []map[string]any `json:"records"`
		}
		require.NoError(t, json.Unmarshal(b, &res))
		return res.TotalSize, res.Done, res.Next, res.Records
	}
	total, done, next, recs := page(q)
	require.Equal(t, 4500, total)
	require.False(t, done)
	require.Len(t, recs, 2000)
	require.Regexp(t, `^/services/data/v62.0/query/01g\w{15}-2000$`, next)
	// Owner is polymorphic: the parent comes back as the Name entity.
	require.Equal(t, map[string]any{"attributes": map[string]any{"type": "Name", "url": "/services/data/v62.0/sobjects/User/" + h.userID(DemoUsername)}, "Username": DemoUsername}, recs[0]["Owner"])
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r["Id"].(string)] = true
	}
	pages := 1
	for !done {
		_, done, next, recs = page(strings.TrimPrefix(next, "/services/data/v62.0/"))
		pages++
		for _, r := range recs {
			seen[r["Id"].(string)] = true
		}
	}
	require.Equal(t, 3, pages)
	require.Len(t, seen, 4500)

	// Sforce-Query-Options: batchSize.
	_, _, next, recs = page(q, "Sforce-Query-Options", "batchSize=500")
	require.Len(t, recs, 500)
	require.True(t, strings.HasSuffix(next, "-500"))

	s, b = h.rest(http.MethodGet, "query?q="+url.QueryEscape("SELECT COUNT() FROM Case WHERE Priority = 'Low'"), nil)
	require.Equal(t, http.StatusOK, s)
	require.JSONEq(t, `{"totalSize":4500,"done":true,"records":[]}`, string(b))
}

func TestCompositeCollections(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rec := func(typ string, fields map[string]any) map[string]any {
		fields["attributes"] = map[string]any{"type": typ}
		return fields
	}
	s, b := h.rest(http.MethodPost, "composite/sobjects", map[string]any{"allOrNone": false, "records": []any{
		rec("Case", map[string]any{"Subject": "a"}),
		rec("Case", map[string]any{"Status": "Bogus"}),
		rec("Case", map[string]any{"Subject": "c"}),
	}})
	require.Equal(t, http.StatusOK, s, string(b))
	var res []struct {
		ID      string `json:"id"`
		Success bool   `json:"success"`
		Errors  []struct {
			StatusCode string   `json:"statusCode"`
			Message    string   `json:"message"`
			Fields     []string `json:"fields"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(b, &res))
	require.Len(t, res, 3)
	require.True(t, res[0].Success)
	require.False(t, res[1].Success)
	require.Equal(t, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", res[1].Errors[0].StatusCode)
	require.True(t, res[2].Success)

	before := len(h.query("SELECT Id FROM Case"))
	s, b = h.rest(http.MethodPost, "composite/sobjects", map[string]any{"allOrNone": true, "records": []any{
		rec("Case", map[string]any{"Subject": "x"}),
		rec("Case", map[string]any{"Nope": "y"}),
	}})
	require.Equal(t, http.StatusOK, s)
	require.NoError(t, json.Unmarshal(b, &res))
	require.Equal(t, "ALL_OR_NONE_OPERATION_ROLLED_BACK", res[0].Errors[0].StatusCode)
	require.Equal(t, "INVALID_FIELD", res[1].Errors[0].StatusCode)
	require.Len(t, h.query("SELECT Id FROM Case"), before)

	s, b = h.rest(http.MethodPatch, "composite/sobjects", map[string]any{"records": []any{
		rec("Case", map[string]any{"id": res0(t, h), "Subject": "patched"}),
	}})
	require.Equal(t, http.StatusOK, s, string(b))
	require.Contains(t, string(b), `"success":true`)
	require.Len(t, h.query("SELECT Id FROM Case WHERE Subject = 'patched'"), 1)

	s, _ = h.rest(http.MethodPost, "composite/sobjects", map[string]any{"records": "x"})
	require.Equal(t, http.StatusBadRequest, s)
}

func res0(t *testing.T, h *harness) string {
	t.Helper()
	return h.query("SELECT Id FROM Case WHERE Subject = 'a'")[0]["Id"].(string)
}

func TestCompositeAgentWorkBatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.presence(agent1, "Available")
	h.presence(agent2, "Available")
	var recs []any
	for i := range 4 {
		w := h.createWork("Case", "Support_EN")
		psr := h.record("PendingServiceRouting", w.PSRID)
		user := agent1
		if i%2 == 1 {
			user = agent2
		}
		recs = append(recs, map[string]any{"attributes": map[string]any{"type": "AgentWork"}, "UserId": h.userID(user),
			"WorkItemId": w.WorkItemID, "ServiceChannelId": psr["ServiceChannelId"], "PendingServiceRoutingId": w.PSRID, "CapacityWeight": 1})
	}
	s, b := h.rest(http.MethodPost, "composite/sobjects", map[string]any{"allOrNone": false, "records": recs})
	require.Equal(t, http.StatusOK, s)
	require.Equal(t, 4, strings.Count(string(b), `"success":true`), string(b))
	require.Len(t, h.query("SELECT Id FROM AgentWork WHERE Status = 'Assigned'"), 4)
}

func TestAPILimitEnforced(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.DailyAPILimit = 3 })
	for i := 1; i <= 3; i++ {
		s, _, hdr := h.do(http.MethodGet, "/services/data/v62.0/limits", h.token, nil)
		require.Equal(t, http.StatusOK, s)
		require.Equal(t, fmt.Sprintf("api-usage=%d/3", i), hdr.Get("Sforce-Limit-Info"))
	}
	s, b, hdr := h.do(http.MethodGet, "/services/data/v62.0/limits", h.token, nil)
	require.Equal(t, http.StatusForbidden, s)
	require.JSONEq(t, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED","fields":[]}]`, string(b))
	require.Equal(t, "api-usage=3/3", hdr.Get("Sforce-Limit-Info"))
	st, _ := h.control(http.MethodPost, "limits/reset", nil)
	require.Equal(t, http.StatusOK, st)
	s, _ = h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusOK, s)
	st, _ = h.control(http.MethodPost, "limits/exhaust", nil)
	require.Equal(t, http.StatusOK, st)
	s, _ = h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusForbidden, s)
	st, b = h.control(http.MethodGet, "counters", nil)
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, string(b), `"apiCalls":3`)
}
