package mapping

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// MaxSkillLevel is the highest ServiceResourceSkill.SkillLevel Salesforce stores.
const MaxSkillLevel = 99.99

// Validate checks shape and cross-references and returns every error at once, as Problems
// sorted by position (file:line:col when the Config came from Parse). Parse calls it.
func (c *Config) Validate() error {
	l := c.check()
	l.ps = slices.DeleteFunc(l.ps, func(p Problem) bool { return p.Warning })
	return l.err()
}

// Warnings returns the problems that do not stop the mapping from loading, such as a
// revertToLastStatus that cannot take effect. `omniroute mapping check` reports them and fails.
func (c *Config) Warnings() []Problem {
	l := c.check()
	l.ps = slices.DeleteFunc(l.ps, func(p Problem) bool { return !p.Warning })
	sortProblems(l.ps)
	return l.ps
}

// Position returns where a YAML path (e.g. plans[1].queues[0]) was in the file, or its nearest
// recorded parent; the zero Position for Configs not built by Parse.
func (c *Config) Position(path string) Position { return c.src.pos(path) }

// Filename is the file name given to Parse, or "" for literals.
func (c *Config) Filename() string {
	if c.src == nil {
		return ""
	}
	return c.src.file
}

func (c *Config) check() *problemList {
	l := &problemList{src: c.src}
	c.checkPlans(l)
	c.checkChannels(l)
	c.checkCapacity(l)
	c.checkPresence(l)
	return l
}

func (c *Config) checkPlans(l *problemList) {
	if len(c.Plans) == 0 {
		l.add("plans", "at least one interaction plan is required")
		return
	}
	names := map[string]int{}
	queues := map[string]string{} // queue -> path where first seen
	for i, p := range c.Plans {
		path := fmt.Sprintf("plans[%d]", i)
		l.uniqueName(names, "plans", i, p.Name, "plan name", "a plan needs a name")
		if len(p.Queues) == 0 {
			l.add(path+".queues", "a plan needs at least one queue")
		}
		for j, q := range p.Queues {
			qp := fmt.Sprintf("%s.queues[%d]", path, j)
			if q == "" {
				l.add(qp, "empty queue name")
				continue
			}
			if first, ok := queues[q]; ok {
				l.add(qp, "queue %q is already mapped at %s; a queue belongs to one plan", q, first)
				continue
			}
			queues[q] = qp
		}
		required := checkSkills(l, path+".requiredSkills", p.RequiredSkills, nil)
		checkSkills(l, path+".additionalSkills", p.AdditionalSkills, required)
		if p.Priority < 0 {
			l.add(path+".priority", "priority %d must not be negative", p.Priority)
		}
		nonNegative(l, path+".dropAdditionalSkillsAfter", p.DropAdditionalSkillsAfter)
		nonNegative(l, path+".offerTimeout", p.OfferTimeout)
		nonNegative(l, path+".wrapUpTimeout", p.WrapUpTimeout)
		checkRelaxation(l, path, p)
	}
	for i, p := range c.Plans {
		if p.Overflow == nil {
			continue
		}
		path := fmt.Sprintf("plans[%d].overflow", i)
		switch {
		case p.Overflow.Plan == "":
			l.add(path+".plan", "overflow needs a target plan")
		case p.Overflow.Plan == p.Name:
			l.add(path+".plan", "plan %q overflows to itself", p.Name)
		case names[p.Overflow.Plan] == 0:
			l.add(path+".plan", "unknown plan %q%s", p.Overflow.Plan, didYouMean(p.Overflow.Plan, slices.Sorted(maps.Keys(names))))
		}
		if p.Overflow.After <= 0 {
			l.add(path+".after", "overflow needs a wait greater than 0, e.g. 5m")
		}
	}
	c.checkOverflowCycles(l, names)
}

// checkOverflowCycles reports each overflow loop once, at the plan listed first in the loop.
// Each plan has at most one overflow target, so one walk per plan with three colours finds
// every loop in linear time.
func (c *Config) checkOverflowCycles(l *problemList, names map[string]int) {
	next := func(i int) int {
		o := c.Plans[i].Overflow
		if o == nil || o.Plan == c.Plans[i].Name || names[o.Plan] == 0 {
			return -1
		}
		return names[o.Plan] - 1
	}
	const (
		unseen = iota
		onPath
		done
	)
	colour := make([]uint8, len(c.Plans))
	for start := range c.Plans {
		var path []int
		i := start
		for i >= 0 && colour[i] == unseen {
			colour[i] = onPath
			path = append(path, i)
			i = next(i)
		}
		if i >= 0 && colour[i] == onPath {
			// The walk came back to i: path from i on is a loop.
			loop := path[slices.Index(path, i):]
			first := slices.Min(loop)
			k := slices.Index(loop, first)
			loop = append(slices.Clone(loop[k:]), loop[:k]...)
			parts := make([]string, 0, len(loop)+1)
			for _, p := range loop {
				parts = append(parts, c.Plans[p].Name)
			}
			parts = append(parts, c.Plans[first].Name)
			l.add(fmt.Sprintf("plans[%d].overflow.plan", first), "overflow loops: %s", strings.Join(parts, " -> "))
		}
		for _, p := range path {
			colour[p] = done
		}
	}
}

func checkSkills(l *problemList, path string, skills []SkillRequirement, other map[string]bool) map[string]bool {
	seen := map[string]bool{}
	for i, s := range skills {
		sp := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case s.Skill == "":
			l.add(sp+".skill", "a skill requirement needs a skill")
		case seen[s.Skill]:
			l.add(sp+".skill", "skill %q is listed twice", s.Skill)
		case other[s.Skill]:
			l.add(sp+".skill", "skill %q is already a required skill", s.Skill)
		}
		seen[s.Skill] = true
		if s.MinLevel < 0 || s.MinLevel > MaxSkillLevel {
			l.add(sp+".minLevel", "skill level %g is out of range 0 to %g", s.MinLevel, MaxSkillLevel)
		}
	}
	return seen
}

func checkRelaxation(l *problemList, path string, p Plan) {
	level := map[string]float64{}
	for _, s := range p.RequiredSkills {
		level[s.Skill] = s.MinLevel
	}
	dropped := map[string]bool{}
	var prev int64
	for i, r := range p.Relaxation {
		rp := fmt.Sprintf("%s.relaxation[%d]", path, i)
		if r.After <= 0 {
			l.add(rp+".after", "a relaxation step needs a wait greater than 0, e.g. 2m")
		} else if int64(r.After) < prev {
			l.add(rp+".after", "relaxation steps must be in order of wait (%s comes after a later step)", r.After)
		}
		prev = max(prev, int64(r.After))
		cur, ok := level[r.Skill]
		switch {
		case r.Skill == "":
			l.add(rp+".skill", "a relaxation step needs a skill")
			continue
		case !ok:
			l.add(rp+".skill", "skill %q is not a required skill of this plan%s", r.Skill, didYouMean(r.Skill, slices.Sorted(maps.Keys(level))))
			continue
		case dropped[r.Skill]:
			l.add(rp+".skill", "skill %q was already dropped by an earlier step", r.Skill)
			continue
		}
		if r.Drop {
			dropped[r.Skill] = true
			continue
		}
		if r.MinLevel < 0 || r.MinLevel > MaxSkillLevel {
			l.add(rp+".minLevel", "skill level %g is out of range 0 to %g", r.MinLevel, MaxSkillLevel)
			continue
		}
		if r.MinLevel >= cur {
			l.add(rp+".minLevel", "a relaxation step must lower the level of %q below %g (or set drop: true)", r.Skill, cur)
			continue
		}
		level[r.Skill] = r.MinLevel
	}
}

func nonNegative(l *problemList, path string, d time.Duration) {
	if d < 0 {
		l.add(path, "duration must not be negative")
	}
}

func (c *Config) channelNames() []string {
	var ns []string
	for _, ch := range c.Channels {
		if ch.Name != "" {
			ns = append(ns, ch.Name)
		}
	}
	slices.Sort(ns)
	return slices.Compact(ns)
}

func (c *Config) checkChannels(l *problemList) {
	if len(c.Channels) == 0 {
		l.add("channels", "at least one service channel is required")
	}
	seen := map[string]int{}
	for i, ch := range c.Channels {
		path := fmt.Sprintf("channels[%d]", i)
		l.uniqueName(seen, "channels", i, ch.Name, "channel", "a channel needs the ServiceChannel DeveloperName")
		if ch.Class < Live || ch.Class > NonLive {
			l.add(path+".class", "a channel needs a class: live, semi-live or non-live")
		}
		if ch.Weight <= 0 {
			l.add(path+".weight", "weight %d must be at least 1", ch.Weight)
		}
		if f := ch.DispositionField; f != "" && !fieldAPIName.MatchString(f) {
			l.add(path+".dispositionField", "%q is not a field API name (letters, digits and single underscores, starting with a letter; a custom field ends in __c)", f)
		}
	}
}

// fieldAPIName matches a Salesforce field API name: a standard name, or a custom one with its
// __c suffix.
var fieldAPIName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*(__c)?$`)

func (c *Config) checkCapacity(l *problemList) {
	profiles := map[string]int{}
	if len(c.Capacity.Profiles) == 0 {
		l.add("capacity.profiles", "at least one capacity profile is required")
	}
	channels := c.channelNames()
	for i, p := range c.Capacity.Profiles {
		path := fmt.Sprintf("capacity.profiles[%d]", i)
		l.uniqueName(profiles, "capacity.profiles", i, p.Name, "capacity profile", "a capacity profile needs a name")
		if p.Total <= 0 {
			l.add(path+".total", "total capacity %d must be at least 1", p.Total)
		}
		for _, cl := range slices.Sorted(maps.Keys(p.PerClass)) {
			kp := joinKey(path+".perClass", cl.String())
			if cl < Live || cl > NonLive {
				l.add(path+".perClass", "invalid interaction class %d", uint8(cl))
				continue
			}
			if v := p.PerClass[cl]; v <= 0 || v > p.Total {
				l.add(kp, "cap %d for %s must be between 1 and the total %d", v, cl, p.Total)
			}
		}
		for _, ch := range slices.Sorted(maps.Keys(p.PerChannel)) {
			kp := joinKey(path+".perChannel", ch)
			if !slices.Contains(channels, ch) {
				l.add(kp, "channel %q is not in channels%s", ch, didYouMean(ch, channels))
				continue
			}
			if v := p.PerChannel[ch]; v <= 0 || v > p.Total {
				l.add(kp, "cap %d for %s must be between 1 and the total %d", v, ch, p.Total)
			}
		}
	}
	names := slices.Sorted(maps.Keys(profiles))
	switch {
	case c.Capacity.Default == "":
		if len(c.Capacity.Profiles) > 0 {
			l.add("capacity.default", "name the default capacity profile")
		}
	case profiles[c.Capacity.Default] == 0:
		l.add("capacity.default", "unknown capacity profile %q%s", c.Capacity.Default, didYouMean(c.Capacity.Default, names))
	}
	agents := map[string]string{}
	groups := map[string]string{}
	for i, o := range c.Capacity.Overrides {
		path := fmt.Sprintf("capacity.overrides[%d]", i)
		if profiles[o.Profile] == 0 {
			l.add(path+".profile", "unknown capacity profile %q%s", o.Profile, didYouMean(o.Profile, names))
		}
		if len(o.Agents) == 0 && len(o.Groups) == 0 {
			l.add(path, "an override needs agents or groups")
		}
		for j, a := range o.Agents {
			ap := fmt.Sprintf("%s.agents[%d]", path, j)
			if first, ok := agents[a]; ok {
				l.add(ap, "agent %q is already overridden at %s", a, first)
				continue
			}
			agents[a] = ap
		}
		for j, g := range o.Groups {
			gp := fmt.Sprintf("%s.groups[%d]", path, j)
			if first, ok := groups[g]; ok {
				l.add(gp, "group %q is already overridden at %s", g, first)
				continue
			}
			groups[g] = gp
		}
	}
}

func (c *Config) checkPresence(l *problemList) {
	p := &c.Presence
	const from, to = "presence.fromSalesforce", "presence.toSalesforce"
	for _, status := range slices.Sorted(maps.Keys(p.FromSalesforce)) {
		st := p.FromSalesforce[status]
		path := joinKey(from, status)
		switch {
		case status == "":
			l.add(from, "empty presence status name")
		case strings.EqualFold(status, OfflineStatus):
			l.add(path, "Offline cannot be mapped: it always means the agent logged out of Omni-Channel (see events.offlineLogsOut)")
		case st.Major < Ready || st.Major > LoggedOut:
			l.add(path, "invalid agent state")
		case st.Major == Busy:
			l.add(path, "%s cannot be chosen from Salesforce: omniroute sets Busy when it assigns work; map the status to Away or another state", st)
		case st.Major == LoggedOut:
			l.add(path, "%s cannot be chosen from Salesforce: an agent with a presence status is logged in; going Offline logs out", st)
		}
	}
	for _, m := range MajorStates() {
		if _, ok := p.ToSalesforce[State{Major: m}]; !ok {
			l.add(to, "major state %s is not mapped; every major state needs a presence status", m)
		}
	}
	for _, st := range slices.SortedFunc(maps.Keys(p.ToSalesforce), compareStates) {
		status := p.ToSalesforce[st]
		path := joinKey(to, st.String())
		switch {
		case st.Major < Ready || st.Major > LoggedOut:
			l.add(to, "invalid agent state %d", uint8(st.Major))
		case status == "":
			l.add(path, "%s needs a presence status", st)
		case st.Major == LoggedOut && status != OfflineStatus:
			l.add(path, "LoggedOut must map to Offline, got %q", status)
		case st.Major != LoggedOut && strings.EqualFold(status, OfflineStatus):
			l.add(path, "only LoggedOut may map to Offline: Offline in Omni-Channel logs the agent out")
		}
	}
	pc := p.PostCallState
	switch {
	case pc.Major < Ready || pc.Major > LoggedOut:
		l.add("presence.postCallState", "invalid post-call state")
	case pc.Major == Busy || pc.Major == WrapUp:
		l.add("presence.postCallState", "post-call state %s is not allowed: it follows work and wrap-up (use Ready, ReadyOutbound, Away, ExtendedAway or LoggedOut)", pc)
	}
	if p.RevertToLastStatus && !RevertApplies(pc) && pc.Major != 0 {
		l.warn("presence.revertToLastStatus",
			"has no effect: postCallState is %s, not Ready or ReadyOutbound, so agents get the status mapped to %s after work", pc, pc)
	}
}

func compareStates(a, b State) int {
	if a.Major != b.Major {
		return int(a.Major) - int(b.Major)
	}
	return strings.Compare(a.Minor, b.Minor)
}

// ValidateOrg checks a valid Config against org metadata: every queue exists (by DeveloperName
// or Id) and uses External Routing; every channel, presence status and skill exists. Unknown
// names get a close suggestion ("did you mean Ready_for_cases?"). It returns warnings (for
// example an external-routing queue no plan routes) and an error of type Problems.
func ValidateOrg(cfg *Config, org Org) (warnings []Problem, err error) {
	l := &problemList{src: cfg.src}
	var queueNames []string
	queues := map[string]OrgQueue{}
	for _, q := range org.Queues {
		queues[q.DeveloperName] = q
		if q.ID != "" {
			queues[q.ID] = q
		}
		if q.RoutingModel == RoutingModelExternal {
			queueNames = append(queueNames, q.DeveloperName)
		}
	}
	mapped := map[string]bool{}
	mappedAt := map[string]string{} // org queue DeveloperName -> first path naming it
	for i, p := range cfg.Plans {
		for j, name := range p.Queues {
			path := fmt.Sprintf("plans[%d].queues[%d]", i, j)
			q, ok := queues[name]
			if ok {
				if first, dup := mappedAt[q.DeveloperName]; dup {
					l.add(path, "queue %q is queue %s, already mapped at %s; a queue belongs to one plan", name, q.DeveloperName, first)
					continue
				}
				mappedAt[q.DeveloperName] = path
			}
			switch {
			case !ok:
				l.add(path, "queue %q does not exist in the org%s", name, didYouMean(name, queueNames))
			case q.RoutingModel == "":
				l.add(path, "queue %q has no routing configuration; give it one whose routing model is External Routing", name)
			case q.RoutingModel != RoutingModelExternal:
				l.add(path, "queue %q uses routing model %s, not External Routing; omniroute routes only external-routing queues", name, q.RoutingModel)
			default:
				mapped[q.DeveloperName] = true
			}
		}
	}
	for _, q := range org.Queues {
		if q.RoutingModel == RoutingModelExternal && !mapped[q.DeveloperName] {
			l.warn("plans", "external-routing queue %s is in no plan; its work will wait unrouted", q.DeveloperName)
		}
	}

	channels := sortedNames(org.Channels, func(c OrgChannel) string { return c.DeveloperName })
	for i, ch := range cfg.Channels {
		if !slices.Contains(channels, ch.Name) {
			l.add(fmt.Sprintf("channels[%d].name", i), "service channel %q does not exist in the org%s", ch.Name, didYouMean(ch.Name, channels))
		}
	}
	for _, ch := range channels {
		if !slices.ContainsFunc(cfg.Channels, func(c Channel) bool { return c.Name == ch }) {
			l.warn("channels", "service channel %s is not mapped; work on it cannot be routed", ch)
		}
	}

	skills := sortedNames(org.Skills, func(s OrgSkill) string { return s.DeveloperName })
	checkSkill := func(path, skill string) {
		if skill != "" && !slices.Contains(skills, skill) {
			l.add(path, "skill %q does not exist in the org%s", skill, didYouMean(skill, skills))
		}
	}
	for i, p := range cfg.Plans {
		for j, s := range p.RequiredSkills {
			checkSkill(fmt.Sprintf("plans[%d].requiredSkills[%d].skill", i, j), s.Skill)
		}
		for j, s := range p.AdditionalSkills {
			checkSkill(fmt.Sprintf("plans[%d].additionalSkills[%d].skill", i, j), s.Skill)
		}
	}

	statuses := sortedNames(org.Statuses, func(s OrgStatus) string { return s.DeveloperName })
	checkStatus := func(path, status string) {
		if status != OfflineStatus && !slices.Contains(statuses, status) {
			l.add(path, "presence status %q does not exist in the org%s", status, didYouMean(status, statuses))
		}
	}
	for _, status := range slices.Sorted(maps.Keys(cfg.Presence.FromSalesforce)) {
		checkStatus(joinKey("presence.fromSalesforce", status), status)
	}
	for _, st := range slices.SortedFunc(maps.Keys(cfg.Presence.ToSalesforce), compareStates) {
		checkStatus(joinKey("presence.toSalesforce", st.String()), cfg.Presence.ToSalesforce[st])
	}

	for _, p := range l.ps {
		if p.Warning {
			warnings = append(warnings, p)
		}
	}
	sortProblems(warnings)
	l.ps = slices.DeleteFunc(l.ps, func(p Problem) bool { return p.Warning })
	return warnings, l.err()
}

func sortedNames[T any](xs []T, name func(T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, name(x))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// uniqueName checks the name of list[i]: an empty name is reported with empty, a repeat as a
// duplicate of the first entry with that name; seen maps each name to its first index + 1.
func (l *problemList) uniqueName(seen map[string]int, list string, i int, name, what, empty string) {
	path := fmt.Sprintf("%s[%d].name", list, i)
	switch {
	case name == "":
		l.add(path, "%s", empty)
	case seen[name] > 0:
		l.add(path, "duplicate %s %q (also %s[%d])", what, name, list, seen[name]-1)
	default:
		seen[name] = i + 1
	}
}
