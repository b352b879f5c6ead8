package connector

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
)

// benchAgents is how many agents the gateway benchmark connects (issue 12: 5,000).
const benchAgents = 5000

// raiseFileLimit lifts the soft limit on open files to at least n (up to the hard limit).
func raiseFileLimit(b *testing.B, n uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("read the open-file limit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		b.Fatalf("the open-file hard limit %d is below the %d this benchmark needs", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("raise the open-file limit to %d: %v", n, err)
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// liveBytes is the heap's live objects plus goroutine stacks, after a GC.
func liveBytes() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

// BenchmarkGateway5000Agents connects 5,000 agents over loopback websockets (demo tokens,
// hello and snapshot read), measures the memory each idle connection costs, then, per op,
// delivers one presence command (a state change with its status) to every agent and waits
// until each client has read its frame. It reports the p50 and p99 from Deliver to the frame
// read by the client, and KiB per idle connection: the growth of live heap and stacks over
// the connected agents, both ends of each connection counted (the clients' ends are small:
// a 1 KiB read buffer, pooled write buffers, no goroutine while idle), so the gateway's own
// share is below it. cpu-us/frame is the process's CPU time (both ends, the benchmark's own
// bookkeeping included) per frame delivered: unlike the latencies, it does not depend on what
// else the machine runs.
func BenchmarkGateway5000Agents(b *testing.B) {
	raiseFileLimit(b, 2*benchAgents+512)
	bg := newBenchGateway(b)
	gw, users, sent := bg.gw, bg.users, bg.sent
	tokens := make([]string, benchAgents)
	now := time.Now()
	for i := range users {
		var err error
		if tokens[i], err = MintAgentToken(bg.key, users[i], time.Hour, now); err != nil {
			b.Fatal(err)
		}
	}

	before := liveBytes()
	conns, err := dialBenchAgents(bg.url, benchAgents, func(i int) (string, error) { return tokens[i], nil })
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
		gw.Close()
	}()
	if err != nil {
		b.Fatalf("connect: %v", err)
	}
	if n := gw.Connected(); n != benchAgents {
		b.Fatalf("%d agents connected, want %d", n, benchAgents)
	}
	perConn := float64(liveBytes()-before) / benchAgents

	for _, mode := range []struct {
		name  string
		batch int // agents delivered to at once; the batches are paced 10 ms apart
	}{{"burst", benchAgents}, {"paced_5000_per_s", 50}} {
		b.Run(mode.name, func(b *testing.B) {
			written := make([][]time.Duration, benchAgents)
			bg.onWrite = func(i int, d time.Duration) { written[i] = append(written[i], d) }
			cpu0 := cpuTime(b)
			lat := benchDeliver(b, gw, conns, users, sent, &bg.writes, mode.batch)
			cpu := cpuTime(b) - cpu0
			reportGatewayBench(b, written, lat, perConn)
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*benchAgents), "cpu-us/frame")
		})
	}
}

// benchDeliver runs b.N rounds: every agent gets one presence command, in batches of batch
// agents 10 ms apart, and each client reads it. It returns how long after its Deliver each
// client read its frame (the gateway's write hook records the writes).
func benchDeliver(b *testing.B, gw *Gateway, conns []*websocket.Conn, users []string, sent []atomic.Int64,
	writes *sync.WaitGroup, batch int,
) [][]time.Duration {
	b.Helper()
	for i := range sent {
		sent[i].Store(0)
	}
	lat := make([][]time.Duration, benchAgents)
	var round, readers sync.WaitGroup
	for i, c := range conns {
		readers.Go(func() {
			for range b.N {
				if _, _, err := c.ReadMessage(); err != nil {
					b.Errorf("agent %d: %v", i, err)
					round.Done()
					return
				}
				lat[i] = append(lat[i], time.Duration(time.Now().UnixNano()-sent[i].Load()))
				round.Done()
			}
		})
	}
	msgs := make([]AgentMessage, benchAgents)
	for i := range msgs {
		msgs[i] = AgentMessage{Command: &routing.Command{Type: routing.CommandSetState, AgentID: users[i],
			State: mapping.State{Major: mapping.Away, Minor: "Break"}, Presence: "Break"}}
	}
	b.ResetTimer()
	for range b.N {
		round.Add(benchAgents)
		writes.Add(benchAgents)
		start := time.Now()
		for i, u := range users {
			if i > 0 && i%batch == 0 {
				time.Sleep(time.Until(start.Add(time.Duration(i/batch) * 10 * time.Millisecond)))
			}
			sent[i].Store(time.Now().UnixNano())
			if !gw.Deliver(u, msgs[i]) {
				b.Fatalf("agent %d: Deliver refused", i)
			}
		}
		round.Wait()
		writes.Wait()
	}
	b.StopTimer()
	readers.Wait()
	return lat
}

func reportGatewayBench(b *testing.B, written, read [][]time.Duration, perConn float64) {
	b.Helper()
	pct := func(ls [][]time.Duration, p int) float64 {
		var all []time.Duration
		for _, l := range ls {
			all = append(all, l...)
		}
		if len(all) != b.N*benchAgents {
			b.Fatalf("%d latencies, want %d", len(all), b.N*benchAgents)
		}
		slices.Sort(all)
		return float64(all[(len(all)*p+99)/100-1]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(written, 50), "write-p50-ms")
	b.ReportMetric(pct(written, 99), "write-p99-ms")
	b.ReportMetric(pct(read, 50), "read-p50-ms")
	b.ReportMetric(pct(read, 99), "read-p99-ms")
	b.ReportMetric(perConn/1024, "KiB/conn")
}

// dialBenchAgents connects n agents to url, 32 at a time, each with token(i) in an
// Authorization header, and reads each one's hello and snapshot. The clients hold a 1 KiB read
// buffer and pooled write buffers. On an error it returns the connections made so far.
func dialBenchAgents(url string, n int, token func(int) (string, error)) ([]*websocket.Conn, error) {
	dialer := websocket.Dialer{Subprotocols: []string{AgentSubprotocol}, HandshakeTimeout: 30 * time.Second,
		ReadBufferSize: 1024, WriteBufferPool: &sync.Pool{}}
	conns := make([]*websocket.Conn, n)
	var (
		next    atomic.Int64
		dialErr atomic.Pointer[error]
		wg      sync.WaitGroup
	)
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && dialErr.Load() == nil; i = int(next.Add(1)) - 1 {
				tok, err := token(i)
				var c *websocket.Conn
				if err == nil {
					var resp *http.Response
					c, resp, err = dialer.Dial(url, http.Header{"Authorization": {"Bearer " + tok}})
					if err == nil {
						_ = resp.Body.Close()
						for range 2 { // hello, snapshot
							if _, _, err = c.ReadMessage(); err != nil {
								break
							}
						}
					}
				}
				if err != nil {
					dialErr.Store(&err)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if p := dialErr.Load(); p != nil {
		return conns, *p
	}
	return conns, nil
}

// benchGateway is the gateway both benchmarks measure, served on loopback, with a write hook
// that records how long after its Deliver (sent[i], UnixNano) each agent's frame was written.
// Each connection has one writer, so onWrite(i, ...) is called by agent i's writer only;
// writes (a WaitGroup) orders those calls before the main goroutine reads what they recorded.
type benchGateway struct {
	gw      *Gateway
	key     Secret
	url     string
	users   []string
	index   map[string]int
	sent    []atomic.Int64
	writes  sync.WaitGroup
	onWrite func(int, time.Duration) // set by each sub-benchmark before it delivers
}

func newBenchGateway(b *testing.B) *benchGateway {
	b.Helper()
	bg := &benchGateway{key: NewSecret(testAgentKey), users: make([]string, benchAgents), index: map[string]int{},
		sent: make([]atomic.Int64, benchAgents)}
	gw, err := NewGateway(GatewayOptions{Router: newFakeAgentRouter(), Auth: AgentAuthOptions{TokenKey: bg.key}, SendQueue: 16})
	if err != nil {
		b.Fatal(err)
	}
	bg.gw = gw
	for i := range bg.users {
		bg.users[i] = benchUser(i)
		bg.index[bg.users[i]] = i
	}
	gw.wrote = func(user string) {
		i := bg.index[user]
		if at := bg.sent[i].Load(); at != 0 {
			bg.onWrite(i, time.Duration(time.Now().UnixNano()-at))
			bg.writes.Done()
		}
	}
	srv := httptest.NewServer(gw)
	b.Cleanup(srv.Close)
	bg.url = "ws" + strings.TrimPrefix(srv.URL, "http") + AgentPath
	return bg
}
