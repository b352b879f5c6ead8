package soql_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

// benchOrg has the test org's objects plus n PendingServiceRouting records, a quarter of them
// ready for external routing, owned by the queue.
func benchOrg(n int) *org {
	o := newOrg()
	base := ts("2026-11-22T00:00:00Z")
	for i := range n {
		model := "LeastActive"
		if i%4 == 0 {
			model = "ExternalRouting"
		}
		o.src.insert("PendingServiceRouting", map[string]any{
			"RoutingModel": model, "IsReadyForRouting": true, "IsPushed": i%8 == 0, "CapacityWeight": float64(i % 3),
			"OwnerId": o.queue, "ServiceChannelId": o.chat, "WorkItemId": o.c1,
			"CreatedDate": base.Add(time.Duration((i*7919)%n) * time.Millisecond),
		})
	}
	return o
}

func BenchmarkParse(b *testing.B) {
	const stmt = "SELECT Id, Owner.Name, ServiceChannel.DeveloperName, CapacityWeight, CreatedDate FROM PendingServiceRouting WHERE RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true AND IsPushed = false ORDER BY CreatedDate, Id LIMIT 2000"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := soql.Parse(stmt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRun(b *testing.B) {
	o := benchOrg(10_000)
	for _, bc := range []struct{ name, stmt string }{
		{"reconcile_10k", "SELECT Id, Owner.Name, ServiceChannel.DeveloperName, CapacityWeight, CreatedDate FROM PendingServiceRouting WHERE RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true AND IsPushed = false ORDER BY CreatedDate, Id"},
		{"by_id_10k", "SELECT Id, IsPushed FROM PendingServiceRouting WHERE Id = '" + o.psr2 + "'"},
		{"count_10k", "SELECT COUNT() FROM PendingServiceRouting WHERE IsPushed = false"},
		{"limit_no_order_10k", "SELECT Id FROM PendingServiceRouting WHERE RoutingModel = 'ExternalRouting' LIMIT 10"},
	} {
		q, err := soql.Parse(bc.stmt)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := q.Run(o.src, opts()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMatch(b *testing.B) {
	o := newOrg()
	q, err := soql.Parse("SELECT Id, Subject FROM Case WHERE Owner.Name = 'Alice Agent' AND Status IN ('New', 'Working') AND IsEscalated = true")
	if err != nil {
		b.Fatal(err)
	}
	rec, _ := o.src.Get(o.c1)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := q.Match(rec, o.src, opts()); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkConditionEval(b *testing.B) {
	c, err := soql.ParseCondition("ChangeEventHeader.changeType = 'CREATE' OR (IsCurrentState = false)")
	if err != nil {
		b.Fatal(err)
	}
	get := soql.LookupFold(map[string]any{
		"ChangeEventHeader": map[string]any{"changeType": "UPDATE", "recordIds": []any{"0Hn"}},
		"IsCurrentState":    false, "StatusEndDate": "2026-11-22T10:00:00Z",
	})
	b.ReportAllocs()
	for b.Loop() {
		if !c.Eval(get) {
			b.Fatal("no match")
		}
	}
}

func ExampleParse() {
	q, err := soql.Parse("SELECT Id, Owner.Name FROM Case WHERE Status = 'New' ORDER BY CreatedDate DESC LIMIT 10")
	if err != nil {
		panic(err)
	}
	_, err = soql.Parse("SELECT Id FROM Case WHERE Status = 'New' AND Priority = 'Low' OR IsEscalated = true")
	var e *soql.Error
	errors.As(err, &e)
	fmt.Println(q.Object(), e.Code)
	// Output: Case MALFORMED_QUERY
}
