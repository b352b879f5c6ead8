package routing

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omniroute/omniroute/mapping"
)

// Table is the immutable routing table compiled from a mapping: interaction plans by queue,
// channels with their class and weight, capacity profiles and the presence tables. Build it
// with Compile; the engine only reads it, so one *Table may be shared and swapped in whole.
type Table struct {
	plans        []*Plan // sorted by name
	byName       map[string]*Plan
	queues       map[string]*Plan
	channels     map[string]channelDef
	channelNames []string // sorted
	liveChannels []string // sorted
	profiles     map[string]*profile
	defProfile   *profile
	overrides    []override
	presence     mapping.Presence
	events       mapping.PresenceEvents
	revert       bool
	postCall     mapping.State
}

// Plans is the former name of Table, kept only until the connector has switched to Table.
type Plans = Table

type channelDef struct {
	class  mapping.Class
	weight int32
	// dispositionField is the work item field a session's disposition is written to.
	dispositionField string
}

// profile is a compiled capacity profile. class[c] < 0 means "capped by total only";
// channels maps a channel name to its unit cap.
type profile struct {
	name     string
	total    int32
	class    [4]int32
	channels map[string]int32
}

type override struct {
	p      *profile
	agents map[string]bool
	groups map[string]bool
}

// Plan is a compiled interaction plan. Times are nanoseconds.
type Plan struct {
	name          string
	queueNames    []string // sorted: a transfer to the plan requeues to the first
	priority      int32
	stages        []stage // stages[0].after == 0; requirement sets in order of wait
	additional    []req
	dropAfter     int64 // 0: never
	overflowTo    *Plan
	overflowAfter int64
	offerTimeout  int64
	wrapUpTimeout int64
	autoAccept    bool
	disposition   bool
	// preferredTimeout is how long non-required preferred-user work waits for that user: the plan's
	// offer timeout (the mapping has no separate key), or DefaultPreferredTimeout when that is 0.
	preferredTimeout int64
	// keys[2*stage+dropped] is the canonical requirement-set key.
	keys []string
	reqs [][]req
}

type stage struct {
	after int64
	req   []req
}

// req is a skill at a minimum level in hundredths (levels are 0–99.99).
type req struct {
	skill string
	level int32
}

// DefaultPreferredTimeout is how long work with a non-required preferred user waits for that
// user when its plan has no offer timeout.
const DefaultPreferredTimeout = 30 * time.Second

// Name returns the plan's name.
func (p *Plan) Name() string { return p.name }

// Plan returns the plan named name, or nil.
func (ps *Table) Plan(name string) *Plan { return ps.byName[name] }

// Presence is the mapping's presence tables (seed 003).
func (ps *Table) Presence() *mapping.Presence { return &ps.presence }

// DispositionField is the field of channel's work items that receives a session's disposition
// (mapping channels[].dispositionField); "" when none.
func (ps *Table) DispositionField(channel string) string {
	return ps.channels[channel].dispositionField
}

// PlanForQueue returns the plan routing queue, or nil.
func (ps *Table) PlanForQueue(queue string) *Plan { return ps.queues[queue] }

// PlanNames returns the plan names, sorted.
func (ps *Table) PlanNames() []string {
	out := make([]string, len(ps.plans))
	for i, p := range ps.plans {
		out[i] = p.name
	}
	return out
}

func level(f float64) int32 { return int32(math.Round(f * 100)) }

// Compile builds the routing table from a validated mapping. It re-checks the invariants the
// engine relies on (unique names, known overflow targets and profiles, valid classes) and
// returns every problem at once.
func Compile(cfg *mapping.Config) (*Table, error) {
	if cfg == nil {
		return nil, errors.New("compile mapping: nil config")
	}
	var errs []error
	ps := &Table{
		byName:   map[string]*Plan{},
		queues:   map[string]*Plan{},
		channels: map[string]channelDef{},
		profiles: map[string]*profile{},
		presence: cfg.Presence,
		events:   cfg.Presence.Events,
		revert:   cfg.Presence.RevertToLastStatus,
		postCall: cfg.Presence.PostCallState,
	}
	if ps.postCall.Major == 0 {
		ps.postCall = mapping.State{Major: mapping.Ready}
	}
	for i, ch := range cfg.Channels {
		_, dup := ps.channels[ch.Name]
		if err := checkName("channels", "channel", i, ch.Name, dup); err != nil {
			errs = append(errs, err)
			continue
		}
		if ch.Class < mapping.Live || ch.Class > mapping.NonLive {
			errs = append(errs, fmt.Errorf("compile channels[%d]: channel %q has invalid class %d", i, ch.Name, ch.Class))
			continue
		}
		w := int32(max(ch.Weight, 1))
		ps.channels[ch.Name] = channelDef{class: ch.Class, weight: w, dispositionField: ch.DispositionField}
		ps.channelNames = append(ps.channelNames, ch.Name)
		if ch.Class == mapping.Live {
			ps.liveChannels = append(ps.liveChannels, ch.Name)
		}
	}
	slices.Sort(ps.channelNames)
	slices.Sort(ps.liveChannels)

	for i, pr := range cfg.Capacity.Profiles {
		if _, dup := ps.profiles[pr.Name]; dup || pr.Name == "" {
			errs = append(errs, fmt.Errorf("compile capacity.profiles[%d]: duplicate or empty profile name %q", i, pr.Name))
			continue
		}
		if pr.Total <= 0 {
			errs = append(errs, fmt.Errorf("compile capacity.profiles[%d]: profile %q total %d is not positive", i, pr.Name, pr.Total))
			continue
		}
		p := &profile{name: pr.Name, total: int32(pr.Total), class: [4]int32{-1, -1, -1, -1}, channels: map[string]int32{}}
		for c, n := range pr.PerClass {
			if c < mapping.Live || c > mapping.NonLive {
				errs = append(errs, fmt.Errorf("compile capacity.profiles[%d]: invalid class %d", i, c))
				continue
			}
			p.class[c] = int32(n)
		}
		for ch, n := range pr.PerChannel {
			p.channels[ch] = int32(n)
		}
		ps.profiles[pr.Name] = p
	}
	if cfg.Capacity.Default != "" {
		ps.defProfile = ps.profiles[cfg.Capacity.Default]
		if ps.defProfile == nil {
			errs = append(errs, fmt.Errorf("compile capacity.default: unknown profile %q", cfg.Capacity.Default))
		}
	}
	for i, o := range cfg.Capacity.Overrides {
		p := ps.profiles[o.Profile]
		if p == nil {
			errs = append(errs, fmt.Errorf("compile capacity.overrides[%d]: unknown profile %q", i, o.Profile))
			continue
		}
		ov := override{p: p, agents: map[string]bool{}, groups: map[string]bool{}}
		for _, a := range o.Agents {
			ov.agents[a] = true
		}
		for _, g := range o.Groups {
			ov.groups[g] = true
		}
		ps.overrides = append(ps.overrides, ov)
	}

	for i := range cfg.Plans {
		mp := &cfg.Plans[i]
		_, dup := ps.byName[mp.Name]
		if err := checkName("plans", "plan", i, mp.Name, dup); err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := compilePlan(mp)
		if err != nil {
			errs = append(errs, fmt.Errorf("compile plans[%d] %q: %w", i, mp.Name, err))
			continue
		}
		ps.byName[p.name] = p
		ps.plans = append(ps.plans, p)
		for _, q := range mp.Queues {
			if other, dup := ps.queues[q]; dup {
				errs = append(errs, fmt.Errorf("compile plans[%d]: queue %q already belongs to plan %q", i, q, other.name))
				continue
			}
			ps.queues[q] = p
			p.queueNames = append(p.queueNames, q)
		}
		slices.Sort(p.queueNames)
	}
	for i := range cfg.Plans {
		mp := &cfg.Plans[i]
		p := ps.byName[mp.Name]
		if p == nil || mp.Overflow == nil {
			continue
		}
		to := ps.byName[mp.Overflow.Plan]
		if to == nil {
			errs = append(errs, fmt.Errorf("compile plans[%d] %q: overflow to unknown plan %q", i, mp.Name, mp.Overflow.Plan))
			continue
		}
		if mp.Overflow.After <= 0 {
			errs = append(errs, fmt.Errorf("compile plans[%d] %q: overflow after %s is not positive", i, mp.Name, mp.Overflow.After))
			continue
		}
		if to != p {
			p.overflowTo, p.overflowAfter = to, int64(mp.Overflow.After)
		}
	}
	slices.SortFunc(ps.plans, func(a, b *Plan) int { return cmp.Compare(a.name, b.name) })
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ps, nil
}

// checkName reports an empty or duplicate name of the i-th entry of a mapping list.
func checkName(list, kind string, i int, name string, dup bool) error {
	switch {
	case name == "":
		return fmt.Errorf("compile %s[%d]: empty name", list, i)
	case dup:
		return fmt.Errorf("compile %s[%d]: duplicate %s %q", list, i, kind, name)
	}
	return nil
}

func compilePlan(mp *mapping.Plan) (*Plan, error) {
	p := &Plan{
		name:          mp.Name,
		priority:      int32(mp.Priority),
		dropAfter:     int64(mp.DropAdditionalSkillsAfter),
		offerTimeout:  int64(mp.OfferTimeout),
		wrapUpTimeout: int64(mp.WrapUpTimeout),
		autoAccept:    mp.AutoAccept,
		disposition:   mp.DispositionRequired,
	}
	p.preferredTimeout = p.offerTimeout
	if p.preferredTimeout <= 0 {
		p.preferredTimeout = int64(DefaultPreferredTimeout)
	}
	cur := make([]req, 0, len(mp.RequiredSkills))
	for _, r := range mp.RequiredSkills {
		cur = mergeReq(cur, req{skill: r.Skill, level: level(r.MinLevel)})
	}
	for _, r := range mp.AdditionalSkills {
		p.additional = mergeReq(p.additional, req{skill: r.Skill, level: level(r.MinLevel)})
	}
	p.stages = append(p.stages, stage{after: 0, req: slices.Clone(cur)})
	steps := slices.Clone(mp.Relaxation)
	slices.SortStableFunc(steps, func(a, b mapping.RelaxationStep) int { return cmp.Compare(a.After, b.After) })
	for _, st := range steps {
		if st.After <= 0 {
			return nil, fmt.Errorf("relaxation step for %q after %s is not positive", st.Skill, st.After)
		}
		idx := slices.IndexFunc(cur, func(r req) bool { return r.skill == st.Skill })
		if idx < 0 {
			return nil, fmt.Errorf("relaxation step for %q: not a required skill", st.Skill)
		}
		if st.Drop {
			cur = slices.Delete(slices.Clone(cur), idx, idx+1)
		} else {
			cur = slices.Clone(cur)
			cur[idx].level = min(cur[idx].level, level(st.MinLevel))
		}
		last := &p.stages[len(p.stages)-1]
		if last.after == int64(st.After) {
			last.req = slices.Clone(cur)
		} else {
			p.stages = append(p.stages, stage{after: int64(st.After), req: slices.Clone(cur)})
		}
	}
	for _, s := range p.stages {
		with := slices.Clone(s.req)
		for _, a := range p.additional {
			with = mergeReq(with, a)
		}
		p.reqs = append(p.reqs, with, s.req)
		p.keys = append(p.keys, reqKey(with), reqKey(s.req))
	}
	return p, nil
}

// mergeReq adds r to rs (sorted by skill), keeping the higher level for a repeated skill.
func mergeReq(rs []req, r req) []req {
	i, found := slices.BinarySearchFunc(rs, r.skill, func(a req, s string) int { return cmp.Compare(a.skill, s) })
	if found {
		rs[i].level = max(rs[i].level, r.level)
		return rs
	}
	return slices.Insert(rs, i, r)
}

func reqKey(rs []req) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.skill)
		b.WriteByte(0)
		b.WriteString(strconv.Itoa(int(r.level)))
		b.WriteByte(0)
	}
	return b.String()
}

// profileFor picks the capacity profile of an agent: the first override listing the agent,
// else the first override listing one of its groups, else the default. Nil means none.
func (ps *Table) profileFor(agentID string, groups []string) *profile {
	for _, o := range ps.overrides {
		if o.agents[agentID] {
			return o.p
		}
	}
	for _, o := range ps.overrides {
		for _, g := range groups {
			if o.groups[g] {
				return o.p
			}
		}
	}
	return ps.defProfile
}

// stateForStatus maps a presence status to a state (seed 003, mapping.Presence.StateForStatus);
// an empty status is offline.
func (ps *Table) stateForStatus(status string) mapping.State {
	if status == "" {
		return mapping.State{Major: mapping.LoggedOut}
	}
	return ps.presence.StateForStatus(status)
}

// statusForState maps a state to a presence status; an unmapped minor state uses its major
// state's status (seed 003, mapping.Presence.StatusForState).
func (ps *Table) statusForState(s mapping.State) string {
	return ps.presence.StatusForState(s)
}
