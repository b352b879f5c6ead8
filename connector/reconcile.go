package connector

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce"
)

// OrgInfo is the org metadata the daemon routes with: what the mapping is checked against,
// plus the channels each presence status opens (ServiceChannelStatus).
type OrgInfo struct {
	Org mapping.Org
	// StatusChannels maps a ServicePresenceStatus Id to the DeveloperNames of the service
	// channels it opens (none: an away status).
	StatusChannels map[string][]string
	statusNames    map[string]string
}

// StatusName is the DeveloperName of a presence status id (the id itself when unknown).
func (o OrgInfo) StatusName(id string) string {
	if n, ok := o.statusNames[id]; ok {
		return n
	}
	return id
}

// serviceChannelStatus is a ServiceChannelStatus row: a presence status opens a channel.
type serviceChannelStatus struct {
	ServiceChannelID        string `json:"ServiceChannelId"`
	ServicePresenceStatusID string `json:"ServicePresenceStatusId"`
}

// ReadOrgInfo reads the org's metadata (ReadOrg) and which channels each presence status
// opens.
func ReadOrgInfo(ctx context.Context, c *salesforce.Client) (OrgInfo, error) {
	org, err := ReadOrg(ctx, c)
	if err != nil {
		return OrgInfo{}, err
	}
	return orgInfo(ctx, c, org)
}

func orgInfo(ctx context.Context, c *salesforce.Client, org mapping.Org) (OrgInfo, error) {
	info := OrgInfo{Org: org, StatusChannels: map[string][]string{}, statusNames: map[string]string{}}
	chName := map[string]string{}
	for _, ch := range org.Channels {
		chName[ch.ID] = ch.DeveloperName
	}
	for _, st := range org.Statuses {
		info.statusNames[st.ID] = st.DeveloperName
	}
	for s, err := range salesforce.QueryAs[serviceChannelStatus](ctx, c, "SELECT ServiceChannelId, ServicePresenceStatusId FROM ServiceChannelStatus") {
		if err != nil {
			return info, fmt.Errorf("read the channels of presence statuses (ServiceChannelStatus): %w", err)
		}
		info.StatusChannels[s.ServicePresenceStatusID] = append(info.StatusChannels[s.ServicePresenceStatusID], lookup(chName, s.ServiceChannelID))
	}
	for _, chs := range info.StatusChannels {
		slices.Sort(chs)
	}
	return info, nil
}

// reconcileData is a reconcile read: the snapshot, the agents' skills as events to apply
// first, and what the router must know of the AgentWork and presence rows.
type reconcileData struct {
	snap      routing.Snapshot
	skills    []routing.Event
	agentWork map[string]AgentWorkRef
	uspUser   map[string]string
	took      time.Duration
}

// Reconcile reads Salesforce's state with SOQL, page by page as they arrive: external-routing
// PSRs with their SkillRequirements (waiting, or offered with their Assigned AgentWork), open
// AgentWork, current presence and agents' skills (ServiceResourceSkill). The six queries run
// at once (each on its own query locator; an org allows ten open per user), and each decodes a
// page while the client fetches the next, so a reconcile takes about as long as its longest
// query's round trips.
func Reconcile(ctx context.Context, c *salesforce.Client, names Names, org OrgInfo) (*reconcileData, error) {
	start := time.Now()
	d := &reconcileData{agentWork: map[string]AgentWorkRef{}, uspUser: map[string]string{}}
	var (
		psrRows   []salesforce.PendingServiceRouting
		skillRows []salesforce.SkillRequirement
		awRows    []salesforce.AgentWork
		uspRows   []salesforce.UserServicePresence
		srRows    []salesforce.ServiceResource
		srsRows   []salesforce.ServiceResourceSkill
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(readAll(gctx, c, &psrRows, "PendingServiceRouting",
		"SELECT "+salesforce.PendingServiceRoutingFields+" FROM PendingServiceRouting WHERE RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true"))
	g.Go(readAll(gctx, c, &skillRows, "SkillRequirement",
		"SELECT "+salesforce.SkillRequirementFields+" FROM SkillRequirement"))
	g.Go(readAll(gctx, c, &awRows, "AgentWork",
		"SELECT "+salesforce.AgentWorkFields+" FROM AgentWork WHERE Status IN ('Assigned', 'Opened')"))
	g.Go(readAll(gctx, c, &uspRows, "UserServicePresence",
		"SELECT "+salesforce.UserServicePresenceFields+" FROM UserServicePresence WHERE IsCurrentState = true"))
	g.Go(readAll(gctx, c, &srRows, "ServiceResource",
		"SELECT "+salesforce.ServiceResourceFields+" FROM ServiceResource WHERE IsActive = true"))
	g.Go(readAll(gctx, c, &srsRows, "ServiceResourceSkill",
		"SELECT "+salesforce.ServiceResourceSkillFields+" FROM ServiceResourceSkill"))
	if err := g.Wait(); err != nil {
		return nil, err
	}

	psrs := make(map[string]*salesforce.PendingServiceRouting, len(psrRows))
	for i := range psrRows {
		psrs[psrRows[i].ID] = &psrRows[i]
	}
	skills := map[string][]salesforce.SkillRequirement{}
	for _, s := range skillRows {
		if _, ok := psrs[s.RelatedRecordID]; ok {
			skills[s.RelatedRecordID] = append(skills[s.RelatedRecordID], s)
		}
	}
	offered := map[string]bool{}
	for _, aw := range awRows {
		ours := aw.RoutingModel == salesforce.RoutingModelExternal
		d.agentWork[aw.ID] = AgentWorkRef{UserID: aw.UserID, WorkID: aw.WorkItemID, PSR: aw.PendingServiceRoutingID, Ours: ours}
		switch {
		case !ours:
			d.snap.External = append(d.snap.External, routing.Assignment{AgentID: aw.UserID,
				Work: routing.Work{ID: aw.WorkItemID, Channel: lookup(names.channels, aw.ServiceChannelID)}})
		case aw.Status == salesforce.AgentWorkAssigned && psrs[aw.PendingServiceRoutingID] != nil:
			p := psrs[aw.PendingServiceRoutingID]
			offered[p.ID] = true
			d.snap.Offers = append(d.snap.Offers, routing.Assignment{AgentID: aw.UserID, Work: names.Work(p, skills[p.ID])})
		default:
			w := routing.Work{ID: aw.WorkItemID, PSR: aw.PendingServiceRoutingID, Channel: lookup(names.channels, aw.ServiceChannelID),
				Queue: lookup(names.queues, aw.OriginalGroupID)}
			if cw := aw.CapacityWeight; cw != nil && *cw > 0 {
				w.Weight = int(math.Round(*cw))
			}
			if aw.Status == salesforce.AgentWorkAssigned {
				d.snap.Offers = append(d.snap.Offers, routing.Assignment{AgentID: aw.UserID, Work: w})
			} else {
				d.snap.Interactions = append(d.snap.Interactions, routing.Assignment{AgentID: aw.UserID, Work: w})
			}
		}
	}
	for i := range psrRows {
		p := &psrRows[i]
		if p.IsPushed || offered[p.ID] {
			continue // offered: its Assigned AgentWork says to whom
		}
		d.snap.Waiting = append(d.snap.Waiting, names.Work(p, skills[p.ID]))
	}
	for _, u := range uspRows {
		d.uspUser[u.ID] = u.UserID
		d.snap.Presence = append(d.snap.Presence, routing.AgentPresence{AgentID: u.UserID,
			Presence: org.StatusName(u.ServicePresenceStatusID), Channels: org.StatusChannels[u.ServicePresenceStatusID]})
	}
	resources := map[string]string{} // ServiceResource Id -> user
	for _, sr := range srRows {
		resources[sr.ID] = sr.RelatedRecordID
	}
	agentSkills := map[string][]routing.Skill{}
	for _, s := range srsRows {
		user, ok := resources[s.ServiceResourceID]
		if !ok {
			continue
		}
		sk := routing.Skill{Name: lookup(names.skills, s.SkillID)}
		if s.SkillLevel != nil {
			sk.Level = *s.SkillLevel
		}
		agentSkills[user] = append(agentSkills[user], sk)
	}
	users := make([]string, 0, len(resources))
	for _, u := range resources {
		users = append(users, u)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	for _, u := range users {
		sks := agentSkills[u]
		slices.SortFunc(sks, func(a, b routing.Skill) int {
			if a.Name < b.Name {
				return -1
			}
			if a.Name > b.Name {
				return 1
			}
			return 0
		})
		d.skills = append(d.skills, routing.Event{Type: routing.EventAgentSkills, AgentID: u, Skills: sks})
	}
	d.took = time.Since(start)
	// The rows and their pages were the reconcile's largest allocation (about 3 times the
	// snapshot at 100,000 PSRs) and are garbage now: give their memory back to the OS at once,
	// rather than let the process keep its peak until the scavenger returns it.
	debug.FreeOSMemory()
	return d, nil
}

// readAll returns a job that reads every row of soql into *out, page by page as they arrive.
func readAll[T any](ctx context.Context, c *salesforce.Client, out *[]T, what, soql string) func() error {
	return func() error {
		for v, err := range salesforce.QueryAs[T](ctx, c, soql) {
			if err != nil {
				return fmt.Errorf("reconcile: read %s: %w", what, err)
			}
			*out = append(*out, v)
		}
		return nil
	}
}
