package streaming

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkPublishDeliver measures events per second from Publish to delivery in a
// /meta/connect reply read by a long-polling HTTP subscriber on loopback, while idle clients
// hold connects on other channels. Each op is one published event (a ~700-byte CDC-shaped
// payload); the subscriber's reads end the timer. mode=burst publishes as fast as it can (the
// subscriber gets events batched); mode=lockstep publishes the next event only once the
// previous one was read, so every event costs one long-poll wake and one HTTP round trip.
func BenchmarkPublishDeliver(b *testing.B) {
	for _, lockstep := range []bool{false, true} {
		for _, idle := range []int{0, 200} {
			mode := "burst"
			if lockstep {
				mode = "lockstep"
			}
			b.Run(fmt.Sprintf("mode=%s/idle=%d", mode, idle), func(b *testing.B) {
				benchPublishDeliver(b, idle, lockstep)
			})
		}
	}
}

func benchPublishDeliver(b *testing.B, idle int, lockstep bool) {
	e := newEnv(b, Options{AdviceTimeout: time.Minute, MaxEvents: 50_000})
	const ch = "/data/PendingServiceRoutingChangeEvent"
	payload := cdcPayload()

	idleDone := make(chan struct{}, idle)
	for i := range idle {
		c := e.client(b)
		c.hc.Transport = &http.Transport{}
		c.handshake()
		c.connect()
		c.subscribe(fmt.Sprintf("/data/Idle%dChangeEvent", i), nil)
		go func() {
			defer func() { idleDone <- struct{}{} }()
			for {
				if _, err := postOnce(c, c.connectMsg()); err != nil {
					return // the server closed
				}
				if e.srv.isClosed() {
					return
				}
			}
		}()
		e.waitHeld(b)
	}

	sub := e.client(b)
	sub.hc.Transport = &http.Transport{}
	sub.handshake()
	sub.connect()
	sub.subscribe(ch, -1)

	got := make(chan error, 1)
	progress := make(chan int, 1)
	n := b.N
	go func() {
		seen := 0
		for seen < n {
			replies, err := postOnce(sub, sub.connectMsg())
			if err != nil {
				got <- err
				return
			}
			for _, m := range replies {
				if m["channel"] == ch {
					seen++
				}
			}
			if lockstep {
				progress <- seen
			}
		}
		got <- nil
	}()

	b.ResetTimer()
	start := time.Now()
	seen := 0
	for i := range n {
		e.srv.Publish([]string{ch}, func(id int64) json.RawMessage {
			return append(append(payload[:len(payload):len(payload)], formatID(id)...), "}}"...)
		})
		for lockstep && seen <= i {
			select {
			case seen = <-progress:
			case err := <-got:
				b.Fatal(err)
			}
		}
	}
	if err := <-got; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	e.srv.Close()
	for range idle {
		<-idleDone
	}
}

// cdcPayload is a PendingServiceRouting CDC event's data member up to the replay id.
func cdcPayload() []byte {
	p := map[string]any{
		"schema": "dTQwXbHyrGtMZ9ZY3ytAoQ",
		"payload": map[string]any{
			"ChangeEventHeader": map[string]any{
				"entityName": "PendingServiceRouting", "recordIds": []string{"0JR5g000000abcdEAA"},
				"changeType": "CREATE", "changeOrigin": "com/salesforce/api/rest/66.0;client=omniroute",
				"transactionKey": "0001ade9-4b1c-8a2e-1f3a-5c6d7e8f9a0b", "sequenceNumber": 1,
				"commitTimestamp": 1712693965000, "commitNumber": 1082985383811, "commitUser": "0055g00000ABCDEAA2",
				"changedFields": []string{},
			},
			"RoutingModel": "ExternalRouting", "IsReadyForRouting": true, "IsPushed": false,
			"WorkItemId": "5005g00000XyZabAAB", "QueueId": "00G5g000001AbCdEAF", "ServiceChannelId": "0N95g0000004CxyCAE",
			"CapacityWeight": 1.0, "RoutingPriority": 1, "CreatedDate": "2026-11-22T12:00:00Z", "OwnerId": "0055g00000ABCDEAA2",
		},
	}
	b, _ := json.Marshal(p)
	s := strings.TrimSuffix(string(b), "}") + `,"event":{"replayId":`
	return []byte(s)
}
