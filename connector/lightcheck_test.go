package connector

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

// TestLightCheckFindsADeletedPSRWithinTwoPeriods: with PSR DELETE never delivered (the custom
// channel's default), waiting work whose PSR Salesforce deleted (the customer left) is found
// by the light check within two periods of its arrival. While nothing waits, the light check
// makes no query.
func TestLightCheckFindsADeletedPSRWithinTwoPeriods(t *testing.T) {
	t.Parallel()
	const period = 500 * time.Millisecond
	e := newEnv(t, false, func(c *Config) { c.WaitingCheck.Duration = period })
	queries := func() int {
		n := 0
		for _, r := range e.em.Requests() {
			if r.Method == http.MethodGet && strings.Contains(r.Path, "/query") {
				n++
			}
		}
		return n
	}

	// Idle: nothing waits, nothing is external: no query for three periods.
	before := queries()
	time.Sleep(3 * period)
	require.Equal(t, before, queries(), "the light check queried with nothing to find")

	// Nobody online: the work waits; the customer leaves, and no event says so.
	w := e.work(emulator.WorkRequest{})
	arrived := time.Now()
	held := func() bool {
		var ok bool
		e.query(func(r *Router) {
			_, ok = r.waiting[w.WorkItemID]
			if _, routed := r.eng.Explain(r.opts.Now(), w.WorkItemID); routed {
				ok = true
			}
		})
		return ok
	}
	require.Eventually(t, held, 5*time.Second, 10*time.Millisecond, "the work never arrived")
	require.NoError(t, e.em.CancelWork(w.WorkItemID))
	require.Eventually(t, func() bool { return !held() }, 10*time.Second, 10*time.Millisecond, "the deleted PSR's work stays")
	took := time.Since(arrived)
	// Two periods, and the check's query and a loaded machine's slack.
	require.Less(t, took, 2*period+time.Second, "found %s after arrival", took)
	t.Logf("found %s after arrival (period %s)", took, period)

	// An agent online later gets nothing.
	e.presence(agent1, "Available")
	time.Sleep(300 * time.Millisecond)
	require.Zero(t, e.count(w.WorkItemID))
}
