package salesforce

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

// org is an emulator served on loopback.
type org struct {
	emu *emulator.Emulator
	srv *httptest.Server
}

func newOrg(t testing.TB, mod func(*emulator.Options)) *org {
	t.Helper()
	opts := emulator.Options{Seed: emulator.DemoSeed(), RandSeed: 42}
	if mod != nil {
		mod(&opts)
	}
	emu, err := emulator.New(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(func() {
		srv.Close()
		emu.Close()
	})
	return &org{emu: emu, srv: srv}
}

// tokenRequests counts the token requests the emulator served.
func (o *org) tokenRequests() int {
	n := 0
	for _, r := range o.emu.Requests() {
		if strings.HasPrefix(r.Path, "/services/oauth2/token") {
			n++
		}
	}
	return n
}

func (o *org) tokenOptions(t testing.TB, grant Grant) TokenOptions {
	t.Helper()
	opts := TokenOptions{
		Grant: grant, LoginURL: o.srv.URL, HTTPClient: o.srv.Client(), ClientID: emulator.DemoClientID,
	}
	switch grant {
	case GrantJWTBearer:
		key, err := os.ReadFile("emulator/testdata/demo-jwt-private-key.pem")
		require.NoError(t, err)
		opts.PrivateKey, opts.Username, opts.Audience = key, emulator.DemoUsername, "https://login.salesforce.com"
	case GrantClientCredentials:
		opts.ClientSecret = emulator.DemoClientSecret
	case GrantPassword:
		opts.ClientSecret, opts.Username, opts.Password = emulator.DemoClientSecret, emulator.DemoUsername, emulator.DemoPassword
	}
	return opts
}

// client returns a client on the emulator whose requests are recorded; it can run in a
// synctest bubble.
func (o *org) client(t *testing.T, grant Grant, mod func(*Options)) (*Client, *requestLog) {
	t.Helper()
	hc := bubbleClient()
	opts := o.tokenOptions(t, grant)
	opts.HTTPClient = hc
	ts, err := NewTokenSource(opts)
	require.NoError(t, err)
	return recordingClient(t, ts, hc, mod)
}

func TestEmulatorGrants(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	for _, g := range []Grant{GrantJWTBearer, GrantClientCredentials, GrantPassword} {
		c, _ := o.client(t, g, nil)
		lim, err := c.Limits(t.Context())
		require.NoError(t, err, g)
		require.Positive(t, lim["DailyApiRequests"].Max, g)
		tok, err := c.Tokens().Token(t.Context())
		require.NoError(t, err)
		require.Equal(t, o.srv.URL, tok.InstanceURL)
		require.True(t, c.APIUsage().Seen)
	}
	// A wrong secret is a typed, final error.
	opts := o.tokenOptions(t, GrantPassword)
	opts.ClientSecret = "wrong"
	ts, err := NewTokenSource(opts)
	require.NoError(t, err)
	_, err = ts.Token(t.Context())
	var te *TokenError
	require.ErrorAs(t, err, &te)
	require.Equal(t, "invalid_client", te.Code)
}

func TestEmulatorOmniObjects(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	c, _ := o.client(t, GrantJWTBearer, nil)
	work, err := o.emu.CreateWork(emulator.WorkRequest{Channel: "Case", Queue: "Support_EN", Subject: "printer on fire"})
	require.NoError(t, err)
	var psrs []PendingServiceRouting
	for p, err := range QueryAs[PendingServiceRouting](t.Context(), c, "SELECT "+PendingServiceRoutingFields+" FROM PendingServiceRouting") {
		require.NoError(t, err)
		psrs = append(psrs, p)
	}
	require.Len(t, psrs, 1)
	p := psrs[0]
	require.Equal(t, work.PSRID, p.ID)
	require.Equal(t, work.WorkItemID, p.WorkItemID)
	require.Equal(t, RoutingModelExternal, p.RoutingModel)
	require.True(t, p.IsReadyForRouting)
	require.False(t, p.IsPushed)
	require.NotEmpty(t, p.ServiceChannelID)
	require.False(t, p.CreatedDate.IsZero())

	for _, q := range []struct{ soql string }{
		{"SELECT " + ServiceChannelFields + " FROM ServiceChannel"},
		{"SELECT " + ServicePresenceStatusFields + " FROM ServicePresenceStatus"},
		{"SELECT " + QueueRoutingConfigFields + " FROM QueueRoutingConfig"},
		{"SELECT " + SkillFields + " FROM Skill"},
		{"SELECT " + ServiceResourceFields + " FROM ServiceResource"},
		{"SELECT " + ServiceResourceSkillFields + " FROM ServiceResourceSkill"},
		{"SELECT " + UserServicePresenceFields + " FROM UserServicePresence"},
		{"SELECT " + AgentWorkFields + " FROM AgentWork"},
		{"SELECT " + SkillRequirementFields + " FROM SkillRequirement"},
	} {
		for _, err := range c.Query(t.Context(), q.soql) {
			require.NoError(t, err, q.soql)
		}
	}
	var queues []Queue
	for q, err := range QueryAs[Queue](t.Context(), c, "SELECT "+QueueFields+", QueueRoutingConfig.Id, QueueRoutingConfig.RoutingModel, QueueRoutingConfig.PushTimeout FROM Group WHERE Type = 'Queue'") {
		require.NoError(t, err)
		queues = append(queues, q)
	}
	require.Len(t, queues, 3)
	for _, q := range queues {
		require.Equal(t, "Queue", q.Type)
		require.NotNil(t, q.RoutingConfig, q.DeveloperName)
		require.Equal(t, q.QueueRoutingConfigID, q.RoutingConfig.ID)
		require.Equal(t, RoutingModelExternal, q.RoutingConfig.RoutingModel)
	}

	channels := 0
	for _, err := range c.QueryAll(t.Context(), "SELECT Id FROM ServiceChannel") {
		require.NoError(t, err)
		channels++
	}
	require.Equal(t, 4, channels)

	var cfgs []QueueRoutingConfig
	for q, err := range QueryAs[QueueRoutingConfig](t.Context(), c, "SELECT "+QueueRoutingConfigFields+" FROM QueueRoutingConfig") {
		require.NoError(t, err)
		cfgs = append(cfgs, q)
	}
	require.Len(t, cfgs, 1)
	require.Equal(t, RoutingModelExternal, cfgs[0].RoutingModel)
	require.Equal(t, 30, *cfgs[0].PushTimeout)

	// The routing write: AgentWork for the PSR, to an agent with presence.
	var users []struct {
		ID string `json:"Id"`
	}
	for u, err := range QueryAs[struct {
		ID string `json:"Id"`
	}](t.Context(), c, "SELECT Id FROM User WHERE Username = 'agent01@omniroute.demo'") {
		require.NoError(t, err)
		users = append(users, u)
	}
	require.Len(t, users, 1)
	require.NoError(t, o.emu.SetPresence("agent01@omniroute.demo", "Available"))
	id, err := c.Create(t.Context(), "AgentWork", NewAgentWork{
		ServiceChannelID: p.ServiceChannelID, WorkItemID: p.WorkItemID, UserID: users[0].ID, PendingServiceRoutingID: p.ID,
		CapacityWeight: p.CapacityWeight, CapacityPercentage: p.CapacityPercentage, // the size the PSR carries
	})
	require.NoError(t, err)
	var aw AgentWork
	require.NoError(t, c.Get(t.Context(), "AgentWork", id, nil, &aw))
	require.Equal(t, AgentWorkAssigned, aw.Status)
	require.Equal(t, p.ID, aw.PendingServiceRoutingID)
}

// 5xx and 429 bursts with Retry-After: the client waits at least as long
// as asked and the call succeeds.
func TestEmulatorFaultBursts(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		c, timer := o.client(t, GrantClientCredentials, func(opts *Options) { opts.Registerer = reg })
		_, err := c.Limits(t.Context()) // token first, so faults hit REST
		require.NoError(t, err)
		require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 503, Count: 2, RetryAfterSeconds: 2, Scope: "rest"}))
		require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 429, Count: 1, RetryAfterSeconds: 3, Scope: "rest"}))
		require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 500, Count: 1, Scope: "rest"}))
		n := 0
		for _, err := range c.Query(t.Context(), "SELECT Id FROM ServiceChannel") {
			require.NoError(t, err)
			n++
		}
		require.Equal(t, 4, n)
		waits := timer.Waits()
		require.Len(t, waits, 4)
		require.GreaterOrEqual(t, waits[0], 2*time.Second)
		require.GreaterOrEqual(t, waits[1], 2*time.Second)
		require.GreaterOrEqual(t, waits[2], 3*time.Second)
		require.Equal(t, 2.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("query", "503")))
		require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("query", "429")))
		require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("query", "500")))
		require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("query", "200")))

		// The token endpoint failing is retried too.
		c.Tokens().Invalidate(mustToken(t, c))
		require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 503, Count: 2, RetryAfterSeconds: 1, Scope: "token"}))
		_, err = c.Limits(t.Context())
		require.NoError(t, err)

		// A create is retried on 503 (not applied) but not on 500 (unknown).
		require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 503, Count: 1, Scope: "rest"}))
		_, err = c.Create(t.Context(), "Case", map[string]any{"Subject": "retry me"})
		require.NoError(t, err)
		require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 500, Count: 1, Scope: "rest"}))
		_, err = c.Create(t.Context(), "Case", map[string]any{"Subject": "unknown outcome"})
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 500, ae.Status)

		// A burst longer than MaxRetries surfaces the last error.
		require.NoError(t, o.emu.InjectHTTPFault(emulator.HTTPFault{Status: 503, Count: 10, Scope: "rest"}))
		_, err = c.Limits(t.Context())
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 503, ae.Status)
		o.emu.ClearFaults()
	})
}

func mustToken(t *testing.T, c *Client) Token {
	t.Helper()
	tok, err := c.Tokens().Token(t.Context())
	require.NoError(t, err)
	return tok
}

// A 10,000-record query across pages, with the session expiring in the
// middle: the query continues from the same locator with a new token.
func TestEmulatorLargeQuerySessionExpiry(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	_, err := o.emu.CreateRecords("Case", 10_000, map[string]any{"Subject": "bulk"})
	require.NoError(t, err)
	c, _ := o.client(t, GrantJWTBearer, nil)
	seen := make(map[string]bool, 10_000)
	n := 0
	for rec, err := range c.Query(t.Context(), "SELECT Id, Subject FROM Case WHERE Subject = 'bulk'") {
		require.NoError(t, err)
		var a struct {
			ID      string `json:"Id"`
			Subject string `json:"Subject"`
		}
		require.NoError(t, json.Unmarshal(rec, &a))
		require.Equal(t, "bulk", a.Subject)
		seen[a.ID] = true
		n++
		if n == 3000 {
			o.emu.ExpireSessions()
		}
	}
	require.Equal(t, 10_000, n)
	require.Len(t, seen, 10_000)

	require.Equal(t, 2, o.tokenRequests())
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("query_more", "401")))
	require.Equal(t, 5.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("query_more", "200"))+testutil.ToFloat64(c.metrics.requests.WithLabelValues("query", "200")))
}

// The daily allocation used up: REQUEST_LIMIT_EXCEEDED is final (no
// retry can help for hours) and the limit gauges say so.
func TestEmulatorAPIAllocationExhausted(t *testing.T) {
	t.Parallel()
	o := newOrg(t, func(opts *emulator.Options) { opts.DailyAPILimit = 1000 })
	reg := prometheus.NewPedanticRegistry()
	c, _ := o.client(t, GrantPassword, func(opts *Options) { opts.Registerer = reg })
	_, err := c.Limits(t.Context())
	require.NoError(t, err)
	o.emu.ExhaustAPILimit()
	_, err = c.Limits(t.Context())
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, CodeRequestLimitExceeded, ae.Code)
	require.Equal(t, http.StatusForbidden, ae.Status)
	require.False(t, ae.Retryable)
	require.Zero(t, retries(t, c))
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("limits", "403")))
	require.Equal(t, 1000.0, testutil.ToFloat64(c.metrics.apiLimit))

	o.emu.ResetAPILimit()
	_, err = c.Limits(t.Context())
	require.NoError(t, err)
}

// 50 goroutines query while the token expires: exactly one token request
// replaces it.
func TestEmulatorConcurrentQueriesDuringTokenExpiry(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	c, _ := o.client(t, GrantJWTBearer, nil)
	_, err := c.Limits(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, o.tokenRequests())

	const workers = 50
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, workers*3)
	for range workers {
		wg.Go(func() {
			<-start
			for range 3 {
				for _, err := range c.Query(t.Context(), "SELECT Id, DeveloperName FROM ServiceChannel") {
					if err != nil {
						errs <- err
					}
				}
			}
		})
	}
	o.emu.ExpireSessions()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 2, o.tokenRequests(), "one initial token and exactly one refresh")
}

// Collections against the emulator: 450 Cases in three requests, per-record
// results in order, allOrNone rolling back only the failing batch, then an
// update of some of them.
func TestEmulatorCollections(t *testing.T) {
	t.Parallel()
	o := newOrg(t, nil)
	c, _ := o.client(t, GrantClientCredentials, nil)
	recs := make([]Record, 450)
	for i := range recs {
		recs[i] = Record{Type: "Case", Fields: map[string]any{"Subject": "coll"}}
	}
	recs[300].Fields["NoSuchField__c"] = "x" // fails; its batch (200-399) rolls back
	res, err := c.CreateCollection(t.Context(), recs, true)
	require.NoError(t, err)
	require.Len(t, res, 450)
	for i, r := range res {
		switch {
		case i == 300:
			require.Error(t, r.Err())
		case i >= 200 && i < 400:
			var ae *APIError
			require.ErrorAs(t, r.Err(), &ae, "record %d", i)
			require.Equal(t, "ALL_OR_NONE_OPERATION_ROLLED_BACK", ae.Code)
		default:
			require.NoError(t, r.Err(), "record %d", i)
			require.NotEmpty(t, r.ID)
		}
	}
	n := 0
	for _, err := range c.Query(t.Context(), "SELECT Id FROM Case WHERE Subject = 'coll'") {
		require.NoError(t, err)
		n++
	}
	require.Equal(t, 250, n)

	upd := []Record{{Type: "Case", ID: res[0].ID, Fields: map[string]any{"Subject": "updated"}}, {Type: "Case", ID: res[1].ID, Fields: map[string]any{"Subject": "updated"}}}
	ures, err := c.UpdateCollection(t.Context(), upd, false)
	require.NoError(t, err)
	require.NoError(t, ures[0].Err())
	require.NoError(t, ures[1].Err())
	var got struct{ Subject string }
	require.NoError(t, c.Get(t.Context(), "Case", res[1].ID, []string{"Subject"}, &got))
	require.Equal(t, "updated", got.Subject)

	require.NoError(t, c.Update(t.Context(), "Case", res[2].ID, map[string]any{"Subject": "single"}))
	require.NoError(t, c.Delete(t.Context(), "Case", res[2].ID))
	err = c.Delete(t.Context(), "Case", res[2].ID)
	require.True(t, IsNotFound(err), "%v", err)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, CodeEntityIsDeleted, ae.Code)
}
