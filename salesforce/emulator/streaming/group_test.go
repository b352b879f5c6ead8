package streaming

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// publishGroup publishes one event per payload value on ch, all under one replay id, each
// re-rendered on replay by render (nil: as published).
func (e *env) publishGroup(ch string, values []string, render func(v string) json.RawMessage) int64 {
	return e.srv.PublishMessages(func(id int64) []Message {
		out := make([]Message, 0, len(values))
		for _, v := range values {
			b, _ := json.Marshal(msg{"payload": msg{"v": v}, "event": msg{"replayId": id}})
			m := Message{Channels: []string{ch}, Data: b}
			if render != nil {
				m.Replay = func() json.RawMessage { return render(v) }
			}
			out = append(out, m)
		}
		return out
	})
}

func payloadValues(events []msg) []string {
	out := make([]string, 0, len(events))
	for _, ev := range events {
		d, _ := ev["data"].(map[string]any)
		p, _ := d["payload"].(map[string]any)
		v, _ := p["v"].(string)
		out = append(out, v)
	}
	return out
}

// Messages sharing one replay id: live delivery in order, -2 replays them all, and a stored
// id equal to the shared one resumes after every message that carries it.
func TestGroupSharesOneReplayID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	const ch = "/data/Custom__chn"
	c := connectedClient(t, e)
	require.Equal(t, true, c.subscribe(ch, -1)["successful"])
	g1 := e.publishGroup(ch, []string{"a", "b", "c"}, nil)
	events, _ := c.connect()
	require.Equal(t, []int64{g1, g1, g1}, replayIDs(events))
	require.Equal(t, []string{"a", "b", "c"}, payloadValues(events))
	g2 := e.publishGroup(ch, []string{"d"}, nil)

	c2 := connectedClient(t, e)
	_, got := subscribeAndDrain(t, c2, ch, -2)
	require.Equal(t, []int64{g1, g1, g1, g2}, got)
	c3 := connectedClient(t, e)
	_, got = subscribeAndDrain(t, c3, ch, g1)
	require.Equal(t, []int64{g2}, got)
}

// A Replay hook that returns something other than JSON falls back to the data published, as
// Message.Replay documents, never to null.
func TestGroupReplayFallsBackToPublishedData(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	const ch = "/data/Custom__chn"
	e.publishGroup(ch, []string{"a", "b"}, func(v string) json.RawMessage {
		if v == "a" {
			return json.RawMessage(`{"payload":{"v":"a-now"},"event":{"replayId":1}}`)
		}
		return json.RawMessage(`{not json`)
	})
	c := connectedClient(t, e)
	r := c.subscribe(ch, -2)
	require.Equal(t, true, r["successful"])
	events, _ := c.connect()
	require.Equal(t, []string{"a-now", "b"}, payloadValues(events))
}
