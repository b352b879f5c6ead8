package emulator

import (
	"fmt"
	"strings"
)

// loadSeed creates the seed's records without publishing events.
func (e *Emulator) loadSeed(s Seed) error {
	if len(s.OrgID) < 15 {
		s.OrgID = DemoOrgID
		e.opts.Seed.OrgID = DemoOrgID
	}
	e.org = orgRefs{
		queues: map[string]*record{}, channels: map[string]*record{}, statuses: map[string]*record{},
		skills: map[string]*record{}, users: map[string]*record{}, routingCfgs: map[string]*record{},
		statusChans: map[string]map[string]bool{}, chanWeight: map[string]float64{},
		buttons: map[string]string{},
	}
	for _, b := range s.ChatButtons {
		e.org.buttons[b.DeveloperName] = b.Queue
	}
	e.auth = authState{
		app: s.ConnectedApp, passwords: map[string]string{}, userIDs: map[string]string{},
		sessions: map[string]*session{},
	}
	if strings.TrimSpace(s.ConnectedApp.Certificate) != "" {
		k, err := parsePublicKey(s.ConnectedApp.Certificate)
		if err != nil {
			return fmt.Errorf("load connected app certificate: %w", err)
		}
		e.auth.pubKey = k
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &tx{e: e, now: e.now().UTC(), quiet: true}
	obj := func(n string) *objectDef { o, _ := e.schema.object(n); return o }
	for i, u := range s.Users {
		r := t.create(obj("User"), map[string]any{
			"Username": u.Username, "FirstName": u.FirstName, "LastName": u.LastName,
			"Email": orDefault(u.Email, u.Username), "Alias": alias(u),
		})
		if i == 0 {
			t.user = r.id
			r.vals["CreatedById"], r.vals["LastModifiedById"], r.vals["OwnerId"] = r.id, r.id, r.id
		}
		e.org.users[lower(u.Username)] = r
		e.auth.passwords[lower(u.Username)] = u.Password
		e.auth.userIDs[lower(u.Username)] = r.id
		c := u.Capacity
		if c <= 0 {
			c = 10
		}
		e.capacity[r.id] = c
	}
	if len(s.Users) > 0 {
		e.org.integration = e.org.users[lower(s.Users[0].Username)].id
	}
	if s.ConnectedApp.RunAs != "" {
		e.org.integration = e.org.users[lower(s.ConnectedApp.RunAs)].id
		e.auth.runAsID = e.org.integration
	}
	t.user = e.org.integration
	for _, rc := range s.RoutingConfigs {
		vals := map[string]any{
			"DeveloperName": rc.DeveloperName, "MasterLabel": orDefault(rc.Label, rc.DeveloperName),
			"RoutingModel": rc.RoutingModel, "RoutingPriority": int64(rc.Priority),
		}
		if rc.PushTimeout > 0 {
			vals["PushTimeout"] = int64(rc.PushTimeout)
		}
		if rc.CapacityWeight > 0 {
			vals["CapacityWeight"] = rc.CapacityWeight
		}
		e.org.routingCfgs[rc.DeveloperName] = t.create(obj("QueueRoutingConfig"), vals)
	}
	for _, q := range s.Queues {
		vals := map[string]any{"Name": orDefault(q.Label, q.DeveloperName), "DeveloperName": q.DeveloperName, "Type": "Queue"}
		if q.RoutingConfig != "" {
			vals["QueueRoutingConfigId"] = e.org.routingCfgs[q.RoutingConfig].id
		}
		g := t.create(obj("Group"), vals)
		e.org.queues[q.DeveloperName] = g
		types := q.SobjectTypes
		if len(types) == 0 {
			types = workItemTypes
		}
		for _, ty := range types {
			t.create(obj("QueueSobject"), map[string]any{"QueueId": g.id, "SobjectType": ty})
		}
	}
	for _, c := range s.Channels {
		ch := t.create(obj("ServiceChannel"), map[string]any{
			"DeveloperName": c.DeveloperName, "MasterLabel": orDefault(c.Label, c.DeveloperName), "RelatedEntity": c.RelatedEntity,
		})
		e.org.channels[c.DeveloperName] = ch
		w := c.CapacityWeight
		if w <= 0 {
			w = 1
		}
		e.org.chanWeight[ch.id] = w
	}
	for _, p := range s.PresenceStatuses {
		st := t.create(obj("ServicePresenceStatus"), map[string]any{"DeveloperName": p.DeveloperName, "MasterLabel": orDefault(p.Label, p.DeveloperName)})
		e.org.statuses[p.DeveloperName] = st
		e.org.statusChans[st.id] = map[string]bool{}
		for _, c := range p.Channels {
			ch := e.org.channels[c]
			t.create(obj("ServiceChannelStatus"), map[string]any{"ServiceChannelId": ch.id, "ServicePresenceStatusId": st.id})
			e.org.statusChans[st.id][ch.id] = true
		}
	}
	for _, sk := range s.Skills {
		e.org.skills[sk.DeveloperName] = t.create(obj("Skill"), map[string]any{"DeveloperName": sk.DeveloperName, "MasterLabel": orDefault(sk.Label, sk.DeveloperName)})
	}
	for _, u := range s.Users {
		ur := e.org.users[lower(u.Username)]
		for _, q := range u.Queues {
			t.create(obj("GroupMember"), map[string]any{"GroupId": e.org.queues[q].id, "UserOrGroupId": ur.id})
		}
		if !u.Agent && len(u.Skills) == 0 {
			continue
		}
		sr := t.create(obj("ServiceResource"), map[string]any{
			"Name": strings.TrimSpace(u.FirstName + " " + u.LastName), "RelatedRecordId": ur.id, "ResourceType": "A", "IsActive": true,
		})
		for _, sk := range sortedKeys(u.Skills) {
			t.create(obj("ServiceResourceSkill"), map[string]any{
				"ServiceResourceId": sr.id, "SkillId": e.org.skills[sk].id, "SkillLevel": u.Skills[sk],
			})
		}
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func alias(u SeedUser) string {
	a := strings.ToLower(u.FirstName + u.LastName)
	if len(a) > 8 {
		a = a[:8]
	}
	return a
}
