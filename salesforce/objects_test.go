package salesforce

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2022, 11, 30, 11, 29, 34, 0, time.UTC)
	for _, s := range []string{"2022-11-30T11:29:34.000+0000", "2022-11-30T11:29:34Z", "2022-11-30T11:29:34+0000", "2022-11-30T12:29:34.000+01:00"} {
		got, err := ParseTime(s)
		require.NoError(t, err, s)
		require.True(t, want.Equal(got), s)
	}
	_, err := ParseTime("yesterday")
	require.Error(t, err)

	var v struct{ T, N Time }
	require.NoError(t, json.Unmarshal([]byte(`{"T":"2022-11-30T11:29:34.000+0000","N":null}`), &v))
	require.True(t, want.Equal(v.T.Time))
	require.True(t, v.N.IsZero())
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.JSONEq(t, `{"T":"2022-11-30T11:29:34.000+0000","N":null}`, string(b))
	require.Error(t, json.Unmarshal([]byte(`{"T":12}`), &v))
}

// Queues come from SOQL on Group with the routing configuration as a
// parent relationship; nulls become nil pointers.
func TestQueueWithRoutingConfig(t *testing.T) {
	t.Parallel()
	raw := `{"attributes":{"type":"Group","url":"/services/data/v63.0/sobjects/Group/00G000000000001AAA"},
		"Id":"00G000000000001AAA","Name":"Support EN","DeveloperName":"Support_EN","Type":"Queue",
		"QueueRoutingConfigId":"0K8000000000001AAA",
		"QueueRoutingConfig":{"attributes":{"type":"QueueRoutingConfig"},"Id":"0K8000000000001AAA","DeveloperName":"External_Routing",
			"RoutingModel":"ExternalRouting","RoutingPriority":1,"PushTimeout":30,"CapacityWeight":1.0,"CapacityPercentage":null,
			"DropAdditionalSkillsTimeout":null,"OverflowAssigneeId":null}}`
	var q Queue
	require.NoError(t, json.Unmarshal([]byte(raw), &q))
	require.Equal(t, "Group", q.Attributes.Type)
	require.Equal(t, "Support_EN", q.DeveloperName)
	require.NotNil(t, q.RoutingConfig)
	require.Equal(t, RoutingModelExternal, q.RoutingConfig.RoutingModel)
	require.Equal(t, 30, *q.RoutingConfig.PushTimeout)
	require.Nil(t, q.RoutingConfig.CapacityPercentage)
	require.Equal(t, 1.0, *q.RoutingConfig.CapacityWeight)
}

func TestRecordMarshal(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Record{Type: "AgentWork", ID: "0Bz000000000001AAA", Fields: map[string]any{"UserId": "005x"}})
	require.NoError(t, err)
	require.JSONEq(t, `{"attributes":{"type":"AgentWork"},"id":"0Bz000000000001AAA","UserId":"005x"}`, string(b))
	b, err = json.Marshal(NewAgentWork{ServiceChannelID: "0N9", WorkItemID: "500", UserID: "005"})
	require.NoError(t, err)
	require.JSONEq(t, `{"ServiceChannelId":"0N9","WorkItemId":"500","UserId":"005"}`, string(b))
}

// TestFieldListsMatchTypes: each XxxFields SOQL list names exactly the
// fields its type decodes (but attributes and parent relationships), so a
// field added to one and not the other is caught.
func TestFieldListsMatchTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		list string
		v    any
	}{
		{PendingServiceRoutingFields, PendingServiceRouting{}}, {AgentWorkFields, AgentWork{}},
		{UserServicePresenceFields, UserServicePresence{}}, {ServicePresenceStatusFields, ServicePresenceStatus{}},
		{ServiceChannelFields, ServiceChannel{}}, {QueueRoutingConfigFields, QueueRoutingConfig{}}, {QueueFields, Queue{}},
		{SkillFields, Skill{}}, {ServiceResourceFields, ServiceResource{}},
		{ServiceResourceSkillFields, ServiceResourceSkill{}}, {SkillRequirementFields, SkillRequirement{}},
	} {
		list, v := tc.list, tc.v
		typ := reflect.TypeOf(v)
		var tags []string
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "attributes" || (f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct) {
				continue
			}
			tags = append(tags, name)
		}
		require.ElementsMatch(t, tags, strings.Split(list, ", "), typ.Name())
	}
}

// recordAsMap is a record's map form, the way Record.MarshalJSON wrote it before 25a07a1: its
// fields, then attributes and id (when set) over them.
func recordAsMap(r Record) map[string]any {
	m := map[string]any{}
	for k, v := range r.Fields {
		m[k] = v
	}
	m["attributes"] = map[string]string{"type": r.Type}
	if r.ID != "" {
		m["id"] = r.ID
	}
	return m
}

// TestRecordJSONAsAMap: the record written out by hand is the JSON the plain way gives (a map
// of the fields plus attributes and id, through encoding/json), byte for byte, including the
// key order, escaping, values of every kind, and fields that clash with the record's own
// members; a value encoding/json refuses is an error naming the field.
func TestRecordJSONAsAMap(t *testing.T) {
	t.Parallel()
	plain := func(r Record) []byte {
		b, err := json.Marshal(recordAsMap(r))
		require.NoError(t, err)
		return b
	}
	weight := 1.5
	records := []Record{
		{Type: "AgentWork"},
		{Type: "AgentWork", Fields: map[string]any{"UserId": "005x", "WorkItemId": "0Mw", "CapacityWeight": weight, "PendingServiceRoutingId": "0JR"}},
		{Type: "Case", ID: "500000000000001AAA", Fields: map[string]any{"OwnerId": "00G", "Subject": `<a & "b">\é`, "IsEscalated": false, "Priority": nil}},
		{Type: "Case", ID: "500000000000001AAA", Fields: map[string]any{"id": "other", "attributes": "x", "Nested": map[string]any{"b": 1, "a": []int{2}}}},
		{Type: "Case", Fields: map[string]any{"id": "kept without ID", "Weight": &weight, "Count": int64(7)}},
	}
	for _, r := range records {
		got, err := json.Marshal(r)
		require.NoError(t, err)
		require.Equal(t, string(plain(r)), string(got))
	}
	body, err := encodeCollection(true, records)
	require.NoError(t, err)
	want, err := json.Marshal(struct {
		AllOrNone bool     `json:"allOrNone"`
		Records   []Record `json:"records"`
	}{true, records})
	require.NoError(t, err)
	require.Equal(t, string(want), string(body))

	_, err = json.Marshal(Record{Type: "Case", Fields: map[string]any{"Bad": math.Inf(1)}})
	require.ErrorContains(t, err, "field Bad")
	_, err = encodeCollection(false, []Record{{Type: "Case"}, {Type: "Case", Fields: map[string]any{"Bad": make(chan int)}}})
	require.ErrorContains(t, err, "record 1: field Bad")
}

// FuzzParseTimeAsTheLayouts: ParseTime gives what trying its layouts in order gave (the form
// before RFC 3339 was tried first for a time ending in Z), for every string.
func FuzzParseTimeAsTheLayouts(f *testing.F) {
	inOrder := func(s string) (time.Time, error) {
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t, nil
			}
		}
		return time.Time{}, errors.New("unknown layout")
	}
	for _, s := range []string{
		"2022-11-30T11:29:34.000+0000", "2022-11-30T11:29:34+0200", "2024-04-09T20:19:25Z", "2024-04-09T20:19:25.123456789Z",
		"2024-04-09T20:19:25,5Z", "2024-04-09T20:19:25.000Z", "2024-04-09T20:19:25.000+0000Z", "2024-04-09T20:19:25+00:00",
		"2024-04-09T24:00:00Z", "2024-02-30T20:19:25Z", "2024-04-09", "2024-04-09Z", "2024-04-09T20:19:25z", "Z", "",
		"2024-04-09T20:19:25.Z", "2024-04-09T20:19:25-00:00", "2024-04-09T20:19Z", "yesterday",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		want, wantErr := inOrder(s)
		// String names the instant, the zone and its offset.
		if (err != nil) != (wantErr != nil) || got.String() != want.String() {
			t.Fatalf("ParseTime(%q) = %v, %v; the layouts in order give %v, %v", s, got, err, want, wantErr)
		}
	})
}

// FuzzRecordJSONAsAMap: a record written out by hand is what encoding/json makes of the map
// form, byte for byte, whatever its keys and values (escaping, invalid UTF-8, keys around and
// equal to attributes and id), alone and in an sObject Collections body.
func FuzzRecordJSONAsAMap(f *testing.F) {
	f.Add("AgentWork", "", "UserId", "005x", "CapacityWeight", 1.5, true)
	f.Add("Case", "500000000000001AAA", "id", "<&>", "attributes", 0.0, false)
	f.Add("Ca\"se", "\u2028", "\xff", "\xfe", "Id", -2.5e300, true)
	f.Add("", "x", "attributes", "y", "attributez", 3.0, false)
	f.Add("é", "", "id", "kept", "", 1e21, true)
	f.Fuzz(func(t *testing.T, typ, id, k1, v1, k2 string, f2 float64, b bool) {
		r := Record{Type: typ, ID: id, Fields: map[string]any{k1: v1, k2: f2, k1 + k2: b, k2 + "n": nil, "Nested" + k1: map[string]any{k2: []any{v1, f2}}}}
		want, wantErr := json.Marshal(recordAsMap(r))
		got, err := json.Marshal(r)
		if (err != nil) != (wantErr != nil) || string(got) != string(want) {
			t.Fatalf("record %#v:\n got %s, %v\nwant %s, %v", r, got, err, want, wantErr)
		}
		body, err := encodeCollection(b, []Record{r, {Type: k1}})
		wantBody, wantErr := json.Marshal(struct {
			AllOrNone bool     `json:"allOrNone"`
			Records   []Record `json:"records"`
		}{b, []Record{r, {Type: k1}}})
		if (err != nil) != (wantErr != nil) || string(body) != string(wantBody) {
			t.Fatalf("collection:\n got %s, %v\nwant %s, %v", body, err, wantBody, wantErr)
		}
	})
}
