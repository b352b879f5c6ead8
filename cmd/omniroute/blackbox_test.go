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
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/internal/syncbuf"
)

// The black-box tests run the two binaries as an operator does: `sfemulator --seed demo` and
// `omniroute run` configured by OMNIROUTE_* variables with docs/examples/demo-mapping.yaml,
// over loopback, and judge the outcome only from the org's own record
// (GET /emulator/v1/history).
func TestBlackBox(t *testing.T) {
	bin := t.TempDir()
	build := func(pkg, name string) string {
		out := filepath.Join(bin, name)
		cmd := exec.CommandContext(t.Context(), "go", "build", "-o", out, pkg)
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build %s: %s", pkg, b)
		return out
	}
	bins := blackBoxBinaries{emulator: build("../sfemulator", "sfemulator"), omniroute: build(".", "omniroute")}

	// 200 work items; simulated agents accept, decline, and two never answer so their offers end
	// on the org's push timeout (30 s in the demo org) and are routed again.
	t.Run("AcceptsDeclinesAndPushTimeouts", func(t *testing.T) {
		t.Parallel()
		org := startEmulator(t, bins)
		org.agentsOnline(t, 24)
		silent := []string{"agent23@omniroute.demo", "agent24@omniroute.demo"}
		org.auto(t, 0.2, silent)
		d := startOmniroute(t, bins, org, t.TempDir())
		d.waitReady(t)
		items := org.createWork(t, 0, 200)
		// Once each silent agent holds an offer, they answer too (from the next offer on), so
		// every item meets at most one push timeout and the test stays short.
		require.Eventually(t, func() bool {
			held := map[string]bool{}
			for _, aw := range org.agentWorks(t) {
				held[aw.Username] = true
			}
			return held[silent[0]] && held[silent[1]]
		}, 30*time.Second, 50*time.Millisecond, "the silent agents are offered work")
		org.auto(t, 0.2, nil)
		org.waitRouted(t, items, 75*time.Second)
		h := org.checkHistory(t, items)
		require.Positive(t, h.declined, "some offers were declined")
		require.Positive(t, h.timedOut, "some offers ended on the push timeout")
		t.Logf("200 items: %d AgentWork, %d declined, %d push timeouts", h.agentWorks, h.declined, h.timedOut)
	})

	// omniroute is killed (SIGKILL) mid-burst and restarted with the same state directory:
	// nothing is lost (every item is accepted once) and nothing is duplicated (never two open
	// AgentWork for one PSR).
	t.Run("SIGKILLMidBurst", func(t *testing.T) {
		t.Parallel()
		org := startEmulator(t, bins)
		org.agentsOnline(t, 24)
		org.auto(t, 0.2, nil)
		state := t.TempDir()
		d := startOmniroute(t, bins, org, state)
		d.waitReady(t)
		items := org.createWork(t, 0, 100)
		// Killed as soon as the first offers are out: writes in flight, events unapplied, replay
		// ids uncommitted.
		require.Eventually(t, func() bool { return org.agentWorkCount(t) > 0 }, 30*time.Second, 2*time.Millisecond)
		d.kill(t)
		first := d
		accepted := len(org.acceptedItems(t))
		t.Logf("killed with %d AgentWork made and %d items accepted", org.agentWorkCount(t), accepted)
		require.Less(t, accepted, 100, "killed mid-burst, with work left to route")
		items = append(items, org.createWork(t, 100, 100)...)
		d = startOmniroute(t, bins, org, state)
		d.waitReady(t)
		org.waitRouted(t, items, 60*time.Second)
		h := org.checkHistory(t, items)
		t.Logf("200 items across a SIGKILL: %d AgentWork, %d declined", h.agentWorks, h.declined)
		for _, secret := range []string{org.secret, bbAdminToken} {
			require.NotContains(t, d.stderr.String()+first.stderr.String(), secret, "secrets never reach the logs")
		}
	})
}

type blackBoxBinaries struct{ emulator, omniroute string }

// startProcess starts a binary whose process the test stops (SIGTERM, then SIGKILL) at its end.
// A *io.PipeWriter stdout is closed when the process exits.
func startProcess(t *testing.T, name string, env []string, stdout io.Writer, stderr *syncbuf.Buffer, args ...string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		if pw, ok := stdout.(*io.PipeWriter); ok {
			_ = pw.Close()
		}
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s stderr (last 8 KiB):\n%s", filepath.Base(name), tail(stderr.String(), 8<<10))
		}
	})
	return cmd, exited
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// cleanEnv is the environment without OMNIROUTE_* variables (omniroute refuses unknown ones).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OMNIROUTE_") && !strings.HasPrefix(kv, "SFEMULATOR_") {
			env = append(env, kv)
		}
	}
	return env
}

// bbOrg is a running sfemulator.
type bbOrg struct {
	url, token, secret string
	client             *http.Client
}

func startEmulator(t *testing.T, bins blackBoxBinaries) *bbOrg {
	t.Helper()
	pr, pw := io.Pipe()
	stderr := &syncbuf.Buffer{}
	_, _ = startProcess(t, bins.emulator, cleanEnv(), pw, stderr, "--addr", "127.0.0.1:0", "--seed", "demo", "--log-level", "warn")
	banner := map[string]string{}
	got := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		done := false
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ": "); ok && !done {
				banner[k] = v
				if k == "login_url" { // the banner's last line but one
					done = true
					close(got)
				}
			}
		}
	}()
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatalf("sfemulator printed no banner: %s", stderr.String())
	}
	for _, k := range []string{"login_url", "client_id", "client_secret", "control_token"} {
		require.NotEmpty(t, banner[k], k)
	}
	require.Equal(t, "omniroute-demo", banner["client_id"])
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	org := &bbOrg{url: banner["login_url"], token: banner["control_token"], client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	org.secret = banner["client_secret"]
	return org
}

// call is one control-API request; out, when not nil, receives the JSON answer.
func (o *bbOrg) call(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, o.url+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+o.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.client.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Less(t, resp.StatusCode, 300, "%s %s: %s", method, path, b)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out), "%s %s: %s", method, path, b)
	}
}

func (o *bbOrg) agentsOnline(t *testing.T, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		o.call(t, http.MethodPost, fmt.Sprintf("/emulator/v1/agents/agent%02d@omniroute.demo/presence", i), map[string]string{"status": "Available"}, nil)
	}
}

// auto makes every agent but the silent ones answer their offers after 100 ms, declining
// with probability declineRate, and close accepted work after 500 ms.
func (o *bbOrg) auto(t *testing.T, declineRate float64, silent []string) {
	t.Helper()
	var users []string
	for i := 1; i <= 24; i++ {
		u := fmt.Sprintf("agent%02d@omniroute.demo", i)
		if !slices.Contains(silent, u) {
			users = append(users, u)
		}
	}
	o.call(t, http.MethodPost, "/emulator/v1/auto", map[string]any{
		"enabled": true, "acceptAfterMs": 100, "declineRate": declineRate, "closeAfterMs": 500, "users": users,
	}, nil)
}

// bbItem is one work item created through the control API.
type bbItem struct {
	WorkItemID string `json:"workItemId"`
	PSRID      string `json:"psrId"`
	Channel    string `json:"-"`
	Queue      string `json:"-"`
}

// createWork creates n items (numbered from first): chats, messaging sessions and cases across
// the three queues.
func (o *bbOrg) createWork(t *testing.T, first, n int) []bbItem {
	t.Helper()
	items := make([]bbItem, 0, n)
	for i := first; i < first+n; i++ {
		var it bbItem
		o.call(t, http.MethodPost, "/emulator/v1/work", map[string]string{
			"channel": demoChannel(i),
			"queue":   demoQueue(i),
			"subject": fmt.Sprintf("black box %d", i),
		}, &it)
		require.NotEmpty(t, it.PSRID, "item %d has a PSR", i)
		it.Channel, it.Queue = demoChannel(i), demoQueue(i)
		items = append(items, it)
	}
	return items
}

type bbAgentWork struct {
	ID         string `json:"id"`
	WorkItemID string `json:"workItemId"`
	Username   string `json:"username"`
	History    []struct {
		Status string `json:"status"`
	} `json:"history"`
}

func (o *bbOrg) agentWorks(t *testing.T) []bbAgentWork {
	t.Helper()
	var aws []bbAgentWork
	o.call(t, http.MethodGet, "/emulator/v1/agentwork", nil, &aws)
	return aws
}

func (o *bbOrg) agentWorkCount(t *testing.T) int { return len(o.agentWorks(t)) }

// acceptedItems are the work items with an accepted (Opened) AgentWork.
func (o *bbOrg) acceptedItems(t *testing.T) map[string]bool {
	t.Helper()
	accepted := map[string]bool{}
	for _, aw := range o.agentWorks(t) {
		for _, h := range aw.History {
			if h.Status == "Opened" {
				accepted[aw.WorkItemID] = true
			}
		}
	}
	return accepted
}

// waitRouted waits until every item has an accepted (Opened) AgentWork.
func (o *bbOrg) waitRouted(t *testing.T, items []bbItem, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		accepted := o.acceptedItems(t)
		var missing []string
		for _, it := range items {
			if !accepted[it.WorkItemID] {
				missing = append(missing, fmt.Sprintf("%s %s in %s (PSR %s)", it.Channel, it.WorkItemID, it.Queue, it.PSRID))
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d items were never accepted, e.g. %v\n%s", within, len(missing), len(items),
				missing[:min(5, len(missing))], o.explain(t, items, accepted))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// explain is the history of the first items never accepted: every change of their PSR and
// AgentWork, for the failure message.
func (o *bbOrg) explain(t *testing.T, items []bbItem, accepted map[string]bool) string {
	t.Helper()
	psrs := map[string]bool{}
	for _, it := range items {
		if !accepted[it.WorkItemID] && len(psrs) < 3 {
			psrs[it.PSRID] = true
		}
	}
	var b strings.Builder
	for _, e := range o.history(t) {
		psr, _ := e.Fields["PendingServiceRoutingId"].(string)
		if psrs[e.ID] || psrs[psr] {
			fmt.Fprintf(&b, "seq %d %s %s %s %s status=%v pushed=%v user=%v declined=%v\n", e.Seq, e.Time.Format("15:04:05.000"),
				e.Entity, e.ID, e.ChangeType, e.Fields["Status"], e.Fields["IsPushed"], e.Fields["UserId"], e.Fields["LastDeclinedAgentSession"])
		}
	}
	return b.String()
}

type bbHistoryEntry struct {
	Time       time.Time      `json:"time"`
	Seq        int64          `json:"seq"`
	Entity     string         `json:"entity"`
	ID         string         `json:"id"`
	ChangeType string         `json:"changeType"`
	Fields     map[string]any `json:"fields"`
}

// history reads the org's whole history, page by page.
func (o *bbOrg) history(t *testing.T) []bbHistoryEntry {
	t.Helper()
	var all []bbHistoryEntry
	path := "/emulator/v1/history?after=0&limit=500"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10_000)
		var page struct {
			Entries []bbHistoryEntry `json:"entries"`
			Done    bool             `json:"done"`
			Next    string           `json:"next"`
		}
		o.call(t, http.MethodGet, path, nil, &page)
		for _, e := range page.Entries {
			require.Equal(t, int64(len(all)+1), e.Seq, "history numbered without gaps")
			all = append(all, e)
		}
		if page.Done {
			return all
		}
		require.NotEmpty(t, page.Next)
		path = page.Next
	}
}

type historyFigures struct{ agentWorks, declined, timedOut int }

// checkHistory replays the org's history: no PSR ever has two open (Assigned or Opened)
// AgentWork at once, and every item's PSR ends with exactly one accepted AgentWork.
func (o *bbOrg) checkHistory(t *testing.T, items []bbItem) historyFigures {
	t.Helper()
	entries := o.history(t)
	status := map[string]string{}        // AgentWork id → status
	psrOf := map[string]string{}         // AgentWork id → PSR id
	open := map[string]map[string]bool{} // PSR id → its open AgentWork
	accepted := map[string]map[string]bool{}
	var f historyFigures
	for _, e := range entries {
		if e.Entity != "AgentWork" {
			continue
		}
		st, _ := e.Fields["Status"].(string)
		psr, _ := e.Fields["PendingServiceRoutingId"].(string)
		if e.ChangeType == "CREATE" {
			f.agentWorks++
			psrOf[e.ID] = psr
		}
		psr = psrOf[e.ID]
		if st == "" || st == status[e.ID] {
			continue
		}
		status[e.ID] = st
		switch st {
		case "Declined":
			f.declined++
		case "DeclinedOnPushTimeout":
			f.timedOut++
		case "Opened":
			if accepted[psr] == nil {
				accepted[psr] = map[string]bool{}
			}
			accepted[psr][e.ID] = true
		}
		if open[psr] == nil {
			open[psr] = map[string]bool{}
		}
		if st == "Assigned" || st == "Opened" {
			open[psr][e.ID] = true
		} else {
			delete(open[psr], e.ID)
		}
		require.LessOrEqual(t, len(open[psr]), 1,
			"history seq %d: PSR %s has two open AgentWork at once: %v", e.Seq, psr, open[psr])
	}
	for _, it := range items {
		require.Len(t, accepted[it.PSRID], 1,
			"PSR %s (work item %s) ends with exactly one accepted AgentWork", it.PSRID, it.WorkItemID)
	}
	return f
}

// bbAdminToken is omniroute's admin token in the black-box tests.
const bbAdminToken = "black-box-admin-token-0123456789"

// bbDaemon is a running `omniroute run`.
type bbDaemon struct {
	cmd    *exec.Cmd
	exited <-chan struct{}
	url    string
	stderr *syncbuf.Buffer
	client *http.Client
}

// The start-up log names the bound address; the configuration it also logs holds port 0.
var httpAddrLog = regexp.MustCompile(`"http_addr":"(127\.0\.0\.1:[1-9][0-9]*)"`)

// startOmniroute runs `omniroute run` against the org with the demo mapping and stateDir.
func startOmniroute(t *testing.T, bins blackBoxBinaries, org *bbOrg, stateDir string) *bbDaemon {
	t.Helper()
	mapping, err := filepath.Abs("../../docs/examples/demo-mapping.yaml")
	require.NoError(t, err)
	env := append(cleanEnv(),
		"OMNIROUTE_SALESFORCE_LOGIN_URL="+org.url,
		"OMNIROUTE_SALESFORCE_CLIENT_ID=omniroute-demo",
		"OMNIROUTE_SALESFORCE_CLIENT_SECRET="+org.secret,
		"OMNIROUTE_MAPPING_FILE="+mapping,
		"OMNIROUTE_HTTP_ADDR=127.0.0.1:0",
		"OMNIROUTE_STATE_DIR="+stateDir,
		"OMNIROUTE_ADMIN_TOKEN="+bbAdminToken,
		"OMNIROUTE_LOG_FORMAT=json",
		"OMNIROUTE_LOG_LEVEL=info",
		"OMNIROUTE_SHUTDOWN_TIMEOUT=5s",
		"OMNIROUTE_WAITING_CHECK=1s",
	)
	stderr := &syncbuf.Buffer{}
	cmd, exited := startProcess(t, bins.omniroute, env, io.Discard, stderr, "run")
	d := &bbDaemon{cmd: cmd, exited: exited, stderr: stderr}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	d.client = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	require.Eventually(t, func() bool {
		if m := httpAddrLog.FindStringSubmatch(stderr.String()); m != nil {
			d.url = "http://" + m[1]
			return true
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "omniroute logs its HTTP address")
	return d
}

func (d *bbDaemon) waitReady(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := d.client.Get(d.url + "/readyz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "omniroute becomes ready: %s", tail(d.stderr.String(), 4<<10))
}

// kill stops omniroute with SIGKILL: no graceful stop, no last checkpoint.
func (d *bbDaemon) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Kill())
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("omniroute did not exit on SIGKILL")
	}
}
