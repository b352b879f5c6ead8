package bayeux

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// cdcBatch returns a /meta/connect response carrying n CDC events shaped
// like salesforce-facts.md §4.2.
func cdcBatch(n int) []byte {
	var b strings.Builder
	b.WriteString(`[{"clientId":"41kdiuvgig2tfxdh9weakuiwyh","advice":{"interval":0,"timeout":110000,"reconnect":"retry"},"channel":"/meta/connect","id":"2","successful":true}`)
	for i := range n {
		fmt.Fprintf(&b, `,{"channel":"/data/PendingServiceRoutingChangeEvent","data":{"schema":"IeRuaY6cbI_HsV8Rv1Mc5g","payload":{"ChangeEventHeader":{"entityName":"PendingServiceRouting","recordIds":["0JR5g000000%05dAAA"],"changeType":"UPDATE","changeOrigin":"com/salesforce/api/rest/62.0;client=omniroute","transactionKey":"0001ade9-5e6b-4b9c-a3b8-0c0c0a0a0a0a","sequenceNumber":1,"commitTimestamp":1712693965000,"commitNumber":1082985383811,"commitUser":"0055g00000AbCdEAAV","changedFields":["IsPushed","LastModifiedDate"]},"IsPushed":false,"LastModifiedDate":"2024-04-09T20:19:25Z"},"event":{"replayId":%d}}}`, i, 6421+i)
	}
	b.WriteString("]")
	return []byte(b.String())
}

// BenchmarkConnectResponse measures what the client does with a long-poll response: decode
// the batch with encoding/json (each event's data member included), find the connect reply,
// read each event's replay id, call the handler and advance the resume point.
func BenchmarkConnectResponse(b *testing.B) {
	const n = 100
	body := cdcBatch(n)
	c, err := New(Options{Endpoint: func(context.Context) (string, error) { return "", nil }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	s := &session{c: c, h: func(context.Context, Delivery) error { return nil }, channels: []string{"/data/PendingServiceRoutingChangeEvent"}, clientID: "x"}
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		msgs, err := decodeResponse(body)
		if err != nil {
			b.Fatal(err)
		}
		if reply(msgs, "2", chConnect, "") == nil {
			b.Fatal("no connect reply")
		}
		if _, err := s.deliverAll(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}
