package mapping_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

// seed003 is the mapping of seed 003's worked example (steps 5 and 6): On a call -> Away,
// Away from desk -> Break, login -> Ready for cases, Wrap up -> Taking notes.
const seed003 = `
plans:
  - name: support
    queues: [Support_EN]
channels:
  - name: Chat
    class: semi-live
capacity:
  default: standard
  profiles:
    - name: standard
      total: 10
presence:
  fromSalesforce:
    On_a_call: Away
    Away_from_desk: Away/Break
  toSalesforce:
    Ready: Ready_for_cases
    ReadyOutbound: Away_from_desk
    Busy: On_a_call
    WrapUp: Taking_notes
    Away: Away_from_desk
    ExtendedAway: Away_from_desk
    LoggedOut: Offline
`

func parsePresence(t *testing.T, yaml string) *mapping.Presence {
	t.Helper()
	cfg, err := mapping.Parse([]byte(yaml), "seed003.yaml")
	require.NoError(t, err)
	return &cfg.Presence
}

func st(s string) mapping.State {
	v, err := mapping.ParseState(s)
	if err != nil {
		panic(err)
	}
	return v
}

func TestStatusForStateFallback(t *testing.T) {
	t.Parallel()
	p := parsePresence(t, seed003)
	p.ToSalesforce[st("Away/Break")] = "On_break"
	tests := []struct{ state, want string }{
		{"Away/Break", "On_break"},       // the minor mapping wins
		{"Away/Lunch", "Away_from_desk"}, // unmapped minor: major's mapping
		{"Away", "Away_from_desk"},
		{"WrapUp/Manual", "Taking_notes"},
		{"LoggedOut", mapping.OfflineStatus},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, p.StatusForState(st(tc.state)), tc.state)
	}
	require.Equal(t, st("Ready"), p.StateForStatus("Nobody_mapped_this"), "unmapped status: Ready")
	require.Equal(t, st("LoggedOut"), p.StateForStatus(mapping.OfflineStatus))
	require.Equal(t, st("Away/Break"), p.StateForStatus("Away_from_desk"))
}

// TestRevertToLastStatus covers seed 003's "Revert to status before interaction" rules.
func TestRevertToLastStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		revert    bool
		postCall  string
		preWork   string
		next      string // the state the agent enters after wrap-up
		wantPush  string
		wantWarns int
	}{
		{name: "revert on, post-call Ready: the pre-work status", revert: true, postCall: "Ready", preWork: "Ready_for_chats", next: "Ready", wantPush: "Ready_for_chats"},
		{name: "revert on, post-call ReadyOutbound (Ready (Offline)): the pre-work status", revert: true, postCall: "ReadyOutbound", preWork: "Ready_for_chats", next: "ReadyOutbound", wantPush: "Ready_for_chats"},
		{name: "revert off: the status mapped to Ready", revert: false, postCall: "Ready", preWork: "Ready_for_chats", next: "Ready", wantPush: "Ready_for_cases"},
		{name: "revert on, post-call Away: the mapped status wins, and the check warns", revert: true, postCall: "Away/Admin", preWork: "Ready_for_chats", next: "Away/Admin", wantPush: "Away_from_desk", wantWarns: 1},
		{name: "revert on, post-call LoggedOut: Offline wins, and the check warns", revert: true, postCall: "LoggedOut", preWork: "Ready_for_chats", next: "LoggedOut", wantPush: mapping.OfflineStatus, wantWarns: 1},
		{name: "revert on, pre-work status unknown: the mapped status", revert: true, postCall: "Ready", preWork: "", next: "Ready", wantPush: "Ready_for_cases"},
		{name: "revert on, agent leaves work for another state than post-call: its mapped status", revert: true, postCall: "Ready", preWork: "Ready_for_chats", next: "Away/Break", wantPush: "Away_from_desk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := mapping.Parse([]byte(seed003), "seed003.yaml")
			require.NoError(t, err)
			cfg.Presence.RevertToLastStatus = tc.revert
			cfg.Presence.PostCallState = st(tc.postCall)
			require.Len(t, cfg.Warnings(), tc.wantWarns)
			p := &cfg.Presence

			// The agent worked from preWork status and now enters next.
			require.Equal(t, tc.wantPush, p.PostWorkStatus(st(tc.next), tc.preWork))
		})
	}
	require.True(t, mapping.RevertApplies(st("Ready")))
	require.True(t, mapping.RevertApplies(st("ReadyOutbound")))
	require.False(t, mapping.RevertApplies(st("Away")))
	require.False(t, mapping.RevertApplies(st("ExtendedAway/Training")))
}
