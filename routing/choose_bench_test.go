package routing

import (
	"fmt"
	"math/rand"
	"strconv"
	"testing"
	"time"

	"github.com/omniroute/omniroute/mapping"
)

// The choosing benchmarks measure the agent side of a decision, which BenchmarkDecision does
// not reach (there every agent is full, so new work only waits). Workload: 200 skills, one
// plan (queue) per skill requiring it at a minimum level of 1-4, one semi-live channel,
// capacity 4 units per agent. Each agent has 3-8 random skills at random levels 1-10; 10% never
// log in, 25% of the rest are Away, the others are Ready and online. Agents log in in groups
// that share a timestamp, and setup preloads about 1.2 accepted interactions per agent (weight
// 1 or 2) in batches that share a timestamp, so agents differ in skill fit, idle time and load,
// and each of the four choosing criteria (fit, idle, load, id) decides some choices
// (TestChooseMatchesNaive checks that, and that engine and reference choose alike).
//
// One op is one new work item (random queue, weight 1 or 2) arriving and being offered to the
// best eligible agent, then the state restored: the PSR is deleted (the offer stays open,
// check_offer) and the agent declines, so the work is forgotten and the capacity freed. Three
// Apply calls, one choice. The chosen agent keeps its new idle time, so the choices rotate
// through the eligible agents as they would in production. The arrival stream is filtered in
// setup to (queue, weight) pairs that have at least one eligible agent, which does not change
// in the op loop (only idle times do), so every op offers.

const (
	chooseSkills   = 200
	chooseCap      = 4
	chooseStream   = 4096
	chooseIDs      = 1024
	chooseLoginGrp = 50  // agents logging in at the same instant
	choosePreBatch = 100 // preloaded arrivals at the same instant
)

func chooseConfig() *mapping.Config {
	cfg := &mapping.Config{
		Channels: []mapping.Channel{{Name: "chat", Class: mapping.SemiLive, Weight: 1}},
		Capacity: mapping.Capacity{Default: "std", Profiles: []mapping.CapacityProfile{{Name: "std", Total: chooseCap}}},
		Presence: mapping.Presence{
			ToSalesforce:  map[mapping.State]string{{Major: mapping.Ready}: "Available", {Major: mapping.Busy}: "Busy"},
			PostCallState: mapping.State{Major: mapping.Ready},
			Events: mapping.PresenceEvents{
				StateChangesUpdatePresence: true, PresenceChangesUpdateState: true,
				LoginSetsOnline: true, LogoutSetsOffline: true, OfflineLogsOut: true,
			},
		},
	}
	for s := range chooseSkills {
		cfg.Plans = append(cfg.Plans, mapping.Plan{
			Name:           "P" + strconv.Itoa(s),
			Queues:         []string{"Q" + strconv.Itoa(s)},
			RequiredSkills: []mapping.SkillRequirement{{Skill: "s" + strconv.Itoa(s), MinLevel: chooseMinLevel(s)}},
			OfferTimeout:   30 * time.Second,
		})
	}
	return cfg
}

func chooseMinLevel(skill int) float64 { return float64(1 + skill%4) }

type chooseArrival struct {
	queue  int
	weight int
}

type chooseWorld struct {
	agents  []string // creation order (shuffled against id order)
	skills  [][]Skill
	offline []bool
	away    []bool
	preload []chooseArrival
	stream  []chooseArrival
}

func newChooseWorld(nAgents int, seed int64) *chooseWorld {
	r := rand.New(rand.NewSource(seed))
	w := &chooseWorld{}
	for _, i := range r.Perm(nAgents) {
		w.agents = append(w.agents, fmt.Sprintf("005B%06d", i))
		n := 3 + r.Intn(6)
		var sk []Skill
		for _, s := range r.Perm(chooseSkills)[:n] {
			sk = append(sk, Skill{Name: "s" + strconv.Itoa(s), Level: float64(1 + r.Intn(10))})
		}
		w.skills = append(w.skills, sk)
		off := r.Intn(10) == 0
		w.offline = append(w.offline, off)
		w.away = append(w.away, !off && r.Intn(4) == 0)
	}
	arrival := func() chooseArrival { return chooseArrival{queue: r.Intn(chooseSkills), weight: 1 + r.Intn(2)} }
	for range nAgents * 6 / 5 {
		w.preload = append(w.preload, arrival())
	}
	for range chooseStream {
		w.stream = append(w.stream, arrival())
	}
	return w
}

// chooseRig is one engine set up on a chooseWorld, ready for ops.
type chooseRig struct {
	eng    benchEngine
	now    time.Time
	stream []chooseArrival // filtered: every entry has an eligible agent
	queues []string
	ids    []string
	// psrs are the PSR ids arrivals use in turn: Salesforce never reuses a PSR id, and the
	// engine ignores a PSR it saw deleted until deletedPSRCap later deletions, so the pool is
	// larger than that.
	psrs    []string
	nextPSR int
	arrive  Event
	remove  Event
	decline Event
}

func (g *chooseRig) tick() time.Time { g.now = g.now.Add(time.Millisecond); return g.now }

// psr returns the next PSR id of the pool.
func (g *chooseRig) psr() string {
	p := g.psrs[g.nextPSR]
	g.nextPSR = (g.nextPSR + 1) % len(g.psrs)
	return p
}

func offeredTo(cmds []Command) string {
	for _, c := range cmds {
		if c.Type == CommandOffer {
			return c.AgentID
		}
	}
	return ""
}

// probe sends one arrival at now and withdraws it again; it reports whether it was offered.
func (g *chooseRig) probe(now time.Time, id string, c chooseArrival) bool {
	g.arrive.Work.ID, g.arrive.Work.PSR = id, g.psr()
	g.arrive.Work.Queue, g.arrive.Work.Weight = g.queues[c.queue], c.weight
	agentID := offeredTo(g.eng.apply(now, g.arrive))
	g.remove.WorkID = id
	g.eng.apply(now, g.remove)
	if agentID == "" {
		return false
	}
	g.decline.WorkID, g.decline.AgentID = id, agentID
	g.eng.apply(now, g.decline)
	return true
}

func setupChoose(tb testing.TB, w *chooseWorld, eng benchEngine) *chooseRig {
	g := &chooseRig{
		eng:     eng,
		now:     t0,
		arrive:  Event{Type: EventWorkArrived, Work: Work{Channel: "chat"}},
		remove:  Event{Type: EventWorkRemoved},
		decline: Event{Type: EventOfferDeclined},
	}
	for i := range chooseSkills {
		g.queues = append(g.queues, "Q"+strconv.Itoa(i))
	}
	for i := range chooseIDs {
		g.ids = append(g.ids, "C"+strconv.Itoa(i))
	}
	for i := range 3 * deletedPSRCap {
		g.psrs = append(g.psrs, "R"+strconv.Itoa(i))
	}
	// Agents: skills, then log in (groups share an instant), then some go Away.
	var at time.Time
	for i, a := range w.agents {
		if i%chooseLoginGrp == 0 {
			at = g.tick()
		}
		eng.apply(at, Event{Type: EventAgentSkills, AgentID: a, Skills: w.skills[i]})
		if w.offline[i] {
			continue
		}
		eng.apply(at, Event{Type: EventAgentPresence, AgentID: a, Presence: "Available", Channels: []string{"chat"}})
		if w.away[i] {
			eng.apply(at, Event{Type: EventAgentState, AgentID: a, State: mapping.State{Major: mapping.Away}})
		}
	}
	// Build every bucket once (the engine creates them on first use), at one instant so no
	// agent's idle time changes.
	at = g.tick()
	for q := range chooseSkills {
		for wt := 1; wt <= 2; wt++ {
			g.probe(at, "warm", chooseArrival{queue: q, weight: wt})
		}
	}
	// Preload: accepted interactions that stay, in batches sharing an instant.
	for i, c := range w.preload {
		if i%choosePreBatch == 0 {
			at = g.tick()
		}
		id := "L" + strconv.Itoa(i)
		g.arrive.Work.ID, g.arrive.Work.PSR = id, id
		g.arrive.Work.Queue, g.arrive.Work.Weight = g.queues[c.queue], c.weight
		if agentID := offeredTo(eng.apply(at, g.arrive)); agentID != "" {
			eng.apply(at, Event{Type: EventOfferAccepted, WorkID: id, AgentID: agentID})
			continue
		}
		eng.apply(at, Event{Type: EventWorkRemoved, WorkID: id})
	}
	// Keep the arrivals that find an eligible agent.
	at = g.tick()
	for _, c := range w.stream {
		if g.probe(at, "probe", c) {
			g.stream = append(g.stream, c)
		}
	}
	if len(g.stream) < len(w.stream)/2 {
		tb.Fatalf("only %d of %d arrivals have an eligible agent", len(g.stream), len(w.stream))
	}
	return g
}

// op is one benchmark op: arrival, offer to the best eligible agent, PSR deleted, declined.
func (g *chooseRig) op(tb testing.TB, i int) string {
	id := g.ids[i&(chooseIDs-1)]
	c := g.stream[i%len(g.stream)]
	g.arrive.Work.ID, g.arrive.Work.PSR = id, g.psr()
	g.arrive.Work.Queue, g.arrive.Work.Weight = g.queues[c.queue], c.weight
	agentID := offeredTo(g.eng.apply(g.tick(), g.arrive))
	if agentID == "" {
		tb.Fatalf("op %d: %s (weight %d) was not offered", i, g.arrive.Work.Queue, c.weight)
	}
	g.remove.WorkID = id
	g.eng.apply(g.tick(), g.remove)
	g.decline.WorkID, g.decline.AgentID = id, agentID
	g.eng.apply(g.tick(), g.decline)
	return agentID
}

func runChooseBench(b *testing.B, n int, eng benchEngine) {
	g := setupChoose(b, newChooseWorld(n, int64(n)), eng)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		g.op(b, i)
	}
}

// BenchmarkChoose measures the engine choosing an agent for new work (workload above).
func BenchmarkChoose(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("agents="+strconv.Itoa(n), func(b *testing.B) {
			plans, err := Compile(chooseConfig())
			if err != nil {
				b.Fatal(err)
			}
			runChooseBench(b, n, realBench{New(plans)})
		})
	}
}

// BenchmarkNaiveChoose runs the same ops through naiveChooser, a linear scan over all agents.
func BenchmarkNaiveChoose(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("agents="+strconv.Itoa(n), func(b *testing.B) {
			runChooseBench(b, n, newNaiveChooser())
		})
	}
}

// naiveChooser is the reference for the choosing benchmarks: each arrival scans every agent,
// applying the engine's eligibility (Ready, online on the channel, room for the weight, the
// skill at the plan's minimum level) and choosing order (fit, idle since, load, id). Skill
// levels are an int-indexed array per agent, not a map, so the scan is a fair one. It
// understands only what the choosing workload sends.
type naiveChooser struct {
	agents []*ncAgent // creation order
	byID   map[string]*ncAgent
	queue  map[string]int // queue -> skill index
	skill  map[string]int // skill name -> index
	minLv  []int32        // by skill index
	items  map[string]*ncItem
	free   []*ncItem // forgotten items, reused so that the reference does not allocate per op
	out    []Command
}

type ncAgent struct {
	id            string
	levels        []int32 // by skill index; -1: none
	ready, online bool
	used          int32
	idle          int64
}

type ncItem struct {
	psr  string
	a    *ncAgent
	w    int32
	gone bool
}

func newNaiveChooser() *naiveChooser {
	n := &naiveChooser{
		byID:  map[string]*ncAgent{},
		queue: map[string]int{},
		skill: map[string]int{},
		items: map[string]*ncItem{},
	}
	for s := range chooseSkills {
		n.queue["Q"+strconv.Itoa(s)] = s
		n.skill["s"+strconv.Itoa(s)] = s
		n.minLv = append(n.minLv, level(chooseMinLevel(s)))
	}
	return n
}

func (n *naiveChooser) eligible(a *ncAgent, s int, w int32) bool {
	return a.ready && a.online && a.used+w <= chooseCap && a.levels[s] >= n.minLv[s]
}

// ncOrder compares a and b (both eligible for skill s) by the choosing order. It returns
// whether a comes first and the criterion that decided: 0 fit, 1 idle, 2 load, 3 id.
func ncOrder(a, b *ncAgent, s int) (bool, int) {
	switch {
	case a.levels[s] != b.levels[s]:
		return a.levels[s] > b.levels[s], 0
	case a.idle != b.idle:
		return a.idle < b.idle, 1
	case a.used != b.used:
		return a.used < b.used, 2
	}
	return a.id < b.id, 3
}

func (n *naiveChooser) choose(s int, w int32) *ncAgent {
	var best *ncAgent
	for _, a := range n.agents {
		if !n.eligible(a, s, w) {
			continue
		}
		if best == nil {
			best = a
		} else if first, _ := ncOrder(a, best, s); first {
			best = a
		}
	}
	return best
}

// decider returns how many agents are eligible for (s, w) and the deepest criterion needed
// to tell the best from every other eligible agent (-1 when fewer than two are eligible).
func (n *naiveChooser) decider(s int, w int32) (int, int) {
	best := n.choose(s, w)
	count, deep := 0, -1
	for _, a := range n.agents {
		if !n.eligible(a, s, w) {
			continue
		}
		count++
		if a != best {
			_, c := ncOrder(best, a, s)
			deep = max(deep, c)
		}
	}
	return count, deep
}

func (n *naiveChooser) apply(now time.Time, ev Event) []Command {
	n.out = n.out[:0]
	t := now.UnixNano()
	switch ev.Type {
	case EventAgentSkills:
		a := &ncAgent{id: ev.AgentID, levels: make([]int32, chooseSkills)}
		for i := range a.levels {
			a.levels[i] = -1
		}
		for _, sk := range ev.Skills {
			a.levels[n.skill[sk.Name]] = level(sk.Level)
		}
		n.agents = append(n.agents, a)
		n.byID[a.id] = a
	case EventAgentPresence:
		a := n.byID[ev.AgentID]
		for _, c := range ev.Channels {
			a.online = a.online || c == "chat"
		}
		if ev.Presence == "Available" && !a.ready {
			a.ready, a.idle = true, t
		}
	case EventAgentState:
		n.byID[ev.AgentID].ready = ev.State.Major == mapping.Ready
	case EventWorkArrived:
		var it *ncItem
		if k := len(n.free); k > 0 {
			it = n.free[k-1]
			n.free = n.free[:k-1]
		} else {
			it = new(ncItem)
		}
		*it = ncItem{psr: ev.Work.PSR, w: int32(ev.Work.Weight)}
		n.items[ev.Work.ID] = it
		if a := n.choose(n.queue[ev.Work.Queue], it.w); a != nil {
			it.a = a
			a.used += it.w
			a.idle = t
			n.out = append(n.out, Command{Type: CommandOffer, WorkID: ev.Work.ID, PSR: it.psr, AgentID: a.id})
		}
	case EventWorkRemoved:
		it := n.items[ev.WorkID]
		switch {
		case it == nil:
		case it.a == nil:
			delete(n.items, ev.WorkID)
			n.free = append(n.free, it)
		case !it.gone:
			it.gone = true
			n.out = append(n.out, Command{Type: CommandCheckOffer, WorkID: ev.WorkID, PSR: it.psr, AgentID: it.a.id})
		}
	case EventOfferAccepted:
	case EventOfferDeclined:
		if it := n.items[ev.WorkID]; it != nil && it.gone && it.a != nil && it.a.id == ev.AgentID {
			it.a.used -= it.w
			delete(n.items, ev.WorkID)
			n.free = append(n.free, it)
			n.out = append(n.out, Command{Type: CommandNotify, WorkID: ev.WorkID, AgentID: ev.AgentID})
		}
	}
	return n.out
}

// lockstep feeds every event to the engine and the reference and fails on any arrival they
// offer to different agents (or one offers and the other does not). It counts, per arrival,
// how many agents were eligible and which criterion decided.
type lockstep struct {
	t       *testing.T
	real    *Engine
	naive   *naiveChooser
	offers  int
	multi   int    // arrivals with two or more eligible agents
	decided [4]int // by deciding criterion
}

func (l *lockstep) apply(now time.Time, ev Event) []Command {
	if ev.Type == EventWorkArrived {
		count, deep := l.naive.decider(l.naive.queue[ev.Work.Queue], int32(ev.Work.Weight))
		if count >= 2 {
			l.multi++
			l.decided[deep]++
		}
	}
	want := offeredTo(l.naive.apply(now, ev))
	cmds := l.real.Apply(now, ev)
	if got := offeredTo(cmds); got != want {
		l.t.Fatalf("%v %s: engine offered to %q, naive reference to %q", ev.Type, ev.Work.ID, got, want)
	}
	if want != "" {
		l.offers++
	}
	return cmds
}

// TestChooseMatchesNaive runs the choosing workload (setup and 500 ops) through the engine and
// the naive reference in lockstep: every choice must be the same agent, so the choosing
// benchmarks compare like with like. It also checks the workload makes real choices: most
// arrivals have several eligible agents, and each criterion of the order decides some.
func TestChooseMatchesNaive(t *testing.T) {
	plans, err := Compile(chooseConfig())
	if err != nil {
		t.Fatal(err)
	}
	l := &lockstep{t: t, real: New(plans), naive: newNaiveChooser()}
	w := newChooseWorld(2000, 7)
	w.stream = w.stream[:600]
	g := setupChoose(t, w, l)
	before := l.offers
	for i := range 500 {
		g.op(t, i)
	}
	if got := l.offers - before; got != 500 {
		t.Fatalf("500 ops made %d offers", got)
	}
	t.Logf("offers %d, arrivals with >=2 eligible agents %d, decided by fit/idle/load/id %v", l.offers, l.multi, l.decided)
	if l.multi < l.offers/2 {
		t.Fatalf("only %d of %d offers had a choice between agents", l.multi, l.offers)
	}
	for c, n := range l.decided {
		if n == 0 {
			t.Fatalf("no choice was decided by criterion %d (0 fit, 1 idle, 2 load, 3 id): %v", c, l.decided)
		}
	}
}
