package bayeux

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fayeServer is test/faye/server.js running under Node: faye@1.4.3 from the
// repository's node_modules (the committed package-lock), on loopback.
type fayeServer struct {
	t      *testing.T
	cmd    *exec.Cmd
	port   string
	stderr *bytes.Buffer
	exited chan struct{}
	http   *http.Client
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the repository root (go.mod) above the test directory")
		}
		dir = parent
	}
}

// startFaye starts the faye server on 127.0.0.1:port ("0" = any free port)
// and waits until it listens. It fails the test, never skips it, when Node
// or faye is missing.
func startFaye(t *testing.T, port string) *fayeServer {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the faye acceptance test needs Node 20+ on PATH (found none: %v); install Node, then run `npm ci` at the repository root", err)
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "node_modules", "faye", "package.json")); err != nil {
		t.Fatalf("node_modules/faye is missing (%v): run `npm ci` at the repository root to install faye@1.4.3 from package-lock.json", err)
	}
	cmd := exec.Command(node, filepath.Join(root, "test", "faye", "server.js"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PORT="+port, "TIMEOUT=2")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	fs := &fayeServer{t: t, cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = fs.stderr
	require.NoError(t, cmd.Start())
	tr := &http.Transport{}
	fs.http = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		fs.kill()
		tr.CloseIdleConnections()
	})

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
		<-fs.exited // keep the pipe open until the process is gone
	}()
	go func() {
		_ = cmd.Wait()
		close(fs.exited)
	}()
	select {
	case fs.port = <-lines:
	case <-time.After(15 * time.Second):
		t.Fatalf("faye server did not start: %s", fs.stderr.String())
	}
	if fs.port == "" {
		<-fs.exited
		t.Fatalf("faye server exited before listening: %s", fs.stderr.String())
	}
	return fs
}

// kill stops the process and waits for it to exit.
func (fs *fayeServer) kill() {
	_ = fs.cmd.Process.Kill()
	<-fs.exited
}

func (fs *fayeServer) endpoint() string { return "http://127.0.0.1:" + fs.port + "/cometd/62.0" }

// publish sends data on channel through faye's server-side client.
func (fs *fayeServer) publish(channel string, data any) {
	fs.t.Helper()
	body, err := json.Marshal(map[string]any{"channel": channel, "data": data})
	require.NoError(fs.t, err)
	resp, err := fs.http.Post("http://127.0.0.1:"+fs.port+"/publish", "application/json", bytes.NewReader(body))
	require.NoError(fs.t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(fs.t, http.StatusOK, resp.StatusCode)
}

type fayeLogEntry struct {
	Channel       string         `json:"channel"`
	ClientID      string         `json:"clientId"`
	Subscription  string         `json:"subscription"`
	Ext           map[string]any `json:"ext"`
	Authorization string         `json:"authorization"`
}

// log returns the meta messages the server received.
func (fs *fayeServer) log() []fayeLogEntry {
	fs.t.Helper()
	resp, err := fs.http.Get("http://127.0.0.1:" + fs.port + "/log")
	require.NoError(fs.t, err)
	defer func() { _ = resp.Body.Close() }()
	var out []fayeLogEntry
	require.NoError(fs.t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

// fayeObserver records like recorder and signals each successful subscribe.
type fayeObserver struct {
	recorder
	subscribed chan struct{}
}

func (o *fayeObserver) Request(op, code string, d time.Duration) {
	o.recorder.Request(op, code, d)
	if op == "subscribe" && code == "ok" {
		o.subscribed <- struct{}{}
	}
}

func TestFayeAcceptance(t *testing.T) {
	t.Parallel()
	const (
		topic = "/topic/RoutingTopic"
		cdc   = "/data/PendingServiceRoutingChangeEvent"
	)
	fz := startFaye(t, "0")
	port := fz.port

	obs := &fayeObserver{subscribed: make(chan struct{}, 16)}
	endpoint := fz.endpoint() // the restarted faye listens on the same port
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := New(Options{
		Endpoint:   func(context.Context) (string, error) { return endpoint, nil },
		HTTPClient: &http.Client{Transport: tr},
		Authorize: func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer faye-token")
			return nil
		},
		Replay:   true,
		Observer: obs,
	})
	require.NoError(t, err)

	deliveries := make(chan Delivery, 16)
	notReplayed := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, []Subscription{{Channel: topic, ReplayID: ReplayLatest}, {Channel: cdc, ReplayID: ReplayLatest}},
			func(_ context.Context, d Delivery) error {
				if d.Kind == NotReplayed {
					notReplayed <- d.Channel
					return nil
				}
				deliveries <- d
				return nil
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("run returned: %v", err)
		}
	})
	waitSubscribed := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-obs.subscribed:
			case <-time.After(15 * time.Second):
				t.Fatal("the client did not subscribe")
			}
		}
	}
	next := func() Delivery {
		t.Helper()
		select {
		case d := <-deliveries:
			return d
		case <-time.After(15 * time.Second):
			t.Fatal("no delivery from faye")
			return Delivery{}
		}
	}

	// Handshake and subscribe, then deliveries of published messages.
	waitSubscribed(2)
	fz.publish(topic, map[string]any{"event": map[string]any{"replayId": 1, "type": "created"}, "sobject": map[string]any{"Id": "0JR000000000001"}})
	fz.publish(cdc, map[string]any{"event": map[string]any{"replayId": 2}, "payload": map[string]any{"ChangeEventHeader": map[string]any{"changeType": "CREATE"}}})
	d := next()
	require.Equal(t, Delivery{Kind: Event, Channel: topic, ReplayID: 1, Data: d.Data}, d)
	require.Equal(t, "created", d.Data.Event.Type)
	require.JSONEq(t, `"0JR000000000001"`, string(d.Data.Sobject["Id"]))
	require.ElementsMatch(t, []string{topic, cdc}, []string{<-notReplayed, <-notReplayed}, "subscribed from -1")
	d = next()
	require.Equal(t, cdc, d.Channel)
	require.Equal(t, int64(2), d.ReplayID)

	before := fz.log()
	require.Equal(t, chHandshake, before[0].Channel)
	require.Equal(t, map[string]any{"replay": true}, before[0].Ext)
	require.Equal(t, "Bearer faye-token", before[0].Authorization)
	oldClient := ""
	for _, e := range before {
		if e.Channel == chSubscribe {
			require.Equal(t, map[string]any{"replay": map[string]any{e.Subscription: float64(-1)}}, e.Ext)
			oldClient = e.ClientID
		}
	}
	require.NotEmpty(t, oldClient)

	// Restart faye on the same port, mid-stream.
	fz.kill()
	fz = startFaye(t, port)
	require.Equal(t, port, fz.port)

	// The held connect failed: the client handshakes again and resubscribes from the last
	// replay ids it handled (faye keeps none, so nothing is lost only if it does).
	waitSubscribed(2)
	fz.publish(topic, map[string]any{"event": map[string]any{"replayId": 3, "type": "updated"}, "sobject": map[string]any{"Id": "0JR000000000001"}})
	d = next()
	require.Equal(t, topic, d.Channel)
	require.Equal(t, int64(3), d.ReplayID)

	after := fz.log()
	require.Equal(t, chHandshake, after[0].Channel, "a failed connect ends the session")
	resub := map[string]any{}
	for _, e := range after {
		if e.Channel == chSubscribe {
			require.NotEqual(t, oldClient, e.ClientID)
			resub[e.Subscription] = e.Ext["replay"].(map[string]any)[e.Subscription]
		}
	}
	require.Equal(t, map[string]any{topic: float64(1), cdc: float64(2)}, resub)

	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	require.NoError(t, c.Shutdown(ctx))
	require.NoError(t, <-done)
	done <- nil // for the cleanup
	final := fz.log()
	require.Equal(t, chDisconnect, final[len(final)-1].Channel, "shutdown sends /meta/disconnect")
	require.Equal(t, map[string]int64{topic: 3, cdc: 2}, c.ResumePoints())

	requests, rehandshakes, delivered := obs.snapshot()
	require.Equal(t, []string{"transport"}, rehandshakes)
	require.Equal(t, 1, count(requests, "connect transport"))
	require.Equal(t, []string{topic, cdc, topic}, delivered)
	require.Equal(t, "disconnect ok", requests[len(requests)-1], fmt.Sprint(requests))
}
