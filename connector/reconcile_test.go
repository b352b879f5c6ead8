package connector

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// TestReconcileQueriesRunAtOnce: the reconcile's six queries run at the same time, so with
// 1 s on every REST call it takes about one call's time, not six.
func TestReconcileQueriesRunAtOnce(t *testing.T) {
	t.Parallel()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1, 2)
	for range 3 {
		o.work(t, "Chat")
	}
	info, err := orgInfo(t.Context(), o.client, o.org)
	require.NoError(t, err)
	require.NoError(t, o.em.SetLatency(emulator.LatencyFault{MS: 1000, Scope: "rest"}))
	start := time.Now()
	d, err := Reconcile(t.Context(), o.client, NewNames(o.org, &mapping.Config{}), info)
	took := time.Since(start)
	require.NoError(t, err)
	require.Len(t, d.snap.Waiting, 3)
	require.Len(t, d.snap.Presence, 2)
	require.NotEmpty(t, d.skills)
	require.Less(t, took, 3*time.Second, "six queries of 1 s each, at once")
}
