package routing

import (
	"slices"
)

// Requirement sets, skills, channels and buckets: the indexes behind every decision.

func (e *Engine) internChannels() {
	for _, name := range e.plans.channelNames {
		if _, ok := e.chanIDs[name]; !ok {
			e.chanIDs[name] = int32(len(e.chanNames))
			e.chanNames = append(e.chanNames, name)
		}
	}
}

func (e *Engine) skillID(name string) int32 {
	if id, ok := e.skillIDs[name]; ok {
		return id
	}
	id := int32(len(e.skillIDs))
	e.skillIDs[name] = id
	return id
}

func (e *Engine) planReqs(p *Plan) []int32 {
	if ids, ok := e.planReq[p]; ok {
		return ids
	}
	ids := make([]int32, len(p.keys))
	for i, k := range p.keys {
		ids[i] = e.reqID(k, p.reqs[i])
	}
	e.planReq[p] = ids
	return ids
}

// reqID interns the requirement set rs, whose canonical key is k.
func (e *Engine) reqID(k string, rs []req) int32 {
	if id, ok := e.reqIDs[k]; ok {
		return id
	}
	id := int32(len(e.reqSets))
	e.reqIDs[k] = id
	ri := make([]reqI, 0, len(rs))
	for _, r := range rs {
		ri = append(ri, reqI{skill: e.skillID(r.skill), level: r.level})
	}
	slices.SortFunc(ri, func(a, b reqI) int { return int(a.skill - b.skill) })
	e.reqSets = append(e.reqSets, ri)
	return id
}

// setWorkSkills records the PSR's own skill requirements.
func (e *Engine) setWorkSkills(it *item, sk []SkillRequirement) {
	it.psrRequired, it.psrAdditional = it.psrRequired[:0], it.psrAdditional[:0]
	for _, s := range sk {
		r := req{skill: s.Name, level: level(s.Level)}
		if s.Additional {
			it.psrAdditional = mergeReq(it.psrAdditional, r)
		} else {
			it.psrRequired = mergeReq(it.psrRequired, r)
		}
	}
}

// workReqs returns what waiting work requires now: its plan's skills at its stage (with the
// additional ones until dropped) and the PSR's own.
func workReqs(it *item) []req {
	d := 0
	if it.dropped {
		d = 1
	}
	rs := it.plan.reqs[2*it.stage+d]
	if len(it.psrRequired) == 0 && (len(it.psrAdditional) == 0 || it.dropped) {
		return rs
	}
	rs = slices.Clone(rs)
	for _, r := range it.psrRequired {
		rs = mergeReq(rs, r)
	}
	if !it.dropped {
		for _, r := range it.psrAdditional {
			rs = mergeReq(rs, r)
		}
	}
	return rs
}

// fit returns the sum of a's levels on rs and whether a meets every requirement.
func fit(a *agent, rs []reqI) (int32, bool) {
	var sum int32
	j := 0
	for _, r := range rs {
		for j < len(a.skills) && a.skills[j].skill < r.skill {
			j++
		}
		if j == len(a.skills) || a.skills[j].skill != r.skill || a.skills[j].level < r.level {
			return 0, false
		}
		sum += a.skills[j].level
	}
	return sum, true
}

func (e *Engine) bucketFor(it *item) *bucket {
	d := 0
	if it.dropped {
		d = 1
	}
	rid := e.planReqs(it.plan)[2*it.stage+d]
	if len(it.psrRequired) > 0 || (len(it.psrAdditional) > 0 && !it.dropped) {
		rs := workReqs(it)
		rid = e.reqID(reqKey(rs), rs)
	}
	k := bucketKey{req: rid, chanID: it.chanID, weight: it.weight, class: it.class}
	if b, ok := e.buckets[k]; ok {
		return b
	}
	b := &bucket{key: k, req: e.reqSets[rid]}
	e.buckets[k] = b
	e.bucketList = append(e.bucketList, b)
	for _, a := range e.agentList {
		e.join(a, b)
	}
	return b
}

func (e *Engine) join(a *agent, b *bucket) {
	f, ok := fit(a, b.req)
	if !ok {
		return
	}
	m := &membership{a: a, b: b, fit: f, pos: -1}
	a.memberships = append(a.memberships, m)
	e.refreshMem(m)
}

// gcBuckets drops buckets with no waiting work (they are rebuilt on demand).
func (e *Engine) gcBuckets() {
	keep := e.bucketList[:0]
	for _, b := range e.bucketList {
		if len(b.items) > 0 {
			keep = append(keep, b)
			continue
		}
		delete(e.buckets, b.key)
	}
	clear(e.bucketList[len(keep):])
	e.bucketList = keep
	for _, a := range e.agentList {
		ms := a.memberships[:0]
		for _, m := range a.memberships {
			if e.buckets[m.b.key] == m.b {
				ms = append(ms, m)
			} else if m.pos >= 0 {
				m.b.agents.remove(m)
			}
		}
		clear(a.memberships[len(ms):])
		a.memberships = ms
	}
}
