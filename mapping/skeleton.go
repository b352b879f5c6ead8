package mapping

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var plainYAML = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.@-]*$`)

// yamlString writes s as a YAML scalar: bare when it is a plain name, else double-quoted.
func yamlString(s string) string {
	if plainYAML.MatchString(s) && s != "TODO" && !slices.Contains([]string{"true", "false", "null", "yes", "no", "on", "off"}, strings.ToLower(s)) {
		return s
	}
	return strconv.Quote(s)
}

// classFor guesses a channel's interaction class from the object it routes.
func classFor(relatedEntity string) (Class, bool) {
	switch relatedEntity {
	case "VoiceCall", "Video":
		return Live, true
	case "LiveChatTranscript", "MessagingSession":
		return SemiLive, true
	case "Case", "EmailMessage", "Lead", "WorkOrder":
		return NonLive, true
	}
	return 0, false
}

// Skeleton writes a commented mapping with every external-routing queue, service channel,
// presence status and skill of org: what `omniroute mapping fetch` prints (seed 003's "Fetch
// Omni-channel configuration"). Values the admin must choose are TODO, which Parse rejects until
// they are replaced. The output depends only on org, in a stable order.
func Skeleton(org Org) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { _, _ = fmt.Fprintf(&b, format, args...) }
	byName := func(a, b string) int { return strings.Compare(a, b) }

	var skills []string
	for _, s := range org.Skills {
		skills = append(skills, s.DeveloperName)
	}
	slices.SortFunc(skills, byName)
	var statuses []string
	for _, s := range org.Statuses {
		statuses = append(statuses, s.DeveloperName)
	}
	slices.SortFunc(statuses, byName)

	w("# omniroute mapping skeleton, written by `omniroute mapping fetch`.\n")
	w("# Replace every TODO (see the comment beside it), then run `omniroute mapping check FILE`.\n")
	w("# docs/mapping.md describes every key.\n\n")

	queues := slices.Clone(org.Queues)
	slices.SortFunc(queues, func(a, b OrgQueue) int { return byName(a.DeveloperName, b.DeveloperName) })
	w("# One plan per external-routing queue; put queues that route alike into one plan.\n")
	if len(skills) > 0 {
		w("# Skills in the org: %s.\n", strings.Join(skills, ", "))
	}
	w("plans:\n")
	var other []string
	n := 0
	for _, q := range queues {
		if q.RoutingModel != RoutingModelExternal {
			other = append(other, q.DeveloperName)
			continue
		}
		n++
		w("  - name: %s\n", yamlString(planName(q.DeveloperName)))
		w("    queues: [%s]  # Id %s\n", yamlString(q.DeveloperName), q.ID)
		w("    requiredSkills: []  # e.g. [{skill: %s, minLevel: 1}]\n", firstOr(skills, "English"))
		w("    priority: 0  # lower routes first\n")
		w("    offerTimeout: 30s\n")
		w("    wrapUpTimeout: 0s\n")
	}
	if n == 0 {
		w("  - name: TODO  # no queue in the org uses External Routing; give a queue such a routing configuration\n")
		w("    queues: [TODO]\n")
	}
	if len(other) > 0 {
		w("# Queues not on External Routing (omniroute does not route them): %s.\n", strings.Join(other, ", "))
	}

	channels := slices.Clone(org.Channels)
	slices.SortFunc(channels, func(a, b OrgChannel) int { return byName(a.DeveloperName, b.DeveloperName) })
	w("\nchannels:\n")
	for _, c := range channels {
		w("  - name: %s  # routes %s\n", yamlString(c.DeveloperName), c.RelatedEntity)
		if cl, ok := classFor(c.RelatedEntity); ok {
			w("    class: %s  # guessed from %s\n", cl, c.RelatedEntity)
		} else {
			w("    class: TODO  # live, semi-live or non-live\n")
		}
		w("    weight: 1  # capacity units per work item\n")
	}
	if len(channels) == 0 {
		w("  []  # no service channels in the org\n")
	}

	w("\ncapacity:\n")
	w("  default: standard\n")
	w("  profiles:\n")
	w("    - name: standard\n")
	w("      total: TODO  # capacity units an agent has, e.g. 10\n")

	w("\npresence:\n")
	w("  # Presence statuses in the org: %s.\n", strings.Join(statuses, ", "))
	w("  # Agent states: Ready, ReadyOutbound, Busy, WrapUp, Away, ExtendedAway, LoggedOut,\n")
	w("  # optionally with a minor state such as Away/Break.\n")
	w("  fromSalesforce:  # status -> agent state; delete a line to map that status to Ready\n")
	for _, s := range statuses {
		w("    %s: TODO\n", yamlString(s))
	}
	if len(statuses) == 0 {
		w("    {}\n")
	}
	w("  toSalesforce:  # agent state -> status; every major state is required\n")
	for _, m := range MajorStates() {
		if m == LoggedOut {
			w("    %s: %s\n", m, OfflineStatus)
			continue
		}
		w("    %s: TODO\n", m)
	}
	w("  revertToLastStatus: false\n")
	w("  postCallState: Ready\n")
	return b.Bytes()
}

func firstOr(xs []string, def string) string {
	if len(xs) > 0 {
		return xs[0]
	}
	return def
}

// planName turns a queue DeveloperName into a plan name: Support_EN -> support-en.
func planName(queue string) string {
	return strings.ToLower(strings.ReplaceAll(queue, "_", "-"))
}
