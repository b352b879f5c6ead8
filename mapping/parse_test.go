package mapping_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

const full = `
plans:
  - name: support-en
    queues: [Support_EN, 00G000000000001AAA]
    requiredSkills:
      - skill: English
        minLevel: 5
    additionalSkills:
      - skill: Technical
        minLevel: 2.5
    dropAdditionalSkillsAfter: 1m
    priority: 2
    relaxation:
      - after: 2m
        skill: English
        minLevel: 3
      - after: 8m
        skill: English
        drop: true
    overflow: {plan: general, after: 10m}
    offerTimeout: 20s
    wrapUpTimeout: 1m30s
    autoAccept: true
    dispositionRequired: true
  - name: general
    queues: [General]
channels:
  - name: Phone
    class: live
    weight: 5
  - name: Chat
    class: semi-live
capacity:
  default: standard
  profiles:
    - name: standard
      total: 10
      perClass: {live: 5, semi-live: 6}
      perChannel: {Chat: 4}
  overrides:
    - profile: standard
      agents: [a@example.com]
      groups: [Tier2]
presence:
  events:
    loginSetsOnline: false
  fromSalesforce:
    Away_from_desk: Away/Break
  toSalesforce:
    Ready: Available
    ReadyOutbound: Away_from_desk
    Busy: Available
    WrapUp: Taking_notes
    Away: Away_from_desk
    ExtendedAway: Away_from_desk
    LoggedOut: Offline
  postCallState: ReadyOutbound
`

func TestParseFull(t *testing.T) {
	t.Parallel()
	cfg, err := mapping.Parse([]byte(full), "full.yaml")
	require.NoError(t, err)
	require.Empty(t, cfg.Warnings())
	want := &mapping.Config{
		Plans: []mapping.Plan{
			{
				Name:                      "support-en",
				Queues:                    []string{"Support_EN", "00G000000000001AAA"},
				RequiredSkills:            []mapping.SkillRequirement{{Skill: "English", MinLevel: 5}},
				AdditionalSkills:          []mapping.SkillRequirement{{Skill: "Technical", MinLevel: 2.5}},
				DropAdditionalSkillsAfter: time.Minute,
				Priority:                  2,
				Relaxation: []mapping.RelaxationStep{
					{After: 2 * time.Minute, Skill: "English", MinLevel: 3},
					{After: 8 * time.Minute, Skill: "English", Drop: true},
				},
				Overflow:            &mapping.Overflow{Plan: "general", After: 10 * time.Minute},
				OfferTimeout:        20 * time.Second,
				WrapUpTimeout:       90 * time.Second,
				AutoAccept:          true,
				DispositionRequired: true,
			},
			{Name: "general", Queues: []string{"General"}, OfferTimeout: mapping.DefaultOfferTimeout},
		},
		Channels: []mapping.Channel{
			{Name: "Phone", Class: mapping.Live, Weight: 5},
			{Name: "Chat", Class: mapping.SemiLive, Weight: 1},
		},
		Capacity: mapping.Capacity{
			Default: "standard",
			Profiles: []mapping.CapacityProfile{{
				Name: "standard", Total: 10,
				PerClass:   map[mapping.Class]int{mapping.Live: 5, mapping.SemiLive: 6},
				PerChannel: map[string]int{"Chat": 4},
			}},
			Overrides: []mapping.CapacityOverride{{Profile: "standard", Agents: []string{"a@example.com"}, Groups: []string{"Tier2"}}},
		},
		Presence: mapping.Presence{
			Events: mapping.PresenceEvents{
				StateChangesUpdatePresence: true, PresenceChangesUpdateState: true,
				LoginSetsOnline: false, LogoutSetsOffline: true, OfflineLogsOut: true,
			},
			FromSalesforce: map[string]mapping.State{"Away_from_desk": {Major: mapping.Away, Minor: "Break"}},
			ToSalesforce: map[mapping.State]string{
				{Major: mapping.Ready}: "Available", {Major: mapping.ReadyOutbound}: "Away_from_desk",
				{Major: mapping.Busy}: "Available", {Major: mapping.WrapUp}: "Taking_notes",
				{Major: mapping.Away}: "Away_from_desk", {Major: mapping.ExtendedAway}: "Away_from_desk",
				{Major: mapping.LoggedOut}: "Offline",
			},
			PostCallState: mapping.State{Major: mapping.ReadyOutbound},
		},
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreUnexported(mapping.Config{})); diff != "" {
		t.Fatalf("config differs (-want +got):\n%s", diff)
	}
	require.Equal(t, mapping.Position{File: "full.yaml", Line: 20, Column: 38}, cfg.Position("plans[0].overflow.after"))
	require.Equal(t, "full.yaml", cfg.Filename())
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := mapping.Parse([]byte(seed003), "seed003.yaml")
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, cfg.Plans[0].OfferTimeout)
	require.Equal(t, time.Duration(0), cfg.Plans[0].WrapUpTimeout)
	require.Equal(t, 1, cfg.Channels[0].Weight)
	require.Equal(t, mapping.State{Major: mapping.Ready}, cfg.Presence.PostCallState)
	require.False(t, cfg.Presence.RevertToLastStatus)
	require.Nil(t, cfg.Plans[0].Overflow)
}

func TestParseErrorsAreProblems(t *testing.T) {
	t.Parallel()
	_, err := mapping.Parse([]byte("plans:\n  - name: a\n    queus: [x]\n    priority: x\n"), "m.yaml")
	var ps mapping.Problems
	require.True(t, errors.As(err, &ps))
	require.Len(t, ps, 2)
	require.Equal(t, mapping.Problem{
		Pos: mapping.Position{File: "m.yaml", Line: 3, Column: 5}, Path: "plans[0].queus",
		Message: `unknown key "queus" (did you mean queues?)`,
	}, ps[0])
	require.Equal(t, "m.yaml:4:15: plans[0].priority: want an integer, got \"x\"", ps[1].String())
}

func TestValidateLiteral(t *testing.T) {
	t.Parallel()
	cfg := &mapping.Config{
		Plans:    []mapping.Plan{{Name: "p", Queues: []string{"Q"}, OfferTimeout: -time.Second}},
		Channels: []mapping.Channel{{Name: "Chat", Class: mapping.SemiLive, Weight: 1}},
		Capacity: mapping.Capacity{Default: "s", Profiles: []mapping.CapacityProfile{{Name: "s", Total: 1}}},
		Presence: mapping.Presence{PostCallState: mapping.State{Major: mapping.Ready}, ToSalesforce: map[mapping.State]string{}},
	}
	for _, m := range mapping.MajorStates() {
		cfg.Presence.ToSalesforce[mapping.State{Major: m}] = "Available"
	}
	cfg.Presence.ToSalesforce[mapping.State{Major: mapping.LoggedOut}] = mapping.OfflineStatus
	err := cfg.Validate()
	require.EqualError(t, err, "plans[0].offerTimeout: duration must not be negative")
	cfg.Plans[0].OfferTimeout = 0
	require.NoError(t, cfg.Validate())
}

func TestStateText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"Ready", "ReadyOutbound", "Busy", "WrapUp", "Away", "ExtendedAway", "LoggedOut", "Away/Break", "Away/On a break"} {
		v, err := mapping.ParseState(s)
		require.NoError(t, err, s)
		b, err := v.MarshalText()
		require.NoError(t, err)
		require.Equal(t, s, string(b))
	}
	for _, s := range []string{"", "ready", "Away/", "/Break", "Lunch"} {
		_, err := mapping.ParseState(s)
		require.Error(t, err, s)
	}
	for _, c := range mapping.Classes() {
		var got mapping.Class
		require.NoError(t, got.UnmarshalText([]byte(c.String())))
		require.Equal(t, c, got)
	}
	_, err := mapping.Class(0).MarshalText()
	require.Error(t, err)
	require.True(t, strings.HasPrefix(mapping.MajorState(99).String(), "MajorState("))
}

func TestAliasBombIsBounded(t *testing.T) {
	t.Parallel()
	// 300 aliases of a plan whose 1000 queues are themselves an alias: 300,000 nodes from ~10 kB.
	var b strings.Builder
	b.WriteString("plans:\n  - &plan\n    name: p\n    queues: &q [")
	for i := range 1000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("Q")
	}
	b.WriteString("]\n")
	for range 300 {
		b.WriteString("  - *plan\n")
	}
	_, err := mapping.Parse([]byte(b.String()), "bomb.yaml")
	require.ErrorContains(t, err, "mapping file too large or too deeply aliased (more than 100000 nodes)")
}

// TestSyntaxErrorLines: yaml.v3 prints parser errors with a 0-based line and some errors with
// none; every syntax problem must name the right 1-based line (checked by hand against the input).
func TestSyntaxErrorLines(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{"flow sequence never closed: the line that opens it", "plans:\n  - name: a\n    queues: [Q\n  - name: b\n",
			"m.yaml:3: invalid YAML: did not find expected ',' or ']'"},
		{"flow mapping opened on line 1 never closed: the end of the file", "plans: {name: a\n",
			"m.yaml:2: invalid YAML: did not find expected ',' or '}'"},
		{"bad indentation: the block list it breaks", "plans:\n  - name: a\n   queues: [x]\n",
			"m.yaml:2: invalid YAML: did not find expected '-' indicator"},
		{"bad indentation in a mapping", "presence:\n  postCallState: Ready\n    x: y\n",
			"m.yaml:3: invalid YAML: mapping values are not allowed in this context"},
		{"a key in the middle of a value", "plans:\n  - name: a: b\n",
			"m.yaml:2: invalid YAML: mapping values are not allowed in this context"},
		{"unknown anchor: the line of the alias", "plans:\n  - name: a\n    queues: *qs\n",
			"m.yaml:3: invalid YAML: unknown anchor 'qs' referenced"},
		{"control character: its line", "plans:\n  - name: a\x01\n",
			"m.yaml:2: invalid YAML: control characters are not allowed"},
		{"invalid UTF-8: its line", "plans:\n  - name: a\n    queues: [\xff]\n",
			"m.yaml:3: invalid YAML: invalid leading UTF-8 octet"},
		{"a scanner error on line 1", "plans: - a\n",
			"m.yaml:1: invalid YAML: block sequence entries are not allowed in this context"},
		{"nesting too deep", "plans: " + strings.Repeat("[", 20000) + "\n",
			"m.yaml:1: invalid YAML: exceeded max depth of 10000"},
		{"a second document with a syntax error: the end of the file", "plans: []\n---\nplans: [\n",
			"m.yaml:4: invalid YAML: did not find expected node content"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := mapping.Parse([]byte(tc.yaml), "m.yaml")
			require.Error(t, err)
			require.Contains(t, strings.Split(err.Error(), "\n"), tc.want)
		})
	}
}

// TestEmptyDocuments: a file with no content, only "---", or a null document is one clear
// problem, not ten about missing sections.
func TestEmptyDocuments(t *testing.T) {
	t.Parallel()
	for _, y := range []string{"", "# only a comment\n", "---\n", "--- ~\n", "~\n", "null\n", "\ufeff"} {
		_, err := mapping.Parse([]byte(y), "m.yaml")
		require.EqualError(t, err, "m.yaml:1:1: empty mapping file", "%q", y)
	}
}

// TestAliasAsKey: an alias where a key belongs is named as such, at its position.
func TestAliasAsKey(t *testing.T) {
	t.Parallel()
	_, err := mapping.Parse([]byte("presence:\n  postCallState: &s Ready\n  fromSalesforce:\n    *s : Away\n"), "m.yaml")
	require.ErrorContains(t, err, "m.yaml:4:5: presence.fromSalesforce: want a string key, got an alias (*s)")
}

// TestRelaxationNegativeLevel: a negative level is out of range, not "must lower the level".
func TestRelaxationNegativeLevel(t *testing.T) {
	t.Parallel()
	y := strings.Replace(seed003, "queues: [Support_EN]", "queues: [Support_EN]\n    requiredSkills: [{skill: English, minLevel: 3}]\n    relaxation: [{after: 1m, skill: English, minLevel: -1}]", 1)
	_, err := mapping.Parse([]byte(y), "m.yaml")
	require.EqualError(t, err, "m.yaml:6:56: plans[0].relaxation[0].minLevel: skill level -1 is out of range 0 to 99.99")
}
