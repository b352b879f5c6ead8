package salesforce

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

// ingestEvents is how many PSR change events each consumer replays per
// iteration of BenchmarkIngest.
const ingestEvents = 5000

// BenchmarkIngest measures end-to-end ingest from the emulator over
// loopback: our Stream and jsforce's streaming client (a Node process,
// test/ingest/jsforce-consumer.js) each replay the same retained
// PendingServiceRouting change events from -2, one after the other in each
// iteration. It reports both rates and their ratio (ours / jsforce).
//
// emulator=in-process serves the emulator from the benchmark's own
// process; emulator=process runs cmd/sfemulator as a separate process,
// so neither client shares a process with the server.
func BenchmarkIngest(b *testing.B) {
	b.Run("emulator=in-process", func(b *testing.B) {
		o := newOrg(b, nil)
		for range ingestEvents {
			_, err := o.Emu.CreateWork(emulator.WorkRequest{Channel: "Case", Queue: "Support_EN", Subject: "ingest"})
			require.NoError(b, err)
		}
		ts, err := NewTokenSource(o.tokenOptions(b, GrantJWTBearer))
		require.NoError(b, err)
		runIngest(b, o.Srv.Client(), ts, false)
	})
	b.Run("emulator=process", func(b *testing.B) {
		url, control := startEmulatorProcess(b)
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		b.Cleanup(hc.CloseIdleConnections)
		for range ingestEvents {
			req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, url+"/emulator/v1/work",
				strings.NewReader(`{"channel":"Case","queue":"Support_EN","subject":"ingest"}`))
			require.NoError(b, err)
			req.Header.Set("Authorization", "Bearer "+control)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			require.NoError(b, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			require.Equal(b, http.StatusCreated, resp.StatusCode)
		}
		key, err := os.ReadFile("emulator/testdata/demo-jwt-private-key.pem")
		require.NoError(b, err)
		ts, err := NewTokenSource(TokenOptions{
			Grant: GrantJWTBearer, LoginURL: url, HTTPClient: hc, ClientID: emulator.DemoClientID,
			Username: emulator.DemoUsername, PrivateKey: key, Audience: "https://login.salesforce.com",
		})
		require.NoError(b, err)
		runIngest(b, hc, ts, true)
	})
}

// startEmulatorProcess builds and starts cmd/sfemulator on a free
// loopback port and returns its URL and control token.
func startEmulatorProcess(b *testing.B) (url, control string) {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "sfemulator")
	build := exec.CommandContext(b.Context(), "go", "build", "-o", bin, "../cmd/sfemulator")
	out, err := build.CombinedOutput()
	require.NoError(b, err, "%s", out)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--addr", "127.0.0.1:0", "--seed", "demo", "--log-level", "error")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		if u, ok := strings.CutPrefix(line, "sfemulator listening on "); ok {
			url = u
		}
		if c, ok := strings.CutPrefix(line, "control_token: "); ok {
			control = c
			break
		}
	}
	require.NotEmpty(b, url, "sfemulator printed no URL")
	require.NotEmpty(b, control, "sfemulator printed no control token")
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return url, control
}

// runIngest runs the measured loop against the org behind ts. With
// cpu, the emulator runs elsewhere, so this process's CPU time is our
// client's: it is reported per event beside Node's own.
func runIngest(b *testing.B, hc *http.Client, ts *TokenSource, cpu bool) {
	tok, err := ts.Token(b.Context())
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	node := exec.CommandContext(ctx, "node", "../test/ingest/jsforce-consumer.js")
	node.Env = append(os.Environ(),
		"INGEST_INSTANCE_URL="+tok.InstanceURL, "INGEST_ACCESS_TOKEN="+tok.AccessToken, "INGEST_CHANNEL="+psrChannel,
		"INGEST_COUNT="+strconv.Itoa(ingestEvents), "INGEST_API_VERSION=63.0")
	var nodeErr bytes.Buffer
	node.Stderr = &nodeErr
	stdin, err := node.StdinPipe()
	require.NoError(b, err)
	stdout, err := node.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, node.Start())
	defer func() {
		_ = stdin.Close()
		_ = node.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	require.True(b, lines.Scan(), "jsforce consumer did not start: %s", &nodeErr)
	require.Equal(b, "ready", lines.Text())

	var ours, theirs, oursCPU, theirsCPU time.Duration
	b.ResetTimer()
	for b.Loop() {
		cpu0 := processCPU(b)
		ours += ingestOurs(b, hc, ts)
		oursCPU += processCPU(b) - cpu0
		wall, c := ingestJSForce(b, stdin, lines, &nodeErr)
		theirs += wall
		theirsCPU += c
	}
	b.StopTimer()
	n := float64(b.N) * ingestEvents
	b.ReportMetric(n/ours.Seconds(), "ours-events/s")
	b.ReportMetric(n/theirs.Seconds(), "jsforce-events/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio")
	if cpu {
		b.ReportMetric(float64(oursCPU.Microseconds())/n, "ours-cpu-µs/event")
		b.ReportMetric(float64(theirsCPU.Microseconds())/n, "jsforce-cpu-µs/event")
	}
	b.ReportMetric(0, "ns/op")
}

// processCPU is this process's user+system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ingestOurs(b *testing.B, hc *http.Client, ts *TokenSource) time.Duration {
	s, err := NewStream(StreamOptions{Tokens: ts, HTTPClient: hc, Channels: []string{psrChannel}, StartFrom: ReplayAll})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	n := 0
	var last int64
	var elapsed time.Duration
	start := time.Now()
	err = s.Run(ctx, func(_ context.Context, m Message) error {
		if m.Event == nil || m.Event.ReplayID <= last || m.Event.Entity != "PendingServiceRouting" {
			b.Fatalf("unexpected message %+v", m)
		}
		last = m.Event.ReplayID
		n++
		if n == ingestEvents {
			elapsed = time.Since(start)
			cancel()
		}
		return nil
	})
	require.NoError(b, err)
	require.Equal(b, ingestEvents, n)
	return elapsed
}

func ingestJSForce(b *testing.B, stdin io.Writer, lines *bufio.Scanner, nodeErr *bytes.Buffer) (wall, cpu time.Duration) {
	_, err := io.WriteString(stdin, "run\n")
	require.NoError(b, err)
	require.True(b, lines.Scan(), "jsforce consumer stopped: %s", nodeErr)
	var r struct {
		Events     int     `json:"events"`
		Seconds    float64 `json:"seconds"`
		CPUSeconds float64 `json:"cpuSeconds"`
	}
	require.NoError(b, json.Unmarshal(lines.Bytes(), &r))
	require.Equal(b, ingestEvents, r.Events)
	return time.Duration(r.Seconds * float64(time.Second)), time.Duration(r.CPUSeconds * float64(time.Second))
}
