package chart

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMakefileVersionOnce: `make image-check` (and `make image`) labels the image and checks
// `omniroute version` with the VERSION the binary was built with. VERSION comes from
// `git describe --dirty`, which changes as soon as a file is touched mid-build; a Makefile that
// runs it at every use builds the binary with one version and checks another. Here a git that
// answers differently at every call stands in for a tree that changes during the build.
func TestMakefileVersionOnce(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed: the Makefile is the interface of CI")
	}
	bin := t.TempDir()
	counter := filepath.Join(bin, "n")
	git := "#!/bin/sh\nn=$(cat " + counter + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " + counter + "; echo v0.0.$n\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "git"), []byte(git), 0o755))

	cmd := exec.CommandContext(context.Background(), "make", "-n", "-C", root, "image-check")
	cmd.Env = []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !slices.Contains([]string{"PATH", "VERSION", "REVISION", "MAKEFLAGS", "MAKELEVEL"}, k) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), out.String())

	built := regexp.MustCompile(`-X main\.version=(\S+?)"`).FindStringSubmatch(out.String())
	checked := regexp.MustCompile(`tools/image-check\.sh (\S+)`).FindStringSubmatch(out.String())
	require.NotNil(t, built, out.String())
	require.NotNil(t, checked, out.String())
	require.Equal(t, built[1], checked[1], "the image is checked against the version the binary was built with")
}
