package routing

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

// TestBucketsPrunedWithoutReload: every distinct PSR skill requirement (a transfer to a skill,
// seed 004) makes a bucket that every agent with the skill joins. Buckets whose work is gone
// must not pile up (and slow every agent's fill) until the next reload.
func TestBucketsPrunedWithoutReload(t *testing.T) {
	t.Parallel()
	table, err := Compile(parseConfig(t, `
plans:
  - name: Support
    queues: [Q]
channels:
  - {name: chat, class: semi-live, weight: 1}
capacity:
  default: std
  profiles: [{name: std, total: 1}]
`, "buckets.yaml"))
	require.NoError(t, err)
	e := New(table)
	now := t0
	e.Apply(now, Event{Type: EventAgentSkills, AgentID: "A1", Skills: []Skill{{Name: "s", Level: 100}}})
	e.Apply(now, Event{Type: EventAgentPresence, AgentID: "A1", Presence: "Available", Channels: []string{"chat"}})
	e.Apply(now, Event{Type: EventAgentState, AgentID: "A1", State: mapping.State{Major: mapping.Away}})
	for i := range 5000 {
		now = now.Add(time.Second)
		id := "W" + strconv.Itoa(i)
		e.Apply(now, Event{Type: EventWorkArrived, Work: Work{
			ID: id, PSR: "P" + id, Queue: "Q", Channel: "chat",
			Skills: []SkillRequirement{{Name: "s", Level: float64(i%5000) / 100}},
		}})
		e.Apply(now, Event{Type: EventWorkRemoved, WorkID: id, PSR: "P" + id})
	}
	require.LessOrEqual(t, len(e.bucketList), 200, "buckets")
	require.LessOrEqual(t, len(e.agents["A1"].memberships), 200, "memberships")
	require.Len(t, e.buckets, len(e.bucketList))
	require.LessOrEqual(t, len(e.reqIDs), 200, "requirement sets")
	// Routing still works after the pruning.
	e.Apply(now, Event{Type: EventWorkArrived, Work: Work{ID: "X", PSR: "PX", Queue: "Q", Channel: "chat",
		Skills: []SkillRequirement{{Name: "s", Level: 3}}}})
	cmds := e.Apply(now, Event{Type: EventAgentState, AgentID: "A1", State: mapping.State{Major: mapping.Ready}})
	require.Equal(t, "A1", offeredTo(cmds), "X is offered to A1")
	checkInvariants(t, e)
}
