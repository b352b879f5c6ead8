package connector

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcoordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/omniroute/omniroute/routing"
)

func testElector(t *testing.T, cs kubernetes.Interface, id string, frozen *atomic.Bool) *LeaseElector {
	t.Helper()
	if frozen == nil {
		frozen = &atomic.Bool{}
	}
	e, err := NewLeaseElector(LeaseElectorOptions{Client: freezable{cs, frozen}, Namespace: "omni", Name: "omniroute", Identity: id,
		LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry})
	require.NoError(t, err)
	return e
}

func holder(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases("omni").Get(context.Background(), "omniroute", metav1.GetOptions{})
	require.NoError(t, err)
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestLeaseElectorReleasesAfterLead: on a stop, lead sees its context end while the Lease is
// still held, and the Lease is released only once lead returned (ReleaseOnCancel after the
// last write); Run returns nil and a second candidate takes the Lease at once.
func TestLeaseElectorReleasesAfterLead(t *testing.T) {
	t.Parallel()
	cs := newLeaseClientset()
	a := testElector(t, cs, "a", nil)
	ctx, cancel := context.WithCancel(t.Context())
	leading := make(chan struct{})
	heldWhileStopping := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, func(lctx context.Context) error {
			close(leading)
			<-lctx.Done()
			time.Sleep(3 * testRetry) // the last writes of a stopping leader
			heldWhileStopping <- holder(t, cs)
			return nil
		})
	}()
	<-leading
	require.Equal(t, "a", holder(t, cs))
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, "a", <-heldWhileStopping, "the Lease is kept until lead returned")
	require.Empty(t, holder(t, cs), "then released")

	b := testElector(t, cs, "b", nil)
	bctx, bcancel := context.WithCancel(t.Context())
	defer bcancel()
	bLeads := make(chan time.Time, 1)
	bdone := make(chan error, 1)
	start := time.Now()
	go func() {
		bdone <- b.Run(bctx, func(lctx context.Context) error {
			bLeads <- time.Now()
			<-lctx.Done()
			return nil
		})
	}()
	at := <-bLeads
	require.Less(t, at.Sub(start), testLease, "a released Lease is taken at once")
	bcancel()
	require.NoError(t, <-bdone)
}

// TestLeaseElectorLost: a leader whose renewals fail is told to stop once the renew deadline
// passed, before its Lease expires, and Run returns ErrLeadershipLost; lead's own error is
// returned as is, and the Lease released.
func TestLeaseElectorLost(t *testing.T) {
	t.Parallel()
	cs := newLeaseClientset()
	var frozen atomic.Bool
	a := testElector(t, cs, "a", &frozen)
	var told time.Time
	var frozenAt time.Time
	err := a.Run(t.Context(), func(lctx context.Context) error {
		frozenAt = time.Now()
		frozen.Store(true)
		<-lctx.Done()
		told = time.Now()
		return nil
	})
	require.ErrorIs(t, err, ErrLeadershipLost)
	// client-go's renew timer may fire late on a loaded machine under -race (2.10 s seen);
	// a leader told late cannot write meanwhile: its writes are fenced (TestWriteFence).
	require.Less(t, told.Sub(frozenAt), testLease+schedSlop, "stopped before the Lease expired")
	require.GreaterOrEqual(t, told.Sub(frozenAt), testRenew-testRetry, "not before the renew deadline")

	cs2 := newLeaseClientset()
	b := testElector(t, cs2, "b", nil)
	boom := errors.New("the stream stopped")
	require.ErrorIs(t, b.Run(t.Context(), func(context.Context) error { return boom }), boom)
	require.Empty(t, holder(t, cs2), "a failed leader releases the Lease")
}

// TestLeaderElectionOutsideCluster: leader election on, no Elector given and no cluster to
// reach: New refuses to start with a configuration error naming the variable.
func TestLeaderElectionOutsideCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	cfg := daemonConfig(t, "http://127.0.0.1:9")
	cfg.Leader.Election = true
	_, err := New(Options{Config: cfg})
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.ErrorContains(t, err, "OMNIROUTE_LEADER_ELECTION: the Kubernetes API")
}

// renewFails is a candidate's view of the shared fake API server in which its renewals (an
// update naming it the holder) fail while fail is set, and, while hang is set, wait until
// hang is cleared and then fail (a process frozen in the middle of a renewal, between its
// read of the Lease and its update). Reads and
// releases pass: the API server is reachable.
type renewFails struct {
	kubernetes.Interface
	id         string
	fail, hang *atomic.Bool
	tries      *atomic.Int64
}

func (f renewFails) CoordinationV1() typedcoordinationv1.CoordinationV1Interface {
	return renewFailsCoordination{f.Interface.CoordinationV1(), f}
}

type renewFailsCoordination struct {
	typedcoordinationv1.CoordinationV1Interface
	f renewFails
}

func (c renewFailsCoordination) Leases(ns string) typedcoordinationv1.LeaseInterface {
	return renewFailsLeases{c.CoordinationV1Interface.Leases(ns), c.f}
}

type renewFailsLeases struct {
	typedcoordinationv1.LeaseInterface
	f renewFails
}

func (l renewFailsLeases) Update(ctx context.Context, lease *coordinationv1.Lease, o metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if h := lease.Spec.HolderIdentity; h != nil && *h == l.f.id && l.f.fail.Load() {
		// client-go renews optimistically first, then reads the Lease and updates it: the
		// second update hangs while hang is set.
		if l.f.tries.Add(1)%2 == 0 {
			for l.f.hang.Load() {
				time.Sleep(10 * time.Millisecond)
			}
		}
		return nil, errors.New("renewal refused")
	}
	return l.LeaseInterface.Update(ctx, lease, o)
}

func renewFailsElector(t *testing.T, cs kubernetes.Interface, id string, fail, hang *atomic.Bool) *LeaseElector {
	t.Helper()
	e, err := NewLeaseElector(LeaseElectorOptions{Client: renewFails{cs, id, fail, hang, new(atomic.Int64)}, Namespace: "omni", Name: "omniroute", Identity: id,
		LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry})
	require.NoError(t, err)
	return e
}

// TestLeaseElectorLostKeepsLeaseWhileDraining: a leader whose renewals fail for the renew
// deadline while the API server still answers is told to stop; client-go then releases the
// Lease (ReleaseOnCancel) before it even cancels lead's context. The Lease must stay held by
// the deposed leader while lead drains its last writes: a standby takes it over only once it
// expired, after the drain (maxDrain), never while the old leader still writes.
func TestLeaseElectorLostKeepsLeaseWhileDraining(t *testing.T) {
	t.Parallel()
	cs := newLeaseClientset()
	var fail, hang atomic.Bool
	a := renewFailsElector(t, cs, "a", &fail, &hang)
	var heldWhileDraining string
	err := a.Run(t.Context(), func(lctx context.Context) error {
		fail.Store(true)
		<-lctx.Done()
		heldWhileDraining = holder(t, cs) // the writer drains here
		return nil
	})
	require.ErrorIs(t, err, ErrLeadershipLost)
	require.Equal(t, "a", heldWhileDraining, "a deposed leader that still drains does not release the Lease")
	require.Equal(t, "a", holder(t, cs), "nor after: the Lease expires, LeaseDuration after the last renewal")
}

// TestLeaseElectorResumedLeaderKeepsOffSuccessor: a leader frozen in a renewal past the lease
// duration is replaced; when it resumes, client-go's release (tryRelease reads the Lease but
// trusts the holder it observed before the freeze) must not clear the successor's holder,
// or a third replica would lead beside the successor.
func TestLeaseElectorResumedLeaderKeepsOffSuccessor(t *testing.T) {
	t.Parallel()
	cs := newLeaseClientset()
	var fail, hang, never atomic.Bool
	a := renewFailsElector(t, cs, "a", &fail, &hang)
	aLeads := make(chan struct{})
	aDone := make(chan error, 1)
	go func() {
		aDone <- a.Run(t.Context(), func(lctx context.Context) error {
			fail.Store(true)
			hang.Store(true)
			close(aLeads)
			<-lctx.Done()
			return nil
		})
	}()
	<-aLeads
	b := renewFailsElector(t, cs, "b", &never, &never)
	bctx, bcancel := context.WithCancel(t.Context())
	defer bcancel()
	bLeads := make(chan struct{})
	bDone := make(chan error, 1)
	go func() {
		bDone <- b.Run(bctx, func(lctx context.Context) error {
			close(bLeads)
			<-lctx.Done()
			return nil
		})
	}()
	<-bLeads
	require.Equal(t, "b", holder(t, cs))
	hang.Store(false) // a resumes: its renewal fails, its renew deadline is long past
	require.ErrorIs(t, <-aDone, ErrLeadershipLost)
	require.Equal(t, "b", holder(t, cs), "the resumed leader left its successor's Lease alone")
	bcancel()
	require.NoError(t, <-bDone)
}

// TestMaxDrainEndsBeforeTakeover: a leader that renewed at t0 tries again at t0+RetryPeriod
// and is told to stop when RenewDeadline more has passed (client-go's renew loop); a standby
// may take over at t0+LeaseDuration. The writer's drain must end by then.
func TestMaxDrainEndsBeforeTakeover(t *testing.T) {
	t.Parallel()
	c := &Connector{cfg: validConfig(), elector: testElector(t, newLeaseClientset(), "a", nil)}
	c.cfg.Leader.Election = true
	c.cfg.Leader.LeaseDuration.Duration = 15 * time.Second
	c.cfg.Leader.RenewDeadline.Duration = 10 * time.Second
	c.cfg.Leader.RetryPeriod.Duration = 2 * time.Second
	l := c.cfg.Leader
	told := l.RetryPeriod.Duration + l.RenewDeadline.Duration // after t0, at the latest
	require.Positive(t, c.maxDrain())
	require.LessOrEqual(t, told+c.maxDrain(), l.LeaseDuration.Duration, "the drain ends before a standby may take over")
}

// TestLeaseElectorKeepsLeaseAfterCutDrain: a stopping leader whose writer had to cut a call at
// the end of its drain (the insert may still land at Salesforce) keeps the Lease: it expires
// LeaseDuration after the last renewal instead of going to a standby at once, whose reconcile
// would otherwise read AgentWork before that insert landed. Run still returns nil.
func TestLeaseElectorKeepsLeaseAfterCutDrain(t *testing.T) {
	t.Parallel()
	cs := newLeaseClientset()
	a := testElector(t, cs, "a", nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	leading := make(chan struct{})
	go func() {
		done <- a.Run(ctx, func(lctx context.Context) error {
			close(leading)
			<-lctx.Done()
			return errKeepLease
		})
	}()
	<-leading
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, "a", holder(t, cs), "the Lease is left to expire")
}

// TestDrainWatchCut: the writer's Run is watched; a drain that used its whole allowance is
// reported as cut, one that ended early is not.
func TestDrainWatchCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		after time.Duration
		cut   bool
	}{{"answered", 0, false}, {"cut", 200 * time.Millisecond, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &drainWatch{writerPart: slowWriter{tc.after}, drain: 100 * time.Millisecond}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			require.NoError(t, w.Run(ctx))
			require.Equal(t, tc.cut, w.Cut())
		})
	}
}

type slowWriter struct{ after time.Duration }

func (slowWriter) Do(routing.Command) {}
func (s slowWriter) Run(ctx context.Context) error {
	<-ctx.Done()
	time.Sleep(s.after)
	return nil
}

// TestLeaseElectorWritable: writes are allowed while the last renewal is fresh, and refused
// from the moment a leader that cannot renew is told to stop at the latest (last renewal +
// retry period + renew deadline), on its own clock: a leader resumed from a freeze sends no
// insert it had decided before, whatever its goroutines' order.
func TestLeaseElectorWritable(t *testing.T) {
	t.Parallel()
	cs := newLeaseClientset()
	var fail, hang atomic.Bool
	a := renewFailsElector(t, cs, "a", &fail, &hang)
	require.False(t, a.Writable(), "not before leading")
	var atStart, afterHorizon bool
	err := a.Run(t.Context(), func(lctx context.Context) error {
		atStart = a.Writable()
		fail.Store(true)
		time.Sleep(testRetry + testRenew + 50*time.Millisecond)
		afterHorizon = a.Writable()
		<-lctx.Done()
		return nil
	})
	require.ErrorIs(t, err, ErrLeadershipLost)
	require.True(t, atStart)
	require.False(t, afterHorizon, "no write once the renewals lapsed")
	require.False(t, a.Writable())
}

// TestWriteFence: with leader election the Salesforce client's AgentWork inserts pass only
// while the elector allows writes; refused ones never reach the server; reads always pass.
func TestWriteFence(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	var writable atomic.Bool
	hc := fenceWrites(srv.Client(), writable.Load)
	post := func(path string) error {
		resp, err := hc.Post(srv.URL+path, "application/json", strings.NewReader("{}"))
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}
	require.ErrorIs(t, post("/services/data/v64.0/sobjects/AgentWork"), errNotWritable)
	require.ErrorIs(t, post("/services/data/v64.0/composite/sobjects"), errNotWritable)
	require.Zero(t, hits.Load())
	resp, err := hc.Get(srv.URL + "/services/data/v64.0/query?q=SELECT+Id+FROM+AgentWork")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.NoError(t, post("/services/oauth2/token"))
	writable.Store(true)
	require.NoError(t, post("/services/data/v64.0/sobjects/AgentWork"))
	require.EqualValues(t, 3, hits.Load())
}

// TestLeaseElectorNoGoroutineLeak: once Run returned, after a stop and after a lost lease,
// no goroutine of the election (client-go's included) or of the Lease checkpoint store is left.
// Not parallel: goleak sees the whole process.
func TestLeaseElectorNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cs := newLeaseClientset()
	a := testElector(t, cs, "a", nil)
	store, err := a.Checkpoints([]string{"/data/x"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	require.NoError(t, a.Run(ctx, func(lctx context.Context) error {
		require.NoError(t, store.Save(lctx, map[string]int64{"/data/x": 1}))
		require.NoError(t, store.Save(lctx, map[string]int64{"/data/x": 2})) // arms the timer
		cancel()
		<-lctx.Done()
		return store.(*LeaseCheckpointStore).Flush(context.Background())
	}))
	var fail, hang atomic.Bool
	b := renewFailsElector(t, newLeaseClientset(), "b", &fail, &hang)
	require.ErrorIs(t, b.Run(t.Context(), func(lctx context.Context) error {
		fail.Store(true)
		<-lctx.Done()
		return nil
	}), ErrLeadershipLost)
}
