package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// blackBox is the two binaries under test: sfemulator --seed demo and omniroute run.
type blackBox struct {
	t     *testing.T
	omni  string
	url   string
	token string
	state string
	cmd   *exec.Cmd
	logs  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// buildBinaries builds sfemulator and omniroute into a temporary directory.
func buildBinaries(t *testing.T) (emu, omni string) {
	t.Helper()
	dir := t.TempDir()
	emu, omni = filepath.Join(dir, "sfemulator"), filepath.Join(dir, "omniroute")
	for bin, pkg := range map[string]string{emu: "../sfemulator", omni: "."} {
		build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, pkg)
		build.Stderr = os.Stderr
		require.NoError(t, build.Run())
	}
	return emu, omni
}

// startEmulator starts `sfemulator --addr 127.0.0.1:0 --seed demo` and reads its banner.
func startEmulator(t *testing.T, bin string) (url, control string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, "--addr", "127.0.0.1:0", "--seed", "demo", "--log-level", "warn")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if u, ok := strings.CutPrefix(line, "sfemulator listening on "); ok {
			url = u
		}
		if c, ok := strings.CutPrefix(line, "control_token: "); ok {
			control = c
			break
		}
	}
	require.NotEmpty(t, url)
	require.NotEmpty(t, control)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return url, control
}

// start runs omniroute against the emulator and waits until it is ready.
func (b *blackBox) start() {
	b.t.Helper()
	b.logs = &lockedBuffer{}
	b.cmd = exec.CommandContext(b.t.Context(), b.omni, "run")
	b.cmd.Env = append(os.Environ(),
		"OMNIROUTE_SALESFORCE_LOGIN_URL="+b.url,
		"OMNIROUTE_SALESFORCE_CLIENT_ID=omniroute-demo",
		"OMNIROUTE_SALESFORCE_CLIENT_SECRET=omniroute-demo-secret",
		"OMNIROUTE_MAPPING_FILE=../../docs/examples/demo-mapping.yaml",
		"OMNIROUTE_HTTP_ADDR=127.0.0.1:0",
		"OMNIROUTE_STATE_DIR="+b.state,
		"OMNIROUTE_WAITING_CHECK=1s",
		"OMNIROUTE_SHUTDOWN_TIMEOUT=5s",
	)
	b.cmd.Stderr = b.logs
	require.NoError(b.t, b.cmd.Start())
	require.Eventually(b.t, func() bool { return strings.Contains(b.logs.String(), "ready: reconcile applied, routing") },
		30*time.Second, 20*time.Millisecond, "omniroute never became ready:\n%s", b.logs.String())
}

// control calls the emulator's control API.
func (b *blackBox) control(method, path string, body any, out any) {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(b.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.url+"/emulator/v1/"+path, rd)
	require.NoError(b.t, err)
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	require.Less(b.t, resp.StatusCode, 300, "%s %s: %s", method, path, data)
	if out != nil {
		require.NoError(b.t, json.Unmarshal(data, out))
	}
}

type agentWork struct {
	ID, WorkItemID, PSRID, Status string
	History                       []struct{ Status string }
}

func (a *agentWork) UnmarshalJSON(b []byte) error {
	var v struct {
		ID         string `json:"id"`
		WorkItemID string `json:"workItemId"`
		PSRID      string `json:"psrId"`
		Status     string `json:"status"`
		History    []struct {
			Status string `json:"status"`
		} `json:"history"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	a.ID, a.WorkItemID, a.PSRID, a.Status = v.ID, v.WorkItemID, v.PSRID, v.Status
	for _, h := range v.History {
		a.History = append(a.History, struct{ Status string }{h.Status})
	}
	return nil
}

// TestBlackBox starts the two binaries, sfemulator --seed demo and omniroute run with the
// OMNIROUTE_* variables and docs/examples/demo-mapping.yaml, logs the 24 demo agents in,
// lets simulated agents accept (after 100 ms), decline (15%) and time out (two agents never
// answer), and creates 200 work items across the three queues through the control API. The
// daemon is SIGKILLed mid-burst and started again on the same state directory. Every work
// item must end with exactly one accepted AgentWork for its PSR, and no PSR may ever have two
// open AgentWorks.
func TestBlackBox(t *testing.T) {
	noOrg(t)
	emu, omni := buildBinaries(t)
	b := &blackBox{t: t, omni: omni, state: t.TempDir()}
	b.url, b.token = startEmulator(t, emu)
	b.start()
	var auto []string
	for n := 1; n <= 24; n++ {
		user := fmt.Sprintf("agent%02d@omniroute.demo", n)
		b.control(http.MethodPost, "agents/"+user+"/presence", map[string]string{"status": "Available"}, nil)
		if n != 22 && n != 24 {
			auto = append(auto, user)
		}
	}
	b.control(http.MethodPost, "auto", map[string]any{"enabled": true, "acceptAfterMs": 100, "declineRate": 0.15,
		"closeAfterMs": 400, "users": auto}, nil)

	queues := []string{"Support_EN", "Support_DE", "Billing"}
	channels := []string{"Chat", "Case", "Messaging"}
	var items []string
	for i := range 200 {
		if i == 100 {
			// SIGKILL mid-burst, then start again on the same checkpoints.
			require.NoError(t, b.cmd.Process.Kill())
			_ = b.cmd.Wait()
			b.start()
		}
		var res struct {
			WorkItemID string `json:"workItemId"`
			PSRID      string `json:"psrId"`
		}
		b.control(http.MethodPost, "work", map[string]any{"channel": channels[i%3], "queue": queues[(i/3)%3], "subject": "bb"}, &res)
		require.NotEmpty(t, res.PSRID)
		items = append(items, res.WorkItemID)
		time.Sleep(5 * time.Millisecond)
	}
	defer func() {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		_ = b.cmd.Wait()
	}()

	accepted := func(aws []agentWork) map[string]int {
		n := map[string]int{}
		for _, aw := range aws {
			if slices.ContainsFunc(aw.History, func(h struct{ Status string }) bool { return h.Status == "Opened" }) {
				n[aw.WorkItemID]++
			}
		}
		return n
	}
	var aws []agentWork
	deadline := time.Now().Add(90 * time.Second)
	done := func() bool {
		aws = nil
		b.control(http.MethodGet, "agentwork", nil, &aws)
		n := accepted(aws)
		for _, w := range items {
			if n[w] == 0 {
				return false
			}
		}
		return true
	}
	for !done() && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	if !done() {
		n := accepted(aws)
		for _, w := range items {
			if n[w] == 0 {
				var sts []string
				for _, aw := range aws {
					if aw.WorkItemID == w {
						sts = append(sts, aw.PSRID+":"+aw.Status)
					}
				}
				t.Logf("not accepted: %s %v", w, sts)
			}
		}
		for l := range strings.SplitSeq(b.logs.String(), "\n") {
			if !strings.Contains(l, "level=DEBUG") {
				t.Log(l)
			}
		}
		t.Fatal("not every work item was accepted within 90 s")
	}
	n := accepted(aws)
	for _, w := range items {
		require.Equal(t, 1, n[w], "work %s has %d accepted AgentWorks", w, n[w])
	}

	// No PSR ever had two open AgentWorks: walk the history.
	open := map[string]map[string]bool{}
	next := "history?after=0&limit=10000"
	for next != "" {
		var page struct {
			Entries []struct {
				Entity string         `json:"entity"`
				ID     string         `json:"id"`
				Fields map[string]any `json:"fields"`
			} `json:"entries"`
			Done bool   `json:"done"`
			Next string `json:"next"`
		}
		b.control(http.MethodGet, next, nil, &page)
		for _, h := range page.Entries {
			if h.Entity != "AgentWork" {
				continue
			}
			psr, _ := h.Fields["PendingServiceRoutingId"].(string)
			st, _ := h.Fields["Status"].(string)
			if psr == "" {
				continue
			}
			if open[psr] == nil {
				open[psr] = map[string]bool{}
			}
			if st == "Assigned" || st == "Opened" {
				open[psr][h.ID] = true
			} else {
				delete(open[psr], h.ID)
			}
			require.LessOrEqual(t, len(open[psr]), 1, "PSR %s has two open AgentWorks", psr)
		}
		next = ""
		if !page.Done && page.Next != "" {
			next = strings.TrimPrefix(page.Next, "/emulator/v1/")
		}
	}
	require.NotContains(t, b.logs.String(), "omniroute-demo-secret")
}
