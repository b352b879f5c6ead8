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
