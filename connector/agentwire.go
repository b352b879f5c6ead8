package connector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
)

// The agent websocket's wire format (docs/agent-protocol.md): every frame is one JSON object
// with a "type". ProtocolVersion is sent in the hello frame and named by the subprotocol
// (AgentSubprotocol); a change that breaks a client bumps both.

// ProtocolVersion is the agent protocol's version.
const ProtocolVersion = 1

// AgentSubprotocol is the Sec-WebSocket-Protocol the gateway speaks (and answers with).
const AgentSubprotocol = "omniroute.v1"

// maxWireString bounds every string a client sends (ids, states, codes): Salesforce ids are
// 18 characters, names and disposition codes well under this.
const maxWireString = 255

// Bad frame reasons (omniroute_gateway_bad_frames_total{reason}, and the error frame's reason).
const (
	badFrameJSON       = "bad_json"
	badFrameType       = "unknown_type"
	badFrameField      = "bad_field"
	badFrameBinary     = "binary"
	badFrameTooLarge   = "too_large"
	badFrameRejected   = "router_unavailable"
	errCodeBadFrame    = "bad_frame"
	errCodeRefused     = "refused"
	errCodeUnavailable = "unavailable"
)

var badFrameReasons = []string{badFrameJSON, badFrameType, badFrameField, badFrameBinary, badFrameTooLarge, badFrameRejected}

// FrameError is why an incoming frame was refused. Reason is one of a closed set (the
// metric's label); Message says what was wrong, for people, and never quotes a token.
type FrameError struct {
	Reason  string
	Message string
}

func (e *FrameError) Error() string { return e.Reason + ": " + e.Message }

func frameErr(reason, format string, args ...any) *FrameError {
	return &FrameError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// clientFrame is every field a client frame may carry; which ones a type needs is clientTypes.
type clientFrame struct {
	Type string `json:"type"`
	// Ref is the client's own id of the frame, echoed in an error about it.
	Ref string `json:"ref,omitempty"`
	// State is set_state's state, e.g. "Away/Break".
	State string `json:"state,omitempty"`
	// WorkID is the interaction (work item id) an action, accept, decline or report is about.
	WorkID string `json:"work_id,omitempty"`
	// Target and TargetID: consult (agent, number) and transfer (agent, plan, queue).
	Target   string `json:"target,omitempty"`
	TargetID string `json:"target_id,omitempty"`
	// Mode, NewWorkID and Channel: elevate ("current" or "new_contact").
	Mode      string `json:"mode,omitempty"`
	NewWorkID string `json:"new_work_id,omitempty"`
	Channel   string `json:"channel,omitempty"`
	// Disposition is disposition's code.
	Disposition string `json:"disposition,omitempty"`
	// CommandID, OK and Error: command_result.
	CommandID string `json:"command_id,omitempty"`
	OK        *bool  `json:"ok,omitempty"`
	Error     string `json:"error,omitempty"`
	// Unchanged: command_result of a presence command that changed nothing (Omni-Channel
	// already showed the status), so no UserServicePresence event will follow.
	Unchanged *bool `json:"unchanged,omitempty"`
	// StatusID and Status: presence_changed (ServicePresenceStatus Id and DeveloperName), and
	// the status the console saw when it refused a presence command (command_result, error
	// status_changed).
	StatusID string `json:"status_id,omitempty"`
	Status   string `json:"status,omitempty"`
	// AgentWorkID: work_accepted, work_declined, work_closed.
	AgentWorkID string `json:"agent_work_id,omitempty"`
}

// field names a clientFrame field: its JSON name and its value.
type field struct {
	name string
	set  bool
	val  string
}

func (f *clientFrame) fields() []field {
	return []field{
		{"state", f.State != "", f.State}, {"work_id", f.WorkID != "", f.WorkID},
		{"target", f.Target != "", f.Target}, {"target_id", f.TargetID != "", f.TargetID},
		{"mode", f.Mode != "", f.Mode}, {"new_work_id", f.NewWorkID != "", f.NewWorkID},
		{"channel", f.Channel != "", f.Channel}, {"disposition", f.Disposition != "", f.Disposition},
		{"command_id", f.CommandID != "", f.CommandID}, {"ok", f.OK != nil, ""},
		{"error", f.Error != "", f.Error}, {"unchanged", f.Unchanged != nil, ""}, {"status_id", f.StatusID != "", f.StatusID},
		{"status", f.Status != "", f.Status}, {"agent_work_id", f.AgentWorkID != "", f.AgentWorkID},
	}
}

// clientType is one client message type: the fields it requires, the ones it may carry, and
// how it becomes an AgentInput.
type clientType struct {
	required, optional []string
	build              func(f *clientFrame) (AgentInput, *FrameError)
}

func action(kind routing.ActionKind) func(f *clientFrame) (AgentInput, *FrameError) {
	return func(f *clientFrame) (AgentInput, *FrameError) {
		a := routing.Action{Kind: kind, TargetID: f.TargetID, NewWorkID: f.NewWorkID, Channel: f.Channel, Disposition: f.Disposition}
		switch kind {
		case routing.ActionConsult, routing.ActionTransfer:
			t, ok := wireTargets[f.Target]
			if !ok {
				return AgentInput{}, frameErr(badFrameField, "target is not one of agent, number, plan or queue")
			}
			a.Target = t
		case routing.ActionElevate:
			switch f.Mode {
			case "", "current":
				a.Mode = routing.ElevateCurrent
			case "new_contact":
				a.Mode = routing.ElevateNewContact
			default:
				return AgentInput{}, frameErr(badFrameField, "mode is not current or new_contact")
			}
		}
		return AgentInput{Event: &routing.Event{Type: routing.EventAgentAction, WorkID: f.WorkID, Action: a}}, nil
	}
}

func report(kind ReportKind) func(f *clientFrame) (AgentInput, *FrameError) {
	return func(f *clientFrame) (AgentInput, *FrameError) {
		r := &ConsoleReport{Kind: kind, CommandID: f.CommandID, Error: f.Error, StatusID: f.StatusID,
			Status: f.Status, WorkID: f.WorkID, AgentWorkID: f.AgentWorkID}
		if f.OK != nil {
			r.OK = *f.OK
		}
		if f.Unchanged != nil {
			r.Unchanged = *f.Unchanged
		}
		if kind == ReportResult && !r.OK && r.Error == "" {
			return AgentInput{}, frameErr(badFrameField, "a failed command_result needs an error")
		}
		return AgentInput{Report: r}, nil
	}
}

var wireTargets = map[string]routing.TargetKind{
	"agent": routing.TargetAgent, "number": routing.TargetNumber, "plan": routing.TargetPlan, "queue": routing.TargetQueue,
}

// clientTypes are the messages a client sends (docs/agent-protocol.md, "Client to server").
var clientTypes = map[string]clientType{
	"set_state": {required: []string{"state"}, build: func(f *clientFrame) (AgentInput, *FrameError) {
		s, err := mapping.ParseState(f.State)
		if err != nil { // the parser's message quotes the value: say it without
			return AgentInput{}, frameErr(badFrameField, "state is not Major or Major/Minor with Major one of Ready, ReadyOutbound, Busy, WrapUp, Away, ExtendedAway, LoggedOut")
		}
		return AgentInput{Event: &routing.Event{Type: routing.EventAgentState, State: s}}, nil
	}},
	"accept":      {required: []string{"work_id"}, build: report(ReportAcceptRequest)},
	"decline":     {required: []string{"work_id"}, build: report(ReportDeclineRequest)},
	"release":     {required: []string{"work_id"}, build: action(routing.ActionRelease)},
	"hold":        {required: []string{"work_id"}, build: action(routing.ActionHold)},
	"retrieve":    {required: []string{"work_id"}, build: action(routing.ActionRetrieve)},
	"abandon":     {required: []string{"work_id"}, build: action(routing.ActionAbandon)},
	"end_wrap_up": {required: []string{"work_id"}, build: action(routing.ActionEndWrapUp)},
	"consult":     {required: []string{"work_id", "target", "target_id"}, build: action(routing.ActionConsult)},
	"transfer":    {required: []string{"work_id", "target", "target_id"}, build: action(routing.ActionTransfer)},
	"elevate":     {required: []string{"work_id"}, optional: []string{"mode", "new_work_id", "channel"}, build: action(routing.ActionElevate)},
	"disposition": {required: []string{"work_id", "disposition"}, build: action(routing.ActionDisposition)},
	"command_result": {required: []string{"command_id", "ok"}, optional: []string{"error", "unchanged", "status_id", "status"},
		build: report(ReportResult)},
	"presence_changed": {required: []string{"status"}, optional: []string{"status_id"}, build: report(ReportPresenceChanged)},
	"logged_out":       {build: report(ReportLoggedOut)},
	"work_accepted":    {required: []string{"work_id"}, optional: []string{"agent_work_id"}, build: report(ReportWorkAccepted)},
	"work_declined":    {required: []string{"work_id"}, optional: []string{"agent_work_id"}, build: report(ReportWorkDeclined)},
	"work_closed":      {required: []string{"work_id"}, optional: []string{"agent_work_id"}, build: report(ReportWorkClosed)},
}

// DecodeAgentFrame decodes one client frame into the AgentInput the router takes, for user
// (the authenticated Salesforce User Id: the only source of AgentInput.User). It never
// panics; a frame that is not valid JSON, names an unknown type, lacks a field its type
// requires, carries one its type does not use, or has a value out of range is a *FrameError.
// The frame's type and ref (the client's own id of the frame) are returned even with an
// error, when they could be read, so the error frame can name them.
func DecodeAgentFrame(user string, data []byte) (Frame, error) {
	in, typ, ref, err := decodeFrame(user, data)
	return Frame{Input: in, Type: typ, Ref: ref}, err
}

// Frame is a decoded client frame.
type Frame struct {
	Input AgentInput
	// Type is the frame's message type when it is one of the protocol's (the metric label).
	Type string
	Ref  string
}

func decodeFrame(user string, data []byte) (in AgentInput, typ, ref string, err error) {
	if fe := checkKeys(data); fe != nil {
		return AgentInput{}, "", "", fe
	}
	var f clientFrame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return AgentInput{}, "", "", frameErr(badFrameJSON, "%s", jsonProblem(err))
	}
	// Only white space may follow the object: Decoder.More says nothing of a stray '}' or ']'.
	if len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 {
		return AgentInput{}, "", "", frameErr(badFrameJSON, "one JSON object per frame")
	}
	ref = f.Ref
	if len(ref) > maxWireString || !utf8.ValidString(ref) {
		return AgentInput{}, "", "", frameErr(badFrameField, "ref: longer than %d bytes or not UTF-8", maxWireString)
	}
	ct, ok := clientTypes[f.Type]
	if !ok {
		if f.Type == "" {
			return AgentInput{}, "", ref, frameErr(badFrameType, "the frame has no type")
		}
		return AgentInput{}, "", ref, frameErr(badFrameType, "unknown message type (docs/agent-protocol.md lists them)")
	}
	typ = f.Type
	for _, fl := range f.fields() {
		switch {
		case slices.Contains(ct.required, fl.name):
			if !fl.set {
				return AgentInput{}, typ, ref, frameErr(badFrameField, "%s needs %s", f.Type, fl.name)
			}
		case slices.Contains(ct.optional, fl.name):
		case fl.set:
			return AgentInput{}, typ, ref, frameErr(badFrameField, "%s does not take %s", f.Type, fl.name)
		}
		if len(fl.val) > maxWireString || !utf8.ValidString(fl.val) {
			return AgentInput{}, typ, ref, frameErr(badFrameField, "%s: longer than %d bytes or not UTF-8", fl.name, maxWireString)
		}
	}
	in, ferr := ct.build(&f)
	if ferr != nil {
		return AgentInput{}, typ, ref, ferr
	}
	in.User = user
	return in, typ, ref, nil
}

// clientKeys are the JSON names of clientFrame's fields.
var clientKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[clientFrame]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		keys[name] = true
	}
	return keys
}()

// checkKeys refuses a frame whose object has a key that is not exactly one of clientKeys, or
// has one twice. encoding/json alone matches keys without regard to case and lets the last of
// two equal keys win: a log or proxy that reads the first would see another frame than the
// router. A frame that is not one JSON object passes, for Decode to say what is wrong.
func checkKeys(data []byte) *FrameError {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var seen [16]string
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		if !clientKeys[key] {
			return frameErr(badFrameJSON, "unknown field (keys are lower case, as docs/agent-protocol.md lists them)")
		}
		if slices.Contains(seen[:n], key) {
			return frameErr(badFrameJSON, "field %q appears twice", key)
		}
		if n < len(seen) {
			seen[n] = key
			n++
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// jsonProblem says what is wrong with a frame's JSON without quoting its values (a client
// could paste a token into a frame by mistake).
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not JSON (at byte %d)", se.Offset)
	case errors.As(err, &te) && te.Field == "":
		return "a frame is one JSON object"
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type)
	case errors.Is(err, io.EOF):
		return "empty frame"
	default:
		// DisallowUnknownFields: `json: unknown field "x"`, which names only the field.
		return err.Error()
	}
}

// Server frames (docs/agent-protocol.md, "Server to client").

// helloFrame is the first frame of every connection.
type helloFrame struct {
	Type             string  `json:"type"` // hello
	Version          int     `json:"version"`
	User             string  `json:"user"`
	HeartbeatSeconds float64 `json:"heartbeat_seconds"`
}

// snapshotFrame is the second frame: everything the console draws.
type snapshotFrame struct {
	Type      string            `json:"type"` // snapshot
	Agent     routing.AgentView `json:"agent"`
	Sessions  []wireSession     `json:"sessions"`
	Offers    []offerFrame      `json:"offers"`
	Directory wireDirectory     `json:"directory"`
}

// wireSession is one session's interactions (the agent's held work grouped by session).
type wireSession struct {
	Session      string                 `json:"session"`
	Interactions []routing.HeldWorkView `json:"interactions"`
}

// wireDirectory is who and where work can be transferred to or consulted with.
type wireDirectory struct {
	Agents []wireDirAgent `json:"agents"`
	Plans  []wireDirPlan  `json:"plans"`
}

type wireDirAgent struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Presence string `json:"presence"`
	Routable bool   `json:"routable"`
}

type wireDirPlan struct {
	Name                 string   `json:"name"`
	Queues               []string `json:"queues"`
	AutoAccept           bool     `json:"auto_accept"`
	DispositionRequired  bool     `json:"disposition_required"`
	WrapUpTimeoutSeconds float64  `json:"wrap_up_timeout_seconds"`
}

// offerFrame is work offered to the agent.
type offerFrame struct {
	Type       string `json:"type"` // offer
	WorkID     string `json:"work_id"`
	Channel    string `json:"channel"`
	Plan       string `json:"plan,omitempty"`
	Weight     int    `json:"weight,omitempty"`
	AutoAccept bool   `json:"auto_accept"`
	// Reason is "transfer" when the work was transferred to this agent.
	Reason routing.Reason `json:"reason,omitempty"`
}

// stateFrame is the agent's state as the engine now has it.
type stateFrame struct {
	Type     string        `json:"type"` // state
	State    mapping.State `json:"state"`
	Presence string        `json:"presence,omitempty"`
}

// interactionFrame is a change to one of the agent's interactions or sessions.
type interactionFrame struct {
	Type string `json:"type"` // interaction
	// Change is the command's name: hold, retrieve, consult, elevate, wrap_up, ended,
	// session_ended, transfer, notify, and what else the engine reports about the work.
	Change   string         `json:"change"`
	WorkID   string         `json:"work_id,omitempty"`
	Session  string         `json:"session,omitempty"`
	Channel  string         `json:"channel,omitempty"`
	Plan     string         `json:"plan,omitempty"`
	Target   string         `json:"target,omitempty"`
	TargetID string         `json:"target_id,omitempty"`
	Reason   routing.Reason `json:"reason,omitempty"`
	// Disposition is a session_ended's disposition.
	Disposition string `json:"disposition,omitempty"`
	// WrapUpDeadline is when a wrap_up ends on its own (the plan's wrap-up timeout from now);
	// absent when the plan has none or is not known.
	WrapUpDeadline *time.Time `json:"wrap_up_deadline,omitempty"`
}

// consoleFrame asks the console component for an Omni-Channel toolkit call.
type consoleFrame struct {
	Type     string `json:"type"` // console
	ID       string `json:"id"`
	Op       string `json:"op"`
	StatusID string `json:"status_id,omitempty"`
	Status   string `json:"status,omitempty"`
	// ExpectStatusID and ExpectStatus: the status a presence command expects Omni-Channel to
	// show (compare-and-set); absent: unknown, no check.
	ExpectStatusID string `json:"expect_status_id,omitempty"`
	ExpectStatus   string `json:"expect_status,omitempty"`
	WorkID         string `json:"work_id,omitempty"`
	AgentWorkID    string `json:"agent_work_id,omitempty"`
}

// errorFrame reports a refused action (code refused, with the engine's typed reason), a bad
// frame (code bad_frame) or a router that could not take the frame (code unavailable).
type errorFrame struct {
	Type    string         `json:"type"` // error
	Code    string         `json:"code"`
	Reason  routing.Reason `json:"reason"`
	Message string         `json:"message,omitempty"`
	Ref     string         `json:"ref,omitempty"`
	Action  string         `json:"action,omitempty"`
	WorkID  string         `json:"work_id,omitempty"`
}

// encodeSnapshot builds the snapshot frame: held work grouped by session (in the order the
// engine lists it; work without a session is a session of its own, named after it).
func encodeSnapshot(s AgentSnapshot) snapshotFrame {
	f := snapshotFrame{Type: "snapshot", Agent: s.Agent, Sessions: []wireSession{}, Offers: []offerFrame{},
		Directory: wireDirectory{Agents: []wireDirAgent{}, Plans: []wireDirPlan{}}}
	idx := map[string]int{}
	for _, w := range s.Agent.Work {
		if w.Status == "offered" {
			continue // an offer, listed in offers
		}
		name := w.Session
		if name == "" {
			name = w.WorkID
		}
		i, ok := idx[name]
		if !ok {
			i = len(f.Sessions)
			idx[name] = i
			f.Sessions = append(f.Sessions, wireSession{Session: name})
		}
		f.Sessions[i].Interactions = append(f.Sessions[i].Interactions, w)
	}
	for i := range s.Offers {
		f.Offers = append(f.Offers, encodeOffer(&s.Offers[i]))
	}
	for _, a := range s.Agents {
		f.Directory.Agents = append(f.Directory.Agents, wireDirAgent{ID: a.ID, State: a.State.String(), Presence: a.Presence, Routable: a.Routable})
	}
	for _, p := range s.Plans {
		q := p.Queues
		if q == nil {
			q = []string{}
		}
		f.Directory.Plans = append(f.Directory.Plans, wireDirPlan{Name: p.Name, Queues: q, AutoAccept: p.AutoAccept,
			DispositionRequired: p.DispositionRequired, WrapUpTimeoutSeconds: p.WrapUpTimeoutSeconds})
	}
	return f
}

func encodeOffer(c *routing.Command) offerFrame {
	return offerFrame{Type: "offer", WorkID: c.WorkID, Channel: c.Channel, Plan: c.Plan, Weight: c.Weight,
		AutoAccept: c.AutoAccept, Reason: c.Reason}
}

// wrapUps gives a wrap-up's deadline: the plan's wrap-up timeout from when it began.
type wrapUps interface {
	wrapUpDeadline(workID, plan string, now time.Time) *time.Time
}

// encodeMessage turns one AgentMessage into its frame. ok is false for a message with
// neither field set.
func encodeMessage(m AgentMessage, now time.Time, w wrapUps) (frame any, ok bool) {
	if c := m.Console; c != nil {
		return consoleFrame{Type: "console", ID: c.ID, Op: c.Op.String(), StatusID: c.StatusID, Status: c.Status,
			ExpectStatusID: c.ExpectStatusID, ExpectStatus: c.ExpectStatus, WorkID: c.WorkID, AgentWorkID: c.AgentWorkID}, true
	}
	c := m.Command
	if c == nil {
		return nil, false
	}
	switch c.Type {
	case routing.CommandOffer:
		return encodeOffer(c), true
	case routing.CommandSetState:
		return stateFrame{Type: "state", State: c.State, Presence: c.Presence}, true
	case routing.CommandRefused:
		return errorFrame{Type: "error", Code: errCodeRefused, Reason: c.Reason, Action: c.Action.String(), WorkID: c.WorkID}, true
	}
	f := interactionFrame{Type: "interaction", Change: c.Type.String(), WorkID: c.WorkID, Session: c.Session,
		Channel: c.Channel, Plan: c.Plan, Target: c.Target.String(), TargetID: c.TargetID, Reason: c.Reason,
		Disposition: c.Disposition}
	if c.Type == routing.CommandWrapUp && w != nil {
		f.WrapUpDeadline = w.wrapUpDeadline(c.WorkID, c.Plan, now)
	}
	return f, true
}
