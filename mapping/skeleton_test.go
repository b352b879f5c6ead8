package mapping_test

import (
	_ "embed"
	"flag"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

// update rewrites testdata/skeleton.golden: go test ./mapping -run TestSkeletonGolden -update
var update = flag.Bool("update", false, "rewrite testdata/skeleton.golden")

// skeletonOrg is the demo org plus a queue on another routing model and a channel whose class
// cannot be guessed.
func skeletonOrg() mapping.Org {
	org := demoOrg // copied deeply: tests running in parallel read demoOrg
	org.Queues = slices.Clone(org.Queues)
	org.Statuses = slices.Clone(org.Statuses)
	org.Skills = slices.Clone(org.Skills)
	org.Channels = append(slices.Clone(org.Channels), mapping.OrgChannel{DeveloperName: "Custom_Thing", RelatedEntity: "Thing__c"})
	return org
}

//go:embed testdata/skeleton.golden
var skeletonGolden string

// TestSkeletonGolden: the skeleton of an org is exactly testdata/skeleton.golden.
func TestSkeletonGolden(t *testing.T) {
	t.Parallel()
	got := mapping.Skeleton(skeletonOrg())
	if *update {
		require.NoError(t, os.WriteFile("testdata/skeleton.golden", got, 0o644)) //nolint:forbidigo // -update rewrites the golden file
		return
	}
	require.Empty(t, cmp.Diff(skeletonGolden, string(got)), "run with -update after a deliberate change")
}

// TestSkeleton: what the skeleton promises, independent of the golden file's layout.
func TestSkeleton(t *testing.T) {
	t.Parallel()
	org := skeletonOrg()
	skel := string(mapping.Skeleton(org))
	for _, want := range []string{
		"queues: [Support_EN]", "queues: [Support_DE]", "queues: [Billing]",
		"Queues not on External Routing (omniroute does not route them): Legacy, Sales.",
		"- name: Phone  # routes VoiceCall", "class: live  # guessed from VoiceCall",
		"class: semi-live  # guessed from LiveChatTranscript", "class: non-live  # guessed from Case",
		"- name: Custom_Thing  # routes Thing__c", "class: TODO  # live, semi-live or non-live",
		"Skills in the org: Billing, English, German, Technical.",
		"    Away_from_desk: TODO\n", "    Ready_for_cases: TODO\n", "    LoggedOut: Offline\n", "    Busy: TODO\n",
	} {
		require.Contains(t, skel, want)
	}
	_, err := mapping.Parse([]byte(skel), "skeleton.yaml")
	require.ErrorContains(t, err, "still TODO", "a skeleton with TODOs left does not load")

	// The order of the org's rows does not matter.
	for i, j := 0, len(org.Queues)-1; i < j; i, j = i+1, j-1 {
		org.Queues[i], org.Queues[j] = org.Queues[j], org.Queues[i]
	}
	require.Equal(t, skel, string(mapping.Skeleton(org)))

	// An org without external-routing queues, channels or statuses still gives a file to edit.
	empty := string(mapping.Skeleton(mapping.Org{}))
	require.Contains(t, empty, "- name: TODO  # no queue in the org uses External Routing")
	require.Contains(t, empty, "  []  # no service channels in the org")
}
