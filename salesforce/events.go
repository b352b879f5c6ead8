package salesforce

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ChangeType is the kind of change an event reports.
type ChangeType string

// Change types. CDC sends them as is; PushTopic's created, updated,
// deleted and undeleted map to the first four.
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

// IsGap reports whether the event is a gap (GAP_* or GAP_OVERFLOW): the
// record fields are missing and the records must be read again by id (for
// GAP_OVERFLOW: the whole entity must be resynchronised).
func (t ChangeType) IsGap() bool { return strings.HasPrefix(string(t), "GAP_") }

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

// ChangeEvent is a change to records of one entity, decoded from a CDC or
// a PushTopic event. Fields holds exactly the record fields the payload
// carried (for a CDC UPDATE: the changed ones; null means set to null).
type ChangeEvent struct {
	Channel  string
	ReplayID int64
	Source   Source
	// Entity is the sObject API name (PendingServiceRouting, AgentWork,
	// ...). For PushTopic events it comes from Decoder.TopicEntities or
	// the record id's key prefix; empty if neither knows it.
	Entity     string
	ChangeType ChangeType
	// RecordIDs are all the ids the change applies to (CDC merges
	// identical changes; GAP_OVERFLOW carries 000000000000000AAA).
	RecordIDs []string
	// ChangedFields is ChangeEventHeader.changedFields (CDC UPDATE only;
	// PushTopic does not say which fields changed).
	ChangedFields []string
	// Fields are the record fields present in the payload, raw. From a
	// Stream they alias the long-poll response the event came in (see
	// bayeux.Delivery.Data): copy what you keep for long.
	Fields map[string]json.RawMessage
	// CommitTimestamp is the CDC commit time, or PushTopic's createdDate.
	CommitTimestamp time.Time
	CommitUser      string
	CommitNumber    int64
	ChangeOrigin    string
	TransactionKey  string
	SequenceNumber  int64
}

// IsGap reports whether the event is a gap or overflow event.
func (e *ChangeEvent) IsGap() bool { return e.ChangeType.IsGap() }

// Has reports whether the payload carried field f.
func (e *ChangeEvent) Has(f string) bool { _, ok := e.Fields[f]; return ok }

// String returns field f as a string; ok is false if it is absent, null
// or not a string.
func (e *ChangeEvent) String(f string) (s string, ok bool) {
	raw, present := e.Fields[f]
	if !present || len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// Bool returns field f as a bool; ok is false if it is absent or not a bool.
func (e *ChangeEvent) Bool(f string) (v, ok bool) {
	switch string(e.Fields[f]) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// IsNull reports whether field f is present and null (set to null).
func (e *ChangeEvent) IsNull(f string) bool {
	raw, ok := e.Fields[f]
	return ok && string(raw) == "null"
}

// Decode unmarshals the present fields into v, typically a
// *PendingServiceRouting, *AgentWork or *UserServicePresence; fields
// absent from the payload keep their zero value, so check Has first.
func (e *ChangeEvent) Decode(v any) error {
	b, err := json.Marshal(e.Fields)
	if err != nil {
		return fmt.Errorf("encode %s fields: %w", e.Entity, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s fields: %w", e.Entity, err)
	}
	return nil
}

// DecodeError is an event that could not be decoded.
type DecodeError struct {
	Channel string
	Reason  string
}

func (e *DecodeError) Error() string {
	return "decode event on " + e.Channel + ": " + e.Reason
}

// Decoder turns Streaming API event data into ChangeEvents. The zero
// Decoder is ready to use.
type Decoder struct {
	// TopicEntities maps a PushTopic channel (/topic/Name) to the entity
	// its query selects from. Without an entry the entity is guessed from
	// the record id's key prefix.
	TopicEntities map[string]string
}

// DecodeEvent decodes with the zero Decoder.
func DecodeEvent(channel string, data []byte) (ChangeEvent, error) {
	var d Decoder
	return d.Decode(channel, data)
}

// Decode decodes one event's "data" member received on channel. It keeps
// its own copy of data: the Fields of the result alias that copy, never
// the caller's buffer.
func (d *Decoder) Decode(channel string, data []byte) (ChangeEvent, error) {
	return d.decodeOwned(channel, bytes.Clone(data))
}

// decodeOwned is Decode on data the caller hands over: the result's Fields
// alias it, so nothing may write to it afterwards. The stream uses it on
// bayeux.Delivery.Data, which the bayeux client never reuses.
func (d *Decoder) decodeOwned(channel string, buf []byte) (ChangeEvent, error) {
	ev := ChangeEvent{Channel: channel}
	var (
		payload, sobject         []byte
		typ, created             string
		havePayload, haveSobject bool
	)
	s := scanner{b: buf}
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "payload":
			havePayload = s.peek() == '{'
			payload, err = s.skip()
		case "sobject":
			haveSobject = s.peek() == '{'
			sobject, err = s.skip()
		case "event":
			if s.peek() == 'n' {
				return s.literal("null")
			}
			err = s.object(func(k []byte) error {
				var err error
				switch string(k) {
				case "replayId":
					ev.ReplayID, err = s.int64()
				case "type":
					typ, err = s.strOrNull()
				case "createdDate":
					created, err = s.strOrNull()
				default:
					_, err = s.skip()
				}
				return err
			})
		default:
			_, err = s.skip()
		}
		return err
	})
	if err == nil && s.peek() != 0 {
		err = errSyntax
	}
	if err != nil {
		return ChangeEvent{}, &DecodeError{Channel: channel, Reason: "invalid JSON at offset " + strconv.Itoa(s.i)}
	}
	switch {
	case havePayload:
		return d.cdc(ev, payload)
	case haveSobject:
		return d.pushTopic(ev, typ, created, sobject)
	}
	return ChangeEvent{}, &DecodeError{Channel: channel, Reason: "neither data.payload (CDC) nor data.sobject (PushTopic)"}
}

// fields collects the members of an object, except skipKey, as raw values;
// onSkip is called with the cursor on skipKey's value.
func fields(s *scanner, skipKey string, onSkip func() error) (map[string]json.RawMessage, error) {
	m := make(map[string]json.RawMessage, len(s.b)/48)
	err := s.object(func(key []byte) error {
		if onSkip != nil && string(key) == skipKey {
			return onSkip()
		}
		v, err := s.skip()
		if err != nil {
			return err
		}
		k, err := keyString(key)
		if err != nil {
			return err
		}
		m[k] = json.RawMessage(v)
		return nil
	})
	return m, err
}

// keyString returns an object key unescaped (field names never need it)
// and with invalid UTF-8 replaced.
// Known field names come from a fixed table, so decoding them allocates
// nothing.
func keyString(raw []byte) (string, error) {
	if k, ok := internedKeys[string(raw)]; ok {
		return k, nil
	}
	ascii := true
	for _, c := range raw {
		if c == '\\' {
			return unescapeJSON(raw)
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if !ascii && !utf8.Valid(raw) {
		return unescapeJSON(raw) // each invalid byte becomes U+FFFD, as in encoding/json
	}
	return string(raw), nil
}

func (d *Decoder) cdc(ev ChangeEvent, payload []byte) (ChangeEvent, error) {
	ev.Source = SourceCDC
	var (
		entity, changeType string
		haveHeader         bool
	)
	s := scanner{b: payload}
	m, err := fields(&s, "ChangeEventHeader", func() error {
		haveHeader = true
		return s.object(func(k []byte) error {
			var err error
			switch string(k) {
			case "entityName":
				entity, err = s.strIn(internedValues)
			case "changeType":
				changeType, err = s.strIn(internedValues)
			case "recordIds":
				ev.RecordIDs, err = s.strings()
			case "changedFields":
				ev.ChangedFields, err = s.stringsIn(internedKeys)
			case "changeOrigin":
				ev.ChangeOrigin, err = s.strOrNull()
			case "transactionKey":
				ev.TransactionKey, err = s.strOrNull()
			case "commitUser":
				ev.CommitUser, err = s.strOrNull()
			case "sequenceNumber":
				ev.SequenceNumber, err = s.int64()
			case "commitNumber":
				ev.CommitNumber, err = s.int64()
			case "commitTimestamp":
				var ms int64
				ms, err = s.int64()
				if ms > 0 {
					ev.CommitTimestamp = time.UnixMilli(ms).UTC()
				}
			default:
				_, err = s.skip()
			}
			return err
		})
	})
	if err != nil {
		return ChangeEvent{}, &DecodeError{Channel: ev.Channel, Reason: "payload: invalid JSON at offset " + strconv.Itoa(s.i)}
	}
	if !haveHeader {
		return ChangeEvent{}, &DecodeError{Channel: ev.Channel, Reason: "payload has no ChangeEventHeader"}
	}
	if entity == "" || changeType == "" {
		return ChangeEvent{}, &DecodeError{Channel: ev.Channel, Reason: "ChangeEventHeader lacks entityName or changeType"}
	}
	if len(ev.RecordIDs) == 0 {
		return ChangeEvent{}, &DecodeError{Channel: ev.Channel, Reason: "ChangeEventHeader has no recordIds"}
	}
	ev.Entity = entity
	ev.ChangeType = ChangeType(changeType)
	ev.Fields = m
	return ev, nil
}

var pushTopicTypes = map[string]ChangeType{
	"created": ChangeCreate, "updated": ChangeUpdate, "deleted": ChangeDelete, "undeleted": ChangeUndelete,
}

func (d *Decoder) pushTopic(ev ChangeEvent, typ, created string, raw []byte) (ChangeEvent, error) {
	ev.Source = SourcePushTopic
	s := scanner{b: raw}
	sobject, err := fields(&s, "", nil)
	if err != nil {
		return ChangeEvent{}, &DecodeError{Channel: ev.Channel, Reason: "sobject: invalid JSON at offset " + strconv.Itoa(s.i)}
	}
	ct, ok := pushTopicTypes[typ]
	if !ok {
		return ChangeEvent{}, &DecodeError{Channel: ev.Channel, Reason: fmt.Sprintf("unknown PushTopic event type %q", typ)}
	}
	ev.ChangeType = ct
	var id string
	if raw, ok := sobject["Id"]; !ok || json.Unmarshal(raw, &id) != nil || id == "" {
		return ChangeEvent{}, &DecodeError{Channel: ev.Channel, Reason: "sobject has no Id"}
	}
	ev.RecordIDs = []string{id}
	ev.Fields = sobject
	if created != "" {
		if t, err := ParseTime(created); err == nil {
			ev.CommitTimestamp = t.UTC()
		}
	}
	topic, _, _ := strings.Cut(ev.Channel, "?")
	if e, ok := d.TopicEntities[topic]; ok {
		ev.Entity = e
	} else if len(id) >= 3 {
		ev.Entity = keyPrefixes[id[:3]]
	}
	return ev, nil
}

// keyPrefixes are the key prefixes observed for the objects omniroute
// reads (salesforce-facts §0; not a documented table).
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

// internedValues holds the entity names and change types change events
// carry, so decoding them allocates nothing.
var internedValues = func() map[string]string {
	m := map[string]string{}
	for _, e := range keyPrefixes {
		m[e] = e
	}
	for _, e := range []string{"UserServicePresence", "ServiceResource", "ServiceResourceSkill", "SkillRequirement", "Skill"} {
		m[e] = e
	}
	for _, c := range []ChangeType{
		ChangeCreate, ChangeUpdate, ChangeDelete, ChangeUndelete, ChangeGapCreate,
		ChangeGapUpdate, ChangeGapDelete, ChangeGapUndelete, ChangeGapOverflow,
	} {
		m[string(c)] = string(c)
	}
	return m
}()

// internedKeys holds the field names of the typed Omni objects and the
// system fields every change event carries.
var internedKeys = func() map[string]string {
	m := map[string]string{}
	for _, v := range []any{
		PendingServiceRouting{}, AgentWork{}, UserServicePresence{}, ServicePresenceStatus{},
		ServiceChannel{}, QueueRoutingConfig{}, Queue{}, Skill{}, ServiceResource{},
		ServiceResourceSkill{}, SkillRequirement{},
	} {
		t := reflect.TypeOf(v)
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				m[name] = name
			}
		}
	}
	for _, k := range []string{"CreatedById", "LastModifiedById", "SystemModstamp", "IsDeleted", "Id", "Name", "OwnerId", "CreatedDate", "LastModifiedDate"} {
		m[k] = k
	}
	return m
}()
