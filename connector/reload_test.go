package connector

import (
	"context"
	"errors"
	"log/slog"
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

// writeFile replaces the file atomically (write, then rename), as a Kubernetes ConfigMap
// update does: a poll running meanwhile reads the old content or the new, never half a file.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// swapRecorder plays the router: it takes every mapping the reloader hands over.
type swapRecorder struct {
	mu      sync.Mutex
	plans   []*routing.Table
	applied chan Mapping // each mapping taken, in order
}

func newSwapRecorder() *swapRecorder { return &swapRecorder{applied: make(chan Mapping, 16)} }

func (s *swapRecorder) take(m Mapping) {
	s.mu.Lock()
	s.plans = append(s.plans, m.Table)
	s.mu.Unlock()
	s.applied <- m
}

func (s *swapRecorder) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.plans)
}

// planNames lists a mapping's plans, comma-separated.
func planNames(m Mapping) string {
	var names []string
	for _, pl := range m.Config.Plans {
		names = append(names, pl.Name)
	}
	return strings.Join(names, ",")
}

func waitApplied(t *testing.T, s *swapRecorder) Mapping {
	t.Helper()
	select {
	case m := <-s.applied:
		return m
	case <-time.After(10 * time.Second): // a guard against a hang, not a wait for state
		t.Fatal("no mapping was applied")
		return Mapping{}
	}
}

// testInterval is the fixtures' poll period; tests that poll run in a synctest bubble.
const testInterval = time.Minute

type fixture struct {
	path string
	rec  *swapRecorder
	reg  *prometheus.Registry
	logs *syncbuf.Buffer
	r    *Reloader
}

func newFixture(t *testing.T, content string) *fixture {
	t.Helper()
	f := &fixture{
		path: filepath.Join(t.TempDir(), "mapping.yaml"),
		rec:  newSwapRecorder(),
		reg:  prometheus.NewRegistry(),
		logs: &syncbuf.Buffer{},
	}
	writeFile(t, f.path, content)
	logger := slog.New(slog.NewTextHandler(f.logs, nil))
	r, err := NewReloader(ReloaderOptions{
		Path:       f.path,
		Interval:   testInterval,
		Now:        func() time.Time { return time.Unix(1_700_000_000, 0) },
		Registerer: prometheus.WrapRegistererWithPrefix("omniroute_", f.reg),
		Logger:     logger,
	})
	require.NoError(t, err)
	f.r = r
	return f
}

// loadedFixture is a fixture whose first mapping is loaded and taken by the router's side.
func loadedFixture(t *testing.T, content string) *fixture {
	t.Helper()
	f := newFixture(t, content)
	f.follow(t)
	require.NoError(t, f.load(t))
	waitApplied(t, f.rec)
	return f
}

// follow starts the router's side: every update goes to the recorder until the test ends.
func (f *fixture) follow(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	go func() {
		for {
			select {
			case m := <-f.r.Updates():
				f.rec.take(m)
			case <-ctx.Done():
				return
			}
		}
	}()
}

// load runs Load and returns its error.
func (f *fixture) load(t *testing.T) error {
	t.Helper()
	_, err := f.r.Load(t.Context())
	return err
}

// hash is the sha256 of the mapping in use.
func (f *fixture) hash() string {
	m, _ := f.r.Current()
	return m.SHA256
}

// logText is what was logged so far.
func (f *fixture) logText() string { return f.logs.String() }

func (f *fixture) successful(t *testing.T) float64 {
	t.Helper()
	return testutil.ToFloat64(f.r.metrics.success)
}

func TestReloaderOptions(t *testing.T) {
	t.Parallel()
	_, err := NewReloader(ReloaderOptions{})
	require.EqualError(t, err, "check reloader options: a mapping file path is required (OMNIROUTE_MAPPING_FILE)")
}

// TestReloadKeepsRoutedWork: a good file swaps in while work is in flight, and nothing routed
// is lost: the accepted interaction keeps its plan, and waiting work whose queue the new
// mapping removes stays queued (reported as plan_removed), as docs/mapping.md says.
func TestReloadKeepsRoutedWork(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	f.follow(t)
	require.NoError(t, f.load(t))
	first := waitApplied(t, f.rec)
	require.Equal(t, "support,billing", planNames(first))

	m, ok := f.r.Current()
	require.True(t, ok)
	require.Same(t, m.Table, first.Table)
	eng := routing.New(first.Table)
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

	// Reload v2 through the hot path; the router swaps the table it is handed.
	writeFile(t, f.path, mappingV2)
	require.NoError(t, f.load(t))
	second := waitApplied(t, f.rec)
	require.Equal(t, "support", planNames(second))
	swapCmds := cloneCommands(eng.SetPlans(now, second.Table))
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
	require.NoError(t, f.load(t))
	third := waitApplied(t, f.rec)
	require.Equal(t, "support,billing", planNames(third))
	eng.SetPlans(now, third.Table)
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
	f := loadedFixture(t, mappingV1)
	goodHash := f.hash()
	require.Equal(t, 1.0, f.successful(t))
	require.Equal(t, 1.7e9, testutil.ToFloat64(f.r.metrics.successTime))
	require.NotZero(t, testutil.ToFloat64(f.r.metrics.hash))

	writeFile(t, f.path, mappingBad)
	err := f.load(t)
	var ps mapping.Problems
	require.True(t, errors.As(err, &ps))
	require.Equal(t, "load mapping "+f.path+":\n"+
		f.path+`:3:5: plans[0].queus: unknown key "queus" (did you mean queues?)`+"\n"+
		f.path+`:4:20: plans[0].wrapUpTimeout: invalid duration "soon" (want a number and a unit such as 30s, 2m or 1h30m)`,
		err.Error())
	require.Equal(t, 1, f.rec.count(), "nothing applied")
	m, ok := f.r.Current()
	require.True(t, ok)
	require.Len(t, m.Config.Plans, 2, "the old mapping is still in use")
	require.Equal(t, goodHash, f.hash())
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
	f.r.compile = func(*mapping.Config) (*routing.Table, error) { return nil, errors.New("boom") }
	writeFile(t, f.path, mappingV2)
	require.ErrorContains(t, f.load(t), "compile mapping "+f.path+": boom")
	require.Equal(t, goodHash, f.hash())
	f.r.compile = routing.Compile

	require.NoError(t, f.load(t))
	require.Equal(t, "support", planNames(waitApplied(t, f.rec)))
	require.Equal(t, 1.0, f.successful(t))

	// A missing file at start-up is an error, not a panic.
	g := newFixture(t, mappingV1)
	require.NoError(t, os.Remove(g.path))
	require.ErrorContains(t, g.load(t), "read mapping")
	_, ok = g.r.Current()
	require.False(t, ok)
}

// TestReloadChecksOrg: once the org is known, the mapping in use is checked against it, and a
// reload that names what the org lacks is rejected like a bad file.
func TestReloadChecksOrg(t *testing.T) {
	t.Parallel()
	f := loadedFixture(t, mappingV1)
	org := mapping.Org{
		Queues: []mapping.OrgQueue{
			{ID: "00G000000000001AAA", DeveloperName: "Support_EN", RoutingModel: mapping.RoutingModelExternal},
			{ID: "00G000000000003AAA", DeveloperName: "Billing", RoutingModel: mapping.RoutingModelExternal},
		},
		Channels: []mapping.OrgChannel{{DeveloperName: "Chat", RelatedEntity: "LiveChatTranscript"}},
		Statuses: []mapping.OrgStatus{{DeveloperName: "Available"}, {DeveloperName: "Away_from_desk"}, {DeveloperName: "Taking_notes"}},
		Skills:   []mapping.OrgSkill{{DeveloperName: "English"}, {DeveloperName: "Billing"}},
	}
	require.NoError(t, f.r.UseOrg(org))

	writeFile(t, f.path, strings.Replace(mappingV2, "queues: [Support_EN]", "queues: [Support_FR]", 1))
	err := f.load(t)
	require.ErrorContains(t, err, "check mapping "+f.path+" against the org:\n")
	require.ErrorContains(t, err, `plans[0].queues[0]: queue "Support_FR" does not exist in the org`)
	require.Equal(t, 1, f.rec.count(), "nothing applied")
	require.Equal(t, 0.0, f.successful(t))

	writeFile(t, f.path, mappingV2)
	require.NoError(t, f.load(t))
	require.Equal(t, "support", planNames(waitApplied(t, f.rec)))

	// A mapping in use that does not fit the org is reported when the org becomes known.
	org.Skills = org.Skills[1:]
	require.ErrorContains(t, f.r.UseOrg(org), `skill "English" does not exist in the org`)
}

// tick lets one poll period pass in a synctest bubble and waits for the poll to finish.
func tick() {
	time.Sleep(testInterval)
	synctest.Wait()
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
	synctest.Test(t, func(t *testing.T) {
		f := loadedFixture(t, mappingV1)
		stop := runReloader(t, f)
		defer stop()

		// Unchanged: two ticks, nothing applied.
		tick()
		tick()
		require.Equal(t, 1, f.rec.count())

		writeFile(t, f.path, mappingV2)
		tick()
		require.Equal(t, "support", planNames(waitApplied(t, f.rec)))

		writeFile(t, f.path, mappingBad)
		tick()
		tick()
		tick()
		require.Equal(t, 2, f.rec.count())
		require.Equal(t, 0.0, f.successful(t))
		require.Equal(t, 1, strings.Count(f.logText(), "mapping reload failed"), "a bad file is reported once, not on every tick:\n%s", f.logText())

		writeFile(t, f.path, mappingV1)
		tick()
		require.Equal(t, "support,billing", planNames(waitApplied(t, f.rec)))
		require.Equal(t, 1.0, f.successful(t))
		require.Equal(t, 3, f.rec.count())
	})
}

// TestReloadTrigger is the SIGHUP path: Trigger reloads even when the checksum is unchanged,
// and never blocks.
func TestReloadTrigger(t *testing.T) {
	t.Parallel()
	f := loadedFixture(t, mappingV1)
	f.r.Trigger()
	f.r.Trigger() // merged with the pending one; does not block
	stop := runReloader(t, f)
	defer stop()
	require.Equal(t, "support,billing", planNames(waitApplied(t, f.rec)))
}

func TestReloadMetricsNilRegisterer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	r, err := NewReloader(ReloaderOptions{Path: f.path})
	require.NoError(t, err)
	m, err := r.Load(t.Context())
	require.NoError(t, err)
	require.Equal(t, "support,billing", planNames(m))
	require.Equal(t, m, <-r.Updates())
}

// TestReloadPollTicker runs the real ticker in a synctest bubble (fake time): a change is picked
// up on the first tick after it, and no sooner.
func TestReloadPollTicker(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, mappingV1)
		f.follow(t)
		require.NoError(t, f.load(t))
		require.Equal(t, "support,billing", planNames(waitApplied(t, f.rec)))
		stop := runReloader(t, f)
		defer stop()

		writeFile(t, f.path, strings.Replace(mappingV2, "name: support", "name: support-v2", 1))
		time.Sleep(testInterval - time.Second)
		synctest.Wait()
		require.Equal(t, 1, f.rec.count(), "no reload before the tick")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, "support-v2", planNames(waitApplied(t, f.rec)))
		require.Equal(t, 2, f.rec.count())
	})
}

// TestReloadPollRecoversWhenTheGoodFileReturns: a bad file is rejected; putting the mapping in
// use back (the usual fix, e.g. a ConfigMap rollback) must bring last_reload_successful back
// to 1, though its checksum equals the one in use.
func TestReloadPollRecoversWhenTheGoodFileReturns(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := loadedFixture(t, mappingV1)
		stop := runReloader(t, f)
		defer stop()

		writeFile(t, f.path, mappingBad)
		tick()
		require.Equal(t, 0.0, f.successful(t))

		writeFile(t, f.path, mappingV1)
		tick()
		require.Equal(t, "support,billing", planNames(waitApplied(t, f.rec)))
		require.Equal(t, 1.0, f.successful(t), "the file in use is back: the last reload is good again")

		// The same after the file went missing for a while.
		require.NoError(t, os.Remove(f.path))
		tick()
		tick()
		require.Equal(t, 0.0, f.successful(t))
		writeFile(t, f.path, mappingV1)
		tick()
		require.Equal(t, "support,billing", planNames(waitApplied(t, f.rec)))
		require.Equal(t, 1.0, f.successful(t))

		// And after a SIGHUP or POST found the file missing.
		require.NoError(t, os.Remove(f.path))
		require.ErrorContains(t, f.load(t), "read mapping")
		require.Equal(t, 0.0, f.successful(t))
		writeFile(t, f.path, mappingV1)
		tick()
		require.Equal(t, "support,billing", planNames(waitApplied(t, f.rec)))
		require.Equal(t, 1.0, f.successful(t))
	})
}

// TestReloadConcurrentTriggers fires the poll (a 1 ms ticker), SIGHUP (Trigger) and Load (what
// POST /-/reload calls) at once (run it with -race): loads never overlap, every caller gets an
// answer, the file on disk ends up in use with the metric at 1, and the router is handed the
// newest mapping.
func TestReloadConcurrentTriggers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, mappingV1)
	f.r.opts.Interval = time.Millisecond
	_, err := f.r.Load(t.Context())
	require.NoError(t, err)
	writeFile(t, f.path, mappingV2)
	stop := runReloader(t, f)

	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(2)
		go func() { defer wg.Done(); f.r.Trigger() }()
		go func() {
			defer wg.Done()
			_, err := f.r.Load(t.Context())
			errs <- err
		}()
	}
	wg.Wait()
	stop() // Run has returned: no load is running any more
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	m, ok := f.r.Current()
	require.True(t, ok)
	require.Len(t, m.Config.Plans, 1, "v2 is in use")
	require.Same(t, m.Config, (<-f.r.Updates()).Config, "the router is handed the newest mapping")
	require.GreaterOrEqual(t, testutil.ToFloat64(f.r.metrics.reloads.WithLabelValues("success")), float64(n+1), "every Load loads")
	require.Equal(t, 1.0, f.successful(t))
}
