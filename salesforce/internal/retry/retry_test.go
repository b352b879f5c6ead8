package retry

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, 3*time.Second, After("3", now))
	require.Equal(t, 90*time.Second, After(now.Add(90*time.Second).Format(http.TimeFormat), now))
	require.Zero(t, After("soon", now))
	require.Zero(t, After("-4", now))
	require.Zero(t, After("", now))
}

// At a limit the schedule reaches minutes within a few steps; the ordinary one starts near
// its initial wait and doubles, both jittered by at most ±50 %.
func TestSchedules(t *testing.T) {
	t.Parallel()
	limit := AtLimit()
	var waits []time.Duration
	for range 4 {
		waits = append(waits, limit.NextBackOff())
	}
	require.GreaterOrEqual(t, waits[0], 15*time.Second)
	require.GreaterOrEqual(t, waits[1], time.Minute, "minutes by the second step: %v", waits)
	require.GreaterOrEqual(t, waits[2], 4*time.Minute, "%v", waits)
	require.LessOrEqual(t, waits[3], 15*time.Minute, "%v", waits)

	b := Backoff(time.Second, 2*time.Minute)
	first := b.NextBackOff()
	require.GreaterOrEqual(t, first, 500*time.Millisecond)
	require.LessOrEqual(t, first, 1500*time.Millisecond)
	for range 20 {
		require.LessOrEqual(t, b.NextBackOff(), 3*time.Minute)
	}
	b.Reset()
	require.LessOrEqual(t, b.NextBackOff(), 1500*time.Millisecond)
}
