package streaming

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A real org sends advice on the first /meta/connect reply of a session only (and again
// after it changed): later successful replies are {clientId, channel, id, successful}
// (logs from Salesforce in cometd/cometd#775 and kdcllc/CometD.NetCore.Salesforce#43). A
// client must keep the last advice it was given, not expect it on every reply.
func TestConnectAdviceOnlyWhenItChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{AdviceTimeout: time.Minute})
	a := e.client(t)
	a.handshake()
	_, rep := a.connect()
	require.Equal(t, map[string]any{"interval": 0.0, "timeout": 60000.0, "reconnect": "retry"}, rep["advice"])
	a.subscribe("/data/X", -1)

	e.publish("/data/X")
	events, rep := a.connect()
	require.Len(t, events, 1)
	require.Equal(t, msg{"clientId": a.clientID, "channel": "/meta/connect", "id": rep["id"], "successful": true}, rep)

	// A second client of the same browser, while a holds a connect: the multiple-clients
	// advice, then (once the situation is over) the normal advice again, then none.
	b := e.client(t)
	b.hc.Jar = a.hc.Jar
	b.handshake()
	_, rep = b.connect()
	require.Contains(t, rep, "advice")
	held := make(chan []msg, 1)
	go func() { held <- a.send(a.connectMsg()) }()
	e.waitHeld(t)
	_, rep = b.connect()
	require.Equal(t, map[string]any{"interval": 2000.0, "multiple-clients": true, "reconnect": "retry", "timeout": 60000.0}, rep["advice"])
	e.publish("/data/X")
	_, rep = split(t, <-held)
	require.Equal(t, msg{"clientId": a.clientID, "channel": "/meta/connect", "id": rep["id"], "successful": true}, rep)
	b.subscribe("/data/X", -1)
	e.publish("/data/X")
	_, rep = b.connect()
	require.Equal(t, map[string]any{"interval": 0.0, "timeout": 60000.0, "reconnect": "retry"}, rep["advice"], "advice changed back")
	e.publish("/data/X")
	_, rep = b.connect()
	require.NotContains(t, rep, "advice")
}
