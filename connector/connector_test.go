package connector

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/internal/syncbuf"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// daemon is a Connector under test, running against an emulator org over loopback.
type daemon struct {
	c    *Connector
	url  string
	reg  *prometheus.Registry
	logs *syncbuf.Buffer
	cfg  Config
	done chan error
	stop context.CancelFunc
}

// demoSeed is the demo org with secrets no other string contains, so that a leak is found.
func demoSeed() emulator.Seed {
	seed := emulator.DemoSeed()
	seed.ConnectedApp.ClientSecret = secretValue
	for i := range seed.Users {
		if seed.Users[i].Username == emulator.DemoUsername {
			seed.Users[i].Password = passwordValue
		}
	}
	return seed
}

// daemonConfig is a valid configuration for the emulator at url, with the demo mapping copied
// to a temporary file.
func daemonConfig(t *testing.T, url string) Config {
	t.Helper()
	data, err := os.ReadFile(demoMapping)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	c := DefaultConfig()
	c.Salesforce.LoginURL = url
	c.Salesforce.ClientID = emulator.DemoClientID
	c.Salesforce.ClientSecret = NewSecret(secretValue)
	c.Salesforce.Username = emulator.DemoUsername
	c.Salesforce.Password = NewSecret(passwordValue)
	c.MappingFile = path
	c.AdminToken = NewSecret(adminValue)
	c.HTTPAddr = "127.0.0.1:0"
	c.LogLevel = "debug"
	c.ShutdownTimeout.Duration = 5 * time.Second
	return c
}

// startDaemon builds the daemon with New and runs it until the test ends.
func startDaemon(t *testing.T, cfg Config) *daemon {
	t.Helper()
	return startDaemonWith(t, cfg, nil)
}

// startDaemonWith is startDaemon with the HTTP client to Salesforce.
func startDaemonWith(t *testing.T, cfg Config, hc *http.Client) *daemon {
	t.Helper()
	return startDaemonClock(t, cfg, hc, nil)
}

// startDaemonClock is startDaemonWith on a clock (nil: time.Now).
func startDaemonClock(t *testing.T, cfg Config, hc *http.Client, now func() time.Time) *daemon {
	t.Helper()
	d := &daemon{reg: prometheus.NewPedanticRegistry(), logs: &syncbuf.Buffer{}, cfg: cfg, done: make(chan error, 1)}
	c, err := New(Options{
		Config:     cfg,
		Logger:     slog.New(slog.NewTextHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry:   d.reg,
		Version:    "test",
		HTTPClient: hc,
		Now:        now,
	})
	require.NoError(t, err)
	d.c, d.url = c, "http://"+c.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	d.stop = cancel
	go func() { d.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-d.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return d
}

type readyBody struct {
	Ready      bool              `json:"ready"`
	Conditions []ConditionStatus `json:"conditions"`
}

// condition returns whether the named /readyz condition holds.
func (b readyBody) condition(name string) bool {
	for _, c := range b.Conditions {
		if c.Name == name {
			return c.OK
		}
	}
	return false
}

func (d *daemon) readyz(t *testing.T) (int, readyBody) {
	t.Helper()
	var b readyBody
	code, _, _ := call(t, http.MethodGet, d.url+"/readyz", "", &b)
	return code, b
}

// waitCondition waits (e2e: require.Eventually is allowed here) until a /readyz condition holds.
func (d *daemon) waitCondition(t *testing.T, name string) readyBody {
	t.Helper()
	var b readyBody
	require.Eventually(t, func() bool {
		_, b = d.readyz(t)
		return b.condition(name)
	}, 20*time.Second, 20*time.Millisecond, "condition %s never held; logs:\n%s", name, d.logs.String())
	return b
}

// TestRunAgainstEmulator is the daemon's start-up path end to end over loopback: New loads the
// mapping; Run logs in, reads the org's metadata and checks the mapping against it; /readyz
// says what is not built yet; /healthz, /metrics and POST /-/reload work; the context stops it.
func TestRunAgainstEmulator(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonConfig(t, testOrg(t, demoSeed())))
	b := d.waitCondition(t, CondReconcileApplied)
	code, _ := d.readyz(t)
	require.Equal(t, http.StatusOK, code, "ready once subscribed and reconciled")
	require.True(t, b.Ready)
	require.Equal(t, []ConditionStatus{
		{Name: CondServing, OK: true},
		{Name: CondMappingLoaded, OK: true},
		{Name: CondTokenHeld, OK: true},
		{Name: CondOrgChecked, OK: true},
		{Name: CondStreamSubscribed, OK: true},
		{Name: CondReconcileApplied, OK: true},
	}, b.Conditions)
	code, _, _ = call(t, http.MethodGet, d.url+"/healthz", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, d.logs.String(), "mapping fits the org")

	// Metrics: one registry, lint-clean, the prefix added once by the daemon.
	code, _, body := call(t, http.MethodGet, d.url+"/metrics", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `omniroute_build_info{goversion=`)
	require.Contains(t, body, "omniroute_mapping_last_reload_successful 1")
	require.Contains(t, body, "go_goroutines ")
	problems, err := testutil.GatherAndLint(d.reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	families, err := d.reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range families {
		name := mf.GetName()
		names[name] = true
		require.True(t, strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") ||
			(strings.HasPrefix(name, MetricsPrefix) && !strings.HasPrefix(name, MetricsPrefix+MetricsPrefix)), name)
	}
	for _, want := range []string{"omniroute_salesforce_requests_total", "omniroute_salesforce_token_refreshes_total", "omniroute_mapping_reloads_total"} {
		require.True(t, names[want], "%s is registered", want)
	}

	// A reload through the admin API reaches the core, checked against the org.
	data, err := os.ReadFile(d.cfg.MappingFile)
	require.NoError(t, err)
	bad := strings.Replace(string(data), "queues: [Support_EN]", "queues: [Support_FR]", 1)
	require.NotEqual(t, string(data), bad)
	require.NoError(t, os.WriteFile(d.cfg.MappingFile, []byte(bad), 0o600))
	var e APIError
	code, _, _ = call(t, http.MethodPost, d.url+"/-/reload", "Bearer "+adminValue, &e)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, e.Message, "against the org")
	require.Contains(t, strings.Join(e.Problems, "\n"), `queue "Support_FR" does not exist in the org`)

	good := strings.Replace(string(data), "offerTimeout: 20s", "offerTimeout: 25s", 1)
	require.NoError(t, os.WriteFile(d.cfg.MappingFile, []byte(good), 0o600))
	var ok ReloadResponse
	code, _, _ = call(t, http.MethodPost, d.url+"/-/reload", "Bearer "+adminValue, &ok)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool {
		d.c.mu.Lock()
		defer d.c.mu.Unlock()
		return d.c.mapping.SHA256 == ok.SHA256
	}, 10*time.Second, 10*time.Millisecond, "the core takes the reloaded mapping")

	// SIGHUP's path: Reload reloads the same file again.
	d.c.Reload()
	require.Eventually(t, func() bool { return strings.Count(d.logs.String(), `msg="mapping loaded"`) == 3 }, 10*time.Second, 10*time.Millisecond)

	// Stop: Run returns nil, and the server is closed.
	d.stop()
	select {
	case err := <-d.done:
		require.NoError(t, err)
		d.done <- nil
	case <-time.After(d.cfg.ShutdownTimeout.Duration + time.Second):
		t.Fatal("Run did not return within the shutdown timeout")
	}
	if resp, err := http.Get(d.url + "/readyz"); err == nil {
		_ = resp.Body.Close()
		t.Fatal("the server still answers after Run returned")
	}

	// No secret reached the logs.
	logs := d.logs.String()
	for _, s := range []string{secretValue, passwordValue, adminValue} {
		require.NotContains(t, logs, s)
	}
	require.Contains(t, logs, "salesforce_client_secret=<secret>")
}

// TestRunStopsOnRefusedLogin: a login Salesforce refuses stops the daemon with the reason, at
// once and without the secret.
func TestRunStopsOnRefusedLogin(t *testing.T) {
	t.Parallel()
	cfg := daemonConfig(t, testOrg(t, demoSeed()))
	cfg.Salesforce.Password = NewSecret("wrong-" + passwordValue)
	d := startDaemon(t, cfg)
	select {
	case err := <-d.done:
		require.ErrorContains(t, err, "log in to salesforce (password flow)")
		require.NotContains(t, err.Error(), passwordValue)
		d.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("a refused login did not stop the daemon")
	}
}

// TestRunStopsWhenTheMappingDoesNotFitTheOrg: a status the org does not have stops the daemon,
// naming the file position.
func TestRunStopsWhenTheMappingDoesNotFitTheOrg(t *testing.T) {
	t.Parallel()
	seed := demoSeed()
	for i := range seed.PresenceStatuses {
		if seed.PresenceStatuses[i].DeveloperName == "Taking_notes" {
			seed.PresenceStatuses[i].DeveloperName = "Taking_note"
		}
	}
	d := startDaemon(t, daemonConfig(t, testOrg(t, seed)))
	select {
	case err := <-d.done:
		require.ErrorContains(t, err, "against the org")
		require.ErrorContains(t, err, `presence status "Taking_notes" does not exist in the org (did you mean Taking_note?)`)
		d.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("a mapping that does not fit the org did not stop the daemon")
	}
}

// TestRunRetriesAnUnreachableOrg: an org that cannot be reached is retried, /readyz says no
// token is held, and a stop still returns nil.
func TestRunRetriesAnUnreachableOrg(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	d := startDaemon(t, daemonConfig(t, closed))
	require.Eventually(t, func() bool { return strings.Contains(d.logs.String(), "start-up step failed; retrying") },
		20*time.Second, 10*time.Millisecond)
	code, b := d.readyz(t)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.True(t, b.condition(CondMappingLoaded))
	require.False(t, b.condition(CondTokenHeld))
	d.stop()
	require.NoError(t, <-d.done)
	d.done <- nil
}

// TestShutdownTimeout: a request that never ends does not hold the stop beyond the shutdown
// timeout.
func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	cfg := daemonConfig(t, testOrg(t, demoSeed()))
	cfg.ShutdownTimeout.Duration = 300 * time.Millisecond
	d := &daemon{reg: prometheus.NewRegistry(), logs: &syncbuf.Buffer{}, cfg: cfg, done: make(chan error, 1)}
	c, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(d.logs, nil)), Registry: d.reg})
	require.NoError(t, err)
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{})
	c.HTTP().HandleAdmin("/v1/hang", http.MethodGet, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(entered)
		<-release
	}))
	ctx, cancel := context.WithCancel(t.Context())
	go func() { d.done <- c.Run(ctx) }()
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+c.Addr().String()+"/v1/hang", nil)
		req.Header.Set("Authorization", "Bearer "+adminValue)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-entered
	start := time.Now()
	cancel()
	select {
	case err := <-d.done:
		require.NoError(t, err)
		require.Less(t, time.Since(start), 3*time.Second)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop within the shutdown timeout")
	}
	require.Contains(t, d.logs.String(), "http server did not drain in time")
}

// TestNewRefuses: New reports configuration and mapping problems as a *ConfigError, and a
// metric registered twice fails start-up with an error instead of a panic.
func TestNewRefuses(t *testing.T) {
	t.Parallel()
	cfg := daemonConfig(t, "http://127.0.0.1:9")
	var cerr *ConfigError

	bad := cfg
	bad.LogFormat, bad.Events = "yaml", "cdc"
	_, err := New(Options{Config: bad})
	require.True(t, errors.As(err, &cerr))
	require.ErrorContains(t, err, "OMNIROUTE_LOG_FORMAT")
	require.ErrorContains(t, err, "OMNIROUTE_EVENTS")

	bad = cfg
	bad.MappingFile = filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad.MappingFile, []byte(mappingBad), 0o600))
	_, err = New(Options{Config: bad})
	require.True(t, errors.As(err, &cerr))
	require.ErrorContains(t, err, `unknown key "queus"`)

	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "omniroute_mapping_hash", Help: "taken"}))
	_, err = New(Options{Config: cfg, Registry: reg})
	require.ErrorContains(t, err, "register metrics")
	require.False(t, errors.As(err, &cerr))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	busy := cfg
	busy.HTTPAddr = ln.Addr().String()
	_, err = New(Options{Config: busy})
	require.ErrorContains(t, err, "OMNIROUTE_HTTP_ADDR: listen")
}

// handlerTransport serves requests with a handler in memory: an org without a network, for
// tests in a synctest bubble. The first failures requests fail as a refused connection would.
type handlerTransport struct {
	h        http.Handler
	mu       sync.Mutex
	calls    int
	failures int
}

func (tr *handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tr.mu.Lock()
	tr.calls++
	fail := tr.calls <= tr.failures
	tr.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func (tr *handlerTransport) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.calls
}

// TestCoreStartupBackoffAndHeartbeat runs the core on a fake clock (synctest) against an
// in-memory org that refuses the first connections: start-up retries with growing waits
// instead of hammering, then holds a token and checks the org; from then on the core beats, so
// /healthz stays good for as long as it runs.
func TestCoreStartupBackoffAndHeartbeat(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		em, err := emulator.New(emulator.Options{Seed: demoSeed()})
		require.NoError(t, err)
		defer em.Close()
		tr := &handlerTransport{h: em, failures: 3}
		cfg := daemonConfig(t, "http://org.test")
		c, err := New(Options{Config: cfg, HTTPClient: &http.Client{Transport: tr}, Listener: fakeListener{}})
		require.NoError(t, err)

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.runCore(ctx) }()

		synctest.Wait()
		require.Equal(t, 1, tr.count(), "one attempt, then a wait")
		ready, _ := c.ready.Ready()
		require.False(t, ready)
		healthy, loops := c.live.Healthy()
		require.True(t, healthy)
		require.Empty(t, loops, "start-up is not a loop: an outage at start does not fail liveness")

		time.Sleep(200 * time.Millisecond) // shorter than the first wait (500 ms ± 50%)
		synctest.Wait()
		require.Equal(t, 1, tr.count())

		time.Sleep(10 * time.Second)
		synctest.Wait()
		_, conds := c.ready.Ready()
		for _, cond := range conds[2:4] {
			require.True(t, cond.OK, "%s after the org came back", cond.Name)
		}
		require.Greater(t, tr.count(), 3)

		for range 30 { // 10 minutes
			time.Sleep(20 * time.Second)
			synctest.Wait()
			healthy, loops = c.live.Healthy()
			require.True(t, healthy, "%v", loops)
		}
		require.Equal(t, "core", loops[0].Name)

		cancel()
		require.NoError(t, <-done)
	})
}

// fakeListener is a listener nobody serves (tests that drive the core alone).
type fakeListener struct{}

func (fakeListener) Accept() (net.Conn, error) { return nil, errors.New("fake listener") }
func (fakeListener) Close() error              { return nil }
func (fakeListener) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
