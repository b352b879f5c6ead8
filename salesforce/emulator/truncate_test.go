package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// rawDo sends body to path and returns the response, what was read of its body and the read
// error (io.ErrUnexpectedEOF when the body was cut).
func (h *harness) rawDo(method, path, auth string, body []byte) (int, http.Header, []byte, error) {
	h.t.Helper()
	// A fresh transport each time: a cut response closes its connection.
	return h.rawDoWith(&http.Client{Transport: &http.Transport{}}, method, path, auth, body)
}

func (h *harness) rawDoWith(cl *http.Client, method, path, auth string, body []byte) (int, http.Header, []byte, error) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	require.NoError(h.t, err)
	req.Header.Set("Authorization", "Bearer "+auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	require.NoError(h.t, err)
	defer func() { _ = resp.Body.Close() }()
	b, rerr := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, rerr
}

func TestTruncateFaultREST(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s, b := h.control(http.MethodPost, "faults/truncate", map[string]any{"count": 1, "scope": "rest"})
	require.Equal(t, http.StatusOK, s, string(b))

	// A POST and a 404 GET are not cut and do not use the rule up.
	s, b = h.rest(http.MethodPost, "sobjects/Case", map[string]any{"Subject": "x"})
	require.Equal(t, http.StatusCreated, s, string(b))
	s, _ = h.rest(http.MethodGet, "sobjects/Case/500000000000000AAA", nil)
	require.Equal(t, http.StatusNotFound, s)

	status, hdr, got, err := h.rawDo(http.MethodGet, "/services/data/v62.0/limits", h.token, nil)
	require.Equal(t, http.StatusOK, status)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the body is cut before its Content-Length")
	full, ferr := strconv.Atoi(hdr.Get("Content-Length"))
	require.NoError(t, ferr)
	require.Equal(t, full/2, len(got))
	require.False(t, json.Valid(got))

	// The rule is used up: the next GET is whole.
	status, _, got, err = h.rawDo(http.MethodGet, "/services/data/v62.0/limits", h.token, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.True(t, json.Valid(got))

	var cut int
	for _, rr := range h.em.Requests() {
		if rr.Truncated {
			cut++
			require.Equal(t, "/services/data/v62.0/limits", rr.Path)
		}
	}
	require.Equal(t, 1, cut, "the request log marks the cut response")

	// From Go, with Bytes, and a CometD-only rule leaves REST alone.
	require.NoError(t, h.em.InjectTruncateFault(TruncateFault{Count: 1, Bytes: 3, Scope: "rest"}))
	_, _, got, err = h.rawDo(http.MethodGet, "/services/data/v62.0/limits", h.token, nil)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Len(t, got, 3)
	require.NoError(t, h.em.InjectTruncateFault(TruncateFault{Count: 1, Scope: "cometd"}))
	_, _, _, err = h.rawDo(http.MethodGet, "/services/data/v62.0/limits", h.token, nil)
	require.NoError(t, err)

	// Bad rules.
	for _, body := range []map[string]any{{}, {"count": 1, "scope": "token"}, {"rate": 2}, {"count": 1, "bytes": -1}} {
		s, _ := h.control(http.MethodPost, "faults/truncate", body)
		require.Equal(t, http.StatusBadRequest, s, body)
	}
	// ClearFaults removes the rules.
	require.NoError(t, h.em.InjectTruncateFault(TruncateFault{Rate: 1}))
	h.em.ClearFaults()
	_, _, _, err = h.rawDo(http.MethodGet, "/services/data/v62.0/limits", h.token, nil)
	require.NoError(t, err)
}

func TestTruncateFaultCometDConnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	c := h.comet(h.token)
	c.handshake()
	require.NoError(t, h.em.InjectTruncateFault(TruncateFault{Count: 1, Scope: "cometd"}))
	// Handshake and subscribe answers are not cut.
	require.Equal(t, true, c.subscribe("/data/CaseChangeEvent", -1)["successful"])
	other := h.comet(h.token)
	hs := other.send(map[string]any{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": []string{"long-polling"}})
	require.Equal(t, true, hs[0]["successful"])

	// A connect that delivers an event is answered 200 and cut mid-body.
	h.createWork("Case", "Support_EN")
	msg, err := json.Marshal([]map[string]any{{"channel": "/meta/connect", "connectionType": "long-polling", "clientId": c.clientID, "id": "99"}})
	require.NoError(t, err)
	status, _, got, rerr := h.rawDoWith(c.http, http.MethodPost, "/cometd/62.0", h.token, msg)
	require.Equal(t, http.StatusOK, status)
	require.True(t, errors.Is(rerr, io.ErrUnexpectedEOF), "got %v", rerr)
	require.Contains(t, string(got), "/data/CaseChangeEvent", "the first half of the event reached the client")
	require.False(t, json.Valid(got))

	// The client lives on; the event counts as delivered, so a resubscribe replays it.
	out := c.send(map[string]any{"channel": "/meta/connect", "connectionType": "long-polling"})
	require.Len(t, out, 1, "no event redelivered on the live subscription: %v", out)
	require.Equal(t, true, out[0]["successful"])
	r := h.comet(h.token)
	r.handshake()
	require.Equal(t, true, r.subscribe("/data/CaseChangeEvent", -2)["successful"])
	require.Len(t, r.events(1), 1)
}
