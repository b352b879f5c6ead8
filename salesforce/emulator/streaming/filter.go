package streaming

import (
	"bytes"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
)

// subscription is one client subscription: a channel, optionally narrowed by a filter written
// as Salesforce's PushTopic subscription filters are ("/topic/Name?Field=value&Other=value").
type subscription struct {
	key    string // the subscription as the client wrote it
	st     *channelState
	filter []fieldFilter // nil: every event
}

type fieldFilter struct {
	field, value string
}

// parseSubscription splits "/topic/Name?F=v&G=w" into the channel and its filter. ok is false
// when the query cannot be parsed.
func parseSubscription(sub string) (channel string, filter []fieldFilter, ok bool) {
	channel, query, found := strings.Cut(sub, "?")
	if !found || query == "" {
		return channel, nil, true
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return channel, nil, false
	}
	for field, vs := range values {
		if field == "" {
			return channel, nil, false
		}
		for _, v := range vs {
			filter = append(filter, fieldFilter{field: field, value: unquote(v)})
		}
	}
	sort.Slice(filter, func(i, j int) bool { return filter[i].field < filter[j].field })
	return channel, filter, true
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// sobjectFields lazily decodes data.sobject (PushTopic shape) or data.payload (CDC and
// platform-event shape) of one event, once for all the filtered subscribers.
type sobjectFields struct {
	data    json.RawMessage
	decoded bool
	fields  map[string]json.RawMessage
}

func (f *sobjectFields) get(name string) (json.RawMessage, bool) {
	if !f.decoded {
		f.decoded = true
		var d struct {
			Sobject map[string]json.RawMessage `json:"sobject"`
			Payload map[string]json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(f.data, &d) == nil {
			f.fields = d.Sobject
			if f.fields == nil {
				f.fields = d.Payload
			}
		}
	}
	if v, ok := f.fields[name]; ok {
		return v, true
	}
	for k, v := range f.fields {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// matches reports whether every field filter holds: a JSON string field equals the value,
// any other field's JSON text (true, 42, null) equals it.
func (s *subscription) matches(f *sobjectFields) bool {
	for _, ff := range s.filter {
		raw, ok := f.get(ff.field)
		if !ok {
			return false
		}
		raw = bytes.TrimSpace(raw)
		var str string
		if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &str) == nil {
			if str != ff.value {
				return false
			}
			continue
		}
		if string(raw) != ff.value {
			return false
		}
	}
	return true
}

// anyMatches reports whether one of a client's subscriptions to a channel takes the event.
func anyMatches(subs []*subscription, f *sobjectFields) bool {
	for _, s := range subs {
		if s.filter == nil || s.matches(f) {
			return true
		}
	}
	return false
}
