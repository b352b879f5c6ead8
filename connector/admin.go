package connector

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/omniroute/omniroute/routing"
)

// The admin read API (docs/api.md, "/v1"): what the engine holds, asked of the router in its
// goroutine (Router.Query), the only one that touches the engine. Each answer is computed on
// demand by routing's views (routing/view.go), so Apply pays nothing for it.

// adminQueryTimeout bounds how long an admin read waits for the router.
const adminQueryTimeout = 10 * time.Second

// PlansResponse is the body of GET /v1/plans.
type PlansResponse struct {
	AsOf  time.Time          `json:"as_of"`
	Plans []routing.PlanView `json:"plans"`
}

// AgentsResponse is the body of GET /v1/agents: one page of agents, sorted by id.
type AgentsResponse struct {
	AsOf time.Time `json:"as_of"`
	// Count is how many agents the engine knows (all pages).
	Count  int                 `json:"count"`
	Agents []routing.AgentView `json:"agents"`
	// NextAfter, when more agents follow, is the after= of the next page.
	NextAfter string `json:"next_after,omitempty"`
}

// Pages of GET /v1/agents: limit= defaults to agentsPageDefault and is at most agentsPageMax.
const (
	agentsPageDefault = 500
	agentsPageMax     = 5000
)

// QueuesResponse is the body of GET /v1/queues.
type QueuesResponse struct {
	AsOf   time.Time           `json:"as_of"`
	Queues []routing.QueueView `json:"queues"`
}

// ExplainResponse is the body of GET /v1/work/{id}/explain.
type ExplainResponse struct {
	AsOf time.Time `json:"as_of"`
	routing.Explanation
}

// registerAdminAPI serves GET /v1/plans, /v1/agents, /v1/queues and /v1/work/{id}/explain on
// h, behind the admin token. router returns the running router, or nil while the daemon is
// still starting (then the answer is 503 not_ready).
func registerAdminAPI(h *HTTP, router func() *Router) {
	a := &adminAPI{router: router, log: h.log}
	h.HandleAdmin("/v1/plans", http.MethodGet, a.handle(func(r *Router, now time.Time, _ *http.Request) (int, any) {
		return http.StatusOK, PlansResponse{AsOf: now, Plans: r.eng.Plans().PlanViews()}
	}))
	h.HandleAdmin("/v1/agents", http.MethodGet, a.handle(func(r *Router, now time.Time, req *http.Request) (int, any) {
		limit := agentsPageDefault
		if v := req.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > agentsPageMax {
				return http.StatusBadRequest, APIError{Error: "bad_request",
					Message: fmt.Sprintf("limit must be a whole number from 1 to %d, not %q", agentsPageMax, v)}
			}
			limit = n
		}
		as, more, total := r.eng.Agents(req.URL.Query().Get("after"), limit)
		resp := AgentsResponse{AsOf: now, Count: total, Agents: as}
		if more {
			resp.NextAfter = as[len(as)-1].ID
		}
		return http.StatusOK, resp
	}))
	h.HandleAdmin("/v1/queues", http.MethodGet, a.handle(func(r *Router, now time.Time, _ *http.Request) (int, any) {
		return http.StatusOK, QueuesResponse{AsOf: now, Queues: r.eng.Queues(now)}
	}))
	h.HandleAdmin("/v1/work/{id}/explain", http.MethodGet, a.handle(func(r *Router, now time.Time, req *http.Request) (int, any) {
		id := req.PathValue("id")
		x, ok := r.eng.Explain(now, id)
		if !ok {
			return http.StatusNotFound, APIError{Error: "not_found", Message: "no waiting, offered or assigned work with id " + id}
		}
		return http.StatusOK, ExplainResponse{AsOf: now, Explanation: x}
	}))
}

// adminAPI answers the admin reads.
type adminAPI struct {
	router func() *Router
	log    *slog.Logger
}

// handle runs view in the router's goroutine and writes what it returns.
func (a *adminAPI) handle(view func(r *Router, now time.Time, req *http.Request) (int, any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := a.router()
		if r == nil {
			writeError(w, http.StatusServiceUnavailable, APIError{Error: "not_ready",
				Message: "the router is not running yet (the daemon is starting: see /readyz)"})
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), adminQueryTimeout)
		defer cancel()
		var (
			code int
			body any
		)
		err := r.Query(ctx, func(r *Router) {
			// A view only reads the engine: a bug in one must not stop routing.
			defer func() {
				if p := recover(); p != nil {
					a.log.Error("admin view failed", "path", req.URL.Path, "panic", fmt.Sprint(p))
					code, body = http.StatusInternalServerError, APIError{Error: "internal", Message: "the view failed; see the daemon's log"}
				}
			}()
			code, body = view(r, r.opts.Now().UTC(), req)
		})
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, APIError{Error: "router_busy",
				Message: "the router did not answer in time: " + err.Error()})
			return
		}
		writeJSON(w, code, body)
	})
}

// adminRouter returns the running router, or nil before the core started it.
func (c *Connector) adminRouter() *Router {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.router
}
