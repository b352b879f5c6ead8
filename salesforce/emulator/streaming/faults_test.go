package streaming

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A client dropped while it holds no connect gets the server-sent /meta/disconnect with its
// next connect, before the 403::Unknown client reply; a client that expired does not.
func TestDropAllClientsNextConnectCarriesDisconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute})
	c := e.client(t)
	c.handshake()
	c.connect()
	e.srv.DropAllClients()
	server, rep := c.connect()
	require.Equal(t, []msg{{"channel": "/meta/disconnect", "successful": true}}, server)
	require.Equal(t, msg{"advice": map[string]any{"reconnect": "handshake", "interval": 0.0}, "channel": "/meta/connect",
		"id": rep["id"], "error": "403::Unknown client", "successful": false}, rep)

	// Expiry is not a server-sent disconnect.
	c2 := e.client(t)
	c2.handshake()
	c2.connect()
	e.clock.Advance(time.Minute)
	server, rep = c2.connect()
	require.Empty(t, server)
	require.Equal(t, "403::Unknown client", rep["error"])
}

func TestTooBusyFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute})
	require.NoError(t, e.srv.InjectFault(Fault{Kind: FaultTooBusy, Op: "handshake", Count: 1}))
	c := e.client(t)
	r := c.send(c.handshakeMsg())
	require.Equal(t, msg{
		"ext":     map[string]any{"sfdc": map[string]any{"failureReason": ErrTextTooBusy}, "replay": true, "payload.format": true},
		"advice":  map[string]any{"reconnect": "none"},
		"channel": "/meta/handshake", "id": r[0]["id"], "error": "403::Handshake denied", "successful": false,
	}, r[0])
	c.handshake() // the fault is used up

	require.NoError(t, e.srv.InjectFault(Fault{Kind: FaultTooBusy, Op: "subscribe", Count: 1}))
	sub := c.subscribe("/data/X", nil)
	require.Equal(t, msg{
		"ext": map[string]any{"sfdc": map[string]any{"failureReason": ErrTextTooBusy}}, "clientId": c.clientID,
		"channel": "/meta/subscribe", "id": sub["id"], "subscription": "/data/X", "error": ErrTextTooBusy, "successful": false,
	}, sub)
	require.Equal(t, true, c.subscribe("/data/X", nil)["successful"])

	require.NoError(t, e.srv.InjectFault(Fault{Kind: FaultTooBusy, Count: 1})) // op defaults to connect
	_, rep := c.connect()
	require.Equal(t, msg{
		"ext": map[string]any{"sfdc": map[string]any{"failureReason": ErrTextTooBusy}}, "clientId": c.clientID,
		"advice": map[string]any{"reconnect": "none", "interval": 0.0}, "channel": "/meta/connect", "id": rep["id"],
		"error": ErrTextTooBusy, "successful": false,
	}, rep)
	_, rep = c.connect()
	require.Equal(t, "403::Unknown client", rep["error"], "the session does not survive a too-busy connect")

	for _, f := range []Fault{{Kind: "nope", Count: 1}, {Kind: FaultTooBusy, Op: "publish", Count: 1}, {Kind: FaultTooBusy}, {Kind: FaultConcurrentClients}} {
		require.Error(t, e.srv.InjectFault(f), "%+v", f)
	}
}

func TestConcurrentClientLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute, MaxClients: 2})
	a, b, c := e.client(t), e.client(t), e.client(t)
	a.handshake()
	b.handshake()
	r := c.send(c.handshakeMsg())
	denied := msg{
		"ext":     map[string]any{"sfdc": map[string]any{"failureReason": ErrTextConcurrentClients}, "replay": true, "payload.format": true},
		"advice":  map[string]any{"reconnect": "none"},
		"channel": "/meta/handshake", "id": r[0]["id"], "error": "403::Handshake denied", "successful": false,
	}
	require.Equal(t, denied, r[0])
	n, limit := e.srv.ClientUsage()
	require.Equal(t, 2, n)
	require.Equal(t, 2, limit)

	// A disconnect frees a place; so does expiry.
	require.Equal(t, true, a.send(msg{"channel": "/meta/disconnect", "clientId": a.clientID, "id": "d"})[0]["successful"])
	c.handshake()
	e.clock.Advance(time.Minute)
	a.handshake()

	// The injected fault refuses whatever the count.
	require.NoError(t, e.srv.SetMaxClients(0))
	require.NoError(t, e.srv.InjectFault(Fault{Kind: FaultConcurrentClients, Count: 1}))
	r = b.send(b.handshakeMsg())
	require.Equal(t, "403::Handshake denied", r[0]["error"])
	require.Equal(t, ErrTextConcurrentClients, r[0]["ext"].(map[string]any)["sfdc"].(map[string]any)["failureReason"])
	b.handshake()
	require.Error(t, e.srv.SetMaxClients(-1))
}

func TestDailyDeliveryLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute, DailyDeliveryLimit: 3})
	c := e.client(t)
	c.handshake()
	c.connect()
	require.Equal(t, true, c.subscribe("/data/X", nil)["successful"])
	require.Equal(t, true, c.subscribe("/topic/T", nil)["successful"])
	ids := []int64{e.publish("/data/X"), e.publish("/topic/T"), e.publish("/data/X")}
	events, _ := c.connect()
	require.Equal(t, ids, replayIDs(events), "PushTopic events do not count")
	used, limit, exhausted := e.srv.Deliveries()
	require.Equal(t, []any{int64(2), int64(3), false}, []any{used, limit, exhausted})

	// Two more counted events: only one fits; it is delivered, the rest waits.
	first := e.publish("/data/X")
	e.publish("/data/X")
	events, _ = c.connect()
	require.Equal(t, []int64{first}, replayIDs(events))
	used, _, exhausted = e.srv.Deliveries()
	require.Equal(t, int64(3), used)
	require.True(t, exhausted)

	// The next connect gets the daily-limit error with a server-sent disconnect; the client is gone.
	server, rep := c.connect()
	require.Equal(t, []msg{{"channel": "/meta/disconnect", "successful": true}}, server)
	require.Equal(t, msg{"clientId": c.clientID, "advice": map[string]any{"reconnect": "none", "interval": 0.0},
		"channel": "/meta/connect", "id": rep["id"], "error": ErrTextDailyLimit, "successful": false}, rep)
	_, rep = c.connect()
	require.Equal(t, "403::Unknown client", rep["error"])

	// A new session meets the same error at its first connect until the window moves on.
	c.handshake()
	_, rep = c.connect()
	require.Equal(t, ErrTextDailyLimit, rep["error"])
	e.clock.Advance(24*time.Hour + time.Minute)
	c.handshake()
	_, rep = c.connect()
	require.Equal(t, true, rep["successful"])
	used, _, exhausted = e.srv.Deliveries()
	require.Equal(t, int64(0), used)
	require.False(t, exhausted)
}

// Using up the allocation ends the held connects of other clients with the error at once.
func TestDailyLimitEndsHeldConnects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute, DailyDeliveryLimit: 1})
	a, b := e.client(t), e.client(t)
	a.handshake()
	a.connect()
	b.handshake()
	b.connect()
	require.Equal(t, true, a.subscribe("/data/X", nil)["successful"])
	heldB := e.heldConnect(t, b)
	e.publish("/data/X")
	events, _ := a.connect()
	require.Len(t, events, 1)
	server, rep := split(t, <-heldB)
	require.Equal(t, []msg{{"channel": "/meta/disconnect", "successful": true}}, server)
	require.Equal(t, ErrTextDailyLimit, rep["error"])
}

func TestDailyLimitFaultAndReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute})
	c := e.client(t)
	c.handshake()
	c.connect()
	held := e.heldConnect(t, c)
	require.NoError(t, e.srv.InjectFault(Fault{Kind: FaultDailyLimit}))
	_, rep := split(t, <-held)
	require.Equal(t, ErrTextDailyLimit, rep["error"])
	_, _, exhausted := e.srv.Deliveries()
	require.True(t, exhausted)
	e.srv.ResetDeliveries()
	c.handshake()
	_, rep = c.connect()
	require.Equal(t, true, rep["successful"])

	require.NoError(t, e.srv.InjectFault(Fault{Kind: FaultDailyLimit}))
	e.srv.ClearFaults()
	c.handshake()
	_, rep = c.connect()
	require.Equal(t, true, rep["successful"])
	require.Error(t, e.srv.SetDeliveryLimit(-1))
	require.NoError(t, e.srv.SetDeliveryLimit(5))
	_, limit, _ := e.srv.Deliveries()
	require.Equal(t, int64(5), limit)
}

func TestWriteHTTPFaultIsBayeux(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	defer s.Close()
	for _, tc := range []struct {
		status int
		want   msg
	}{
		{503, msg{"ext": map[string]any{"sfdc": map[string]any{"failureReason": ErrTextTooBusy}}, "clientId": "c1",
			"channel": "/meta/connect", "id": "7", "error": ErrTextTooBusy, "successful": false}},
		{500, msg{"clientId": "c1", "channel": "/meta/connect", "id": "7", "error": "500::Internal Server Error", "successful": false}},
		{429, msg{"clientId": "c1", "channel": "/meta/connect", "id": "7", "error": "429::Too Many Requests", "successful": false}},
	} {
		req := httptest.NewRequest(http.MethodPost, "/cometd/66.0",
			strings.NewReader(`[{"channel":"/meta/connect","clientId":"c1","connectionType":"long-polling","id":"7"}]`))
		w := httptest.NewRecorder()
		s.WriteHTTPFault(w, req, tc.status)
		require.Equal(t, tc.status, w.Code)
		require.Contains(t, w.Header().Get("Content-Type"), "application/json")
		var got []msg
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got), w.Body.String())
		require.Equal(t, []msg{tc.want}, got)
	}
}
