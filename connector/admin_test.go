package connector

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
)

var adminT0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// adminRouterFixture runs a Router (real engine, no Salesforce) whose clock reads adminT0 plus
// 10 s, with two agents, a waiting item W1 that nobody can take and W2 offered to A1.
func adminRouterFixture(t *testing.T) *Router {
	t.Helper()
	tbl, err := routing.Compile(&mapping.Config{
		Channels: []mapping.Channel{{Name: "Chat", Class: mapping.SemiLive, Weight: 1}},
		Capacity: mapping.Capacity{Default: "std", Profiles: []mapping.CapacityProfile{{Name: "std", Total: 1}}},
		Plans: []mapping.Plan{{
			Name: "support", Queues: []string{"Support_EN"},
			RequiredSkills: []mapping.SkillRequirement{{Skill: "English", MinLevel: 5}},
			OfferTimeout:   30 * time.Second,
		}},
	})
	require.NoError(t, err)
	r := NewRouter(RouterOptions{Table: tbl, Now: func() time.Time { return adminT0.Add(10 * time.Second) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, r.Query(t.Context(), func(r *Router) {
		for _, a := range []struct {
			id    string
			level float64
		}{{"005A1", 8}, {"005A2", 3}} {
			r.eng.Apply(adminT0, routing.Event{Type: routing.EventAgentSkills, AgentID: a.id, Skills: []routing.Skill{{Name: "English", Level: a.level}}})
			r.eng.Apply(adminT0, routing.Event{Type: routing.EventAgentState, AgentID: a.id, State: mapping.State{Major: mapping.Ready}})
			r.eng.Apply(adminT0, routing.Event{Type: routing.EventAgentPresence, AgentID: a.id, Presence: "Available", Channels: []string{"Chat"}})
		}
		r.eng.Apply(adminT0, routing.Event{Type: routing.EventWorkArrived, Work: routing.Work{ID: "W2", PSR: "0JR2", Queue: "Support_EN", Channel: "Chat", RequestedAt: adminT0}})
		r.eng.Apply(adminT0, routing.Event{Type: routing.EventWorkArrived, Work: routing.Work{ID: "W1", PSR: "0JR1", Queue: "Support_EN", Channel: "Chat", RequestedAt: adminT0}})
	}))
	return r
}

func adminServer(t *testing.T, token string, r *Router) string {
	t.Helper()
	h, srv := newTestHTTP(t, nil, token)
	registerAdminAPI(h, func() *Router { return r })
	return srv.URL
}

var adminPaths = []string{"/v1/plans", "/v1/agents", "/v1/queues", "/v1/work/W1/explain"}

// TestAdminAPIToken: the /v1 reads are behind the admin token: none configured answers 403,
// a missing or wrong one 401, the right one 200.
func TestAdminAPIToken(t *testing.T) {
	t.Parallel()
	r := adminRouterFixture(t)
	off := adminServer(t, "", r)
	on := adminServer(t, testToken, r)
	for _, p := range adminPaths {
		var e APIError
		code, _, _ := call(t, http.MethodGet, off+p, "Bearer "+testToken, &e)
		require.Equal(t, http.StatusForbidden, code, p)
		require.Equal(t, "admin_disabled", e.Error, p)
		for _, auth := range []string{"", "Bearer wrong"} {
			code, _, body := call(t, http.MethodGet, on+p, auth, &e)
			require.Equal(t, http.StatusUnauthorized, code, p)
			require.Equal(t, "unauthorized", e.Error, p)
			require.NotContains(t, body, "W1", "nothing of the engine leaks to a refused call")
		}
		code, _, _ = call(t, http.MethodGet, on+p, "Bearer "+testToken, nil)
		require.Equal(t, http.StatusOK, code, p)
		code, hdr, _ := call(t, http.MethodPost, on+p, "Bearer "+testToken, &e)
		require.Equal(t, http.StatusMethodNotAllowed, code, p)
		require.Equal(t, http.MethodGet, hdr.Get("Allow"))
	}
}

// TestAdminAPIAnswers: each endpoint's JSON, with its stable field names, over loopback.
func TestAdminAPIAnswers(t *testing.T) {
	t.Parallel()
	r := adminRouterFixture(t)
	url := adminServer(t, testToken, r)
	auth := "Bearer " + testToken
	get := func(path string, v any) (int, string) {
		t.Helper()
		code, _, body := call(t, http.MethodGet, url+path, auth, v)
		return code, body
	}

	t.Run("plans", func(t *testing.T) {
		code, body := get("/v1/plans", nil)
		require.Equal(t, http.StatusOK, code)
		require.JSONEq(t, `{"as_of":"2026-03-01T09:00:10Z","plans":[{"name":"support","queues":["Support_EN"],"priority":0,
			"required_skills":[{"skill":"English","level":5}],"additional_skills":[],"drop_additional_after_seconds":0,
			"relaxation":[],"overflow":null,"offer_timeout_seconds":30,"wrap_up_timeout_seconds":0,
			"preferred_timeout_seconds":30,"auto_accept":false,"disposition_required":false}]}`, body)
	})

	t.Run("agents", func(t *testing.T) {
		var got map[string]any
		code, body := get("/v1/agents", &got)
		require.Equal(t, http.StatusOK, code)
		require.EqualValues(t, 2, got["count"])
		var resp AgentsResponse
		require.NoError(t, json.Unmarshal([]byte(body), &resp))
		a1 := resp.Agents[0]
		require.Equal(t, "005A1", a1.ID)
		require.Equal(t, mapping.State{Major: mapping.Ready}, a1.State, "an open offer is not work yet")
		require.Equal(t, mapping.State{Major: mapping.Ready}, a1.Chosen)
		require.Equal(t, []string{"Chat"}, a1.Channels)
		require.True(t, a1.Routable)
		require.Equal(t, 1, a1.Capacity.Used)
		require.Equal(t, 1, a1.Capacity.Total)
		require.Equal(t, []routing.HeldWorkView{{WorkID: "W2", Status: "offered", Channel: "Chat", Class: "semi-live", Plan: "support", Weight: 1}}, a1.Work)
		require.Equal(t, adminT0, *a1.IdleSince)
		first := got["agents"].([]any)[0].(map[string]any)
		for _, k := range []string{"id", "state", "chosen_state", "presence", "channels", "routable", "not_routable", "skills", "capacity", "work", "idle_since"} {
			require.Contains(t, first, k)
		}
		require.Equal(t, "Ready", first["state"])
		require.NotContains(t, body, testToken)
		require.NotContains(t, first, "next_after", "one page holds them all")

		var page AgentsResponse
		code, _ = get("/v1/agents?limit=1", &page)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, 2, page.Count)
		require.Equal(t, "005A1", page.Agents[0].ID)
		require.Equal(t, "005A1", page.NextAfter)
		var last AgentsResponse
		code, _ = get("/v1/agents?limit=1&after=005A1", &last)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "005A2", last.Agents[0].ID)
		require.Empty(t, last.NextAfter)
		for _, bad := range []string{"0", "x", "5001"} {
			var e APIError
			code, _ = get("/v1/agents?limit="+bad, &e)
			require.Equal(t, http.StatusBadRequest, code, bad)
			require.Equal(t, "bad_request", e.Error)
		}
	})

	t.Run("queues", func(t *testing.T) {
		code, body := get("/v1/queues", nil)
		require.Equal(t, http.StatusOK, code)
		require.JSONEq(t, `{"as_of":"2026-03-01T09:00:10Z","queues":[{"plan":"support","queue":"Support_EN","depth":1,
			"oldest_age_seconds":10,"waiting":1,"preferred_user_pending":0,"parked":0,"offered":1}]}`, body)
	})

	t.Run("explain waiting", func(t *testing.T) {
		var x ExplainResponse
		code, body := get("/v1/work/W1/explain", &x)
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, "waiting", x.Status)
		require.Equal(t, 10.0, x.AgeSeconds)
		require.Len(t, x.Groups, 2)
		require.Equal(t, routing.ExplainGroup{Reason: "missing_skill", Count: 1, Agents: []routing.ExplainAgent{
			{ID: "005A2", Missing: &routing.MissingSkill{Skill: "English", NeededLevel: 5, HadLevel: 3, Held: true}}}}, x.Groups[0])
		require.Equal(t, routing.ExplainGroup{Reason: "no_capacity", Count: 1, Agents: []routing.ExplainAgent{
			{ID: "005A1", Detail: "total: 1/1 units used, needs 1"}}}, x.Groups[1])
		require.Contains(t, body, `"skill": "English"`)
		require.Contains(t, body, `"needed_level": 5`)
		require.Contains(t, body, `"had_level": 3`)
	})

	t.Run("explain routed", func(t *testing.T) {
		var x ExplainResponse
		code, body := get("/v1/work/W2/explain", &x)
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, "offered", x.Status)
		require.Equal(t, "005A1", x.Agent.ID)
		require.Equal(t, 8.0, x.Agent.SkillFit)
		require.Equal(t, routing.ChoosingOrder, x.ChoosingOrder)
		require.Equal(t, 0, x.Others.Count)
		require.Contains(t, body, `"choosing_order"`)
		require.Contains(t, body, `"other_eligible"`)
	})

	t.Run("unknown work", func(t *testing.T) {
		var e APIError
		code, _ := get("/v1/work/nope/explain", &e)
		require.Equal(t, http.StatusNotFound, code)
		require.Equal(t, "not_found", e.Error)
	})
}

// TestAdminAPIBeforeRouter: the reads ask the Connector for its router (as New wires them):
// before the core starts it they answer 503 not_ready, then the router answers.
func TestAdminAPIBeforeRouter(t *testing.T) {
	t.Parallel()
	c := &Connector{}
	h, srv := newTestHTTP(t, nil, testToken)
	registerAdminAPI(h, c.adminRouter)
	for _, p := range adminPaths {
		var e APIError
		code, _, _ := call(t, http.MethodGet, srv.URL+p, "Bearer "+testToken, &e)
		require.Equal(t, http.StatusServiceUnavailable, code, p)
		require.Equal(t, "not_ready", e.Error, p)
	}
	r := adminRouterFixture(t)
	c.mu.Lock()
	c.router = r
	c.mu.Unlock()
	for _, p := range adminPaths {
		code, _, _ := call(t, http.MethodGet, srv.URL+p, "Bearer "+testToken, nil)
		require.Equal(t, http.StatusOK, code, p)
	}
}

// TestAdminViewPanicKeepsRouting: a view that panics answers 500 internal, and the router
// goes on (its goroutine is the daemon's routing loop).
func TestAdminViewPanicKeepsRouting(t *testing.T) {
	t.Parallel()
	r := adminRouterFixture(t)
	h, srv := newTestHTTP(t, nil, testToken)
	a := &adminAPI{router: func() *Router { return r }, log: h.log}
	h.HandleAdmin("/v1/boom", http.MethodGet, a.handle(func(*Router, time.Time, *http.Request) (int, any) {
		panic("boom")
	}))
	var e APIError
	code, _, _ := call(t, http.MethodGet, srv.URL+"/v1/boom", "Bearer "+testToken, &e)
	require.Equal(t, http.StatusInternalServerError, code)
	require.Equal(t, "internal", e.Error)
	require.NoError(t, r.Query(t.Context(), func(*Router) {}), "the router still runs")
}
