package emulator

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// limitsPair reads one {Max, Remaining} entry of /limits.
func (h *harness) limitsPair(name string) (maxV, remaining int64) {
	h.t.Helper()
	s, b := h.rest(http.MethodGet, "limits", nil)
	require.Equal(h.t, http.StatusOK, s, string(b))
	var out map[string]struct{ Max, Remaining int64 }
	require.NoError(h.t, json.Unmarshal(b, &out))
	p, ok := out[name]
	require.True(h.t, ok, "no %s in %s", name, b)
	return p.Max, p.Remaining
}

// connectOnce sends one /meta/connect and returns the whole reply array.
func (c *cometClient) connectOnce() []map[string]any {
	c.t.Helper()
	return c.send(map[string]any{"channel": "/meta/connect", "connectionType": "long-polling"})
}

var serverDisconnect = map[string]any{"channel": "/meta/disconnect", "successful": true}

// Dropped clients: the next connect answers 403::Unknown client (advice handshake, interval
// 0) after a server-sent /meta/disconnect, from Go and from the control API.
func TestDropStreamingClientsSendsDisconnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, via := range []string{"go", "control"} {
		c := h.comet(h.token)
		c.handshake()
		if via == "go" {
			h.em.DropStreamingClients()
		} else {
			s, b := h.control(http.MethodPost, "streaming/drop-clients", nil)
			require.Equal(t, http.StatusOK, s, string(b))
		}
		out := c.connectOnce()
		require.Len(t, out, 2, "%v", out)
		require.Equal(t, serverDisconnect, out[0])
		require.Equal(t, map[string]any{"advice": map[string]any{"reconnect": "handshake", "interval": 0.0},
			"channel": "/meta/connect", "id": out[1]["id"], "error": "403::Unknown client", "successful": false}, out[1])
	}
}

func TestStreamingFaultsFromControlAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, b := h.control(http.MethodPost, "streaming/faults", map[string]any{"kind": "too-busy", "op": "handshake", "count": 1})
	require.Equal(t, http.StatusOK, s, string(b))
	c := h.comet(h.token)
	out := c.send(map[string]any{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": []string{"long-polling"}})
	require.Equal(t, "403::Handshake denied", out[0]["error"])
	require.Equal(t, map[string]any{"failureReason": "503::Server is too busy. Please try your request again later."},
		out[0]["ext"].(map[string]any)["sfdc"])

	s, b = h.control(http.MethodPost, "streaming/faults", map[string]any{"kind": "concurrent-clients", "count": 1})
	require.Equal(t, http.StatusOK, s, string(b))
	out = c.send(map[string]any{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": []string{"long-polling"}})
	require.Equal(t, "403::Handshake denied", out[0]["error"])
	require.Equal(t, map[string]any{"failureReason": "403::Organization concurrent user limit exceeded"},
		out[0]["ext"].(map[string]any)["sfdc"])
	c.handshake()

	s, b = h.control(http.MethodPost, "streaming/faults", map[string]any{"kind": "daily-limit"})
	require.Equal(t, http.StatusOK, s, string(b))
	out = c.connectOnce()
	require.Equal(t, serverDisconnect, out[0])
	require.Equal(t, "403::Organization total events daily limit exceeded", out[1]["error"])
	_, rem := h.limitsPair("DailyDeliveredPlatformEvents")
	require.Equal(t, int64(0), rem)
	// DELETE /faults disarms it.
	s, _ = h.control(http.MethodDelete, "faults", nil)
	require.Equal(t, http.StatusOK, s)
	c.handshake()

	for _, body := range []map[string]any{{"kind": "nope"}, {"kind": "too-busy"}, {"kind": "too-busy", "op": "x", "count": 1}} {
		s, _ := h.control(http.MethodPost, "streaming/faults", body)
		require.Equal(t, http.StatusBadRequest, s, body)
	}
	s, _ = h.control(http.MethodPost, "streaming/limits", map[string]any{"maxClients": -1})
	require.Equal(t, http.StatusBadRequest, s)
	require.ErrorIs(t, h.em.InjectStreamingFault(StreamingFault{Kind: "nope"}), ErrInvalid)
}

// Deliveries of change events count in /limits DailyDeliveredPlatformEvents, per subscriber,
// and a configured allocation is enforced with Salesforce's daily-limit error.
func TestDailyDeliveredPlatformEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.DailyDeliveredEvents = 2 })
	maxV, rem := h.limitsPair("DailyDeliveredPlatformEvents")
	require.Equal(t, []int64{2, 2}, []int64{maxV, rem})
	a, b := h.comet(h.token), h.comet(h.token)
	for _, c := range []*cometClient{a, b} {
		c.handshake()
		require.Equal(t, true, c.subscribe("/data/PendingServiceRoutingChangeEvent", -1)["successful"])
	}
	h.createWork("Case", "Support_EN")
	require.Len(t, a.events(1), 1)
	require.Len(t, b.events(1), 1)
	_, rem = h.limitsPair("DailyDeliveredPlatformEvents")
	require.Equal(t, int64(0), rem, "two subscribers, one event each: two deliveries")

	out := a.connectOnce()
	require.Equal(t, serverDisconnect, out[0])
	require.Equal(t, "403::Organization total events daily limit exceeded", out[1]["error"])

	// Raise the allocation over the control API; a new session delivers again.
	s, body := h.control(http.MethodPost, "streaming/limits", map[string]any{"dailyDeliveredEvents": 10})
	require.Equal(t, http.StatusOK, s, string(body))
	a.handshake()
	require.Equal(t, true, a.subscribe("/data/PendingServiceRoutingChangeEvent", -1)["successful"])
	h.createWork("Case", "Support_EN")
	require.Len(t, a.events(1), 1)
	maxV, rem = h.limitsPair("DailyDeliveredPlatformEvents")
	require.Equal(t, []int64{10, 7}, []int64{maxV, rem})

	s, _ = h.control(http.MethodPost, "streaming/limits/reset", nil)
	require.Equal(t, http.StatusOK, s)
	_, rem = h.limitsPair("DailyDeliveredPlatformEvents")
	require.Equal(t, int64(10), rem)
}

// Without a configured allocation deliveries are counted against the reported 25,000 but
// not enforced; the concurrent-client allocation is 1,000 and counts live clients.
func TestStreamingLimitsDefaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe("/data/PendingServiceRoutingChangeEvent", -1)["successful"])
	h.createWork("Case", "Support_EN")
	require.Len(t, c.events(1), 1)
	maxV, rem := h.limitsPair("DailyDeliveredPlatformEvents")
	require.Equal(t, []int64{25_000, 24_999}, []int64{maxV, rem})
	maxV, rem = h.limitsPair("DurableStreamingApiConcurrentClients")
	require.Equal(t, []int64{1000, 999}, []int64{maxV, rem})

	h2 := newHarness(t, func(o *Options) { o.MaxStreamingClients = 1 })
	c1, c2 := h2.comet(h2.token), h2.comet(h2.token)
	c1.handshake()
	out := c2.send(map[string]any{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": []string{"long-polling"}})
	require.Equal(t, "403::Handshake denied", out[0]["error"])
	require.Equal(t, map[string]any{"failureReason": "403::Organization concurrent user limit exceeded"},
		out[0]["ext"].(map[string]any)["sfdc"])
	s, b := h2.control(http.MethodPost, "streaming/limits", map[string]any{"maxClients": 0})
	require.Equal(t, http.StatusOK, s, string(b))
	c2.handshake()
}

// HTTP-level faults on /cometd keep their status but answer a Bayeux error array.
func TestCometDHTTPFaultIsBayeux(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	require.NoError(t, h.em.InjectHTTPFault(HTTPFault{Status: 503, Count: 1, Scope: "cometd", RetryAfterSeconds: 3}))
	s, b, hdr := h.do(http.MethodPost, "/cometd/62.0", h.token, []any{map[string]any{"channel": "/meta/handshake", "id": "1"}})
	require.Equal(t, http.StatusServiceUnavailable, s)
	require.Equal(t, "3", hdr.Get("Retry-After"))
	var out []map[string]any
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	require.Equal(t, []map[string]any{{
		"ext":     map[string]any{"sfdc": map[string]any{"failureReason": "503::Server is too busy. Please try your request again later."}},
		"channel": "/meta/handshake", "id": "1", "error": "503::Server is too busy. Please try your request again later.", "successful": false,
	}}, out)
}
