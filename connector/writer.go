package connector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce"
)

// This file is the AgentWork writer: the sink that carries out the engine's Salesforce writes
// (docs/routing.md, "What the daemon must do for each command").
//
//   - CommandOffer: one AgentWork insert. One ready offer goes alone (POST /sobjects/AgentWork);
//     several go together in one sObject Collections call (POST /composite/sobjects,
//     allOrNone false, at most MaxBatch records). At most MaxInFlight insert calls are in
//     flight; while they all are, new offers queue, and the next call (the first to end frees
//     its slot) takes everything queued. No timer ever waits for more: a lone offer goes at
//     once, and a burst costs one call per round trip and slot. More than one slot lets the
//     org's answer time overlap: a call of 200 records that takes 200 ms caps one slot at
//     1,000 offers a second. A call's slot is free as soon as its answer is read; its results
//     are reported after. An offer of a PSR to a user the writer still holds an offer for
//     (the engine offered the work again before that one's result) is the same attempt: it
//     is answered with that offer's result, never sent as a second insert.
//   - An insert whose outcome is unknown (a 500, 502 or 504, a network error after sending, a
//     cut or undecodable body) is never sent again blindly: the AgentWork is looked up by its
//     PSR (and work item) and user first. Found: it is reported as created. Certainly absent:
//     inserted again, at most MaxAttempts times in all. A refusal of such a second insert is
//     looked up once more before it is reported, so an insert the server applied late is
//     still found. At most one open AgentWork per PSR attempt follows.
//   - CommandCheckOffer: the same look-up, never an insert. A check for an offer the writer
//     still holds (queued, in flight or being looked up) is answered with nothing: the offer's
//     own result will answer it. A check because an offer timed out (ReasonOfferTimeout) is a
//     fall-back for an outcome the stream did not deliver, not urgent: it waits up to
//     CheckWait for other checks to share its query (any other look-up takes it at once).
//     A decline or push timeout the stream delivers ends the offer at once; only one the
//     stream lost waits for the check, so its re-route comes at most the offer timeout plus
//     CheckWait (and one query) after the offer. The router drops an answer that comes after
//     the work has a new offer (another PSR or agent). At shutdown, waiting checks are
//     dropped, never sent: a check never writes, and the next reconcile reads the AgentWork.
//   - CommandRequeue: the work item's OwnerId becomes the queue (one PATCH, or one PATCH
//     /composite/sobjects for several).
//
// The look-ups of several offers and checks share one SOQL query. Everything is answered
// through Report, from the writer's goroutines; Do only queues.

// Defaults of WriterOptions.
const (
	DefaultAPIBudgetShare = 0.9
	DefaultMaxAttempts    = 3
	DefaultDrainTimeout   = 10 * time.Second
	DefaultCheckWait      = 30 * time.Second
	DefaultMaxInFlight    = 2
	// MaxMaxInFlight bounds MaxInFlight: more calls at once only wait on the org's row locks.
	MaxMaxInFlight = 16
)

// lookupBatch is the most offers and checks one look-up query carries: two IN lists of 18
// character ids stay far below the 16,384 byte URI limit.
const lookupBatch = 100

// lookupSkew is how much older than the insert an ended AgentWork (Declined, ...) found by
// the look-up of an unknown outcome may be and still count as that insert's: the writer's
// clock and Salesforce's CreatedDate (whole seconds) may differ.
const lookupSkew = time.Minute

// WriterOptions configure a Writer. Client, Channels and Report are required.
type WriterOptions struct {
	// Client carries every request.
	Client *salesforce.Client
	// Channels maps a ServiceChannel DeveloperName (routing.Command.Channel) to its Id.
	Channels map[string]string
	// Queues maps a queue as the mapping names it (DeveloperName or Id) to its Group Id, for
	// CommandRequeue. A TargetID that is already a queue Id (00G...) needs no entry.
	Queues map[string]string
	// Entities maps a ServiceChannel DeveloperName to its RelatedEntity (the work item's
	// sObject type), for CommandRequeue. Without an entry the type comes from the work item
	// id's key prefix (Case, LiveChatTranscript, MessagingSession, VoiceCall).
	Entities map[string]string
	// Report receives every result. It blocks until the router has taken it (backpressure)
	// or ctx ends; it is called from the writer's goroutines, never from Do.
	Report func(ctx context.Context, r WriteResult) error
	// Registerer receives the writer_* metrics, without the omniroute_ prefix (the daemon
	// adds it). Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger is the parent logger. Nil discards.
	Logger *slog.Logger
	// MaxBatch is the most records one insert or update call carries. Default and maximum
	// 200, the sObject Collections limit.
	MaxBatch int
	// MaxInFlight is the most insert calls in flight at once. Default DefaultMaxInFlight; 1
	// to MaxMaxInFlight.
	MaxInFlight int
	// APIBudgetShare is the share of the daily API allocation (Sforce-Limit-Info) above which
	// the writer logs, sets writer_api_budget_exceeded, and spends its calls on AgentWork
	// inserts (and their look-ups) before checks and requeues. OverBudget tells the rest of
	// the daemon. Default DefaultAPIBudgetShare; must be in (0, 1].
	APIBudgetShare float64
	// MaxAttempts bounds the inserts sent for one offer whose outcome stays unknown or that
	// Salesforce could not take for a transient reason (503, 429, UNABLE_TO_LOCK_ROW) after
	// the client's own retries. Default DefaultMaxAttempts.
	MaxAttempts int
	// DrainTimeout is how long Run, once its context is done, lets the calls in flight
	// finish and their results be reported. Default DefaultDrainTimeout; set it from the
	// shutdown timeout.
	DrainTimeout time.Duration
	// CheckWait is how long a CommandCheckOffer for an offer timeout (ReasonOfferTimeout)
	// may wait for other checks, so that the checks of a steady trickle of offers share one
	// query instead of one each. Other checks (ReasonPSRDeleted), look-ups of unknown
	// insert outcomes and a full batch go at once and take the waiting checks along.
	// Default DefaultCheckWait; negative: no wait.
	CheckWait time.Duration
}

// UseOrg fills Channels, Queues and Entities from the org's metadata (ReadOrg), keeping
// entries already set.
func (o *WriterOptions) UseOrg(org mapping.Org) {
	if o.Channels == nil {
		o.Channels = map[string]string{}
	}
	if o.Queues == nil {
		o.Queues = map[string]string{}
	}
	if o.Entities == nil {
		o.Entities = map[string]string{}
	}
	for _, c := range org.Channels {
		setDefault(o.Channels, c.DeveloperName, c.ID)
		setDefault(o.Entities, c.DeveloperName, c.RelatedEntity)
	}
	for _, q := range org.Queues {
		setDefault(o.Queues, q.DeveloperName, q.ID)
		setDefault(o.Queues, q.ID, q.ID)
	}
}

func setDefault(m map[string]string, k, v string) {
	if _, ok := m[k]; !ok && k != "" && v != "" {
		m[k] = v
	}
}

// WriteResult answers one command.
type WriteResult struct {
	// Command is the command this answers.
	Command routing.Command
	// AgentWorkID is the AgentWork created, or found by a look-up, when there is one.
	AgentWorkID string
	// Event is what the engine must hear, if anything: EventOfferDeclined with
	// OutcomeInsertFailed for a refused insert, or the outcome a look-up found.
	Event *routing.Event
	// After is a second event to apply after Event: a look-up that finds the AgentWork
	// already Closed or Transferred reports it accepted (Event), then closed or transferred.
	After *routing.Event
	// Sent is when the first request carrying the command left (zero if none did).
	Sent time.Time
	// Err says why the command was not carried out when no Event says it: a requeue that
	// failed, a check that could not be made (the engine repeats it), a bad command.
	Err error

	// ready is when the command could first have been sent: when Do queued it, or, if all
	// MaxInFlight slots then held a call, when one of them ended. Sent minus ready is what the
	// writer itself added.
	ready time.Time
}

// ErrInvalidCommand is the error of a command the writer cannot send: a malformed id, or a
// service channel it has no Id for.
var ErrInvalidCommand = errors.New("malformed id or unknown service channel")

// Writer carries out the engine's Salesforce writes: CommandOffer (AgentWork insert),
// CommandCheckOffer (look-up), CommandRequeue (move work to a queue). It answers only through
// Report. Do is safe to call from any goroutine, before or while Run runs.
type Writer struct {
	o   WriterOptions
	log *slog.Logger
	m   *writerMetrics

	wakeInsert chan struct{}
	wakeSide   chan struct{}
	started    atomic.Bool
	budgetMu   sync.Mutex  // held by a budget switch
	over       atomic.Bool // set under budgetMu, read without it
	// budgetSwitching, nil but in tests, is called with the new mode between a switch's
	// decision and its gauge and log.
	budgetSwitching func(over bool)

	mu          sync.Mutex
	offers      []*offer // ready to insert, oldest first
	verify      []*offer // outcome unknown: look up before anything else
	checks      []routing.Command
	checksDue   time.Time // when the queued checks must go (the earliest of theirs)
	requeues    []routing.Command
	held        map[string]*offer // the offer held for each PSR and user: checks on it wait
	inFlight    int               // insert calls sent and not settled (settled)
	lastCallEnd time.Time
}

// offer is a CommandOffer the writer holds until it is answered.
type offer struct {
	cmd      routing.Command
	queued   time.Time // Do
	ready    time.Time
	sent     time.Time // first request
	attempts int       // inserts sent
	// unknown: an insert's outcome was unknown (so a refusal is looked up once more);
	// final: that last look-up is under way.
	unknown, final bool
	// twins are offers of the same PSR to the same user that came while this one was held:
	// the same attempt, answered with this one's result, never a second insert.
	twins []routing.Command
}

// NewWriter checks o and builds a Writer. It makes no request.
func NewWriter(o WriterOptions) (*Writer, error) {
	var errs []error
	if o.Client == nil {
		errs = append(errs, errors.New("a salesforce client is required"))
	}
	if len(o.Channels) == 0 {
		errs = append(errs, errors.New("the service channel ids are required"))
	}
	if o.Report == nil {
		errs = append(errs, errors.New("a Report function is required"))
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = salesforce.CollectionBatchSize
	}
	if o.MaxBatch < 1 || o.MaxBatch > salesforce.CollectionBatchSize {
		errs = append(errs, fmt.Errorf("MaxBatch %d: want 1 to %d", o.MaxBatch, salesforce.CollectionBatchSize))
	}
	if o.APIBudgetShare == 0 {
		o.APIBudgetShare = DefaultAPIBudgetShare
	}
	if o.APIBudgetShare <= 0 || o.APIBudgetShare > 1 {
		errs = append(errs, fmt.Errorf("APIBudgetShare %g: want a share in (0, 1]", o.APIBudgetShare))
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxInFlight < 1 || o.MaxInFlight > MaxMaxInFlight {
		errs = append(errs, fmt.Errorf("MaxInFlight %d: want 1 to %d", o.MaxInFlight, MaxMaxInFlight))
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("MaxAttempts %d: want at least 1", o.MaxAttempts))
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.CheckWait == 0 {
		o.CheckWait = DefaultCheckWait
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configure the agentwork writer: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newWriterMetrics(o.Registerer, o.APIBudgetShare)
	if err != nil {
		return nil, err
	}
	return &Writer{
		o: o, log: o.Logger.With("component", "writer"), m: m,
		wakeInsert: make(chan struct{}, 1), wakeSide: make(chan struct{}, 1),
		held: map[string]*offer{},
	}, nil
}

// OverBudget reports whether the org's API usage, as the last response said, is above
// APIBudgetShare of its daily allocation. Other parts of the daemon that make calls of their
// own (periodic checks, presence reads) should put them off while it is true.
func (w *Writer) OverBudget() bool { return w.over.Load() }

// Do queues cmd. It never blocks on I/O and never calls Report. Commands other than
// CommandOffer, CommandCheckOffer and CommandRequeue are not the writer's: they are ignored.
func (w *Writer) Do(cmd routing.Command) {
	now := time.Now()
	wake := w.wakeSide
	w.mu.Lock()
	switch cmd.Type {
	case routing.CommandOffer:
		k := offerKey(cmd.PSR, cmd.AgentID)
		if o := w.held[k]; o != nil {
			o.twins = append(o.twins, cmd)
			w.mu.Unlock()
			return
		}
		o := &offer{cmd: cmd, queued: now}
		w.offers = append(w.offers, o)
		w.held[k] = o
		wake = w.wakeInsert
	case routing.CommandCheckOffer:
		due := now
		if cmd.Reason == routing.ReasonOfferTimeout {
			due = now.Add(max(w.o.CheckWait, 0))
		}
		if len(w.checks) == 0 || due.Before(w.checksDue) {
			w.checksDue = due
		}
		w.checks = append(w.checks, cmd)
	case routing.CommandRequeue:
		w.requeues = append(w.requeues, cmd)
	default:
		w.mu.Unlock()
		w.log.Debug("not a salesforce write; ignored", "command", cmd.Type)
		return
	}
	w.gaugesLocked()
	w.mu.Unlock()
	signal(wake)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func offerKey(psr, user string) string { return psr + "/" + user }

// Run carries out the queued commands until ctx is done. Then it starts nothing new, lets the
// calls in flight finish and reports their results within DrainTimeout, and returns nil.
// Commands it never sent are dropped (logged, writer_offers_total{outcome="abandoned"}):
// Salesforce still holds their PSRs, and the next start's reconcile routes them.
func (w *Writer) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("agentwork writer: Run called twice")
	}
	// Calls are not cancelled with ctx (a cancelled insert is an unknown outcome), only when
	// the drain time is over.
	callCtx, cancelCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCalls()
	var wg sync.WaitGroup
	wg.Go(func() { w.insertLoop(ctx, callCtx) })
	wg.Go(func() { w.sideLoop(ctx, callCtx) })
	<-ctx.Done()
	stop := time.AfterFunc(w.o.DrainTimeout, cancelCalls)
	wg.Wait()
	stop.Stop()
	w.abandon()
	return nil
}

// abandon drops what was never carried out, at shutdown.
func (w *Writer) abandon() {
	w.mu.Lock()
	offers, verify, checks, requeues := len(w.offers), len(w.verify), len(w.checks), len(w.requeues)
	for _, o := range slices.Concat(w.offers, w.verify) {
		offers += len(o.twins) // answered with o: dropped with it
	}
	w.offers, w.verify, w.checks, w.requeues = nil, nil, nil, nil
	w.gaugesLocked()
	w.mu.Unlock()
	w.m.offers.WithLabelValues("abandoned").Add(float64(offers + verify))
	if offers+verify+checks+requeues > 0 {
		w.log.Info("writer stopped with commands not carried out; the next reconcile reads them from Salesforce",
			"offers", offers, "offers_unknown", verify, "checks", checks, "requeues", requeues)
	}
}

// insertLoop sends the queued offers, at most MaxInFlight calls at a time, each from a
// goroutine of its own. A call holds its slot until its answer is read; it then reports its
// results while the slot serves the next call. At most 2×MaxInFlight calls are under way
// (sent or reporting), so a router slow to take results holds the writer back. It returns
// once every call it started is reported.
func (w *Writer) insertLoop(ctx, callCtx context.Context) {
	var calls sync.WaitGroup
	defer calls.Wait()
	slots := make(chan struct{}, w.o.MaxInFlight)
	held := make(chan struct{}, 2*w.o.MaxInFlight)
	for {
		select {
		case held <- struct{}{}:
		case <-ctx.Done():
			return
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		batch := w.nextBatch(ctx, callCtx)
		if batch == nil {
			return
		}
		calls.Go(func() {
			w.insert(callCtx, batch, func() { <-slots })
			<-held
		})
	}
}

// nextBatch waits for offers to send and takes them (the call is then counted in flight). Offers
// that cannot be sent are refused on the way. It returns nil once ctx is done.
func (w *Writer) nextBatch(ctx, callCtx context.Context) []*offer {
	for ctx.Err() == nil {
		batch, bad := w.takeOffers()
		for _, o := range bad {
			w.refuse(callCtx, o, "invalid_command", fmt.Errorf("offer of %q to %q on channel %q: %w", o.cmd.WorkID, o.cmd.AgentID, o.cmd.Channel, ErrInvalidCommand))
		}
		if len(batch) > 0 {
			return batch
		}
		if len(bad) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-w.wakeInsert:
		}
	}
	return nil
}

// takeOffers takes up to MaxBatch queued offers for one call, counted in flight, and the
// offers that cannot be sent at all.
func (w *Writer) takeOffers() (batch, bad []*offer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for n < len(w.offers) && len(batch) < w.o.MaxBatch {
		o := w.offers[n]
		n++
		if !w.valid(o.cmd) {
			bad = append(bad, o)
			continue
		}
		if o.ready.IsZero() {
			o.ready = o.queued
			if w.lastCallEnd.After(o.ready) {
				o.ready = w.lastCallEnd
			}
		}
		batch = append(batch, o)
	}
	w.offers = slices.Delete(w.offers, 0, n)
	if len(batch) > 0 {
		w.inFlight++
	}
	w.gaugesLocked()
	if w.inFlight == 0 {
		signal(w.wakeSide) // checks and requeues may wait for an idle insert side
	}
	return batch, bad
}

// valid says whether an offer can be sent: ids well formed, channel known.
func (w *Writer) valid(c routing.Command) bool {
	_, ok := w.o.Channels[c.Channel]
	return ok && salesforceID(c.PSR) && salesforceID(c.WorkID) && salesforceID(c.AgentID)
}

// insert sends one insert call for batch, calls free once the answer is read, and settles
// every offer in it; then the call no longer counts in flight (takeOffers counted it).
func (w *Writer) insert(ctx context.Context, batch []*offer, free func()) {
	sent := time.Now()
	for _, o := range batch {
		if o.sent.IsZero() {
			o.sent = sent
		}
		o.attempts++
	}
	w.m.batchSize.Observe(float64(len(batch)))
	var (
		results []salesforce.SaveResult
		err     error
	)
	if len(batch) == 1 {
		var id string
		id, err = w.o.Client.Create(ctx, "AgentWork", w.agentWork(batch[0].cmd))
		results = []salesforce.SaveResult{{ID: id, Success: true}}
	} else {
		records := make([]salesforce.Record, len(batch))
		for i, o := range batch {
			aw := w.agentWork(o.cmd)
			fields := map[string]any{
				"ServiceChannelId": aw.ServiceChannelID, "WorkItemId": aw.WorkItemID,
				"UserId": aw.UserID, "PendingServiceRoutingId": aw.PendingServiceRoutingID,
			}
			if aw.CapacityWeight != nil {
				fields["CapacityWeight"] = *aw.CapacityWeight
			}
			records[i] = salesforce.Record{Type: "AgentWork", Fields: fields}
		}
		results, err = w.o.Client.CreateCollection(ctx, records, false)
	}
	end := time.Now()
	w.m.insertDuration.Observe(end.Sub(sent).Seconds())
	w.mu.Lock()
	w.lastCallEnd = end
	w.mu.Unlock()
	free()
	defer w.settled()
	w.checkBudget()

	if err != nil {
		class, code := classify(err)
		w.m.errors.WithLabelValues("insert", code).Inc()
		w.log.Warn("agentwork insert call failed", "records", len(batch), "class", class, "code", code, "err", err)
		var look []*offer
		for _, o := range batch {
			look = w.settle(ctx, o, class, code, err, look)
		}
		w.toVerify(look...)
		return
	}
	var look []*offer
	for i, o := range batch {
		r := results[i]
		if r.Success {
			w.created(ctx, o, r.ID, salesforce.AgentWorkAssigned, "created")
			continue
		}
		rerr := r.Err()
		class, code := classify(rerr)
		w.m.errors.WithLabelValues("insert", code).Inc()
		look = w.settle(ctx, o, class, code, rerr, look)
	}
	w.toVerify(look...)
}

// settled counts an insert call out once each of its offers is reported, queued again or
// queued for a look-up: until then the call's offers are still inserts to make, and over
// budget the checks and requeues wait for them (takeSide).
func (w *Writer) settled() {
	w.mu.Lock()
	w.inFlight--
	if w.inFlight == 0 && len(w.offers) == 0 {
		signal(w.wakeSide)
	}
	w.mu.Unlock()
}

// agentWork is the insert body of an offer: the engine's weight (taken from the PSR), the
// channel's Id, the work item, the user and the PSR.
func (w *Writer) agentWork(c routing.Command) salesforce.NewAgentWork {
	aw := salesforce.NewAgentWork{
		ServiceChannelID: w.o.Channels[c.Channel], WorkItemID: c.WorkID, UserID: c.AgentID,
		PendingServiceRoutingID: c.PSR,
	}
	if c.Weight > 0 {
		wt := float64(c.Weight)
		aw.CapacityWeight = &wt
	}
	return aw
}

// Outcome classes of a failed request.
const (
	classRefused = "refused" // Salesforce said no: certainly not applied, sending again will not help
	classRetry   = "retry"   // certainly not applied, may work later (503, 429, a lock, no token)
	classUnknown = "unknown" // may have been applied: look it up before anything else
)

// classify says what a failed insert means, and its error code for the metric label.
func classify(err error) (class, code string) {
	var ae *salesforce.APIError
	if errors.As(err, &ae) {
		code = errorCode(ae.Code)
		switch {
		case ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusTooManyRequests ||
			ae.Code == salesforce.CodeUnableToLockRow || (ae.Code == salesforce.CodeRequestLimitExceeded && ae.Retryable):
			return classRetry, code
		case ae.Status < 500: // 4xx, or 200: a record of a collection
			return classRefused, code
		}
		return classUnknown, code
	}
	var te *salesforce.TokenError
	if errors.As(err, &te) {
		return classRetry, "token"
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return classUnknown, "canceled"
	}
	return classUnknown, "network"
}

// errorCodes are the Salesforce error codes counted by name; any other is "other", so the
// label stays bounded.
var errorCodes = []string{
	"FIELD_INTEGRITY_EXCEPTION", "INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED",
	"REQUIRED_FIELD_MISSING", "INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INACTIVE_OWNER_OR_USER",
	"MALFORMED_ID", "DUPLICATE_VALUE", "INSUFFICIENT_ACCESS_OR_READONLY",
	"INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "JSON_PARSER_ERROR", "NOT_FOUND",
	salesforce.CodeRequestLimitExceeded, salesforce.CodeUnableToLockRow, "UNKNOWN_EXCEPTION",
	"SERVER_UNAVAILABLE",
}

// httpCodes are the codes the client makes of an HTTP status when the body named none
// (BAD_GATEWAY, GATEWAY_TIMEOUT, ...): bounded too.
var httpCodes = func() map[string]bool {
	m := map[string]bool{}
	for s := 100; s < 600; s++ {
		if t := http.StatusText(s); t != "" {
			m[strings.ToUpper(strings.ReplaceAll(t, " ", "_"))] = true
		}
	}
	return m
}()

func errorCode(c string) string {
	if slices.Contains(errorCodes, c) || httpCodes[c] {
		return c
	}
	return "other"
}

// settle decides what happens to an offer whose insert failed; offers to look up are
// appended to look, so that one look-up serves a whole call.
func (w *Writer) settle(ctx context.Context, o *offer, class, code string, err error, look []*offer) []*offer {
	switch {
	case class == classUnknown:
		o.unknown = true
		return append(look, o)
	case class == classRefused && o.unknown && !o.final:
		// A refusal after an unknown outcome may be our own first insert, applied late:
		// look once more.
		o.final = true
		return append(look, o)
	case class == classRetry && o.attempts < w.o.MaxAttempts:
		w.requeueOffer(o)
	default:
		w.refuse(ctx, o, code, err)
	}
	return look
}

func (w *Writer) toVerify(os ...*offer) {
	if len(os) == 0 {
		return
	}
	w.mu.Lock()
	w.verify = append(w.verify, os...)
	w.gaugesLocked()
	w.mu.Unlock()
	signal(w.wakeSide)
}

// requeueOffer puts an offer back at the head of the insert queue.
func (w *Writer) requeueOffer(o *offer) {
	w.mu.Lock()
	w.offers = slices.Insert(w.offers, 0, o)
	w.gaugesLocked()
	w.mu.Unlock()
	signal(w.wakeInsert)
}

// created reports an offer's AgentWork: inserted, or found by a look-up in status.
func (w *Writer) created(ctx context.Context, o *offer, id, status, outcome string) {
	w.release(o)
	cmds := o.commands()
	w.m.offers.WithLabelValues(outcome).Add(float64(len(cmds)))
	for _, c := range cmds {
		ev, after := lookedUp(c, status)
		w.report(ctx, WriteResult{Command: c, AgentWorkID: id, Event: ev, After: after, Sent: o.sent, ready: o.ready})
	}
}

// refuse reports an offer Salesforce did not take: the engine offers the work to someone else.
func (w *Writer) refuse(ctx context.Context, o *offer, code string, err error) {
	w.release(o)
	cmds := o.commands()
	w.m.offers.WithLabelValues("refused").Add(float64(len(cmds)))
	if code == "invalid_command" {
		w.m.errors.WithLabelValues("insert", code).Inc()
	}
	w.log.Info("agentwork insert refused; the engine offers the work to someone else",
		"work", o.cmd.WorkID, "psr", o.cmd.PSR, "agent", o.cmd.AgentID, "code", code, "err", err)
	for _, c := range cmds {
		ev := routing.Event{Type: routing.EventOfferDeclined, WorkID: c.WorkID, AgentID: c.AgentID, Outcome: routing.OutcomeInsertFailed}
		w.report(ctx, WriteResult{Command: c, Event: &ev, Sent: o.sent, ready: o.ready})
	}
}

// release forgets an answered offer: an offer of its PSR and user that comes next is a new
// attempt. No twin joins the offer after it.
func (w *Writer) release(o *offer) {
	k := offerKey(o.cmd.PSR, o.cmd.AgentID)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held[k] == o {
		delete(w.held, k)
	}
}

// commands are the offer's command and its twins', each answered with the offer's result.
func (o *offer) commands() []routing.Command {
	return append([]routing.Command{o.cmd}, o.twins...)
}

func (w *Writer) report(ctx context.Context, r WriteResult) {
	if err := w.o.Report(ctx, r); err != nil {
		w.log.Warn("write result not reported", "command", r.Command.Type, "work", r.Command.WorkID, "err", err)
	}
}

// lookedUp is what an AgentWork status found for an offer tells the engine (docs/routing.md):
// Assigned nothing (the offer stands), Opened accepted, Closed and Transferred accepted then
// that, Declined and Canceled declined, DeclinedOnPushTimeout, Unavailable.
func lookedUp(c routing.Command, status string) (ev, after *routing.Event) {
	// Events are made only where one is returned: an Assigned insert, the common case, makes
	// none.
	event := func(t routing.EventType) *routing.Event {
		return &routing.Event{Type: t, WorkID: c.WorkID, AgentID: c.AgentID}
	}
	switch status {
	case salesforce.AgentWorkAssigned:
		return nil, nil
	case salesforce.AgentWorkOpened:
		return event(routing.EventOfferAccepted), nil
	case salesforce.AgentWorkClosed:
		return event(routing.EventOfferAccepted), event(routing.EventWorkClosed)
	case salesforce.AgentWorkTransferred:
		return event(routing.EventOfferAccepted), event(routing.EventWorkTransferred)
	}
	declined := event(routing.EventOfferDeclined)
	declined.Outcome = outcomes[status]
	return declined, nil
}

// sideLoop makes the look-ups (unknown outcomes first, then checks) and the requeues.
func (w *Writer) sideLoop(ctx, callCtx context.Context) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = 250*time.Millisecond, 30*time.Second, 0
	for ctx.Err() == nil {
		verify, checks, requeues, wait := w.takeSide(time.Now())
		var failed bool
		switch {
		case len(verify)+len(checks) > 0:
			failed = !w.lookup(callCtx, verify, checks)
		case len(requeues) > 0:
			w.requeue(callCtx, requeues)
		default:
			var due <-chan time.Time
			t := time.NewTimer(wait)
			if wait > 0 {
				due = t.C
			}
			select {
			case <-ctx.Done():
			case <-w.wakeSide:
			case <-due:
			}
			t.Stop()
			continue
		}
		if !failed {
			bo.Reset()
			continue
		}
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// takeSide takes the next side job at now. Over budget, checks and requeues wait while
// inserts are queued or in flight: the remaining calls go to routing first. Checks not due
// yet (CheckWait) stay queued unless a look-up goes anyway or they fill one; wait is then how
// long until they are due.
func (w *Writer) takeSide(now time.Time) (verify []*offer, checks, requeues []routing.Command, wait time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.gaugesLocked()
	n := min(len(w.verify), lookupBatch)
	verify = slices.Clone(w.verify[:n])
	w.verify = slices.Delete(w.verify, 0, n)
	if w.over.Load() && (w.inFlight > 0 || len(w.offers) > 0) {
		return verify, nil, nil, 0
	}
	if len(w.checks) > 0 && len(verify) == 0 && len(w.checks) < lookupBatch && now.Before(w.checksDue) {
		wait = w.checksDue.Sub(now)
	} else {
		n = min(len(w.checks), lookupBatch-len(verify))
		checks = slices.Clone(w.checks[:n])
		w.checks = slices.Delete(w.checks, 0, n)
	}
	if len(verify)+len(checks) > 0 {
		return verify, checks, nil, 0
	}
	n = min(len(w.requeues), w.o.MaxBatch)
	requeues = slices.Clone(w.requeues[:n])
	w.requeues = slices.Delete(w.requeues, 0, n)
	return nil, nil, requeues, wait
}

// lookup reads, in one query, the AgentWork of the offers whose insert outcome is unknown and
// of the checks, and answers each. It reports false when the query failed: the offers are
// queued again for a later look-up (never inserted blindly), the checks answered with the
// error (the engine repeats them).
func (w *Writer) lookup(ctx context.Context, verify []*offer, checks []routing.Command) bool {
	// A check on an offer the writer still holds is answered by that offer's own result; a
	// check with a malformed id cannot be made.
	var ask []routing.Command
	for _, c := range checks {
		w.mu.Lock()
		held := w.held[offerKey(c.PSR, c.AgentID)] != nil
		w.mu.Unlock()
		switch {
		case held:
			w.m.checks.WithLabelValues("held").Inc()
			w.report(ctx, WriteResult{Command: c})
		case !salesforceID(c.PSR) || !salesforceID(c.WorkID) || !salesforceID(c.AgentID):
			w.m.checks.WithLabelValues("failed").Inc()
			w.m.errors.WithLabelValues("check", "invalid_command").Inc()
			w.report(ctx, WriteResult{Command: c, Err: fmt.Errorf("check offer: malformed id in %q, %q, %q", c.PSR, c.WorkID, c.AgentID)})
		default:
			ask = append(ask, c)
		}
	}
	checks = ask
	if len(verify)+len(checks) == 0 {
		return true
	}

	var psrs, works []string
	for _, o := range verify {
		psrs, works = append(psrs, o.cmd.PSR), append(works, o.cmd.WorkID)
	}
	for _, c := range checks {
		psrs, works = append(psrs, c.PSR), append(works, c.WorkID)
	}
	rows, err := w.queryAgentWork(ctx, psrs, works)
	w.checkBudget()
	if err != nil {
		_, code := classify(err)
		w.log.Warn("agentwork look-up failed; retrying", "offers", len(verify), "checks", len(checks), "err", err)
		if len(verify) > 0 {
			w.m.errors.WithLabelValues("lookup", code).Inc()
		}
		w.mu.Lock()
		w.verify = append(verify, w.verify...)
		w.gaugesLocked()
		w.mu.Unlock()
		for _, c := range checks {
			w.m.errors.WithLabelValues("check", code).Inc()
			w.m.checks.WithLabelValues("failed").Inc()
			w.report(ctx, WriteResult{Command: c, Err: fmt.Errorf("check offer: %w", err)})
		}
		return false
	}

	for _, o := range verify {
		aw, ok := latest(rows, o.cmd, o.sent.Add(-lookupSkew))
		switch {
		case ok:
			w.log.Info("agentwork insert of unknown outcome found by look-up", "work", o.cmd.WorkID, "agentwork", aw.ID, "status", aw.Status)
			w.created(ctx, o, aw.ID, aw.Status, "found")
		case o.final || o.attempts >= w.o.MaxAttempts:
			w.refuse(ctx, o, "not_found", errors.New("agentwork insert not applied"))
		default:
			w.requeueOffer(o) // certainly absent: insert again
		}
	}
	for _, c := range checks {
		aw, ok := latest(rows, c, time.Time{})
		r := WriteResult{Command: c}
		result := "absent"
		if ok {
			r.AgentWorkID = aw.ID
			r.Event, r.After = lookedUp(c, aw.Status)
			result = checkResult(aw.Status)
		} else {
			ev := routing.Event{Type: routing.EventOfferDeclined, WorkID: c.WorkID, AgentID: c.AgentID, Outcome: routing.OutcomeInsertFailed}
			r.Event = &ev
		}
		w.m.checks.WithLabelValues(result).Inc()
		w.report(ctx, r)
	}
	return true
}

// checkResults are the writer_checks_total labels.
var checkResults = []string{"assigned", "accepted", "declined", "push_timeout", "unavailable", "closed", "absent", "held", "failed"}

func checkResult(status string) string {
	switch status {
	case salesforce.AgentWorkAssigned:
		return "assigned"
	case salesforce.AgentWorkOpened:
		return "accepted"
	case salesforce.AgentWorkDeclined, salesforce.AgentWorkCanceled:
		return "declined"
	case salesforce.AgentWorkDeclinedOnPushTimeout:
		return "push_timeout"
	case salesforce.AgentWorkUnavailable:
		return "unavailable"
	}
	return "closed"
}

// queryAgentWork reads the AgentWork of the PSRs, and of the work items (an AgentWork whose
// PSR was deleted may have lost the reference in a real org; the emulator keeps it).
func (w *Writer) queryAgentWork(ctx context.Context, psrs, works []string) ([]salesforce.AgentWork, error) {
	q := "SELECT Id, Status, UserId, WorkItemId, PendingServiceRoutingId, CreatedDate FROM AgentWork" +
		" WHERE PendingServiceRoutingId IN (" + quoteIDs(psrs) + ") OR WorkItemId IN (" + quoteIDs(works) + ")"
	var rows []salesforce.AgentWork
	for aw, err := range salesforce.QueryAs[salesforce.AgentWork](ctx, w.o.Client, q) {
		if err != nil {
			return nil, err
		}
		rows = append(rows, aw)
	}
	return rows, nil
}

// quoteIDs writes ids (checked by salesforceID) as a SOQL IN list.
func quoteIDs(ids []string) string {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	return "'" + strings.Join(ids, "', '") + "'"
}

// sameID compares Salesforce ids, a 15-character id matching its 18-character form.
func sameID(a, b string) bool {
	if len(a) == len(b) {
		return a == b
	}
	return len(a) >= 15 && len(b) >= 15 && a[:15] == b[:15]
}

// latest is the newest AgentWork of c's PSR (or of its work item, with no PSR left) and user.
// An open one (Assigned, Opened) always counts; an ended one only if created at or after
// since.
func latest(rows []salesforce.AgentWork, c routing.Command, since time.Time) (salesforce.AgentWork, bool) {
	var best salesforce.AgentWork
	found := false
	for _, aw := range rows {
		if !sameID(aw.UserID, c.AgentID) {
			continue
		}
		if !sameID(aw.PendingServiceRoutingID, c.PSR) && (aw.PendingServiceRoutingID != "" || !sameID(aw.WorkItemID, c.WorkID)) {
			continue
		}
		open := aw.Status == salesforce.AgentWorkAssigned || aw.Status == salesforce.AgentWorkOpened
		if !open && aw.CreatedDate.Before(since) {
			continue
		}
		if !found || cmp.Or(aw.CreatedDate.Compare(best.CreatedDate.Time), strings.Compare(aw.ID, best.ID)) > 0 {
			best, found = aw, true
		}
	}
	return best, found
}

// requeue moves work items to their queues: OwnerId becomes the queue, so Salesforce creates a
// new PSR (docs/routing.md, CommandRequeue).
func (w *Writer) requeue(ctx context.Context, cmds []routing.Command) {
	var (
		ok      []routing.Command
		records []salesforce.Record
	)
	for _, c := range cmds {
		rec, err := w.requeueRecord(c)
		if err != nil {
			w.m.requeues.WithLabelValues("failed").Inc()
			w.m.errors.WithLabelValues("requeue", "invalid_command").Inc()
			w.log.Error("requeue refused before sending", "work", c.WorkID, "err", err)
			w.report(ctx, WriteResult{Command: c, Err: err})
			continue
		}
		ok, records = append(ok, c), append(records, rec)
	}
	if len(records) == 0 {
		return
	}
	sent := time.Now()
	errs := make([]error, len(records))
	if len(records) == 1 {
		errs[0] = w.o.Client.Update(ctx, records[0].Type, records[0].ID, records[0].Fields)
	} else {
		results, err := w.o.Client.UpdateCollection(ctx, records, false)
		for i := range errs {
			switch {
			case err != nil:
				errs[i] = err
			default:
				errs[i] = results[i].Err()
			}
		}
	}
	w.checkBudget()
	for i, c := range ok {
		r := WriteResult{Command: c, Sent: sent}
		if err := errs[i]; err != nil {
			_, code := classify(err)
			w.m.errors.WithLabelValues("requeue", code).Inc()
			w.m.requeues.WithLabelValues("failed").Inc()
			w.log.Error("requeue failed: the work item stays where it is", "work", c.WorkID, "queue", c.TargetID, "err", err)
			r.Err = fmt.Errorf("requeue %s to %s: %w", c.WorkID, c.TargetID, err)
		} else {
			w.m.requeues.WithLabelValues("moved").Inc()
		}
		w.report(ctx, r)
	}
}

// workItemTypes are the work item sObjects by key prefix, for a channel without an entity.
var workItemTypes = map[string]string{"500": "Case", "570": "LiveChatTranscript", "0Mw": "MessagingSession", "0LQ": "VoiceCall"}

func (w *Writer) requeueRecord(c routing.Command) (salesforce.Record, error) {
	if !salesforceID(c.WorkID) {
		return salesforce.Record{}, fmt.Errorf("requeue: malformed work item id %q", c.WorkID)
	}
	queue, ok := w.o.Queues[c.TargetID]
	if !ok && salesforceID(c.TargetID) && strings.HasPrefix(c.TargetID, "00G") {
		queue, ok = c.TargetID, true
	}
	if !ok {
		return salesforce.Record{}, fmt.Errorf("requeue %s: unknown queue %q", c.WorkID, c.TargetID)
	}
	typ := w.o.Entities[c.Channel]
	if typ == "" {
		typ = workItemTypes[c.WorkID[:3]]
	}
	if typ == "" {
		return salesforce.Record{}, fmt.Errorf("requeue %s: unknown work item type (channel %q)", c.WorkID, c.Channel)
	}
	return salesforce.Record{Type: typ, ID: c.WorkID, Fields: map[string]any{"OwnerId": queue}}, nil
}

// checkBudget reads the API usage the last response reported and switches the budget mode.
func (w *Writer) checkBudget() {
	u := w.o.Client.APIUsage()
	if !u.Seen || u.Max <= 0 {
		return
	}
	w.switchBudget(u)
}

// switchBudget switches the budget mode to what u says. The switch (the flag, the gauge and
// the log) is one step under budgetMu: two calls ending together may switch it in opposite
// directions, and the gauge and the log must end as the flag does.
func (w *Writer) switchBudget(u salesforce.APIUsage) {
	over := float64(u.Used) >= w.o.APIBudgetShare*float64(u.Max)
	w.budgetMu.Lock()
	defer w.budgetMu.Unlock()
	if w.over.Load() == over {
		return
	}
	w.over.Store(over)
	if w.budgetSwitching != nil {
		w.budgetSwitching(over)
	}
	if over {
		w.m.budgetExceeded.Set(1)
		w.log.Warn("API usage above the budget share: AgentWork inserts go before checks and requeues; other calls should wait",
			"used", u.Used, "max", u.Max, "share", w.o.APIBudgetShare)
		return
	}
	w.m.budgetExceeded.Set(0)
	w.log.Info("API usage back below the budget share", "used", u.Used, "max", u.Max, "share", w.o.APIBudgetShare)
}

// gaugesLocked sets the queue gauges; w.mu is held.
func (w *Writer) gaugesLocked() {
	w.m.queued.WithLabelValues("offer").Set(float64(len(w.offers)))
	w.m.queued.WithLabelValues("lookup").Set(float64(len(w.verify)))
	w.m.queued.WithLabelValues("check").Set(float64(len(w.checks)))
	w.m.queued.WithLabelValues("requeue").Set(float64(len(w.requeues)))
}

// writerMetrics are the writer's metrics.
type writerMetrics struct {
	offers         *prometheus.CounterVec
	errors         *prometheus.CounterVec
	checks         *prometheus.CounterVec
	requeues       *prometheus.CounterVec
	batchSize      prometheus.Histogram
	insertDuration prometheus.Histogram
	queued         *prometheus.GaugeVec
	budgetExceeded prometheus.Gauge
}

func newWriterMetrics(reg prometheus.Registerer, share float64) (m *writerMetrics, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("register agentwork writer metrics: %v", r)
		}
	}()
	f := promauto.With(reg)
	m = &writerMetrics{
		offers: f.NewCounterVec(prometheus.CounterOpts{
			Name: "writer_offers_total",
			Help: "AgentWork offers answered, by outcome: created (inserted), found (outcome unknown, then found by look-up), refused (reported as an insert failure), abandoned (never sent before shutdown). A repeat of an offer still held is answered with it and counted with it.",
		}, []string{"outcome"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "writer_errors_total",
			Help: "Failed writer calls and records, by operation (insert, lookup, check, requeue) and Salesforce error code (an HTTP status name such as BAD_GATEWAY when the body had none; network, canceled, token, invalid_command; other).",
		}, []string{"op", "code"}),
		checks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "writer_checks_total",
			Help: "Offer checks answered, by what the look-up found (held: the offer was still in the writer, failed: the look-up failed).",
		}, []string{"result"}),
		requeues: f.NewCounterVec(prometheus.CounterOpts{
			Name: "writer_requeues_total", Help: "Work items moved to a queue, by result (moved, failed).",
		}, []string{"result"}),
		batchSize: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "writer_insert_batch_size",
			Help:    "AgentWork records per insert call (1: POST /sobjects/AgentWork, more: sObject Collections).",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200},
		}),
		insertDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "writer_insert_duration_seconds",
			Help:    "Latency of AgentWork insert calls, the client's retries included.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		queued: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "writer_queued", Help: "Commands waiting in the writer, by kind (offer, lookup, check, requeue).",
		}, []string{"kind"}),
		budgetExceeded: f.NewGauge(prometheus.GaugeOpts{
			Name: "writer_api_budget_exceeded",
			Help: "1 while the org's API usage (Sforce-Limit-Info; see salesforce_api_requests_used and _limit) is above the budget share, else 0.",
		}),
	}
	f.NewGauge(prometheus.GaugeOpts{
		Name: "writer_api_budget_share", Help: "The share of the daily API allocation above which the writer puts routing first.",
	}).Set(share)
	for _, o := range []string{"created", "found", "refused", "abandoned"} {
		m.offers.WithLabelValues(o)
	}
	for _, r := range checkResults {
		m.checks.WithLabelValues(r)
	}
	m.requeues.WithLabelValues("moved")
	m.requeues.WithLabelValues("failed")
	return m, nil
}
