package streaming

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	goodToken  = "tok-integration"
	otherToken = "tok-other-user"
)

// fakeClock is an injected clock for retention and expiry decisions.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testAuth accepts goodToken (principal 005A) and otherToken (principal 005B); revoked tokens
// can be added at run time.
type testAuth struct {
	mu      sync.Mutex
	revoked map[string]bool
}

func (a *testAuth) authenticate(tok string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revoked[tok] {
		return "", false
	}
	switch tok {
	case goodToken:
		return "005A", true
	case otherToken:
		return "005B", true
	}
	return "", false
}

func (a *testAuth) revoke(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revoked == nil {
		a.revoked = map[string]bool{}
	}
	a.revoked[tok] = true
}

type env struct {
	srv   *Server
	url   string
	auth  *testAuth
	clock *fakeClock
	held  chan struct{}
}

// newEnv starts a Server behind httptest on 127.0.0.1. opts may set anything; Authenticate
// and Now default to the test's.
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	e := &env{auth: &testAuth{}, clock: newFakeClock(), held: make(chan struct{}, 64)}
	if opts.Authenticate == nil {
		opts.Authenticate = e.auth.authenticate
	}
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	e.srv = New(opts)
	e.srv.onHold = func() {
		select {
		case e.held <- struct{}{}:
		default:
		}
	}
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	t.Cleanup(e.srv.Close) // runs first: releases held connects so ts.Close does not wait
	e.url = ts.URL + "/cometd/66.0"
	return e
}

// waitHeld waits until some connect is being held.
func (e *env) waitHeld(t testing.TB) {
	t.Helper()
	select {
	case <-e.held:
	case <-time.After(10 * time.Second):
		t.Fatal("no connect was held within 10s")
	}
}

// heldConnect sends a /meta/connect from c in the background, waits until the server holds a
// connect and returns the channel the reply arrives on.
func (e *env) heldConnect(t testing.TB, c *bclient) <-chan []msg {
	t.Helper()
	got := make(chan []msg, 1)
	go func() { got <- c.send(c.connectMsg()) }()
	e.waitHeld(t)
	return got
}

type msg = map[string]any

// bclient is a minimal Bayeux client for tests: one cookie jar, one Authorization header.
type bclient struct {
	t        testing.TB
	e        *env
	hc       *http.Client
	authz    string
	clientID string
	nextID   int
}

func (e *env) client(t testing.TB) *bclient {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &bclient{t: t, e: e, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}, authz: "Bearer " + goodToken}
}

func (c *bclient) id() string {
	c.nextID++
	return string(rune('0'+c.nextID%10)) + "x" + itoa(c.nextID)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// raw posts body and returns the HTTP status and body.
func (c *bclient) raw(body []byte) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.e.url, bytes.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	if c.authz != "" {
		req.Header.Set("Authorization", c.authz)
	}
	resp, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, out
}

// send posts msgs as one batch and decodes the reply array.
func (c *bclient) send(msgs ...msg) []msg {
	c.t.Helper()
	body, err := json.Marshal(msgs)
	require.NoError(c.t, err)
	status, out := c.raw(body)
	require.Equal(c.t, http.StatusOK, status, "body: %s", out)
	var replies []msg
	require.NoError(c.t, json.Unmarshal(out, &replies), "body: %s", out)
	return replies
}

func (c *bclient) handshakeMsg() msg {
	return msg{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": []string{"long-polling"},
		"ext": msg{"replay": true}, "id": c.id()}
}

func (c *bclient) handshake() msg {
	c.t.Helper()
	r := c.send(c.handshakeMsg())
	require.Len(c.t, r, 1)
	require.Equal(c.t, true, r[0]["successful"], "%v", r[0])
	c.clientID = r[0]["clientId"].(string)
	return r[0]
}

func (c *bclient) connectMsg() msg {
	return msg{"channel": "/meta/connect", "clientId": c.clientID, "connectionType": "long-polling", "id": c.id()}
}

func (c *bclient) subscribeMsg(ch string, replay any) msg {
	m := msg{"channel": "/meta/subscribe", "clientId": c.clientID, "subscription": ch, "id": c.id()}
	if replay != nil {
		m["ext"] = msg{"replay": msg{ch: replay}}
	}
	return m
}

// connect sends one connect and splits the reply into events and the connect reply.
func (c *bclient) connect() (events []msg, rep msg) {
	c.t.Helper()
	return split(c.t, c.send(c.connectMsg()))
}

func (c *bclient) subscribe(ch string, replay any) msg {
	c.t.Helper()
	r := c.send(c.subscribeMsg(ch, replay))
	require.Len(c.t, r, 1)
	return r[0]
}

// split separates event messages (non-meta channels, and server-sent /meta/disconnect
// messages, which carry no id) from meta replies, checking that events come first.
func split(t testing.TB, r []msg) (events []msg, meta msg) {
	t.Helper()
	for i, m := range r {
		ch, _ := m["channel"].(string)
		_, hasID := m["id"]
		if len(ch) >= 6 && ch[:6] == "/meta/" && (hasID || ch != "/meta/disconnect") {
			require.Equal(t, len(r)-1, i, "meta reply must come after the events: %v", r)
			return events, m
		}
		events = append(events, m)
	}
	t.Fatalf("no meta reply in %v", r)
	return nil, nil
}

// replayIDs returns data.event.replayId of each event.
func replayIDs(events []msg) []int64 {
	out := make([]int64, 0, len(events))
	for _, e := range events {
		d := e["data"].(map[string]any)
		out = append(out, int64(d["event"].(map[string]any)["replayId"].(float64)))
	}
	return out
}

// publish publishes a CDC-shaped event on channels and returns its replay id.
func (e *env) publish(channels ...string) int64 {
	return e.srv.Publish(channels, func(id int64) json.RawMessage {
		b, _ := json.Marshal(msg{"schema": "s1", "payload": msg{"n": id}, "event": msg{"replayId": id}})
		return b
	})
}
