package connector

import (
	"encoding/json"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/routing"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// dialStalled opens user's websocket at url with a receive buffer of about 1 KiB (SO_RCVBUF,
// set before the connection is made), reads its hello and snapshot, and reads nothing more:
// a console whose browser stopped reading.
func dialStalled(t *testing.T, url, token string) *websocket.Conn {
	t.Helper()
	nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
		if err != nil {
			return err
		}
		return serr
	}}
	d := websocket.Dialer{Subprotocols: []string{AgentSubprotocol, AgentTokenProtocol(token)}, HandshakeTimeout: 10 * time.Second,
		NetDialContext: nd.DialContext}
	conn, resp, err := d.DialContext(t.Context(), url, nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	for _, want := range []string{"hello", "snapshot"} {
		var f struct {
			Type string `json:"type"`
		}
		_, data, err := conn.ReadMessage()
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &f))
		require.Equal(t, want, f.Type)
	}
	return conn
}

// TestE2EWSSlowClientDropped: through the daemon, against the emulator. Agent 1's console
// stops reading while its Omni-Channel status keeps changing in Salesforce, each change a
// state frame the daemon sends it; agent 2's status changes too, and its console gets each
// state frame in time throughout. The daemon drops agent 1's connection as too slow (close
// 4001, omniroute_gateway_disconnects_total{reason="slow"}, a warning naming the user and no
// token), keeps routing, and agent 1 reconnects to a snapshot of its state now.
//
// OMNIROUTE_AGENT_SEND_BUFFER is 4 KiB: with the kernel's own send buffer (4 MiB on loopback) the
// queue would fill only after some 36,000 frames of this size.
func TestE2EWSSlowClientDropped(t *testing.T) {
	t.Parallel()
	p := newPresenceEnv(t, "Ready", func(c *Config) { c.AgentSendBuffer = 4096 })
	a1, a2 := p.ids[agent1], p.ids[agent2]
	gw := p.d.c.gateway
	slowDrops := func() float64 { return testutil.ToFloat64(gw.metrics.disconnects.WithLabelValues(discSlow)) }

	// Agent 1's console is replaced by one that stops reading after its snapshot.
	p.console.mu.Lock()
	old := p.console.conns[a1]
	p.console.mu.Unlock()
	tok, err := MintAgentToken(p.console.key, a1, time.Hour, p.clock.Now())
	require.NoError(t, err)
	slow := dialStalled(t, p.console.url, tok)
	select {
	case <-old.closed: // 4000: replaced
	case <-time.After(20 * time.Second):
		t.Fatal("the console's connection was not replaced")
	}

	stateFrames := func(user string) int {
		n := 0
		for _, m := range p.console.messages(user) {
			if m.Command != nil && m.Command.Type == routing.CommandSetState {
				n++
			}
		}
		return n
	}
	statuses := [2]string{"Away_from_desk", "Available"}
	shown := map[string]string{"Away_from_desk": "Away/Break", "Available": "Ready"}
	// fastRound changes agent 2's status and waits for its state frame: the events come in
	// order, so every change made before it has reached the router too.
	var worst time.Duration
	rounds := 0
	fastRound := func() {
		t.Helper()
		n := stateFrames(a2)
		start := time.Now()
		p.presence(agent2, statuses[rounds%2])
		rounds++
		require.Eventually(t, func() bool { return stateFrames(a2) > n }, 20*time.Second, 2*time.Millisecond,
			"agent 2 stopped receiving after %d rounds", rounds)
		worst = max(worst, time.Since(start))
	}
	sent := 0 // status changes of agent 1
	for slowDrops() == 0 {
		require.Less(t, rounds, 300, "agent 1 was never dropped after %d status changes", sent)
		for range 10 {
			p.presence(agent1, statuses[sent%2])
			sent++
		}
		fastRound()
	}
	// The server closed the connection: the stalled console, reading again, finds the frames that
	// were in the sockets, then the close.
	require.NoError(t, slow.SetReadDeadline(time.Now().Add(20*time.Second)))
	slow.SetCloseHandler(func(int, string) error { return nil })
	got := 0
	for {
		_, _, err := slow.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			require.ErrorAs(t, err, &ce, "the connection did not end with a close from the server")
			require.Equal(t, CloseTooSlow, ce.Code)
			break
		}
		got++
	}
	require.Less(t, got, sent, "the dropped console got every frame")
	t.Logf("agent 1: %d status changes, %d frames read before the close; agent 2: %d rounds, slowest state frame %s", sent, got, rounds, worst)

	// Agent 2 kept receiving, in time, and still does.
	fastRound()
	fastRound()
	require.Less(t, worst, 5*time.Second, "agent 2's frames waited for the slow client")
	require.Regexp(t, `omniroute_gateway_disconnects_total\{reason="slow"\} 1\n`, p.metric(t, "omniroute_gateway_disconnects_total")+"\n")
	// The warning is logged when the connection's handler ends, just after the close.
	require.Eventually(t, func() bool { return strings.Contains(p.d.logs.String(), "agent connection dropped: too slow") }, 10*time.Second, 5*time.Millisecond)
	logs := p.d.logs.String()
	require.Contains(t, logs, "agent connection dropped: too slow")
	require.Contains(t, logs, "user="+a1)
	require.NotContains(t, logs, tok)
	require.NotContains(t, logs, tok[strings.LastIndexByte(tok, '.')+1:], "the token's signature")

	// Agent 1 reconnects and gets a snapshot of its state now.
	p.console.connect(a1)
	snaps := p.console.snapshots(a1)
	snap := snaps[len(snaps)-1]
	want := shown[statuses[(sent-1)%2]]
	require.Equal(t, want, snap.Agent.State.String(), "the snapshot is the agent's state now")
	require.Equal(t, want, p.agent(agent1).State.String())

	// The daemon routes on: agent 1, Ready again, is offered new work on the new connection.
	p.presence(agent2, "Away_from_desk")
	p.waitState(agent2, "Away/Break")
	p.presence(agent1, "Available")
	p.waitState(agent1, "Ready")
	w := p.work(emulator.WorkRequest{})
	p.waitAW(w.WorkItemID, "Assigned", agent1)
	p.waitCommand(a1, routing.CommandOffer, func(c routing.Command) bool { return c.WorkID == w.WorkItemID })
	require.Equal(t, 1.0, slowDrops())
}
