package connector

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
)

const presenceYAML = `
channels:
  - name: Chat
    class: semi-live
    weight: 1
capacity:
  default: standard
  profiles:
    - name: standard
      total: 10
presence:
  toSalesforce:
    Ready: Available
    ReadyOutbound: Away_from_desk
    Busy: Available
    WrapUp: Taking_notes
    Away: Away_from_desk
    ExtendedAway: Away_from_desk
    LoggedOut: Offline
`

// v1 routes Support_EN and Billing; v2 drops Billing and gives support a new wrap-up.
const (
	mappingV1 = `plans:
  - name: support
    queues: [Support_EN]
    requiredSkills: [{skill: English, minLevel: 3}]
    wrapUpTimeout: 30s
  - name: billing
    queues: [Billing]
    requiredSkills: [{skill: Billing, minLevel: 1}]
` + presenceYAML
	mappingV2 = `plans:
  - name: support
    queues: [Support_EN]
    requiredSkills: [{skill: English, minLevel: 3}]
    wrapUpTimeout: 1m
` + presenceYAML
	// mappingBad has an unknown key on line 3 and a bad duration on line 4.
	mappingBad = `plans:
  - name: support
    queus: [Support_EN]
    wrapUpTimeout: soon
` + presenceYAML
)

// testToken is the reload token of the fixtures.
const testToken = "s3cret-reload-token"

// writeFile replaces the file atomically (write, then rename), as a Kubernetes ConfigMap
// update does: a poll running meanwhile reads the old content or the new, never half a file.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// swapRecorder is an Apply hook that records every swap and signals it.
type swapRecorder struct {
	mu      sync.Mutex
	plans   []*routing.Plans
	applied chan string // plan names of each applied mapping
}

func newSwapRecorder() *swapRecorder { return &swapRecorder{applied: make(chan string, 16)} }

func (s *swapRecorder) apply(cfg *mapping.Config, p *routing.Plans) {
	s.mu.Lock()
	s.plans = append(s.plans, p)
	s.mu.Unlock()
	var names []string
	for _, pl := range cfg.Plans {
		names = append(names, pl.Name)
	}
	s.applied <- strings.Join(names, ",")
}

func (s *swapRecorder) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.plans)
}

func waitApplied(t *testing.T, s *swapRecorder) string {
	t.Helper()
	select {
	case names := <-s.applied:
		return names
	case <-time.After(10 * time.Second): // a guard against a hang, not a wait for state
		t.Fatal("no mapping was applied")
		return ""
	}
}

type fixture struct {
	path string
	rec  *swapRecorder
	reg  *prometheus.Registry
	logs *bytes.Buffer
	lmu  *sync.Mutex // guards logs
	tick chan time.Time
	r    *Reloader[*routing.Plans]
}

func newFixture(t *testing.T, content string) *fixture {
	t.Helper()
	f := &fixture{
		path: filepath.Join(t.TempDir(), "mapping.yaml"),
		rec:  newSwapRecorder(),
		reg:  prometheus.NewRegistry(),
		logs: &bytes.Buffer{},
		lmu:  &sync.Mutex{},
		tick: make(chan time.Time),
	}
	writeFile(t, f.path, content)
	logger := slog.New(slog.NewTextHandler(&lockedWriter{mu: f.lmu, w: f.logs}, nil))
	r, err := NewReloader(ReloaderOptions[*routing.Plans]{
		Path:       f.path,
		Compile:    routing.Compile,
		Apply:      f.rec.apply,
		Tick:       f.tick,
		Now:        func() time.Time { return time.Unix(1_700_000_000, 0) },
		Registerer: f.reg,
		Logger:     logger,
		Token:      testToken,
	})
	require.NoError(t, err)
	f.r = r
	return f
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logText is what was logged so far.
func (f *fixture) logText() string {
	f.lmu.Lock()
	defer f.lmu.Unlock()
	return f.logs.String()
}

func (f *fixture) successful(t *testing.T) float64 {
	t.Helper()
	return testutil.ToFloat64(f.r.metrics.success)
}

func TestReloaderOptions(t *testing.T) {
	t.Parallel()
	_, err := NewReloader(ReloaderOptions[int]{})
	require.EqualError(t, err, "check reloader options: a mapping file path is required\n"+
		"a compile function is required\nan apply function is required")
}

// TestReloadKeepsRoutedWork: a good file swaps in while work is in flight, and nothing routed
// is lost: the accepted interaction keeps its plan, and waiting work whose queue the new
// mapping removes stays queued (reported as plan_removed), as docs/mapping.md says.
func TestReloadKeepsRoutedWork(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	ctx := t.Context()
	require.NoError(t, f.r.Load(ctx))
	require.Equal(t, "support,billing", waitApplied(t, f.rec))

	_, plans, ok := f.r.Current()
	require.True(t, ok)
	eng := routing.New(plans)
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	apply := func(ev routing.Event) []routing.Command {
		return cloneCommands(eng.Apply(now, ev))
	}
	apply(routing.Event{Type: routing.EventAgentSkills, AgentID: "005A", Skills: []routing.Skill{{Name: "English", Level: 5}}})
	apply(routing.Event{Type: routing.EventAgentPresence, AgentID: "005A", Presence: "Available", Channels: []string{"Chat"}})
	apply(routing.Event{Type: routing.EventAgentState, AgentID: "005A", State: mapping.State{Major: mapping.Ready}})
	cmds := apply(routing.Event{Type: routing.EventWorkArrived, Work: routing.Work{ID: "570A", PSR: "0JRA", Queue: "Support_EN", Channel: "Chat"}})
	require.True(t, hasCommand(cmds, routing.CommandOffer, "570A"), "work offered: %v", cmds)
	apply(routing.Event{Type: routing.EventOfferAccepted, AgentID: "005A", WorkID: "570A"})
	// Nobody has Billing: this work waits.
	apply(routing.Event{Type: routing.EventWorkArrived, Work: routing.Work{ID: "570B", PSR: "0JRB", Queue: "Billing", Channel: "Chat"}})

	// Reload v2 through the hot path; the Apply hook is the engine's swap.
	writeFile(t, f.path, mappingV2)
	var swapCmds []routing.Command
	f.r.opts.Apply = func(cfg *mapping.Config, p *routing.Plans) {
		swapCmds = cloneCommands(eng.SetPlans(now, p))
		f.rec.apply(cfg, p)
	}
	require.NoError(t, f.r.Load(ctx))
	require.Equal(t, "support", waitApplied(t, f.rec))
	require.Same(t, f.rec.plans[1], eng.Plans())

	// The removed queue's waiting work is kept and reported, not dropped.
	require.True(t, hasCommand(swapCmds, routing.CommandRerouted, "570B"), "swap commands: %v", swapCmds)
	for _, c := range swapCmds {
		if c.Type == routing.CommandRerouted && c.WorkID == "570B" {
			require.Equal(t, routing.ReasonPlanRemoved, c.Reason)
		}
	}
	// New work for the removed queue is parked, not dropped, and routed once a reload maps the
	// queue again.
	cmds = apply(routing.Event{Type: routing.EventWorkArrived, Work: routing.Work{ID: "570C", PSR: "0JRC", Queue: "Billing", Channel: "Chat"}})
	require.True(t, hasCommand(cmds, routing.CommandUnroutable, "570C"), "new work for a removed queue: %v", cmds)
	for _, c := range cmds {
		if c.Type == routing.CommandUnroutable {
			require.Equal(t, routing.ReasonQueueUnmapped, c.Reason)
		}
	}

	// The accepted interaction is still the agent's: releasing it starts its wrap-up.
	cmds = apply(routing.Event{Type: routing.EventAgentAction, AgentID: "005A", WorkID: "570A", Action: routing.Action{Kind: routing.ActionRelease}})
	require.True(t, hasCommand(cmds, routing.CommandWrapUp, "570A"), "release after reload: %v", cmds)
	require.Equal(t, 1.0, f.successful(t))

	// Back to v1: the parked work is placed under billing again, and a Billing agent gets it.
	writeFile(t, f.path, mappingV1)
	require.NoError(t, f.r.Load(ctx))
	require.Equal(t, "support,billing", waitApplied(t, f.rec))
	cmds = apply(routing.Event{Type: routing.EventAgentSkills, AgentID: "005B", Skills: []routing.Skill{{Name: "Billing", Level: 2}}})
	cmds = append(cmds, apply(routing.Event{Type: routing.EventAgentPresence, AgentID: "005B", Presence: "Available", Channels: []string{"Chat"}})...)
	cmds = append(cmds, apply(routing.Event{Type: routing.EventAgentState, AgentID: "005B", State: mapping.State{Major: mapping.Ready}})...)
	require.True(t, hasCommand(cmds, routing.CommandOffer, "570B") || hasCommand(cmds, routing.CommandOffer, "570C"),
		"removed-then-restored queue's work is offered: %v", cmds)
}

func cloneCommands(cs []routing.Command) []routing.Command {
	return append([]routing.Command(nil), cs...)
}

func hasCommand(cs []routing.Command, typ routing.CommandType, workID string) bool {
	for _, c := range cs {
		if c.Type == typ && c.WorkID == workID {
			return true
		}
	}
	return false
}

// TestReloadBadFileKeepsOld: a bad file is rejected with every problem, the old mapping stays in
// use, the metric drops to 0 and the reason is logged; fixing the file recovers.
func TestReloadBadFileKeepsOld(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	ctx := t.Context()
	require.NoError(t, f.r.Load(ctx))
	waitApplied(t, f.rec)
	goodHash := f.r.Hash()
	require.Equal(t, 1.0, f.successful(t))
	require.Equal(t, 1.7e9, testutil.ToFloat64(f.r.metrics.successTime))
	require.NotZero(t, testutil.ToFloat64(f.r.metrics.hash))

	writeFile(t, f.path, mappingBad)
	err := f.r.Load(ctx)
	var ps mapping.Problems
	require.True(t, errors.As(err, &ps))
	require.Equal(t, "load mapping "+f.path+":\n"+
		f.path+`:3:5: plans[0].queus: unknown key "queus" (did you mean queues?)`+"\n"+
		f.path+`:4:20: plans[0].wrapUpTimeout: invalid duration "soon" (want a number and a unit such as 30s, 2m or 1h30m)`,
		err.Error())
	require.Equal(t, 1, f.rec.count(), "nothing applied")
	cfg, _, ok := f.r.Current()
	require.True(t, ok)
	require.Len(t, cfg.Plans, 2, "the old mapping is still in use")
	require.Equal(t, goodHash, f.r.Hash())
	require.Equal(t, 0.0, f.successful(t))
	require.Contains(t, f.logText(), "mapping reload failed; keeping the previous mapping")
	require.Contains(t, f.logText(), "unknown key")
	require.NoError(t, testutil.GatherAndCompare(f.reg, strings.NewReader(`
# HELP omniroute_mapping_reloads_total Mapping (re)loads by result (success, failure).
# TYPE omniroute_mapping_reloads_total counter
omniroute_mapping_reloads_total{result="failure"} 1
omniroute_mapping_reloads_total{result="success"} 1
`), "omniroute_mapping_reloads_total"))

	// A file that compiles badly is rejected the same way.
	f.r.opts.Compile = func(*mapping.Config) (*routing.Plans, error) { return nil, errors.New("boom") }
	writeFile(t, f.path, mappingV2)
	require.ErrorContains(t, f.r.Load(ctx), "compile mapping "+f.path+": boom")
	require.Equal(t, goodHash, f.r.Hash())
	f.r.opts.Compile = routing.Compile

	require.NoError(t, f.r.Load(ctx))
	require.Equal(t, "support", waitApplied(t, f.rec))
	require.Equal(t, 1.0, f.successful(t))

	// A missing file at start-up is an error, not a panic.
	g := newFixture(t, mappingV1)
	require.NoError(t, os.Remove(g.path))
	require.ErrorContains(t, g.r.Load(ctx), "read mapping")
	_, _, ok = g.r.Current()
	require.False(t, ok)
}

// runReloader starts Run and returns a function that stops it and checks it returned nil.
func runReloader(t *testing.T, f *fixture) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

// TestReloadChecksumPoll: each tick re-reads the file; a changed checksum reloads, an unchanged
// one does not, and a bad file is tried once per change.
func TestReloadChecksumPoll(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	require.NoError(t, f.r.Load(t.Context()))
	waitApplied(t, f.rec)
	stop := runReloader(t, f)
	defer stop()

	// Unchanged: two ticks, nothing applied. (A send returns once Run took the tick; the second
	// send returns only after the first poll finished.)
	f.tick <- time.Time{}
	f.tick <- time.Time{}
	require.Equal(t, 1, f.rec.count())

	writeFile(t, f.path, mappingV2)
	f.tick <- time.Time{}
	require.Equal(t, "support", waitApplied(t, f.rec))

	writeFile(t, f.path, mappingBad)
	f.tick <- time.Time{}
	f.tick <- time.Time{}
	f.tick <- time.Time{}
	require.Equal(t, 2, f.rec.count())
	require.Equal(t, 0.0, f.successful(t))
	require.Equal(t, 1, strings.Count(f.logText(), "mapping reload failed"), "a bad file is reported once, not on every tick:\n%s", f.logText())

	writeFile(t, f.path, mappingV1)
	f.tick <- time.Time{}
	require.Equal(t, "support,billing", waitApplied(t, f.rec))
	f.tick <- time.Time{} // returns once the reload above has finished (metrics included)
	require.Equal(t, 1.0, f.successful(t))
	require.Equal(t, 3, f.rec.count())
}

// TestReloadTrigger is the SIGHUP path: Trigger reloads even when the checksum is unchanged,
// and never blocks.
func TestReloadTrigger(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	require.NoError(t, f.r.Load(t.Context()))
	waitApplied(t, f.rec)
	f.r.Trigger()
	f.r.Trigger() // merged with the pending one; does not block
	stop := runReloader(t, f)
	defer stop()
	require.Equal(t, "support,billing", waitApplied(t, f.rec))
}

// TestReloadHTTP: POST /-/reload answers 200 when the new mapping is in use and 400 with every
// problem when it was rejected.
func TestReloadHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	require.NoError(t, f.r.Load(t.Context()))
	waitApplied(t, f.rec)
	mux := http.NewServeMux()
	mux.Handle("/-/reload", f.r)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post := func() (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/-/reload", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}

	writeFile(t, f.path, mappingBad)
	code, body := post()
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, f.path+`:3:5: plans[0].queus: unknown key "queus" (did you mean queues?)`)
	require.Contains(t, body, f.path+`:4:20: plans[0].wrapUpTimeout: invalid duration "soon"`)
	require.Equal(t, 1, f.rec.count())

	writeFile(t, f.path, mappingV2)
	code, body = post()
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "mapping reloaded (sha256 "+f.r.Hash()+")\n", body)
	require.Equal(t, "support", waitApplied(t, f.rec))

	resp, err := http.Get(srv.URL + "/-/reload")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, http.MethodPost, resp.Header.Get("Allow"))
}

func TestReloadMetricsNilRegisterer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	r, err := NewReloader(ReloaderOptions[*routing.Plans]{Path: f.path, Compile: routing.Compile, Apply: f.rec.apply})
	require.NoError(t, err)
	require.NoError(t, r.Load(t.Context()))
	waitApplied(t, f.rec)
}

// TestReloadPollTicker runs the real ticker in a synctest bubble (fake time): a change is picked
// up on the first tick after it, and no sooner.
func TestReloadPollTicker(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "mapping.yaml")
		writeFile(t, path, mappingV1)
		var mu sync.Mutex
		var appliedNames []string
		applied := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(appliedNames)
		}
		r, err := NewReloader(ReloaderOptions[*routing.Plans]{
			Path: path, Compile: routing.Compile, Interval: time.Minute,
			Apply: func(cfg *mapping.Config, _ *routing.Plans) {
				mu.Lock()
				defer mu.Unlock()
				appliedNames = append(appliedNames, cfg.Plans[0].Name)
			},
		})
		require.NoError(t, err)
		require.NoError(t, r.Load(t.Context()))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()

		writeFile(t, path, strings.Replace(mappingV2, "name: support", "name: support-v2", 1))
		time.Sleep(59 * time.Second)
		synctest.Wait()
		require.Len(t, applied(), 1, "no reload before the tick")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, []string{"support", "support-v2"}, applied())

		cancel()
		require.NoError(t, <-done)
	})
}

// TestReloadPollRecoversWhenTheGoodFileReturns: a bad file is rejected; putting the mapping in
// use back (the usual fix, e.g. a ConfigMap rollback) must bring last_reload_successful back
// to 1, though its checksum equals the one in use.
func TestReloadPollRecoversWhenTheGoodFileReturns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	require.NoError(t, f.r.Load(t.Context()))
	waitApplied(t, f.rec)
	stop := runReloader(t, f)
	defer stop()

	writeFile(t, f.path, mappingBad)
	f.tick <- time.Time{}
	f.tick <- time.Time{} // returns once the poll above has finished
	require.Equal(t, 0.0, f.successful(t))

	writeFile(t, f.path, mappingV1)
	f.tick <- time.Time{}
	require.Equal(t, "support,billing", waitApplied(t, f.rec))
	f.tick <- time.Time{}
	require.Equal(t, 1.0, f.successful(t), "the file in use is back: the last reload is good again")

	// The same after the file went missing for a while.
	require.NoError(t, os.Remove(f.path))
	f.tick <- time.Time{}
	f.tick <- time.Time{}
	require.Equal(t, 0.0, f.successful(t))
	writeFile(t, f.path, mappingV1)
	f.tick <- time.Time{}
	require.Equal(t, "support,billing", waitApplied(t, f.rec))
	f.tick <- time.Time{}
	require.Equal(t, 1.0, f.successful(t))

	// And after a SIGHUP or POST found the file missing.
	require.NoError(t, os.Remove(f.path))
	require.ErrorContains(t, f.r.Load(t.Context()), "read mapping")
	require.Equal(t, 0.0, f.successful(t))
	writeFile(t, f.path, mappingV1)
	f.tick <- time.Time{}
	require.Equal(t, "support,billing", waitApplied(t, f.rec))
	f.tick <- time.Time{}
	require.Equal(t, 1.0, f.successful(t))
}

// TestReloadHTTPRequiresToken: POST /-/reload is an admin endpoint, so it needs the bearer
// token; without one configured it is off. A refused call reloads nothing and never echoes
// the token.
func TestReloadHTTPRequiresToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	require.NoError(t, f.r.Load(t.Context()))
	waitApplied(t, f.rec)
	writeFile(t, f.path, mappingV2)
	srv := httptest.NewServer(f.r)
	defer srv.Close()
	post := func(h http.Handler, auth string) (int, string, http.Header) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/-/reload", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String(), rec.Header()
	}
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "Basic " + testToken, "bearer " + testToken, "Bearer " + testToken + "x"} {
		code, body, h := post(f.r, auth)
		require.Equal(t, http.StatusUnauthorized, code, "%q", auth)
		require.Equal(t, `Bearer realm="omniroute"`, h.Get("WWW-Authenticate"))
		require.NotContains(t, body, testToken)
	}
	require.Equal(t, 1, f.rec.count(), "a refused call reloads nothing")

	// Over real HTTP on loopback too.
	resp, err := http.Post(srv.URL+"/-/reload", "text/plain", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	code, _, _ := post(f.r, "Bearer "+testToken)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "support", waitApplied(t, f.rec))

	// No token configured: reload over HTTP is off for everyone.
	off, err := NewReloader(ReloaderOptions[*routing.Plans]{Path: f.path, Compile: routing.Compile, Apply: f.rec.apply})
	require.NoError(t, err)
	for _, auth := range []string{"", "Bearer ", "Bearer " + testToken} {
		code, body, _ := post(off, auth)
		require.Equal(t, http.StatusForbidden, code, "%q", auth)
		require.Contains(t, body, "reload over HTTP is off")
	}
	require.Equal(t, 2, f.rec.count())
	require.NotContains(t, f.logText(), testToken)
}

// TestReloadConcurrentTriggers fires the poll, SIGHUP (Trigger), POST /-/reload and Load at
// once (run it with -race): loads never overlap, every caller gets an answer, and the file on
// disk ends up in use with the metric at 1.
func TestReloadConcurrentTriggers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	require.NoError(t, f.r.Load(t.Context()))
	waitApplied(t, f.rec)
	// Apply writes plain variables: if two loads ever applied at once, -race reports it.
	var applies int
	var last *mapping.Config
	f.r.opts.Apply = func(cfg *mapping.Config, _ *routing.Plans) {
		applies++
		last = cfg
	}
	srv := httptest.NewServer(f.r)
	defer srv.Close()
	writeFile(t, f.path, mappingV2)
	stop := runReloader(t, f)

	const n = 8
	var wg sync.WaitGroup
	codes := make(chan int, n)
	errs := make(chan error, 2*n)
	for range n {
		wg.Add(4)
		go func() { defer wg.Done(); f.tick <- time.Time{} }()
		go func() { defer wg.Done(); f.r.Trigger() }()
		go func() { defer wg.Done(); errs <- f.r.Load(t.Context()) }()
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/-/reload", nil)
			if err != nil {
				errs <- err
				return
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			codes <- resp.StatusCode
			errs <- resp.Body.Close()
		}()
	}
	wg.Wait()
	stop() // Run has returned: no load is running any more
	close(codes)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for code := range codes {
		require.Equal(t, http.StatusOK, code)
	}
	cfg, _, ok := f.r.Current() // takes the load lock: every Apply happened before this
	require.True(t, ok)
	require.Len(t, cfg.Plans, 1, "v2 is in use")
	require.Same(t, cfg, last)
	require.GreaterOrEqual(t, applies, 2*n, "every Load and POST applies")
	require.Equal(t, 1.0, f.successful(t))
}
