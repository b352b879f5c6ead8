package connector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce"
)

// translateOrg names one queue by Id in the mapping (Billing) and the others by DeveloperName.
var translateOrg = mapping.Org{
	Queues: []mapping.OrgQueue{
		{ID: "00G000000000001AAA", DeveloperName: "Support_EN", RoutingModel: salesforce.RoutingModelExternal},
		{ID: "00G000000000003AAA", DeveloperName: "Billing", RoutingModel: salesforce.RoutingModelExternal},
	},
	Channels: []mapping.OrgChannel{{ID: "0N9000000000001AAA", DeveloperName: "Chat"}, {ID: "0N9000000000003AAA", DeveloperName: "Case"}},
	Skills:   []mapping.OrgSkill{{ID: "0C5000000000001AAA", DeveloperName: "English"}, {ID: "0C5000000000002AAA", DeveloperName: "Billing"}},
}

func translateNames() Names {
	return NewNames(translateOrg, &mapping.Config{Plans: []mapping.Plan{
		{Name: "support", Queues: []string{"Support_EN"}},
		{Name: "billing", Queues: []string{"00G000000000003AAA"}},
	}})
}

// knownRecords is the router's memory in the tests.
type knownRecords struct {
	psrs map[string]string
	aws  map[string]AgentWorkRef
}

func (k knownRecords) WorkForPSR(id string) (string, bool) { w, ok := k.psrs[id]; return w, ok }
func (k knownRecords) AgentWork(id string) (AgentWorkRef, bool) {
	r, ok := k.aws[id]
	return r, ok
}

var known = knownRecords{
	psrs: map[string]string{"0JR000000000001AAA": "570000000000001AAA"},
	aws: map[string]AgentWorkRef{
		"0Bz000000000001AAA": {UserID: "005000000000001AAA", WorkID: "570000000000001AAA", PSR: "0JR000000000001AAA", Ours: true},
		"0Bz000000000009AAA": {UserID: "005000000000002AAA", WorkID: "570000000000009AAA"}, // routed natively
	},
}

// cdc builds a CDC event on the custom channel and decodes it as the stream does.
func cdc(t *testing.T, entity, changeType, origin string, ids, changedFields []string, fields string) *salesforce.ChangeEvent {
	t.Helper()
	q := func(ss []string) string {
		if len(ss) == 0 {
			return "[]"
		}
		return `["` + strings.Join(ss, `","`) + `"]`
	}
	if fields != "" {
		fields = "," + fields
	}
	data := fmt.Sprintf(`{"payload":{"ChangeEventHeader":{"entityName":%q,"recordIds":%s,"changeType":%q,"changeOrigin":%q,`+
		`"changedFields":%s,"commitTimestamp":1764950000000}%s},"event":{"replayId":42}}`, entity, q(ids), changeType, origin, q(changedFields), fields)
	ev, err := salesforce.DecodeEvent("/data/ExternalRoutingChannel__chn", []byte(data), nil)
	require.NoError(t, err, data)
	return &ev
}

const ownOrigin = "com/salesforce/api/rest/64.0;client=omniroute"

func TestTranslate(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	psrFull := `"RoutingModel":"ExternalRouting","RoutingType":"QueueBased","IsReadyForRouting":true,"IsPushed":false,` +
		`"QueueId":"00G000000000001AAA","GroupId":"00G000000000001AAA","ServiceChannelId":"0N9000000000001AAA",` +
		`"WorkItemId":"570000000000001AAA","CapacityWeight":2.0,"RoutingPriority":1,"PreferredUserId":"005000000000003AAA",` +
		`"IsPreferredUserRequired":true,"DropAdditionalSkillsTimeout":null,"CustomRequestedDateTime":null,"CreatedDate":"2026-12-05T09:00:00Z"`
	tests := []struct {
		name string
		ev   func(t *testing.T) *salesforce.ChangeEvent
		want Change
	}{
		{
			name: "PSR CREATE, queue-based: work arrives with every field of the payload",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "PendingServiceRouting", "CREATE", "", []string{"0JR000000000001AAA"}, nil, psrFull)
			},
			want: Change{Events: []routing.Event{{Type: routing.EventWorkArrived, Work: routing.Work{
				ID: "570000000000001AAA", PSR: "0JR000000000001AAA", Queue: "Support_EN", Channel: "Chat",
				RequestedAt: created, Priority: 1, HasPriority: true, Weight: 2,
				PreferredUser: "005000000000003AAA", PreferredRequired: true,
			}}}},
		},
		{
			name: "PSR CREATE, skills-based: read it with its skill requirements",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "PendingServiceRouting", "CREATE", "", []string{"0JR000000000002AAA"}, nil,
					strings.Replace(psrFull, "QueueBased", "SkillsBased", 1))
			},
			want: Change{ReadPSRs: []string{"0JR000000000002AAA"}},
		},
		{
			name: "PSR CREATE of another routing model",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "PendingServiceRouting", "CREATE", "", []string{"0JR000000000002AAA"}, nil,
					strings.Replace(psrFull, `"ExternalRouting"`, `"MostAvailable"`, 1))
			},
			want: Change{Skipped: SkipNotExternal},
		},
		{
			name: "PSR CREATE not ready for routing",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "PendingServiceRouting", "CREATE", "", []string{"0JR000000000002AAA"}, nil,
					strings.Replace(psrFull, `"IsReadyForRouting":true`, `"IsReadyForRouting":false`, 1))
			},
			want: Change{Skipped: SkipNotReady},
		},
		{
			name: "PSR UPDATE IsPushed true (our offer), enriched fields unchanged: noise",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "PendingServiceRouting", "UPDATE", ownOrigin, []string{"0JR000000000001AAA"},
					[]string{"IsPushed", "LastModifiedDate"}, `"IsPushed":true,"RoutingModel":"ExternalRouting","IsReadyForRouting":true,"LastModifiedDate":"2026-12-05T09:00:01Z"`)
			},
			want: Change{Own: true, Skipped: SkipNoise},
		},
		{
			name: "PSR UPDATE pushed back after a decline: the AgentWork says whose and how",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "PendingServiceRouting", "UPDATE", "", []string{"0JR000000000001AAA"},
					[]string{"IsPushed", "LastDeclinedAgentSession", "Serial"}, `"IsPushed":false,"LastDeclinedAgentSession":"0Mw000000000001","Serial":3,"RoutingModel":"ExternalRouting","IsReadyForRouting":true`)
			},
			want: Change{Pushback: []string{"0JR000000000001AAA"}},
		},
		{
			name: "PSR UPDATE of the priority alone: absent fields are unknown, so read the PSR whole",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "PendingServiceRouting", "UPDATE", "", []string{"0JR000000000001AAA"},
					[]string{"RoutingPriority"}, `"RoutingPriority":0,"RoutingModel":"ExternalRouting","IsReadyForRouting":true`)
			},
			want: Change{ReadPSRs: []string{"0JR000000000001AAA"}},
		},
		{
			name: "PSR DELETE of known work",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "PendingServiceRouting", "DELETE", "", []string{"0JR000000000001AAA"}, nil, "")
			},
			want: Change{Events: []routing.Event{{Type: routing.EventWorkRemoved, WorkID: "570000000000001AAA", PSR: "0JR000000000001AAA"}}},
		},
		{
			name: "PSR DELETE of a PSR never seen",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "PendingServiceRouting", "DELETE", "", []string{"0JR000000000007AAA"}, nil, "")
			},
			want: Change{Skipped: SkipUnknown},
		},
		{
			name: "AgentWork CREATE by omniroute: an acknowledgement",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "AgentWork", "CREATE", ownOrigin, []string{"0Bz000000000005AAA"}, nil,
					`"Status":"Assigned","UserId":"005000000000001AAA","WorkItemId":"570000000000005AAA","RoutingModel":"ExternalRouting"`)
			},
			want: Change{Own: true, Skipped: SkipOwnInsert},
		},
		{
			name: "AgentWork CREATE by native routing: the agent is busy inbound",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "AgentWork", "CREATE", "com/salesforce/api/soap/64.0", []string{"0Bz000000000006AAA"}, nil,
					`"Status":"Opened","UserId":"005000000000002AAA","WorkItemId":"570000000000006AAA","ServiceChannelId":"0N9000000000003AAA","RoutingModel":"MostAvailable"`)
			},
			want: Change{Events: []routing.Event{{Type: routing.EventExternalWork, AgentID: "005000000000002AAA", WorkID: "570000000000006AAA", Channel: "Case"}}},
		},
		{
			name: "AgentWork Opened: accepted by the agent the daemon offered it to",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "AgentWork", "UPDATE", "", []string{"0Bz000000000001AAA"}, []string{"Status", "AcceptDateTime"},
					`"Status":"Opened","RoutingModel":"ExternalRouting"`)
			},
			want: Change{Events: []routing.Event{{Type: routing.EventOfferAccepted, AgentID: "005000000000001AAA", WorkID: "570000000000001AAA"}}},
		},
		{
			name: "AgentWork DeclinedOnPushTimeout: who is taken from the AgentWork omniroute created",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "AgentWork", "UPDATE", "", []string{"0Bz000000000001AAA"}, []string{"Status", "DeclineDateTime"},
					`"Status":"DeclinedOnPushTimeout","RoutingModel":"ExternalRouting"`)
			},
			want: Change{Events: []routing.Event{{Type: routing.EventOfferDeclined, AgentID: "005000000000001AAA", WorkID: "570000000000001AAA", Outcome: routing.OutcomePushTimeout}}},
		},
		{
			name: "AgentWork Closed of external work",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "AgentWork", "UPDATE", "", []string{"0Bz000000000009AAA"}, []string{"Status"}, `"Status":"Closed"`)
			},
			want: Change{Events: []routing.Event{{Type: routing.EventExternalWorkClosed, AgentID: "005000000000002AAA", WorkID: "570000000000009AAA"}}},
		},
		{
			name: "AgentWork UPDATE that leaves Status alone: noise",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "AgentWork", "UPDATE", "", []string{"0Bz000000000001AAA"}, []string{"CapacityWeight"},
					`"CapacityWeight":3.0,"Status":"Opened","RoutingModel":"ExternalRouting"`)
			},
			want: Change{Skipped: SkipNoise},
		},
		{
			name: "AgentWork Assigned, never seen, update without its user: read it",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "AgentWork", "UPDATE", "", []string{"0Bz000000000008AAA"}, []string{"Status"}, `"Status":"Opened"`)
			},
			want: Change{ReadAgentWork: []string{"0Bz000000000008AAA"}},
		},
		{
			name: "a gap event: reconcile",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "PendingServiceRouting", "GAP_UPDATE", "", []string{"0JR000000000001AAA"}, nil, "")
			},
			want: Change{Reconcile: true},
		},
		{
			name: "presence is not translated here yet",
			ev: func(t *testing.T) *salesforce.ChangeEvent {
				return cdc(t, "UserServicePresence", "CREATE", "", []string{"0Hn000000000001AAA"}, nil, `"IsCurrentState":true`)
			},
			want: Change{Skipped: SkipEntity},
		},
	}
	names := translateNames()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Translate(tc.ev(t), names, known)
			require.Empty(t, cmp.Diff(tc.want, got))
		})
	}
}

// TestWorkFromPSR: a PSR row (SOQL, REST) with its skills becomes the engine's Work; the
// requested time wins over the creation time, queues the mapping names by Id stay Ids, and
// ids the org did not list pass through (the engine parks such work).
func TestWorkFromPSR(t *testing.T) {
	t.Parallel()
	names := translateNames()
	weight, level, drop := 1.0, 4.0, 120
	psr := &salesforce.PendingServiceRouting{
		ID: "0JR000000000004AAA", WorkItemID: "500000000000004AAA", QueueID: "00G000000000003AAA",
		ServiceChannelID: "0N9000000000003AAA", CapacityWeight: &weight, DropAdditionalSkillsTimeout: &drop,
		CreatedDate:             salesforce.Time{Time: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)},
		CustomRequestedDateTime: salesforce.Time{Time: time.Date(2026, 12, 5, 8, 30, 0, 0, time.UTC)},
	}
	skills := []salesforce.SkillRequirement{
		{RelatedRecordID: "0JR000000000004AAA", SkillID: "0C5000000000002AAA", SkillLevel: &level},
		{RelatedRecordID: "0JR000000000004AAA", SkillID: "0C5000000000001AAA", IsAdditionalSkill: true},
		{RelatedRecordID: "0JR000000000099AAA", SkillID: "0C5000000000001AAA"}, // another PSR's
	}
	require.Empty(t, cmp.Diff(routing.Work{
		ID: "500000000000004AAA", PSR: "0JR000000000004AAA", Queue: "00G000000000003AAA", Channel: "Case",
		RequestedAt: time.Date(2026, 12, 5, 8, 30, 0, 0, time.UTC), Weight: 1,
		DropAdditionalAfter: 2 * time.Minute, HasDropAdditional: true,
		Skills: []routing.SkillRequirement{{Name: "Billing", Level: 4}, {Name: "English", Additional: true}},
	}, names.Work(psr, skills)))

	psr.QueueID, psr.ServiceChannelID = "00G00000000000XAAA", "0N900000000000XAAA"
	w := names.Work(psr, nil)
	require.Equal(t, "00G00000000000XAAA", w.Queue)
	require.Equal(t, "0N900000000000XAAA", w.Channel)
}

func TestIsOwn(t *testing.T) {
	t.Parallel()
	require.True(t, IsOwn("com/salesforce/api/rest/64.0;client=omniroute"))
	require.True(t, IsOwn("client=omniroute"))
	require.False(t, IsOwn("com/salesforce/api/rest/64.0;client=omniroute-other"))
	require.False(t, IsOwn("com/salesforce/api/soap/64.0"))
	require.False(t, IsOwn(""))
}
