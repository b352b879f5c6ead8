package connector

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce"
)

// This file is the pure translation of Salesforce records and change events into routing
// Events (DESIGN.md: "Translate is pure"; docs/routing.md lists which event becomes which).
// It reads no clock, makes no request and keeps no state: what it needs to know about earlier
// events comes in through Known, and what can only be learnt by reading Salesforce comes back
// as a request in Change.

// Names resolves the ids Salesforce sends to the names the mapping and the engine use: a queue
// as the mapping names it (its Id or its DeveloperName), service channels and skills by
// DeveloperName. An id the org did not list passes through unchanged, so the engine parks the
// work (queue_unmapped, unknown_channel) instead of it being lost. Build it with NewNames from
// the org's metadata and the mapping in use; it is read-only afterwards.
type Names struct {
	queues   map[string]string
	channels map[string]string
	skills   map[string]string
}

// NewNames indexes the org's metadata for the mapping m.
func NewNames(org mapping.Org, m *mapping.Config) Names {
	byID := map[string]bool{} // queue ids the mapping names by id
	if m != nil {
		for _, p := range m.Plans {
			for _, q := range p.Queues {
				byID[q] = true
			}
		}
	}
	n := Names{queues: map[string]string{}, channels: map[string]string{}, skills: map[string]string{}}
	for _, q := range org.Queues {
		n.queues[q.ID] = q.DeveloperName
		if byID[q.ID] {
			n.queues[q.ID] = q.ID
		}
	}
	for _, c := range org.Channels {
		n.channels[c.ID] = c.DeveloperName
	}
	for _, s := range org.Skills {
		n.skills[s.ID] = s.DeveloperName
	}
	return n
}

func lookup(m map[string]string, id string) string {
	if name, ok := m[id]; ok && name != "" {
		return name
	}
	return id
}

// Work turns a PendingServiceRouting record, whole (a CREATE payload, a REST read or a SOQL
// row), and its SkillRequirement rows into the engine's Work. Skill rows of other PSRs are
// ignored.
func (n Names) Work(psr *salesforce.PendingServiceRouting, skills []salesforce.SkillRequirement) routing.Work {
	w := routing.Work{
		ID:                psr.WorkItemID,
		PSR:               psr.ID,
		Queue:             lookup(n.queues, cmp.Or(psr.QueueID, psr.GroupID)),
		Channel:           lookup(n.channels, psr.ServiceChannelID),
		RequestedAt:       psr.CreatedDate.Time,
		PreferredUser:     psr.PreferredUserID,
		PreferredRequired: psr.IsPreferredUserRequired,
	}
	if !psr.CustomRequestedDateTime.IsZero() {
		w.RequestedAt = psr.CustomRequestedDateTime.Time
	}
	if p := psr.RoutingPriority; p != nil {
		w.Priority, w.HasPriority = *p, true
	}
	if cw := psr.CapacityWeight; cw != nil && *cw > 0 {
		w.Weight = int(math.Round(*cw))
	}
	if d := psr.DropAdditionalSkillsTimeout; d != nil {
		w.DropAdditionalAfter, w.HasDropAdditional = time.Duration(*d)*time.Second, true
	}
	for _, s := range skills {
		if s.RelatedRecordID != psr.ID {
			continue
		}
		r := routing.SkillRequirement{Name: lookup(n.skills, s.SkillID), Additional: s.IsAdditionalSkill}
		if s.SkillLevel != nil {
			r.Level = *s.SkillLevel
		}
		w.Skills = append(w.Skills, r)
	}
	slices.SortFunc(w.Skills, func(a, b routing.SkillRequirement) int { return strings.Compare(a.Name, b.Name) })
	return w
}

// AgentWorkRef is what the daemon remembers of an AgentWork: whose it is, for which work, and
// whether the daemon inserted it (an offer) or Salesforce routed it (external work).
type AgentWorkRef struct {
	UserID, WorkID, PSR string
	Ours                bool
}

// Known is what the router remembers of earlier events, read here and never changed:
// change events name records by id and carry only what changed.
type Known interface {
	// WorkForPSR returns the work item of a PSR the router has seen.
	WorkForPSR(psrID string) (workID string, ok bool)
	// AgentWork returns an AgentWork the router has seen (inserted, or reported by an event).
	AgentWork(id string) (AgentWorkRef, bool)
}

// Skip reasons of Change: bounded, for a metric label.
const (
	SkipNotExternal  = "not_external_routing"   // a PSR or AgentWork of another routing model
	SkipNotReady     = "not_ready_for_routing"  // a PSR created with IsReadyForRouting false
	SkipNoise        = "noise"                  // an UPDATE that changes nothing routing reads
	SkipUnknown      = "unknown_record"         // a record the router never saw
	SkipOwnInsert    = "own_insert"             // the CREATE of an AgentWork the daemon inserted
	SkipEntity       = "entity_not_translated"  // an entity this file does not translate (yet)
	SkipChangeType   = "change_type_not_routed" // e.g. UNDELETE
	SkipStatusNoNews = "status_not_routed"      // an AgentWork status with nothing to do
)

// Change is what one change event asks of the router. Events go to the engine in order.
// The requests are reads the router makes first (through the sinks, answering with Events).
type Change struct {
	Events []routing.Event
	// ReadPSRs are PSRs to read whole, with their SkillRequirement rows, and to hand to the
	// engine with Names.Work: EventWorkArrived for a CREATE, EventWorkChanged for an UPDATE.
	// A CREATE of skills-based work carries no skills; a CDC UPDATE carries only what changed.
	ReadPSRs []string
	// Pushback lists PSRs that Salesforce pushed back (IsPushed became false): an offer on
	// them was declined, timed out or lost its agent. The AgentWork's own update says which
	// and whose; if the router still holds the offer when this arrives first, it checks the
	// AgentWork (CommandCheckOffer's look-up) rather than guess the outcome.
	Pushback []string
	// ReadAgentWork lists AgentWork the daemon did not insert whose update lacks its user or
	// work item: read them, then EventExternalWork.
	ReadAgentWork []string
	// Reconcile says the records must be read again: a GAP_* event.
	Reconcile bool
	// Own says omniroute caused the change (Sforce-Call-Options client=omniroute in
	// changeOrigin): the engine already knows; its translation is an acknowledgement.
	Own bool
	// Skipped, when nothing is to be done, says why (one of the Skip* constants).
	Skipped string
}

// IsOwn reports whether a changeOrigin names omniroute's client (CallOptionsClient), e.g.
// "com/salesforce/api/rest/64.0;client=omniroute".
func IsOwn(changeOrigin string) bool {
	for part := range strings.SplitSeq(changeOrigin, ";") {
		if strings.TrimSpace(part) == "client="+CallOptionsClient {
			return true
		}
	}
	return false
}

// psrNoise are PSR fields whose change alone means nothing to the engine: the push
// bookkeeping (IsPushed becoming true is the engine's own offer; becoming false is Pushback)
// and system fields.
var psrNoise = []string{"IsPushed", "IsPushAttempted", "LastDeclinedAgentSession", "Serial",
	"LastModifiedDate", "LastModifiedById", "SystemModstamp", "PushTimeout", "SecondaryRoutingPriority",
	"CapacityPercentage"}

// Translate says what a change event means for the router. A field absent from an UPDATE is
// unknown, never false or zero: an UPDATE is never turned into Work from its payload; it is
// either noise, a push-back, or a request to read the PSR whole.
func Translate(ev *salesforce.ChangeEvent, names Names, known Known) Change {
	ch := Change{Own: IsOwn(ev.ChangeOrigin)}
	if ev.ChangeType.IsGapEvent() {
		ch.Reconcile = true
		return ch
	}
	switch {
	case ev.PSR != nil:
		translatePSR(ev, names, known, &ch)
	case ev.AgentWork != nil:
		translateAgentWork(ev, names, known, &ch)
	default:
		ch.Skipped = SkipEntity
	}
	if len(ch.Events) == 0 && len(ch.ReadPSRs) == 0 && len(ch.Pushback) == 0 && len(ch.ReadAgentWork) == 0 && ch.Skipped == "" {
		ch.Skipped = SkipNoise
	}
	return ch
}

// changed lists the fields an UPDATE changed: ChangeEventHeader.changedFields on CDC; on a
// PushTopic event, which does not say, every field the payload carried.
func changed(ev *salesforce.ChangeEvent) []string {
	if ev.Source == salesforce.SourceCDC {
		return ev.ChangedFields
	}
	var fs []string
	for f := range ev.Fields {
		fs = append(fs, f)
	}
	slices.Sort(fs)
	return fs
}

func translatePSR(ev *salesforce.ChangeEvent, names Names, known Known, ch *Change) {
	psr := ev.PSR
	switch ev.ChangeType {
	case salesforce.ChangeCreate:
		switch {
		case ev.Has("RoutingModel") && psr.RoutingModel != salesforce.RoutingModelExternal:
			ch.Skipped = SkipNotExternal
		case ev.Has("IsReadyForRouting") && !psr.IsReadyForRouting:
			ch.Skipped = SkipNotReady
		case psr.RoutingType == salesforce.RoutingTypeSkillsBased || !ev.Has("WorkItemId"):
			ch.ReadPSRs = slices.Clone(ev.RecordIDs) // its skills are other records
		default:
			for _, id := range ev.RecordIDs {
				p := *psr
				p.ID = id
				ch.Events = append(ch.Events, routing.Event{Type: routing.EventWorkArrived, Work: names.Work(&p, nil)})
			}
		}
	case salesforce.ChangeUpdate:
		if ev.Has("RoutingModel") && !ev.IsNull("RoutingModel") && psr.RoutingModel != salesforce.RoutingModelExternal {
			ch.Skipped = SkipNotExternal
			return
		}
		material := false
		for _, f := range changed(ev) {
			if !slices.Contains(psrNoise, f) {
				material = true
			}
		}
		switch {
		case material:
			ch.ReadPSRs = slices.Clone(ev.RecordIDs)
		case slices.Contains(changed(ev), "IsPushed") && ev.Has("IsPushed") && !psr.IsPushed:
			ch.Pushback = slices.Clone(ev.RecordIDs)
		}
	case salesforce.ChangeDelete:
		for _, id := range ev.RecordIDs {
			if w, ok := known.WorkForPSR(id); ok {
				ch.Events = append(ch.Events, routing.Event{Type: routing.EventWorkRemoved, WorkID: w, PSR: id})
			}
		}
		if len(ch.Events) == 0 {
			ch.Skipped = SkipUnknown
		}
	default:
		ch.Skipped = SkipChangeType
	}
}

// outcomes are the AgentWork statuses that end an offer without an accept.
var outcomes = map[string]routing.Outcome{
	salesforce.AgentWorkDeclined:              routing.OutcomeDeclined,
	salesforce.AgentWorkCanceled:              routing.OutcomeDeclined,
	salesforce.AgentWorkDeclinedOnPushTimeout: routing.OutcomePushTimeout,
	salesforce.AgentWorkUnavailable:           routing.OutcomeUnavailable,
}

func translateAgentWork(ev *salesforce.ChangeEvent, names Names, known Known, ch *Change) {
	aw := ev.AgentWork
	switch ev.ChangeType {
	case salesforce.ChangeCreate:
		for _, id := range ev.RecordIDs {
			if ref, ok := known.AgentWork(id); (ok && ref.Ours) || ch.Own {
				ch.Skipped = SkipOwnInsert
				continue
			}
			// Native routing, or the second AgentWork of a transfer made in Salesforce: not an
			// offer of ours, so the agent is busy with it (Busy Inbound).
			if aw.Status == salesforce.AgentWorkAssigned || aw.Status == salesforce.AgentWorkOpened {
				ch.Events = append(ch.Events, routing.Event{Type: routing.EventExternalWork,
					AgentID: aw.UserID, WorkID: aw.WorkItemID, Channel: lookup(names.channels, aw.ServiceChannelID)})
			}
		}
	case salesforce.ChangeUpdate:
		if !slices.Contains(changed(ev), "Status") || !ev.Has("Status") {
			return // noise: capacity, timestamps...
		}
		for _, id := range ev.RecordIDs {
			ref, ok := known.AgentWork(id)
			if !ok {
				if aw.Status == salesforce.AgentWorkAssigned || aw.Status == salesforce.AgentWorkOpened {
					if aw.UserID != "" && aw.WorkItemID != "" {
						ch.Events = append(ch.Events, routing.Event{Type: routing.EventExternalWork,
							AgentID: aw.UserID, WorkID: aw.WorkItemID, Channel: lookup(names.channels, aw.ServiceChannelID)})
					} else {
						ch.ReadAgentWork = append(ch.ReadAgentWork, id)
					}
					continue
				}
				ch.Skipped = SkipUnknown
				continue
			}
			if e, ok := agentWorkEvent(aw.Status, ref); ok {
				ch.Events = append(ch.Events, e)
			} else {
				ch.Skipped = SkipStatusNoNews
			}
		}
	default:
		ch.Skipped = SkipChangeType
	}
}

// agentWorkEvent is what a status of a known AgentWork tells the engine.
func agentWorkEvent(status string, ref AgentWorkRef) (routing.Event, bool) {
	if !ref.Ours {
		switch status {
		case salesforce.AgentWorkClosed, salesforce.AgentWorkCanceled, salesforce.AgentWorkDeclined,
			salesforce.AgentWorkDeclinedOnPushTimeout, salesforce.AgentWorkUnavailable, salesforce.AgentWorkTransferred:
			return routing.Event{Type: routing.EventExternalWorkClosed, WorkID: ref.WorkID, AgentID: ref.UserID}, true
		}
		return routing.Event{}, false
	}
	base := routing.Event{WorkID: ref.WorkID, AgentID: ref.UserID}
	switch status {
	case salesforce.AgentWorkOpened:
		base.Type = routing.EventOfferAccepted
	case salesforce.AgentWorkClosed:
		base.Type = routing.EventWorkClosed
	case salesforce.AgentWorkTransferred:
		base.Type = routing.EventWorkTransferred
	default:
		o, ok := outcomes[status]
		if !ok {
			return routing.Event{}, false // Assigned: the offer itself
		}
		base.Type, base.Outcome = routing.EventOfferDeclined, o
	}
	return base, true
}
