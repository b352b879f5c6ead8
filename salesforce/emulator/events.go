package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
	"github.com/omniroute/omniroute/salesforce/emulator/streaming"
)

const externalRoutingChannel = "/data/ExternalRoutingChannel__chn"

// externalRoutingFilters are the members and filters the external-routing docs recommend
// (salesforce-facts.md 1.3), with the entity fields each filter names: those fields are
// auto-enriched on the channel ("Change Event Filters", Auto-Enrichment of Filtered Fields).
var externalRoutingFilters = []struct {
	entity, expr string
	enriched     []string
}{
	{"PendingServiceRouting", "RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true", []string{"RoutingModel", "IsReadyForRouting"}},
	{"UserServicePresence", "ChangeEventHeader.changeType = 'CREATE' OR (IsCurrentState = false)", []string{"IsCurrentState"}},
	{"AgentWork", "ChangeEventHeader.changeType = 'UPDATE' AND RoutingModel = 'ExternalRouting'", []string{"RoutingModel"}},
}

// channelMember is one member of the custom channel: its filter and its enriched fields.
type channelMember struct {
	filter   *soql.Condition
	enriched []string
}

func compileMembers() (map[string]*channelMember, error) {
	out := map[string]*channelMember{}
	for _, m := range externalRoutingFilters {
		c, err := soql.ParseCondition(m.expr)
		if err != nil {
			return nil, fmt.Errorf("parse channel member filter for %s: %w", m.entity, err)
		}
		out[m.entity] = &channelMember{filter: c, enriched: m.enriched}
	}
	return out, nil
}

// schemaID is a stable, opaque event schema id per entity.
func schemaID(entity string) string {
	sum := sha256.Sum256([]byte("omniroute-emulator/" + entity + "ChangeEvent/v1"))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// commit publishes the transaction's changes in order. Callers hold e.mu, which keeps
// replay-id order equal to commit order.
func (e *Emulator) commit(t *tx) {
	if t.quiet || len(t.changes) == 0 {
		return
	}
	e.txSeq++
	key := fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", e.txSeq, e.txSeq>>32&0xffff, e.txSeq&0xfff, (e.txSeq>>12)&0xfff, e.rng.Uint64()&0xffffffffffff)
	e.recordHistory(t, key)
	merged := mergeChanges(t.changes)
	for i, c := range merged {
		if c.obj.CDC {
			e.publishCDC(t, key, i+1, c)
		}
	}
	for _, c := range t.changes {
		e.publishTopics(t, c)
	}
	e.makeNoise(t)
}

// mergeChanges folds identical UPDATE or DELETE changes of one entity in one transaction into
// one change with several recordIds, as Salesforce does. Each merged change keeps every
// record's snapshot in recs, in recordIds order.
func mergeChanges(in []*change) []*change {
	var out []*change
outer:
	for _, c := range in {
		if c.typ != "CREATE" {
			for _, o := range out {
				if o.obj == c.obj && o.typ == c.typ && samePayload(o.payload, c.payload) {
					cp := *o
					cp.ids = append(slices.Clone(o.ids), c.ids...)
					cp.recs = append(slices.Clone(o.recs), c.rec)
					*o = cp
					continue outer
				}
			}
		}
		cp := *c
		cp.recs = []*record{c.rec}
		out = append(out, &cp)
	}
	return out
}

func samePayload(a, b object) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].K != b[i].K || a[i].V != b[i].V {
			return false
		}
	}
	return true
}

func (e *Emulator) changeOrigin(t *tx) string { return t.origin }

// publishCDC publishes one (possibly grouped) change event under one replay id: grouped and
// unenriched on /data/ChangeEvents and /data/<Entity>ChangeEvent, and, for the entities of
// the custom channel, as single-record enriched events (one per record id, sharing that
// replay id) on ExternalRoutingChannel__chn when the member's filter, evaluated on the
// enriched event, passes.
func (e *Emulator) publishCDC(t *tx, key string, seq int, c *change) {
	header := object{
		{"entityName", c.obj.Name},
		{"recordIds", c.ids},
		{"changeType", c.typ},
		{"changeOrigin", e.changeOrigin(t)},
		{"transactionKey", key},
		{"sequenceNumber", int64(seq)},
		{"commitTimestamp", t.now.UnixMilli()},
		{"commitNumber", int64(1_000_000_000_000) + int64(e.txSeq)},
		{"commitUser", t.user},
		{"changedFields", nonNil(c.changed)},
	}
	payload := append(object{{"ChangeEventHeader", header}}, c.payload...)
	channels := []string{"/data/ChangeEvents", "/data/" + c.obj.Name + "ChangeEvent"}
	sid := schemaID(c.obj.Name)
	singles := e.enrichedSingles(c, header)
	if len(c.ids) == 1 && len(singles) == 1 && singles[0].enriched == nil {
		// A one-record event with nothing enriched (a CREATE) is the same message on the
		// custom channel: encode it once.
		channels = append(channels, externalRoutingChannel)
		singles = nil
	}
	e.stream.PublishMessages(func(replayID int64) []streaming.Message {
		msgs := make([]streaming.Message, 0, 1+len(singles))
		msgs = append(msgs, streaming.Message{Channels: channels, Data: eventData(sid, payload, replayID)})
		for _, one := range singles {
			msgs = append(msgs, streaming.Message{
				Channels: []string{externalRoutingChannel},
				Data:     eventData(sid, one.payload, replayID),
				Replay:   one.replay(e, sid, replayID),
			})
		}
		return msgs
	})
	e.eventsPublished.Add(1)
}

// eventData is the "data" member of a change event message.
func eventData(sid string, payload object, replayID int64) json.RawMessage {
	b, err := json.Marshal(object{
		{"schema", sid},
		{"payload", payload},
		{"event", object{{"replayId", replayID}}},
	})
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return b
}

// enrichedSingle is one single-record event of the custom channel.
type enrichedSingle struct {
	id       string
	base     object   // header and the change's own fields
	payload  object   // base plus the enriched fields at commit
	enriched []string // fields added at delivery; nil when the event carries none
}

// replay renders the event again with the enriched values current at replay time; fields the
// change itself carries keep their changed values ("Event Enrichment Considerations").
func (s enrichedSingle) replay(e *Emulator, sid string, replayID int64) func() json.RawMessage {
	if s.enriched == nil {
		return nil
	}
	return func() json.RawMessage {
		cur := e.enrichedValues(s.id)
		return eventData(sid, appendEnriched(s.base, s.enriched, cur), replayID)
	}
}

// enrichedSingles splits c into the single-record enriched events that pass the custom
// channel's filter for its entity (none when the entity is not a member), and records each
// record's current enriched values for replays. Callers hold e.mu.
func (e *Emulator) enrichedSingles(c *change, header object) []enrichedSingle {
	m, ok := e.members[c.obj.Name]
	if !ok || len(c.recs) != len(c.ids) {
		return nil // not a member, or a header-only gap event (no record to enrich)
	}
	var out []enrichedSingle
	enrich := c.typ == "UPDATE" || (c.typ == "DELETE" && e.opts.ChannelDeletes)
	for i, id := range c.ids {
		rec := c.recs[i]
		// A CREATE carries every populated field already; a hard delete carries no enriched
		// field, so by default the filters drop it (docs/emulator.md).
		pl := c.payload
		if c.typ != "CREATE" {
			cur := currentValues(rec, m.enriched)
			e.enrichMu.Lock()
			e.enrichedNow[id] = cur
			e.enrichMu.Unlock()
			if enrich {
				pl = appendEnriched(c.payload, m.enriched, cur)
			}
		}
		if !m.filter.Eval(filterGetter(c, rec, pl)) {
			continue
		}
		h := slices.Clone(header)
		h[1] = kv{"recordIds", []string{id}}
		one := enrichedSingle{id: id, base: append(object{{"ChangeEventHeader", h}}, c.payload...)}
		one.payload = one.base
		if enrich {
			one.enriched = m.enriched
			one.payload = append(object{{"ChangeEventHeader", h}}, pl...)
		}
		out = append(out, one)
	}
	return out
}

// currentValues are rec's non-empty values of fields, as a CDC payload carries them.
func currentValues(rec *record, fields []string) map[string]any {
	cur := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := rec.Value(f); ok && v != nil && v != "" {
			cur[f] = cdcValue(v)
		}
	}
	return cur
}

// appendEnriched returns base plus the enriched fields it does not carry yet, with their
// values in cur (empty values are left out, as CometD subscribers get them).
func appendEnriched(base object, fields []string, cur map[string]any) object {
	out := slices.Clone(base)
	for _, f := range fields {
		if slices.ContainsFunc(base, func(m kv) bool { return m.K == f }) {
			continue
		}
		if v, ok := cur[f]; ok {
			out = append(out, kv{f, v})
		}
	}
	return out
}

// enrichedValues returns a record's enriched values as of its last committed change.
func (e *Emulator) enrichedValues(id string) map[string]any {
	e.enrichMu.Lock()
	defer e.enrichMu.Unlock()
	return e.enrichedNow[id]
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// filterGetter resolves channel-filter paths on one single-record event: ChangeEventHeader.*
// from the change, entity fields from the event payload (datetimes as the record holds them).
func filterGetter(c *change, rec *record, payload object) func(string) (any, bool) {
	return func(path string) (any, bool) {
		if h, ok := strings.CutPrefix(path, "ChangeEventHeader."); ok {
			switch lower(h) {
			case "changetype":
				return c.typ, true
			case "entityname":
				return c.obj.Name, true
			}
			return nil, false
		}
		for _, m := range payload {
			if m.K == "ChangeEventHeader" || !strings.EqualFold(m.K, path) {
				continue
			}
			if f, _ := c.obj.field(m.K); f != nil && f.Type == soql.DateTime && rec != nil {
				return rec.Value(f.Name)
			}
			return m.V, true
		}
		return nil, false
	}
}

// GapRequest asks for a gap or overflow event (salesforce-facts.md 4.4).
type GapRequest struct {
	// Entity is the CDC entity, e.g. "PendingServiceRouting".
	Entity string `json:"entity"`
	// ChangeType is GAP_CREATE, GAP_UPDATE, GAP_DELETE, GAP_UNDELETE or GAP_OVERFLOW.
	ChangeType string `json:"changeType"`
	// RecordIDs are the affected records; GAP_OVERFLOW always reports "000000000000000AAA".
	RecordIDs []string `json:"recordIds"`
}

// InjectGap publishes a header-only gap or overflow event on the entity's CDC channels.
func (e *Emulator) InjectGap(g GapRequest) error {
	o, ok := e.schema.object(g.Entity)
	if !ok || !o.CDC {
		return fmt.Errorf("inject gap for %q: %w", g.Entity, ErrNotFound)
	}
	switch g.ChangeType {
	case "GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE":
		if len(g.RecordIDs) == 0 {
			return fmt.Errorf("inject %s: recordIds are required: %w", g.ChangeType, ErrInvalid)
		}
	case "GAP_OVERFLOW":
		g.RecordIDs = []string{"000000000000000AAA"}
	default:
		return fmt.Errorf("inject gap: change type %q: %w", g.ChangeType, ErrInvalid)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.begin("", "")
	c := &change{obj: o, typ: g.ChangeType, ids: g.RecordIDs}
	e.txSeq++
	e.publishCDC(t, fmt.Sprintf("gap-%08x", e.txSeq), 1, c)
	return nil
}
