package connector

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// testToken is the admin token of the fixtures.
const testToken = "s3cret-reload-token"

// newTestHTTP serves the HTTP layer over loopback with the fixture's reloader.
func newTestHTTP(t *testing.T, f *fixture, token string) (*HTTP, *httptest.Server) {
	t.Helper()
	reg := prometheus.NewRegistry()
	var reload func(context.Context) (Mapping, error)
	if f != nil {
		reload = f.r.Load
	}
	h, err := NewHTTP(HTTPOptions{
		AdminToken: NewSecret(token),
		Gatherer:   reg,
		Registerer: prometheus.WrapRegistererWithPrefix("omniroute_", reg),
		Ready:      NewReadiness(DefaultConditions()...),
		Live:       NewLiveness(nil),
		Reload:     reload,
	})
	require.NoError(t, err)
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return h, srv
}

// call makes one request and decodes the JSON answer into v (when non-nil).
func call(t *testing.T, method, url, auth string, v any) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	if v != nil {
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.NoError(t, json.Unmarshal(body, v), string(body))
	}
	return resp.StatusCode, resp.Header, string(body)
}

// TestReloadHTTP: POST /-/reload answers 200 with the new mapping's checksum when it is handed
// to the router, and 400 with every problem when it was rejected.
func TestReloadHTTP(t *testing.T) {
	t.Parallel()
	f := loadedFixture(t, mappingV1)
	_, srv := newTestHTTP(t, f, testToken)

	writeFile(t, f.path, mappingBad)
	var e APIError
	code, _, _ := call(t, http.MethodPost, srv.URL+"/-/reload", "Bearer "+testToken, &e)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "mapping_rejected", e.Error)
	require.Equal(t, []string{
		f.path + `:3:5: plans[0].queus: unknown key "queus" (did you mean queues?)`,
		f.path + `:4:20: plans[0].wrapUpTimeout: invalid duration "soon" (want a number and a unit such as 30s, 2m or 1h30m)`,
	}, e.Problems)
	require.Contains(t, e.Message, f.path+`:4:20: plans[0].wrapUpTimeout: invalid duration "soon"`)
	require.Equal(t, 1, f.rec.count())

	writeFile(t, f.path, mappingV2)
	var ok ReloadResponse
	code, _, _ = call(t, http.MethodPost, srv.URL+"/-/reload", "Bearer "+testToken, &ok)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, ReloadResponse{SHA256: f.hash(), Plans: []string{"support"}}, ok)
	require.Equal(t, "support", planNames(waitApplied(t, f.rec)))

	code, h, _ := call(t, http.MethodGet, srv.URL+"/-/reload", "Bearer "+testToken, &e)
	require.Equal(t, http.StatusMethodNotAllowed, code)
	require.Equal(t, http.MethodPost, h.Get("Allow"))
	require.Equal(t, "method_not_allowed", e.Error)
}

// TestAdminRequiresToken: POST /-/reload is an admin endpoint, so it needs the bearer token;
// without one configured the admin API is off. A refused call reloads nothing and never
// echoes or logs the token.
func TestAdminRequiresToken(t *testing.T) {
	t.Parallel()
	f := loadedFixture(t, mappingV1)
	writeFile(t, f.path, mappingV2)
	h, srv := newTestHTTP(t, f, testToken)
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "Basic " + testToken, "bearer " + testToken, "Bearer " + testToken + "x", "Bearer " + testToken[:len(testToken)-1]} {
		var e APIError
		code, hdr, body := call(t, http.MethodPost, srv.URL+"/-/reload", auth, &e)
		require.Equal(t, http.StatusUnauthorized, code, "%q", auth)
		require.Equal(t, `Bearer realm="omniroute"`, hdr.Get("WWW-Authenticate"))
		require.Equal(t, "unauthorized", e.Error)
		require.NotContains(t, body, testToken)
	}
	require.Equal(t, 1, f.rec.count(), "a refused call reloads nothing")
	require.Equal(t, 8.0, testutil.ToFloat64(h.metrics.refused))

	code, _, _ := call(t, http.MethodPost, srv.URL+"/-/reload", "Bearer "+testToken, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "support", planNames(waitApplied(t, f.rec)))

	// No token configured: the admin API is off for everyone.
	_, off := newTestHTTP(t, f, "")
	for _, auth := range []string{"", "Bearer ", "Bearer " + testToken} {
		var e APIError
		code, _, _ := call(t, http.MethodPost, off.URL+"/-/reload", auth, &e)
		require.Equal(t, http.StatusForbidden, code, "%q", auth)
		require.Equal(t, "admin_disabled", e.Error)
		require.Contains(t, e.Message, "the admin API is off: no OMNIROUTE_ADMIN_TOKEN is configured")
	}
	require.Equal(t, 2, f.rec.count())
	require.NotContains(t, f.logText(), testToken)
}

// TestReadyz: /readyz names each condition and what is missing, and turns 200 only when all
// hold.
func TestReadyz(t *testing.T) {
	t.Parallel()
	h, srv := newTestHTTP(t, nil, testToken)
	var b readyBody
	code, _, _ := call(t, http.MethodGet, srv.URL+"/readyz", "", &b)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.False(t, b.Ready)
	require.Len(t, b.Conditions, 5)

	ready := h.opts.Ready
	ready.Set(CondMappingLoaded, true)
	ready.Set(CondTokenHeld, true)
	ready.Set(CondOrgChecked, true)
	b = readyBody{}
	code, _, _ = call(t, http.MethodGet, srv.URL+"/readyz", "", &b)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, []ConditionStatus{
		{Name: CondMappingLoaded, OK: true},
		{Name: CondTokenHeld, OK: true},
		{Name: CondOrgChecked, OK: true},
		{Name: CondStreamSubscribed, Message: "stream not subscribed"},
		{Name: CondReconcileApplied, Message: "reconcile not applied"},
	}, b.Conditions)

	ready.Set(CondStreamSubscribed, true)
	ready.Set(CondReconcileApplied, true)
	b = readyBody{}
	code, _, _ = call(t, http.MethodGet, srv.URL+"/readyz", "", &b)
	require.Equal(t, http.StatusOK, code)
	require.True(t, b.Ready)
	require.Panics(t, func() { ready.Set("leader", true) }, "conditions are fixed")
}

// TestHealthz: /healthz fails once a loop stops beating, naming it.
func TestHealthz(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	live := NewLiveness(func() time.Time { return now })
	hb := live.Register("router", 10*time.Second)
	reg := prometheus.NewRegistry()
	h, err := NewHTTP(HTTPOptions{Gatherer: reg, Ready: NewReadiness(), Live: live})
	require.NoError(t, err)
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()

	type healthBody struct {
		Healthy bool         `json:"healthy"`
		Loops   []LoopStatus `json:"loops"`
	}
	var b healthBody
	code, _, _ := call(t, http.MethodGet, srv.URL+"/healthz", "", &b)
	require.Equal(t, http.StatusOK, code)
	require.True(t, b.Healthy)

	now = now.Add(11 * time.Second)
	b = healthBody{}
	code, _, _ = call(t, http.MethodGet, srv.URL+"/healthz", "", &b)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "router", b.Loops[0].Name)
	require.Equal(t, "no progress for 11s (limit 10s)", b.Loops[0].Message)

	hb.Beat()
	code, _, _ = call(t, http.MethodGet, srv.URL+"/healthz", "", nil)
	require.Equal(t, http.StatusOK, code)
}

// TestHTTPOpenEndpoints: /metrics is open and serves the registry; an unknown path is a JSON
// 404; the admin API needs no token to be refused.
func TestHTTPOpenEndpoints(t *testing.T) {
	t.Parallel()
	_, srv := newTestHTTP(t, nil, testToken)
	code, _, _ := call(t, http.MethodGet, srv.URL+"/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	code, _, body := call(t, http.MethodGet, srv.URL+"/metrics", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `omniroute_http_requests_total{code="503",handler="/readyz"} 1`)
	var e APIError
	code, _, _ = call(t, http.MethodGet, srv.URL+"/nope", "", &e)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "not_found", e.Error)
	code, _, _ = call(t, http.MethodPost, srv.URL+"/-/reload", "Bearer "+testToken, &e)
	require.Equal(t, http.StatusNotFound, code, "no reloader, no reload endpoint")
	require.True(t, strings.HasPrefix(e.Message, "no such endpoint"))
}
