package streaming

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func (e *env) publishTopic(ch string, sobject msg) int64 {
	return e.srv.Publish([]string{ch}, func(id int64) json.RawMessage {
		b, _ := json.Marshal(msg{"event": msg{"replayId": id, "type": "created", "createdDate": "2026-11-22T12:00:00.000Z"}, "sobject": sobject})
		return b
	})
}

func TestFilteredSubscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	const topic = "/topic/PSR"
	const filtered = "/topic/PSR?IsPushed=false&QueueId='00G1'"
	old := e.publishTopic(topic, msg{"Id": "0JR1", "IsPushed": false, "QueueId": "00G1"})
	e.publishTopic(topic, msg{"Id": "0JR2", "IsPushed": true, "QueueId": "00G1"})

	c := connectedClient(t, e)
	r, got := subscribeAndDrain(t, c, filtered, -2)
	require.Equal(t, true, r["successful"], "%v", r)
	require.Equal(t, filtered, r["subscription"])
	require.Equal(t, []int64{old}, got, "replay applies the filter")

	match := e.publishTopic(topic, msg{"Id": "0JR3", "IsPushed": false, "QueueId": "00G1"})
	e.publishTopic(topic, msg{"Id": "0JR4", "IsPushed": false, "QueueId": "00G2"})
	e.publishTopic(topic, msg{"Id": "0JR5", "QueueId": "00G1"}) // field missing
	m := c.connectMsg()
	m["advice"] = msg{"timeout": 0}
	events, _ := split(t, c.send(m))
	require.Equal(t, []int64{match}, replayIDs(events))
	require.Equal(t, topic, events[0]["channel"], "events come on the bare channel")

	// A plain subscription next to the filtered one gets every event, each once.
	require.Equal(t, true, c.subscribe(topic, -1)["successful"])
	all := []int64{
		e.publishTopic(topic, msg{"Id": "0JR6", "IsPushed": false, "QueueId": "00G1"}),
		e.publishTopic(topic, msg{"Id": "0JR7", "IsPushed": true, "QueueId": "00G9"}),
	}
	events, _ = split(t, c.send(c.connectMsg()))
	require.Equal(t, all, replayIDs(events))

	// Unsubscribing the plain one leaves the filtered one.
	u := c.send(msg{"channel": "/meta/unsubscribe", "clientId": c.clientID, "subscription": topic, "id": "u"})
	require.Equal(t, true, u[0]["successful"])
	e.publishTopic(topic, msg{"Id": "0JR8", "IsPushed": true})
	last := e.publishTopic(topic, msg{"Id": "0JR9", "IsPushed": false, "queueid": "00G1"}) // field names match case-insensitively
	events, _ = split(t, c.send(c.connectMsg()))
	require.Equal(t, []int64{last}, replayIDs(events))
	require.Equal(t, 1, e.srv.Stats().Subscriptions)
}

func TestFilteredSubscriptionReplayMapUsesBareChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	first := e.publishTopic("/topic/T", msg{"Status": "New"})
	second := e.publishTopic("/topic/T", msg{"Status": "New"})
	c := connectedClient(t, e)
	m := c.subscribeMsg("/topic/T?Status=New", nil)
	m["ext"] = msg{"replay": msg{"/topic/T": first}} // EMP-Connector keys its map by the bare channel
	require.Equal(t, true, c.send(m)[0]["successful"])
	events, _ := c.connect()
	require.Equal(t, []int64{second}, replayIDs(events))
}

func TestBadFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := connectedClient(t, e)
	require.Equal(t, "400::The channel you requested to subscribe to does not exist {/topic/T?%zz=1}", c.subscribe("/topic/T?%zz=1", nil)["error"])
	require.Equal(t, "400::The channel you requested to subscribe to does not exist {/topic/T?=1}", c.subscribe("/topic/T?=1", nil)["error"])
}

func TestParseSubscription(t *testing.T) {
	t.Parallel()
	ch, f, ok := parseSubscription(`/topic/X?B="two words"&A=1`)
	require.True(t, ok)
	require.Equal(t, "/topic/X", ch)
	require.Equal(t, []fieldFilter{{"A", "1"}, {"B", "two words"}}, f)
	ch, f, ok = parseSubscription("/topic/X?")
	require.True(t, ok)
	require.Equal(t, "/topic/X", ch)
	require.Nil(t, f)
}

// Salesforce looks a filtered subscription's replay value up under the bare channel only, and
// names the bare channel in its error: a map keyed by the whole filtered subscription is
// refused (the reply quoted in jsforce/jsforce#888).
func TestFilteredSubscriptionReplayMapKeyedByFilterIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := connectedClient(t, e)
	const sub = "/topic/TestContact1?LastName='Smith'"
	m := c.subscribeMsg(sub, nil)
	m["ext"] = msg{"replay": msg{sub: -1}}
	r := c.send(m)
	require.Equal(t, false, r[0]["successful"])
	require.Equal(t, "400::The replayId for channel {/topic/TestContact1} wasn't found using the provided replay ID map "+
		"{{/topic/TestContact1?LastName='Smith'=-1}}. Ensure that the channel name you provided in the replay map is valid "+
		"and matches the channel name used for subscribing.", r[0]["error"])
}
