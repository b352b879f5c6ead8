package connector

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/omniroute/omniroute/internal/syncbuf"
	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// fakeAgentRouter is the router as the gateway sees it: it records every input and answers
// snapshots from a map.
type fakeAgentRouter struct {
	inputs chan AgentInput
	mu     sync.Mutex
	snaps  map[string]AgentSnapshot
	calls  int
}

func newFakeAgentRouter() *fakeAgentRouter {
	return &fakeAgentRouter{inputs: make(chan AgentInput, 1024), snaps: map[string]AgentSnapshot{}}
}

func (f *fakeAgentRouter) FromAgent(ctx context.Context, in AgentInput) error {
	select {
	case f.inputs <- in:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeAgentRouter) AgentSnapshot(_ context.Context, user string) (AgentSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	s, ok := f.snaps[user]
	if !ok {
		return AgentSnapshot{Agent: routing.AgentView{ID: user, State: mapping.State{Major: mapping.Ready}, Chosen: mapping.State{Major: mapping.Ready}}}, nil
	}
	return s, nil
}

func (f *fakeAgentRouter) next(t *testing.T) AgentInput {
	t.Helper()
	select {
	case in := <-f.inputs:
		return in
	case <-time.After(5 * time.Second):
		t.Fatal("no input reached the router")
		return AgentInput{}
	}
}

// gwEnv is a gateway mounted on the daemon's HTTP server (NewHTTP), served on loopback.
type gwEnv struct {
	gw     *Gateway
	router *fakeAgentRouter
	reg    *prometheus.Registry
	logs   *syncbuf.Buffer
	base   string // http://127.0.0.1:port
	ws     string // ws://127.0.0.1:port/v1/agent
	key    Secret
	now    func() time.Time
	// stop shuts the HTTP server down (once; the test's cleanup calls it too).
	stop func(t *testing.T)
}

const (
	testAgentKey = "test-agent-token-key-0123456789abcdef"
	agentA       = "005000000000001AAA"
	agentB       = "005000000000002AAA"
	testOrigin   = "https://console.example.com"
)

func newGatewayEnv(t *testing.T, mod func(*GatewayOptions)) *gwEnv {
	t.Helper()
	e := &gwEnv{router: newFakeAgentRouter(), reg: prometheus.NewRegistry(), logs: &syncbuf.Buffer{}, key: NewSecret(testAgentKey), now: time.Now}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prefixed := prometheus.WrapRegistererWithPrefix(MetricsPrefix, e.reg)
	o := GatewayOptions{
		Router: e.router, Auth: AgentAuthOptions{TokenKey: e.key}, Origins: []string{testOrigin},
		Registerer: prefixed, Logger: logger,
	}
	if mod != nil {
		mod(&o)
	}
	gw, err := NewGateway(o)
	require.NoError(t, err)
	e.gw = gw
	h, err := NewHTTP(HTTPOptions{Gatherer: e.reg, Registerer: prefixed, Ready: NewReadiness(), Live: NewLiveness(nil), Logger: logger, Agent: gw})
	require.NoError(t, err)
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- h.Serve(ln) }()
	var once sync.Once
	e.stop = func(t *testing.T) {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			require.NoError(t, h.Shutdown(ctx))
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(func() { e.stop(t) })
	e.base = "http://" + ln.Addr().String()
	e.ws = "ws://" + ln.Addr().String() + AgentPath
	return e
}

func (e *gwEnv) token(t *testing.T, user string) string {
	t.Helper()
	tok, err := MintAgentToken(e.key, user, time.Hour, e.now())
	require.NoError(t, err)
	return tok
}

// dial opens a websocket with token in the subprotocol (empty: none) and hdr; it returns the
// handshake's status and negotiated subprotocol.
func (e *gwEnv) dial(token string, hdr http.Header, query string) (*websocket.Conn, handshake, error) {
	protos := []string{AgentSubprotocol}
	if token != "" {
		protos = append(protos, AgentTokenProtocol(token))
	}
	d := websocket.Dialer{Subprotocols: protos, HandshakeTimeout: 5 * time.Second}
	u := e.ws
	if query != "" {
		u += "?" + query
	}
	c, resp, err := d.Dial(u, hdr)
	var h handshake
	if resp != nil {
		h = handshake{StatusCode: resp.StatusCode, Protocol: resp.Header.Get("Sec-WebSocket-Protocol")}
		_ = resp.Body.Close()
	}
	return c, h, err
}

// handshake is what a dial's answer said.
type handshake struct {
	StatusCode int
	Protocol   string
}

func (e *gwEnv) connect(t *testing.T, user string) *websocket.Conn {
	t.Helper()
	c, resp, err := e.dial(e.token(t, user), nil, "")
	require.NoError(t, err)
	require.Equal(t, AgentSubprotocol, resp.Protocol, "the token subprotocol is never echoed")
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// connectReady connects and reads hello and the snapshot.
func (e *gwEnv) connectReady(t *testing.T, user string) *websocket.Conn {
	t.Helper()
	c := e.connect(t, user)
	require.Equal(t, "hello", readFrame(t, c)["type"])
	require.Equal(t, "snapshot", readFrame(t, c)["type"])
	return c
}

func (e *gwEnv) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(e.base + "/metrics") //nolint:noctx // a test scrape
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func readRaw(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	mt, data, err := c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.TextMessage, mt)
	return data
}

func readFrame(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(readRaw(t, c), &m))
	return m
}

// readClose reads until the connection ends and returns its close error.
func readClose(t *testing.T, c *websocket.Conn) *websocket.CloseError {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	// The server is gone: answer neither its close nor its pings.
	c.SetCloseHandler(func(int, string) error { return nil })
	c.SetPingHandler(func(string) error { return nil })
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		return ce
	}
}

func sampleSnapshot() AgentSnapshot {
	ready := mapping.State{Major: mapping.Ready}
	busy := mapping.State{Major: mapping.Busy}
	return AgentSnapshot{
		Agent: routing.AgentView{ID: agentA, State: busy, Chosen: ready, Presence: "Available", Channels: []string{"Chat", "Case"},
			Routable: true, NotRoutable: []string{}, Skills: []routing.SkillLevel{},
			Work: []routing.HeldWorkView{
				{WorkID: "0MwCHAT1", Status: "active", Channel: "Chat", Class: "semi_live", Plan: "support", Weight: 1, Session: "S1"},
				{WorkID: "0MwCASE1", Status: "wrap_up", Channel: "Case", Class: "non_live", Plan: "support", Weight: 1},
				{WorkID: "0MwVOICE1", Status: "active", Channel: "Phone", Class: "live", Plan: "support", Weight: 1, Session: "S1"},
				{WorkID: "0MwOFFER1", Status: "offered", Channel: "Chat", Class: "semi_live", Plan: "billing", Weight: 1},
			}},
		Offers: []routing.Command{{Type: routing.CommandOffer, WorkID: "0MwOFFER1", AgentID: agentA, Channel: "Chat", Plan: "billing", Weight: 1}},
		Agents: []routing.AgentView{{ID: agentA, State: busy, Presence: "Available"}, {ID: agentB, State: ready, Presence: "Available", Routable: true}},
		Plans:  []routing.PlanView{{Name: "support", Queues: []string{"Support_EN"}, WrapUpTimeoutSeconds: 30}, {Name: "billing", Queues: []string{"Billing"}, DispositionRequired: true}},
	}
}

// TestGatewaySnapshotOnConnect: hello then the snapshot (interactions grouped by session,
// offers, the directory), and a reconnecting agent gets the same snapshot.
func TestGatewaySnapshotOnConnect(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, nil)
	e.router.snaps[agentA] = sampleSnapshot()

	c := e.connect(t, agentA)
	hello := readFrame(t, c)
	require.Equal(t, map[string]any{"type": "hello", "version": float64(ProtocolVersion), "user": agentA, "heartbeat_seconds": float64(25)}, hello)
	first := readRaw(t, c)
	var snap snapshotFrame
	require.NoError(t, json.Unmarshal(first, &snap))
	require.Equal(t, agentA, snap.Agent.ID)
	require.Equal(t, "Busy", snap.Agent.State.String())
	var sessions [][]string
	for _, s := range snap.Sessions {
		var ids []string
		for _, w := range s.Interactions {
			ids = append(ids, w.WorkID)
		}
		sessions = append(sessions, append([]string{s.Session}, ids...))
	}
	require.Equal(t, [][]string{{"S1", "0MwCHAT1", "0MwVOICE1"}, {"0MwCASE1", "0MwCASE1"}}, sessions)
	require.Equal(t, []offerFrame{{Type: "offer", WorkID: "0MwOFFER1", Channel: "Chat", Plan: "billing", Weight: 1}}, snap.Offers)
	require.Len(t, snap.Directory.Agents, 2)
	require.Equal(t, []string{"Support_EN"}, snap.Directory.Plans[0].Queues)
	require.True(t, snap.Directory.Plans[1].DispositionRequired)
	require.NoError(t, c.Close())

	again := e.connect(t, agentA)
	readFrame(t, again)
	require.Equal(t, string(first), string(readRaw(t, again)), "a reconnecting agent gets the same snapshot")
}

// TestGatewayNewestConnectionWins: a second connection for the same agent closes the first
// with CloseReplaced and a reason; messages go to the newest.
func TestGatewayNewestConnectionWins(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, nil)
	old := e.connectReady(t, agentA)
	newer := e.connectReady(t, agentA)

	ce := readClose(t, old)
	require.Equal(t, CloseReplaced, ce.Code)
	require.Equal(t, "replaced by a newer connection", ce.Text)

	require.True(t, e.gw.Deliver(agentA, AgentMessage{Command: &routing.Command{Type: routing.CommandSetState, AgentID: agentA, State: mapping.State{Major: mapping.Away, Minor: "Break"}, Presence: "Break"}}))
	require.Equal(t, map[string]any{"type": "state", "state": "Away/Break", "presence": "Break"}, readFrame(t, newer))
	require.Equal(t, 1, e.gw.Connected())
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.connected), 0)
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.disconnects.WithLabelValues(discReplaced)), 0)
}

// TestGatewaySlowClientDropped: a client that stops reading fills its queue; Deliver then
// returns false at once and the connection is dropped, while another agent keeps receiving.
func TestGatewaySlowClientDropped(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.SendQueue = 8 })
	slow := e.connectReady(t, agentA) // never read again until the end
	fast := e.connectReady(t, agentB)

	toFast := func(i int) {
		require.True(t, e.gw.Deliver(agentB, AgentMessage{Command: &routing.Command{Type: routing.CommandNotify, AgentID: agentB, WorkID: "w", Session: strconv.Itoa(i)}}), "at %d", i)
		require.Equal(t, strconv.Itoa(i), readFrame(t, fast)["session"], "the other agent keeps receiving")
	}
	big := AgentMessage{Command: &routing.Command{Type: routing.CommandNotify, AgentID: agentA, WorkID: strings.Repeat("w", 200), Reason: routing.ReasonTransfer}}
	dropped, worst := false, time.Duration(0)
	for i := 0; i < 2_000_000 && !dropped; i++ {
		start := time.Now()
		ok := e.gw.Deliver(agentA, big)
		worst = max(worst, time.Since(start))
		dropped = !ok
		if i%500 == 0 {
			toFast(i)
		}
	}
	require.True(t, dropped, "the slow client's queue never filled")
	require.Less(t, worst, 100*time.Millisecond, "Deliver blocked")
	require.False(t, e.gw.Deliver(agentA, big), "a dropped connection takes nothing")
	toFast(-1)
	ce := readClose(t, slow)
	require.Equal(t, CloseTooSlow, ce.Code)
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.disconnects.WithLabelValues(discSlow)), 0)
}

// gatedWriter is a log destination that blocks while gated: stderr to a log shipper that
// stopped reading.
type gatedWriter struct {
	gate chan struct{} // closed: writes go through
	syncbuf.Buffer
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	<-w.gate
	return w.Buffer.Write(p)
}

// TestGatewayDropDoesNotWaitForTheLog: Deliver runs on the router's goroutine and never
// blocks, also when it drops a slow client: the warning that names the dropped agent is not
// written from Deliver, so a log destination that blocks holds up that connection's handler,
// never the router.
func TestGatewayDropDoesNotWaitForTheLog(t *testing.T) {
	t.Parallel()
	w := &gatedWriter{gate: make(chan struct{})}
	e := newGatewayEnv(t, func(o *GatewayOptions) {
		o.SendQueue = 4
		o.Logger = slog.New(slog.NewTextHandler(w, nil)) // info: connections log nothing
	})
	t.Cleanup(func() {
		select {
		case <-w.gate:
		default:
			close(w.gate)
		}
	})
	_ = e.connectReady(t, agentA) // never read again
	big := AgentMessage{Command: &routing.Command{Type: routing.CommandNotify, AgentID: agentA, WorkID: strings.Repeat("w", 4000)}}
	dropped := make(chan struct{})
	go func() {
		defer close(dropped)
		for e.gw.Deliver(agentA, big) {
		}
	}()
	select {
	case <-dropped:
	case <-time.After(10 * time.Second):
		close(w.gate)
		<-dropped
		t.Fatal("Deliver waited for the log while it dropped the slow client")
	}
	close(w.gate)
	require.Eventually(t, func() bool { return strings.Contains(w.String(), "agent connection dropped: too slow") }, 15*time.Second, 10*time.Millisecond)
	require.Contains(t, w.String(), "user="+agentA)
}

// clientCases are every client message and the AgentInput it becomes (for agentA).
var clientCases = []struct {
	name  string
	frame string
	want  AgentInput
}{
	{"set_state", `{"type":"set_state","state":"Away/Break"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentState, State: mapping.State{Major: mapping.Away, Minor: "Break"}}}},
	{"set_state after work", `{"type":"set_state","state":"ExtendedAway/Training","ref":"r1"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentState, State: mapping.State{Major: mapping.ExtendedAway, Minor: "Training"}}}},
	{"accept", `{"type":"accept","work_id":"0Mw1"}`, AgentInput{Report: &ConsoleReport{Kind: ReportAcceptRequest, WorkID: "0Mw1"}}},
	{"decline", `{"type":"decline","work_id":"0Mw1"}`, AgentInput{Report: &ConsoleReport{Kind: ReportDeclineRequest, WorkID: "0Mw1"}}},
	{"release", `{"type":"release","work_id":"0Mw1"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionRelease}}}},
	{"hold", `{"type":"hold","work_id":"0Mw1"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionHold}}}},
	{"retrieve", `{"type":"retrieve","work_id":"0Mw1"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionRetrieve}}}},
	{"abandon", `{"type":"abandon","work_id":"0Mw1"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionAbandon}}}},
	{"end_wrap_up", `{"type":"end_wrap_up","work_id":"0Mw1"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionEndWrapUp}}}},
	{"consult agent", `{"type":"consult","work_id":"0Mw1","target":"agent","target_id":"005B"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionConsult, Target: routing.TargetAgent, TargetID: "005B"}}}},
	{"consult number", `{"type":"consult","work_id":"0Mw1","target":"number","target_id":"+441234"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionConsult, Target: routing.TargetNumber, TargetID: "+441234"}}}},
	{"transfer plan", `{"type":"transfer","work_id":"0Mw1","target":"plan","target_id":"billing"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionTransfer, Target: routing.TargetPlan, TargetID: "billing"}}}},
	{"transfer agent", `{"type":"transfer","work_id":"0Mw1","target":"agent","target_id":"005B"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionTransfer, Target: routing.TargetAgent, TargetID: "005B"}}}},
	{"transfer queue", `{"type":"transfer","work_id":"0Mw1","target":"queue","target_id":"00G1"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionTransfer, Target: routing.TargetQueue, TargetID: "00G1"}}}},
	{"elevate", `{"type":"elevate","work_id":"0Mw1"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionElevate, Mode: routing.ElevateCurrent}}}},
	{"elevate new contact", `{"type":"elevate","work_id":"0Mw1","mode":"new_contact","new_work_id":"0Mw1/voice","channel":"Phone"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionElevate, Mode: routing.ElevateNewContact, NewWorkID: "0Mw1/voice", Channel: "Phone"}}}},
	{"disposition", `{"type":"disposition","work_id":"0Mw1","disposition":"Resolved"}`,
		AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: "0Mw1", Action: routing.Action{Kind: routing.ActionDisposition, Disposition: "Resolved"}}}},
	{"command_result ok", `{"type":"command_result","command_id":"c1","ok":true}`, AgentInput{Report: &ConsoleReport{Kind: ReportResult, CommandID: "c1", OK: true}}},
	{"command_result failed", `{"type":"command_result","command_id":"c1","ok":false,"error":"no such status"}`,
		AgentInput{Report: &ConsoleReport{Kind: ReportResult, CommandID: "c1", Error: "no such status"}}},
	{"presence_changed", `{"type":"presence_changed","status_id":"0N51","status":"Busy_Inbound"}`,
		AgentInput{Report: &ConsoleReport{Kind: ReportPresenceChanged, StatusID: "0N51", Status: "Busy_Inbound"}}},
	{"logged_out", `{"type":"logged_out"}`, AgentInput{Report: &ConsoleReport{Kind: ReportLoggedOut}}},
	{"work_accepted", `{"type":"work_accepted","work_id":"0Mw1","agent_work_id":"0Bz1"}`,
		AgentInput{Report: &ConsoleReport{Kind: ReportWorkAccepted, WorkID: "0Mw1", AgentWorkID: "0Bz1"}}},
	{"work_declined", `{"type":"work_declined","work_id":"0Mw1","agent_work_id":"0Bz1"}`,
		AgentInput{Report: &ConsoleReport{Kind: ReportWorkDeclined, WorkID: "0Mw1", AgentWorkID: "0Bz1"}}},
	{"work_closed", `{"type":"work_closed","work_id":"0Mw1"}`, AgentInput{Report: &ConsoleReport{Kind: ReportWorkClosed, WorkID: "0Mw1"}}},
}

// TestGatewayDecodesEveryClientMessage sends each client message over the websocket and checks
// the AgentInput the router gets: User is always the token's agent.
func TestGatewayDecodesEveryClientMessage(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, nil)
	c := e.connectReady(t, agentA)
	types := map[string]bool{}
	for _, tc := range clientCases {
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(tc.frame)), tc.name)
		want := tc.want
		want.User = agentA
		require.Empty(t, cmp.Diff(want, e.router.next(t)), tc.name)
		var f struct{ Type string }
		require.NoError(t, json.Unmarshal([]byte(tc.frame), &f))
		types[f.Type] = true
	}
	for typ := range clientTypes {
		require.True(t, types[typ], "no case for %s", typ)
	}
	require.InDelta(t, 2, testutil.ToFloat64(e.gw.metrics.frames.WithLabelValues("in", "set_state")), 0)
}

// TestGatewayBadFrames: each bad frame is answered with an error naming its reason and the
// client's ref, counted, and the connection carries on; a frame over the size limit ends it.
func TestGatewayBadFrames(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.MaxFrameBytes = 1024 })
	c := e.connectReady(t, agentA)
	bad := []struct {
		frame  string
		reason string
		ref    string
	}{
		{`{"type":"release"`, badFrameJSON, ""},
		{`not json`, badFrameJSON, ""},
		{`{"type":"dance","ref":"r2"}`, badFrameType, "r2"},
		{`{"ref":"r3"}`, badFrameType, "r3"},
		{`{"type":"release","ref":"r4"}`, badFrameField, "r4"},
		{`{"type":"release","work_id":"0Mw1","state":"Ready","ref":"r5"}`, badFrameField, "r5"},
		{`{"type":"release","work_id":"0Mw1","agent_id":"` + agentB + `"}`, badFrameJSON, ""},
		{`{"type":"set_state","state":"Sleeping"}`, badFrameField, ""},
		{`{"type":"transfer","work_id":"0Mw1","target":"moon","target_id":"x"}`, badFrameField, ""},
		{`{"type":"hold","work_id":7}`, badFrameJSON, ""},
		{`{"type":"hold","work_id":"a"}{"type":"hold","work_id":"b"}`, badFrameJSON, ""},
		{`{"type":"hold","work_id":"a"}}`, badFrameJSON, ""}, // found by FuzzAgentFrame
	}
	for _, b := range bad {
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(b.frame)))
		f := readFrame(t, c)
		require.Equal(t, "error", f["type"], b.frame)
		require.Equal(t, errCodeBadFrame, f["code"], b.frame)
		require.Equal(t, b.reason, f["reason"], b.frame)
		require.NotEmpty(t, f["message"], b.frame)
		if b.ref != "" {
			require.Equal(t, b.ref, f["ref"], b.frame)
		}
	}
	require.NoError(t, c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}))
	require.Equal(t, badFrameBinary, readFrame(t, c)["reason"])

	// The connection survived: a good frame still reaches the router.
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hold","work_id":"0Mw1"}`)))
	require.Equal(t, routing.ActionHold, e.router.next(t).Event.Action.Kind)
	require.InDelta(t, 6, testutil.ToFloat64(e.gw.metrics.badFrames.WithLabelValues(badFrameJSON)), 0)
	require.InDelta(t, 2, testutil.ToFloat64(e.gw.metrics.badFrames.WithLabelValues(badFrameType)), 0)
	require.InDelta(t, 4, testutil.ToFloat64(e.gw.metrics.badFrames.WithLabelValues(badFrameField)), 0)
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.badFrames.WithLabelValues(badFrameBinary)), 0)
	require.Empty(t, e.router.inputs, "no bad frame reached the router")

	// Too large: the connection ends with 1009 and the frame is counted.
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hold","work_id":"`+strings.Repeat("x", 2048)+`"}`)))
	require.Equal(t, websocket.CloseMessageTooBig, readClose(t, c).Code)
	e.gw.Close() // waits for the connection's handler
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.badFrames.WithLabelValues(badFrameTooLarge)), 0)
}

// TestGatewayDeliversFrames: each kind of router message becomes its frame; a wrap-up carries
// its deadline from the plan's wrap-up timeout; a refused action carries the engine's reason.
func TestGatewayDeliversFrames(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 5, 21, 0, 0, 0, time.UTC)
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.Now = func() time.Time { return at } })
	e.router.snaps[agentA] = sampleSnapshot()
	c := e.connectReady(t, agentA)
	cases := []struct {
		msg  AgentMessage
		want map[string]any
	}{
		{AgentMessage{Command: &routing.Command{Type: routing.CommandOffer, WorkID: "0Mw9", AgentID: agentA, Channel: "Case", Plan: "support", Weight: 2, Reason: routing.ReasonTransfer}},
			map[string]any{"type": "offer", "work_id": "0Mw9", "channel": "Case", "plan": "support", "weight": float64(2), "auto_accept": false, "reason": "transfer"}},
		{AgentMessage{Command: &routing.Command{Type: routing.CommandWrapUp, WorkID: "0MwCHAT1", AgentID: agentA, Session: "S1"}},
			map[string]any{"type": "interaction", "change": "wrap_up", "work_id": "0MwCHAT1", "session": "S1", "wrap_up_deadline": "2026-12-05T21:00:30Z"}},
		{AgentMessage{Command: &routing.Command{Type: routing.CommandWrapUp, WorkID: "0MwOFFER1", AgentID: agentA}},
			map[string]any{"type": "interaction", "change": "wrap_up", "work_id": "0MwOFFER1"}}, // billing: no wrap-up timeout
		{AgentMessage{Command: &routing.Command{Type: routing.CommandRefused, WorkID: "0MwCHAT1", AgentID: agentA, Action: routing.ActionHold, Reason: routing.ReasonNotAllowedForClass}},
			map[string]any{"type": "error", "code": "refused", "reason": "not_allowed_for_class", "action": "hold", "work_id": "0MwCHAT1"}},
		{AgentMessage{Command: &routing.Command{Type: routing.CommandEnded, WorkID: "0MwCHAT1", AgentID: agentA, Reason: routing.ReasonReleased}},
			map[string]any{"type": "interaction", "change": "ended", "work_id": "0MwCHAT1", "reason": "released"}},
		{AgentMessage{Command: &routing.Command{Type: routing.CommandSessionEnded, AgentID: agentA, Session: "S1", Disposition: "Resolved"}},
			map[string]any{"type": "interaction", "change": "session_ended", "session": "S1", "disposition": "Resolved"}},
		{AgentMessage{Command: &routing.Command{Type: routing.CommandConsult, WorkID: "0MwCASE1", AgentID: agentA, Target: routing.TargetAgent, TargetID: agentB}},
			map[string]any{"type": "interaction", "change": "consult", "work_id": "0MwCASE1", "target": "agent", "target_id": agentB}},
		{AgentMessage{Console: &ConsoleCommand{ID: "c1", Op: ConsoleSetStatus, StatusID: "0N51", Status: "Available"}},
			map[string]any{"type": "console", "id": "c1", "op": "set_status", "status_id": "0N51", "status": "Available"}},
		{AgentMessage{Console: &ConsoleCommand{ID: "c2", Op: ConsoleLogout}}, map[string]any{"type": "console", "id": "c2", "op": "logout"}},
		{AgentMessage{Console: &ConsoleCommand{ID: "c3", Op: ConsoleCloseWork, WorkID: "0Mw1", AgentWorkID: "0Bz1"}},
			map[string]any{"type": "console", "id": "c3", "op": "close_work", "work_id": "0Mw1", "agent_work_id": "0Bz1"}},
	}
	for _, tc := range cases {
		require.True(t, e.gw.Deliver(agentA, tc.msg))
		require.Equal(t, tc.want, readFrame(t, c))
	}
	require.False(t, e.gw.Deliver(agentB, cases[0].msg), "no connection, no delivery")
}

// TestGatewayFramesAreCompactJSON: every frame, written one after another through the pooled
// encoders, is exactly its json.Marshal form: compact, no trailing newline, HTML characters
// escaped as always; nothing of one frame's encoding carries into the next.
func TestGatewayFramesAreCompactJSON(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, nil)
	c := e.connectReady(t, agentA)
	msgs := []AgentMessage{
		{Command: &routing.Command{Type: routing.CommandConsult, WorkID: "0Mw<1>", AgentID: agentA, Target: routing.TargetNumber, TargetID: "+44 & <b>"}},
		{Console: &ConsoleCommand{ID: "c1", Op: ConsoleSetStatus, StatusID: "0N51", Status: "Away \u2028 <now>"}},
		{Command: &routing.Command{Type: routing.CommandOffer, WorkID: "0Mw2", AgentID: agentA, Channel: "Chat", Plan: "support", Weight: 1}},
		{Command: &routing.Command{Type: routing.CommandSetState, AgentID: agentA, State: mapping.State{Major: mapping.Away, Minor: "Break"}, Presence: "Break"}},
	}
	for range 3 {
		for _, m := range msgs {
			require.True(t, e.gw.Deliver(agentA, m))
			f, ok := encodeMessage(m, time.Now(), nil)
			require.True(t, ok)
			want, err := json.Marshal(f)
			require.NoError(t, err)
			require.Equal(t, string(want), string(readRaw(t, c)))
		}
	}
}

// TestGatewayHeartbeat: a client that answers pings outlives the pong timeout (and the HTTP
// server's own deadlines); one that never reads is dropped for its silence.
func TestGatewayHeartbeat(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, func(o *GatewayOptions) {
		o.PingInterval = 50 * time.Millisecond
		o.PongTimeout = 200 * time.Millisecond
	})
	alive := e.connectReady(t, agentA)
	dead := e.connectReady(t, agentB)
	time.AfterFunc(time.Second, func() {
		e.gw.Deliver(agentA, AgentMessage{Command: &routing.Command{Type: routing.CommandNotify, AgentID: agentA, WorkID: "late"}})
	})
	// The reading client answers pings (gorilla's default ping handler) while it waits.
	require.Equal(t, "late", readFrame(t, alive)["work_id"])
	ce := readClose(t, dead)
	require.Equal(t, websocket.CloseGoingAway, ce.Code)
	require.Equal(t, "no heartbeat", ce.Text)
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.disconnects.WithLabelValues(discHeartbeat)), 0)
}

// writerStall holds a user's writer after one frame, as a slow write would.
type writerStall struct {
	written atomic.Int64
	stalled chan struct{}
	release chan struct{}
}

// stallWriter makes user's writer stall after the first frame delivered once connected (its
// third: hello and the snapshot come first) until free. The hook is set under the gateway's
// lock, which every connection's register takes before its writer starts; call it before user
// connects, once.
func (e *gwEnv) stallWriter(user string) *writerStall {
	s := &writerStall{stalled: make(chan struct{}, 1), release: make(chan struct{})}
	e.gw.mu.Lock()
	defer e.gw.mu.Unlock()
	e.gw.wrote = func(u string) {
		if u == user && s.written.Add(1) == 3 {
			s.stalled <- struct{}{}
			<-s.release
		}
	}
	return s
}

// stallOn runs deliver (which must queue the frame to stall on) and returns once the writer
// has written that frame and stalls.
func (s *writerStall) stallOn(t *testing.T, deliver func()) {
	t.Helper()
	deliver()
	select {
	case <-s.stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer did not stall")
	}
}

// free lets the writer go on.
func (s *writerStall) free() {
	close(s.release)
}

// TestGatewayPingNotDelayedByFullQueue: a ping that falls due while the writer is busy and
// the connection's queue is full (a burst the client is still taking) is sent as soon as the
// writer gets to it, not a whole PingInterval later: the server pings every PingInterval
// (docs/agent-protocol.md), and a client whose pings come late gets less of PongTimeout.
func TestGatewayPingNotDelayedByFullQueue(t *testing.T) {
	t.Parallel()
	const interval = 400 * time.Millisecond
	e := newGatewayEnv(t, func(o *GatewayOptions) {
		o.PingInterval = interval
		o.PongTimeout = 10 * time.Second
		o.SendQueue = 4
	})
	ws := e.stallWriter(agentA)
	c := e.connectReady(t, agentA)
	pings := make(chan time.Time, 64)
	c.SetPingHandler(func(data string) error {
		pings <- time.Now()
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	nextPing := func() time.Time {
		t.Helper()
		select {
		case at := <-pings:
			return at
		case <-time.After(5 * time.Second):
			t.Fatal("no ping")
			return time.Time{}
		}
	}
	p0 := nextPing()

	// Right after a ping the writer stalls on a frame and the queue fills behind it; the next
	// ping falls due meanwhile, at p0 + interval.
	msg := AgentMessage{Command: &routing.Command{Type: routing.CommandNotify, AgentID: agentA, WorkID: "w"}}
	ws.stallOn(t, func() { require.True(t, e.gw.Deliver(agentA, msg)) })
	e.gw.mu.RLock()
	conn := e.gw.conns[agentA]
	e.gw.mu.RUnlock()
	for len(conn.send) < cap(conn.send) {
		require.True(t, e.gw.Deliver(agentA, msg))
	}
	time.Sleep(time.Until(p0.Add(interval + interval/4)))
	released := time.Now()
	ws.free()

	late := nextPing().Sub(released)
	require.Less(t, late, interval/3, "the ping due during the stall came %s after the writer was free", late)
	require.InDelta(t, 0, testutil.ToFloat64(e.gw.metrics.disconnects.WithLabelValues(discSlow)), 0)
}

// TestGatewayFullQueueStillGetsCloseFrame: a connection dropped while its writer is busy and
// its queue is full (no room for the close's wake-up) still gets its 4001 once the writer is
// free.
func TestGatewayFullQueueStillGetsCloseFrame(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.SendQueue = 4 })
	ws := e.stallWriter(agentA)
	c := e.connectReady(t, agentA)
	msg := AgentMessage{Command: &routing.Command{Type: routing.CommandNotify, AgentID: agentA, WorkID: "w"}}
	ws.stallOn(t, func() { require.True(t, e.gw.Deliver(agentA, msg)) })
	for e.gw.Deliver(agentA, msg) {
	}
	ws.free()
	require.Equal(t, "w", readFrame(t, c)["work_id"], "the frame written before the drop")
	ce := readClose(t, c)
	require.Equal(t, CloseTooSlow, ce.Code)
	require.Equal(t, "too slow: reconnect for a snapshot", ce.Text)
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.disconnects.WithLabelValues(discSlow)), 0)
}

// TestGatewayOutlivesServerTimeouts: the HTTP server's ReadTimeout and WriteTimeout do not end
// an upgraded connection.
func TestGatewayOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	gw, err := NewGateway(GatewayOptions{Router: newFakeAgentRouter(), Auth: AgentAuthOptions{TokenKey: NewSecret(testAgentKey)}})
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(gw)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	tok, err := MintAgentToken(NewSecret(testAgentKey), agentA, time.Hour, time.Now())
	require.NoError(t, err)
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), http.Header{"Authorization": {"Bearer " + tok}})
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	readFrame(t, c)
	readFrame(t, c)
	time.AfterFunc(400*time.Millisecond, func() {
		gw.Deliver(agentA, AgentMessage{Command: &routing.Command{Type: routing.CommandNotify, AgentID: agentA, WorkID: "later"}})
	})
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(`{"type":"logged_out"}`)))
	require.Equal(t, "later", readFrame(t, c)["work_id"])
	gw.Close()
	require.Equal(t, websocket.CloseGoingAway, readClose(t, c).Code)
}

// TestGatewayRefusesBeforeUpgrade: no token, a bad, expired or another agent's token, a token
// in the query string and a wrong Origin are each refused with its status, never upgraded, and
// counted by reason.
func TestGatewayRefusesBeforeUpgrade(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, nil)
	good := e.token(t, agentA)
	otherKey, err := MintAgentToken(NewSecret(strings.Repeat("k", 40)), agentA, time.Hour, time.Now())
	require.NoError(t, err)
	expired, err := MintAgentToken(e.key, agentA, time.Minute, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"omniroute","aud":["omniroute-agent"],"sub":"`+agentB+`","exp":9999999999,"iat":1}`)) + "." + parts[2]
	cases := []struct {
		name   string
		token  string
		hdr    http.Header
		query  string
		status int
		reason string
	}{
		{"no token", "", nil, "", http.StatusUnauthorized, refusedNoToken},
		{"garbage", "not-a-token", nil, "", http.StatusUnauthorized, refusedBadToken},
		{"signed with another key", otherKey, nil, "", http.StatusUnauthorized, refusedBadToken},
		{"forged subject", forged, nil, "", http.StatusUnauthorized, refusedBadToken},
		{"expired", expired, nil, "", http.StatusUnauthorized, refusedExpired},
		{"another agent's token", good, nil, "agent=" + agentB, http.StatusForbidden, refusedMismatch},
		{"wrong origin", good, http.Header{"Origin": {"https://evil.example.com"}}, "", http.StatusForbidden, refusedOrigin},
		{"token in the query", "", nil, "access_token=" + good, http.StatusBadRequest, refusedQuery},
		{"headers disagree", good, http.Header{"Authorization": {"Bearer " + otherKey}}, "", http.StatusUnauthorized, refusedBadToken},
	}
	for _, tc := range cases {
		before := testutil.ToFloat64(e.gw.metrics.refused.WithLabelValues(tc.reason))
		c, resp, err := e.dial(tc.token, tc.hdr, tc.query)
		require.ErrorIs(t, err, websocket.ErrBadHandshake, tc.name)
		require.Nil(t, c, tc.name)
		require.Equal(t, tc.status, resp.StatusCode, tc.name)
		require.InDelta(t, before+1, testutil.ToFloat64(e.gw.metrics.refused.WithLabelValues(tc.reason)), 0, tc.name)
	}
	// The right origin, and the right agent named, are let in; so is a bearer header.
	c, _, err := e.dial(good, http.Header{"Origin": {testOrigin}}, "agent="+agentA)
	require.NoError(t, err)
	_ = c.Close()
	d := websocket.Dialer{Subprotocols: []string{AgentSubprotocol}}
	c, resp, err := d.Dial(e.ws, http.Header{"Authorization": {"Bearer " + good}})
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, agentA, readFrame(t, c)["user"])
	_ = c.Close()
	// A plain GET is not a websocket.
	resp, err = http.Get(e.base + AgentPath) //nolint:noctx // test
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.refused.WithLabelValues(refusedNotWebsocket)), 0)
}

// TestGatewayNeverLogsTokens: after refused and accepted connections with demo and Salesforce
// tokens, neither the logs (debug level) nor /metrics contain any token, raw or encoded.
func TestGatewayNeverLogsTokens(t *testing.T) {
	t.Parallel()
	org, userinfo := agentOrg(t)
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.Auth.UserInfoURL = userinfo; o.Auth.OrgID = emulator.DemoOrgID })
	good := e.token(t, agentA)
	expired, err := MintAgentToken(e.key, agentA, time.Minute, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	sfToken, err := org.IssueToken(orgAgentUsername)
	require.NoError(t, err)
	tokens := []string{good, expired, sfToken, "00Dbogus!AQ" + strings.Repeat("f", 64), testAgentKey}
	for _, tok := range tokens {
		for _, q := range []string{"", "agent=" + agentB, "token=" + tok} {
			c, _, err := e.dial(tok, http.Header{"Origin": {testOrigin}}, q)
			if err == nil {
				readFrame(t, c)
				require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hold","work_id":"`+tok+`","x":1}`)))
				readFrame(t, c)
				_ = c.Close()
			}
		}
	}
	metrics := e.metricsText(t)
	require.Contains(t, metrics, `omniroute_gateway_refused_total{reason="bad_token"}`)
	for _, tok := range tokens {
		for _, s := range []string{tok, base64.RawURLEncoding.EncodeToString([]byte(tok))} {
			require.NotContains(t, e.logs.String(), s)
			require.NotContains(t, metrics, s)
		}
	}
	require.Contains(t, e.logs.String(), "agent connection refused")
}

// orgAgentUsername is an agent of the demo org.
const orgAgentUsername = "agent01@omniroute.demo"

// agentOrg serves the demo org on loopback and returns it and its userinfo URL.
func agentOrg(t *testing.T) (*emulator.Emulator, string) {
	t.Helper()
	em, err := emulator.New(emulator.Options{Seed: emulator.DemoSeed()})
	require.NoError(t, err)
	t.Cleanup(em.Close)
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	return em, srv.URL + "/services/oauth2/userinfo"
}

// userIDOf asks the org's userinfo who token is.
func userIDOf(t *testing.T, userinfo, token string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, userinfo, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var ui userInfo
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ui))
	return ui.UserID
}

// countingTransport counts the requests it carries.
type countingTransport struct {
	mu sync.Mutex
	n  int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestGatewaySalesforceToken: an agent's own Salesforce token is checked against the emulator's
// userinfo endpoint over loopback and opens the connection as that user; the answer is cached
// (one userinfo call for several connections) until its TTL, after which a revoked token is
// refused; an unknown token is refused; an identity service that cannot answer gives 503.
func TestGatewaySalesforceToken(t *testing.T) {
	t.Parallel()
	org, userinfo := agentOrg(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ct := &countingTransport{}
	e := newGatewayEnv(t, func(o *GatewayOptions) {
		o.Auth = AgentAuthOptions{UserInfoURL: userinfo, OrgID: emulator.DemoOrgID, HTTPClient: &http.Client{Transport: ct},
			CacheTTL: time.Minute, Now: clock}
	})
	tok, err := org.IssueToken(orgAgentUsername)
	require.NoError(t, err)
	user := userIDOf(t, userinfo, tok)
	require.True(t, strings.HasPrefix(user, "005"), user)

	for range 3 {
		c, _, err := e.dial(tok, nil, "")
		require.NoError(t, err)
		require.Equal(t, user, readFrame(t, c)["user"])
		_ = c.Close()
	}
	require.Equal(t, 1, ct.count(), "the token's user is cached")

	org.ExpireSessions()
	c, _, err := e.dial(tok, nil, "")
	require.NoError(t, err, "still cached")
	_ = c.Close()
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	_, resp, err := e.dial(tok, nil, "")
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a revoked token is refused once the cache entry is stale")
	require.Equal(t, 2, ct.count())

	_, resp, err = e.dial("00Dnotatoken!AQ"+strings.Repeat("0", 64), nil, "")
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.InDelta(t, 2, testutil.ToFloat64(e.gw.metrics.refused.WithLabelValues(refusedBadToken)), 0)

	// A token of another org's user: refused.
	e2 := newGatewayEnv(t, func(o *GatewayOptions) { o.Auth = AgentAuthOptions{UserInfoURL: userinfo, OrgID: "00D000000000OTHER"} })
	tok2, err := org.IssueToken(orgAgentUsername)
	require.NoError(t, err)
	_, resp, err = e2.dial(tok2, nil, "")
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// The identity service is down: 503, nothing cached.
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "http://" + ln.Addr().String() + "/services/oauth2/userinfo"
	require.NoError(t, ln.Close())
	e3 := newGatewayEnv(t, func(o *GatewayOptions) { o.Auth = AgentAuthOptions{UserInfoURL: down, OrgID: emulator.DemoOrgID} })
	_, resp, err = e3.dial(tok2, nil, "")
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.InDelta(t, 1, testutil.ToFloat64(e3.gw.metrics.refused.WithLabelValues(refusedIdentity)), 0)
}

// TestAgentAuthFromConfig: the daemon's configuration admits a demo token signed with
// OMNIROUTE_AGENT_TOKEN_KEY and a Salesforce token checked at the login URL's userinfo.
func TestAgentAuthFromConfig(t *testing.T) {
	t.Parallel()
	org, userinfo := agentOrg(t)
	cfg := DefaultConfig()
	cfg.Salesforce.LoginURL = strings.TrimSuffix(userinfo, UserInfoPath) + "/"
	cfg.AgentTokenKey = NewSecret(testAgentKey)
	a, err := newAgentAuth(AgentAuthFromConfig(cfg, emulator.DemoOrgID, nil))
	require.NoError(t, err)
	sf, err := org.IssueToken(orgAgentUsername)
	require.NoError(t, err)
	user, aerr := a.authenticate(t.Context(), sf)
	require.Nil(t, aerr)
	require.Equal(t, userIDOf(t, userinfo, sf), user)
	demo, err := MintAgentToken(cfg.AgentTokenKey, agentA, time.Minute, time.Now())
	require.NoError(t, err)
	user, aerr = a.authenticate(t.Context(), demo)
	require.Nil(t, aerr)
	require.Equal(t, agentA, user)
	// The org's id not known: demo tokens only.
	a, err = newAgentAuth(AgentAuthFromConfig(cfg, "", nil))
	require.NoError(t, err)
	_, aerr = a.authenticate(t.Context(), sf)
	require.NotNil(t, aerr)
	require.Equal(t, refusedBadToken, aerr.reason)
}

// TestTokenCacheBounded: the cache holds at most its size, drops the oldest, and forgets an
// entry after its TTL.
func TestTokenCacheBounded(t *testing.T) {
	t.Parallel()
	c := newTokenCache(3, time.Minute)
	now := time.Now()
	key := func(i byte) [32]byte { return [32]byte{i} }
	for i := range byte(5) {
		c.put(key(i), "u"+string('0'+rune(i)), now)
	}
	require.Equal(t, 3, c.len())
	_, ok := c.get(key(0), now)
	require.False(t, ok, "the oldest went first")
	u, ok := c.get(key(4), now)
	require.True(t, ok)
	require.Equal(t, "u4", u)
	_, ok = c.get(key(4), now.Add(time.Minute))
	require.False(t, ok, "stale after the TTL")
}

// TestMintAgentToken: the key, the subject and the lifetime are checked; a minted token opens
// as its user.
func TestMintAgentToken(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, err := MintAgentToken(NewSecret("short"), agentA, time.Hour, now)
	require.ErrorContains(t, err, "shorter than 32")
	_, err = MintAgentToken(NewSecret(testAgentKey), "", time.Hour, now)
	require.Error(t, err)
	_, err = MintAgentToken(NewSecret(testAgentKey), agentA, 13*time.Hour, now)
	require.ErrorContains(t, err, "lifetime")
	tok, err := MintAgentToken(NewSecret(testAgentKey), agentA, time.Hour, now)
	require.NoError(t, err)
	a, err := newAgentAuth(AgentAuthOptions{TokenKey: NewSecret(testAgentKey)})
	require.NoError(t, err)
	user, aerr := a.authenticate(t.Context(), tok)
	require.Nil(t, aerr)
	require.Equal(t, agentA, user)
	_, err = newAgentAuth(AgentAuthOptions{TokenKey: NewSecret("short")})
	require.Error(t, err)
	_, err = NewGateway(GatewayOptions{Router: newFakeAgentRouter(), Origins: []string{"https://x.example.com/path"}})
	require.Error(t, err)
}

// TestGatewaySnapshotFailure: a router with no snapshot for the agent gets an error frame and
// the connection closes (1011); the client reconnects later.
func TestGatewaySnapshotFailure(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.Router = failingSnapshots{newFakeAgentRouter()} })
	c := e.connect(t, agentA)
	f := readFrame(t, c)
	require.Equal(t, "error", f["type"])
	require.Equal(t, errCodeUnavailable, f["code"])
	require.Equal(t, websocket.CloseInternalServerErr, readClose(t, c).Code)
}

type failingSnapshots struct{ *fakeAgentRouter }

func (failingSnapshots) AgentSnapshot(context.Context, string) (AgentSnapshot, error) {
	return AgentSnapshot{}, errors.New("unknown agent")
}

// TestGatewayRouterRefusesFrame: when the router cannot take a valid frame, the client gets an
// error (code unavailable) naming its ref, the refusal is counted, and the connection carries on.
func TestGatewayRouterRefusesFrame(t *testing.T) {
	t.Parallel()
	r := &refusingRouter{fakeAgentRouter: newFakeAgentRouter()}
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.Router = r })
	c := e.connectReady(t, agentA)
	r.refuse.Store(true)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(`{"type":"release","work_id":"0Mw1","ref":"r9"}`)))
	f := readFrame(t, c)
	require.Equal(t, map[string]any{"type": "error", "code": errCodeUnavailable, "reason": badFrameRejected,
		"message": "the router did not take the frame; send it again", "ref": "r9"}, f)
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.badFrames.WithLabelValues(badFrameRejected)), 0)
	r.refuse.Store(false)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(`{"type":"release","work_id":"0Mw1"}`)))
	require.Equal(t, "0Mw1", r.next(t).Event.WorkID)
}

type refusingRouter struct {
	*fakeAgentRouter
	refuse atomic.Bool
}

func (r *refusingRouter) FromAgent(ctx context.Context, in AgentInput) error {
	if r.refuse.Load() {
		return errors.New("inbox closed")
	}
	return r.fakeAgentRouter.FromAgent(ctx, in)
}

// TestGatewaySetRouter: with no router, upgrades are refused (503 not_ready); once one is set,
// agents connect; a new router closes the live connections (1012) and the reconnected agent's
// frames go to the new router.
func TestGatewaySetRouter(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.Router = nil })
	_, resp, err := e.dial(e.token(t, agentA), nil, "")
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.refused.WithLabelValues(refusedNotReady)), 0)

	first := newFakeAgentRouter()
	e.gw.SetRouter(first)
	c := e.connectReady(t, agentA)
	second := newFakeAgentRouter()
	e.gw.SetRouter(second)
	ce := readClose(t, c)
	require.Equal(t, websocket.CloseServiceRestart, ce.Code)
	c = e.connectReady(t, agentA)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(`{"type":"logged_out"}`)))
	require.Equal(t, ReportLoggedOut, second.next(t).Report.Kind)
	require.Empty(t, first.inputs)
}

// TestGatewayShutdownLeaksNothing: every way a connection ends (router restarted, replaced,
// frame too large, closed by the client, too slow) leaves no goroutine behind, and when the daemon's HTTP server
// has shut down, every live agent has had its 1001 and the gateway's goroutines are gone: the
// server does not wait for hijacked connections by itself.
func TestGatewayShutdownLeaksNothing(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.SendQueue = 2; o.MaxFrameBytes = 512 })

	restarted := e.connectReady(t, agentA)
	e.gw.SetRouter(newFakeAgentRouter())
	require.Equal(t, websocket.CloseServiceRestart, readClose(t, restarted).Code)

	old := e.connectReady(t, agentA)
	_ = e.connectReady(t, agentA)
	require.Equal(t, CloseReplaced, readClose(t, old).Code)

	big := e.connectReady(t, agentB)
	require.NoError(t, big.WriteMessage(websocket.TextMessage, []byte(`{"type":"hold","work_id":"`+strings.Repeat("x", 600)+`"}`)))
	require.Equal(t, websocket.CloseMessageTooBig, readClose(t, big).Code)

	const agentC, agentD, agentE = "005000000000003AAA", "005000000000004AAA", "005000000000005AAA"
	bye := e.connectReady(t, agentC)
	require.NoError(t, bye.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)))
	_ = readClose(t, bye)

	slow := e.connectReady(t, agentD)
	msg := AgentMessage{Command: &routing.Command{Type: routing.CommandSetState, State: mapping.State{Major: mapping.Away}}}
	for e.gw.Deliver(agentD, msg) {
	}
	require.Equal(t, CloseTooSlow, readClose(t, slow).Code)

	live := e.connectReady(t, agentE)
	require.Eventually(t, func() bool { return e.gw.Connected() == 2 }, 5*time.Second, 10*time.Millisecond)
	e.stop(t)
	require.Zero(t, e.gw.Connected(), "connections still registered when the server's Shutdown returned")
	require.Equal(t, websocket.CloseGoingAway, readClose(t, live).Code)
	goleak.VerifyNone(t, ignore)
}

// TestGatewayStuckRouterDoesNotPinReaders: a router whose inbox stays full does not hold an
// agent's reader forever (it would stop reading pongs and frames, and a dead client would
// never be noticed): after InputTimeout the frame is answered with router_unavailable, the
// reader reads on, and once the router takes input again the next frame reaches it.
func TestGatewayStuckRouterDoesNotPinReaders(t *testing.T) {
	t.Parallel()
	// An inbox of one, full: FromAgent waits until the test makes room.
	stuck := &fakeAgentRouter{inputs: make(chan AgentInput, 1), snaps: map[string]AgentSnapshot{}}
	stuck.inputs <- AgentInput{}
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.Router = stuck; o.InputTimeout = 100 * time.Millisecond })
	c := e.connectReady(t, agentA)
	for _, ref := range []string{"r1", "r2"} {
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hold","work_id":"0Mw1","ref":"`+ref+`"}`)))
		f := readFrame(t, c)
		require.Equal(t, map[string]any{"type": "error", "code": errCodeUnavailable, "reason": badFrameRejected,
			"message": "the router did not take the frame; send it again", "ref": ref}, f)
	}
	<-stuck.inputs // room for one
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hold","work_id":"0Mw2"}`)))
	require.Equal(t, "0Mw2", stuck.next(t).Event.WorkID)
}

// TestGatewaySalesforceJWTToken: Salesforce also issues JWT-based access tokens (RS256,
// three dot-separated parts). Such a token is the org's to judge, not a demo token: it goes to
// the userinfo endpoint (which refuses this made-up one), while a token that says it is
// omniroute's is only ever checked against the demo key.
func TestGatewaySalesforceJWTToken(t *testing.T) {
	t.Parallel()
	_, userinfo := agentOrg(t)
	ct := &countingTransport{}
	e := newGatewayEnv(t, func(o *GatewayOptions) {
		o.Auth = AgentAuthOptions{TokenKey: NewSecret(testAgentKey), UserInfoURL: userinfo, OrgID: emulator.DemoOrgID,
			HTTPClient: &http.Client{Transport: ct}}
	})
	enc := base64.RawURLEncoding.EncodeToString
	sfJWT := enc([]byte(`{"alg":"RS256","typ":"JWT","tty":"sfdc-core-token"}`)) + "." +
		enc([]byte(`{"iss":"https://login.salesforce.com","sub":"`+agentA+`","exp":9999999999}`)) + "." + enc([]byte("signature"))
	_, resp, err := e.dial(sfJWT, nil, "")
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, 1, ct.count(), "a Salesforce JWT is checked by the org")

	forged := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		enc([]byte(`{"iss":"omniroute","aud":["omniroute-agent"],"sub":"`+agentA+`","exp":9999999999,"iat":1}`)) + "."
	_, resp, err = e.dial(forged, nil, "")
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, 1, ct.count(), "a token that claims to be omniroute's never leaves the daemon")
}

// TestAgentAuthNeedsOrgForSalesforceTokens: with a userinfo endpoint such as
// login.salesforce.com, any org's token would name a user of that org: the org id is required.
func TestAgentAuthNeedsOrgForSalesforceTokens(t *testing.T) {
	t.Parallel()
	_, err := NewGateway(GatewayOptions{Auth: AgentAuthOptions{UserInfoURL: "https://login.salesforce.com" + UserInfoPath}})
	require.ErrorContains(t, err, "org")
}

// TestAgentAuthDemoClaims: a demo token must be HS256 with our key, omniroute's issuer and
// audience, an expiry, an issue time not in the future, and no not-before in the future.
func TestAgentAuthDemoClaims(t *testing.T) {
	t.Parallel()
	now := time.Now()
	a, err := newAgentAuth(AgentAuthOptions{TokenKey: NewSecret(testAgentKey), Now: func() time.Time { return now }})
	require.NoError(t, err)
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		require.NoError(t, err)
		return s
	}
	k := []byte(testAgentKey)
	good := jwt.MapClaims{"iss": "omniroute", "aud": "omniroute-agent", "sub": agentA, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	user, aerr := a.authenticate(t.Context(), sign(jwt.SigningMethodHS256, k, good))
	require.Nil(t, aerr)
	require.Equal(t, agentA, user)
	for name, tok := range map[string]string{
		"none":           sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good),
		"HS512":          sign(jwt.SigningMethodHS512, k, good),
		"other issuer":   sign(jwt.SigningMethodHS256, k, with("iss", "someone")),
		"other audience": sign(jwt.SigningMethodHS256, k, with("aud", "other")),
		"no expiry":      sign(jwt.SigningMethodHS256, k, with("exp", nil)),
		"no issue time":  sign(jwt.SigningMethodHS256, k, with("iat", nil)),
		"issued later":   sign(jwt.SigningMethodHS256, k, with("iat", now.Add(time.Hour).Unix())),
		"not yet valid":  sign(jwt.SigningMethodHS256, k, with("nbf", now.Add(time.Minute).Unix())),
		"lives too long": sign(jwt.SigningMethodHS256, k, with("exp", now.Add(13*time.Hour).Unix())),
		"no subject":     sign(jwt.SigningMethodHS256, k, with("sub", nil)),
		"expired":        sign(jwt.SigningMethodHS256, k, with("exp", now.Add(-time.Second).Unix())),
	} {
		user, aerr := a.authenticate(t.Context(), tok)
		require.NotNil(t, aerr, name)
		require.Empty(t, user, name)
		require.Equal(t, http.StatusUnauthorized, aerr.status, name)
	}
}

// TestGatewayOriginForms: browsers send an origin without its default port and in lower case;
// an allow-list entry with the default port or capitals still matches it; "null" (a sandboxed
// page, a file) and another port are refused.
func TestGatewayOriginForms(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, func(o *GatewayOptions) {
		o.Origins = []string{"https://Console.Example.com:443", "http://localhost:8080/", "http://[::1]:80"}
	})
	tok := e.token(t, agentA)
	for origin, ok := range map[string]bool{
		"https://console.example.com":      true,
		"https://console.example.com:443":  true,
		"http://localhost:8080":            true,
		"null":                             false,
		"https://console.example.com:8443": false,
		"http://console.example.com":       false,
		"http://localhost":                 false,
		"http://[::1]":                     true,
	} {
		c, resp, err := e.dial(tok, http.Header{"Origin": {origin}}, "")
		if ok {
			require.NoError(t, err, origin)
			_ = c.Close()
			continue
		}
		require.ErrorIs(t, err, websocket.ErrBadHandshake, origin)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, origin)
	}
}

// TestGatewayStuckWriteEnds: a client that stops reading while its queue still has room is
// ended by the write deadline (WriteTimeout), not kept for ever, and the writer's goroutine
// returns; writes that keep flowing are never cut by a deadline set for an earlier one.
func TestGatewayStuckWriteEnds(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.SendQueue = 1 << 16; o.WriteTimeout = 300 * time.Millisecond })
	live := e.connectReady(t, agentB)
	for i := range 8 { // slower than WriteTimeout/10 apart: each write renews the deadline
		require.True(t, e.gw.Deliver(agentB, AgentMessage{Command: &routing.Command{Type: routing.CommandNotify, WorkID: "w", Session: strconv.Itoa(i)}}))
		require.Equal(t, strconv.Itoa(i), readFrame(t, live)["session"])
		time.Sleep(100 * time.Millisecond)
	}
	stuck := e.connectReady(t, agentA)
	big := AgentMessage{Command: &routing.Command{Type: routing.CommandNotify, WorkID: strings.Repeat("w", 4000)}}
	require.Eventually(t, func() bool {
		for range 100 {
			if !e.gw.Deliver(agentA, big) {
				return true
			}
		}
		return false
	}, 10*time.Second, time.Millisecond, "the stuck connection was never ended")
	require.InDelta(t, 1, testutil.ToFloat64(e.gw.metrics.disconnects.WithLabelValues(discWriteFailed)), 0)
	require.InDelta(t, 0, testutil.ToFloat64(e.gw.metrics.disconnects.WithLabelValues(discSlow)), 0)
	_ = stuck
}

// TestGatewayConcurrentConnectionsOneWins: connections for one agent arriving together end
// with exactly one live, registered connection; every other one is closed with 4000.
func TestGatewayConcurrentConnectionsOneWins(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, nil)
	tok := e.token(t, agentA)
	const n = 12
	codes := make([]int, n)
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, _, err := e.dial(tok, nil, "")
			if err != nil {
				codes[i] = -1
				return
			}
			conns[i] = c
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						codes[i] = ce.Code
					}
					return // a timeout: still open
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, e.gw.Connected())
	live := 0
	for i, code := range codes {
		switch code {
		case 0:
			live++
		case CloseReplaced:
		default:
			t.Fatalf("connection %d ended with %d", i, code)
		}
		if conns[i] != nil {
			_ = conns[i].Close()
		}
	}
	require.Equal(t, 1, live)
}

// slowTransport holds each request for delay before carrying it, and records how many it
// carried at once.
type slowTransport struct {
	delay         time.Duration
	inFlight, max atomic.Int64
}

func (s *slowTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.max.Load(); n > m && !s.max.CompareAndSwap(m, n); m = s.max.Load() {
	}
	time.Sleep(s.delay)
	return http.DefaultTransport.RoundTrip(r)
}

// TestGatewayBoundsUserInfoCalls: anyone can send made-up tokens, and each is a call to the
// org's userinfo; the calls in flight are bounded (MaxUserInfoCalls), so a flood of bad tokens
// cannot turn the daemon into a flood of Salesforce calls. Every token still gets its answer.
func TestGatewayBoundsUserInfoCalls(t *testing.T) {
	t.Parallel()
	_, userinfo := agentOrg(t)
	st := &slowTransport{delay: 50 * time.Millisecond}
	e := newGatewayEnv(t, func(o *GatewayOptions) {
		o.Auth = AgentAuthOptions{UserInfoURL: userinfo, OrgID: emulator.DemoOrgID, HTTPClient: &http.Client{Transport: st},
			MaxUserInfoCalls: 3}
	})
	var wg sync.WaitGroup
	statuses := make([]int, 24)
	for i := range statuses {
		wg.Go(func() {
			_, resp, err := e.dial("00Dbogus!AQ"+strconv.Itoa(i)+strings.Repeat("x", 40), nil, "")
			if err != nil {
				statuses[i] = resp.StatusCode
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, st.max.Load(), int64(3))
	for i, s := range statuses {
		require.Equal(t, http.StatusUnauthorized, s, "token %d", i)
	}
}

// TestGatewayPacesClientFrames: a console in a loop (or a hostile one) cannot hand the router
// more than FramesPerSecond frames a second: the reader slows down (TCP pushes back on the
// client), no frame is lost, and other agents are not held up.
func TestGatewayPacesClientFrames(t *testing.T) {
	t.Parallel()
	e := newGatewayEnv(t, func(o *GatewayOptions) { o.FramesPerSecond = 10; o.FrameBurst = 2 })
	fast := e.connectReady(t, agentA)
	start := time.Now()
	for i := range 12 {
		require.NoError(t, fast.WriteMessage(websocket.TextMessage, []byte(`{"type":"hold","work_id":"w`+strconv.Itoa(i)+`"}`)))
	}
	for i := range 12 {
		require.Equal(t, "w"+strconv.Itoa(i), e.router.next(t).Event.WorkID)
	}
	require.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "12 frames at 10 a second after a burst of 2")
}
