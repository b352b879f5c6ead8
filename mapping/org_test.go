package mapping_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

// demoOrg mirrors the emulator's demo org (salesforce/emulator DemoSeed) plus a queue on
// another routing model.
var demoOrg = mapping.Org{
	Queues: []mapping.OrgQueue{
		{ID: "00G000000000001AAA", DeveloperName: "Support_EN", RoutingModel: "ExternalRouting"},
		{ID: "00G000000000002AAA", DeveloperName: "Support_DE", RoutingModel: "ExternalRouting"},
		{ID: "00G000000000003AAA", DeveloperName: "Billing", RoutingModel: "ExternalRouting"},
		{ID: "00G000000000004AAA", DeveloperName: "Sales", RoutingModel: "MostAvailable"},
		{ID: "00G000000000005AAA", DeveloperName: "Legacy"},
	},
	Channels: []mapping.OrgChannel{
		{DeveloperName: "Chat", RelatedEntity: "LiveChatTranscript"},
		{DeveloperName: "Messaging", RelatedEntity: "MessagingSession"},
		{DeveloperName: "Case", RelatedEntity: "Case"},
		{DeveloperName: "Phone", RelatedEntity: "VoiceCall"},
	},
	Statuses: []mapping.OrgStatus{
		{DeveloperName: "Available"}, {DeveloperName: "Ready_for_cases"}, {DeveloperName: "On_a_call"},
		{DeveloperName: "Away_from_desk"}, {DeveloperName: "Taking_notes"},
	},
	Skills: []mapping.OrgSkill{{DeveloperName: "English"}, {DeveloperName: "German"}, {DeveloperName: "Billing"}, {DeveloperName: "Technical"}},
}

func TestValidateOrg(t *testing.T) {
	t.Parallel()
	const yml = `plans:
  - name: en
    queues: [Support_EN, 00G000000000002AAA, Billing]
    requiredSkills:
      - skill: Englsh
    additionalSkills:
      - skill: Technical
  - name: other
    queues: [Sales, Legacy, Support_DEU]
channels:
  - name: Chat
    class: semi-live
  - name: Phnoe
    class: live
  - name: Case
    class: non-live
  - name: Messaging
    class: semi-live
capacity:
  default: s
  profiles:
    - name: s
      total: 10
presence:
  fromSalesforce:
    On_a_cal: Away
    Away_from_desk: Away/Break
  toSalesforce:
    Ready: Ready_for_case
    ReadyOutbound: Away_from_desk
    Busy: Available
    WrapUp: Taking_notes
    Away: Away_from_desk
    ExtendedAway: Away_from_desk
    LoggedOut: Offline
`
	cfg, err := mapping.Parse([]byte(yml), "org.yaml")
	require.NoError(t, err)
	warnings, err := mapping.ValidateOrg(cfg, demoOrg)
	var ps mapping.Problems
	require.True(t, errors.As(err, &ps))
	require.Equal(t, strings.Join([]string{
		`org.yaml:5:16: plans[0].requiredSkills[0].skill: skill "Englsh" does not exist in the org (did you mean English?)`,
		`org.yaml:9:14: plans[1].queues[0]: queue "Sales" uses routing model MostAvailable, not External Routing; omniroute routes only external-routing queues`,
		`org.yaml:9:21: plans[1].queues[1]: queue "Legacy" has no routing configuration; give it one whose routing model is External Routing`,
		`org.yaml:9:29: plans[1].queues[2]: queue "Support_DEU" does not exist in the org (did you mean Support_DE?)`,
		`org.yaml:13:11: channels[1].name: service channel "Phnoe" does not exist in the org (did you mean Phone?)`,
		`org.yaml:26:5: presence.fromSalesforce.On_a_cal: presence status "On_a_cal" does not exist in the org (did you mean On_a_call?)`,
		`org.yaml:29:5: presence.toSalesforce.Ready: presence status "Ready_for_case" does not exist in the org (did you mean Ready_for_cases?)`,
	}, "\n"), err.Error())
	require.Len(t, warnings, 1)
	require.Equal(t, "org.yaml:11:3: warning: channels: service channel Phone is not mapped; work on it cannot be routed", warnings[0].String())
}

func TestValidateOrgQueueByNameAndID(t *testing.T) {
	t.Parallel()
	yml := strings.Replace(seed003, "queues: [Support_EN]", "queues: [Support_EN]\n  - name: again\n    queues: [00G000000000001AAA]", 1)
	cfg, err := mapping.Parse([]byte(yml), "dup.yaml")
	require.NoError(t, err, "offline, a name and an Id cannot be matched")
	_, err = mapping.ValidateOrg(cfg, demoOrg)
	require.EqualError(t, err, `dup.yaml:6:14: plans[1].queues[0]: queue "00G000000000001AAA" is queue Support_EN, already mapped at plans[0].queues[0]; a queue belongs to one plan`)
}

func TestValidateOrgUnmappedQueueWarns(t *testing.T) {
	t.Parallel()
	cfg, err := mapping.Parse([]byte(seed003), "seed003.yaml")
	require.NoError(t, err)
	warnings, err := mapping.ValidateOrg(cfg, demoOrg)
	require.NoError(t, err, "every queue, channel and status of seed 003's mapping exists in the demo org")
	var texts []string
	for _, w := range warnings {
		texts = append(texts, w.Path+": "+w.Message)
	}
	require.Contains(t, texts, "plans: external-routing queue Billing is in no plan; its work will wait unrouted")
	require.Contains(t, texts, "plans: external-routing queue Support_DE is in no plan; its work will wait unrouted")
	require.NotContains(t, strings.Join(texts, "\n"), "Sales", "a queue on another routing model is not ours")
}
