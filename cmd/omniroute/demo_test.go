package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDemoServesTheDemoOrg(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- demoCommand(ctx, []string{"--addr", "127.0.0.1:0", "--agents", "3"}, pw, io.Discard)
		_ = pw.Close()
	}()

	banner := bufio.NewScanner(pr)
	var url, token string
	for banner.Scan() && (url == "" || token == "") {
		line := banner.Text()
		if m := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)$`).FindStringSubmatch(line); m != nil {
			url = m[1]
		}
		if f := strings.Fields(line); len(f) == 3 && f[0] == "control" && f[1] == "token" {
			token = f[2]
		}
	}
	require.NotEmpty(t, url, "banner has the URL")
	require.NotEmpty(t, token, "banner has the control token")
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	// Work created through the control API gets a PendingServiceRouting, as the banner promises.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/emulator/v1/work",
		strings.NewReader(`{"channel":"Chat","queue":"Support_EN","subject":"demo"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var created struct{ WorkItemID, PSRID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	require.NotEmpty(t, created.PSRID)

	// The control API refuses callers without the token.
	anon, err := http.Post(url+"/emulator/v1/work", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	_ = anon.Body.Close()
	require.Equal(t, http.StatusUnauthorized, anon.StatusCode)

	cancel()
	select {
	case code := <-done:
		require.Equal(t, exitOK, code)
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop within 10s of cancellation")
	}
}
