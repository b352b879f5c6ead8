package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunPrintsURLFirstAndServes(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--seed", "demo", "--control-token", "ctl-test"}, pw, io.Discard)
		_ = pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	require.True(t, sc.Scan())
	first := sc.Text()
	m := regexp.MustCompile(`^sfemulator listening on (http://127\.0\.0\.1:\d+)$`).FindStringSubmatch(first)
	require.NotNil(t, m, first)
	var rest []string
	for sc.Scan() {
		rest = append(rest, sc.Text())
		if strings.HasPrefix(sc.Text(), "token_url:") {
			break
		}
	}
	out := strings.Join(rest, "\n")
	require.Contains(t, out, "client_id: omniroute-demo")
	require.Contains(t, out, "client_secret: omniroute-demo-secret")
	require.Contains(t, out, "username: integration@omniroute.demo")
	require.Contains(t, out, "password: omniroute-demo")
	require.Contains(t, out, "control_token: ctl-test")
	require.Contains(t, rest, "login_url: "+m[1])
	require.Contains(t, rest, "token_url: "+m[1]+"/services/oauth2/token")
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	resp, err := http.Get(m[1] + "/emulator/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodGet, m[1]+"/emulator/v1/counters", nil)
	req.Header.Set("Authorization", "Bearer ctl-test")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	select {
	case code := <-done:
		require.Equal(t, exitOK, code)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	require.Equal(t, exitConfig, run(t.Context(), []string{"--seed", "/nonexistent.yaml"}, io.Discard, io.Discard))
	require.Equal(t, exitConfig, run(t.Context(), []string{"--bogus"}, io.Discard, io.Discard))
	require.Equal(t, exitConfig, run(t.Context(), []string{"--addr", "256.0.0.1:1"}, io.Discard, io.Discard))
}

func TestRunGeneratesControlToken(t *testing.T) {
	t.Setenv("SFEMULATOR_CONTROL_TOKEN", "")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0"}, pw, io.Discard)
		_ = pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var token string
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "control_token: "); ok {
			token = v
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	require.Len(t, token, 48)
	cancel()
	require.Equal(t, exitOK, <-done)
}
