package mapping_test

import (
	"embed"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
)

//go:embed testdata/invalid
var invalidFixtures embed.FS

// checkText is what `omniroute mapping check` prints for a file checked offline: the parse
// error, or the warnings of a file that loads.
func checkText(data []byte, name string) string {
	cfg, err := mapping.Parse(data, name)
	if err != nil {
		return err.Error() + "\n"
	}
	var b strings.Builder
	for _, w := range cfg.Warnings() {
		b.WriteString(w.String() + "\n")
	}
	return b.String()
}

// TestInvalidGolden checks every fixture in testdata/invalid against its .err file: the exact
// problem text, positions included.
func TestInvalidGolden(t *testing.T) {
	t.Parallel()
	yamls, err := fs.Glob(invalidFixtures, "testdata/invalid/*.yaml")
	require.NoError(t, err)
	errs, err := fs.Glob(invalidFixtures, "testdata/invalid/*.err")
	require.NoError(t, err)
	require.Len(t, errs, len(yamls), "every fixture needs a .err file and every .err a fixture")
	require.NotEmpty(t, yamls)
	for _, p := range yamls {
		name := strings.TrimSuffix(path.Base(p), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := invalidFixtures.ReadFile(p)
			require.NoError(t, err)
			want, err := invalidFixtures.ReadFile(strings.TrimSuffix(p, ".yaml") + ".err")
			require.NoError(t, err)
			got := checkText(data, path.Base(p))
			require.NotEmpty(t, strings.TrimSpace(got), "an invalid fixture must report a problem")
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("problems differ (-want +got):\n%s", diff)
			}
		})
	}
}
