package routing

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

// The oracle: an independent, naive model of the documented choosing rules (eligibility,
// choosing order, capacity by total, class and channel, decliners, relaxation, additional-skill
// drop, overflow, wrap-up timers, post-call state, preferred users required or not, PSR skill
// requirements, PSR updates, deleted PSRs and their replays, Busy Inbound, undeliverable agents)
// built from the events alone with linear scans and plain maps. TestOracleAgreesOfferByOffer
// replays random event sequences on the engine and on the oracle and requires the same offers,
// in the same order, after every event; identical reloads and reconciles with a snapshot of the
// model's own state are mixed in, and must change nothing but what they are documented to.

// oracleMapping: presence only opens channels (presenceChangesUpdateState: false); the state
// comes from EventAgentState alone.
var oracleMapping = `
plans:
  - name: Sales
    queues: [Q_Sales]
    priority: 1
    requiredSkills: [{skill: english, minLevel: 5}, {skill: sales, minLevel: 3}]
    additionalSkills: [{skill: vip, minLevel: 1}]
    dropAdditionalSkillsAfter: 20s
    relaxation:
      - {after: 30s, skill: english, minLevel: 2}
      - {after: 60s, skill: sales, drop: true}
    overflow: {plan: General, after: 45s}
    offerTimeout: 0s
    wrapUpTimeout: 10s
  - name: Service
    queues: [Q_Service]
    requiredSkills: [{skill: service, minLevel: 2}]
    offerTimeout: 0s
    wrapUpTimeout: 5s
  - name: General
    queues: [Q_General]
    priority: 2
    offerTimeout: 0s
channels:
  - {name: chat, class: semi-live, weight: 1}
  - {name: email, class: non-live, weight: 1}
  - {name: voice, class: live, weight: 1}
capacity:
  default: std
  profiles:
    - {name: std, total: 4, perClass: {semi-live: 3, non-live: 2, live: 1}, perChannel: {chat: 2, email: 1}}
presence:
  events:
    presenceChangesUpdateState: false
    stateChangesUpdatePresence: false` + strings.TrimPrefix(defaultPresence, "\npresence:")

type orStage struct {
	after time.Duration
	req   map[string]int // skill -> minimum level (hundredths)
}

type orPlan struct {
	name       string
	priority   int
	stages     []orStage
	additional map[string]int
	dropAfter  time.Duration
	overflowTo string
	overflowAt time.Duration
	wrapUp     time.Duration
}

var orPlans = map[string]*orPlan{
	"Sales": {
		name: "Sales", priority: 1,
		stages: []orStage{
			{0, map[string]int{"english": 500, "sales": 300}},
			{30 * time.Second, map[string]int{"english": 200, "sales": 300}},
			{60 * time.Second, map[string]int{"english": 200}},
		},
		additional: map[string]int{"vip": 100}, dropAfter: 20 * time.Second,
		overflowTo: "General", overflowAt: 45 * time.Second, wrapUp: 10 * time.Second,
	},
	"Service": {name: "Service", stages: []orStage{{0, map[string]int{"service": 200}}}, wrapUp: 5 * time.Second},
	"General": {name: "General", priority: 2, stages: []orStage{{0, map[string]int{}}}},
}

var orQueues = map[string]string{"Q_Sales": "Sales", "Q_Service": "Service", "Q_General": "General"}

var orChannels = map[string]mapping.Class{"chat": mapping.SemiLive, "email": mapping.NonLive, "voice": mapping.Live}

type orAgent struct {
	id            string
	skills        map[string]int
	online        map[string]bool
	ready         bool // chosen state is Ready
	intended      bool
	postCallDue   bool
	undeliverable bool
	inbound       int
	idle          time.Time
	held          []*orWork // offers, interactions, wrap-ups
}

type orWork struct {
	id, queue, channel string
	plan               *orPlan
	since, inPlan      time.Time
	weight             int
	state              string // waiting, offered, active, wrapup
	agent              *orAgent
	decliners          []string
	wrapEnd            time.Time
	psrGone            bool
	placedAt           time.Time // when it was last placed: its later changes are its timers
	// preferred is the preferred user still waited for; prefUntil ends the wait unless
	// required; retryAt is when a required preferred user who declined gets it again.
	preferred, psrPreferred string
	required                bool
	prefUntil, retryAt      time.Time
	hasPrio                 bool
	prio                    int
	psr                     string
	psrSkills               map[string]int // the PSR's own required skills
	rawSkills               []SkillRequirement
}

func (w *orWork) priority() int {
	if w.hasPrio {
		return w.prio
	}
	return w.plan.priority
}

type oracle struct {
	now      time.Time
	external map[string]*orAgent
	deleted  map[string]bool // PSR ids Salesforce deleted: never routed again
	agents   map[string]*orAgent
	works    map[string]*orWork
	offers   [][2]string
}

func newOracle() *oracle {
	return &oracle{agents: map[string]*orAgent{}, works: map[string]*orWork{}, external: map[string]*orAgent{}, deleted: map[string]bool{}}
}

func (o *oracle) agent(id string) *orAgent {
	a := o.agents[id]
	if a == nil {
		a = &orAgent{id: id, skills: map[string]int{}, online: map[string]bool{}, idle: time.Unix(0, 0)}
		o.agents[id] = a
	}
	return a
}

// reqs is what w requires: its plan's skills at its stage, and the additional ones until they
// drop, as of when it was last placed (a change is a timer, and timers due at the same instant
// fire one by one in (deadline, work id) order).
func (o *oracle) reqs(w *orWork) map[string]int {
	wait := w.placedAt.Sub(w.since)
	st := w.plan.stages[0]
	for _, s := range w.plan.stages {
		if s.after <= wait {
			st = s
		}
	}
	r := map[string]int{}
	for k, v := range st.req {
		r[k] = v
	}
	for k, v := range w.psrSkills {
		r[k] = max(r[k], v)
	}
	if len(w.plan.additional) > 0 && (w.plan.dropAfter == 0 || wait < w.plan.dropAfter) {
		for k, v := range w.plan.additional {
			r[k] = max(r[k], v)
		}
	}
	return r
}

func (a *orAgent) used(pred func(*orWork) bool) int {
	n := 0
	for _, w := range a.held {
		if pred(w) {
			n += w.weight
		}
	}
	return n
}

func (a *orAgent) routable() bool { return a.ready && !a.undeliverable && a.inbound == 0 }

func (a *orAgent) room(w *orWork) bool {
	caps := map[mapping.Class]int{mapping.SemiLive: 3, mapping.NonLive: 2, mapping.Live: 1}
	chCaps := map[string]int{"chat": 2, "email": 1}
	if a.used(func(*orWork) bool { return true })+w.weight > 4 {
		return false
	}
	cl := orChannels[w.channel]
	if a.used(func(x *orWork) bool { return orChannels[x.channel] == cl })+w.weight > caps[cl] {
		return false
	}
	if c, ok := chCaps[w.channel]; ok && a.used(func(x *orWork) bool { return x.channel == w.channel })+w.weight > c {
		return false
	}
	return true
}

// fit is the sum of a's levels on w's requirements, and whether a meets them all.
func (o *oracle) fit(a *orAgent, w *orWork) (int, bool) {
	sum := 0
	for k, v := range o.reqs(w) {
		l, ok := a.skills[k]
		if !ok || l < v {
			return 0, false
		}
		sum += l
	}
	return sum, true
}

// direct: a can take w as its preferred user (skills are not checked; a required preferred
// user may take work they declined).
func (o *oracle) direct(a *orAgent, w *orWork) bool {
	return a.routable() && a.online[w.channel] && a.room(w) && (w.required || !slices.Contains(w.decliners, a.id))
}

func (o *oracle) eligible(a *orAgent, w *orWork) bool {
	_, ok := o.fit(a, w)
	return ok && a.routable() && a.online[w.channel] && a.room(w) && !slices.Contains(w.decliners, a.id)
}

func (o *oracle) sortedAgents() []*orAgent {
	var as []*orAgent
	for _, a := range o.agents {
		as = append(as, a)
	}
	slices.SortFunc(as, func(x, y *orAgent) int {
		if x.id < y.id {
			return -1
		}
		return 1
	})
	return as
}

// better: the documented choosing order between two eligible agents for w.
func (o *oracle) better(x, y *orAgent, w *orWork) bool {
	fx, _ := o.fit(x, w)
	fy, _ := o.fit(y, w)
	if fx != fy {
		return fx > fy
	}
	if !x.idle.Equal(y.idle) {
		return x.idle.Before(y.idle)
	}
	ux, uy := x.used(func(*orWork) bool { return true }), y.used(func(*orWork) bool { return true })
	if ux != uy {
		return ux < uy
	}
	return x.id < y.id
}

func workBefore(x, y *orWork) bool {
	if x.priority() != y.priority() {
		return x.priority() < y.priority()
	}
	if !x.since.Equal(y.since) {
		return x.since.Before(y.since)
	}
	return x.id < y.id
}

func (o *oracle) offer(w *orWork, a *orAgent) {
	w.state, w.agent, w.decliners = "offered", a, nil
	a.held = append(a.held, w)
	a.idle = o.now
	o.offers = append(o.offers, [2]string{w.id, a.id})
}

// place offers waiting work to the best eligible agent.
func (o *oracle) place(w *orWork) {
	w.placedAt = o.now
	w.state = "waiting"
	if w.preferred != "" && (w.required || o.now.Before(w.prefUntil)) {
		w.state = "pinned"
		if pa := o.agents[w.preferred]; pa != nil && !o.now.Before(w.retryAt) && o.direct(pa, w) {
			o.offer(w, pa)
		}
		return
	}
	var best *orAgent
	for _, a := range o.sortedAgents() {
		if o.eligible(a, w) && (best == nil || o.better(a, best, w)) {
			best = a
		}
	}
	if best != nil {
		o.offer(w, best)
	}
}

// fill offers a the best waiting work they are eligible for, while there is some.
func (o *oracle) fill(a *orAgent) {
	for a.routable() {
		var best *orWork
		for _, w := range o.works {
			ok := w.state == "waiting" && o.eligible(a, w) ||
				w.state == "pinned" && w.preferred == a.id && !o.now.Before(w.retryAt) && o.direct(a, w)
			if ok && (best == nil || workBefore(w, best)) {
				best = w
			}
		}
		if best == nil {
			return
		}
		o.offer(best, a)
	}
}

// overflow moves waiting work whose plan's overflow wait passed.
func (o *oracle) overflow(w *orWork) {
	if p := w.plan; p.overflowTo != "" && !o.now.Before(w.inPlan.Add(p.overflowAt)) {
		w.plan, w.inPlan = orPlans[p.overflowTo], o.now
	}
	if w.preferred != "" && !w.required && !o.now.Before(w.prefUntil) {
		w.preferred = ""
	}
}

// deadline is waiting work's next change of requirements or plan.
func (o *oracle) deadline(w *orWork) (time.Time, bool) {
	var ds []time.Time
	for _, s := range w.plan.stages {
		if t := w.since.Add(s.after); t.After(w.placedAt) {
			ds = append(ds, t)
		}
	}
	if len(w.plan.additional) > 0 && w.plan.dropAfter > 0 {
		if t := w.since.Add(w.plan.dropAfter); t.After(w.placedAt) {
			ds = append(ds, t)
		}
	}
	if w.plan.overflowTo != "" {
		ds = append(ds, w.inPlan.Add(w.plan.overflowAt))
	}
	if w.state == "pinned" && !w.required {
		ds = append(ds, w.prefUntil)
	}
	if w.state == "pinned" && w.retryAt.After(w.placedAt) {
		ds = append(ds, w.retryAt)
	}
	if len(ds) == 0 {
		return time.Time{}, false
	}
	return slices.MinFunc(ds, func(x, y time.Time) int { return x.Compare(y) }), true
}

// advance fires due timers in (deadline, work id) order: wrap-up ends, and waiting work whose
// requirements or plan change.
func (o *oracle) advance(t time.Time) {
	for {
		var due time.Time
		var first *orWork
		for _, w := range o.works {
			var d time.Time
			switch w.state {
			case "wrapup":
				d = w.wrapEnd
			case "waiting", "pinned":
				var ok bool
				if d, ok = o.deadline(w); !ok {
					continue
				}
				if d.Before(o.now) {
					d = o.now
				}
			default:
				continue
			}
			if d.After(t) {
				continue
			}
			if first == nil || d.Before(due) || (d.Equal(due) && w.id < first.id) {
				first, due = w, d
			}
		}
		if first == nil {
			break
		}
		if due.After(o.now) {
			o.now = due
		}
		if first.state == "wrapup" {
			o.finish(first)
			continue
		}
		o.overflow(first)
		o.place(first)
	}
	if t.After(o.now) {
		o.now = t
	}
}

func (o *oracle) finish(w *orWork) {
	a := w.agent
	a.held = slices.DeleteFunc(a.held, func(x *orWork) bool { return x == w })
	a.idle = o.now
	delete(o.works, w.id)
	o.workEnded(a, true)
}

func (o *oracle) workEnded(a *orAgent, interaction bool) {
	if interaction {
		a.postCallDue = true
	}
	if len(a.held) == 0 && a.inbound == 0 {
		if a.postCallDue && !a.intended {
			a.ready = true // the post-call state (Ready)
		}
		a.intended, a.postCallDue = false, false
	}
	o.fill(a)
}

func (o *oracle) apply(now time.Time, ev Event) [][2]string {
	o.offers = o.offers[:0]
	o.advance(now)
	switch ev.Type {
	case EventWorkArrived:
		if o.deleted[ev.Work.PSR] {
			break
		}
		w := o.works[ev.Work.ID]
		if w != nil {
			if w.state == "waiting" || w.state == "pinned" { // a repeated PSR: the work stays as it is
				o.overflow(w)
				o.place(w)
			}
			break
		}
		p := orQueues[ev.Work.Queue]
		w = &orWork{
			id: ev.Work.ID, queue: ev.Work.Queue, channel: ev.Work.Channel, plan: orPlans[p],
			since: ev.Work.RequestedAt, inPlan: o.now, weight: ev.Work.Weight, state: "waiting",
			preferred: ev.Work.PreferredUser, psrPreferred: ev.Work.PreferredUser, required: ev.Work.PreferredRequired,
			psr: ev.Work.PSR, prefUntil: o.now.Add(30 * time.Second), psrSkills: map[string]int{}, rawSkills: ev.Work.Skills,
		}
		for _, sk := range ev.Work.Skills {
			w.psrSkills[sk.Name] = max(w.psrSkills[sk.Name], int(sk.Level*100+0.5))
		}
		if w.weight <= 0 {
			w.weight = 1
		}
		o.works[w.id] = w
		o.place(w)
	case EventReconcile:
		for _, p := range ev.Snapshot.Presence {
			o.agent(p.AgentID).undeliverable = false
		}
		// The only work the snapshot leaves out: offers whose PSR was deleted (no outcome yet).
		for _, id := range sortedKeys(o.works) {
			if w := o.works[id]; w.state == "offered" && w.psrGone {
				w.agent.held = slices.DeleteFunc(w.agent.held, func(x *orWork) bool { return x == w })
				delete(o.works, id)
			}
		}
		for _, a := range o.sortedAgents() {
			o.fill(a)
		}
	case EventWorkChanged:
		if o.deleted[ev.Work.PSR] {
			break
		}
		w := o.works[ev.Work.ID]
		if w == nil || (w.state != "waiting" && w.state != "pinned") {
			break
		}
		if ev.Work.Queue != w.queue {
			w.queue = ev.Work.Queue
			if p := orPlans[orQueues[w.queue]]; p != w.plan {
				w.plan, w.inPlan = p, o.now
				w.prefUntil = o.now.Add(30 * time.Second)
			}
		}
		w.hasPrio, w.prio = ev.Work.HasPriority, ev.Work.Priority
		if ev.Work.PreferredUser != w.psrPreferred || ev.Work.PreferredRequired != w.required {
			w.preferred, w.psrPreferred, w.required = ev.Work.PreferredUser, ev.Work.PreferredUser, ev.Work.PreferredRequired
			w.prefUntil, w.retryAt = o.now.Add(30*time.Second), time.Time{}
		}
		o.overflow(w)
		o.place(w)
	case EventOfferAccepted:
		if w := o.works[ev.WorkID]; w != nil && w.state == "offered" && w.agent.id == ev.AgentID {
			w.state = "active"
		}
	case EventOfferDeclined:
		w := o.works[ev.WorkID]
		if w == nil || w.state != "offered" || w.agent.id != ev.AgentID {
			break
		}
		a := w.agent
		a.held = slices.DeleteFunc(a.held, func(x *orWork) bool { return x == w })
		if ev.Outcome != OutcomeDeclined {
			a.undeliverable = true
		}
		if w.psrGone {
			delete(o.works, w.id)
			o.workEnded(a, false)
			break
		}
		w.state, w.agent = "waiting", nil
		w.decliners = append(w.decliners, a.id)
		switch {
		case w.preferred == a.id && !w.required:
			w.preferred = ""
		case w.preferred == a.id:
			w.retryAt = o.now.Add(30 * time.Second)
		}
		o.overflow(w)
		o.place(w)
		o.workEnded(a, false)
	case EventWorkClosed:
		w := o.works[ev.WorkID]
		if w == nil || w.state != "active" || w.agent.id != ev.AgentID {
			break
		}
		w.state = "wrapup"
		if w.plan.wrapUp == 0 {
			o.finish(w)
			break
		}
		w.wrapEnd = o.now.Add(w.plan.wrapUp)
	case EventWorkRemoved:
		if ev.PSR != "" {
			o.deleted[ev.PSR] = true
		}
		w := o.works[ev.WorkID]
		if w == nil || (ev.PSR != "" && ev.PSR != w.psr) {
			break // an earlier PSR of the work item: the work lives on
		}
		o.deleted[w.psr] = true
		switch w.state {
		case "waiting", "pinned":
			delete(o.works, w.id)
		case "offered":
			w.psrGone = true
		}
	case EventExternalWork:
		if o.external[ev.WorkID] != nil {
			break
		}
		a := o.agent(ev.AgentID)
		o.external[ev.WorkID] = a
		a.inbound++
	case EventExternalWorkClosed:
		a := o.external[ev.WorkID]
		if a == nil {
			break
		}
		delete(o.external, ev.WorkID)
		if a.inbound--; a.inbound == 0 {
			a.idle = o.now
		}
		o.workEnded(a, false)
	case EventAgentSkills:
		a := o.agent(ev.AgentID)
		a.skills = map[string]int{}
		for _, s := range ev.Skills {
			a.skills[s.Name] = max(a.skills[s.Name], int(s.Level*100+0.5))
		}
		o.fill(a)
	case EventAgentPresence:
		a := o.agent(ev.AgentID)
		a.undeliverable = false
		a.online = map[string]bool{}
		if ev.Presence != mapping.OfflineStatus {
			for _, c := range ev.Channels {
				a.online[c] = true
			}
		}
		o.fill(a)
	case EventAgentState:
		a := o.agent(ev.AgentID)
		a.undeliverable = false
		ready := ev.State.Major == mapping.Ready
		if len(a.held) > 0 || a.inbound > 0 {
			a.intended = true
		} else if !a.ready && ready {
			a.idle = o.now
		}
		a.ready = ready
		o.fill(a)
	}
	return o.offers
}

// oracleEvent draws the next random event from what the oracle holds.
func oracleEvent(r *rand.Rand, o *oracle, next *int) Event {
	agents := []string{"A1", "A2", "A3", "A4", "A5"}
	var offered, active []*orWork
	for _, id := range sortedKeys(o.works) {
		switch w := o.works[id]; w.state {
		case "offered":
			offered = append(offered, w)
		case "active":
			active = append(active, w)
		}
	}
	pick := func(ws []*orWork) *orWork { return ws[r.Intn(len(ws))] }
	switch n := r.Intn(100); {
	case n < 8:
		var sk []Skill
		for _, s := range []string{"english", "sales", "vip", "service"} {
			if r.Intn(3) > 0 {
				sk = append(sk, Skill{Name: s, Level: float64(r.Intn(10) + 1)})
			}
		}
		return Event{Type: EventAgentSkills, AgentID: agents[r.Intn(len(agents))], Skills: sk}
	case n < 16:
		var chs []string
		for _, c := range []string{"chat", "email", "voice"} {
			if r.Intn(4) > 0 {
				chs = append(chs, c)
			}
		}
		p := "Available"
		if r.Intn(6) == 0 {
			p, chs = mapping.OfflineStatus, nil
		}
		return Event{Type: EventAgentPresence, AgentID: agents[r.Intn(len(agents))], Presence: p, Channels: chs}
	case n < 24:
		st := mapping.State{Major: mapping.Ready}
		if r.Intn(4) == 0 {
			st = mapping.State{Major: mapping.Away}
		}
		return Event{Type: EventAgentState, AgentID: agents[r.Intn(len(agents))], State: st}
	case n < 48:
		*next++
		q := []string{"Q_Sales", "Q_Sales", "Q_Service", "Q_General"}[r.Intn(4)]
		ch := []string{"chat", "email", "voice"}[r.Intn(3)]
		w := Work{
			ID: fmt.Sprintf("W%03d", *next), PSR: fmt.Sprintf("P%03d", *next), Queue: q, Channel: ch,
			RequestedAt: o.now.Add(-time.Duration(r.Intn(40)) * time.Second),
		}
		if r.Intn(5) == 0 {
			w.Weight = 2
		}
		if r.Intn(4) == 0 {
			w.Skills = []SkillRequirement{{Name: []string{"english", "service", "sales"}[r.Intn(3)], Level: float64(r.Intn(10) + 1)}}
		}
		if r.Intn(5) == 0 {
			w.PreferredUser = []string{"A1", "A2", "A3", "A4", "A5", "A9"}[r.Intn(6)]
			w.PreferredRequired = r.Intn(3) == 0
		}
		if r.Intn(6) == 0 && *next > 1 {
			// at-least-once delivery: a PSR arrives again
			k := r.Intn(*next-1) + 1
			w.ID, w.PSR = fmt.Sprintf("W%03d", k), fmt.Sprintf("P%03d", k)
			if ow := o.works[w.ID]; ow != nil {
				w.Queue, w.Channel, w.RequestedAt, w.Weight = ow.queue, ow.channel, ow.since, ow.weight
				w.PreferredUser, w.PreferredRequired = ow.psrPreferred, ow.required
				w.HasPriority, w.Priority = ow.hasPrio, ow.prio
				w.Skills = ow.rawSkills
				if w.Weight == 1 {
					w.Weight = 0
				}
			} else {
				w.ID, w.PSR = fmt.Sprintf("W%03dx", *next), fmt.Sprintf("P%03dx", *next)
			}
		}
		return Event{Type: EventWorkArrived, Work: w}
	case n < 62 && len(offered) > 0:
		w := pick(offered)
		return Event{Type: EventOfferAccepted, WorkID: w.id, AgentID: w.agent.id}
	case n < 72 && len(offered) > 0:
		w := pick(offered)
		out := OutcomeDeclined
		if r.Intn(5) == 0 {
			out = OutcomePushTimeout
		}
		return Event{Type: EventOfferDeclined, WorkID: w.id, AgentID: w.agent.id, Outcome: out}
	case n < 86 && len(active) > 0:
		w := pick(active)
		return Event{Type: EventWorkClosed, WorkID: w.id, AgentID: w.agent.id}
	case n >= 86 && n < 89 && len(o.works) > 0:
		ks := sortedKeys(o.works)
		ow := o.works[ks[r.Intn(len(ks))]]
		ev := Event{Type: EventWorkRemoved, WorkID: ow.id}
		switch r.Intn(3) {
		case 0:
			ev.PSR = ow.psr
		case 1:
			ev.PSR = "E" + ow.psr // a late delete of an earlier PSR of the work item
		}
		return ev
	case n >= 89 && n < 92:
		*next++
		return Event{Type: EventExternalWork, WorkID: fmt.Sprintf("X%03d", *next), AgentID: agents[r.Intn(len(agents))]}
	case n >= 92 && n < 95 && len(o.external) > 0:
		ks := sortedKeys(o.external)
		return Event{Type: EventExternalWorkClosed, WorkID: ks[r.Intn(len(ks))]}
	case n >= 95 && n < 96:
		return Event{Type: EventTick, Channel: "reload"}
	case n >= 96 && n < 97:
		return Event{Type: EventReconcile} // its snapshot is built from the oracle at its time
	case n >= 97 && len(o.works) > 0:
		// a PSR update of work not yet accepted (Salesforce deletes the PSR on accept): its push
		// back after a decline, a new priority, queue or preferred user
		var ks []string
		for _, id := range sortedKeys(o.works) {
			if st := o.works[id].state; st != "active" && st != "wrapup" {
				ks = append(ks, id)
			}
		}
		if len(ks) == 0 {
			break
		}
		ow := o.works[ks[r.Intn(len(ks))]]
		w := Work{
			ID: ow.id, PSR: "P" + ow.id[1:], Queue: ow.queue, Channel: ow.channel, RequestedAt: ow.since,
			PreferredUser: ow.psrPreferred, PreferredRequired: ow.required, HasPriority: ow.hasPrio, Priority: ow.prio,
			Skills: ow.rawSkills,
		}
		if ow.weight != 1 {
			w.Weight = ow.weight
		}
		switch r.Intn(4) {
		case 0:
			w.Queue = []string{"Q_Sales", "Q_Service", "Q_General"}[r.Intn(3)]
		case 1:
			w.HasPriority, w.Priority = true, r.Intn(3)
		case 2:
			w.PreferredUser, w.PreferredRequired = []string{"", "A1", "A2", "A3"}[r.Intn(4)], r.Intn(3) == 0
		}
		return Event{Type: EventWorkChanged, Work: w}
	}
	return Event{Type: EventTick}
}

// snapshot is what Salesforce holds when the engine is right: the PSRs of waiting work, the
// offers, the interactions, the Busy Inbound work and the presence of every online agent.
func (o *oracle) snapshot() *Snapshot {
	s := &Snapshot{}
	for _, id := range sortedKeys(o.works) {
		w := o.works[id]
		pw := Work{
			ID: w.id, PSR: w.psr, Queue: w.queue, Channel: w.channel, RequestedAt: w.since,
			PreferredUser: w.psrPreferred, PreferredRequired: w.required, HasPriority: w.hasPrio, Priority: w.prio,
			Skills: w.rawSkills,
		}
		if w.weight != 1 {
			pw.Weight = w.weight
		}
		switch w.state {
		case "waiting", "pinned":
			s.Waiting = append(s.Waiting, pw)
		case "offered":
			if !w.psrGone {
				s.Offers = append(s.Offers, Assignment{Work: pw, AgentID: w.agent.id})
			}
		case "active":
			s.Interactions = append(s.Interactions, Assignment{Work: pw, AgentID: w.agent.id})
		}
	}
	for _, id := range sortedKeys(o.external) {
		s.External = append(s.External, Assignment{Work: Work{ID: id}, AgentID: o.external[id].id})
	}
	for _, a := range o.sortedAgents() {
		if len(a.online) > 0 {
			s.Presence = append(s.Presence, AgentPresence{AgentID: a.id, Presence: "Available", Channels: sortedKeys(a.online)})
		}
	}
	return s
}

func offersOf(cmds []Command) [][2]string {
	var out [][2]string
	for _, c := range cmds {
		if c.Type == CommandOffer {
			out = append(out, [2]string{c.WorkID, c.AgentID})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestOracleAgreesOfferByOffer compares the engine with the naive oracle, offer by offer, over
// many seeded random sequences.
func TestOracleAgreesOfferByOffer(t *testing.T) {
	t.Parallel()
	cfg := parseConfig(t, oracleMapping, "oracle.yaml")
	table, err := Compile(cfg)
	require.NoError(t, err)
	seeds, steps := 400, 300
	totalOffers := 0
	defer func() { t.Logf("%d offers compared", totalOffers) }()
	if testing.Short() {
		seeds = 60
	}
	for seed := range int64(seeds) {
		r := rand.New(rand.NewSource(seed))
		e, o := New(table), newOracle()
		now, next := t0, 0
		o.now = now
		var trace []string
		for step := range steps {
			now = now.Add(time.Duration(r.Intn(8000)) * time.Millisecond)
			ev := oracleEvent(r, o, &next)
			var got [][2]string
			cmds := e.Apply
			if ev.Channel == "reload" { // an identical reload: SetPlans with the same table
				cmds = func(now time.Time, _ Event) []Command { return e.SetPlans(now, table) }
			}
			if ev.Type == EventReconcile {
				// Timers first, then a snapshot of everything Salesforce holds, which is what
				// the engine holds: it must change nothing but clear undeliverable holds.
				tick := Event{Type: EventTick}
				got, want := offersOf(e.Apply(now, tick)), slices.Clone(o.apply(now, tick))
				require.True(t, slices.Equal(want, got), "seed %d step %d: timers before the reconcile: %v, oracle %v", seed, step, got, want)
				ev.Snapshot = o.snapshot()
				rc := slices.Clone(e.Apply(now, ev))
				for _, c := range rc {
					if c.Type == CommandEnded || c.Type == CommandUnroutable || c.Type == CommandNotify {
						t.Fatalf("seed %d step %d: a snapshot of the engine's own state changed it: %+v", seed, step, c)
					}
				}
				cmds = func(time.Time, Event) []Command { return rc }
			}
			for _, c := range cmds(now, ev) {
				if c.Type == CommandOffer {
					got = append(got, [2]string{c.WorkID, c.AgentID})
				}
			}
			want := slices.Clone(o.apply(now, ev))
			trace = append(trace, fmt.Sprintf("%s %s w=%s a=%s %v %v -> %v", now.Sub(t0), ev.Type, ev.WorkID+ev.Work.ID, ev.AgentID, ev.Channels, ev.Skills, want))
			totalOffers += len(got)
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: engine offered %v, oracle %v\n%s", seed, step, got, want, joinLast(trace, 40))
			}
		}
	}
}

func joinLast(ss []string, n int) string {
	if len(ss) > n {
		ss = ss[len(ss)-n:]
	}
	out := ""
	for _, s := range ss {
		out += s + "\n"
	}
	return out
}
