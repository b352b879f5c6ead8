package chart

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
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

// TestSchemaMatchesValues: values.schema.json and values.yaml describe the same values. Helm
// refuses a value the schema closes out, so a key of values.yaml missing from the schema fails
// `helm lint`; this test catches the other way: a schema property that values.yaml (and so the
// README) lacks, and an object the schema leaves open by mistake.
func TestSchemaMatchesValues(t *testing.T) {
	t.Parallel()
	var schema map[string]any
	require.NoError(t, json.Unmarshal(readChartFile(t, "values.schema.json"), &schema))
	var values map[string]any
	require.NoError(t, yaml.Unmarshal(readChartFile(t, "values.yaml"), &values))
	// Objects passed through as Kubernetes types (resources, securityContext, affinity...) are
	// open in the schema; everything else the chart owns is closed.
	open := []string{"global", "resources", "podSecurityContext", "securityContext", "affinity", "extraEnv.valueFrom"}
	var walk func(path string, s map[string]any, v map[string]any)
	walk = func(path string, s map[string]any, v map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for name, p := range props {
			key := strings.TrimPrefix(path+"."+name, ".")
			if key == "global" {
				continue // helm's own
			}
			val, ok := v[name]
			require.Truef(t, ok, "values.schema.json has %s, values.yaml does not", key)
			ps := p.(map[string]any)
			if ps["type"] == "object" {
				if slices.Contains(open, key) {
					continue
				}
				if _, hasProps := ps["properties"]; hasProps {
					require.Equalf(t, false, ps["additionalProperties"], "%s is an object of the chart's: close it (additionalProperties: false)", key)
					sub, _ := val.(map[string]any)
					walk(key, ps, sub)
				}
			}
		}
		for name := range v {
			_, ok := props[name]
			require.Truef(t, ok, "values.yaml has %s, values.schema.json does not", strings.TrimPrefix(path+"."+name, "."))
		}
	}
	require.Equal(t, false, schema["additionalProperties"])
	walk("", schema, values)
}
