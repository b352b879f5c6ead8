package connector

import (
	"context"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce"
)

// CommandSink carries out the engine's Salesforce commands (CommandOffer, CommandCheckOffer,
// CommandRequeue): the AgentWork writer. Do enqueues and never blocks on I/O; the sink answers
// only through the router's inbox (Router.Report).
type CommandSink interface {
	Do(cmd routing.Command)
}

// msgKind says what an inbox message carries.
type msgKind uint8

const (
	msgStream           msgKind = iota + 1 // a stream message (change event, bad event, missed)
	msgRead                                // the answer of a read the router asked for
	msgResult                              // a writer result
	msgSnapshot                            // a reconcile snapshot
	msgCheck                               // the waiting-PSR light check
	msgQuery                               // an admin query, run in the router's goroutine
	msgReconcile                           // a request to reconcile (admin, tests)
	msgReconcileFailed                     // a reconcile that could not be read
	msgReconcileReading                    // the reconcile's reads begin once done is closed
	msgAgent                               // an input from an agent's console (FromAgent)
)

// inMsg is one message of the router's inbox: everything the router learns arrives as one.
type inMsg struct {
	kind msgKind
	// msgStream
	stream salesforce.Message
	mark   *replayMark
	// msgRead: the PSRs read whole (with their skills) or the AgentWork read, for the event
	// that asked.
	read *readAnswer
	// msgResult
	result WriteResult
	// msgSnapshot
	snap *reconcileData
	// msgCheck: the PSR ids Salesforce still has, read after the router's sequence number seq.
	check *lightCheck
	// msgAgent
	agent *AgentInput
	// msgQuery
	query func(r *Router)
	done  chan struct{}
	err   error
}

// replayMark tracks one replay id of one channel: how many events carrying it are still being
// applied, and whether every event carrying it has been delivered (a later id arrived).
type replayMark struct {
	channel string
	id      int64
	open    int
	closed  bool
}

// offerRef is an offer the router sent to the writer.
type offerRef struct {
	psr, agent string
	at         time.Time
	// auto: an auto-accept plan's offer, which the engine already counts as accepted.
	auto bool
	// awID is the offer's AgentWork, once the writer reported it (or the snapshot had it).
	awID string
}

// parkedAW is an AgentWork update that matches an offer whose AgentWork the writer has not
// reported yet: it is the offer's own only if the writer reports that id.
type parkedAW struct {
	awID  string
	event *salesforce.ChangeEvent
	mark  *replayMark
}

// waitingRef is work the router believes is waiting, for queue depth and the light check.
type waitingRef struct {
	queue string
	since time.Time
}

// pendingLogout is a UserServicePresence UPDATE to IsCurrentState=false: a logout unless a
// CREATE for the same user follows in the same transaction.
type pendingLogout struct {
	user, row, txKey string
	mark             *replayMark
	at               time.Time
	// commit is when Salesforce committed the logout (zero: unknown).
	commit time.Time
}

// maxBuffered is the most messages the router buffers while a reconcile is read; beyond it
// the stream waits.
const maxBuffered = 10_000

// logoutWait is how long a presence row closed without a new one waits for the new one
// before it counts as a logout.
const logoutWait = 2 * time.Second

// RouterOptions are the router's dependencies.
type RouterOptions struct {
	Table  *routing.Table
	Names  Names
	Org    OrgInfo
	Writer CommandSink
	Reader *Reader
	// Commit commits a replay id (Stream.Commit through the committer). Nil commits nothing.
	Commit func(channel string, id int64)
	// Reconcile starts a reconcile; its result arrives in the inbox as a snapshot. Nil: never.
	Reconcile func(names Names)
	// CheckInterval is the period of the light check of waiting PSRs; zero: never.
	CheckInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	Metrics       *routerMetrics
	Updates       <-chan Mapping
	// OnMapping is called (in the router's goroutine) with each mapping the router applied.
	OnMapping func(Mapping)
	// OnReconciled is called (in the router's goroutine) after each reconcile is applied.
	OnReconciled func()
	// Agents receives what agents' consoles must see (the agent gateway). Nil: no agent is
	// connected.
	Agents AgentSink
	// WorkItems writes sessions' dispositions to their work items. Nil: not written.
	WorkItems WorkItemSink
	// EchoWindow is how long omniroute's own presence pushes are recognised coming back;
	// default 30 s.
	EchoWindow time.Duration
}

// Router is the only goroutine that touches the routing.Engine (DESIGN.md, "The
// connector"). Everything it learns arrives through one inbox; everything it decides leaves as
// commands to sinks, which answer through the inbox. It implements Known for Translate.
type Router struct {
	opts  RouterOptions
	eng   *routing.Engine
	names Names
	org   OrgInfo
	log   *slog.Logger
	m     *routerMetrics
	inbox chan inMsg
	// streamIn carries the stream's messages: the router stops taking them while a reconcile's
	// buffer is full, so the stream waits instead of memory growing.
	streamIn chan inMsg

	seq         uint64                  // counts applied messages, for the light check
	psrWork     map[string]string       // PSR id -> work id
	psrSeen     map[string]uint64       // PSR id -> seq when learned
	agentWork   map[string]AgentWorkRef // AgentWork id -> ref
	offers      map[string]offerRef     // work id -> the open offer
	arrived     map[string]time.Time    // work id -> when its first event arrived, until offered
	waiting     map[string]waitingRef   // work id -> waiting work
	workQueue   map[string]string       // work id -> queue, for waiting work that is re-routed
	uspUser     map[string]string       // UserServicePresence id -> user id, of current rows
	uspCurrent  map[string]string       // user id -> their current UserServicePresence id
	external    map[string]string       // AgentWork id -> work id, of work Salesforce routed that the engine counts
	parked      map[string][]parkedAW   // work id -> AgentWork updates waiting for the writer's result
	logouts     []*pendingLogout
	marks       map[string][]*replayMark
	reconciling bool
	again       bool
	buffer      []inMsg
	bufferCap   int  // the most messages buffered during a reconcile; then the stream waits
	covered     int  // buffer[:covered] was taken before the reconcile's reads began
	reading     bool // the reconcile's reads have begun
	ready       bool
	checking    bool

	// Agents and presence sync (presence.go).
	presence     *presenceSync
	consoleRefs  map[string]consoleRef    // console command id -> the command awaiting its result
	consoleSeq   uint64                   // numbers console commands
	wrapUps      map[string]time.Time     // work id -> wrap-up deadline
	workChannel  map[string]string        // work id -> channel, of offers and interactions
	channelsKept int                      // len(workChannel) after its last prune
	sessionWork  map[string][]sessionItem // session -> its ended interactions, until it ends
	abandoned    map[string]string        // work id -> agent, of abandoned work whose AgentWork may be open
}

// NewRouter builds a router around a new engine.
func NewRouter(opts RouterOptions) *Router {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = newRouterMetrics(nil)
	}
	return &Router{
		opts: opts, eng: routing.New(opts.Table), names: opts.Names, org: opts.Org,
		log: opts.Logger.With("component", "router"), m: opts.Metrics,
		inbox: make(chan inMsg, 256), streamIn: make(chan inMsg, 64), bufferCap: maxBuffered,
		psrWork: map[string]string{}, psrSeen: map[string]uint64{}, agentWork: map[string]AgentWorkRef{},
		offers: map[string]offerRef{}, arrived: map[string]time.Time{}, waiting: map[string]waitingRef{},
		workQueue: map[string]string{}, uspUser: map[string]string{}, uspCurrent: map[string]string{}, external: map[string]string{}, parked: map[string][]parkedAW{}, marks: map[string][]*replayMark{},
		reconciling: true,
		presence:    newPresenceSync(opts.EchoWindow), consoleRefs: map[string]consoleRef{},
		wrapUps: map[string]time.Time{}, workChannel: map[string]string{}, sessionWork: map[string][]sessionItem{},
		abandoned: map[string]string{},
	}
}

// WorkForPSR implements Known.
func (r *Router) WorkForPSR(psrID string) (string, bool) {
	w, ok := r.psrWork[psrID]
	return w, ok
}

// AgentWork implements Known.
func (r *Router) AgentWork(id string) (AgentWorkRef, bool) {
	ref, ok := r.agentWork[id]
	return ref, ok
}

// send puts a message in the inbox, blocking (backpressure) until the router takes it or ctx
// ends.
func (r *Router) send(ctx context.Context, m inMsg) error {
	select {
	case r.inbox <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HandleStream is the stream handler: it blocks while the router's stream queue is full
// (backpressure: during a reconcile, once bufferCap messages wait for the snapshot). The replay
// id is committed once the router has applied every event carrying it.
func (r *Router) HandleStream(ctx context.Context, m salesforce.Message) error {
	select {
	case r.streamIn <- inMsg{kind: msgStream, stream: m}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Report hands a writer result to the router; it blocks until the router took it.
func (r *Router) Report(ctx context.Context, res WriteResult) error {
	return r.send(ctx, inMsg{kind: msgResult, result: res})
}

// Query runs f in the router's goroutine and waits for it (admin API, tests).
func (r *Router) Query(ctx context.Context, f func(r *Router)) error {
	done := make(chan struct{})
	if err := r.send(ctx, inMsg{kind: msgQuery, query: f, done: done}); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RequestReconcile asks for a reconcile.
func (r *Router) RequestReconcile(ctx context.Context) error {
	return r.send(ctx, inMsg{kind: msgReconcile})
}

// Run is the router's loop. It starts reconciling (events are buffered until the first
// snapshot is applied) and returns when ctx ends.
func (r *Router) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var checkC <-chan time.Time
	if r.opts.CheckInterval > 0 {
		t := time.NewTicker(r.opts.CheckInterval)
		defer t.Stop()
		checkC = t.C
	}
	gauges := time.NewTicker(5 * time.Second)
	defer gauges.Stop()
	r.startReconcile()
	for {
		r.arm(timer)
		streamC := r.streamIn
		if r.reconciling && r.reading && len(r.buffer) >= r.bufferCap {
			// Backpressure: the snapshot comes through the inbox. Not before the reads
			// begin: the reconcile waits for the stream to be live, which a stream blocked
			// in its handler may never become.
			streamC = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case m := <-r.inbox:
			r.handle(m)
		case m := <-streamC:
			r.handle(m)
		case mp := <-r.opts.Updates:
			r.dispatch(r.eng.SetPlans(r.opts.Now(), mp.Table))
			r.names = NewNames(r.org.Org, mp.Config)
			r.m.reloads.Inc()
			r.log.Info("mapping applied", "sha256", mp.SHA256)
			if r.opts.OnMapping != nil {
				r.opts.OnMapping(mp)
			}
		case <-timer.C:
			r.flushLogouts("", true)
			r.apply(routing.Event{Type: routing.EventTick})
		case <-checkC:
			if !r.checking && !r.reconciling && r.opts.Reader != nil && r.checkDue() {
				r.checking = true
				ext := make([]string, 0, len(r.external))
				for id := range r.external {
					ext = append(ext, id)
				}
				r.opts.Reader.Check(r.seq, ext)
			}
		case <-gauges.C:
			r.updateGauges()
		}
	}
}

// arm sets the timer to the engine's next deadline (or a pending logout's).
func (r *Router) arm(t *time.Timer) {
	next, ok := r.eng.NextDeadline()
	if len(r.logouts) > 0 {
		at := r.logouts[0].at.Add(logoutWait)
		if !ok || at.Before(next) {
			next, ok = at, true
		}
	}
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	d := time.Hour
	if ok {
		d = max(next.Sub(r.opts.Now()), 0)
	}
	t.Reset(d)
}

func (r *Router) startReconcile() {
	r.reconciling = true
	r.again = false
	r.covered = 0
	r.reading = false
	if r.opts.Reconcile != nil {
		r.opts.Reconcile(r.names)
	}
}

// requestReconcile starts a reconcile, or another one after the one under way.
func (r *Router) requestReconcile() {
	if r.reconciling {
		r.again = true
		return
	}
	r.startReconcile()
}

func (r *Router) handle(m inMsg) {
	switch m.kind {
	case msgQuery:
		m.query(r)
		close(m.done)
		return
	case msgReconcile:
		r.requestReconcile()
		return
	case msgReconcileFailed:
		r.log.Warn("reconcile failed; retrying", "err", m.err)
		r.startReconcile()
		return
	case msgSnapshot:
		r.applySnapshot(m.snap)
		return
	case msgReconcileReading:
		if r.reconciling {
			// What the stream has delivered so far, the reads that begin once done is
			// closed cover.
			for len(r.buffer) < r.bufferCap && len(r.streamIn) > 0 {
				r.handle(<-r.streamIn)
			}
			r.covered = len(r.buffer)
			r.reading = true
		}
		if m.done != nil {
			close(m.done)
		}
		return
	case msgCheck:
		r.checking = false
		if !r.reconciling {
			r.applyCheck(m.check)
		}
		return
	case msgStream:
		m.mark = r.markOf(m.stream)
	}
	if r.reconciling {
		r.buffer = append(r.buffer, m)
		return
	}
	r.process(m)
}

// markOf tracks the replay id of a stream message.
func (r *Router) markOf(m salesforce.Message) *replayMark {
	id := m.ReplayID()
	if id == 0 {
		return nil
	}
	q := r.marks[m.Channel]
	if n := len(q); n > 0 && q[n-1].id == id {
		q[n-1].open++
		return q[n-1]
	}
	if n := len(q); n > 0 {
		q[n-1].closed = true
	}
	mk := &replayMark{channel: m.Channel, id: id, open: 1}
	r.marks[m.Channel] = append(q, mk)
	r.flushMarks(m.Channel)
	return mk
}

// done releases one event of a mark and commits the replay ids whose events are all applied,
// in delivery order.
func (r *Router) done(mk *replayMark) {
	if mk == nil {
		return
	}
	mk.open--
	r.flushMarks(mk.channel)
}

func (r *Router) flushMarks(channel string) {
	q := r.marks[channel]
	var last int64
	i := 0
	for ; i < len(q) && q[i].closed && q[i].open <= 0; i++ {
		last = q[i].id
	}
	if i == 0 {
		return
	}
	r.marks[channel] = q[i:]
	if r.opts.Commit != nil {
		r.opts.Commit(channel, last)
	}
}

func (r *Router) process(m inMsg) {
	r.seq++
	switch m.kind {
	case msgStream:
		r.processStream(m)
	case msgRead:
		r.processRead(m)
	case msgResult:
		r.processResult(m.result)
	case msgAgent:
		r.processAgent(m.agent)
	}
}

func (r *Router) processStream(m inMsg) {
	sm := m.stream
	switch {
	case asksReconcile(m):
		r.gap(m, false)
		return
	}
	ev := sm.Event
	if !ev.CommitTimestamp.IsZero() {
		r.m.lag.Observe(max(r.opts.Now().Sub(ev.CommitTimestamp), 0).Seconds())
	}
	if ev.Presence != nil {
		r.processPresence(ev, m.mark)
		return
	}
	r.flushLogouts(ev.TransactionKey, false)
	// An AgentWork update about an id the router does not know yet (its insert's result has
	// not arrived, or Salesforce made it): read it before translating.
	if ev.AgentWork != nil && ev.ChangeType == salesforce.ChangeUpdate && ev.Has("Status") {
		for _, id := range ev.RecordIDs {
			if _, ok := r.agentWork[id]; !ok && r.opts.Reader != nil {
				r.m.events.WithLabelValues("agentwork_read").Inc()
				r.opts.Reader.Read(readRequest{agentWork: id, event: ev, mark: m.mark})
				return
			}
		}
	}
	if r.staleOutcome(ev, m.mark) {
		return
	}
	r.translate(ev, m.mark)
}

// staleOutcome keeps an outcome of an AgentWork of ours from another offer than the current
// one: outcome events name no AgentWork, so an update of an earlier AgentWork of the same work
// and agent (replayed, or late) would end the current offer. It is dropped when the writer
// reported the current offer's AgentWork, and waits for that report otherwise. It reports
// whether it took the event (and its mark).
func (r *Router) staleOutcome(ev *salesforce.ChangeEvent, mark *replayMark) bool {
	if ev.AgentWork == nil || ev.ChangeType != salesforce.ChangeUpdate || !ev.Has("Status") || len(ev.RecordIDs) != 1 {
		return false
	}
	id := ev.RecordIDs[0]
	ref, ok := r.agentWork[id]
	if !ok || !ref.Ours {
		return false
	}
	o, ok := r.offers[ref.WorkID]
	if !ok || o.agent != ref.UserID || o.awID == id {
		return false
	}
	if o.awID == "" {
		r.parked[ref.WorkID] = append(r.parked[ref.WorkID], parkedAW{awID: id, event: ev, mark: mark})
		return true
	}
	r.m.events.WithLabelValues("stale_agentwork").Inc()
	r.done(mark)
	return true
}

// translate applies a change event once the router knows what it needs.
func (r *Router) translate(ev *salesforce.ChangeEvent, mark *replayMark) {
	if aw := ev.AgentWork; aw != nil && ev.ChangeType == salesforce.ChangeCreate &&
		ev.Has("RoutingModel") && aw.RoutingModel == salesforce.RoutingModelExternal {
		// Only a routing partner inserts external-routing AgentWork, and omniroute is the one
		// active writer: its own insert (a PushTopic event carries no changeOrigin, and the
		// writer's result may not have arrived), not work Salesforce routed.
		r.m.events.WithLabelValues(SkipOwnInsert).Inc()
		r.done(mark)
		return
	}
	ch := Translate(ev, r.names, r)
	if ch.Skipped != "" && len(ch.Events) == 0 && len(ch.ReadPSRs) == 0 && len(ch.ReadAgentWork) == 0 {
		r.m.events.WithLabelValues(ch.Skipped).Inc()
	} else {
		r.m.events.WithLabelValues("applied").Inc()
	}
	if ev.PSR != nil && ev.ChangeType == salesforce.ChangeDelete {
		for _, id := range ev.RecordIDs {
			delete(r.psrWork, id)
			delete(r.psrSeen, id)
		}
	}
	for _, e := range ch.Events {
		r.applyTracked(e, ev.AgentWork)
	}
	if ev.AgentWork != nil {
		r.afterAgentWork(ev)
	}
	if len(ch.ReadPSRs) > 0 && r.opts.Reader != nil {
		r.opts.Reader.Read(readRequest{psrs: ch.ReadPSRs, create: ev.ChangeType == salesforce.ChangeCreate, mark: mark})
		return
	}
	if len(ch.ReadAgentWork) > 0 && r.opts.Reader != nil {
		r.opts.Reader.Read(readRequest{agentWork: ch.ReadAgentWork[0], event: ev, mark: mark, external: true})
		return
	}
	r.done(mark)
}

// terminal are the AgentWork statuses after which nothing more happens to the record.
var terminal = []string{salesforce.AgentWorkClosed, salesforce.AgentWorkDeclined, salesforce.AgentWorkDeclinedOnPushTimeout,
	salesforce.AgentWorkUnavailable, salesforce.AgentWorkCanceled, salesforce.AgentWorkTransferred}

// afterAgentWork keeps the AgentWork maps after an AgentWork event: external work the engine
// now counts, records that ended. When an AgentWork of ours was transferred to a user, the
// AgentWork Salesforce made for the target (of no routing model, so not on the custom
// channel) is read, so that it counts against the target agent.
func (r *Router) afterAgentWork(ev *salesforce.ChangeEvent) {
	aw := ev.AgentWork
	for _, id := range ev.RecordIDs {
		ref, known := r.agentWork[id]
		switch {
		case ev.ChangeType == salesforce.ChangeCreate && !known && !IsOwn(ev.ChangeOrigin) && aw.UserID != "" &&
			(aw.Status == salesforce.AgentWorkAssigned || aw.Status == salesforce.AgentWorkOpened):
			r.agentWork[id] = AgentWorkRef{UserID: aw.UserID, WorkID: aw.WorkItemID, PSR: aw.PendingServiceRoutingID}
			r.external[id] = aw.WorkItemID
		case ev.ChangeType == salesforce.ChangeUpdate && ev.Has("Status") && slices.Contains(terminal, aw.Status) && known:
			delete(r.agentWork, id)
			delete(r.external, id)
			if ref.Ours && aw.Status == salesforce.AgentWorkTransferred && r.opts.Reader != nil {
				r.opts.Reader.Read(readRequest{openOf: ref.WorkID})
			}
		}
	}
}

// applyTracked applies an event translated from Salesforce, keeping the router's maps.
func (r *Router) applyTracked(e routing.Event, aw *salesforce.AgentWork) {
	now := r.opts.Now()
	switch e.Type {
	case routing.EventWorkArrived, routing.EventWorkChanged:
		if e.Work.Queue == "" {
			// A PSR without a queue (a transfer to skills): routed by the plan of the queue
			// the work came from.
			e.Work.Queue = r.workQueue[e.Work.ID]
		}
		r.learnPSR(e.Work.PSR, e.Work.ID)
		if _, ok := r.arrived[e.Work.ID]; !ok {
			r.arrived[e.Work.ID] = now
		}
		r.workQueue[e.Work.ID] = e.Work.Queue
		if _, offered := r.offers[e.Work.ID]; !offered {
			r.markWaiting(e.Work.ID, e.Work.RequestedAt)
		}
	case routing.EventOfferAccepted:
		if o, ok := r.offers[e.WorkID]; ok && o.agent == e.AgentID {
			r.m.offerToAccept.Observe(max(now.Sub(o.at), 0).Seconds())
			delete(r.offers, e.WorkID)
			delete(r.psrWork, o.psr) // accepting deletes the PSR
			delete(r.psrSeen, o.psr)
		}
		delete(r.waiting, e.WorkID)
	case routing.EventOfferDeclined:
		if o, ok := r.offers[e.WorkID]; ok && o.agent == e.AgentID {
			delete(r.offers, e.WorkID)
			if o.auto {
				// The engine took auto-accepted work as accepted; an AgentWork that ends
				// without opening means the work never reached the agent, which the engine
				// undoes as a failed delivery.
				e.Outcome = routing.OutcomeInsertFailed
			}
			if aw != nil && aw.Status == salesforce.AgentWorkCanceled {
				// The customer left or the owner changed: the PSR is gone too.
				r.apply(routing.Event{Type: routing.EventWorkRemoved, WorkID: e.WorkID, PSR: o.psr})
				delete(r.psrWork, o.psr)
				delete(r.psrSeen, o.psr)
			} else {
				r.markWaiting(e.WorkID, time.Time{})
			}
			r.arrived[e.WorkID] = now
		}
	case routing.EventWorkRemoved:
		delete(r.waiting, e.WorkID)
		delete(r.arrived, e.WorkID)
		if _, offered := r.offers[e.WorkID]; !offered {
			// An offered work's PSR is deleted when it is accepted, and that DELETE may come
			// before the AgentWork's accept: the work keeps its queue for a later transfer.
			delete(r.workQueue, e.WorkID)
		}
	case routing.EventWorkClosed:
		delete(r.workQueue, e.WorkID)
	}
	r.apply(e)
}

func (r *Router) markWaiting(work string, since time.Time) {
	w, ok := r.waiting[work]
	if !ok {
		w = waitingRef{queue: r.workQueue[work], since: since}
		if w.since.IsZero() {
			w.since = r.opts.Now()
		}
	}
	r.waiting[work] = w
}

func (r *Router) learnPSR(psr, work string) {
	if psr == "" {
		return
	}
	r.psrWork[psr] = work
	r.psrSeen[psr] = r.seq
}

// apply feeds one event to the engine and carries out its commands.
func (r *Router) apply(e routing.Event) {
	r.dispatch(r.eng.Apply(r.opts.Now(), e))
}

// dispatch carries out the engine's commands: Salesforce ones to the writer, the others to
// logs and metrics.
func (r *Router) dispatch(cmds []routing.Command) {
	now := r.opts.Now()
	for _, c := range cmds {
		r.m.commands.WithLabelValues(c.Type.String(), string(c.Reason)).Inc()
		r.toAgents(c)
		switch c.Type {
		case routing.CommandOffer:
			r.m.outcomes.WithLabelValues(c.Plan, "offered").Inc()
			r.offers[c.WorkID] = offerRef{psr: c.PSR, agent: c.AgentID, at: now, auto: c.AutoAccept}
			delete(r.waiting, c.WorkID)
			if t, ok := r.arrived[c.WorkID]; ok {
				r.m.eventToRequest.Observe(max(now.Sub(t), 0).Seconds())
				delete(r.arrived, c.WorkID)
			}
			r.learnPSR(c.PSR, c.WorkID)
			r.log.Debug("offer", "work", c.WorkID, "agent", c.AgentID, "plan", c.Plan)
			r.send2writer(c)
		case routing.CommandCheckOffer, routing.CommandRequeue:
			r.send2writer(c)
		case routing.CommandRerouted:
			r.m.outcomes.WithLabelValues(c.Plan, "rerouted_"+string(c.Reason)).Inc()
		case routing.CommandUnroutable:
			r.log.Warn("work is unroutable until the mapping maps it", "work", c.WorkID, "reason", string(c.Reason))
		case routing.CommandIgnored:
			r.log.Debug("ignored", "reason", string(c.Reason), "work", c.WorkID, "agent", c.AgentID)
		default:
			r.log.Debug("command", "type", c.Type.String(), "work", c.WorkID, "agent", c.AgentID, "reason", string(c.Reason))
		}
	}
	r.pruneWorkChannels()
}

func (r *Router) send2writer(c routing.Command) {
	if r.opts.Writer != nil {
		r.opts.Writer.Do(c)
	}
}

// processResult learns from a writer result.
func (r *Router) processResult(res WriteResult) {
	c := res.Command
	if o, ok := r.offers[c.WorkID]; ok && c.Type == routing.CommandCheckOffer && (o.psr != c.PSR || o.agent != c.AgentID) {
		// The answer of a check made for an earlier offer of this work (a check may wait
		// CheckWait for its look-up): it is about that offer's AgentWork, and outcomes name
		// only the work and the agent, so it must not end the current offer.
		r.m.events.WithLabelValues("stale_check").Inc()
		return
	}
	if res.AgentWorkID != "" {
		r.agentWork[res.AgentWorkID] = AgentWorkRef{UserID: c.AgentID, WorkID: c.WorkID, PSR: c.PSR, Ours: true}
		if o, ok := r.offers[c.WorkID]; ok && o.agent == c.AgentID && o.awID == "" {
			o.awID = res.AgentWorkID
			r.offers[c.WorkID] = o
		}
	}
	if c.Type == routing.CommandOffer {
		// AgentWork updates that came before this result: the offer's own, or stale ones
		// (an earlier AgentWork of the same agent and work, replayed after a restart).
		parked := r.parked[c.WorkID]
		delete(r.parked, c.WorkID)
		defer func() {
			for _, p := range parked {
				if p.awID == res.AgentWorkID {
					r.translateNoMark(p.event)
				} else {
					r.m.events.WithLabelValues("stale_agentwork").Inc()
				}
				r.done(p.mark)
			}
		}()
	}
	if res.Err != nil {
		r.log.Warn("a command was not carried out", "command", c.Type.String(), "work", c.WorkID, "err", res.Err)
		if c.Type == routing.CommandRequeue {
			// The engine waits for the new PSR of a requeue; none will come: read what
			// Salesforce holds.
			r.requestReconcile()
		}
	}
	if res.Event != nil {
		r.applyTracked(*res.Event, nil)
	}
	if res.After != nil {
		r.applyTracked(*res.After, nil)
	}
}

// processRead applies the answer of a read.
func (r *Router) processRead(m inMsg) {
	a := m.read
	defer r.done(a.req.mark)
	if a.err != nil {
		r.log.Warn("read failed; reconciling", "err", a.err)
		r.startReconcile()
		return
	}
	if a.req.agentWork != "" {
		if a.agentWork == nil {
			return // gone: nothing to learn
		}
		aw := a.agentWork
		ref := AgentWorkRef{UserID: aw.UserID, WorkID: aw.WorkItemID, PSR: aw.PendingServiceRoutingID}
		if o, ok := r.offers[aw.WorkItemID]; ok && o.agent == aw.UserID && (o.psr == aw.PendingServiceRoutingID || aw.PendingServiceRoutingID == "") {
			switch o.awID {
			case "":
				// The writer has not reported this offer's AgentWork: wait for it.
				if a.req.mark != nil {
					a.req.mark.open++
				}
				r.parked[aw.WorkItemID] = append(r.parked[aw.WorkItemID], parkedAW{awID: aw.ID, event: a.req.event, mark: a.req.mark})
				return
			case aw.ID:
				ref.Ours = true
			default:
				// An earlier AgentWork of the same agent and work (replayed after a restart):
				// nothing to tell the engine.
				r.m.events.WithLabelValues("stale_agentwork").Inc()
				return
			}
		} else if aw.RoutingModel == salesforce.RoutingModelExternal {
			// Only a routing partner inserts external-routing AgentWork: ours, for work no
			// longer offered (accepted, or held since before a restart); the engine checks
			// the agent and the work of what follows.
			ref.Ours = true
		}
		r.agentWork[aw.ID] = ref
		if !ref.Ours && a.req.external {
			switch aw.Status {
			case salesforce.AgentWorkAssigned, salesforce.AgentWorkOpened:
				r.external[aw.ID] = aw.WorkItemID
				r.apply(routing.Event{Type: routing.EventExternalWork, AgentID: aw.UserID, WorkID: aw.WorkItemID, Channel: lookup(r.names.channels, aw.ServiceChannelID)})
			}
			return
		}
		if a.req.event == nil {
			return // read for the console's report (presence.go): nothing more to apply
		}
		ev := *a.req.event
		r.translateNoMark(&ev)
		return
	}
	if a.req.openOf != "" {
		for _, aw := range a.open {
			if _, known := r.agentWork[aw.ID]; known || aw.RoutingModel == salesforce.RoutingModelExternal {
				// Known, or ours (only a routing partner inserts external-routing AgentWork:
				// the work offered again before the writer's result came): not external work.
				continue
			}
			r.agentWork[aw.ID] = AgentWorkRef{UserID: aw.UserID, WorkID: aw.WorkItemID, PSR: aw.PendingServiceRoutingID}
			r.external[aw.ID] = aw.WorkItemID
			r.apply(routing.Event{Type: routing.EventExternalWork, AgentID: aw.UserID, WorkID: aw.WorkItemID, Channel: lookup(r.names.channels, aw.ServiceChannelID)})
		}
		return
	}
	for _, p := range a.psrs {
		if p.RoutingModel != salesforce.RoutingModelExternal || !p.IsReadyForRouting {
			// A CDC UPDATE carries only what changed: the read whole record says whether the
			// PSR is ours to route; one that is not is no work.
			skip := SkipNotReady
			if p.RoutingModel != salesforce.RoutingModelExternal {
				skip = SkipNotExternal
			}
			r.m.events.WithLabelValues(skip).Inc()
			if w, ok := r.psrWork[p.ID]; ok {
				r.applyTracked(routing.Event{Type: routing.EventWorkRemoved, WorkID: w, PSR: p.ID}, nil)
				delete(r.psrWork, p.ID)
				delete(r.psrSeen, p.ID)
			}
			continue
		}
		w := r.names.Work(&p, a.skills)
		typ := routing.EventWorkChanged
		if a.req.create {
			typ = routing.EventWorkArrived
		}
		r.applyTracked(routing.Event{Type: typ, Work: w}, nil)
	}
	for _, id := range a.gone {
		if w, ok := r.psrWork[id]; ok {
			r.applyTracked(routing.Event{Type: routing.EventWorkRemoved, WorkID: w, PSR: id}, nil)
			delete(r.psrWork, id)
			delete(r.psrSeen, id)
		}
	}
}

// translateNoMark translates an event whose mark the caller releases.
func (r *Router) translateNoMark(ev *salesforce.ChangeEvent) {
	ch := Translate(ev, r.names, r)
	for _, e := range ch.Events {
		r.applyTracked(e, ev.AgentWork)
	}
	r.afterAgentWork(ev)
	r.m.events.WithLabelValues("applied").Inc()
}

// processPresence turns UserServicePresence changes into EventAgentPresence: a CREATE with
// IsCurrentState is the agent's new status; an UPDATE to IsCurrentState=false with no CREATE for
// the user in the same transaction is a logout.
func (r *Router) processPresence(ev *salesforce.ChangeEvent, mark *replayMark) {
	p := ev.Presence
	switch ev.ChangeType {
	case salesforce.ChangeCreate:
		current := !ev.Has("IsCurrentState") || p.IsCurrentState
		for _, id := range ev.RecordIDs {
			if p.UserID != "" && current {
				r.uspUser[id] = p.UserID
				r.uspCurrent[p.UserID] = id
			}
		}
		r.dropLogout(p.UserID, ev.TransactionKey)
		r.flushLogouts(ev.TransactionKey, false)
		if current && p.UserID != "" {
			r.m.events.WithLabelValues("applied").Inc()
			r.presenceSeen(p.UserID, r.org.StatusName(p.ServicePresenceStatusID), r.org.StatusChannels[p.ServicePresenceStatusID],
				ev.CommitTimestamp)
		}
		r.done(mark)
	case salesforce.ChangeUpdate:
		r.flushLogouts(ev.TransactionKey, false)
		if !ev.Has("IsCurrentState") || p.IsCurrentState || !slices.Contains(changed(ev), "IsCurrentState") {
			r.m.events.WithLabelValues(SkipNoise).Inc()
			r.done(mark)
			return
		}
		for _, id := range ev.RecordIDs {
			user := cmpOr(p.UserID, r.uspUser[id])
			if user == "" {
				r.m.events.WithLabelValues(SkipUnknown).Inc()
				continue
			}
			if cur, ok := r.uspCurrent[user]; ok && cur != id {
				// A row the agent closed earlier, arriving again (noise, a replay) after a
				// newer one: presence is keyed on the row, so it is no logout.
				r.m.events.WithLabelValues(SkipNoise).Inc()
				delete(r.uspUser, id)
				continue
			}
			if mark != nil {
				mark.open++
			}
			r.logouts = append(r.logouts, &pendingLogout{user: user, row: id, txKey: ev.TransactionKey, mark: mark, at: r.opts.Now(),
				commit: ev.CommitTimestamp})
		}
		r.done(mark)
	default:
		r.done(mark)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// dropLogout cancels the pending logout of user that a CREATE of the same transaction answers.
func (r *Router) dropLogout(user, txKey string) {
	for i, l := range r.logouts {
		if l.user == user && l.txKey == txKey && txKey != "" {
			r.logouts = slices.Delete(r.logouts, i, i+1)
			r.closeRow(l)
			r.done(l.mark)
			return
		}
	}
}

// closeRow forgets the presence row a pending logout closed.
func (r *Router) closeRow(l *pendingLogout) {
	delete(r.uspUser, l.row)
	if r.uspCurrent[l.user] == l.row {
		delete(r.uspCurrent, l.user)
	}
}

// flushLogouts applies pending logouts, in order: those of another transaction than txKey
// (the events of one transaction arrive together, so no CREATE can answer them any more),
// and on the timer those older than logoutWait (a stream gone quiet).
func (r *Router) flushLogouts(txKey string, timer bool) {
	now := r.opts.Now()
	keep := r.logouts[:0]
	for _, l := range r.logouts {
		due := timer && now.Sub(l.at) >= logoutWait
		if !due && (timer || (l.txKey == txKey && txKey != "")) {
			keep = append(keep, l)
			continue
		}
		r.m.events.WithLabelValues("applied").Inc()
		r.closeRow(l)
		r.presenceSeen(l.user, mapping.OfflineStatus, nil, l.commit)
		r.done(l.mark)
	}
	r.logouts = keep
}

// applySnapshot applies a reconcile: agents' skills, then the snapshot, then the events
// buffered meanwhile.
func (r *Router) applySnapshot(d *reconcileData) {
	start := r.opts.Now()
	for _, e := range d.skills {
		r.apply(e)
	}
	// The router's maps restart from what Salesforce holds; AgentWork updates parked for a
	// writer result are covered by the snapshot.
	for _, ps := range r.parked {
		for _, p := range ps {
			r.done(p.mark)
		}
	}
	r.parked = map[string][]parkedAW{}
	// The snapshot is newer than any light check asked for before it: what it learns must
	// not look older than one.
	r.seq++
	r.psrWork = map[string]string{}
	r.psrSeen = map[string]uint64{}
	r.offers = map[string]offerRef{}
	r.waiting = map[string]waitingRef{}
	for _, w := range d.snap.Waiting {
		r.learnPSR(w.PSR, w.ID)
		r.workQueue[w.ID] = w.Queue
		r.markWaiting(w.ID, w.RequestedAt)
	}
	for _, o := range d.snap.Offers {
		r.learnPSR(o.Work.PSR, o.Work.ID)
		r.offers[o.Work.ID] = offerRef{psr: o.Work.PSR, agent: o.AgentID, at: start}
	}
	for id, ref := range d.agentWork {
		if o, ok := r.offers[ref.WorkID]; ok && ref.Ours && o.agent == ref.UserID {
			o.awID = id
			r.offers[ref.WorkID] = o
		}
	}
	// What ended unseen is forgotten; an AgentWork the router then meets again is read.
	r.agentWork = map[string]AgentWorkRef{}
	maps.Copy(r.agentWork, d.agentWork)
	r.external = map[string]string{}
	for id, ref := range d.agentWork {
		if !ref.Ours {
			r.external[id] = ref.WorkID
		}
	}
	r.uspUser = map[string]string{}
	maps.Copy(r.uspUser, d.uspUser)
	r.uspCurrent = map[string]string{}
	for id, user := range r.uspUser {
		r.uspCurrent[user] = id
	}
	r.presenceSnapshot(&d.snap)
	r.apply(routing.Event{Type: routing.EventReconcile, Snapshot: &d.snap})
	r.m.reconciles.Inc()
	r.log.Info("reconcile applied", "waiting", len(d.snap.Waiting), "offers", len(d.snap.Offers),
		"interactions", len(d.snap.Interactions), "external", len(d.snap.External), "presence", len(d.snap.Presence),
		"buffered", len(r.buffer))
	// Applied: the snapshot and the rows it was read from are garbage (most of the heap at
	// 100,000 PSRs); let them go and give their memory back to the OS at once, off the
	// router's goroutine, rather than let the process keep its peak until the scavenger
	// returns it.
	d.snap = routing.Snapshot{}
	go debug.FreeOSMemory()
	r.reconciling = false
	buf, covered := r.buffer, r.covered
	r.buffer = nil
	for i, m := range buf {
		if r.reconciling {
			// A buffered event asked for another reconcile: keep the rest for after it.
			r.buffer = append(r.buffer, buf[i:]...)
			return
		}
		if i < covered && asksReconcile(m) {
			// Taken before this reconcile's reads began: what it lost, the snapshot has
			// (a Missed notice comes once the subscription is live). A fresh start thus
			// reconciles once.
			r.gap(m, true)
			continue
		}
		r.process(m)
	}
	if r.again {
		r.startReconcile()
		return
	}
	if !r.ready {
		r.ready = true
	}
	if r.opts.OnReconciled != nil {
		r.opts.OnReconciled()
	}
}

// gap counts and logs a stream message that asks for a reconcile, and starts one unless the
// reconcile just applied covers it.
func (r *Router) gap(m inMsg, covered bool) {
	sm := m.stream
	var (
		msg   string
		attrs []any
	)
	switch {
	case sm.Missed != nil:
		r.m.gaps.WithLabelValues("missed").Inc()
		msg, attrs = "events may have been missed", []any{"channel", sm.Channel, "cause", sm.Missed.Cause.String(), "replay_id", sm.Missed.ReplayID}
	case sm.Bad != nil:
		r.m.events.WithLabelValues("bad").Inc()
		msg, attrs = "an event could not be decoded", []any{"channel", sm.Channel, "replay_id", sm.Bad.ReplayID, "err", sm.Bad.Err}
	default:
		r.m.events.WithLabelValues("gap").Inc()
		r.m.gaps.WithLabelValues("gap_event").Inc()
		msg, attrs = "gap event", []any{"entity", sm.Event.Entity, "change_type", string(sm.Event.ChangeType)}
	}
	if covered {
		r.log.Warn(msg+"; the reconcile just applied covers it", attrs...) //nolint:sloglint // one of three fixed messages
	} else {
		r.log.Warn(msg+"; reconciling", attrs...) //nolint:sloglint // one of three fixed messages
		r.startReconcile()
	}
	r.done(m.mark)
}

// asksReconcile reports whether a stream message asks for a reconcile: a notice of missed
// events, an event that could not be decoded, a gap event.
func asksReconcile(m inMsg) bool {
	sm := m.stream
	return m.kind == msgStream && (sm.Missed != nil || sm.Bad != nil || (sm.Event != nil && sm.Event.ChangeType.IsGapEvent()))
}

// checkDue reports whether the light check has anything to find: work waiting for longer
// than its period (a PSR deleted without a delivered DELETE is found within two periods), or
// work Salesforce routed that the engine counts. Otherwise the check costs no query: offered
// work ends through its AgentWork, and work that arrived within the period is checked by a
// later tick if it is still waiting then.
func (r *Router) checkDue() bool {
	if len(r.external) > 0 {
		return true
	}
	old := r.opts.Now().Add(-r.opts.CheckInterval)
	for _, w := range r.waiting {
		if !w.since.After(old) {
			return true
		}
	}
	return false
}

// applyCheck removes work whose PSR Salesforce no longer has, among the PSRs the router
// learnt before the check was read.
func (r *Router) applyCheck(c *lightCheck) {
	if c.err != nil {
		r.log.Warn("light check of waiting work failed", "err", c.err)
		return
	}
	var gone []string
	for psr, seen := range r.psrSeen {
		if seen <= c.seq && !c.ids[psr] {
			gone = append(gone, psr)
		}
	}
	for id, open := range c.external {
		w, ok := r.external[id]
		if !ok || open {
			continue
		}
		delete(r.external, id)
		delete(r.agentWork, id)
		r.apply(routing.Event{Type: routing.EventExternalWorkClosed, WorkID: w})
	}
	slices.Sort(gone)
	for _, psr := range gone {
		w := r.psrWork[psr]
		delete(r.psrWork, psr)
		delete(r.psrSeen, psr)
		if _, offered := r.offers[w]; offered {
			continue // the AgentWork's own update says what happened
		}
		r.m.events.WithLabelValues("psr_gone").Inc()
		r.applyTracked(routing.Event{Type: routing.EventWorkRemoved, WorkID: w, PSR: psr}, nil)
	}
}

// updateGauges sets queue depth and oldest age per queue.
func (r *Router) updateGauges() {
	now := r.opts.Now()
	type agg struct {
		n      int
		oldest time.Time
	}
	by := map[string]*agg{}
	for _, w := range r.waiting {
		a := by[w.queue]
		if a == nil {
			a = &agg{oldest: w.since}
			by[w.queue] = a
		}
		a.n++
		if w.since.Before(a.oldest) {
			a.oldest = w.since
		}
	}
	r.m.depth.Reset()
	r.m.oldest.Reset()
	for q, a := range by {
		r.m.depth.WithLabelValues(q).Set(float64(a.n))
		r.m.oldest.WithLabelValues(q).Set(max(now.Sub(a.oldest), 0).Seconds())
	}
}
