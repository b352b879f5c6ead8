package connector

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/salesforce"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// TestReconcileQueriesRunAtOnce: the reconcile's six queries run at the same time, so with
// 1 s on every REST call it takes about one call's time, not six (plus the one round trip
// that sizes the PSR query).
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
	require.Less(t, took, 4*time.Second, "six queries of 1 s each, at once, after one sizing round trip")
}

// pagedPSROrg is an org with one agent online and n waiting PSRs (their ids returned), a
// client reading 200 records a page, and the org's info.
func pagedPSROrg(t *testing.T, n int) (*writerOrg, *salesforce.Client, OrgInfo, []string) {
	t.Helper()
	o := newWriterOrg(t, emulator.Options{})
	o.online(t, 1)
	c, err := salesforce.New(salesforce.Options{Tokens: o.client.Tokens(), QueryBatchSize: 200})
	require.NoError(t, err)
	var ids []string
	for range n {
		ids = append(ids, o.work(t, "Chat").PSRID)
	}
	info, err := orgInfo(t.Context(), c, o.org)
	require.NoError(t, err)
	return o, c, info, ids
}

// requireEachPSROnce: the ranges of bounds read the PSRs ids, each exactly once.
func requireEachPSROnce(t *testing.T, c *salesforce.Client, ids, bounds []string) {
	t.Helper()
	psrs, err := readPSRChunks(t.Context(), c, bounds)
	require.NoError(t, err)
	var got []string
	for _, p := range psrs {
		got = append(got, p.ID)
	}
	require.ElementsMatch(t, ids, got, "bounds %q", bounds)
	require.Len(t, got, len(ids), "bounds %q", bounds)
}

// isPSRChunk reports whether a request is the first page of a PSR query bounded by Id.
func isPSRChunk(r *http.Request) bool {
	q := r.URL.Query().Get("q")
	return strings.Contains(q, "FROM PendingServiceRouting") && (strings.Contains(q, "Id < ") || strings.Contains(q, "Id >= "))
}

// waitingPSRs returns the PSR ids of a reconcile's waiting work, in order.
func waitingPSRs(d *reconcileData) []string {
	var ids []string
	for _, w := range d.snap.Waiting {
		ids = append(ids, w.PSR)
	}
	return ids
}

// TestReconcileReadsPSRsInIdRangesAtOnce: many waiting PSRs are read by several queries at
// once, each a contiguous range of Id, and every PSR arrives exactly once: those there at
// the start, and those created after the ranges were chosen (they sort after the highest Id
// seen, into the last, open-ended range).
func TestReconcileReadsPSRsInIdRangesAtOnce(t *testing.T) {
	t.Parallel()
	o, c, info, want := pagedPSROrg(t, 4*200+1)

	var (
		mu              sync.Mutex
		inFlight, peak  int
		chunks          []string
		createdMeantime sync.Once
		createErrs      []error
		allIn           = make(chan struct{})
		closed          bool
	)
	o.proxy.setFault(func(_ http.ResponseWriter, r *http.Request) bool {
		if !isPSRChunk(r) {
			return false
		}
		createdMeantime.Do(func() {
			// In the server's goroutine: errors are checked by the test's own once it returns.
			for range 2 {
				wr, err := o.em.CreateWork(emulator.WorkRequest{Channel: "Chat", Queue: "Support_EN"})
				createErrs = append(createErrs, err)
				want = append(want, wr.PSRID)
			}
		})
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		chunks = append(chunks, r.URL.Query().Get("q"))
		if inFlight == maxPSRChunks && !closed {
			closed = true
			close(allIn)
		}
		mu.Unlock()
		// Held until every range's request is in: ranges read one after the other never
		// get there, and fail the peak below after the timeout.
		select {
		case <-allIn:
		case <-time.After(10 * time.Second):
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		return false
	})
	d, err := Reconcile(t.Context(), c, NewNames(o.org, &mapping.Config{}), info)
	require.NoError(t, err)
	require.Len(t, createErrs, 2)
	for _, err := range createErrs {
		require.NoError(t, err)
	}
	for _, id := range want {
		require.NotEmpty(t, id)
	}
	got := waitingPSRs(d)
	require.ElementsMatch(t, want, got, "every waiting PSR exactly once")
	require.Len(t, got, 4*200+3)
	require.Len(t, chunks, maxPSRChunks, "one query per range: %q", chunks)
	require.Equal(t, maxPSRChunks, peak, "the ranges are read at once")
}

// tenSortedPSRs is an org with ten waiting PSRs, their ids sorted: the emulator's ids are
// base 62 in ASCII order, as Ids compare.
func tenSortedPSRs(t *testing.T) (*writerOrg, []string) {
	t.Helper()
	o := newWriterOrg(t, emulator.Options{})
	var ids []string
	for range 10 {
		ids = append(ids, o.work(t, "Chat").PSRID)
	}
	slices.Sort(ids)
	return o, ids
}

// TestPSRChunksPartitionAtBoundaries: ranges whose boundaries are the Ids of waiting PSRs
// (18 or 15 characters) read each PSR exactly once; the one at a boundary belongs to the
// range that starts there.
func TestPSRChunksPartitionAtBoundaries(t *testing.T) {
	t.Parallel()
	o, ids := tenSortedPSRs(t)
	for _, bounds := range [][]string{
		{ids[2], ids[5][:15], ids[7]},
		{ids[0]},
		{ids[9]},
		{ids[0][:15], ids[9]},
		{ids[3], ids[4]},
	} {
		requireEachPSROnce(t, o.client, ids, bounds)
	}
}

// TestIDBounds: the boundaries between k ranges of Ids from lo to hi, base 62, strictly
// increasing, above lo and at most hi; fewer when there are fewer Ids between them.
func TestIDBounds(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"0Rz5g0000000100", "0Rz5g0000000200", "0Rz5g0000000300"},
		idBounds("0Rz5g0000000000AAA", "0Rz5g0000000400AAA", 4))
	require.Equal(t, []string{"0Rz5g000000000z"}, idBounds("0Rz5g000000000yAAA", "0Rz5g000000000zAAA", 4),
		"one Id between them: one boundary")
	require.Equal(t, []string{"0Rz5g000000000L", "0Rz5g000000000f"}, idBounds("0Rz5g0000000000", "0Rz5g000000000z", 3),
		"base 62: 0-9, A-Z, a-z")
	require.Nil(t, idBounds("0Rz5g0000000001AAA", "0Rz5g0000000001AAA", 4), "one Id")
	require.Nil(t, idBounds("0Rz5g0000000002AAA", "0Rz5g0000000001AAA", 4), "reversed")
	require.Nil(t, idBounds("0Rz5g00000000-1AAA", "0Rz5g0000000002AAA", 4), "not an id")
	require.Nil(t, idBounds("0Rz", "0Rz5g0000000002AAA", 4), "too short")
}

// TestPSRChunksReadEachOnceWhateverTheBoundsOrder: how a real org orders Ids is not
// documented, so bounds chosen in base-62 order may not be increasing in the org's order.
// The ranges then overlap (never leave a gap: < and >= are each other's opposites), and a
// PSR in the overlap must still arrive once.
func TestPSRChunksReadEachOnceWhateverTheBoundsOrder(t *testing.T) {
	t.Parallel()
	o, ids := tenSortedPSRs(t)
	for _, bounds := range [][]string{
		{ids[5], ids[2]},              // decreasing: ids[2..4] in the first and the last range
		{ids[7], ids[3][:15], ids[8]}, // not monotonic
		{ids[4], ids[4]},              // equal: an empty middle range
	} {
		requireEachPSROnce(t, o.client, ids, bounds)
	}
}

// TestReconcileFailsCleanlyWhenARangeFails: when one range's query fails mid-way (its next
// page refused), the reconcile fails as a whole, with no snapshot, and leaves no goroutine:
// the other ranges and the read-ahead of their pages end. Not parallel: goleak sees the
// whole process.
func TestReconcileFailsCleanlyWhenARangeFails(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last, after the org's cleanups
	o, c, info, _ := pagedPSROrg(t, 4*400)
	var (
		mu      sync.Mutex
		ranges  int
		refused int
	)
	o.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if isPSRChunk(r) {
			ranges++
			return false
		}
		// The first next page asked for once every range is under way: a range's, as only
		// the PSRs fill more than a page here.
		if ranges == maxPSRChunks && refused == 0 && strings.Contains(r.URL.Path, "/query/") && r.URL.Query().Get("q") == "" {
			refused++
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`[{"errorCode":"INVALID_QUERY_LOCATOR","message":"invalid query locator"}]`))
			return true
		}
		return false
	})
	d, err := Reconcile(t.Context(), c, NewNames(o.org, &mapping.Config{}), info)
	require.ErrorContains(t, err, "reconcile: read PendingServiceRouting")
	require.ErrorContains(t, err, "INVALID_QUERY_LOCATOR")
	require.Nil(t, d, "no partial snapshot")
	mu.Lock()
	require.Equal(t, maxPSRChunks, ranges)
	require.Equal(t, 1, refused)
	mu.Unlock()
}

// TestReconcileFailsCleanlyWhenSizingFails: when the count of the PSRs is refused, the
// reconcile fails with the count named, reads no range, and leaves no goroutine. Not
// parallel: goleak sees the whole process.
func TestReconcileFailsCleanlyWhenSizingFails(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	o, c, info, _ := pagedPSROrg(t, 2*200+1)
	var ranges atomic.Int32
	o.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if isPSRChunk(r) {
			ranges.Add(1)
		}
		if !strings.Contains(r.URL.Query().Get("q"), "SELECT COUNT() FROM PendingServiceRouting") {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`[{"errorCode":"MALFORMED_QUERY","message":"refused"}]`))
		return true
	})
	d, err := Reconcile(t.Context(), c, NewNames(o.org, &mapping.Config{}), info)
	require.ErrorContains(t, err, "reconcile: count PendingServiceRouting")
	require.ErrorContains(t, err, "MALFORMED_QUERY")
	require.Nil(t, d)
	require.Zero(t, ranges.Load(), "no range is read once the sizing failed")
}
