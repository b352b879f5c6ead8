package soql_test

import (
	"errors"
	"testing"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

// Real queries: what the daemon, jsforce checks and PushTopics send, plus edge cases.
var fuzzSeeds = []string{
	"SELECT Id, Owner.Name, ServiceChannel.DeveloperName FROM PendingServiceRouting",
	"SELECT Id, WorkItemId, QueueId, ServiceChannelId, CapacityWeight, IsPushed, IsTransfer, PreferredUserId, CreatedDate FROM PendingServiceRouting WHERE RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true ORDER BY CreatedDate ASC, Id LIMIT 2000",
	"SELECT Id, CreatedDate FROM PendingServiceRouting WHERE IsReadyForRouting = true ORDER BY CreatedDate ASC NULLS LAST",
	"SELECT Id, UserId, ServicePresenceStatusId, IsCurrentState, StatusStartDate FROM UserServicePresence WHERE IsCurrentState = true",
	"SELECT Id, Status, UserId, WorkItemId FROM AgentWork WHERE Status IN ('Assigned', 'Opened') AND (UserId != null OR WorkItemId = '')",
	"SELECT Id, Status FROM AgentWork WHERE CreatedDate = LAST_N_DAYS:3",
	"SELECT COUNT() FROM Case WHERE Status != 'Closed'",
	"select id, subject from case where subject like 'Printer\\_%' order by createddate desc limit 10 offset 5",
	"SELECT Id FROM Case WHERE (Status = 'New' AND Priority = 'Low') OR NOT (IsEscalated = false)",
	"SELECT Id FROM Case WHERE CreatedDate > 2026-11-22T10:00:00+02:00 AND DueDate__c <= 2026-11-22",
	"SELECT Id FROM Case WHERE Subject = 'O\\'Brien \\u00e9\\n' AND Amount__c >= -1.5",
	"SELECT Id FROM Case WHERE OwnerId = '' OR Owner.Type = 'Queue' OR Owner.Name = null",
	"SELECT Id FROM Case WHERE Id IN (SELECT WorkItemId FROM PendingServiceRouting)",
	"SELECT Id FROM Case WHERE CreatedDate = TODAY OR CreatedDate = YESTERDAY OR DueDate__c = NEXT_N_DAYS:2",
	"RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true",
	"ChangeEventHeader.changeType = 'CREATE' OR (IsCurrentState = false)",
	"SELECT Id FROM Case WHERE ((((Status = 'New'))))",
	"SELECT",
	"",
	"SELECT Id FROM Case WHERE Subject = '\xff'",
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	o := newOrg()
	event := map[string]any{
		"ChangeEventHeader": map[string]any{"changeType": "CREATE"},
		"RoutingModel":      "ExternalRouting", "IsReadyForRouting": true, "CapacityWeight": 1.0,
	}
	f.Fuzz(func(t *testing.T, stmt string) {
		q, err := soql.Parse(stmt)
		checkErr(t, stmt, err)
		if err == nil {
			res, err := q.Run(o.src, opts())
			checkErr(t, stmt, err)
			if err == nil && !res.IsCount && res.TotalSize != len(res.Rows) {
				t.Fatalf("%q: totalSize %d, %d rows", stmt, res.TotalSize, len(res.Rows))
			}
			if r, ok := o.src.Get(o.c1); ok {
				_, err := q.Match(r, o.src, opts())
				checkErr(t, stmt, err)
			}
		}
		c, err := soql.ParseCondition(stmt)
		checkErr(t, stmt, err)
		if err == nil {
			c.Eval(soql.LookupFold(event))
		}
	})
}

func checkErr(t *testing.T, stmt string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *soql.Error
	if !errors.As(err, &e) || e.Code == "" || e.Message == "" || e.Row < 1 || e.Column < 1 {
		t.Fatalf("%q: bad error %#v", stmt, err)
	}
}
