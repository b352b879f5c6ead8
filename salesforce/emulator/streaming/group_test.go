package streaming

import (
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPublishMessagesShareOneReplayID: several messages of one PublishMessages call share a
// replay id and go out in order; a live subscriber gets the published data, a replay gets the
// data rendered again by the Replay hook; a subscribe from the shared id starts after all of
// them.
func TestPublishMessagesShareOneReplayID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	const ch, other = "/data/Custom__chn", "/data/ChangeEvents"
	live := e.client(t)
	live.handshake()
	require.Equal(t, true, live.subscribe(ch, -1)["successful"])
	var version atomic.Int64
	data := func(id int64, rec string, v int64) json.RawMessage {
		b, _ := json.Marshal(msg{"payload": msg{"rec": rec, "v": v}, "event": msg{"replayId": id}})
		return b
	}
	build := func(id int64) []Message {
		return []Message{
			{Channels: []string{other}, Data: data(id, "both", 0)},
			{Channels: []string{ch}, Data: data(id, "a", 0), Replay: func() json.RawMessage { return data(id, "a", version.Load()) }},
			{Channels: []string{ch, ch}, Data: data(id, "b", 0)}, // a duplicate channel is sent once
		}
	}
	first := e.srv.PublishMessages(build)
	second := e.srv.PublishMessages(build)
	require.Equal(t, first+1, second)

	events, _ := live.connect()
	require.Equal(t, []int64{first, first, second, second}, replayIDs(events))
	require.Equal(t, "a", events[0]["data"].(map[string]any)["payload"].(map[string]any)["rec"])
	require.Equal(t, 0.0, events[0]["data"].(map[string]any)["payload"].(map[string]any)["v"])
	require.Equal(t, "b", events[1]["data"].(map[string]any)["payload"].(map[string]any)["rec"])

	version.Store(7)
	again := e.client(t)
	again.handshake()
	require.Equal(t, true, again.subscribe(ch, -2)["successful"])
	events, _ = again.connect()
	require.Equal(t, []int64{first, first, second, second}, replayIDs(events))
	require.Equal(t, 7.0, events[0]["data"].(map[string]any)["payload"].(map[string]any)["v"], "rendered at replay")
	require.Equal(t, 0.0, events[1]["data"].(map[string]any)["payload"].(map[string]any)["v"], "no hook: as published")

	after := e.client(t)
	after.handshake()
	require.Equal(t, true, after.subscribe(ch, first)["successful"])
	events, _ = after.connect()
	require.Equal(t, []int64{second, second}, replayIDs(events))
}
