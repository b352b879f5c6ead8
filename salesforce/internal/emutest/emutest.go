// Package emutest serves the org emulator on loopback for the salesforce and bayeux tests, and
// drives it the way a test in a testing/synctest bubble must: through its control API over
// HTTP, so that it acts from its own goroutines (on real time), never from the bubble's.
package emutest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

// Org is an emulator served on loopback.
type Org struct {
	Emu *emulator.Emulator
	Srv *httptest.Server
}

// New serves an emulator of the demo org until the test ends; mod adjusts its options.
func New(t testing.TB, mod func(*emulator.Options)) *Org {
	t.Helper()
	opts := emulator.Options{Seed: emulator.DemoSeed(), RandSeed: 42}
	if mod != nil {
		mod(&opts)
	}
	emu, err := emulator.New(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(func() {
		srv.Close()
		emu.Close()
	})
	return &Org{Emu: emu, Srv: srv}
}

// Control POSTs body to the control API at path and decodes the answer into out (if not nil).
func (o *Org) Control(t testing.TB, path, body string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, o.Srv.URL+"/emulator/v1/"+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+o.Emu.ControlToken())
	resp, err := BubbleClient().Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Less(t, resp.StatusCode, 300, path)
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
}

// Work creates a case in an External Routing queue: its PSR CREATE is published.
func (o *Org) Work(t testing.TB) emulator.WorkResult {
	t.Helper()
	var w emulator.WorkResult
	o.Control(t, "work", `{"channel":"Case","queue":"Support_EN","subject":"s"}`, &w)
	return w
}

// BubbleClient is an HTTP client a synctest bubble can use: it leaves no idle keep-alive
// connection blocked on the network, which would keep the bubble's clock from moving.
func BubbleClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}
