package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/connector"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// These tests change the environment, so none is parallel.

// TestRunHelp: `omniroute run -h` prints envconfig's table with every variable, its default and
// meaning, and exits 0.
func TestRunHelp(t *testing.T) {
	noOrg(t)
	t.Setenv(envClientSecret, "never-printed-secret")
	var out, errb bytes.Buffer
	require.Equal(t, exitOK, run([]string{"run", "-h"}, &out, &errb))
	for _, v := range connector.Variables() {
		require.Contains(t, out.String(), v)
	}
	require.Contains(t, out.String(), "KEY")
	require.Contains(t, out.String(), "DEFAULT")
	require.Contains(t, out.String(), "https://login.salesforce.com")
	require.NotContains(t, out.String(), "never-printed-secret")
	require.Empty(t, errb.String())

	out.Reset()
	require.Equal(t, exitOK, run([]string{"version"}, &out, &errb))
	require.Equal(t, "omniroute dev\n", out.String())
}

// TestRunConfigErrors: a bad environment is exit 2 with every problem, each naming its
// variable, and no secret; nothing starts.
func TestRunConfigErrors(t *testing.T) {
	noOrg(t)
	t.Setenv(envClientID, "cid")
	t.Setenv(envClientSecret, "never-printed-secret")
	t.Setenv("OMNIROUTE_EVENTS", "channel")
	t.Setenv(envAPIVersion, "62.0")
	t.Setenv("OMNIROUTE_LOG_FORMAT", "xml")
	var out, errb bytes.Buffer
	require.Equal(t, exitConfig, run(nil, &out, &errb), "run is the default command")
	for _, want := range []string{
		"OMNIROUTE_SALESFORCE_API_VERSION: 62.0 is too old for OMNIROUTE_EVENTS=channel: AgentWork change events exist from API 63.0",
		`OMNIROUTE_LOG_FORMAT: "xml" is not text or json`,
		"OMNIROUTE_MAPPING_FILE: required",
		"omniroute run -h",
	} {
		require.Contains(t, errb.String(), want)
	}
	require.NotContains(t, errb.String(), "never-printed-secret")

	// A mapping that does not load is a configuration problem too.
	noOrg(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("plans: [\n"), 0o600))
	t.Setenv(envClientID, "cid")
	t.Setenv(envClientSecret, "never-printed-secret")
	t.Setenv("OMNIROUTE_MAPPING_FILE", bad)
	t.Setenv("OMNIROUTE_HTTP_ADDR", "127.0.0.1:0")
	errb.Reset()
	require.Equal(t, exitConfig, run([]string{"run"}, &out, &errb))
	require.Contains(t, errb.String(), "omniroute cannot start")
	require.Contains(t, errb.String(), "bad.yaml")
}

// TestRunBinary builds omniroute and runs it as operators do, against the emulator over
// loopback: it starts, checks the mapping against the org, subscribes and reconciles, serves
// /readyz (ready), reloads on SIGHUP, and exits 0 on SIGTERM within the shutdown timeout.
func TestRunBinary(t *testing.T) {
	noOrg(t)
	bin := filepath.Join(t.TempDir(), "omniroute")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	em, err := emulator.New(emulator.Options{Seed: emulator.DemoSeed()})
	require.NoError(t, err)
	defer em.Close()
	org := httptest.NewServer(em)
	defer org.Close()

	cmd := exec.CommandContext(t.Context(), bin, "run")
	cmd.Env = append(os.Environ(),
		"OMNIROUTE_SALESFORCE_LOGIN_URL="+org.URL,
		"OMNIROUTE_SALESFORCE_CLIENT_ID="+emulator.DemoClientID,
		"OMNIROUTE_SALESFORCE_CLIENT_SECRET="+emulator.DemoClientSecret,
		"OMNIROUTE_MAPPING_FILE=../../docs/examples/demo-mapping.yaml",
		"OMNIROUTE_HTTP_ADDR=127.0.0.1:0",
		"OMNIROUTE_LOG_FORMAT=json",
		"OMNIROUTE_SHUTDOWN_TIMEOUT=5s",
	)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan map[string]any, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	// waitLog returns the first log line with this message.
	waitLog := func(msg string) map[string]any {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case m, ok := <-lines:
				require.True(t, ok, "omniroute exited before logging %q", msg)
				if m["msg"] == msg {
					return m
				}
			case <-timeout:
				t.Fatalf("omniroute never logged %q", msg)
			}
		}
	}
	start := waitLog("omniroute starting")
	addr, _ := start["http_addr"].(string)
	require.Regexp(t, regexp.MustCompile(`^127\.0\.0\.1:\d+$`), addr)
	waitLog("mapping fits the org")
	waitLog("ready: reconcile applied, routing")

	resp, err := http.Get("http://" + addr + "/readyz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `"ready": true`)
	require.NotContains(t, string(body), emulator.DemoClientSecret)

	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	waitLog("mapping loaded")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	waitLog("omniroute stopped")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit 0 after SIGTERM")
	case <-time.After(7 * time.Second):
		t.Fatal("omniroute did not exit within the shutdown timeout")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("something still listens after exit")
	}
	require.False(t, strings.Contains(addr, ":0"))
}
