package salesforce

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func ptr[T any](v T) *T { return &v }

func TestDecodeEvents(t *testing.T) {
	t.Parallel()
	ts := time.UnixMilli(1712693965000).UTC()
	tests := []struct {
		name    string
		channel string
		data    string
		want    ChangeEvent
	}{
		{
			name:    "cdc create on a custom channel",
			channel: "/data/ExternalRoutingChannel__chn",
			data: `{"schema":"abc","payload":{"ChangeEventHeader":{"entityName":"PendingServiceRouting","recordIds":["0JR000000000001AAA"],"changeType":"CREATE","changeOrigin":"com/salesforce/api/rest/63.0;client=omniroute","transactionKey":"tk-1","sequenceNumber":1,"commitTimestamp":1712693965000,"commitNumber":1082985383811,"commitUser":"005000000000001AAA","changedFields":[]},
				"RoutingModel":"ExternalRouting","IsReadyForRouting":true,"CapacityWeight":1.0,"PushTimeout":null},"event":{"replayId":6421}}`,
			want: ChangeEvent{
				Channel: "/data/ExternalRoutingChannel__chn", ReplayID: 6421, Source: SourceCDC, Entity: "PendingServiceRouting",
				ChangeType: ChangeCreate, RecordIDs: []string{"0JR000000000001AAA"}, ChangedFields: []string{},
				Fields:          map[string]json.RawMessage{"RoutingModel": raw(`"ExternalRouting"`), "IsReadyForRouting": raw(`true`), "CapacityWeight": raw(`1.0`), "PushTimeout": raw(`null`)},
				CommitTimestamp: ts, CommitUser: "005000000000001AAA", CommitNumber: 1082985383811,
				ChangeOrigin: "com/salesforce/api/rest/63.0;client=omniroute", TransactionKey: "tk-1", SequenceNumber: 1,
				PSR: &PendingServiceRouting{RoutingModel: RoutingModelExternal, IsReadyForRouting: true, CapacityWeight: ptr(1.0)},
			},
		},
		{
			name:    "cdc update carries only changed fields, several record ids",
			channel: "/data/PendingServiceRoutingChangeEvent",
			data:    `{"payload":{"IsPushed":false,"ChangeEventHeader":{"entityName":"PendingServiceRouting","recordIds":["0JR000000000001AAA","0JR000000000002AAA"],"changeType":"UPDATE","changedFields":["IsPushed","LastModifiedDate"],"commitTimestamp":1712693965000},"LastModifiedDate":"2024-04-09T20:19:25Z"},"event":{"replayId":7}}`,
			want: ChangeEvent{
				Channel: "/data/PendingServiceRoutingChangeEvent", ReplayID: 7, Source: SourceCDC, Entity: "PendingServiceRouting",
				ChangeType: ChangeUpdate, RecordIDs: []string{"0JR000000000001AAA", "0JR000000000002AAA"},
				ChangedFields:   []string{"IsPushed", "LastModifiedDate"},
				Fields:          map[string]json.RawMessage{"IsPushed": raw(`false`), "LastModifiedDate": raw(`"2024-04-09T20:19:25Z"`)},
				CommitTimestamp: ts,
				PSR:             &PendingServiceRouting{LastModifiedDate: Time{time.Date(2024, 4, 9, 20, 19, 25, 0, time.UTC)}},
			},
		},
		{
			name:    "cdc delete has no fields",
			channel: "/data/AgentWorkChangeEvent",
			data:    `{"payload":{"ChangeEventHeader":{"entityName":"AgentWork","recordIds":["0Bz000000000001AAA"],"changeType":"DELETE","changedFields":[]}},"event":{"replayId":8}}`,
			want: ChangeEvent{Channel: "/data/AgentWorkChangeEvent", ReplayID: 8, Source: SourceCDC, Entity: "AgentWork", ChangeType: ChangeDelete,
				RecordIDs: []string{"0Bz000000000001AAA"}, ChangedFields: []string{}, Fields: map[string]json.RawMessage{}, AgentWork: &AgentWork{}},
		},
		{
			name:    "gap event",
			channel: "/data/ChangeEvents",
			data:    `{"payload":{"ChangeEventHeader":{"entityName":"UserServicePresence","recordIds":["0Hn000000000001AAA"],"changeType":"GAP_UPDATE","changeOrigin":"","changedFields":[]},"IsCurrentState":null},"event":{"replayId":9}}`,
			want: ChangeEvent{Channel: "/data/ChangeEvents", ReplayID: 9, Source: SourceCDC, Entity: "UserServicePresence", ChangeType: ChangeGapUpdate,
				RecordIDs: []string{"0Hn000000000001AAA"}, ChangedFields: []string{}, Fields: map[string]json.RawMessage{"IsCurrentState": raw(`null`)},
				Presence: &UserServicePresence{}},
		},
		{
			name:    "gap overflow",
			channel: "/data/ChangeEvents",
			data:    `{"payload":{"ChangeEventHeader":{"entityName":"AgentWork","recordIds":["000000000000000AAA"],"changeType":"GAP_OVERFLOW"}},"event":{"replayId":10}}`,
			want: ChangeEvent{Channel: "/data/ChangeEvents", ReplayID: 10, Source: SourceCDC, Entity: "AgentWork", ChangeType: ChangeGapOverflow,
				RecordIDs: []string{"000000000000000AAA"}, Fields: map[string]json.RawMessage{}, AgentWork: &AgentWork{}},
		},
		{
			name:    "pushtopic created",
			channel: "/topic/PSRPushTopic",
			data:    `{"event":{"createdDate":"2016-03-29T16:40:08.208Z","replayId":13,"type":"created"},"sobject":{"Id":"0JR000000000003AAA","IsPushed":false,"QueueId":"00G000000000001AAA"}}`,
			want: ChangeEvent{Channel: "/topic/PSRPushTopic", ReplayID: 13, Source: SourcePushTopic, Entity: "PendingServiceRouting", ChangeType: ChangeCreate,
				RecordIDs:       []string{"0JR000000000003AAA"},
				Fields:          map[string]json.RawMessage{"Id": raw(`"0JR000000000003AAA"`), "IsPushed": raw(`false`), "QueueId": raw(`"00G000000000001AAA"`)},
				CommitTimestamp: time.Date(2016, 3, 29, 16, 40, 8, 208e6, time.UTC),
				PSR:             &PendingServiceRouting{ID: "0JR000000000003AAA", QueueID: "00G000000000001AAA"}},
		},
		{
			name:    "pushtopic deleted with filter in the subscription",
			channel: "/topic/Presence?IsCurrentState=true",
			data:    `{"event":{"createdDate":"2016-03-29T16:40:08.208+0000","replayId":14,"type":"deleted"},"sobject":{"Id":"0Hn000000000001AAA"}}`,
			want: ChangeEvent{Channel: "/topic/Presence?IsCurrentState=true", ReplayID: 14, Source: SourcePushTopic, Entity: "UserServicePresence", ChangeType: ChangeDelete,
				RecordIDs:       []string{"0Hn000000000001AAA"},
				Fields:          map[string]json.RawMessage{"Id": raw(`"0Hn000000000001AAA"`)},
				CommitTimestamp: time.Date(2016, 3, 29, 16, 40, 8, 208e6, time.UTC),
				Presence:        &UserServicePresence{ID: "0Hn000000000001AAA"}},
		},
	}
	topics := map[string]string{"/topic/Presence": "UserServicePresence"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeEvent(tc.channel, []byte(tc.data), topics)
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tc.want, got, cmpopts.EquateEmpty()))
			require.Equal(t, strings.HasPrefix(string(tc.want.ChangeType), "GAP_"), got.ChangeType.IsGapEvent())
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]string{
		"not json":                    `{"payload":`,
		"trailing garbage":            `{"payload":{}} x`,
		"no payload":                  `{"event":{"replayId":1}}`,
		"no header":                   `{"payload":{"A":1},"event":{"replayId":1}}`,
		"header without ids":          `{"payload":{"ChangeEventHeader":{"entityName":"X","changeType":"CREATE"}}}`,
		"header without type":         `{"payload":{"ChangeEventHeader":{"entityName":"X","recordIds":["a"]}}}`,
		"replay id a word":            `{"payload":{"ChangeEventHeader":{"entityName":"X","changeType":"CREATE","recordIds":["a"]}},"event":{"replayId":"seven"}}`,
		"replay id a float":           `{"payload":{"ChangeEventHeader":{"entityName":"X","changeType":"CREATE","recordIds":["a"]}},"event":{"replayId":7.5}}`,
		"typed field of another type": `{"payload":{"ChangeEventHeader":{"entityName":"PendingServiceRouting","changeType":"UPDATE","recordIds":["0JR"]},"IsPushed":"yes"}}`,
		"record ids numbers":          `{"payload":{"ChangeEventHeader":{"entityName":"X","changeType":"CREATE","recordIds":[1]}}}`,
		"pushtopic no id":             `{"event":{"type":"created","replayId":1},"sobject":{"Name":"x"}}`,
		"pushtopic bad type":          `{"event":{"type":"merged","replayId":1},"sobject":{"Id":"0JR000000000001AAA"}}`,
		"bad literal":                 `{"payload":{"ChangeEventHeader":{"entityName":"X","changeType":"CREATE","recordIds":["a"]},"F":tru}}`,
	} {
		_, err := DecodeEvent("/data/X", []byte(data), nil)
		var de *DecodeError
		require.ErrorAs(t, err, &de, name)
		require.Equal(t, "/data/X", de.Channel)
	}
}

// A typed record says which fields an UPDATE carried: Has tells an absent field from false or
// zero, and numbers decode as numbers.
func TestChangeEventAccessors(t *testing.T) {
	t.Parallel()
	ev, err := DecodeEvent("/data/AgentWorkChangeEvent", []byte(`{"payload":{"ChangeEventHeader":{"entityName":"AgentWork","recordIds":["0Bz000000000001AAA"],"changeType":"UPDATE","changedFields":["Status","DeclineReason","CapacityWeight","ShouldSkipCapacityCheck"]},"Status":"Declined","DeclineReason":null,"CapacityWeight":2,"ShouldSkipCapacityCheck":false,"Note":"caf\u00e9 \"q\""},"event":{"replayId":3}}`), nil)
	require.NoError(t, err)
	require.Nil(t, ev.PSR)
	require.Nil(t, ev.Presence)
	aw := ev.AgentWork
	require.Equal(t, "Declined", aw.Status)
	require.Equal(t, 2.0, *aw.CapacityWeight)
	require.True(t, ev.Has("ShouldSkipCapacityCheck"))
	require.False(t, aw.ShouldSkipCapacityCheck)
	require.False(t, ev.Has("UserId"), "absent, not empty")
	require.Empty(t, aw.UserID)
	require.True(t, ev.IsNull("DeclineReason"))
	require.False(t, ev.IsNull("Status"))
	require.JSONEq(t, `"café \"q\""`, string(ev.Fields["Note"]))
	var other struct {
		Note   string `json:"Note"`
		Status string `json:"Status"`
	}
	require.NoError(t, ev.Decode(&other))
	require.Equal(t, `café "q"`, other.Note)
	require.Equal(t, "Declined", other.Status)
}

// The decoded event must not alias the caller's buffer.
func TestDecodeCopiesInput(t *testing.T) {
	t.Parallel()
	data := []byte(`{"payload":{"ChangeEventHeader":{"entityName":"AgentWork","recordIds":["0Bz000000000001AAA"],"changeType":"UPDATE"},"Status":"Opened"},"event":{"replayId":3}}`)
	ev, err := DecodeEvent("/data/X", data, nil)
	require.NoError(t, err)
	for i := range data {
		data[i] = 'x'
	}
	require.Equal(t, "Opened", ev.AgentWork.Status)
	require.Equal(t, `"Opened"`, string(ev.Fields["Status"]))
}

func FuzzDecodeEvent(f *testing.F) {
	for _, b := range cdcBatch(4) {
		f.Add(b)
	}
	f.Add([]byte(`{"event":{"createdDate":"2016-03-29T16:40:08.208Z","replayId":13,"type":"created"},"sobject":{"Id":"0JR000000000003AAA"}}`))
	f.Add([]byte(`{"payload":{"ChangeEventHeader":{"entityName":"A\u00e9","recordIds":["x\/y"],"changeType":"CREATE"},"F":"\ud83d\ude00"}}`))
	// Interned entity names, change types and changed fields, plain and escaped.
	f.Add([]byte(`{"payload":{"ChangeEventHeader":{"entityName":"PendingServiceRouting","recordIds":["0JR"],"changeType":"UPDATE","changedFields":["IsPushed","Name","\u0049d","Unknown__c"]},"Name":"n"}}`))
	f.Add([]byte(`{"payload":{"ChangeEventHeader":{"entityName":"\u0041gentWork","recordIds":["0Bz"],"changeType":"GAP_OVERFLOW","changedFields":[]}}}`))
	f.Add([]byte(`{"payload":{"ChangeEventHeader":{"entityName":"AgentWork","recordIds":["0Bz"],"changeType":"UPDATE","changedFields":["Id",null]}}}`))
	f.Add([]byte(`{"payload":{"ChangeEventHeader":{"entityName":"AgentWork","recordIds":["0Bz"],"changeType":"UPDATE","changedFields":["Id"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeEvent("/data/X", data, nil)
		if err != nil {
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			return
		}
		require.True(t, json.Valid(data), "accepted invalid JSON %q", data)
		require.NotEmpty(t, got.RecordIDs)
		for k, v := range got.Fields {
			require.True(t, json.Valid(v), "field %q: %q", k, v)
		}
	})
}
