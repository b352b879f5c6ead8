package connector

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/omniroute/omniroute/internal/syncbuf"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// TestE2EWSReconnectSameSnapshot: an agent holding work who reconnects gets the same snapshot
// again, through the daemon.
func TestE2EWSReconnectSameSnapshot(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Ready")
	a1 := p.ids[agent1]
	p.presence(agent1, "Available")
	p.waitState(agent1, "Ready")
	w, _ := p.acceptChat("Support_EN", agent1)
	p.waitOmni(agent1, "On_a_call")
	p.waitState(agent1, "Busy")
	// The daemon, too, must have seen the status the accept brought, or the two snapshots
	// differ by that event, not by the reconnect.
	require.Eventually(t, func() bool { return p.agent(agent1).Presence == "On_a_call" }, 20*time.Second, 20*time.Millisecond)

	p.console.connect(a1)
	first := p.console.snapshots(a1)
	p.console.connect(a1)
	second := p.console.snapshots(a1)
	require.Len(t, second, len(first)+1)
	before, after := first[len(first)-1], second[len(second)-1]
	require.Equal(t, before, after, "a reconnecting agent gets the same snapshot")
	require.Len(t, after.Sessions, 1)
	require.Equal(t, w, after.Sessions[0].Interactions[0].WorkID)
	require.Equal(t, "Busy", after.Agent.State.String())
	require.NotEmpty(t, after.Directory.Agents)
	require.NotEmpty(t, after.Directory.Plans)
}

// TestE2EWSNewestWins: a second connection for the same agent closes the first with 4000 and
// gets what the router sends from then on.
func TestE2EWSNewestWins(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Ready")
	a1 := p.ids[agent1]
	p.console.mu.Lock()
	old := p.console.conns[a1]
	p.console.mu.Unlock()
	p.console.connect(a1)
	select {
	case <-old.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the older connection was not closed")
	}
	var ce *websocket.CloseError
	require.ErrorAs(t, old.closeErr, &ce)
	require.Equal(t, 4000, ce.Code)
	// The newest connection carries the agent's login to Omni-Channel and its console's result.
	p.login(agent1, "Ready", "Ready_for_cases")
}

// TestE2EWSSalesforceTokenAfterLogin: once the daemon has logged in, the access token the org's
// OAuth issued to an agent user opens that agent's websocket (userinfo of the daemon's org);
// a token of another org and a revoked one are refused before the upgrade.
func TestE2EWSSalesforceTokenAfterLogin(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Ready")
	tok, err := p.em.IssueToken(agent2)
	require.NoError(t, err)
	url := "ws://" + p.d.c.Addr().String() + AgentPath
	dial := func(token string) (*websocket.Conn, int, error) { return dialAgent(url, token) }
	c, _, err := dial(tok)
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Second)))
	var hello helloFrame
	require.NoError(t, c.ReadJSON(&hello))
	require.Equal(t, p.ids[agent2], hello.User, "the connection is the token's user")

	// A token issued by another org (its own emulator, its own id).
	seed := emulator.DemoSeed()
	seed.OrgID = "00D5g000004OtherAA"
	other, err := emulator.New(emulator.Options{Seed: seed})
	require.NoError(t, err)
	t.Cleanup(other.Close)
	otok, err := other.IssueToken(agent2)
	require.NoError(t, err)
	_, code, err := dial(otok)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusUnauthorized, code)

	// A token revoked before it was ever seen.
	rtok, err := p.em.IssueToken(agent3)
	require.NoError(t, err)
	p.em.ExpireSessions()
	_, code, err = dial(rtok)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Regexp(t, `omniroute_gateway_refused_total\{reason="bad_token"\} 2`, p.metric(t, "omniroute_gateway_refused_total"))
}

// gatedElector leads only once open is closed: the replica stands by until then. Closing
// lose ends the leadership as a lost lease does: lead's context ends.
type gatedElector struct {
	Elector
	open, lose chan struct{}
}

func (g *gatedElector) Run(ctx context.Context, lead func(context.Context) error) error {
	select {
	case <-ctx.Done():
		return nil
	case <-g.open:
	}
	return g.Elector.Run(ctx, func(lctx context.Context) error {
		lctx, cancel := context.WithCancel(lctx)
		defer cancel()
		go func() {
			select {
			case <-g.lose:
				cancel()
			case <-lctx.Done():
			}
		}()
		return lead(lctx)
	})
}

// TestE2EWSStandbyRefusesUpgrades: a replica under leader election that does not lead refuses
// agents with 503 not_ready; once it leads, they connect; when it loses the leadership, their
// connections are closed with 1012 (reconnect: another replica takes over).
func TestE2EWSStandbyRefusesUpgrades(t *testing.T) {
	t.Parallel()
	em, err := emulator.New(emulator.Options{Seed: demoSeed()})
	require.NoError(t, err)
	t.Cleanup(em.Close)
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	cfg := daemonConfig(t, srv.URL)
	cfg.LogLevel = "info"
	cfg.AgentTokenKey = NewSecret(testAgentKey)
	cfg.Leader.Election = true
	cfg.Leader.LeaseDuration.Duration = testLease
	cfg.Leader.RenewDeadline.Duration = testRenew
	cfg.Leader.RetryPeriod.Duration = testRetry
	cfg.PodName = "standby"
	le, err := NewLeaseElector(LeaseElectorOptions{Client: fake.NewClientset(), Namespace: "omni", Name: cfg.Leader.Lease, Identity: "standby",
		LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	gate := &gatedElector{Elector: le, open: make(chan struct{}), lose: make(chan struct{})}
	d := &daemon{reg: prometheus.NewPedanticRegistry(), logs: &syncbuf.Buffer{}, cfg: cfg, done: make(chan error, 1)}
	c, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(d.logs, nil)), Registry: d.reg, Version: "test", Elector: gate})
	require.NoError(t, err)
	d.c, d.url = c, "http://"+c.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	go func() { d.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-d.done; err != nil && !errors.Is(err, ErrLeadershipLost) {
			t.Errorf("Run: %v", err)
		}
	})
	d.waitCondition(t, CondOrgChecked) // warm: logged in, org read

	ws := newWSConsole(t, em, "ws://"+c.Addr().String()+AgentPath, NewSecret(testAgentKey), time.Now)
	user := "005000000000001AAA"
	_, err = ws.dial(user)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Regexp(t, `omniroute_gateway_refused_total\{reason="not_ready"\} 1`, (&org{t: t, d: d}).metric(t, "omniroute_gateway_refused_total"))

	close(gate.open)
	d.waitCondition(t, CondReconcileApplied)
	ws.users[user] = agent1
	ws.omni = func(string) string { return "" } // no console command comes: the agent never logs in
	a := ws.connect(user)

	close(gate.lose)
	select {
	case <-a.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the connection outlived the leadership")
	}
	var ce *websocket.CloseError
	require.ErrorAs(t, a.closeErr, &ce)
	require.Equal(t, websocket.CloseServiceRestart, ce.Code)
}

// TestIdentityOrg: the org id in the identity URL of a token response.
func TestIdentityOrg(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"https://login.salesforce.com/id/00D5g000004DemoEAA/0055g0000000001AAA", "00D5g000004DemoEAA"},
		{"https://test.salesforce.com/id/00Dxx0000000001/005xx0000000001/", "00Dxx0000000001"},
		{"http://127.0.0.1:4242/id/00D000000000001AAA/005000000000001AAA", "00D000000000001AAA"},
		{"", ""},
		{"https://login.salesforce.com/", ""},
		{"https://login.salesforce.com/id/00D5g000004DemoEAA", ""},
		{"https://login.salesforce.com/id//005000000000001AAA", ""},
		{"https://login.salesforce.com/other/00D5g000004DemoEAA/005000000000001AAA", ""},
		{"https://login.salesforce.com/id/00D5g000004DemoEAA/005000000000001AAA/extra", ""},
		{"://bad url", ""},
	} {
		require.Equal(t, tc.want, identityOrg(tc.url), tc.url)
	}
}

// TestCommandResultUnchanged: a console's command_result says whether the presence command
// changed nothing (Omni-Channel already showed the status), as ConsoleReport.Unchanged needs:
// then no echo will come and the router forgets the push.
func TestCommandResultUnchanged(t *testing.T) {
	t.Parallel()
	f, err := DecodeAgentFrame(agentA, []byte(`{"type":"command_result","command_id":"c-1","ok":true,"unchanged":true}`))
	require.NoError(t, err)
	require.NotNil(t, f.Input.Report)
	require.True(t, f.Input.Report.Unchanged)
	f, err = DecodeAgentFrame(agentA, []byte(`{"type":"command_result","command_id":"c-1","ok":true}`))
	require.NoError(t, err)
	require.False(t, f.Input.Report.Unchanged)
	_, err = DecodeAgentFrame(agentA, []byte(`{"type":"logged_out","unchanged":true}`))
	require.Error(t, err, "only command_result takes unchanged")
}
