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
	ri := make([]reqI, 0, len(rs))
	for _, r := range rs {
		ri = append(ri, reqI{skill: e.skillID(r.skill), level: r.level})
	}
	slices.SortFunc(ri, func(a, b reqI) int { return int(a.skill - b.skill) })
	var id int32
	if n := len(e.freeReqs); n > 0 {
		id = e.freeReqs[n-1]
		e.freeReqs = e.freeReqs[:n-1]
		e.reqSets[id], e.reqKeys[id] = ri, k
	} else {
		id = int32(len(e.reqSets))
		e.reqSets = append(e.reqSets, ri)
		e.reqKeys = append(e.reqKeys, k)
	}
	e.reqIDs[k] = id
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
	if len(e.bucketList) >= e.bucketGCAt {
		// Amortised: at most as many buckets again are made before the next pass.
		e.gcBuckets(false, rid)
		e.bucketGCAt = max(64, 2*len(e.bucketList))
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

// gcBuckets drops buckets with no waiting work (they are rebuilt on demand) and frees the
// requirement sets that no bucket and no plan of the current table uses. With planBuckets false
// it keeps the empty buckets of the current table's plans, which come back all the time, and
// drops only those of PSR skill requirements; keep is a requirement set in use by the caller.
func (e *Engine) gcBuckets(planBuckets bool, keep ...int32) {
	used := make([]bool, len(e.reqSets))
	for _, ids := range e.planReq {
		for _, id := range ids {
			used[id] = true
		}
	}
	kept := e.bucketList[:0]
	for _, b := range e.bucketList {
		if len(b.items) > 0 || (!planBuckets && used[b.key.req]) {
			kept = append(kept, b)
			continue
		}
		delete(e.buckets, b.key)
	}
	clear(e.bucketList[len(kept):])
	e.bucketList = kept
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
	for _, id := range keep {
		used[id] = true
	}
	for _, b := range e.bucketList {
		used[b.key.req] = true
	}
	for id, u := range used {
		if !u && e.reqKeys[id] != "" {
			delete(e.reqIDs, e.reqKeys[id])
			e.reqSets[id], e.reqKeys[id] = nil, ""
			e.freeReqs = append(e.freeReqs, int32(id))
		}
	}
}
