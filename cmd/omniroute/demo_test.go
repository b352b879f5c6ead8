package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestDemoRoutesAndStopsCleanly runs the demo at a fast rate: the banner gives the metrics URL
// and an explain command with a generated admin token, progress lines show work routed within
// seconds (declines and push timeouts included), and cancelling (Ctrl-C) ends it with exit 0 and
// no goroutine left behind.
func TestDemoRoutesAndStopsCleanly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- demoCommand(ctx, []string{
			"--mapping", "../../docs/examples/demo-mapping.yaml", "--rate", "20/s",
			"--accept-after", "200ms", "--close-after", "1s", "--decline-rate", "0.3", "--every", "500ms",
		}, pw, io.Discard)
		_ = pw.Close()
	}()

	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var metricsURL, token, pad string
	routed, declines := 0, 0
	progress := regexp.MustCompile(`created (\d+)  routed (\d+)  waiting (\d+)  p95 wait \S+  declines re-routed (\d+)  timeouts re-routed \d+  API calls/routed \d+\.\d\d$`)
	deadline := time.After(30 * time.Second)
	for routed < 20 || declines == 0 || metricsURL == "" || token == "" || pad == "" {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "the demo stopped early")
			if m := regexp.MustCompile(`curl -s (http://127\.0\.0\.1:\d+/metrics)`).FindStringSubmatch(line); m != nil {
				metricsURL = m[1]
			}
			if m := regexp.MustCompile(`Bearer ([0-9a-f]+)' http://127\.0\.0\.1:\d+/v1/work/`).FindStringSubmatch(line); m != nil {
				token = m[1]
			}
			if m := regexp.MustCompile(`^  agent pad  (\S+)$`).FindStringSubmatch(line); m != nil {
				pad = m[1]
			}
			if m := progress.FindStringSubmatch(line); m != nil {
				routed, _ = strconv.Atoi(m[2])
				declines, _ = strconv.Atoi(m[4])
				if routed > 0 {
					require.Less(t, time.Since(start), 10*time.Second, "routing is visible within 10 s: %s", line)
				}
			}
		case <-deadline:
			t.Fatalf("after 30 s: routed %d, declines re-routed %d, metrics %q", routed, declines, metricsURL)
		}
	}
	require.GreaterOrEqual(t, len(token), 16, "the admin token is at least 16 characters")

	// The agent link opens the protocol doc as an agent: its fragment (never sent to a server)
	// holds the agent's User Id and a demo token for that user.
	link, err := url.Parse(pad)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(link.Path, "docs/agent-protocol.md"), pad)
	frag, err := url.ParseQuery(link.Fragment)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(frag.Get("agent"), "005"), pad)
	parts := strings.Split(frag.Get("token"), ".")
	require.Len(t, parts, 3, "a JWT")
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	require.Contains(t, string(claims), `"sub":"`+frag.Get("agent")+`"`)

	// The printed /metrics URL serves the daemon's metrics.
	resp, err := http.Get(metricsURL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "omniroute_routing_")
	http.DefaultClient.CloseIdleConnections()

	cancel()
	var rest []string
	for line := range lines {
		rest = append(rest, line)
	}
	select {
	case code := <-done:
		require.Equal(t, exitOK, code)
	case <-time.After(15 * time.Second):
		t.Fatal("the demo did not stop within 15 s of Ctrl-C")
	}
	require.Contains(t, strings.Join(rest, "\n"), "omniroute demo stopped")
}

func TestDemoRejectsBadFlags(t *testing.T) {
	var stderr strings.Builder
	code := demoCommand(t.Context(), []string{"--rate", "fast", "--agents", "30", "--decline-rate", "2"}, io.Discard, &stderr)
	require.Equal(t, exitConfig, code)
	for _, want := range []string{"--rate", "--agents", "--decline-rate"} {
		require.Contains(t, stderr.String(), want)
	}
}

func TestDemoNamesAMissingMapping(t *testing.T) {
	var stderr strings.Builder
	code := demoCommand(t.Context(), []string{"--mapping", "no-such-mapping.yaml"}, io.Discard, &stderr)
	require.Equal(t, exitConfig, code)
	require.Contains(t, stderr.String(), "no-such-mapping.yaml")
	require.Contains(t, stderr.String(), "--mapping")
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"2/s": 2, "30/m": 0.5, "3600/h": 1, "5": 5, " 1.5/s ": 1.5} {
		got, err := parseRate(in)
		require.NoError(t, err, in)
		require.InDelta(t, want, got, 1e-9, in)
	}
	for _, in := range []string{"", "0/s", "-1", "2/d", "x/s", "Inf"} {
		_, err := parseRate(in)
		require.Error(t, err, in)
	}
}
