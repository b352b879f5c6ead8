package routing

import (
	"math"
	"slices"
	"time"

	"github.com/omniroute/omniroute/mapping"
)

// Engine is the routing state machine. It holds agents, waiting work, open offers, interactions
// and sessions; Apply feeds it one event at a time and returns the commands that follow.
//
// The engine is not safe for concurrent use: the connector calls Apply, SetPlans and
// NextDeadline from one goroutine. The slice Apply and SetPlans return is reused by the next
// call; copy it to keep it. Time never runs backwards: a now earlier than the last one seen is
// treated as the last one.
//
// # Eligibility and choosing
//
// An agent is eligible for work when all of these hold:
//
//	routable state   the agent's chosen (or intended) state is Ready, they are not Busy Inbound,
//	                 and their last offer did not come back undeliverable (push timeout,
//	                 unavailable, insert refused) since their last presence or state event
//	presence         their presence status opens the work's service channel
//	capacity         total units, the class cap and the channel cap all have room for the weight
//	skills           every required (and, until dropped, additional) skill at its minimum level
//	not a decliner   they did not decline this work since it was last offered to someone else
//
// A preferred user, and the target of a transfer to an agent, need all of these but the skills
// (direct-to-agent routing ignores them); a required preferred user is also offered work they
// declined, since nobody else may take it, but only after the plan's preferred timeout, not at
// once in a loop. A preferred user the engine has no agent for is not made up as one: the work
// waits for them to appear (until the preferred timeout, unless required).
//
// Choosing an agent for waiting work (best first):
//
//  1. best skill fit: the highest sum of the agent's levels on the work's required skills;
//  2. longest idle: the earliest "idle since" (the later of the agent's last offer, the end of
//     their last interaction, or their becoming Ready);
//  3. least loaded: the fewest capacity units in use;
//  4. lowest Salesforce User Id.
//
// Choosing work for an agent who frees up: the best waiting item they are eligible for, by
// priority (lower first), then age (older RequestedAt first), then work id. Work with a preferred
// user waits for that user alone until the plan's preferred timeout (forever when required); a
// preferred user who is not required and declines is not waited for any longer
// (ReasonPreferredDeclined). A PSR update that keeps the same preferred user does not pin work
// that has already fallen back.
//
// # Timers
//
// Relaxation steps and the plan's additional-skill drop count from the work's age (RequestedAt),
// as does a PSR's own DropAdditionalSkillsTimeout. Overflow counts from when the work entered its
// current plan, so a chain of overflows waits each plan's wait in turn. Work with a non-required
// preferred user waits for that user for the plan's offer timeout (DefaultPreferredTimeout when
// the plan has none) from when it entered the plan. An open offer is re-checked every offer
// timeout; wrap-up ends after the plan's wrap-up timeout.
//
// # Sessions and post-call state
//
// Accepting work opens a session named after the work (or Work.Session); an elevation adds its
// voice call to the same session. A session ends when every interaction in it has ended,
// wrap-up included. If any of its plans requires a disposition and none is set by then, the
// agent is notified (ReasonDispositionRequired) and the session stays open until the agent sets
// one; the agent is not held back meanwhile. When an agent's last interaction ends, they enter
// the state they chose while working, or else the mapping's post-call state (Ready by default).
// Offers and waiting work never change an agent's state; Busy Inbound (work Salesforce routed
// itself) shows as Busy with minor state Inbound.
//
// # Decision table
//
// What each event does (after due timers fire, in deadline order):
//
//	event                  | work is ...            | effect                                  | commands
//	-----------------------+------------------------+-----------------------------------------+------------------------
//	work arrived/changed   | new or waiting         | plan by queue (an overflow or transfer  | offer | unroutable
//	                       |                        | plan is kept while the queue is the     |
//	                       |                        | same), bucket by plan and PSR skills;   |
//	                       |                        | offered to the best eligible agent      |
//	                       | unknown queue/channel  | parked, plan forgotten, reported once;  | unroutable
//	                       |                        | retried on SetPlans                     |
//	                       | awaiting its new PSR   | the PSR a transfer asked for: waits in  | offer(transfer) | -
//	                       | (after a transfer)     | the target plan / goes to the target    |
//	                       | offered                | a new PSR id updated only               | -
//	                       | any, PSR id deleted    | a replay: nothing (PSR ids are never    | ignored(psr_deleted)
//	                       | (seen in work removed) | reused; the last 4,096 are remembered)  |
//	                       | accepted, same PSR     | nothing (a late update)                 | -
//	                       | accepted, new PSR      | a transfer made in Salesforce: leaves   | ended(transferred),
//	                       |                        | its agent (wrap-up cut short), routed   | session_ended, set_state,
//	                       |                        | again; that agent skipped once          | offer
//	work removed (PSR del) | ev.PSR set, not the    | nothing: a replayed or late delete of   | ignored(psr_deleted)
//	                       | work's current PSR     | an earlier PSR of the work item         |
//	                       | waiting/parked/awaiting| forgotten                               | -
//	                       | offered                | offer kept, capacity held: an accept    | check_offer(psr_deleted)
//	                       |                        | deletes the PSR too; a later decline or |
//	                       |                        | cancel forgets the work                 | notify(work_withdrawn)
//	                       | accepted               | nothing (every accept deletes the PSR)  | -
//	offer accepted         | offered to that agent  | interaction starts, session opens       | set_state(Busy)
//	                       | auto-accepted          | confirmed                               | -
//	offer declined         | offered to that agent  | capacity freed, agent kept out of the   | offer (to another)
//	                       |                        | next offer, age kept, re-routed under   |
//	                       |                        | the current table; an overflow or       |
//	                       |                        | preferred timeout that fell due during  |
//	                       |                        | the offer applies at once; a required   |
//	                       |                        | preferred user is offered it again only |
//	                       |                        | after the plan's preferred timeout      |
//	  push timeout /       | offered (or, insert    | as declined, and the agent is not       | notify(undeliverable),
//	  unavailable /        | failed, auto-accepted  | routable until a presence or state      | offer (to another)
//	  insert failed        | not yet confirmed)     | event (auto-accept: interaction undone) |
//	offer timeout (timer)  | offered                | re-check only, never a second AgentWork | check_offer
//	relax/drop/overflow/   | waiting                | requirements or plan change, re-routed  | rerouted, offer
//	preferred timeout      |                        |                                         |
//	release / work closed  | active, that agent     | wrap-up (plan's timeout); capacity kept | wrap_up
//	work transferred (AW)  | active/wrap-up, agent  | leaves the agent, forgotten             | ended(transferred)
//	wrap-up end (timer)    | wrap-up                | capacity freed; post-call state when    | ended, session_ended,
//	                       |                        | the agent has nothing left (Busy        | set_state, offer
//	                       |                        | Inbound work included)                  |
//	abandon                | active or wrap-up      | capacity freed at once, no wrap-up      | ended(abandoned)
//	hold / retrieve        | active, live           | held flag                               | hold | retrieve
//	consult                | active                 | target agent must be Ready and present  | consult
//	                       |                        | on the channel; nothing released        |
//	transfer to agent/plan | active, live/non-live  | leaves agent; the connector requeues it | transfer, requeue(plan),
//	                       |                        | for a new PSR, which the engine awaits  | ended, ...
//	transfer to queue      | active, live/non-live  | leaves agent and the engine             | transfer, requeue, ended
//	elevate                | active, semi/non-live  | voice interaction in the same session;  | elevate (+ ended, offer)
//	                       |                        | freed units are filled at once          |
//	disposition            | session                | recorded; ends a waiting session        | session_ended
//	external work          | (Salesforce routed it) | agent Busy Inbound, nothing offered     | set_state(Busy/Inbound)
//	external work closed   | -                      | idle time restarts; post-call state if  | set_state, offer
//	                       |                        | an interaction ended meanwhile          |
//	agent state/presence/  | -                      | eligibility recomputed (an undeliverable| set_state, offer
//	skills                 |                        | hold ends); agent filled                |
//	reconcile              | any                    | see Snapshot: leaves / enters at once,  | ended(reconciled),
//	                       |                        | then every agent filled                 | set_state, offer
//
// Actions by interaction class (seeds 000/001; anything else is refused with
// ReasonNotAllowedForClass):
//
//	class      release hold/retrieve consult transfer abandon elevate end_wrap_up disposition
//	live          x         x           x       x                         x          x
//	semi-live     x                     x               x       x         x          x
//	non-live      x                     x       x       x       x         x          x
//
// # Indexes
//
// Waiting work sits in buckets, one per (requirement set, channel, class, weight), each a heap
// ordered by (priority, age, id) whose slots carry those keys, so sifting does not load the
// items. Each bucket also has a heap of the agents eligible for it, ordered by the choosing
// order above; an agent is a member of every bucket whose skills it holds. When its load,
// state or presence changes, its membership is re-keyed in O(log n) if it got better; if it
// got worse or the agent is no longer eligible, the heap acts on it only when the membership
// reaches the top (lazy re-keying, see agentHeap), so an offer does not sift the agent's other
// buckets. New work is one bucket lookup and a heap peek (plus the lazy work found at the top);
// a freed agent looks at the top of each of its buckets. Neither scans all agents or all work.
// Buckets of PSR skill requirements that emptied are dropped when the bucket count doubles (all
// empty ones on SetPlans), so the buckets, and each agent's memberships, do not pile up.
type Engine struct {
	plans *Table
	now   int64
	out   []Command

	agents    map[string]*agent
	agentList []*agent // creation order
	items     map[string]*item
	sessions  map[string]*session
	external  map[string]*agent
	// unknownPreferred holds work waiting for a preferred user the engine has no agent for.
	unknownPreferred map[string][]*item

	skillIDs  map[string]int32
	chanIDs   map[string]int32
	chanNames []string
	reqIDs    map[string]int32
	reqSets   [][]reqI
	reqKeys   []string // the key of each requirement set ("" once freed)
	freeReqs  []int32  // requirement-set ids freed by gcBuckets, reused first
	planReq   map[*Plan][]int32

	buckets    map[bucketKey]*bucket
	bucketList []*bucket
	// bucketGCAt: when the bucket list reaches this length, a new bucket first drops the empty
	// ones (PSR skill requirements make buckets that empty as their work goes).
	bucketGCAt int
	timers     timerHeap

	// reconciling: a snapshot is being applied; nothing is offered until it is all in.
	reconciling bool

	// deletedPSRs remembers the last deletedPSRCap PSR ids Salesforce deleted (a ring, oldest
	// overwritten first), so that a replayed CREATE or UPDATE of one is ignored.
	deletedPSRs    map[string]struct{}
	deletedRing    []string
	deletedRingPos int

	free     []*item
	freeS    []*session
	scratchM []*membership
	scratchI []itemSlot
}

type itemState uint8

const (
	stNone itemState = iota
	stWaiting
	stPinned
	stParked
	stOffered
	stActive
	stWrapUp
	// stAwaitingPSR: an interaction transferred to a plan or an agent; the engine asked for a
	// new PSR (CommandRequeue) and routes the work when it arrives.
	stAwaitingPSR
)

const never = math.MaxInt64

// item is one piece of work: waiting, offered, or an agent's interaction. Fields read by heap
// comparisons and decisions come first, to share cache lines.
type item struct {
	priority          int32 // routing priority: the PSR's, else the plan's; lower first
	heapPos, timerPos int32 // positions in its heap and the timer heap (-1: absent)
	weight            int32 // capacity units: the PSR's CapacityWeight, else the channel's
	chanID            int32 // the engine's id of channel
	class             mapping.Class
	state             itemState
	held              bool
	since             int64 // age origin (RequestedAt); survives re-routing
	due               int64 // deadline while in the timer heap
	id                string
	agent             *agent // the agent it is offered to or who holds it
	plan              *Plan
	bucket            *bucket // where it waits (stWaiting)
	decliners         []string
	session           *session

	psr, queue, channel string
	// nextWork is a new PSR that arrived while the item was offered, and offerPSR the PSR it
	// was offered under: applied when the offer is accepted (onAccepted).
	nextWork             *Work
	offerPSR             string
	psrWeight            int32 // the PSR's CapacityWeight; 0: the channel's
	sessionID            string
	psrHasPriority       bool
	psrPriority          int32
	inPlanSince          int64 // when it entered its current plan (overflow counts from it)
	stage                int   // relaxation step of the plan in force
	dropped              bool  // additional skills dropped
	psrHasDropAfter      bool
	psrDropAfter         int64  // the PSR's DropAdditionalSkillsTimeout
	dropAt               int64  // when the additional skills drop (never: not at all)
	preferred            string // the preferred user still waited for ("" after a fallback)
	preferredRequired    bool
	psrPreferred         string // the PSR's PreferredUserId and IsPreferredUserRequired
	psrPreferredRequired bool
	psrGone              bool  // the PSR of this open offer was deleted (see onWorkRemoved)
	preferredUntil       int64 // when a preferred user who is not required stops being waited for
	pinnedTo             *agent
	// retryAt: a required preferred user who declined is offered the work again from then.
	retryAt int64
	// movedPlan: plan came from an overflow or a transfer, not from the queue; it is kept
	// through reloads and PSR updates that keep the queue.
	movedPlan bool
	// transferTo is the agent an interaction was transferred to, until its new PSR is offered.
	transferTo string
	// autoPending: auto-accepted work whose AgentWork has not been confirmed Opened yet; a
	// refused insert still undoes it.
	autoPending bool
	// reported is the last unroutable or plan_removed report about this work, so that a reload
	// does not repeat it ("" once the work is routed by its queue or moved plan again).
	reported Reason
	// table is the table plan was resolved under.
	table *Table
	// psrRequired and psrAdditional are the PSR's own skill requirements (SkillRequirement).
	psrRequired, psrAdditional []req
}

// session is the interactions of one contact. Only sessions that must be found by id are in
// Engine.sessions: those with an explicit Work.Session id, those waiting for a disposition, and
// those that outlived one of their interactions (so that the id stays taken); the rest are
// reached through their interactions.
type session struct {
	id          string
	agent       *agent
	open        int
	required    bool
	indexed     bool
	disposition string
}

type reqI struct {
	skill int32
	level int32
}

type bucketKey struct {
	req, chanID, weight int32
	class               mapping.Class
}

type bucket struct {
	key    bucketKey
	req    []reqI
	items  itemHeap
	agents agentHeap
	nOut   int32 // memberships in agents marked out (see agentHeap)
}

// membership is an agent's membership in a bucket. The heap compares memberships by their
// own fields (fit, and the heap keys idle and used copied from the agent by rekey; see
// agentHeap), so that a comparison loads one line, which also holds pos.
type membership struct {
	a    *agent
	b    *bucket
	idle int64
	fit  int32
	pos  int32
	used int32
	out  bool // in the heap but no longer eligible (see agentHeap)
}

// agent is one agent. Fields read by every decision (counters, keys and states) come first.
type agent struct {
	usedTotal                int32 // capacity units held by offers and interactions
	capTotal                 int32
	nOffered, nActive, nWrap int32 // open offers, active interactions, interactions in wrap-up
	inbound                  int32 // Busy Inbound work (routed by Salesforce itself)
	idleSince                int64
	usedClass                [4]int32      // by mapping.Class
	capClass                 [4]int32      // -1: capped by the total only
	chosen                   mapping.State // the state the agent chose (or will enter after work)
	shown                    mapping.State // the state derived from chosen and the work held
	intended                 bool          // chosen was picked while working
	channels                 []agentChan   // by engine channel id
	memberships              []*membership // one per bucket whose skills the agent holds
	pinned                   itemHeap      // work waiting for this agent as its preferred user
	id                       string

	presence       string
	presenceBefore string   // the presence before the current work (revert to last status)
	openChannels   []string // the channels the presence opens
	groups         []string
	skills         []reqI // sorted by skill id
	rawSkills      []Skill
	profile        *profile
	// undeliverable: an offer to the agent came back push timeout or unavailable, or its
	// AgentWork insert was refused; not routable until a presence or state event.
	undeliverable bool
	// postCallDue: an interaction ended since the agent was last free; the post-call state
	// applies when all their work, Busy Inbound included, is done.
	postCallDue bool
}

// agentChan is an agent's state on one service channel.
type agentChan struct {
	cap    int32 // unit cap; -1: none
	used   int32
	online bool // the presence status opens the channel
}

// New returns an engine routing with plans (nil means an empty table).
func New(plans *Table) *Engine {
	if plans == nil {
		plans, _ = Compile(&mapping.Config{})
	}
	e := &Engine{
		plans:            plans,
		agents:           map[string]*agent{},
		items:            map[string]*item{},
		sessions:         map[string]*session{},
		external:         map[string]*agent{},
		unknownPreferred: map[string][]*item{},
		skillIDs:         map[string]int32{},
		chanIDs:          map[string]int32{},
		reqIDs:           map[string]int32{},
		planReq:          map[*Plan][]int32{},
		deletedPSRs:      map[string]struct{}{},
		buckets:          map[bucketKey]*bucket{},
		out:              make([]Command, 0, 16),
	}
	e.internChannels()
	return e
}

// Plans returns the table in use.
func (e *Engine) Plans() *Table { return e.plans }

// NextDeadline returns when the engine next needs to be called (with EventTick or any event)
// for a timer: an offer re-check, a wrap-up end, a relaxation step, an additional-skill drop,
// an overflow or a preferred-user fallback. false means no timer is pending.
func (e *Engine) NextDeadline() (time.Time, bool) {
	if len(e.timers) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, e.timers[0].due).UTC(), true
}

// Apply fires the timers due at or before now, then applies ev, and returns the commands.
func (e *Engine) Apply(now time.Time, ev Event) []Command {
	e.out = e.out[:0]
	e.advance(now.UnixNano())
	switch ev.Type {
	case EventAgentSkills, EventAgentState, EventAgentPresence, EventExternalWork:
		// An agent event must name the agent: an empty id would become a phantom agent.
		if ev.AgentID == "" {
			e.emit(Command{Type: CommandIgnored, WorkID: ev.WorkID, Reason: ReasonUnknownAgent})
			return e.out
		}
		if ev.Type == EventExternalWork && ev.WorkID == "" {
			e.emit(Command{Type: CommandIgnored, AgentID: ev.AgentID, Reason: ReasonUnknownWork})
			return e.out
		}
	}
	switch ev.Type {
	case EventTick:
	case EventWorkArrived, EventWorkChanged:
		e.onWork(&ev.Work)
	case EventWorkRemoved:
		e.onWorkRemoved(ev.WorkID, ev.PSR)
	case EventOfferAccepted:
		e.onAccepted(ev.WorkID, ev.AgentID)
	case EventOfferDeclined:
		e.onDeclined(ev.WorkID, ev.AgentID, ev.Outcome)
	case EventWorkTransferred:
		e.onTransferred(ev.WorkID, ev.AgentID)
	case EventReconcile:
		e.onReconcile(ev.Snapshot)
	case EventWorkClosed:
		e.onWorkClosed(ev.WorkID, ev.AgentID)
	case EventAgentSkills:
		e.onSkills(ev.AgentID, ev.Skills, ev.Groups)
	case EventAgentState:
		e.onState(ev.AgentID, ev.State)
	case EventAgentPresence:
		e.onPresence(ev.AgentID, ev.Presence, ev.Channels, ev.Echo)
	case EventExternalWork:
		e.onExternal(ev.AgentID, ev.WorkID)
	case EventExternalWorkClosed:
		e.onExternalClosed(ev.WorkID)
	case EventAgentAction:
		e.onAction(ev.AgentID, ev.WorkID, &ev.Action)
	}
	return e.out
}

// SetPlans swaps the routing table (after a reload) and returns the commands that follow.
//
// Offers, interactions, wrap-ups and sessions keep the plan they started under (its offer
// timeout, wrap-up timeout and disposition rule); a declined offer then waits under the current
// table. Waiting work is re-placed, keeping its age, with the channel's new class and weight
// (unless the PSR set its own weight), under the plan it overflowed or was transferred to while
// the new table has a plan of that name, else under the plan its queue now maps to; its plan
// timers restart only if the plan's name changed, and an overflow wait it has already served
// applies at once. So an identical reload changes nothing and emits nothing.
// Work whose queue the new table no longer maps is never dropped: it stays queued under the plan
// it had (the new table's plan of that name, if any; a CommandRerouted with ReasonPlanRemoved
// reports it, once). Parked work (unknown queue or channel) forgot its plan; it is retried
// against the new table and not reported again while still parked for the same reason. Agents'
// capacity profiles are re-resolved.
func (e *Engine) SetPlans(now time.Time, plans *Table) []Command {
	e.out = e.out[:0]
	e.advance(now.UnixNano())
	if plans == nil {
		return e.out
	}
	e.plans = plans
	// Requirement-set ids are cached per *Plan; the old table's plans are dropped with it (work
	// still waiting under one of them caches it again, see resolveItem).
	clear(e.planReq)
	e.internChannels()
	for _, a := range e.agentList {
		e.resolveAgent(a)
	}
	var moved []*item
	for _, it := range e.items {
		switch it.state {
		case stWaiting, stPinned, stParked:
			moved = append(moved, it)
		}
	}
	slices.SortFunc(moved, func(a, b *item) int {
		if a.id < b.id {
			return -1
		}
		if a.id > b.id {
			return 1
		}
		return 0
	})
	for _, it := range moved {
		e.unplace(it)
	}
	e.gcBuckets(true)
	var ready []*item
	for _, it := range moved {
		if e.resolveItem(it, true) {
			ready = append(ready, it)
		}
	}
	slices.SortFunc(ready, func(a, b *item) int {
		if itemLess(a, b) {
			return -1
		}
		return 1
	})
	for _, a := range e.agentList {
		e.refresh(a)
	}
	for _, it := range ready {
		if it.state == stNone {
			// transition, not place: work whose overflow wait or preferred-user timeout
			// already passed under the new plan moves on now, not at the next call.
			e.transition(it)
		}
	}
	for _, a := range e.sortedAgents() {
		e.fill(a)
	}
	return e.out
}

func (e *Engine) sortedAgents() []*agent {
	as := slices.Clone(e.agentList)
	slices.SortFunc(as, func(a, b *agent) int {
		if a.id < b.id {
			return -1
		}
		return 1
	})
	return as
}

func (e *Engine) emit(c Command) { e.out = append(e.out, c) }

// advance fires due timers in (deadline, work id) order.
func (e *Engine) advance(t int64) {
	for len(e.timers) > 0 && e.timers[0].due <= t {
		it := e.timers.first()
		e.timers.remove(it)
		if it.due > e.now {
			e.now = it.due
		}
		e.fire(it)
	}
	if t > e.now {
		e.now = t
	}
}

func (e *Engine) fire(it *item) {
	switch it.state {
	case stOffered:
		e.emit(Command{Type: CommandCheckOffer, WorkID: it.id, PSR: it.psr, AgentID: it.agent.id, Reason: ReasonOfferTimeout})
		e.timers.set(it, e.now+it.plan.offerTimeout)
	case stWrapUp:
		e.finish(it, ReasonReleased)
	case stWaiting, stPinned:
		e.transition(it)
	}
}
