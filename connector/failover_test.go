package connector

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcoordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/omniroute/omniroute/internal/syncbuf"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// Short leader election timings of the failover tests.
const (
	testLease = 2 * time.Second
	testRenew = time.Second
	testRetry = 250 * time.Millisecond
	// schedSlop is how late a goroutine may run on a loaded machine under -race, for the
	// tests' own time readings (never for what they assert about order).
	schedSlop = 300 * time.Millisecond
)

// freezable is a candidate's view of the shared fake API server: while frozen, every Lease
// call fails, as for a process that stopped or lost its network.
type freezable struct {
	kubernetes.Interface
	frozen *atomic.Bool
}

func (f freezable) CoordinationV1() typedcoordinationv1.CoordinationV1Interface {
	return freezableCoordination{f.Interface.CoordinationV1(), f.frozen}
}

type freezableCoordination struct {
	typedcoordinationv1.CoordinationV1Interface
	frozen *atomic.Bool
}

func (f freezableCoordination) Leases(ns string) typedcoordinationv1.LeaseInterface {
	return freezableLeases{f.CoordinationV1Interface.Leases(ns), f.frozen}
}

type freezableLeases struct {
	typedcoordinationv1.LeaseInterface
	frozen *atomic.Bool
}

var errFrozen = errors.New("frozen: no answer from the API server")

func (f freezableLeases) Get(ctx context.Context, name string, o metav1.GetOptions) (*coordinationv1.Lease, error) {
	if f.frozen.Load() {
		return nil, errFrozen
	}
	return f.LeaseInterface.Get(ctx, name, o)
}

func (f freezableLeases) Create(ctx context.Context, l *coordinationv1.Lease, o metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if f.frozen.Load() {
		return nil, errFrozen
	}
	return f.LeaseInterface.Create(ctx, l, o)
}

func (f freezableLeases) Update(ctx context.Context, l *coordinationv1.Lease, o metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if f.frozen.Load() {
		return nil, errFrozen
	}
	return f.LeaseInterface.Update(ctx, l, o)
}

// interval is one leadership of a candidate: when lead began, when its context ended (the
// order to stop) and when it returned (everything stopped).
type interval struct {
	start, told, end time.Time
}

// recordingElector records the leaderships of an Elector.
type recordingElector struct {
	Elector
	mu   sync.Mutex
	runs []interval
}

func (r *recordingElector) Run(ctx context.Context, lead func(context.Context) error) error {
	return r.Elector.Run(ctx, func(lctx context.Context) error {
		r.mu.Lock()
		r.runs = append(r.runs, interval{start: time.Now()})
		i := len(r.runs) - 1
		r.mu.Unlock()
		stop := context.AfterFunc(lctx, func() {
			r.mu.Lock()
			r.runs[i].told = time.Now()
			r.mu.Unlock()
		})
		defer stop()
		err := lead(lctx)
		r.mu.Lock()
		r.runs[i].end = time.Now()
		r.mu.Unlock()
		return err
	})
}

func (r *recordingElector) leaderships() []interval {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.runs)
}

// candidate is one replica of the failover tests.
type candidate struct {
	name    string
	version string // its API version: the emulator's request log tells the candidates apart by it
	d       *daemon
	elector *recordingElector
	frozen  atomic.Bool
	err     error // Run's, once done is closed
	done    chan struct{}
}

// startCandidate runs a daemon with leader election on the shared fake clientset.
func startCandidate(t *testing.T, srvURL, name, version string, cs kubernetes.Interface) *candidate {
	t.Helper()
	c := &candidate{name: name, version: version, done: make(chan struct{})}
	cfg := daemonConfig(t, srvURL)
	cfg.LogLevel = "info"
	cfg.Salesforce.APIVersion = version
	cfg.WaitingCheck.Duration = time.Minute
	cfg.Leader.Election = true
	cfg.Leader.LeaseDuration.Duration = testLease
	cfg.Leader.RenewDeadline.Duration = testRenew
	cfg.Leader.RetryPeriod.Duration = testRetry
	cfg.PodName = name
	d := &daemon{reg: prometheus.NewPedanticRegistry(), logs: &syncbuf.Buffer{}, cfg: cfg, done: make(chan error, 1)}
	logger := slog.New(slog.NewTextHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("candidate", name)
	le, err := NewLeaseElector(LeaseElectorOptions{
		Client: freezable{cs, &c.frozen}, Namespace: "omni", Name: cfg.Leader.Lease, Identity: name,
		LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry, Logger: logger,
	})
	require.NoError(t, err)
	c.elector = &recordingElector{Elector: le}
	conn, err := New(Options{Config: cfg, Logger: logger, Registry: d.reg, Version: "test", Elector: c.elector})
	require.NoError(t, err)
	d.c, d.url = conn, "http://"+conn.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	d.stop = cancel
	c.d = d
	go func() {
		c.err = conn.Run(ctx)
		close(c.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

func (c *candidate) leading() bool {
	return testutil.ToFloat64(c.d.c.leader.g) == 1
}

// leaseCheckpoint reads the replay ids kept in the Lease.
func leaseCheckpoint(t *testing.T, cs kubernetes.Interface) map[string]int64 {
	t.Helper()
	l, err := cs.CoordinationV1().Leases("omni").Get(t.Context(), "omniroute", metav1.GetOptions{})
	require.NoError(t, err)
	for k, v := range l.Annotations {
		if strings.HasPrefix(k, leaseCheckpointPrefix) {
			var f checkpointFile
			require.NoError(t, json.Unmarshal([]byte(v), &f))
			return f.ReplayIDs
		}
	}
	return nil
}

// TestFailover: two candidates on one Lease (client-go's fake clientset) against one emulator
// org over loopback. Only the leader subscribes, routes and writes; the standby is warm (org
// read, mapping checked) with /readyz false on its "leader" condition. When the leader is
// stopped (its Lease released), or frozen (its renewals fail until the Lease expires), the
// standby takes over within the lease duration, resumes the stream from the replay ids kept in
// the Lease, reconciles and routes, while work keeps arriving. The emulator's request log
// shows each candidate's AgentWork inserts and CometD requests only while it led, never both
// at once; no PSR ever gets two AgentWork.
func TestFailover(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"stopped", "frozen"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			failover(t, mode == "frozen")
		})
	}
}

func failover(t *testing.T, freeze bool) {
	seed := demoSeed()
	for i, u := range seed.Users {
		if slices.Contains([]string{agent1, agent2, agent3}, u.Username) {
			seed.Users[i].Skills = map[string]float64{"English": 8, "German": 6, "Billing": 3, "Technical": 5}
		}
	}
	em, err := emulator.New(emulator.Options{Seed: seed, RandSeed: 1})
	require.NoError(t, err)
	t.Cleanup(em.Close)
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	for _, u := range []string{agent1, agent2, agent3} {
		require.NoError(t, em.SetPresence(u, "Available"))
	}
	cs := newLeaseClientset()

	a := startCandidate(t, srv.URL, "a", "64.0", cs)
	a.d.waitCondition(t, CondLeader)
	a.d.waitCondition(t, CondReconcileApplied)
	b := startCandidate(t, srv.URL, "b", "63.0", cs)
	b.d.waitCondition(t, CondOrgChecked)

	// The standby is warm and not ready, on its leader condition alone.
	code, body := b.d.readyz(t)
	require.Equal(t, http.StatusServiceUnavailable, code)
	for _, c := range body.Conditions {
		if c.Name != CondLeader && c.Name != CondStreamSubscribed && c.Name != CondReconcileApplied {
			require.True(t, c.OK, "standby condition %s", c.Name)
		}
	}
	require.False(t, body.condition(CondLeader))
	hc, _, _ := call(t, http.MethodGet, b.d.url+"/healthz", "", nil)
	require.Equal(t, http.StatusOK, hc, "a standby is alive")
	require.True(t, a.leading())
	require.False(t, b.leading())
	code, _ = a.d.readyz(t)
	require.Equal(t, http.StatusOK, code)

	// Work arrives all along: three before the handover, three through it, three after.
	var works []string
	create := func() {
		w, err := em.CreateWork(emulator.WorkRequest{Channel: "Chat", Queue: "Support_EN"})
		require.NoError(t, err)
		works = append(works, w.WorkItemID)
	}
	assigned := func(n int) func() bool {
		return func() bool {
			got := 0
			for _, aw := range em.AgentWorks() {
				if slices.Contains(works[:n], aw.WorkItemID) {
					got++
				}
			}
			return got >= n
		}
	}
	for range 3 {
		create()
	}
	require.Eventually(t, assigned(3), 20*time.Second, 10*time.Millisecond, "a routes; logs:\n%s", a.d.logs.String())
	// Commits are written to the Lease at most once per retry period.
	require.Eventually(t, func() bool { return len(leaseCheckpoint(t, cs)) > 0 }, 5*time.Second, 20*time.Millisecond)

	var expiry time.Time // frozen: when a's Lease expires, as the API server sees it
	if freeze {
		a.frozen.Store(true)
		l, err := cs.CoordinationV1().Leases("omni").Get(t.Context(), "omniroute", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, "a", *l.Spec.HolderIdentity)
		expiry = l.Spec.RenewTime.Add(testLease)
	} else {
		a.d.stop()
	}
	for range 3 {
		create()
		time.Sleep(100 * time.Millisecond)
	}
	b.d.waitCondition(t, CondLeader)
	b.d.waitCondition(t, CondReconcileApplied)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		t.Fatal("a did not stop")
	}
	al, bl := a.elector.leaderships(), b.elector.leaderships()
	require.Len(t, al, 1)
	require.Len(t, bl, 1)
	require.False(t, al[0].end.IsZero(), "a's leadership ended")
	require.False(t, bl[0].start.Before(al[0].told), "b leads only after a was told to stop")
	var took time.Duration
	if freeze {
		require.ErrorIs(t, a.err, ErrLeadershipLost, "a deposed leader exits")
		// b takes the Lease only once it expired, and at most two of its tries later
		// (client-go jitters a retry period by up to 1.2 more).
		took = bl[0].start.Sub(expiry)
		// schedSlop: the test reads a's RenewTime and b's start through goroutines that -race
		// on a loaded 2-core machine may delay by a fraction of a retry period (138 ms seen).
		// What keeps the writes apart is asserted exactly, above (b starts only after a was
		// told to stop) and below in the request log; writes a late a makes are fenced
		// (TestWriteFence).
		require.GreaterOrEqual(t, took, -schedSlop, "b took the lease before it expired")
		require.Less(t, took, 2*testRetry*22/10+200*time.Millisecond)
		require.Less(t, al[0].told.Sub(expiry), time.Duration(0), "a stops before its lease expires")
	} else {
		require.NoError(t, a.err, "a stop is a clean exit")
		// a released the Lease once it stopped; b takes it at its next try.
		require.False(t, bl[0].start.Before(al[0].end), "a stopped: b leads only after a stopped everything")
		took = bl[0].start.Sub(al[0].end)
		require.Less(t, took, testLease, "b takes over within the lease duration")
	}
	require.False(t, a.leading())
	require.True(t, b.leading())
	for range 3 {
		create()
	}
	require.Eventually(t, assigned(len(works)), 20*time.Second, 10*time.Millisecond,
		"b routes everything; agentwork %+v\nlogs of b:\n%s", em.AgentWorks(), b.d.logs.String())

	// b's reconcile took a's Assigned AgentWork as offers, so they were never offered again.
	m := regexp.MustCompile(`reconcile applied.* offers=([0-9]+)`).FindStringSubmatch(b.d.logs.String())
	require.NotNil(t, m)
	offers, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.GreaterOrEqual(t, offers, 3, "a's three offers are b's")

	// b resumed the stream from the ids a left in the Lease.
	ids := leaseCheckpoint(t, cs)
	require.NotEmpty(t, ids)
	require.Regexp(t, `subscribed.*channel=/data/ExternalRoutingChannel__chn replay_id=[1-9]`, b.d.logs.String(), "b resumes from a stored replay id")

	// No PSR ever gets two AgentWork, and every work item got one.
	perPSR := map[string]int{}
	perWork := map[string]int{}
	for _, aw := range em.AgentWorks() {
		perPSR[aw.PSRID]++
		perWork[aw.WorkItemID]++
	}
	for psr, n := range perPSR {
		require.Equal(t, 1, n, "PSR %s has %d AgentWork: %+v", psr, n, em.AgentWorks())
	}
	for _, w := range works {
		require.Equal(t, 1, perWork[w], "work %s", w)
	}

	// The emulator's request log: each candidate's AgentWork inserts fall inside its own
	// leadership (the writer waits for its inserts before the leadership ends), no CometD
	// request of a standby, and a's last insert precedes b's first.
	// The emulator logs a request once its handler returned, just after the AgentWork exists.
	isInsert := func(r emulator.RequestRecord, version string) bool {
		base := "/services/data/v" + version
		return r.Method == http.MethodPost && (strings.HasPrefix(r.Path, base+"/sobjects/AgentWork") ||
			strings.HasPrefix(r.Path, base+"/composite/sobjects"))
	}
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(em.Requests(), func(r emulator.RequestRecord) bool { return isInsert(r, b.version) })
	}, 5*time.Second, 10*time.Millisecond, "b's inserts reach the request log")
	inserts := map[string][]time.Time{}
	for _, r := range em.Requests() {
		for _, c := range []*candidate{a, b} {
			iv := c.elector.leaderships()[0]
			end := iv.end
			if end.IsZero() {
				end = time.Now()
			}
			// The log has each request's end: a long poll the old leader abandoned may end
			// after it stopped, but none ends before its candidate led.
			if strings.HasPrefix(r.Path, "/cometd/"+c.version) {
				require.False(t, r.Time.Before(iv.start), "%s: CometD %s at %s before it led (%s)", c.name, r.Path, r.Time, iv.start)
			}
			if isInsert(r, c.version) {
				require.False(t, r.Time.Before(iv.start) || r.Time.After(end), "%s: insert at %s outside its leadership %+v", c.name, r.Time, iv)
				inserts[c.name] = append(inserts[c.name], r.Time)
			}
		}
	}
	var posts []string
	for _, r := range em.Requests() {
		if r.Method == http.MethodPost {
			posts = append(posts, r.Time.Format("05.000")+" "+r.Path)
		}
	}
	require.NotEmpty(t, inserts["a"], "a wrote; posts %v; a led %+v", posts, al)
	require.NotEmpty(t, inserts["b"], "b wrote; posts %v; b led %+v; agentwork %+v", posts, bl, em.AgentWorks())
	lastA := slices.MaxFunc(inserts["a"], time.Time.Compare)
	firstB := slices.MinFunc(inserts["b"], time.Time.Compare)
	require.True(t, lastA.Before(firstB), "one writer at a time")
	t.Logf("%s: b took over in %s; inserts a=%d b=%d; replay ids %v", map[bool]string{false: "stopped", true: "frozen"}[freeze],
		took, len(inserts["a"]), len(inserts["b"]), ids)
}
