package bayeux

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Defects the second review of issue 9 found, each with the test that failed before its fix.

// A Shutdown that came before Run had started (an oklog/run group whose other actor failed at
// once calls every interrupt, maybe before this actor's goroutine reached Run) did nothing, and
// the Run that followed ran until its context ended: the daemon never stopped. Shutdown is
// final: a Run after it returns nil at once, with no request.
func TestShutdownBeforeRunIsNotLost(t *testing.T) {
	t.Parallel()
	o := newOrg(t)
	h := newHarness(t, o, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, h.c.Shutdown(ctx))
	h.start(Subscription{psr, ReplayAll})
	select {
	case err := <-h.done:
		require.NoError(t, err)
		h.done <- nil
	case <-time.After(3 * time.Second):
		t.Fatal("Run after Shutdown did not return")
	}
	requests, _, _ := h.obs.snapshot()
	require.Empty(t, requests)
}
