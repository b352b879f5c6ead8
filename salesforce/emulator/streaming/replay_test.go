package streaming

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const invalidTail = "} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."

// subscribeAndDrain subscribes c to ch from replay, then returns the events of one connect.
func subscribeAndDrain(t *testing.T, c *bclient, ch string, replay any) (msg, []int64) {
	t.Helper()
	r := c.subscribe(ch, replay)
	if r["successful"] != true {
		return r, nil
	}
	m := c.connectMsg()
	m["advice"] = msg{"timeout": 0} // do not hold: only what is queued
	events, rep := split(t, c.send(m))
	require.Equal(t, true, rep["successful"])
	return r, replayIDs(events)
}

func connectedClient(t *testing.T, e *env) *bclient {
	c := e.client(t)
	c.handshake()
	c.connect()
	return c
}

func TestReplayValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	const ch = "/data/PendingServiceRoutingChangeEvent"
	var ids []int64
	for range 5 {
		ids = append(ids, e.publish(ch))
		e.publish("/data/Other") // interleaved ids on another channel
	}

	tests := []struct {
		name   string
		replay any
		want   []int64
		err    string
	}{
		{"new only", -1, nil, ""},
		{"all retained", -2, ids, ""},
		{"after a stored id", ids[2], ids[3:], ""},
		{"after the newest id", ids[4], nil, ""},
		{"id from another channel", ids[1] + 1, ids[2:], ""},
		{"integral float", float64(ids[3]), ids[4:], ""},
		// Salesforce documents replay ids as numbers and no client sends strings: a string
		// is refused (the stricter choice; what a real org does with one is unconfirmed).
		{"numeric string", "3", nil, "400::The replayId {3" + invalidTail},
		{"string -1", "-1", nil, "400::The replayId {-1" + invalidTail},
		{"zero", 0, nil, "400::The replayId {0" + invalidTail},
		{"minus three", -3, nil, "400::The replayId {-3" + invalidTail},
		{"never issued", 1553783, nil, "400::The replayId {1553783" + invalidTail},
		{"not a number", "abc", nil, "400::The replayId {abc" + invalidTail},
		{"boolean", true, nil, "400::The replayId {true" + invalidTail},
		{"fraction", 2.5, nil, "400::The replayId {2.5" + invalidTail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := connectedClient(t, e)
			r, got := subscribeAndDrain(t, c, ch, tc.replay)
			if tc.err != "" {
				require.Equal(t, tc.err, r["error"])
				require.Equal(t, false, r["successful"])
				require.Equal(t, ch, r["subscription"])
				return
			}
			require.Equal(t, true, r["successful"], "%v", r)
			if len(tc.want) == 0 {
				require.Empty(t, got)
				return
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestReplayWithoutExtensionMeansNewOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.publish("/data/X")
	c := connectedClient(t, e)
	r, got := subscribeAndDrain(t, c, "/data/X", nil)
	require.Equal(t, true, r["successful"])
	require.Empty(t, got)
	id := e.publish("/data/X")
	events, _ := c.connect()
	require.Equal(t, []int64{id}, replayIDs(events))
}

func TestReplayMapMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := connectedClient(t, e)

	m := c.subscribeMsg("/topic/X", nil)
	m["ext"] = msg{"replay": msg{}}
	r := c.send(m)
	require.Equal(t, "400::The replayId for channel {/topic/X} wasn't found using the provided replay ID map {{}}. "+
		"Ensure that the channel name you provided in the replay map is valid and matches the channel name used for subscribing.", r[0]["error"])

	m = c.subscribeMsg("/topic/X", nil)
	m["ext"] = msg{"replay": msg{"/topic/Y": -1, "/data/Z": 12}}
	r = c.send(m)
	require.Equal(t, "400::The replayId for channel {/topic/X} wasn't found using the provided replay ID map {{/data/Z=12, /topic/Y=-1}}. "+
		"Ensure that the channel name you provided in the replay map is valid and matches the channel name used for subscribing.", r[0]["error"])

	// The whole map, as EMP-Connector sends it, is fine when it names the channel.
	id := e.publish("/topic/X")
	m = c.subscribeMsg("/topic/X", nil)
	m["ext"] = msg{"replay": msg{"/topic/Y": -1, "/topic/X": -2}}
	require.Equal(t, true, c.send(m)[0]["successful"])
	events, _ := c.connect()
	require.Equal(t, []int64{id}, replayIDs(events))
}

func TestResubscribeReplacesQueuedEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ids := []int64{e.publish("/data/X"), e.publish("/data/X"), e.publish("/data/X")}
	c := connectedClient(t, e)
	require.Equal(t, true, c.subscribe("/data/X", -2)["successful"])
	_, got := subscribeAndDrain(t, c, "/data/X", ids[1])
	require.Equal(t, ids[2:], got, "the second subscribe replaces the first one's undelivered replay")
}

func TestExpireEventsInvalidatesStoredIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	old := e.publish("/data/X")
	sub := connectedClient(t, e)
	require.Equal(t, true, sub.subscribe("/data/X", -1)["successful"])
	queued := e.publish("/data/X")

	e.srv.ExpireEvents()
	require.Equal(t, 0, e.srv.Stats().RetainedEvents)

	// Already-queued events are still delivered to the live subscriber.
	events, _ := sub.connect()
	require.Equal(t, []int64{queued}, replayIDs(events))

	c := connectedClient(t, e)
	r, _ := subscribeAndDrain(t, c, "/data/X", old)
	require.Equal(t, "400::The replayId {"+formatID(old)+invalidTail, r["error"])
	r, _ = subscribeAndDrain(t, c, "/data/Never", queued)
	require.Equal(t, "400::The replayId {"+formatID(queued)+invalidTail, r["error"], "expiry holds on channels without events too")
	r, got := subscribeAndDrain(t, c, "/data/X", -2)
	require.Equal(t, true, r["successful"])
	require.Empty(t, got)

	next := e.publish("/data/X")
	_, got = subscribeAndDrain(t, connectedClient(t, e), "/data/X", -2)
	require.Equal(t, []int64{next}, got)
}

func TestRetentionPerChannelWithInjectedClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	topicID := e.publish("/topic/PSR")
	dataID := e.publish("/data/PendingServiceRoutingChangeEvent")
	laterData := e.publish("/data/PendingServiceRoutingChangeEvent")

	e.clock.Advance(24*time.Hour + time.Second)
	c := connectedClient(t, e)
	r, got := subscribeAndDrain(t, c, "/topic/PSR", -2)
	require.Equal(t, true, r["successful"])
	require.Empty(t, got, "PushTopic events are kept 24 h")
	r, _ = subscribeAndDrain(t, c, "/topic/PSR", topicID)
	require.Equal(t, "400::The replayId {"+formatID(topicID)+invalidTail, r["error"])

	_, got = subscribeAndDrain(t, c, "/data/PendingServiceRoutingChangeEvent", dataID)
	require.Equal(t, []int64{laterData}, got, "CDC events are kept 72 h")

	e.clock.Advance(48 * time.Hour)
	c = connectedClient(t, e) // the old clientId expired meanwhile
	r, _ = subscribeAndDrain(t, c, "/data/PendingServiceRoutingChangeEvent", dataID)
	require.Equal(t, "400::The replayId {"+formatID(dataID)+invalidTail, r["error"])
	_, got = subscribeAndDrain(t, c, "/data/PendingServiceRoutingChangeEvent", -2)
	require.Empty(t, got)
}

func TestRetentionOption(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Retention: func(ch string) time.Duration {
		if ch == "/data/Short" {
			return time.Minute
		}
		return 0 // default
	}})
	short := e.publish("/data/Short")
	long := e.publish("/data/Long")
	e.clock.Advance(2 * time.Minute)
	c := connectedClient(t, e)
	_, got := subscribeAndDrain(t, c, "/data/Short", -2)
	require.Empty(t, got)
	_, got = subscribeAndDrain(t, c, "/data/Long", -2)
	require.Equal(t, []int64{long}, got)
	_ = short
}

func TestExpireBefore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	first := e.publish("/data/X")
	e.clock.Advance(time.Hour)
	cut := e.clock.Now()
	second := e.publish("/data/X")
	e.srv.ExpireBefore(cut)
	c := connectedClient(t, e)
	_, got := subscribeAndDrain(t, c, "/data/X", -2)
	require.Equal(t, []int64{second}, got)
	r, _ := subscribeAndDrain(t, c, "/data/X", first)
	require.Equal(t, "400::The replayId {"+formatID(first)+invalidTail, r["error"])
	_, got = subscribeAndDrain(t, c, "/data/X", second)
	require.Empty(t, got)
}

func TestMaxEventsDropsOldest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxEvents: 3})
	var ids []int64
	for range 5 {
		ids = append(ids, e.publish("/data/X"))
	}
	require.Equal(t, 3, e.srv.Stats().RetainedEvents)
	c := connectedClient(t, e)
	_, got := subscribeAndDrain(t, c, "/data/X", -2)
	require.Equal(t, ids[2:], got)
	r, _ := subscribeAndDrain(t, c, "/data/X", ids[1])
	require.Equal(t, "400::The replayId {"+formatID(ids[1])+invalidTail, r["error"], "the evicted id itself is invalid")
	_, got = subscribeAndDrain(t, c, "/data/X", ids[2])
	require.Equal(t, ids[3:], got)
}

func TestReplayThenLiveKeepsOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Hour})
	a := e.publish("/data/X")
	c := connectedClient(t, e)
	require.Equal(t, true, c.subscribe("/data/X", -2)["successful"])
	b := e.publish("/data/X")
	events, _ := c.connect()
	require.Equal(t, []int64{a, b}, replayIDs(events))
}

func TestManyEventsCompactRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxEvents: 10})
	var ids []int64
	for i := range 500 {
		ch := "/data/A"
		if i%3 == 0 {
			ch = "/data/B"
		}
		ids = append(ids, e.publish(ch, "/data/All"))
	}
	require.Equal(t, 10, e.srv.Stats().RetainedEvents)
	c := connectedClient(t, e)
	_, got := subscribeAndDrain(t, c, "/data/All", -2)
	require.Equal(t, ids[490:], got)
	_, got = subscribeAndDrain(t, c, "/data/All", ids[495])
	require.Equal(t, ids[496:], got)
	r, _ := subscribeAndDrain(t, c, "/data/All", ids[489])
	require.Equal(t, "400::The replayId {"+formatID(ids[489])+invalidTail, r["error"])

	// Time-based pruning of one channel, then eviction across channels, keep working.
	e.clock.Advance(73 * time.Hour)
	for range 200 {
		e.publish("/data/A")
	}
	require.Equal(t, 10, e.srv.Stats().RetainedEvents)
}
