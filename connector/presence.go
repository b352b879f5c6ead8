package connector

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
)

// Presence sync, the daemon's side (seed 003). The tables are mapping.Presence's and the agent's
// state is the engine's (routing.Engine applies login, logout, Offline and the event switches);
// what needs a clock or I/O is here, in the router's goroutine:
//
//	omniroute -> Salesforce   CommandSetState with Presence -> a ConsoleCommand for the agent's
//	                          console (logout for Offline; login when Omni-Channel shows the agent
//	                          offline or unknown; else set status), with the ServicePresenceStatus
//	                          Id of the org metadata; nothing when Omni-Channel already shows it
//	                          and no push is on its way
//	                          Each push carries the status Omni-Channel will show when the
//	                          pushes before it have landed (ExpectStatus): the console carries it
//	                          out only over that status (compare-and-set) and else answers
//	                          ConsoleStatusChanged with the status it saw
//	Salesforce -> omniroute   a UserServicePresence event (its commit time), the console's
//	                          presence report (its arrival: in order with the pad's choices) or
//	                          its refusal of a push:
//	                          a change the console reported already     Event.Echo
//	                            (the stream's report of it)
//	                          echo of a pending push                    Event.Echo: no state change;
//	                                                                    re-push the newest intent if
//	                                                                    the push was overtaken
//	                          a stream event while a checked push is    Event.Echo: it came before the
//	                            on its way                              push landed, and the push's
//	                                                                    answer says who is newer
//	                          a refusal (status_changed): the status    the engine follows it (the
//	                            the console reported after the push     agent's pick wins); nothing
//	                            was decided, or never                   is pushed again
//	                          a refusal: a status reported before the   Event.Echo; the newest intent
//	                            push was decided                        is pushed again over it
//	                          made before the newest intent (the time   Event.Echo; re-push the newest
//	                            rule, pushes without ExpectStatus)      intent when none is on its way
//	                          any other                                 the engine follows it; it is
//	                                                                    the agent's newest intent
//
// Each re-push answers one echo that disagrees with the newest intent, and its own echo agrees,
// so two-way sync cannot loop; the engine's state changes only for a status that is the newest
// intent, so it cannot flap.

// defaultEchoWindow is how long after an agent's latest push its echoes are still recognised:
// longer than the slowest push -> console -> Salesforce -> stream delay.
const defaultEchoWindow = 30 * time.Second

// maxPendingPushes bounds the unconfirmed pushes remembered per agent.
const maxPendingPushes = 16

// presence sync results (omniroute_presence_sync_total{direction,result}).
const (
	syncToSalesforce   = "to_salesforce"
	syncFromSalesforce = "from_salesforce"
	syncOK             = "ok"
	syncFailed         = "failed"
	syncSuppressed     = "suppressed"
)

// presenceSync is the echo window and the newer-intent rule, per agent. Only the router's
// goroutine uses it; time is passed in.
type presenceSync struct {
	window time.Duration
	agents map[string]*agentSync
	// snapped: a reconcile snapshot listed every agent Omni-Channel shows present, so an agent
	// not known yet is offline.
	snapped bool
}

// agentSync is what presence sync knows about one agent.
type agentSync struct {
	// pending are the pushes not yet seen coming back, oldest first.
	pending []pendingPush
	// omni is the status Omni-Channel shows, as last seen or pushed: "" unknown, Offline.
	omni string
	// want is the newest intent: the latest push, or the agent's own later pick; wantAt its time.
	want   string
	wantAt time.Time
	// unstreamed are the changes the console reported that the stream has not reported yet,
	// oldest first: both report the agent's changes in the order they happened.
	unstreamed []string
	// reports counts the statuses the console reported; reported is the latest.
	reports  uint64
	reported string
}

type pendingPush struct {
	status string
	at     time.Time
	cmd    string
	// reports is how many statuses the console had reported when the push was decided.
	reports uint64
	// checked: the push carries the status Omni-Channel showed (ExpectStatus), so the console
	// carries it out only over that status (compare-and-set); answered: the console did.
	checked, answered bool
}

func newPresenceSync(window time.Duration) *presenceSync {
	if window <= 0 {
		window = defaultEchoWindow
	}
	return &presenceSync{window: window, agents: map[string]*agentSync{}}
}

func (p *presenceSync) agent(id string) *agentSync {
	a := p.agents[id]
	if a == nil {
		a = &agentSync{}
		if p.snapped {
			a.omni = mapping.OfflineStatus
		}
		p.agents[id] = a
	}
	return a
}

// live returns the agent's pending pushes, forgetting them all once the window has passed
// since the latest: Salesforce reports an agent's changes in order, so while a later push may
// still be echoed, the echoes of earlier ones may still come before it.
func (p *presenceSync) live(a *agentSync, now time.Time) []pendingPush {
	if n := len(a.pending); n > 0 && now.Sub(a.pending[n-1].at) > p.window {
		a.pending = a.pending[:0]
	}
	return a.pending
}

// push decides the console operation for showing status; ok is false when nothing needs
// pushing (Omni-Channel already shows it and no push is on its way).
func (p *presenceSync) push(user, status string, now time.Time, repush bool) (op ConsoleOp, ok bool) {
	a := p.agent(user)
	pend := p.live(a, now)
	if status == a.omni && (len(pend) == 0 || pend[len(pend)-1].status == status) {
		if !repush {
			a.want, a.wantAt = status, now
		}
		return 0, false
	}
	switch {
	case status == mapping.OfflineStatus:
		op = ConsoleLogout
	case a.omni == "" || a.omni == mapping.OfflineStatus:
		op = ConsoleLogin
	default:
		op = ConsoleSetStatus
	}
	return op, true
}

// pushed records a push handed to the agent's console as command id. A new intent (not a
// re-push of the newest one, which keeps its time) becomes the newest intent.
func (p *presenceSync) pushed(user, status, id string, now time.Time, repush, checked bool) {
	a := p.agent(user)
	a.pending = append(p.live(a, now), pendingPush{status: status, at: now, cmd: id, checked: checked, reports: a.reports})
	if len(a.pending) > maxPendingPushes {
		a.pending = a.pending[len(a.pending)-maxPendingPushes:]
	}
	a.omni = status
	if !repush {
		a.want, a.wantAt = status, now
	}
}

// failed forgets the push of command id: the console could not carry it out (or no console
// took it). Omni-Channel still shows what it showed.
func (p *presenceSync) failed(user, id, shown string) {
	p.unchanged(user, id)
	p.agent(user).omni = shown
}

// intend records the agent's choice of state in the pad at now: the newest intent, shown in
// Omni-Channel as the status the state maps to (or the status the agent has, when it maps to
// that state).
func (p *presenceSync) intend(user string, st mapping.State, tables *mapping.Presence, now time.Time) {
	a := p.agent(user)
	if a.want == "" || tables.StateForStatus(a.want) != st {
		a.want = tables.StatusForState(st)
	}
	a.wantAt = now
}

// answered records that the console carried out the push of command id.
func (p *presenceSync) answered(user, id string) {
	a := p.agent(user)
	for i := range a.pending {
		if a.pending[i].cmd == id {
			a.pending[i].answered = true
		}
	}
}

// overtaken takes the status the console saw instead of the one a push expected (it did not
// carry the push out). The console reports the agent's picks in the order they come with the
// pad's choices: a pick it reported after the push was decided, or never, is the agent's
// newer choice and stands (echo: the engine follows it already); one it reported before is
// older than the push, whose status is pushed again (repush) over it.
func (p *presenceSync) overtaken(user, id, seen string, now time.Time) (echo bool, repush string) {
	a := p.agent(user)
	var pp pendingPush
	for _, q := range a.pending {
		if q.cmd == id {
			pp = q
		}
	}
	p.unchanged(user, id)
	a.omni = seen
	if pp.cmd != "" && a.reported == seen && a.reports <= pp.reports {
		return true, a.stale(seen) // known when the push was decided: the push is newer
	}
	if a.want == seen || (pp.cmd != "" && a.reported == seen) {
		return true, "" // reported after the push was decided: already the newest intent
	}
	a.want, a.wantAt = seen, now
	return false, ""
}

// expect is the status Omni-Channel will show when the pushes on their way have landed.
func (p *presenceSync) expect(user string) string {
	a := p.agent(user)
	for i := len(a.pending) - 1; i >= 0; i-- {
		if !a.pending[i].answered {
			return a.pending[i].status
		}
	}
	return a.omni
}

// unchanged forgets the push of command id: it changed nothing, so no echo will come (a later
// change to the same status is the agent's).
func (p *presenceSync) unchanged(user, id string) {
	a := p.agent(user)
	for i, pp := range a.pending {
		if pp.cmd == id {
			a.pending = append(a.pending[:i], a.pending[i+1:]...)
			return
		}
	}
}

// seen takes a status Salesforce reports for user, changed at at (the event's commit time;
// zero: now). echo says the engine must not follow it: omniroute's own push coming back, the
// status Omni-Channel was already known to show (one change reported by both the console and
// the stream), or a change older than the newest intent. repush is the newest intent, to push again when
// Salesforce now shows something else and no push is on its way.
func (p *presenceSync) seen(user, status string, at, now time.Time) (echo bool, repush string) {
	console := at.IsZero()
	if at.IsZero() || at.After(now) {
		at = now
	}
	a := p.agent(user)
	pend := p.live(a, now)
	if console {
		a.reports++
		a.reported = status
		a.unstreamed = append(a.unstreamed, status)
		if len(a.unstreamed) > maxPendingPushes {
			a.unstreamed = a.unstreamed[len(a.unstreamed)-maxPendingPushes:]
		}
	} else if i := slices.Index(a.unstreamed, status); i >= 0 {
		// A change the console reported already, and everything before it.
		a.unstreamed = a.unstreamed[i+1:]
		return true, ""
	}
	prev := a.omni
	a.omni = status
	for i, pp := range pend {
		if pp.status != status || (!pp.checked && at.Before(pp.at)) {
			// Without compare-and-set, a change made before the push was decided is not its
			// echo. With it, the push lands only over the status expected, so a change to
			// its status before it landed made the console refuse it.
			continue
		}
		a.pending = pend[i+1:]
		return true, a.stale(status)
	}
	if status == prev {
		// What Omni-Channel was already known to show: the same change reported again (the
		// console and the stream both report each change, omniroute's pushes included).
		return true, ""
	}
	for _, pp := range pend {
		if !console && pp.checked {
			// The stream reports changes in commit order: this one came before the checked
			// push landed, and the console's answer to the push says whether the agent
			// changed the status after it was decided.
			return true, ""
		}
	}
	if at.Before(a.wantAt) {
		return true, a.stale(status) // the newest intent came after this change
	}
	a.want, a.wantAt = status, at
	return false, ""
}

// stale returns the newest intent to push again when Omni-Channel shows status instead and
// no push is on its way.
func (a *agentSync) stale(status string) string {
	if a.want != "" && a.want != status && len(a.pending) == 0 {
		return a.want
	}
	return ""
}

// snapshot takes what Omni-Channel shows after a reconcile.
func (p *presenceSync) snapshot(ps []routing.AgentPresence) {
	p.snapped = true
	for _, a := range p.agents {
		a.omni = mapping.OfflineStatus
		a.unstreamed = nil // the snapshot is newer than what the console reported
	}
	for _, ap := range ps {
		p.agent(ap.AgentID).omni = ap.Presence
	}
}

// consoleRef is a ConsoleCommand the router sent and awaits the result of.
type consoleRef struct {
	user string
	cmd  ConsoleCommand
	// shown is what Omni-Channel showed before a presence command.
	shown string
	at    time.Time
}

// maxConsoleRefs bounds the console commands awaiting a result; the oldest are forgotten.
const maxConsoleRefs = 100_000

// errNoAgentInput is FromAgent's answer to an input with neither an event nor a report.
var errNoAgentInput = errors.New("agent input carries neither an event nor a report")

// FromAgent implements AgentRouter: the input joins the router's inbox like every other input.
func (r *Router) FromAgent(ctx context.Context, in AgentInput) error {
	if (in.Event == nil) == (in.Report == nil) {
		return errNoAgentInput
	}
	return r.send(ctx, inMsg{kind: msgAgent, agent: &in})
}

// AgentSnapshot implements AgentRouter, from the engine's views in the router's goroutine.
func (r *Router) AgentSnapshot(ctx context.Context, user string) (AgentSnapshot, error) {
	var s AgentSnapshot
	err := r.Query(ctx, func(r *Router) { s = r.agentSnapshot(user) })
	return s, err
}

func (r *Router) agentSnapshot(user string) AgentSnapshot {
	all, _, _ := r.eng.Agents("", 0)
	s := AgentSnapshot{Agents: all, Plans: r.eng.Plans().PlanViews(), WrapUps: map[string]time.Time{}}
	for _, a := range all {
		if a.ID != user {
			continue
		}
		s.Agent = a
		for _, w := range a.Work {
			switch w.Status {
			case "offered":
				o := r.offers[w.WorkID]
				s.Offers = append(s.Offers, routing.Command{Type: routing.CommandOffer, WorkID: w.WorkID, PSR: o.psr,
					AgentID: user, Channel: w.Channel, Weight: w.Weight, Plan: w.Plan, AutoAccept: o.auto})
			case "wrap_up":
				if d, ok := r.wrapUps[w.WorkID]; ok {
					s.WrapUps[w.WorkID] = d
				}
			}
		}
	}
	if s.Agent.ID == "" {
		s.Agent = routing.AgentView{ID: user, State: mapping.State{Major: mapping.LoggedOut}, Chosen: mapping.State{Major: mapping.LoggedOut}}
	}
	return s
}

// processAgent applies one input from an agent's console.
func (r *Router) processAgent(in *AgentInput) {
	if in.Report != nil {
		r.processReport(in.User, in.Report)
		return
	}
	ev := *in.Event
	ev.AgentID = in.User // never an id the client sent
	switch ev.Type {
	case routing.EventAgentState, routing.EventAgentAction:
	default:
		r.m.agentInputs.WithLabelValues("refused").Inc()
		r.deliver(in.User, AgentMessage{Command: &routing.Command{Type: routing.CommandRefused, AgentID: in.User,
			WorkID: ev.WorkID, Reason: routing.ReasonUnknownAction}})
		return
	}
	r.m.agentInputs.WithLabelValues(ev.Type.String()).Inc()
	cmds := r.eng.Apply(r.opts.Now(), ev)
	for _, c := range cmds {
		if c.Type == routing.CommandIgnored && c.AgentID == in.User {
			// The agent's own input could not be applied: tell them why.
			r.deliver(in.User, AgentMessage{Command: &c})
		}
	}
	if ev.Type == routing.EventAgentAction && !refused(cmds) {
		r.afterAction(in.User, ev)
	}
	r.dispatch(cmds)
	if ev.Type == routing.EventAgentState && !refused(cmds) {
		r.presence.intend(in.User, ev.State, r.eng.Plans().Presence(), r.opts.Now())
	}
}

func refused(cmds []routing.Command) bool {
	for _, c := range cmds {
		if c.Type == routing.CommandRefused || c.Type == routing.CommandIgnored {
			return true
		}
	}
	return false
}

// afterAction carries out in Salesforce what an accepted action needs from the console
// (docs/routing.md, "What each action does in Salesforce"): a release or an abandon closes the
// interaction's AgentWork (closeAgentWork). The engine already freed an abandoned interaction's
// capacity, whether or not the console answers.
func (r *Router) afterAction(user string, ev routing.Event) {
	switch ev.Action.Kind {
	case routing.ActionRelease, routing.ActionAbandon:
	default:
		return
	}
	aw := r.agentWorkOf(ev.WorkID, user)
	if aw == "" {
		return // no AgentWork (an elevated call) or already closed in Salesforce
	}
	if ev.Action.Kind == routing.ActionAbandon {
		// Until Salesforce closes it, its AgentWork stays open: a reconcile must not bring
		// the interaction back.
		r.abandoned[ev.WorkID] = user
	}
	r.console(user, ConsoleCommand{Op: ConsoleCloseWork, WorkID: ev.WorkID, AgentWorkID: aw}, "")
}

// agentWorkOf returns the open AgentWork of work held by user, "" when none is known.
func (r *Router) agentWorkOf(work, user string) string {
	best := ""
	for id, ref := range r.agentWork {
		if ref.WorkID == work && ref.UserID == user && (best == "" || id > best) {
			best = id
		}
	}
	return best
}

// processReport applies a report of the agent's console.
func (r *Router) processReport(user string, rep *ConsoleReport) {
	switch rep.Kind {
	case ReportResult:
		r.consoleResult(user, rep)
	case ReportPresenceChanged:
		id, name := rep.StatusID, rep.Status
		if name == "" {
			name = r.org.StatusName(id)
		}
		if id == "" {
			id = r.statusID(name)
		}
		r.presenceSeen(user, name, r.org.StatusChannels[id], time.Time{})
	case ReportLoggedOut:
		r.presenceSeen(user, mapping.OfflineStatus, nil, time.Time{})
	case ReportAcceptRequest, ReportDeclineRequest:
		o, ok := r.offers[rep.WorkID]
		if !ok || o.agent != user || o.awID == "" {
			reason := routing.ReasonUnknownWork
			if ok && o.agent == user {
				reason = routing.ReasonWrongState // the AgentWork is not known yet: ask again
			}
			r.deliver(user, AgentMessage{Command: &routing.Command{Type: routing.CommandRefused, AgentID: user,
				WorkID: rep.WorkID, Reason: reason}})
			return
		}
		op := ConsoleAccept
		if rep.Kind == ReportDeclineRequest {
			op = ConsoleDecline
		}
		r.console(user, ConsoleCommand{Op: op, WorkID: rep.WorkID, AgentWorkID: o.awID}, "")
	case ReportWorkAccepted, ReportWorkDeclined, ReportWorkClosed:
		r.consoleWork(user, rep)
	default:
		r.m.agentInputs.WithLabelValues("refused").Inc()
		return
	}
	r.m.agentInputs.WithLabelValues("report").Inc()
}

// consoleWork takes the console's word about an AgentWork. For omniroute's own work,
// Salesforce's AgentWork events carry the same facts and are what the router applies. Work
// Salesforce routed itself (seed 003's Busy Inbound) is another matter: the custom channel's
// filter (RoutingModel = ExternalRouting) keeps its AgentWork off the stream, so the console is
// the first to know. An accepted AgentWork the router does not know is read (and, if not ours,
// makes the agent Busy Inbound); a closed one the router counts as external ends it.
func (r *Router) consoleWork(user string, rep *ConsoleReport) {
	id := rep.AgentWorkID
	switch {
	case id == "":
	case rep.Kind == ReportWorkAccepted && r.opts.Reader != nil:
		if _, known := r.agentWork[id]; !known {
			r.opts.Reader.Read(readRequest{agentWork: id, external: true})
		}
	case rep.Kind == ReportWorkClosed:
		if w, ok := r.external[id]; ok && r.agentWork[id].UserID == user { // only the reporter's own work
			delete(r.external, id)
			delete(r.agentWork, id)
			r.apply(routing.Event{Type: routing.EventExternalWorkClosed, WorkID: w})
		}
	}
	r.log.Debug("console reported work", "agent", user, "work", rep.WorkID, "agent_work", id, "kind", int(rep.Kind))
}

// consoleResult takes the console's answer to a ConsoleCommand.
func (r *Router) consoleResult(user string, rep *ConsoleReport) {
	ref, ok := r.consoleRefs[rep.CommandID]
	if !ok || ref.user != user {
		r.log.Debug("console result for no command of the agent", "agent", user, "command_id", rep.CommandID)
		return
	}
	delete(r.consoleRefs, rep.CommandID)
	switch ref.cmd.Op {
	case ConsoleSetStatus, ConsoleLogin, ConsoleLogout:
		r.presenceResult(ref, rep)
	default:
		if !rep.OK {
			r.log.Warn("the console could not carry out a work command", "agent", ref.user, "op", ref.cmd.Op.String(),
				"work", ref.cmd.WorkID, "err", rep.Error)
		}
	}
}

// presenceResult takes the console's answer to a presence push. A push refused because the
// agent changed the status since it was decided (ConsoleStatusChanged) is not pushed again: the
// status the console saw is the agent's newest intent.
func (r *Router) presenceResult(ref consoleRef, rep *ConsoleReport) {
	now := r.opts.Now()
	switch {
	case rep.OK:
		r.m.presenceSync.WithLabelValues(syncToSalesforce, syncOK).Inc()
		if rep.Unchanged {
			r.presence.unchanged(ref.user, ref.cmd.ID)
		} else {
			r.presence.answered(ref.user, ref.cmd.ID)
		}
	case rep.Error == ConsoleStatusChanged && ref.cmd.ExpectStatus != "" && (rep.Status != "" || rep.StatusID != ""):
		r.m.presenceSync.WithLabelValues(syncToSalesforce, syncSuppressed).Inc()
		seen, id := rep.Status, rep.StatusID
		if seen == "" {
			seen = r.org.StatusName(id)
		}
		if id == "" {
			id = r.statusID(seen)
		}
		echo, repush := r.presence.overtaken(ref.user, ref.cmd.ID, seen, now)
		result := syncOK
		if echo {
			result = syncSuppressed
		}
		r.m.presenceSync.WithLabelValues(syncFromSalesforce, result).Inc()
		r.apply(routing.Event{Type: routing.EventAgentPresence, AgentID: ref.user, Presence: seen,
			Channels: r.org.StatusChannels[id], Echo: echo})
		r.log.Info("the console found another presence status than the push expected", "agent", ref.user,
			"pushed", ref.cmd.Status, "seen", seen, "pushed_again", repush != "")
		if repush != "" {
			r.pushPresence(ref.user, repush, true)
		}
	default:
		r.m.presenceSync.WithLabelValues(syncToSalesforce, syncFailed).Inc()
		r.presence.failed(ref.user, ref.cmd.ID, ref.shown)
		r.log.Warn("the console could not set the presence status", "agent", ref.user, "status", ref.cmd.Status, "err", rep.Error)
	}
}

// presenceSeen applies a status Salesforce reports (a UserServicePresence event, changed at
// at, or the console's report): through the echo window to the engine.
func (r *Router) presenceSeen(user, status string, channels []string, at time.Time) {
	now := r.opts.Now()
	echo, repush := r.presence.seen(user, status, at, now)
	result := syncOK
	if echo {
		result = syncSuppressed
	}
	r.m.presenceSync.WithLabelValues(syncFromSalesforce, result).Inc()
	r.apply(routing.Event{Type: routing.EventAgentPresence, AgentID: user, Presence: status, Channels: channels, Echo: echo})
	if repush != "" {
		r.pushPresence(user, repush, true)
	}
}

// pushPresence asks the agent's console to show status: a new intent of omniroute's, or a
// re-push of the newest intent.
func (r *Router) pushPresence(user, status string, repush bool) {
	now := r.opts.Now()
	op, ok := r.presence.push(user, status, now, repush)
	if !ok {
		r.m.presenceSync.WithLabelValues(syncToSalesforce, syncSuppressed).Inc()
		return
	}
	cmd := ConsoleCommand{Op: op}
	if op != ConsoleLogout {
		cmd.Status, cmd.StatusID = status, r.statusID(status)
		if cmd.StatusID == "" {
			r.m.presenceSync.WithLabelValues(syncToSalesforce, syncFailed).Inc()
			r.log.Warn("presence status not in the org; not pushed", "agent", user, "status", status)
			return
		}
	}
	shown := r.presence.agent(user).omni
	if expect := r.presence.expect(user); expect != "" {
		// Compare-and-set: the console sets it only over the status Omni-Channel shows once
		// the pushes before it have landed.
		cmd.ExpectStatus, cmd.ExpectStatusID = expect, r.statusID(expect)
	}
	id := r.console(user, cmd, shown)
	if id == "" {
		r.m.presenceSync.WithLabelValues(syncToSalesforce, syncFailed).Inc()
		return
	}
	r.presence.pushed(user, status, id, now, repush, cmd.ExpectStatus != "")
}

// console hands a ConsoleCommand to the agent's console and returns its id, or "" when no
// console took it.
func (r *Router) console(user string, cmd ConsoleCommand, shown string) string {
	r.consoleSeq++
	cmd.ID = "c" + strconv.FormatUint(r.consoleSeq, 10)
	if !r.deliver(user, AgentMessage{Console: &cmd}) {
		if cmd.Op != ConsoleSetStatus && cmd.Op != ConsoleLogin && cmd.Op != ConsoleLogout {
			r.log.Info("no console to carry out a work command", "agent", user, "op", cmd.Op.String(), "work", cmd.WorkID)
		}
		return ""
	}
	if len(r.consoleRefs) >= maxConsoleRefs {
		r.pruneConsoleRefs()
	}
	r.consoleRefs[cmd.ID] = consoleRef{user: user, cmd: cmd, shown: shown, at: r.opts.Now()}
	return cmd.ID
}

// pruneConsoleRefs forgets the older half of the commands awaiting a result (their consoles
// went away without answering).
func (r *Router) pruneConsoleRefs() {
	var newest time.Time
	var oldest time.Time
	for _, ref := range r.consoleRefs {
		if oldest.IsZero() || ref.at.Before(oldest) {
			oldest = ref.at
		}
		if ref.at.After(newest) {
			newest = ref.at
		}
	}
	mid := oldest.Add(newest.Sub(oldest) / 2)
	for id, ref := range r.consoleRefs {
		if !ref.at.After(mid) {
			delete(r.consoleRefs, id)
		}
	}
}

// deliver hands m to the agent's sink; false when no sink or connection took it.
func (r *Router) deliver(user string, m AgentMessage) bool {
	if r.opts.Agents == nil || user == "" {
		return false
	}
	return r.opts.Agents.Deliver(user, m)
}

// statusID is the ServicePresenceStatus Id of a DeveloperName, "" when the org has none.
func (r *Router) statusID(name string) string {
	for _, s := range r.org.Org.Statuses {
		if s.DeveloperName == name {
			return s.ID
		}
	}
	return ""
}

// toAgents hands the agent-addressed commands to the agents' consoles, pushes presence, and
// keeps what the agent snapshot and the disposition need. dispatch calls it for every command.
func (r *Router) toAgents(c routing.Command) {
	switch c.Type {
	case routing.CommandOffer:
		r.workChannel[c.WorkID] = c.Channel
		if !c.AutoAccept {
			r.deliver(c.AgentID, AgentMessage{Command: &c})
		}
	case routing.CommandSetState:
		r.deliver(c.AgentID, AgentMessage{Command: &c})
		if c.Presence != "" {
			r.pushPresence(c.AgentID, c.Presence, false)
		}
	case routing.CommandWrapUp:
		if !c.Deadline.IsZero() {
			r.wrapUps[c.WorkID] = c.Deadline
		}
		r.deliver(c.AgentID, AgentMessage{Command: &c})
	case routing.CommandEnded:
		delete(r.wrapUps, c.WorkID)
		if ch, ok := r.workChannel[c.WorkID]; ok {
			delete(r.workChannel, c.WorkID)
			r.sessionWork[c.Session] = append(r.sessionWork[c.Session], sessionItem{work: c.WorkID, channel: ch})
		}
		r.deliver(c.AgentID, AgentMessage{Command: &c})
	case routing.CommandSessionEnded:
		items := r.sessionWork[c.Session]
		delete(r.sessionWork, c.Session)
		if c.Disposition != "" {
			r.writeDisposition(items, c.Disposition)
		}
		r.deliver(c.AgentID, AgentMessage{Command: &c})
	case routing.CommandElevate:
		r.workChannel[c.WorkID] = c.Channel
		r.deliver(c.AgentID, AgentMessage{Command: &c})
	case routing.CommandConsult:
		r.deliver(c.AgentID, AgentMessage{Command: &c})
		if c.Target == routing.TargetAgent {
			r.deliver(c.TargetID, AgentMessage{Command: &c})
		}
	case routing.CommandIgnored:
		if r.abandoned[c.WorkID] == c.AgentID && c.AgentID != "" {
			delete(r.abandoned, c.WorkID) // the abandoned AgentWork's own outcome came
		}
	case routing.CommandNotify, routing.CommandRefused, routing.CommandHold, routing.CommandRetrieve, routing.CommandTransfer:
		r.deliver(c.AgentID, AgentMessage{Command: &c})
	}
}

// pruneWorkChannels forgets the channels of work no agent holds or is offered any more (an
// offer declined, timed out or withdrawn ends without a CommandEnded). It runs once the map has
// doubled since the last prune, after a whole batch of commands, so its cost is amortised and
// no CommandEnded of the batch is still to come.
func (r *Router) pruneWorkChannels() {
	if len(r.workChannel) <= 2*r.channelsKept+64 {
		return
	}
	held := map[string]bool{}
	all, _, _ := r.eng.Agents("", 0)
	for _, a := range all {
		for _, w := range a.Work {
			held[w.WorkID] = true
		}
	}
	for id := range r.workChannel {
		if !held[id] {
			delete(r.workChannel, id)
		}
	}
	r.channelsKept = len(r.workChannel)
}

// sessionItem is an interaction of a session that ended, kept until the session ends.
type sessionItem struct{ work, channel string }

// writeDisposition writes a session's disposition to the work items of its interactions whose
// channel names a dispositionField in the mapping.
func (r *Router) writeDisposition(items []sessionItem, disposition string) {
	if r.opts.WorkItems == nil {
		return
	}
	table := r.eng.Plans()
	for _, it := range items {
		field := table.DispositionField(it.channel)
		if field == "" || !salesforceID(it.work) {
			continue
		}
		sobject := r.workItemType(it.channel)
		if sobject == "" {
			r.log.Warn("no work item type for the channel; disposition not written", "channel", it.channel, "work", it.work)
			continue
		}
		r.opts.WorkItems.Disposition(DispositionWrite{SObject: sobject, ID: it.work, Field: field, Value: disposition})
	}
}

// workItemType is the object type (ServiceChannel.RelatedEntity) of a channel's work items.
func (r *Router) workItemType(channel string) string {
	for _, ch := range r.org.Org.Channels {
		if ch.DeveloperName == channel {
			return ch.RelatedEntity
		}
	}
	return ""
}

// salesforceID reports whether s looks like a record Id (an elevated call's work id does not).
func salesforceID(s string) bool {
	if len(s) != 15 && len(s) != 18 {
		return false
	}
	for _, c := range s {
		digit, lower, upper := c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z'
		if !digit && !lower && !upper {
			return false
		}
	}
	return true
}

// presenceSnapshot keeps presence sync and the agent maps in step with a reconcile snapshot.
// An interaction the agent abandoned whose AgentWork Salesforce still has open is left out.
func (r *Router) presenceSnapshot(s *routing.Snapshot) {
	r.presence.snapshot(s.Presence)
	if len(r.abandoned) > 0 {
		still := map[string]string{}
		s.Interactions = slices.DeleteFunc(s.Interactions, func(a routing.Assignment) bool {
			if r.abandoned[a.Work.ID] == a.AgentID {
				still[a.Work.ID] = a.AgentID
				return true
			}
			return false
		})
		r.abandoned = still
	}
	for _, o := range s.Offers {
		r.workChannel[o.Work.ID] = o.Work.Channel
	}
	for _, it := range s.Interactions {
		r.workChannel[it.Work.ID] = it.Work.Channel
	}
}
