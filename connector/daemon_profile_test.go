package connector

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loadProfiler profiles the daemon of BenchmarkDaemonLoad when OMNIROUTE_BENCH_PROFILE names a
// directory; a nil *loadProfiler (the variable unset) does nothing. The daemon's binary gets a
// pprof listener (a file added to cmd/omniroute by `go build -overlay`, so the product has
// none), and its GC is traced (GODEBUG=gctrace=1). Per rate the directory receives:
//   - rate=N.cpu.pprof: a CPU profile of the daemon over the middle half of the load;
//   - rate=N.trace: an execution trace of the daemon (`go tool trace`) over a third of it, at
//     most 20 s, from 7/12 in (35 s of 60: the checks of offers timed out run then);
//   - rate=N.calls.tsv: every REST call at the proxy: kind, arrival and end (ms from the
//     load's start);
//   - rate=N.allocs.pprof: the daemon's allocations from its start to 3/4 of the load;
//   - rate=N.stderr: the daemon's log and GC trace;
//   - rate=N.items.tsv: every item, in the order of its delivery to the daemon: PSR, delivered
//     and sent (ms from the load's start), and added (ms).
type loadProfiler struct {
	dir   string
	mu    sync.Mutex
	items []profiledItem
}

type profiledItem struct {
	psr              string
	got, sent, added time.Duration
}

func newLoadProfiler(b *testing.B, dir string) *loadProfiler {
	if dir == "" {
		return nil
	}
	require.NoError(b, os.MkdirAll(dir, 0o755))
	return &loadProfiler{dir: dir}
}

// pprofOverlay is the file the profiled build adds to cmd/omniroute.
const pprofOverlay = `package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(os.Stderr, "bench pprof on %s\n", ln.Addr())
	go func() { _ = http.Serve(ln, nil) }()
}
`

var pprofAddrLog = regexp.MustCompile(`bench pprof on (127\.0\.0\.1:[0-9]+)`)

// build builds the daemon binary, with the pprof listener when profiling.
func (p *loadProfiler) build(b *testing.B) string {
	if p == nil {
		return buildOmniroute(b)
	}
	tmp := b.TempDir()
	src := filepath.Join(tmp, "pprof.go")
	require.NoError(b, os.WriteFile(src, []byte(pprofOverlay), 0o600))
	target, err := filepath.Abs("../cmd/omniroute/zz_bench_pprof.go")
	require.NoError(b, err)
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {target: src}})
	require.NoError(b, err)
	ov := filepath.Join(tmp, "overlay.json")
	require.NoError(b, os.WriteFile(ov, overlay, 0o600))
	out := filepath.Join(tmp, "omniroute")
	msg, err := exec.CommandContext(b.Context(), "go", "build", "-overlay", ov, "-o", out, "../cmd/omniroute").CombinedOutput()
	require.NoError(b, err, "go build ./cmd/omniroute: %s", msg)
	return out
}

// env is what the daemon's environment gets.
func (p *loadProfiler) env() []string {
	if p == nil {
		return nil
	}
	return []string{"GODEBUG=gctrace=1"}
}

// during starts the profiles of a load of length load that starts now; the function it
// returns waits for them.
func (p *loadProfiler) during(b *testing.B, d *daemonProcess, name string, load time.Duration) (wait func()) {
	if p == nil {
		return func() {}
	}
	m := pprofAddrLog.FindStringSubmatch(d.stderr.String())
	require.NotNil(b, m, "the profiled daemon logs its pprof address")
	base := "http://" + m[1] + "/debug/pprof/"
	secs := func(d time.Duration) int { return max(int(d/time.Second), 1) }
	// A run that ends early (b failed) cancels ctx: the fetches not done give up, and report
	// nothing then.
	ctx := b.Context()
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait)
	fetch := func(after time.Duration, url, file string) {
		wg.Go(func() {
			select {
			case <-time.After(after):
			case <-ctx.Done():
				return
			}
			fail := func(format string, args ...any) {
				if ctx.Err() == nil {
					b.Errorf(format, args...)
				}
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				fail("%s: %v", url, err)
				return
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				fail("%s: %v", url, err)
				return
			}
			defer func() { _ = resp.Body.Close() }()
			data, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				fail("%s: %d %v", url, resp.StatusCode, err)
				return
			}
			if err := os.WriteFile(filepath.Join(p.dir, name+file), data, 0o644); err != nil {
				b.Error(err)
			}
		})
	}
	fetch(load/4, fmt.Sprintf("%sprofile?seconds=%d", base, secs(load/2)), ".cpu.pprof")
	fetch(load*3/4, base+"allocs", ".allocs.pprof")
	// Offers time out from 30 s (the mapping's offer timeout): their checks begin.
	fetch(load*7/12, fmt.Sprintf("%strace?seconds=%d", base, secs(min(load/3, 20*time.Second))), ".trace")
	return wg.Wait
}

// item notes one item's times.
func (p *loadProfiler) item(psr string, got, sent, added time.Duration) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.items = append(p.items, profiledItem{psr, got, sent, added})
	p.mu.Unlock()
}

// saveItems writes the items noted (and forgets them) and the REST calls of a load that
// started at start.
func (p *loadProfiler) saveItems(b *testing.B, name string, start time.Time, calls []restCall) {
	p.mu.Lock()
	items := p.items
	p.items = nil
	p.mu.Unlock()
	slices.SortFunc(items, func(x, y profiledItem) int { return int(x.got - y.got) })
	var sb strings.Builder
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, it := range items {
		fmt.Fprintf(&sb, "%s\t%.3f\t%.3f\t%.3f\n", it.psr, ms(it.got), ms(it.sent), ms(it.added))
	}
	require.NoError(b, os.WriteFile(filepath.Join(p.dir, name+".items.tsv"), []byte(sb.String()), 0o644))
	sb.Reset()
	slices.SortFunc(calls, func(x, y restCall) int { return x.start.Compare(y.start) })
	for _, c := range calls {
		fmt.Fprintf(&sb, "%s\t%.3f\t%.3f\n", c.kind, ms(c.start.Sub(start)), ms(c.end.Sub(start)))
	}
	require.NoError(b, os.WriteFile(filepath.Join(p.dir, name+".calls.tsv"), []byte(sb.String()), 0o644))
	// The load's start on the wall clock (Unix ns), to line the files up with the trace's
	// clock snapshot.
	require.NoError(b, os.WriteFile(filepath.Join(p.dir, name+".start"), []byte(strconv.FormatInt(start.UnixNano(), 10)+"\n"), 0o644))
}

// saveLog writes the daemon's stderr.
func (p *loadProfiler) saveLog(b *testing.B, d *daemonProcess, name string) {
	if p == nil {
		return
	}
	require.NoError(b, os.WriteFile(filepath.Join(p.dir, name+".stderr"), []byte(d.stderr.String()), 0o644))
}
