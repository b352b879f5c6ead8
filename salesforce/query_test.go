package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/omniroute/omniroute/internal/syncbuf"
)

// badPages serves "SELECT Id, Serial FROM PendingServiceRouting" as pages of size records,
// n in all, where the records whose index is in bad carry a Serial that is not a number.
func badPages(f *fakeOrg, n, size int, bad map[int]bool) {
	page := func(w http.ResponseWriter, from int) {
		to := min(from+size, n)
		recs := []map[string]any{}
		for i := from; i < to; i++ {
			var serial any = i
			if bad[i] {
				serial = "not a number"
			}
			recs = append(recs, map[string]any{"attributes": map[string]string{"type": "PendingServiceRouting"}, "Id": fmt.Sprintf("0JR%015d", i), "Serial": serial})
		}
		resp := map[string]any{"totalSize": n, "done": to == n, "records": recs}
		if to < n {
			resp["nextRecordsUrl"] = fmt.Sprintf("/services/data/v63.0/query/01gBAD-%d", to)
		}
		_ = json.NewEncoder(w).Encode(resp)
	}
	f.mux.HandleFunc("GET /services/data/v63.0/query/", func(w http.ResponseWriter, r *http.Request) {
		if f.authorized(w, r) {
			page(w, 0)
		}
	})
	f.mux.HandleFunc("GET /services/data/v63.0/query/{locator}", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		_, from, _ := strings.Cut(r.PathValue("locator"), "-")
		i, _ := strconv.Atoi(from)
		page(w, i)
	})
}

// counterValue reads the counter name{labels} from reg (0 when absent).
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestQueryAsSkipsAMalformedRecord: one record that does not decode into its type is skipped,
// logged with its Id and counted; the records around it, on its page and the next, arrive,
// and the query does not fail.
func TestQueryAsSkipsAMalformedRecord(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	badPages(f, 25, 10, map[int]bool{13: true})
	reg := prometheus.NewPedanticRegistry()
	var logs syncbuf.Buffer
	c, _ := testClient(t, f, func(o *Options) {
		o.Registerer = reg
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	var got []int
	for rec, err := range QueryAs[PendingServiceRouting](t.Context(), c, "SELECT Id, Serial FROM PendingServiceRouting") {
		require.NoError(t, err)
		got = append(got, *rec.Serial)
	}
	var want []int
	for i := range 25 {
		if i != 13 {
			want = append(want, i)
		}
	}
	require.Equal(t, want, got, "every good record arrives, in order")
	require.Equal(t, 1.0, counterValue(t, reg, "salesforce_query_records_skipped_total", map[string]string{"sobject": "PendingServiceRouting"}))
	require.Contains(t, logs.String(), fmt.Sprintf("0JR%015d", 13), "the log names the record")
	require.Contains(t, logs.String(), "Serial", "the log says what does not decode")
}

// TestQueryReadAheadEndsOnEveryExit: whichever way a query's range ends (stopped early,
// context cancelled, a page failing mid-chain, or run to the end), the page read ahead has
// been cancelled and its goroutine is gone when the range returns.
func TestQueryReadAheadEndsOnEveryExit(t *testing.T) {
	// Not parallel: goleak looks at every goroutine of the process.
	f := newFakeOrg(t)
	var served atomic.Int64
	failAt := 30
	f.mux.HandleFunc("GET /services/data/v63.0/query/", func(w http.ResponseWriter, r *http.Request) {
		if f.authorized(w, r) {
			served.Add(1)
			slowPage(w, 0, failAt)
		}
	})
	f.mux.HandleFunc("GET /services/data/v63.0/query/{locator}", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		served.Add(1)
		_, from, _ := strings.Cut(r.PathValue("locator"), "-")
		i, _ := strconv.Atoi(from)
		if i >= failAt {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`[{"message":"invalid query locator","errorCode":"INVALID_QUERY_LOCATOR"}]`))
			return
		}
		slowPage(w, i, failAt)
	})
	c, _ := testClient(t, f, nil)
	const soql = "SELECT Id, Serial FROM PendingServiceRouting"
	ignore := goleak.IgnoreCurrent()
	settled := func(t *testing.T) {
		t.Helper()
		// At once: the range has returned, so the read-ahead has been waited for. A goroutine
		// whose only frame left is runtime.goexit1 has run all of its code (it signalled its end
		// on the way out) and is only being torn down: that one has ended.
		buf := make([]byte, 1<<20)
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "salesforce.fetchPage") {
				_, frames, _ := strings.Cut(g, "\n")
				require.True(t, strings.HasPrefix(frames, "runtime.goexit1("), "a page read ahead outlives the range:\n%s", g)
			}
		}
		// Nothing else leaks either. Idle keep-alive connections belong to the transport,
		// not to the query.
		require.NoError(t, goleak.Find(ignore,
			goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop")))
	}

	t.Run("break", func(t *testing.T) {
		n := 0
		for _, err := range QueryAs[PendingServiceRouting](t.Context(), c, soql) {
			require.NoError(t, err)
			if n++; n == 15 { // on page 2, page 3 requested or in flight
				break
			}
		}
		settled(t)
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		n, errs := 0, 0
		for _, err := range QueryAs[PendingServiceRouting](ctx, c, soql) {
			if err != nil {
				require.ErrorIs(t, err, context.Canceled)
				errs++
				continue
			}
			if n++; n == 12 {
				cancel()
			}
		}
		require.Equal(t, 1, errs, "the cancel ends the range with its error")
		settled(t)
	})
	t.Run("error", func(t *testing.T) {
		var errs []error
		n := 0
		for _, err := range QueryAs[PendingServiceRouting](t.Context(), c, soql) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
		require.Equal(t, failAt, n)
		require.Len(t, errs, 1)
		require.ErrorContains(t, errs[0], "INVALID_QUERY_LOCATOR")
		settled(t)
	})
	t.Run("end", func(t *testing.T) {
		n := 0
		for _, err := range QueryAs[PendingServiceRouting](t.Context(), c, "SELECT Id, Serial FROM PendingServiceRouting") {
			require.NoError(t, err)
			if n++; n == failAt {
				break
			}
		}
		settled(t)
	})
	require.Positive(t, served.Load())
}

// slowPage writes the 10 records from from after 20 ms, with a next page always.
func slowPage(w http.ResponseWriter, from, _ int) {
	time.Sleep(20 * time.Millisecond)
	recs := []map[string]any{}
	for i := from; i < from+10; i++ {
		recs = append(recs, map[string]any{"attributes": map[string]string{"type": "PendingServiceRouting"}, "Id": fmt.Sprintf("0JR%015d", i), "Serial": i})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"totalSize": 1000, "done": false, "records": recs,
		"nextRecordsUrl": fmt.Sprintf("/services/data/v63.0/query/01gSLOW-%d", from+10)})
}

// TestCountReadsTotalSize: Count returns a query's totalSize from its first page alone, and
// QueryPageSize is the batch size asked for, or Salesforce's 2,000.
func TestCountReadsTotalSize(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	badPages(f, 25, 10, nil)
	c, _ := testClient(t, f, func(o *Options) { o.QueryBatchSize = 200 })
	n, err := c.Count(t.Context(), "SELECT COUNT() FROM PendingServiceRouting")
	require.NoError(t, err)
	require.Equal(t, 25, n)
	require.Equal(t, 200, c.QueryPageSize())
	c2, _ := testClient(t, f, func(*Options) {})
	require.Equal(t, 2000, c2.QueryPageSize())
}

// TestCountRefusesWhatIsNotACount: a response that is not a query result with a totalSize
// (or a negative one) is an error, never a count of 0.
func TestCountRefusesWhatIsNotACount(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{"done":true,"records":[]}`, `{}`, `{"totalSize":-1,"done":true,"records":[]}`, `[]`, `{"totalSize":"3"}`} {
		f := newFakeOrg(t)
		f.mux.HandleFunc("GET /services/data/v63.0/query/", func(w http.ResponseWriter, r *http.Request) {
			if f.authorized(w, r) {
				_, _ = w.Write([]byte(body))
			}
		})
		c, _ := testClient(t, f, func(*Options) {})
		n, err := c.Count(t.Context(), "SELECT COUNT() FROM PendingServiceRouting")
		require.ErrorContains(t, err, "decode query response", body)
		require.Zero(t, n, body)
	}
}
