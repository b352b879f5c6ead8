package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

const externalRoutingChannel = "/data/ExternalRoutingChannel__chn"

// externalRoutingMembers are the members and filters the external-routing docs recommend
// (salesforce-facts.md 1.3).
var externalRoutingFilters = []struct{ entity, expr string }{
	{"PendingServiceRouting", "RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true"},
	{"UserServicePresence", "ChangeEventHeader.changeType = 'CREATE' OR (IsCurrentState = false)"},
	{"AgentWork", "ChangeEventHeader.changeType = 'UPDATE' AND RoutingModel = 'ExternalRouting'"},
}

func compileMembers() (map[string]*soql.Condition, error) {
	out := map[string]*soql.Condition{}
	for _, m := range externalRoutingFilters {
		c, err := soql.ParseCondition(m.expr)
		if err != nil {
			return nil, fmt.Errorf("parse channel member filter for %s: %w", m.entity, err)
		}
		out[m.entity] = c
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
	merged := mergeChanges(t.changes)
	for i, c := range merged {
		if c.obj.CDC {
			e.publishCDC(t, key, i+1, c)
		}
	}
	for _, c := range t.changes {
		e.publishTopics(t, c)
	}
}

// mergeChanges folds identical UPDATE or DELETE changes of one entity in one transaction into
// one change with several recordIds, as Salesforce does.
func mergeChanges(in []*change) []*change {
	var out []*change
outer:
	for _, c := range in {
		if c.typ != "CREATE" {
			for _, o := range out {
				if o.obj == c.obj && o.typ == c.typ && samePayload(o.payload, c.payload) {
					cp := *o
					cp.ids = append(slices.Clone(o.ids), c.ids...)
					*o = cp
					continue outer
				}
			}
		}
		cp := *c
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
	if f, ok := e.members[c.obj.Name]; ok && f.Eval(e.filterGetter(c)) {
		channels = append(channels, externalRoutingChannel)
	}
	sid := schemaID(c.obj.Name)
	e.stream.Publish(channels, func(replayID int64) json.RawMessage {
		b, err := json.Marshal(object{
			{"schema", sid},
			{"payload", payload},
			{"event", object{{"replayId", replayID}}},
		})
		if err != nil {
			return json.RawMessage(`{}`)
		}
		return b
	})
	e.eventsPublished.Add(1)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// filterGetter resolves channel-filter paths: ChangeEventHeader.* from the header, other
// fields from the payload (or the whole record with ChannelFilterOnRecord).
func (e *Emulator) filterGetter(c *change) func(string) (any, bool) {
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
		if e.opts.ChannelFilterOnRecord && c.typ != "DELETE" && c.rec != nil {
			f, ok := c.obj.field(path)
			if !ok {
				return nil, false
			}
			return c.rec.Value(f.Name)
		}
		for _, m := range c.payload {
			if strings.EqualFold(m.K, path) {
				if s, ok := m.V.(string); ok {
					if f, _ := c.obj.field(m.K); f != nil && f.Type == soql.DateTime && c.rec != nil {
						return c.rec.Value(f.Name)
					}
					return s, true
				}
				return m.V, true
			}
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
