package connector

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/routing"
)

// benchClientEnv, set to the gateway's websocket URL, makes the test binary the agents' side of
// BenchmarkGateway5000AgentsClientProcess instead of running tests (TestMain).
const benchClientEnv = "OMNIROUTE_GATEWAY_BENCH_CLIENT"

func TestMain(m *testing.M) {
	if url := os.Getenv(benchClientEnv); url != "" {
		if err := runBenchClients(url, benchAgents, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench clients:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if target := os.Getenv(loadProxyEnv); target != "" {
		if err := runLoadProxy(target, os.Getenv(loadProxyProfiledEnv) == "1", os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "load proxy:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runBenchClients is the client process: it connects n agents to url (demo tokens signed with
// the test key), prints "ready", then reads frames on every connection. Each frame's presence
// is the UnixNano of its Deliver in the gateway's process; the client keeps now minus that.
// It prints "done" each time n more frames have arrived. On stdin, "reset" forgets the
// latencies (and answers "reset"), "report" prints "lat <count> <p50 ns> <p99 ns>".
func runBenchClients(url string, n int, in io.Reader, out io.Writer) error {
	key := NewSecret(testAgentKey)
	now := time.Now()
	conns, err := dialBenchAgents(url, n, func(i int) (string, error) { return MintAgentToken(key, benchUser(i), time.Hour, now) })
	if err != nil {
		return err
	}
	var (
		outMu sync.Mutex
		latMu sync.Mutex
		lat   []time.Duration
		count atomic.Int64
	)
	say := func(s string) {
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = io.WriteString(out, s+"\n")
	}
	say("ready")
	// The client stands for browsers on other machines, so it does only what the measurement
	// needs: each frame is read into the connection's own buffer (no allocation per frame) and
	// only its presence is looked up, without decoding the JSON.
	presence := []byte(`"presence":"`)
	for _, c := range conns {
		go func() {
			var buf bytes.Buffer
			for {
				_, r, err := c.NextReader()
				if err == nil {
					buf.Reset()
					_, err = buf.ReadFrom(r)
				}
				if err != nil {
					return // the gateway closed: the benchmark is over
				}
				at := time.Now().UnixNano()
				data := buf.Bytes()
				i := bytes.Index(data, presence)
				if i < 0 {
					continue
				}
				data = data[i+len(presence):]
				sent, _ := strconv.ParseInt(string(data[:max(bytes.IndexByte(data, '"'), 0)]), 10, 64)
				latMu.Lock()
				lat = append(lat, time.Duration(at-sent))
				latMu.Unlock()
				if count.Add(1)%int64(n) == 0 {
					say("done")
				}
			}
		}()
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "reset":
			latMu.Lock()
			lat = lat[:0]
			latMu.Unlock()
			say("reset")
		case "report":
			latMu.Lock()
			l := slices.Clone(lat)
			latMu.Unlock()
			slices.Sort(l)
			if len(l) == 0 {
				say("lat 0 0 0")
				continue
			}
			say(fmt.Sprintf("lat %d %d %d", len(l), l[(len(l)*50+99)/100-1], l[(len(l)*99+99)/100-1]))
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
	return sc.Err()
}

func benchUser(i int) string { return fmt.Sprintf("005%015d", i) }

// BenchmarkGateway5000AgentsClientProcess is BenchmarkGateway5000Agents with the 5,000 clients
// in a process of their own (this test binary, re-executed with benchClientEnv), as in a
// deployment where the consoles are browsers elsewhere: the benchmark's process holds only the
// gateway (and the benchmark's bookkeeping), so KiB/conn and cpu-us/frame are the gateway's
// alone. The machine's cores are still shared with the client process. write-p99 is from
// Deliver to the frame written (the gateway's write hook), read-p99 from Deliver to the frame
// read in the client process (wall clocks of one machine).
func BenchmarkGateway5000AgentsClientProcess(b *testing.B) {
	raiseFileLimit(b, benchAgents+512)
	bg := newBenchGateway(b)
	gw, users, sent := bg.gw, bg.users, bg.sent
	defer gw.Close()

	before := liveBytes()
	cmd := exec.Command(os.Args[0]) //nolint:gosec // this test binary, as the client process
	cmd.Env = append(os.Environ(), benchClientEnv+"="+bg.url)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	// Started as the daemon benchmark's processes are: it dies with the benchmark's process.
	exited, err := startChild(cmd)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		// The client process exits when its stdin ends.
		if err := <-exited; err != nil {
			b.Errorf("the client process: %v", err)
		}
	}()
	lines := bufio.NewScanner(stdout)
	expect := func(prefix string) string {
		b.Helper()
		if !lines.Scan() {
			b.Fatalf("the client process ended (want %q): %v", prefix, lines.Err())
		}
		if !strings.HasPrefix(lines.Text(), prefix) {
			b.Fatalf("the client process said %q, want %q", lines.Text(), prefix)
		}
		return lines.Text()
	}
	expect("ready")
	if n := gw.Connected(); n != benchAgents {
		b.Fatalf("%d agents connected, want %d", n, benchAgents)
	}
	perConn := float64(liveBytes()-before) / benchAgents

	for _, mode := range []struct {
		name  string
		batch int
	}{{"burst", benchAgents}, {"paced_5000_per_s", 50}} {
		b.Run(mode.name, func(b *testing.B) {
			written := make([][]time.Duration, benchAgents)
			for i := range written {
				written[i] = make([]time.Duration, 0, b.N)
			}
			bg.onWrite = func(i int, d time.Duration) { written[i] = append(written[i], d) }
			for i := range sent {
				sent[i].Store(0)
			}
			_, _ = io.WriteString(stdin, "reset\n")
			expect("reset") // before any frame of this run arrives
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				bg.writes.Add(benchAgents)
				start := time.Now()
				for i, u := range users {
					if i > 0 && i%mode.batch == 0 {
						time.Sleep(time.Until(start.Add(time.Duration(i/mode.batch) * 10 * time.Millisecond)))
					}
					at := time.Now().UnixNano()
					sent[i].Store(at)
					m := AgentMessage{Command: &routing.Command{Type: routing.CommandSetState, AgentID: u,
						State: mapping.State{Major: mapping.Away, Minor: "Break"}, Presence: strconv.FormatInt(at, 10)}}
					if !gw.Deliver(u, m) {
						b.Fatalf("agent %d: Deliver refused", i)
					}
				}
				bg.writes.Wait()
				expect("done")
			}
			b.StopTimer()
			cpu := cpuTime(b) - cpu0
			_, _ = io.WriteString(stdin, "report\n")
			var n int
			var p50, p99 int64
			if _, err := fmt.Sscanf(expect("lat "), "lat %d %d %d", &n, &p50, &p99); err != nil || n != b.N*benchAgents {
				b.Fatalf("client report: %d latencies (want %d), %v", n, b.N*benchAgents, err)
			}
			pct := func(p int) float64 {
				var all []time.Duration
				for _, l := range written {
					all = append(all, l...)
				}
				slices.Sort(all)
				return float64(all[(len(all)*p+99)/100-1]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(50), "write-p50-ms")
			b.ReportMetric(pct(99), "write-p99-ms")
			b.ReportMetric(float64(p50)/float64(time.Millisecond), "read-p50-ms")
			b.ReportMetric(float64(p99)/float64(time.Millisecond), "read-p99-ms")
			b.ReportMetric(perConn/1024, "KiB/conn")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*benchAgents), "cpu-us/frame")
		})
	}
}
