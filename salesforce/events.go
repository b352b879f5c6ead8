package salesforce

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/omniroute/omniroute/salesforce/bayeux"
)

// ChangeType is the kind of change an event reports.
type ChangeType string

// Change types. CDC sends them as is; PushTopic's created, updated, deleted and undeleted map to
// the first four. GAP_* and GAP_OVERFLOW are Salesforce's gap events.
const (
	ChangeCreate      ChangeType = "CREATE"
	ChangeUpdate      ChangeType = "UPDATE"
	ChangeDelete      ChangeType = "DELETE"
	ChangeUndelete    ChangeType = "UNDELETE"
	ChangeGapCreate   ChangeType = "GAP_CREATE"
	ChangeGapUpdate   ChangeType = "GAP_UPDATE"
	ChangeGapDelete   ChangeType = "GAP_DELETE"
	ChangeGapUndelete ChangeType = "GAP_UNDELETE"
	ChangeGapOverflow ChangeType = "GAP_OVERFLOW"
)

// IsGapEvent reports whether the change is one of Salesforce's gap events (GAP_* or
// GAP_OVERFLOW): the record fields are missing and the records must be read again by id (for
// GAP_OVERFLOW: the whole entity must be resynchronised). Not to be confused with Missed, which
// says events themselves may not have arrived.
func (t ChangeType) IsGapEvent() bool { return strings.HasPrefix(string(t), "GAP_") }

// Source says which kind of channel an event came from.
type Source uint8

// Event sources.
const (
	SourceCDC       Source = iota + 1 // /data/...ChangeEvent, /data/ChangeEvents, /data/...__chn
	SourcePushTopic                   // /topic/...
)

func (s Source) String() string {
	switch s {
	case SourceCDC:
		return "cdc"
	case SourcePushTopic:
		return "pushtopic"
	}
	return "unknown"
}

// ChangeEvent is a change to records of one entity, decoded from a CDC or a PushTopic event. It
// owns its data.
type ChangeEvent struct {
	Channel  string
	ReplayID int64
	Source   Source
	// Entity is the sObject API name (PendingServiceRouting, AgentWork, ...). For PushTopic
	// events it comes from StreamOptions.TopicEntities or the record id's key prefix; empty if
	// neither knows it.
	Entity     string
	ChangeType ChangeType
	// RecordIDs are all the ids the change applies to (CDC merges identical changes;
	// GAP_OVERFLOW carries 000000000000000AAA).
	RecordIDs []string
	// ChangedFields is ChangeEventHeader.changedFields (CDC UPDATE only; PushTopic does not say
	// which fields changed).
	ChangedFields []string
	// Fields are the record fields the payload carried, as raw JSON: on a CDC UPDATE the changed
	// ones (null means set to null), LastModifiedDate and any field a channel filter enriches.
	Fields map[string]json.RawMessage
	// PSR, AgentWork and Presence hold the payload decoded into its typed record, for events of
	// those three entities (exactly one is set; all nil for other entities). A field the payload
	// did not carry keeps its zero value there: ask Has before reading false, 0 or "" as a value.
	PSR       *PendingServiceRouting
	AgentWork *AgentWork
	Presence  *UserServicePresence
	// CommitTimestamp is the CDC commit time, or PushTopic's createdDate.
	CommitTimestamp time.Time
	CommitUser      string
	CommitNumber    int64
	ChangeOrigin    string
	TransactionKey  string
	SequenceNumber  int64
}

// Has reports whether the payload carried field f (a field absent from an UPDATE is unknown,
// not false or zero).
func (e *ChangeEvent) Has(f string) bool { _, ok := e.Fields[f]; return ok }

// IsNull reports whether field f is present and null (set to null).
func (e *ChangeEvent) IsNull(f string) bool {
	raw, ok := e.Fields[f]
	return ok && string(raw) == "null"
}

// Decode unmarshals the present fields into the struct v points to (fields by their json tag
// names); fields absent from the payload keep their value, so check Has first.
func (e *ChangeEvent) Decode(v any) error {
	if err := decodeFields(e.Fields, v); err != nil {
		return fmt.Errorf("decode %s fields: %w", e.Entity, err)
	}
	return nil
}

// DecodeError says why an event could not be decoded.
type DecodeError struct {
	Channel string
	Reason  string
}

func (e *DecodeError) Error() string {
	return "decode event on " + e.Channel + ": " + e.Reason
}

// changeEventHeader is a CDC payload's ChangeEventHeader.
type changeEventHeader struct {
	EntityName      string     `json:"entityName"`
	RecordIDs       []string   `json:"recordIds"`
	ChangeType      ChangeType `json:"changeType"`
	ChangedFields   []string   `json:"changedFields"`
	ChangeOrigin    string     `json:"changeOrigin"`
	TransactionKey  string     `json:"transactionKey"`
	SequenceNumber  int64      `json:"sequenceNumber"`
	CommitTimestamp int64      `json:"commitTimestamp"`
	CommitNumber    int64      `json:"commitNumber"`
	CommitUser      string     `json:"commitUser"`
}

var pushTopicTypes = map[string]ChangeType{
	"created": ChangeCreate, "updated": ChangeUpdate, "deleted": ChangeDelete, "undeleted": ChangeUndelete,
}

// DecodeEvent decodes one event's data member, as sent on channel, with encoding/json.
// topicEntities maps a PushTopic channel to the entity its query selects from (nil: the entity
// is guessed from the record id's key prefix).
func DecodeEvent(channel string, data []byte, topicEntities map[string]string) (ChangeEvent, error) {
	var d bayeux.EventData
	if err := json.Unmarshal(data, &d); err != nil {
		return ChangeEvent{}, &DecodeError{Channel: channel, Reason: err.Error()}
	}
	id, err := d.Event.ReplayID.Int64()
	if d.Event.ReplayID != "" && err != nil {
		return ChangeEvent{}, &DecodeError{Channel: channel, Reason: "event.replayId is not an integer"}
	}
	return decodeEvent(channel, id, &d, topicEntities)
}

// decodeEvent turns a Bayeux event's data, decoded with the response, into a ChangeEvent.
func decodeEvent(channel string, replayID int64, d *bayeux.EventData, topicEntities map[string]string) (ChangeEvent, error) {
	ev := ChangeEvent{Channel: channel, ReplayID: replayID}
	bad := func(format string, args ...any) (ChangeEvent, error) {
		return ChangeEvent{}, &DecodeError{Channel: channel, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case d.Payload != nil:
		ev.Source = SourceCDC
		var h changeEventHeader
		raw, ok := d.Payload["ChangeEventHeader"]
		if !ok {
			return bad("payload has no ChangeEventHeader")
		}
		if err := json.Unmarshal(raw, &h); err != nil {
			return bad("ChangeEventHeader: %v", err)
		}
		if h.EntityName == "" || h.ChangeType == "" || len(h.RecordIDs) == 0 {
			return bad("ChangeEventHeader lacks entityName, changeType or recordIds")
		}
		ev.Entity, ev.ChangeType, ev.RecordIDs, ev.ChangedFields = h.EntityName, h.ChangeType, h.RecordIDs, h.ChangedFields
		ev.ChangeOrigin, ev.TransactionKey, ev.CommitUser = h.ChangeOrigin, h.TransactionKey, h.CommitUser
		ev.SequenceNumber, ev.CommitNumber = h.SequenceNumber, h.CommitNumber
		if h.CommitTimestamp > 0 {
			ev.CommitTimestamp = time.UnixMilli(h.CommitTimestamp).UTC()
		}
		delete(d.Payload, "ChangeEventHeader")
		ev.Fields = d.Payload
	case d.Sobject != nil:
		ev.Source = SourcePushTopic
		ct, ok := pushTopicTypes[d.Event.Type]
		if !ok {
			return bad("unknown PushTopic event type %q", d.Event.Type)
		}
		var id string
		if json.Unmarshal(d.Sobject["Id"], &id) != nil || id == "" {
			return bad("sobject has no Id")
		}
		ev.ChangeType, ev.RecordIDs, ev.Fields = ct, []string{id}, d.Sobject
		if t, err := ParseTime(d.Event.CreatedDate); err == nil {
			ev.CommitTimestamp = t.UTC()
		}
		topic, _, _ := strings.Cut(channel, "?")
		if e, ok := topicEntities[topic]; ok {
			ev.Entity = e
		} else if len(id) >= 3 {
			ev.Entity = keyPrefixes[id[:3]]
		}
	default:
		return bad("neither data.payload (CDC) nor data.sobject (PushTopic)")
	}
	var err error
	switch ev.Entity {
	case "PendingServiceRouting":
		ev.PSR = &PendingServiceRouting{}
		err = decodeFields(ev.Fields, ev.PSR)
	case "AgentWork":
		ev.AgentWork = &AgentWork{}
		err = decodeFields(ev.Fields, ev.AgentWork)
	case "UserServicePresence":
		ev.Presence = &UserServicePresence{}
		err = decodeFields(ev.Fields, ev.Presence)
	}
	if err != nil {
		return bad("%s fields: %v", ev.Entity, err)
	}
	return ev, nil
}

// keyPrefixes are the key prefixes observed for the objects omniroute reads (salesforce-facts
// §0; not a documented table).
var keyPrefixes = map[string]string{
	"0JR": "PendingServiceRouting",
	"0Bz": "AgentWork",
	"0N9": "ServiceChannel",
	"0N5": "ServicePresenceStatus",
	"0K8": "QueueRoutingConfig",
	"00G": "Group",
	"005": "User",
	"0LQ": "VoiceCall",
	"0Mw": "MessagingSession",
	"500": "Case",
	"570": "LiveChatTranscript",
}

// jsonField is a struct field known by its json tag name.
type jsonField struct {
	name  string
	index int
	typ   reflect.Type
}

var fieldCache sync.Map // reflect.Type -> []jsonField

// jsonFields returns the fields of struct type t that have a json name, in declaration order.
// The typed objects' SOQL field lists and the decoding of change events both come from it, so
// a struct tag is the one place a field is named.
func jsonFields(t reflect.Type) []jsonField {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]jsonField)
	}
	var out []jsonField
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, jsonField{name: name, index: i, typ: t.Field(i).Type})
		}
	}
	fieldCache.Store(t, out)
	return out
}

// decodeFields sets each field of the struct v points to from the raw value under its json
// name, with encoding/json; fields without a value are left alone.
func decodeFields(fields map[string]json.RawMessage, v any) error {
	rv := reflect.ValueOf(v).Elem()
	for _, f := range jsonFields(rv.Type()) {
		raw, ok := fields[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, rv.Field(f.index).Addr().Interface()); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}
