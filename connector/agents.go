package connector

import (
	"context"
	"time"

	"github.com/omniroute/omniroute/routing"
)

// The agent-facing contract between the router (presence sync, agent actions) and the agent
// gateway (the websocket at /v1/agent). The router never sees a frame and the gateway never
// sees the engine: the gateway decodes frames into AgentInput and hands them to
// Router.FromAgent, and the router hands each agent's messages to an AgentSink, which the
// gateway implements by encoding them as frames (docs/agent-protocol.md).

// Metric names reserved for this contract (the chart's dashboard and alerts use them):
//
//	omniroute_agents_connected                      gauge: agents with a live websocket (gateway)
//	omniroute_gateway_frames_total{direction,type}  counter: frames in and out (gateway)
//	omniroute_gateway_bad_frames_total{reason}      counter: frames refused (gateway)
//	omniroute_gateway_refused_total{reason}         counter: upgrades refused: token, origin (gateway)
//	omniroute_presence_sync_total{direction,result} counter: presence changes, direction
//	                                                "to_salesforce" or "from_salesforce",
//	                                                result "ok", "failed", "suppressed" (router)
//	omniroute_leader                                gauge: 1 while this replica leads (leader election)

// AgentRouter is the router as the gateway sees it. Router implements it.
type AgentRouter interface {
	// FromAgent hands one decoded input to the router's inbox. It blocks while the inbox is
	// full (backpressure) until ctx ends.
	FromAgent(ctx context.Context, in AgentInput) error
	// AgentSnapshot returns what the agent's console gets on connect.
	AgentSnapshot(ctx context.Context, user string) (AgentSnapshot, error)
}

// AgentSink receives what an agent's console must see. Deliver never blocks the router: it
// queues m for the user's live connection and returns false when the user has none, or when
// the connection is too slow to keep up (the gateway then drops that connection; the client
// reconnects and gets a fresh snapshot).
type AgentSink interface {
	Deliver(user string, m AgentMessage) bool
}

// AgentMessage is one message for an agent's console. Exactly one field is set.
type AgentMessage struct {
	// Command is an engine command addressed to the agent: an offer that needs an accept, a
	// state change (CommandSetState), a notification, a refused action with its Reason, wrap-up,
	// an interaction or session that ended, hold, retrieve, consult, elevate.
	Command *routing.Command
	// Console asks the console component to call the Omni-Channel toolkit.
	Console *ConsoleCommand
}

// ConsoleOp is an Omni-Channel console toolkit call that only the agent's console can make
// (Salesforce has no server API for these).
type ConsoleOp uint8

// Console operations.
const (
	// ConsoleSetStatus: setServicePresenceStatus(StatusID).
	ConsoleSetStatus ConsoleOp = iota + 1
	// ConsoleLogin: login(StatusID).
	ConsoleLogin
	// ConsoleLogout: logout().
	ConsoleLogout
	// ConsoleAccept: acceptAgentWork(AgentWorkID).
	ConsoleAccept
	// ConsoleDecline: declineAgentWork(AgentWorkID).
	ConsoleDecline
	// ConsoleCloseWork: closeAgentWork(AgentWorkID).
	ConsoleCloseWork
)

var consoleOpNames = [...]string{
	ConsoleSetStatus: "set_status", ConsoleLogin: "login", ConsoleLogout: "logout",
	ConsoleAccept: "accept_work", ConsoleDecline: "decline_work", ConsoleCloseWork: "close_work",
}

// String returns the snake_case name used on the wire and in metric labels.
func (o ConsoleOp) String() string {
	if int(o) < len(consoleOpNames) && consoleOpNames[o] != "" {
		return consoleOpNames[o]
	}
	return "unknown"
}

// ConsoleCommand is a console toolkit call the router asks for. The console carries its
// commands out one at a time, in the order they came, and answers each with a ReportResult
// carrying ID back (docs/routing.md, "Presence sync").
type ConsoleCommand struct {
	ID string
	Op ConsoleOp
	// StatusID and Status are the ServicePresenceStatus Id and DeveloperName
	// (ConsoleSetStatus, ConsoleLogin).
	StatusID string
	Status   string
	// ExpectStatusID and ExpectStatus (ConsoleSetStatus, ConsoleLogin, ConsoleLogout) are the
	// status the router believes Omni-Channel shows (ExpectStatus Offline, with no Id: logged
	// out); empty: unknown, no check. The console compares them with the status it reads
	// (getServicePresenceStatusId) before calling the toolkit and, when the agent has changed it
	// since, does not call it and answers OK false, Error ConsoleStatusChanged, with the status
	// it saw (compare-and-set: the agent's own newer choice wins over the push).
	ExpectStatusID string
	ExpectStatus   string
	// WorkID and AgentWorkID name the work (ConsoleAccept, ConsoleDecline, ConsoleCloseWork).
	WorkID      string
	AgentWorkID string
}

// AgentInput is one decoded message from an authenticated agent's console. Exactly one of
// Event and Report is set. User is the authenticated Salesforce User Id; the router sets the
// event's AgentID from it and never trusts an id the client sent.
type AgentInput struct {
	User string
	// Event is EventAgentState (the chosen state, or the state intended after work) or
	// EventAgentAction (release, hold, retrieve, consult, transfer, abandon, elevate,
	// end wrap-up, disposition). Accept and decline arrive as Reports of the console.
	Event *routing.Event
	// Report is what the console did or saw.
	Report *ConsoleReport
}

// ReportKind says what a console report is.
type ReportKind uint8

// Console reports.
const (
	// ReportResult: the ConsoleCommand CommandID succeeded (OK) or failed (Error).
	ReportResult ReportKind = iota + 1
	// ReportPresenceChanged: the agent's Omni status became StatusID/Status in the console.
	ReportPresenceChanged
	// ReportLoggedOut: the agent logged out of Omni-Channel in the console.
	ReportLoggedOut
	// ReportWorkAccepted, ReportWorkDeclined, ReportWorkClosed: the agent accepted, declined or
	// closed AgentWorkID (WorkID) in the console (the agent's own click in the Omni widget,
	// or the result of a ConsoleCommand).
	ReportWorkAccepted
	ReportWorkDeclined
	ReportWorkClosed
	// ReportAcceptRequest, ReportDeclineRequest: the agent pressed accept or decline for
	// WorkID in the pad (a plan without auto-accept); the router checks the offer and asks the
	// console to carry it out (ConsoleAccept, ConsoleDecline).
	ReportAcceptRequest
	ReportDeclineRequest
)

// ConsoleStatusChanged is the Error of a presence command's ReportResult when the console did
// not carry it out because Omni-Channel showed another status than the command's ExpectStatus:
// the report's StatusID/Status are the status it saw (Offline, with no Id: logged out).
const ConsoleStatusChanged = "status_changed"

// ConsoleReport is what the console reports.
type ConsoleReport struct {
	Kind      ReportKind
	CommandID string
	OK        bool
	// Unchanged (ReportResult of a presence command): Omni-Channel already showed that status,
	// so nothing changed and no UserServicePresence event will follow. The console knows it
	// from the status it last saw (getServicePresenceStatusId, lightning:omniChannelStatusChanged).
	Unchanged bool
	Error     string
	// StatusID and Status: ReportPresenceChanged's new status, or the status the console saw
	// when it refused a presence command (Error ConsoleStatusChanged).
	StatusID    string
	Status      string
	WorkID      string
	AgentWorkID string
}

// AgentSnapshot is what an agent's console gets on connect: everything it needs to draw the
// agent's state, interactions grouped by session, open offers, and the directory for transfer
// and consult. The router builds it (Router.AgentSnapshot) from the engine's views.
type AgentSnapshot struct {
	Agent routing.AgentView
	// Offers are the agent's open offers (plans without auto-accept need an accept).
	Offers []routing.Command
	// Agents and Plans are the directory for transfer and consult.
	Agents []routing.AgentView
	Plans  []routing.PlanView
	// WrapUps are the wrap-up deadlines of the agent's interactions in wrap-up, by work id.
	WrapUps map[string]time.Time
}
