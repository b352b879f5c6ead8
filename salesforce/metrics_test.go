package salesforce

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

// TestMetricsLintAndSecrets drives every component on one registry
// through success and failure paths, then lints the exposition and checks
// that no secret reached the metrics, the logs or an error.
func TestMetricsLintAndSecrets(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	reg := prometheus.NewPedanticRegistry()
	// The daemon adds the namespace once, for every package.
	wrapped := prometheus.WrapRegistererWithPrefix("omniroute_", reg)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	topts := o.tokenOptions(t, GrantPassword)
	topts.Registerer, topts.Logger = wrapped, logger
	ts, err := NewTokenSource(topts)
	require.NoError(t, err)
	c, err := New(Options{Tokens: ts, HTTPClient: o.srv.Client(), Registerer: wrapped, Logger: logger, MaxRetries: 1})
	require.NoError(t, err)
	// A second client on the same registry is an error at start-up, not a silent merge.
	_, err = New(Options{Tokens: ts, Registerer: wrapped})
	require.ErrorContains(t, err, "register salesforce client metrics")
	_, err = NewTokenSource(topts)
	require.ErrorContains(t, err, "register salesforce token metrics")

	var errs []error
	_, err = c.Limits(t.Context())
	require.NoError(t, err)
	tok, err := ts.Token(t.Context())
	require.NoError(t, err)
	for _, err := range c.Query(t.Context(), "SELECT Id FROM Nonsense") {
		errs = append(errs, err)
	}
	require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 503, Count: 5, RetryAfterSeconds: 1, Scope: "rest"}))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	_, err = c.Limits(ctx)
	cancel()
	errs = append(errs, err)
	o.emu.ClearFaults()
	o.emu.ExpireSessions()
	_, err = c.Limits(t.Context())
	require.NoError(t, err)

	bad := topts
	bad.Password, bad.Registerer = "wrong-"+emulator.DemoPassword, nil
	bts, err := NewTokenSource(bad)
	require.NoError(t, err)
	_, err = bts.Token(t.Context())
	errs = append(errs, err)

	s, err := NewStream(StreamOptions{
		Tokens: ts, HTTPClient: o.srv.Client(), Channels: []string{psrChannel}, StartFrom: ReplayAll,
		Registerer: wrapped, Logger: logger,
	})
	require.NoError(t, err)
	_, err = NewStream(StreamOptions{Tokens: ts, Channels: []string{psrChannel}, Registerer: wrapped})
	require.ErrorContains(t, err, "register stream metrics")
	rs := start(t, s)
	w := work(t, o)
	rs.nextCreate(t, w.PSRID)
	require.NoError(t, s.Commit(t.Context(), psrChannel, 1))
	require.NoError(t, rs.stop())

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)

	// Every family the issue asks for is there.
	rec := httptestRecorder(t, reg)
	for _, name := range []string{
		"omniroute_salesforce_requests_total", "omniroute_salesforce_request_duration_seconds",
		"omniroute_salesforce_token_refreshes_total", "omniroute_salesforce_api_requests_used",
		"omniroute_salesforce_api_requests_limit", "omniroute_salesforce_retries_total",
		"omniroute_stream_events_received_total", "omniroute_stream_rehandshakes_total",
		"omniroute_stream_requests_total", "omniroute_stream_last_replay_id_age_seconds",
		"omniroute_stream_seconds_since_last_event", "omniroute_stream_last_event_timestamp_seconds",
		"omniroute_stream_bad_events_total", "omniroute_stream_missed_total", "omniroute_stream_live",
	} {
		require.Contains(t, rec, "# TYPE "+name+" ", name)
	}

	secrets := []string{emulator.DemoClientSecret, emulator.DemoPassword, tok.AccessToken}
	for _, sec := range secrets {
		require.NotContains(t, rec, sec)
		require.NotContains(t, logs.String(), sec)
		for _, err := range errs {
			require.Error(t, err)
			require.NotContains(t, err.Error(), sec)
		}
	}
}

func httptestRecorder(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil)
	require.NoError(t, err)
	w := &bodyRecorder{header: http.Header{}}
	h.ServeHTTP(w, req)
	return w.body.String()
}

type bodyRecorder struct {
	header http.Header
	body   strings.Builder
}

func (b *bodyRecorder) Header() http.Header         { return b.header }
func (b *bodyRecorder) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bodyRecorder) WriteHeader(int)             {}

var _ io.Writer = (*bodyRecorder)(nil)
