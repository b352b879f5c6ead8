package connector

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
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
	require.Less(t, told.Sub(frozenAt), testLease, "stopped before the Lease expired")
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
