package connector

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDefaultHTTPClientKeepsItsConnections: the daemon's own HTTP client keeps a connection for
// each call it had in flight at once to the org, so steady overlapping calls (insert slots,
// look-ups, the stream's long poll, userinfo checks) reuse them instead of opening new ones:
// against Salesforce each new one is a TCP and TLS handshake more on an insert's path.
// net/http's default transport keeps 2 a host and closed the others after nearly every round.
func TestDefaultHTTPClientKeepsItsConnections(t *testing.T) {
	t.Parallel()
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(20 * time.Millisecond) // the calls of a round overlap
		_, _ = io.WriteString(w, "{}")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	client := DefaultHTTPClient()
	t.Cleanup(client.CloseIdleConnections)
	const atOnce, rounds = 8, 5
	for range rounds {
		var wg sync.WaitGroup
		for range atOnce {
			wg.Go(func() {
				resp, err := client.Get(srv.URL)
				if !assertNoError(t, err) {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			})
		}
		wg.Wait()
	}
	require.LessOrEqual(t, opened.Load(), int64(atOnce), "connections opened for %d rounds of %d calls at once", rounds, atOnce)
	require.Equal(t, 60*time.Second, client.Timeout)
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}
