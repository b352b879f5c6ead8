package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHTTPFaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, b := h.control(http.MethodPost, "faults/http", map[string]any{"status": 503, "count": 2, "retryAfterSeconds": 7, "scope": "rest"})
	require.Equal(t, http.StatusOK, s, string(b))
	for range 2 {
		s, b, hdr := h.do(http.MethodGet, "/services/data/v62.0/limits", h.token, nil)
		require.Equal(t, http.StatusServiceUnavailable, s)
		require.Equal(t, "7", hdr.Get("Retry-After"))
		var errs []map[string]any
		require.NoError(t, json.Unmarshal(b, &errs))
		require.Equal(t, "SERVER_UNAVAILABLE", errs[0]["errorCode"])
	}
	s, _ = h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusOK, s, "the fault is used up")
	// Token scope does not touch REST.
	s, _ = h.control(http.MethodPost, "faults/http", map[string]any{"status": 503, "count": 1, "scope": "token"})
	require.Equal(t, http.StatusOK, s)
	s, _ = h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusOK, s)
	st, body := h.form("/services/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}})
	require.Equal(t, http.StatusServiceUnavailable, st)
	require.Contains(t, string(body), `"error"`)
	// Rate 1 on cometd fails every CometD request until cleared.
	s, _ = h.control(http.MethodPost, "faults/http", map[string]any{"status": 500, "rate": 1, "scope": "cometd"})
	require.Equal(t, http.StatusOK, s)
	st2, _, _ := h.do(http.MethodPost, "/cometd/62.0", h.token, []any{map[string]any{"channel": "/meta/handshake"}})
	require.Equal(t, http.StatusInternalServerError, st2)
	s, _ = h.control(http.MethodDelete, "faults", nil)
	require.Equal(t, http.StatusOK, s)
	c := h.comet(h.token)
	c.handshake()
	// Bad fault requests.
	for _, body := range []map[string]any{{"status": 404, "count": 1}, {"status": 403, "count": 1}, {"status": 503}, {"status": 503, "count": 1, "scope": "x"}, {"status": 503, "rate": 2}} {
		s, _ := h.control(http.MethodPost, "faults/http", body)
		require.Equal(t, http.StatusBadRequest, s, body)
	}
	s, _ = h.control(http.MethodPost, "faults/latency", map[string]any{"ms": 1, "scope": "rest"})
	require.Equal(t, http.StatusOK, s)
	s, _ = h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusOK, s)
}

func TestControlAPIAuthAndHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, _, _ := h.do(http.MethodGet, "/emulator/v1/counters", "", nil)
	require.Equal(t, http.StatusUnauthorized, s)
	s, _, _ = h.do(http.MethodGet, "/emulator/v1/counters", "wrong", nil)
	require.Equal(t, http.StatusUnauthorized, s)
	s, _, _ = h.do(http.MethodGet, "/emulator/v1/counters", h.token, nil) // an org token is not a control token
	require.Equal(t, http.StatusUnauthorized, s)
	s, b, _ := h.do(http.MethodGet, "/emulator/healthz", "", nil)
	require.Equal(t, http.StatusOK, s)
	require.JSONEq(t, `{"status":"ok"}`, string(b))

	h.createWork("Case", "Support_EN")
	s, b = h.control(http.MethodGet, "counters", nil)
	require.Equal(t, http.StatusOK, s)
	var c Counters
	require.NoError(t, json.Unmarshal(b, &c))
	require.Equal(t, int64(2), c.EventsPublished) // Case CREATE and PSR CREATE
	require.Equal(t, 1, c.Records["PendingServiceRouting"])
	require.GreaterOrEqual(t, c.Records["User"], 21)
	s, _ = h.control(http.MethodPost, "records/Nope", map[string]any{"count": 1})
	require.Equal(t, http.StatusNotFound, s)
	s, _ = h.control(http.MethodPost, "records/Case", map[string]any{"count": 2, "fields": map[string]any{"Status": "Bogus"}})
	require.Equal(t, http.StatusBadRequest, s)
	s, _ = h.control(http.MethodPost, "agentwork/0Bz5g00000zzzzzAAA/accept", nil)
	require.Equal(t, http.StatusNotFound, s)
	s, _ = h.control(http.MethodPost, "agents/nobody@x/presence", map[string]string{"status": "Available"})
	require.Equal(t, http.StatusNotFound, s)
	s, _ = h.control(http.MethodPost, "agents/"+agent1+"/presence", map[string]string{"status": "Nope"})
	require.Equal(t, http.StatusNotFound, s)
}

// TestGatewayFaults: 429, 502 and 504 come from a proxy or gateway, not from Salesforce: a
// plain-text body in no Salesforce error shape, Retry-After on 429. Salesforce's own request
// limit stays 403 REQUEST_LIMIT_EXCEEDED.
func TestGatewayFaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		status int
		scope  string
	}{{429, "rest"}, {502, "rest"}, {504, "cometd"}, {429, "token"}} {
		require.NoError(t, h.em.InjectHTTPFault(HTTPFault{Status: tc.status, Count: 1, RetryAfterSeconds: 4, Scope: tc.scope}))
		var st int
		var b []byte
		var hdr http.Header
		switch tc.scope {
		case "rest":
			st, b, hdr = h.do(http.MethodGet, "/services/data/v62.0/limits", h.token, nil)
		case "cometd":
			st, b, hdr = h.do(http.MethodPost, "/cometd/62.0", h.token, []any{map[string]any{"channel": "/meta/handshake"}})
		default:
			st, b, hdr = h.do(http.MethodPost, "/services/oauth2/token", "", nil)
		}
		require.Equal(t, tc.status, st)
		require.Equal(t, fmt.Sprintf("%d %s\n", tc.status, http.StatusText(tc.status)), string(b))
		require.False(t, json.Valid(b), "not a Salesforce error body")
		require.Equal(t, "1.1 emulator-gateway", hdr.Get("Via"))
		if tc.status == 429 {
			require.Equal(t, "4", hdr.Get("Retry-After"))
		} else {
			require.Empty(t, hdr.Get("Retry-After"))
		}
	}
	// The org's own request limit is a 403.
	h.em.ExhaustAPILimit()
	s, b := h.rest(http.MethodGet, "limits", nil)
	requireRESTError(t, s, b, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
}
