package connector

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
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
// at once (each on its own query locator; API 56.0 and later set no limit on open ones,
// earlier versions ten per user), and each decodes a page while the client fetches the next,
// so a reconcile takes about as long as its longest query's round trips. The PSRs, the longest, are read as up to four queries at once over
// ranges of Id when they fill more than one page (readPSRs).
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
	g.Go(func() error {
		var err error
		psrRows, err = readPSRs(gctx, c)
		return err
	})
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
	// The rows and their pages, the reconcile's largest allocation (about 3 times the snapshot
	// at 100,000 PSRs), are garbage now; their memory goes back to the OS together with the
	// snapshot's once the router has applied it (Router.applySnapshot).
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

// psrWhere selects the PSRs the daemon routes.
const psrWhere = "RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true"

// maxPSRChunks is how many queries at most read the PSRs at once. With the reconcile's five
// other queries that is nine open query locators: within the ten per user that API versions
// before 56.0 allowed (the oldest released beyond), though the daemon's 63.0 has no such limit
// ("API Query Cursor Limits", Salesforce limits cheat sheet).
const maxPSRChunks = 4

// idRow is a record's Id alone.
type idRow struct {
	ID string `json:"Id"`
}

// readPSRs reads the waiting PSRs. When they fill more than one query page, it reads them as
// several queries at once, each a contiguous range of Id (how Salesforce's PK chunking reads
// large tables), so their pages come in several chains instead of one. How many there are
// and the lowest and highest Id are read first, at once (three one-page queries); the ranges
// split the Ids between them evenly (base 62), and the first and last are open-ended, so a
// PSR created meanwhile is read too.
func readPSRs(ctx context.Context, c *salesforce.Client) ([]salesforce.PendingServiceRouting, error) {
	var (
		n      int
		lo, hi []idRow
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		n, err = c.Count(gctx, "SELECT COUNT() FROM PendingServiceRouting WHERE "+psrWhere)
		if err != nil {
			return fmt.Errorf("reconcile: count PendingServiceRouting: %w", err)
		}
		return nil
	})
	g.Go(readAll(gctx, c, &lo, "PendingServiceRouting", "SELECT Id FROM PendingServiceRouting WHERE "+psrWhere+" ORDER BY Id ASC LIMIT 1"))
	g.Go(readAll(gctx, c, &hi, "PendingServiceRouting", "SELECT Id FROM PendingServiceRouting WHERE "+psrWhere+" ORDER BY Id DESC LIMIT 1"))
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var bounds []string
	page := c.QueryPageSize()
	if k := min(maxPSRChunks, (n+page-1)/page); k > 1 && len(lo) == 1 && len(hi) == 1 {
		bounds = idBounds(lo[0].ID, hi[0].ID, k)
	}
	return readPSRChunks(ctx, c, bounds)
}

// readPSRChunks reads the waiting PSRs as len(bounds)+1 queries at once: Id < bounds[0],
// bounds[i-1] <= Id < bounds[i], and Id >= the last bound (one query without bounds). Each
// PSR is in at least one range whatever order the org compares Ids in, as long as < and >=
// are each other's opposites; it is in exactly one when the bounds increase in that order.
// The org's order of Ids is not documented and the bounds are chosen in base-62 order, so a
// PSR read by two ranges is kept once: each PSR is returned exactly once.
func readPSRChunks(ctx context.Context, c *salesforce.Client, bounds []string) ([]salesforce.PendingServiceRouting, error) {
	base := "SELECT " + salesforce.PendingServiceRoutingFields + " FROM PendingServiceRouting WHERE " + psrWhere
	queries := []string{base}
	if len(bounds) > 0 {
		queries = []string{base + " AND Id < '" + bounds[0] + "'"}
		for i := 1; i < len(bounds); i++ {
			queries = append(queries, base+" AND Id >= '"+bounds[i-1]+"' AND Id < '"+bounds[i]+"'")
		}
		queries = append(queries, base+" AND Id >= '"+bounds[len(bounds)-1]+"'")
	}
	parts := make([][]salesforce.PendingServiceRouting, len(queries))
	g, gctx := errgroup.WithContext(ctx)
	for i, q := range queries {
		g.Go(readAll(gctx, c, &parts[i], "PendingServiceRouting", q))
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	all := slices.Concat(parts...)
	seen := make(map[string]struct{}, len(all))
	return slices.DeleteFunc(all, func(p salesforce.PendingServiceRouting) bool {
		_, dup := seen[p.ID]
		seen[p.ID] = struct{}{}
		return dup
	}), nil
}

// base62 are the digits of an Id in their order: 0-9, A-Z, a-z (ASCII).
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// idBounds returns the boundaries that split the Ids from lo to hi into k ranges of about
// equal width: up to k-1 15-character Ids, strictly increasing, above lo and at most hi
// (fewer when fewer Ids lie between them). Ids are numbers in base 62 over their first 15
// characters (the last 3 of an 18-character Id only encode the case of these), as PK
// chunking's boundaries are. Nil when lo and hi are not Ids or lo is not below hi.
func idBounds(lo, hi string, k int) []string {
	a, okA := parseBase62(lo)
	b, okB := parseBase62(hi)
	if !okA || !okB || a.Cmp(b) >= 0 {
		return nil
	}
	span := new(big.Int).Sub(b, a)
	var out []string
	prev := a
	for i := 1; i < k; i++ {
		// a + ceil(span*i/k): above a as soon as span > 0.
		v := new(big.Int).Mul(span, big.NewInt(int64(i)))
		v.Add(v, big.NewInt(int64(k-1)))
		v.Quo(v, big.NewInt(int64(k)))
		v.Add(v, a)
		if v.Cmp(prev) <= 0 {
			continue
		}
		prev = v
		out = append(out, formatBase62(v))
	}
	return out
}

// parseBase62 reads the first 15 characters of an Id as a base-62 number.
func parseBase62(id string) (*big.Int, bool) {
	if len(id) != 15 && len(id) != 18 {
		return nil, false
	}
	v, d := new(big.Int), new(big.Int)
	for i := range 15 {
		x := strings.IndexByte(base62, id[i])
		if x < 0 {
			return nil, false
		}
		v.Mul(v, big.NewInt(62))
		v.Add(v, d.SetInt64(int64(x)))
	}
	return v, true
}

// formatBase62 writes v as a 15-character base-62 Id.
func formatBase62(v *big.Int) string {
	var b [15]byte
	v = new(big.Int).Set(v)
	r, n62 := new(big.Int), big.NewInt(62)
	for i := 14; i >= 0; i-- {
		v.QuoRem(v, n62, r)
		b[i] = base62[r.Int64()]
	}
	return string(b[:])
}
