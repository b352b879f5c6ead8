package salesforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		body      string
		header    http.Header
		exhausted bool
		want      APIError
	}{
		{"session", 401, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, nil, false,
			APIError{Status: 401, Code: "INVALID_SESSION_ID", Message: "Session expired or invalid"}},
		{"malformed query", 400, `[{"message":"unexpected token","errorCode":"MALFORMED_QUERY"}]`, nil, false,
			APIError{Status: 400, Code: "MALFORMED_QUERY", Message: "unexpected token"}},
		{"fields", 400, `[{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]`, nil, false,
			APIError{Status: 400, Code: "REQUIRED_FIELD_MISSING", Message: "Required fields are missing: [Name]", Fields: []string{"Name"}}},
		{"lock row", 400, `[{"message":"unable to obtain exclusive access to this record","errorCode":"UNABLE_TO_LOCK_ROW"}]`, nil, false,
			APIError{Status: 400, Code: "UNABLE_TO_LOCK_ROW", Message: "unable to obtain exclusive access to this record", Retryable: true}},
		{"daily limit", 403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, nil, false,
			APIError{Status: 403, Code: "REQUEST_LIMIT_EXCEEDED", Message: "TotalRequests Limit exceeded."}},
		{"concurrent limit", 403, `[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, nil, false,
			APIError{Status: 403, Code: "REQUEST_LIMIT_EXCEEDED", Message: "ConcurrentPerOrgLongTxn Limit exceeded.", Retryable: true}},
		{"limit with exhausted header", 403, `[{"message":"limit","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, nil, true,
			APIError{Status: 403, Code: "REQUEST_LIMIT_EXCEEDED", Message: "limit"}},
		{"503 retry after", 503, `upstream down`, http.Header{"Retry-After": {"7"}}, false,
			APIError{Status: 503, Code: "SERVICE_UNAVAILABLE", Retryable: true, RetryAfter: 7 * time.Second}},
		{"429", 429, `[]`, nil, false, APIError{Status: 429, Code: "TOO_MANY_REQUESTS", Retryable: true}},
		{"500 json", 500, `[{"message":"An unexpected error occurred","errorCode":"UNKNOWN_EXCEPTION"}]`, nil, false,
			APIError{Status: 500, Code: "UNKNOWN_EXCEPTION", Message: "An unexpected error occurred", Retryable: true}},
		{"404 deleted", 404, `[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]`, nil, false,
			APIError{Status: 404, Code: "ENTITY_IS_DELETED", Message: "entity is deleted", Fields: []string{}}},
		{"oauth shaped", 400, `{"error":"invalid_grant","error_description":"expired"}`, nil, false,
			APIError{Status: 400, Code: "invalid_grant", Message: "expired"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			got := classify(tc.status, h, []byte(tc.body), tc.exhausted)
			got.Errors = nil
			require.Equal(t, tc.want, *got)
		})
	}
}

func TestParseLimitInfo(t *testing.T) {
	t.Parallel()
	for h, want := range map[string][3]int64{
		"api-usage=10018/100000":                                {10018, 100000, 1},
		"per-app-api-usage=5/100(appName=x), api-usage=7/15000": {7, 15000, 1},
		"":                 {0, 0, 0},
		"api-usage=abc/10": {0, 0, 0},
		"api-usage=12":     {0, 0, 0},
		"api-usage=-1/10":  {0, 0, 0},
	} {
		u, m, ok := parseLimitInfo(h)
		require.Equal(t, want, [3]int64{u, m, map[bool]int64{true: 1}[ok]}, h)
	}
}

// pagedQuery mounts a query endpoint serving n records in pages of size,
// with locators under a deliberately odd path so the test proves the
// client follows nextRecordsUrl exactly. served counts pages served.
func pagedQuery(f *fakeOrg, n, size int, served *atomic.Int64) {
	page := func(w http.ResponseWriter, from int) {
		served.Add(1)
		to := min(from+size, n)
		recs := make([]map[string]any, 0, to-from)
		for i := from; i < to; i++ {
			recs = append(recs, map[string]any{"attributes": map[string]string{"type": "PendingServiceRouting"}, "Id": fmt.Sprintf("0JR%015d", i), "Serial": i})
		}
		resp := map[string]any{"totalSize": n, "done": to == n, "records": recs}
		if to < n {
			resp["nextRecordsUrl"] = fmt.Sprintf("/services/data/v58.0/query/01gXX0000-%d", to)
		}
		w.Header().Set("Sforce-Limit-Info", "api-usage="+strconv.Itoa(int(served.Load()))+"/15000")
		_ = json.NewEncoder(w).Encode(resp)
	}
	f.mux.HandleFunc("GET /services/data/v63.0/query/", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		if r.URL.Query().Get("q") != "SELECT Id, Serial FROM PendingServiceRouting" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`[{"message":"bad soql","errorCode":"MALFORMED_QUERY"}]`))
			return
		}
		page(w, 0)
	})
	f.mux.HandleFunc("GET /services/data/v58.0/query/{locator}", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		_, from, _ := strings.Cut(r.PathValue("locator"), "-")
		i, _ := strconv.Atoi(from)
		page(w, i)
	})
}

// TestQueryFollowsNextRecordsURLOnePageAhead: the next page is requested while the caller
// consumes the current one (so decoding overlaps the round trip), never more than one ahead.
func TestQueryFollowsNextRecordsURLOnePageAhead(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	var served atomic.Int64
	pagedQuery(f, 45, 10, &served)
	reg := prometheus.NewPedanticRegistry()
	c, _ := testClient(t, f, func(o *Options) { o.Registerer = reg })
	n := 0
	for rec, err := range QueryAs[PendingServiceRouting](t.Context(), c, "SELECT Id, Serial FROM PendingServiceRouting") {
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("0JR%015d", n), rec.ID)
		require.Equal(t, n, *rec.Serial)
		// While page k is consumed, page k+1 is requested, and no page after it.
		ahead := int64(min(n/10+2, 5))
		require.Eventually(t, func() bool { return served.Load() == ahead }, 5*time.Second, time.Millisecond, "record %d", n)
		n++
	}
	require.Equal(t, 45, n)
	require.Equal(t, APIUsage{Used: 5, Max: 15000, Seen: true}, c.APIUsage())
	require.Equal(t, 5.0, testutil.ToFloat64(c.metrics.apiUsed))
	require.Equal(t, 15000.0, testutil.ToFloat64(c.metrics.apiLimit))
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("query", "200")))
	require.Equal(t, 4.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("query_more", "200")))

	// Stopping early requests no page beyond the one read ahead, which has ended (or been
	// cancelled) when the range returns.
	served.Store(0)
	for _, err := range c.Query(t.Context(), "SELECT Id, Serial FROM PendingServiceRouting") {
		require.NoError(t, err)
		break
	}
	require.LessOrEqual(t, served.Load(), int64(2))
	time.Sleep(50 * time.Millisecond)
	require.LessOrEqual(t, served.Load(), int64(2))
}

func TestQueryErrorIsTypedAndFinal(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	var served atomic.Int64
	pagedQuery(f, 5, 10, &served)
	c, _ := testClient(t, f, nil)
	var errs []error
	for _, err := range c.Query(t.Context(), "SELECT nonsense") {
		errs = append(errs, err)
	}
	require.Len(t, errs, 1)
	var ae *APIError
	require.ErrorAs(t, errs[0], &ae)
	require.Equal(t, "MALFORMED_QUERY", ae.Code)
	require.False(t, ae.Retryable)
	require.Zero(t, retries(t, c))
}

func flaky(f *fakeOrg, pattern string, failures []func(http.ResponseWriter), ok func(http.ResponseWriter, *http.Request)) *atomic.Int64 {
	var calls atomic.Int64
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		n := int(calls.Add(1))
		if n <= len(failures) {
			failures[n-1](w)
			return
		}
		ok(w, r)
	})
	return &calls
}

func status(code int, retryAfter string, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	calls := flaky(f, "GET /services/data/v63.0/limits/", []func(http.ResponseWriter){
		status(503, "2", "busy"),
		status(429, "5", `[{"message":"slow down","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`),
		status(500, "", `[{"message":"oops","errorCode":"UNKNOWN_EXCEPTION"}]`),
		status(400, "", `[{"message":"locked","errorCode":"UNABLE_TO_LOCK_ROW"}]`),
	}, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"DailyApiRequests":{"Max":15000,"Remaining":14000},"DataStorageMB":{"Max":5,"Remaining":5}}`)
	})
	synctest.Test(t, func(t *testing.T) { retriesHonourRetryAfter(t, f, calls) })
	t.Run("give up", func(t *testing.T) {
		f := newFakeOrg(t)
		calls := flaky(f, "GET /services/data/v63.0/limits/", nil, func(w http.ResponseWriter, _ *http.Request) {
			status(503, "", "down")(w)
		})
		synctest.Test(t, func(t *testing.T) {
			c, log := testClient(t, f, func(o *Options) { o.MaxRetries = 3 })
			_, err := c.Limits(t.Context())
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, 503, ae.Status)
			require.Equal(t, int64(4), calls.Load())
			require.Len(t, log.Waits(), 3)
		})
	})
}

func retriesHonourRetryAfter(t *testing.T, f *fakeOrg, calls *atomic.Int64) {
	reg := prometheus.NewPedanticRegistry()
	c, timer := testClient(t, f, func(o *Options) { o.Registerer = reg })
	lim, err := c.Limits(t.Context())
	require.NoError(t, err)
	require.Equal(t, Limit{Max: 15000, Remaining: 14000}, lim["DailyApiRequests"])
	require.Equal(t, int64(5), calls.Load())
	waits := timer.Waits()
	require.Len(t, waits, 4)
	require.GreaterOrEqual(t, waits[0], 2*time.Second)
	require.GreaterOrEqual(t, waits[1], 5*time.Second)
	require.Less(t, waits[2], time.Second)
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.retries.WithLabelValues("limits", "503")))
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.retries.WithLabelValues("limits", "UNABLE_TO_LOCK_ROW")))
}

func TestRetriesGiveUp(t *testing.T) {
	t.Parallel()
	var ae *APIError
	// A Retry-After beyond MaxRetryWait is final at once.
	f2 := newFakeOrg(t)
	calls2 := flaky(f2, "GET /services/data/v63.0/limits/", nil, func(w http.ResponseWriter, _ *http.Request) {
		status(429, "3600", "")(w)
	})
	c2, _ := testClient(t, f2, nil)
	_, err := c2.Limits(t.Context())
	require.ErrorAs(t, err, &ae)
	require.Equal(t, time.Hour, ae.RetryAfter)
	require.Equal(t, int64(1), calls2.Load())
}

func TestUnauthorizedRefreshesOnce(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	var calls atomic.Int64
	f.mux.HandleFunc("PATCH /services/data/v63.0/sobjects/Case/{id}", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		f.expire() // every request kills the session: the client must give up after one refresh
		w.WriteHeader(401)
		_, _ = io.WriteString(w, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`)
	})
	c, _ := testClient(t, f, nil)
	err := c.Update(t.Context(), "Case", "500000000000001AAA", map[string]any{"Status": "Closed"})
	require.True(t, IsSessionExpired(err), "%v", err)
	require.Equal(t, int64(2), calls.Load())
	require.Equal(t, int64(2), f.tokens.Load())
	require.Zero(t, retries(t, c))
}

func TestRecordCalls(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	var mu sync.Mutex
	var got []string
	record := func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b)+" "+r.Header.Get("Sforce-Call-Options"))
		mu.Unlock()
		switch r.Method {
		case http.MethodPost:
			w.WriteHeader(201)
			_, _ = io.WriteString(w, `{"id":"0Bz000000000002AAA","success":true,"errors":[]}`)
		case http.MethodGet:
			_, _ = io.WriteString(w, `{"Id":"0JR000000000001AAA","IsPushed":true}`)
		case http.MethodDelete:
			if strings.Contains(r.URL.Path, "gone") {
				w.WriteHeader(404)
				_, _ = io.WriteString(w, `[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]`)
				return
			}
			w.WriteHeader(204)
		default:
			w.WriteHeader(204)
		}
	}
	f.mux.HandleFunc("/services/data/v63.0/sobjects/", record)
	c, _ := testClient(t, f, func(o *Options) { o.CallOptionsClient = "omniroute" })

	id, err := c.Create(t.Context(), "AgentWork", NewAgentWork{ServiceChannelID: "0N9A", WorkItemID: "0MwA", UserID: "005A"})
	require.NoError(t, err)
	require.Equal(t, "0Bz000000000002AAA", id)
	require.NoError(t, c.Update(t.Context(), "PendingServiceRouting", "0JR000000000001AAA", map[string]any{"IsReadyForRouting": true}))
	var psr PendingServiceRouting
	require.NoError(t, c.Get(t.Context(), "PendingServiceRouting", "0JR000000000001AAA", []string{"Id", "IsPushed"}, &psr))
	require.True(t, psr.IsPushed)
	require.NoError(t, c.Delete(t.Context(), "AgentWork", "0Bz000000000002AAA"))
	err = c.Delete(t.Context(), "AgentWork", "0Bzgone000000001AA")
	require.True(t, IsNotFound(err), "%v", err)

	require.Equal(t, []string{
		`POST /services/data/v63.0/sobjects/AgentWork/ {"ServiceChannelId":"0N9A","WorkItemId":"0MwA","UserId":"005A"} client=omniroute`,
		`PATCH /services/data/v63.0/sobjects/PendingServiceRouting/0JR000000000001AAA {"IsReadyForRouting":true} client=omniroute`,
		`GET /services/data/v63.0/sobjects/PendingServiceRouting/0JR000000000001AAA  client=omniroute`,
		`DELETE /services/data/v63.0/sobjects/AgentWork/0Bz000000000002AAA  client=omniroute`,
		`DELETE /services/data/v63.0/sobjects/AgentWork/0Bzgone000000001AA  client=omniroute`,
	}, got)

	// Bad input never reaches the wire.
	require.Error(t, c.Update(t.Context(), "AgentWork", "../../limits", nil))
	require.Error(t, c.Delete(t.Context(), "Agent Work", "0Bz000000000002AAA"))
	_, err = c.Create(t.Context(), "AgentWork/../x", map[string]any{})
	require.Error(t, err)
	require.Len(t, got, 5)
}

func TestCollectionsBatchBy200(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	var mu sync.Mutex
	var sizes []int
	f.mux.HandleFunc("/services/data/v63.0/composite/sobjects", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		var req struct {
			AllOrNone bool             `json:"allOrNone"`
			Records   []map[string]any `json:"records"`
		}
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		require.True(t, req.AllOrNone)
		mu.Lock()
		sizes = append(sizes, len(req.Records))
		mu.Unlock()
		res := make([]map[string]any, len(req.Records))
		for i, rec := range req.Records {
			attrs := rec["attributes"].(map[string]any)
			require.Equal(t, "AgentWork", attrs["type"])
			if rec["UserId"] == "bad" {
				res[i] = map[string]any{"success": false, "errors": []map[string]any{{"statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid cross reference id", "fields": []string{"UserId"}}}}
				continue
			}
			id, _ := rec["id"].(string)
			if r.Method == http.MethodPost {
				id = fmt.Sprintf("0Bz%015d", i)
			}
			res[i] = map[string]any{"id": id, "success": true, "errors": []any{}}
		}
		_ = json.NewEncoder(w).Encode(res)
	})
	c, _ := testClient(t, f, nil)
	recs := make([]Record, 450)
	for i := range recs {
		recs[i] = Record{Type: "AgentWork", Fields: map[string]any{"UserId": "005x", "WorkItemId": "0Mw"}}
	}
	recs[201].Fields["UserId"] = "bad"
	res, err := c.CreateCollection(t.Context(), recs, true)
	require.NoError(t, err)
	require.Equal(t, []int{200, 200, 50}, sizes)
	require.Len(t, res, 450)
	require.NoError(t, res[0].Err())
	var ae *APIError
	require.ErrorAs(t, res[201].Err(), &ae)
	require.Equal(t, "INVALID_CROSS_REFERENCE_KEY", ae.Code)
	require.Equal(t, []string{"UserId"}, ae.Fields)

	upd := []Record{{Type: "AgentWork", ID: "0Bz000000000001AAA", Fields: map[string]any{"Status": "x"}}}
	res, err = c.UpdateCollection(t.Context(), upd, true)
	require.NoError(t, err)
	require.Equal(t, "0Bz000000000001AAA", res[0].ID)
	_, err = c.UpdateCollection(t.Context(), []Record{{Type: "AgentWork"}}, true)
	require.Error(t, err)
}

func TestNewClientOptions(t *testing.T) {
	t.Parallel()
	_, err := New(Options{})
	require.Error(t, err)
	f := newFakeOrg(t)
	ts, err := NewTokenSource(TokenOptions{Grant: GrantClientCredentials, LoginURL: f.srv.URL, ClientID: "c", ClientSecret: "s"})
	require.NoError(t, err)
	_, err = New(Options{Tokens: ts, APIVersion: "latest"})
	require.Error(t, err)
	c, err := New(Options{Tokens: ts, APIVersion: "v62.0"})
	require.NoError(t, err)
	require.Equal(t, "62.0", c.APIVersion())
}

// A stuck response is cut off by RequestTimeout and, for a read, retried.
func TestRequestTimeoutRetriesReads(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var calls atomic.Int64
	f.mux.HandleFunc("GET /services/data/v63.0/limits/", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select { // hang until the client gives up
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		_, _ = io.WriteString(w, `{"DailyApiRequests":{"Max":1,"Remaining":1}}`)
	})
	c, _ := testClient(t, f, func(o *Options) { o.RequestTimeout = 500 * time.Millisecond })
	_, err := c.Limits(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(2), calls.Load())
	require.Equal(t, 1, retries(t, c))
}

// A network failure while getting the token happens before the request
// is sent, so even a create is retried.
func TestCreateRetriedWhenTheTokenRequestFails(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	var tokenCalls atomic.Int64
	f.mux.HandleFunc("POST /flaky/services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		if tokenCalls.Add(1) == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close() // connection reset, no response
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"AT2","instance_url":"`+f.srv.URL+`"}`)
	})
	var creates atomic.Int64
	f.mux.HandleFunc("POST /services/data/v63.0/sobjects/Case/", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer AT2", r.Header.Get("Authorization"))
		creates.Add(1)
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{"id":"500000000000001AAA","success":true,"errors":[]}`)
	})
	ts, err := NewTokenSource(TokenOptions{Grant: GrantClientCredentials, LoginURL: f.srv.URL + "/flaky", ClientID: "c", ClientSecret: "s", HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	c, err := New(Options{Tokens: ts, HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	id, err := c.Create(t.Context(), "Case", map[string]any{"Subject": "x"})
	require.NoError(t, err)
	require.Equal(t, "500000000000001AAA", id)
	require.Equal(t, int64(2), tokenCalls.Load())
	require.Equal(t, int64(1), creates.Load())
	require.Equal(t, 1, retries(t, c))
}

// A create that could not even connect was never sent: it is retried,
// unlike one whose connection broke after sending.
func TestCreateRetriedWhenTheConnectionIsRefused(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there any more
	f.mux.HandleFunc("POST /dead/services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"AT","instance_url":"`+deadURL+`"}`)
	})
	ts, err := NewTokenSource(TokenOptions{Grant: GrantClientCredentials, LoginURL: f.srv.URL + "/dead", ClientID: "c", ClientSecret: "s", HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	c, _ := recordingClient(t, ts, f.srv.Client(), func(o *Options) { o.MaxRetries = 2 })
	_, err = c.Create(t.Context(), "Case", map[string]any{"Subject": "x"})
	require.Error(t, err)
	require.Equal(t, 2, retries(t, c), "refused connections are retried")
	require.Equal(t, 3.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues("create", "error")))
}

// awaitedRecord is a record whose decoding waits (up to 5 s) until awaitServed reaches 2: the
// second page has been requested.
type awaitedRecord struct{ ID string }

var awaitServed *atomic.Int64

func (r *awaitedRecord) UnmarshalJSON(b []byte) error {
	for deadline := time.Now().Add(5 * time.Second); awaitServed.Load() < 2; {
		if time.Now().After(deadline) {
			return errors.New("the next page was not requested while this one decoded")
		}
		time.Sleep(time.Millisecond)
	}
	var v struct {
		ID string `json:"Id"`
	}
	err := json.Unmarshal(b, &v)
	r.ID = v.ID
	return err
}

// TestQueryRequestsTheNextPageBeforeDecoding: the next page's request leaves as soon as a
// page's body is in (its nextRecordsUrl comes before the records), so that decoding overlaps
// the round trip.
func TestQueryRequestsTheNextPageBeforeDecoding(t *testing.T) {
	f := newFakeOrg(t)
	awaitServed = &atomic.Int64{}
	pagedQuery(f, 15, 10, awaitServed)
	c, _ := testClient(t, f, nil)
	n := 0
	for rec, err := range QueryAs[awaitedRecord](t.Context(), c, "SELECT Id, Serial FROM PendingServiceRouting") {
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("0JR%015d", n), rec.ID)
		n++
	}
	require.Equal(t, 15, n)
}
