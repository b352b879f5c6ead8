package salesforce

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestStreamSkipsUndecodableEvents: a malformed event is counted, logged
// and skipped; the events around it still arrive, in order.
func TestStreamSkipsUndecodableEvents(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	var connects atomic.Int64
	f.mux.HandleFunc("POST /cometd/63.0", func(w http.ResponseWriter, r *http.Request) {
		var msgs []map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&msgs))
		w.Header().Set("Content-Type", "application/json")
		var out []any
		for _, m := range msgs {
			switch m["channel"] {
			case "/meta/handshake":
				out = append(out, map[string]any{"channel": "/meta/handshake", "id": m["id"], "successful": true, "version": "1.0",
					"clientId": "fake1", "supportedConnectionTypes": []string{"long-polling"}, "ext": map[string]any{"replay": true}})
			case "/meta/subscribe":
				out = append(out, map[string]any{"channel": "/meta/subscribe", "id": m["id"], "successful": true, "clientId": "fake1", "subscription": m["subscription"]})
			case "/meta/connect":
				if connects.Add(1) > 1 {
					select { // hold like a long poll until the client goes away
					case <-r.Context().Done():
						return
					case <-time.After(10 * time.Second):
					}
				}
				out = append(out,
					map[string]any{"channel": psrChannel, "data": json.RawMessage(`{"payload":{"ChangeEventHeader":{"entityName":"PendingServiceRouting","recordIds":["0JR000000000001AAA"],"changeType":"CREATE"}},"event":{"replayId":1}}`)},
					map[string]any{"channel": psrChannel, "data": json.RawMessage(`{"payload":{"no":"header"},"event":{"replayId":2}}`)},
					map[string]any{"channel": psrChannel, "data": json.RawMessage(`{"payload":{"ChangeEventHeader":{"entityName":"PendingServiceRouting","recordIds":["0JR000000000003AAA"],"changeType":"DELETE"}},"event":{"replayId":3}}`)},
					map[string]any{"channel": "/meta/connect", "id": m["id"], "successful": true, "clientId": "fake1", "advice": map[string]any{"reconnect": "retry", "interval": 0, "timeout": 110000}})
			case "/meta/disconnect":
				out = append(out, map[string]any{"channel": "/meta/disconnect", "id": m["id"], "successful": true})
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	ts, err := NewTokenSource(TokenOptions{Grant: GrantClientCredentials, LoginURL: f.srv.URL, ClientID: "c", ClientSecret: "s", HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	s, err := NewStream(StreamOptions{Tokens: ts, HTTPClient: f.srv.Client(), Channels: []string{psrChannel}, Registerer: reg, Logger: testLogger(t)})
	require.NoError(t, err)
	rs := start(t, s)
	m1, m3 := rs.next(t), rs.next(t)
	require.Equal(t, int64(1), m1.Event.ReplayID)
	require.Equal(t, int64(3), m3.Event.ReplayID)
	require.Equal(t, ChangeDelete, m3.Event.ChangeType)
	require.NoError(t, rs.stop())
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.decodeErrors.WithLabelValues(psrChannel)))
	require.Equal(t, int64(3), s.ResumePoints()[psrChannel])
}
