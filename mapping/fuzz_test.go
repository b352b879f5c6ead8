package mapping_test

import (
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/omniroute/omniroute/mapping"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and a file it accepts must
// validate and give the same result when parsed again.
func FuzzParse(f *testing.F) {
	f.Add([]byte(seed003))
	f.Add([]byte(full))
	f.Add([]byte("plans: [{name: a, queues: [q], overflow: {plan: a, after: 1s}}]"))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("presence: {toSalesforce: {\"Away/\": x, Ready/Break/x: y}}"))
	fixtures, _ := fs.Glob(invalidFixtures, "testdata/invalid/*.yaml")
	for _, p := range fixtures {
		data, err := invalidFixtures.ReadFile(p)
		if err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := mapping.Parse(data, "fuzz.yaml")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without text")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		_ = cfg.Warnings()
		again, err := mapping.Parse(data, "fuzz.yaml")
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		if diff := cmp.Diff(cfg, again, cmpopts.IgnoreUnexported(mapping.Config{}), cmpopts.EquateNaNs()); diff != "" {
			t.Fatalf("two parses differ:\n%s", diff)
		}
		_, _ = mapping.ValidateOrg(cfg, mapping.Org{})
	})
}
