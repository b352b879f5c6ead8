package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is an emulator served over real HTTP on 127.0.0.1.
type harness struct {
	t     *testing.T
	em    *Emulator
	srv   *httptest.Server
	clock *fakeClock
	token string
	logs  *bytes.Buffer
}

const testControlToken = "test-control-token"

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	clock := newFakeClock()
	logs := &bytes.Buffer{}
	opts := Options{
		Seed: DemoSeed(), ControlToken: testControlToken, Now: clock.Now,
		AdviceTimeout: 300 * time.Millisecond, RandSeed: 7,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&opts)
	}
	em, err := New(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(em)
	t.Cleanup(func() {
		em.Close()
		srv.Close()
	})
	h := &harness{t: t, em: em, srv: srv, clock: clock, logs: logs}
	h.token = h.passwordToken(DemoUsername, DemoPassword)
	return h
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *harness) passwordToken(user, pass string) string {
	h.t.Helper()
	status, body := h.form("/services/oauth2/token", url.Values{
		"grant_type": {"password"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret},
		"username": {user}, "password": {pass},
	})
	require.Equal(h.t, http.StatusOK, status, string(body))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(h.t, json.Unmarshal(body, &tok))
	return tok.AccessToken
}

func (h *harness) form(path string, v url.Values) (int, []byte) {
	h.t.Helper()
	resp, err := http.PostForm(h.srv.URL+path, v)
	require.NoError(h.t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return resp.StatusCode, b
}

// do sends a request with a JSON body (nil for none) and returns status, body and headers.
func (h *harness) do(method, path, auth string, body any, hdr ...string) (int, []byte, http.Header) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(h.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	require.NoError(h.t, err)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return resp.StatusCode, b, resp.Header
}

// rest calls /services/data/v62.0/<path> with the integration user's token.
func (h *harness) rest(method, path string, body any, hdr ...string) (int, []byte) {
	h.t.Helper()
	s, b, _ := h.do(method, "/services/data/v62.0/"+path, h.token, body, hdr...)
	return s, b
}

func (h *harness) control(method, path string, body any) (int, []byte) {
	h.t.Helper()
	s, b, _ := h.do(method, "/emulator/v1/"+path, testControlToken, body)
	return s, b
}

// query runs SOQL and returns the records.
func (h *harness) query(soql string) []map[string]any {
	h.t.Helper()
	s, b := h.rest(http.MethodGet, "query?q="+url.QueryEscape(soql), nil)
	require.Equal(h.t, http.StatusOK, s, string(b))
	var res struct {
		Records []map[string]any `json:"records"`
	}
	require.NoError(h.t, json.Unmarshal(b, &res))
	return res.Records
}

func (h *harness) userID(username string) string {
	h.t.Helper()
	recs := h.query("SELECT Id FROM User WHERE Username = '" + username + "'")
	require.Len(h.t, recs, 1)
	return recs[0]["Id"].(string)
}

func (h *harness) record(typ, id string) map[string]any {
	h.t.Helper()
	s, b := h.rest(http.MethodGet, "sobjects/"+typ+"/"+id, nil)
	require.Equal(h.t, http.StatusOK, s, string(b))
	var m map[string]any
	require.NoError(h.t, json.Unmarshal(b, &m))
	return m
}

func (h *harness) createWork(channel, queue string) WorkResult {
	h.t.Helper()
	s, b := h.control(http.MethodPost, "work", map[string]any{"channel": channel, "queue": queue, "subject": "help"})
	require.Equal(h.t, http.StatusCreated, s, string(b))
	var res WorkResult
	require.NoError(h.t, json.Unmarshal(b, &res))
	require.NotEmpty(h.t, res.PSRID)
	return res
}

func (h *harness) presence(user, status string) {
	h.t.Helper()
	s, b := h.control(http.MethodPost, "agents/"+user+"/presence", map[string]string{"status": status})
	require.Equal(h.t, http.StatusOK, s, string(b))
}

// insertAgentWork inserts an AgentWork over REST as the routing partner does.
func (h *harness) insertAgentWork(w WorkResult, user string) (int, []byte) {
	h.t.Helper()
	psr := h.record("PendingServiceRouting", w.PSRID)
	return h.rest(http.MethodPost, "sobjects/AgentWork", map[string]any{
		"UserId": h.userID(user), "WorkItemId": w.WorkItemID, "ServiceChannelId": psr["ServiceChannelId"],
		"PendingServiceRoutingId": w.PSRID, "CapacityWeight": psr["CapacityWeight"],
	})
}

func (h *harness) assign(w WorkResult, user string) string {
	h.t.Helper()
	s, b := h.insertAgentWork(w, user)
	require.Equal(h.t, http.StatusCreated, s, string(b))
	var res struct {
		ID string `json:"id"`
	}
	require.NoError(h.t, json.Unmarshal(b, &res))
	return res.ID
}

// routed creates work on channel in queue and assigns it to user over REST; it returns the work
// and the AgentWork id.
func (h *harness) routed(channel, queue, user string) (WorkResult, string) {
	h.t.Helper()
	w := h.createWork(channel, queue)
	return w, h.assign(w, user)
}

func (h *harness) awAction(id, action string, body any) int {
	h.t.Helper()
	s, _ := h.control(http.MethodPost, "agentwork/"+id+"/"+action, body)
	return s
}

// cometClient is a minimal Bayeux long-polling client for tests.
type cometClient struct {
	t        *testing.T
	h        *harness
	http     *http.Client
	token    string
	clientID string
	n        int
}

func (h *harness) comet(token string) *cometClient {
	jar, err := cookiejar.New(nil)
	require.NoError(h.t, err)
	return &cometClient{t: h.t, h: h, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}, token: token}
}

func (c *cometClient) send(msgs ...map[string]any) []map[string]any {
	c.t.Helper()
	for _, m := range msgs {
		c.n++
		m["id"] = strconv.Itoa(c.n)
		if c.clientID != "" && m["channel"] != "/meta/handshake" {
			m["clientId"] = c.clientID
		}
	}
	b, err := json.Marshal(msgs)
	require.NoError(c.t, err)
	req, err := http.NewRequest(http.MethodPost, c.h.srv.URL+"/cometd/62.0", bytes.NewReader(b))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "OAuth "+c.token)
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	var out []map[string]any
	require.NoError(c.t, json.Unmarshal(body, &out), string(body))
	return out
}

func (c *cometClient) handshake() {
	c.t.Helper()
	out := c.send(map[string]any{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": []string{"long-polling"}, "ext": map[string]any{"replay": true}})
	require.Equal(c.t, true, out[0]["successful"], out)
	c.clientID = out[0]["clientId"].(string)
	// The first connect returns at once.
	c.send(map[string]any{"channel": "/meta/connect", "connectionType": "long-polling"})
}

// subscribe returns the subscribe reply.
func (c *cometClient) subscribe(channel string, replay int64) map[string]any {
	c.t.Helper()
	out := c.send(map[string]any{"channel": "/meta/subscribe", "subscription": channel, "ext": map[string]any{"replay": map[string]any{channel: replay}}})
	for _, m := range out {
		if m["channel"] == "/meta/subscribe" {
			return m
		}
	}
	c.t.Fatalf("no subscribe reply in %v", out)
	return nil
}

// events connects until n data messages arrived (or a connect returns none) and returns them.
func (c *cometClient) events(n int) []map[string]any {
	c.t.Helper()
	var got []map[string]any
	for len(got) < n {
		out := c.send(map[string]any{"channel": "/meta/connect", "connectionType": "long-polling"})
		before := len(got)
		for _, m := range out {
			ch, _ := m["channel"].(string)
			if !strings.HasPrefix(ch, "/meta/") {
				got = append(got, m)
			} else if m["successful"] != true {
				c.t.Fatalf("connect failed: %v", m)
			}
		}
		if len(got) == before {
			break
		}
	}
	return got
}

// payload returns data.payload of a CDC message.
func payload(m map[string]any) map[string]any {
	return m["data"].(map[string]any)["payload"].(map[string]any)
}

func header(m map[string]any) map[string]any {
	return payload(m)["ChangeEventHeader"].(map[string]any)
}

func replayID(m map[string]any) int64 {
	return int64(m["data"].(map[string]any)["event"].(map[string]any)["replayId"].(float64))
}

// requireRESTError checks a REST error answer: the status, and the first entry of the error
// array with its errorCode and a message containing msg.
func requireRESTError(t *testing.T, status int, body []byte, wantStatus int, code, msg string) {
	t.Helper()
	require.Equal(t, wantStatus, status, string(body))
	var errs []struct {
		Message   string `json:"message"`
		ErrorCode string `json:"errorCode"`
	}
	require.NoError(t, json.Unmarshal(body, &errs), string(body))
	require.NotEmpty(t, errs, string(body))
	require.Equal(t, code, errs[0].ErrorCode, string(body))
	require.Contains(t, errs[0].Message, msg, string(body))
}

// queueID returns a queue's id, read over SOQL.
func (h *harness) queueID(name string) string {
	h.t.Helper()
	recs := h.query("SELECT Id FROM Group WHERE Type = 'Queue' AND DeveloperName = '" + name + "'")
	require.Len(h.t, recs, 1)
	return recs[0]["Id"].(string)
}
