package routing

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/omniroute/omniroute/mapping"
)

// Read-only views of the engine's state for the admin API (GET /v1/plans, /v1/agents,
// /v1/queues, /v1/work/{id}/explain). They are computed on demand from the engine's own
// state by the goroutine that owns the engine, never kept up to date by Apply: a view costs
// nothing until asked for, and then O(agents + work). Their JSON field names are the API's
// (docs/api.md) and stable. Durations and ages are seconds; times are UTC.

// ExplainGroupLimit caps the agents listed in one explain group; Count says how many there are.
const ExplainGroupLimit = 50

// SkillLevel is a skill at a level (a requirement's minimum, or an agent's level).
type SkillLevel struct {
	Skill string  `json:"skill"`
	Level float64 `json:"level"`
}

// PlanView is a compiled interaction plan.
type PlanView struct {
	Name             string       `json:"name"`
	Queues           []string     `json:"queues"`
	Priority         int          `json:"priority"`
	RequiredSkills   []SkillLevel `json:"required_skills"`
	AdditionalSkills []SkillLevel `json:"additional_skills"`
	// DropAdditionalAfterSeconds: when the additional skills drop; 0 means never.
	DropAdditionalAfterSeconds float64 `json:"drop_additional_after_seconds"`
	// Relaxation lists, per step, the required skills from AfterSeconds of waiting on.
	Relaxation              []RelaxationView `json:"relaxation"`
	Overflow                *OverflowView    `json:"overflow"`
	OfferTimeoutSeconds     float64          `json:"offer_timeout_seconds"`
	WrapUpTimeoutSeconds    float64          `json:"wrap_up_timeout_seconds"`
	PreferredTimeoutSeconds float64          `json:"preferred_timeout_seconds"`
	AutoAccept              bool             `json:"auto_accept"`
	DispositionRequired     bool             `json:"disposition_required"`
}

// RelaxationView is a relaxation step: the required skills once work waited AfterSeconds.
type RelaxationView struct {
	AfterSeconds   float64      `json:"after_seconds"`
	RequiredSkills []SkillLevel `json:"required_skills"`
}

// OverflowView is where waiting work moves, and after how long in the plan.
type OverflowView struct {
	Plan         string  `json:"plan"`
	AfterSeconds float64 `json:"after_seconds"`
}

func seconds(ns int64) float64 { return time.Duration(ns).Seconds() }

func skillLevels(rs []req) []SkillLevel {
	out := make([]SkillLevel, len(rs))
	for i, r := range rs {
		out[i] = SkillLevel{Skill: r.skill, Level: float64(r.level) / 100}
	}
	return out
}

// PlanViews returns the table's plans, sorted by name.
func (ps *Table) PlanViews() []PlanView {
	out := make([]PlanView, 0, len(ps.plans))
	for _, p := range ps.plans {
		v := PlanView{
			Name: p.name, Queues: slices.Clone(p.queueNames), Priority: int(p.priority),
			RequiredSkills:             skillLevels(p.stages[0].req),
			AdditionalSkills:           skillLevels(p.additional),
			DropAdditionalAfterSeconds: seconds(p.dropAfter),
			Relaxation:                 []RelaxationView{},
			OfferTimeoutSeconds:        seconds(p.offerTimeout),
			WrapUpTimeoutSeconds:       seconds(p.wrapUpTimeout),
			PreferredTimeoutSeconds:    seconds(p.preferredTimeout),
			AutoAccept:                 p.autoAccept,
			DispositionRequired:        p.disposition,
		}
		if v.Queues == nil {
			v.Queues = []string{}
		}
		for _, s := range p.stages[1:] {
			v.Relaxation = append(v.Relaxation, RelaxationView{AfterSeconds: seconds(s.after), RequiredSkills: skillLevels(s.req)})
		}
		if p.overflowTo != nil {
			v.Overflow = &OverflowView{Plan: p.overflowTo.name, AfterSeconds: seconds(p.overflowAfter)}
		}
		out = append(out, v)
	}
	return out
}

// AgentView is one agent as the engine sees it. It holds no token or secret.
type AgentView struct {
	ID string `json:"id"`
	// State is the state shown (derived from the chosen state and the work held); Chosen is
	// the state the agent chose (or will enter when their work ends).
	State  mapping.State `json:"state"`
	Chosen mapping.State `json:"chosen_state"`
	// Presence is the Omni-Channel presence status (DeveloperName); Channels the channels it opens.
	Presence string   `json:"presence"`
	Channels []string `json:"channels"`
	Routable bool     `json:"routable"`
	// NotRoutable says why the agent gets no new work (empty when Routable): not_ready,
	// busy_inbound, no_capacity_profile, undeliverable, no_channel_open.
	NotRoutable []string       `json:"not_routable"`
	Skills      []SkillLevel   `json:"skills"`
	Capacity    CapacityView   `json:"capacity"`
	Work        []HeldWorkView `json:"work"`
	// IdleSince is when the agent last became free (the choosing order's "longest idle");
	// nil when it never was.
	IdleSince *time.Time `json:"idle_since"`
}

// CapacityView is an agent's capacity: units used of the total, per class and per channel.
// A Total of -1 means no cap beyond the agent's total.
type CapacityView struct {
	Profile  string         `json:"profile"`
	Used     int            `json:"used"`
	Total    int            `json:"total"`
	Classes  []UnitsView    `json:"classes"`
	Channels []UnitsView    `json:"channels"`
	Inbound  int            `json:"busy_inbound"`
	Counts   WorkCountsView `json:"counts"`
}

// UnitsView is capacity used of a cap (-1: no cap of its own) for a class or a channel.
type UnitsView struct {
	Name  string `json:"name"`
	Used  int    `json:"used"`
	Total int    `json:"total"`
}

// WorkCountsView counts an agent's work by stage.
type WorkCountsView struct {
	Offered int `json:"offered"`
	Active  int `json:"active"`
	WrapUp  int `json:"wrap_up"`
}

// HeldWorkView is work an agent holds: an open offer, an interaction, or one in wrap-up.
type HeldWorkView struct {
	WorkID  string `json:"work_id"`
	Status  string `json:"status"`
	Channel string `json:"channel"`
	Class   string `json:"class"`
	Plan    string `json:"plan"`
	Weight  int    `json:"weight"`
	Session string `json:"session,omitempty"`
}

var stateNames = [...]string{
	stNone: "none", stWaiting: "waiting", stPinned: "preferred_user_pending", stParked: "parked",
	stOffered: "offered", stActive: "active", stWrapUp: "wrap_up", stAwaitingPSR: "awaiting_psr",
}

func planName(p *Plan) string {
	if p == nil {
		return ""
	}
	return p.name
}

// Agents returns, sorted by id, the agents whose ids sort after after ("" : from the first),
// at most limit of them (limit <= 0: all), whether more follow, and how many agents the
// engine knows. Only the agents returned are turned into views.
func (e *Engine) Agents(after string, limit int) (page []AgentView, more bool, total int) {
	all := e.sortedAgents()
	i, _ := slices.BinarySearchFunc(all, after, func(a *agent, id string) int { return cmp.Compare(a.id, id) })
	if i < len(all) && all[i].id == after {
		i++
	}
	sel := all[i:]
	if limit > 0 && len(sel) > limit {
		sel, more = sel[:limit], true
	}
	held := map[*agent][]*item{}
	if len(sel) > 0 {
		for _, it := range e.items {
			if a := it.agent; a != nil && a.id >= sel[0].id && a.id <= sel[len(sel)-1].id {
				held[a] = append(held[a], it)
			}
		}
	}
	page = make([]AgentView, 0, len(sel))
	for _, a := range sel {
		page = append(page, e.agentView(a, held[a]))
	}
	return page, more, len(all)
}

func (e *Engine) agentView(a *agent, items []*item) AgentView {
	v := AgentView{
		ID: a.id, State: a.shown, Chosen: a.chosen, Presence: a.presence,
		Channels: slices.Clone(a.openChannels), Routable: true, NotRoutable: notRoutable(a),
		Skills: make([]SkillLevel, 0, len(a.rawSkills)), Work: []HeldWorkView{},
		IdleSince: idleSince(a),
	}
	if v.Channels == nil {
		v.Channels = []string{}
	}
	v.Routable = len(v.NotRoutable) == 0
	for _, s := range a.rawSkills {
		v.Skills = append(v.Skills, SkillLevel{Skill: s.Name, Level: s.Level})
	}
	c := &v.Capacity
	if a.profile != nil {
		c.Profile = a.profile.name
	}
	c.Used, c.Total, c.Inbound = int(a.usedTotal), int(a.capTotal), int(a.inbound)
	c.Counts = WorkCountsView{Offered: int(a.nOffered), Active: int(a.nActive), WrapUp: int(a.nWrap)}
	for _, cl := range mapping.Classes() {
		c.Classes = append(c.Classes, UnitsView{Name: cl.String(), Used: int(a.usedClass[cl]), Total: int(a.capClass[cl])})
	}
	c.Channels = []UnitsView{}
	for id, ch := range a.channels {
		if ch.used > 0 || ch.cap >= 0 {
			c.Channels = append(c.Channels, UnitsView{Name: e.chanNames[id], Used: int(ch.used), Total: int(ch.cap)})
		}
	}
	slices.SortFunc(c.Channels, func(x, y UnitsView) int { return cmp.Compare(x.Name, y.Name) })
	slices.SortFunc(items, func(x, y *item) int { return cmp.Compare(x.id, y.id) })
	for _, it := range items {
		hw := HeldWorkView{WorkID: it.id, Status: stateNames[it.state], Channel: it.channel,
			Class: it.class.String(), Plan: planName(it.plan), Weight: int(it.weight)}
		if it.session != nil {
			hw.Session = it.session.id
		}
		v.Work = append(v.Work, hw)
	}
	return v
}

// notRoutable lists why a gets no new work at all (see routable); empty when it may.
func notRoutable(a *agent) []string {
	why := []string{}
	if a.chosen.Major != mapping.Ready {
		why = append(why, "not_ready")
	}
	if a.inbound > 0 {
		why = append(why, "busy_inbound")
	}
	if a.capTotal <= 0 {
		why = append(why, "no_capacity_profile")
	}
	if a.undeliverable {
		why = append(why, "undeliverable")
	}
	if len(a.openChannels) == 0 {
		why = append(why, "no_channel_open")
	}
	return why
}

// QueueView is the work of one queue under one plan. Overflowed or transferred work counts
// under the plan it is in now, with the queue it came from; parked work has no plan.
type QueueView struct {
	Plan  string `json:"plan"`
	Queue string `json:"queue"`
	// Depth is the work not yet with an agent: waiting, preferred-user pending and parked.
	Depth            int     `json:"depth"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	Waiting          int     `json:"waiting"`
	PreferredPending int     `json:"preferred_user_pending"`
	Parked           int     `json:"parked"`
	Offered          int     `json:"offered"`
}

// Queues returns one row per (plan, queue): every queue of every plan, and any other queue
// that has work, sorted by plan then queue. Age is measured at now.
func (e *Engine) Queues(now time.Time) []QueueView {
	type key struct{ plan, queue string }
	rows := map[key]*QueueView{}
	oldest := map[key]int64{}
	var keys []key
	row := func(k key) *QueueView {
		if r := rows[k]; r != nil {
			return r
		}
		r := &QueueView{Plan: k.plan, Queue: k.queue}
		rows[k] = r
		keys = append(keys, k)
		return r
	}
	for _, p := range e.plans.plans {
		for _, q := range p.queueNames {
			row(key{p.name, q})
		}
	}
	for _, it := range e.items {
		k := key{planName(it.plan), it.queue}
		switch it.state {
		case stWaiting, stPinned, stParked:
			r := row(k)
			r.Depth++
			switch it.state {
			case stWaiting:
				r.Waiting++
			case stPinned:
				r.PreferredPending++
			default:
				r.Parked++
			}
			if o, ok := oldest[k]; !ok || it.since < o {
				oldest[k] = it.since
			}
		case stOffered:
			row(k).Offered++
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.plan, b.plan), cmp.Compare(a.queue, b.queue))
	})
	out := make([]QueueView, 0, len(keys))
	for _, k := range keys {
		r := rows[k]
		if o, ok := oldest[k]; ok {
			r.OldestAgeSeconds = max(seconds(now.UnixNano()-o), 0)
		}
		out = append(out, *r)
	}
	return out
}

// Explain groups, in the order an agent is tested: an agent is listed under the first that
// applies.
const (
	GroupMissingSkill     = "missing_skill"
	GroupNotReady         = "not_ready"
	GroupBusyInbound      = "busy_inbound"
	GroupNoCapacity       = "no_capacity"
	GroupUndeliverable    = "undeliverable"
	GroupNotOnChannel     = "presence_not_on_channel"
	GroupDeclined         = "declined_before"
	GroupPreferredPending = "preferred_user_pending"
	GroupRetryPending     = "preferred_retry_pending"
	GroupEligible         = "eligible"
)

// Explanation says why work waits, or why it went to its agent.
type Explanation struct {
	WorkID  string `json:"work_id"`
	PSR     string `json:"psr"`
	Queue   string `json:"queue"`
	Channel string `json:"channel"`
	Class   string `json:"class"`
	Plan    string `json:"plan"`
	// Status: waiting, preferred_user_pending, parked, offered, active, wrap_up, awaiting_psr.
	Status     string  `json:"status"`
	AgeSeconds float64 `json:"age_seconds"`
	Priority   int     `json:"priority"`
	// Stage is the relaxation step in force (0: none yet); AdditionalDropped: the additional
	// skills were dropped.
	Stage             int          `json:"stage"`
	AdditionalDropped bool         `json:"additional_dropped"`
	Required          []SkillLevel `json:"required_skills"`
	PreferredUser     string       `json:"preferred_user,omitempty"`
	PreferredRequired bool         `json:"preferred_required,omitempty"`
	Decliners         []string     `json:"declined_by"`
	// ParkReason is why parked work cannot be routed (queue_unmapped, unknown_channel).
	ParkReason string `json:"park_reason,omitempty"`
	// Summary is one sentence for people.
	Summary string `json:"summary"`
	// Groups (waiting work): every agent, under the first reason it cannot take the work.
	Groups []ExplainGroup `json:"groups,omitempty"`
	// Routed work: the agent who holds it, the choosing order, and the others eligible now.
	Agent         *CandidateView `json:"agent,omitempty"`
	ChoosingOrder []string       `json:"choosing_order,omitempty"`
	Others        *ExplainGroup  `json:"other_eligible,omitempty"`
}

// ExplainGroup is the agents that share a reason, at most ExplainGroupLimit of them, sorted
// by id; Count is how many there are.
type ExplainGroup struct {
	Reason string         `json:"reason"`
	Count  int            `json:"count"`
	Agents []ExplainAgent `json:"agents"`
}

// ExplainAgent is one agent of a group and the detail of its reason.
type ExplainAgent struct {
	ID string `json:"id"`
	// Missing is the first required skill the agent lacks (missing_skill).
	Missing *MissingSkill `json:"missing,omitempty"`
	// Not ready: the chosen state.
	State string `json:"state,omitempty"`
	// Detail is the reason in words (capacity used, channels open...).
	Detail string `json:"detail,omitempty"`
	// Candidate keys, for the other eligible agents of routed work.
	Candidate *CandidateView `json:"candidate,omitempty"`
}

// MissingSkill is a required skill an agent lacks: the level needed and the level held
// (Held false: the agent does not have the skill at all).
type MissingSkill struct {
	Skill       string  `json:"skill"`
	NeededLevel float64 `json:"needed_level"`
	HadLevel    float64 `json:"had_level"`
	Held        bool    `json:"held"`
}

// CandidateView is an agent's keys in the choosing order for one piece of work, as they are now.
type CandidateView struct {
	ID        string     `json:"id"`
	SkillFit  float64    `json:"skill_fit"`
	IdleSince *time.Time `json:"idle_since"`
	Used      int        `json:"used"`
	Total     int        `json:"total"`
	// DecidedBy (other agents): the first key of the choosing order on which the agent holding
	// the work is ahead now: skill_fit, or idle_since_at_offer when the fits tie (the offer
	// restarted the winner's idle time, so the finer keys are no longer comparable); or
	// not_eligible_at_offer when this agent's fit is higher (it could not take the work then).
	DecidedBy string `json:"decided_by,omitempty"`
}

// ChoosingOrder is the order the engine picks an agent by (see Engine).
var ChoosingOrder = []string{"skill_fit desc", "idle_since asc", "used asc", "id asc"}

// Explain explains work WorkID at now; false when the engine does not know it.
func (e *Engine) Explain(now time.Time, workID string) (Explanation, bool) {
	it := e.items[workID]
	if it == nil {
		return Explanation{}, false
	}
	x := Explanation{
		WorkID: it.id, PSR: it.psr, Queue: it.queue, Channel: it.channel, Plan: planName(it.plan),
		Status: stateNames[it.state], AgeSeconds: max(seconds(now.UnixNano()-it.since), 0),
		Priority: int(it.priority), Stage: it.stage, AdditionalDropped: it.dropped,
		PreferredUser: it.preferred, PreferredRequired: it.preferredRequired,
		Decliners: slices.Clone(it.decliners), Required: []SkillLevel{},
	}
	if it.class != 0 {
		x.Class = it.class.String()
	}
	if it.state == stParked {
		x.ParkReason = string(it.reported)
	}
	if x.Decliners == nil {
		x.Decliners = []string{}
	}
	var rs []req
	switch it.state {
	case stWaiting, stPinned, stOffered, stActive, stWrapUp:
		// The stage indexes the requirement sets of the plan the work was placed under.
		if it.plan != nil && 2*it.stage+1 < len(it.plan.reqs) {
			rs = workReqs(it)
			x.Required = skillLevels(rs)
		}
	}
	switch it.state {
	case stWaiting, stPinned:
		e.explainWaiting(&x, it, rs)
	case stOffered, stActive, stWrapUp:
		e.explainRouted(&x, it, rs)
	case stParked:
		x.Summary = "parked: cannot be routed under the current mapping (" + x.ParkReason + "); a reload that maps it routes it"
	case stAwaitingPSR:
		x.Summary = "transferred: waiting for the new PendingServiceRouting the requeue asked for"
	default:
		x.Summary = "between states"
	}
	return x, true
}

// agentLevel returns a's level on skill (hundredths) and whether a holds it.
func (e *Engine) agentLevel(a *agent, skill string) (int32, bool) {
	sid, ok := e.skillIDs[skill]
	if !ok {
		return 0, false
	}
	i, found := slices.BinarySearchFunc(a.skills, sid, func(x reqI, t int32) int { return cmp.Compare(x.skill, t) })
	if !found {
		return 0, false
	}
	return a.skills[i].level, true
}

// skillGap returns the first requirement a lacks, or nil.
func (e *Engine) skillGap(a *agent, rs []req) *MissingSkill {
	for _, r := range rs {
		had, held := e.agentLevel(a, r.skill)
		if held && had >= r.level {
			continue
		}
		return &MissingSkill{Skill: r.skill, NeededLevel: float64(r.level) / 100, HadLevel: float64(had) / 100, Held: held}
	}
	return nil
}

// skillFit is the sum of a's levels on rs (the choosing order's first key).
func (e *Engine) skillFit(a *agent, rs []req) float64 {
	var sum int32
	for _, r := range rs {
		l, _ := e.agentLevel(a, r.skill)
		sum += l
	}
	return float64(sum) / 100
}

// blocker returns the first reason a cannot take it (in the order of the groups), or "".
// skills: whether the skill check applies (not for a preferred user).
func (e *Engine) blocker(a *agent, it *item, rs []req, skills bool) (string, ExplainAgent) {
	ea := ExplainAgent{ID: a.id}
	if skills {
		if ea.Missing = e.skillGap(a, rs); ea.Missing != nil {
			return GroupMissingSkill, ea
		}
	}
	switch {
	case a.chosen.Major != mapping.Ready:
		ea.State = a.chosen.String()
		return GroupNotReady, ea
	case a.inbound > 0:
		ea.Detail = "handling work Salesforce routed itself"
		return GroupBusyInbound, ea
	case a.undeliverable:
		ea.Detail = "an offer did not reach them; no work until their presence or state changes"
		return GroupUndeliverable, ea
	case !a.channels[it.chanID].online:
		ea.Detail = "presence " + cmp.Or(a.presence, "none") + " does not open " + it.channel
		return GroupNotOnChannel, ea
	case !a.hasCap(it.class, it.chanID, it.weight):
		ea.Detail = capDetail(a, it)
		return GroupNoCapacity, ea
	case declined(it, a.id):
		return GroupDeclined, ea
	}
	return "", ea
}

// capDetail names the cap that leaves no room for it's weight.
func capDetail(a *agent, it *item) string {
	w := it.weight
	switch {
	case a.capTotal <= 0:
		return "no capacity profile"
	case a.usedTotal+w > a.capTotal:
		return units("total", a.usedTotal, a.capTotal, w)
	case a.capClass[it.class] >= 0 && a.usedClass[it.class]+w > a.capClass[it.class]:
		return units("class "+it.class.String(), a.usedClass[it.class], a.capClass[it.class], w)
	default:
		ch := a.channels[it.chanID]
		return units("channel "+it.channel, ch.used, ch.cap, w)
	}
}

func units(what string, used, total, w int32) string {
	return what + ": " + itoa(used) + "/" + itoa(total) + " units used, needs " + itoa(w)
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// groupSet collects agents by reason, keeping the order of the groups.
type groupSet struct {
	order []string
	by    map[string]*ExplainGroup
}

func (g *groupSet) add(reason string, ea ExplainAgent) {
	if g.by == nil {
		g.by = map[string]*ExplainGroup{}
	}
	gr := g.by[reason]
	if gr == nil {
		gr = &ExplainGroup{Reason: reason, Agents: []ExplainAgent{}}
		g.by[reason] = gr
		g.order = append(g.order, reason)
	}
	gr.Count++
	if len(gr.Agents) < ExplainGroupLimit {
		gr.Agents = append(gr.Agents, ea)
	}
}

var groupOrder = []string{GroupMissingSkill, GroupNotReady, GroupBusyInbound, GroupUndeliverable,
	GroupNotOnChannel, GroupNoCapacity, GroupDeclined, GroupPreferredPending, GroupRetryPending, GroupEligible}

func (g *groupSet) list() []ExplainGroup {
	out := []ExplainGroup{}
	for _, r := range groupOrder {
		if gr := g.by[r]; gr != nil {
			out = append(out, *gr)
		}
	}
	return out
}

func (e *Engine) explainWaiting(x *Explanation, it *item, rs []req) {
	var g groupSet
	pinned := it.state == stPinned
	for _, a := range e.sortedAgents() {
		isPref := pinned && a.id == it.preferred
		reason, ea := e.blocker(a, it, rs, !isPref)
		if isPref && reason == GroupDeclined && it.preferredRequired {
			reason = "" // a required preferred user is offered the work again after a decline
		}
		switch {
		case reason != "":
		case isPref && e.now < it.retryAt:
			reason = GroupRetryPending
			ea.Detail = "declined; offered again at " + time.Unix(0, it.retryAt).UTC().Format(time.RFC3339)
		case pinned && !isPref:
			reason = GroupPreferredPending
			ea.Detail = "the work waits for its preferred user " + it.preferred
		default:
			reason = GroupEligible
		}
		g.add(reason, ea)
	}
	x.Groups = g.list()
	switch {
	case pinned && e.agents[it.preferred] == nil:
		x.Summary = "waiting for preferred user " + it.preferred + ", who is not known yet"
	case pinned:
		x.Summary = "waiting for preferred user " + it.preferred
	case e.reconciling:
		x.Summary = "waiting: a reconcile is being applied; nothing is offered until it is in"
	case g.by[GroupEligible] != nil:
		x.Summary = "waiting: an eligible agent is taking other work first (higher priority or older)"
	default:
		x.Summary = "waiting: no agent can take it now"
	}
}

func (e *Engine) explainRouted(x *Explanation, it *item, rs []req) {
	w := it.agent
	x.Summary = stateNames[it.state] + ": with " + w.id
	if it.preferred == w.id {
		x.Summary += ", its preferred user (the choosing order does not apply)"
	}
	if it.plan == nil {
		return
	}
	x.ChoosingOrder = ChoosingOrder
	x.Agent = e.candidate(w, rs)
	type rival struct {
		a   *agent
		fit float64
	}
	var rivals []rival
	for _, a := range e.agentList {
		if a == w {
			continue
		}
		if reason, _ := e.blocker(a, it, rs, true); reason == "" {
			rivals = append(rivals, rival{a, e.skillFit(a, rs)})
		}
	}
	slices.SortFunc(rivals, func(p, q rival) int {
		return cmp.Or(-cmp.Compare(p.fit, q.fit), cmp.Compare(p.a.idleSince, q.a.idleSince),
			cmp.Compare(p.a.usedTotal, q.a.usedTotal), cmp.Compare(p.a.id, q.a.id))
	})
	others := &ExplainGroup{Reason: GroupEligible, Count: len(rivals), Agents: []ExplainAgent{}}
	for _, r := range rivals[:min(len(rivals), ExplainGroupLimit)] {
		c := e.candidate(r.a, rs)
		switch {
		case c.SkillFit < x.Agent.SkillFit:
			c.DecidedBy = "skill_fit"
		case c.SkillFit == x.Agent.SkillFit:
			c.DecidedBy = "idle_since_at_offer"
		default:
			c.DecidedBy = "not_eligible_at_offer"
		}
		others.Agents = append(others.Agents, ExplainAgent{ID: c.ID, Candidate: c})
	}
	x.Others = others
}

func (e *Engine) candidate(a *agent, rs []req) *CandidateView {
	return &CandidateView{ID: a.id, SkillFit: e.skillFit(a, rs), IdleSince: idleSince(a),
		Used: int(a.usedTotal), Total: int(a.capTotal)}
}

// idleSince is when a last became free, or nil when it never was.
func idleSince(a *agent) *time.Time {
	if a.idleSince == 0 {
		return nil
	}
	t := time.Unix(0, a.idleSince).UTC()
	return &t
}
