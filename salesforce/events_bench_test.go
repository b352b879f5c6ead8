package salesforce

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
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

// BenchmarkDecodeCDCBatch decodes a batch of 1,000 CDC events per
// iteration; events/s is reported as a custom metric. path=Decode is the
// exported Decoder.Decode (it copies its input first); path=stream is
// what Stream runs on bayeux deliveries, whose data it may alias.
func BenchmarkDecodeCDCBatch(b *testing.B) {
	var d Decoder
	for _, bc := range []struct {
		name   string
		decode func(channel string, data []byte) (ChangeEvent, error)
	}{{"path=Decode", d.Decode}, {"path=stream", d.decodeOwned}} {
		b.Run(bc.name, func(b *testing.B) {
			batch := cdcBatch(1000)
			var size int
			for _, e := range batch {
				size += len(e)
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				for _, data := range batch {
					if _, err := bc.decode("/data/ExternalRoutingChannel__chn", data); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			events := float64(b.N) * float64(len(batch))
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkDecodeCDCBatchEncodingJSON decodes the same batch with
// stdlibDecode, the straightforward encoding/json version of Decode (it
// was the first implementation), for the ratio in docs/performance.md.
func BenchmarkDecodeCDCBatchEncodingJSON(b *testing.B) {
	batch := cdcBatch(1000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, data := range batch {
			if _, err := stdlibDecode("/data/ExternalRoutingChannel__chn", data); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*float64(len(batch))/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

// stdlibDecode decodes a CDC event with encoding/json structs and a map
// for the payload: two extra scans of the payload compared with Decode.
func stdlibDecode(channel string, data []byte) (ChangeEvent, error) {
	var ed struct {
		Payload map[string]json.RawMessage `json:"payload"`
		Event   struct {
			ReplayID int64 `json:"replayId"`
		} `json:"event"`
	}
	if err := json.Unmarshal(data, &ed); err != nil {
		return ChangeEvent{}, err
	}
	var h struct {
		EntityName      string   `json:"entityName"`
		RecordIDs       []string `json:"recordIds"`
		ChangeType      string   `json:"changeType"`
		ChangeOrigin    string   `json:"changeOrigin"`
		TransactionKey  string   `json:"transactionKey"`
		SequenceNumber  int64    `json:"sequenceNumber"`
		CommitTimestamp int64    `json:"commitTimestamp"`
		CommitNumber    int64    `json:"commitNumber"`
		CommitUser      string   `json:"commitUser"`
		ChangedFields   []string `json:"changedFields"`
	}
	if err := json.Unmarshal(ed.Payload["ChangeEventHeader"], &h); err != nil {
		return ChangeEvent{}, err
	}
	delete(ed.Payload, "ChangeEventHeader")
	return ChangeEvent{
		Channel: channel, ReplayID: ed.Event.ReplayID, Source: SourceCDC, Entity: h.EntityName,
		ChangeType: ChangeType(h.ChangeType), RecordIDs: h.RecordIDs, ChangedFields: h.ChangedFields, Fields: ed.Payload,
		CommitTimestamp: time.UnixMilli(h.CommitTimestamp).UTC(), CommitUser: h.CommitUser, CommitNumber: h.CommitNumber,
		ChangeOrigin: h.ChangeOrigin, TransactionKey: h.TransactionKey, SequenceNumber: h.SequenceNumber,
	}, nil
}
