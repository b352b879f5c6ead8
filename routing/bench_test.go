package routing

import (
	"fmt"
	"math/rand"
	"strconv"
	"testing"
	"time"

	"github.com/omniroute/omniroute/mapping"
)

// The decision benchmarks share one workload: 200 skills, one plan (queue) per skill requiring
// it, one semi-live channel, agents with 5 random skills and capacity 3, all Ready and online.
// Setup fills every agent to capacity and leaves 100,000 items waiting. One op is one routing
// decision each way:
//
//  1. new work arrives on a random queue (every agent is full, so it waits);
//  2. an agent frees up (releases an interaction; wrap-up 0) and is offered the best waiting
//     item it qualifies for;
//  3. the agent accepts that offer (bookkeeping that keeps the workload steady).
//
// Waiting work stays at 100,000 and every agent stays full, so every op is the steady state.

const (
	benchSkills  = 200
	benchWaiting = 100_000
	benchCap     = 3
	benchAgentSk = 5
)

func benchConfig() *mapping.Config {
	cfg := &mapping.Config{
		Channels: []mapping.Channel{{Name: "chat", Class: mapping.SemiLive, Weight: 1}},
		Capacity: mapping.Capacity{Default: "std", Profiles: []mapping.CapacityProfile{{Name: "std", Total: benchCap}}},
		Presence: mapping.Presence{
			ToSalesforce:  map[mapping.State]string{{Major: mapping.Ready}: "Available", {Major: mapping.Busy}: "Busy"},
			PostCallState: mapping.State{Major: mapping.Ready},
			Events: mapping.PresenceEvents{
				StateChangesUpdatePresence: true, PresenceChangesUpdateState: true,
				LoginSetsOnline: true, LogoutSetsOffline: true, OfflineLogsOut: true,
			},
		},
	}
	for s := range benchSkills {
		cfg.Plans = append(cfg.Plans, mapping.Plan{
			Name:           "P" + strconv.Itoa(s),
			Queues:         []string{"Q" + strconv.Itoa(s)},
			RequiredSkills: []mapping.SkillRequirement{{Skill: "s" + strconv.Itoa(s), MinLevel: 1}},
			OfferTimeout:   30 * time.Second,
		})
	}
	return cfg
}

// benchWorld is the workload: agent skills, the queues of the initial work, and the random
// stream of queues for new work.
type benchWorld struct {
	agents  []string
	skills  [][]int // per agent
	initial []int   // queue of each initial item
	stream  []int   // queues of new work, cycled
}

func newBenchWorld(nAgents int) *benchWorld {
	r := rand.New(rand.NewSource(int64(nAgents)))
	w := &benchWorld{}
	for i := range nAgents {
		w.agents = append(w.agents, fmt.Sprintf("005A%06d", i))
		sk := r.Perm(benchSkills)[:benchAgentSk]
		w.skills = append(w.skills, sk)
	}
	for range nAgents*benchCap + benchWaiting {
		w.initial = append(w.initial, r.Intn(benchSkills))
	}
	for range 1 << 16 {
		w.stream = append(w.stream, r.Intn(benchSkills))
	}
	return w
}

type benchEngine interface {
	apply(now time.Time, ev Event) []Command
}

type realBench struct{ e *Engine }

func (r realBench) apply(now time.Time, ev Event) []Command { return r.e.Apply(now, ev) }

// runDecisionBench drives eng through the workload; the same code drives the naive reference.
func runDecisionBench(b *testing.B, w *benchWorld, eng benchEngine) {
	now := t0
	tick := func() time.Time { now = now.Add(time.Millisecond); return now }
	queues := make([]string, benchSkills)
	for i := range queues {
		queues[i] = "Q" + strconv.Itoa(i)
	}
	active := make(map[string][]string, len(w.agents)) // agent -> accepted work ids
	accept := func(cmds []Command) {
		var offers []Command
		for _, c := range cmds {
			if c.Type == CommandOffer {
				offers = append(offers, c)
			}
		}
		for _, c := range offers {
			eng.apply(tick(), Event{Type: EventOfferAccepted, WorkID: c.WorkID, AgentID: c.AgentID})
			active[c.AgentID] = append(active[c.AgentID], c.WorkID)
		}
	}
	for i, a := range w.agents {
		var sk []Skill
		for _, s := range w.skills[i] {
			sk = append(sk, Skill{Name: "s" + strconv.Itoa(s), Level: 5})
		}
		eng.apply(tick(), Event{Type: EventAgentSkills, AgentID: a, Skills: sk})
		eng.apply(tick(), Event{Type: EventAgentPresence, AgentID: a, Presence: "Available", Channels: []string{"chat"}})
	}
	for i, q := range w.initial {
		id := "W" + strconv.Itoa(i)
		accept(eng.apply(tick(), Event{Type: EventWorkArrived, Work: Work{ID: id, PSR: "P" + id, Queue: queues[q], Channel: "chat"}}))
	}
	// Every agent must be full; any agent with a free slot would break the steady state.
	for _, a := range w.agents {
		if len(active[a]) != benchCap {
			b.Fatalf("agent %s holds %d interactions after setup, want %d", a, len(active[a]), benchCap)
		}
	}
	// Pre-built events: the op loop allocates nothing of its own.
	freeIDs := make([]string, 0, 1024)
	next := len(w.initial)
	for range 1024 {
		freeIDs = append(freeIDs, "W"+strconv.Itoa(next))
		next++
	}
	// slots[ai*benchCap:][:benchCap] are agent ai's interactions, oldest first.
	slots := make([]string, 0, len(w.agents)*benchCap)
	for _, a := range w.agents {
		slots = append(slots, active[a]...)
	}
	release := Event{Type: EventAgentAction, Action: Action{Kind: ActionRelease}}
	arrive := Event{Type: EventWorkArrived, Work: Work{Channel: "chat"}}
	acceptEv := Event{Type: EventOfferAccepted}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// 1. new work arrives.
		id := freeIDs[len(freeIDs)-1]
		freeIDs = freeIDs[:len(freeIDs)-1]
		arrive.Work.ID, arrive.Work.PSR = id, id
		arrive.Work.Queue = queues[w.stream[i&(len(w.stream)-1)]]
		if cmds := eng.apply(tick(), arrive); len(cmds) != 0 {
			b.Fatalf("new work was routed at once: %v", cmds)
		}
		// 2. an agent frees up and takes the best waiting item.
		ai := i % len(w.agents)
		agentID := w.agents[ai]
		mine := slots[ai*benchCap : (ai+1)*benchCap]
		done := mine[0]
		copy(mine, mine[1:])
		release.AgentID, release.WorkID = agentID, done
		cmds := eng.apply(tick(), release)
		var offered string
		for _, c := range cmds {
			if c.Type == CommandOffer {
				offered = c.WorkID
			}
		}
		if offered == "" {
			b.Fatalf("freed agent %s got no offer: %v", agentID, cmds)
		}
		freeIDs = append(freeIDs, done)
		// 3. the agent accepts.
		acceptEv.AgentID, acceptEv.WorkID = agentID, offered
		eng.apply(tick(), acceptEv)
		mine[benchCap-1] = offered
	}
}

// BenchmarkDecision measures the engine on the workload above.
func BenchmarkDecision(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("agents="+strconv.Itoa(n), func(b *testing.B) {
			w := newBenchWorld(n)
			plans, err := Compile(benchConfig())
			if err != nil {
				b.Fatal(err)
			}
			runDecisionBench(b, w, realBench{New(plans)})
		})
	}
}

// BenchmarkNaiveDecision runs the same workload through naiveEngine, a straightforward
// linear-scan router with the same choosing order.
func BenchmarkNaiveDecision(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("agents="+strconv.Itoa(n), func(b *testing.B) {
			runDecisionBench(b, newBenchWorld(n), newNaive())
		})
	}
}

// naiveEngine is the reference: every decision scans every agent or every waiting item. It
// understands only what the benchmark sends (skills, presence, arrivals, release, accept).
type naiveEngine struct {
	agents  []*naiveAgent
	byID    map[string]*naiveAgent
	waiting []*naiveItem
	items   map[string]*naiveItem
	out     []Command
	// free counts online agents with capacity left, so arrivals skip the scan when none has.
	free int
}

type naiveAgent struct {
	id        string
	skills    map[string]int32
	online    bool
	used      int32
	idleSince int64
}

type naiveItem struct {
	id, psr, queue, skill string
	since                 int64
	agent                 *naiveAgent
}

func newNaive() *naiveEngine {
	return &naiveEngine{byID: map[string]*naiveAgent{}, items: map[string]*naiveItem{}}
}

func (n *naiveEngine) apply(now time.Time, ev Event) []Command {
	n.out = n.out[:0]
	t := now.UnixNano()
	switch ev.Type {
	case EventAgentSkills:
		a := &naiveAgent{id: ev.AgentID, skills: map[string]int32{}}
		for _, s := range ev.Skills {
			a.skills[s.Name] = level(s.Level)
		}
		n.agents = append(n.agents, a)
		n.byID[a.id] = a
	case EventAgentPresence:
		a := n.byID[ev.AgentID]
		a.online, a.idleSince = true, t
		n.free++
		n.fill(a, t)
	case EventWorkArrived:
		it := &naiveItem{id: ev.Work.ID, psr: ev.Work.PSR, queue: ev.Work.Queue, skill: "s" + ev.Work.Queue[1:], since: t}
		n.items[it.id] = it
		var best *naiveAgent
		var bestFit int32
		for _, a := range n.agents {
			if n.free == 0 {
				break
			}
			lv, ok := a.skills[it.skill]
			if !ok || lv < 100 || !a.online || a.used >= benchCap {
				continue
			}
			if best == nil || lv > bestFit || lv == bestFit && (a.idleSince < best.idleSince ||
				a.idleSince == best.idleSince && (a.used < best.used || a.used == best.used && a.id < best.id)) {
				best, bestFit = a, lv
			}
		}
		if best == nil {
			n.waiting = append(n.waiting, it)
			return n.out
		}
		n.offer(it, best, t)
	case EventOfferAccepted:
	case EventAgentAction:
		a := n.byID[ev.AgentID]
		delete(n.items, ev.WorkID)
		if a.used == benchCap {
			n.free++
		}
		a.used--
		a.idleSince = t
		n.fill(a, t)
	}
	return n.out
}

func (n *naiveEngine) offer(it *naiveItem, a *naiveAgent, t int64) {
	it.agent = a
	a.used++
	if a.used == benchCap {
		n.free--
	}
	a.idleSince = t
	n.out = append(n.out, Command{Type: CommandOffer, WorkID: it.id, PSR: it.psr, AgentID: a.id})
}

func (n *naiveEngine) fill(a *naiveAgent, t int64) {
	for a.online && a.used < benchCap {
		best := -1
		for i, it := range n.waiting {
			if lv, ok := a.skills[it.skill]; !ok || lv < 100 {
				continue
			}
			if best < 0 || it.since < n.waiting[best].since || it.since == n.waiting[best].since && it.id < n.waiting[best].id {
				best = i
			}
		}
		if best < 0 {
			return
		}
		it := n.waiting[best]
		n.waiting[best] = n.waiting[len(n.waiting)-1]
		n.waiting = n.waiting[:len(n.waiting)-1]
		n.offer(it, a, t)
	}
}
