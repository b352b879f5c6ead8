package connector

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/routing"
)

// TestDecodeAgentFrameErrorsNameNoValue: an error about a frame never quotes a value the
// client sent (a token pasted into the wrong field stays out of error frames and logs).
func TestDecodeAgentFrameErrorsNameNoValue(t *testing.T) {
	t.Parallel()
	const secret = "00Dsecret!AQtokenvalue"
	for _, frame := range []string{
		`{"type":"` + secret + `"}`,
		`{"type":"set_state","state":"` + secret + `"}`,
		`{"type":"transfer","work_id":"w","target":"` + secret + `","target_id":"x"}`,
		`{"type":"elevate","work_id":"w","mode":"` + secret + `"}`,
		`{"type":"hold","work_id":"w","` + secret + `":1}`,
		`{"type":"hold","work_id":"` + strings.Repeat(secret, 20) + `"}`,
		`{"type":"hold","work_id":"w"} ` + secret,
	} {
		_, err := DecodeAgentFrame(agentA, []byte(frame))
		require.Error(t, err, frame)
		if strings.Contains(frame, `"`+secret+`":1`) {
			continue // encoding/json names the unknown field itself: a key, not a value
		}
		require.NotContains(t, err.Error(), secret, frame)
	}
}

// TestDecodeAgentFrameUser: the user is the authenticated one, whatever the frame says.
func TestDecodeAgentFrameUser(t *testing.T) {
	t.Parallel()
	for _, tc := range clientCases {
		fr, err := DecodeAgentFrame(agentB, []byte(tc.frame))
		require.NoError(t, err, tc.name)
		require.Equal(t, agentB, fr.Input.User, tc.name)
		if fr.Input.Event != nil {
			require.Empty(t, fr.Input.Event.AgentID, "the router sets AgentID from User")
		}
	}
	_, err := DecodeAgentFrame(agentA, []byte(`{"type":"release","work_id":"w","user":"`+agentB+`"}`))
	require.Error(t, err, "a frame cannot name a user")
}

// FuzzAgentFrame: decoding any frame never panics; a frame either becomes exactly one of an
// Event or a Report for the authenticated user, of a known type, or is a *FrameError with a
// reason of the metric's closed set.
func FuzzAgentFrame(f *testing.F) {
	for _, tc := range clientCases {
		f.Add([]byte(tc.frame))
	}
	for _, s := range []string{``, `{}`, `null`, `[]`, `{"type":null}`, `{"type":"hold","work_id":"\u0000"}`,
		`{"type":"command_result","command_id":"c","ok":false}`, `{"type":"elevate","work_id":"w","mode":"x"}`,
		`{"type":"set_state","state":"Away/"}`, "{\"type\":\"hold\",\"work_id\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeAgentFrame(agentA, data)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FrameError", err)
			}
			if !slices.Contains(badFrameReasons, fe.Reason) || fe.Message == "" {
				t.Fatalf("reason %q message %q", fe.Reason, fe.Message)
			}
			if fr.Input.Event != nil || fr.Input.Report != nil {
				t.Fatal("an input with an error")
			}
			return
		}
		in := fr.Input
		if (in.Event == nil) == (in.Report == nil) || in.User != agentA {
			t.Fatalf("input %+v", in)
		}
		if _, ok := clientTypes[fr.Type]; !ok {
			t.Fatalf("type %q", fr.Type)
		}
		if e := in.Event; e != nil {
			if e.Type != routing.EventAgentState && e.Type != routing.EventAgentAction {
				t.Fatalf("event type %v", e.Type)
			}
			if e.Type == routing.EventAgentState {
				if _, err := e.State.MarshalText(); err != nil {
					t.Fatalf("invalid state: %v", err)
				}
			} else if e.WorkID == "" {
				t.Fatal("an action without work")
			}
		}
		// Whatever was accepted is valid JSON of one object.
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("accepted non-JSON: %v", err)
		}
	})
}

// TestDecodeAgentFrameStrictKeys: keys match exactly once. encoding/json alone folds case and
// lets the last of two equal keys win, so a proxy or log that reads the first "work_id" would
// see another interaction than the router; the gateway refuses both, and huge numbers too.
func TestDecodeAgentFrameStrictKeys(t *testing.T) {
	t.Parallel()
	for _, frame := range []string{
		`{"type":"release","work_id":"a","work_id":"b"}`,
		`{"type":"hold","type":"release","work_id":"a"}`,
		`{"type":"release","work_id":"a","WORK_ID":"b"}`,
		`{"TYPE":"release","work_id":"a"}`,
		`{"type":"release","Work_Id":"a"}`,
		`{"type":"command_result","command_id":"c","ok":true,"ok":false,"error":"e"}`,
		`{"type":"release","work_id":"a","ref":"r","ref":"s"}`,
		`{"type":"release","work_id":1e400}`,
		`{"type":"release","work_id":"a","ref":123456789012345678901234567890}`,
	} {
		fr, err := DecodeAgentFrame(agentA, []byte(frame))
		require.Error(t, err, frame)
		var fe *FrameError
		require.ErrorAs(t, err, &fe, frame)
		require.Contains(t, []string{badFrameJSON, badFrameField}, fe.Reason, frame)
		require.Nil(t, fr.Input.Event, frame)
		require.Nil(t, fr.Input.Report, frame)
	}
	// Escaped keys are the same keys, and whitespace is not a key.
	_, err := DecodeAgentFrame(agentA, []byte(`{"type":"release","work_\u0069d":"a","work_id":"b"}`))
	require.Error(t, err)
	_, err = DecodeAgentFrame(agentA, []byte(` { "type" : "release" , "work_\u0069d" : "a" } `))
	require.NoError(t, err)
}

// TestConsoleCompareAndSetWire: a presence command carries the status the router expects
// Omni-Channel to show (expect_status_id, expect_status), and a console that refused it
// because the agent changed the status answers command_result with error status_changed and
// the status it saw (status_id, status), which reaches the router.
func TestConsoleCompareAndSetWire(t *testing.T) {
	t.Parallel()
	frame, ok := encodeMessage(AgentMessage{Console: &ConsoleCommand{ID: "c7", Op: ConsoleSetStatus, StatusID: "0N51",
		Status: "Available", ExpectStatusID: "0N52", ExpectStatus: "Away_from_desk"}}, time.Time{}, nil)
	require.True(t, ok)
	b, err := json.Marshal(frame)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, map[string]any{"type": "console", "id": "c7", "op": "set_status", "status_id": "0N51", "status": "Available",
		"expect_status_id": "0N52", "expect_status": "Away_from_desk"}, got)

	frame, ok = encodeMessage(AgentMessage{Console: &ConsoleCommand{ID: "c8", Op: ConsoleLogin, StatusID: "0N51", Status: "Available",
		ExpectStatus: "Offline"}}, time.Time{}, nil)
	require.True(t, ok)
	b, err = json.Marshal(frame)
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"console","id":"c8","op":"login","status_id":"0N51","status":"Available","expect_status":"Offline"}`, string(b))

	fr, err := DecodeAgentFrame(agentA, []byte(`{"type":"command_result","command_id":"c7","ok":false,"error":"status_changed",`+
		`"status_id":"0N53","status":"On_a_call"}`))
	require.NoError(t, err)
	require.Equal(t, &ConsoleReport{Kind: ReportResult, CommandID: "c7", Error: ConsoleStatusChanged, StatusID: "0N53", Status: "On_a_call"},
		fr.Input.Report)
}
