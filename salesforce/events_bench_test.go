package salesforce

import (
	"fmt"
	"testing"
)

// cdcBatch returns n CDC event data members shaped like the emulator's and
// Salesforce's: a mix of PSR CREATE (all fields), PSR UPDATE (changed
// fields only), AgentWork UPDATE and USP CREATE.
func cdcBatch(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		switch i % 4 {
		case 0:
			out[i] = fmt.Appendf(nil, `{"schema":"Jz1cOLjbX7u0V7eAQ9OUbg","payload":{"ChangeEventHeader":{"entityName":"PendingServiceRouting","recordIds":["0JR5g00000%07dAAA"],"changeType":"CREATE","changeOrigin":"com/salesforce/api/rest/63.0","transactionKey":"0001ade9-3a7e-4c2b-a5e5-%012d","sequenceNumber":1,"commitTimestamp":1712693965000,"commitNumber":1082985383811,"commitUser":"0055g00000ABCDEAAA","changedFields":[]},"RoutingModel":"ExternalRouting","RoutingType":"QueueBased","IsReadyForRouting":true,"IsPushed":false,"IsPushAttempted":false,"IsTransfer":false,"IsPreferredUserRequired":false,"Serial":1,"GroupId":"00G5g000001AbCdEAK","QueueId":"00G5g000001AbCdEAK","ServiceChannelId":"0N95g000000XyZaCAK","WorkItemId":"0Mw5g00000%07dAAA","CapacityWeight":1.0,"OwnerId":"0055g00000ABCDEAAA","CreatedDate":"2024-04-09T20:19:25Z","CreatedById":"0055g00000ABCDEAAA","LastModifiedDate":"2024-04-09T20:19:25Z","Name":"00000075"},"event":{"replayId":%d}}`, i, i, i, i+1)
		case 1:
			out[i] = fmt.Appendf(nil, `{"schema":"Jz1cOLjbX7u0V7eAQ9OUbg","payload":{"ChangeEventHeader":{"entityName":"PendingServiceRouting","recordIds":["0JR5g00000%07dAAA"],"changeType":"UPDATE","changeOrigin":"","transactionKey":"0001ade9-3a7e-4c2b-a5e5-%012d","sequenceNumber":1,"commitTimestamp":1712693965000,"commitNumber":1082985383812,"commitUser":"0055g00000ABCDEAAA","changedFields":["IsPushed","LastDeclinedAgentSession","Serial","LastModifiedDate"]},"IsPushed":false,"LastDeclinedAgentSession":"a1b2c3d4-session","Serial":3,"LastModifiedDate":"2024-04-09T20:19:26Z"},"event":{"replayId":%d}}`, i, i, i+1)
		case 2:
			out[i] = fmt.Appendf(nil, `{"schema":"aW1cOLjbX7u0V7eAQ9OUbg","payload":{"ChangeEventHeader":{"entityName":"AgentWork","recordIds":["0Bz5g00000%07dAAA"],"changeType":"UPDATE","changeOrigin":"","transactionKey":"0001ade9-3a7e-4c2b-a5e5-%012d","sequenceNumber":2,"commitTimestamp":1712693966000,"commitNumber":1082985383813,"commitUser":"0055g00000ABCDEAAA","changedFields":["Status","AcceptDateTime","LastModifiedDate"]},"Status":"Opened","AcceptDateTime":"2024-04-09T20:19:26Z","LastModifiedDate":"2024-04-09T20:19:26Z"},"event":{"replayId":%d}}`, i, i, i+1)
		case 3:
			out[i] = fmt.Appendf(nil, `{"schema":"uW1cOLjbX7u0V7eAQ9OUbg","payload":{"ChangeEventHeader":{"entityName":"UserServicePresence","recordIds":["0Hn5g00000%07dAAA"],"changeType":"CREATE","changeOrigin":"","transactionKey":"0001ade9-3a7e-4c2b-a5e5-%012d","sequenceNumber":1,"commitTimestamp":1712693967000,"commitNumber":1082985383814,"commitUser":"0055g00000ABCDEAAA","changedFields":[]},"UserId":"0055g00000ABCDEAAA","OwnerId":"0055g00000ABCDEAAA","ServicePresenceStatusId":"0N55g000000AbCdCAK","IsCurrentState":true,"IsAway":false,"StatusStartDate":"2024-04-09T20:19:27Z","ConfiguredCapacity":5,"Name":"USP-0001","CreatedDate":"2024-04-09T20:19:27Z","LastModifiedDate":"2024-04-09T20:19:27Z"},"event":{"replayId":%d}}`, i, i, i+1)
		}
	}
	return out
}

// BenchmarkDecodeCDCBatch decodes a batch of 1,000 CDC events per iteration, each the way the
// stream does: encoding/json decodes the event's data member (which the bayeux client does as
// part of the long-poll response), then its header and its typed record. events/s is reported
// as a custom metric.
func BenchmarkDecodeCDCBatch(b *testing.B) {
	batch := cdcBatch(1000)
	var size int
	for _, e := range batch {
		size += len(e)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, data := range batch {
			if _, err := DecodeEvent("/data/ExternalRoutingChannel__chn", data, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(batch))/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}
