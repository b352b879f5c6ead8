package streaming

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestHandshakeReplyAndCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.client(t)
	body, _ := json.Marshal([]msg{c.handshakeMsg()})
	req, err := http.NewRequest(http.MethodPost, e.url, strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var replies []msg
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&replies))
	require.Len(t, replies, 1)
	r := replies[0]
	clientID, _ := r["clientId"].(string)
	require.NotEmpty(t, clientID)
	delete(r, "clientId")
	want := msg{
		"ext":                      map[string]any{"replay": true, "payload.format": true},
		"minimumVersion":           "1.0",
		"supportedConnectionTypes": []any{"long-polling"},
		"channel":                  "/meta/handshake",
		"id":                       "1x1",
		"version":                  "1.0",
		"successful":               true,
	}
	require.Empty(t, cmp.Diff(want, r))
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "BAYEUX_BROWSER" {
			cookie = ck
		}
	}
	require.NotNil(t, cookie, "handshake must set BAYEUX_BROWSER")
	require.True(t, cookie.HttpOnly)
	require.Equal(t, "/", cookie.Path)
	require.Equal(t, "application/json;charset=UTF-8", resp.Header.Get("Content-Type"))
}

func TestFullLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: 300 * time.Millisecond})
	c := e.client(t)
	c.handshake()

	// The first connect returns at once with Salesforce's advice.
	events, rep := c.connect()
	require.Empty(t, events)
	require.Equal(t, true, rep["successful"])
	require.Equal(t, c.clientID, rep["clientId"])
	require.Equal(t, map[string]any{"interval": 0.0, "timeout": 300.0, "reconnect": "retry"}, rep["advice"])

	sub := c.subscribe("/data/AgentWorkChangeEvent", -1)
	require.Equal(t, msg{"clientId": c.clientID, "channel": "/meta/subscribe", "id": sub["id"],
		"subscription": "/data/AgentWorkChangeEvent", "successful": true}, sub)

	id := e.publish("/data/AgentWorkChangeEvent")
	events, rep = c.connect()
	require.Equal(t, true, rep["successful"])
	require.Equal(t, []int64{id}, replayIDs(events))
	require.Equal(t, "/data/AgentWorkChangeEvent", events[0]["channel"])
	require.Equal(t, "s1", events[0]["data"].(map[string]any)["schema"])

	unsub := c.send(msg{"channel": "/meta/unsubscribe", "clientId": c.clientID, "subscription": "/data/AgentWorkChangeEvent", "id": "u1"})
	require.Equal(t, true, unsub[0]["successful"])
	e.publish("/data/AgentWorkChangeEvent")
	events, rep = c.connect() // held until the advice timeout: nothing is subscribed
	require.Empty(t, events)
	require.Equal(t, true, rep["successful"])

	disc := c.send(msg{"channel": "/meta/disconnect", "clientId": c.clientID, "id": "d1"})
	require.Equal(t, msg{"channel": "/meta/disconnect", "clientId": c.clientID, "id": "d1", "successful": true}, disc[0])
	_, rep = c.connect()
	require.Equal(t, "403::Unknown client", rep["error"])

	st := e.srv.Stats()
	require.Equal(t, int64(2), st.Published)
	require.Equal(t, int64(1), st.Delivered)
	require.Equal(t, 0, st.Clients)
}

func TestBatchedRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.client(t)
	c.handshake()
	c.connect()
	a1 := e.publish("/data/A")
	b1 := e.publish("/data/B")
	a2 := e.publish("/data/A", "/data/B")

	replies := c.send(
		c.subscribeMsg("/data/A", -2),
		c.subscribeMsg("/data/B", -1),
		c.connectMsg(),
	)
	require.Len(t, replies, 5, "%v", replies)
	// Replayed events first, in replay-id order, then the three replies in request order.
	require.Equal(t, []int64{a1, a2}, replayIDs(replies[:2]))
	require.Equal(t, "/meta/subscribe", replies[2]["channel"])
	require.Equal(t, "/data/A", replies[2]["subscription"])
	require.Equal(t, "/meta/subscribe", replies[3]["channel"])
	require.Equal(t, "/data/B", replies[3]["subscription"])
	require.Equal(t, "/meta/connect", replies[4]["channel"])
	for _, r := range replies[2:] {
		require.Equal(t, true, r["successful"], "%v", r)
	}
	_ = b1

	// One event on two channels arrives once per subscribed channel, sharing its replay id.
	both := e.publish("/data/A", "/data/B")
	events, _ := c.connect()
	require.Equal(t, []int64{both, both}, replayIDs(events))
	require.ElementsMatch(t, []any{"/data/A", "/data/B"}, []any{events[0]["channel"], events[1]["channel"]})
}

func TestSingleObjectBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.client(t)
	body, _ := json.Marshal(c.handshakeMsg())
	status, out := c.raw(body)
	require.Equal(t, http.StatusOK, status)
	var r []msg
	require.NoError(t, json.Unmarshal(out, &r))
	require.Equal(t, true, r[0]["successful"])
}

func TestAuthorizationHeaderForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for _, h := range []string{"Bearer " + goodToken, "OAuth " + goodToken, goodToken, "bearer  " + goodToken, "oauth " + goodToken} {
		t.Run(h, func(t *testing.T) {
			c := e.client(t)
			c.authz = h
			c.handshake()
			_, rep := c.connect()
			require.Equal(t, true, rep["successful"])
			require.Equal(t, true, c.subscribe("/data/X", nil)["successful"])
		})
	}
}

func TestHandshakeAuthFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	tests := []struct {
		name, authz, reason string
	}{
		{"missing header", "", "401::Request requires authentication"},
		{"unknown token", "Bearer nope", "401::Authentication invalid"},
		{"scheme only", "Bearer", "401::Authentication invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e.client(t)
			c.authz = tc.authz
			r := c.send(c.handshakeMsg())
			require.Equal(t, msg{
				"ext":        map[string]any{"sfdc": map[string]any{"failureReason": tc.reason}},
				"advice":     map[string]any{"reconnect": "none"},
				"channel":    "/meta/handshake",
				"id":         "1x1",
				"error":      "403::Handshake denied",
				"successful": false,
			}, r[0])
		})
	}
}

func TestConnectAuthFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})

	t.Run("missing header", func(t *testing.T) {
		c := e.client(t)
		c.handshake()
		c.authz = ""
		_, rep := c.connect()
		require.Equal(t, "401::Request requires authentication", rep["error"])
		require.Equal(t, false, rep["successful"])
	})

	t.Run("revoked token forgets the client", func(t *testing.T) {
		e := newEnv(t, Options{})
		c := e.client(t)
		c.handshake()
		c.connect()
		e.auth.revoke(goodToken)
		_, rep := c.connect()
		require.Equal(t, msg{"clientId": c.clientID, "advice": map[string]any{"reconnect": "none", "interval": 0.0},
			"channel": "/meta/connect", "id": rep["id"], "error": "401::Authentication invalid", "successful": false}, rep)
		require.Equal(t, 0, e.srv.Stats().Clients)
	})

	t.Run("other principal", func(t *testing.T) {
		c := e.client(t)
		c.handshake()
		c.authz = "Bearer " + otherToken
		_, rep := c.connect()
		require.Equal(t, "400::Authenticated user id does not match the session's user id", rep["error"])
	})

	t.Run("subscribe with bad token", func(t *testing.T) {
		c := e.client(t)
		c.handshake()
		c.authz = "OAuth wrong"
		r := c.subscribe("/data/X", nil)
		require.Equal(t, "401::Authentication invalid", r["error"])
		require.Equal(t, "/data/X", r["subscription"])
	})
}

func TestRevalidateSessionsAnswersHeldConnectWith401(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute})
	c := e.client(t)
	c.handshake()
	c.connect()
	held := e.heldConnect(t, c)
	e.auth.revoke(goodToken)
	e.srv.RevalidateSessions()
	_, rep := split(t, <-held)
	require.Equal(t, "401::Authentication invalid", rep["error"])
	require.Equal(t, map[string]any{"reconnect": "none", "interval": 0.0}, rep["advice"])
}

func TestUnknownClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute})

	t.Run("never issued", func(t *testing.T) {
		c := e.client(t)
		c.handshake()
		c.clientID = "nosuchclient"
		_, rep := c.connect()
		require.Equal(t, msg{"advice": map[string]any{"reconnect": "handshake", "interval": 0.0}, "channel": "/meta/connect",
			"id": rep["id"], "error": "403::Unknown client", "successful": false}, rep)
	})

	t.Run("no clientId", func(t *testing.T) {
		c := e.client(t)
		c.handshake()
		c.clientID = ""
		r := c.subscribe("/data/X", nil)
		require.Equal(t, "403::Client has not completed handshake", r["error"])
	})
}

func TestDropAllClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute})
	c := e.client(t)
	c.handshake()
	c.connect()
	held := e.heldConnect(t, c)
	e.srv.DropAllClients()
	server, rep := split(t, <-held)
	require.Equal(t, []msg{{"channel": "/meta/disconnect", "successful": true}}, server)
	require.Equal(t, msg{"advice": map[string]any{"reconnect": "handshake", "interval": 0.0}, "channel": "/meta/connect",
		"id": rep["id"], "error": "403::Unknown client", "successful": false}, rep)
	require.Equal(t, "403::Unknown client", c.subscribe("/data/X", nil)["error"])
	// The disconnect is sent once: a later connect gets the plain unknown-client reply.
	server, rep = c.connect()
	require.Empty(t, server)
	require.Equal(t, "403::Unknown client", rep["error"])

	// A new handshake works and resubscribing gets events again.
	c.handshake()
	c.connect()
	require.Equal(t, true, c.subscribe("/data/X", nil)["successful"])
	id := e.publish("/data/X")
	events, _ := c.connect()
	require.Equal(t, []int64{id}, replayIDs(events))
}

func TestClientExpiresAfterClientTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: 10 * time.Millisecond})
	c := e.client(t)
	c.handshake()
	c.connect()
	e.clock.Advance(40 * time.Second)
	_, rep := c.connect() // exactly 40 s: still known (held connects are released by Close)
	require.Equal(t, true, rep["successful"])
	e.clock.Advance(40*time.Second + time.Millisecond)
	_, rep = c.connect()
	require.Equal(t, "403::Unknown client", rep["error"])
}

func TestClientTimeoutSweptByPublish(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{ClientTimeout: 10 * time.Second})
	c := e.client(t)
	c.handshake()
	c.subscribe("/data/X", nil)
	e.clock.Advance(11 * time.Second)
	e.publish("/data/X")
	st := e.srv.Stats()
	require.Equal(t, 0, st.Clients, "an idle client is swept without calling again")
	require.Equal(t, 0, st.Subscriptions)
}

func TestCookieRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.client(t)
	c.handshake()
	c.hc.Jar = nil // drop the jar: no cookie any more
	_, rep := c.connect()
	require.Equal(t, "400::Client {"+c.clientID+"} has established a session, but no BAYEUX_BROWSER cookie present", rep["error"])
	require.Equal(t, c.clientID, rep["clientId"])
	r := c.subscribe("/data/X", nil)
	require.Equal(t, "400::Client {"+c.clientID+"} has established a session, but no BAYEUX_BROWSER cookie present", r["error"])

	// A cookie with another browser id: the session is unknown there.
	other := e.client(t)
	other.handshake()
	c.hc.Jar = other.hc.Jar
	_, rep = c.connect()
	require.Equal(t, "403::Unknown client", rep["error"])
}

func TestHandshakeKeepsExistingBrowserCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.client(t)
	c.handshake()
	status, _ := c.raw(mustJSON(t, []msg{c.handshakeMsg()}))
	require.Equal(t, http.StatusOK, status)
	// Both clients share the jar's browser id; both may connect.
	_, rep := c.connect()
	require.Equal(t, true, rep["successful"])
}

func TestMultipleClientsOneBrowser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute})
	a := e.client(t)
	a.handshake()
	a.connect()
	b := e.client(t)
	b.hc.Jar = a.hc.Jar
	b.handshake()
	b.connect()

	done := make(chan struct{})
	go func() {
		defer close(done)
		a.send(a.connectMsg()) // held; released by Close at cleanup
	}()
	e.waitHeld(t)
	_, rep := b.connect() // not held: another client of this browser holds a connect
	require.Equal(t, map[string]any{"interval": 2000.0, "multiple-clients": true, "reconnect": "retry", "timeout": 60000.0}, rep["advice"])
	e.srv.DropAllClients()
	<-done
}

func TestSupersededConnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute})
	c := e.client(t)
	c.handshake()
	c.connect()
	c.subscribe("/data/X", nil)
	first := make(chan int, 1)
	go func() {
		status, _ := c.raw(mustJSON(t, []msg{c.connectMsg()}))
		first <- status
	}()
	e.waitHeld(t)
	second := make(chan []msg, 1)
	go func() { second <- c.send(c.connectMsg()) }()
	require.Equal(t, http.StatusRequestTimeout, <-first)
	e.waitHeld(t)
	id := e.publish("/data/X")
	events, rep := split(t, <-second)
	require.Equal(t, true, rep["successful"])
	require.Equal(t, []int64{id}, replayIDs(events))
}

func TestAdviceTimeoutReturnsEmptyConnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: 50 * time.Millisecond})
	c := e.client(t)
	c.handshake()
	c.connect()
	c.subscribe("/data/X", nil)
	start := time.Now()
	events, rep := c.connect()
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "the connect is held for the advice timeout")
	require.Empty(t, events)
	require.Equal(t, true, rep["successful"])
	require.Equal(t, 50.0, rep["advice"].(map[string]any)["timeout"])
}

func TestClientAdviceTimeoutZeroIsNotHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Hour})
	c := e.client(t)
	c.handshake()
	c.connect()
	m := c.connectMsg()
	m["advice"] = msg{"timeout": 0}
	_, rep := split(t, c.send(m))
	require.Equal(t, true, rep["successful"])
}

func TestPublishWakesLongPoll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Hour})
	c := e.client(t)
	c.handshake()
	c.connect()
	c.subscribe("/topic/PSR", nil)
	got := e.heldConnect(t, c)
	id := e.publish("/topic/PSR")
	events, rep := split(t, <-got)
	require.Equal(t, true, rep["successful"])
	require.Equal(t, []int64{id}, replayIDs(events))
}

func TestConnectionTypeAndVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.client(t)
	c.handshake()
	m := c.connectMsg()
	m["connectionType"] = "websocket"
	_, rep := split(t, c.send(m))
	require.Equal(t, "400::Invalid connection type {websocket}", rep["error"])

	h := c.handshakeMsg()
	h["supportedConnectionTypes"] = []string{"websocket", "callback-polling"}
	r := c.send(h)
	require.Equal(t, "400::Invalid connection type {websocket,callback-polling}", r[0]["error"])

	old := *c
	old.e = &env{url: strings.Replace(e.url, "/cometd/66.0", "/cometd/36.0", 1)}
	r = old.send(c.handshakeMsg())
	require.Equal(t, "400::Unsupported API version. Only API versions '37.0' and later are supported. URI format: '/cometd/66.0'", r[0]["error"])
	old.e = &env{url: strings.Replace(e.url, "/cometd/66.0", "/cometd", 1)}
	r = old.send(c.handshakeMsg())
	require.Equal(t, "400::API version in the URI is mandatory. URI format: '/cometd/66.0'", r[0]["error"])
}

func TestSubscribeChannelErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Authorize: func(principal, ch string) error {
		if principal != "005A" {
			return errors.New("403::User not allowed to subscribe CDC without View All Data permissions")
		}
		if ch == "/data/NoSuchChangeEvent" {
			return ChannelNotFoundError(ch)
		}
		return nil
	}})
	c := e.client(t)
	c.handshake()
	tests := []struct {
		sub  any
		want string
	}{
		{"/data/NoSuchChangeEvent", "400::The channel you requested to subscribe to does not exist {/data/NoSuchChangeEvent}"},
		{"", "400::Channel name not specified"},
		{nil, "400::Channel name not specified"},
		{42, "400::Channel name not specified"},
		{"data/X", "400::Channel subscriptions must start with a leading '/'"},
		{"/meta/connect", "403::Restricted channel"},
		{"/service/x", "403::Restricted channel"},
	}
	for _, tc := range tests {
		m := msg{"channel": "/meta/subscribe", "clientId": c.clientID, "id": "s"}
		if tc.sub != nil {
			m["subscription"] = tc.sub
		}
		r := c.send(m)
		require.Equal(t, tc.want, r[0]["error"], "subscription %v", tc.sub)
		require.Equal(t, false, r[0]["successful"])
	}
	// A list of subscriptions is accepted.
	r := c.send(msg{"channel": "/meta/subscribe", "clientId": c.clientID, "subscription": []string{"/data/A", "/data/B"}, "id": "s"})
	require.Equal(t, true, r[0]["successful"])
	require.Equal(t, 2, e.srv.Stats().Subscriptions)

	o := e.client(t)
	o.authz = "Bearer " + otherToken
	o.handshake()
	require.Equal(t, "403::User not allowed to subscribe CDC without View All Data permissions", o.subscribe("/data/A", nil)["error"])
}

func TestOtherChannels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.client(t)
	c.handshake()
	r := c.send(msg{"channel": "/meta/nosuch", "id": "1"}, msg{"channel": "/data/X", "data": msg{}, "clientId": c.clientID, "id": "2"})
	require.Equal(t, "404::Unknown channel", r[0]["error"])
	require.Equal(t, "403::Restricted channel", r[1]["error"])
	require.Equal(t, "2", r[1]["id"])
}

func TestMalformedBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.client(t)
	for _, body := range []string{"", "   ", "not json", "42", `"str"`, "[]", "[", `{"channel":`, "null", "[1,2", "{}x"} {
		status, out := c.raw([]byte(body))
		require.Equal(t, http.StatusBadRequest, status, "body %q", body)
		require.JSONEq(t, `[{"error":"400::Request body must be a JSON array of Bayeux messages","successful":false}]`, string(out), "body %q", body)
	}
	// Bad elements get their own error; the rest of the batch is served.
	status, out := c.raw([]byte(`[1, {"channel":5,"id":"a"}, {"channel":"/meta/handshake","id":["x"],"version":7}, ` + string(mustJSON(t, c.handshakeMsg())) + `]`))
	require.Equal(t, http.StatusOK, status)
	var r []msg
	require.NoError(t, json.Unmarshal(out, &r))
	require.Len(t, r, 4)
	require.Equal(t, msg{"error": "400::Malformed Bayeux message", "successful": false}, r[0])
	require.Equal(t, msg{"id": "a", "error": "400::Malformed Bayeux message", "successful": false}, r[1])
	require.Equal(t, msg{"channel": "/meta/handshake", "id": []any{"x"}, "error": "400::Malformed Bayeux message", "successful": false}, r[2])
	require.Equal(t, true, r[3]["successful"])

	big := `[{"channel":"/meta/handshake","pad":"` + strings.Repeat("x", 40000) + `"}]`
	status, out = c.raw([]byte(big))
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Contains(t, string(out), "Maximum Request Size Exceeded")

	req, err := http.NewRequest(http.MethodGet, e.url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestCloseAnswersHeldConnectsAndRefusesNewRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Hour})
	c := e.client(t)
	c.handshake()
	c.connect()
	got := e.heldConnect(t, c)
	e.srv.Close()
	_, rep := split(t, <-got)
	require.Equal(t, true, rep["successful"])
	status, _ := c.raw(mustJSON(t, []msg{c.connectMsg()}))
	require.Equal(t, http.StatusServiceUnavailable, status)
	e.srv.Close() // idempotent
}

func TestPerChannelOrderingConcurrentSubscribers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: 2 * time.Second})
	const (
		subscribers = 8
		perChannel  = 300
	)
	channels := []string{"/data/PendingServiceRoutingChangeEvent", "/topic/PSR"}
	clients := make([]*bclient, subscribers)
	for i := range clients {
		c := e.client(t)
		c.handshake()
		c.connect()
		for _, ch := range channels {
			require.Equal(t, true, c.subscribe(ch, -1)["successful"])
		}
		clients[i] = c
	}

	var wg sync.WaitGroup
	results := make([]map[string][]int64, subscribers)
	for i, c := range clients {
		wg.Go(func() {
			got := map[string][]int64{}
			total := 0
			for total < perChannel*len(channels) {
				replies, err := postOnce(c, c.connectMsg())
				if err != nil {
					t.Error(err)
					return
				}
				for _, m := range replies {
					ch := m["channel"].(string)
					if strings.HasPrefix(ch, "/meta/") {
						continue
					}
					got[ch] = append(got[ch], replayIDs([]msg{m})[0])
					total++
				}
			}
			results[i] = got
		})
	}
	// Two publishers, one per channel, publishing concurrently.
	published := make(map[string][]int64)
	var pmu sync.Mutex
	var pwg sync.WaitGroup
	for _, ch := range channels {
		pwg.Go(func() {
			ids := make([]int64, 0, perChannel)
			for range perChannel {
				ids = append(ids, e.publish(ch))
			}
			pmu.Lock()
			published[ch] = ids
			pmu.Unlock()
		})
	}
	pwg.Wait()
	wg.Wait()
	for i, got := range results {
		for _, ch := range channels {
			require.Equal(t, published[ch], got[ch], "subscriber %d channel %s", i, ch)
		}
	}
	st := e.srv.Stats()
	require.Equal(t, int64(subscribers*perChannel*len(channels)), st.Delivered)
}

// postOnce is send without require, for use off the test goroutine.
func postOnce(c *bclient, m msg) ([]msg, error) {
	body, err := json.Marshal([]msg{m})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, c.e.url, strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", c.authz)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("connect: HTTP %d", resp.StatusCode)
	}
	var out []msg
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

func TestQueueOverflowDropsClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxQueue: 3})
	c := e.client(t)
	c.handshake()
	c.subscribe("/data/X", nil)
	for range 4 {
		e.publish("/data/X")
	}
	require.Equal(t, int64(1), e.srv.Stats().DroppedClients)
	_, rep := c.connect()
	require.Equal(t, "403::Unknown client", rep["error"])
}

func TestResponseSizeCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxResponseBytes: 300, AdviceTimeout: time.Hour})
	c := e.client(t)
	c.handshake()
	c.connect()
	c.subscribe("/data/X", nil)
	var ids []int64
	for range 10 {
		ids = append(ids, e.publish("/data/X"))
	}
	var got []int64
	rounds := 0
	for len(got) < len(ids) {
		events, rep := c.connect() // never held while events wait
		require.Equal(t, true, rep["successful"])
		require.NotEmpty(t, events)
		got = append(got, replayIDs(events)...)
		rounds++
	}
	require.Equal(t, ids, got)
	require.Greater(t, rounds, 1)
}

func TestInvalidEventDataBecomesNull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.client(t)
	c.handshake()
	c.connect()
	c.subscribe("/data/X", nil)
	e.srv.Publish([]string{"/data/X", "/data/X"}, func(int64) json.RawMessage { return json.RawMessage("{broken") })
	events, _ := c.connect()
	require.Len(t, events, 1, "duplicate channels in one publish deliver once")
	require.Nil(t, events[0]["data"])
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestDisconnectAnswersHeldConnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Hour})
	c := connectedClient(t, e)
	got := e.heldConnect(t, c)
	r := c.send(msg{"channel": "/meta/disconnect", "clientId": c.clientID, "id": "d"})
	require.Equal(t, true, r[0]["successful"])
	_, rep := split(t, <-got)
	require.Equal(t, true, rep["successful"])
	require.Equal(t, map[string]any{"reconnect": "none", "interval": 0.0}, rep["advice"])
}
