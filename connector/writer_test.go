package connector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
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
	"github.com/omniroute/omniroute/salesforce"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// writerOrg is an emulator org served on loopback behind a proxy that can play faults the
// emulator has none of (an insert applied whose answer is lost), with a client logged in as
// the integration user.
type writerOrg struct {
	em     *emulator.Emulator
	proxy  *writerProxy
	url    string
	client *salesforce.Client
	org    mapping.Org
	users  map[string]string // username -> User Id
}

// writerProxy passes requests to the emulator, or to fn when it returns true, and logs them.
type writerProxy struct {
	next http.Handler
	mu   sync.Mutex
	fn   func(w http.ResponseWriter, r *http.Request) bool
	log  []proxied
}

type proxied struct {
	method, path string
	start, end   time.Time
}

func (p *writerProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() {
		p.mu.Lock()
		p.log = append(p.log, proxied{r.Method, r.URL.Path, start, time.Now()})
		p.mu.Unlock()
	}()
	p.mu.Lock()
	fn := p.fn
	p.mu.Unlock()
	if fn != nil && fn(w, r) {
		return
	}
	p.next.ServeHTTP(w, r)
}

func (p *writerProxy) setFault(fn func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	p.fn = fn
	p.mu.Unlock()
}

// reset forgets the requests logged so far.
func (p *writerProxy) reset() {
	p.mu.Lock()
	p.log = nil
	p.mu.Unlock()
}

// requests returns the REST requests made so far (no token requests), as "METHOD kind".
func (p *writerProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.log {
		if k := restKind(r.method, r.path); k != "" {
			out = append(out, k)
		}
	}
	return out
}

func (p *writerProxy) entries() []proxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]proxied(nil), p.log...)
}

// restKind names a REST request: insert (one AgentWork), collection, query, update, other.
func restKind(method, path string) string {
	switch {
	case !strings.HasPrefix(path, "/services/data/"):
		return ""
	case method == http.MethodPost && strings.Contains(path, "/sobjects/AgentWork"):
		return "insert"
	case method == http.MethodPost && strings.HasSuffix(path, "/composite/sobjects"):
		return "collection"
	case method == http.MethodPatch && strings.HasSuffix(path, "/composite/sobjects"):
		return "update_collection"
	case method == http.MethodPatch:
		return "update"
	case method == http.MethodGet && strings.Contains(path, "/query"):
		return "query"
	}
	return "other"
}

func isInsert(r *http.Request) bool {
	k := restKind(r.Method, r.URL.Path)
	return k == "insert" || k == "collection"
}

// newWriterOrg starts an emulator (demo seed unless opts has one) behind the proxy and logs in.
func newWriterOrg(t *testing.T, opts emulator.Options) *writerOrg {
	t.Helper()
	if opts.Seed.OrgID == "" {
		opts.Seed = emulator.DemoSeed()
	}
	em, err := emulator.New(opts)
	require.NoError(t, err)
	t.Cleanup(em.Close)
	o := &writerOrg{em: em, proxy: &writerProxy{next: em}, users: map[string]string{}}
	srv := httptest.NewServer(o.proxy)
	t.Cleanup(srv.Close)
	o.url = srv.URL
	ts, err := salesforce.NewTokenSource(salesforce.TokenOptions{
		Grant: salesforce.GrantPassword, LoginURL: srv.URL, ClientID: emulator.DemoClientID,
		ClientSecret: emulator.DemoClientSecret, Username: emulator.DemoUsername, Password: emulator.DemoPassword,
	})
	require.NoError(t, err)
	// No retries of the client's own: the writer's handling of each failure is what is tested.
	o.client, err = salesforce.New(salesforce.Options{Tokens: ts, CallOptionsClient: CallOptionsClient, MaxRetries: -1})
	require.NoError(t, err)
	o.org, err = ReadOrg(t.Context(), o.client)
	require.NoError(t, err)
	type user struct {
		ID       string `json:"Id"`
		Username string `json:"Username"`
	}
	for u, err := range salesforce.QueryAs[user](t.Context(), o.client, "SELECT Id, Username FROM User") {
		require.NoError(t, err)
		o.users[u.Username] = u.ID
	}
	o.proxy.reset() // start-up requests are not the writer's
	return o
}

func agent(n int) string { return fmt.Sprintf("agent%02d@omniroute.demo", n) }

// slowInserts makes every insert call take d more, and signals on the channel returned when
// one arrives.
func (o *writerOrg) slowInserts(d time.Duration) chan struct{} {
	inFlight := make(chan struct{}, 1)
	o.proxy.setFault(func(_ http.ResponseWriter, r *http.Request) bool {
		if isInsert(r) {
			signal(inFlight)
			time.Sleep(d)
		}
		return false
	})
	return inFlight
}

// caseOffers creates n Case work items and returns an offer of each, to agents 1, 2 and 3 in
// turn.
func (o *writerOrg) caseOffers(t *testing.T, n int) []routing.Command {
	t.Helper()
	var cmds []routing.Command
	for i := range n {
		cmds = append(cmds, o.offer(o.work(t, "Case"), "Case", 1+i%3))
	}
	return cmds
}

// online brings agents online in the Available status (every channel).
func (o *writerOrg) online(t *testing.T, agents ...int) {
	t.Helper()
	for _, n := range agents {
		require.NoError(t, o.em.SetPresence(agent(n), "Available"))
	}
}

// work creates a work item waiting on an external-routing queue and returns its PSR.
func (o *writerOrg) work(t *testing.T, channel string) emulator.WorkResult {
	t.Helper()
	wr, err := o.em.CreateWork(emulator.WorkRequest{Channel: channel, Queue: "Support_EN"})
	require.NoError(t, err)
	require.NotEmpty(t, wr.PSRID)
	return wr
}

// accepted creates work that agent n holds (offered and accepted).
func (o *writerOrg) accepted(t *testing.T, channel string, n int) emulator.WorkResult {
	t.Helper()
	wr := o.work(t, channel)
	id, err := o.em.AssignWork(wr.PSRID, agent(n))
	require.NoError(t, err)
	require.NoError(t, o.em.AcceptWork(id))
	return wr
}

// offer is the engine's CommandOffer of wr to agent n.
func (o *writerOrg) offer(wr emulator.WorkResult, channel string, n int) routing.Command {
	return routing.Command{Type: routing.CommandOffer, WorkID: wr.WorkItemID, PSR: wr.PSRID,
		AgentID: o.users[agent(n)], Channel: channel, Weight: 1, Plan: "support"}
}

// agentWorks returns the emulator's AgentWork of a PSR.
func (o *writerOrg) agentWorks(psr string) []emulator.AgentWorkInfo {
	var out []emulator.AgentWorkInfo
	for _, aw := range o.em.AgentWorks() {
		if aw.PSRID == psr {
			out = append(out, aw)
		}
	}
	return out
}

// writerRun is a Writer running against the org until the test ends.
type writerRun struct {
	w       *Writer
	reg     *prometheus.Registry
	results chan WriteResult
	logs    *syncbuf.Buffer
	stop    context.CancelFunc
	done    chan error
}

func (o *writerOrg) startWriter(t *testing.T, set func(*WriterOptions), cmds ...routing.Command) *writerRun {
	t.Helper()
	r := &writerRun{reg: prometheus.NewPedanticRegistry(), results: make(chan WriteResult, 1000), logs: &syncbuf.Buffer{}, done: make(chan error, 1)}
	opts := WriterOptions{
		Client: o.client, Registerer: r.reg,
		Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Report: func(ctx context.Context, res WriteResult) error {
			select {
			case r.results <- res:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}
	opts.UseOrg(o.org)
	if set != nil {
		set(&opts)
	}
	w, err := NewWriter(opts)
	require.NoError(t, err)
	r.w = w
	for _, c := range cmds {
		w.Do(c)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	r.stop = cancel
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("Run did not return")
		}
	})
	return r
}

// shutdown stops Run and waits for it to return nil within d.
func (r *writerRun) shutdown(t *testing.T, d time.Duration) {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(d):
		t.Fatalf("Run did not return within %s", d)
	}
	r.done <- nil // for the cleanup
}

// next waits for the next result.
func (r *writerRun) next(t *testing.T) WriteResult {
	t.Helper()
	select {
	case res := <-r.results:
		return res
	case <-time.After(15 * time.Second):
		t.Fatal("no write result within 15 s")
		return WriteResult{}
	}
}

// collect waits for n results, keyed by PSR (offers and checks) or work item (requeues).
func (r *writerRun) collect(t *testing.T, n int) map[string]WriteResult {
	t.Helper()
	out := map[string]WriteResult{}
	for range n {
		res := r.next(t)
		key := res.Command.PSR
		if res.Command.Type == routing.CommandRequeue {
			key = res.Command.WorkID
		}
		out[key] = res
	}
	return out
}

func (r *writerRun) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func declined(c routing.Command, o routing.Outcome) *routing.Event {
	return &routing.Event{Type: routing.EventOfferDeclined, WorkID: c.WorkID, AgentID: c.AgentID, Outcome: o}
}

// TestWriterInsertsOneAgentWork: one ready offer is one POST /sobjects/AgentWork carrying the
// command's weight, the channel's Id, the work item, the user and the PSR.
func TestWriterInsertsOneAgentWork(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	wr := o.work(t, "Chat")
	cmd := o.offer(wr, "Chat", 1)
	cmd.Weight = 3 // the PSR says 1: the writer copies what the engine sends
	r := o.startWriter(t, nil, cmd)

	res := r.next(t)
	require.Equal(t, cmd, res.Command)
	require.Nil(t, res.Event)
	require.NoError(t, res.Err)
	require.NotEmpty(t, res.AgentWorkID)
	require.False(t, res.Sent.IsZero())
	require.Equal(t, []string{"insert"}, o.proxy.requests())

	aws := o.agentWorks(wr.PSRID)
	require.Len(t, aws, 1)
	require.Equal(t, res.AgentWorkID, aws[0].ID)
	require.Equal(t, emulator.StatusAssigned, aws[0].Status)
	require.Equal(t, o.users[agent(1)], aws[0].UserID)
	require.Equal(t, wr.WorkItemID, aws[0].WorkItemID)
	var chat string
	for _, c := range o.org.Channels {
		if c.DeveloperName == "Chat" {
			chat = c.ID
		}
	}
	require.Equal(t, chat, aws[0].ServiceChannelID)
	for got, err := range salesforce.QueryAs[salesforce.AgentWork](t.Context(), o.client, "SELECT Id, CapacityWeight FROM AgentWork WHERE Id = '"+res.AgentWorkID+"'") {
		require.NoError(t, err)
		require.NotNil(t, got.CapacityWeight)
		require.InDelta(t, 3.0, *got.CapacityWeight, 1e-9)
	}
	require.InDelta(t, 1.0, r.counter(t, "writer_offers_total", "outcome", "created"), 0)
	require.InDelta(t, 1.0, r.counter(t, "writer_insert_batch_size"), 0)
}

// TestWriterBatchesWhileACallIsInFlight: with one slot (MaxInFlight 1), offers that arrive
// while an insert call is in flight, however spread out, go together in the next call, one
// sObject Collections request, and no timer delays a lone offer.
func TestWriterBatchesWhileACallIsInFlight(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1, 2, 3)
	inFlight := o.slowInserts(300 * time.Millisecond)
	r := o.startWriter(t, func(w *WriterOptions) { w.MaxInFlight = 1 })
	first := o.offer(o.work(t, "Chat"), "Chat", 1)
	later := o.caseOffers(t, 6)
	r.w.Do(first)
	<-inFlight
	for _, c := range later {
		r.w.Do(c)
		time.Sleep(5 * time.Millisecond) // the writer may look at its queue between offers
	}
	got := r.collect(t, 7)
	for _, c := range append(later, first) {
		res := got[c.PSR]
		require.NotEmpty(t, res.AgentWorkID, "offer of %s", c.WorkID)
		require.Nil(t, res.Event)
		require.Len(t, o.agentWorks(c.PSR), 1)
	}
	require.Equal(t, []string{"insert", "collection"}, o.proxy.requests())
	require.InDelta(t, 2.0, r.counter(t, "writer_insert_batch_size"), 0)
	// The first offer was sent at once: not held back for company.
	require.Less(t, got[first.PSR].Sent.Sub(got[first.PSR].ready), 50*time.Millisecond)
}

// TestWriterKeepsCallsInFlight: with MaxInFlight 2, an offer that comes while one insert call
// is in flight goes at once in a second call; offers that come while both are in flight wait
// for the first to end, and that one's slot takes them all in one call; never are more than
// two calls in flight.
func TestWriterKeepsCallsInFlight(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1, 2, 3)
	inFlight := o.slowInserts(300 * time.Millisecond)
	r := o.startWriter(t, func(w *WriterOptions) { w.MaxInFlight = 2 })
	first := o.offer(o.work(t, "Chat"), "Chat", 1)
	second := o.offer(o.work(t, "Chat"), "Chat", 2)
	later := o.caseOffers(t, 6)
	r.w.Do(first)
	<-inFlight
	r.w.Do(second)
	<-inFlight
	for _, c := range later {
		r.w.Do(c)
	}
	got := r.collect(t, 8)
	for _, c := range append(later, first, second) {
		require.NotEmpty(t, got[c.PSR].AgentWorkID, "offer of %s", c.WorkID)
		require.Nil(t, got[c.PSR].Event)
		require.Len(t, o.agentWorks(c.PSR), 1)
	}
	var calls []proxied
	for _, e := range o.proxy.entries() {
		if k := restKind(e.method, e.path); k == "insert" || k == "collection" {
			calls = append(calls, e)
		}
	}
	slices.SortFunc(calls, func(a, b proxied) int { return a.start.Compare(b.start) })
	require.Len(t, calls, 3)
	require.Equal(t, []string{"insert", "insert", "collection"},
		[]string{restKind(calls[0].method, calls[0].path), restKind(calls[1].method, calls[1].path), restKind(calls[2].method, calls[2].path)})
	require.True(t, calls[1].start.Before(calls[0].end), "the second offer waited for the first call to end")
	// The proxy notes a call's end after the emulator's handler returns, which may be after the
	// writer read the answer and sent the next call: the first call's answer comes no sooner
	// than its 300 ms hold, so a third call before that had no free slot.
	require.False(t, calls[2].start.Before(calls[0].start.Add(300*time.Millisecond)), "a third call while two were in flight")
	require.Less(t, got[second.PSR].Sent.Sub(got[second.PSR].ready), 50*time.Millisecond)
	require.InDelta(t, 3.0, r.counter(t, "writer_insert_batch_size"), 0)
}

// TestWriterInFlightReachesTheWriter: OMNIROUTE_WRITER_IN_FLIGHT defaults to 2 and becomes the
// writer's MaxInFlight; 17 is refused.
func TestWriterInFlightReachesTheWriter(t *testing.T) {
	t.Parallel()
	require.Equal(t, 2, DefaultConfig().WriterInFlight)
	c := validConfig()
	c.WriterInFlight = MaxMaxInFlight + 1
	require.ErrorContains(t, c.Validate(), "OMNIROUTE_WRITER_IN_FLIGHT: 17 is not 1 to 16")
	o := newWriterOrg(t, emulator.Options{})
	part, err := newWriter(writerDeps{Client: o.client, Org: o.org, InFlight: 3,
		Report: func(context.Context, WriteResult) error { return nil }})
	require.NoError(t, err)
	require.Equal(t, 3, part.(*drainWatch).writerPart.(*Writer).o.MaxInFlight)
}

// TestWriterResultsHoldTheSlotsBack: a router that does not take results holds the writer back.
// With one slot and one offer a call, the second call goes while the first one's results wait
// to be taken, and no third goes until they are; once they are, everything is reported.
func TestWriterResultsHoldTheSlotsBack(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1, 2, 3)
	var cmds []routing.Command
	for i := range 6 {
		cmds = append(cmds, o.offer(o.work(t, "Case"), "Case", 1+i%3))
	}
	release := make(chan struct{})
	got := make(chan WriteResult, len(cmds))
	o.startWriter(t, func(w *WriterOptions) {
		w.MaxInFlight, w.MaxBatch = 1, 1
		w.Report = func(ctx context.Context, res WriteResult) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			got <- res
			return nil
		}
	}, cmds...)
	require.Eventually(t, func() bool { return len(o.proxy.requests()) >= 2 }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, []string{"insert", "insert"}, o.proxy.requests(), "a third call before any result was taken")
	close(release)
	for range cmds {
		select {
		case res := <-got:
			require.NotEmpty(t, res.AgentWorkID)
		case <-time.After(15 * time.Second):
			t.Fatal("results not reported once taken")
		}
	}
	require.Len(t, o.proxy.requests(), len(cmds))
}

// TestWriterMaxBatch: a queue longer than MaxBatch is sent in calls of at most MaxBatch.
func TestWriterMaxBatch(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1, 2)
	var cmds []routing.Command
	for i := range 7 {
		cmds = append(cmds, o.offer(o.work(t, "Case"), "Case", 1+i%2))
	}
	r := o.startWriter(t, func(w *WriterOptions) { w.MaxBatch = 3 }, cmds...)
	got := r.collect(t, 7)
	for _, c := range cmds {
		require.NotEmpty(t, got[c.PSR].AgentWorkID)
	}
	// Two calls are in flight at once (MaxInFlight): they may end in either order.
	require.ElementsMatch(t, []string{"collection", "collection", "insert"}, o.proxy.requests())
	require.InDelta(t, 3.0, r.counter(t, "writer_insert_batch_size"), 0)
}

// TestWriterRefusedInsertsAreInsertFailed: every refusal, alone or per record of a collection,
// becomes EventOfferDeclined with OutcomeInsertFailed, counted by its error code; the others in
// the same call are created.
func TestWriterRefusedInsertsAreInsertFailed(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	good := o.offer(o.work(t, "Chat"), "Chat", 1)
	offline := o.offer(o.work(t, "Chat"), "Chat", 2) // agent02 is not online
	gone := o.work(t, "Chat")
	require.NoError(t, o.em.CancelWork(gone.WorkItemID)) // the customer left: the PSR is deleted
	psrGone := o.offer(gone, "Chat", 1)
	unknown := o.offer(o.work(t, "Chat"), "Chat", 1)
	unknown.Channel = "Fax" // no such channel: refused without a call

	r := o.startWriter(t, nil, good, offline, psrGone, unknown)
	got := r.collect(t, 4)
	require.NotEmpty(t, got[good.PSR].AgentWorkID)
	require.Nil(t, got[good.PSR].Event)
	for _, c := range []routing.Command{offline, psrGone, unknown} {
		require.Equal(t, declined(c, routing.OutcomeInsertFailed), got[c.PSR].Event, "offer of %s", c.WorkID)
		require.Empty(t, got[c.PSR].AgentWorkID)
		require.Empty(t, o.agentWorks(c.PSR))
	}
	require.Equal(t, []string{"collection"}, o.proxy.requests())
	require.InDelta(t, 1.0, r.counter(t, "writer_errors_total", "op", "insert", "code", "FIELD_INTEGRITY_EXCEPTION"), 0)
	require.InDelta(t, 1.0, r.counter(t, "writer_errors_total", "op", "insert", "code", "ENTITY_IS_DELETED"), 0)
	require.InDelta(t, 1.0, r.counter(t, "writer_errors_total", "op", "insert", "code", "invalid_command"), 0)
	require.InDelta(t, 3.0, r.counter(t, "writer_offers_total", "outcome", "refused"), 0)

	// Alone, the refusal comes from POST /sobjects/AgentWork's error array.
	o.proxy.reset()
	lone := o.offer(o.work(t, "Chat"), "Chat", 3)
	r.w.Do(lone)
	res := r.next(t)
	require.Equal(t, declined(lone, routing.OutcomeInsertFailed), res.Event)
	require.Equal(t, []string{"insert"}, o.proxy.requests())
	require.InDelta(t, 2.0, r.counter(t, "writer_errors_total", "op", "insert", "code", "FIELD_INTEGRITY_EXCEPTION"), 0)
}

// applyThen serves the request to the emulator (the insert is applied), then answers the client
// with a 500 (cut false) or with the real answer cut mid-body (cut true).
func applyThen(next http.Handler, w http.ResponseWriter, r *http.Request, cut bool) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	if !cut {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`[{"message":"An unexpected error occurred.","errorCode":"UNKNOWN_EXCEPTION"}]`))
		return
	}
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body[:len(body)/2])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

// once makes fault fire for the first matching request only.
func once(match func(*http.Request) bool, fault func(w http.ResponseWriter, r *http.Request)) func(http.ResponseWriter, *http.Request) bool {
	var mu sync.Mutex
	fired := false
	return func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if fired || !match(r) {
			return false
		}
		fired = true
		fault(w, r)
		return true
	}
}

// TestWriterUnknownOutcomeIsLookedUpNotRepeated: an insert Salesforce applied whose answer is
// lost (a 500 after the write, or a body cut mid-way), alone or in a collection, leaves exactly
// one AgentWork per PSR: the writer looks it up and reports it as created.
func TestWriterUnknownOutcomeIsLookedUpNotRepeated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		offers int
		cut    bool
	}{
		{"500 after apply, one insert", 1, false},
		{"cut body, one insert", 1, true},
		{"500 after apply, collection", 3, false},
		{"cut body, collection", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newWriterOrg(t, emulator.Options{})
			o.online(t, 1, 2, 3)
			var cmds []routing.Command
			for i := range tc.offers {
				cmds = append(cmds, o.offer(o.work(t, "Chat"), "Chat", 1+i))
			}
			o.proxy.setFault(once(isInsert, func(w http.ResponseWriter, r *http.Request) { applyThen(o.em, w, r, tc.cut) }))
			r := o.startWriter(t, nil, cmds...)
			got := r.collect(t, len(cmds))
			for _, c := range cmds {
				aws := o.agentWorks(c.PSR)
				require.Len(t, aws, 1, "exactly one AgentWork for %s", c.PSR)
				require.Equal(t, aws[0].ID, got[c.PSR].AgentWorkID)
				require.Nil(t, got[c.PSR].Event)
			}
			kind := "insert"
			if tc.offers > 1 {
				kind = "collection"
			}
			require.Equal(t, []string{kind, "query"}, o.proxy.requests())
			require.InDelta(t, float64(tc.offers), r.counter(t, "writer_offers_total", "outcome", "found"), 0)
		})
	}
}

// TestWriterUnknownOutcomeNotAppliedIsInsertedAgain: when the look-up finds nothing, the
// insert is certainly absent and is sent again.
func TestWriterUnknownOutcomeNotAppliedIsInsertedAgain(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	cmd := o.offer(o.work(t, "Chat"), "Chat", 1)
	o.proxy.setFault(once(isInsert, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway) // a gateway: did the org get it? unknown
	}))
	r := o.startWriter(t, nil, cmd)
	res := r.next(t)
	aws := o.agentWorks(cmd.PSR)
	require.Len(t, aws, 1)
	require.Equal(t, aws[0].ID, res.AgentWorkID)
	require.Nil(t, res.Event)
	require.Equal(t, []string{"insert", "query", "insert"}, o.proxy.requests())
	require.InDelta(t, 1.0, r.counter(t, "writer_errors_total", "op", "insert", "code", "BAD_GATEWAY"), 0)
}

// TestWriterUnknownOutcomeGivesUpOnlyWhenAbsent: with MaxAttempts inserts lost before reaching
// the org, the offer is reported as an insert failure, after a look-up said there is none.
func TestWriterUnknownOutcomeGivesUpOnlyWhenAbsent(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	cmd := o.offer(o.work(t, "Chat"), "Chat", 1)
	o.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if isInsert(r) {
			panic(http.ErrAbortHandler) // the connection drops before any answer
		}
		return false
	})
	r := o.startWriter(t, func(w *WriterOptions) { w.MaxAttempts = 2 }, cmd)
	res := r.next(t)
	require.Equal(t, declined(cmd, routing.OutcomeInsertFailed), res.Event)
	require.Empty(t, o.agentWorks(cmd.PSR))
	require.Equal(t, []string{"insert", "query", "insert", "query"}, o.proxy.requests())
}

// TestWriterLateApplyFoundByFinalLookup: the org applies a first insert only after the
// writer's look-up said it was absent (a request still in the server when the connection
// dropped). The second insert is refused (the PSR is pushed); a last look-up finds the first.
func TestWriterLateApplyFoundByFinalLookup(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	cmd := o.offer(o.work(t, "Chat"), "Chat", 1)
	var (
		mu      sync.Mutex
		held    *http.Request
		heldBuf []byte
		state   int // 0: first insert to hold; 1: held, apply after the next query
	)
	o.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case state == 0 && isInsert(r):
			state = 1
			buf := new(bytes.Buffer)
			_, _ = buf.ReadFrom(r.Body)
			held, heldBuf = r.Clone(context.WithoutCancel(r.Context())), buf.Bytes()
			panic(http.ErrAbortHandler)
		case state == 1 && restKind(r.Method, r.URL.Path) == "query":
			state = 2
			o.em.ServeHTTP(w, r) // answers "absent"
			held.Body = ioNopCloser(heldBuf)
			o.em.ServeHTTP(httptest.NewRecorder(), held) // then the first insert lands
			return true
		}
		return false
	})
	r := o.startWriter(t, nil, cmd)
	res := r.next(t)
	aws := o.agentWorks(cmd.PSR)
	require.Len(t, aws, 1)
	require.Equal(t, aws[0].ID, res.AgentWorkID)
	require.Nil(t, res.Event, "the offer stands")
	require.Equal(t, []string{"insert", "query", "insert", "query"}, o.proxy.requests())
	require.InDelta(t, 1.0, r.counter(t, "writer_errors_total", "op", "insert", "code", "FIELD_INTEGRITY_EXCEPTION"), 0)
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func ioNopCloser(b []byte) nopCloser { return nopCloser{bytes.NewReader(b)} }

// TestWriterRetriesWhatTheOrgDidNotApply: a 503 (Salesforce applied nothing) is sent again
// without a look-up; past MaxAttempts it is an insert failure.
func TestWriterRetriesWhatTheOrgDidNotApply(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	cmd := o.offer(o.work(t, "Chat"), "Chat", 1)
	require.NoError(t, o.em.InjectHTTPFault(emulator.HTTPFault{Status: 503, Count: 1, Scope: "rest"}))
	r := o.startWriter(t, nil, cmd)
	res := r.next(t)
	require.NotEmpty(t, res.AgentWorkID)
	require.Len(t, o.agentWorks(cmd.PSR), 1)
	require.Equal(t, []string{"insert", "insert"}, o.proxy.requests())
	require.InDelta(t, 1.0, r.counter(t, "writer_errors_total", "op", "insert", "code", "SERVER_UNAVAILABLE"), 0)

	cmd2 := o.offer(o.work(t, "Chat"), "Chat", 1)
	require.NoError(t, o.em.InjectHTTPFault(emulator.HTTPFault{Status: 503, Count: 3, Scope: "rest"}))
	r.w.Do(cmd2)
	res = r.next(t)
	require.Equal(t, declined(cmd2, routing.OutcomeInsertFailed), res.Event)
	require.Empty(t, o.agentWorks(cmd2.PSR))
}

// TestWriterLookupFailureIsRetriedNotInserted: a look-up that fails is made again after a
// wait; the insert is not repeated meanwhile.
func TestWriterLookupFailureIsRetriedNotInserted(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	cmd := o.offer(o.work(t, "Chat"), "Chat", 1)
	o.proxy.setFault(once(isInsert, func(w http.ResponseWriter, r *http.Request) {
		applyThen(o.em, w, r, false)
		require.NoError(t, o.em.InjectHTTPFault(emulator.HTTPFault{Status: 500, Count: 1, Scope: "rest"})) // the look-up fails
	}))
	r := o.startWriter(t, nil, cmd)
	res := r.next(t)
	aws := o.agentWorks(cmd.PSR)
	require.Len(t, aws, 1)
	require.Equal(t, aws[0].ID, res.AgentWorkID)
	require.Equal(t, []string{"insert", "query", "query"}, o.proxy.requests())
	require.InDelta(t, 1.0, r.counter(t, "writer_errors_total", "op", "lookup", "code", "UNKNOWN_EXCEPTION"), 0)
}

// TestWriterCheckOffer answers CommandCheckOffer from the AgentWork of the PSR and user, as
// docs/routing.md says, with look-ups only.
func TestWriterCheckOffer(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		now = time.Now()
	)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	o := newWriterOrg(t, emulator.Options{Now: clock})
	o.online(t, 1, 2, 3)
	assign := func(n int) (emulator.WorkResult, string, routing.Command) {
		wr := o.work(t, "Chat")
		id, err := o.em.AssignWork(wr.PSRID, agent(n))
		require.NoError(t, err)
		c := o.offer(wr, "Chat", n)
		c.Type, c.Weight, c.Reason = routing.CommandCheckOffer, 0, routing.ReasonOfferTimeout
		return wr, id, c
	}
	_, assignedID, assigned := assign(1)
	_, openedID, opened := assign(1)
	require.NoError(t, o.em.AcceptWork(openedID))
	_, closedID, closed := assign(1)
	require.NoError(t, o.em.AcceptWork(closedID))
	require.NoError(t, o.em.CloseWork(closedID))
	_, declinedID, decl := assign(2)
	require.NoError(t, o.em.DeclineWork(declinedID, "busy"))
	canceledWR, canceledID, canceled := assign(2)
	require.NoError(t, o.em.CancelWork(canceledWR.WorkItemID))
	_, timeoutID, timeout := assign(2)
	mu.Lock()
	now = now.Add(time.Minute) // past the 30 s push timeout of the other offers too
	mu.Unlock()
	o.em.RunTimers()
	_, unavailableID, unavailable := assign(3)
	require.NoError(t, o.em.SetPresence(agent(3), "Offline"))
	absentWR := o.work(t, "Chat")
	absent := o.offer(absentWR, "Chat", 1)
	absent.Type = routing.CommandCheckOffer

	// decl, canceled were decided before the clock moved; timeout was still Assigned.
	checks := []routing.Command{assigned, opened, closed, decl, canceled, timeout, unavailable, absent}
	// CheckWait -1: the offer-timeout checks go at once (TestWriterOfferTimeoutChecksShareAQuery).
	r := o.startWriter(t, func(wo *WriterOptions) { wo.CheckWait = -1 }, checks...)
	got := r.collect(t, len(checks))

	accepted := func(c routing.Command) *routing.Event {
		return &routing.Event{Type: routing.EventOfferAccepted, WorkID: c.WorkID, AgentID: c.AgentID}
	}
	require.Equal(t, assignedID, got[assigned.PSR].AgentWorkID)
	// assigned was Assigned when the clock moved: its push timeout fired too.
	require.Equal(t, declined(assigned, routing.OutcomePushTimeout), got[assigned.PSR].Event)
	require.Equal(t, openedID, got[opened.PSR].AgentWorkID)
	require.Equal(t, accepted(opened), got[opened.PSR].Event)
	require.Equal(t, accepted(closed), got[closed.PSR].Event)
	require.Equal(t, &routing.Event{Type: routing.EventWorkClosed, WorkID: closed.WorkID, AgentID: closed.AgentID}, got[closed.PSR].After)
	require.Equal(t, declined(decl, routing.OutcomeDeclined), got[decl.PSR].Event)
	require.Equal(t, canceledID, got[canceled.PSR].AgentWorkID)
	require.Equal(t, declined(canceled, routing.OutcomeDeclined), got[canceled.PSR].Event)
	require.Equal(t, timeoutID, got[timeout.PSR].AgentWorkID)
	require.Equal(t, declined(timeout, routing.OutcomePushTimeout), got[timeout.PSR].Event)
	require.Equal(t, unavailableID, got[unavailable.PSR].AgentWorkID)
	require.Equal(t, declined(unavailable, routing.OutcomeUnavailable), got[unavailable.PSR].Event)
	require.Empty(t, got[absent.PSR].AgentWorkID)
	require.Equal(t, declined(absent, routing.OutcomeInsertFailed), got[absent.PSR].Event)
	require.Equal(t, []string{"query"}, o.proxy.requests(), "one look-up for all the checks, never an insert")
	require.Empty(t, o.agentWorks(absentWR.PSRID))

	// Still Assigned: nothing to report; the engine checks again later.
	_, stillID, still := assign(1)
	r.w.Do(still)
	res := r.next(t)
	require.Equal(t, stillID, res.AgentWorkID)
	require.Nil(t, res.Event)
	require.NoError(t, res.Err)
	require.InDelta(t, 1.0, r.counter(t, "writer_checks_total", "result", "assigned"), 0)
}

// TestWriterCheckOfAnOfferItStillHolds: a check on an offer whose insert the writer has not
// settled makes no call and reports nothing; the offer's own result answers it.
func TestWriterCheckOfAnOfferItStillHolds(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	require.NoError(t, o.em.SetLatency(emulator.LatencyFault{MS: 400, Scope: "rest"}))
	cmd := o.offer(o.work(t, "Chat"), "Chat", 1)
	check := cmd
	check.Type, check.Weight = routing.CommandCheckOffer, 0
	r := o.startWriter(t, nil, cmd, check)
	first := r.next(t)
	require.Equal(t, check, first.Command)
	require.Nil(t, first.Event)
	require.NoError(t, first.Err)
	second := r.next(t)
	require.Equal(t, cmd, second.Command)
	require.NotEmpty(t, second.AgentWorkID)
	require.Equal(t, []string{"insert"}, o.proxy.requests())
	require.InDelta(t, 1.0, r.counter(t, "writer_checks_total", "result", "held"), 0)
}

// TestWriterOfferItStillHoldsIsOneInsert: an offer of a PSR to a user that the writer still
// holds an offer for (the engine offered the work again, as after a reconcile read while the
// first insert was in flight) is the same attempt: no second insert, whose refusal (the PSR is
// already pushed) would be reported as an insert failure of an offer that has its AgentWork;
// both are answered with the one AgentWork. Sent while the first is in flight (the other slot
// is free), and queued together (one collection). A refusal answers both too, and the next offer
// after the answer is a new attempt, sent; twins dropped at shutdown count as abandoned.
func TestWriterOfferItStillHoldsIsOneInsert(t *testing.T) {
	t.Parallel()
	t.Run("in flight", func(t *testing.T) {
		t.Parallel()
		o := newWriterOrg(t, emulator.Options{})
		o.online(t, 1)
		inFlight := o.slowInserts(300 * time.Millisecond)
		r := o.startWriter(t, nil)
		cmd := o.offer(o.work(t, "Chat"), "Chat", 1)
		r.w.Do(cmd)
		<-inFlight
		r.w.Do(cmd)
		a, b := r.next(t), r.next(t)
		aws := o.agentWorks(cmd.PSR)
		require.Len(t, aws, 1)
		for _, res := range []WriteResult{a, b} {
			require.Equal(t, cmd, res.Command)
			require.Nil(t, res.Event, "the offer has its AgentWork")
			require.Equal(t, aws[0].ID, res.AgentWorkID)
		}
		require.Equal(t, []string{"insert"}, o.proxy.requests())
		require.InDelta(t, 2.0, r.counter(t, "writer_offers_total", "outcome", "created"), 0)
	})
	t.Run("outcome unknown", func(t *testing.T) {
		t.Parallel()
		o := newWriterOrg(t, emulator.Options{})
		o.online(t, 1)
		cmd := o.offer(o.work(t, "Chat"), "Chat", 1)
		lookingUp := make(chan struct{}, 1)
		o.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			switch {
			case isInsert(r) && len(o.agentWorks(cmd.PSR)) == 0:
				applyThen(o.em, w, r, false) // applied, answered 500
				return true
			case restKind(r.Method, r.URL.Path) == "query":
				signal(lookingUp)
				time.Sleep(300 * time.Millisecond)
			}
			return false
		})
		r := o.startWriter(t, nil, cmd)
		<-lookingUp
		r.w.Do(cmd) // while the first insert's outcome is looked up
		a, b := r.next(t), r.next(t)
		aws := o.agentWorks(cmd.PSR)
		require.Len(t, aws, 1)
		for _, res := range []WriteResult{a, b} {
			require.Nil(t, res.Event, "the offer has its AgentWork")
			require.Equal(t, aws[0].ID, res.AgentWorkID)
		}
		require.Equal(t, []string{"insert", "query"}, o.proxy.requests())
	})
	t.Run("queued together", func(t *testing.T) {
		t.Parallel()
		o := newWriterOrg(t, emulator.Options{})
		o.online(t, 1, 2)
		cmd := o.offer(o.work(t, "Chat"), "Chat", 1)
		other := o.offer(o.work(t, "Chat"), "Chat", 2)
		r := o.startWriter(t, nil, cmd, other, cmd)
		got := []WriteResult{r.next(t), r.next(t), r.next(t)}
		aws := o.agentWorks(cmd.PSR)
		require.Len(t, aws, 1)
		n := 0
		for _, res := range got {
			require.Nil(t, res.Event, "offer of %s to %s", res.Command.WorkID, res.Command.AgentID)
			if res.Command == cmd {
				require.Equal(t, aws[0].ID, res.AgentWorkID)
				n++
			}
		}
		require.Equal(t, 2, n)
		require.Equal(t, []string{"collection"}, o.proxy.requests())
	})
	t.Run("refused, then a new attempt", func(t *testing.T) {
		t.Parallel()
		o := newWriterOrg(t, emulator.Options{})
		cmd := o.offer(o.work(t, "Chat"), "Chat", 2) // agent02 is not online: refused
		r := o.startWriter(t, nil, cmd, cmd)
		for range 2 {
			res := r.next(t)
			require.Equal(t, cmd, res.Command)
			require.Equal(t, declined(cmd, routing.OutcomeInsertFailed), res.Event)
		}
		require.Equal(t, []string{"insert"}, o.proxy.requests())
		require.InDelta(t, 2.0, r.counter(t, "writer_offers_total", "outcome", "refused"), 0)
		// Once answered, the offer is no longer held: the next offer of the PSR to the user is
		// a new attempt, sent.
		o.online(t, 2)
		r.w.Do(cmd)
		res := r.next(t)
		require.Nil(t, res.Event)
		require.NotEmpty(t, res.AgentWorkID)
		require.Equal(t, []string{"insert", "insert"}, o.proxy.requests())
	})
	t.Run("abandoned at shutdown", func(t *testing.T) {
		t.Parallel()
		o := newWriterOrg(t, emulator.Options{})
		o.online(t, 1, 2)
		inFlight := o.slowInserts(300 * time.Millisecond)
		r := o.startWriter(t, func(w *WriterOptions) { w.MaxInFlight = 1 })
		sent := o.offer(o.work(t, "Chat"), "Chat", 1)
		r.w.Do(sent)
		<-inFlight
		queued := o.offer(o.work(t, "Chat"), "Chat", 2) // behind the call: never sent
		r.w.Do(queued)
		r.w.Do(queued)
		r.shutdown(t, 10*time.Second)
		require.Equal(t, sent, r.next(t).Command)
		require.Equal(t, []string{"insert"}, o.proxy.requests())
		require.InDelta(t, 2.0, r.counter(t, "writer_offers_total", "outcome", "abandoned"), 0)
	})
}

// TestWriterRequeue moves work items to a queue by their OwnerId, so the org makes a new PSR;
// several go in one collection update. A queue the writer cannot resolve is an error.
func TestWriterRequeue(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	cs, ms := o.accepted(t, "Case", 1), o.accepted(t, "Messaging", 1)
	requeue := func(wr emulator.WorkResult, channel, queue string) routing.Command {
		return routing.Command{Type: routing.CommandRequeue, WorkID: wr.WorkItemID, Channel: channel,
			Target: routing.TargetQueue, TargetID: queue, Plan: "german"}
	}
	var deID string
	for _, q := range o.org.Queues {
		if q.DeveloperName == "Support_DE" {
			deID = q.ID
		}
	}
	toCase, toMS := requeue(cs, "Case", "Support_DE"), requeue(ms, "Messaging", deID)
	bad := requeue(o.accepted(t, "Chat", 1), "Chat", "No_Such_Queue")
	r := o.startWriter(t, nil, toCase, toMS, bad)
	got := r.collect(t, 3)
	require.NoError(t, got[cs.WorkItemID].Err)
	require.NoError(t, got[ms.WorkItemID].Err)
	require.Error(t, got[bad.WorkID].Err)
	require.Equal(t, []string{"update_collection"}, o.proxy.requests())
	for _, wr := range []emulator.WorkResult{cs, ms} {
		n := 0
		for psr, err := range salesforce.QueryAs[salesforce.PendingServiceRouting](t.Context(), o.client,
			"SELECT Id, GroupId, IsTransfer FROM PendingServiceRouting WHERE WorkItemId = '"+wr.WorkItemID+"'") {
			require.NoError(t, err)
			require.Equal(t, deID, psr.GroupID)
			require.NotEqual(t, wr.PSRID, psr.ID)
			n++
		}
		require.Equal(t, 1, n, "a new PSR for %s", wr.WorkItemID)
	}
	require.InDelta(t, 2.0, r.counter(t, "writer_requeues_total", "result", "moved"), 0)
	require.InDelta(t, 1.0, r.counter(t, "writer_requeues_total", "result", "failed"), 0)

	// Alone: one PATCH.
	o.proxy.reset()
	one := requeue(o.accepted(t, "Case", 1), "Case", "Billing")
	r.w.Do(one)
	require.NoError(t, r.next(t).Err)
	require.Equal(t, []string{"update"}, o.proxy.requests())
}

// TestWriterAPIBudget: above the budget share the writer says so (log, gauge, OverBudget) and
// a check waits until the inserts queued with it are done.
func TestWriterAPIBudget(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{DailyAPILimit: 1000})
	o.online(t, 1, 2)
	r := o.startWriter(t, func(w *WriterOptions) { w.APIBudgetShare = 0.5 })
	first := o.offer(o.work(t, "Chat"), "Chat", 1)
	r.w.Do(first)
	r.next(t)
	require.False(t, r.w.OverBudget())
	require.InDelta(t, 0.0, r.counter(t, "writer_api_budget_exceeded"), 0)

	o.em.ExhaustAPILimit()
	o.em.ResetAPILimit() // usage 0 again...
	_, err := o.em.CreateRecords("Case", 1, nil)
	require.NoError(t, err)
	for range 600 { // ...then 600 of 1,000 used by someone else
		for _, err := range o.client.Query(t.Context(), "SELECT Id FROM User LIMIT 1") {
			require.NoError(t, err)
		}
	}
	require.NoError(t, o.em.SetLatency(emulator.LatencyFault{MS: 150, Scope: "rest"}))
	second := o.offer(o.work(t, "Chat"), "Chat", 2)
	r.w.Do(second)
	r.next(t) // this answer carries usage above half
	require.True(t, r.w.OverBudget())
	require.InDelta(t, 1.0, r.counter(t, "writer_api_budget_exceeded"), 0)
	require.Contains(t, r.logs.String(), "API usage above the budget share")

	o.proxy.reset()
	check := first
	check.Type = routing.CommandCheckOffer
	third := o.offer(o.work(t, "Chat"), "Chat", 2)
	r.w.Do(third)
	r.w.Do(check)
	r.collect(t, 2)
	log := o.proxy.entries()
	var insertEnd, queryStart time.Time
	for _, e := range log {
		switch restKind(e.method, e.path) {
		case "insert":
			insertEnd = e.end
		case "query":
			queryStart = e.start
		}
	}
	require.False(t, insertEnd.IsZero())
	require.False(t, queryStart.IsZero())
	require.False(t, queryStart.Before(insertEnd), "over budget, the check waits for the insert")
}

// TestWriterAPIBudgetSwitchesInOrder: two calls ending together may switch the budget mode
// in opposite directions (the writer keeps several in flight); each switch is one step, so
// the gauge ends as OverBudget says and the log tells the switches in their order. The first
// switch (over) is held between its decision and its gauge while the second (back under)
// runs: the second must wait for it.
func TestWriterAPIBudgetSwitchesInOrder(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	r := o.startWriter(t, func(w *WriterOptions) { w.APIBudgetShare = 0.5 })
	entered, release := make(chan bool, 2), make(chan struct{})
	r.w.budgetSwitching = func(over bool) {
		entered <- over
		if over {
			<-release
		}
	}
	overDone, underDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(overDone)
		r.w.switchBudget(salesforce.APIUsage{Used: 600, Max: 1000, Seen: true})
	}()
	require.True(t, <-entered)
	go func() {
		defer close(underDone)
		r.w.switchBudget(salesforce.APIUsage{Used: 100, Max: 1000, Seen: true})
	}()
	// The second switch either ends (and is applied first) or waits for the first one.
	deadline := time.Now().Add(10 * time.Second)
	for waiting := false; !waiting; {
		select {
		case <-underDone:
			waiting = true
		default:
			// This test's goroutine, not a switch of another test's writer.
			waiting = goroutineWaits("[sync.Mutex.Lock", "(*Writer).switchBudget", "TestWriterAPIBudgetSwitchesInOrder.func")
			require.True(t, time.Now().Before(deadline), "the second switch neither ended nor waited")
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	<-overDone
	<-underDone
	require.False(t, r.w.OverBudget(), "the last switch is back under")
	require.InDelta(t, 0.0, r.counter(t, "writer_api_budget_exceeded"), 0, "the gauge says what OverBudget says")
	logs := r.logs.String()
	above, below := strings.Index(logs, "API usage above the budget share"), strings.Index(logs, "API usage back below the budget share")
	require.True(t, above >= 0 && below > above, "the switches logged in their order: %s", logs)
}

// goroutineWaits reports whether a goroutine with each of fns in its stack waits, its state
// beginning with state (as in a goroutine dump: "[sync.Mutex.Lock", "[chan receive").
func goroutineWaits(state string, fns ...string) bool {
	// A dump that fills the buffer may be cut short: the goroutine sought may be past the cut.
	buf := make([]byte, 1<<20)
	for {
		if n := runtime.Stack(buf, true); n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, state) && !slices.ContainsFunc(fns, func(fn string) bool { return !strings.Contains(g, fn) }) {
			return true
		}
	}
	return false
}

// TestGoroutineWaitsSeesEveryGoroutine: goroutineWaits finds a waiting goroutine however
// many others run (the package's tests run in parallel: the dump can be long), and only one
// that waits in the state asked for.
func TestGoroutineWaitsSeesEveryGoroutine(t *testing.T) {
	t.Parallel()
	quit := make(chan struct{})
	var others sync.WaitGroup
	for range 5000 {
		others.Go(func() { <-quit })
	}
	defer func() { close(quit); others.Wait() }()
	var mu sync.Mutex
	mu.Lock()
	locked := make(chan struct{})
	go func() {
		defer close(locked)
		mu.Lock()
		mu.Unlock() //nolint:staticcheck // the lock is the wait
	}()
	require.Eventually(t, func() bool { return goroutineWaits("[sync.Mutex.Lock", "TestGoroutineWaitsSeesEveryGoroutine.func") },
		10*time.Second, time.Millisecond, "the goroutine waiting on the mutex is found")
	require.False(t, goroutineWaits("[select", "TestGoroutineWaitsSeesEveryGoroutine.func"), "nor one in another state")
	mu.Unlock()
	<-locked
}

// TestWriterAPIBudgetRetryGoesFirst: over budget, an offer of a call that Salesforce could not
// take for now (UNABLE_TO_LOCK_ROW) is still the writer's to insert while that call's other
// results are reported: a check queued meanwhile waits for the retried insert.
func TestWriterAPIBudgetRetryGoesFirst(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{DailyAPILimit: 1000})
	o.online(t, 1, 2)
	refused := o.offer(o.work(t, "Chat"), "Chat", 1)
	locked := o.offer(o.work(t, "Chat"), "Chat", 2)
	check := o.offer(o.work(t, "Chat"), "Chat", 1)
	check.Type, check.Weight = routing.CommandCheckOffer, 0
	o.proxy.setFault(once(func(r *http.Request) bool { return restKind(r.Method, r.URL.Path) == "collection" },
		func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Sforce-Limit-Info", "api-usage=900/1000")
			_, _ = w.Write([]byte(`[{"success":false,"errors":[{"errorCode":"FIELD_INTEGRITY_EXCEPTION","message":"not available"}]},` +
				`{"success":false,"errors":[{"errorCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access to this record"}]}]`))
		}))
	reporting, release := make(chan struct{}), make(chan struct{})
	got := make(chan WriteResult, 3)
	r := o.startWriter(t, func(w *WriterOptions) {
		w.APIBudgetShare = 0.5
		w.Report = func(ctx context.Context, res WriteResult) error {
			if res.Command.PSR == refused.PSR {
				close(reporting)
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			got <- res
			return nil
		}
	}, refused, locked)
	let := sync.OnceFunc(func() { close(release) })
	t.Cleanup(let)
	<-reporting // the call is answered; its refusal is being reported
	require.True(t, r.w.OverBudget())
	r.w.Do(check)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, []string{"collection"}, o.proxy.requests(), "over budget, a check before the insert to retry")
	let()
	results := map[string]WriteResult{}
	for range 3 {
		select {
		case res := <-got:
			results[res.Command.PSR] = res
		case <-time.After(10 * time.Second):
			t.Fatalf("results: %v", results)
		}
	}
	require.Equal(t, declined(refused, routing.OutcomeInsertFailed), results[refused.PSR].Event)
	require.NotEmpty(t, results[locked.PSR].AgentWorkID)
	require.Equal(t, []string{"collection", "insert", "query"}, o.proxy.requests())
}

// TestWriterShutdown: once Run's context is done, the calls in flight (both slots of the
// default MaxInFlight) finish and are reported; what was never sent is dropped and counted.
func TestWriterShutdown(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1, 2)
	inFlight := o.slowInserts(300 * time.Millisecond)
	r := o.startWriter(t, nil)
	cmds := []routing.Command{o.offer(o.work(t, "Chat"), "Chat", 1), o.offer(o.work(t, "Chat"), "Chat", 2)}
	for _, c := range cmds {
		r.w.Do(c)
		<-inFlight
	}
	r.w.Do(o.offer(o.work(t, "Chat"), "Chat", 1)) // queued behind the calls: never sent
	time.Sleep(50 * time.Millisecond)             // however long the writer has to look at it
	r.shutdown(t, 10*time.Second)
	got := r.collect(t, len(cmds))
	for _, c := range cmds {
		require.NotEmpty(t, got[c.PSR].AgentWorkID)
		require.Len(t, o.agentWorks(c.PSR), 1)
	}
	require.Equal(t, []string{"insert", "insert"}, o.proxy.requests())
	require.InDelta(t, 1.0, r.counter(t, "writer_offers_total", "outcome", "abandoned"), 0)
}

// TestWriterShutdownDrainTimeout: a call that outlives DrainTimeout is cancelled, and Run
// returns in time.
func TestWriterShutdownDrainTimeout(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	inFlight := make(chan struct{}, 1)
	o.proxy.setFault(func(_ http.ResponseWriter, r *http.Request) bool {
		if isInsert(r) {
			_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client going away
			signal(inFlight)
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return true
		}
		return false
	})
	r := o.startWriter(t, func(w *WriterOptions) { w.DrainTimeout = 300 * time.Millisecond })
	r.w.Do(o.offer(o.work(t, "Chat"), "Chat", 1))
	<-inFlight
	start := time.Now()
	r.shutdown(t, 5*time.Second)
	require.Less(t, time.Since(start), 3*time.Second)
}

// TestWriterOptions: missing parts and out-of-range values are reported together.
func TestWriterOptions(t *testing.T) {
	t.Parallel()
	_, err := NewWriter(WriterOptions{MaxBatch: 500, APIBudgetShare: 1.5, MaxInFlight: -1})
	require.Error(t, err)
	for _, want := range []string{"client", "channel", "Report", "MaxBatch 500", "APIBudgetShare 1.5", "MaxInFlight -1"} {
		require.Contains(t, err.Error(), want)
	}
	o := newWriterOrg(t, emulator.Options{})
	opts := WriterOptions{Client: o.client, Report: func(context.Context, WriteResult) error { return nil }}
	opts.UseOrg(o.org)
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	_, err = NewWriter(opts)
	require.NoError(t, err)
	_, err = NewWriter(opts)
	require.ErrorContains(t, err, "register agentwork writer metrics", "a second writer on one registry")
	w, err := NewWriter(WriterOptions{Client: o.client, Channels: map[string]string{"Chat": "x"}, Report: opts.Report})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, w.Run(ctx))
	require.Error(t, w.Run(ctx), "Run twice")
}

// TestWriterMetricsLint: the writer's metrics pass promlint, and no label carries an id.
func TestWriterMetricsLint(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	cmd := o.offer(o.work(t, "Chat"), "Chat", 1)
	bad := o.offer(o.work(t, "Chat"), "Chat", 2)
	check := cmd
	check.Type = routing.CommandCheckOffer
	r := o.startWriter(t, nil, cmd, bad)
	r.collect(t, 2)
	r.w.Do(check)
	r.next(t)
	problems, err := testutil.GatherAndLint(r.reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		require.True(t, strings.HasPrefix(mf.GetName(), "writer_"), mf.GetName())
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				require.False(t, salesforceID(lp.GetValue()), "%s{%s=%q}", mf.GetName(), lp.GetName(), lp.GetValue())
				for _, id := range []string{cmd.WorkID, cmd.PSR, cmd.AgentID, bad.AgentID} {
					require.NotContains(t, lp.GetValue(), id)
				}
			}
		}
	}
}

// TestClassify pins which failures are refusals, retries and unknown outcomes.
func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err   error
		class string
		code  string
	}{
		{&salesforce.APIError{Status: 400, Code: "FIELD_INTEGRITY_EXCEPTION"}, classRefused, "FIELD_INTEGRITY_EXCEPTION"},
		{&salesforce.APIError{Status: 200, Code: "SOMETHING_NEW"}, classRefused, "other"},
		{&salesforce.APIError{Status: 403, Code: salesforce.CodeRequestLimitExceeded}, classRefused, salesforce.CodeRequestLimitExceeded},
		{&salesforce.APIError{Status: 403, Code: salesforce.CodeRequestLimitExceeded, Retryable: true}, classRetry, salesforce.CodeRequestLimitExceeded},
		{&salesforce.APIError{Status: 200, Code: salesforce.CodeUnableToLockRow}, classRetry, salesforce.CodeUnableToLockRow},
		{&salesforce.APIError{Status: 503, Code: "SERVER_UNAVAILABLE"}, classRetry, "SERVER_UNAVAILABLE"},
		{&salesforce.APIError{Status: 500, Code: "UNKNOWN_EXCEPTION"}, classUnknown, "UNKNOWN_EXCEPTION"},
		{&salesforce.APIError{Status: 504, Code: "GATEWAY_TIMEOUT"}, classUnknown, "GATEWAY_TIMEOUT"},
		{fmt.Errorf("create: %w", errors.New("unexpected EOF")), classUnknown, "network"},
		{context.Canceled, classUnknown, "canceled"},
		{&salesforce.TokenError{Status: 500}, classRetry, "token"},
	} {
		class, code := classify(tc.err)
		require.Equal(t, tc.class, class, "%v", tc.err)
		require.Equal(t, tc.code, code, "%v", tc.err)
	}
}

// TestWriterCheckFailures: a check whose look-up fails, or that names a malformed id, is
// answered with an error and no event (the engine checks again later), and nothing is inserted.
func TestWriterCheckFailures(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	wr := o.work(t, "Chat")
	_, err := o.em.AssignWork(wr.PSRID, agent(1))
	require.NoError(t, err)
	check := o.offer(wr, "Chat", 1)
	check.Type = routing.CommandCheckOffer
	malformed := check
	malformed.PSR = "0JR'; DELETE"
	require.NoError(t, o.em.InjectHTTPFault(emulator.HTTPFault{Status: 500, Count: 1, Scope: "rest"}))
	r := o.startWriter(t, nil, malformed, check)
	for range 2 {
		res := r.next(t)
		require.Error(t, res.Err)
		require.Nil(t, res.Event)
		require.Empty(t, res.AgentWorkID)
	}
	require.Equal(t, []string{"query"}, o.proxy.requests(), "the malformed id never reaches a query")
	require.InDelta(t, 2.0, r.counter(t, "writer_checks_total", "result", "failed"), 0)
	require.InDelta(t, 1.0, r.counter(t, "writer_errors_total", "op", "check", "code", "UNKNOWN_EXCEPTION"), 0)
	require.InDelta(t, 1.0, r.counter(t, "writer_errors_total", "op", "check", "code", "invalid_command"), 0)

	// The next check works.
	r.w.Do(check)
	res := r.next(t)
	require.NoError(t, res.Err)
	require.NotEmpty(t, res.AgentWorkID)
}

// TestWriterRequeueFailures: a requeue Salesforce refuses (a work item that does not exist),
// alone or beside one that works, and one whose work item type is unknown, each come back
// with an error; the others are carried out.
func TestWriterRequeueFailures(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	wr := o.accepted(t, "Case", 1)
	move := routing.Command{Type: routing.CommandRequeue, WorkID: wr.WorkItemID, Channel: "Case", Target: routing.TargetQueue, TargetID: "Billing"}
	missing := move
	missing.WorkID = "500000000000042AAA"
	untyped := move
	untyped.WorkID, untyped.Channel = "0XX000000000042AAA", "Fax"
	r := o.startWriter(t, nil, move, missing, untyped)
	got := r.collect(t, 3)
	require.NoError(t, got[move.WorkID].Err)
	require.Error(t, got[missing.WorkID].Err)
	require.ErrorContains(t, got[untyped.WorkID].Err, "unknown work item type")
	require.Equal(t, []string{"update_collection"}, o.proxy.requests())
	require.InDelta(t, 2.0, r.counter(t, "writer_requeues_total", "result", "failed"), 0)

	r.w.Do(missing)
	res := r.next(t)
	require.Error(t, res.Err)
	require.True(t, salesforce.IsNotFound(res.Err) || strings.Contains(res.Err.Error(), "INVALID_CROSS_REFERENCE_KEY"), "%v", res.Err)
}

// writerTransport serves requests in memory (synctest allows no real network) and lets a test
// answer some of them itself.
type writerTransport struct {
	h     http.Handler
	mu    sync.Mutex
	fault func(r *http.Request) *http.Response
	kinds []string
}

func (tr *writerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tr.mu.Lock()
	if k := restKind(r.Method, r.URL.Path); k != "" {
		tr.kinds = append(tr.kinds, k)
	}
	fault := tr.fault
	tr.mu.Unlock()
	if fault != nil {
		if resp := fault(r); resp != nil {
			return resp, nil
		}
	}
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func (tr *writerTransport) count(kind string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, k := range tr.kinds {
		if k == kind {
			n++
		}
	}
	return n
}

// TestWriterLookupBacksOff runs on a fake clock: an insert applied whose answer is lost, then a
// look-up that keeps failing. The look-up is made again with growing waits (not in a tight
// loop, not more than a handful of times in 10 s), the insert is never sent again, and once the
// org answers, the AgentWork is found.
func TestWriterLookupBacksOff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		em, err := emulator.New(emulator.Options{Seed: emulator.DemoSeed()})
		require.NoError(t, err)
		defer em.Close()
		tr := &writerTransport{h: em}
		hc := &http.Client{Transport: tr}
		ts, err := salesforce.NewTokenSource(salesforce.TokenOptions{
			Grant: salesforce.GrantPassword, LoginURL: "http://org.test", ClientID: emulator.DemoClientID,
			ClientSecret: emulator.DemoClientSecret, Username: emulator.DemoUsername, Password: emulator.DemoPassword, HTTPClient: hc,
		})
		require.NoError(t, err)
		client, err := salesforce.New(salesforce.Options{Tokens: ts, HTTPClient: hc, MaxRetries: -1})
		require.NoError(t, err)
		org, err := ReadOrg(t.Context(), client)
		require.NoError(t, err)
		var userID string
		type user struct {
			ID string `json:"Id"`
		}
		for u, err := range salesforce.QueryAs[user](t.Context(), client, "SELECT Id FROM User WHERE Username = '"+agent(1)+"'") {
			require.NoError(t, err)
			userID = u.ID
		}
		require.NoError(t, em.SetPresence(agent(1), "Available"))
		wr, err := em.CreateWork(emulator.WorkRequest{Channel: "Chat", Queue: "Support_EN"})
		require.NoError(t, err)

		var failing sync.Mutex
		broken := true
		serverError := func() *http.Response {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "application/json")
			rec.WriteHeader(http.StatusInternalServerError)
			_, _ = rec.WriteString(`[{"message":"An unexpected error occurred.","errorCode":"UNKNOWN_EXCEPTION"}]`)
			return rec.Result()
		}
		tr.mu.Lock()
		tr.kinds = nil // the start-up reads are not the writer's
		tr.fault = func(r *http.Request) *http.Response {
			switch restKind(r.Method, r.URL.Path) {
			case "insert":
				if tr.count("insert") == 1 { // the first insert
					em.ServeHTTP(httptest.NewRecorder(), r) // applied...
					return serverError()                    // ...answer lost
				}
			case "query":
				failing.Lock()
				defer failing.Unlock()
				if broken {
					return serverError()
				}
			}
			return nil
		}
		tr.mu.Unlock()

		results := make(chan WriteResult, 1)
		opts := WriterOptions{Client: client, Report: func(_ context.Context, r WriteResult) error {
			results <- r
			return nil
		}}
		opts.UseOrg(org)
		w, err := NewWriter(opts)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		w.Do(routing.Command{Type: routing.CommandOffer, WorkID: wr.WorkItemID, PSR: wr.PSRID, AgentID: userID, Channel: "Chat", Weight: 1})

		time.Sleep(10 * time.Second)
		synctest.Wait()
		queries := tr.count("query")
		require.GreaterOrEqual(t, queries, 4, "the look-up is retried")
		require.LessOrEqual(t, queries, 11, "with growing waits (250 ms, x1.5, ±50%), not in a loop")
		require.Equal(t, 1, tr.count("insert"), "never inserted again while the outcome is unknown")
		require.Empty(t, results)

		failing.Lock()
		broken = false
		failing.Unlock()
		time.Sleep(time.Minute)
		synctest.Wait()
		res := <-results
		require.NotEmpty(t, res.AgentWorkID)
		require.Nil(t, res.Event)
		require.Equal(t, 1, tr.count("insert"))
		cancel()
		require.NoError(t, <-done)
	})
}

// queries counts the SOQL queries the emulator served.
func (o *writerOrg) queries() int {
	n := 0
	for _, r := range o.em.Requests() {
		if r.Method == http.MethodGet && strings.Contains(r.Path, "/query") {
			n++
		}
	}
	return n
}

// TestWriterOfferTimeoutChecksShareAQuery: checks because offers timed out, arriving one by
// one, share one query (they wait up to CheckWait); a check because a PSR was deleted goes at
// once and takes them along; alone, they go when CheckWait has passed.
func TestWriterOfferTimeoutChecksShareAQuery(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	check := func(reason routing.Reason) routing.Command {
		wr := o.work(t, "Chat")
		_, err := o.em.AssignWork(wr.PSRID, agent(1))
		require.NoError(t, err)
		c := o.offer(wr, "Chat", 1)
		c.Type, c.Weight, c.Reason = routing.CommandCheckOffer, 0, reason
		return c
	}
	var timedOut []routing.Command
	for range 3 {
		timedOut = append(timedOut, check(routing.ReasonOfferTimeout))
	}
	deleted := check(routing.ReasonPSRDeleted)
	before := o.queries()
	r := o.startWriter(t, nil)
	for _, c := range timedOut {
		r.w.Do(c)
		time.Sleep(150 * time.Millisecond)
	}
	require.Equal(t, before, o.queries(), "offer-timeout checks wait for company")
	r.w.Do(deleted)
	got := r.collect(t, 4)
	require.Len(t, got, 4)
	require.Equal(t, before+1, o.queries(), "one query for the four checks")

	// Alone, they go once CheckWait has passed.
	r2 := o.startWriter(t, func(wo *WriterOptions) { wo.CheckWait = 300 * time.Millisecond })
	start := time.Now()
	before = o.queries()
	for _, c := range timedOut {
		r2.w.Do(c)
	}
	require.Len(t, r2.collect(t, 3), 3)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	require.Equal(t, before+1, o.queries())
}

// TestWriterShutdownDropsWaitingChecks: an offer-timeout check still waiting for company
// (CheckWait) does not hold up a shutdown, and is dropped, not sent: a check never writes,
// and the next start's reconcile reads the offer's AgentWork.
func TestWriterShutdownDropsWaitingChecks(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	wr := o.work(t, "Chat")
	_, err := o.em.AssignWork(wr.PSRID, agent(1))
	require.NoError(t, err)
	c := o.offer(wr, "Chat", 1)
	c.Type, c.Weight, c.Reason = routing.CommandCheckOffer, 0, routing.ReasonOfferTimeout
	before := o.queries()
	r := o.startWriter(t, func(wo *WriterOptions) { wo.CheckWait = time.Minute })
	r.w.Do(c)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	r.shutdown(t, 5*time.Second)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Equal(t, before, o.queries(), "a waiting check was sent at shutdown")
	require.Empty(t, r.results, "a dropped check has no answer")
	require.Contains(t, r.logs.String(), "checks=1")
}
