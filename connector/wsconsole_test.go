package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// wsConsole is the agents' side of the end-to-end tests over the real websocket: for each
// agent, a client of the daemon's /v1/agent (subprotocol omniroute.v1, a demo token in the
// omniroute.bearer. subprotocol) that decodes the server's frames as docs/agent-protocol.md
// describes them, carries out each console frame against the emulator's control API, as the
// console component does with the Omni-Channel toolkit, answers it with command_result, and
// sends the agent's actions and the console's reports as client frames.
type wsConsole struct {
	t     *testing.T
	em    *emulator.Emulator
	url   string // ws://host:port/v1/agent
	key   Secret
	now   func() time.Time
	users map[string]string // user id -> username
	// omni reads the agent's current status, as the console knows it from the widget.
	omni func(username string) string

	mu     sync.Mutex
	conns  map[string]*wsAgent // user id -> live connection
	msgs   map[string][]AgentMessage
	snaps  map[string][]snapshotFrame
	errs   map[string][]errorFrame // errors other than refusals (bad_frame, unavailable)
	silent map[string]bool
}

// wsAgent is one agent's connection.
type wsAgent struct {
	user   string
	conn   *websocket.Conn
	wmu    sync.Mutex // one writer at a time
	jobs   chan ConsoleCommand
	closed chan struct{}
	// closeErr is how the connection ended (set before closed is closed).
	closeErr error
}

func newWSConsole(t *testing.T, em *emulator.Emulator, url string, key Secret, now func() time.Time) *wsConsole {
	return &wsConsole{t: t, em: em, url: url, key: key, now: now, users: map[string]string{}, conns: map[string]*wsAgent{},
		msgs: map[string][]AgentMessage{}, snaps: map[string][]snapshotFrame{}, errs: map[string][]errorFrame{}, silent: map[string]bool{}}
}

// dial opens a websocket for user with a demo token; it does not read.
func (c *wsConsole) dial(user string) (*websocket.Conn, error) {
	tok, err := MintAgentToken(c.key, user, time.Hour, c.now())
	if err != nil {
		return nil, err
	}
	conn, _, err := dialAgent(c.url, tok)
	return conn, err
}

// dialAgent opens a websocket at url with token in the omniroute.bearer. subprotocol; it
// returns the handshake's status.
func dialAgent(url, token string) (*websocket.Conn, int, error) {
	d := websocket.Dialer{Subprotocols: []string{AgentSubprotocol, AgentTokenProtocol(token)}, HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.Dial(url, nil)
	code := 0
	if resp != nil {
		code = resp.StatusCode
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, code, err
	}
	if p := conn.Subprotocol(); p != AgentSubprotocol {
		_ = conn.Close()
		return nil, code, fmt.Errorf("subprotocol %q", p)
	}
	return conn, code, nil
}

// connect connects user's console and waits for its hello and snapshot.
func (c *wsConsole) connect(user string) *wsAgent {
	c.t.Helper()
	conn, err := c.dial(user)
	require.NoError(c.t, err)
	a := &wsAgent{user: user, conn: conn, jobs: make(chan ConsoleCommand, 1024), closed: make(chan struct{})}
	c.t.Cleanup(func() { _ = conn.Close() })
	require.NoError(c.t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	var hello helloFrame
	_, data, err := conn.ReadMessage()
	require.NoError(c.t, err)
	require.NoError(c.t, json.Unmarshal(data, &hello))
	require.Equal(c.t, "hello", hello.Type)
	require.Equal(c.t, user, hello.User)
	require.Equal(c.t, 1, hello.Version)
	_, data, err = conn.ReadMessage()
	require.NoError(c.t, err)
	var snap snapshotFrame
	require.NoError(c.t, json.Unmarshal(data, &snap))
	require.Equal(c.t, "snapshot", snap.Type)
	require.NoError(c.t, conn.SetReadDeadline(time.Time{}))
	c.mu.Lock()
	c.conns[user] = a
	c.snaps[user] = append(c.snaps[user], snap)
	c.mu.Unlock()
	ctx := c.t.Context()
	go c.read(a)
	go c.work(ctx, a)
	return a
}

// read decodes the server's frames until the connection ends.
func (c *wsConsole) read(a *wsAgent) {
	defer close(a.closed)
	for {
		mt, data, err := a.conn.ReadMessage()
		if err != nil {
			a.closeErr = err
			return
		}
		if mt != websocket.TextMessage {
			a.closeErr = fmt.Errorf("a frame of type %d", mt)
			return
		}
		m, snap, ef, err := decodeServerFrame(data)
		if err != nil {
			a.closeErr = err
			c.t.Errorf("%s: a frame not as the protocol says: %v: %s", a.user, err, data)
			return
		}
		c.mu.Lock()
		switch {
		case snap != nil:
			c.snaps[a.user] = append(c.snaps[a.user], *snap)
		case ef != nil:
			c.errs[a.user] = append(c.errs[a.user], *ef)
		default:
			c.msgs[a.user] = append(c.msgs[a.user], m)
		}
		silent := c.silent[a.user]
		c.mu.Unlock()
		if m.Console != nil && !silent {
			a.jobs <- *m.Console
		}
	}
}

// work carries out the connection's console commands in order, as the console component
// does, and answers each with command_result.
func (c *wsConsole) work(ctx context.Context, a *wsAgent) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.closed:
			return
		case cmd := <-a.jobs:
			unchanged, err := c.carryOut(a.user, cmd)
			f := map[string]any{"type": "command_result", "command_id": cmd.ID, "ok": err == nil}
			if err != nil {
				f["error"] = err.Error()
			}
			if unchanged {
				f["unchanged"] = true
			}
			if a.write(f) != nil {
				return
			}
		}
	}
}

func (a *wsAgent) write(f map[string]any) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	_ = a.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return a.conn.WriteJSON(f)
}

func (c *wsConsole) carryOut(user string, cmd ConsoleCommand) (unchanged bool, err error) {
	name := c.users[user]
	switch cmd.Op {
	case ConsoleSetStatus, ConsoleLogin:
		if cmd.StatusID == "" {
			return false, errors.New("no status id")
		}
		unchanged = c.omni(name) == cmd.Status
		return unchanged, c.em.SetPresence(name, cmd.Status)
	case ConsoleLogout:
		unchanged = c.omni(name) == mapping.OfflineStatus
		return unchanged, c.em.SetPresence(name, mapping.OfflineStatus)
	case ConsoleAccept:
		return false, c.em.AcceptWork(cmd.AgentWorkID)
	case ConsoleDecline:
		return false, c.em.DeclineWork(cmd.AgentWorkID, "")
	case ConsoleCloseWork:
		return false, c.em.CloseWork(cmd.AgentWorkID)
	}
	return false, fmt.Errorf("unknown console op %s", cmd.Op)
}

// send writes a client frame on user's live connection.
func (c *wsConsole) send(user string, f map[string]any) {
	c.t.Helper()
	c.mu.Lock()
	a := c.conns[user]
	c.mu.Unlock()
	require.NotNil(c.t, a, "%s is not connected", user)
	require.NoError(c.t, a.write(f))
}

func (c *wsConsole) messages(user string) []AgentMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs[user])
}

func (c *wsConsole) snapshots(user string) []snapshotFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.snaps[user])
}

func (c *wsConsole) otherErrors(user string) []errorFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.errs[user])
}

func (c *wsConsole) setSilent(user string, silent bool) {
	c.mu.Lock()
	c.silent[user] = silent
	c.mu.Unlock()
}

// consoleOps returns the console operations user's console got, in order.
func (c *wsConsole) consoleOps(user string) []ConsoleCommand {
	var out []ConsoleCommand
	for _, m := range c.messages(user) {
		if m.Console != nil {
			out = append(out, *m.Console)
		}
	}
	return out
}

// eventFrame is the client frame for an event from the agent's pad.
func eventFrame(ev routing.Event) map[string]any {
	if ev.Type == routing.EventAgentState {
		return map[string]any{"type": "set_state", "state": ev.State.String()}
	}
	a := ev.Action
	f := map[string]any{"type": a.Kind.String(), "work_id": ev.WorkID}
	switch a.Kind {
	case routing.ActionConsult, routing.ActionTransfer:
		f["target"], f["target_id"] = a.Target.String(), a.TargetID
	case routing.ActionElevate:
		f["mode"] = "current"
		if a.Mode == routing.ElevateNewContact {
			f["mode"] = "new_contact"
		}
		if a.NewWorkID != "" {
			f["new_work_id"] = a.NewWorkID
		}
		if a.Channel != "" {
			f["channel"] = a.Channel
		}
	case routing.ActionDisposition:
		f["disposition"] = a.Disposition
	}
	return f
}

// reportFrame is the client frame for a console report.
func reportFrame(r ConsoleReport) map[string]any {
	names := map[ReportKind]string{ReportAcceptRequest: "accept", ReportDeclineRequest: "decline",
		ReportWorkAccepted: "work_accepted", ReportWorkDeclined: "work_declined", ReportWorkClosed: "work_closed"}
	f := map[string]any{"type": names[r.Kind], "work_id": r.WorkID}
	if r.AgentWorkID != "" {
		f["agent_work_id"] = r.AgentWorkID
	}
	return f
}

// decodeServerFrame reads one server frame as docs/agent-protocol.md describes it: a
// snapshot, an error other than a refusal, or a message (the router's command or console
// command) the frame stands for.
func decodeServerFrame(data []byte) (AgentMessage, *snapshotFrame, *errorFrame, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return AgentMessage{}, nil, nil, err
	}
	switch head.Type {
	case "snapshot":
		var s snapshotFrame
		return AgentMessage{}, &s, nil, json.Unmarshal(data, &s)
	case "console":
		var f consoleFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return AgentMessage{}, nil, nil, err
		}
		op, ok := byName(f.Op, ConsoleSetStatus, ConsoleCloseWork)
		if !ok {
			return AgentMessage{}, nil, nil, fmt.Errorf("console op %q", f.Op)
		}
		return AgentMessage{Console: &ConsoleCommand{ID: f.ID, Op: op, StatusID: f.StatusID, Status: f.Status,
			WorkID: f.WorkID, AgentWorkID: f.AgentWorkID}}, nil, nil, nil
	case "offer":
		var f offerFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return AgentMessage{}, nil, nil, err
		}
		return AgentMessage{Command: &routing.Command{Type: routing.CommandOffer, WorkID: f.WorkID, Channel: f.Channel,
			Plan: f.Plan, Weight: f.Weight, AutoAccept: f.AutoAccept, Reason: f.Reason}}, nil, nil, nil
	case "state":
		var f stateFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return AgentMessage{}, nil, nil, err
		}
		return AgentMessage{Command: &routing.Command{Type: routing.CommandSetState, State: f.State, Presence: f.Presence}}, nil, nil, nil
	case "error":
		var f errorFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return AgentMessage{}, nil, nil, err
		}
		if f.Code != errCodeRefused {
			return AgentMessage{}, nil, &f, nil
		}
		// A refused accept or decline names no action ("unknown").
		act, _ := byName(f.Action, routing.ActionRelease, routing.ActionDisposition)
		return AgentMessage{Command: &routing.Command{Type: routing.CommandRefused, Reason: f.Reason, Action: act, WorkID: f.WorkID}}, nil, nil, nil
	case "interaction":
		var f interactionFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return AgentMessage{}, nil, nil, err
		}
		typ, ok := byName(f.Change, routing.CommandOffer, routing.CommandUnroutable)
		if !ok {
			return AgentMessage{}, nil, nil, fmt.Errorf("change %q", f.Change)
		}
		tgt, _ := byName(f.Target, routing.TargetNone, routing.TargetQueue)
		cmd := routing.Command{Type: typ, WorkID: f.WorkID, Session: f.Session, Channel: f.Channel, Plan: f.Plan,
			Target: tgt, TargetID: f.TargetID, Reason: f.Reason, Disposition: f.Disposition}
		if f.WrapUpDeadline != nil {
			cmd.Deadline = *f.WrapUpDeadline
		}
		return AgentMessage{Command: &cmd}, nil, nil, nil
	}
	return AgentMessage{}, nil, nil, fmt.Errorf("unknown frame type %q", strings.TrimSpace(head.Type))
}

// byName finds the value in [lo, hi] whose String is name.
func byName[T interface {
	~uint8
	String() string
}](name string, lo, hi T) (T, bool) {
	for v := lo; v <= hi; v++ {
		if v.String() == name {
			return v, true
		}
	}
	return 0, false
}
