package bayeux

import (
	"log/slog"
	"testing"
)

// FuzzDecodeResponse feeds arbitrary bytes through everything the client
// does with a response body: decoding, reply matching, advice, handshake
// ext, error parsing and replay id extraction. None of it may panic.
func FuzzDecodeResponse(f *testing.F) {
	for _, seed := range []string{
		`[{"ext":{"replay":true,"payload.format":true},"minimumVersion":"1.0","clientId":"41kd","supportedConnectionTypes":["long-polling"],"channel":"/meta/handshake","id":"1","version":"1.0","successful":true}]`,
		`[{"clientId":"x","advice":{"interval":0,"timeout":110000,"reconnect":"retry"},"channel":"/meta/connect","id":"2","successful":true},{"channel":"/data/AccountChangeEvent","data":{"schema":"s","payload":{"ChangeEventHeader":{"entityName":"Account"}},"event":{"replayId":6421}}}]`,
		`[{"channel":"/meta/connect","successful":false,"error":"401:abc:Unknown client","advice":{"reconnect":"handshake"},"id":7}]`,
		`[{"channel":"/meta/handshake","successful":false,"error":"403::Handshake denied","ext":{"sfdc":{"failureReason":"401::Authentication invalid"}}}]`,
		`[{"channel":"/topic/X","data":{"event":{"replayId":"12"},"sobject":{"Id":"1"}}}]`,
		`[{"channel":"/meta/subscribe","subscription":["/a","/b"],"successful":true}]`,
		`{"channel":"/meta/disconnect"}`,
		`[{"channel":"/x","data":{"event":{"replayId":1e400}}}]`,
		`[{"channel":"/meta/connect","advice":{"multiple-clients":true,"interval":-1,"timeout":1e30}}]`,
		`not json`, `[]`, `[null]`, `[{"channel":""}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := decodeResponse(body)
		if err != nil {
			return
		}
		s := &session{c: &Client{log: slog.New(slog.DiscardHandler)}}
		for i := range msgs {
			m := &msgs[i]
			if m.Channel == "" {
				t.Fatalf("message %d decoded without a channel", i)
			}
			_ = reply(msgs, m.ID, m.Channel, m.subscriptionString())
			if !m.isMeta() && (m.Data != nil || m.bad != nil) {
				_ = eventDelivery(m.Channel, m)
			}
			_ = decodeExt(m.Ext)
			e := newError("connect", "", m.Error, failureReason(m))
			_ = classify(e)
			_ = e.Error()
			if m.Advice != nil {
				s.applyAdvice(m.Advice)
				if s.interval < 0 || s.interval > maxAdvice || s.timeout < 0 || s.timeout > maxAdvice {
					t.Fatalf("advice out of range: %v %v", s.interval, s.timeout)
				}
			}
		}
	})
}
