package connector

import (
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/internal/syncbuf"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// BenchmarkDaemonLoad runs the daemon binary (`go build ./cmd/omniroute`, `omniroute run` in
// its own process) against the in-process emulator over loopback, through a measuring proxy in
// a third process (startLoadProxy) that adds 100 ms ± 30 ms of REST latency, half on the way
// there and half on the way back (latencyProxy's split), and offers new work at a steady rate.
// Salesforce's servers are not on the daemon's cores, and here the emulator shares the
// machine's: while a load of up to 500/s runs, the benchmark's process (the emulator and the
// generator) gets one P (GOMAXPROCS 1), so that its bursts cannot take every core from the
// daemon, and nice 19 (yieldCores, with CAP_SYS_NICE), so that the daemon and the proxy get a core as
// soon as they wake; the daemon keeps the default. At 1,000/s the emulator needs more than one
// core to keep the pace, and has both at nice 0 (that rate measures throughput; at nice 19 the
// generator fell to 960 offers a second). One b.N iteration is one second of offered load: -benchtime=60x
// runs the 60 s per rate, -benchtime=1x is the smoke run. Nobody accepts: the agents'
// capacity (in the org and in the mapping) is large enough for every offer.
//
// Reported per rate:
//   - offered/s: the generator's own pace (work created per second; it falls behind the
//     rate when the cores are busy), and routed/s: AgentWork inserts arrived at the proxy per
//     second, both over the run up to their last one;
//   - e2r-p50-ms, e2r-p99-ms: from just before the PSR is created in the emulator to the
//     arrival at the proxy of the AgentWork insert request that carries it (before the added
//     latency);
//   - added-p50-ms, added-p99-ms: what the daemon added: from the CometD response naming
//     the PSR written to the daemon to that insert's arrival, less the time during which all
//     the writer's slots (OMNIROUTE_WRITER_IN_FLIGHT) held calls that do not carry it
//     (addedTime);
//   - calls/item: REST calls (/services/data/) per routed item while the load ran, and
//     their breakdown by method and path in the log;
//   - peak-rss-MiB: VmHWM of the daemon's process;
//   - peak-goroutines: the daemon's most go_goroutines, sampled every second (a
//     scrape is work for the daemon: Prometheus scrapes every 15 to 30 s).
//
// OMNIROUTE_BENCH_DAEMON_ENV adds variables to the daemon's environment (KEY=VALUE, separated
// by spaces; GOGC=400, for example). OMNIROUTE_BENCH_PROFILE=dir profiles the daemon
// (loadProfiler): its binary gets a pprof listener, GODEBUG=gctrace=1 is set, and dir
// receives, per rate, a CPU profile, an execution trace and an allocation profile taken
// during the load, the daemon's stderr, every item's times and every REST call.
func BenchmarkDaemonLoad(b *testing.B) {
	prof := newLoadProfiler(b, os.Getenv("OMNIROUTE_BENCH_PROFILE"))
	bin := prof.build(b)
	for _, rate := range []int{1, 100, 500, 1000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) { benchDaemonLoad(b, bin, rate, prof) })
	}
}

// benchSeed is the demo org with agents agents (every one with English 8 and a capacity
// nothing fills), no push timeouts, and bounded event retention.
func benchSeed(agents int) emulator.Seed {
	seed := emulator.DemoSeed()
	var tmpl emulator.SeedUser
	n := 0
	for i := range seed.Users {
		if seed.Users[i].Agent {
			seed.Users[i].Capacity = 1_000_000
			seed.Users[i].Skills = map[string]float64{"English": 8, "Technical": 5}
			tmpl = seed.Users[i]
			n++
		}
	}
	for i := n; i < agents; i++ {
		u := tmpl
		u.Username, u.LastName = fmt.Sprintf("bench%05d@omniroute.demo", i), fmt.Sprintf("Bench %05d", i)
		u.Email = u.Username
		seed.Users = append(seed.Users, u)
	}
	for i := range seed.RoutingConfigs {
		seed.RoutingConfigs[i].PushTimeout = 0
	}
	return seed
}

// benchMapping is the demo mapping with capacities nothing fills.
func benchMapping(b *testing.B) string {
	data, err := os.ReadFile(demoMapping)
	require.NoError(b, err)
	s := strings.Replace(string(data), "total: 10\n", "total: 1000000\n", 1)
	s = strings.Replace(s, "semi-live: 6\n", "semi-live: 1000000\n", 1)
	require.NotEqual(b, string(data), s)
	path := filepath.Join(b.TempDir(), "mapping.yaml")
	require.NoError(b, os.WriteFile(path, []byte(s), 0o600))
	return path
}

// onlineAll sets every agent of the org Available.
func onlineAll(b *testing.B, em *emulator.Emulator, seed emulator.Seed) {
	for _, u := range seed.Users {
		if u.Agent {
			require.NoError(b, em.SetPresence(u.Username, "Available"))
		}
	}
}

func benchDaemonLoad(b *testing.B, bin string, rate int, prof *loadProfiler) {
	seed := benchSeed(500)
	em, err := emulator.New(emulator.Options{Seed: seed, RandSeed: 1, MaxEvents: 20_000})
	require.NoError(b, err)
	defer em.Close()
	emSrv := httptest.NewServer(em)
	defer emSrv.Close()
	proxy := startLoadProxy(b, emSrv.URL, prof != nil)
	env := append(prof.env(), strings.Fields(os.Getenv("OMNIROUTE_BENCH_DAEMON_ENV"))...)
	slots := DefaultConfig().WriterInFlight
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "OMNIROUTE_WRITER_IN_FLIGHT="); ok {
			slots, err = strconv.Atoi(v)
			require.NoError(b, err)
		}
	}
	d := startDaemonProcess(b, bin, proxy.url, env...)
	defer d.stop(b)
	d.waitReconciled(b)
	name := fmt.Sprintf("rate=%d", rate)
	defer prof.saveLog(b, d, name)
	onlineAll(b, em, seed)
	// Let the presence events reach the router before the load starts.
	time.Sleep(time.Second)

	// The emulator stands in for servers elsewhere: up to 500/s it has one P and yields the
	// cores (nice 19) while the load runs (see above).
	if rate <= 500 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		defer yieldCores(b)()
	}
	total := rate * b.N
	created := make(map[string]time.Time, total)
	var createdMu sync.Mutex
	proxy.reset(b)
	peak := d.peakGoroutines(b)
	b.ResetTimer()
	start := time.Now()
	profiled := prof.during(b, d, name, time.Duration(b.N)*time.Second)
	genErr := make(chan error, 1)
	go func() {
		interval := time.Second / time.Duration(rate)
		for i := range total {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			at := time.Now()
			wr, err := em.CreateWork(emulator.WorkRequest{Channel: "Chat", Queue: "Support_EN"})
			if err != nil {
				genErr <- err
				return
			}
			createdMu.Lock()
			created[wr.PSRID] = at
			createdMu.Unlock()
		}
		genErr <- nil
	}()
	require.NoError(b, <-genErr)
	deadline := time.Now().Add(20 * time.Second)
	for proxy.seen(b) < int64(total) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := proxy.seen(b); n < int64(total) {
		b.Logf("only %d of %d offered; AgentWork records %d", n, total, em.Counters().Records["AgentWork"])
		seen := proxy.records(b).Seen
		createdMu.Lock()
		for psr := range created {
			if _, ok := seen[psr]; !ok {
				b.Logf("missing %s", psr)
			}
		}
		createdMu.Unlock()
		b.FailNow()
	}
	// The last inserts are in flight: wait for their records.
	var routed int
	for {
		routed = em.Counters().Records["AgentWork"]
		if routed >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	rec := proxy.records(b)
	for k, n := range rec.Kinds {
		b.Logf("%6d %s", n, k)
	}
	b.Logf("%6d connections opened to the org", rec.Conns)
	goroutines := peak()
	profiled()
	require.Equal(b, total, routed, "every work item routed once")

	var e2r, added []time.Duration
	var lastCreated, lastSent time.Time
	inserts := make([]span, 0, len(rec.Inserts))
	for _, s := range rec.Inserts {
		inserts = append(inserts, span{time.Unix(0, s[0]), time.Unix(0, s[1])})
	}
	slices.SortFunc(inserts, func(x, y span) int { return x.start.Compare(y.start) })
	createdMu.Lock()
	for psr, at := range created {
		ns, ok := rec.Seen[psr]
		require.True(b, ok, "PSR %s never offered", psr)
		sent := time.Unix(0, ns)
		e2r = append(e2r, sent.Sub(at))
		if at.After(lastCreated) {
			lastCreated = at
		}
		if sent.After(lastSent) {
			lastSent = sent
		}
		ns, ok = rec.Delivered[psr]
		require.True(b, ok, "PSR %s never delivered to the daemon", psr)
		got := time.Unix(0, ns)
		added = append(added, addedTime(inserts, got, sent, slots))
		prof.item(psr, got.Sub(start), sent.Sub(start), added[len(added)-1])
	}
	createdMu.Unlock()
	if prof != nil {
		rest := make([]restCall, 0, len(rec.Rest))
		for _, c := range rec.Rest {
			rest = append(rest, restCall{c.Kind, span{time.Unix(0, c.Start), time.Unix(0, c.End)}})
		}
		prof.saveItems(b, name, start, rest)
	}

	// offered/s is the generator's own pace (it falls behind when the two cores are busy);
	// routed/s counts up to the last insert's arrival at the proxy (not its 100 ms latency).
	interval := time.Second / time.Duration(rate)
	b.ReportMetric(float64(total)/(lastCreated.Sub(start)+interval).Seconds(), "offered/s")
	b.ReportMetric(float64(routed)/(lastSent.Sub(start)+interval).Seconds(), "routed/s")
	b.ReportMetric(ms(quantile(added, 0.50)), "added-p50-ms")
	b.ReportMetric(ms(quantile(added, 0.99)), "added-p99-ms")
	b.ReportMetric(ms(quantile(e2r, 0.50)), "e2r-p50-ms")
	b.ReportMetric(ms(quantile(e2r, 0.99)), "e2r-p99-ms")
	b.ReportMetric(float64(rec.Calls)/float64(routed), "calls/item")
	b.ReportMetric(procStatusOf(b, d.cmd.Process.Pid, "VmHWM"), "peak-rss-MiB")
	b.ReportMetric(float64(goroutines), "peak-goroutines")
	b.ReportMetric(0, "ns/op") // one op is one second of load: ns/op says nothing
}

// BenchmarkReconcile times the daemon's start-up reconcile of N waiting PSRs with M agents
// online (issue 11: N=100,000, M=10,000), through the same 100 ms ± 30 ms proxy, and measures
// the daemon's memory in that state. The daemon is the real binary (`go build
// ./cmd/omniroute` into a temporary directory), run as `omniroute run` in its own process, so
// its RSS is its own: the emulator, with its N work items, PSRs and events, stays in the
// benchmark's process. The work is in Support_DE (German 4 required) and no agent speaks
// German, so every PSR stays waiting and the figures are the reconcile's, not a routing burst
// after it. The size is OMNIROUTE_BENCH_SCALE times the (default 0.02: N=2,000,
// M=200, the smoke run); OMNIROUTE_BENCH_SCALE=1 is the full size. One b.N iteration is one
// daemon start.
//
// Reported, the median over the b.N starts (from the daemon's /metrics and /proc/<pid>/status
// one second after the reconcile is applied):
//   - reconcile-s: the reconcile's SOQL reads (omniroute_reconcile_duration_seconds);
//   - ready-s: from the process start to the reconcile applied (log-in, org check, subscribe);
//   - rss-MiB, peak-rss-MiB: the daemon process's VmRSS and VmHWM;
//   - heap-inuse-MiB: its go_memstats_heap_inuse_bytes (runtime/metrics), GC slack included.
func BenchmarkReconcile(b *testing.B) {
	scale := 0.02
	if s := os.Getenv("OMNIROUTE_BENCH_SCALE"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(b, err, "OMNIROUTE_BENCH_SCALE")
		require.Positive(b, v, "OMNIROUTE_BENCH_SCALE")
		scale = v
	}
	n, m := max(1, int(100_000*scale)), max(1, int(10_000*scale))
	b.Run(fmt.Sprintf("psrs=%d/agents=%d", n, m), func(b *testing.B) { benchReconcile(b, n, m) })
}

// median is the middle value of vs (the mean of the two middle ones for an even count).
func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// buildOmniroute builds the daemon binary into a temporary directory.
func buildOmniroute(b *testing.B) string {
	out := filepath.Join(b.TempDir(), "omniroute")
	cmd := exec.CommandContext(b.Context(), "go", "build", "-o", out, "../cmd/omniroute")
	msg, err := cmd.CombinedOutput()
	require.NoError(b, err, "go build ./cmd/omniroute: %s", msg)
	return out
}

// The start-up log names the bound address; the configuration it also logs holds port 0.
var httpAddrLog = regexp.MustCompile(`"http_addr":"(127\.0\.0\.1:[1-9][0-9]*)"`)

// metricValue reads one sample of a metric (the sum of its series) from /metrics text; ok
// false when absent.
func metricValue(text, name string) (float64, bool) {
	v, ok := 0.0, false
	for line := range strings.Lines(text) {
		rest, found := strings.CutPrefix(line, name)
		if !found || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(rest[strings.LastIndexByte(rest, ' ')+1:]), 64)
		if err == nil {
			v, ok = v+f, true
		}
	}
	return v, ok
}

// procStatusOf reads a kB field of /proc/<pid>/status (VmHWM, VmRSS) in MiB.
func procStatusOf(b *testing.B, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for line := range strings.Lines(string(data)) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		require.NoError(b, err)
		return kb / 1024
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// daemonProcess is `omniroute run` in its own process, against the org at a login URL.
type daemonProcess struct {
	cmd     *exec.Cmd
	exited  <-chan error
	stderr  *syncbuf.Buffer
	metrics string // its /metrics URL
	hc      *http.Client
	start   time.Time
	stopped bool
}

// startDaemonProcess starts the daemon binary with the bench mapping and waits until it
// logs its HTTP address.
func startDaemonProcess(b *testing.B, bin, loginURL string, env ...string) *daemonProcess {
	d := &daemonProcess{stderr: &syncbuf.Buffer{}, hc: &http.Client{Timeout: 5 * time.Second}}
	d.cmd = exec.Command(bin, "run")
	d.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"OMNIROUTE_SALESFORCE_LOGIN_URL=" + loginURL,
		"OMNIROUTE_SALESFORCE_CLIENT_ID=" + emulator.DemoClientID,
		"OMNIROUTE_SALESFORCE_CLIENT_SECRET=" + emulator.DemoClientSecret,
		"OMNIROUTE_SALESFORCE_USERNAME=" + emulator.DemoUsername,
		"OMNIROUTE_SALESFORCE_PASSWORD=" + emulator.DemoPassword,
		"OMNIROUTE_MAPPING_FILE=" + benchMapping(b),
		"OMNIROUTE_HTTP_ADDR=127.0.0.1:0",
		"OMNIROUTE_LOG_FORMAT=json",
		"OMNIROUTE_LOG_LEVEL=info",
		"OMNIROUTE_SHUTDOWN_TIMEOUT=5s",
	}
	d.cmd.Env = append(d.cmd.Env, env...)
	d.cmd.Stderr = d.stderr
	d.start = time.Now()
	exited, err := startChild(d.cmd)
	require.NoError(b, err)
	d.exited = exited
	b.Cleanup(func() { d.stop(b) })
	d.await(b, time.Minute, "omniroute logs its HTTP address", func() bool {
		m := httpAddrLog.FindStringSubmatch(d.stderr.String())
		if m != nil {
			d.metrics = "http://" + m[1] + "/metrics"
		}
		return m != nil
	})
	return d
}

// startChild starts cmd, a process of a benchmark's (the daemon, the load proxy, the
// gateway's client process), so that it does not outlive the benchmark's process (killed by
// -test.timeout, say): it gets SIGKILL when that process ends (dieWithParent, Linux only).
// Linux sends it when the thread that started the child ends, and the Go runtime ends a
// thread when a goroutine locked to it exits locked: the child is started on a thread locked
// to a goroutine that waits for it, so that no other goroutine can end that thread meanwhile.
// exited receives cmd.Wait's error. Wait runs from the start, and closes cmd's pipes once the
// child has exited: read what is needed from its stdout while it runs (the proxy and the
// client process run until their stdin ends).
func startChild(cmd *exec.Cmd) (exited <-chan error, err error) {
	dieWithParent(cmd)
	started, done := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

// await polls done every 5 ms until it holds; the daemon exiting or within fails b.
func (d *daemonProcess) await(b *testing.B, within time.Duration, what string, done func() bool) {
	deadline := time.Now().Add(within)
	for !done() {
		require.True(b, time.Now().Before(deadline), "%s: not within %v: %s", what, within, d.stderr.String())
		select {
		case err := <-d.exited:
			d.stopped = true
			b.Fatalf("omniroute exited: %v: %s", err, d.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// scrape returns the daemon's /metrics text ("" when it does not answer). It asks for it
// uncompressed: gzip would cost the daemon more than the text does, four times a second
// during a load.
func (d *daemonProcess) scrape() string {
	req, err := http.NewRequest(http.MethodGet, d.metrics, nil)
	if err != nil {
		return ""
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := d.hc.Do(req)
	if err != nil {
		return ""
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return ""
	}
	return string(body)
}

// waitReconciled waits until the daemon's first reconcile is applied and returns its
// /metrics text then.
func (d *daemonProcess) waitReconciled(b *testing.B) string {
	var text string
	d.await(b, 5*time.Minute, "a reconcile applied", func() bool {
		text = d.scrape()
		v, ok := metricValue(text, "omniroute_reconcile_applied_total")
		return ok && v >= 1
	})
	return text
}

// peakGoroutines samples the daemon's go_goroutines every second until stop is called, or
// b's run ends.
func (d *daemonProcess) peakGoroutines(b *testing.B) (stop func() int) {
	var peak atomic.Int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if v, ok := metricValue(d.scrape(), "go_goroutines"); ok && int64(v) > peak.Load() {
				peak.Store(int64(v))
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	halt := sync.OnceFunc(func() {
		close(quit)
		<-done
	})
	// A run that fails before it reads the peak stops the sampler too.
	b.Cleanup(halt)
	return func() int {
		halt()
		require.Positive(b, peak.Load(), "go_goroutines sampled")
		return int(peak.Load())
	}
}

// stop stops the daemon with SIGTERM and checks that it exits cleanly.
func (d *daemonProcess) stop(b *testing.B) {
	if d.stopped {
		return
	}
	d.stopped = true
	require.NoError(b, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.exited:
		require.NoError(b, err, "omniroute stops cleanly: %s", d.stderr.String())
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		b.Fatalf("omniroute did not stop within 30 s: %s", d.stderr.String())
	}
}

func benchReconcile(b *testing.B, n, m int) {
	bin := buildOmniroute(b)
	seed := benchSeed(m)
	em, err := emulator.New(emulator.Options{Seed: seed, RandSeed: 1, MaxEvents: 1000})
	require.NoError(b, err)
	defer em.Close()
	onlineAll(b, em, seed)
	for range n {
		_, err := em.CreateWork(emulator.WorkRequest{Channel: "Chat", Queue: "Support_DE"})
		require.NoError(b, err)
	}
	proxy := &latencyProxy{next: em, rng: mrand.New(mrand.NewPCG(1, 2))}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	var reconcile, ready, rss, hwm, heap []float64
	b.ResetTimer()
	for range b.N {
		d := startDaemonProcess(b, bin, srv.URL)
		text := d.waitReconciled(b)
		b.StopTimer()
		ready = append(ready, time.Since(d.start).Seconds())
		v, ok := metricValue(text, "omniroute_reconcile_duration_seconds_sum")
		require.True(b, ok, "omniroute_reconcile_duration_seconds")
		reconcile = append(reconcile, v)
		// The state after the reconcile: once the snapshot is applied the daemon gives its
		// memory back in the background; nothing else happens meanwhile (the PSRs stay
		// waiting), so a second later is that state.
		time.Sleep(time.Second)
		text = d.scrape()
		rss = append(rss, procStatusOf(b, d.cmd.Process.Pid, "VmRSS"))
		hwm = append(hwm, procStatusOf(b, d.cmd.Process.Pid, "VmHWM"))
		v, ok = metricValue(text, "go_memstats_heap_inuse_bytes")
		require.True(b, ok, "go_memstats_heap_inuse_bytes")
		heap = append(heap, v/(1<<20))
		d.stop(b)
		require.Zero(b, em.Counters().Records["AgentWork"], "the PSRs stay waiting")
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(median(reconcile), "reconcile-s")
	b.ReportMetric(median(ready), "ready-s")
	b.ReportMetric(median(rss), "rss-MiB")
	b.ReportMetric(median(hwm), "peak-rss-MiB")
	b.ReportMetric(median(heap), "heap-inuse-MiB")
	b.Logf("reconcile-s of each start: %.2f", reconcile)
	b.ReportMetric(0, "ns/op") // one op is one daemon start: ns/op says nothing
}

// addedTime is what the daemon added between an event's delivery to it (got) and the arrival
// of the insert carrying it (sent): the time from got to sent during which fewer than slots
// insert calls that do not carry the item (they start before sent) were in flight. The writer
// keeps up to slots calls in flight (OMNIROUTE_WRITER_IN_FLIGHT); an offer that reaches it
// while all of them are (it may have been delivered just before the last left) waits for one
// to end, and that wait is not the daemon's. While a slot is free, every moment is. inserts
// are sorted by start.
func addedTime(inserts []span, got, sent time.Time, slots int) time.Duration {
	if !sent.After(got) {
		return 0
	}
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	// The calls that start before sent, and of them those still in flight after got (no call
	// lasts a minute).
	i, _ := slices.BinarySearchFunc(inserts, sent, func(s span, t time.Time) int {
		if s.start.Before(t) {
			return -1
		}
		return 1
	})
	for j := i - 1; j >= 0 && inserts[j].start.After(got.Add(-time.Minute)); j-- {
		s := inserts[j]
		if !s.end.After(got) {
			continue
		}
		from, to := s.start, s.end
		if from.Before(got) {
			from = got
		}
		if to.After(sent) {
			to = sent
		}
		edges = append(edges, edge{from, +1}, edge{to, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int { return a.at.Compare(b.at) })
	var added time.Duration
	n, from := 0, got
	for _, e := range edges {
		if n < slots {
			added += e.at.Sub(from)
		}
		n += e.d
		from = e.at
	}
	return added + sent.Sub(from)
}

// TestDaemonCallsPerItem: work routed at a slow rate, each item offered and left unanswered,
// costs one REST call per item, the AgentWork insert, and nothing else: the light check of
// waiting PSRs (every 500 ms here) makes no query while nothing has waited that long.
func TestDaemonCallsPerItem(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, func(c *Config) { c.WaitingCheck.Duration = 500 * time.Millisecond })
	e.presence(agent1, "Available")
	time.Sleep(500 * time.Millisecond) // the presence event reaches the router
	rest := func() []emulator.RequestRecord {
		var out []emulator.RequestRecord
		for _, r := range e.em.Requests() {
			if strings.HasPrefix(r.Path, "/services/data/") {
				out = append(out, r)
			}
		}
		return out
	}
	before := len(rest())
	const items = 3
	for range items {
		w := e.work(emulator.WorkRequest{})
		e.waitAW(w.WorkItemID, "Assigned", agent1)
		time.Sleep(700 * time.Millisecond) // more than the light check's period
	}
	calls := rest()[before:]
	var kinds []string
	for _, r := range calls {
		kinds = append(kinds, r.Method+" "+r.Path)
	}
	require.Len(t, calls, items, "one call per item: %v", kinds)
	for _, r := range calls {
		require.Equal(t, http.MethodPost, r.Method, "%v", kinds)
		require.Contains(t, r.Path, "/sobjects/AgentWork", "%v", kinds)
	}
}

// TestAddedTime: the daemon adds the time during which fewer than the writer's slots of calls
// not carrying the item were in flight; the call carrying it (starting at sent) never counts.
func TestAddedTime(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	call := func(from, to int) span { return span{at(from), at(to)} }
	for _, c := range []struct {
		name      string
		inserts   []span
		got, sent int
		slots     int
		want      int
	}{
		{"no call in flight", nil, 0, 5, 1, 5},
		{"one slot, waited for the call in flight", []span{call(-10, 30)}, 0, 35, 1, 5},
		{"one slot, a call before and the carrying call", []span{call(-50, -20), call(35, 135)}, 0, 35, 1, 35},
		{"two slots, one call in flight: all added", []span{call(-10, 30)}, 0, 35, 2, 35},
		{"two slots, both in flight until 30", []span{call(-10, 30), call(-5, 50)}, 0, 52, 2, 22},
		{"two slots, the second starts later", []span{call(-10, 30), call(10, 60), call(52, 150)}, 0, 52, 2, 32},
		{"two slots, three calls overlapping", []span{call(-30, 20), call(-20, 40), call(20, 90)}, 0, 100, 2, 60},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := addedTime(c.inserts, at(c.got), at(c.sent), c.slots)
			require.Equal(t, time.Duration(c.want)*time.Millisecond, got)
		})
	}
}

// yieldCores gives every thread of this process (the emulator and the generator) nice 19, so
// that the daemon and the proxy, at nice 0, take a core from it as soon as they wake. The
// returned function restores nice 0. Linux keeps a nice value per thread, and a thread takes
// its maker's. Restoring needs CAP_SYS_NICE (or RLIMIT_NICE 20), which root in a container
// often lacks (Docker drops it): without it nothing is changed, or the daemon and proxy of the
// next rate, started from this process, would inherit nice 19 too.
func yieldCores(b *testing.B) (restore func()) {
	if !canRenice() {
		b.Log("no CAP_SYS_NICE: the emulator keeps nice 0 (restoring it would need it)")
		return func() {}
	}
	niceThreads(b, 19)
	return func() { niceThreads(b, 0) }
}

// canRenice reports whether the calling thread may take a thread from nice 19 back to 0, as
// Linux decides it (can_nice): RLIMIT_NICE at least 20, or CAP_SYS_NICE in its effective set
// and the initial user namespace (a container's user namespace does not count).
func canRenice() bool {
	const rlimitNice, capSysNice = 13, 23
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(rlimitNice, &rl); err == nil && rl.Cur >= 20 {
		return true
	}
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return false
	}
	var capEff uint64
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			if capEff, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				return false
			}
		}
	}
	uidMap, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && capEff&(1<<capSysNice) != 0 && slices.Equal(strings.Fields(string(uidMap)), []string{"0", "0", "4294967295"})
}

// niceThreads sets the nice value of every thread of this process.
func niceThreads(b *testing.B, n int) {
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(b, err)
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		require.NoError(b, err)
		// A thread may end between the listing and this call.
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil && !errors.Is(err, syscall.ESRCH) {
			b.Fatalf("nice %d for thread %d: %v", n, tid, err)
		}
	}
}
