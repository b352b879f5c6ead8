package bayeux

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPostAnswersOwnTheirBytes: post reads each answer into a pooled buffer, which the next
// answers overwrite; the messages post returned (strings, ids, subscription, ext, event
// payloads, a bad event's raw data and error) are their own and stay as they were decoded.
func TestPostAnswersOwnTheirBytes(t *testing.T) {
	t.Parallel()
	answer := func(i int) string {
		return fmt.Sprintf(`[{"channel":"/meta/connect","id":%d,"clientId":"client-%03d","successful":false,"error":"403:x%03d:denied",`+
			`"advice":{"reconnect":"retry","interval":%d},"ext":{"sfdc":{"failureReason":"401::reason-%03d"}},"subscription":"/data/Sub%03d"},`+
			`{"channel":"/data/Event%03d","data":{"schema":"schema-%03d","payload":{"Field%03d":"value-%03d","N":%d},"sobject":{"Id":"id-%03d"},"event":{"replayId":"%d"}}},`+
			`{"channel":"/data/Bad%03d","data":"not an object %03d"}]`, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i)
	}
	const rounds = 40
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		i := int(n.Add(1)) - 1
		if i%2 == 1 {
			// Garbage longer than any answer: it overwrites all of a reused buffer.
			_, _ = w.Write([]byte(strings.Repeat("#", 2*len(answer(0)))))
			return
		}
		_, _ = w.Write([]byte(answer(i)))
	}))
	defer srv.Close()
	c, err := New(Options{Endpoint: func(context.Context) (string, error) { return srv.URL, nil }, HTTPClient: srv.Client()})
	require.NoError(t, err)
	s := &session{c: c, endpoint: srv.URL}
	got := map[int][]message{}
	for i := range rounds {
		msgs, _, err := s.post(t.Context(), "connect", []message{{Channel: chConnect}}, 5*time.Second)
		if i%2 == 1 {
			require.Error(t, err)
			continue
		}
		require.NoError(t, err)
		got[i] = msgs
	}
	for i, msgs := range got {
		want, err := decodeResponse([]byte(answer(i)))
		require.NoError(t, err)
		require.Equal(t, want, msgs, "answer %d", i)
		require.Equal(t, fmt.Sprintf("client-%03d", i), msgs[0].ClientID)
		require.JSONEq(t, fmt.Sprintf(`"value-%03d"`, i), string(msgs[1].Data.Payload[fmt.Sprintf("Field%03d", i)]))
		require.Equal(t, fmt.Sprintf(`"not an object %03d"`, i), string(msgs[2].raw))
	}
}
