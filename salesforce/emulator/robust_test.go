package emulator

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadInputNeverFailsTheServer sends malformed requests everywhere: each gets a 4xx, never a
// 5xx or a panic, and the org keeps working afterwards.
func TestBadInputNeverFailsTheServer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	bodies := []string{"", "{", "[]", "null", `{"records":[1,2]}`, `{"records":"x"}`, `"str"`, `{"Subject":{"a":1}}`,
		`{"OwnerId":123}`, `{"CreatedDate":"yesterday"}`, `{"attributes":{"type":7}}`, `{"records":[{"attributes":{"type":"AgentWork"},"UserId":null}]}`}
	type target struct{ method, path, auth string }
	targets := []target{
		{"POST", "/services/data/v62.0/sobjects/Case", h.token},
		{"POST", "/services/data/v62.0/sobjects/AgentWork", h.token},
		{"POST", "/services/data/v62.0/sobjects/PushTopic", h.token},
		{"PATCH", "/services/data/v62.0/sobjects/Case/5005g00000zzzzzAAA", h.token},
		{"POST", "/services/data/v62.0/composite/sobjects", h.token},
		{"PATCH", "/services/data/v62.0/composite/sobjects", h.token},
		{"GET", "/services/data/v62.0/query/", h.token},
		{"GET", "/services/data/v62.0/query/x-y", h.token},
		{"DELETE", "/services/data/v62.0/sobjects/Nope/x", h.token},
		{"PUT", "/services/data/v62.0/sobjects/Case", h.token},
		{"POST", "/services/oauth2/token", ""},
		{"GET", "/services/oauth2/token", ""},
		{"POST", "/cometd/62.0", h.token},
		{"POST", "/emulator/v1/work", testControlToken},
		{"POST", "/emulator/v1/agents/x/presence", testControlToken},
		{"POST", "/emulator/v1/agentwork/x/transfer", testControlToken},
		{"POST", "/emulator/v1/agentwork/x/nope", testControlToken},
		{"POST", "/emulator/v1/faults/http", testControlToken},
		{"POST", "/emulator/v1/records/Case", testControlToken},
		{"POST", "/emulator/v1/streaming/gap", testControlToken},
		{"POST", "/emulator/v1/auto", testControlToken},
	}
	for _, tg := range targets {
		for _, body := range bodies {
			req, err := http.NewRequest(tg.method, h.srv.URL+tg.path, bytes.NewReader([]byte(body)))
			require.NoError(t, err)
			if tg.auth != "" {
				req.Header.Set("Authorization", "Bearer "+tg.auth)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			require.Less(t, resp.StatusCode, 500, "%s %s %q: %s", tg.method, tg.path, body, b)
		}
	}
	h.presence(agent1, "Available")
	w := h.createWork("Case", "Support_EN")
	h.assign(w, agent1)
}
