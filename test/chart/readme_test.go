package chart

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite charts/omniroute/README.md from values.yaml")

func readChartFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, name))
	require.NoError(t, err)
	return b
}

// TestChartREADME: README.md is generated from values.yaml (`make chart-readme`), and every
// value is documented.
func TestChartREADME(t *testing.T) {
	t.Parallel()
	got, err := README(readChartFile(t, "README.md.gotmpl"), readChartFile(t, "Chart.yaml"), readChartFile(t, "values.yaml"))
	require.NoError(t, err)
	path := filepath.Join(chartDir, "README.md")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "charts/omniroute/README.md is stale: run `make chart-readme`")
}

func TestValuesDocumented(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, values, wantErr string
		want                  []Value
	}{
		{
			name:   "documented leaves and an undocumented parent",
			values: "# header\n\nimage:\n  # -- The repository.\n  repository: x\n  # -- (string) A tag,\n  # on two lines.\n  tag: \"\"\n# -- Replicas.\nreplicaCount: 1\n",
			want: []Value{
				{Key: "image.repository", Type: "string", Default: `"x"`, Description: "The repository."},
				{Key: "image.tag", Type: "string", Default: `""`, Description: "A tag, on two lines."},
				{Key: "replicaCount", Type: "int", Default: "1", Description: "Replicas."},
			},
		},
		{name: "an undocumented leaf", values: "image:\n  # a plain comment\n  tag: x\n", wantErr: "values.yaml:3: image.tag has no `# --` comment"},
		{name: "an empty description", values: "# --\nx: 1\n", wantErr: "x has an empty `# --` comment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Values([]byte(tc.values))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
