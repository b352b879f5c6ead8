package bayeux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	chA = "/data/PendingServiceRoutingChangeEvent"
	chB = "/data/AgentWorkChangeEvent"
	chC = "/topic/RoutingTopic"
)

// replayExt returns a subscribe message's ext.replay map, or nil.
func replayExt(m map[string]any) map[string]any {
	ext, _ := m["ext"].(map[string]any)
	r, _ := ext["replay"].(map[string]any)
	return r
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func TestRunHandshakeSubscribeDeliverDisconnect(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, ReplayLatest}, Subscription{chB, 42}, Subscription{chC, ReplayAll})

	f.waitFor(chConnect, nil)
	f.publish(chA, 100, "a1")
	f.publish(chB, 43, "b1")
	f.publish(chA, 101, "a2")

	var got []string
	for range 3 {
		d := h.next()
		require.Equal(t, Event, d.Kind)
		require.NoError(t, d.Err)
		var data struct {
			Payload string `json:"payload"`
		}
		require.NoError(t, json.Unmarshal(d.Data, &data))
		got = append(got, fmt.Sprintf("%s %d %s", d.Channel, d.ReplayID, data.Payload))
	}
	require.Equal(t, []string{chA + " 100 a1", chB + " 43 b1", chA + " 101 a2"}, got)
	require.NoError(t, h.stop())

	reqs := f.requests()
	require.GreaterOrEqual(t, len(reqs), 4)
	for _, r := range reqs {
		require.Equal(t, "Bearer TOKEN", r.auth)
		require.Equal(t, "application/json", r.ctype)
	}
	// The handshake: version, minimumVersion, long-polling, replay on.
	require.Equal(t, []string{chHandshake}, reqs[0].channels())
	hs := reqs[0].msgs[0]
	require.Equal(t, "1.0", hs["version"])
	require.Equal(t, "1.0", hs["minimumVersion"])
	require.Equal(t, []any{"long-polling"}, hs["supportedConnectionTypes"])
	require.Equal(t, map[string]any{"replay": true}, hs["ext"])
	// The three subscribes go in one POST, each with its replay id.
	require.Equal(t, []string{chSubscribe, chSubscribe, chSubscribe}, reqs[1].channels())
	want := map[string]float64{chA: -1, chB: 42, chC: -2}
	for _, m := range reqs[1].msgs {
		sub := m["subscription"].(string)
		require.Equal(t, "client-1", m["clientId"])
		require.Equal(t, map[string]any{sub: want[sub]}, replayExt(m), sub)
	}
	// Then connects, one at a time, and a disconnect at the end.
	last := reqs[len(reqs)-1]
	require.Equal(t, []string{chDisconnect}, last.channels())
	require.Equal(t, "client-1", last.msgs[0]["clientId"])
	for _, r := range reqs[2 : len(reqs)-1] {
		require.Equal(t, []string{chConnect}, r.channels())
		require.Equal(t, "long-polling", r.msgs[0]["connectionType"])
	}

	require.Equal(t, map[string]int64{chA: 101, chB: 43, chC: -2}, h.c.ResumePoints())
	f.mu.Lock()
	require.Equal(t, 1, f.maxFlight, "one /meta/connect at a time")
	f.mu.Unlock()
	requests, rehandshakes, delivered := h.obs.snapshot()
	require.Empty(t, rehandshakes)
	require.Equal(t, []string{chA, chB, chA}, delivered)
	require.Equal(t, "handshake ok", requests[0])
	require.Equal(t, 3, count(requests, "subscribe ok"))
	require.Equal(t, "disconnect ok", requests[len(requests)-1])
	require.Positive(t, count(requests, "connect ok"))
}

func TestCookieJarPerClient(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	h1 := newHarness(t, f, nil)
	h2 := newHarness(t, f, nil)
	h1.start(Subscription{chA, ReplayLatest})
	h2.start(Subscription{chA, ReplayLatest})
	seen := map[any]bool{}
	for len(seen) < 2 {
		m := f.waitFor(chConnect, nil)
		seen[m["clientId"]] = true
	}
	require.NoError(t, h1.stop())
	require.NoError(t, h2.stop())

	cookieOf := map[string]map[string]bool{} // client id -> BAYEUX_BROWSER values sent
	for _, r := range f.requests() {
		m := r.msgs[0]
		var browser string
		for _, c := range r.cookies {
			require.Equal(t, "BAYEUX_BROWSER", c.Name)
			browser = c.Value
		}
		if m["channel"] == chHandshake {
			require.Empty(t, browser, "a handshake carried another client's cookie: the jars are shared")
			continue
		}
		cid := m["clientId"].(string)
		require.NotEmpty(t, browser, "request without the cookie set at handshake")
		if cookieOf[cid] == nil {
			cookieOf[cid] = map[string]bool{}
		}
		cookieOf[cid][browser] = true
	}
	require.Len(t, cookieOf, 2)
	var values []string
	for cid, set := range cookieOf {
		require.Len(t, set, 1, "client %s sent several cookies", cid)
		for v := range set {
			values = append(values, v)
		}
	}
	require.NotEqual(t, values[0], values[1])
}

func TestUnknownClientRehandshakesAndResubscribes(t *testing.T) {
	t.Parallel()
	for _, errText := range []string{"403::Unknown client", "401:client-1:Unknown client"} {
		t.Run(errText, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			h := newHarness(t, f, nil)
			h.start(Subscription{chA, 5}, Subscription{chB, ReplayLatest})
			f.waitFor(chConnect, nil)
			f.on(chConnect, failOn(errText, map[string]any{"reconnect": "handshake", "interval": 0}, nil))
			f.publish(chA, 6, nil)
			require.Equal(t, int64(6), h.next().ReplayID)

			// The refused connect leads to a new handshake and a resubscribe
			// of every channel from the last handled replay id.
			f.waitFor(chConnect, func(m map[string]any) bool { return m["clientId"] == "client-2" })
			var resub int
			for _, m := range f.messages(chSubscribe) {
				if m["clientId"] != "client-2" {
					continue
				}
				resub++
				sub := m["subscription"].(string)
				require.Equal(t, map[string]any{sub: map[string]float64{chA: 6, chB: -1}[sub]}, replayExt(m))
			}
			require.Equal(t, 2, resub)
			// chB had no event yet: it resumed from -1, so what was
			// published while the session was down is lost; the handler is
			// told. chA resumed from 6 and needs nothing.
			require.Equal(t, Delivery{Kind: Resubscribed, Channel: chB, ReplayID: ReplayLatest}, h.next())
			f.publish(chB, 9, nil)
			d := h.next()
			require.Equal(t, chB, d.Channel)
			require.Equal(t, int64(9), d.ReplayID)
			require.NoError(t, h.stop())

			requests, rehandshakes, _ := h.obs.snapshot()
			require.Equal(t, []string{"unknown_client"}, rehandshakes)
			code, _, _ := ParseError(errText)
			require.Equal(t, 1, count(requests, fmt.Sprintf("connect %d", code)))
			require.Empty(t, h.recordedWaits(), "the first advised re-handshake does not back off")
		})
	}
}

func TestAuthenticationInvalidCallsUnauthorized(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		inject func(f *fakeServer)
		code   string
	}{
		{"bayeux 401", func(f *fakeServer) {
			f.on(chConnect, failOn("401::Authentication invalid", map[string]any{"reconnect": "none", "interval": 0}, nil))
		}, "connect 401"},
		{"http 401", func(f *fakeServer) {
			f.onHTTP(func(w http.ResponseWriter, _ *http.Request, _ []map[string]any) {
				http.Error(w, `[{"errorCode":"INVALID_SESSION_ID"}]`, http.StatusUnauthorized)
			})
		}, "connect 401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			h := newHarness(t, f, nil)
			h.start(Subscription{chA, 5})
			f.waitFor(chConnect, nil)
			tc.inject(f)
			f.publish(chA, 6, nil)
			require.Equal(t, int64(6), h.next().ReplayID)
			h.waitUnauthorized()
			m := f.waitFor(chSubscribe, func(m map[string]any) bool { return m["clientId"] == "client-2" })
			require.Equal(t, map[string]any{chA: float64(6)}, replayExt(m))
			f.waitFor(chConnect, func(m map[string]any) bool { return m["clientId"] == "client-2" })
			require.NoError(t, h.stop())
			requests, rehandshakes, _ := h.obs.snapshot()
			require.Equal(t, []string{"auth"}, rehandshakes)
			require.Equal(t, 1, count(requests, tc.code))
		})
	}
}

func TestHandshakeFailures(t *testing.T) {
	t.Parallel()
	const limitReason = "403::To protect all customers from excessive use and Denial of Service attacks, we limit the number of simultaneous connections per server. Your request has been denied because this limit has been exceeded. Please try your request again later."
	tests := []struct {
		name         string
		errText      string
		reason       string
		unauthorized bool
		waits        []time.Duration
		code         string
		fatal        bool
	}{
		{name: "auth in failure reason", errText: "403::Handshake denied", reason: "401::Authentication invalid", unauthorized: true, code: "401"},
		{name: "connection limit", errText: "403::Handshake denied", reason: limitReason, waits: []time.Duration{time.Second}, code: "403"},
		{name: "server busy", errText: "403::Handshake denied", reason: "503::Server is too busy. Please try your request again later.", waits: []time.Duration{time.Second}, code: "503"},
		{name: "denied without reason", errText: "403::Handshake denied", unauthorized: true, code: "403"},
		{name: "unsupported version", errText: "400::Unsupported API version. Only API versions '37.0' and later are supported. URI format: '/cometd/66.0'", code: "400", fatal: true},
		{name: "connection type", errText: "400::Invalid connection type long-polling", code: "400", fatal: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			var ext map[string]any
			if tc.reason != "" {
				ext = map[string]any{"sfdc": map[string]any{"failureReason": tc.reason}}
			}
			f.on(chHandshake, failOn(tc.errText, map[string]any{"reconnect": "none"}, ext))
			h := newHarness(t, f, nil)
			h.start(Subscription{chA, ReplayLatest})
			if tc.fatal {
				err := h.result()
				var be *Error
				require.ErrorAs(t, err, &be)
				require.Equal(t, "handshake", be.Op)
				require.Equal(t, tc.code, be.Code)
				require.Equal(t, tc.errText, be.Raw)
				require.Empty(t, f.messages(chDisconnect), "no session, no disconnect")
				return
			}
			if tc.unauthorized {
				h.waitUnauthorized()
			}
			f.waitFor(chSubscribe, nil)
			require.NoError(t, h.stop())
			require.Equal(t, tc.waits, h.recordedWaits())
			requests, _, _ := h.obs.snapshot()
			require.Equal(t, []string{"handshake " + tc.code, "handshake ok"}, requests[:2])
		})
	}
}

// connectReply starts a client on chA from -1 whose first connect the fake
// answers with reply.
func connectReply(t *testing.T, reply func(map[string]any) map[string]any) (*fakeServer, *harness) {
	t.Helper()
	f := newFake(t)
	f.on(chConnect, reply)
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, ReplayLatest})
	return f, h
}

// succeedWith answers a connect successfully with reconnect advice.
func succeedWith(reconnect string) func(map[string]any) map[string]any {
	return func(m map[string]any) map[string]any {
		return map[string]any{"channel": chConnect, "id": m["id"], "successful": true, "advice": map[string]any{"reconnect": reconnect}}
	}
}

func TestAdvice(t *testing.T) {
	t.Parallel()
	t.Run("handshake on success", func(t *testing.T) {
		t.Parallel()
		f, h := connectReply(t, succeedWith("handshake"))
		f.waitFor(chSubscribe, func(m map[string]any) bool { return m["clientId"] == "client-2" })
		require.NoError(t, h.stop())
		_, rehandshakes, _ := h.obs.snapshot()
		require.Equal(t, []string{"advice"}, rehandshakes)
	})
	t.Run("none on success", func(t *testing.T) {
		t.Parallel()
		f, h := connectReply(t, succeedWith("none"))
		err := h.result()
		var be *Error
		require.ErrorAs(t, err, &be)
		require.Equal(t, "connect", be.Op)
		require.ErrorContains(t, err, "reconnect none")
		require.Len(t, f.messages(chDisconnect), 1)
	})
	t.Run("none on failure", func(t *testing.T) {
		t.Parallel()
		_, h := connectReply(t, failOn("402::Missing required parameter", map[string]any{"reconnect": "none"}, nil))
		var be *Error
		require.ErrorAs(t, h.result(), &be)
		require.Equal(t, &Error{Op: "connect", Code: "402", Message: "Missing required parameter", Raw: "402::Missing required parameter"}, be)
	})
	t.Run("retry on failure", func(t *testing.T) {
		t.Parallel()
		f, h := connectReply(t, failOn("500::Internal server error", map[string]any{"reconnect": "retry"}, nil))
		f.waitFor(chConnect, nil)
		f.waitFor(chConnect, nil)
		require.NoError(t, h.stop())
		_, rehandshakes, _ := h.obs.snapshot()
		require.Empty(t, rehandshakes)
		require.Equal(t, time.Second, h.recordedWaits()[0])
		for _, m := range f.messages(chConnect) {
			require.Equal(t, "client-1", m["clientId"])
		}
	})
	t.Run("interval", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.advice = map[string]any{"reconnect": "retry", "interval": 2500, "timeout": 500}
		f.hold = time.Millisecond
		h := newHarness(t, f, nil)
		h.start(Subscription{chA, ReplayLatest})
		f.waitFor(chConnect, nil)
		f.waitFor(chConnect, nil)
		f.waitFor(chConnect, nil)
		require.NoError(t, h.stop())
		waits := h.recordedWaits()
		require.GreaterOrEqual(t, len(waits), 2)
		for _, w := range waits {
			require.Equal(t, 2500*time.Millisecond, w)
		}
	})
}

func TestServerSentDisconnectRehandshakes(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.extra[chConnect] = []map[string]any{{"channel": chDisconnect, "successful": true}}
	f.hold = 10 * time.Millisecond
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, ReplayLatest})
	f.waitFor(chSubscribe, func(m map[string]any) bool { return m["clientId"] == "client-2" })
	require.NoError(t, h.stop())
	_, rehandshakes, _ := h.obs.snapshot()
	require.Equal(t, []string{"advice"}, rehandshakes)
}

func TestConnectLimitBacksOffAndRehandshakes(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on(chConnect, failOn("403::Organization total events daily limit exceeded", map[string]any{"reconnect": "none"}, nil))
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, 77})
	m := f.waitFor(chSubscribe, func(m map[string]any) bool { return m["clientId"] == "client-2" })
	require.Equal(t, map[string]any{chA: float64(77)}, replayExt(m))
	require.NoError(t, h.stop())
	_, rehandshakes, _ := h.obs.snapshot()
	require.Equal(t, []string{"limit"}, rehandshakes)
	require.Equal(t, time.Second, h.recordedWaits()[0])
}

func TestInvalidReplayReportsGapAndResubscribes(t *testing.T) {
	t.Parallel()
	const refused = "400::The replayId {42} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."
	for _, tc := range []struct {
		policy ReplayPolicy
		want   int64
	}{{ResubscribeLatest, -1}, {ResubscribeAll, -2}} {
		t.Run(fmt.Sprint(tc.want), func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.on(chSubscribe, failOn(refused, nil, nil))
			h := newHarness(t, f, func(o *Options) { o.OnInvalidReplay = tc.policy })
			h.start(Subscription{chA, 42}, Subscription{chB, 7})
			d := h.next()
			require.Equal(t, Gap, d.Kind)
			require.Equal(t, chA, d.Channel)
			require.Equal(t, int64(42), d.ReplayID)
			var re *ReplayError
			require.ErrorAs(t, d.Err, &re)
			require.Equal(t, &ReplayError{Channel: chA, ReplayID: 42, Message: strings.TrimPrefix(refused, "400::")}, re)

			// The gap is reported once the resubscription is live, so a
			// reconciliation the handler does then cannot miss an event.
			var from []any
			for _, m := range f.messages(chSubscribe) {
				if m["subscription"] == chA {
					require.Equal(t, "client-1", m["clientId"], "a gap needs no new handshake")
					from = append(from, replayExt(m)[chA])
				}
			}
			require.Equal(t, []any{float64(42), float64(tc.want)}, from)
			f.waitFor(chConnect, nil)
			f.publish(chA, 50, nil)
			require.Equal(t, int64(50), h.next().ReplayID)
			require.NoError(t, h.stop())
			// chB was subscribed once, in the first batch, from 7.
			var bSubs int
			for _, m := range f.messages(chSubscribe) {
				if m["subscription"] == chB {
					bSubs++
					require.Equal(t, map[string]any{chB: float64(7)}, replayExt(m))
				}
			}
			require.Equal(t, 1, bSubs)
			require.Equal(t, map[string]int64{chA: 50, chB: 7}, h.c.ResumePoints())
		})
	}
	t.Run("refusing -1 is fatal", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.on(chSubscribe, failOn("400::The replayId {-1} you provided was invalid.", nil, nil))
		h := newHarness(t, f, nil)
		h.start(Subscription{chA, ReplayLatest})
		var be *Error
		require.ErrorAs(t, h.result(), &be)
		require.Equal(t, "subscribe", be.Op)
	})
}

// TestResubscribedWithoutReplayIsReported: after a re-handshake, a channel
// that had no event yet resumes from -1, so events published while the
// session was down are never delivered. The handler must be told, once the
// new subscription is live; a channel resuming from a replay id or from -2
// loses nothing and gets no such delivery. Without the replay extension
// every resubscription loses events.
func TestResubscribedWithoutReplayIsReported(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		noReplay bool
		want     []Subscription // channels reported, with the replay id they resumed from
	}{
		{"replay", false, []Subscription{{chB, ReplayLatest}}},
		{"no replay", true, []Subscription{{chA, 5}, {chB, ReplayLatest}, {chC, ReplayAll}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.noReplay = tc.noReplay
			h := newHarness(t, f, nil)
			h.start(Subscription{chA, 5}, Subscription{chB, ReplayLatest}, Subscription{chC, ReplayAll})
			f.waitFor(chConnect, nil)
			f.on(chConnect, unknownClient)
			for _, w := range tc.want {
				d := h.next()
				require.Equal(t, Delivery{Kind: Resubscribed, Channel: w.Channel, ReplayID: w.ReplayID}, d)
				n := 0
				for _, m := range f.messages(chSubscribe) {
					if m["clientId"] == "client-2" && m["subscription"] == w.Channel {
						n++
					}
				}
				require.Equal(t, 1, n, "reported once the new subscription is live")
			}
			f.waitFor(chConnect, func(m map[string]any) bool { return m["clientId"] == "client-2" })
			f.publish(chA, 6, nil)
			require.Equal(t, Event, h.next().Kind, "nothing else was reported")
			require.NoError(t, h.stop())
		})
	}
}

func TestSubscribeRefused(t *testing.T) {
	t.Parallel()
	for _, errText := range []string{
		"403::Restricted channel",
		"403::User not allowed to subscribe CDC without View All Data permissions",
		"400::The channel you requested to subscribe to doesn't exist {/data/NopeChangeEvent}",
		"400::The replayId for channel {/data/X} wasn't found using the provided replay ID map {{}}. Ensure that the channel name you provided in the replay map is valid and matches the channel name used for subscribing.",
	} {
		t.Run(errText, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			// In the one subscribe POST, chA succeeds and chB is refused.
			f.on(chSubscribe, func(m map[string]any) map[string]any {
				return map[string]any{"channel": chSubscribe, "id": m["id"], "successful": true, "subscription": m["subscription"]}
			})
			f.on(chSubscribe, failOn(errText, nil, nil))
			h := newHarness(t, f, nil)
			h.start(Subscription{chA, ReplayLatest}, Subscription{chB, ReplayLatest})
			err := h.result()
			var be *Error
			require.ErrorAs(t, err, &be)
			code, _, msg := ParseError(errText)
			require.Equal(t, &Error{Op: "subscribe", Channel: chB, Code: fmt.Sprint(code), Message: msg, Raw: errText}, be)
			require.Len(t, f.messages(chDisconnect), 1, "a fatal error still disconnects")
		})
	}
}

func TestSubscribeLimitBacksOff(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on(chSubscribe, failOn("403::Organization concurrent user limit exceeded", nil, nil))
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, ReplayLatest})
	f.waitFor(chConnect, nil)
	require.NoError(t, h.stop())
	require.Equal(t, []time.Duration{time.Second}, h.recordedWaits())
	requests, _, _ := h.obs.snapshot()
	require.Equal(t, []string{"handshake ok", "subscribe 403", "subscribe ok"}, requests[:3])
}

// hangUp answers a request by closing the connection.
func hangUp(w http.ResponseWriter, _ *http.Request, _ []map[string]any) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func TestTransportErrorsBackOff(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	for range 2 {
		f.onHTTP(func(w http.ResponseWriter, _ *http.Request, _ []map[string]any) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		})
	}
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, ReplayLatest})
	f.waitFor(chConnect, nil)
	for range transportRetries {
		f.onHTTP(hangUp)
	}
	// The held connect returns, the next three fail, then a new session.
	f.publish(chA, 1, nil)
	require.Equal(t, int64(1), h.next().ReplayID)
	f.waitFor(chSubscribe, func(m map[string]any) bool { return m["clientId"] == "client-2" })
	require.NoError(t, h.stop())

	requests, rehandshakes, _ := h.obs.snapshot()
	require.Equal(t, []string{"handshake 503", "handshake 503", "handshake ok"}, requests[:3])
	require.Equal(t, transportRetries, count(requests, "connect transport"))
	require.Equal(t, []string{"transport"}, rehandshakes)
	// 1 s, 2 s for the handshakes; the connect resets the count; 1, 2, 3 s.
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, time.Second, 2 * time.Second, 3 * time.Second}, h.recordedWaits())
	// The connects that failed kept the client id; only then a new session.
	var ids []string
	for _, m := range f.messages(chConnect) {
		ids = append(ids, m["clientId"].(string))
	}
	require.Equal(t, slices.Repeat([]string{"client-1"}, 1+transportRetries), ids[:1+transportRetries])
}

func TestAuthorizeAndEndpointErrorsBackOff(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var authCalls, epCalls int
	h := newHarness(t, f, func(o *Options) {
		o.Endpoint = func(context.Context) (string, error) {
			epCalls++
			if epCalls == 1 {
				return "", errors.New("no instance url yet")
			}
			return f.url(), nil
		}
		o.Authorize = func(_ context.Context, req *http.Request) error {
			authCalls++
			if authCalls == 1 {
				return errors.New("token endpoint down")
			}
			req.Header.Set("Authorization", "Bearer TOKEN")
			return nil
		}
	})
	h.start(Subscription{chA, ReplayLatest})
	f.waitFor(chConnect, nil)
	require.NoError(t, h.stop())
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second}, h.recordedWaits())
	requests, _, _ := h.obs.snapshot()
	require.Equal(t, []string{"handshake transport", "handshake ok"}, requests[:2])
}

func TestBatchingAndMixedResponses(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	// A subscribe response that also carries an event, as a server may.
	f.extra[chSubscribe] = []map[string]any{{"channel": chA, "data": map[string]any{"event": map[string]any{"replayId": 3}}}}
	var subs []Subscription
	subs = append(subs, Subscription{chA, ReplayLatest})
	for i := range 60 {
		subs = append(subs, Subscription{fmt.Sprintf("/topic/%s%03d", strings.Repeat("x", 250), i), ReplayLatest})
	}
	h := newHarness(t, f, nil)
	h.start(subs...)
	d := h.next()
	require.Equal(t, chA, d.Channel)
	require.Equal(t, int64(3), d.ReplayID)
	f.waitFor(chConnect, nil)
	require.NoError(t, h.stop())

	var posts int
	got := map[string]int{}
	for _, r := range f.requests() {
		if r.msgs[0]["channel"] != chSubscribe {
			continue
		}
		posts++
		require.LessOrEqual(t, r.size, maxBatchBytes)
		require.Greater(t, len(r.msgs), 1)
		for _, m := range r.msgs {
			require.Equal(t, chSubscribe, m["channel"])
			got[m["subscription"].(string)]++
		}
	}
	require.Greater(t, posts, 1, "61 long subscriptions do not fit one 16 KiB request")
	require.Less(t, posts, 10)
	require.Len(t, got, len(subs))
	for ch, n := range got {
		require.Equal(t, 1, n, ch)
	}
}

// deadlineRecorder records, per request, the meta channel and how far off
// the request's deadline was when it was sent.
type deadlineRecorder struct {
	next http.RoundTripper
	ch   chan [2]any
}

func (d *deadlineRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	dl, ok := req.Context().Deadline()
	body, _ := req.GetBody()
	var msgs []map[string]any
	_ = json.NewDecoder(body).Decode(&msgs)
	if ok && len(msgs) > 0 {
		select {
		case d.ch <- [2]any{msgs[0]["channel"], time.Until(dl)}:
		default:
		}
	}
	return d.next.RoundTrip(req)
}

func TestRequestDeadlines(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.advice = map[string]any{"reconnect": "retry", "interval": 0, "timeout": 60000}
	f.hold = time.Millisecond
	rec := &deadlineRecorder{ch: make(chan [2]any, 64)}
	h := newHarness(t, f, func(o *Options) {
		rec.next = o.Transport
		o.Transport = rec
	})
	h.start(Subscription{chA, ReplayLatest})
	seen := map[string]time.Duration{}
	for len(seen) < 3 {
		select {
		case r := <-rec.ch:
			seen[r[0].(string)] = r[1].(time.Duration)
		case <-time.After(10 * time.Second):
			t.Fatalf("saw deadlines only for %v", seen)
		}
	}
	require.NoError(t, h.stop())
	require.Greater(t, seen[chConnect], 60*time.Second, "a long poll's deadline must exceed the advised timeout")
	require.LessOrEqual(t, seen[chConnect], 60*time.Second+DefaultNetworkDelay)
	require.LessOrEqual(t, seen[chHandshake], DefaultRequestTimeout)
	require.LessOrEqual(t, seen[chSubscribe], DefaultRequestTimeout)
}

func TestMalformedResponses(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		"not json",
		"<html><body>Service Unavailable</body></html>",
		"",
		"{}",
		"[1,2]",
		`[{"channel":`,
		`[]`,
		`[{"channel":"/meta/connect","id":"nope","successful":true}]`,
		`{"channel":"/meta/connect","advice":{"timeout":"soon"}}`,
		`[{"channel":"/meta/connect","id":{"x":1}}]`,
	} {
		t.Run(body, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			h := newHarness(t, f, nil)
			h.start(Subscription{chA, ReplayLatest})
			f.waitFor(chConnect, nil)
			f.onHTTP(func(w http.ResponseWriter, _ *http.Request, _ []map[string]any) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(body))
			})
			f.publish(chA, 1, nil) // ends the held connect; the next one gets the bad body
			require.Equal(t, int64(1), h.next().ReplayID)
			f.publish(chA, 2, nil)
			require.Equal(t, int64(2), h.next().ReplayID, "the client recovers")
			require.NoError(t, h.stop())
			require.Contains(t, h.logs.String(), "malformed bayeux response")
			requests, _, _ := h.obs.snapshot()
			require.Equal(t, 1, count(requests, "connect transport"))
		})
	}
}

func TestHandlerErrorStopsRunAtLeastOnce(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	f := newFake(t)
	h := newHarness(t, f, nil)
	h.handler = func(_ context.Context, d Delivery) error {
		if d.ReplayID == 8 {
			return boom
		}
		return nil
	}
	h.start(Subscription{chA, 5})
	f.waitFor(chConnect, nil)
	f.publish(chA, 7, nil)
	f.publish(chA, 8, nil)
	f.publish(chA, 9, nil)
	err := h.result()
	require.ErrorIs(t, err, boom)
	// 8 was not handled, so the resume point stays at 7: a restart gets 8 again.
	require.Equal(t, map[string]int64{chA: 7}, h.c.ResumePoints())
	require.Len(t, f.messages(chDisconnect), 1)
	_, _, delivered := h.obs.snapshot()
	require.Equal(t, []string{chA}, delivered)
}

func TestFilteredSubscriptionAndReplayOff(t *testing.T) {
	t.Parallel()
	const filtered = chC + "?OwnerId=005xx"
	t.Run("replay off", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		h := newHarness(t, f, func(o *Options) { o.Replay = false })
		h.start(Subscription{filtered, ReplayLatest})
		f.waitFor(chConnect, nil)
		f.publish(chC, 12, nil)
		d := h.next()
		require.Equal(t, filtered, d.Channel)
		require.NoError(t, h.stop())
		require.Nil(t, f.messages(chHandshake)[0]["ext"])
		require.Nil(t, f.messages(chSubscribe)[0]["ext"])
		require.Equal(t, map[string]int64{filtered: 12}, h.c.ResumePoints())
	})
	t.Run("server without replay", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.noReplay = true
		h := newHarness(t, f, nil)
		h.start(Subscription{chA, 9})
		f.waitFor(chConnect, nil)
		require.NoError(t, h.stop())
		require.Nil(t, f.messages(chSubscribe)[0]["ext"])
		require.Contains(t, h.logs.String(), "server did not confirm the replay extension")
	})
}

func TestValidation(t *testing.T) {
	t.Parallel()
	_, err := New(Options{})
	require.ErrorContains(t, err, "Endpoint is required")
	_, err = New(Options{Endpoint: func(context.Context) (string, error) { return "", nil }, OnInvalidReplay: 7})
	require.ErrorContains(t, err, "policy")

	c, err := New(Options{Endpoint: func(context.Context) (string, error) { return "http://127.0.0.1:1/cometd/62.0", nil }})
	require.NoError(t, err)
	noop := func(context.Context, Delivery) error { return nil }
	for _, subs := range [][]Subscription{
		nil,
		{{Channel: "topic/X"}},
		{{Channel: "/meta/connect"}},
		{{Channel: chA, ReplayID: -1}, {Channel: chA, ReplayID: 5}},
		{{Channel: chA, ReplayID: -3}},
	} {
		require.Error(t, c.Run(t.Context(), subs, noop), subs)
	}
	require.Error(t, c.Run(t.Context(), []Subscription{{Channel: chA}}, nil))
}

func TestConcurrentRunRefused(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, ReplayLatest})
	f.waitFor(chConnect, nil)
	err := h.c.Run(t.Context(), []Subscription{{Channel: chB}}, func(context.Context, Delivery) error { return nil })
	require.ErrorContains(t, err, "already running")
	require.NoError(t, h.stop())
}

func TestBadEndpointIsFatal(t *testing.T) {
	t.Parallel()
	for _, ep := range []string{"::not a url", "", "/cometd/62.0", "ftp://127.0.0.1/cometd/62.0", "http:///cometd/62.0"} {
		c, err := New(Options{Endpoint: func(context.Context) (string, error) { return ep, nil }})
		require.NoError(t, err)
		// Without the check, Run would retry a request that cannot succeed
		// until ctx ends.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err = c.Run(ctx, []Subscription{{Channel: chA}}, func(context.Context, Delivery) error { return nil })
		cancel()
		require.ErrorIs(t, err, errConfig, ep)
		require.ErrorContains(t, err, "endpoint", ep)
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "event", Event.String())
	require.Equal(t, "gap", Gap.String())
	require.Equal(t, "resubscribed", Resubscribed.String())
	require.Equal(t, "kind(9)", Kind(9).String())
	require.Equal(t, ReplayLatest, ResubscribeLatest.replayID())
	require.Equal(t, ReplayAll, ResubscribeAll.replayID())
}

// TestDeliveryDataIsNeverReused: the salesforce layer decodes events
// without copying them, so a Delivery's Data must stay intact after later
// long polls.
func TestDeliveryDataIsNeverReused(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	h := newHarness(t, f, nil)
	h.start(Subscription{chA, ReplayLatest})
	f.waitFor(chConnect, nil)
	var kept []Delivery
	for poll := range 3 {
		for i := range 5 {
			f.publish(chA, int64(poll*5+i+1), map[string]any{"n": poll*5 + i + 1})
		}
		for range 5 {
			kept = append(kept, h.next())
		}
	}
	require.NoError(t, h.stop())
	for i, d := range kept {
		require.JSONEq(t, fmt.Sprintf(`{"event":{"replayId":%d},"payload":{"n":%d}}`, i+1, i+1), string(d.Data))
	}
}
