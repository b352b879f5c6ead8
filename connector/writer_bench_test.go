package connector

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// BenchmarkWriter offers AgentWork inserts to the writer at a steady rate against the emulator
// over loopback, with a REST latency of 100 ms ± 30 ms (uniform) added by a proxy in front of
// it (the emulator's own latency fault is fixed, without jitter). One b.N iteration is one
// second of offered load: -benchtime=60x runs 60 s per rate, -benchtime=1x is the smoke run.
//
// Reported per rate:
//   - calls/item: REST calls the writer made per routed item (inserts and look-ups);
//   - wait-p50-ms, wait-p99-ms: from Do to the request that carried the item being sent, the
//     wait for an insert call already in flight included;
//   - added-p99-ms: the same, less that wait: from when the item could first go (Do, or the end
//     of the call in flight then) to its request being sent;
//   - routed/s: items created per second of offered load (per second of the run if the last
//     result came later than b.N seconds after the first offer).
func BenchmarkWriter(b *testing.B) {
	for _, rate := range []int{1, 100, 500, 1000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) { benchWriter(b, rate) })
	}
}

// latencyProxy delays every REST request by 100 ms ± 30 ms and counts them. With split, half
// of the delay comes before the request reaches next and half after next answered (the answer
// is held, then written), as on a network: the org's work on a request then happens mid-call,
// not at the instant the answer reaches the client.
type latencyProxy struct {
	next  http.Handler
	split bool
	calls atomic.Int64
	mu    sync.Mutex
	rng   *mrand.Rand
}

func (p *latencyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/services/data/") {
		p.next.ServeHTTP(w, r)
		return
	}
	p.calls.Add(1)
	p.mu.Lock()
	d := 70*time.Millisecond + time.Duration(p.rng.Int64N(int64(60*time.Millisecond)))
	p.mu.Unlock()
	if !p.split {
		time.Sleep(d)
		p.next.ServeHTTP(w, r)
		return
	}
	time.Sleep(d / 2)
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, r)
	time.Sleep(d - d/2)
	writeWhole(w, rec.Code, rec.Header(), rec.Body.Bytes())
}

// benchOrg is the demo org made to measure the writer rather than the emulator: 500 agents
// with room for everything (the emulator sums an agent's open AgentWork on every insert, and
// nobody accepts in this benchmark), no push timeout (its timers would double the emulator's
// work half-way), and a bounded event retention.
func benchOrg(b *testing.B) *emulator.Emulator {
	seed := benchSeed(500)
	em, err := emulator.New(emulator.Options{Seed: seed, RandSeed: 1, MaxEvents: 20_000})
	require.NoError(b, err)
	return em
}

func benchWriter(b *testing.B, rate int) {
	em := benchOrg(b)
	defer em.Close()
	proxy := &latencyProxy{next: em, rng: mrand.New(mrand.NewPCG(1, 2))}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	ts, err := salesforce.NewTokenSource(salesforce.TokenOptions{
		Grant: salesforce.GrantPassword, LoginURL: srv.URL, ClientID: emulator.DemoClientID,
		ClientSecret: emulator.DemoClientSecret, Username: emulator.DemoUsername, Password: emulator.DemoPassword,
	})
	require.NoError(b, err)
	client, err := salesforce.New(salesforce.Options{Tokens: ts, CallOptionsClient: CallOptionsClient})
	require.NoError(b, err)
	ctx := context.Background()
	org, err := ReadOrg(ctx, client)
	require.NoError(b, err)
	type user struct {
		ID       string `json:"Id"`
		Username string `json:"Username"`
	}
	var agents []string
	for u, err := range salesforce.QueryAs[user](ctx, client, "SELECT Id, Username FROM User") {
		require.NoError(b, err)
		if u.Username == emulator.DemoUsername {
			continue
		}
		require.NoError(b, em.SetPresence(u.Username, "Available"))
		agents = append(agents, u.ID)
	}
	require.NotEmpty(b, agents)

	// The work exists before the clock starts: creating it is the emulator's cost, not ours.
	total := rate * b.N
	cmds := make([]routing.Command, total)
	for i := range cmds {
		wr, err := em.CreateWork(emulator.WorkRequest{Channel: "Chat", Queue: "Support_EN"})
		require.NoError(b, err)
		cmds[i] = routing.Command{Type: routing.CommandOffer, WorkID: wr.WorkItemID, PSR: wr.PSRID,
			AgentID: agents[i%len(agents)], Channel: "Chat", Weight: 1}
	}

	results := make(chan WriteResult, total)
	opts := WriterOptions{Client: client, Report: func(ctx context.Context, r WriteResult) error {
		select {
		case results <- r:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	opts.UseOrg(org)
	w, err := NewWriter(opts)
	require.NoError(b, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() {
		stop()
		require.NoError(b, <-done)
	}()

	proxy.calls.Store(0)
	doAt := make(map[string]time.Time, total)
	var doMu sync.Mutex
	b.ResetTimer()
	start := time.Now()
	go func() {
		interval := time.Second / time.Duration(rate)
		for i, c := range cmds {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			doMu.Lock()
			doAt[c.PSR] = time.Now()
			doMu.Unlock()
			w.Do(c)
		}
	}()
	var waits, added []time.Duration
	routed := 0
	for range total {
		var r WriteResult
		select {
		case r = <-results:
		case <-time.After(30 * time.Second):
			b.Fatalf("no result within 30 s (%d of %d)", routed, total)
		}
		require.NotEmpty(b, r.AgentWorkID, "offer of %s: %+v", r.Command.WorkID, r.Event)
		routed++
		doMu.Lock()
		at := doAt[r.Command.PSR]
		doMu.Unlock()
		waits = append(waits, r.Sent.Sub(at))
		added = append(added, r.Sent.Sub(r.ready))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	calls := proxy.calls.Load()

	b.ReportMetric(float64(calls)/float64(routed), "calls/item")
	b.ReportMetric(ms(quantile(waits, 0.50)), "wait-p50-ms")
	b.ReportMetric(ms(quantile(waits, 0.99)), "wait-p99-ms")
	b.ReportMetric(ms(quantile(added, 0.99)), "added-p99-ms")
	// Per second of offered load, or of the run if routing lagged behind the offers.
	b.ReportMetric(float64(routed)/max(elapsed, time.Duration(b.N)*time.Second).Seconds(), "routed/s")
	b.ReportMetric(0, "ns/op") // one op is one second of load: ns/op says nothing
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
