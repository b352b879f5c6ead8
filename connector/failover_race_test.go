package connector

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

// soql runs a query on the emulator as user and returns the first row's field.
func soql(t *testing.T, em *emulator.Emulator, token, q, field string) string {
	t.Helper()
	return soqlAny(t, em, token, q, field).(string)
}

func soqlAny(t *testing.T, em *emulator.Emulator, token, q, field string) any {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/services/data/v64.0/query?q="+url.QueryEscape(q), nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	em.ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var res struct{ Records []map[string]any }
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &res))
	require.NotEmpty(t, res.Records, q)
	return res.Records[0][field]
}

// TestFailoverLateInsert: the predecessor's insert lands after the new leader's reconcile read
// AgentWork (the handover's timing and the write fence rule it out but for a freeze in the
// instant an insert leaves; the test injects it directly), and
// the stream delivers it only after the new leader decided to route that PSR. The new leader's
// own insert for the same PSR must not give it a second AgentWork; the PSR ends with the
// predecessor's offer.
func TestFailoverLateInsert(t *testing.T) {
	t.Parallel()
	seed := demoSeed()
	for i, u := range seed.Users {
		if u.Username == agent1 || u.Username == agent2 {
			seed.Users[i].Skills = map[string]float64{"English": 8, "German": 6, "Billing": 3, "Technical": 5}
		}
	}
	em, err := emulator.New(emulator.Options{Seed: seed, RandSeed: 1})
	require.NoError(t, err)
	t.Cleanup(em.Close)
	for _, u := range []string{agent1, agent2} {
		require.NoError(t, em.SetPresence(u, "Available"))
	}
	work, err := em.CreateWork(emulator.WorkRequest{Channel: "Chat", Queue: "Support_EN"})
	require.NoError(t, err)
	token, err := em.IssueToken(agent1)
	require.NoError(t, err)
	user := soql(t, em, token, "SELECT Id FROM User WHERE Username = '"+agent1+"'", "Id")
	channel := soql(t, em, token, "SELECT ServiceChannelId FROM PendingServiceRouting WHERE Id = '"+work.PSRID+"'", "ServiceChannelId")
	weight := soqlAny(t, em, token, "SELECT CapacityWeight FROM PendingServiceRouting WHERE Id = '"+work.PSRID+"'", "CapacityWeight")

	// The predecessor's insert, on its own API version, lands just after the new leader's
	// reconcile read AgentWork; its change events reach the stream half a second late.
	// The reconcile runs its queries at once: the insert goes in once both the waiting PSRs and
	// the open AgentWork have been read, whichever came last.
	var (
		once                 sync.Once
		mu                   sync.Mutex
		readPSRs, readOffers bool
	)
	lateStatus := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		em.ServeHTTP(w, r)
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/services/data/v63.0/query") {
			return
		}
		q := r.URL.Query().Get("q")
		mu.Lock()
		// The PSRs' records, not the queries that size their read (COUNT(), lowest and highest Id).
		readPSRs = readPSRs || strings.Contains(q, "FROM PendingServiceRouting") && !strings.Contains(q, "COUNT()") && !strings.Contains(q, "ORDER BY Id")
		readOffers = readOffers || strings.Contains(q, "FROM AgentWork WHERE Status IN")
		both := readPSRs && readOffers
		mu.Unlock()
		if both {
			once.Do(func() {
				require.NoError(t, em.SetLatency(emulator.LatencyFault{MS: 500, Scope: "cometd"}))
				body, _ := json.Marshal(map[string]any{"ServiceChannelId": channel, "WorkItemId": work.WorkItemID,
					"UserId": user, "PendingServiceRoutingId": work.PSRID, "CapacityWeight": weight})
				ir := httptest.NewRequest(http.MethodPost, "/services/data/v64.0/sobjects/AgentWork", strings.NewReader(string(body)))
				ir.Header.Set("Authorization", "Bearer "+token)
				ir.Header.Set("Content-Type", "application/json")
				iw := httptest.NewRecorder()
				em.ServeHTTP(iw, ir)
				lateStatus <- iw.Code
			})
		}
	}))
	t.Cleanup(srv.Close)

	b := startCandidate(t, srv.URL, "b", "63.0", newLeaseClientset())
	b.d.waitCondition(t, CondLeader)
	b.d.waitCondition(t, CondReconcileApplied)
	require.Equal(t, http.StatusCreated, <-lateStatus, "the predecessor's late insert landed")

	// The new leader routed the PSR from its snapshot: its insert reached the emulator.
	require.Eventually(t, func() bool {
		for _, r := range em.Requests() {
			if r.Method == http.MethodPost && (strings.HasPrefix(r.Path, "/services/data/v63.0/sobjects/AgentWork") ||
				strings.HasPrefix(r.Path, "/services/data/v63.0/composite/sobjects")) {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the new leader tried the PSR; logs:\n%s", b.d.logs.String())
	time.Sleep(2 * time.Second) // the stream delivers the late insert; nothing more is written
	var got []emulator.AgentWorkInfo
	for _, aw := range em.AgentWorks() {
		if aw.PSRID == work.PSRID {
			got = append(got, aw)
		}
	}
	require.Len(t, got, 1, "one AgentWork for the PSR: %+v\nlogs:\n%s", got, b.d.logs.String())
	require.Equal(t, user, got[0].UserID, "the predecessor's offer stands")
	// What kept it to one: the emulator refused the second insert for a pushed PSR. Salesforce
	// documents no such refusal, so the daemon's own guard is the timing of the handover
	// (maxDrain, releaseFence, errKeepLease, Elector.Writable), which this test bypasses; if the
	// emulator ever accepts the second insert, this test fails and the look-up guard is due.
	require.Contains(t, b.d.logs.String(), "The work item is already pushed to an agent.")
}
